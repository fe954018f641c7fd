//! Which container runtimes a node has, for when the config does not
//! say: a runtime counts as present when its binary or its config folder
//! exists under the root.

use std::path::Path;

use super::Runtime;

/// What marks each runtime as installed (paths on the node).
fn markers(runtime: Runtime) -> &'static [&'static str] {
    match runtime {
        Runtime::Crio => &["/usr/bin/crio", "/usr/local/bin/crio", "/etc/crio"],
        Runtime::Podman => &["/usr/bin/podman", "/usr/local/bin/podman"],
        Runtime::Containerd => &[
            "/usr/bin/containerd",
            "/usr/local/bin/containerd",
            "/etc/containerd",
        ],
        Runtime::K3s => &["/usr/local/bin/k3s", "/usr/bin/k3s", "/etc/rancher/k3s"],
        Runtime::Rke2 => &["/usr/local/bin/rke2", "/usr/bin/rke2", "/etc/rancher/rke2"],
        Runtime::Docker => &["/usr/bin/dockerd", "/usr/local/bin/dockerd", "/etc/docker"],
    }
}

/// The runtimes present under `root`, in [`Runtime::ALL`] order.
pub fn detect(root: &Path) -> Vec<Runtime> {
    Runtime::ALL
        .into_iter()
        .filter(|r| {
            markers(*r)
                .iter()
                .any(|m| root.join(m.trim_start_matches('/')).exists())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_runtimes_by_binary_or_config_folder() {
        let root = tempfile::tempdir().unwrap();
        assert!(detect(root.path()).is_empty());
        std::fs::create_dir_all(root.path().join("etc/rancher/k3s")).unwrap();
        std::fs::create_dir_all(root.path().join("usr/bin")).unwrap();
        std::fs::write(root.path().join("usr/bin/podman"), "").unwrap();
        assert_eq!(detect(root.path()), vec![Runtime::Podman, Runtime::K3s]);
    }
}
