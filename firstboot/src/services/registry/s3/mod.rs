//! A small S3 client (path-style requests, AWS Signature V4) on reqwest,
//! with just what the registry's S3 store needs: PUT (bytes, or a file
//! range streamed from disk), HEAD, ranged GET streamed back, DELETE,
//! ListObjectsV2, and multipart uploads (create, part, complete, abort,
//! list). Every error names the operation, `s3://bucket/key`, the
//! endpoint and what to check.

pub mod credentials;
pub mod sigv4;
pub mod xml;

use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use futures_util::{Stream, TryStreamExt};
use reqwest::{Method, StatusCode, Url};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt};

pub use sigv4::Credentials;

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

/// An S3 client for one bucket.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
    endpoint: Url,
    host: String,
    base_path: String,
    bucket: String,
    region: String,
    credentials: Credentials,
}

/// A request body.
enum Payload<'a> {
    Empty,
    Bytes(Bytes),
    /// `len` bytes of a file from `offset`, streamed; `sha256` hex if known.
    File {
        path: &'a Path,
        offset: u64,
        len: u64,
        sha256: Option<String>,
    },
}

/// What a failed response said.
fn describe(status: StatusCode, body: &str) -> String {
    let code = xml::first(body, "Code").unwrap_or_default();
    let message = xml::first(body, "Message").unwrap_or_default();
    let hint = match (status.as_u16(), code.as_str()) {
        (_, "NoSuchBucket") => "create the bucket or fix --s3-bucket",
        (403, _)
        | (
            _,
            "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "AccessDenied"
            | "AuthorizationHeaderMalformed",
        ) => {
            "check the access key and secret (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or \
             --s3-credentials-file), --s3-region, and that the key may read and write the bucket"
        }
        (500..=599, _) => "the S3 server failed; check its health and logs, then retry",
        _ => "check the S3 server's log",
    };
    let said = [code, message]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(": ");
    if said.is_empty() {
        format!("HTTP {status}; {hint}")
    } else {
        format!("HTTP {status} ({said}); {hint}")
    }
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
        let host = match endpoint.port() {
            Some(p) => format!("{}:{p}", endpoint.host_str().unwrap_or_default()),
            None => endpoint.host_str().unwrap_or_default().to_string(),
        };
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .context("building the S3 HTTP client")?;
        Ok(Client {
            http,
            base_path: endpoint.path().trim_end_matches('/').to_string(),
            endpoint,
            host,
            bucket: config.bucket.clone(),
            region: config.region.clone(),
            credentials: config.credentials.clone(),
        })
    }

    /// `s3://bucket/key at endpoint`, for messages.
    pub fn describe_key(&self, key: &str) -> String {
        format!("s3://{}/{key} at {}", self.bucket, self.endpoint)
    }

    fn error(&self, op: &str, key: &str, status: StatusCode, body: &str) -> anyhow::Error {
        anyhow!(
            "S3 {op} of {} failed: {}",
            self.describe_key(key),
            describe(status, body)
        )
    }

    async fn send(
        &self,
        op: &str,
        method: Method,
        key: &str,
        query: &[(String, String)],
        payload: Payload<'_>,
        range: Option<String>,
    ) -> Result<reqwest::Response> {
        let path = if key.is_empty() {
            format!(
                "{}/{}",
                self.base_path,
                sigv4::uri_encode(&self.bucket, false)
            )
        } else {
            format!(
                "{}/{}/{}",
                self.base_path,
                sigv4::uri_encode(&self.bucket, false),
                sigv4::uri_encode(key, true)
            )
        };
        let (body, sha, len) = match payload {
            Payload::Empty => (
                reqwest::Body::from(Bytes::new()),
                sigv4::EMPTY_SHA256.to_string(),
                0,
            ),
            Payload::Bytes(b) => {
                let sha = hex::encode(Sha256::digest(&b));
                let len = b.len() as u64;
                (reqwest::Body::from(b), sha, len)
            }
            Payload::File {
                path,
                offset,
                len,
                sha256,
            } => {
                let mut f = tokio::fs::File::open(path)
                    .await
                    .with_context(|| format!("opening {} to send it to S3", path.display()))?;
                f.seek(std::io::SeekFrom::Start(offset)).await?;
                let stream = tokio_util::io::ReaderStream::with_capacity(f.take(len), 256 << 10);
                (
                    reqwest::Body::wrap_stream(stream),
                    sha256.unwrap_or_else(|| sigv4::UNSIGNED.to_string()),
                    len,
                )
            }
        };
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let date = sigv4::amz_date(unix);
        let extra: Vec<(&str, String)> = range.iter().map(|r| ("range", r.clone())).collect();
        let auth = sigv4::authorization(
            &sigv4::Request {
                method: method.as_str(),
                host: &self.host,
                path: &path,
                query,
                payload_sha256: &sha,
                amz_date: &date,
                region: &self.region,
                extra_headers: &extra,
            },
            &self.credentials,
        );
        let mut url = self.endpoint.clone();
        url.set_path(&path);
        let q = sigv4::canonical_query(query);
        url.set_query((!q.is_empty()).then_some(q.as_str()));
        let mut req = self
            .http
            .request(method, url)
            .header("authorization", auth)
            .header("x-amz-date", &date)
            .header("x-amz-content-sha256", &sha)
            .header("content-length", len.to_string())
            .body(body);
        if let Some(r) = range {
            req = req.header("range", r);
        }
        req.send().await.with_context(|| {
            format!(
                "S3 {op} of {}: could not reach the server; is it running? check --s3-endpoint",
                self.describe_key(key)
            )
        })
    }

    async fn expect_ok(
        &self,
        op: &str,
        key: &str,
        r: reqwest::Response,
    ) -> Result<reqwest::Response> {
        if r.status().is_success() {
            return Ok(r);
        }
        let status = r.status();
        let body = r.text().await.unwrap_or_default();
        Err(self.error(op, key, status, &body))
    }

    /// Store `bytes` at `key` (one PUT, signed with the body's SHA-256).
    pub async fn put_bytes(&self, key: &str, bytes: Bytes) -> Result<()> {
        let r = self
            .send("PUT", Method::PUT, key, &[], Payload::Bytes(bytes), None)
            .await?;
        self.expect_ok("PUT", key, r).await.map(drop)
    }

    /// Store a whole file at `key` in one PUT, streamed from disk.
    /// `sha256` (hex) lets the server check the content.
    pub async fn put_file(
        &self,
        key: &str,
        path: &Path,
        len: u64,
        sha256: Option<String>,
    ) -> Result<()> {
        let payload = Payload::File {
            path,
            offset: 0,
            len,
            sha256,
        };
        let r = self
            .send("PUT", Method::PUT, key, &[], payload, None)
            .await?;
        self.expect_ok("PUT", key, r).await.map(drop)
    }

    /// The object's size, or None if there is no such object.
    pub async fn head(&self, key: &str) -> Result<Option<u64>> {
        let r = self
            .send("HEAD", Method::HEAD, key, &[], Payload::Empty, None)
            .await?;
        if r.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let r = self.expect_ok("HEAD", key, r).await?;
        let size = r
            .headers()
            .get("content-length")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| {
                anyhow!(
                    "S3 HEAD of {} gave no Content-Length",
                    self.describe_key(key)
                )
            })?;
        Ok(Some(size))
    }

    /// The whole object, or None if there is no such object.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        let r = self
            .send("GET", Method::GET, key, &[], Payload::Empty, None)
            .await?;
        if r.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let r = self.expect_ok("GET", key, r).await?;
        let b = r
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
        let range = format!("bytes={start}-{}", start + len - 1);
        let r = self
            .send("GET", Method::GET, key, &[], Payload::Empty, Some(range))
            .await?;
        if r.status() == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let r = self.expect_ok("GET", key, r).await?;
        let what = self.describe_key(key);
        Ok(Some(r.bytes_stream().map_err(move |e| {
            std::io::Error::other(format!("S3 GET of {what}: the body broke off: {e}"))
        })))
    }

    /// Remove the object (no error if it is not there).
    pub async fn delete(&self, key: &str) -> Result<()> {
        let r = self
            .send("DELETE", Method::DELETE, key, &[], Payload::Empty, None)
            .await?;
        if r.status() == StatusCode::NOT_FOUND {
            return Ok(());
        }
        self.expect_ok("DELETE", key, r).await.map(drop)
    }

    /// Every object whose key starts with `prefix` (all pages).
    pub async fn list(&self, prefix: &str) -> Result<Vec<ObjectInfo>> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut q = vec![
                ("list-type".to_string(), "2".to_string()),
                ("prefix".to_string(), prefix.to_string()),
            ];
            if let Some(t) = &token {
                q.push(("continuation-token".to_string(), t.clone()));
            }
            let op = format!("LIST (prefix {prefix:?})");
            let r = self
                .send(&op, Method::GET, "", &q, Payload::Empty, None)
                .await?;
            let r = self.expect_ok(&op, "", r).await?;
            let body = r.text().await.context("reading an S3 listing")?;
            for c in xml::all(&body, "Contents") {
                let key = xml::first(c, "Key").unwrap_or_default();
                let size = xml::first(c, "Size")
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                let etag = xml::first(c, "ETag")
                    .unwrap_or_default()
                    .trim_matches('"')
                    .to_string();
                out.push(ObjectInfo { key, size, etag });
            }
            if xml::first(&body, "IsTruncated").as_deref() != Some("true") {
                return Ok(out);
            }
            token = Some(xml::first(&body, "NextContinuationToken").ok_or_else(|| {
                anyhow!(
                    "S3 LIST of {} is truncated but has no NextContinuationToken",
                    self.describe_key(prefix)
                )
            })?);
        }
    }

    /// Start a multipart upload; returns its upload id.
    pub async fn create_multipart(&self, key: &str) -> Result<String> {
        let q = [("uploads".to_string(), String::new())];
        let r = self
            .send(
                "CreateMultipartUpload",
                Method::POST,
                key,
                &q,
                Payload::Empty,
                None,
            )
            .await?;
        let r = self.expect_ok("CreateMultipartUpload", key, r).await?;
        let body = r
            .text()
            .await
            .context("reading CreateMultipartUpload's answer")?;
        xml::first(&body, "UploadId").ok_or_else(|| {
            anyhow!(
                "S3 CreateMultipartUpload of {} answered without an UploadId",
                self.describe_key(key)
            )
        })
    }

    /// Send part `number` (from 1): `len` bytes of `path` from `offset`,
    /// streamed and signed with their SHA-256. Returns the part's ETag.
    #[allow(clippy::too_many_arguments)]
    pub async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        path: &Path,
        offset: u64,
        len: u64,
        sha256: String,
    ) -> Result<String> {
        let q = [
            ("partNumber".to_string(), number.to_string()),
            ("uploadId".to_string(), upload_id.to_string()),
        ];
        let payload = Payload::File {
            path,
            offset,
            len,
            sha256: Some(sha256),
        };
        let op = format!("UploadPart {number}");
        let r = self.send(&op, Method::PUT, key, &q, payload, None).await?;
        let r = self.expect_ok(&op, key, r).await?;
        r.headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .ok_or_else(|| {
                anyhow!(
                    "S3 {op} of {} answered without an ETag",
                    self.describe_key(key)
                )
            })
    }

    /// Finish a multipart upload from its parts' ETags (in order).
    pub async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        etags: &[String],
    ) -> Result<()> {
        let mut body = String::from("<CompleteMultipartUpload>");
        for (i, e) in etags.iter().enumerate() {
            body.push_str(&format!(
                "<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>",
                i + 1,
                xml::escape(e)
            ));
        }
        body.push_str("</CompleteMultipartUpload>");
        let q = [("uploadId".to_string(), upload_id.to_string())];
        let r = self
            .send(
                "CompleteMultipartUpload",
                Method::POST,
                key,
                &q,
                Payload::Bytes(Bytes::from(body)),
                None,
            )
            .await?;
        let r = self.expect_ok("CompleteMultipartUpload", key, r).await?;
        // S3 may answer 200 with an error document in the body.
        let text = r.text().await.unwrap_or_default();
        if text.contains("<Error>") {
            return Err(self.error("CompleteMultipartUpload", key, StatusCode::OK, &text));
        }
        Ok(())
    }

    /// Abandon a multipart upload, dropping its parts.
    pub async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<()> {
        let q = [("uploadId".to_string(), upload_id.to_string())];
        let r = self
            .send(
                "AbortMultipartUpload",
                Method::DELETE,
                key,
                &q,
                Payload::Empty,
                None,
            )
            .await?;
        if r.status() == StatusCode::NOT_FOUND {
            return Ok(());
        }
        self.expect_ok("AbortMultipartUpload", key, r)
            .await
            .map(drop)
    }

    /// Unfinished multipart uploads under `prefix`: (key, upload id).
    pub async fn list_multipart(&self, prefix: &str) -> Result<Vec<(String, String)>> {
        let q = [
            ("uploads".to_string(), String::new()),
            ("prefix".to_string(), prefix.to_string()),
        ];
        let r = self
            .send(
                "ListMultipartUploads",
                Method::GET,
                "",
                &q,
                Payload::Empty,
                None,
            )
            .await?;
        let r = self.expect_ok("ListMultipartUploads", prefix, r).await?;
        let body = r
            .text()
            .await
            .context("reading ListMultipartUploads' answer")?;
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

/// SHA-256 (hex) of `len` bytes of `path` from `offset`.
pub async fn sha256_of_range(path: &Path, offset: u64, len: u64) -> Result<String> {
    let mut f = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("opening {}", path.display()))?;
    f.seek(std::io::SeekFrom::Start(offset)).await?;
    let mut f = f.take(len);
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut seen = 0u64;
    loop {
        let n = f.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        seen += n as u64;
    }
    if seen != len {
        bail!(
            "{} ended at byte {} before {}",
            path.display(),
            offset + seen,
            offset + len
        );
    }
    Ok(hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_messages_say_what_to_do() {
        let body = "<Error><Code>NoSuchBucket</Code><Message>Bucket not found: x</Message></Error>";
        let m = describe(StatusCode::NOT_FOUND, body);
        assert!(
            m.contains("NoSuchBucket: Bucket not found") && m.contains("--s3-bucket"),
            "{m}"
        );
        let m = describe(StatusCode::FORBIDDEN, "");
        assert!(m.contains("403") && m.contains("AWS_ACCESS_KEY_ID"), "{m}");
    }

    #[test]
    fn bad_endpoints_are_refused() {
        let mut c = Config {
            endpoint: "127.0.0.1:3900".into(),
            bucket: "b".into(),
            region: "garage".into(),
            credentials: Credentials {
                access_key_id: "a".into(),
                secret_access_key: "s".into(),
            },
        };
        assert!(Client::new(&c).is_err());
        c.endpoint = "http://127.0.0.1:3900".into();
        let client = Client::new(&c).unwrap();
        assert_eq!(client.host, "127.0.0.1:3900");
        assert_eq!(
            client.describe_key("blobs/x"),
            "s3://b/blobs/x at http://127.0.0.1:3900/"
        );
    }
}
