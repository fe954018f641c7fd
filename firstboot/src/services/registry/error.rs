//! The one error type of the registry, rendered as the distribution
//! spec's JSON: `{"errors":[{"code":"…","message":"…","detail":…}]}`.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::store::error::StoreError;

/// The spec's error codes (plus `UNKNOWN` for server faults).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    BlobUnknown,
    BlobUploadInvalid,
    BlobUploadUnknown,
    DigestInvalid,
    ManifestBlobUnknown,
    ManifestInvalid,
    ManifestUnknown,
    NameInvalid,
    NameUnknown,
    SizeInvalid,
    Unauthorized,
    Denied,
    Unsupported,
    TooManyRequests,
    /// Not a spec code: a fault of this server (I/O error), status 500.
    Unknown,
}

impl Code {
    /// The code as the spec spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::BlobUnknown => "BLOB_UNKNOWN",
            Code::BlobUploadInvalid => "BLOB_UPLOAD_INVALID",
            Code::BlobUploadUnknown => "BLOB_UPLOAD_UNKNOWN",
            Code::DigestInvalid => "DIGEST_INVALID",
            Code::ManifestBlobUnknown => "MANIFEST_BLOB_UNKNOWN",
            Code::ManifestInvalid => "MANIFEST_INVALID",
            Code::ManifestUnknown => "MANIFEST_UNKNOWN",
            Code::NameInvalid => "NAME_INVALID",
            Code::NameUnknown => "NAME_UNKNOWN",
            Code::SizeInvalid => "SIZE_INVALID",
            Code::Unauthorized => "UNAUTHORIZED",
            Code::Denied => "DENIED",
            Code::Unsupported => "UNSUPPORTED",
            Code::TooManyRequests => "TOOMANYREQUESTS",
            Code::Unknown => "UNKNOWN",
        }
    }

    /// The HTTP status a code is answered with unless a handler picks
    /// another (416 for upload range errors, 413 for oversize manifests).
    pub fn status(self) -> StatusCode {
        match self {
            Code::BlobUnknown
            | Code::BlobUploadUnknown
            | Code::ManifestUnknown
            | Code::NameUnknown => StatusCode::NOT_FOUND,
            Code::BlobUploadInvalid
            | Code::DigestInvalid
            | Code::ManifestBlobUnknown
            | Code::ManifestInvalid
            | Code::NameInvalid
            | Code::SizeInvalid => StatusCode::BAD_REQUEST,
            Code::Unauthorized => StatusCode::UNAUTHORIZED,
            Code::Denied => StatusCode::FORBIDDEN,
            Code::Unsupported => StatusCode::METHOD_NOT_ALLOWED,
            Code::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Code::Unknown => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// A registry error: code, human message, optional detail and status.
#[derive(Debug)]
pub struct RegistryError {
    pub code: Code,
    pub status: StatusCode,
    pub message: String,
    pub detail: Option<serde_json::Value>,
}

/// Handlers return this.
pub type Result<T, E = RegistryError> = std::result::Result<T, E>;

impl RegistryError {
    /// An error with the code's default status.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        RegistryError {
            code,
            status: code.status(),
            message: message.into(),
            detail: None,
        }
    }

    /// Answer with another status than the code's default.
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// Attach the spec's free-form `detail`.
    pub fn with_detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = Some(detail);
        self
    }

    /// A server fault; the full chain is logged and summarised to the client.
    pub fn internal(err: anyhow::Error) -> Self {
        tracing::error!("internal error: {err:#}");
        RegistryError::new(Code::Unknown, format!("{err:#}"))
    }
}

impl From<anyhow::Error> for RegistryError {
    fn from(err: anyhow::Error) -> Self {
        RegistryError::internal(err)
    }
}

impl From<std::io::Error> for RegistryError {
    fn from(err: std::io::Error) -> Self {
        RegistryError::internal(err.into())
    }
}

/// The one place storage errors become the spec's codes and statuses.
impl From<StoreError> for RegistryError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::BlobGone(m) => RegistryError::new(Code::BlobUnknown, m),
            StoreError::ManifestGone(m) => RegistryError::new(Code::ManifestUnknown, m),
            StoreError::ManifestMissing(m) => RegistryError::new(Code::ManifestBlobUnknown, m),
            StoreError::UploadUnknown(m) => RegistryError::new(Code::BlobUploadUnknown, m),
            StoreError::UploadRange(m) => RegistryError::new(Code::BlobUploadInvalid, m)
                .with_status(StatusCode::RANGE_NOT_SATISFIABLE),
            StoreError::Incoming(m) => RegistryError::new(Code::BlobUploadInvalid, m),
            StoreError::TooLarge(m) => {
                RegistryError::new(Code::SizeInvalid, m).with_status(StatusCode::PAYLOAD_TOO_LARGE)
            }
            StoreError::DigestMismatch {
                message,
                expected,
                actual,
            } => RegistryError::new(Code::DigestInvalid, message).with_detail(
                json!({ "expected": expected.to_string(), "actual": actual.to_string() }),
            ),
            StoreError::Busy(m) => RegistryError::new(Code::TooManyRequests, m)
                .with_status(StatusCode::TOO_MANY_REQUESTS),
            // 507: the request is fine, the server's disk is not.
            StoreError::NoSpace(e) => RegistryError::new(Code::Denied, e.to_string())
                .with_status(StatusCode::INSUFFICIENT_STORAGE),
            StoreError::Internal(e) => RegistryError::internal(e),
        }
    }
}

impl std::fmt::Display for RegistryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ({}): {}",
            self.code.as_str(),
            self.status,
            self.message
        )
    }
}

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let mut entry = json!({ "code": self.code.as_str(), "message": self.message });
        if let Some(d) = self.detail {
            entry["detail"] = d;
        }
        let body = serde_json::to_vec(&json!({ "errors": [entry] })).unwrap_or_default();
        let mut resp = (self.status, body).into_response();
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if self.code == Code::Unauthorized {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"airlift\""),
            );
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn renders_spec_json() {
        let resp = RegistryError::new(Code::BlobUnknown, "no such blob")
            .with_detail(json!({"digest": "sha256:x"}))
            .into_response();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
            .await
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["errors"][0]["code"], "BLOB_UNKNOWN");
        assert_eq!(v["errors"][0]["message"], "no such blob");
        assert_eq!(v["errors"][0]["detail"]["digest"], "sha256:x");
    }

    #[test]
    fn unauthorized_challenges() {
        let resp = RegistryError::new(Code::Unauthorized, "log in").into_response();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            resp.headers()[header::WWW_AUTHENTICATE],
            "Basic realm=\"airlift\""
        );
    }
}
