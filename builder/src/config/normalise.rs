//! Step 2: [`Config`] → [`Appliance`]. Checks `apiVersion` and `kind`,
//! expands `${VAR}` in paths, makes every path absolute against the
//! config file's folder, parses every image reference, and fills in the
//! default image source (pull from the reference's registry).
//!
//! Pure: the environment comes in as a function, nothing is read from disk.

use std::path::{Path, PathBuf};

use airlift_oci::Reference;

use super::base_spec::{BaseSpec, ImageBase, BASE_PLATFORM};
use super::locate::{join_index, join_key, Locator};
use super::problem::{ConfigError, Problem};
use super::schema::*;

/// Where a config came from: its file name (as the user gave it, for
/// messages), its absolute folder (relative paths are resolved against
/// it) and a locator for its text.
#[derive(Debug, Clone)]
pub struct Origin {
    pub file: PathBuf,
    pub dir: PathBuf,
    pub locator: Locator,
}

impl Origin {
    /// The origin of `text` read from `file`. `file` is made absolute
    /// against the current directory to find its folder.
    pub fn new(file: &Path, text: &str) -> Origin {
        let abs = std::path::absolute(file).unwrap_or_else(|_| file.to_path_buf());
        let dir = abs.parent().map(Path::to_path_buf).unwrap_or_default();
        Origin {
            file: file.to_path_buf(),
            dir,
            locator: Locator::new(text),
        }
    }

    /// A problem at `field`, located in the text (or at its nearest parent).
    pub fn problem(&self, field: &str, message: impl Into<String>) -> Problem {
        Problem {
            file: self.file.clone(),
            field: Some(field.to_string()),
            position: self.locator.find(field),
            message: message.into(),
        }
    }
}

/// A config after normalisation: every path absolute and every `${VAR}`
/// expanded, every image reference parsed. `config` keeps the config as
/// written.
#[derive(Debug, Clone)]
pub struct Appliance {
    pub origin: Origin,
    /// The config as parsed, before normalisation.
    pub config: Config,
    pub metadata: Metadata,
    pub images: Vec<ImageEntry>,
    /// Host paths (absolute), or a base image.
    pub base: Option<BaseSpec>,
    /// Absolute paths, in order.
    pub overlays: Vec<PathBuf>,
    /// `tls.cert`, `tls.key`, `push.htpasswd`, `push.tokenFile` absolute.
    pub registry: Registry,
    pub netboot: Netboot,
    pub runtimes: Vec<Runtime>,
    pub storage: Storage,
    /// `ha` with its address parsed, as `appliance.json` carries it.
    pub ha: Option<airlift_appliance::Ha>,
    /// `extraFiles` values absolute.
    pub output: Output,
    /// `key` and `certificate` absolute.
    pub secure_boot: SecureBoot,
    /// `verify:` with each `publicKey` absolute.
    pub verify: Option<Verify>,
    /// `verify:` as the appliance carries it, its key files read: filled
    /// by [`crate::config::load_and_validate`] (`None` before, and
    /// without `verify:`).
    pub trust: Option<airlift_appliance::TrustPolicy>,
}

/// One image, normalised.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageEntry {
    /// Fully qualified (`docker.io/library/nginx:1.25`).
    pub reference: Reference,
    /// Where its bytes come from (never absent; paths absolute).
    pub source: ImageSource,
    /// Platforms to keep, as written (`linux/arm64/v8`); empty keeps all.
    pub platforms: Vec<String>,
    /// Its position in `images`, for messages (`images[INDEX]`).
    pub index: usize,
}

impl ImageEntry {
    /// The field path of this image (`images[2]`).
    pub fn field(&self) -> String {
        join_index("images", self.index)
    }
}

/// The environment `${VAR}` is looked up in.
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment, for [`normalise`].
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Normalise `config`, collecting every problem found.
pub fn normalise(config: Config, origin: Origin, env: Env) -> Result<Appliance, ConfigError> {
    let mut n = Normaliser {
        origin: &origin,
        env,
        problems: Vec::new(),
    };
    if config.api_version != API_VERSION {
        n.problem(
            "apiVersion",
            format!(
                "unsupported apiVersion {:?}; this airlift reads `apiVersion: {API_VERSION}`",
                config.api_version
            ),
        );
    }
    if config.kind != KIND {
        n.problem(
            "kind",
            format!(
                "unsupported kind {:?}; an image config has `kind: {KIND}`",
                config.kind
            ),
        );
    }
    let images = config
        .images
        .iter()
        .enumerate()
        .filter_map(|(i, spec)| n.image(&join_index("images", i), i, spec))
        .collect();
    let base = config.base.as_ref().and_then(|b| n.base(b));
    let overlays = config
        .overlays
        .iter()
        .enumerate()
        .map(|(i, p)| n.path(&join_index("overlays", i), p))
        .collect();
    let registry = n.registry(&config.registry);
    let ha = n.ha(&config.ha);
    let mut output = config.output.clone();
    for (iso_path, local) in output.extra_files.iter_mut() {
        *local = n.path(&join_key("output.extraFiles", iso_path), local);
    }
    let secure_boot = SecureBoot {
        key: n.opt_path("secureBoot.key", &config.secure_boot.key),
        certificate: n.opt_path("secureBoot.certificate", &config.secure_boot.certificate),
        ..config.secure_boot.clone()
    };
    let verify = config.verify.as_ref().map(|v| Verify {
        keys: v
            .keys
            .iter()
            .enumerate()
            .map(|(i, k)| VerifyKey {
                public_key: n.path(
                    &join_key(&join_index("verify.keys", i), "publicKey"),
                    &k.public_key,
                ),
                ..k.clone()
            })
            .collect(),
        enforce: v.enforce,
    });
    if !n.problems.is_empty() {
        return Err(ConfigError::from(n.problems));
    }
    Ok(Appliance {
        metadata: config.metadata.clone(),
        images,
        base,
        overlays,
        registry,
        netboot: config.netboot.clone(),
        runtimes: config.runtimes.clone(),
        storage: config.storage.clone(),
        ha,
        output,
        secure_boot,
        verify,
        trust: None,
        config,
        origin,
    })
}

struct Normaliser<'a> {
    origin: &'a Origin,
    env: Env<'a>,
    problems: Vec<Problem>,
}

impl Normaliser<'_> {
    fn problem(&mut self, field: &str, message: String) {
        self.problems.push(self.origin.problem(field, message));
    }

    /// `${VAR}` expanded, then made absolute against the config's folder.
    fn path(&mut self, field: &str, path: &Path) -> PathBuf {
        let Some(s) = path.to_str() else {
            return self.origin.dir.join(path);
        };
        match expand_vars(s, self.env) {
            Ok(expanded) => self.origin.dir.join(expanded),
            Err(message) => {
                self.problem(field, message);
                path.to_path_buf()
            }
        }
    }

    fn opt_path(&mut self, field: &str, path: &Option<PathBuf>) -> Option<PathBuf> {
        path.as_ref().map(|p| self.path(field, p))
    }

    fn image(&mut self, field: &str, i: usize, spec: &ImageSpec) -> Option<ImageEntry> {
        let field = field.to_string();
        let reference = match spec.reference.parse::<Reference>() {
            Ok(r) => Some(r),
            Err(e) => {
                self.problem(
                    &join_key(&field, "ref"),
                    format!(
                        "{e}; write a reference like quay.io/org/app:1.2, nginx:1.25 \
                         or registry.example:5000/app@sha256:…"
                    ),
                );
                None
            }
        };
        let from = join_key(&field, "from");
        let source = match &spec.from {
            None => ImageSource::Registry(RegistrySource::default()),
            Some(ImageSource::Registry(r)) => ImageSource::Registry(RegistrySource {
                credentials: self
                    .opt_path(&join_key(&from, "registry.credentials"), &r.credentials),
                ..r.clone()
            }),
            Some(ImageSource::OciLayout(l)) => ImageSource::OciLayout(LayoutSource {
                path: self.path(&join_key(&from, "ociLayout.path"), &l.path),
                ..l.clone()
            }),
            Some(ImageSource::OciArchive(l)) => ImageSource::OciArchive(LayoutSource {
                path: self.path(&join_key(&from, "ociArchive.path"), &l.path),
                ..l.clone()
            }),
            Some(ImageSource::DockerArchive(d)) => {
                ImageSource::DockerArchive(DockerArchiveSource {
                    path: self.path(&join_key(&from, "dockerArchive.path"), &d.path),
                    ..d.clone()
                })
            }
        };
        Some(ImageEntry {
            reference: reference?,
            source,
            platforms: spec.platforms.clone(),
            index: i,
        })
    }

    /// `base:` normalised: with `image`, the image and its in-image
    /// overrides as written; without, every host path made absolute and
    /// the required ones present.
    fn base(&mut self, b: &BaseConfig) -> Option<BaseSpec> {
        let bl = b.bootloader.clone().unwrap_or_default();
        if let Some(spec) = &b.image {
            // base.rootfs beside it is refused by validate.
            let mut image = self.image(ImageBase::FIELD, 0, spec)?;
            if image.platforms.is_empty() {
                image.platforms = vec![BASE_PLATFORM.to_string()];
            }
            return Some(BaseSpec::Image(ImageBase {
                image,
                kernel: b.kernel.clone(),
                modules_dir: b.modules_dir.clone(),
                busybox: b.busybox.clone(),
                bootloader: bl,
                modules: b.modules.clone(),
                extra_modules: b.extra_modules.clone(),
                kernel_args: b.kernel_args.clone(),
                root_on: b.root_on,
            }));
        }
        // The path base: the fields serde required before base.image.
        let mut required = |field: &str, name: &str, value: Option<&PathBuf>| {
            if value.is_none() {
                self.problem(
                    field,
                    format!(
                        "missing field `{name}` (a base from host paths needs it; or name \
                         the OS image in base.image)"
                    ),
                );
            }
            value.cloned()
        };
        let kernel = required("base", "kernel", b.kernel.as_ref());
        let rootfs = required("base", "rootfs", b.rootfs.as_ref());
        let (isolinux, efi) = match &b.bootloader {
            None => {
                required("base", "bootloader", None);
                (None, None)
            }
            Some(l) => (
                required("base.bootloader", "isolinux", l.isolinux.as_ref()),
                required("base.bootloader", "efi", l.efi.as_ref()),
            ),
        };
        Some(BaseSpec::Paths(Base {
            kernel: self.path("base.kernel", &kernel?),
            rootfs: self.path("base.rootfs", &rootfs?),
            modules_dir: self.opt_path("base.modulesDir", &b.modules_dir),
            modules: b.modules.clone(),
            extra_modules: b.extra_modules.clone(),
            bootloader: Bootloader {
                isolinux: self.path("base.bootloader.isolinux", &isolinux?),
                efi: self.path("base.bootloader.efi", &efi?),
                ipxe: self.opt_path("base.bootloader.ipxe", &bl.ipxe),
                shim: self.opt_path("base.bootloader.shim", &bl.shim),
                grub: self.opt_path("base.bootloader.grub", &bl.grub),
                grub_net: self.opt_path("base.bootloader.grubNet", &bl.grub_net),
                stub: self.opt_path("base.bootloader.stub", &bl.stub),
            },
            kernel_args: b.kernel_args.clone(),
            root_on: b.root_on,
            busybox: self.opt_path("base.busybox", &b.busybox),
        }))
    }

    /// `ha.virtualIp` typed: the address parsed, the router id in range.
    fn ha(&mut self, ha: &Ha) -> Option<airlift_appliance::Ha> {
        use airlift_appliance::{Ha as FileHa, IpCidr, VirtualIp};
        let v = ha.virtual_ip.as_ref()?;
        let address = v
            .address
            .trim()
            .parse::<IpCidr>()
            .map_err(|e| self.problem("ha.virtualIp.address", e));
        let router_id = u8::try_from(v.virtual_router_id)
            .ok()
            .filter(|id| *id != 0)
            .ok_or_else(|| {
                self.problem(
                    "ha.virtualIp.virtualRouterId",
                    format!(
                        "{} is not a VRRP virtual router id; choose one from 1 to 255 that no \
                         other VRRP group on the link uses (default {DEFAULT_VIRTUAL_ROUTER_ID})",
                        v.virtual_router_id
                    ),
                )
            });
        Some(FileHa {
            virtual_ip: Some(VirtualIp {
                address: address.ok()?,
                interface: v.interface.clone(),
                virtual_router_id: router_id.ok()?,
            }),
        })
    }

    fn registry(&mut self, r: &Registry) -> Registry {
        let mut r = r.clone();
        r.tls.cert = self.opt_path("registry.tls.cert", &r.tls.cert);
        r.tls.key = self.opt_path("registry.tls.key", &r.tls.key);
        r.push.htpasswd = self.opt_path("registry.push.htpasswd", &r.push.htpasswd);
        r.push.token_file = self.opt_path("registry.push.tokenFile", &r.push.token_file);
        r
    }
}

/// Replace every `${NAME}` in `s` by the variable's value. `$` not
/// followed by `{` is kept as it is.
pub fn expand_vars(s: &str, env: Env) -> Result<String, String> {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(format!(
                "{s:?} has `${{` without a closing `}}`; write ${{NAME}}"
            ));
        };
        let name = &after[..end];
        let valid = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(format!(
                "{s:?} has `${{{name}}}`, which is not a variable name \
                 (letters, digits and _, not starting with a digit)"
            ));
        }
        match env(name) {
            Some(v) if !v.is_empty() => out.push_str(&v),
            Some(_) => {
                return Err(format!(
                    "environment variable {name} (used in {s:?}) is empty; set it to a path"
                ))
            }
            None => {
                return Err(format!(
                    "environment variable {name} (used in {s:?}) is not set; \
                     set it, or write the path out"
                ))
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    const TEXT: &str = "\
apiVersion: airlift/v1alpha1
kind: Appliance
metadata: { name: demo, version: '1' }
images:
  - ref: nginx:1.25
  - ref: quay.io/org/app:2
    from:
      ociArchive: { path: images/app.tar }
  - ref: registry.example:5000/tools/x@sha256:0123456789012345678901234567890123456789012345678901234567890123
    from:
      registry: { credentials: '${CREDS}/auth.json', mirror: 'http://127.0.0.1:5000' }
base:
  kernel: ${AIRLIFT_BASE}/vmlinuz
  rootfs: /abs/rootfs
  bootloader: { isolinux: isolinux, efi: efi/bootx64.efi }
overlays: [overlay]
registry:
  tls: { mode: provided, cert: tls/cert.pem, key: tls/key.pem }
output:
  extraFiles: { README.txt: files/readme }
";

    fn env(name: &str) -> Option<String> {
        match name {
            "AIRLIFT_BASE" => Some("/opt/base".to_string()),
            "CREDS" => Some("secrets".to_string()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    fn run(text: &str) -> Result<Appliance, ConfigError> {
        let file = Path::new("/cfg/demo.yaml");
        let config = parse(text, file).unwrap();
        normalise(config, Origin::new(file, text), &env)
    }

    #[test]
    fn resolves_paths_references_and_defaults() {
        let a = run(TEXT).unwrap();
        assert_eq!(a.origin.dir, Path::new("/cfg"));
        assert_eq!(a.images.len(), 3);
        assert_eq!(
            a.images[0].reference.to_string(),
            "docker.io/library/nginx:1.25"
        );
        assert_eq!(
            a.images[0].source,
            ImageSource::Registry(RegistrySource::default())
        );
        assert_eq!(
            a.images[1].source,
            ImageSource::OciArchive(LayoutSource {
                path: "/cfg/images/app.tar".into(),
                reference: None
            })
        );
        let ImageSource::Registry(r) = &a.images[2].source else {
            panic!("{:?}", a.images[2].source)
        };
        assert_eq!(
            r.credentials.as_deref(),
            Some(Path::new("/cfg/secrets/auth.json"))
        );
        assert_eq!(r.mirror.as_deref(), Some("http://127.0.0.1:5000"));
        assert!(a.images[2].reference.digest().is_some());
        let base = a.base.unwrap().paths().unwrap().clone();
        assert_eq!(base.kernel, Path::new("/opt/base/vmlinuz"));
        assert_eq!(base.rootfs, Path::new("/abs/rootfs"));
        assert_eq!(base.bootloader.isolinux, Path::new("/cfg/isolinux"));
        assert_eq!(a.overlays, vec![PathBuf::from("/cfg/overlay")]);
        assert_eq!(
            a.registry.tls.key.as_deref(),
            Some(Path::new("/cfg/tls/key.pem"))
        );
        assert_eq!(
            a.output.extra_files["README.txt"],
            Path::new("/cfg/files/readme")
        );
        // The original is kept as written.
        assert_eq!(
            a.config.base.unwrap().kernel.unwrap(),
            Path::new("${AIRLIFT_BASE}/vmlinuz")
        );
    }

    #[test]
    fn unset_variable_names_field_and_variable() {
        let text = TEXT.replace("${AIRLIFT_BASE}", "${NOPE}");
        let e = run(&text).unwrap_err().to_string();
        assert!(
            e.starts_with("/cfg/demo.yaml:13:3: field base.kernel: "),
            "{e}"
        );
        assert!(e.contains("environment variable NOPE"), "{e}");
        assert!(e.contains("is not set"), "{e}");
    }

    #[test]
    fn bad_reference_names_the_field_and_why() {
        let text = TEXT.replace("quay.io/org/app:2", "quay.io/Org/app:2");
        let e = run(&text).unwrap_err().to_string();
        assert!(
            e.starts_with("/cfg/demo.yaml:6:5: field images[1].ref: "),
            "{e}"
        );
        assert!(e.contains("\"Org\" must be lowercase"), "{e}");
    }

    #[test]
    fn wrong_api_version_and_kind_say_the_supported_value() {
        let text = TEXT
            .replace("airlift/v1alpha1", "airlift/v2")
            .replace("kind: Appliance", "kind: Cluster");
        let e = run(&text).unwrap_err();
        assert_eq!(e.problems.len(), 2);
        let s = e.to_string();
        assert!(s.contains("/cfg/demo.yaml:1:1: field apiVersion: unsupported apiVersion \"airlift/v2\"; this airlift reads `apiVersion: airlift/v1alpha1`"), "{s}");
        assert!(s.contains("/cfg/demo.yaml:2:1: field kind: unsupported kind \"Cluster\"; an image config has `kind: Appliance`"), "{s}");
    }

    #[test]
    fn collects_every_problem() {
        let text = TEXT
            .replace("${AIRLIFT_BASE}", "${NOPE}")
            .replace("${CREDS}", "${ALSO_NOPE}")
            .replace("nginx:1.25", "nginx:-x");
        let e = run(&text).unwrap_err();
        let fields: Vec<_> = e
            .problems
            .iter()
            .map(|p| p.field.clone().unwrap())
            .collect();
        assert_eq!(
            fields,
            [
                "images[0].ref",
                "images[2].from.registry.credentials",
                "base.kernel"
            ]
        );
    }

    #[test]
    fn expands_variables() {
        assert_eq!(
            expand_vars("${AIRLIFT_BASE}/k", &env).unwrap(),
            "/opt/base/k"
        );
        assert_eq!(
            expand_vars("a/$HOME/${CREDS}x", &env).unwrap(),
            "a/$HOME/secretsx"
        );
        assert!(expand_vars("${AIRLIFT_BASE", &env)
            .unwrap_err()
            .contains("closing"));
        assert!(expand_vars("${1X}", &env)
            .unwrap_err()
            .contains("not a variable name"));
        assert!(expand_vars("${EMPTY}/k", &env)
            .unwrap_err()
            .contains("is empty"));
    }
}
