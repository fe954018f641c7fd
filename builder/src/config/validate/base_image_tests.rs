//! `base.image`: parsed, normalised and validated (nothing pulled).

use super::tests::{fixture, load, GOOD};
use super::*;
use crate::config::normalise::{normalise, Origin};
use crate::config::parse;
use crate::config::BaseSpec;

/// `GOOD` with its path base replaced by `base`.
fn with_base(base: &str) -> String {
    let start = GOOD.find("base:\n").unwrap();
    let end = GOOD.find("overlays:").unwrap();
    format!("{}{base}{}", &GOOD[..start], &GOOD[end..])
}

const IMAGE: &str = "\
base:
  image:
    ref: registry.airlift.test/base/demo:bookworm
    from: { ociArchive: { path: images/app.tar } }
  rootOn: media
  kernelArgs: [quiet]
";

fn problems_of(text: &str) -> Vec<String> {
    let dir = fixture();
    let app = load(dir.path(), text);
    match validate(&app, Purpose::Build) {
        Ok(()) => Vec::new(),
        Err(ps) => ps.iter().map(|p| p.to_string()).collect(),
    }
}

#[test]
fn an_image_base_normalises_and_validates_without_pulling() {
    let text = with_base(IMAGE);
    let dir = fixture();
    let app = load(dir.path(), &text);
    let Some(BaseSpec::Image(b)) = &app.base else {
        panic!("{:?}", app.base)
    };
    assert_eq!(
        b.image.reference.to_string(),
        "registry.airlift.test/base/demo:bookworm"
    );
    // Platforms default to linux/amd64; the source path is absolute.
    assert_eq!(b.image.platforms, ["linux/amd64"]);
    let crate::config::ImageSource::OciArchive(l) = &b.image.source else {
        panic!("{:?}", b.image.source)
    };
    assert_eq!(l.path, dir.path().join("images/app.tar"));
    assert_eq!(b.kernel_args, ["quiet"]);
    assert!(b.kernel.is_none() && b.bootloader.shim.is_none());
    // Build validation passes: shim, GRUB and iPXE are looked for in
    // the image after the pull, not asked of the config.
    assert_eq!(validate(&app, Purpose::Build), Ok(()));
    // The config as written keeps the image.
    assert!(app.config.base.as_ref().unwrap().image.is_some());
}

#[test]
fn rootfs_with_an_image_is_an_error_among_the_others() {
    let text = with_base(&IMAGE.replace(
        "  rootOn: media\n",
        "  rootfs: /srv/rootfs\n  busybox: bin/busybox\n",
    ));
    let ps = problems_of(&text);
    assert_eq!(ps.len(), 2, "{ps:#?}");
    assert!(
        ps[0].contains("field base.rootfs: is set together with base.image")
            && ps[0].contains("remove base.rootfs"),
        "{}",
        ps[0]
    );
    assert!(
        ps[1].contains("field base.busybox: bin/busybox is relative"),
        "{}",
        ps[1]
    );
}

#[test]
fn in_image_paths_must_be_absolute_without_dotdot() {
    let text = with_base(&format!(
        "{IMAGE}  kernel: boot/vmlinuz\n  busybox: /usr/../bin/busybox\n  bootloader:\n    \
         shim: /usr/lib/shim/shimx64.efi.signed\n    ipxe: lib/ipxe\n"
    ));
    let ps = problems_of(&text);
    assert_eq!(ps.len(), 3, "{ps:#?}");
    assert!(
        ps[0].contains("field base.kernel: boot/vmlinuz is relative"),
        "{}",
        ps[0]
    );
    assert!(
        ps[1].contains("field base.busybox: /usr/../bin/busybox has a `..`"),
        "{}",
        ps[1]
    );
    assert!(
        ps[2].contains("field base.bootloader.ipxe: lib/ipxe is relative"),
        "{}",
        ps[2]
    );
}

#[test]
fn a_base_image_is_linux_amd64_only() {
    let text = with_base(&IMAGE.replace(
        "    from:",
        "    platforms: [linux/amd64, linux/arm64]\n    from:",
    ));
    let ps = problems_of(&text);
    assert_eq!(ps.len(), 1, "{ps:#?}");
    assert!(ps[0].contains("field base.image.platforms[1]: \"linux/arm64\": a base image is taken for linux/amd64 only"), "{}", ps[0]);
}

#[test]
fn a_missing_local_source_names_the_base_field() {
    let text = with_base(&IMAGE.replace("images/app.tar", "images/nope.tar"));
    let ps = problems_of(&text);
    assert_eq!(ps.len(), 1, "{ps:#?}");
    assert!(
        ps[0].contains("field base.image.from.ociArchive.path: "),
        "{}",
        ps[0]
    );
    assert!(ps[0].contains("nope.tar does not exist"), "{}", ps[0]);
}

#[test]
fn a_bad_reference_names_the_base_field() {
    let text = with_base(&IMAGE.replace("base/demo:bookworm", "Base/demo:bookworm"));
    let dir = fixture();
    let file = dir.path().join("appliance.yaml");
    let config = parse(&text, &file).unwrap();
    let e = normalise(config, Origin::new(&file, &text), &|_| None)
        .unwrap_err()
        .to_string();
    assert!(e.contains("field base.image.ref: "), "{e}");
}
