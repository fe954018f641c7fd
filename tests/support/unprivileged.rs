//! Running the real tools as an unprivileged user, as a CI job runs them:
//! when the tests run as root, a system user `airlift-ci` (made with
//! `useradd --system` if missing) and `setpriv` to drop to it; when they
//! already run as another user, that user.

use std::path::Path;
use std::process::Command;

use crate::tools::{require, run_ok};

/// The user the unprivileged runs use.
pub const USER: &str = "airlift-ci";

/// Who runs the commands: numeric ids, and whether we switch to them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct User {
    pub uid: u32,
    pub gid: u32,
    /// True when the tests run as root and drop to [`USER`].
    pub switch: bool,
}

fn id(flag: &str, user: Option<&str>) -> u32 {
    let mut cmd = Command::new("id");
    cmd.arg(flag);
    if let Some(u) = user {
        cmd.arg(u);
    }
    run_ok(&mut cmd).trim().parse().expect("id prints a number")
}

/// The unprivileged user, made if needed (as root).
pub fn user() -> User {
    if id("-u", None) != 0 {
        return User {
            uid: id("-u", None),
            gid: id("-g", None),
            switch: false,
        };
    }
    let exists = Command::new("id")
        .arg(USER)
        .output()
        .is_ok_and(|o| o.status.success());
    if !exists {
        let useradd = require("useradd", "passwd");
        // Two tests may race to make it; the loser finds it made (exit 9,
        // "already exists"), anything else is a failure worth its message.
        let out = Command::new(useradd)
            .args(["--system", "--user-group", "--no-create-home", "--shell"])
            .arg("/usr/sbin/nologin")
            .arg(USER)
            .output()
            .unwrap();
        assert!(
            out.status.success() || out.status.code() == Some(9),
            "useradd {USER} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    User {
        uid: id("-u", Some(USER)),
        gid: id("-g", Some(USER)),
        switch: true,
    }
}

impl User {
    /// A command running `program` as this user (no supplementary
    /// groups, no capabilities), with `HOME` set to `home`.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>, home: &Path) -> Command {
        let mut cmd = if self.switch {
            let mut c = Command::new(require("setpriv", "util-linux"));
            c.arg(format!("--reuid={}", self.uid))
                .arg(format!("--regid={}", self.gid))
                .arg("--clear-groups")
                .arg("--inh-caps=-all")
                .arg("--")
                .arg(program);
            c
        } else {
            Command::new(program)
        };
        cmd.env("HOME", home).env("USER", USER).env("LOGNAME", USER);
        cmd
    }

    /// Hand `path` (recursively) to this user.
    pub fn own(&self, path: &Path) {
        if self.switch {
            run_ok(
                Command::new("chown")
                    .arg("-R")
                    .arg(format!("{}:{}", self.uid, self.gid))
                    .arg(path),
            );
        }
    }
}
