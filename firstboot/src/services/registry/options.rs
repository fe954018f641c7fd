//! Options of `airlift-firstboot serve`. One struct fed by the command
//! line (clap) or by the appliance's config file (serde, kebab-case).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use airlift_appliance::Verifier;

use anyhow::{bail, Result};

use super::s3::{self, credentials};
use super::store::remote::RemoteConfig;
use super::store::upload_table::{
    UploadPolicy, DEFAULT_MAX_UPLOADS, DEFAULT_MAX_UPLOADS_PER_CLIENT, DEFAULT_UPLOAD_IDLE_SECS,
};

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

fn default_upload_idle() -> u64 {
    DEFAULT_UPLOAD_IDLE_SECS
}

fn default_max_uploads() -> usize {
    DEFAULT_MAX_UPLOADS
}

fn default_max_uploads_per_client() -> usize {
    DEFAULT_MAX_UPLOADS_PER_CLIENT
}

fn default_s3_region() -> String {
    "us-east-1".to_string()
}

fn default_s3_threshold() -> u64 {
    64
}

fn default_s3_refresh() -> u64 {
    5
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

    /// Seconds an upload may go without a chunk before it is removed
    /// (its file deleted; the client gets BLOB_UPLOAD_UNKNOWN).
    #[arg(long, default_value_t = DEFAULT_UPLOAD_IDLE_SECS)]
    #[serde(default = "default_upload_idle")]
    pub upload_idle_secs: u64,

    /// Uploads in progress at once, all clients together; more are refused (429 TOOMANYREQUESTS).
    #[arg(long, default_value_t = DEFAULT_MAX_UPLOADS)]
    #[serde(default = "default_max_uploads")]
    pub max_uploads: usize,

    /// Uploads in progress at once from one client address; more are refused (429 TOOMANYREQUESTS).
    #[arg(long, default_value_t = DEFAULT_MAX_UPLOADS_PER_CLIENT)]
    #[serde(default = "default_max_uploads_per_client")]
    pub max_uploads_per_client: usize,

    /// MiB the data folder's filesystem keeps free: an upload that would
    /// leave less is refused (507 DENIED) and its partial file removed.
    /// Default: 5 % of the filesystem, at most 2 GiB (as host0's
    /// `storage.reserveMiB`). 0 refuses only what does not fit at all.
    #[arg(long, value_name = "MIB")]
    #[serde(default)]
    pub reserve_mib: Option<u64>,

    /// Keep blobs and repository metadata in this S3-compatible store
    /// (path-style URL, e.g. http://127.0.0.1:3900) instead of --data,
    /// which then holds upload files only. Credentials come from
    /// --s3-credentials-file, else AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY.
    #[arg(long, requires = "s3_bucket", value_name = "URL")]
    #[serde(default)]
    pub s3_endpoint: Option<String>,

    /// The S3 bucket (with --s3-endpoint).
    #[arg(long, requires = "s3_endpoint", value_name = "NAME")]
    #[serde(default)]
    pub s3_bucket: Option<String>,

    /// The S3 region requests are signed for (Garage: its s3_region, usually `garage`).
    #[arg(long, default_value = "us-east-1")]
    #[serde(default = "default_s3_region")]
    pub s3_region: String,

    /// A key prefix for every object (e.g. `airlift/`).
    #[arg(long, default_value = "")]
    #[serde(default)]
    pub s3_prefix: String,

    /// Blobs of at least this many MiB are sent as multipart uploads (parts of this size, at least 5 MiB).
    #[arg(long, default_value_t = 64)]
    #[serde(default = "default_s3_threshold")]
    pub s3_multipart_threshold_mib: u64,

    /// An AWS-style credentials file: aws_access_key_id and aws_secret_access_key in its [default] profile.
    #[arg(long, value_name = "FILE")]
    #[serde(default)]
    pub s3_credentials_file: Option<PathBuf>,

    /// Seconds between rebuilds of the index from the bucket: the bound on
    /// how long another instance's tag move, delete or new repository
    /// takes to show in tag and catalogue lists (unknown tags and
    /// manifests are looked up in the bucket at once).
    #[arg(long, default_value_t = 5)]
    #[serde(default = "default_s3_refresh")]
    pub s3_refresh_secs: u64,

    /// The trusted keys whose scopes' manifests are served only when
    /// signed ([`super::gate`]); set by host0 and replicas from the
    /// appliance's trust policy, never from the command line or file.
    #[arg(skip)]
    #[serde(skip)]
    pub verifier: Option<Arc<Verifier>>,

    /// Requests bearing this token (`Authorization: Bearer`) pass the
    /// signature gate: host0's join token, which replicas present to copy
    /// everything. Set by host0 only.
    #[arg(skip)]
    #[serde(skip)]
    pub gate_bypass_token: Option<String>,
}

impl ServeOptions {
    /// The upload caps and idle time these options ask for.
    pub fn upload_policy(&self) -> Result<UploadPolicy> {
        if self.upload_idle_secs == 0 || self.max_uploads == 0 || self.max_uploads_per_client == 0 {
            bail!("upload-idle-secs, max-uploads and max-uploads-per-client must be at least 1");
        }
        Ok(UploadPolicy {
            idle: Duration::from_secs(self.upload_idle_secs),
            max: self.max_uploads,
            max_per_client: self.max_uploads_per_client,
        })
    }

    /// The bytes uploads leave free on the filesystem of `data` (which
    /// must exist): `reserve-mib`, else the appliance's default reserve.
    pub fn reserve_bytes(&self) -> Result<u64> {
        let total = crate::sys::disk_space::space(&self.data)?.total;
        let storage = airlift_appliance::datadisk::Storage {
            reserve_mib: self.reserve_mib,
            ..Default::default()
        };
        Ok(storage.reserve_bytes(total))
    }

    /// The S3 backend these options ask for (None: the data folder).
    pub fn remote(&self) -> Result<Option<RemoteConfig>> {
        let (Some(endpoint), Some(bucket)) = (&self.s3_endpoint, &self.s3_bucket) else {
            if self.s3_endpoint.is_some() || self.s3_bucket.is_some() {
                bail!("S3 storage needs both s3-endpoint and s3-bucket");
            }
            return Ok(None);
        };
        if self.s3_refresh_secs == 0 {
            bail!("s3-refresh-secs must be at least 1");
        }
        let credentials = credentials::load(self.s3_credentials_file.as_deref())?;
        Ok(Some(RemoteConfig {
            s3: s3::Config {
                endpoint: endpoint.clone(),
                bucket: bucket.clone(),
                region: self.s3_region.clone(),
                credentials,
            },
            prefix: self.s3_prefix.clone(),
            threshold: self.s3_multipart_threshold_mib.saturating_mul(1 << 20),
            refresh_every: Duration::from_secs(self.s3_refresh_secs),
        }))
    }
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
        assert!(o.remote().unwrap().is_none());
        assert_eq!(o.reserve_mib, None);
    }

    #[test]
    fn the_reserve_is_the_option_or_the_appliance_default() {
        let dir = tempfile::tempdir().unwrap();
        let o: ServeOptions =
            serde_json::from_value(serde_json::json!({ "data": dir.path() })).unwrap();
        let total = crate::sys::disk_space::space(dir.path()).unwrap().total;
        assert_eq!(o.reserve_bytes().unwrap(), (total / 20).min(2 << 30));
        let o: ServeOptions =
            serde_json::from_value(serde_json::json!({ "data": dir.path(), "reserve-mib": 3 }))
                .unwrap();
        assert_eq!(o.reserve_bytes().unwrap(), 3 << 20);
        let o = ServeOptions {
            data: dir.path().join("absent"),
            ..o
        };
        assert!(o.reserve_bytes().is_err());
    }

    #[test]
    fn s3_options() {
        let dir = tempfile::tempdir().unwrap();
        let creds = dir.path().join("creds");
        std::fs::write(
            &creds,
            "[default]\naws_access_key_id=GK1\naws_secret_access_key=s\n",
        )
        .unwrap();
        let o: ServeOptions = serde_json::from_value(serde_json::json!({
            "data": "/tmp/x",
            "s3-endpoint": "http://127.0.0.1:3900",
            "s3-bucket": "registry",
            "s3-region": "garage",
            "s3-prefix": "airlift",
            "s3-multipart-threshold-mib": 5,
            "s3-credentials-file": creds,
        }))
        .unwrap();
        let r = o.remote().unwrap().unwrap();
        assert_eq!(r.s3.bucket, "registry");
        assert_eq!(r.s3.region, "garage");
        assert_eq!(r.s3.credentials.access_key_id, "GK1");
        assert_eq!(r.threshold, 5 << 20);
        assert_eq!(r.refresh_every, Duration::from_secs(5));
        let o: ServeOptions = serde_json::from_value(serde_json::json!({
            "data": "/tmp/x", "s3-bucket": "registry",
        }))
        .unwrap();
        assert!(o.remote().is_err());
    }
}
