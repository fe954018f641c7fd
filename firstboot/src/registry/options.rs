//! Options of `airlift-firstboot serve`. One struct fed by the command
//! line (clap) or by the appliance's config file (serde, kebab-case).

use std::net::SocketAddr;
use std::path::PathBuf;

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 5000))
}

fn default_header_timeout() -> u64 {
    30
}

fn default_body_stall() -> u64 {
    60
}

fn default_max_connections() -> usize {
    4096
}

/// How to run the registry.
#[derive(Debug, Clone, clap::Args, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ServeOptions {
    /// Address to listen on (port 0 picks a free port; the bound address is printed).
    #[arg(long, default_value = "127.0.0.1:5000")]
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,

    /// The writable store (an OCI layout plus repository metadata); created if missing.
    #[arg(long)]
    pub data: PathBuf,

    /// A read-only OCI image layout to serve (the bundle); repeatable. Its
    /// index.json entries must carry full references in org.opencontainers.image.ref.name.
    #[arg(long = "layer", value_name = "DIR")]
    #[serde(default)]
    pub layers: Vec<PathBuf>,

    /// PEM certificate chain for HTTPS (with --tls-key).
    #[arg(long, requires = "tls_key")]
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for HTTPS (with --tls-cert).
    #[arg(long, requires = "tls_cert")]
    #[serde(default)]
    pub tls_key: Option<PathBuf>,

    /// bcrypt htpasswd file of users allowed to push (`htpasswd -B`).
    #[arg(long)]
    #[serde(default)]
    pub htpasswd: Option<PathBuf>,

    /// File holding a token allowed to push (Bearer, or Basic with the token as password).
    #[arg(long)]
    #[serde(default)]
    pub push_token_file: Option<PathBuf>,

    /// Allow DELETE of manifests, tags and blobs.
    #[arg(long)]
    #[serde(default)]
    pub allow_delete: bool,

    /// Seconds a client may take to send request headers (also the idle keep-alive limit).
    #[arg(long, default_value_t = 30)]
    #[serde(default = "default_header_timeout")]
    pub header_timeout_secs: u64,

    /// Seconds a request body may stall before the request fails.
    #[arg(long, default_value_t = 60)]
    #[serde(default = "default_body_stall")]
    pub body_stall_secs: u64,

    /// Connections served at once; further clients wait in the listen backlog.
    #[arg(long, default_value_t = 4096)]
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_file_form() {
        let o: ServeOptions = serde_json::from_str(
            r#"{"data":"/var/lib/airlift","layers":["/run/media/bundle"],"allow-delete":true}"#,
        )
        .unwrap();
        assert_eq!(o.listen, default_listen());
        assert!(o.allow_delete);
        assert_eq!(o.layers, vec![PathBuf::from("/run/media/bundle")]);
        assert!(serde_json::from_str::<ServeOptions>(r#"{"data":"/x","bogus":1}"#).is_err());
    }
}
