//! Starting keepalived with systemd, or reloading it after a config change.

use std::path::Path;
use std::process::Command;

use anyhow::{bail, Context, Result};

/// The systemd unit of Debian's keepalived package.
pub const UNIT: &str = "keepalived.service";

/// What became of the keepalived service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Service {
    /// Enabled and started (`systemctl enable --now`).
    Started,
    /// Running; reloaded to read the new config.
    Reloaded,
    /// Running with this config already.
    Running,
    /// keepalived is not installed under the root.
    NotInstalled,
    /// Installed, but not started, for the reason given (no systemd, or
    /// the root is not the running system's).
    NotStarted(String),
}

/// What to ask systemd for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    EnableNow,
    Reload,
    Nothing,
}

/// The action for a unit that is (or is not) `active`, after a config
/// that `changed` (or not) (pure).
pub fn plan(active: bool, changed: bool) -> Action {
    match (active, changed) {
        (false, _) => Action::EnableNow,
        (true, true) => Action::Reload,
        (true, false) => Action::Nothing,
    }
}

/// Bring keepalived under `root` in line with its config (see [`plan`]).
/// systemd is asked only when `root` is `/` and systemd runs there.
pub fn ensure(root: &Path, changed: bool) -> Result<Service> {
    if !root.join(super::KEEPALIVED_BINARY).is_file() {
        return Ok(Service::NotInstalled);
    }
    let is_system_root = std::fs::canonicalize(root).is_ok_and(|p| p == Path::new("/"));
    if !is_system_root {
        return Ok(Service::NotStarted(format!(
            "{} is not the running system's root",
            root.display()
        )));
    }
    if !Path::new("/run/systemd/system").is_dir() {
        return Ok(Service::NotStarted("systemd is not running".into()));
    }
    let active = Command::new("systemctl")
        .args(["is-active", "--quiet", UNIT])
        .status()
        .context("running systemctl is-active (is systemd installed?)")?
        .success();
    Ok(match plan(active, changed) {
        Action::EnableNow => {
            systemctl(&["enable", "--now", UNIT])?;
            Service::Started
        }
        Action::Reload => {
            systemctl(&["reload", UNIT])?;
            Service::Reloaded
        }
        Action::Nothing => Service::Running,
    })
}

fn systemctl(args: &[&str]) -> Result<()> {
    let out = Command::new("systemctl")
        .args(args)
        .output()
        .with_context(|| format!("running systemctl {}", args.join(" ")))?;
    if !out.status.success() {
        bail!(
            "systemctl {} failed ({}): {}; see journalctl -u {UNIT}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans() {
        assert_eq!(plan(false, false), Action::EnableNow);
        assert_eq!(plan(false, true), Action::EnableNow);
        assert_eq!(plan(true, true), Action::Reload);
        assert_eq!(plan(true, false), Action::Nothing);
    }

    #[test]
    fn not_installed_or_another_root() {
        let root = tempfile::tempdir().unwrap();
        assert_eq!(ensure(root.path(), true).unwrap(), Service::NotInstalled);
        let bin = root.path().join(super::super::KEEPALIVED_BINARY);
        std::fs::create_dir_all(bin.parent().unwrap()).unwrap();
        std::fs::write(&bin, "").unwrap();
        let Service::NotStarted(why) = ensure(root.path(), true).unwrap() else {
            panic!()
        };
        assert!(why.contains("not the running system's root"), "{why}");
    }
}
