//! Pure checks of single values: names, labels, addresses. Each returns
//! what is wrong and what would be valid.

use std::net::Ipv4Addr;

/// A DNS label: 1 to 63 of `a-z`, `0-9` and `-`, not starting or ending with `-`.
pub fn dns_label(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a DNS label: use 1 to 63 lowercase letters, digits and '-', \
             not starting or ending with '-'"
        ))
    }
}

/// A media type as an artifact type is written: `type/subtype`, each a
/// restricted name of RFC 6838 (a letter or digit, then up to 126 of
/// letters, digits and `!#$&-^_.+`), no parameters
/// (`application/spdx+json`).
pub fn media_type(s: &str) -> Result<(), String> {
    let name = |p: &str| {
        let b = p.as_bytes();
        !b.is_empty()
            && b.len() <= 127
            && b[0].is_ascii_alphanumeric()
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(c))
    };
    match s.split_once('/') {
        Some((t, sub)) if name(t) && name(sub) => Ok(()),
        _ => Err(format!(
            "{s:?} is not a media type: write type/subtype, such as application/spdx+json or \
             application/vnd.dev.cosign.simplesigning.v1+json"
        )),
    }
}

/// A host name: DNS labels joined by `.`, at most 253 characters.
pub fn hostname(s: &str) -> Result<(), String> {
    if s.is_empty() || s.len() > 253 || s.split('.').any(|l| dns_label(l).is_err()) {
        return Err(format!(
            "{s:?} is not a host name: use DNS labels (lowercase letters, digits, '-') joined by '.'"
        ));
    }
    Ok(())
}

/// A platform: `os/architecture[/variant]`, lowercase (`linux/arm64/v8`).
pub fn platform(s: &str) -> Result<(), String> {
    let parts: Vec<&str> = s.split('/').collect();
    let part_ok = |p: &&str| {
        !p.is_empty()
            && p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
    };
    if (2..=3).contains(&parts.len()) && parts.iter().all(part_ok) {
        Ok(())
    } else {
        Err(format!(
            "platform {s:?} is not os/architecture[/variant], e.g. linux/amd64 or linux/arm64/v8"
        ))
    }
}

/// An ISO 9660 volume label as airlift writes it: 1 to 32 of `A-Z`, `0-9`, `_`.
pub fn volume_label(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 32
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "volume label {s:?} must be 1 to 32 characters of A-Z, 0-9 and _ (e.g. AIRLIFT_DEMO)"
        ))
    }
}

/// A MAC address `aa:bb:cc:dd:ee:ff` (either case); returns it lowercased.
pub fn mac(s: &str) -> Result<String, String> {
    let parts: Vec<&str> = s.split(':').collect();
    let ok = parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
    if ok {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(format!(
            "{s:?} is not a MAC address: write six hex pairs separated by ':', e.g. 52:54:00:12:34:56"
        ))
    }
}

/// A DHCP range `FIRST-LAST` of IPv4 addresses, first not after last.
pub fn dhcp_range(s: &str) -> Result<(Ipv4Addr, Ipv4Addr), String> {
    let bad = || {
        format!(
            "range {s:?} is not FIRST-LAST with two IPv4 addresses, first not after last \
             (e.g. 10.44.0.100-10.44.0.200)"
        )
    };
    let (a, b) = s.split_once('-').ok_or_else(bad)?;
    let a: Ipv4Addr = a.trim().parse().map_err(|_| bad())?;
    let b: Ipv4Addr = b.trim().parse().map_err(|_| bad())?;
    if a > b {
        return Err(bad());
    }
    Ok((a, b))
}

/// A mirror base URL: `http://` or `https://`, a host with optional
/// `:port`, and an optional path.
pub fn mirror_url(s: &str) -> Result<(), String> {
    let bad = |why: &str| {
        format!(
            "mirror {s:?} {why}; write a base URL like https://mirror.example:5000 \
             or http://127.0.0.1:5000/docker.io"
        )
    };
    let rest = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .ok_or_else(|| bad("does not start with http:// or https://"))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let host_ok = match host.strip_prefix('[') {
        // An IPv6 literal: [::1] or [::1]:5000.
        Some(v6) => v6.split_once(']').is_some_and(|(addr, port)| {
            addr.parse::<std::net::Ipv6Addr>().is_ok()
                && (port.is_empty()
                    || port
                        .strip_prefix(':')
                        .is_some_and(|p| p.parse::<u16>().is_ok()))
        }),
        None => {
            airlift_oci::reference::validate_registry(host).is_ok()
                && host
                    .rsplit_once(':')
                    .is_none_or(|(_, port)| port.parse::<u16>().is_ok())
        }
    };
    if !host_ok {
        return Err(bad("has no valid host[:port]"));
    }
    if path
        .chars()
        .any(|c| c.is_whitespace() || c == '?' || c == '#')
    {
        return Err(bad("has white space, a query or a fragment in its path"));
    }
    Ok(())
}

/// A network interface name (Linux: 1 to 15 characters, no `/`, `:` or space).
pub fn interface(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.len() <= 15
        && s != "."
        && s != ".."
        && !s.chars().any(|c| c == '/' || c == ':' || c.is_whitespace());
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not an interface name: 1 to 15 characters without '/', ':' or spaces (e.g. eth0)"
        ))
    }
}

/// A kernel module name: letters, digits, `_` and `-`.
pub fn module_name(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{s:?} is not a module name: letters, digits, '_' and '-' without .ko (e.g. virtio_blk)"
        ))
    }
}

/// A path inside the ISO: relative, `/`-separated, no empty, `.` or `..` parts.
pub fn iso_path(s: &str) -> Result<(), String> {
    let ok = !s.is_empty()
        && !s.starts_with('/')
        && s.split('/').all(|p| !p.is_empty() && p != "." && p != "..")
        && !s.chars().any(char::is_control);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "ISO path {s:?} must be relative, like docs/README.txt, without empty, '.' or '..' parts"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_names() {
        assert!(dns_label("demo-1").is_ok());
        for bad in ["", "Demo", "-a", "a-", "a_b", &"a".repeat(64)] {
            assert!(dns_label(bad).is_err(), "{bad}");
        }
        assert!(hostname("node-1.lab").is_ok());
        assert!(hostname("node..lab").is_err());
        assert!(volume_label("AIRLIFT_DEMO").is_ok());
        for bad in ["", "airlift", "A-B", &"A".repeat(33)] {
            assert!(volume_label(bad).is_err(), "{bad}");
        }
        assert!(volume_label(&"A".repeat(32)).is_ok());
        assert!(interface("enp0s3").is_ok());
        assert!(interface("a/b").is_err());
        assert!(interface("sixteen-chars-xx").is_err());
        assert!(module_name("virtio_blk").is_ok());
        assert!(module_name("virtio_blk.ko").is_err());
    }

    #[test]
    fn media_types() {
        for ok in [
            "application/spdx+json",
            "application/vnd.dev.cosign.simplesigning.v1+json",
            "text/spdx",
        ] {
            assert!(media_type(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "spdx",
            "/json",
            "application/",
            "a/b/c",
            "application/spdx+json; v=1",
        ] {
            let e = media_type(bad).unwrap_err();
            assert!(e.contains("is not a media type"), "{e}");
        }
    }

    #[test]
    fn platforms() {
        for ok in ["linux/amd64", "linux/arm64/v8", "linux/ppc64le"] {
            assert!(platform(ok).is_ok(), "{ok}");
        }
        for bad in [
            "linux",
            "linux/",
            "Linux/amd64",
            "linux/arm64/v8/x",
            "/amd64",
        ] {
            assert!(platform(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn macs() {
        assert_eq!(mac("52:54:00:AB:cd:01").unwrap(), "52:54:00:ab:cd:01");
        for bad in [
            "52:54:00:ab:cd",
            "52-54-00-ab-cd-01",
            "52:54:00:ab:cd:0g",
            "5254.00ab.cd01",
        ] {
            assert!(mac(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ranges() {
        assert!(dhcp_range("10.0.0.10-10.0.0.20").is_ok());
        assert!(dhcp_range("10.0.0.10 - 10.0.0.10").is_ok());
        for bad in [
            "10.0.0.20-10.0.0.10",
            "10.0.0.10",
            "10.0.0.300-10.0.0.301",
            "a-b",
        ] {
            assert!(dhcp_range(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn mirror_urls() {
        for ok in [
            "https://mirror.example:5000",
            "http://127.0.0.1:5000/docker.io",
            "http://[::1]:5000",
            "https://localhost",
        ] {
            assert!(mirror_url(ok).is_ok(), "{ok}");
        }
        for bad in [
            "mirror.example",
            "ftp://mirror.example",
            "https://",
            "https://bad host",
            "https://a.example:99999",
            "https://a.example/x?y",
            "http://[::1",
        ] {
            assert!(mirror_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn iso_paths() {
        assert!(iso_path("docs/README.txt").is_ok());
        for bad in ["", "/abs", "a//b", "../x", "a/./b"] {
            assert!(iso_path(bad).is_err(), "{bad}");
        }
    }
}
