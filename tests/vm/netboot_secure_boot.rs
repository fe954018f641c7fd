//! Secure Boot netboot (image-configs/e2e-netboot.yaml), under QEMU (TCG):
//! host0 boots the ISO as in the netboot end-to-end test (the same
//! [`Cluster`]); a diskless UEFI node under OVMF with Microsoft's keys and
//! Secure Boot enforcing ([`Firmware::UefiSecureBoot`]) netboots from it.
//! Its NIC has no option ROM (`romfile=`), so OVMF's own PXE client asks
//! (an unsigned iPXE ROM is refused under Secure Boot on real servers):
//! host0 hands it shim, shim the signed network GRUB, GRUB its per-MAC
//! config, kernel and initrd over TFTP.
//!
//! Asserted: the node's console shows GRUB running its config and the
//! kernel's `secureboot: Secure boot enabled`, the node joins, host0
//! logged the GRUB config fetch (and no iPXE script for the node), and
//! host0's node table lists it as joined with its profile. Boot times are
//! printed, never asserted. Needs `just base`.

use std::time::{Duration, Instant};

use airlift_integration::tools::{free_port, require};
use airlift_integration::vm::{self, Cluster, Firmware, Running, Serial};

const TOTAL: Duration = Duration::from_secs(20 * 60);
const HOST0_MAC: &str = "52:54:00:77:00:01";
const SB_MAC: &str = "52:54:00:77:00:13";

fn wait_for(
    serial: &Serial,
    marker: &str,
    t0: Instant,
    vms: &mut [(&Serial, &mut Running)],
) -> Duration {
    vm::wait_for(serial, &[marker], t0, TOTAL, vms).0
}

#[test]
fn a_secure_boot_node_netboots_through_shim_and_grub_and_joins() {
    require("curl", "curl");
    let template = Firmware::UefiSecureBoot
        .vars_template()
        .expect("UEFI has variables");
    let iso = vm::built("image-configs/e2e-netboot.yaml");
    let c = Cluster::new("airlift-netboot-sb-");
    let fwd = free_port();
    let t0 = c.t0;
    let (mut host0, h0) = c.host0(iso, HOST0_MAC, fwd, TOTAL);
    let host0_ready = t0.elapsed();

    let vars = c.dir.path().join("OVMF_VARS.ms.fd");
    std::fs::copy(template, &vars)
        .unwrap_or_else(|e| panic!("copying {template}: {e} (apt-get install ovmf)"));
    let mut args: Vec<String> = vec!["-m".into(), "1536".into()];
    args.extend(Firmware::UefiSecureBoot.args(Some(&vars)));
    args.extend([
        "-netdev".into(),
        c.hub.clone(),
        "-device".into(),
        format!("virtio-net-pci,netdev=priv,mac={SB_MAC},bootindex=0,romfile="),
    ]);
    let node_start = t0.elapsed();
    let (mut node, ns) = c.spawn("node-sb", &args);
    let mut vms = [(&h0, &mut host0), (&ns, &mut node)];

    let grub = wait_for(&ns, "through GRUB", t0, &mut vms);
    let grub_line = ns.find("through GRUB").map(|(_, l)| l).unwrap_or_default();
    assert!(
        grub_line.contains(&format!("airlift: {SB_MAC} boots as node:node-sb (join)")),
        "{grub_line}"
    );
    let kernel = wait_for(&ns, "secureboot: Secure boot enabled", t0, &mut vms);
    let joined = wait_for(&ns, "AIRLIFT-JOIN-VERIFIED", t0, &mut vms);
    let on_host0 = wait_for(
        &h0,
        &format!("AIRLIFT-NETBOOT-GRUB mac={SB_MAC} "),
        t0,
        &mut vms,
    );
    assert!(
        h0.find(&format!("AIRLIFT-NETBOOT-SCRIPT mac={SB_MAC}"))
            .is_none(),
        "the Secure Boot node went through iPXE?"
    );
    let text = ns.text();
    assert!(
        text.contains("Kernel is locked down from EFI Secure Boot"),
        "no lockdown\n{}",
        vm::tail(&text, 60)
    );

    let nodes = vm::get_json(fwd, "/airlift/v1/nodes").unwrap_or_else(|e| panic!("host0: {e}"));
    let n = nodes
        .as_array()
        .and_then(|a| a.iter().find(|n| n["mac"] == SB_MAC))
        .unwrap_or_else(|| panic!("{SB_MAC} is not in host0's node table: {nodes:#}"));
    assert_eq!(n["state"], "joined", "{n:#}");
    assert_eq!(n["profile"], "node:node-sb", "{n:#}");
    assert!(n["boots"].as_u64().unwrap_or(0) >= 1, "{n:#}");

    let s = |d: Duration| d.as_secs_f64();
    eprintln!("Secure Boot netboot (host-side seconds after host0's QEMU start, TCG):");
    eprintln!("  {:>7.1}s  host0 serves netboot", s(host0_ready));
    eprintln!("  {:>7.1}s  node-sb started", s(node_start));
    eprintln!("  {:>7.1}s  host0 sent its GRUB config", s(on_host0));
    eprintln!("  {:>7.1}s  node-sb: GRUB runs its config", s(grub));
    eprintln!(
        "  {:>7.1}s  node-sb: kernel says Secure Boot is on",
        s(kernel)
    );
    eprintln!("  {:>7.1}s  node-sb: joined", s(joined));
}
