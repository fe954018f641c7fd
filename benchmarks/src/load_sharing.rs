//! Part `replicas`: do replicas share the load? Three `airlift-firstboot
//! serve` instances on loopback stand for host0 and two synced replicas,
//! all serving the same image set; simulated nodes (each its own fake
//! MAC) pull the whole set from the first endpoint of their mirror order
//! and fail over to the next on an error. Two strategies, alternating:
//! everyone on host0 first (the order before spreading) and each node's
//! order from [`airlift_appliance::mirror_order::node_order`], the very
//! function host0's join endpoint uses. Reported per instance: the nodes
//! that start on it, requests and bytes it served (counted by the
//! clients, cross-checked with the bytes the server process wrote, from
//! `/proc/PID/io`), its CPU time; and each strategy's wall time.

pub mod fetch;
pub mod fleet;

use std::net::Ipv4Addr;

use airlift_appliance::mirror_order::{node_key, node_order};
use anyhow::{bail, Result};

use crate::report::Table;
use crate::settings::Settings;
use crate::stats::{median, mib, num, rounds};
use crate::Binaries;

/// Sizes of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    /// Images in the set, each one layer...
    pub images: usize,
    /// ...of this many KiB.
    pub layer_kib: usize,
    /// Simulated nodes.
    pub nodes: usize,
}

impl Sizes {
    /// The sizes (5 images of 40 MiB: 200 MiB per node, 60
    /// nodes), or tiny ones for a quick run.
    pub fn of(s: &Settings) -> Sizes {
        Sizes {
            images: 5,
            layer_kib: if s.quick { 256 } else { 40 << 10 },
            nodes: 60,
        }
    }
}

/// How nodes order the three registries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// host0 first for everyone, the replicas after it (failover only).
    AllOnHost0,
    /// Each node's own order, by rendezvous hashing on its MAC.
    Spread,
    /// [`Strategy::Spread`] with the last replica stopped: its nodes fail
    /// over to their next registry (run once, after the rounds).
    SpreadOneDown,
}

impl Strategy {
    /// Both, in the order each round runs them.
    pub const BOTH: [Strategy; 2] = [Strategy::AllOnHost0, Strategy::Spread];

    /// What the table calls it.
    pub fn label(self) -> &'static str {
        match self {
            Strategy::AllOnHost0 => "everyone on host0",
            Strategy::Spread => "spread (rendezvous on MAC)",
            Strategy::SpreadOneDown => "spread, replica 2 stopped",
        }
    }
}

/// The fake MAC of simulated node `i` (QEMU's prefix, like the VM tests).
pub fn fake_mac(i: usize) -> String {
    format!("52:54:00:b0:{:02x}:{:02x}", (i >> 8) & 0xff, i & 0xff)
}

/// Each node's order of the registries (indices into `urls`, host0
/// first there), under `strategy`.
pub fn orders(strategy: Strategy, nodes: usize, urls: &[String]) -> Vec<Vec<usize>> {
    let all: Vec<&str> = urls.iter().map(String::as_str).collect();
    (0..nodes)
        .map(|i| match strategy {
            Strategy::AllOnHost0 => (0..urls.len()).collect(),
            Strategy::Spread | Strategy::SpreadOneDown => {
                let key = node_key(Some(&fake_mac(i)), Ipv4Addr::UNSPECIFIED.into());
                node_order(&key, &all, &[])
                    .iter()
                    .filter_map(|u| urls.iter().position(|x| x == u))
                    .collect()
            }
        })
        .collect()
}

/// What one node did at each registry (indexed like the URLs).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeTally {
    pub requests: Vec<u64>,
    pub bytes: Vec<u64>,
    /// Times it gave up on a registry and went on to the next.
    pub failovers: u64,
}

/// One node's pull of `paths` (each a path and its Accept header): every
/// request goes to the node's current registry, starting with the first
/// of `order`; a registry that fails a request is left for the rest of
/// the pull and the request goes to the next. `get(registry, path,
/// accept)` returns the body's length. Fails only when every registry
/// failed one request.
pub fn pull<'a>(
    order: &[usize],
    paths: &'a [(String, Option<&'a str>)],
    registries: usize,
    mut get: impl FnMut(usize, &str, Option<&str>) -> Result<u64>,
) -> Result<NodeTally> {
    let mut t = NodeTally {
        requests: vec![0; registries],
        bytes: vec![0; registries],
        failovers: 0,
    };
    let mut at = 0;
    for (path, accept) in paths {
        loop {
            let Some(&r) = order.get(at) else {
                bail!("every registry failed {path}");
            };
            match get(r, path, *accept) {
                Ok(n) => {
                    t.requests[r] += 1;
                    t.bytes[r] += n;
                    break;
                }
                Err(_) => {
                    at += 1;
                    t.failovers += 1;
                }
            }
        }
    }
    Ok(t)
}

/// One registry's share in one run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Share {
    /// Nodes whose order starts with it.
    pub first_of: usize,
    pub requests: u64,
    /// Body bytes, as the nodes counted them.
    pub bytes: u64,
    /// Bytes the server process wrote (`/proc/PID/io` wchar), if readable.
    pub written: Option<u64>,
    /// Its CPU-seconds during the run, if readable.
    pub cpu_secs: Option<f64>,
}

/// One strategy's runs: the wall times of every round and the last
/// round's shares (bytes and requests are the same every round).
#[derive(Debug, Clone, PartialEq)]
pub struct Measured {
    pub strategy: Strategy,
    pub wall_secs: Vec<f64>,
    pub shares: Vec<Share>,
    pub failovers: u64,
}

/// A row per strategy and registry; the strategy and its wall time on
/// the first.
fn add_rows(t: &mut Table, names: &[&str], results: &[Measured]) {
    for m in results {
        for (i, (name, sh)) in names.iter().zip(&m.shares).enumerate() {
            // The stopped replica has no process to read figures from.
            let down = m.strategy == Strategy::SpreadOneDown && i + 1 == names.len();
            let server = |figure: String| if down { "stopped".to_string() } else { figure };
            t.row(vec![
                if i == 0 {
                    m.strategy.label().to_string()
                } else {
                    String::new()
                },
                (*name).to_string(),
                sh.first_of.to_string(),
                sh.requests.to_string(),
                mib(sh.bytes),
                server(sh.written.map_or_else(|| "-".to_string(), mib)),
                server(num(sh.cpu_secs)),
                if i == 0 {
                    format!("{} ({})", num(median(&m.wall_secs)), rounds(&m.wall_secs))
                } else {
                    String::new()
                },
            ]);
        }
    }
}

/// The table (pure): a row per strategy and registry, notes with the
/// sizes, host0's share and the loopback caveat.
pub fn render(names: &[&str], sizes: Sizes, set_bytes: u64, results: &[Measured]) -> Table {
    let mut t = Table::new(
        "5. Replicas share the load",
        &[
            "strategy",
            "registry",
            "nodes starting there",
            "requests",
            "MiB served (clients)",
            "MiB written (server)",
            "server CPU s",
            "wall s, all nodes done (median; rounds)",
        ],
    );
    add_rows(&mut t, names, results);
    t.note(format!(
        "{} simulated nodes (own fake MACs), each pulling {} images of {} KiB ({} MiB with manifests and \
         configs) over one keep-alive connection per registry; three `airlift-firstboot serve` on 127.0.0.1 \
         serving the same OCI layout (`--layer`). A node pulls from the first registry of its order and \
         moves to the next on an error; the spread order is `mirror_order::node_order`, the function host0's \
         join endpoint uses.",
        sizes.nodes,
        sizes.images,
        sizes.layer_kib,
        mib(set_bytes)
    ));
    let bytes = |s: Strategy| -> Option<(u64, u64, u64)> {
        let m = results.iter().find(|m| m.strategy == s)?;
        let total: u64 = m.shares.iter().map(|x| x.bytes).sum();
        let busiest = m.shares.iter().map(|x| x.bytes).max()?;
        (total > 0).then_some((m.shares.first()?.bytes, busiest, total))
    };
    if let (Some((a, _, total)), Some((b, busiest, _))) =
        (bytes(Strategy::AllOnHost0), bytes(Strategy::Spread))
    {
        let pct = |x: u64| 100.0 * x as f64 / total as f64;
        t.note(format!(
            "host0 served {} of {} MiB ({:.0}%) with everyone on it, {} MiB ({:.0}%) spread; the busiest \
             registry spread served {:.0}%. On a real network each registry's NIC carries only its share: \
             where the NICs are the limit, the whole pull takes about the busiest share of the time it takes \
             on host0 alone ({:.1}× faster by that estimate; up to n+1× with n replicas). With {} nodes a registry's \
             count varies by about ±{:.0} nodes around {:.0} from run to run (its port, so the URL hashed, \
             changes).",
            mib(a),
            mib(total),
            pct(a),
            mib(b),
            pct(b),
            pct(busiest),
            total as f64 / busiest as f64,
            sizes.nodes,
            (sizes.nodes as f64 * 2.0 / 9.0).sqrt(),
            sizes.nodes as f64 / 3.0,
        ));
    }
    let failovers = |pick: fn(Strategy) -> bool| -> u64 {
        results
            .iter()
            .filter(|m| pick(m.strategy))
            .map(|m| m.failovers)
            .sum()
    };
    t.note(format!(
        "Failovers: {} with replica 2 stopped (each node that starts there moves on once, to the next \
         registry of its own order), {} in the other runs (none expected).",
        failovers(|s| s == Strategy::SpreadOneDown),
        failovers(|s| s != Strategy::SpreadOneDown),
    ));
    t.note(
        "On loopback all three servers and the simulated nodes share the same 2 cores, so the wall-time gain \
         is small; the bytes per registry are the figure that matters. Server-side bytes are the process's \
         write count (headers included), a cross-check of the clients' count.",
    );
    t
}

/// Run the part: start the registries, run both strategies each round.
pub fn run(s: &Settings, bins: &Binaries) -> Result<Table> {
    let sizes = Sizes::of(s);
    let fleet = fleet::Fleet::start(s, bins, sizes)?;
    let mut results: Vec<Measured> = Strategy::BOTH
        .iter()
        .map(|&strategy| Measured {
            strategy,
            wall_secs: Vec::new(),
            shares: Vec::new(),
            failovers: 0,
        })
        .collect();
    for round in 0..s.rounds {
        for m in &mut results {
            eprintln!("[replicas] round {}: {}", round + 1, m.strategy.label());
            let orders = orders(m.strategy, sizes.nodes, &fleet.urls());
            let (wall, shares, failovers) = fleet.run_nodes(&orders)?;
            m.wall_secs.push(wall);
            m.shares = shares;
            m.failovers += failovers;
        }
    }
    // Last, once: replica 2 stopped, its nodes fail over.
    let mut fleet = fleet;
    fleet.stop(2);
    eprintln!("[replicas] {}", Strategy::SpreadOneDown.label());
    let orders = orders(Strategy::SpreadOneDown, sizes.nodes, &fleet.urls());
    let (wall, shares, failovers) = fleet.run_nodes(&orders)?;
    results.push(Measured {
        strategy: Strategy::SpreadOneDown,
        wall_secs: vec![wall],
        shares,
        failovers,
    });
    let names = ["host0", "replica 1", "replica 2"];
    Ok(render(&names, sizes, fleet.set_bytes(), &results))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls() -> Vec<String> {
        (1..=3)
            .map(|i| format!("http://127.0.0.1:500{i}"))
            .collect()
    }

    #[test]
    fn everyone_on_host0_or_spread_by_the_join_function() {
        let u = urls();
        let all = orders(Strategy::AllOnHost0, 60, &u);
        assert!(all.iter().all(|o| o == &[0, 1, 2]));
        let spread = orders(Strategy::Spread, 60, &u);
        let mut firsts = [0usize; 3];
        for (i, o) in spread.iter().enumerate() {
            let mut sorted = o.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, [0, 1, 2], "node {i} lists every registry once");
            let key = node_key(Some(&fake_mac(i)), Ipv4Addr::UNSPECIFIED.into());
            let urls: Vec<&str> = u.iter().map(String::as_str).collect();
            let names: Vec<&str> = o.iter().map(|&r| urls[r]).collect();
            assert_eq!(names, node_order(&key, &urls, &[]));
            firsts[o[0]] += 1;
        }
        assert!(firsts.iter().all(|&n| n >= 10), "{firsts:?}");
        assert_eq!(fake_mac(0x1ff), "52:54:00:b0:01:ff");
    }

    #[test]
    fn a_failing_registry_hands_over_to_the_next() {
        let paths: Vec<(String, Option<&str>)> = (0..4).map(|i| (format!("/p{i}"), None)).collect();
        // Registry 2 fails from the third request on.
        let mut calls = 0;
        let t = pull(&[2, 0, 1], &paths, 3, |r, _, _| {
            calls += 1;
            if r == 2 && calls >= 3 {
                bail!("down")
            }
            Ok(10 + r as u64)
        })
        .unwrap();
        assert_eq!(t.requests, [2, 0, 2]);
        assert_eq!(t.bytes, [20, 0, 24]);
        assert_eq!(t.failovers, 1);
        let e = pull(&[0, 1], &paths, 2, |_, _, _| bail!("down")).unwrap_err();
        assert!(format!("{e}").contains("/p0"), "{e}");
    }

    #[test]
    fn the_table_shows_each_registry_and_host0s_share() {
        let share = |first_of, bytes| Share {
            first_of,
            requests: 5,
            bytes,
            written: Some(bytes + 100),
            cpu_secs: Some(1.5),
        };
        let m = |strategy, shares| Measured {
            strategy,
            wall_secs: vec![2.0, 3.0, 4.0],
            shares,
            failovers: 0,
        };
        let r = [
            m(
                Strategy::AllOnHost0,
                vec![share(60, 300 << 20), share(0, 0), share(0, 0)],
            ),
            m(
                Strategy::Spread,
                vec![
                    share(20, 100 << 20),
                    share(20, 100 << 20),
                    share(20, 100 << 20),
                ],
            ),
            Measured {
                failovers: 18,
                ..m(
                    Strategy::SpreadOneDown,
                    vec![share(20, 150 << 20), share(20, 150 << 20), share(20, 0)],
                )
            },
        ];
        let sizes = Sizes {
            images: 5,
            layer_kib: 1024,
            nodes: 60,
        };
        let md = render(&["host0", "replica 1", "replica 2"], sizes, 5 << 20, &r).markdown();
        for row in [
            "| everyone on host0 | host0 | 60 | 5 | 300.0 | 300.0 | 1.50 | 3.00 (2.00 / 3.00 / 4.00) |",
            "|  | replica 2 | 0 | 5 | 0.0 | 0.0 | 1.50 |  |",
            "| spread (rendezvous on MAC) | host0 | 20 | 5 | 100.0 |",
            "| spread, replica 2 stopped | host0 | 20 | 5 | 150.0 |",
            "|  | replica 2 | 20 | 5 | 0.0 | stopped | stopped |  |",
        ] {
            assert!(md.contains(row), "no {row:?} in:\n{md}");
        }
        for note in [
            "5 images of 1024 KiB (5.0 MiB with manifests and configs)",
            "host0 served 300.0 of 300.0 MiB (100%) with everyone on it, 100.0 MiB (33%) spread; \
             the busiest registry spread served 33%",
            "(3.0× faster by that estimate;",
            "about ±4 nodes around 20",
            "Failovers: 18 with replica 2 stopped",
            "0 in the other runs",
            "same 2 cores",
        ] {
            assert!(md.contains(note), "no {note:?} in:\n{md}");
        }
    }
}
