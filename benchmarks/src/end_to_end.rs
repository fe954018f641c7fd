//! Part 4: the netboot end-to-end test's timeline. Runs exactly what
//! `just e2e` runs (host0 from the ISO, a BIOS and a UEFI node netbooting
//! from it, joining and pulling through its mirror, all under QEMU TCG),
//! then reads the timeline the test writes
//! (`target/test-output/e2e-netboot/timeline.json`: host-side seconds of
//! marker lines in each VM's serial log, from host0's QEMU start).
//! Figures only: nothing passes or fails on time.

use std::fs::File;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{bail, Context, Result};

use crate::report::Table;
use crate::settings::Settings;
use crate::stats::num;

/// Where `tests/vm/e2e_netboot.rs` writes its timeline, under the workspace.
pub const TIMELINE: &str = "target/test-output/e2e-netboot/timeline.json";

/// The events of the timeline, in the order a boot reaches them.
pub const EVENTS: &[&str] = &[
    "kernel running",
    "stage 1 started",
    "root mounted",
    "systemd running",
    "ready",
    "netboot ready",
    "DHCP",
    "boot script",
    "GRUB config",
    "join started",
    "configured",
    "image resolved",
    "first skopeo pull",
];

/// The VM whose QEMU start is time zero.
pub const HOST0: &str = "host0";

/// One row of timeline.json.
#[derive(Debug, Clone, PartialEq)]
pub struct Mark {
    pub seconds: f64,
    pub vm: String,
    pub event: String,
}

/// Parse timeline.json's `rows`.
pub fn parse(json: &str) -> Result<Vec<Mark>> {
    let v: serde_json::Value = serde_json::from_str(json).context("timeline.json is not JSON")?;
    let rows = v
        .get("rows")
        .and_then(|r| r.as_array())
        .context("timeline.json has no `rows` array")?;
    rows.iter()
        .enumerate()
        .map(|(i, r)| {
            let field = |k: &str| {
                r.get(k)
                    .with_context(|| format!("timeline.json rows[{i}] has no `{k}`"))
            };
            Ok(Mark {
                seconds: field("seconds")?
                    .as_f64()
                    .with_context(|| format!("timeline.json rows[{i}].seconds is not a number"))?,
                vm: field("vm")?
                    .as_str()
                    .with_context(|| format!("timeline.json rows[{i}].vm is not a string"))?
                    .to_string(),
                event: field("event")?
                    .as_str()
                    .with_context(|| format!("timeline.json rows[{i}].event is not a string"))?
                    .to_string(),
            })
        })
        .collect()
}

/// When `vm` reached `event`.
fn at(marks: &[Mark], vm: &str, event: &str) -> Option<f64> {
    marks
        .iter()
        .find(|m| m.vm == vm && m.event == event)
        .map(|m| m.seconds)
}

/// The latest time any node (every VM but host0) reached `event`; `None`
/// if a node never did.
pub fn last_node(marks: &[Mark], nodes: &[String], event: &str) -> Option<f64> {
    if nodes.is_empty() {
        return None;
    }
    nodes
        .iter()
        .map(|n| at(marks, n, event))
        .try_fold(0f64, |acc, t| t.map(|t| acc.max(t)))
}

/// The table: one row per event, a column per VM, and the latest node.
pub fn table(marks: &[Mark]) -> Table {
    let mut nodes: Vec<String> = Vec::new();
    for m in marks {
        if m.vm != HOST0 && !nodes.contains(&m.vm) {
            nodes.push(m.vm.clone());
        }
    }
    let mut header = vec!["event".to_string(), format!("{HOST0} s")];
    header.extend(nodes.iter().map(|n| format!("{n} s")));
    header.push("last node s".to_string());
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut t = Table::new(
        "4. End to end (netboot, QEMU TCG): seconds after host0's QEMU start",
        &header,
    );
    let cell = |x: Option<f64>| x.map_or("—".to_string(), |x| num(Some(x)));
    let mut events: Vec<&str> = EVENTS.to_vec();
    for m in marks {
        if !events.contains(&m.event.as_str()) {
            events.push(&m.event);
        }
    }
    for e in events {
        let mut row = vec![e.to_string(), cell(at(marks, HOST0, e))];
        row.extend(nodes.iter().map(|n| cell(at(marks, n, e))));
        row.push(cell(last_node(marks, &nodes, e)));
        t.row(row);
    }
    for (what, event) in [
        ("**host0 boot → last node configured**", "configured"),
        ("**host0 boot → last first pull**", "first skopeo pull"),
    ] {
        let mut row = vec![what.to_string()];
        row.resize(header.len() - 1, String::new());
        row.push(match last_node(marks, &nodes, event) {
            Some(x) => num(Some(x)),
            None => "not reached".to_string(),
        });
        t.row(row);
    }
    t
}

/// Run `just e2e` from `root`, then tabulate its timeline, the phases of
/// each boot and systemd-analyze's figures from the VMs. The images carry
/// `firstboot` (the release build, as an appliance ships; `just e2e`
/// alone puts the debug build in).
pub fn run(s: &Settings, root: &Path, firstboot: &Path) -> Result<Vec<Table>> {
    let just = crate::measure::require("just", "just (cargo install just)")?;
    let dir = s.work_dir.join("e2e");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let log_path = dir.join("just-e2e.log");
    let timeline = root.join(TIMELINE);
    match std::fs::remove_file(&timeline) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing {}", timeline.display())),
    }
    let load_before = crate::load_average();
    eprintln!(
        "[e2e] running `just e2e` (cargo test -p airlift-integration --test vm -- e2e_netboot:: --nocapture; \
         ~10 min under TCG); log: {}",
        log_path.display()
    );
    let log =
        File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
    let start = Instant::now();
    let status = Command::new(&just)
        .arg("e2e")
        .env("AIRLIFT_FIRSTBOOT", firstboot)
        .current_dir(root)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .status()
        .with_context(|| format!("starting {} e2e", just.display()))?;
    let wall = start.elapsed().as_secs_f64();
    let load_after = crate::load_average();
    eprintln!("[e2e] done in {wall:.0}s ({status})");
    let text = std::fs::read_to_string(&timeline).with_context(|| {
        format!(
            "`just e2e` ({status}) wrote no {}; see {}",
            timeline.display(),
            log_path.display()
        )
    })?;
    let marks = parse(&text)?;
    let mut t = table(&marks);
    t.note(
        "Under TCG (QEMU software emulation, `-accel tcg`: this machine's /dev/kvm cannot boot a stock kernel) \
         on 2 host cores shared by all three VMs (`-smp 1` each) and by other work: these are emulation \
         figures, many times slower than hardware. Times are host-side (when each marker line showed up in the \
         VM's serial log, polled every 0.2 s) from host0's QEMU start; the BIOS node starts when host0 is \
         netboot-ready and the UEFI node after it, as the test runs them.",
    );
    t.note(format!(
        "Command: `just e2e` (= `cargo test -p airlift-integration --test vm -- e2e_netboot:: --nocapture` after \
         `just deps base build`) with `AIRLIFT_FIRSTBOOT={}` (the VMs run the release `airlift-firstboot`, \
         as an appliance ships it), {wall:.0} s wall in all including the build; load average (1/5/15 min) \
         before: {load_before}, after: {load_after}. Rows: {TIMELINE}; log: {}.",
        firstboot.display(),
        log_path.display()
    ));
    if !status.success() {
        bail!(
            "`just e2e` failed ({status}); its timeline so far:\n{}\nsee {}",
            t.markdown(),
            log_path.display()
        );
    }
    let analyze = crate::boot_breakdown::parse_analyze(&text)?;
    Ok(vec![
        t,
        crate::boot_breakdown::phases(&marks, HOST0),
        crate::boot_breakdown::analyze_table(&analyze),
    ])
}

/// The table when part 4 was not run.
pub fn skipped(why: &str) -> Table {
    let mut t = Table::new(
        "4. End to end (netboot, QEMU TCG): seconds after host0's QEMU start",
        &["measure", "figure"],
    );
    t.row(vec!["host0 boot → last node configured".into(), why.into()]);
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"{"clock":"x","rows":[
        {"seconds":20.1,"vm":"host0","event":"ready"},
        {"seconds":21.0,"vm":"host0","event":"netboot ready"},
        {"seconds":30.5,"vm":"node-bios","event":"DHCP"},
        {"seconds":80.0,"vm":"node-bios","event":"configured"},
        {"seconds":95.0,"vm":"node-uefi","event":"configured"},
        {"seconds":90.0,"vm":"node-bios","event":"first skopeo pull"}
    ],"netbootFiles":[]}"#;

    #[test]
    fn parses_rows_and_names_bad_fields() {
        let m = parse(SAMPLE).unwrap();
        assert_eq!(m.len(), 6);
        assert_eq!(
            m[2],
            Mark {
                seconds: 30.5,
                vm: "node-bios".into(),
                event: "DHCP".into()
            }
        );
        let e = parse(r#"{"rows":[{"seconds":"x","vm":"a","event":"b"}]}"#).unwrap_err();
        assert!(format!("{e:#}").contains("rows[0].seconds"), "{e:#}");
        assert!(parse("{}").is_err());
    }

    #[test]
    fn table_has_a_column_per_vm_and_the_last_node() {
        let m = parse(SAMPLE).unwrap();
        let t = table(&m);
        assert_eq!(
            t.header,
            [
                "event",
                "host0 s",
                "node-bios s",
                "node-uefi s",
                "last node s"
            ]
        );
        let row = |name: &str| t.rows.iter().find(|r| r[0] == name).unwrap().clone();
        assert_eq!(row("ready")[1], "20.1");
        assert_eq!(row("configured")[2..], ["80.0", "95.0", "95.0"]);
        // The UEFI node never pulled: no "last" figure.
        assert_eq!(row("first skopeo pull")[2..], ["90.0", "—", "—"]);
        assert_eq!(row("**host0 boot → last node configured**")[4], "95.0");
        assert_eq!(row("**host0 boot → last first pull**")[4], "not reached");
        assert!(t.markdown().contains("| DHCP | — | 30.5 | — | — |"));
    }
}
