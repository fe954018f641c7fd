//! Writing a response head for the connection driver: how the body is
//! framed (the handler's `Content-Length`, else the body's known size,
//! else chunked, or read-to-close for HTTP/1.0), a `Date` header as
//! hyper adds one, and `Connection: close` when the connection ends.

use std::cell::RefCell;
use std::time::{Duration, SystemTime};

use axum::http::response::Parts;
use axum::http::{header, HeaderValue, Method, StatusCode, Version};

/// How the body follows the head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body bytes at all (HEAD, 204, 304).
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding (HTTP/1.1, unknown length).
    Chunked,
    /// Bytes until the connection closes (HTTP/1.0, unknown length).
    UntilClose,
}

/// What decides the framing besides the response itself.
pub struct Context {
    pub method: Method,
    pub version: Version,
    /// The body's exact size, if known.
    pub exact: Option<u64>,
    /// Whether the connection may stay open after this response.
    pub keep_alive: bool,
}

/// The framing of `parts` and whether the connection stays open.
pub fn framing(parts: &Parts, cx: &Context) -> (Framing, bool) {
    let mut keep = cx.keep_alive && !super::head::has_token(&parts.headers, "close");
    let no_body = cx.method == Method::HEAD
        || parts.status == StatusCode::NO_CONTENT
        || parts.status == StatusCode::NOT_MODIFIED
        || parts.status.is_informational();
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let framing = match (no_body, declared.or(cx.exact)) {
        (true, _) => Framing::None,
        (false, Some(n)) => Framing::Length(n),
        (false, None) if cx.version == Version::HTTP_11 => Framing::Chunked,
        (false, None) => {
            keep = false;
            Framing::UntilClose
        }
    };
    (framing, keep)
}

/// Append the head of `parts` to `out`.
pub fn encode(parts: &Parts, cx: &Context, framing: Framing, keep: bool, out: &mut Vec<u8>) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(parts.status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(parts.status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in &parts.headers {
        if name == header::CONNECTION || name == header::TRANSFER_ENCODING {
            continue;
        }
        line(out, name.as_str().as_bytes(), value.as_bytes());
    }
    let has_length = parts.headers.contains_key(header::CONTENT_LENGTH);
    match framing {
        Framing::Length(n) if !has_length => {
            line(out, b"content-length", n.to_string().as_bytes());
        }
        Framing::None if !has_length && cx.method == Method::HEAD => {
            if let Some(n) = cx.exact.filter(|n| *n > 0) {
                line(out, b"content-length", n.to_string().as_bytes());
            }
        }
        Framing::Chunked => line(out, b"transfer-encoding", b"chunked"),
        _ => {}
    }
    if !parts.headers.contains_key(header::DATE) {
        with_date(|d| line(out, b"date", d.as_bytes()));
    }
    if !keep {
        line(out, b"connection", b"close");
    }
    out.extend_from_slice(b"\r\n");
}

fn line(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

thread_local! {
    /// The `Date` value of the current second, per thread.
    static DATE: RefCell<(u64, HeaderValue)> =
        const { RefCell::new((u64::MAX, HeaderValue::from_static(""))) };
}

/// Call `f` with the current `Date` (rendered once a second).
fn with_date(f: impl FnOnce(&str)) {
    let now = SystemTime::now();
    let secs = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs();
    DATE.with(|d| {
        let mut d = d.borrow_mut();
        if d.0 != secs {
            if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(now)) {
                *d = (secs, v);
            }
        }
        f(d.1.to_str().unwrap_or(""));
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Response;

    fn parts(status: u16, headers: &[(&str, &str)]) -> Parts {
        let mut b = Response::builder().status(status);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    fn cx(method: Method, version: Version, exact: Option<u64>) -> Context {
        Context {
            method,
            version,
            exact,
            keep_alive: version == Version::HTTP_11,
        }
    }

    fn head(p: &Parts, c: &Context) -> String {
        let (f, keep) = framing(p, c);
        let mut out = Vec::new();
        encode(p, c, f, keep, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn framing_follows_the_response_and_request() {
        let get11 = cx(Method::GET, Version::HTTP_11, None);
        let p = parts(200, &[("content-length", "12")]);
        assert_eq!(framing(&p, &get11), (Framing::Length(12), true));
        let p = parts(200, &[]);
        assert_eq!(framing(&p, &get11), (Framing::Chunked, true));
        assert_eq!(
            framing(&p, &cx(Method::GET, Version::HTTP_11, Some(5))),
            (Framing::Length(5), true)
        );
        assert_eq!(
            framing(&p, &cx(Method::GET, Version::HTTP_10, None)),
            (Framing::UntilClose, false)
        );
        assert_eq!(
            framing(&p, &cx(Method::HEAD, Version::HTTP_11, None)),
            (Framing::None, true)
        );
        assert_eq!(framing(&parts(204, &[]), &get11), (Framing::None, true));
        let p = parts(200, &[("connection", "close"), ("content-length", "1")]);
        assert_eq!(framing(&p, &get11), (Framing::Length(1), false));
    }

    #[test]
    fn heads_carry_status_headers_date_and_close() {
        let p = parts(206, &[("content-length", "3"), ("etag", "\"x\"")]);
        let h = head(&p, &cx(Method::GET, Version::HTTP_11, Some(3)));
        assert!(h.starts_with("HTTP/1.1 206 Partial Content\r\n"), "{h}");
        assert!(h.contains("content-length: 3\r\n"), "{h}");
        assert_eq!(h.matches("content-length").count(), 1, "{h}");
        assert!(h.contains("etag: \"x\"\r\n"), "{h}");
        assert!(h.contains("\r\ndate: ") && h.contains(" GMT\r\n"), "{h}");
        assert!(!h.contains("connection"), "{h}");
        assert!(h.ends_with("\r\n\r\n"), "{h}");
        let h = head(&parts(200, &[]), &cx(Method::GET, Version::HTTP_10, None));
        assert!(h.contains("connection: close\r\n"), "{h}");
        assert!(!h.contains("transfer-encoding"), "{h}");
        let h = head(
            &parts(200, &[]),
            &cx(Method::GET, Version::HTTP_11, Some(7)),
        );
        assert!(h.contains("content-length: 7\r\n"), "{h}");
        let h = head(&parts(200, &[]), &cx(Method::GET, Version::HTTP_11, None));
        assert!(h.contains("transfer-encoding: chunked\r\n"), "{h}");
        let h = head(
            &parts(200, &[]),
            &cx(Method::HEAD, Version::HTTP_11, Some(9)),
        );
        assert!(h.contains("content-length: 9\r\n"), "{h}");
    }
}
