//! The application images of the day-two end-to-end test
//! (tests/vm/e2e_update.rs): two releases of one appliance
//! (image-configs/e2e-update-1.yaml and -2.yaml) that differ by one image
//! added, one changed and one dropped, plus the image the test pushes.
//!
//! They are small seeded layers ([`crate::images`]), committed as one OCI
//! layout under `image-configs/files/e2e-update/images` because the image
//! configs name it and `just check` validates every config against what
//! it names. [`tests::the_committed_layout_is_what_the_code_makes`] keeps
//! the files and this code in step (`AIRLIFT_BLESS=1` rewrites them).
//!
//! Layers, and why each exists:
//! - `app` changes between releases: a base layer both share (an update
//!   carries only the new top layer) and a top layer per release;
//! - `old` is in release 1 only: a layer the pushed image also has (it
//!   must survive garbage collection) and a layer of its own (it must go);
//! - `new` is in release 2 only.

use std::path::{Path, PathBuf};

use crate::images::{write_layout, Layer, MadeImage, TestImage};
use crate::tools::workspace_root;

/// Where the committed layout lives, relative to the workspace root.
pub const LAYOUT: &str = "image-configs/files/e2e-update/images";

/// `ref` names inside the layout.
pub const APP_1: &str = "app-1";
pub const APP_2: &str = "app-2";
pub const OLD: &str = "old-1";
pub const NEW: &str = "new-1";

const APP_BASE: Layer = Layer::Random {
    seed: 1901,
    size: 12 * 1024,
};
const APP_TOP_1: Layer = Layer::Random {
    seed: 1902,
    size: 8 * 1024,
};
const APP_TOP_2: Layer = Layer::Random {
    seed: 1903,
    size: 8 * 1024,
};
/// In `old` and in the pushed image.
pub const SHARED_WITH_PUSH: Layer = Layer::Random {
    seed: 1904,
    size: 8 * 1024,
};
const OLD_OWN: Layer = Layer::Random {
    seed: 1905,
    size: 12 * 1024,
};
const NEW_OWN: Layer = Layer::Random {
    seed: 1906,
    size: 12 * 1024,
};

fn image(ref_name: &str, layers: Vec<Layer>) -> TestImage {
    TestImage {
        ref_name: ref_name.to_string(),
        layers,
        architecture: "amd64".to_string(),
        gzip: false,
    }
}

/// The four images of the committed layout, in its index order.
pub fn images() -> Vec<TestImage> {
    vec![
        image(APP_1, vec![APP_BASE, APP_TOP_1]),
        image(APP_2, vec![APP_BASE, APP_TOP_2]),
        image(OLD, vec![SHARED_WITH_PUSH, OLD_OWN]),
        image(NEW, vec![NEW_OWN]),
    ]
}

/// The image the test pushes (ref name `pushed`): the layer it shares
/// with `old`, and `size` bytes of its own from `seed`.
pub fn pushed(seed: u64, size: usize) -> TestImage {
    image(
        "pushed",
        vec![SHARED_WITH_PUSH, Layer::Random { seed, size }],
    )
}

/// The committed layout's absolute path.
pub fn layout() -> PathBuf {
    workspace_root().join(LAYOUT)
}

/// Write the four images into a layout at `dir`; what was made, in
/// [`images`] order.
pub fn write(dir: &Path) -> anyhow::Result<Vec<MadeImage>> {
    write_layout(dir, &images())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tools::file_contents_under;

    #[test]
    fn the_committed_layout_is_what_the_code_makes() {
        let dir = tempfile::tempdir().unwrap();
        let made = write(dir.path()).unwrap();
        if std::env::var_os("AIRLIFT_BLESS").is_some() {
            let _ = std::fs::remove_dir_all(layout());
            write(&layout()).unwrap();
        }
        let want = file_contents_under(dir.path());
        let have = file_contents_under(&layout());
        assert_eq!(
            have.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "{LAYOUT} differs from tests/support/update_images.rs (AIRLIFT_BLESS=1 rewrites it)"
        );
        for (name, bytes) in &want {
            assert!(
                have[name] == *bytes,
                "{LAYOUT}/{name} differs (AIRLIFT_BLESS=1 rewrites it)"
            );
        }
        // What the test relies on: app's base layer is shared, its top
        // is not; old shares one layer with the pushed image.
        assert_eq!(made[0].blobs[1], made[1].blobs[1]);
        assert_ne!(made[0].blobs[2], made[1].blobs[2]);
        let push = write_layout(&dir.path().join("push"), &[pushed(7, 100)]).unwrap();
        assert_eq!(push[0].blobs[1], made[2].blobs[1]);
        assert_ne!(push[0].blobs[2], made[2].blobs[2]);
    }
}
