//! The watcher's decisions on made-up device lists and mount tables, and
//! reading a medium from an image file.

use super::*;

const LABEL: &str = "AIRLIFT_DEMO";

fn dev(name: &str, dev_t: &str, medium: Option<(&str, &str)>) -> Device {
    Device {
        name: name.into(),
        dev_t: dev_t.into(),
        medium: medium.map(|(label, fp)| Medium {
            label: label.into(),
            fingerprint: fp.into(),
        }),
    }
}

fn mnt(dev_t: &str, target: &str) -> MountEntry {
    MountEntry {
        dev_t: dev_t.into(),
        source: "none".into(),
        target: target.into(),
    }
}

fn known(name: &str, fp: &str, mounted: bool) -> Known {
    Known {
        name: name.into(),
        fingerprint: fp.into(),
        mounted: mounted.then(|| PathBuf::from(format!("/run/airlift/update/{name}"))),
        task: None,
    }
}

fn decide(devices: &[Device], mounts: &[MountEntry], known: &[Known]) -> Plan {
    plan(
        LABEL,
        devices,
        mounts,
        known,
        Path::new("/run/airlift/media"),
        Path::new("/run/airlift/update"),
    )
}

#[test]
fn mounts_a_new_medium_but_not_the_boot_media_or_one_mounted_elsewhere() {
    let devices = [
        dev("sr0", "11:0", Some((LABEL, "boot"))),
        dev("sr1", "11:1", Some((LABEL, "new"))),
        dev("sdb", "8:16", Some(("OTHER_APPLIANCE", "x"))),
        dev("loop3", "7:3", Some((LABEL, "cli"))),
        dev("sda", "8:0", None),
    ];
    let mounts = [
        mnt("11:0", "/run/airlift/media"),
        mnt("7:3", "/run/airlift/cli-update"),
        mnt("8:1", "/var/lib/airlift"),
    ];
    let p = decide(&devices, &mounts, &[]);
    assert_eq!(
        p,
        Plan {
            mount: vec![(
                "sr1".into(),
                "new".into(),
                PathBuf::from("/run/airlift/update/sr1")
            )],
            ..Plan::default()
        }
    );
}

#[test]
fn a_known_medium_is_not_taken_again_and_is_unmounted_when_done() {
    let devices = [dev("sr1", "11:1", Some((LABEL, "new")))];
    let mounts = [mnt("11:1", "/run/airlift/update/sr1")];
    // Mounted by the watcher, its load done: unmount, keep remembering.
    let p = decide(&devices, &mounts, &[known("sr1", "new", true)]);
    assert_eq!((p.unmount, p.forget, p.mount.len()), (vec![0], vec![], 0));
    // Unmounted and remembered: nothing to do at each poll.
    assert_eq!(
        decide(&devices, &[], &[known("sr1", "new", false)]),
        Plan::default()
    );
}

#[test]
fn a_medium_that_goes_is_forgotten_and_a_new_disc_in_the_drive_is_seen() {
    let k = [known("sr1", "first", false), known("sdc", "stick", true)];
    // The stick is unplugged; the drive now holds another disc.
    let devices = [dev("sr1", "11:1", Some((LABEL, "second")))];
    let p = decide(&devices, &[], &k);
    assert_eq!(p.forget, vec![0, 1]);
    assert_eq!(
        p.mount,
        vec![(
            "sr1".into(),
            "second".into(),
            PathBuf::from("/run/airlift/update/sr1")
        )]
    );
    // Ejected (no medium): forgotten, nothing mounted.
    let p = decide(&[dev("sr1", "11:1", None)], &[], &k[..1]);
    assert_eq!((p.forget, p.mount.len()), (vec![0], 0));
}

#[test]
fn reads_mountinfo_with_escapes() {
    let text = "36 35 98:0 / /mnt\\040media rw,noatime master:1 - iso9660 /dev/sr0 ro\n\
                37 35 7:3 / /run/airlift/update/loop3 ro - iso9660 /dev/loop3 ro\n\
                broken\n";
    let m = parse_mountinfo(text);
    assert_eq!(m.len(), 2);
    assert_eq!(
        (m[0].dev_t.as_str(), m[0].source.as_str()),
        ("98:0", "/dev/sr0")
    );
    assert_eq!(m[0].target, PathBuf::from("/mnt media"));
    assert_eq!(m[1].target, PathBuf::from("/run/airlift/update/loop3"));
    // A mount whose dev_t is not its device's (btrfs) is matched by source.
    let btrfs = MountEntry {
        dev_t: "0:52".into(),
        source: "/dev/sr1".into(),
        target: "/mnt".into(),
    };
    let devices = [dev("sr1", "11:1", Some((LABEL, "x")))];
    assert_eq!(decide(&devices, &[btrfs], &[]), Plan::default());
}

fn image(label: &str, filler: u8) -> Vec<u8> {
    let mut data = vec![0u8; PVD_OFFSET as usize];
    let mut pvd = vec![filler; 2048];
    pvd[0] = 1;
    pvd[1..6].copy_from_slice(b"CD001");
    let mut l = [b' '; 32];
    l[..label.len()].copy_from_slice(label.as_bytes());
    pvd[40..72].copy_from_slice(&l);
    data.extend(pvd);
    data
}

#[test]
fn reads_the_medium_and_tells_discs_apart() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a.iso"), dir.path().join("b.iso"));
    std::fs::write(&a, image(LABEL, 0)).unwrap();
    std::fs::write(&b, image(LABEL, 7)).unwrap();
    let ma = read_medium(&a, LABEL).unwrap();
    let mb = read_medium(&b, LABEL).unwrap();
    assert_eq!(ma.label, LABEL);
    assert_eq!(ma.fingerprint.len(), 16);
    assert_ne!(ma.fingerprint, mb.fingerprint);
    assert_eq!(read_medium(&a, "ANOTHER"), None);
    assert_eq!(read_medium(&dir.path().join("absent"), LABEL), None);
}

#[test]
fn scans_sysfs_skipping_partitions_and_empty_drives() {
    let dir = tempfile::tempdir().unwrap();
    let (sys, devs) = (dir.path().join("sys"), dir.path().join("dev"));
    std::fs::create_dir_all(&devs).unwrap();
    for (name, dev_t, size, part) in [
        ("sr0", "11:0", "0", false),
        ("sr1", "11:1", "4096", false),
        ("sdb", "8:16", "4096", false),
        ("sdb1", "8:17", "4096", true),
        ("ram0", "1:0", "4096", false),
    ] {
        let d = sys.join(name);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join("dev"), format!("{dev_t}\n")).unwrap();
        std::fs::write(d.join("size"), format!("{size}\n")).unwrap();
        if part {
            std::fs::write(d.join("partition"), "1\n").unwrap();
        }
        std::fs::write(devs.join(name), image(LABEL, 1)).unwrap();
    }
    let paths = Paths {
        sys_block: sys,
        dev: devs,
        mountinfo: dir.path().join("mountinfo"),
        boot_mount: "/run/airlift/media".into(),
        update_root: "/run/airlift/update".into(),
        fstype: "iso9660".into(),
    };
    // sdb is mounted elsewhere: listed, not read.
    let found = scan(&paths, LABEL, &[mnt("8:16", "/mnt")]);
    let names: Vec<_> = found
        .iter()
        .map(|d| (d.name.as_str(), d.medium.is_some()))
        .collect();
    assert_eq!(names, vec![("sdb", false), ("sr1", true)]);
}
