//! The one translation from the config's images to what the sources take:
//! an [`ImageEntry`] (reference parsed, paths absolute) becomes an
//! [`ImageRequest`]. `airlift bundle`, `airlift build` and `airlift
//! validate` all go through here; the sources know nothing of the config.

use super::normalise::{Appliance, ImageEntry};
use super::schema::ImageSource;
use crate::attachments::Filter;
use crate::sources::{ImageRequest, SourceSpec};

impl Appliance {
    /// The config's `attachments:` section, as the bundler takes it.
    pub fn attachment_filter(&self) -> Filter {
        let a = &self.config.attachments;
        Filter {
            carry: a.carry,
            artifact_types: a.artifact_types.clone(),
        }
    }
}

impl ImageEntry {
    /// This image as a bundle request.
    pub fn request(&self) -> ImageRequest {
        ImageRequest {
            reference: self.reference.clone(),
            source: source_spec(&self.source),
            platforms: self.platforms.clone(),
        }
    }
}

/// Where the bytes come from, as the sources take it.
pub fn source_spec(source: &ImageSource) -> SourceSpec {
    match source {
        ImageSource::Registry(r) => SourceSpec::Registry {
            mirror: r.mirror.clone(),
            credentials: r.credentials.clone(),
            insecure: r.insecure,
        },
        ImageSource::OciLayout(l) => SourceSpec::OciLayout {
            path: l.path.clone(),
            reference: l.reference.clone(),
        },
        ImageSource::OciArchive(l) => SourceSpec::OciArchive {
            path: l.path.clone(),
            reference: l.reference.clone(),
        },
        ImageSource::DockerArchive(d) => SourceSpec::DockerArchive {
            path: d.path.clone(),
            reference: d.reference.clone(),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::config::schema::{DockerArchiveSource, LayoutSource, RegistrySource};

    #[test]
    fn every_source_kind_maps_field_for_field() {
        let registry = ImageSource::Registry(RegistrySource {
            mirror: Some("https://mirror.example".into()),
            credentials: Some(PathBuf::from("/auth.json")),
            insecure: true,
        });
        assert_eq!(
            source_spec(&registry),
            SourceSpec::Registry {
                mirror: Some("https://mirror.example".into()),
                credentials: Some(PathBuf::from("/auth.json")),
                insecure: true,
            }
        );
        let layout = LayoutSource {
            path: PathBuf::from("/l"),
            reference: Some("1.0".into()),
        };
        assert_eq!(
            source_spec(&ImageSource::OciLayout(layout.clone())),
            SourceSpec::OciLayout {
                path: PathBuf::from("/l"),
                reference: Some("1.0".into()),
            }
        );
        assert_eq!(
            source_spec(&ImageSource::OciArchive(layout)),
            SourceSpec::OciArchive {
                path: PathBuf::from("/l"),
                reference: Some("1.0".into()),
            }
        );
        let docker = ImageSource::DockerArchive(DockerArchiveSource {
            path: PathBuf::from("/d.tar"),
            reference: None,
        });
        assert_eq!(
            source_spec(&docker),
            SourceSpec::DockerArchive {
                path: PathBuf::from("/d.tar"),
                reference: None,
            }
        );
    }

    #[test]
    fn an_entry_keeps_its_reference_and_platforms() {
        let entry = ImageEntry {
            reference: "docker.io/library/nginx:1.25".parse().unwrap(),
            source: ImageSource::Registry(RegistrySource::default()),
            platforms: vec!["linux/arm64/v8".into()],
            index: 3,
        };
        let r = entry.request();
        assert_eq!(r.reference, entry.reference);
        assert_eq!(r.platforms, entry.platforms);
        assert!(matches!(
            r.source,
            SourceSpec::Registry {
                mirror: None,
                credentials: None,
                insecure: false
            }
        ));
    }
}
