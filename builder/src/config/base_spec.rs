//! `base:` normalised: host paths ([`Base`], as the pipeline takes them)
//! or a container image ([`ImageBase`]), resolved to a [`Base`] at build
//! time by [`crate::baseimage`].

use std::path::{Path, PathBuf};

use super::normalise::ImageEntry;
use super::schema::{Base, RootOn};

/// The only platform a base image is taken for.
pub const BASE_PLATFORM: &str = "linux/amd64";

/// Where the boot base comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum BaseSpec {
    /// Host paths (absolute), used as they are.
    Paths(Base),
    /// A container image, pulled and flattened at build time.
    Image(ImageBase),
}

impl BaseSpec {
    /// The host-path base, when the config names one.
    pub fn paths(&self) -> Option<&Base> {
        match self {
            BaseSpec::Paths(b) => Some(b),
            BaseSpec::Image(_) => None,
        }
    }

    /// `base.kernelArgs`, either way.
    pub fn kernel_args(&self) -> &[String] {
        match self {
            BaseSpec::Paths(b) => &b.kernel_args,
            BaseSpec::Image(i) => &i.kernel_args,
        }
    }
}

/// `base.image` normalised: the image (like an `images:` entry, its
/// platforms always `linux/amd64`), paths inside it that replace where
/// airlift looks (absolute, as written), and the settings that work as
/// with the path base.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageBase {
    /// The image. Its `index` is 0 and means nothing here: messages name
    /// the base's fields with [`ImageBase::FIELD`], never
    /// `ImageEntry::field` (which would say `images[0]`).
    pub image: ImageEntry,
    /// `base.kernel`: the kernel's path in the image.
    pub kernel: Option<PathBuf>,
    /// `base.modulesDir`: the modules folder in the image.
    pub modules_dir: Option<PathBuf>,
    /// `base.busybox`: a static busybox in the image.
    pub busybox: Option<PathBuf>,
    /// `base.bootloader.*` in the image.
    pub bootloader: InImageBootloader,
    pub modules: Option<Vec<String>>,
    pub extra_modules: Vec<String>,
    pub kernel_args: Vec<String>,
    pub root_on: RootOn,
}

/// `base.bootloader.*` with `base.image`: paths inside the image, as
/// written (each optional; `isolinux` and `ipxe` name folders).
pub type InImageBootloader = super::schema::BootloaderConfig;

impl ImageBase {
    /// The field path of the image (`base.image`).
    pub const FIELD: &'static str = "base.image";

    /// Every in-image path override with its field, in config order.
    pub fn overrides(&self) -> Vec<(&'static str, &Path)> {
        let bl = &self.bootloader;
        [
            ("base.kernel", &self.kernel),
            ("base.modulesDir", &self.modules_dir),
            ("base.busybox", &self.busybox),
            ("base.bootloader.isolinux", &bl.isolinux),
            ("base.bootloader.efi", &bl.efi),
            ("base.bootloader.ipxe", &bl.ipxe),
            ("base.bootloader.shim", &bl.shim),
            ("base.bootloader.grub", &bl.grub),
            ("base.bootloader.grubNet", &bl.grub_net),
            ("base.bootloader.stub", &bl.stub),
        ]
        .into_iter()
        .filter_map(|(f, p)| p.as_deref().map(|p| (f, p)))
        .collect()
    }
}

/// A path inside an image must be absolute and free of `..` (and of `.`
/// components, which would make two spellings of one path).
pub fn check_in_image_path(path: &Path) -> Result<(), String> {
    let shown = path.display();
    if !path.is_absolute() {
        return Err(format!(
            "{shown} is relative; with base.image this names a path inside the image: write it \
             absolute (e.g. /usr/lib/modules/6.1.0-18-amd64/vmlinuz)"
        ));
    }
    // By text: `components()` drops inner `.` components.
    if path
        .as_os_str()
        .as_encoded_bytes()
        .split(|b| *b == b'/')
        .any(|c| c == b"." || c == b"..")
    {
        return Err(format!(
            "{shown} has a `..` or `.` component; with base.image write the path inside the \
             image plainly, from /"
        ));
    }
    Ok(())
}

#[cfg(test)]
impl ImageBase {
    /// For unit tests: `registry.test/base:1` pulled from its registry,
    /// nothing overridden, the root on the media.
    pub(crate) fn for_tests() -> ImageBase {
        ImageBase {
            image: ImageEntry {
                reference: "registry.test/base:1".parse().unwrap(),
                source: super::ImageSource::Registry(super::RegistrySource::default()),
                platforms: vec![BASE_PLATFORM.into()],
                index: 0,
            },
            kernel: None,
            modules_dir: None,
            busybox: None,
            bootloader: InImageBootloader::default(),
            modules: None,
            extra_modules: Vec::new(),
            kernel_args: Vec::new(),
            root_on: RootOn::Media,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_image_paths_are_absolute_and_plain() {
        assert!(check_in_image_path(Path::new("/usr/lib/x")).is_ok());
        let e = check_in_image_path(Path::new("usr/lib/x")).unwrap_err();
        assert!(e.contains("is relative"), "{e}");
        let e = check_in_image_path(Path::new("/usr/../etc/x")).unwrap_err();
        assert!(e.contains("`..`"), "{e}");
        assert!(check_in_image_path(Path::new("/usr/./x")).is_err());
    }
}
