//! Each node's own order of registry endpoints, so that nodes spread
//! their pulls over host0 and the synced replicas instead of all pulling
//! from host0 while the replicas idle.
//!
//! Rendezvous (highest-random-weight) hashing: every (node, endpoint)
//! pair gets a weight, SHA-256 of the node's key and the endpoint, and a
//! node tries the endpoints by falling weight. So:
//!
//! - each endpoint comes first for about the same share of nodes;
//! - a node's order depends only on its key and the set of endpoints, not
//!   on the order they are listed in, the run or the platform;
//! - adding an endpoint moves only the nodes that now rank it first (about
//!   1/n of them), and never moves a node between the endpoints it had;
//!   removing one moves only the nodes that ranked it first;
//! - every endpoint stays in every order, so failover is kept.
//!
//! Both host0's join endpoint and the load-sharing benchmark call
//! [`node_order`], so the benchmark measures the order nodes really get.

use std::cmp::Reverse;
use std::net::IpAddr;

use sha2::{Digest, Sha256};

/// The key a node is ranked by: its MAC when it says one (stable across
/// DHCP leases), else its IP address. `mac` should be normalised
/// (lower-case, colon-separated) so that one machine always gets one key.
pub fn node_key(mac: Option<&str>, ip: IpAddr) -> String {
    match mac {
        Some(m) => format!("mac:{m}"),
        None => format!("ip:{}", ip.to_canonical()),
    }
}

/// The weight of `endpoint` for the node `key`: the first 8 bytes of
/// SHA-256(key, 0, endpoint), big-endian. The zero byte keeps
/// `("ab", "c")` apart from `("a", "bc")`.
pub fn weight(key: &str, endpoint: &str) -> u64 {
    let mut h = Sha256::new();
    h.update(key.as_bytes());
    h.update([0u8]);
    h.update(endpoint.as_bytes());
    let d = h.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&d[..8]);
    u64::from_be_bytes(first)
}

/// `endpoints` in the order the node `key` tries them: by falling
/// [`weight`], ties (never seen with SHA-256) by the endpoint's text;
/// duplicates dropped.
pub fn rank<'a>(key: &str, endpoints: &[&'a str]) -> Vec<&'a str> {
    let mut v: Vec<&'a str> = endpoints.to_vec();
    v.sort_unstable();
    v.dedup();
    v.sort_by_cached_key(|e| (Reverse(weight(key, e)), *e));
    v
}

/// A node's whole mirror order: `spread` (the endpoints that share the
/// load: the host0 address the node used and the synced replicas) ranked
/// for `key`, then `last` (host0's other addresses, which may sit on
/// networks the node cannot reach) in their given order. Each endpoint
/// appears once, at its first place.
pub fn node_order(key: &str, spread: &[&str], last: &[&str]) -> Vec<String> {
    let mut out: Vec<String> = rank(key, spread).into_iter().map(String::from).collect();
    for e in last {
        if !out.iter().any(|o| o == e) {
            out.push((*e).to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    const THREE: [&str; 3] = ["10.0.0.1:5000", "10.0.0.7:5000", "10.0.0.8:5000"];

    fn macs(n: usize) -> Vec<String> {
        (0..n)
            .map(|i| {
                node_key(
                    Some(&format!("52:54:00:00:{:02x}:{:02x}", i / 256, i % 256)),
                    [0u8; 4].into(),
                )
            })
            .collect()
    }

    fn firsts<'a>(keys: &[String], endpoints: &[&'a str]) -> Vec<&'a str> {
        keys.iter().map(|k| rank(k, endpoints)[0]).collect()
    }

    #[test]
    fn keys_prefer_the_mac_and_fall_back_to_the_ip() {
        let ip: IpAddr = "10.0.0.9".parse().unwrap();
        assert_eq!(
            node_key(Some("52:54:00:a1:00:01"), ip),
            "mac:52:54:00:a1:00:01"
        );
        assert_eq!(node_key(None, ip), "ip:10.0.0.9");
        let mapped: IpAddr = "::ffff:10.0.0.9".parse().unwrap();
        assert_eq!(node_key(None, mapped), "ip:10.0.0.9");
    }

    #[test]
    fn six_hundred_nodes_spread_over_three_endpoints() {
        let keys = macs(600);
        let mut count: BTreeMap<&str, usize> = BTreeMap::new();
        for f in firsts(&keys, &THREE) {
            *count.entry(f).or_default() += 1;
        }
        assert_eq!(count.len(), 3, "{count:?}");
        for (e, n) in &count {
            assert!(
                (150..=252).contains(n),
                "{e} is first for {n} of 600: {count:?}"
            );
        }
    }

    #[test]
    fn a_fourth_endpoint_moves_about_a_quarter_and_nothing_else() {
        let keys = macs(600);
        let four = [THREE[0], THREE[1], THREE[2], "10.0.0.9:5000"];
        let before = firsts(&keys, &THREE);
        let after = firsts(&keys, &four);
        let moved = before.iter().zip(&after).filter(|(b, a)| b != a).count();
        assert!((100..=200).contains(&moved), "{moved} of 600 moved");
        for (k, (b, a)) in keys.iter().zip(before.iter().zip(&after)) {
            // A key that moved, moved to the new endpoint.
            assert!(a == b || *a == four[3], "{k}: {b} -> {a}");
            // The old three keep their order for every key.
            let old: Vec<&str> = rank(k, &four)
                .into_iter()
                .filter(|e| *e != four[3])
                .collect();
            assert_eq!(old, rank(k, &THREE), "{k}");
        }
    }

    #[test]
    fn the_order_is_fixed_by_key_and_set_alone() {
        // SHA-256 values (checked with Python's hashlib): the same on
        // every run and platform.
        assert_eq!(
            weight("mac:52:54:00:a1:00:01", "10.0.0.1:5000"),
            0x7efe_a4f0_f68d_cb21
        );
        assert_ne!(weight("ab", "c"), weight("a", "bc"));
        let k = "mac:52:54:00:a1:00:01";
        let order = rank(k, &THREE);
        let mut reversed = THREE;
        reversed.reverse();
        assert_eq!(rank(k, &reversed), order);
        assert_eq!(rank(k, &[THREE[2], THREE[0], THREE[2], THREE[1]]), order);
        assert_eq!(order, ["10.0.0.8:5000", "10.0.0.7:5000", "10.0.0.1:5000"]);
    }

    #[test]
    fn every_endpoint_is_kept_and_the_last_stay_last() {
        let last = ["10.0.0.2:5000", "10.0.0.1:5000", "10.0.0.3:5000"];
        for k in macs(50) {
            let o = node_order(&k, &THREE, &last);
            assert_eq!(o.len(), 5, "{o:?}");
            let mut head: Vec<&str> = o[..3].iter().map(String::as_str).collect();
            assert_eq!(head, rank(&k, &THREE));
            head.sort_unstable();
            assert_eq!(head, THREE);
            assert_eq!(o[3..], ["10.0.0.2:5000", "10.0.0.3:5000"]);
        }
        assert_eq!(node_order("ip:1.2.3.4", &[], &last), last);
        assert_eq!(node_order("ip:1.2.3.4", &[THREE[0]], &[]), [THREE[0]]);
    }
}
