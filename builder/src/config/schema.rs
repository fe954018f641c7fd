//! The image config's shape: one YAML document describing a whole
//! appliance. Field names are camelCase (Kubernetes style, matching
//! `apiVersion`); every struct rejects unknown fields.
//!
//! ```yaml
//! apiVersion: airlift/v1alpha1
//! kind: Appliance
//! metadata: { name: demo, version: 1.0.0 }
//! images:
//!   - ref: quay.io/example/hello:1.0
//!     from: { ociLayout: { path: images/hello, ref: "1.0" } }
//!   - ref: nginx:1.25            # docker.io/library/nginx:1.25
//!     from: { registry: { platforms: [linux/amd64] } }
//! base: { kernel: base/vmlinuz, rootfs: base/rootfs, ... }
//! ```
//!
//! `netboot`, `runtimes`, `storage` and the TLS mode are the appliance
//! contract's own types (`airlift_appliance`), re-exported here.
//!
//! Parsing only checks the shape; `normalize` resolves paths and
//! references, and `validate` checks what the fields point at.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// The sections `appliance.json` carries over as they are: one type each
/// for the config and the appliance (`airlift-appliance`), so the YAML
/// the builder accepts is the JSON host0 reads.
pub use airlift_appliance::{
    DataDisk, DhcpMode, Filesystem, Netboot, Node, NodeProfile, Role, Runtime, Storage, TlsMode,
};

/// The only `apiVersion` this airlift reads.
pub const API_VERSION: &str = "airlift/v1alpha1";
/// The only `kind` this airlift reads.
pub const KIND: &str = "Appliance";

/// The whole image config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Config {
    /// Always `airlift/v1alpha1`.
    pub api_version: String,
    /// Always `Appliance`.
    pub kind: String,
    pub metadata: Metadata,
    /// The container images cluster nodes will pull.
    #[serde(default)]
    pub images: Vec<ImageSpec>,
    /// Kernel, root filesystem, boot loaders and modules: host paths, or
    /// a container image (`base.image`). Optional for `airlift bundle`,
    /// required for `airlift build`.
    #[serde(default)]
    pub base: Option<BaseConfig>,
    /// Folders laid over the root filesystem, in order.
    #[serde(default)]
    pub overlays: Vec<PathBuf>,
    #[serde(default)]
    pub registry: Registry,
    #[serde(default)]
    pub netboot: Netboot,
    /// Which container runtimes get mirror config on host0 and on nodes.
    #[serde(default = "default_runtimes")]
    pub runtimes: Vec<Runtime>,
    #[serde(default)]
    pub storage: Storage,
    /// High availability of the registry: an optional virtual IP.
    #[serde(default)]
    pub ha: Ha,
    #[serde(default)]
    pub output: Output,
    /// How the UEFI boot path is signed for Secure Boot.
    #[serde(default)]
    pub secure_boot: SecureBoot,
    /// Keys bundled images must be signed by, checked at build and
    /// enforced on host0 and nodes.
    #[serde(default)]
    pub verify: Option<Verify>,
    /// What that refers to each image (signatures, SBOMs, attestations)
    /// is carried into the bundle.
    #[serde(default)]
    pub attachments: Attachments,
}

/// `verify:`: the trusted keys.
///
/// ```yaml
/// verify:
///   keys:
///     - name: example                 # default: the key file's name without .pub
///       publicKey: keys/example.pub   # cosign/sigstore PEM: ECDSA P-256 or Ed25519
///       scopes: [quay.io/example, registry.airlift.test/signed]
///   enforce: true                     # write the policy on host0 and nodes (default)
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Verify {
    pub keys: Vec<VerifyKey>,
    #[serde(default = "default_true")]
    pub enforce: bool,
}

/// One trusted key and the references it governs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VerifyKey {
    #[serde(default)]
    pub name: Option<String>,
    /// A PEM public key file (relative paths: to the config file).
    pub public_key: PathBuf,
    /// Registries or registry/repository prefixes (`quay.io/example`).
    pub scopes: Vec<String>,
}

/// `attachments:`: what is carried beside each image.
///
/// ```yaml
/// attachments:
///   carry: true            # false: carry nothing (then `verify:` is refused)
///   artifactTypes: []      # non-empty: only attachments of these artifact types
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Attachments {
    #[serde(default = "default_true")]
    pub carry: bool,
    /// Artifact types to keep (see `airlift_appliance::Attachment::artifact_type`:
    /// `application/spdx+json`, `application/vnd.dev.cosign.simplesigning.v1+json`,
    /// `application/vnd.dsse.envelope.v1+json`, …); empty keeps all. List
    /// `application/vnd.dev.cosign.simplesigning.v1+json` to keep cosign
    /// signatures (`.sig`). Each is a media type, `type/subtype`.
    #[serde(default)]
    pub artifact_types: Vec<String>,
}

impl Default for Attachments {
    fn default() -> Self {
        Attachments {
            carry: true,
            artifact_types: Vec::new(),
        }
    }
}

fn default_true() -> bool {
    true
}

/// Identity of the appliance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Metadata {
    /// A DNS-label-like name: lowercase letters, digits and `-`.
    pub name: String,
    /// Free-form version string shown on the status page.
    pub version: String,
}

/// One image: the reference nodes pull, and where its bytes come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ImageSpec {
    /// Full upstream reference (`quay.io/org/app:1.2`, `nginx:1.25`,
    /// optionally `@sha256:…`). Short Docker Hub names are normalised to
    /// `docker.io/library/…`.
    #[serde(rename = "ref")]
    pub reference: String,
    /// Where the bytes come from; default: pulled from the reference's
    /// registry. Written as a one-key mapping (`from: { ociLayout: … }`).
    #[serde(
        default,
        with = "serde_yaml::with::singleton_map",
        skip_serializing_if = "Option::is_none"
    )]
    pub from: Option<ImageSource>,
    /// For multi-arch images: which platforms to keep (`linux/amd64`,
    /// `linux/arm64/v8`). Empty keeps every platform.
    #[serde(default)]
    pub platforms: Vec<String>,
}

/// Where an image's bytes come from. Exactly one key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub enum ImageSource {
    /// Pulled over the Docker registry v2 API.
    Registry(RegistrySource),
    /// An OCI image layout directory.
    OciLayout(LayoutSource),
    /// An `oci-archive` tar file (a tarred OCI image layout).
    OciArchive(LayoutSource),
    /// A `docker save` tar file.
    DockerArchive(DockerArchiveSource),
}

/// Pull settings.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RegistrySource {
    /// Pull from this base URL instead of the reference's registry
    /// (`https://mirror.example:5000`, `http://127.0.0.1:5000`).
    #[serde(default)]
    pub mirror: Option<String>,
    /// A containers-auth.json / docker config.json style credentials file.
    #[serde(default)]
    pub credentials: Option<PathBuf>,
    /// Accept plain HTTP and unverified TLS for this source.
    #[serde(default)]
    pub insecure: bool,
}

/// An OCI layout (directory or archive) and which image in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LayoutSource {
    pub path: PathBuf,
    /// The `org.opencontainers.image.ref.name` annotation to pick, or a
    /// digest (`sha256:…`). May be omitted when the index has one entry.
    #[serde(default, rename = "ref")]
    pub reference: Option<String>,
}

/// A `docker save` archive and which image in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DockerArchiveSource {
    pub path: PathBuf,
    /// The `RepoTags` entry to pick; may be omitted when there is one image.
    #[serde(default, rename = "ref")]
    pub reference: Option<String>,
}

/// `base:` as written: either host paths (`kernel`, `rootfs`,
/// `bootloader`, …), or a container image (`image:`) whose kernel,
/// modules, boot loaders and root filesystem airlift takes; then
/// `kernel`, `modulesDir`, `busybox` and `bootloader.*` are optional and
/// name absolute paths inside the image.
///
/// ```yaml
/// base:
///   image:
///     ref: registry.example/base/demo:bookworm
///     from: { ociArchive: { path: demo-base.oci.tar } }   # optional
///   rootOn: media
/// ```
///
/// Normalised into [`crate::config::BaseSpec`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BaseConfig {
    /// The base as a container image (linux/amd64), pulled like an entry
    /// of `images:`; `verify:` scopes apply to it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<ImageSpec>,
    /// Host path of the kernel; with `image`: the kernel's path in the image.
    #[serde(default)]
    pub kernel: Option<PathBuf>,
    /// Host path of the root filesystem (folder or tar). Not with `image`.
    #[serde(default)]
    pub rootfs: Option<PathBuf>,
    #[serde(default)]
    pub modules_dir: Option<PathBuf>,
    #[serde(default)]
    pub modules: Option<Vec<String>>,
    #[serde(default)]
    pub extra_modules: Vec<String>,
    #[serde(default)]
    pub bootloader: Option<BootloaderConfig>,
    #[serde(default)]
    pub kernel_args: Vec<String>,
    #[serde(default)]
    pub root_on: RootOn,
    #[serde(default)]
    pub busybox: Option<PathBuf>,
}

/// `base.bootloader` as written: host paths, or (with `base.image`)
/// paths inside the image. See [`Bootloader`] for each field.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BootloaderConfig {
    #[serde(default)]
    pub isolinux: Option<PathBuf>,
    #[serde(default)]
    pub efi: Option<PathBuf>,
    #[serde(default)]
    pub ipxe: Option<PathBuf>,
    #[serde(default)]
    pub shim: Option<PathBuf>,
    #[serde(default)]
    pub grub: Option<PathBuf>,
    #[serde(default)]
    pub grub_net: Option<PathBuf>,
    #[serde(default)]
    pub stub: Option<PathBuf>,
}

/// What the appliance boots, resolved to host paths: `base:` with
/// host paths as written, or what airlift took from `base.image`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Base {
    /// The Linux kernel image (bzImage with EFI stub).
    pub kernel: PathBuf,
    /// The root filesystem: a folder or a tar file (optionally compressed).
    pub rootfs: PathBuf,
    /// Kernel modules folder (`…/lib/modules/VERSION`) to take modules from.
    #[serde(default)]
    pub modules_dir: Option<PathBuf>,
    /// Exactly these modules (with their dependency closure) instead of
    /// the server set (`initramfs::server_set`); absent: the server set.
    #[serde(default)]
    pub modules: Option<Vec<String>>,
    /// Modules added to whichever set is in force (`modules`, or the
    /// server set when `modules` is absent).
    #[serde(default)]
    pub extra_modules: Vec<String>,
    /// Boot-loader assets.
    pub bootloader: Bootloader,
    /// Extra kernel command line arguments.
    #[serde(default)]
    pub kernel_args: Vec<String>,
    /// Where the root filesystem lives at boot: `media` (a squashfs image
    /// on the media, mounted by a busybox stage 1) or `initramfs` (the
    /// whole root unpacked into RAM from the initramfs).
    #[serde(default)]
    pub root_on: RootOn,
    /// A static busybox: stage 1's shell and tools (needed for `rootOn: media`).
    #[serde(default)]
    pub busybox: Option<PathBuf>,
}

/// Where the root filesystem is read from at boot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum RootOn {
    /// A squashfs image on the media (netbooted nodes fetch it from host0).
    #[default]
    Media,
    /// The initramfs holds the whole root filesystem.
    Initramfs,
}

/// Boot-loader assets taken from the base.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Bootloader {
    /// Folder holding `isolinux.bin`, `ldlinux.c32` and `isohdpfx.bin`.
    pub isolinux: PathBuf,
    /// The UEFI boot loader binary (systemd-boot's `systemd-bootx64.efi`).
    pub efi: PathBuf,
    /// Folder holding iPXE binaries (`undionly.kpxe`, `ipxe.efi`), when netboot is on.
    #[serde(default)]
    pub ipxe: Option<PathBuf>,
    /// shim signed by Microsoft's UEFI CA (Debian: `shim-signed`,
    /// `shimx64.efi.signed`): the first stage of the Secure Boot chain.
    #[serde(default)]
    pub shim: Option<PathBuf>,
    /// GRUB signed by the distribution, which shim trusts (Debian:
    /// `grub-efi-amd64-signed`, `grubx64.efi.signed`).
    #[serde(default)]
    pub grub: Option<PathBuf>,
    /// The network GRUB for UEFI netboot through shim (Debian:
    /// `grubnetx64.efi.signed`).
    #[serde(default)]
    pub grub_net: Option<PathBuf>,
    /// systemd's EFI stub (`linuxx64.efi.stub`), for a unified kernel image.
    #[serde(default)]
    pub stub: Option<PathBuf>,
}

/// The registry host0 (and replicas) serve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Registry {
    #[serde(default = "default_port")]
    pub port: u16,
    #[serde(default)]
    pub tls: Tls,
    #[serde(default)]
    pub push: Push,
    /// Allow DELETE of manifests, tags and blobs.
    #[serde(default)]
    pub allow_delete: bool,
    /// Upstream registries nodes mirror to this registry. Empty: every
    /// registry host named by an image in the bundle.
    #[serde(default)]
    pub mirrors: Vec<String>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry {
            port: default_port(),
            tls: Tls::default(),
            push: Push::default(),
            allow_delete: false,
            mirrors: Vec::new(),
        }
    }
}

/// TLS for the registry.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Tls {
    /// `generate` (a CA and server certificate made on first boot),
    /// `provided` (cert and key below), or `off` (plain HTTP).
    #[serde(default)]
    pub mode: TlsMode,
    #[serde(default)]
    pub cert: Option<PathBuf>,
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// Extra subject alternative names for the generated certificate.
    #[serde(default)]
    pub extra_names: Vec<String>,
}

/// Who may push.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Push {
    #[serde(default)]
    pub enabled: bool,
    /// A bcrypt htpasswd file.
    #[serde(default)]
    pub htpasswd: Option<PathBuf>,
    /// A file holding a bearer token accepted for push.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
}

fn default_runtimes() -> Vec<Runtime> {
    Runtime::DEFAULT.to_vec()
}

fn default_port() -> u16 {
    5000
}

/// High availability of the registry served by host0 and its replicas.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Ha {
    /// A virtual IP that keepalived (VRRP) keeps on one healthy registry
    /// machine, for clients that take a single address.
    #[serde(default)]
    pub virtual_ip: Option<VirtualIpSpec>,
}

/// The virtual IP as written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct VirtualIpSpec {
    /// `ADDRESS/PREFIX`, IPv4 or IPv6 (`10.77.0.50/24`).
    pub address: String,
    /// The interface to hold it on; default: the one with an address in
    /// the same subnet, found at run time.
    #[serde(default)]
    pub interface: Option<String>,
    /// VRRP's virtual router id, 1 to 255, unique on the link.
    #[serde(default = "default_virtual_router_id")]
    pub virtual_router_id: u32,
}

/// The default VRRP virtual router id.
pub const DEFAULT_VIRTUAL_ROUTER_ID: u32 = 51;

fn default_virtual_router_id() -> u32 {
    DEFAULT_VIRTUAL_ROUTER_ID
}

/// Output options.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Output {
    /// ISO 9660 volume label: first boot finds its media by it. Up to 32
    /// characters of `A-Z`, `0-9` and `_`.
    #[serde(default = "default_label")]
    pub volume_label: String,
    /// Extra files for the ISO root: ISO path -> local path.
    #[serde(default)]
    pub extra_files: BTreeMap<String, PathBuf>,
}

impl Default for Output {
    fn default() -> Self {
        Output {
            volume_label: default_label(),
            extra_files: BTreeMap::new(),
        }
    }
}

fn default_label() -> String {
    "AIRLIFT".to_string()
}

/// How the UEFI boot path is signed (`secureBoot:`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SecureBoot {
    /// `shim` (default): the chain servers already trust (shim signed by
    /// Microsoft, GRUB and the kernel signed by Debian). `sign`: the
    /// builder signs systemd-boot and a unified kernel image with `key`.
    #[serde(default)]
    pub mode: SecureBootMode,
    /// `sign` mode: the PEM private key (unencrypted) to sign with.
    #[serde(default)]
    pub key: Option<PathBuf>,
    /// `sign` mode: the PEM X.509 certificate of that key, the one the
    /// machines enroll in their Secure Boot database (`db`).
    #[serde(default)]
    pub certificate: Option<PathBuf>,
}

/// The Secure Boot mode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum SecureBootMode {
    /// shim -> GRUB -> kernel, signed by Microsoft and Debian.
    #[default]
    Shim,
    /// systemd-boot -> unified kernel image, signed with the site's key.
    Sign,
}
