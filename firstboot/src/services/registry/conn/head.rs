//! Parsing one HTTP/1.x request head for the connection driver: a
//! bodiless `GET` or `HEAD` it can answer itself, or word that hyper
//! must take the connection (anything else, or anything odd).

use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, Request, Uri, Version};

/// Headers a head may carry for the driver to parse it (hyper takes
/// heads with more).
const MAX_HEADERS: usize = 64;

/// What the bytes read so far hold. (Short-lived on the stack: boxing
/// the request would cost an allocation per request.)
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Parse {
    /// A whole request the driver answers; `len` bytes of the buffer.
    Request(Parsed, usize),
    /// Not a whole head yet.
    Partial,
    /// A request for hyper: a body, an upgrade, HTTP/2, `Expect`, an
    /// unparseable or unusual head.
    Handoff,
}

/// A request the driver answers.
#[derive(Debug)]
pub struct Parsed {
    pub request: Request<()>,
    /// Whether the connection stays open after the answer (HTTP/1.1
    /// without `Connection: close`; HTTP/1.0 always closes).
    pub keep_alive: bool,
}

/// Parse the start of `buf` as a request head.
pub fn parse(buf: &[u8]) -> Parse {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Parse::Partial,
        Err(_) => return Parse::Handoff,
    };
    match build(&req) {
        Some(parsed) => Parse::Request(parsed, len),
        None => Parse::Handoff,
    }
}

fn build(req: &httparse::Request<'_, '_>) -> Option<Parsed> {
    let method = match req.method? {
        "GET" => Method::GET,
        "HEAD" => Method::HEAD,
        _ => return None,
    };
    let version = match req.version? {
        1 => Version::HTTP_11,
        0 => Version::HTTP_10,
        _ => return None,
    };
    let uri: Uri = req.path?.parse().ok()?;
    let mut map = HeaderMap::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes()).ok()?;
        let value = HeaderValue::from_bytes(h.value).ok()?;
        map.append(name, value);
    }
    if !bodiless(&map) {
        return None;
    }
    let close = has_token(&map, "close");
    let keep_alive = version == Version::HTTP_11 && !close;
    let mut request = Request::new(());
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    *request.version_mut() = version;
    *request.headers_mut() = map;
    Some(Parsed {
        request,
        keep_alive,
    })
}

/// No body, no upgrade, no `Expect`: what the driver can answer.
fn bodiless(map: &HeaderMap) -> bool {
    let no_length = map
        .get_all(header::CONTENT_LENGTH)
        .iter()
        .all(|v| v.as_bytes() == b"0");
    no_length
        && !map.contains_key(header::TRANSFER_ENCODING)
        && !map.contains_key(header::UPGRADE)
        && !map.contains_key(header::EXPECT)
        && !has_token(map, "upgrade")
}

/// Whether a `Connection` header names `token`.
pub fn has_token(map: &HeaderMap, token: &str) -> bool {
    map.get_all(header::CONNECTION).iter().any(|v| {
        v.to_str()
            .map(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
            .unwrap_or(false)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(text: &str) -> (Parsed, usize) {
        match parse(text.as_bytes()) {
            Parse::Request(p, n) => (p, n),
            other => panic!("{text:?}: {other:?}"),
        }
    }

    fn handed_off(text: &str) -> bool {
        matches!(parse(text.as_bytes()), Parse::Handoff)
    }

    #[test]
    fn get_and_head_are_answered() {
        let text =
            "GET /v2/a/manifests/1?ns=x HTTP/1.1\r\nHost: h\r\nAccept: a\r\nAccept: b\r\n\r\nGET";
        let (p, n) = request(text);
        assert_eq!(n, text.len() - 3);
        assert_eq!(p.request.method(), Method::GET);
        assert_eq!(p.request.uri().path(), "/v2/a/manifests/1");
        assert_eq!(p.request.uri().query(), Some("ns=x"));
        assert_eq!(p.request.headers().get_all("accept").iter().count(), 2);
        assert!(p.keep_alive);
        let (p, _) = request("HEAD / HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
        assert_eq!(p.request.method(), Method::HEAD);
    }

    #[test]
    fn close_and_http10_end_the_connection() {
        assert!(
            !request("GET / HTTP/1.1\r\nConnection: Keep-Alive, close\r\n\r\n")
                .0
                .keep_alive
        );
        assert!(!request("GET / HTTP/1.0\r\n\r\n").0.keep_alive);
        assert!(
            !request("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
                .0
                .keep_alive
        );
        assert_eq!(
            request("GET / HTTP/1.0\r\n\r\n").0.request.version(),
            Version::HTTP_10
        );
    }

    #[test]
    fn partial_heads_wait_for_more() {
        assert!(matches!(
            parse(b"GET / HTTP/1.1\r\nHost: h\r\n"),
            Parse::Partial
        ));
        assert!(matches!(parse(b"GE"), Parse::Partial));
    }

    #[test]
    fn everything_else_goes_to_hyper() {
        assert!(handed_off(
            "PUT /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
        ));
        assert!(handed_off("PATCH /x HTTP/1.1\r\n\r\n"));
        assert!(handed_off("POST /x HTTP/1.1\r\n\r\n"));
        assert!(handed_off(
            "GET /x HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"
        ));
        assert!(handed_off(
            "GET /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
        ));
        assert!(handed_off(
            "GET /x HTTP/1.1\r\nExpect: 100-continue\r\n\r\n"
        ));
        assert!(handed_off(
            "GET /x HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
        ));
        assert!(handed_off("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
        assert!(handed_off("GET /x HTTP/1.1\r\nBad Header: x\r\n\r\n"));
        assert!(handed_off("\x16\x03\x01\x00"));
        let many: String = (0..MAX_HEADERS + 1)
            .map(|i| format!("X-{i}: v\r\n"))
            .collect();
        assert!(handed_off(&format!("GET / HTTP/1.1\r\n{many}\r\n")));
    }
}
