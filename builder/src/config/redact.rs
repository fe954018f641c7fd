//! Keeps file content out of config parse errors. serde_yaml quotes what
//! it found ("unknown field `…`", "invalid type: string \"…\""); when the
//! file named is not a config at all (`airlift validate /etc/shadow`),
//! that would print its secrets. Quoted pieces that look like a field
//! name or a short plain value are kept (they are what makes the error
//! useful); anything else is replaced.

/// What replaces a quoted piece that is not shown.
pub const HIDDEN: &str = "(content not shown)";

/// Does `s` look like a field name or a short plain value?
pub fn looks_plain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./:@+".contains(&b))
}

/// `msg` with every `` `…` `` or `"…"` piece that is not [`looks_plain`]
/// replaced by [`HIDDEN`].
pub fn redact(msg: &str) -> String {
    let mut out = String::new();
    let mut rest = msg;
    while let Some(start) = rest.find(['`', '"']) {
        let quote = rest[start..].chars().next().expect("a quote");
        out.push_str(&rest[..=start]);
        let after = &rest[start + 1..];
        match after.find(quote) {
            Some(end) => {
                let inner = &after[..end];
                out.push_str(if looks_plain(inner) { inner } else { HIDDEN });
                out.push(quote);
                rest = &after[end + 1..];
            }
            None => {
                // An unterminated quote: hide the rest.
                out.push_str(HIDDEN);
                return out;
            }
        }
    }
    out.push_str(rest);
    out
}

/// A field path (`images[0].from`) with components that are not plain
/// names replaced.
pub fn redact_path(path: &str) -> String {
    path.split('.')
        .map(|c| {
            let name = c.split('[').next().unwrap_or(c);
            if name.is_empty() || looks_plain(name) {
                c.to_string()
            } else {
                "(unknown key)".to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_names_hides_content() {
        assert_eq!(
            redact("unknown field `imagse`, expected one of `images`"),
            "unknown field `imagse`, expected one of `images`"
        );
        let m = redact("unknown field `root:$6$s3cret:19000:::`, expected `kind`");
        assert!(
            !m.contains("s3cret") && m.contains(HIDDEN) && m.contains("`kind`"),
            "{m}"
        );
        let m = redact("invalid type: string \"hunter2 is my password\", expected a map");
        assert!(!m.contains("hunter2"), "{m}");
        assert!(!redact("bad `secret$ never closed").contains("secret"));
        assert_eq!(redact_path("images[0].from"), "images[0].from");
        assert_eq!(redact_path("root:$6$x"), "(unknown key)");
    }
}
