//! The node-start runs as the results table: per transport and registry
//! the median wall time, MB/s, requests/s and server CPU-seconds per GB
//! moved, and each registry's CPU per GB against airlift's. Pure.

use super::node_start::{NodeRow, NodeRun};
use crate::report::Table;
use crate::servers::Kind;
use crate::stats::{median, num, ratio, rounds};

/// What the title says.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub nodes: usize,
    pub images: usize,
    pub rounds: usize,
}

fn mb_per_s(r: &NodeRun) -> f64 {
    r.bytes as f64 / 1e6 / r.wall_seconds
}

fn requests_per_s(r: &NodeRun) -> f64 {
    r.requests as f64 / r.wall_seconds
}

/// Server CPU-seconds per 10⁹ bytes moved (`None` when nothing moved).
fn cpu_per_gb(r: &NodeRun) -> Option<f64> {
    (r.bytes > 0).then(|| r.cpu_seconds / (r.bytes as f64 / 1e9))
}

/// The node-start table.
pub fn table(shape: Shape, rows: &[NodeRow]) -> Table {
    let mut t = Table::new(
        &format!(
            "2b. Node start on loopback: {} nodes at once, each on its own connection pulling {} images \
             (index by tag, amd64 manifest by digest, config, layers), median of {} rounds",
            shape.nodes, shape.images, shape.rounds
        ),
        &[
            "transport",
            "registry",
            "wall time (s)",
            "MB/s",
            "requests/s",
            "server CPU-s per GB",
            "CPU per GB ÷ airlift's",
            "failed nodes",
            "MB per run",
            "rounds (wall s)",
        ],
    );
    for row in rows {
        let airlift = rows
            .iter()
            .find(|r| r.transport == row.transport && r.kind == Kind::Airlift)
            .and_then(|r| median(&r.runs.iter().filter_map(cpu_per_gb).collect::<Vec<_>>()));
        let walls: Vec<f64> = row.runs.iter().map(|r| r.wall_seconds).collect();
        let cpu = median(&row.runs.iter().filter_map(cpu_per_gb).collect::<Vec<_>>());
        let mb = median(
            &row.runs
                .iter()
                .map(|r| r.bytes as f64 / 1e6)
                .collect::<Vec<_>>(),
        );
        t.row(vec![
            row.transport.name().into(),
            row.kind.name().into(),
            num(median(&walls)),
            num(median(&row.runs.iter().map(mb_per_s).collect::<Vec<_>>())),
            num(median(
                &row.runs.iter().map(requests_per_s).collect::<Vec<_>>(),
            )),
            num(cpu),
            if row.kind == Kind::Airlift {
                String::new()
            } else {
                ratio(cpu, airlift)
            },
            row.runs.iter().map(|r| r.errors).sum::<u64>().to_string(),
            num(mb),
            rounds(&walls),
        ]);
    }
    t.note(
        "Every node opens one kept-alive connection and, for each image in turn, does what containerd does \
         at boot: GET the index by tag (Accept: the Docker and OCI manifest and index types, */*), GET the \
         linux/amd64 manifest by digest, GET the config blob, then each layer it has not fetched yet (Accept: \
         the descriptor's media type, */*). Images share one base layer, fetched once per node. All nodes \
         start together; the wall time ends when the last is done. Same load client, content, storage and \
         TLS setup as table 2.",
    );
    t.note(
        "Server CPU-s per GB: the server process's user + system CPU time during the run (/proc/PID/stat) \
         per 10⁹ body bytes moved; the last-but-one column is that cost divided by airlift's (above 1: the \
         registry spends more CPU than airlift for the same bytes).",
    );
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serving::steady::Transport;

    fn run(wall_seconds: f64, bytes: u64, requests: u64, errors: u64, cpu_seconds: f64) -> NodeRun {
        NodeRun {
            wall_seconds,
            bytes,
            requests,
            errors,
            cpu_seconds,
        }
    }

    #[test]
    fn rows_show_medians_and_cost_against_airlift() {
        let rows = [
            NodeRow {
                transport: Transport::Tls,
                kind: Kind::Airlift,
                runs: vec![
                    run(2.0, 2_000_000_000, 1000, 0, 1.0),
                    run(4.0, 2_000_000_000, 1000, 0, 1.2),
                ],
            },
            NodeRow {
                transport: Transport::Tls,
                kind: Kind::Distribution,
                runs: vec![run(5.0, 2_000_000_000, 1000, 1, 3.3)],
            },
            NodeRow {
                transport: Transport::Plain,
                kind: Kind::Distribution,
                runs: vec![run(1.0, 0, 0, 24, 0.5)],
            },
        ];
        let shape = Shape {
            nodes: 24,
            images: 6,
            rounds: 2,
        };
        let md = table(shape, &rows).markdown();
        assert!(md.starts_with(
            "### 2b. Node start on loopback: 24 nodes at once, each on its own connection pulling 6 images \
             (index by tag, amd64 manifest by digest, config, layers), median of 2 rounds\n\n\
             | transport | registry | wall time (s) | MB/s | requests/s | server CPU-s per GB | \
             CPU per GB ÷ airlift's | failed nodes | MB per run | rounds (wall s) |\n"
        ), "{md}");
        // Medians: wall 3.0; MB/s of 1000 and 500 → 750; requests/s 500
        // and 250 → 375; CPU per GB 0.5 and 0.6 → 0.55.
        assert!(
            md.contains(
                "| TLS | airlift | 3.00 | 750 | 375 | 0.550 |  | 0 | 2000 | 2.00 / 4.00 |\n"
            ),
            "{md}"
        );
        assert!(md.contains("| TLS | distribution v3.1.1 | 5.00 | 400 | 200 | 1.65 | 3.00× | 1 | 2000 | 5.00 |\n"), "{md}");
        // Nothing moved: no cost figure, no ratio (and no airlift row).
        assert!(md.contains("| plain | distribution v3.1.1 | 1.00 | 0.000 | 0.000 | n/a | n/a | 24 | 0.000 | 1.00 |\n"), "{md}");
        assert!(md.contains("the Docker and OCI manifest and index types, */*"));
    }
}
