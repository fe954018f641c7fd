//! The CI recipe (examples/ci/github-actions.yml, issue #21) run here: the
//! `run:` steps of job `iso`, in order, with bash as an unprivileged user,
//! in a clean checkout (the files `git ls-files` names, committed afresh),
//! against Debian's docker-registry on 127.0.0.1 (Basic auth, given as the
//! workflow's secrets) holding the fixture base and two app images, with
//! the built `airlift` and `airlift-firstboot` on PATH. `uses:` steps are
//! stood in for by name: checkout is the copy, upload checks that every
//! file it names exists. Ends with a verified ISO at the path the workflow
//! names, whose base is the registry's.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use airlift_integration::base_image::{self, KERNEL_RELEASE, TAG};
use airlift_integration::images::{write_layout, TestImage};
use airlift_integration::registry::TestRegistry;
use airlift_integration::tools::{binary, run_ok, workspace_root};
use airlift_integration::unprivileged::{self, User};
use base64::Engine as _;
use serde_yaml::Value;

const WORKFLOW: &str = "examples/ci/github-actions.yml";
/// The commit time of the clean checkout (its SOURCE_DATE_EPOCH).
const COMMIT_TIME: &str = "1700000000";

/// `${{ expr }}` as the workflow may write it in `env:` blocks:
/// `vars.NAME || 'default'`, `vars.NAME`, `secrets.NAME`. Anything else
/// fails the test, so the workflow stays runnable here.
fn expression(
    expr: &str,
    vars: &BTreeMap<&str, String>,
    secrets: &BTreeMap<&str, String>,
) -> String {
    let (lookup, default) = match expr.split_once("||") {
        Some((l, d)) => {
            let d = d.trim();
            let d = d
                .strip_prefix('\'')
                .and_then(|d| d.strip_suffix('\''))
                .unwrap_or_else(|| panic!("unsupported default in ${{{{ {expr} }}}}"));
            (l.trim(), d.to_string())
        }
        None => (expr.trim(), String::new()),
    };
    let value = if let Some(name) = lookup.strip_prefix("vars.") {
        vars.get(name).cloned()
    } else if let Some(name) = lookup.strip_prefix("secrets.") {
        secrets.get(name).cloned()
    } else {
        panic!("unsupported expression ${{{{ {expr} }}}} in {WORKFLOW}")
    };
    value.filter(|v| !v.is_empty()).unwrap_or(default)
}

/// Every `${{ … }}` in `s` evaluated.
fn evaluate(s: &str, vars: &BTreeMap<&str, String>, secrets: &BTreeMap<&str, String>) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(start) = rest.find("${{") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find("}}").expect("a closed ${{ }}") + start;
        out.push_str(&expression(&rest[start + 3..end], vars, secrets));
        rest = &rest[end + 2..];
    }
    out.push_str(rest);
    out
}

/// An `env:` mapping, evaluated.
fn env_block(
    v: &Value,
    vars: &BTreeMap<&str, String>,
    secrets: &BTreeMap<&str, String>,
) -> Vec<(String, String)> {
    v.get("env")
        .and_then(Value::as_mapping)
        .into_iter()
        .flatten()
        .map(|(k, v)| {
            let raw = match v {
                Value::String(s) => s.clone(),
                other => serde_yaml::to_string(other).unwrap().trim().to_string(),
            };
            (
                k.as_str().unwrap().to_string(),
                evaluate(&raw, vars, secrets),
            )
        })
        .collect()
}

/// `KEY=VALUE` lines a step appended to `$GITHUB_ENV` (the one-line form).
fn read_env_file(path: &Path) -> Vec<(String, String)> {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| {
            assert!(
                !l.contains("<<"),
                "multi-line $GITHUB_ENV values are not run here: {l}"
            );
            let (k, v) = l
                .split_once('=')
                .unwrap_or_else(|| panic!("bad $GITHUB_ENV line {l:?}"));
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// A clean checkout at `dir`: the files `git ls-files` names (as they are
/// in the work tree), committed by `user` at [`COMMIT_TIME`].
fn checkout(dir: &Path, user: &User, home: &Path) {
    let root = workspace_root();
    let listed = run_ok(
        Command::new("git")
            .arg("-C")
            .arg(&root)
            .args(["ls-files", "-z"]),
    );
    for rel in listed.split('\0').filter(|r| !r.is_empty()) {
        let from = root.join(rel);
        let Ok(meta) = fs::symlink_metadata(&from) else {
            continue; // deleted in the work tree
        };
        let to = dir.join(rel);
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        if meta.file_type().is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(&from).unwrap(), &to).unwrap();
        } else {
            fs::copy(&from, &to).unwrap();
        }
    }
    user.own(dir);
    let date = format!("@{COMMIT_TIME} +0000");
    for args in [
        &["init", "-q", "-b", "main"][..],
        &["add", "-A"],
        &[
            "-c",
            "user.name=CI",
            "-c",
            "user.email=ci@example.invalid",
            "commit",
            "-q",
            "-m",
            "checkout",
        ],
        &["tag", "v1.0.0"],
    ] {
        run_ok(
            user.command("git", home)
                .current_dir(dir)
                .env("GIT_AUTHOR_DATE", &date)
                .env("GIT_COMMITTER_DATE", &date)
                .env("GIT_CONFIG_GLOBAL", "/dev/null")
                .args(args),
        );
    }
}

#[test]
fn the_github_actions_workflow_builds_a_verified_iso_unprivileged() {
    let user = unprivileged::user();
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let (work, home, runner_temp, fixtures) = (
        t.join("work"),
        t.join("home"),
        t.join("runner-temp"),
        t.join("fixtures"),
    );
    for d in [&work, &home, &runner_temp] {
        fs::create_dir(d).unwrap();
    }

    // The site registry: the base and two apps, behind Basic auth.
    let reg = TestRegistry::start_with_basic_auth("ci", "s3cret-ci");
    let base = base_image::write_good(&fixtures, None).unwrap();
    reg.push_layout(&fixtures.join("layout"), TAG, "appliance/base:bookworm");
    write_layout(
        &fixtures.join("apps"),
        &[
            TestImage::random("hello", 2201, 30_000),
            TestImage::random("tools", 2202, 30_000),
        ],
    )
    .unwrap();
    reg.push_layout(&fixtures.join("apps"), "hello", "apps/hello:1.0");
    reg.push_layout(&fixtures.join("apps"), "tools", "apps/tools:1.0");

    checkout(&work, &user, &home);
    user.own(t);

    let vars = BTreeMap::from([
        ("AIRLIFT_REGISTRY", reg.host()),
        ("AIRLIFT_REGISTRY_URL", reg.url()),
        ("AIRLIFT_REGISTRY_INSECURE", "true".to_string()),
    ]);
    let secrets = BTreeMap::from([
        ("REGISTRY_USER", "ci".to_string()),
        ("REGISTRY_PASSWORD", "s3cret-ci".to_string()),
    ]);
    let workflow: Value =
        serde_yaml::from_str(&fs::read_to_string(work.join(WORKFLOW)).unwrap()).unwrap();
    let job = &workflow["jobs"]["iso"];
    assert_eq!(
        workflow["defaults"]["run"]["shell"].as_str(),
        Some("bash"),
        "the steps are bash"
    );
    let bin_dir = binary("airlift").parent().unwrap().to_path_buf();
    assert!(bin_dir.join("airlift-firstboot").is_file());
    let mut env: Vec<(String, String)> = vec![
        ("CI".into(), "true".into()),
        ("GITHUB_ACTIONS".into(), "true".into()),
        ("GITHUB_WORKSPACE".into(), work.display().to_string()),
        ("RUNNER_TEMP".into(), runner_temp.display().to_string()),
        ("LANG".into(), "C.UTF-8".into()),
    ];
    env.extend(env_block(&workflow, &vars, &secrets));
    env.extend(env_block(job, &vars, &secrets));
    let mut path: Vec<PathBuf> = vec![
        bin_dir,
        "/usr/local/bin".into(),
        "/usr/bin".into(),
        "/bin".into(),
    ];
    let env_file = runner_temp.join("github_env");
    let path_file = runner_temp.join("github_path");
    let steps = job["steps"].as_sequence().expect("job iso has steps");
    let mut ran = Vec::new();
    let mut uploaded = Vec::new();
    let mut printed: Vec<u8> = Vec::new();
    for (n, step) in steps.iter().enumerate() {
        let name = step["name"].as_str().unwrap_or("(unnamed)").to_string();
        if let Some(action) = step["uses"].as_str() {
            if action.starts_with("actions/checkout@") {
                // The clean checkout made above.
            } else if action.starts_with("actions/upload-artifact@") {
                let paths = step["with"]["path"]
                    .as_str()
                    .expect("upload names its path");
                for p in paths.lines().map(str::trim).filter(|p| !p.is_empty()) {
                    assert!(
                        work.join(p).is_file(),
                        "step {name:?} uploads {p}, which is missing"
                    );
                    uploaded.push(p.to_string());
                }
            } else {
                panic!("step {name:?} uses {action}, which this test cannot stand in for");
            }
            continue;
        }
        let script = step["run"]
            .as_str()
            .unwrap_or_else(|| panic!("step {name:?} has no run"));
        let file = runner_temp.join(format!("step-{n}.sh"));
        fs::write(&file, script).unwrap();
        for f in [&env_file, &path_file] {
            fs::write(f, "").unwrap();
        }
        user.own(&runner_temp);
        let mut cmd = user.command("bash", &home);
        cmd.args(["--noprofile", "--norc", "-eo", "pipefail"])
            .arg(&file)
            .current_dir(&work)
            .env_clear()
            .env("HOME", &home)
            .env("USER", unprivileged::USER)
            .env("GITHUB_ENV", &env_file)
            .env("GITHUB_PATH", &path_file)
            .env("PATH", std::env::join_paths(&path).unwrap())
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .envs(env.iter().cloned())
            .envs(env_block(step, &vars, &secrets));
        let out = cmd.output().unwrap();
        printed.extend_from_slice(&out.stdout);
        printed.extend_from_slice(&out.stderr);
        assert!(
            out.status.success(),
            "step {name:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        env.extend(read_env_file(&env_file));
        for line in fs::read_to_string(&path_file).unwrap().lines() {
            path.insert(0, PathBuf::from(line));
        }
        ran.push(name);
    }
    for want in ["Validate", "Build", "Verify", "Inspect"] {
        assert!(
            ran.iter().any(|r| r == want),
            "no step {want:?} ran: {ran:?}"
        );
    }
    // The SOURCE_DATE_EPOCH came from the commit.
    assert!(
        env.contains(&("SOURCE_DATE_EPOCH".to_string(), COMMIT_TIME.to_string())),
        "{env:?}"
    );
    // The credentials file stayed out of the workspace and the artifacts,
    // only its owner can read it, and no step printed the password (nor
    // its base64 form).
    let auth = runner_temp.join("registry-auth.json");
    assert!(auth.is_file());
    assert_eq!(
        fs::metadata(&auth).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let printed = String::from_utf8_lossy(&printed);
    let token = base64::engine::general_purpose::STANDARD.encode("ci:s3cret-ci");
    for secret in ["s3cret-ci", token.as_str()] {
        assert!(!printed.contains(secret), "a step printed the credentials");
        for f in &uploaded {
            let bytes = fs::read(work.join(f)).unwrap();
            assert!(
                !String::from_utf8_lossy(&bytes).contains(secret),
                "{f} holds the credentials"
            );
        }
    }
    assert!(!run_ok(
        Command::new("git")
            .args(["-c", "safe.directory=*", "-C"])
            .arg(&work)
            .args(["status", "--porcelain", "--ignored"])
    )
    .contains("auth"));

    // A verified ISO where the workflow says, built from the registry's base.
    let iso_rel = env
        .iter()
        .rev()
        .find(|(k, _)| k == "ISO")
        .unwrap()
        .1
        .clone();
    assert!(uploaded.contains(&iso_rel), "{uploaded:?}");
    let iso = work.join(&iso_rel);
    let verify = run_ok(Command::new(binary("airlift")).arg("verify").arg(&iso));
    assert!(verify.trim_end().ends_with("OK"), "{verify}");
    let inspect = run_ok(
        Command::new(binary("airlift"))
            .args(["inspect", "--json"])
            .arg(&iso),
    );
    let v: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    let base_record = v["base"].to_string();
    for want in [
        format!("{}/appliance/base:bookworm", reg.host()),
        base.manifest.digest.to_string(),
        KERNEL_RELEASE.to_string(),
    ] {
        assert!(
            base_record.contains(&want),
            "the ISO's base lacks {want}: {base_record}"
        );
    }
    let images: Vec<&str> = v["images"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["reference"].as_str())
        .collect();
    assert_eq!(images.len(), 2, "{images:?}");
    // The inspect record the workflow uploads is the same.
    let uploaded_json: serde_json::Value =
        serde_json::from_slice(&fs::read(work.join("out/appliance.json")).unwrap()).unwrap();
    assert_eq!(uploaded_json["base"], v["base"]);
}
