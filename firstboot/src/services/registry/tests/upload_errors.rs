//! A failing upload file (disk full, not writable) gives an error that
//! names the upload and its file, never the bytes sent, and the upload
//! keeps its last good state.

use super::*;

async fn started(env: &Env) -> (String, PathBuf) {
    let r = env
        .push(Method::POST, "/v2/quay.io/a/blobs/uploads/", &[], vec![])
        .await;
    let loc = r.header("location").to_string();
    let id = r.header("docker-upload-uuid").to_string();
    (loc, env.data().join("uploads").join(id))
}

#[tokio::test]
async fn a_full_disk_names_the_upload_and_its_file() {
    let env = Env::new();
    let (loc, file) = started(&env).await;
    let id = file.file_name().unwrap().to_str().unwrap().to_string();
    std::fs::remove_file(&file).unwrap();
    std::os::unix::fs::symlink("/dev/full", &file).unwrap();
    let r = env
        .push(Method::PATCH, &loc, &[], b"secret-body-bytes".to_vec())
        .await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    let msg = r.message();
    assert!(msg.contains(&id), "{msg}");
    assert!(msg.contains(&file.display().to_string()), "{msg}");
    assert!(msg.contains("No space left on device"), "{msg}");
    assert!(
        !String::from_utf8_lossy(&r.body).contains("secret-body"),
        "{msg}"
    );
    // The chunk was not counted.
    let r = env.push(Method::GET, &loc, &[], vec![]).await;
    assert_eq!(
        (r.status, r.header("range")),
        (StatusCode::NO_CONTENT, "0-0")
    );
}

#[tokio::test]
async fn an_unwritable_upload_file_is_named() {
    let env = Env::new();
    let (loc, file) = started(&env).await;
    std::fs::remove_file(&file).unwrap();
    std::fs::create_dir(&file).unwrap();
    let r = env.push(Method::PATCH, &loc, &[], b"abc".to_vec()).await;
    assert_eq!(r.status, StatusCode::INTERNAL_SERVER_ERROR);
    let msg = r.message();
    assert!(msg.contains(&file.display().to_string()), "{msg}");
    assert!(msg.starts_with("upload "), "{msg}");
}
