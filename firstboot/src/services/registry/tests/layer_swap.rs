//! Swapping the read-only layers at run time (`Store::set_layers`): the
//! tags of the layer given with tags move at once, a layer without tags
//! still serves its manifests by digest, pushed content is untouched,
//! and the change feed is bumped.

use super::*;
use crate::services::registry::route::ManifestRef;
use crate::services::registry::store::LayerSpec;

/// A layout with one image `quay.io/rel/app:1` whose layer holds `text`.
fn release(dir: &Path, text: &str) -> Digest {
    let layout = Layout::create(dir).unwrap();
    let (cd, cs) = layout
        .put_blob(b"{\"architecture\":\"amd64\"}", None)
        .unwrap();
    let (ld, ls) = layout.put_blob(text.as_bytes(), None).unwrap();
    let m = image_manifest(&cd, cs as usize, &ld, ls as usize);
    let (md, ms) = layout.put_blob(&m, None).unwrap();
    let mut top = Descriptor::new(media::OCI_MANIFEST, md.clone(), ms);
    top.annotations
        .insert(REF_NAME.into(), "quay.io/rel/app:1".into());
    let mut index = Index::empty();
    index.manifests = vec![top];
    layout.write_index(&index).unwrap();
    md
}

fn tag(store: &Store) -> Option<Digest> {
    store
        .resolve("quay.io/rel/app", &ManifestRef::Tag("1".into()))
        .map(|(d, _)| d)
}

#[tokio::test]
async fn the_current_layer_has_the_tags_and_the_others_pull_by_digest() {
    let t = tempfile::tempdir().unwrap();
    let (one, two) = (t.path().join("one"), t.path().join("two"));
    let (m1, m2) = (release(&one, "release one"), release(&two, "release two"));
    let store = Store::open(&t.path().join("data"), std::slice::from_ref(&one)).unwrap();
    assert_eq!(tag(&store), Some(m1.clone()));
    let before = store.changes().generation();

    let specs = [
        LayerSpec::tagged(&two),
        LayerSpec {
            dir: one.clone(),
            tags: false,
        },
    ];
    store.set_layers(&specs).unwrap();
    assert_eq!(store.layers(), specs.to_vec());
    assert!(
        store.changes().generation() > before,
        "the feed was not bumped"
    );
    assert_eq!(tag(&store), Some(m2.clone()), "the tag did not move");
    assert_eq!(store.tags("quay.io/rel/app"), Some(vec!["1".to_string()]));
    // The untagged layer's manifest and blobs still serve by digest.
    let by_digest = store.resolve("quay.io/rel/app", &ManifestRef::Digest(m1.clone()));
    assert_eq!(by_digest.map(|(d, _)| d), Some(m1.clone()));
    let bytes = store.manifest_bytes(&m1).await.unwrap();
    assert_eq!(Digest::sha256_of(&bytes), m1);
    let layer = Digest::sha256_of(b"release one");
    assert!(store.blob_in("quay.io/rel/app", &layer).await.is_some());

    // A broken layer is refused and nothing changes.
    let broken = t.path().join("broken");
    std::fs::create_dir_all(&broken).unwrap();
    assert!(store.set_layers(&[LayerSpec::tagged(&broken)]).is_err());
    assert_eq!(tag(&store), Some(m2.clone()));

    // Back, then none: the tag follows, then the repository is gone.
    store.set_layers(&[LayerSpec::tagged(&one)]).unwrap();
    assert_eq!(tag(&store), Some(m1));
    store.set_layers(&[]).unwrap();
    assert_eq!(tag(&store), None);
    assert!(store.catalog().is_empty());
}
