//! Who may push: users of a bcrypt htpasswd file (HTTP Basic) or holders
//! of a token from a file (`Authorization: Bearer <token>`, or Basic with
//! the token as the password). Pulls are anonymous. Without either
//! file, pushing is disabled.
//!
//! bcrypt is slow on purpose (hundreds of ms at cost 12): it runs on the
//! blocking pool, at most [`BcryptSlots`] at once, so clients guessing
//! passwords queue among themselves and never take the async workers
//! that serve pulls. Verdicts are cached for a few minutes by
//! sha256(user:password), so a push of many blobs pays for bcrypt once.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use super::error::{Code, RegistryError};

/// Push credentials.
#[derive(Default)]
pub struct Auth {
    users: HashMap<String, String>,
    token: Option<String>,
    /// Set by host0 without a data disk: pushes are refused (DENIED) with
    /// this message even when credentials are configured.
    pub push_disabled_reason: Option<String>,
    /// bcrypt's verdicts by sha256(user:password), with when they were made.
    verified: Mutex<HashMap<[u8; 32], (bool, Instant)>>,
    bcrypt_slots: BcryptSlots,
}

/// How long a bcrypt verdict is reused.
const VERDICT_TTL: Duration = Duration::from_secs(300);

/// The bcrypt checks that may run at once: half the CPUs, at least one,
/// so password checks never take every core from the readers.
pub struct BcryptSlots(Arc<tokio::sync::Semaphore>);

impl Default for BcryptSlots {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        BcryptSlots(Arc::new(tokio::sync::Semaphore::new((cpus / 2).max(1))))
    }
}

/// The answer to "may this request push?".
#[derive(Debug, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// No or wrong credentials: answer 401 with a Basic challenge.
    Challenge,
    /// Pushing is not enabled at all.
    Disabled,
}

impl Auth {
    /// Read an htpasswd file (bcrypt entries only) and/or a token file.
    pub fn load(htpasswd: Option<&Path>, token_file: Option<&Path>) -> Result<Auth> {
        let mut auth = Auth::default();
        if let Some(p) = htpasswd {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading the htpasswd file {}", p.display()))?;
            auth.users = parse_htpasswd(&text).with_context(|| format!("in {}", p.display()))?;
        }
        if let Some(p) = token_file {
            let token = std::fs::read_to_string(p)
                .with_context(|| format!("reading the push token file {}", p.display()))?
                .trim()
                .to_string();
            if token.len() < 16 {
                bail!(
                    "the push token in {} is shorter than 16 characters; write a long random token",
                    p.display()
                );
            }
            auth.token = Some(token);
        }
        Ok(auth)
    }

    /// Is pushing enabled (any credential configured)?
    pub fn push_enabled(&self) -> bool {
        !self.users.is_empty() || self.token.is_some()
    }

    /// Judge an `Authorization` header value.
    pub async fn check(&self, authorization: Option<&str>) -> Decision {
        if !self.push_enabled() {
            return Decision::Disabled;
        }
        let Some(value) = authorization else {
            return Decision::Challenge;
        };
        let ok = if let Some(t) = value.strip_prefix("Bearer ") {
            self.token_ok(t.trim())
        } else if let Some(b64) = value.strip_prefix("Basic ") {
            match decode_basic(b64.trim()) {
                Some((user, pass)) => self.token_ok(&pass) || self.user_ok(&user, &pass).await,
                None => false,
            }
        } else {
            false
        };
        if ok {
            Decision::Allowed
        } else {
            Decision::Challenge
        }
    }

    /// The decision as a handler result.
    pub async fn require_push(&self, authorization: Option<&str>) -> Result<(), RegistryError> {
        if let Some(reason) = self
            .push_disabled_reason
            .as_ref()
            .filter(|_| self.push_enabled())
        {
            return Err(RegistryError::new(Code::Denied, reason.clone()));
        }
        match self.check(authorization).await {
            Decision::Allowed => Ok(()),
            Decision::Challenge => Err(RegistryError::new(
                Code::Unauthorized,
                "pushing needs credentials (an htpasswd user or the push token)",
            )),
            Decision::Disabled => Err(RegistryError::new(
                Code::Denied,
                self.push_disabled_reason.clone().unwrap_or_else(|| {
                    "pushing is disabled on this registry: start it with --htpasswd or \
                     --push-token-file"
                        .to_string()
                }),
            )),
        }
    }

    fn token_ok(&self, given: &str) -> bool {
        self.token
            .as_deref()
            .is_some_and(|t| constant_time_eq(t.as_bytes(), given.as_bytes()))
    }

    async fn user_ok(&self, user: &str, pass: &str) -> bool {
        let Some(hash) = self.users.get(user) else {
            return false;
        };
        let key: [u8; 32] = Sha256::digest(format!("{user}:{pass}")).into();
        if let Some(known) = self.cached(&key) {
            return known;
        }
        let Ok(_slot) = self.bcrypt_slots.0.acquire().await else {
            return false;
        };
        // Another request may have checked the same credentials meanwhile.
        if let Some(known) = self.cached(&key) {
            return known;
        }
        let (pass, hash) = (pass.to_string(), hash.clone());
        let ok = tokio::task::spawn_blocking(move || bcrypt::verify(pass, &hash).unwrap_or(false))
            .await
            .unwrap_or(false);
        if let Ok(mut m) = self.verified.lock() {
            if m.len() > 1024 {
                m.retain(|_, (_, at)| at.elapsed() < VERDICT_TTL);
                if m.len() > 1024 {
                    m.clear();
                }
            }
            m.insert(key, (ok, Instant::now()));
        }
        ok
    }

    fn cached(&self, key: &[u8; 32]) -> Option<bool> {
        let m = self.verified.lock().ok()?;
        let (ok, at) = m.get(key)?;
        (at.elapsed() < VERDICT_TTL).then_some(*ok)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn decode_basic(b64: &str) -> Option<(String, String)> {
    let raw = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// Parse `user:$2y$…` lines; other hash kinds are refused by name.
pub fn parse_htpasswd(text: &str) -> Result<HashMap<String, String>> {
    let mut users = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((user, hash)) = line.split_once(':') else {
            bail!("line {}: expected user:hash", n + 1);
        };
        if !(hash.starts_with("$2y$") || hash.starts_with("$2b$") || hash.starts_with("$2a$")) {
            bail!(
                "line {}: user {user:?} has a non-bcrypt hash; create it with `htpasswd -B`",
                n + 1
            );
        }
        users.insert(user.to_string(), hash.to_string());
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(u: &str, p: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
        )
    }

    #[tokio::test]
    async fn a_disabled_reason_refuses_even_good_credentials() {
        let mut auth = Auth {
            token: Some("t".repeat(20)),
            ..Auth::default()
        };
        let bearer = format!("Bearer {}", "t".repeat(20));
        assert!(auth.require_push(Some(&bearer)).await.is_ok());
        auth.push_disabled_reason = Some("no data disk".into());
        let e = auth.require_push(Some(&bearer)).await.unwrap_err();
        assert_eq!(e.code, Code::Denied);
        assert!(format!("{e:?}").contains("no data disk"), "{e:?}");
        // With pushing off altogether the reason still replaces the generic
        // "start it with --htpasswd" advice, which would mislead on a replica.
        let off = Auth {
            push_disabled_reason: Some("no data disk".into()),
            ..Auth::default()
        };
        let e = off.require_push(None).await.unwrap_err();
        assert_eq!(e.code, Code::Denied);
        assert!(format!("{e:?}").contains("no data disk"), "{e:?}");
        assert!(!format!("{e:?}").contains("--htpasswd"), "{e:?}");
        // And without a reason the advice stands.
        let e = Auth::default().require_push(None).await.unwrap_err();
        assert!(format!("{e:?}").contains("--htpasswd"), "{e:?}");
    }

    #[tokio::test]
    async fn users_and_tokens() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let auth = Auth {
            users: parse_htpasswd(&format!("# c\nalice:{hash}\n")).unwrap(),
            token: Some("t".repeat(20)),
            ..Auth::default()
        };
        assert_eq!(auth.check(None).await, Decision::Challenge);
        assert_eq!(
            auth.check(Some(&basic("alice", "s3cret"))).await,
            Decision::Allowed
        );
        assert_eq!(
            auth.check(Some(&basic("alice", "s3cret"))).await,
            Decision::Allowed
        );
        assert_eq!(
            auth.check(Some(&basic("alice", "wrong"))).await,
            Decision::Challenge
        );
        assert_eq!(
            auth.check(Some(&basic("bob", "s3cret"))).await,
            Decision::Challenge
        );
        assert_eq!(
            auth.check(Some(&format!("Bearer {}", "t".repeat(20))))
                .await,
            Decision::Allowed
        );
        assert_eq!(
            auth.check(Some(&basic("any", &"t".repeat(20)))).await,
            Decision::Allowed
        );
        assert_eq!(auth.check(Some("Bearer nope")).await, Decision::Challenge);
        assert_eq!(auth.check(Some("Basic !!!")).await, Decision::Challenge);
        assert_eq!(Auth::default().check(None).await, Decision::Disabled);
    }

    #[test]
    fn refuses_non_bcrypt() {
        let e = parse_htpasswd("bob:{SHA}abc").unwrap_err().to_string();
        assert!(e.contains("bob") && e.contains("htpasswd -B"), "{e}");
    }
}
