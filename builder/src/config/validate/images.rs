//! Images: duplicate references, platforms, and each source (registry,
//! OCI layout, archives) pointing at something that holds the image.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::Path;

use airlift_oci::Digest;

use super::Kind;
use super::Validator;
use crate::config::checks;
use crate::config::locate::{join_index, join_key};
use crate::config::schema::*;

impl Validator<'_> {
    pub(super) fn images(&mut self) {
        let mut seen: HashMap<String, usize> = HashMap::new();
        for image in &self.app.images {
            let field = image.field();
            let reference = image.reference.to_string();
            if let Some(first) = seen.get(&reference) {
                let msg = format!(
                    "{reference} is listed twice (also images[{first}].ref); remove one of them"
                );
                self.problem(&join_key(&field, "ref"), msg);
            } else {
                seen.insert(reference, image.index);
            }
            for (i, p) in image.platforms.iter().enumerate() {
                let f = join_index(&join_key(&field, "platforms"), i);
                self.check(&f, checks::platform(p));
            }
            self.image_source(&field, image);
        }
    }

    /// `image.from` points at something that holds the image (local
    /// sources opened as `airlift bundle` will).
    pub(super) fn image_source(&mut self, field: &str, image: &crate::config::ImageEntry) {
        let from = join_key(field, "from");
        let before = self.problems.len();
        match &image.source {
            ImageSource::Registry(r) => self.registry_source(&from, r),
            ImageSource::OciLayout(l) => {
                let f = join_key(&from, "ociLayout.path");
                let what = "an OCI image layout folder (with oci-layout and index.json)";
                if self.expect(&f, &l.path, Kind::Dir, what) {
                    let missing: Vec<&str> = ["oci-layout", "index.json"]
                        .into_iter()
                        .filter(|name| !l.path.join(name).is_file())
                        .collect();
                    if !missing.is_empty() {
                        let msg = format!(
                            "{} has no {}, so it is not an OCI image layout; point it at one \
                             (e.g. made by skopeo copy … oci:DIR)",
                            l.path.display(),
                            missing.join(" or ")
                        );
                        self.problem(&f, msg);
                    } else if let Err(msg) = index_has(&l.path, l.reference.as_deref()) {
                        let rf = if l.reference.is_some() {
                            "ociLayout.ref"
                        } else {
                            "ociLayout"
                        };
                        self.problem(&join_key(&from, rf), msg);
                    }
                }
                self.layout_ref(&join_key(&from, "ociLayout.ref"), &l.reference);
            }
            ImageSource::OciArchive(l) => {
                let f = join_key(&from, "ociArchive.path");
                self.expect(&f, &l.path, Kind::File, "an oci-archive tar file");
                self.layout_ref(&join_key(&from, "ociArchive.ref"), &l.reference);
            }
            ImageSource::DockerArchive(d) => {
                let f = join_key(&from, "dockerArchive.path");
                self.expect(&f, &d.path, Kind::File, "a `docker save` tar file");
            }
        }
        // Open local sources as `airlift bundle` will (hostile tars,
        // unknown refs, broken manifests), unless already refused.
        if self.problems.len() == before {
            let field = match &image.source {
                ImageSource::Registry(_) => None,
                ImageSource::OciLayout(_) => Some("ociLayout.path"),
                ImageSource::OciArchive(_) => Some("ociArchive.path"),
                ImageSource::DockerArchive(_) => Some("dockerArchive.path"),
            };
            if let Some(f) = field {
                let spec = crate::config::requests::source_spec(&image.source);
                if let Err(e) = spec.check_local(&image.platforms) {
                    self.problem(&join_key(&from, f), format!("{e:#}"));
                }
            }
        }
    }

    fn registry_source(&mut self, from: &str, r: &RegistrySource) {
        if let Some(m) = &r.mirror {
            let f = join_key(from, "registry.mirror");
            self.check(&f, checks::mirror_url(m));
            // `airlift bundle` refuses it (the registry client's rule).
            if m.starts_with("http://") && !r.insecure {
                self.problem(
                    &f,
                    format!(
                        "{m} is plain HTTP; set `insecure: true` on this source to allow it, or \
                         use https://"
                    ),
                );
            }
        }
        if let Some(c) = &r.credentials {
            let f = join_key(from, "registry.credentials");
            let what = "a containers auth.json / docker config.json file";
            if self.expect(&f, c, Kind::File, what) {
                let parsed = crate::sources::registry::auth::read_credentials_file(c)
                    .map_err(|e| format!("{e:#}"))
                    .and_then(|b| {
                        serde_json::from_slice::<serde_json::Value>(&b)
                            .map_err(|e| airlift_oci::quiet_json::describe(&e))
                    });
                match parsed {
                    Ok(v) if v.is_object() => {}
                    Ok(_) => self.problem(
                        &f,
                        format!(
                            "{} is JSON but not an object; write {{\"auths\": {{…}}}}",
                            c.display()
                        ),
                    ),
                    Err(e) => self.problem(
                        &f,
                        format!(
                            "{} is not readable JSON ({e}); write {{\"auths\": {{…}}}}",
                            c.display()
                        ),
                    ),
                }
            }
        }
    }

    /// A layout `ref` that looks like a digest must be one.
    fn layout_ref(&mut self, field: &str, reference: &Option<String>) {
        if let Some(r) = reference {
            if r.contains(':') && r.split(':').next().is_some_and(|a| a.starts_with("sha")) {
                if let Err(e) = r.parse::<Digest>() {
                    self.problem(
                        field,
                        format!("{r:?} looks like a digest but is not one ({e}); write sha256:<64 hex digits> or a ref name"),
                    );
                }
            } else if r.is_empty() {
                self.problem(field, "is empty; name the image's ref.name annotation, or remove it when the layout holds one image");
            }
        }
    }
}

/// The OCI layout at `layout` has the image `reference` names (a
/// `org.opencontainers.image.ref.name` or a digest), or exactly one image
/// when `reference` is `None`.
fn index_has(layout: &Path, reference: Option<&str>) -> Result<(), String> {
    let index_path = layout.join("index.json");
    let len = fs::metadata(&index_path).map(|m| m.len()).unwrap_or(0);
    if len > airlift_oci::layout::MAX_INDEX_JSON {
        return Err(format!(
            "{} is {len} bytes, larger than an image layout's index can be (is this an OCI layout?)",
            index_path.display()
        ));
    }
    let index: serde_json::Value = fs::read(&index_path)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| airlift_oci::quiet_json::describe(&e)))
        .map_err(|e| format!("{} is not readable JSON ({e})", index_path.display()))?;
    pick_in_index(&index, reference).map_err(|e| format!("{} {e}", index_path.display()))
}

/// The pure part of [`index_has`].
pub(super) fn pick_in_index(
    index: &serde_json::Value,
    reference: Option<&str>,
) -> Result<(), String> {
    const REF_NAME: &str = "org.opencontainers.image.ref.name";
    let manifests = index["manifests"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let names: Vec<&str> = manifests
        .iter()
        .filter_map(|m| m["annotations"][REF_NAME].as_str())
        .collect();
    match reference {
        None if manifests.len() == 1 => Ok(()),
        None => Err(format!(
            "holds {} images; add ref: with one of {names:?} (or a digest)",
            manifests.len()
        )),
        Some(r) => {
            let found = manifests.iter().any(|m| {
                m["annotations"][REF_NAME].as_str() == Some(r) || m["digest"].as_str() == Some(r)
            });
            if found {
                Ok(())
            } else {
                Err(format!(
                    "has no image named {r:?}; its ref names are {names:?}"
                ))
            }
        }
    }
}

/// Whether `path` starts like a tar file, or a gzip, zstd or xz file.
pub(super) fn looks_like_tar(path: &Path) -> bool {
    let mut head = [0u8; 512];
    let Ok(mut f) = fs::File::open(path) else {
        return false;
    };
    let mut n = 0;
    while n < head.len() {
        match f.read(&mut head[n..]) {
            Ok(0) | Err(_) => break,
            Ok(k) => n += k,
        }
    }
    let head = &head[..n];
    head.starts_with(&[0x1f, 0x8b])
        || head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        || head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0])
        || (n >= 262 && &head[257..262] == b"ustar")
}
