//! Pulling the base image: `base.image` goes through the bundler like an
//! entry of `images:` (same sources, auth, digest pinning and `verify:`
//! trust, linux/amd64 only) into its own OCI layout; then its linux/amd64
//! manifest, config and layers are read from there.
//!
//! Each layer is handed to [`flatten`](super::flatten) as a stream that
//! checks, while it is read, the compressed bytes against the layer's
//! digest and size and the uncompressed bytes against the config's
//! `rootfs.diff_ids`; a mismatch fails the read with an error naming the
//! layer. The layout's blobs may be links to a local source not read by
//! the bundler, so nothing here trusts them unchecked.

use std::cell::RefCell;
use std::io::{self, BufReader, Read};
use std::path::Path;
use std::rc::Rc;

use anyhow::{bail, Context, Result};

use airlift_appliance::bundle_manifest::VerifiedSignature;
use airlift_oci::digest::Hasher;
use airlift_oci::documents::media;
use airlift_oci::{Descriptor, Digest, Document, Layout, Manifest};

use super::flatten::Layer;
use crate::bundler;
use crate::config::base_spec::BASE_PLATFORM;
use crate::config::{Appliance, ImageBase};
use crate::sources::platform::PlatformFilter;

/// The pulled base image.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The reference as the bundle recorded it.
    pub reference: String,
    /// The top manifest or index.
    pub digest: Digest,
    /// Signatures that verified with a `verify:` key.
    pub signatures: Vec<VerifiedSignature>,
    pub image: Image,
}

impl Pulled {
    /// `reference@digest`, for messages.
    pub fn name(&self) -> String {
        format!("{}@{}", self.reference, self.digest)
    }
}

/// One platform's image in a layout: its manifest and config facts.
#[derive(Debug, Clone)]
pub struct Image {
    /// The linux/amd64 manifest's digest.
    pub manifest_digest: Digest,
    pub manifest: Manifest,
    /// The config's `rootfs.diff_ids`, one per layer.
    pub diff_ids: Vec<Digest>,
}

impl Image {
    /// Compressed bytes of every layer.
    pub fn layer_bytes(&self) -> u64 {
        self.manifest.layers.iter().map(|l| l.size).sum()
    }
}

/// Pulls `base.image` of `app` into the OCI layout `dir` (made here),
/// with the config's attachments filter and trust.
pub fn pull(
    app: &Appliance,
    base: &ImageBase,
    dir: &Path,
    concurrency: usize,
    progress: bool,
) -> Result<Pulled> {
    let request = base.image.request();
    let report = bundler::write_bundle_linked(
        std::slice::from_ref(&request),
        dir,
        &crate::pipeline::bundle_options(app, concurrency, progress),
    )
    .with_context(|| format!("pulling the base image {}", base.image.reference))?;
    let entry = report
        .manifest
        .images
        .first()
        .context("the base image's bundle holds no image")?;
    let layout = Layout::open(dir)?;
    let name = format!("{}@{}", entry.reference, entry.digest);
    let image = read_image(&layout, &entry.digest, &entry.media_type)
        .with_context(|| format!("base image {name}"))?;
    Ok(Pulled {
        reference: entry.reference.clone(),
        digest: entry.digest.clone(),
        signatures: entry.signatures.clone(),
        image,
    })
}

/// The linux/amd64 image under `top` (a manifest, or an index listing
/// one) in `layout`: its manifest and the config's diff_ids.
pub fn read_image(layout: &Layout, top: &Digest, media_type: &str) -> Result<Image> {
    let filter = PlatformFilter::parse(BASE_PLATFORM)?;
    let bytes = layout.read_blob(top)?;
    let (digest, bytes, media_type) = match Document::parse(&bytes, Some(media_type))? {
        Document::Index(index) => {
            let entry = index
                .manifests
                .iter()
                .find(|d| d.platform.as_ref().is_some_and(|p| filter.matches(p)))
                .with_context(|| {
                    format!(
                        "the image index {top} has no {BASE_PLATFORM} manifest (it has: {}); a \
                         base image must be built for {BASE_PLATFORM}",
                        platforms(&index.manifests)
                    )
                })?;
            let bytes = layout.read_blob(&entry.digest)?;
            (entry.digest.clone(), bytes, entry.media_type.clone())
        }
        Document::Manifest(_) => (top.clone(), bytes, media_type.to_string()),
    };
    let Document::Manifest(manifest) = Document::parse(&bytes, Some(&media_type))? else {
        bail!("{digest} is an index inside an index; a base image needs one manifest per platform");
    };
    let config: ImageConfig =
        airlift_oci::quiet_json::parse(&layout.read_blob(&manifest.config.digest)?, "image config")
            .with_context(|| {
                format!("the config {} of manifest {digest}", manifest.config.digest)
            })?;
    let platform = format!("{}/{}", config.os, config.architecture);
    if platform != BASE_PLATFORM {
        bail!(
            "manifest {digest} is for {platform}; a base image must be built for {BASE_PLATFORM}"
        );
    }
    if config.rootfs.diff_ids.len() != manifest.layers.len() {
        bail!(
            "manifest {digest} has {} layers but its config lists {} diff_ids; the image is \
             malformed: rebuild it",
            manifest.layers.len(),
            config.rootfs.diff_ids.len()
        );
    }
    Ok(Image {
        manifest_digest: digest,
        diff_ids: config.rootfs.diff_ids,
        manifest: *manifest,
    })
}

fn platforms(list: &[Descriptor]) -> String {
    let specs: Vec<String> = list
        .iter()
        .filter_map(|d| d.platform.as_ref().map(|p| p.spec()))
        .collect();
    if specs.is_empty() {
        "no platforms".to_string()
    } else {
        specs.join(", ")
    }
}

/// The parts of an image config read here.
#[derive(Debug, serde::Deserialize)]
struct ImageConfig {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    rootfs: RootFs,
}

#[derive(Debug, serde::Deserialize)]
struct RootFs {
    #[serde(default)]
    diff_ids: Vec<Digest>,
}

/// How a layer's bytes are compressed, from its media type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    /// The compression a layer media type says; `None` (the Option) for a
    /// media type that is not a tar layer this reads.
    pub fn of(media_type: &str) -> Option<Compression> {
        match media_type {
            media::OCI_LAYER_TAR
            | "application/vnd.oci.image.layer.nondistributable.v1.tar"
            | "application/vnd.docker.image.rootfs.diff.tar" => Some(Compression::None),
            media::OCI_LAYER_GZIP
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | media::DOCKER_LAYER_GZIP
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip" => {
                Some(Compression::Gzip)
            }
            media::OCI_LAYER_ZSTD
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+zstd"
            | "application/vnd.docker.image.rootfs.diff.tar.zstd" => Some(Compression::Zstd),
            _ => None,
        }
    }
}

/// The image's layers, bottom first, as checked uncompressed streams
/// for [`super::flatten::flatten`]. `image` names the image in messages.
pub fn layers<'a>(
    layout: &'a Layout,
    pulled: &'a Image,
    image: &'a str,
) -> impl Iterator<Item = Result<Layer<'a>>> + 'a {
    pulled
        .manifest
        .layers
        .iter()
        .zip(&pulled.diff_ids)
        .map(move |(desc, diff_id)| {
            let file = layout.open_blob(&desc.digest)?;
            open_layer(Box::new(file), desc, diff_id, image)
        })
}

/// One layer's stream from its compressed bytes `raw`: decompressed by
/// `desc`'s media type and checked against `desc` and `diff_id`.
pub fn open_layer<'a>(
    raw: Box<dyn Read + 'a>,
    desc: &Descriptor,
    diff_id: &Digest,
    image: &str,
) -> Result<Layer<'a>> {
    let compression = Compression::of(&desc.media_type).with_context(|| {
        format!(
            "base image {image}: layer {} has media type {:?}, which is not a tar layer airlift \
             reads (OCI or Docker tar, tar+gzip, tar+zstd); rebuild the image with one of those",
            desc.digest, desc.media_type
        )
    })?;
    let compressed = Rc::new(RefCell::new(Check::new(&desc.digest, Some(desc.size))));
    let counted = Counted {
        inner: raw,
        check: compressed.clone(),
    };
    let decoder = match compression {
        Compression::None => Decoder::Plain(counted),
        Compression::Gzip => Decoder::Gzip(Box::new(flate2::read::MultiGzDecoder::new(counted))),
        Compression::Zstd => Decoder::Zstd(Box::new(
            zstd::stream::read::Decoder::new(counted)
                .with_context(|| format!("layer {}: starting zstd", desc.digest))?,
        )),
    };
    Ok(Layer {
        digest: desc.digest.to_string(),
        reader: Box::new(Checked {
            decoder,
            uncompressed: Check::new(diff_id, None),
            compressed,
            layer: desc.digest.clone(),
            image: image.to_string(),
            done: false,
        }),
    })
}

/// A running hash and byte count, and what they must come to.
struct Check {
    hasher: Hasher,
    bytes: u64,
    want: Digest,
    size: Option<u64>,
}

impl Check {
    fn new(want: &Digest, size: Option<u64>) -> Check {
        Check {
            hasher: Hasher::new(want.algorithm()),
            bytes: 0,
            want: want.clone(),
            size,
        }
    }

    fn feed(&mut self, data: &[u8]) {
        self.hasher.update(data);
        self.bytes += data.len() as u64;
    }

    /// `Err(what was found)` when it does not add up.
    fn finish(&mut self) -> Result<(), String> {
        let hasher = std::mem::replace(&mut self.hasher, Hasher::new(self.want.algorithm()));
        let got = hasher.finish();
        if let Some(size) = self.size.filter(|s| *s != self.bytes) {
            return Err(format!("{} bytes where {size} were expected", self.bytes));
        }
        if got != self.want {
            return Err(format!("bytes that hash to {got}"));
        }
        Ok(())
    }
}

/// The compressed stream, fed to its [`Check`] as it is read.
struct Counted<'a> {
    inner: Box<dyn Read + 'a>,
    check: Rc<RefCell<Check>>,
}

impl Read for Counted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.check.borrow_mut().feed(&buf[..n]);
        Ok(n)
    }
}

enum Decoder<'a> {
    Plain(Counted<'a>),
    Gzip(Box<flate2::read::MultiGzDecoder<Counted<'a>>>),
    Zstd(Box<zstd::stream::read::Decoder<'static, BufReader<Counted<'a>>>>),
}

impl<'a> Decoder<'a> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Decoder::Plain(r) => r.read(buf),
            Decoder::Gzip(r) => r.read(buf),
            Decoder::Zstd(r) => r.read(buf),
        }
    }

    /// The compressed stream, to read what the decoder left.
    fn raw(&mut self) -> &mut Counted<'a> {
        match self {
            Decoder::Plain(r) => r,
            Decoder::Gzip(r) => r.get_mut(),
            Decoder::Zstd(r) => r.get_mut().get_mut(),
        }
    }
}

/// The uncompressed stream; at its end, both checks run and a mismatch
/// is the read's error.
struct Checked<'a> {
    decoder: Decoder<'a>,
    uncompressed: Check,
    compressed: Rc<RefCell<Check>>,
    layer: Digest,
    image: String,
    done: bool,
}

impl Checked<'_> {
    fn corrupted(&self, what: &str, found: String) -> io::Error {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "base image {}: layer {} is corrupted: its {what} are {found}; the source is \
                 corrupted (or was changed while read): pull or export the image again",
                self.image, self.layer
            ),
        )
    }

    fn finish(&mut self) -> io::Result<()> {
        // Whatever the decoder did not need (padding) still counts.
        io::copy(self.decoder.raw(), &mut io::sink())?;
        if let Err(found) = self.compressed.borrow_mut().finish() {
            return Err(self.corrupted("compressed bytes", found));
        }
        if let Err(found) = self.uncompressed.finish() {
            let want = self.uncompressed.want.clone();
            return Err(self.corrupted(
                &format!("uncompressed bytes (diff_id {want} in the image config)"),
                found,
            ));
        }
        Ok(())
    }
}

impl Read for Checked<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.done {
            return Ok(0);
        }
        let n = match self.decoder.read(buf) {
            Ok(n) => n,
            Err(e) => {
                // A decoder error on corrupted bytes: say which layer.
                return Err(io::Error::new(
                    e.kind(),
                    format!(
                        "base image {}: layer {} cannot be decompressed ({e}); the source is \
                         corrupted: pull or export the image again",
                        self.image, self.layer
                    ),
                ));
            }
        };
        if n == 0 {
            self.done = true;
            self.finish()?;
            return Ok(0);
        }
        self.uncompressed.feed(&buf[..n]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests;
