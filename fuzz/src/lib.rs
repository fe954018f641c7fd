//! The bodies of airlift's fuzz targets, one `pub fn(&[u8])` per parser.
//!
//! Each `fuzz_targets/<target>.rs` calls the function of the same name,
//! and `tests/loopback/fuzz_corpus.rs` (in the workspace) includes this file and
//! replays every file of `fuzz/corpus/<target>/` through the same
//! functions, so `just test` checks the corpus without a fuzz build.
//! A body panics only when an invariant breaks.

use std::io::Write;
use std::path::Path;

/// One target's body.
pub type Body = fn(&[u8]);

/// The targets, by name (the directory under `fuzz/corpus/`).
pub const TARGETS: &[(&str, Body)] = &[
    ("config", config),
    ("reference", reference),
    ("registry_path", registry_path),
    ("manifest", manifest),
    ("range", range),
    ("safe_tar", safe_tar),
    ("iso", iso),
    ("htpasswd", htpasswd),
    ("netboot", netboot),
    ("join", join),
];

/// An error must not quote the input. Checked when the input holds a
/// control character (not tab or a line break): no message has one of
/// its own, raw or escaped, so finding it means the input was echoed
/// (the fuzzer cannot reach it by copying words of the message).
fn assert_not_echoed(text: &str, message: &str) {
    let marked = |c: char| c.is_control() && !matches!(c, '\t' | '\n' | '\r');
    for line in text.lines().filter(|l| l.chars().any(marked)) {
        let escaped = format!("{line:?}");
        let escaped = &escaped[1..escaped.len() - 1];
        assert!(
            !message.contains(line) && !message.contains(escaped),
            "an error echoes the input line {line:?}: {message:?}"
        );
    }
}

/// Split the input at the first NUL into two strings.
fn two_strings(data: &[u8]) -> (String, String) {
    let mut parts = data.splitn(2, |b| *b == 0);
    let a = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let b = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    (a, b)
}

/// The image config: parse, normalise (no environment), validate, and
/// the locator that places problems, over the same text.
pub fn config(data: &[u8]) {
    use airlift_builder::config::{self, locate::Locator, Origin, Purpose};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = Path::new("fuzz.yaml");
    let locator = Locator::new(text);
    for path in [
        "images",
        "images[0]",
        "images[0].ref",
        "registry",
        "netboot",
        "x.y[3].z",
    ] {
        let exact = locator.exact(path);
        let found = locator.find(path);
        if exact.is_some() {
            assert_eq!(exact, found, "find must prefer the exact position");
        }
    }
    match config::parse(text, file) {
        Err(e) => assert_not_echoed(text, &format!("{e:#}")),
        Ok(cfg) => {
            let env = |_: &str| None;
            match config::normalise(cfg, Origin::new(file, text), &env) {
                Err(e) => assert_not_echoed(text, &format!("{e:#}")),
                Ok(app) => {
                    let _ = config::validate(&app, Purpose::Build);
                    let _ = config::validate(&app, Purpose::Bundle);
                }
            }
        }
    }
}

/// Image references and digests: what parses renders to text that
/// parses back to the same value.
pub fn reference(data: &[u8]) {
    use airlift_oci::{reference, Digest, Reference};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(r) = text.parse::<Reference>() {
        let shown = r.to_string();
        let again: Reference = shown
            .parse()
            .unwrap_or_else(|e| panic!("{shown:?} (from {text:?}) does not parse back: {e}"));
        assert_eq!(again, r, "{shown:?} parses back to another reference");
        assert_eq!(again.to_string(), shown);
        let _ = r.name();
        let _ = r.manifest_reference();
    }
    if let Ok(d) = text.parse::<Digest>() {
        let shown = d.to_string();
        assert_eq!(shown.parse::<Digest>().ok(), Some(d));
    }
    let _ = reference::looks_like_host(text);
    let _ = reference::validate_registry(text);
    let _ = reference::validate_repository(text);
    let _ = reference::validate_tag(text);
}

/// The registry's request path router and the name, reference and
/// query parsers behind it.
pub fn registry_path(data: &[u8]) {
    use airlift_firstboot::services::registry::route::{self, Target};
    let (path, query) = two_strings(data);
    if let Some(target) = route::parse_path(&path) {
        let name = match &target {
            Target::Tags(n) | Target::Upload(n, _) => Some(n),
            Target::Blob(n, d) | Target::Referrers(n, d) => {
                let _ = route::parse_digest(d);
                Some(n)
            }
            Target::Manifest(n, r) => {
                let _ = route::parse_reference(r);
                Some(n)
            }
            _ => None,
        };
        if let Some(n) = name {
            assert!(path.contains(n.as_str()));
            let params = route::query_params(Some(&query));
            let ns = params
                .iter()
                .find(|(k, _)| k == "ns")
                .map(|(_, v)| v.as_str());
            if let Ok(full) = route::resolve_name(n, ns) {
                assert!(!full.contains(".."), "resolved name {full:?} climbs");
                assert!(!full.starts_with('/'), "resolved name {full:?} is absolute");
            }
        }
    }
    let _ = route::percent_decode(&query);
}

/// The manifest/index classifier, with and without a Content-Type.
pub fn manifest(data: &[u8]) {
    use airlift_firstboot::services::registry::manifest::inspect;
    for ct in [
        None,
        Some("application/vnd.oci.image.manifest.v1+json"),
        Some("application/vnd.oci.image.index.v1+json"),
        Some("application/vnd.docker.distribution.manifest.v2+json"),
    ] {
        if let Ok(i) = inspect(data, ct) {
            assert!(!i.media_type.is_empty());
        }
        // The same bytes as the builder reads them from a registry or layout.
        let _ = airlift_oci::Document::parse(data, ct);
    }
    let _ = serde_json::from_slice::<airlift_appliance::BundleManifest>(data);
}

/// `Range` for blobs: a satisfiable range lies inside the blob.
pub fn range(data: &[u8]) {
    use airlift_firstboot::services::registry::routes::parse_range;
    let (header, size) = two_strings(data);
    let size = match size.trim().parse::<u64>() {
        Ok(s) => s,
        Err(_) => data.len() as u64,
    };
    for size in [size, 0, 1, u64::MAX] {
        if let Ok(Some((start, end))) = parse_range(Some(&header), size) {
            assert!(start <= end, "{header:?} over {size}: {start}-{end}");
            assert!(end < size, "{header:?} over {size}: {start}-{end}");
        }
    }
}

fn temp_file(data: &[u8]) -> tempfile::NamedTempFile {
    let mut f = tempfile::NamedTempFile::new().expect("a temporary file");
    f.write_all(data).expect("the temporary file written");
    f
}

/// The safe tar reader over arbitrary bytes as an archive, then every
/// well-known member read; plus the name normaliser and link resolver.
pub fn safe_tar(data: &[u8]) {
    use airlift_builder::sources::safe_tar::{normalise, resolve_link, TarIndex};
    let f = temp_file(data);
    match TarIndex::open(f.path()) {
        Err(e) => {
            if let Ok(text) = std::str::from_utf8(data) {
                assert_not_echoed(text, &format!("{e:#}"));
            }
        }
        Ok(index) => {
            for name in ["index.json", "oci-layout", "manifest.json", "repositories"] {
                if index.contains(name) {
                    let _ = index.size(name);
                    let _ = index.read_member(name, 1 << 20);
                }
            }
        }
    }
    let (a, b) = two_strings(data);
    if let Ok(n) = normalise(&a) {
        assert!(
            !n.split('/').any(|c| c == ".."),
            "{a:?} normalises to {n:?}"
        );
        assert_eq!(
            normalise(&n).ok().as_ref(),
            Some(&n),
            "normalise is not idempotent"
        );
        // Link targets resolve against a normalised member's folder.
        if let Ok(r) = resolve_link(&n, &b) {
            assert!(
                !r.split('/').any(|c| c == ".." || c.is_empty()),
                "{n:?} -> {b:?} resolves to {r:?}"
            );
        }
    }
}

/// Arbitrary bytes as an ISO file: what `airlift inspect` and
/// `airlift verify` read. An odd first byte: the rest is the whole file
/// (system area, MBR and GPT included); even: the rest follows an empty
/// 32 KiB system area, so mutations land on the volume descriptors.
pub fn iso(data: &[u8]) {
    use airlift_builder::iso::{inspect, verify};
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let f = if mode & 1 == 1 {
        temp_file(rest)
    } else {
        let mut file = vec![0u8; 32 * 1024];
        file.extend_from_slice(rest);
        temp_file(&file)
    };
    if let Ok(i) = inspect::inspect(f.path()) {
        let _ = inspect::render(&i);
    }
    let _ = verify::verify(f.path());
}

/// The registry's htpasswd file: a refused line never shows its hash.
pub fn htpasswd(data: &[u8]) {
    use airlift_firstboot::services::registry::auth::parse_htpasswd;
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse_htpasswd(text) {
        Ok(users) => {
            for hash in users.values() {
                assert!(hash.starts_with("$2"));
            }
        }
        Err(e) => {
            // Users are named on purpose, hashes never: checked when no
            // user looks like a hash (no `$`, `{` or control character,
            // which no message has of its own) and a hash does.
            let msg = format!("{e:#}");
            let marked = |c: char| c == '$' || c == '{' || c.is_control();
            let fields = || text.lines().filter_map(|l| l.trim().split_once(':'));
            if fields().any(|(user, _)| user.chars().any(marked)) {
                return;
            }
            for (_, hash) in fields() {
                if hash.len() >= 8 && hash.chars().any(marked) {
                    assert!(!msg.contains(hash), "an error shows a hash: {msg:?}");
                }
            }
        }
    }
}

/// The netboot section of appliance.json, the kernel command line's
/// addresses, MACs, DHCP ranges and dnsmasq's log lines.
pub fn netboot(data: &[u8]) {
    use airlift_firstboot::services::netboot::{address, config, dnsmasq, Netboot};
    if let Ok(cfg) = serde_json::from_slice::<Option<Netboot>>(data) {
        if let Ok(cfg) = config::checked(&cfg.unwrap_or_default()) {
            for mac in ["52:54:00:12:34:56", "00:00:00:00:00:00"] {
                let _ = config::profile_for(cfg, mac);
            }
        }
    }
    let text = String::from_utf8_lossy(data);
    if let Ok(cidrs) = address::from_cmdline(&text) {
        let _ = address::network_file("eth0", &cidrs);
    }
    let _ = address::parse_cidr(&text);
    if let Ok(mac) = config::normalise_mac(&text) {
        assert_eq!(config::normalise_mac(&mac).ok().as_ref(), Some(&mac));
    }
    if let Ok((a, b)) = config::parse_range(&text) {
        let _ = (a, b);
    }
    for line in text.lines() {
        let _ = dnsmasq::parse_log_line(line);
    }
}

/// Join requests (the body of POST /join) and the joining node's
/// parameters from the kernel command line and its config file.
pub fn join(data: &[u8]) {
    use airlift_firstboot::api::join as join_api;
    use airlift_firstboot::services::{join::params, netboot};
    let _ = join_api::requested_role(data);
    let nodes = netboot::Nodes::new();
    netboot::nodes::record_join(&nodes, data, std::net::Ipv4Addr::LOCALHOST.into());
    let _ = nodes.list();
    let (cmdline, file) = two_strings(data);
    let _ = params::resolve(&cmdline, None);
    let _ = params::resolve(&cmdline, Some((&file, "/etc/airlift/join.conf")));
    let _ = join_api::token_ok("secret", Some(&cmdline));
}
