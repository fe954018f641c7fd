//! Just enough XML for S3's answers (list results, multipart upload
//! ids, error bodies): the text of named elements, entities decoded.
//! S3 answers are flat and never use CDATA for these fields.

/// The text of every `<tag>…</tag>` in `xml`, in order.
pub fn all<'a>(xml: &'a str, tag: &str) -> Vec<&'a str> {
    let (open, close) = (format!("<{tag}>"), format!("</{tag}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(i) = rest.find(&open) {
        let after = &rest[i + open.len()..];
        let Some(j) = after.find(&close) else { break };
        out.push(&after[..j]);
        rest = &after[j + close.len()..];
    }
    out
}

/// The text of the first `<tag>`, decoded.
pub fn first(xml: &str, tag: &str) -> Option<String> {
    all(xml, tag).first().map(|s| decode(s))
}

/// Decode the five named entities and numeric character references.
pub fn decode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let Some(end) = tail.find(';') else {
            out.push_str(tail);
            return out;
        };
        let entity = &tail[1..end];
        let ch = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            e if e.starts_with("#x") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match ch {
            Some(c) => out.push(c),
            None => out.push_str(&tail[..=end]),
        }
        rest = &tail[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Escape text for an XML element.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_and_entities() {
        let x = "<R><Contents><Key>a&amp;b</Key><Size>3</Size></Contents>\
                 <Contents><Key>c&#47;d&#x41;</Key></Contents><IsTruncated>false</IsTruncated></R>";
        assert_eq!(all(x, "Key"), ["a&amp;b", "c&#47;d&#x41;"]);
        assert_eq!(decode(all(x, "Key")[1]), "c/dA");
        assert_eq!(first(x, "Key").as_deref(), Some("a&b"));
        assert_eq!(first(x, "IsTruncated").as_deref(), Some("false"));
        assert_eq!(first(x, "Nope"), None);
        assert_eq!(decode("x &bogus; y & z"), "x &bogus; y & z");
        assert_eq!(escape("\"a\"<&>"), "&quot;a&quot;&lt;&amp;&gt;");
    }
}
