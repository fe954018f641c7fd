//! `airlift-firstboot serve` as a child process for the guardrail tests,
//! and pushes to it with curl (status code and body back).

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

pub const TOKEN: &str = "guardrail-test-token-0123456789";

/// A running `serve`; killed on drop.
pub struct Serve {
    child: Child,
    pub url: String,
}

impl Serve {
    /// `serve --data DATA --reserve-mib N` (with a push token beside DATA).
    pub fn start(data: &Path, token_dir: &Path, reserve_mib: Option<u64>) -> Serve {
        let tok = token_dir.join("push-token");
        std::fs::write(&tok, TOKEN).unwrap();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_airlift-firstboot"));
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(data)
            .arg("--push-token-file")
            .arg(&tok)
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(r) = reserve_mib {
            cmd.args(["--reserve-mib", &r.to_string()]);
        }
        let mut child = cmd.spawn().expect("starting airlift-firstboot serve");
        let mut line = String::new();
        let out = child.stdout.take().unwrap();
        BufReader::new(out).read_line(&mut line).unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("serve printed {line:?}"))
            .to_string();
        Serve { child, url }
    }

    /// `curl -X METHOD` to `path` with the push token and `extra` args:
    /// (HTTP status, body).
    pub fn curl(&self, method: &str, path: &str, extra: &[&str]) -> (u16, String) {
        let out = Command::new("curl")
            .args(["-sS", "-X", method, "-w", "\n%{http_code}"])
            .args(["-H", &format!("Authorization: Bearer {TOKEN}")])
            .args(extra)
            .arg(format!("{}{path}", self.url))
            .output()
            .expect("running curl");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    /// Start an upload in `repo`; its Location path.
    pub fn start_upload(&self, repo: &str) -> Result<String, (u16, String)> {
        let out = Command::new("curl")
            .args(["-sS", "-X", "POST", "-D", "-", "-o", "/dev/null"])
            .args(["-H", &format!("Authorization: Bearer {TOKEN}")])
            .arg(format!("{}/v2/{repo}/blobs/uploads/", self.url))
            .output()
            .expect("running curl");
        let head = String::from_utf8_lossy(&out.stdout).into_owned();
        head.lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("location")
                    .then(|| v.trim().to_string())
            })
            .ok_or_else(|| {
                let (code, body) = self.curl("POST", &format!("/v2/{repo}/blobs/uploads/"), &[]);
                (code, body)
            })
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The first error's code and message of an OCI error body.
pub fn oci_error(body: &str) -> (String, String) {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    let e = &v["errors"][0];
    (
        e["code"].as_str().unwrap_or("").to_string(),
        e["message"].as_str().unwrap_or("").to_string(),
    )
}
