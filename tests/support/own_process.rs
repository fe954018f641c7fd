//! Running one test in a process of its own with extra environment
//! variables, for a test whose code under test reads its settings from
//! the environment. Setting them in the test binary's process would reach
//! every test running beside it (many modules share one binary), and
//! `set_var` races with threads reading the environment.

use std::process::Command;

/// In the test binary's own process: runs the test `name` (its full path,
/// `module::test`) again in a child process with `env` set, panics with
/// the child's output unless exactly that test ran and passed, and
/// returns `false`: the caller returns. In that child (every variable of
/// `env` already set): returns `true`, and the caller runs the test body.
pub fn with_env(name: &str, env: &[(&str, &str)]) -> bool {
    if env
        .iter()
        .all(|(k, v)| std::env::var(k).is_ok_and(|x| x == *v))
    {
        return true;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = Command::new(&exe)
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .envs(env.iter().copied())
        .output()
        .unwrap_or_else(|e| panic!("running {} {name}: {e}", exe.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = format!(
        "{name} in its own process with {env:?}: {}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{report}");
    assert!(stdout.contains("test result: ok. 1 passed"), "{report}");
    false
}
