//! Part 4's breakdown (pure): where the seconds of each boot went, as
//! phases between the timeline's marks (host0: QEMU start to ready; a
//! node: DHCP to configured), and the figures systemd-analyze printed in
//! each VM once its boot had finished.

use std::collections::BTreeMap;

use anyhow::{Context, Result};

use crate::end_to_end::Mark;
use crate::report::Table;

/// Where a phase starts or ends: host0's QEMU start, or the first of some
/// events the VM reached (a node's UEFI firmware may get GRUB's config
/// instead of the iPXE script).
#[derive(Debug, Clone, Copy)]
enum At {
    QemuStart,
    Event(&'static [&'static str]),
}

/// One phase: its label, start and end.
struct Phase {
    label: &'static str,
    from: At,
    to: At,
}

const fn ev(e: &'static [&'static str]) -> At {
    At::Event(e)
}

const KERNEL: &[&str] = &["kernel running"];
const STAGE1: &[&str] = &["stage 1 started"];
const ROOT: &[&str] = &["root mounted"];
const SYSTEMD: &[&str] = &["systemd running"];
const SCRIPT: &[&str] = &["boot script", "GRUB config"];

/// The phases, in boot order; a VM gets the rows whose marks it has.
const PHASES: &[Phase] = &[
    Phase {
        label: "QEMU start → kernel running (firmware, boot loader, kernel + initrd read)",
        from: At::QemuStart,
        to: ev(KERNEL),
    },
    Phase {
        label: "DHCP → boot script (iPXE) or GRUB config",
        from: ev(&["DHCP"]),
        to: ev(SCRIPT),
    },
    Phase {
        label: "boot script → kernel running (kernel + initrd download, decompression)",
        from: ev(SCRIPT),
        to: ev(KERNEL),
    },
    Phase {
        label: "kernel running → stage 1 started",
        from: ev(KERNEL),
        to: ev(STAGE1),
    },
    Phase {
        label: "stage 1: coldplug, media search or root image download → root mounted",
        from: ev(STAGE1),
        to: ev(ROOT),
    },
    Phase {
        label: "root mounted → systemd running",
        from: ev(ROOT),
        to: ev(SYSTEMD),
    },
    Phase {
        label: "systemd running → host0 ready",
        from: ev(SYSTEMD),
        to: ev(&["ready"]),
    },
    Phase {
        label: "systemd running → join started",
        from: ev(SYSTEMD),
        to: ev(&["join started"]),
    },
    Phase {
        label: "join started → configured",
        from: ev(&["join started"]),
        to: ev(&["configured"]),
    },
    Phase {
        label: "**host0: QEMU start → ready**",
        from: At::QemuStart,
        to: ev(&["ready"]),
    },
    Phase {
        label: "**node: DHCP → configured**",
        from: ev(&["DHCP"]),
        to: ev(&["configured"]),
    },
];

/// When `vm` reached `at`.
fn when(marks: &[Mark], vm: &str, at: At, host0: &str) -> Option<f64> {
    match at {
        At::QemuStart => (vm == host0).then_some(0.0),
        At::Event(names) => names.iter().find_map(|e| {
            marks
                .iter()
                .find(|m| m.vm == vm && m.event == *e)
                .map(|m| m.seconds)
        }),
    }
}

/// The VMs of the timeline, host0 first, then in order of appearance.
fn vms(marks: &[Mark], host0: &str) -> Vec<String> {
    let mut out = vec![host0.to_string()];
    for m in marks {
        if !out.contains(&m.vm) {
            out.push(m.vm.clone());
        }
    }
    out
}

/// Seconds per phase, a column per VM (`—` where a VM lacks a mark).
pub fn phases(marks: &[Mark], host0: &str) -> Table {
    let vms = vms(marks, host0);
    let mut header = vec!["phase".to_string()];
    header.extend(vms.iter().map(|v| format!("{v} s")));
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut t = Table::new(
        "4a. Boot breakdown (QEMU TCG): seconds per phase, host-side",
        &header,
    );
    for p in PHASES {
        let cells: Vec<Option<f64>> = vms
            .iter()
            .map(|v| Some(when(marks, v, p.to, host0)? - when(marks, v, p.from, host0)?))
            .collect();
        if cells.iter().all(Option::is_none) {
            continue;
        }
        let mut row = vec![p.label.to_string()];
        // The marks are to 0.1 s: so are their differences.
        row.extend(
            cells
                .iter()
                .map(|c| c.map_or("—".into(), |x| format!("{x:.1}"))),
        );
        t.row(row);
    }
    t
}

/// `analyze` of timeline.json: per VM, the lines airlift-e2e-analyze
/// printed (`time: …`, `blame: …`, `chain: …`); empty when absent.
pub fn parse_analyze(json: &str) -> Result<BTreeMap<String, Vec<String>>> {
    let v: serde_json::Value = serde_json::from_str(json).context("timeline.json is not JSON")?;
    let Some(map) = v.get("analyze").and_then(|a| a.as_object()) else {
        return Ok(BTreeMap::new());
    };
    map.iter()
        .map(|(vm, lines)| {
            let lines = lines
                .as_array()
                .with_context(|| format!("timeline.json analyze.{vm} is not an array"))?
                .iter()
                .map(|l| {
                    l.as_str()
                        .map(str::to_string)
                        .with_context(|| format!("timeline.json analyze.{vm} holds a non-string"))
                })
                .collect::<Result<Vec<_>>>()?;
            Ok((vm.clone(), lines))
        })
        .collect()
}

/// How many of the slowest units, and critical-chain links, a row shows.
const BLAME_SHOWN: usize = 6;
const CHAIN_SHOWN: usize = 8;

/// The lines of one kind (`prefix`), without it.
fn of_kind<'a>(lines: &'a [String], prefix: &str) -> Vec<&'a str> {
    lines
        .iter()
        .filter_map(|l| l.strip_prefix(prefix))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect()
}

/// A critical-chain line without its tree drawing.
fn chain_link(line: &str) -> &str {
    line.trim_start_matches(|c: char| c.is_whitespace() || "└─│├".contains(c))
}

/// systemd-analyze's figures, a row per VM.
pub fn analyze_table(analyze: &BTreeMap<String, Vec<String>>) -> Table {
    let mut t = Table::new(
        "4b. systemd-analyze in each VM (VM clock, printed once its boot had finished)",
        &[
            "VM",
            "systemd-analyze time",
            "slowest units (blame)",
            "critical chain of airlift's unit",
        ],
    );
    for (vm, lines) in analyze {
        if lines.is_empty() {
            t.row(vec![vm.clone(), "not printed".into()]);
            continue;
        }
        let time = of_kind(lines, "time:")
            .first()
            .map(|l| l.trim_start_matches("Startup finished in ").to_string())
            .unwrap_or_else(|| "—".into());
        let blame: Vec<&str> = of_kind(lines, "blame:")
            .into_iter()
            .take(BLAME_SHOWN)
            .collect();
        let chain: Vec<&str> = of_kind(lines, "chain:")
            .into_iter()
            .map(chain_link)
            .take(CHAIN_SHOWN)
            .collect();
        t.row(vec![vm.clone(), time, blame.join(", "), chain.join(" ← ")]);
    }
    t.note(
        "`time`: kernel = kernel start to systemd (stage 1, busybox, included), userspace = systemd to the \
         end of the boot (on a node that includes the test's own pulls, which run in the boot). `@` in the \
         chain: when the unit became active after systemd started; `+`: how long it took to start.",
    );
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark(s: f64, vm: &str, e: &str) -> Mark {
        Mark {
            seconds: s,
            vm: vm.into(),
            event: e.into(),
        }
    }

    #[test]
    fn phases_are_differences_of_marks_per_vm() {
        let m = vec![
            mark(7.0, "host0", "kernel running"),
            mark(9.5, "host0", "stage 1 started"),
            mark(12.0, "host0", "root mounted"),
            mark(12.5, "host0", "systemd running"),
            mark(20.0, "host0", "ready"),
            mark(30.0, "node-a", "DHCP"),
            mark(30.2, "node-a", "GRUB config"),
            mark(40.2, "node-a", "kernel running"),
            mark(60.0, "node-a", "join started"),
            mark(62.5, "node-a", "configured"),
        ];
        let t = phases(&m, "host0");
        assert_eq!(t.header, ["phase", "host0 s", "node-a s"]);
        let row = |p: &str| {
            t.rows
                .iter()
                .find(|r| r[0].starts_with(p))
                .unwrap_or_else(|| panic!("no row {p}: {:?}", t.rows))
                .clone()
        };
        assert_eq!(row("QEMU start → kernel")[1..], ["7.0", "—"]);
        assert_eq!(row("DHCP → boot script")[1..], ["—", "0.2"]);
        assert_eq!(row("boot script → kernel")[1..], ["—", "10.0"]);
        assert_eq!(row("stage 1: coldplug")[1..], ["2.5", "—"]);
        assert_eq!(row("systemd running → host0 ready")[1..], ["7.5", "—"]);
        assert_eq!(row("join started → configured")[1..], ["—", "2.5"]);
        assert_eq!(row("**host0: QEMU start → ready**")[1..], ["20.0", "—"]);
        assert_eq!(row("**node: DHCP → configured**")[1..], ["—", "32.5"]);
        // No VM has both ends: no row.
        assert!(t
            .rows
            .iter()
            .all(|r| r[0] != "systemd running → join started"));
    }

    #[test]
    fn analyze_rows_are_compact_and_bad_json_is_named() {
        let json = r#"{"rows":[],"analyze":{"host0":[
            "time: Startup finished in 5.4s (kernel) + 11.6s (userspace) = 17.0s",
            "blame: 3.1s systemd-networkd.service", "blame: 1.2s airlift-host0.service",
            "chain: airlift-host0.service +2.6s",
            "chain: └─network.target @14.4s",
            "chain:   └─systemd-networkd.service @9.9s +4.5s"
        ],"node-a":[]}}"#;
        let a = parse_analyze(json).unwrap();
        let t = analyze_table(&a);
        assert_eq!(
            t.rows[0],
            [
                "host0",
                "5.4s (kernel) + 11.6s (userspace) = 17.0s",
                "3.1s systemd-networkd.service, 1.2s airlift-host0.service",
                "airlift-host0.service +2.6s ← network.target @14.4s ← systemd-networkd.service @9.9s +4.5s"
            ]
        );
        assert_eq!(t.rows[1][..2], ["node-a", "not printed"]);
        assert!(parse_analyze(r#"{"rows":[]}"#).unwrap().is_empty());
        let e = parse_analyze(r#"{"analyze":{"x":[1]}}"#).unwrap_err();
        assert!(format!("{e:#}").contains("analyze.x"), "{e:#}");
    }
}
