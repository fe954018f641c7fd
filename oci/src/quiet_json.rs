//! JSON parsing whose errors never quote the input. serde_json's
//! messages can hold pieces of the document ("invalid type: string
//! \"…\""), and the document may be a secret (a credentials file) or
//! not JSON at all (a file named by mistake). Errors here say where
//! (line, column) and what kind of problem, never what was there.

use serde::de::DeserializeOwned;

/// A content-free description of a serde_json error.
pub fn describe(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Syntax => "it is not valid JSON",
        Category::Eof => "it ends before the JSON does",
        Category::Data => "its JSON does not have the expected structure (a field is missing or of the wrong type)",
        Category::Io => "it could not be read",
    };
    format!("{what} (line {}, column {})", e.line(), e.column())
}

/// Parses `bytes` as `T`; the error (see [`describe`]) names `what`
/// (a file, a blob) and not the content.
pub fn parse<T: DeserializeOwned>(bytes: &[u8], what: &str) -> anyhow::Result<T> {
    serde_json::from_slice(bytes).map_err(|e| anyhow::anyhow!("{what}: {}", describe(&e)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_place_not_the_content() {
        #[derive(serde::Deserialize, Debug)]
        #[allow(dead_code)]
        struct S {
            list: Vec<u8>,
        }
        for bad in [
            r#"{"list":"SECRET"}"#,
            "SECRET",
            r#"{"list":[1,"SECRET"]}"#,
            r#"{"SECRET":1}"#,
            r#"{"list":[1"#,
        ] {
            let e = parse::<S>(bad.as_bytes(), "x.json")
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("x.json: ") && e.contains("line 1"), "{e}");
            assert!(!e.contains("SECRET"), "{e}");
        }
    }
}
