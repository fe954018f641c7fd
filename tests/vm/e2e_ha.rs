//! Registry high availability end to end (image-configs/e2e-ha.yaml), all
//! under QEMU (TCG, `-smp 1` each), nothing leaving the machine:
//!
//! - host0 boots the ISO (BIOS, CD) and serves DHCP and netboot on a
//!   private link (a QEMU multicast hub on 127.0.0.1); its registry port
//!   is forwarded to the host;
//! - `replica-1` netboots with the replica role, gets a certificate from
//!   host0's CA, copies the whole registry and keeps it in sync; its
//!   registry port is forwarded to the host too;
//! - `node-1` netboots and joins; its refresh timer adds the replica to
//!   its mirror config once the replica is in sync, in the node's own
//!   order (rendezvous on its MAC, `airlift_appliance::mirror_order`).
//!
//! The test pushes an image to host0, waits for it on the replica (the
//! replication lag is printed), waits until node-1 lists the replica,
//! then kills host0's VM. node-1 then pulls an image from the bundle it
//! never pulled and the pushed image, through its unchanged mirror
//! config: both must succeed, through the replica. The failover time
//! (host0 killed → first pull done) is printed, never asserted.
//! `just e2e-ha` runs it alone. Needs `just base`.

use std::process::Command;
use std::time::{Duration, Instant};

use airlift_appliance::mirror_order;
use airlift_integration::images::{write_layout, TestImage};
use airlift_integration::tools::{free_port, require, workspace_root};
use airlift_integration::vm::{self, Cluster, Running, Serial};

const TOTAL: Duration = Duration::from_secs(15 * 60);
const HOST0_MAC: &str = "52:54:00:78:00:01";
const REPLICA_MAC: &str = "52:54:00:78:00:21";
const NODE_MAC: &str = "52:54:00:78:00:22";
const TOKEN_FILE: &str = "image-configs/files/e2e-ha/push-token";
const PUSHED: &str = "quay.io/test/pushed:1.0";

/// A netbooted BIOS machine on the cluster's link, with an optional
/// second, host-reachable NIC whose port 5000 is forwarded to `fwd`.
fn netboot_node(c: &Cluster, name: &'static str, mac: &str, fwd: Option<u16>) -> (Running, Serial) {
    let mut args: Vec<String> = vec![
        "-m".into(),
        "1536".into(),
        "-boot".into(),
        "n".into(),
        "-netdev".into(),
        c.hub.clone(),
        "-device".into(),
        format!("virtio-net-pci,netdev=priv,mac={mac},bootindex=0,addr=0x4"),
    ];
    if let Some(port) = fwd {
        args.extend([
            "-netdev".into(),
            format!("user,id=up,restrict=on,hostfwd=tcp:127.0.0.1:{port}-:5000"),
            "-device".into(),
            "virtio-net-pci,netdev=up,addr=0x5,romfile=".into(),
        ]);
    }
    c.spawn(name, &args)
}

/// Push a small random image to host0 through its forwarded port;
/// returns the manifest digest skopeo wrote.
fn push(fwd: u16, dir: &std::path::Path) -> String {
    let layout = dir.join("pushed-layout");
    write_layout(&layout, &[TestImage::random("pushed", 77, 400_000)]).unwrap();
    let token = std::fs::read_to_string(workspace_root().join(TOKEN_FILE)).unwrap();
    let digest_file = dir.join("pushed.digest");
    let out = Command::new("skopeo")
        .args([
            "copy",
            "--retry-times",
            "3",
            "--dest-tls-verify=false",
            "--dest-creds",
            &format!("push:{}", token.trim()),
            "--digestfile",
            digest_file.to_str().unwrap(),
            &format!("oci:{}:pushed", layout.display()),
            &format!("docker://127.0.0.1:{fwd}/{PUSHED}"),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pushing {PUSHED} to host0: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(digest_file)
        .unwrap()
        .trim()
        .to_string()
}

/// The digest the registry behind `port` gives for `reference` (a `HEAD`).
fn manifest_digest(port: u16, reference: &str) -> Option<String> {
    let (repo, tag) = reference.rsplit_once(':').unwrap();
    let out = Command::new("curl")
        .args(["-fsSkI", "--max-time", "10", "-H"])
        .arg("Accept: application/vnd.oci.image.manifest.v1+json")
        .arg(format!(
            "https://127.0.0.1:{port}/v2/{repo}/manifests/{tag}"
        ))
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("docker-content-digest")
            .then(|| v.trim().to_string())
    })
}

#[test]
fn a_node_keeps_pulling_through_the_replica_after_host0_dies() {
    require("curl", "curl");
    require("skopeo", "skopeo");
    let iso = vm::built("image-configs/e2e-ha.yaml");
    let c = Cluster::new("airlift-e2e-ha-");
    let (fwd, rfwd) = (free_port(), free_port());
    let t0 = c.t0;
    let (mut host0, h0) = c.host0(iso, HOST0_MAC, fwd, TOTAL);
    let (mut replica, rs) = netboot_node(&c, "replica-1", REPLICA_MAC, Some(rfwd));
    let (mut node, ns) = netboot_node(&c, "node-1", NODE_MAC, None);

    // The replica's first full sync.
    let (t_synced, synced) = vm::wait_for(
        &rs,
        &["AIRLIFT-REPLICA-SYNCED"],
        t0,
        TOTAL,
        &mut [(&h0, &mut host0), (&rs, &mut replica), (&ns, &mut node)],
    );
    eprintln!(
        "{:>7.1}s  replica: {}",
        t_synced.as_secs_f64(),
        synced.trim()
    );
    let (_, serving) = rs
        .find("AIRLIFT-REPLICA-SERVING")
        .expect("the replica serves");
    let replica_url = serving
        .split_whitespace()
        .last()
        .unwrap()
        .trim()
        .to_string();
    assert!(
        replica_url.starts_with("https://10.77.0."),
        "the replica serves on the private link: {replica_url}"
    );

    // A push to host0 reaches the replica; the lag is printed.
    let digest = push(fwd, c.dir.path());
    let pushed_at = Instant::now();
    let deadline = pushed_at + Duration::from_secs(120);
    loop {
        if manifest_digest(rfwd, PUSHED).as_deref() == Some(digest.as_str()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{PUSHED} ({digest}) did not reach the replica in 120 s\n{}",
            vm::tail(&rs.text(), 40)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let replicated_in = pushed_at.elapsed();
    let replicas = vm::get_json(fwd, "/airlift/v1/replicas").unwrap();
    let rstatus = vm::get_json(rfwd, "/airlift/v1/status").unwrap();
    eprintln!(
        "push → visible on the replica: {:.2}s (host-side, polled every 0.2 s)\n\
         host0's replica table: {replicas}\nreplica's replication status: {}",
        replicated_in.as_secs_f64(),
        rstatus["replication"]
    );
    let row = replicas
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["url"] == replica_url.as_str())
        .unwrap_or_else(|| panic!("{replica_url} is not in host0's replica table: {replicas}"));
    assert_ne!(row["state"], "syncing", "{row}");
    assert_eq!(rstatus["replication"]["source"], "https://10.77.0.1:5000");
    assert!(
        rstatus["replication"]["applied-generation"]
            .as_u64()
            .unwrap()
            > 0
    );
    assert_eq!(rstatus["state"], "ready", "{rstatus}");

    // The node lists the replica (from its join, or its refresh): host0
    // and the replica in the node's own order, the one the join endpoint
    // computes from its MAC, host0's other addresses after them.
    let (t_listed, listed) = vm::wait_for(
        &ns,
        &["AIRLIFT-JOIN-", "registries=", &replica_url],
        t0,
        TOTAL,
        &mut [(&h0, &mut host0), (&rs, &mut replica), (&ns, &mut node)],
    );
    eprintln!(
        "{:>7.1}s  node-1: {}",
        t_listed.as_secs_f64(),
        listed.trim()
    );
    let registries: Vec<&str> = listed
        .split_whitespace()
        .find_map(|w| w.strip_prefix("registries="))
        .expect("a registries= field")
        .split(',')
        .collect();
    let key = mirror_order::node_key(Some(NODE_MAC), [0u8; 4].into());
    let spread = ["https://10.77.0.1:5000", replica_url.as_str()];
    assert_eq!(
        registries[..2],
        mirror_order::node_order(&key, &spread, &[]),
        "{listed}"
    );
    assert!(
        registries[2..].iter().all(|r| !spread.contains(r)),
        "{listed}"
    );
    // Killing host0 must make this node fail over: its MAC ranks host0
    // first for most replica addresses (44 of the 51 in the DHCP range).
    assert_eq!(
        registries[0], spread[0],
        "node-1 ranks the replica first, so killing host0 would test no failover; \
         pick a NODE_MAC that ranks host0 first for {replica_url}"
    );
    vm::wait_for(
        &ns,
        &["AIRLIFT-E2E-HA-WAITING"],
        t0,
        TOTAL,
        &mut [(&h0, &mut host0), (&rs, &mut replica), (&ns, &mut node)],
    );

    // Pull the plug on host0.
    host0.kill();
    let t_kill = t0.elapsed();
    eprintln!("{:>7.1}s  host0 killed", t_kill.as_secs_f64());

    let (t_done, _) = vm::wait_for(
        &ns,
        &["AIRLIFT-E2E-HA-DONE"],
        t0,
        TOTAL,
        &mut [(&rs, &mut replica), (&ns, &mut node)],
    );
    for l in ns.all("AIRLIFT-E2E-HA-") {
        eprintln!("  node-1: {}", l.trim());
    }
    for r in ["quay.io/test/hello:1.0", PUSHED] {
        assert!(
            ns.find(&format!("AIRLIFT-E2E-HA-PULL-OK {r}")).is_some(),
            "node-1 could not pull {r} with host0 down: {:?}\n{}",
            ns.all("AIRLIFT-E2E-HA-PULL"),
            vm::tail(&rs.text(), 40)
        );
    }
    // The replica still answers for the pushed image itself.
    assert_eq!(
        manifest_digest(rfwd, PUSHED).as_deref(),
        Some(digest.as_str())
    );
    let (t_first, _) = ns.find("AIRLIFT-E2E-HA-PULL-OK").unwrap();
    eprintln!(
        "failover: host0 killed at {:.1}s, first pull through the replica done at {:.1}s \
         ({:.1}s later, host-side; the node polls host0 every second and declares it gone \
         after two failed connects), all pulls done at {:.1}s",
        t_kill.as_secs_f64(),
        t_first.as_secs_f64(),
        (t_first - t_kill).as_secs_f64(),
        t_done.as_secs_f64()
    );
}
