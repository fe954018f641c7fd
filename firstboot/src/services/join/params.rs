//! Where a joining node learns host0's address and the join token: the
//! kernel command line (`airlift.server= airlift.token= airlift.ca=
//! airlift.mac=`, put there by host0's iPXE script) and, for machines
//! installed by other means, `/etc/airlift/join.conf` (`key=value`
//! lines with the same keys, with or without the `airlift.` prefix; `#`
//! comments). The command line wins over the file for each key. Pure.

use anyhow::{bail, Context, Result};

use crate::services::mirrors::Endpoint;

/// The file's path on a node.
pub const CONF_PATH: &str = "/etc/airlift/join.conf";

/// What `join` needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinParams {
    /// host0's registry (and join endpoint), `https://HOST:PORT`.
    pub server: Endpoint,
    /// The appliance's join token.
    pub token: String,
    /// `sha256:<hex>` the CA must have, when known.
    pub ca_pin: Option<String>,
    /// This machine's MAC, reported to host0's node table.
    pub mac: Option<String>,
}

/// `(key, value)` pairs of a command line (`airlift.` keys only, prefix removed).
fn cmdline_pairs(cmdline: &str) -> Vec<(String, String)> {
    cmdline
        .split_whitespace()
        .filter_map(|w| {
            let (k, v) = w.split_once('=')?;
            Some((k.strip_prefix("airlift.")?.to_string(), v.to_string()))
        })
        .collect()
}

/// `(key, value)` pairs of a join.conf; `origin` names it in errors.
fn file_pairs(text: &str, origin: &str) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            bail!("{origin}:{}: {line:?} is not key=value", i + 1);
        };
        let k = k.trim();
        let k = k.strip_prefix("airlift.").unwrap_or(k);
        let v = v.trim().trim_matches('"');
        out.push((k.to_string(), v.to_string()));
    }
    Ok(out)
}

/// Combine the command line and the file (None when absent).
pub fn resolve(cmdline: &str, file: Option<(&str, &str)>) -> Result<JoinParams> {
    let mut pairs = match file {
        Some((text, origin)) => file_pairs(text, origin)?,
        None => Vec::new(),
    };
    // Later entries win: the command line after the file.
    pairs.extend(cmdline_pairs(cmdline));
    let get = |key: &str| {
        pairs
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    let where_ = format!("the kernel command line (airlift.KEY=) or {CONF_PATH}");
    let server = get("server").with_context(|| format!("no server: give it in {where_}"))?;
    let server = Endpoint::parse_url(&server).context("the join server")?;
    let token = get("token").with_context(|| format!("no token: give it in {where_}"))?;
    let ca_pin = get("ca")
        .map(|c| {
            let hex = c.strip_prefix("sha256:").unwrap_or(&c).to_ascii_lowercase();
            if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                bail!("ca {c:?} is not sha256:<64 hex digits>");
            }
            Ok(format!("sha256:{hex}"))
        })
        .transpose()?;
    let mac = get("mac")
        .map(|m| crate::services::netboot::config::normalise_mac(&m))
        .transpose()?;
    Ok(JoinParams {
        server,
        token,
        ca_pin,
        mac,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIN: &str = "sha256:00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    #[test]
    fn from_the_command_line() {
        let p = resolve(
            &format!(
                "console=ttyS0 airlift.role=join airlift.server=https://10.77.0.1:5000 \
                 airlift.token=abc airlift.ca={} airlift.mac=52-54-00-A1-00-01",
                PIN.to_uppercase().replace("SHA256", "sha256")
            ),
            None,
        )
        .unwrap();
        assert_eq!(p.server.url(), "https://10.77.0.1:5000");
        assert_eq!(p.token, "abc");
        assert_eq!(p.ca_pin.as_deref(), Some(PIN));
        assert_eq!(p.mac.as_deref(), Some("52:54:00:a1:00:01"));
    }

    #[test]
    fn from_the_file_with_the_command_line_winning() {
        let file = "# join settings\nserver = https://host0.lab:5000\nairlift.token=\"fromfile\"\n";
        let p = resolve("quiet", Some((file, "/etc/airlift/join.conf"))).unwrap();
        assert_eq!(
            (p.server.host.as_str(), p.token.as_str()),
            ("host0.lab:5000", "fromfile")
        );
        assert_eq!(p.ca_pin, None);
        let p = resolve("airlift.token=fromcmdline", Some((file, "j"))).unwrap();
        assert_eq!(p.token, "fromcmdline");
    }

    #[test]
    fn missing_or_bad_values_say_where_to_put_them() {
        let e = format!("{:#}", resolve("quiet", None).unwrap_err());
        assert!(e.contains("no server") && e.contains(CONF_PATH), "{e}");
        let e = format!(
            "{:#}",
            resolve(
                "airlift.server=https://h:1 airlift.token=t airlift.ca=sha256:12",
                None
            )
            .unwrap_err()
        );
        assert!(e.contains("not sha256:<64 hex digits>"), "{e}");
        let e = format!("{:#}", resolve("airlift.server=ftp://h", None).unwrap_err());
        assert!(e.contains("https://"), "{e}");
        let e = format!("{:#}", resolve("", Some(("junk", "/j.conf"))).unwrap_err());
        assert!(e.contains("/j.conf:1"), "{e}");
    }
}
