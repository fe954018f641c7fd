//! The container runtimes whose mirror config an appliance writes: the
//! image config's `runtimes:` values, `appliance.json`'s `runtimes`, and
//! `airlift-firstboot render --runtime`.

use serde::{Deserialize, Serialize};

/// A container runtime whose mirror config is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "camelCase")]
pub enum Runtime {
    /// CRI-O: reads registries.conf (and its drop-ins) like podman.
    Crio,
    /// podman, and with it skopeo and buildah.
    Podman,
    /// containerd's CRI plugin (and `ctr --hosts-dir`).
    Containerd,
    /// k3s's embedded containerd, via /etc/rancher/k3s/registries.yaml.
    K3s,
    /// RKE2's embedded containerd, via /etc/rancher/rke2/registries.yaml.
    Rke2,
    /// The Docker daemon (mirrors docker.io only).
    Docker,
}

impl Runtime {
    /// Every runtime, in a stable order.
    pub const ALL: [Runtime; 6] = [
        Runtime::Crio,
        Runtime::Podman,
        Runtime::Containerd,
        Runtime::K3s,
        Runtime::Rke2,
        Runtime::Docker,
    ];

    /// The runtimes an image config gets when it names none.
    pub const DEFAULT: [Runtime; 3] = [Runtime::Crio, Runtime::Podman, Runtime::Containerd];

    /// The lowercase name (`crio`, `k3s`, …), as written in configs.
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Crio => "crio",
            Runtime::Podman => "podman",
            Runtime::Containerd => "containerd",
            Runtime::K3s => "k3s",
            Runtime::Rke2 => "rke2",
            Runtime::Docker => "docker",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_spells_every_runtime_by_its_name() {
        for r in Runtime::ALL {
            assert_eq!(
                serde_json::to_string(&r).unwrap(),
                format!("\"{}\"", r.name())
            );
            let back: Runtime = serde_json::from_str(&format!("\"{}\"", r.name())).unwrap();
            assert_eq!(back, r);
        }
        assert!(serde_json::from_str::<Runtime>("\"Crio\"").is_err());
        assert!(serde_json::from_str::<Runtime>("\"cri-o\"").is_err());
    }
}
