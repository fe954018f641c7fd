//! Where the S3 access key comes from: an AWS-style credentials file
//! (`--s3-credentials-file`), else the environment's
//! `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`.
//!
//! The file is the `~/.aws/credentials` format; the `[default]` profile
//! is used, or keys written before any section:
//!
//! ```text
//! [default]
//! aws_access_key_id = GK31c2f218a2e44f485b94239e
//! aws_secret_access_key = b892c0665f0ada8a4755dae98baa3b133590e11dae3bcc1f9d769d67f16c3835
//! ```

use std::path::Path;

use anyhow::{bail, Context, Result};

/// An access key pair.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<hidden>")
            .finish()
    }
}

const ID: &str = "aws_access_key_id";
const SECRET: &str = "aws_secret_access_key";

/// Parse the text of a credentials file (`origin` names it in errors).
pub fn parse(text: &str, origin: &str) -> Result<Credentials> {
    let (mut id, mut secret) = (None, None);
    let mut section = String::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.trim().to_string();
            continue;
        }
        let Some((k, v)) = line.split_once('=') else {
            bail!(
                "{origin}, line {}: expected `key = value` or `[profile]`, found {line:?}",
                n + 1
            );
        };
        if !(section.is_empty() || section == "default") {
            continue;
        }
        let v = v.trim().to_string();
        match k.trim().to_ascii_lowercase().as_str() {
            ID => id = Some(v),
            SECRET => secret = Some(v),
            _ => {}
        }
    }
    match (id, secret) {
        (Some(a), Some(s)) if !a.is_empty() && !s.is_empty() => Ok(Credentials {
            access_key_id: a,
            secret_access_key: s,
        }),
        _ => bail!(
            "{origin} has no {ID} and {SECRET} in its [default] profile (or before any profile)"
        ),
    }
}

/// Read credentials from `file`, else from the environment.
pub fn load(file: Option<&Path>) -> Result<Credentials> {
    if let Some(f) = file {
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("reading the S3 credentials file {}", f.display()))?;
        return parse(&text, &f.display().to_string());
    }
    from_env(|k| std::env::var(k).ok())
}

/// Credentials from environment variables (`get` looks one up).
pub fn from_env(get: impl Fn(&str) -> Option<String>) -> Result<Credentials> {
    match (get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY")) {
        (Some(a), Some(s)) if !a.is_empty() && !s.is_empty() => Ok(Credentials {
            access_key_id: a,
            secret_access_key: s,
        }),
        _ => bail!(
            "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or pass \
             --s3-credentials-file with an AWS-style [default] profile"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_profile_or_top_level() {
        let c = parse(
            "# garage key\n[other]\naws_access_key_id = NO\n[default]\n\
             aws_access_key_id = GKabc\naws_secret_access_key= s3cr=t \n",
            "f",
        )
        .unwrap();
        assert_eq!(c.access_key_id, "GKabc");
        assert_eq!(c.secret_access_key, "s3cr=t");
        let c = parse("aws_access_key_id=a\naws_secret_access_key=b\n", "f").unwrap();
        assert_eq!(
            (c.access_key_id.as_str(), c.secret_access_key.as_str()),
            ("a", "b")
        );
    }

    #[test]
    fn bad_files_are_named() {
        let e = parse(
            "[prod]\naws_access_key_id=a\naws_secret_access_key=b\n",
            "/etc/k",
        )
        .unwrap_err();
        assert!(
            e.to_string().contains("/etc/k has no aws_access_key_id"),
            "{e}"
        );
        let e = parse("just-a-key\n", "/etc/k").unwrap_err();
        assert!(e.to_string().contains("/etc/k, line 1"), "{e}");
    }

    #[test]
    fn environment() {
        let c = from_env(|k| Some(format!("v-{k}"))).unwrap();
        assert_eq!(c.access_key_id, "v-AWS_ACCESS_KEY_ID");
        let e = from_env(|_| None).unwrap_err();
        assert!(e.to_string().contains("AWS_ACCESS_KEY_ID"), "{e}");
    }
}
