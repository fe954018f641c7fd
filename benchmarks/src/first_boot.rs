//! Part 3: `airlift-firstboot host0` — time from start to the first
//! successful pull through its registry, and to background load complete.
//! Measured only once `host0` exists in the built binary.

use std::process::{Command, Stdio};

use crate::report::Table;
use crate::settings::Settings;
use crate::Binaries;

/// Whether the built `airlift-firstboot` has a `host0` subcommand.
pub fn host0_available(bins: &Binaries) -> bool {
    Command::new(&bins.firstboot)
        .args(["host0", "--help"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

/// Part 3's table.
pub fn run(s: &Settings, bins: &Binaries) -> Table {
    let mut t = Table::new(
        "3. First boot: airlift-firstboot host0 from a folder standing in for the media",
        &[
            "payload",
            "start → first pull (s)",
            "start → background load complete (s)",
        ],
    );
    let reason = if host0_available(bins) {
        "not yet measured: `host0` exists but this driver does not drive it yet"
    } else {
        "not yet measured: `airlift-firstboot host0` is not in this build"
    };
    for m in &s.first_boot_mib {
        t.row(vec![format!("{m} MiB"), reason.into(), reason.into()]);
    }
    t
}

/// Part 4's table: a placeholder until netboot exists.
pub fn end_to_end() -> Table {
    let mut t = Table::new(
        "4. End to end: ISO boot → host0 serving → a netbooted node pulls",
        &["measure", "figure"],
    );
    t.row(vec![
        "boot to first pull on a netbooted node".into(),
        "not yet measured (needs netboot)".into(),
    ]);
    t
}
