//! Milestones: one line on stdout, which is the console under the units
//! (what an operator at the screen and the QEMU tests read), and the same
//! line in the log.

/// Print `line` to stdout and log it.
pub fn milestone(line: &str) {
    println!("{line}");
    tracing::info!("{line}");
}
