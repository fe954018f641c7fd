//! The page's files, embedded at build time, each with a strong `ETag`
//! (sha256 of its bytes, computed once) and conditional GET.

use std::sync::LazyLock;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use sha2::{Digest as _, Sha256};

/// Where the assets other than the page itself are served.
pub const ASSET_PREFIX: &str = "/airlift/ui/";

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// The URL path.
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
    /// `"<sha256 hex>"`, quotes included.
    pub etag: String,
}

fn asset(path: &'static str, content_type: &'static str, body: &'static [u8]) -> Asset {
    Asset {
        path,
        content_type,
        body,
        etag: format!("\"{}\"", hex::encode(Sha256::digest(body))),
    }
}

static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| {
    vec![
        asset(
            "/",
            "text/html; charset=utf-8",
            include_bytes!("index.html"),
        ),
        asset(
            "/airlift/ui/app.js",
            "text/javascript; charset=utf-8",
            include_bytes!("app.js"),
        ),
        asset(
            "/airlift/ui/style.css",
            "text/css; charset=utf-8",
            include_bytes!("style.css"),
        ),
        asset(
            "/airlift/ui/favicon.svg",
            "image/svg+xml",
            include_bytes!("favicon.svg"),
        ),
    ]
});

/// Every asset.
pub fn all() -> &'static [Asset] {
    &ASSETS
}

/// The asset at `path`.
pub fn find(path: &str) -> Option<&'static Asset> {
    all().iter().find(|a| a.path == path)
}

/// Does an `If-None-Match` value match `etag` (weak comparison, `*`)?
pub fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    if_none_match.split(',').map(str::trim).any(|t| {
        t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag.strip_prefix("W/").unwrap_or(etag)
    })
}

/// The response for `a` given the request's headers (304 when the
/// client's copy is current).
pub fn respond(a: &Asset, req: &HeaderMap) -> Response {
    let current = req
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| etag_matches(v, &a.etag));
    let mut res = if current {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(a.content_type),
            )],
            a.body,
        )
            .into_response()
    };
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&a.etag) {
        h.insert(header::ETAG, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if a.path == "/" {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(super::CSP),
        );
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    res
}

/// `GET /`.
pub async fn index(headers: HeaderMap) -> Response {
    match find("/") {
        Some(a) => respond(a, &headers),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// `GET` of an asset, found by the request's path.
pub async fn serve(uri: Uri, headers: HeaderMap) -> Response {
    match find(uri.path()) {
        Some(a) => respond(a, &headers),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_compare_weakly_and_in_lists() {
        let e = "\"abc\"";
        assert!(etag_matches("\"abc\"", e));
        assert!(etag_matches("W/\"abc\"", e));
        assert!(etag_matches("\"x\", \"abc\"", e));
        assert!(etag_matches("*", e));
        assert!(!etag_matches("\"abd\"", e));
        assert!(!etag_matches("", e));
    }

    #[test]
    fn every_asset_is_embedded_and_referenced_by_the_page() {
        let page = std::str::from_utf8(find("/").unwrap().body).unwrap();
        for a in all() {
            assert!(!a.body.is_empty(), "{}", a.path);
            assert_eq!(a.etag.len(), 66, "{}", a.etag);
            if a.path != "/" {
                assert!(a.path.starts_with(ASSET_PREFIX));
                assert!(page.contains(a.path), "the page does not load {}", a.path);
            }
        }
    }

    #[test]
    fn the_page_has_no_inline_script_or_style_and_nothing_external() {
        let page = std::str::from_utf8(find("/").unwrap().body).unwrap();
        // Every <script> has a src; no style attributes or <style> blocks
        // (the CSP would block them).
        for (i, _) in page.match_indices("<script") {
            let tag = &page[i..i + page[i..].find('>').unwrap()];
            assert!(tag.contains("src=\"/airlift/ui/"), "inline script: {tag}");
        }
        assert!(!page.contains("<style"));
        assert!(!page.contains(" style="));
        for (i, _) in page.match_indices(" on") {
            let word: String = page[i + 1..]
                .chars()
                .take_while(|c| c.is_ascii_alphabetic())
                .collect();
            let after = page[i + 1 + word.len()..].trim_start();
            assert!(
                !after.starts_with('='),
                "inline event handler {word} in the page"
            );
        }
        for a in all() {
            let text = String::from_utf8_lossy(a.body);
            assert!(
                !text.contains("http://") && !text.contains("https://") || a.path.ends_with(".svg"),
                "{} loads something from outside",
                a.path
            );
        }
    }
}
