//! Repository names: upstream namespaces, the Docker Hub fallback, hostile names and digests.

use super::*;

#[tokio::test]
async fn upstream_namespaces_resolve_to_one_store() {
    let env = Env::new();
    let (m, _) = env.push_image("quay.io/org/app", "1.0", "q").await;
    let r = env.get("/v2/org/app/manifests/1.0?ns=quay.io").await;
    assert_eq!(r.body.as_ref(), m.as_slice());
    // Same path under another host: a different repository.
    let r = env.get("/v2/org/app/manifests/1.0?ns=docker.io").await;
    assert_eq!(r.code(), "NAME_UNKNOWN");
    // Docker Hub's library/ rule, both ways in.
    let (m2, _) = env.push_image("docker.io/nginx", "1.25", "n").await;
    for u in [
        "/v2/nginx/manifests/1.25?ns=docker.io",
        "/v2/docker.io/library/nginx/manifests/1.25",
        "/v2/library/nginx/manifests/1.25?ns=docker.io",
    ] {
        assert_eq!(env.get(u).await.body.as_ref(), m2.as_slice(), "{u}");
    }
    // The local namespace (no host, no ns) is its own.
    let (m3, _) = env.push_image("myteam/app", "v1", "l").await;
    assert_eq!(
        env.get("/v2/myteam/app/manifests/v1").await.body.as_ref(),
        m3.as_slice()
    );
    assert_eq!(
        env.get("/v2/myteam/app/manifests/v1?ns=docker.io")
            .await
            .code(),
        "NAME_UNKNOWN"
    );
    let r = env.get("/v2/_catalog").await;
    assert_eq!(
        r.json()["repositories"],
        json!(["docker.io/library/nginx", "myteam/app", "quay.io/org/app"])
    );
    assert!(env
        .data()
        .join("repositories/quay.io/org/app/_tags/1.0")
        .is_file());
    assert!(env
        .data()
        .join("repositories/docker.io/library/nginx/_tags/1.25")
        .is_file());
}

#[tokio::test]
async fn bare_names_fall_back_to_docker_hub_for_reads() {
    // Docker's registry-mirrors sends /v2/library/busybox/... with no host
    // and no ns: a read the local namespace cannot answer is Docker Hub's.
    let env = Env::new();
    let (hub, _) = env
        .push_image("docker.io/library/busybox", "1.36", "h")
        .await;
    for u in [
        "/v2/library/busybox/manifests/1.36",
        "/v2/library/busybox/tags/list",
    ] {
        assert_eq!(env.get(u).await.status, StatusCode::OK, "{u}");
    }
    assert_eq!(
        env.get("/v2/library/busybox/manifests/1.36")
            .await
            .body
            .as_ref(),
        hub.as_slice()
    );
    // A local repository of the same name wins over the fallback.
    let (local, _) = env.push_image("library/busybox", "1.36", "l").await;
    assert_eq!(
        env.get("/v2/library/busybox/manifests/1.36")
            .await
            .body
            .as_ref(),
        local.as_slice()
    );
    // Names that are neither local nor Docker Hub's stay unknown.
    assert_eq!(
        env.get("/v2/library/nothing/manifests/1").await.code(),
        "NAME_UNKNOWN"
    );
}

#[tokio::test]
async fn hostile_names_and_digests_touch_nothing() {
    let env = Env::new();
    let before = env.files_under("");
    for uri in [
        "/v2/../../etc/manifests/x",
        "/v2/%2e%2e/%2e%2e/etc/manifests/x",
        "/v2/a/../../b/manifests/x",
        "/v2/a//b/manifests/x",
        "/v2/A/manifests/x",
        "/v2/a/manifests/x?ns=..",
        "/v2/a/manifests/x?ns=%2e%2e%2fetc",
        "/v2/quay.io/../../x/tags/list",
    ] {
        let r = env.get(uri).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (StatusCode::BAD_REQUEST, "NAME_INVALID"),
            "{uri}"
        );
        if uri.contains("/manifests/") {
            let r = env
                .push(
                    Method::PUT,
                    uri,
                    &[("content-type", media::OCI_MANIFEST)],
                    b"{}".to_vec(),
                )
                .await;
            assert_eq!(r.code(), "NAME_INVALID", "{uri}");
        }
    }
    for uri in [
        "/v2/a/blobs/sha256:..%2f..%2fetc%2fpasswd",
        "/v2/a/blobs/sha256:abc",
        "/v2/a/blobs/md5:d41d8cd98f00b204e9800998ecf8427e",
        "/v2/a/manifests/sha256:..",
        "/v2/a/referrers/sha256:xyz",
    ] {
        let r = env.get(uri).await;
        assert_eq!(
            (r.status, r.code().as_str()),
            (StatusCode::BAD_REQUEST, "DIGEST_INVALID"),
            "{uri}"
        );
    }
    // A tag outside the grammar names nothing that can exist: 404.
    let r = env.get("/v2/a/manifests/-bad-tag").await;
    assert_eq!(
        (r.status, r.code().as_str()),
        (StatusCode::NOT_FOUND, "NAME_UNKNOWN")
    );
    let r = env.get("/v3/nothing").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(env.files_under(""), before);
}
