//! host0 in a VM: the demo appliance (image-configs/demo.yaml, systemd
//! root filesystem) built with the real `airlift build`, booted from a
//! CD under QEMU (TCG, BIOS, 2 GiB) with the guest's registry port
//! forwarded to the host. `airlift-host0.service` must report ready on
//! the serial console, then skopeo on the host reads a bundle image
//! through the forwarded port. Needs `just base`; `just e2e-host0`.

use std::process::Command;
use std::time::{Duration, Instant};

use airlift_integration::tools::{free_port, require};
use airlift_integration::vm::{self, Firmware, Media, Vm};

#[test]
fn demo_boots_as_host0_and_serves_the_bundle_through_a_forwarded_port() {
    require("qemu-system-x86_64", "qemu-system-x86");
    let skopeo = require("skopeo", "skopeo");
    let tmp = tempfile::Builder::new()
        .prefix("airlift-host0-qemu-")
        .tempdir()
        .unwrap();
    // The demo ISO, shared with boot_demo (built once per test process).
    let iso = vm::built("image-configs/demo.yaml");

    let port = free_port();
    let mut vm = Vm::new(Firmware::Bios, Media::Cd, iso);
    vm.memory_mib = 2048;
    vm.cpus = 2;
    vm.extra_args = vec![
        "-netdev".into(),
        format!("user,id=n0,hostfwd=tcp:127.0.0.1:{port}-:5000"),
        "-device".into(),
        "virtio-net-pci,netdev=n0".into(),
    ];
    let serial = tmp.path().join("serial.log");
    let mut running = vm::start(vm.cpus, &vm::qemu_args(&vm, None), &serial);
    let start = Instant::now();

    let ready = vm::wait_serial(
        &mut running,
        &serial,
        "AIRLIFT-HOST0-READY",
        Duration::from_secs(300),
    );
    eprintln!("{ready} after {:.1?}", start.elapsed());
    // The appliance runs from RAM with no data disk: media-only.
    assert!(ready.contains("state=media-only"), "{ready}");
    assert!(ready.contains("registry=https://"), "{ready}");

    // From the host, through the forwarded port (TLS not verified: the
    // CA is inside the VM). Retry while the guest's network comes up.
    let reference = format!("docker://127.0.0.1:{port}/registry.airlift.test/demo/busybox:1.35");
    let deadline = Instant::now() + Duration::from_secs(120);
    let out = loop {
        let out = Command::new(&skopeo)
            .args(["inspect", "--no-tags", "--tls-verify=false", &reference])
            .output()
            .unwrap();
        if out.status.success() {
            break out;
        }
        assert!(
            Instant::now() < deadline,
            "skopeo inspect {reference} kept failing: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            vm::tail(&vm::read_lossy(&serial), 60)
        );
        std::thread::sleep(Duration::from_secs(2));
    };
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["Digest"].as_str().unwrap().starts_with("sha256:"), "{v}");
    eprintln!(
        "skopeo inspect through the VM's registry worked after {:.1?}",
        start.elapsed()
    );

    // The status endpoint on the same port.
    let curl = require("curl", "curl");
    let out = Command::new(curl)
        .args(["-sSk", "--max-time", "30"])
        .arg(format!("https://127.0.0.1:{port}/airlift/v1/status"))
        .output()
        .unwrap();
    let s: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("status: {e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(s["state"], "media-only", "{s}");
    assert_eq!(s["appliance"]["name"], "demo", "{s}");
    assert!(
        s["ca-fingerprint"].as_str().unwrap().starts_with("sha256:"),
        "{s}"
    );
}
