//! host0's TLS files as the appliance file's `registry.tls` asks: none,
//! the supplied pair, or a certificate generated for every name and
//! address nodes are told to use ([`crate::services::tls`]).

use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use airlift_appliance::{ApplianceFile, TlsMode};
use anyhow::{Context, Result};

use super::{addresses, Options};
use crate::services::tls::TlsMaterial;

/// Create `dir` (and parents) with mode 0700.
pub fn private_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("setting the mode of {}", dir.display()))
}

/// The TLS files the file's mode asks for (None: plain HTTP).
pub fn tls_material(
    file: &ApplianceFile,
    opts: &Options,
    listen: SocketAddr,
    ips: &[IpAddr],
) -> Result<Option<TlsMaterial>> {
    let dir = opts.data.join(crate::services::tls::TLS_DIR);
    match file.registry.tls {
        TlsMode::Off => {
            tracing::warn!("registry.tls is off: serving plain HTTP");
            Ok(None)
        }
        TlsMode::Provided => {
            private_dir(&dir)?;
            let (cert, key) = (
                file.registry
                    .tls_cert
                    .as_deref()
                    .context("registry.tlsCert is missing")?,
                file.registry
                    .tls_key
                    .as_deref()
                    .context("registry.tlsKey is missing")?,
            );
            Ok(Some(crate::services::tls::use_supplied(
                &dir, cert, key, None,
            )?))
        }
        TlsMode::Generate => {
            private_dir(&dir)?;
            // The machine's own name only when it is a DNS name (the
            // certificate cannot carry `my_host`); configured names must be.
            let mut names: Vec<String> = crate::sys::net::hostname()
                .filter(|h| {
                    let ok = addresses::is_dns_name(h);
                    if !ok {
                        tracing::warn!("host name {h:?} is not a DNS name; not in the certificate");
                    }
                    ok
                })
                .into_iter()
                .collect();
            let mut ip_sans: Vec<IpAddr> = ips.to_vec();
            for n in opts.hostnames.iter().chain(&file.registry.extra_names) {
                match n.parse::<IpAddr>() {
                    Ok(ip) => ip_sans.push(ip),
                    Err(_) => names.push(n.clone()),
                }
            }
            if !listen.ip().is_unspecified() {
                ip_sans.push(listen.ip());
            }
            ip_sans.extend(crate::services::ha::vip::address(file));
            ip_sans.sort();
            ip_sans.dedup();
            names.sort();
            names.dedup();
            let t = crate::services::tls::ensure_tls(&dir, &names, &ip_sans)
                .with_context(|| format!("making the registry's TLS files in {}", dir.display()))?;
            if t.issued {
                tracing::info!(
                    "issued a server certificate for {} and {:?}",
                    names.join(", "),
                    ip_sans
                );
            }
            Ok(Some(t))
        }
    }
}
