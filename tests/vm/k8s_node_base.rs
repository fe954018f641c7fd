//! The Kubernetes node base (examples/base/k8s-node) end to end: its
//! Containerfile built with buildah on top of the demo's base image (as
//! `BASE`, from the oci-archive `just base` wrote; Debian's packages from
//! the mirror, nothing else from the network), its appliance config
//! built into an ISO from that image, and the ISO booted as host0 (BIOS,
//! CD, TCG). A unit in a test overlay prints, once host0 is ready, what
//! a node runtime needs: containerd running with the example's config
//! (systemd cgroups, `config_path` at airlift's hosts folder), the
//! modules-load.d and sysctl settings applied, a netfilter module of the
//! example's `extraModules` loadable, and a pull through host0's mirror
//! with `ctr --hosts-dir` (the hosts.toml firstboot wrote). The file
//! capability the image's layer gave `ping` is set on the booted root
//! (`airlift-xattrs.service`: the squashfs holds no extended attributes).
//!
//! The config is the example's with four test edits: the bundle holds a
//! local busybox (as docker.io/library/busybox) instead of
//! registry.k8s.io's pause, the base image is read from the archive this
//! test built rather than pulled from registry.example.com, the test
//! overlay is added, and netboot is off (no second machine here).
//! About 4 minutes: 1 to build the image, 1 for the ISO, 2 to boot.

use std::fs;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use airlift_integration::tools::{self, require};
use airlift_integration::vm::{self, Firmware, Media, Vm};

const EXAMPLE: &str = "examples/base/k8s-node";
const MARKER: &str = "AIRLIFT-K8S-NODE";

/// buildah with its storage inside `dir`: nothing left in the host's.
fn buildah(dir: &Path) -> Command {
    let mut c = Command::new(require("buildah", "buildah"));
    c.arg("--root")
        .arg(dir.join("storage"))
        .arg("--runroot")
        .arg(dir.join("run"))
        .args(["--storage-driver", "vfs"]);
    c
}

/// The example's Containerfile on the demo base, as an oci-archive.
fn build_node_image(dir: &Path, base: &Path) -> PathBuf {
    let root = tools::workspace_root();
    let kernel = fs::read_to_string(base.join("kernel-version")).unwrap();
    let archive = dir.join("k8s-node.oci.tar");
    let out = buildah(dir)
        .args([
            "build",
            "--layers",
            "--isolation",
            "chroot",
            "--network",
            "host",
        ])
        .arg(format!(
            "--build-arg=BASE=oci-archive:{}",
            base.join("demo-base.oci.tar").display()
        ))
        .arg(format!(
            "--build-arg=KERNEL_PACKAGE=linux-image-{}",
            kernel.trim()
        ))
        .args(["-t", "localhost/airlift-test/k8s-node:1.0", "-f"])
        .arg(root.join(EXAMPLE).join("Containerfile"))
        .arg(root.join(EXAMPLE))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "buildah build of {EXAMPLE}/Containerfile failed:\n{}",
        tail(&out.stderr, 40)
    );
    let out = buildah(dir)
        .args(["push", "-q", "localhost/airlift-test/k8s-node:1.0"])
        .arg(format!("oci-archive:{}:1.0", archive.display()))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "buildah push: {}",
        tail(&out.stderr, 20)
    );
    archive
}

fn tail(bytes: &[u8], lines: usize) -> String {
    let s = String::from_utf8_lossy(bytes);
    let all: Vec<&str> = s.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The overlay whose unit prints what the node runtime needs.
fn overlay(dir: &Path) -> PathBuf {
    let o = dir.join("overlay");
    let script = o.join("usr/lib/airlift-test/k8s-node");
    fs::create_dir_all(script.parent().unwrap()).unwrap();
    fs::write(
        &script,
        r#"#!/bin/sh
# What a Kubernetes node needs from its OS, on one console line.
containerd=$(systemctl is-active containerd)
server=$(ctr version 2>/dev/null | awk '/^Server:/ { s = 1 } s && /Version:/ { print $2; exit }')
cgroup=$(grep -c 'SystemdCgroup = true' /etc/containerd/config.toml)
config_path=$(grep -c 'config_path = "/etc/containerd/certs.d"' /etc/containerd/config.toml)
mods=""
for m in overlay br_netfilter; do [ -d /sys/module/$m ] && mods="$mods$m,"; done
nft=fail; modprobe nf_tables && [ -d /sys/module/nf_tables ] && nft=ok
fwd=$(cat /proc/sys/net/ipv4/ip_forward)
bridge=$(cat /proc/sys/net/bridge/bridge-nf-call-iptables 2>/dev/null || echo none)
hosts=$(ls /etc/containerd/certs.d 2>/dev/null | tr '\n' ',')
ping_cap=$(getcap /usr/bin/ping 2>/dev/null | awk '{ print $2 }')
pull=fail
ctr -n k8s.io images pull --hosts-dir /etc/containerd/certs.d \
    docker.io/library/busybox:1.35 >/run/airlift-test-pull.log 2>&1 && pull=ok
echo "AIRLIFT-K8S-NODE containerd=$containerd server=$server systemd_cgroup=$cgroup config_path=$config_path modules=$mods nf_tables=$nft ip_forward=$fwd bridge_nf=$bridge hosts=$hosts ping_cap=${ping_cap:-none} pull=$pull"
[ "$pull" = ok ] || sed 's/^/AIRLIFT-K8S-PULL /' /run/airlift-test-pull.log
"#,
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    let units = o.join("etc/systemd/system");
    fs::create_dir_all(units.join("multi-user.target.wants")).unwrap();
    fs::write(
        units.join("airlift-test-k8s-node.service"),
        "[Unit]\nDescription=airlift test: the node runtime of the k8s-node base\n\
         After=airlift-host0.service containerd.service\nRequires=airlift-host0.service\n\n\
         [Service]\nType=oneshot\nExecStart=/usr/lib/airlift-test/k8s-node\n\
         StandardOutput=journal+console\n",
    )
    .unwrap();
    symlink(
        "../airlift-test-k8s-node.service",
        units.join("multi-user.target.wants/airlift-test-k8s-node.service"),
    )
    .unwrap();
    o
}

/// The example's config with the test's edits (module docs).
fn config(dir: &Path, base: &Path, archive: &Path, overlay: &Path) -> PathBuf {
    let root = tools::workspace_root();
    let text = fs::read_to_string(root.join(EXAMPLE).join("appliance.yaml")).unwrap();
    let edits = [
        (
            "  - ref: registry.k8s.io/pause:3.9\n    platforms: [linux/amd64]\n".to_string(),
            format!(
                "  - ref: docker.io/library/busybox:1.35\n    from:\n      \
                 ociLayout: {{ path: \"{}\", ref: busybox }}\n",
                base.join("images").display()
            ),
        ),
        (
            "    ref: registry.example.com/os/k8s-node:1.0\n".to_string(),
            format!(
                "    ref: registry.example.com/os/k8s-node:1.0\n    from:\n      \
                 ociArchive: {{ path: \"{}\", ref: \"1.0\" }}\n",
                archive.display()
            ),
        ),
        (
            "  - ../../../overlays/base\n".to_string(),
            format!(
                "  - {}\n  - {}\n",
                root.join("overlays/base").display(),
                overlay.display()
            ),
        ),
        (
            "netboot:\n  enabled: true\n  dhcp: proxy\n  defaultProfile:\n    role: join\n"
                .to_string(),
            "netboot:\n  enabled: false\n".to_string(),
        ),
    ];
    let mut edited = text.clone();
    for (from, to) in &edits {
        assert!(
            edited.contains(from.as_str()),
            "{EXAMPLE}/appliance.yaml no longer holds {from:?}: update k8s_node_base.rs"
        );
        edited = edited.replacen(from.as_str(), to, 1);
    }
    let path = dir.join("k8s-node.yaml");
    fs::write(&path, edited).unwrap();
    path
}

#[test]
fn the_k8s_node_base_boots_with_containerd_pulling_through_host0() {
    let base = vm::airlift_base();
    let dir = tempfile::tempdir().unwrap();
    let archive = build_node_image(dir.path(), &base);
    // buildah's storage is no longer needed (it holds a copy per layer).
    fs::remove_dir_all(dir.path().join("storage")).ok();
    let overlay = overlay(dir.path());
    let config = config(dir.path(), &base, &archive, &overlay);
    let iso = dir.path().join("k8s-node.iso");
    let took = vm::build_image(&config, &iso);
    eprintln!("built {} in {took:.1?}", iso.display());

    let mut vm = Vm::new(Firmware::Bios, Media::Cd, &iso);
    vm.memory_mib = 2048;
    vm.cpus = 2;
    let serial = dir.path().join("serial.log");
    let mut running = vm::start(vm.cpus, &vm::qemu_args(&vm, None), &serial);
    let line = vm::wait_serial(&mut running, &serial, MARKER, Duration::from_secs(900));
    running.kill();
    eprintln!("{line}");
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name}= in {line:?}"))
            .to_string()
    };
    let log = fs::read_to_string(&serial).unwrap_or_default();
    let pulls: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("AIRLIFT-K8S-PULL"))
        .collect();
    assert_eq!(field("containerd"), "active", "{line}");
    assert!(field("server").starts_with("1.6"), "{line}");
    assert_eq!(field("systemd_cgroup"), "1", "{line}");
    assert_eq!(field("config_path"), "1", "{line}");
    assert_eq!(field("modules"), "overlay,br_netfilter,", "{line}");
    assert_eq!(field("nf_tables"), "ok", "{line}");
    assert_eq!(field("ip_forward"), "1", "{line}");
    assert_eq!(field("bridge_nf"), "1", "{line}");
    let hosts = field("hosts");
    for upstream in ["registry.k8s.io", "docker.io", "quay.io"] {
        assert!(hosts.contains(upstream), "{upstream} not in {hosts}");
    }
    assert_eq!(field("pull"), "ok", "{line}\n{}", pulls.join("\n"));
    // iputils-ping's postinst gave ping cap_net_raw in the image's layer;
    // the squashfs root cannot hold it, airlift-xattrs.service set it.
    let xattrs = log
        .lines()
        .find(|l| l.contains("AIRLIFT-XATTRS set="))
        .unwrap_or_else(|| panic!("no AIRLIFT-XATTRS line on the console"));
    assert!(xattrs.contains("failed=0"), "{xattrs}");
    assert!(!xattrs.contains("set=0 "), "{xattrs}");
    let cap = field("ping_cap");
    assert!(cap.contains("cap_net_raw"), "ping has {cap} ({line})");
}
