//! Throwaway network namespaces for tests that need real links (VRRP,
//! addresses that move between machines) without touching this
//! machine's own: every namespace, veth and bridge is made inside
//! namespaces the test owns, and dropping a [`Netns`] kills whatever
//! still runs in it and deletes it (also when the test panics).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::tools::{require, run_ok};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A network namespace named `airlift-<label>-<pid>-<n>` (unique per
/// process and call, so parallel runs never share one), with `lo` up.
pub struct Netns {
    name: String,
}

impl Netns {
    /// Create it; panics saying why when namespaces cannot be made here
    /// (the test needs root: CAP_SYS_ADMIN and CAP_NET_ADMIN).
    pub fn create(label: &str) -> Netns {
        let ip = require("ip", "iproute2");
        let name = format!(
            "airlift-{label}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let out = Command::new(&ip)
            .args(["netns", "add", &name])
            .output()
            .unwrap_or_else(|e| panic!("running {} netns add: {e}", ip.display()));
        assert!(
            out.status.success(),
            "cannot create the network namespace {name} (this test needs root, with \
             CAP_SYS_ADMIN and CAP_NET_ADMIN): ip netns add said: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// The namespace's name (for `ip netns exec` and `ip -n`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n NAME ARGS`; panics with its output if it fails. Returns stdout.
    pub fn ip(&self, args: &[&str]) -> String {
        run_ok(Command::new("ip").arg("-n").arg(&self.name).args(args))
    }

    /// `ip -n NAME ARGS`: stdout, or what went wrong (the kernel's words).
    pub fn try_ip(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new("ip")
            .arg("-n")
            .arg(&self.name)
            .args(args)
            .output()
            .map_err(|e| format!("running ip: {e}"))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(format!(
                "ip -n {} {} said: {}",
                self.name,
                args.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    /// A command running `program` inside the namespace
    /// (`ip netns exec NAME program`; the program's own pid is the child's).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).arg(program);
        c
    }

    /// The IPv4 addresses on `iface`, as `ip -n NAME -4 -o addr show` lists them.
    pub fn ipv4_addresses(&self, iface: &str) -> Vec<String> {
        self.ip(&["-4", "-o", "addr", "show", "dev", iface])
            .lines()
            .filter_map(|l| {
                let mut w = l.split_whitespace();
                w.find(|t| *t == "inet")?;
                w.next().map(str::to_string)
            })
            .collect()
    }

    /// The pids of every process in the namespace.
    pub fn pids(&self) -> Vec<String> {
        Command::new("ip")
            .args(["netns", "pids", &self.name])
            .output()
            .map(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // SIGKILL what is left (daemons' own children, running checks),
        // wait for it to go, then delete the namespace (its veths go too).
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let pids = self.pids();
            if pids.is_empty() || Instant::now() > deadline {
                break;
            }
            let _ = Command::new("kill")
                .arg("-KILL")
                .args(&pids)
                .stderr(Stdio::null())
                .status();
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// One Ethernet segment: a bridge `br0` in `hub`, and a veth from each
/// member (named `eth0` inside it) into the bridge. Addresses are
/// `PREFIX.N/24`, N counting from 1 over the members then the hub.
/// Everything lives inside the namespaces.
pub fn ethernet(prefix: &str, hub: &Netns, members: &[&Netns]) -> Vec<String> {
    hub.try_ip(&["link", "add", "br0", "type", "bridge"])
        .unwrap_or_else(|e| panic!("cannot create a bridge in {}: {e}", hub.name()));
    hub.ip(&["link", "set", "br0", "up"]);
    let mut addrs = Vec::new();
    for (i, m) in members.iter().enumerate() {
        let port = format!("port{i}");
        m.try_ip(&[
            "link",
            "add",
            "eth0",
            "type",
            "veth",
            "peer",
            "name",
            &port,
            "netns",
            hub.name(),
        ])
        .unwrap_or_else(|e| {
            panic!(
                "cannot create a veth pair from {} into {}: {e}",
                m.name(),
                hub.name()
            )
        });
        hub.ip(&["link", "set", &port, "master", "br0"]);
        hub.ip(&["link", "set", &port, "up"]);
        let addr = format!("{prefix}.{}", i + 1);
        m.ip(&["addr", "add", &format!("{addr}/24"), "dev", "eth0"]);
        m.ip(&["link", "set", "eth0", "up"]);
        addrs.push(addr);
    }
    let addr = format!("{prefix}.{}", members.len() + 1);
    hub.ip(&["addr", "add", &format!("{addr}/24"), "dev", "br0"]);
    addrs.push(addr);
    addrs
}

/// A process started in a namespace, its stdout and stderr in a log
/// file; killed (SIGKILL) and reaped when dropped.
pub struct NsProcess {
    child: Option<Child>,
    /// Where its output goes.
    pub log: PathBuf,
}

impl NsProcess {
    /// Start `cmd` (made with [`Netns::command`]) with its output appended to `log`.
    pub fn spawn(mut cmd: Command, log: &Path) -> NsProcess {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .unwrap_or_else(|e| panic!("opening {}: {e}", log.display()));
        let err = out
            .try_clone()
            .unwrap_or_else(|e| panic!("opening {}: {e}", log.display()));
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {cmd:?}: {e}"));
        NsProcess {
            child: Some(child),
            log: log.to_path_buf(),
        }
    }

    /// The process id (the program's own: `ip netns exec` execs it).
    pub fn id(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Has it exited (and with what)?
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// SIGKILL it and reap it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Its output so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for NsProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
