//! Registry authentication: parsing `WWW-Authenticate` challenges
//! (Bearer token and Basic), and reading credentials from a containers
//! `auth.json` / docker `config.json` style file:
//! `{"auths":{"host[:port]":{"auth":"base64(user:pass)"}}}`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use base64::Engine as _;

/// A user name and password (or identity token) for one registry.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials({}, <redacted>)", self.username)
    }
}

impl Credentials {
    /// The `Authorization: Basic …` header value.
    pub fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

/// The scheme a registry asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Challenge {
    /// Get a token from `realm` (with `service` and `scope`), then send it
    /// as `Authorization: Bearer`.
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
    /// Send `Authorization: Basic`.
    Basic,
}

/// Parse a `WWW-Authenticate` header value. Unknown schemes give `None`.
pub fn parse_challenge(header: &str) -> Option<Challenge> {
    let header = header.trim();
    let (scheme, rest) = header
        .split_once(char::is_whitespace)
        .unwrap_or((header, ""));
    let params = parse_params(rest);
    match scheme.to_ascii_lowercase().as_str() {
        "basic" => Some(Challenge::Basic),
        "bearer" => Some(Challenge::Bearer {
            realm: params.get("realm")?.clone(),
            service: params.get("service").cloned(),
            scope: params.get("scope").cloned(),
        }),
        _ => None,
    }
}

/// `k="v", k2=v2` -> map; quoted values may hold commas and `\"`.
fn parse_params(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=' && *c != ','))
            .collect::<String>()
            .trim()
            .to_ascii_lowercase();
        if key.is_empty() {
            return out;
        }
        if chars.next() != Some('=') {
            continue;
        }
        let mut value = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => value.extend(chars.next()),
                    '"' => break,
                    c => value.push(c),
                }
            }
        } else {
            value = std::iter::from_fn(|| chars.next_if(|c| *c != ','))
                .collect::<String>()
                .trim()
                .to_string();
        }
        out.insert(key, value);
    }
}

/// The token in a token-endpoint response (`token` or `access_token`).
pub fn parse_token_response(body: &[u8]) -> Result<String> {
    #[derive(serde::Deserialize)]
    struct Resp {
        token: Option<String>,
        access_token: Option<String>,
    }
    let r: Resp = airlift_oci::quiet_json::parse(body, "token response")?;
    match r.token.or(r.access_token) {
        Some(t) if !t.is_empty() => Ok(t),
        _ => bail!("token response has neither `token` nor `access_token`"),
    }
}

/// Read the credentials for the first of `hosts` found in the auth file
/// at `path`. `Ok(None)` when the file has no entry for them.
pub fn load_credentials(path: &Path, hosts: &[&str]) -> Result<Option<Credentials>> {
    let text = read_credentials_file(path)?;
    let parsed = parse_auth_file(&text)
        .with_context(|| format!("credentials file {} is malformed", path.display()))?;
    Ok(hosts
        .iter()
        .find_map(|h| parsed.get(&normalise_host(h)).cloned()))
}

/// Largest credentials file read (real ones are a few KiB).
pub const MAX_CREDENTIALS_FILE: u64 = 1 << 20;

/// The bytes of a credentials file: a regular file of at most
/// [`MAX_CREDENTIALS_FILE`] bytes, read with that bound.
pub fn read_credentials_file(path: &Path) -> Result<Vec<u8>> {
    crate::small_file::read(
        path,
        MAX_CREDENTIALS_FILE,
        "credentials file",
        "give an auth.json path",
    )
}

/// Parse an auth file into host -> credentials.
pub fn parse_auth_file(bytes: &[u8]) -> Result<BTreeMap<String, Credentials>> {
    #[derive(serde::Deserialize)]
    struct File {
        #[serde(default)]
        auths: BTreeMap<String, Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        auth: Option<String>,
        username: Option<String>,
        password: Option<String>,
    }
    let f: File = airlift_oci::quiet_json::parse(bytes, "auth file")?;
    let mut out = BTreeMap::new();
    for (host, e) in f.auths {
        let creds = match (e.auth, e.username, e.password) {
            (Some(a), _, _) if !a.is_empty() => {
                let raw = base64::engine::general_purpose::STANDARD
                    .decode(a.trim())
                    .with_context(|| format!("auths.{host}.auth is not base64"))?;
                let raw = String::from_utf8(raw)
                    .with_context(|| format!("auths.{host}.auth is not UTF-8"))?;
                let (u, p) = raw
                    .split_once(':')
                    .with_context(|| format!("auths.{host}.auth must encode user:password"))?;
                Credentials {
                    username: u.to_string(),
                    password: p.to_string(),
                }
            }
            (_, Some(u), Some(p)) => Credentials {
                username: u,
                password: p,
            },
            _ => continue,
        };
        out.insert(normalise_host(&host), creds);
    }
    Ok(out)
}

/// `https://index.docker.io/v1/` -> `docker.io`; `http://h:5000/x` -> `h:5000`.
pub fn normalise_host(key: &str) -> String {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = k.split('/').next().unwrap_or(k);
    match host {
        "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
        h => h.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_files_are_regular_and_bounded() {
        let e = format!(
            "{:#}",
            load_credentials(Path::new("/dev/zero"), &["x"]).unwrap_err()
        );
        assert!(
            e.contains("/dev/zero") && e.contains("not a regular file"),
            "{e}"
        );
        let f = tempfile::NamedTempFile::new().unwrap();
        f.as_file().set_len(MAX_CREDENTIALS_FILE + 1).unwrap();
        let e = format!("{:#}", load_credentials(f.path(), &["x"]).unwrap_err());
        assert!(e.contains("larger than"), "{e}");
    }

    #[test]
    fn parses_bearer_and_basic_challenges() {
        let c = parse_challenge(
            r#"Bearer realm="https://auth.example/token",service="registry.example",scope="repository:org/app:pull,push""#,
        )
        .unwrap();
        assert_eq!(
            c,
            Challenge::Bearer {
                realm: "https://auth.example/token".into(),
                service: Some("registry.example".into()),
                scope: Some("repository:org/app:pull,push".into()),
            }
        );
        assert_eq!(
            parse_challenge(r#"Basic realm="Registry Realm""#),
            Some(Challenge::Basic)
        );
        assert_eq!(parse_challenge("Negotiate"), None);
        assert_eq!(parse_challenge("Bearer service=x"), None);
    }

    #[test]
    fn reads_auth_files() {
        let file = br#"{"auths":{
            "https://index.docker.io/v1/":{"auth":"dXNlcjpwYTpzcw=="},
            "127.0.0.1:5000":{"username":"u","password":"p"},
            "empty.example":{}
        }}"#;
        let m = parse_auth_file(file).unwrap();
        assert_eq!(m["docker.io"].username, "user");
        assert_eq!(m["docker.io"].password, "pa:ss");
        assert_eq!(m["127.0.0.1:5000"].basic_header(), "Basic dTpw");
        assert!(!m.contains_key("empty.example"));
        assert!(parse_auth_file(br#"{"auths":{"h":{"auth":"!!"}}}"#).is_err());
        assert!(format!("{:?}", m["docker.io"]).contains("redacted"));
    }

    #[test]
    fn token_responses() {
        assert_eq!(parse_token_response(br#"{"token":"t"}"#).unwrap(), "t");
        assert_eq!(
            parse_token_response(br#"{"access_token":"a"}"#).unwrap(),
            "a"
        );
        assert!(parse_token_response(b"{}").is_err());
    }
}
