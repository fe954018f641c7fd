//! The build pipeline behind `airlift build`: from an image config to one
//! bootable hybrid ISO.
//!
//! Steps, each a small call into its own module:
//! 1. load and check the config; resolve the base (a path base as it
//!    is; a base image pulled, flattened and its kernel, modules and boot
//!    loaders put in the work folder: [`crate::baseimage`]);
//! 2. write the bundle (every image, one OCI layout) into a temp folder;
//!    blobs of local layout folders are symlinked there, not copied; the
//!    ISO writer copies them from their source files and checks their
//!    digests on the bytes it writes (one read and one write of the
//!    payload in all), or, for a source file the verification record
//!    ([`crate::verified`], in [`BuildOptions::cache`]) says an earlier
//!    build checked and that has not changed since, copies it unhashed;
//! 3. the root filesystem: base root filesystem, overlays,
//!    `/usr/bin/airlift-firstboot`, `/etc/airlift/appliance.json`, kernel
//!    modules with their closure; as a squashfs image for the ISO with a
//!    busybox stage-1 initramfs ([`root`], `base.rootOn: media`), or
//!    whole in the initramfs (`base.rootOn: initramfs`);
//! 4. lay out the ISO tree (kernel, initrd, isolinux, bundle,
//!    `SHA256SUMS`) and the ESP (shim, signed GRUB, `grub.cfg`; see
//!    [`uefi_chain`]; with `secureBoot: mode: sign`, [`own_keys`]' signed
//!    systemd-boot and UKI);
//! 5. write the ISO (atomically: temp file beside the output, renamed).
//!
//! Timestamps come from `SOURCE_DATE_EPOCH`, else the config file's
//! mtime; see [`epoch`] for that and for the join token.

pub mod appliance_file;
pub mod boot_config;
pub mod checks;
pub mod epoch;
pub mod own_keys;
pub mod root;
pub mod uefi_chain;

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};

use crate::bundler::{self, BundleOptions};
use crate::config::{self, Appliance, Base};
use crate::initramfs::server_set::Selection;
use crate::initramfs::{self, ModulesSpec, Node};
use crate::iso::{self, BiosBoot, FileSource, IsoImage, UefiBoot};
use crate::verified;

pub use checks::expect_digests;
use checks::remember;

/// Where the first-boot binary goes in the initramfs.
pub const FIRSTBOOT_PATH: &str = "usr/bin/airlift-firstboot";

/// Options for [`build`].
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// The image config (YAML).
    pub config: PathBuf,
    /// The ISO to write.
    pub output: PathBuf,
    /// The `airlift-firstboot` binary; default: beside the running `airlift`.
    pub firstboot: Option<PathBuf>,
    /// zstd level of the initramfs.
    pub zstd_level: i32,
    /// Blob downloads at once while bundling.
    pub concurrency: usize,
    /// Progress bars while bundling (when stderr is a terminal).
    pub progress: bool,
    /// The folder of the verification record ([`crate::verified`]): blob
    /// files checked by an earlier build and unchanged since are not
    /// hashed again. `None`: hash every blob, record nothing.
    pub cache: Option<PathBuf>,
}

impl BuildOptions {
    /// Defaults for everything but the config and the output.
    pub fn new(config: PathBuf, output: PathBuf) -> BuildOptions {
        BuildOptions {
            config,
            output,
            firstboot: None,
            zstd_level: initramfs::DEFAULT_LEVEL,
            concurrency: 4,
            progress: true,
            cache: None,
        }
    }
}

/// What [`build`] made, with how long each step took.
#[derive(Debug, Clone)]
pub struct BuildReport {
    pub iso: iso::WriteReport,
    pub initramfs: initramfs::Report,
    /// The root filesystem image, when it is on the media.
    pub root_image: Option<crate::rootimage::squashfs::Report>,
    pub images: usize,
    pub epoch: i64,
    pub kernel_release: String,
    /// The base image the OS came from (`base.image`).
    pub base: Option<airlift_appliance::bundle_manifest::BaseImageRecord>,
    pub seconds_bundle: f64,
    pub seconds_initramfs: f64,
    pub seconds_iso: f64,
}

/// Builds the ISO described by `opts.config` into `opts.output`.
pub fn build(opts: &BuildOptions) -> Result<BuildReport> {
    let app = config::load_and_validate(&opts.config, config::Purpose::Build)?;
    // The signed UEFI chain of a path base is checked before any work is
    // done (a base image's, once it is pulled; sign mode checks its key
    // and loader below).
    if let Some(base) = app.base.as_ref().and_then(config::BaseSpec::paths) {
        if matches!(app.secure_boot.mode, config::SecureBootMode::Shim) {
            uefi_chain::loaders(&app, base)?;
        }
    }
    let (epoch, token) = stamp(&opts.config, &app)?;
    let firstboot = firstboot_binary(opts)?;
    let out_dir = parent_dir(&opts.output);
    let work = tempfile::Builder::new()
        .prefix(".airlift-build-")
        .tempdir_in(out_dir)
        .with_context(|| format!("making a work folder in {}", out_dir.display()))?;

    // 1. The base: host paths as they are, or the base image pulled,
    // flattened and its boot files put in the work folder.
    // (A base image's shim and GRUB are required by `locate` in shim mode.)
    let resolved = crate::baseimage::resolve(&app, work.path(), opts.concurrency, opts.progress)?;
    let base = &resolved.base;

    let t = Instant::now();
    let firstboot = strip_debug(&firstboot, work.path())?;
    tracing::debug!("strip: {:.2}s", t.elapsed().as_secs_f64());
    // Sign mode: a key that does not fit its certificate fails here, first.
    let signed = own_keys::sign_loader(&app, base, work.path(), epoch)?;

    // 2. The bundle; bundle.json records the base image (not one of its
    // images: the base's blobs are not in the bundle).
    let t = Instant::now();
    let bundle_dir = work.path().join("bundle");
    let mut bundle = write_bundle(&app, &bundle_dir, opts.concurrency, opts.progress)?;
    if let Some(record) = &resolved.record {
        bundle.manifest.base = Some(record.clone());
        bundler::write_manifest(&bundle_dir, &bundle.manifest)?;
    }
    let seconds_bundle = t.elapsed().as_secs_f64();
    tracing::info!(
        "bundle: {} images, {} bytes in {seconds_bundle:.1}s",
        bundle.manifest.totals.images,
        bundle.manifest.totals.unique_bytes
    );

    // 3. The initramfs.
    let t = Instant::now();
    let kernel_release = initramfs::kernel::release_of(&base.kernel)?;
    let initrd = work.path().join("initrd.img");
    let mut file = appliance_file::appliance_file(&app, &token, &kernel_release);
    file.base = resolved.record.clone();
    let spec = initramfs_spec(
        (base, &resolved.root),
        &app,
        &firstboot,
        &kernel_release,
        &file,
        epoch,
        opts.zstd_level,
    )?;
    let image_path = work.path().join("rootfs.squashfs");
    let (initramfs, root_image) = write_root(base, &opts.config, &spec, &image_path, &initrd)?;
    let seconds_initramfs = t.elapsed().as_secs_f64();

    // 4-5. The ISO.
    let t = Instant::now();
    let mut record = opts.cache.as_deref().map(verified::Record::load);
    let started = SystemTime::now();
    let iso = write_iso(
        &app,
        base,
        (&bundle_dir, &bundle, record.as_ref()),
        (&initrd, root_image.as_ref().map(|_| image_path.as_path())),
        epoch,
        &opts.output,
        signed.as_ref(),
    )?;
    remember(
        opts.cache.as_deref().zip(record.as_mut()),
        &iso.checks,
        started,
    );
    let seconds_iso = t.elapsed().as_secs_f64();
    tracing::info!(
        "iso: {} ({} bytes, {} files) in {seconds_iso:.1}s",
        opts.output.display(),
        iso.image_bytes,
        iso.files
    );
    Ok(BuildReport {
        iso,
        initramfs,
        root_image,
        images: bundle.manifest.totals.images as usize,
        epoch,
        kernel_release,
        base: resolved.record.clone(),
        seconds_bundle,
        seconds_initramfs,
        seconds_iso,
    })
}

/// Step 3: the initramfs at `initrd` and, when the root is on the media
/// (`base.rootOn`), the root filesystem image at `image`.
fn write_root(
    base: &Base,
    config: &Path,
    spec: &initramfs::Spec,
    image: &Path,
    initrd: &Path,
) -> Result<(
    initramfs::Report,
    Option<crate::rootimage::squashfs::Report>,
)> {
    Ok(match (base.root_on, &base.busybox) {
        (config::RootOn::Media, Some(busybox)) => {
            let (report, root) = root::write_media_root(spec, busybox, image, initrd)?;
            (report, Some(root))
        }
        (config::RootOn::Media, None) => bail!(
            "{}: base.rootOn is media but base.busybox is not set",
            config.display()
        ),
        (config::RootOn::Initramfs, _) => (write_initramfs(spec, initrd)?, None),
    })
}

/// The epoch (`SOURCE_DATE_EPOCH`, else the config's mtime) and the join
/// token; see [`epoch`].
fn stamp(config_path: &Path, app: &Appliance) -> Result<(i64, String)> {
    let epoch = build_epoch(config_path)?;
    let sde = std::env::var("SOURCE_DATE_EPOCH").ok();
    let (token, token_source) = epoch::join_token(
        std::env::var("AIRLIFT_JOIN_TOKEN").ok().as_deref(),
        sde.as_ref().map(|_| epoch),
        &app.metadata.name,
        &app.metadata.version,
    )?;
    tracing::info!("epoch {epoch}, join token {token_source:?}");
    Ok((epoch, token))
}

/// Every timestamp of a build: `SOURCE_DATE_EPOCH`, else the config
/// file's mtime (see [`epoch`]).
pub fn build_epoch(config_path: &Path) -> Result<i64> {
    let mtime = std::fs::metadata(config_path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs() as i64);
    let sde = std::env::var("SOURCE_DATE_EPOCH").ok();
    epoch::epoch(sde.as_deref(), mtime)
}

/// The first-boot binary to put in the image; it must exist.
fn firstboot_binary(opts: &BuildOptions) -> Result<PathBuf> {
    let firstboot = match &opts.firstboot {
        Some(p) => p.clone(),
        None => default_firstboot()?,
    };
    if !firstboot.is_file() {
        bail!(
            "the first-boot binary {} does not exist: build it (`cargo build -p airlift-firstboot`) \
             or pass --firstboot PATH",
            firstboot.display()
        );
    }
    Ok(firstboot)
}

/// Step 2: every image of the config into the bundle at `dir`, blobs of
/// local layouts linked (checked later by the ISO writer; also how an
/// update medium, [`crate::update`], collects its bundle).
pub fn write_bundle(
    app: &Appliance,
    dir: &Path,
    concurrency: usize,
    progress: bool,
) -> Result<bundler::BundleReport> {
    let requests: Vec<_> = app.images.iter().map(config::ImageEntry::request).collect();
    bundler::write_bundle_linked(&requests, dir, &bundle_options(app, concurrency, progress))
        .context("writing the bundle")
}

/// How `app`'s images (and its base image) are collected: its
/// attachments filter and `verify:` keys, `concurrency` downloads at once.
pub fn bundle_options(app: &Appliance, concurrency: usize, progress: bool) -> BundleOptions {
    BundleOptions {
        attachments: app.attachment_filter(),
        name: app.metadata.name.clone(),
        version: app.metadata.version.clone(),
        concurrency: concurrency.max(1),
        progress,
        trust: app.trust.clone(),
    }
}

/// Step 3: the initramfs `spec` describes, written to `out`.
fn write_initramfs(spec: &initramfs::Spec, out: &Path) -> Result<initramfs::Report> {
    let t = Instant::now();
    let report = initramfs::write(spec, out).context("writing the initramfs")?;
    tracing::info!(
        "initramfs: {} members, {} modules, {} bytes cpio -> {} bytes zstd-{} in {:.1}s",
        report.members,
        report.modules.len(),
        report.cpio_bytes,
        report.compressed_bytes,
        spec.level,
        t.elapsed().as_secs_f64()
    );
    Ok(report)
}

/// Steps 4-5: the ISO tree and ESP, written atomically to `output` and
/// made world-readable (it is meant to be shared: CI artifact, USB writer).
/// The initramfs, and the root filesystem image when it is on the media.
/// With `signed` (sign mode) the ESP is [`own_keys`]'.
fn write_iso(
    app: &Appliance,
    base: &Base,
    (bundle_dir, bundle, record): (&Path, &bundler::BundleReport, Option<&verified::Record>),
    (initrd, root_image): (&Path, Option<&Path>),
    epoch: i64,
    output: &Path,
    signed: Option<&own_keys::SignedBoot>,
) -> Result<iso::WriteReport> {
    let t = Instant::now();
    let title = format!("airlift {} {}", app.metadata.name, app.metadata.version);
    let cmdline = boot_config::kernel_cmdline(&app.output.volume_label, &base.kernel_args);
    let mut image = iso_image(app, base, bundle_dir, initrd, &title, &cmdline, epoch)?;
    if let Some(p) = root_image {
        let source = FileSource::Path(p.to_path_buf());
        image
            .tree
            .add_file(crate::rootimage::squashfs::ISO_PATH, source, 0o644)?;
    }
    expect_digests(&mut image.tree, &bundle.unverified, record)?;
    if let Some(signed) = signed {
        let work = parent_dir(initrd);
        let esp_files = signed.esp_files(app, base, initrd, &cmdline, work, epoch)?;
        image.uefi = Some(UefiBoot { esp_files });
    }
    tracing::debug!("iso: tree in {:.2}s", t.elapsed().as_secs_f64());
    let report = iso::write(&image, output)
        .with_context(|| format!("writing the ISO {}", output.display()))?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(output, std::fs::Permissions::from_mode(0o644))
        .with_context(|| format!("making {} readable", output.display()))?;
    Ok(report)
}

/// The folder `p` is in (`.` for a bare file name).
pub fn parent_dir(p: &Path) -> &Path {
    p.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// `airlift-firstboot` beside the running `airlift` (cargo puts both in
/// `target/<profile>/`; packages install both in one folder).
fn default_firstboot() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("finding the running airlift binary")?;
    Ok(exe.with_file_name("airlift-firstboot"))
}

/// A copy of `binary` without debug sections (debug builds of
/// airlift-firstboot are ~100 MB, ~12 MB stripped), made with binutils'
/// `strip` when it is installed; otherwise the binary as is.
fn strip_debug(binary: &Path, work: &Path) -> Result<PathBuf> {
    let out = work.join("airlift-firstboot");
    match std::process::Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(&out)
        .arg(binary)
        .status()
    {
        Ok(s) if s.success() => Ok(out),
        Ok(s) => bail!("strip --strip-debug {} failed ({s})", binary.display()),
        Err(_) => {
            tracing::warn!(
                "`strip` not found (binutils): adding {} with its debug info",
                binary.display()
            );
            Ok(binary.to_path_buf())
        }
    }
}

/// The kernel modules the initramfs gets: `base.modules` (exactly these)
/// or, when absent, the server set; `base.extraModules` added either way.
/// `None` when that is no module at all (`modules: []`).
fn modules_spec(base: &Base, app: &Appliance, release: &str) -> Result<Option<ModulesSpec>> {
    let selection = Selection::new(base.modules.as_deref(), &base.extra_modules);
    if selection.is_empty() {
        return Ok(None);
    }
    let dir = base.modules_dir.clone().with_context(|| {
        format!(
            "{}: base.modulesDir is not set, but kernel modules are to be added (base.modules, \
             base.extraModules, or the server set when base.modules is absent); set it to the \
             kernel's lib/modules/VERSION folder",
            app.origin.file.display()
        )
    })?;
    Ok(Some(ModulesSpec {
        dir,
        release: release.to_string(),
        names: selection.required,
        optional: selection.optional,
    }))
}

/// What goes into the initramfs, in layer order: the root filesystem
/// `root` (the path base's `rootfs`, or a base image's tree) first.
pub fn initramfs_spec(
    (base, root): (&Base, &initramfs::RootSource),
    app: &Appliance,
    firstboot: &Path,
    kernel_release: &str,
    file: &appliance_file::ApplianceFile,
    epoch: i64,
    level: i32,
) -> Result<initramfs::Spec> {
    let modules = modules_spec(base, app, kernel_release)?;
    let mut firstboot_node = Node::from_host(firstboot)?;
    firstboot_node.perm = 0o755;
    let mut files = vec![
        (FIRSTBOOT_PATH.to_string(), firstboot_node),
        (
            appliance_file::PATH.to_string(),
            Node::bytes(appliance_file::render(file)?, 0o600),
        ),
    ];
    for (path, local, perm) in appliance_file::secret_files(app) {
        let mut node = Node::from_host(&local).with_context(|| {
            format!("{}: reading {}", app.origin.file.display(), local.display())
        })?;
        node.perm = perm;
        files.push((path.to_string(), node));
    }
    Ok(initramfs::Spec {
        base: root.clone(),
        overlays: app.overlays.clone(),
        files,
        modules,
        epoch,
        level,
    })
}

/// Where the bundle (an OCI layout) sits in the ISO.
pub const BUNDLE_ISO_DIR: &str = "airlift/bundle";

/// Put the netboot first stages on the ISO: iPXE under `/ipxe/` (BIOS,
/// and UEFI clients that already run iPXE) and, for UEFI firmware's own
/// PXE (Secure Boot), shim and the network GRUB under `/netboot/` (shim
/// loads `grubx64.efi` from its own folder). A field left unset or naming
/// a missing file is an error naming the field.
fn add_netboot_files(
    tree: &mut iso::Tree,
    app: &Appliance,
    base: &Base,
    need: &dyn Fn(PathBuf, &str) -> Result<PathBuf>,
) -> Result<()> {
    let bl = &base.bootloader;
    let ipxe = bl.ipxe.as_ref();
    let files = [
        (
            "ipxe/undionly.kpxe",
            "base.bootloader.ipxe",
            ipxe.map(|d| d.join("undionly.kpxe")),
            "a folder with undionly.kpxe and ipxe.efi",
        ),
        (
            "ipxe/ipxe.efi",
            "base.bootloader.ipxe",
            ipxe.map(|d| d.join("ipxe.efi")),
            "a folder with undionly.kpxe and ipxe.efi",
        ),
        (
            "netboot/shimx64.efi",
            "base.bootloader.shim",
            bl.shim.clone(),
            "the Microsoft-signed shim, shimx64.efi",
        ),
        (
            "netboot/grubx64.efi",
            "base.bootloader.grubNet",
            bl.grub_net.clone(),
            "the signed network GRUB, grubnetx64.efi",
        ),
    ];
    for (iso_path, field, src, what) in files {
        let src = src.with_context(|| {
            format!(
                "{}: netboot.enabled needs {field} ({what}; the base has it: run `just base`)",
                app.origin.file.display()
            )
        })?;
        tree.add_file(iso_path, FileSource::Path(need(src, field)?), 0o644)?;
    }
    Ok(())
}

/// The ISO tree and boot settings.
pub fn iso_image(
    app: &Appliance,
    base: &Base,
    bundle_dir: &Path,
    initrd: &Path,
    title: &str,
    cmdline: &str,
    epoch: i64,
) -> Result<IsoImage> {
    let isolinux = &base.bootloader.isolinux;
    let need = |p: PathBuf, field: &str| -> Result<PathBuf> {
        if p.is_file() {
            Ok(p)
        } else {
            bail!(
                "{}: {} does not exist (set by {field}; run `just base`?)",
                app.origin.file.display(),
                p.display()
            )
        }
    };
    let isolinux_bin = need(isolinux.join("isolinux.bin"), "base.bootloader.isolinux")?;
    let ldlinux = need(isolinux.join("ldlinux.c32"), "base.bootloader.isolinux")?;
    let mbr = need(isolinux.join("isohdpfx.bin"), "base.bootloader.isolinux")?;
    let kernel = need(base.kernel.clone(), "base.kernel")?;
    let esp_files = match app.secure_boot.mode {
        config::SecureBootMode::Shim => {
            uefi_chain::esp_files(app, base, &app.output.volume_label, cmdline)?
        }
        // write_iso puts own_keys' signed loader and UKI here.
        config::SecureBootMode::Sign => Vec::new(),
    };

    let mut tree = iso::Tree::new();
    let file = |p: &Path| FileSource::Path(p.to_path_buf());
    tree.add_file("boot/vmlinuz", file(&kernel), 0o644)?;
    tree.add_file("boot/initrd.img", file(initrd), 0o644)?;
    tree.add_file("isolinux/isolinux.bin", file(&isolinux_bin), 0o644)?;
    tree.add_file("isolinux/ldlinux.c32", file(&ldlinux), 0o644)?;
    tree.add_file(
        "isolinux/isolinux.cfg",
        FileSource::Bytes(boot_config::isolinux_cfg(title, cmdline).into_bytes()),
        0o644,
    )?;
    for (path, cfg) in uefi_chain::grub_cfgs(&app.output.volume_label, cmdline) {
        tree.add_file(&path, cfg, 0o644)?;
    }
    tree.add_tree_from_dir(BUNDLE_ISO_DIR, bundle_dir)
        .context("adding the bundle to the ISO")?;
    tree.set_modes(BUNDLE_ISO_DIR, 0o644, 0o755)?;
    let manifest = bundle_dir.join(airlift_appliance::bundle_manifest::BUNDLE_MANIFEST_FILE);
    if manifest.is_file() {
        tree.add_file("airlift/bundle.json", file(&manifest), 0o644)?;
    }
    if app.netboot.enabled {
        add_netboot_files(&mut tree, app, base, &need)?;
    }
    for (iso_path, host) in &app.output.extra_files {
        let p = need(host.clone(), &format!("output.extraFiles[{iso_path}]"))?;
        tree.add_file(iso_path.trim_start_matches('/'), file(&p), 0o644)?;
    }
    Ok(IsoImage {
        volume_id: app.output.volume_label.clone(),
        epoch,
        tree,
        bios: Some(BiosBoot {
            boot_file: "isolinux/isolinux.bin".to_string(),
            mbr_code: mbr,
        }),
        uefi: Some(UefiBoot { esp_files }),
        sha256sums: true,
    })
}

#[cfg(test)]
mod tests;
