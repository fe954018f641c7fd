//! The mirror spec: which airlift registries a node pulls through, for
//! which upstream registries, and how to trust them. Pure data, sent as
//! JSON to joining nodes; every renderer works from it alone.

use std::fmt;

use airlift_appliance::trust::{TrustPolicy, Verifier};
use airlift_oci::reference::validate_registry;
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// The upstreams mirrored when nobody names any.
pub const DEFAULT_UPSTREAMS: &[&str] = &[
    "docker.io",
    "quay.io",
    "registry.k8s.io",
    "ghcr.io",
    "gcr.io",
];

/// Everything a node needs to pull through airlift.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct MirrorSpec {
    /// The airlift registries, in order: host0 first, then replicas.
    /// Runtimes try them in this order, so pulls work while any one is up.
    pub registries: Vec<Endpoint>,
    /// The upstream registries mirrored (`quay.io`, `docker.io`, …).
    pub upstreams: Vec<String>,
    /// The CA that signed the registries' certificates (PEM), if they
    /// are not signed by a CA the nodes already trust.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_pem: Option<String>,
    /// Consent to plain HTTP: an `http` endpoint is refused without it.
    #[serde(default)]
    pub insecure: bool,
    /// The keys images must be signed by and their scopes (the
    /// appliance's `trust`), for the signature files
    /// ([`super::signatures`]). None: no signature files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trust: Option<TrustPolicy>,
}

/// One airlift registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Endpoint {
    /// `HOST:PORT` or a host name (`10.0.0.1:5000`, `host0.airlift:5000`).
    pub host: String,
    /// How the registry is reached.
    pub scheme: Scheme,
}

/// HTTPS (the default) or plain HTTP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// TLS, verified against `ca_pem` or the system's trust store.
    Https,
    /// Plain HTTP: only with [`MirrorSpec::insecure`].
    Http,
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scheme::Https => "https",
            Scheme::Http => "http",
        })
    }
}

impl Endpoint {
    /// An HTTPS endpoint.
    pub fn https(host: &str) -> Endpoint {
        Endpoint {
            host: host.to_string(),
            scheme: Scheme::Https,
        }
    }

    /// A plain-HTTP endpoint.
    pub fn http(host: &str) -> Endpoint {
        Endpoint {
            host: host.to_string(),
            scheme: Scheme::Http,
        }
    }

    /// Parse `https://HOST:PORT` or `http://HOST:PORT` (a trailing `/` is
    /// allowed; a path is not, since the runtimes add their own).
    pub fn parse_url(url: &str) -> Result<Endpoint> {
        let (scheme, rest) = if let Some(r) = url.strip_prefix("https://") {
            (Scheme::Https, r)
        } else if let Some(r) = url.strip_prefix("http://") {
            (Scheme::Http, r)
        } else {
            bail!("registry URL {url:?} must start with https:// or http://");
        };
        let host = rest.strip_suffix('/').unwrap_or(rest);
        validate_registry(host)
            .map_err(anyhow::Error::msg)
            .with_context(|| {
                format!("registry URL {url:?}: give scheme://HOST[:PORT] with no path")
            })?;
        Ok(Endpoint {
            host: host.to_string(),
            scheme,
        })
    }

    /// `scheme://host`, as containerd, k3s and Docker want it.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme, self.host)
    }

    /// Is this plain HTTP?
    pub fn is_http(&self) -> bool {
        self.scheme == Scheme::Http
    }
}

impl MirrorSpec {
    /// A spec for these endpoints and upstreams (`insecure` set when any
    /// endpoint is HTTP: naming an `http://` URL is the consent).
    pub fn new(
        registries: Vec<Endpoint>,
        upstreams: Vec<String>,
        ca_pem: Option<String>,
    ) -> MirrorSpec {
        let insecure = registries.iter().any(Endpoint::is_http);
        MirrorSpec {
            registries,
            upstreams,
            ca_pem,
            insecure,
            trust: None,
        }
    }

    /// The same spec carrying `trust` (the appliance's trust policy).
    pub fn with_trust(mut self, trust: Option<TrustPolicy>) -> MirrorSpec {
        self.trust = trust;
        self
    }

    /// Parse the JSON form and validate it.
    pub fn from_json(text: &str) -> Result<MirrorSpec> {
        let spec: MirrorSpec =
            serde_json::from_str(text).context("parsing the mirror spec JSON")?;
        spec.validate()?;
        Ok(spec)
    }

    /// The JSON form.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a mirror spec always serialises")
    }

    /// Refuse what the renderers cannot write safely: no endpoints, bad or
    /// duplicate hosts, HTTP without consent, a CA that is not PEM.
    pub fn validate(&self) -> Result<()> {
        if self.registries.is_empty() {
            bail!("mirror spec: `registries` is empty; name at least one airlift registry");
        }
        if self.upstreams.is_empty() {
            bail!(
                "mirror spec: `upstreams` is empty; name the registries to mirror (e.g. docker.io)"
            );
        }
        for (i, e) in self.registries.iter().enumerate() {
            validate_registry(&e.host)
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("mirror spec: registries[{i}].host"))?;
            if e.is_http() && !self.insecure {
                bail!(
                    "mirror spec: registries[{i}] ({}) is plain HTTP but `insecure` is false; \
                     use https or set insecure: true",
                    e.url()
                );
            }
            if self.registries[..i].iter().any(|o| o.host == e.host) {
                bail!(
                    "mirror spec: registries[{i}].host {:?} is listed twice",
                    e.host
                );
            }
        }
        for (i, u) in self.upstreams.iter().enumerate() {
            validate_registry(u)
                .map_err(anyhow::Error::msg)
                .with_context(|| format!("mirror spec: upstreams[{i}]"))?;
            if self.upstreams[..i].contains(u) {
                bail!("mirror spec: upstreams[{i}] {u:?} is listed twice");
            }
        }
        if let Some(pem) = &self.ca_pem {
            if !pem.contains("-----BEGIN CERTIFICATE-----") {
                bail!(
                    "mirror spec: `ca-pem` holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
                );
            }
        }
        if let Some(trust) = &self.trust {
            // Parsing the keys too: a key written to the nodes must be one
            // the tools that read it can use.
            Verifier::new(trust).context("mirror spec: `trust`")?;
        }
        Ok(())
    }

    /// The HTTPS endpoints (the ones a CA file is written for).
    pub fn https_endpoints(&self) -> impl Iterator<Item = &Endpoint> {
        self.registries.iter().filter(|e| !e.is_http())
    }

    /// The CA as it is written to files: trailing newline ensured. `None`
    /// when there is no CA or no HTTPS endpoint needs one.
    pub fn ca_file_content(&self) -> Option<String> {
        let pem = self.ca_pem.as_ref()?;
        self.https_endpoints().next()?;
        let mut s = pem.trim_end().to_string();
        s.push('\n');
        Some(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> MirrorSpec {
        MirrorSpec::new(
            vec![
                Endpoint::https("10.0.0.1:5000"),
                Endpoint::https("10.0.0.2:5000"),
            ],
            vec!["quay.io".into(), "docker.io".into()],
            None,
        )
    }

    #[test]
    fn json_round_trip_uses_kebab_and_lowercase_names() {
        let s = spec();
        let json = s.to_json();
        assert!(json.contains("\"scheme\": \"https\""), "{json}");
        assert_eq!(MirrorSpec::from_json(&json).unwrap(), s);
        let err =
            MirrorSpec::from_json(r#"{"registries":[],"upstreams":[],"bogus":1}"#).unwrap_err();
        assert!(format!("{err:#}").contains("bogus"), "{err:#}");
    }

    #[test]
    fn parse_url_accepts_host_port_and_refuses_paths() {
        assert_eq!(
            Endpoint::parse_url("https://10.0.0.1:5000/").unwrap(),
            Endpoint::https("10.0.0.1:5000")
        );
        assert_eq!(
            Endpoint::parse_url("http://host0").unwrap(),
            Endpoint::http("host0")
        );
        assert!(Endpoint::parse_url("10.0.0.1:5000").is_err());
        let err = Endpoint::parse_url("https://h:5000/v2").unwrap_err();
        assert!(format!("{err:#}").contains("no path"), "{err:#}");
    }

    #[test]
    fn validate_names_the_field() {
        let mut s = spec();
        s.registries.push(Endpoint::http("10.0.0.3:5000"));
        s.insecure = false;
        let err = format!("{:#}", s.validate().unwrap_err());
        assert!(
            err.contains("registries[2]") && err.contains("insecure"),
            "{err}"
        );
        let mut s = spec();
        s.upstreams.push("quay.io".into());
        assert!(format!("{:#}", s.validate().unwrap_err()).contains("upstreams[2]"));
        let mut s = spec();
        s.registries[1].host = "bad host".into();
        assert!(format!("{:#}", s.validate().unwrap_err()).contains("registries[1].host"));
        let mut s = spec();
        s.ca_pem = Some("not a cert".into());
        assert!(s.validate().is_err());
        assert!(spec().validate().is_ok());
    }

    #[test]
    fn trust_rides_along_and_its_keys_are_checked() {
        use crate::services::mirrors::signatures::tests::trust;
        let s = spec().with_trust(Some(trust(true)));
        let json = s.to_json();
        assert!(json.contains("\"trust\""), "{json}");
        assert_eq!(MirrorSpec::from_json(&json).unwrap(), s);
        // An older spec (no `trust`) still parses.
        assert_eq!(
            MirrorSpec::from_json(&spec().to_json()).unwrap().trust,
            None
        );
        let mut bad = trust(true);
        bad.keys[1].public_key_pem =
            "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----".into();
        let e = format!("{:#}", spec().with_trust(Some(bad)).validate().unwrap_err());
        assert!(e.contains("trust") && e.contains("\"team\""), "{e}");
        let mut dup = trust(true);
        dup.keys[1].scopes = vec!["quay.io".into()];
        assert!(spec().with_trust(Some(dup)).validate().is_err());
    }

    #[test]
    fn ca_file_only_for_https() {
        let mut s = MirrorSpec::new(vec![Endpoint::http("h:1")], vec!["quay.io".into()], None);
        s.ca_pem = Some("-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----".into());
        assert_eq!(s.ca_file_content(), None);
        s.registries.push(Endpoint::https("g:1"));
        assert!(s.ca_file_content().unwrap().ends_with("-----\n"));
    }
}
