//! Clients guessing a user's password (bcrypt, slow on purpose) do not
//! stall anonymous pulls: the checks run on the blocking pool, a few at
//! a time, never on the async workers.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

fn basic(user: &str, pass: &str) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
    format!("Basic {b64}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_guessing_does_not_stall_anonymous_pulls() {
    let dir = tempfile::tempdir().unwrap();
    let tok = token_file(dir.path());
    let htpasswd = dir.path().join("htpasswd");
    let hash = bcrypt::hash("right", 10).unwrap();
    std::fs::write(&htpasswd, format!("alice:{hash}\n")).unwrap();
    let reg = Registry {
        store: Store::open(&dir.path().join("data"), &[]).unwrap(),
        auth: Auth::load(Some(&htpasswd), Some(&tok)).unwrap(),
        allow_delete: false,
        limits: super::super::Limits {
            body_stall: Duration::from_secs(5),
            max_blob_bytes: 1 << 20,
        },
        space: Arc::new(super::super::space::SpaceGuard::new(dir.path(), 0)),
        gate: None,
    };
    let env = Arc::new(Env {
        dir,
        app: router(Arc::new(reg)),
    });
    let (_, md) = env.push_image("quay.io/a", "v1", "x").await;

    // As many guessers as there are workers, and more: each wrong guess
    // costs a full bcrypt check.
    const GUESSERS: usize = 6;
    let done = Arc::new(AtomicUsize::new(0));
    let mut guessers = Vec::new();
    for i in 0..GUESSERS {
        let (env, done) = (env.clone(), done.clone());
        guessers.push(tokio::spawn(async move {
            let auth = basic("alice", &format!("guess-{i}"));
            let r = env
                .call(
                    Method::PUT,
                    "/v2/quay.io/a/manifests/v2",
                    &[
                        ("authorization", &auth),
                        ("content-type", media::OCI_MANIFEST),
                    ],
                    b"{}".to_vec(),
                )
                .await;
            assert_eq!(r.status, StatusCode::UNAUTHORIZED);
            done.fetch_add(1, Ordering::SeqCst);
        }));
    }
    // An anonymous pull, queued behind the guessers: it must not wait
    // for their bcrypt checks.
    let pull = {
        let (env, done) = (env.clone(), done.clone());
        tokio::spawn(async move {
            let r = env.get(&format!("/v2/quay.io/a/manifests/{md}")).await;
            assert_eq!(r.status, StatusCode::OK);
            done.load(Ordering::SeqCst)
        })
    };
    let guesses_done_before_pull = pull.await.unwrap();
    for g in guessers {
        g.await.unwrap();
    }
    assert!(
        guesses_done_before_pull < GUESSERS / 2,
        "the anonymous pull waited for {guesses_done_before_pull} of {GUESSERS} password checks"
    );
    assert_eq!(done.load(Ordering::SeqCst), GUESSERS);
}
