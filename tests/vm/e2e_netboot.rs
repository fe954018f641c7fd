//! Netboot end to end (image-configs/e2e-netboot.yaml), all under QEMU
//! (TCG, `-smp 1` each), nothing leaving the machine:
//!
//! - host0 boots the ISO (BIOS, CD) with its first NIC on a private L2
//!   link (a QEMU multicast hub on 127.0.0.1) and a second, restricted
//!   user-mode NIC whose registry port is forwarded to the host;
//! - two machines with no disks netboot from it: one BIOS (QEMU's iPXE NIC
//!   ROM, then the iPXE script over HTTP), one UEFI (OVMF, Secure Boot off:
//!   the NIC ROM's iPXE gets the script, or, in the runs where OVMF's own
//!   PXE client asks first, host0 hands it shim and the signed network
//!   GRUB, as under Secure Boot); both run `airlift-firstboot join`,
//!   and a test-only unit prints what the join wrote and pulls
//!   `quay.io/...` and `docker.io/...` images with skopeo through the
//!   mirror.
//!
//! Asserted: both pulls on both nodes; the node config each received
//! names host0's link address first and carries the CA host0 reports;
//! every file airlift owns on the node has exactly the content the
//! mirrors module renders from that config; host0's node table lists
//! both machines as joined with their profiles. A timeline (host-side
//! times of marker lines) is printed, never asserted. Needs `just base`.

use std::collections::BTreeMap;

use std::process::{Command, Stdio};

use std::time::{Duration, Instant};

use airlift_firstboot::services::join::NodeConfig;
use airlift_firstboot::services::mirrors::{apply::plan_files, FileKind, Sigstore};
use airlift_integration::tools::{free_port, require, workspace_root};
use airlift_integration::vm::{self, Cluster, Running, Serial, OVMF_CODE, OVMF_VARS};

const TOTAL: Duration = Duration::from_secs(15 * 60);
const HOST0_MAC: &str = "52:54:00:77:00:01";
const BIOS_MAC: &str = "52:54:00:77:00:11";
const UEFI_MAC: &str = "52:54:00:77:00:12";
/// How long, at most, the timeline waits for systemd-analyze's figures.
const ANALYZE_WAIT: Duration = Duration::from_secs(90);
const PULLS: [&str; 2] = ["quay.io/test/hello:1.0", "docker.io/library/busybox:1.35"];

/// Wait until `serial` shows `marker`; fail with every VM's tail.
fn wait_for(
    serial: &Serial,
    marker: &str,
    t0: Instant,
    vms: &mut [(&Serial, &mut Running)],
) -> (Duration, String) {
    vm::wait_for(serial, &[marker], t0, TOTAL, vms)
}

/// `GET https://127.0.0.1:PORT/PATH` on host0 (through the forward; its
/// CA is checked elsewhere, so `-k` here).
fn host0_get(port: u16, path: &str) -> serde_json::Value {
    vm::get_json(port, path).unwrap_or_else(|e| panic!("host0: {e}"))
}

/// Hex sha256, as `sha256sum` prints it.
fn sha256_hex(data: &[u8]) -> String {
    airlift_oci::Digest::sha256_of(data)
        .to_string()
        .trim_start_matches("sha256:")
        .to_string()
}

/// Check one node's serial output against host0's CA.
fn check_node(node: &Serial, ca_fingerprint: &str) {
    for r in PULLS {
        let ok = node.find(&format!("AIRLIFT-E2E-PULL-OK {r}"));
        assert!(
            ok.is_some(),
            "{}: no successful pull of {r}: {:?}\n{}",
            node.name,
            node.all("AIRLIFT-E2E-PULL"),
            vm::tail(&node.text(), 60)
        );
    }
    assert!(node.find("AIRLIFT-JOIN-VERIFIED").is_some());

    // The node config it received, reassembled.
    let mut chunks: BTreeMap<u32, String> = BTreeMap::new();
    for l in node.all("AIRLIFT-E2E-CONFIG ") {
        let rest = &l[l.find("AIRLIFT-E2E-CONFIG ").unwrap() + 19..];
        let (i, chunk) = rest.split_once(' ').expect("index and chunk");
        chunks.insert(i.parse().unwrap(), chunk.trim().to_string());
    }
    let b64: String = chunks.into_values().collect();
    let json = base64_decode(&b64);
    let cfg: NodeConfig = serde_json::from_slice(&json).unwrap_or_else(|e| {
        panic!(
            "{}: node config: {e}\n{}",
            node.name,
            String::from_utf8_lossy(&json)
        )
    });
    assert_eq!(cfg.appliance.name, "e2e-netboot");
    assert_eq!(
        cfg.registries[0], "https://10.77.0.1:5000",
        "{:?}",
        cfg.registries
    );
    for u in ["quay.io", "docker.io"] {
        assert!(
            cfg.mirror.upstreams.iter().any(|x| x == u),
            "{:?}",
            cfg.mirror.upstreams
        );
    }
    let ca = cfg.ca_pem.as_deref().expect("a CA in the node config");
    assert_eq!(
        airlift_firstboot::services::tls::fingerprint(ca).unwrap(),
        ca_fingerprint,
        "{}: the CA the node got is not host0's",
        node.name
    );

    // Every file airlift owns: on the node, byte for byte as rendered here.
    let on_node: BTreeMap<String, String> = node
        .all("AIRLIFT-E2E-FILE ")
        .iter()
        .filter_map(|l| {
            let rest = &l[l.find("AIRLIFT-E2E-FILE ").unwrap() + 17..];
            let mut w = rest.split_whitespace();
            Some((w.next()?.to_string(), w.next()?.to_string()))
        })
        .collect();
    // The node's base is Debian 12, whose containers/image has sigstore
    // disabled (signature_files::the_real_probe_says_… measures it).
    let planned = plan_files(&cfg.mirror, &cfg.runtimes, &Sigstore::Disabled).unwrap();
    assert!(!planned.is_empty());
    for f in &planned {
        let path = f.path.display().to_string();
        let got = on_node
            .get(&path)
            .unwrap_or_else(|| panic!("{}: {path} is missing; files: {on_node:?}", node.name));
        if f.kind == FileKind::Owned {
            assert_eq!(
                got,
                &sha256_hex(f.content.as_bytes()),
                "{}: {path} differs from what the mirrors module renders",
                node.name
            );
        }
    }
}

/// Decode base64 with coreutils' `base64 -d`.
fn base64_decode(s: &str) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new("base64")
        .arg("-d")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("running base64");
    child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the node config's base64 is damaged: {s}"
    );
    out.stdout
}

#[test]
fn host0_netboots_a_bios_and_a_uefi_node_that_join_and_pull_offline() {
    require("curl", "curl");
    let iso = vm::built("image-configs/e2e-netboot.yaml");
    let c = Cluster::new("airlift-e2e-netboot-");
    let fwd = free_port();
    let t0 = c.t0;
    let (mut host0, h0) = c.host0(iso, HOST0_MAC, fwd, TOTAL);
    let status = host0_get(fwd, "/airlift/v1/status");
    let ca_fp = status["ca-fingerprint"]
        .as_str()
        .expect("host0 reports its CA fingerprint")
        .to_string();

    let (mut bios, nb) = c.spawn(
        "node-bios",
        &[
            "-m".into(),
            "1536".into(),
            "-boot".into(),
            "n".into(),
            "-netdev".into(),
            c.hub.clone(),
            "-device".into(),
            format!("virtio-net-pci,netdev=priv,mac={BIOS_MAC},bootindex=0"),
        ],
    );

    let vars = c.dir.path().join("OVMF_VARS.fd");
    std::fs::copy(OVMF_VARS, &vars).expect("copying the OVMF variables (apt-get install ovmf)");
    let (mut uefi, nu) = c.spawn(
        "node-uefi",
        &[
            "-m".into(),
            "1536".into(),
            "-drive".into(),
            format!("if=pflash,format=raw,readonly=on,file={OVMF_CODE}"),
            "-drive".into(),
            format!("if=pflash,format=raw,file={}", vars.display()),
            "-netdev".into(),
            c.hub.clone(),
            "-device".into(),
            format!("virtio-net-pci,netdev=priv,mac={UEFI_MAC},bootindex=0"),
        ],
    );

    // The BIOS node first (checked as soon as it is done), then UEFI.
    for node in [&nb, &nu] {
        wait_for(
            node,
            "AIRLIFT-E2E-DONE",
            t0,
            &mut [(&h0, &mut host0), (&nb, &mut bios), (&nu, &mut uefi)],
        );
        timeline(&h0, &nb, &nu);
        check_node(node, &ca_fp);
        let mac = if node.name == "node-bios" {
            BIOS_MAC
        } else {
            UEFI_MAC
        };
        check_node_table(fwd, mac, &format!("node:{}", node.name));
    }
    // systemd-analyze's figures (printed once each boot has finished),
    // for the timeline only: a VM that does not print them fails nothing.
    let until = Instant::now() + ANALYZE_WAIT;
    for s in [&h0, &nb, &nu] {
        while s.find("AIRLIFT-E2E-ANALYZE-END").is_none() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(250));
        }
    }
    timeline(&h0, &nb, &nu);
}

/// host0's node table lists `mac` as joined with `profile`.
fn check_node_table(fwd: u16, mac: &str, profile: &str) {
    let nodes = host0_get(fwd, "/airlift/v1/nodes");
    let n = nodes
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["mac"] == mac)
        .unwrap_or_else(|| panic!("{mac} is not in host0's node table: {nodes:#}"));
    assert_eq!(n["state"], "joined", "{n:#}");
    assert_eq!(n["profile"], profile, "{n:#}");
    assert!(n["boots"].as_u64().unwrap() >= 1, "{n:#}");
}

/// Print the timeline from the serial logs (host-side times).
fn timeline(h0: &Serial, nb: &Serial, nu: &Serial) {
    // (seconds after host0's QEMU start, VM, event)
    let mut rows: Vec<(Duration, &str, String)> = Vec::new();
    let mut add = |s: &Serial, vm: &'static str, marker: &str, what: &str| {
        if let Some((t, _)) = s.find(marker) {
            rows.push((t, vm, what.to_string()));
        }
    };
    add(h0, h0.name, "Linux version", "kernel running");
    add(h0, h0.name, "AIRLIFT-STAGE1-START", "stage 1 started");
    add(h0, h0.name, "AIRLIFT-STAGE1-ROOT", "root mounted");
    add(h0, h0.name, "running in system mode", "systemd running");
    add(h0, h0.name, "AIRLIFT-HOST0-READY", "ready");
    add(h0, h0.name, "AIRLIFT-NETBOOT-READY", "netboot ready");
    for (node, mac) in [(nb, BIOS_MAC), (nu, UEFI_MAC)] {
        let n = node.name;
        add(h0, n, &format!("AIRLIFT-NETBOOT-DHCP mac={mac}"), "DHCP");
        add(
            h0,
            n,
            &format!("AIRLIFT-NETBOOT-SCRIPT mac={mac}"),
            "boot script",
        );
        add(
            h0,
            n,
            &format!("AIRLIFT-NETBOOT-GRUB mac={mac}"),
            "GRUB config",
        );
        add(node, n, "Linux version", "kernel running");
        add(node, n, "AIRLIFT-STAGE1-START", "stage 1 started");
        add(node, n, "AIRLIFT-STAGE1-ROOT", "root mounted");
        add(node, n, "running in system mode", "systemd running");
        add(node, n, "AIRLIFT-JOIN-START", "join started");
        add(node, n, "AIRLIFT-JOIN-CONFIGURED", "configured");
        add(node, n, "AIRLIFT-JOIN-VERIFIED", "image resolved");
        add(node, n, "AIRLIFT-E2E-PULL-OK", "first skopeo pull");
    }
    rows.sort();
    eprintln!("timeline (host-side, from QEMU start of host0):");
    for (t, vm, what) in &rows {
        let label = if *vm == h0.name {
            format!("{vm} {what}")
        } else {
            format!("{vm}: {what}")
        };
        eprintln!("  {:>7.1}s  {label}", t.as_secs_f64());
    }
    let files = h0.all("AIRLIFT-NETBOOT-FILE");
    for l in &files {
        eprintln!("  host0: {}", l.trim());
    }
    // The same rows for `just bench` (part 4), replaced atomically.
    let vms = [h0, nb, nu];
    let analyze: BTreeMap<&str, Vec<String>> =
        vms.iter().map(|s| (s.name, analyze_lines(s))).collect();
    let uptime: BTreeMap<&str, serde_json::Value> =
        vms.iter().map(|s| (s.name, stage1_uptimes(s))).collect();
    let json = serde_json::json!({
        "clock": "host-side seconds after host0's QEMU start (serial lines polled every 0.2 s)",
        "rows": rows.iter().map(|(t, vm, what)| serde_json::json!({
            "seconds": (t.as_secs_f64() * 10.0).round() / 10.0,
            "vm": vm,
            "event": what,
        })).collect::<Vec<_>>(),
        "netbootFiles": files.iter().map(|l| l.trim()).collect::<Vec<_>>(),
        "analyze": analyze,
        "uptime": uptime,
    });
    let dir = workspace_root().join("target/test-output/e2e-netboot");
    let written = std::fs::create_dir_all(&dir)
        .and_then(|()| tempfile::NamedTempFile::new_in(&dir))
        .and_then(|mut tmp| {
            use std::io::Write;
            tmp.write_all(&serde_json::to_vec_pretty(&json).expect("timeline JSON"))?;
            tmp.as_file().sync_all()?;
            tmp.persist(dir.join("timeline.json"))
                .map(drop)
                .map_err(|e| e.error)
        });
    match written {
        Ok(()) => eprintln!("  (written to {}/timeline.json)", dir.display()),
        Err(e) => eprintln!("  (could not write {}/timeline.json: {e})", dir.display()),
    }
}

/// The systemd-analyze lines a VM printed (airlift-e2e-analyze.service),
/// without their marker.
fn analyze_lines(s: &Serial) -> Vec<String> {
    const MARK: &str = "AIRLIFT-E2E-ANALYZE ";
    s.all(MARK)
        .iter()
        .filter_map(|l| {
            l.find(MARK)
                .map(|i| l[i + MARK.len()..].trim_end().to_string())
        })
        .collect()
}

/// VM-side seconds since the kernel started at stage 1's start and when
/// it mounted the root (its `uptime=` fields).
fn stage1_uptimes(s: &Serial) -> serde_json::Value {
    let at = |marker: &str| {
        s.find(marker).and_then(|(_, l)| {
            let v = l.split("uptime=").nth(1)?.split_whitespace().next()?;
            v.trim_end_matches(')').parse::<f64>().ok()
        })
    };
    serde_json::json!({
        "stage 1 started": at("AIRLIFT-STAGE1-START"),
        "root mounted": at("AIRLIFT-STAGE1-ROOT"),
    })
}
