//! Client-supplied numbers at the edges of u64: a Content-Range whose
//! length overflows, or that reaches past the blob limit, is refused
//! with 416 and the upload keeps its state; blob Ranges likewise.

use super::*;

async fn status_range(env: &Env, loc: &str) -> String {
    let r = env.push(Method::GET, loc, &[], vec![]).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    r.header("range").to_string()
}

#[tokio::test]
async fn huge_content_ranges_are_refused_and_keep_the_upload() {
    let env = Env::new();
    let r = env
        .push(Method::POST, "/v2/quay.io/a/blobs/uploads/", &[], vec![])
        .await;
    let loc = r.header("location").to_string();
    let max = u64::MAX;
    // The length of 0-max overflows u64: refused, nothing kept.
    let r = env
        .push(
            Method::PATCH,
            &loc,
            &[("content-range", &format!("0-{max}"))],
            b"abc".to_vec(),
        )
        .await;
    assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(r.code(), "BLOB_UPLOAD_INVALID");
    assert_eq!(status_range(&env, &loc).await, "0-0");
    assert_eq!(
        std::fs::metadata(&env.files_under("uploads")[0])
            .unwrap()
            .len(),
        0
    );

    // After a good chunk, ranges past the limit or wrapping are refused
    // and the three bytes stay.
    let r = env.patch(&loc, "0-2", b"abc").await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    for range in [
        format!("3-{max}"),
        format!("3-{}", max - 1),
        "3-2000000000".to_string(),
    ] {
        let r = env.patch(&loc, &range, b"def").await;
        assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE, "{range}");
        let msg = r.json()["errors"][0]["message"].to_string();
        assert!(msg.contains(&range), "{msg}");
        assert_eq!(status_range(&env, &loc).await, "0-2", "{range}");
    }
    let r = env.patch(&loc, "3-5", b"def").await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let d = Digest::sha256_of(b"abcdef");
    let r = env
        .push(Method::PUT, &format!("{loc}?digest={d}"), &[], vec![])
        .await;
    assert_eq!(r.status, StatusCode::CREATED);

    // Blob Ranges with numbers at the edge of u64.
    for range in [format!("bytes=0-{max}"), format!("bytes=-{max}")] {
        let r = env
            .call(
                Method::GET,
                &format!("/v2/quay.io/a/blobs/{d}"),
                &[("range", &range)],
                vec![],
            )
            .await;
        assert_eq!(
            (r.status, &r.body[..]),
            (StatusCode::PARTIAL_CONTENT, &b"abcdef"[..]),
            "{range}"
        );
    }
    let r = env
        .call(
            Method::GET,
            &format!("/v2/quay.io/a/blobs/{d}"),
            &[("range", &format!("bytes={max}-"))],
            vec![],
        )
        .await;
    assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE);
}
