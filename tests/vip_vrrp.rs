//! The registry's virtual IP failing over for real: Debian's keepalived,
//! run with the config airlift renders, speaks VRRP between two
//! "machines" (network namespaces `a`, host0, and `b`, a replica) that
//! each serve a real `airlift-firstboot serve` registry, while a client
//! namespace `c` (which holds the bridge between them) pulls through the
//! virtual IP with skopeo. Nothing touches this machine's own links: every
//! namespace, veth and bridge is the test's own and is removed at the end,
//! panic or not.
//!
//! Each registry serves a different image under the same name, so the
//! client can tell which machine answered. The registries listen on
//! 0.0.0.0 *inside* their namespace (the virtual IP must reach them);
//! nothing outside the namespaces can reach those sockets.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use airlift_appliance::IpCidr;
use airlift_firstboot::services::ha::vip::{
    check_command, keepalived, Role, VipSettings, CHECK_REQUEST_SECS,
};
use airlift_integration::images::{write_layout, TestImage};
use airlift_integration::netns::{ethernet, Netns, NsProcess};
use airlift_integration::tools::{binary, require};

/// The segment's first three octets (private; inside the namespaces only).
const PREFIX: &str = "10.231.0";
/// The virtual IP.
const VIP: &str = "10.231.0.100";
/// The registry port on every machine.
const PORT: u16 = 5000;
/// The image both registries serve, each its own content.
const IMAGE: &str = "quay.io/test/app:1.0";
/// The interface inside `a` and `b`.
const IFACE: &str = "eth0";
/// How long anything may take to happen on this slow, shared machine.
const PATIENCE: Duration = Duration::from_secs(90);

/// One registry machine: a namespace, its registry and its keepalived.
struct Machine {
    label: &'static str,
    role: Role,
    ip: String,
    dir: PathBuf,
    /// The digest of the image only this machine serves.
    digest: String,
    registry: Option<NsProcess>,
    keepalived: Option<NsProcess>,
    // Last, so the processes above are killed before the namespace goes.
    ns: Netns,
}

impl Machine {
    fn new(label: &'static str, role: Role, ns: Netns, ip: &str, tmp: &Path, seed: u64) -> Self {
        let dir = tmp.join(label);
        let made = write_layout(
            &dir.join("bundle"),
            &[TestImage::random(IMAGE, seed, 20_000)],
        )
        .unwrap()
        .remove(0);
        Machine {
            label,
            role,
            ip: ip.to_string(),
            digest: made.manifest.digest.to_string(),
            dir,
            registry: None,
            keepalived: None,
            ns,
        }
    }

    fn url(&self) -> String {
        format!("http://{}:{PORT}", self.ip)
    }

    /// `airlift-firstboot health` against this machine's registry, from inside it.
    fn health(&self) -> Command {
        let mut c = self.ns.command(binary("airlift-firstboot"));
        c.args(["health", "--url", &self.url(), "--timeout-secs"])
            .arg(CHECK_REQUEST_SECS.to_string());
        c
    }

    /// Start the registry and wait until it answers.
    fn start_registry(&mut self) {
        let mut cmd = self.ns.command(binary("airlift-firstboot"));
        cmd.args(["serve", "--listen", &format!("0.0.0.0:{PORT}"), "--data"])
            .arg(self.dir.join("data"))
            .arg("--layer")
            .arg(self.dir.join("bundle"))
            .env("RUST_LOG", "info");
        let mut p = NsProcess::spawn(cmd, &self.dir.join("serve.log"));
        let deadline = Instant::now() + PATIENCE;
        loop {
            if self.health().output().is_ok_and(|o| o.status.success()) {
                break;
            }
            let exited = p.exited();
            assert!(
                exited.is_none() && Instant::now() < deadline,
                "{}'s registry did not come up ({exited:?}); its log:\n{}",
                self.label,
                p.log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        self.registry = Some(p);
    }

    /// keepalived's config for this machine, rendered by airlift.
    fn keepalived_conf(&self) -> String {
        let settings = VipSettings {
            address: format!("{VIP}/24").parse::<IpCidr>().unwrap(),
            interface: IFACE.to_string(),
            virtual_router_id: 51,
        };
        // The check exactly as airlift writes it (the registry on the
        // machine's loopback), run with this build's binary.
        let health = check_command(
            &binary("airlift-firstboot").display().to_string(),
            "http",
            PORT,
        );
        keepalived::render(&settings, self.role, &health)
    }

    /// Start keepalived in the foreground inside the namespace.
    fn start_keepalived(&mut self) {
        let conf = self.dir.join("keepalived.conf");
        std::fs::write(&conf, self.keepalived_conf()).unwrap();
        let mut cmd = self.ns.command(require("keepalived", "keepalived"));
        cmd.args([
            "--dont-fork",
            "--log-console",
            "--log-detail",
            "--no-syslog",
        ])
        .arg("--use-file")
        .arg(&conf)
        .arg("--pid")
        .arg(self.dir.join("keepalived.pid"))
        .arg("--vrrp_pid")
        .arg(self.dir.join("vrrp.pid"))
        .arg("--checkers_pid")
        .arg(self.dir.join("checkers.pid"));
        self.keepalived = Some(NsProcess::spawn(cmd, &self.dir.join("keepalived.log")));
    }

    /// keepalived dies as with the machine: every one of its processes
    /// is stopped, then killed, so none can say goodbye (no priority-0
    /// advert, no address cleanup).
    fn keepalived_dies(&mut self) -> Vec<String> {
        let mut pids: Vec<String> = ["keepalived.pid", "vrrp.pid", "checkers.pid"]
            .iter()
            .filter_map(|f| std::fs::read_to_string(self.dir.join(f)).ok())
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect();
        if let Some(id) = self.keepalived.as_ref().and_then(NsProcess::id) {
            pids.push(id.to_string());
        }
        pids.sort();
        pids.dedup();
        for sig in ["-STOP", "-KILL"] {
            let _ = Command::new("kill").arg(sig).args(&pids).status();
        }
        if let Some(mut k) = self.keepalived.take() {
            k.kill();
        }
        pids
    }

    fn holds_vip(&self) -> bool {
        self.ns
            .ipv4_addresses(IFACE)
            .iter()
            .any(|a| a == &format!("{VIP}/24"))
    }

    fn keepalived_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("keepalived.log")).unwrap_or_default()
    }

    /// The state of this machine, for failure messages.
    fn report(&self) -> String {
        let tail = |s: String| {
            let lines: Vec<&str> = s.lines().collect();
            lines[lines.len().saturating_sub(60)..].join("\n")
        };
        format!(
            "--- {} ({:?}) {}: addresses {:?}\n--- its keepalived's output:\n{}\n\
             --- its registry's log (last lines):\n{}\n",
            self.label,
            self.role,
            self.ns.name(),
            self.ns.ipv4_addresses(IFACE),
            self.keepalived_log(),
            tail(std::fs::read_to_string(self.dir.join("serve.log")).unwrap_or_default()),
        )
    }
}

/// The client: a namespace with skopeo.
struct Client {
    ns: Netns,
}

impl Client {
    /// `skopeo inspect` of [`IMAGE`] at `host`: the manifest digest, or
    /// skopeo's error.
    fn digest_at(&self, host: &str) -> Result<String, String> {
        let out = self
            .ns
            .command(require("skopeo", "skopeo"))
            .args([
                "--command-timeout",
                "10s",
                "inspect",
                "--no-tags",
                "--tls-verify=false",
            ])
            .arg(format!("docker://{host}:{PORT}/{IMAGE}"))
            .output()
            .map_err(|e| format!("running skopeo: {e}"))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        let v: serde_json::Value =
            serde_json::from_slice(&out.stdout).map_err(|e| format!("skopeo's JSON: {e}"))?;
        v["Digest"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| format!("no Digest in {v}"))
    }
}

/// Poll `check` until it returns Some; panic after [`PATIENCE`] naming
/// `what`, the last answer and everyone's state.
fn wait_for<T>(
    what: &str,
    machines: &[&Machine],
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        match check() {
            Ok(v) => return v,
            Err(last) if Instant::now() > deadline => {
                let state: String = machines.iter().map(|m| m.report()).collect();
                panic!("waited {PATIENCE:?} for {what}; last: {last}\n{state}");
            }
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// Which of `machines` hold the virtual IP.
fn holders(machines: &[&Machine]) -> Vec<&'static str> {
    machines
        .iter()
        .filter(|m| m.holds_vip())
        .map(|m| m.label)
        .collect()
}

/// The virtual IP is on `expected` alone (Ok) or not yet (Err, who has it).
fn held_by(expected: &Machine, machines: &[&Machine]) -> Result<(), String> {
    let h = holders(machines);
    if h == [expected.label] {
        Ok(())
    } else {
        Err(format!("the virtual IP is held by {h:?}"))
    }
}

/// The client pulls through the virtual IP and gets `m`'s image.
fn served_by(client: &Client, m: &Machine) -> Result<(), String> {
    let d = client.digest_at(VIP)?;
    if d == m.digest {
        Ok(())
    } else {
        Err(format!("got {d}, not {}'s {}", m.label, m.digest))
    }
}

#[test]
fn the_virtual_ip_follows_the_healthy_registry() {
    require("keepalived", "keepalived");
    require("skopeo", "skopeo");
    let busybox = require("busybox", "busybox-static");
    let tmp = tempfile::tempdir().unwrap();

    // 1. Three namespaces on one bridge (in the client's).
    let (a_ns, b_ns, c_ns) = (
        Netns::create("vip-a"),
        Netns::create("vip-b"),
        Netns::create("vip-c"),
    );
    let addrs = ethernet(PREFIX, &c_ns, &[&a_ns, &b_ns]);
    let client = Client { ns: c_ns };
    for ip in &addrs[..2] {
        let out = client
            .ns
            .command(&busybox)
            .args(["ping", "-c", "1", "-W", "5", ip])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "the client namespace cannot reach {ip} over the bridge: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut a = Machine::new("a", Role::Host0, a_ns, &addrs[0], tmp.path(), 1);
    let mut b = Machine::new("b", Role::Replica, b_ns, &addrs[1], tmp.path(), 2);
    assert_ne!(a.digest, b.digest);

    // 2. A registry on each, each answering with its own image.
    a.start_registry();
    b.start_registry();
    assert_eq!(client.digest_at(&a.ip), Ok(a.digest.clone()));
    assert_eq!(client.digest_at(&b.ip), Ok(b.digest.clone()));
    assert!(client.digest_at(VIP).is_err(), "the VIP answers already");

    // 3. keepalived on each with the config airlift renders.
    a.start_keepalived();
    b.start_keepalived();

    // 4. host0 holds the address; the client gets host0's registry.
    wait_for("the virtual IP on a (host0) alone", &[&a, &b], || {
        held_by(&a, &[&a, &b])
    });
    wait_for("a's image through the virtual IP", &[&a, &b], || {
        served_by(&client, &a)
    });

    // 5. host0's registry dies (keepalived keeps running): the check fails,
    // and the address moves to the replica.
    let killed = Instant::now();
    a.registry.take().unwrap().kill();
    wait_for(
        "the virtual IP on b after a's registry died",
        &[&a, &b],
        || held_by(&b, &[&a, &b]),
    );
    let moved = killed.elapsed();
    wait_for("b's image through the virtual IP", &[&a, &b], || {
        served_by(&client, &b)
    });
    let failover = killed.elapsed();
    assert!(
        a.keepalived_log().contains("Entering FAULT STATE"),
        "a let go of the address without its check failing?\n{}",
        a.report()
    );
    println!(
        "failover: the virtual IP on b {:.1} s after a's registry was killed, \
         the first pull through it from b after {:.1} s",
        moved.as_secs_f64(),
        failover.as_secs_f64()
    );

    // 6. host0's registry is back. The config has no `nopreempt`: the
    // higher priority takes the address back once its check passes again.
    assert!(!a.keepalived_conf().contains("nopreempt"));
    let restarted = Instant::now();
    a.start_registry();
    wait_for("the virtual IP back on a (preempt)", &[&a, &b], || {
        held_by(&a, &[&a, &b])
    });
    wait_for("a's image through the virtual IP again", &[&a, &b], || {
        served_by(&client, &a)
    });
    println!(
        "failback: a's image through the virtual IP {:.1} s after its registry restarted",
        restarted.elapsed().as_secs_f64()
    );

    // The replica dies as a machine does (keepalived killed outright): host0
    // keeps the address, and nothing is left behind on b.
    let pids = b.keepalived_dies();
    assert!(
        pids.len() >= 2,
        "keepalived's processes on b: {pids:?}\n{}",
        b.report()
    );
    for p in &pids {
        wait_for(
            &format!("b's keepalived process {p} to end"),
            &[&a, &b],
            || {
                // Gone, or a zombie nobody has reaped yet.
                match std::fs::read_to_string(Path::new("/proc").join(p).join("stat")) {
                    Err(_) => Ok(()),
                    Ok(s) if s.rsplit_once(')').is_some_and(|(_, r)| r.starts_with(" Z")) => Ok(()),
                    Ok(s) => Err(format!("still running: {}", s.trim())),
                }
            },
        );
    }
    // Several advertisement intervals (advert_int 1): the address stays put.
    let until = Instant::now() + Duration::from_secs(4);
    while Instant::now() < until {
        if let Err(e) = held_by(&a, &[&a, &b]) {
            panic!(
                "after b's keepalived died: {e}\n{}{}",
                a.report(),
                b.report()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    if let Err(e) = served_by(&client, &a) {
        panic!(
            "after b's keepalived died: {e}\n{}{}",
            a.report(),
            b.report()
        );
    }
}
