//! Finding the real tools and binaries the integration tests drive, and
//! reading what the processes they start print.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::mpsc;
use std::time::Instant;

/// The workspace root (the folder holding the top Cargo.toml).
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// A built binary of this workspace (`airlift`, `airlift-firstboot`),
/// from the same profile as the running test. Fails with what to run if
/// it has not been built.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/<test> -> target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(|p| p.parent())
        .expect("test binary lives in target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is not built: run `cargo build --workspace` (just test does) first",
        path.display()
    );
    path
}

/// Panic with an install hint if a required tool is missing: tests never
/// skip silently.
pub fn require(tool: &str, package: &str) -> PathBuf {
    match which(tool) {
        Some(p) => p,
        None => panic!("{tool} is not installed: run `just deps` (apt-get install {package})"),
    }
}

/// Look a program up on PATH.
pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// A free TCP port on 127.0.0.1 (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding an ephemeral port on 127.0.0.1")
}

/// Run a command, panicking with its output if it fails; returns stdout.
pub fn run_ok(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed with {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every file under `dir` (recursively) with its bytes, keyed by its
/// path relative to `dir` ([`crate::firstboot::files_under`]): a snapshot
/// to compare a folder against later.
pub fn file_contents_under(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    crate::firstboot::files_under(dir)
        .into_iter()
        .map(|rel| {
            let p = dir.join(&rel);
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            (rel, bytes)
        })
        .collect()
}

/// Run a command that may fail: Ok, or its stderr (for tests that check
/// what a client says when it is refused).
pub fn run_or_stderr(cmd: &mut Command) -> Result<(), String> {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {cmd:?}: {e}"));
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The lines `child` prints on its (piped) stdout, each with when it came.
/// A thread reads them until the pipe closes, and keeps reading after the
/// receiver is dropped, so the child never writes into a closed pipe.
pub fn stdout_lines(child: &mut Child) -> mpsc::Receiver<(String, Instant)> {
    let stdout = child.stdout.take().expect("the child's stdout is piped");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send((line, Instant::now()));
        }
    });
    rx
}
