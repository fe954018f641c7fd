//! The whole driver in quick mode with tiny sizes: every part runs and
//! the results file holds every table with figures. Ignored by default
//! (it needs /usr/bin/time, docker-registry, distribution v3 from
//! ../shared/peers/build.sh, skopeo, xorriso, the boot base and the
//! built binaries beside this test's profile): run it
//! with `cargo build --workspace --bins && cargo test -p airlift-bench -- --ignored`.

use std::process::Command;

#[test]
#[ignore = "runs every benchmark part (tiny sizes, ~1 min); needs time, docker-registry, distribution v3 and `just base`"]
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
        "### 2b. Node start",
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
    // Serving: three registries, plain and TLS rows, a verified handshake
    // with each, and every node of the node-start runs done.
    let serving = doc.split("### 2. Serving").nth(1).unwrap();
    let serving = serving.split("### 3.").next().unwrap();
    for cell in ["| distribution v3.1.1 |", "| plain |", "| TLS |"] {
        assert!(serving.contains(cell), "no {cell:?} in:\n{serving}");
    }
    let negotiated = serving
        .lines()
        .find(|l| l.starts_with("- TLS negotiated:"))
        .unwrap();
    assert_eq!(negotiated.matches("TLSv1_").count(), 3, "{negotiated}");
    let nodes = serving.split("### 2b.").nth(1).unwrap();
    let node_rows: Vec<&str> = nodes
        .lines()
        .filter(|l| l.starts_with("| plain |") || l.starts_with("| TLS |"))
        .collect();
    assert_eq!(node_rows.len(), 6, "{nodes}");
    for r in node_rows {
        assert_eq!(r.split(" | ").nth(7), Some("0"), "failed nodes in {r}");
    }
    // The printed document is the written one.
    assert!(String::from_utf8_lossy(&out.stdout).contains(&doc));
}
