//! Platform filters (`linux/amd64`, `linux/arm64/v8`) and which children
//! of a multi-arch index they keep. Pure logic, shared by every source.

use airlift_oci::documents::{Descriptor, Index, Platform};
use anyhow::{bail, Result};

/// A requested platform, parsed from `os/arch[/variant]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlatformFilter {
    os: String,
    architecture: String,
    variant: Option<String>,
}

impl PlatformFilter {
    /// Parse `os/arch[/variant]`.
    pub fn parse(spec: &str) -> Result<Self> {
        let parts: Vec<&str> = spec.split('/').collect();
        let ok = (2..=3).contains(&parts.len()) && parts.iter().all(|p| !p.is_empty());
        if !ok {
            bail!("platform {spec:?} must be os/arch or os/arch/variant, like linux/arm64/v8");
        }
        Ok(PlatformFilter {
            os: parts[0].to_string(),
            architecture: parts[1].to_string(),
            variant: parts.get(2).map(|v| v.to_string()),
        })
    }

    /// Does `p` match? A filter without a variant matches every variant;
    /// arm64 without a variant counts as `v8`.
    pub fn matches(&self, p: &Platform) -> bool {
        if p.os != self.os || p.architecture != self.architecture {
            return false;
        }
        match &self.variant {
            None => true,
            Some(want) => {
                let have = p.variant.as_deref().or(default_variant(&p.architecture));
                have == Some(want.as_str())
            }
        }
    }
}

fn default_variant(arch: &str) -> Option<&'static str> {
    (arch == "arm64").then_some("v8")
}

/// Parse every requested platform.
pub fn parse_filters(specs: &[String]) -> Result<Vec<PlatformFilter>> {
    specs.iter().map(|s| PlatformFilter::parse(s)).collect()
}

/// The children of `index` to copy: all of them when `filters` is empty,
/// else those whose platform matches a filter. Fails when a filter
/// matches nothing, listing the platforms the index has.
pub fn select_children(index: &Index, filters: &[PlatformFilter]) -> Result<Vec<Descriptor>> {
    if filters.is_empty() {
        return Ok(index.manifests.clone());
    }
    for f in filters {
        if !index
            .manifests
            .iter()
            .any(|d| d.platform.as_ref().is_some_and(|p| f.matches(p)))
        {
            bail!(
                "platform {} is not in the image index (it has: {})",
                spec_of(f),
                available(index)
            );
        }
    }
    Ok(index
        .manifests
        .iter()
        .filter(|d| {
            d.platform
                .as_ref()
                .is_some_and(|p| filters.iter().any(|f| f.matches(p)))
        })
        .cloned()
        .collect())
}

/// Platform specs of descriptors (those that carry one), in order, deduplicated.
pub fn specs(descs: &[Descriptor]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for s in descs
        .iter()
        .filter_map(|d| d.platform.as_ref().map(Platform::spec))
    {
        if !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// The platform an image config declares (`os`, `architecture`, `variant`).
pub fn of_config(config: &[u8]) -> Option<Platform> {
    serde_json::from_slice::<Platform>(config).ok()
}

/// Check a single-platform image against the filters.
pub fn check_single(platform: Option<&Platform>, filters: &[PlatformFilter]) -> Result<()> {
    match platform {
        Some(p) if !filters.is_empty() && !filters.iter().any(|f| f.matches(p)) => bail!(
            "the image is {} only, but platforms asks for {}",
            p.spec(),
            filters.iter().map(spec_of).collect::<Vec<_>>().join(", ")
        ),
        _ => Ok(()),
    }
}

fn spec_of(f: &PlatformFilter) -> String {
    match &f.variant {
        Some(v) => format!("{}/{}/{v}", f.os, f.architecture),
        None => format!("{}/{}", f.os, f.architecture),
    }
}

fn available(index: &Index) -> String {
    let s = specs(&index.manifests);
    if s.is_empty() {
        "no platforms".to_string()
    } else {
        s.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlift_oci::documents::media;
    use airlift_oci::Digest;

    fn child(arch: &str, variant: Option<&str>) -> Descriptor {
        let mut d = Descriptor::new(media::OCI_MANIFEST, Digest::sha256_of(arch.as_bytes()), 1);
        d.platform = Some(Platform {
            architecture: arch.into(),
            os: "linux".into(),
            os_version: None,
            os_features: vec![],
            variant: variant.map(Into::into),
        });
        d
    }

    fn index() -> Index {
        let mut i = Index::empty();
        i.manifests = vec![
            child("amd64", None),
            child("arm64", Some("v8")),
            child("arm", Some("v7")),
        ];
        // An attestation-like child without a platform.
        i.manifests.push(Descriptor::new(
            media::OCI_MANIFEST,
            Digest::sha256_of(b"att"),
            1,
        ));
        i
    }

    fn keep(filters: &[&str]) -> Result<Vec<String>> {
        let f = parse_filters(&filters.iter().map(|s| s.to_string()).collect::<Vec<_>>())?;
        Ok(specs(&select_children(&index(), &f)?))
    }

    #[test]
    fn filters_children_by_platform() {
        assert_eq!(keep(&["linux/amd64"]).unwrap(), vec!["linux/amd64"]);
        assert_eq!(keep(&["linux/arm64"]).unwrap(), vec!["linux/arm64/v8"]);
        assert_eq!(
            keep(&["linux/arm64/v8", "linux/amd64"]).unwrap(),
            vec!["linux/amd64", "linux/arm64/v8"]
        );
        assert_eq!(select_children(&index(), &[]).unwrap().len(), 4);
    }

    #[test]
    fn missing_platform_lists_what_exists() {
        let e = keep(&["linux/s390x"]).unwrap_err().to_string();
        assert!(e.contains("linux/s390x"), "{e}");
        assert!(
            e.contains("linux/amd64, linux/arm64/v8, linux/arm/v7"),
            "{e}"
        );
        assert!(keep(&["linux/arm/v6"]).is_err());
    }

    #[test]
    fn arm64_defaults_to_v8() {
        let f = PlatformFilter::parse("linux/arm64/v8").unwrap();
        assert!(f.matches(child("arm64", None).platform.as_ref().unwrap()));
    }

    #[test]
    fn rejects_bad_specs() {
        for bad in ["linux", "linux/", "/amd64", "a/b/c/d"] {
            assert!(PlatformFilter::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn single_platform_check() {
        let p = of_config(br#"{"os":"linux","architecture":"amd64","rootfs":{}}"#).unwrap();
        let f = parse_filters(&["linux/arm64".to_string()]).unwrap();
        assert!(check_single(Some(&p), &f).is_err());
        assert!(check_single(Some(&p), &[]).is_ok());
    }
}
