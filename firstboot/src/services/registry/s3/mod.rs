//! The registry's S3 client: a thin layer over the `object_store`
//! crate's S3 store, which signs requests (SigV4), retries failed ones,
//! and does multipart uploads and ranged reads. Requests are path-style
//! (Garage and other self-hosted servers), plain `http://` endpoints are
//! allowed. What is ours: the operations the store needs, by key, and
//! errors that name the operation, `s3://bucket/key`, the endpoint and
//! what to check. Listing unfinished multipart uploads, which
//! `object_store` does not do, is one request signed by its signer.

pub mod credentials;
pub mod xml;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use futures_util::{Stream, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder, AwsAuthorizer, AwsCredential};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path as ObjectPath;
use object_store::{ClientOptions, GetOptions, GetRange, ObjectStore, PutPayload, RetryConfig};
use reqwest::Url;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub use credentials::Credentials;

/// Where the bucket is and who we are.
#[derive(Debug, Clone)]
pub struct Config {
    /// `http://host:port` (a path, if any, prefixes every request).
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub credentials: Credentials,
}

/// A stored object as a listing shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    pub size: u64,
    /// The ETag without quotes.
    pub etag: String,
}

/// A sent part of a multipart upload, kept to complete it.
pub type Part = PartId;

/// An S3 client for one bucket.
#[derive(Debug, Clone)]
pub struct Client {
    store: Arc<AmazonS3>,
    config: Config,
    endpoint: Url,
    /// MiB of blob bytes that may sit in memory for PUTs at once
    /// ([`SEND_BUDGET_MIB`]), shared by every clone of this client.
    send_budget: Arc<Semaphore>,
}

/// object_store sends a PUT body or a part from memory, where our own
/// client streamed from the file: at most this many MiB of blob bytes are
/// held for sending at once, across all uploads, so many uploads finishing
/// together wait their turn instead of exhausting the appliance's memory.
/// A part larger than the budget takes all of it.
pub const SEND_BUDGET_MIB: u32 = 256;

/// What to check after a failure, from what the server said.
fn hint(e: &object_store::Error) -> &'static str {
    let text = e.to_string();
    let creds = "check the access key and secret (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or \
                 --s3-credentials-file), --s3-region, and that the key may read and write the bucket";
    match e {
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => creds,
        _ if text.contains("NoSuchBucket") => "create the bucket or fix --s3-bucket",
        _ if [
            "InvalidAccessKeyId",
            "SignatureDoesNotMatch",
            "AccessDenied",
            "AuthorizationHeaderMalformed",
            "403 Forbidden",
        ]
        .iter()
        .any(|c| text.contains(c)) =>
        {
            creds
        }
        _ if text.contains("error sending request") || text.contains("Connection refused") => {
            "could not reach the server; is it running? check --s3-endpoint"
        }
        _ if text.contains("non-2xx status code: 5") => {
            "the S3 server failed; check its health and logs, then retry"
        }
        _ => "check the S3 server's log",
    }
}

fn is_not_found(e: &object_store::Error) -> bool {
    matches!(e, object_store::Error::NotFound { .. })
}

impl Client {
    /// A client for `config` (no request is made).
    pub fn new(config: &Config) -> Result<Client> {
        let endpoint: Url = config.endpoint.parse().with_context(|| {
            format!(
                "--s3-endpoint {:?} is not a URL (expected e.g. http://127.0.0.1:3900)",
                config.endpoint
            )
        })?;
        if !matches!(endpoint.scheme(), "http" | "https") || endpoint.host_str().is_none() {
            bail!(
                "--s3-endpoint {:?} must be an http:// or https:// URL with a host",
                config.endpoint
            );
        }
        if config.bucket.is_empty() || config.bucket.contains('/') {
            bail!("--s3-bucket {:?} is not a bucket name", config.bucket);
        }
        let options = ClientOptions::new()
            .with_allow_http(true)
            .with_connect_timeout(Duration::from_secs(10))
            .with_pool_idle_timeout(Duration::from_secs(30));
        let retry = RetryConfig {
            max_retries: 3,
            retry_timeout: Duration::from_secs(30),
            ..RetryConfig::default()
        };
        let store = AmazonS3Builder::new()
            .with_endpoint(config.endpoint.trim_end_matches('/'))
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_access_key_id(&config.credentials.access_key_id)
            .with_secret_access_key(&config.credentials.secret_access_key)
            .with_virtual_hosted_style_request(false)
            .with_client_options(options)
            .with_retry(retry)
            .build()
            .with_context(|| {
                format!(
                    "setting up the S3 client for s3://{} at {}",
                    config.bucket, config.endpoint
                )
            })?;
        Ok(Client {
            store: Arc::new(store),
            config: config.clone(),
            endpoint,
            send_budget: Arc::new(Semaphore::new(SEND_BUDGET_MIB as usize)),
        })
    }

    /// Wait until `len` bytes may be held in memory for sending (see
    /// [`SEND_BUDGET_MIB`]); the permit gives them back when dropped.
    async fn send_permit(&self, len: u64) -> Result<OwnedSemaphorePermit> {
        let mib = u32::try_from(len.div_ceil(1 << 20))
            .unwrap_or(u32::MAX)
            .clamp(1, SEND_BUDGET_MIB);
        Arc::clone(&self.send_budget)
            .acquire_many_owned(mib)
            .await
            .context("the S3 send budget is closed")
    }

    /// `s3://bucket/key at endpoint`, for messages.
    pub fn describe_key(&self, key: &str) -> String {
        format!("s3://{}/{key} at {}", self.config.bucket, self.endpoint)
    }

    fn error(&self, op: &str, key: &str, e: object_store::Error) -> anyhow::Error {
        let h = hint(&e);
        anyhow!("S3 {op} of {} failed: {e}; {h}", self.describe_key(key))
    }

    fn path(&self, key: &str) -> Result<ObjectPath> {
        ObjectPath::parse(key)
            .with_context(|| format!("{} is not a valid object key", self.describe_key(key)))
    }

    /// Store `bytes` at `key` (one PUT).
    pub async fn put_bytes(&self, key: &str, bytes: Bytes) -> Result<()> {
        let p = self.path(key)?;
        self.store
            .put(&p, PutPayload::from(bytes))
            .await
            .map_err(|e| self.error("PUT", key, e))?;
        Ok(())
    }

    /// Store the first `size` bytes of the file `path` at `key` (one PUT).
    pub async fn put_file(&self, key: &str, path: &Path, size: u64) -> Result<()> {
        let _held = self.send_permit(size).await?;
        let bytes = read_range(path, 0, size).await?;
        self.put_bytes(key, bytes).await
    }

    /// The object's size, or None if there is no such object.
    pub async fn head(&self, key: &str) -> Result<Option<u64>> {
        match self.store.head(&self.path(key)?).await {
            Ok(m) => Ok(Some(m.size)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(self.error("HEAD", key, e)),
        }
    }

    /// The whole object, or None if there is no such object.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let got = match self.store.get(&self.path(key)?).await {
            Ok(g) => g,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(self.error("GET", key, e)),
        };
        let b = got
            .bytes()
            .await
            .with_context(|| format!("S3 GET of {}: the body broke off", self.describe_key(key)))?;
        Ok(Some(b))
    }

    /// `len` (> 0) bytes of the object from `start`, streamed; None if
    /// there is no such object.
    pub async fn get_range(
        &self,
        key: &str,
        start: u64,
        len: u64,
    ) -> Result<Option<impl Stream<Item = std::io::Result<Bytes>> + Send + 'static>> {
        let options = GetOptions {
            range: Some(GetRange::Bounded(start..start + len)),
            ..GetOptions::default()
        };
        let got = match self.store.get_opts(&self.path(key)?, options).await {
            Ok(g) => g,
            Err(e) if is_not_found(&e) => return Ok(None),
            Err(e) => return Err(self.error("GET", key, e)),
        };
        let what = self.describe_key(key);
        Ok(Some(got.into_stream().map_err(move |e| {
            std::io::Error::other(format!("S3 GET of {what}: the body broke off: {e}"))
        })))
    }

    /// Remove the object (no error if it is not there).
    pub async fn delete(&self, key: &str) -> Result<()> {
        match self.store.delete(&self.path(key)?).await {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(self.error("DELETE", key, e)),
        }
    }

    /// Every object whose key starts with `prefix` (a folder: `a/b/`),
    /// all pages.
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        let p = self.path(prefix.trim_end_matches('/'))?;
        let under = (!prefix.is_empty()).then_some(&p);
        let listed: Vec<object_store::ObjectMeta> = self
            .store
            .list(under)
            .try_collect()
            .await
            .map_err(|e| self.error("LIST", prefix, e))?;
        Ok(listed
            .into_iter()
            .map(|m| ObjectInfo {
                key: m.location.to_string(),
                size: m.size,
                etag: m.e_tag.unwrap_or_default().trim_matches('"').to_string(),
            })
            .collect())
    }

    /// Start a multipart upload to `key`; returns its upload id.
    pub async fn create_multipart(&self, key: &str) -> Result<String> {
        self.store
            .create_multipart(&self.path(key)?)
            .await
            .map_err(|e| self.error("CreateMultipartUpload", key, e))
    }

    /// Send part `number` (from 1): `len` bytes of `path` from `offset`.
    pub async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: usize,
        path: &Path,
        offset: u64,
        len: u64,
    ) -> Result<Part> {
        let _held = self.send_permit(len).await?;
        let bytes = read_range(path, offset, len).await?;
        let index = number.checked_sub(1).context("parts are numbered from 1")?;
        self.store
            .put_part(
                &self.path(key)?,
                &upload_id.to_string(),
                index,
                bytes.into(),
            )
            .await
            .map_err(|e| self.error(&format!("UploadPart {number}"), key, e))
    }

    /// Finish a multipart upload from its parts, in order.
    pub async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: Vec<Part>,
    ) -> Result<()> {
        self.store
            .complete_multipart(&self.path(key)?, &upload_id.to_string(), parts)
            .await
            .map_err(|e| self.error("CompleteMultipartUpload", key, e))?;
        Ok(())
    }

    /// Abandon a multipart upload, dropping its parts.
    pub async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<()> {
        match self
            .store
            .abort_multipart(&self.path(key)?, &upload_id.to_string())
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(self.error("AbortMultipartUpload", key, e)),
        }
    }

    /// Unfinished multipart uploads under `prefix`: (key, upload id).
    /// One page (up to 1,000), which is all a bucket should ever hold.
    pub async fn list_multipart(&self, prefix: &str) -> Result<Vec<(String, String)>> {
        let what = || self.describe_key(prefix);
        let mut url = self.endpoint.clone();
        let base = url.path().trim_end_matches('/').to_string();
        url.set_path(&format!("{base}/{}", self.config.bucket));
        url.query_pairs_mut()
            .append_pair("prefix", prefix)
            .append_pair("uploads", "");
        let mut request = http::Request::builder()
            .method(http::Method::GET)
            .uri(url.as_str())
            .body(object_store::client::HttpRequestBody::from(Bytes::new()))
            .with_context(|| format!("building ListMultipartUploads of {}", what()))?;
        let credential = AwsCredential {
            key_id: self.config.credentials.access_key_id.clone(),
            secret_key: self.config.credentials.secret_access_key.clone(),
            token: None,
        };
        AwsAuthorizer::new(&credential, "s3", &self.config.region).authorize(&mut request, None);
        let mut send = reqwest::Client::new().get(url);
        for (name, value) in request.headers() {
            send = send.header(name.as_str(), value.as_bytes());
        }
        let r = send.send().await.with_context(|| {
            format!(
                "ListMultipartUploads of {}: could not reach the server",
                what()
            )
        })?;
        let status = r.status();
        let body = r
            .text()
            .await
            .context("reading ListMultipartUploads' answer")?;
        if !status.is_success() {
            bail!(
                "S3 ListMultipartUploads of {} failed: HTTP {status} {}",
                what(),
                xml::first(&body, "Code").unwrap_or_default()
            );
        }
        Ok(xml::all(&body, "Upload")
            .into_iter()
            .map(|u| {
                (
                    xml::first(u, "Key").unwrap_or_default(),
                    xml::first(u, "UploadId").unwrap_or_default(),
                )
            })
            .collect())
    }
}

/// `len` bytes of `path` from `offset`, in memory (a PUT body or part).
async fn read_range(path: &Path, offset: u64, len: u64) -> Result<Bytes> {
    let mut f = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("opening {} to send it to S3", path.display()))?;
    f.seek(std::io::SeekFrom::Start(offset)).await?;
    let cap = usize::try_from(len).context("a part larger than memory")?;
    let mut buf = Vec::with_capacity(cap);
    f.take(len)
        .read_to_end(&mut buf)
        .await
        .with_context(|| format!("reading {} to send it to S3", path.display()))?;
    if buf.len() as u64 != len {
        bail!(
            "{} holds {} bytes from offset {offset}, not {len}",
            path.display(),
            buf.len()
        );
    }
    Ok(Bytes::from(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(endpoint: &str) -> Config {
        Config {
            endpoint: endpoint.into(),
            bucket: "b".into(),
            region: "garage".into(),
            credentials: Credentials {
                access_key_id: "a".into(),
                secret_access_key: "s".into(),
            },
        }
    }

    fn failure(source: &str) -> object_store::Error {
        object_store::Error::Generic {
            store: "S3",
            source: source.into(),
        }
    }

    #[test]
    fn error_messages_say_what_to_do() {
        let client = Client::new(&config("http://127.0.0.1:3900")).unwrap();
        let m = client
            .error(
                "PUT",
                "blobs/x",
                failure("NoSuchBucket: Bucket not found: x"),
            )
            .to_string();
        assert!(
            m.contains("NoSuchBucket: Bucket not found")
                && m.contains("--s3-bucket")
                && m.contains("s3://b/blobs/x at http://127.0.0.1:3900/"),
            "{m}"
        );
        let denied = object_store::Error::PermissionDenied {
            path: "blobs/x".into(),
            source: "403 Forbidden".into(),
        };
        let m = client.error("GET", "blobs/x", denied).to_string();
        assert!(m.contains("403") && m.contains("AWS_ACCESS_KEY_ID"), "{m}");
        let m = client
            .error("GET", "k", failure("SignatureDoesNotMatch"))
            .to_string();
        assert!(m.contains("--s3-region"), "{m}");
    }

    #[test]
    fn unreachable_servers_point_at_the_endpoint() {
        let h = hint(&failure("error sending request for url (http://x/b/k)"));
        assert!(h.contains("--s3-endpoint"), "{h}");
        assert_eq!(hint(&failure("odd")), "check the S3 server's log");
    }

    #[test]
    fn server_faults_say_retry() {
        let h = hint(&failure(
            "after 3 retries - Server returned non-2xx status code: 502 Bad Gateway: ",
        ));
        assert!(
            h.contains("the S3 server failed") && h.contains("retry"),
            "{h}"
        );
        let h = hint(&failure(
            "Server returned non-2xx status code: 403 Forbidden: ",
        ));
        assert!(h.contains("access key"), "{h}");
    }

    #[test]
    fn bad_endpoints_are_refused() {
        assert!(Client::new(&config("127.0.0.1:3900")).is_err());
        assert!(Client::new(&config("ftp://127.0.0.1:3900")).is_err());
        let mut c = config("http://127.0.0.1:3900");
        c.bucket = "a/b".into();
        assert!(Client::new(&c).is_err());
        let client = Client::new(&config("http://127.0.0.1:3900")).unwrap();
        assert_eq!(client.endpoint.port(), Some(3900));
        assert_eq!(
            client.describe_key("blobs/x"),
            "s3://b/blobs/x at http://127.0.0.1:3900/"
        );
    }

    #[test]
    fn keys_reach_the_bucket_unchanged() {
        // object_store must not re-encode the store's key layout.
        let client = Client::new(&config("http://127.0.0.1:3900")).unwrap();
        for key in [
            "airlift/blobs/sha256/0123abcd",
            "airlift/repositories/quay.io/org/app/_tags/v1.2_rc-3",
            "repositories/docker.io/library/x/_referrers/sha256-00/sha512-ff",
        ] {
            assert_eq!(client.path(key).unwrap().as_ref(), key);
        }
        assert!(client.path("a//b").is_err());
    }

    #[tokio::test]
    async fn parts_are_read_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        let data: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        assert_eq!(&read_range(&path, 0, 1000).await.unwrap()[..], &data[..]);
        assert_eq!(&read_range(&path, 990, 10).await.unwrap()[..], &data[990..]);
        let e = read_range(&path, 995, 10).await.unwrap_err().to_string();
        assert!(e.contains("holds 5 bytes from offset 995, not 10"), "{e}");
    }

    #[tokio::test]
    async fn uploads_wait_for_the_send_budget() {
        let client = Client::new(&config("http://127.0.0.1:3900")).unwrap();
        let mib = 1u64 << 20;
        let big = client.send_permit(200 * mib).await.unwrap();
        // A small one fits beside it ...
        let small = client.send_permit(10 * mib).await.unwrap();
        assert_eq!(small.num_permits(), 10);
        // ... 200 + 10 + 100 MiB is over the budget: this one waits (and,
        // the semaphore being fair, so does anything asked for after it) ...
        let second = client.send_permit(100 * mib);
        tokio::pin!(second);
        let waited = tokio::time::timeout(Duration::from_millis(200), &mut second).await;
        assert!(waited.is_err(), "a send past the budget did not wait");
        // ... and goes once the first is done.
        drop(big);
        let got = tokio::time::timeout(Duration::from_secs(5), second).await;
        assert_eq!(got.unwrap().unwrap().num_permits(), 100);
        // A part larger than the whole budget takes all of it, not forever.
        drop(small);
        let whole = client.send_permit(1024 * mib).await.unwrap();
        assert_eq!(whole.num_permits(), SEND_BUDGET_MIB as usize);
        // Clones share one budget.
        let other = client.clone();
        let blocked =
            tokio::time::timeout(Duration::from_millis(100), other.send_permit(mib)).await;
        assert!(blocked.is_err(), "a clone had its own budget");
    }
}
