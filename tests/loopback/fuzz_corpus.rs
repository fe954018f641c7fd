//! Replays every input of `fuzz/corpus/<target>/` and `fuzz/regressions/<target>/`
//! through the fuzz targets' bodies (`fuzz/src/lib.rs`, included here), so
//! `just test` checks them in seconds without a sanitizer or nightly build.
//! `just fuzz` runs the targets themselves.

#[allow(dead_code)]
#[path = "../../fuzz/src/lib.rs"]
mod bodies;

use std::path::Path;

fn replay(kind: &str) -> usize {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz")
        .join(kind);
    let mut total = 0;
    for (target, body) in bodies::TARGETS {
        let dir = root.join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut files: Vec<_> = entries.map(|e| e.expect("a corpus entry").path()).collect();
        files.sort();
        for file in files {
            let data = std::fs::read(&file).expect("a corpus file");
            let outcome = std::panic::catch_unwind(|| body(&data));
            assert!(outcome.is_ok(), "{target}: {} panics", file.display());
            total += 1;
        }
    }
    total
}

#[test]
fn corpus_replays_without_panic() {
    let n = replay("corpus");
    assert!(n > 0, "no corpus under fuzz/corpus");
}

#[test]
fn regressions_replay_without_panic() {
    replay("regressions");
}

#[test]
fn every_target_has_a_corpus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    for (target, _) in bodies::TARGETS {
        let dir = root.join(target);
        let n = std::fs::read_dir(&dir).map(|d| d.count()).unwrap_or(0);
        assert!(n > 0, "{} is empty", dir.display());
    }
}
