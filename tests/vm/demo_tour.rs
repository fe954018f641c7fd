//! `just demo`, the README's first command, run as a newcomer would but
//! with no terminal: `AIRLIFT_DEMO_BATCH=1` makes scripts/demo.sh boot
//! the demo ISO (UEFI, the recipe's default) under QEMU, print the tour
//! once host0 is ready, run the tour's own checks (the printed skopeo
//! command through the forwarded port, the status page and its JSON, a
//! command in the serial console's root shell), power the VM off and
//! exit 0 only when all passed.
//!
//! Asserted here: the recipe exits 0; the tour names the forwarded port,
//! real bundled images, the status page, the root shell and Ctrl-a x;
//! host0 announced a network address, not loopback; each check reported
//! real content (a digest, the page's title, the appliance's status, uid
//! 0 in the shell); and no QEMU with this run's port forward is left.
//! The recipe's processes and this run's QEMU are stopped on drop.
//! Timings are printed, never asserted. `just demo-tour`.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use airlift_integration::tools::{free_port, require, which, workspace_root};
use airlift_integration::vm::Slot;

/// The running recipe. On drop (every path, panics included): TERM to
/// every process below it (the script's trap stops QEMU) and to any QEMU
/// with this run's port forward, then KILL to what is left. The recipe
/// stays in the test's process group, so Ctrl-C reaches it too.
struct Recipe {
    child: Child,
    /// `hostfwd=tcp:127.0.0.1:PORT-`: only this run's QEMU has it.
    forward: String,
}

impl Recipe {
    /// The recipe's processes and this run's QEMU (even if orphaned).
    fn processes(&self) -> Vec<u32> {
        let mut pids = descendants(self.child.id());
        pids.extend(qemu_with(&self.forward));
        pids.sort_unstable();
        pids.dedup();
        pids
    }
}

impl Drop for Recipe {
    fn drop(&mut self) {
        for signal in ["-TERM", "-KILL"] {
            let pids = self.processes();
            if pids.is_empty() {
                break;
            }
            let _ = Command::new("kill")
                .arg(signal)
                .args(pids.iter().map(u32::to_string))
                .stderr(Stdio::null())
                .status();
            let t = Instant::now();
            while t.elapsed() < Duration::from_secs(5) && !self.processes().is_empty() {
                let _ = self.child.try_wait();
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every live process below `root` (by /proc's parent links).
fn descendants(root: u32) -> Vec<u32> {
    let links: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            // `PID (COMM) STATE PPID …`; COMM may hold spaces and parens.
            let mut rest = stat.rsplit_once(')')?.1.split_whitespace();
            let state = rest.next()?;
            let ppid: u32 = rest.next()?.parse().ok()?;
            (state != "Z").then_some((pid, ppid))
        })
        .collect();
    let mut out = vec![];
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for &(pid, ppid) in &links {
            if ppid == p && !out.contains(&pid) {
                out.push(pid);
                frontier.push(pid);
            }
        }
    }
    out
}

/// Copy `from` into `into` line by line, echoing to stderr (shown with
/// --nocapture).
fn collect(from: impl Read + Send + 'static, into: Arc<Mutex<String>>, tag: &'static str) {
    std::thread::spawn(move || {
        for line in BufReader::new(from).lines().map_while(Result::ok) {
            eprintln!("[{tag}] {line}");
            let mut s = into.lock().unwrap_or_else(|e| e.into_inner());
            s.push_str(&line);
            s.push('\n');
        }
    });
}

/// PIDs of QEMU processes whose command line holds `needle`.
fn qemu_with(needle: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let pid: u32 = e.file_name().to_str()?.parse().ok()?;
            let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            (cmd.contains("qemu-system") && cmd.contains(needle)).then_some(pid)
        })
        .collect()
}

/// The one line of `out` starting with `prefix`.
fn line<'a>(out: &'a str, prefix: &str) -> &'a str {
    out.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starting with {prefix:?} in:\n{out}"))
}

#[test]
fn just_demo_prints_a_tour_whose_commands_work() {
    require("qemu-system-x86_64", "qemu-system-x86");
    require("skopeo", "skopeo");
    require("curl", "curl");
    require("ss", "iproute2");
    let just = which("just").unwrap_or_else(|| {
        panic!("just is not installed: cargo install just --locked (README, Start here)")
    });
    let tmp = tempfile::Builder::new()
        .prefix("airlift-demo-tour-")
        .tempdir()
        .unwrap();
    let port = free_port();
    let forward = format!("hostfwd=tcp:127.0.0.1:{port}-");
    // The recipe builds the ISO and boots it with 2 vCPUs: no other VM or
    // build of this process runs meanwhile (dropped after the recipe).
    let _machine = Slot::whole_machine();

    let start = Instant::now();
    let mut child = Command::new(just);
    child
        .arg("demo")
        .current_dir(workspace_root())
        .env("AIRLIFT_DEMO_BATCH", "1")
        .env("AIRLIFT_DEMO_PORT", port.to_string())
        .env("AIRLIFT_DEMO_ISO", tmp.path().join("demo.iso"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut recipe = Recipe {
        child: child.spawn().expect("running just demo"),
        forward: forward.clone(),
    };
    let (out, err) = (Arc::default(), Arc::default());
    collect(recipe.child.stdout.take().unwrap(), Arc::clone(&out), "out");
    collect(recipe.child.stderr.take().unwrap(), Arc::clone(&err), "err");

    // Generous: the recipe may build the binaries and the base first, and
    // TCG on a loaded machine is slow.
    let limit = Duration::from_secs(40 * 60);
    let text = |s: &Arc<Mutex<String>>| s.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let status = loop {
        if let Some(s) = recipe.child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > limit {
            let (out, err) = (text(&out), text(&err));
            panic!("just demo did not finish within {limit:?}\nstdout:\n{out}\nstderr:\n{err}");
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    // Let the readers take the last lines.
    std::thread::sleep(Duration::from_millis(300));
    let took = start.elapsed();
    let (out, err) = (text(&out), text(&err));
    assert!(
        status.success(),
        "AIRLIFT_DEMO_BATCH=1 just demo failed ({status})\nstdout:\n{out}\nstderr:\n{err}"
    );

    // The tour, with the forwarded port and real bundled images.
    for expected in [
        "airlift demo: host0 is ready".to_string(),
        format!(
            "  skopeo inspect --tls-verify=false \
             docker://127.0.0.1:{port}/registry.airlift.test/demo/busybox:1.35"
        ),
        format!("  podman pull --tls-verify=false 127.0.0.1:{port}/registry.airlift.test/demo/hello:1.0"),
        format!("  curl -k https://127.0.0.1:{port}/airlift/v1/status"),
        format!("Status page: https://127.0.0.1:{port}/ "),
        "Root shell: press Enter here".into(),
        "Quit: Ctrl-a x".into(),
    ] {
        assert!(out.contains(&expected), "the tour lacks {expected:?}:\n{out}");
    }
    // host0 waited for its NIC: it announces a network address.
    let announced = line(&out, "host0 announces its registry as https://");
    assert!(!announced.contains("127.0.0.1"), "{announced}");

    // What the checks saw.
    let skopeo = line(&out, "demo: check skopeo inspect ");
    assert!(
        skopeo.contains(&format!(
            "127.0.0.1:{port}/registry.airlift.test/demo/busybox:1.35 ok"
        )) && skopeo.contains("\"Digest\": \"sha256:"),
        "{skopeo}"
    );
    let page = line(&out, "demo: check status page ");
    for expected in [
        format!("https://127.0.0.1:{port}/ ok"),
        "<title>airlift appliance</title>".into(),
        "\"state\": \"media-only\"".into(),
        "\"name\": \"demo\"".into(),
    ] {
        assert!(page.contains(&expected), "{expected:?} not in {page}");
    }
    let shell = line(&out, "demo: check root shell ");
    assert!(
        shell.contains("AIRLIFT-DEMO-SHELL uid=0 host0=active"),
        "{shell}"
    );
    assert!(
        out.contains("demo: batch tour passed"),
        "no final verdict:\n{out}"
    );

    // QEMU is gone (powered off, or killed by the script's trap).
    let left = qemu_with(&forward);
    assert!(
        left.is_empty(),
        "QEMU still running after just demo: {left:?}"
    );
    eprintln!(
        "{}; {}; just demo (batch) took {took:.1?} in all",
        line(&out, "demo: host0 ready after"),
        line(&out, "demo: batch tour passed")
    );
}
