//! The whole driver in quick mode with tiny sizes: every part runs and
//! the results file holds every table with figures. Ignored by default
//! (it needs wrk, /usr/bin/time, docker-registry, skopeo, xorriso, the
//! boot base and the built binaries beside this test's profile): run it
//! with `cargo build --workspace --bins && cargo test -p airlift-bench -- --ignored`.

use std::process::Command;

#[test]
#[ignore = "runs every benchmark part (tiny sizes, ~20 s); needs wrk, time, docker-registry and `just base`"]
fn quick_run_writes_every_table() {
    let dir = tempfile::tempdir().unwrap();
    let results = dir.path().join("RESULTS.md");
    let out = Command::new(env!("CARGO_BIN_EXE_airlift-bench"))
        .env("AIRLIFT_BENCH_QUICK", "1")
        .env("AIRLIFT_BENCH_DIR", dir.path().join("work"))
        .env("AIRLIFT_BENCH_RESULTS", &results)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "airlift-bench failed:\n{stderr}");
    let doc = std::fs::read_to_string(&results).unwrap();
    for heading in [
        "### 1. Building",
        "### 2. Serving",
        "### 3. First boot",
        "### 4. End to end",
        "### 5. Replicas share the load",
    ] {
        assert!(doc.contains(heading), "no {heading:?} in:\n{doc}");
    }
    assert!(doc.contains("Quick smoke run"));
    assert!(doc.contains("not run in quick mode"));
    assert!(!doc.contains("| error |"), "a part failed:\n{doc}");
    // Every comparison produced a ratio for both sides.
    let build = doc.split("### 2.").next().unwrap();
    assert!(build.contains("`airlift build` end to end"));
    let ratio_cells = doc.matches('×').count();
    assert!(ratio_cells >= 10, "too few ratios:\n{doc}");
    assert!(!doc.contains("n/a"), "a figure is missing:\n{doc}");
    // The printed document is the written one.
    assert!(String::from_utf8_lossy(&out.stdout).contains(&doc));
}
