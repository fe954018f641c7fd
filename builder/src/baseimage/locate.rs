//! Where the kernel, its modules, the boot loaders and busybox are in a
//! flattened base image ([`Tree`]): the `base.*` overrides when given,
//! else where distributions put them (bootc's
//! `/usr/lib/modules/<v>/vmlinuz`, Debian's package paths). Pure: reads
//! only the tree (and the first bytes of the files it names).
//!
//! [`strip_kernel`] then takes the kernel and its modules folder out of
//! the root tree: the root gets the selected module closure, as with the
//! path base.

use std::collections::BTreeSet;
use std::io::Read;

use anyhow::{bail, Context, Result};

use crate::config::{ImageBase, RootOn, SecureBootMode};
use crate::initramfs::{Data, Kind, Node, Tree};

/// What the build needs from the image (the path base's requirements).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Needs {
    /// `secureBoot.mode: shim` (shim and GRUB).
    pub shim_chain: bool,
    /// `secureBoot.mode: sign` (systemd's EFI stub).
    pub stub: bool,
    /// `netboot.enabled` (iPXE and the network GRUB).
    pub netboot: bool,
    /// `rootOn: media` (a static busybox for stage 1).
    pub busybox: bool,
    /// A set of modules is in force (the modules folder).
    pub modules: bool,
}

impl Needs {
    /// What a config with this base needs.
    pub fn of(base: &ImageBase, mode: SecureBootMode, netboot: bool) -> Needs {
        let modules = match &base.modules {
            Some(m) => !m.is_empty() || !base.extra_modules.is_empty(),
            None => true,
        };
        Needs {
            shim_chain: mode == SecureBootMode::Shim,
            stub: mode == SecureBootMode::Sign,
            netboot,
            busybox: base.root_on == RootOn::Media,
            modules,
        }
    }
}

/// One file found in the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// Its path in the image, after links (`/usr/lib/…`).
    pub path: String,
    pub data: Data,
    pub perm: u32,
}

/// Everything [`locate`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The kernel release (`6.1.0-18-amd64`), read from the bzImage.
    pub release: String,
    pub kernel: Found,
    /// The modules folder's path in the tree (no leading `/`), when present.
    pub modules_dir: Option<String>,
    /// isolinux.bin, isohdpfx.bin, ldlinux.c32.
    pub isolinux: [Found; 3],
    pub efi: Found,
    pub stub: Option<Found>,
    pub shim: Option<Found>,
    /// MokManager beside shim, when present.
    pub mok_manager: Option<Found>,
    pub grub: Option<Found>,
    pub grub_net: Option<Found>,
    /// undionly.kpxe, ipxe.efi.
    pub ipxe: Option<[Found; 2]>,
    pub busybox: Option<Found>,
}

/// The isolinux files, with their default paths and packages.
const ISOLINUX: [(&str, &str, &str); 3] = [
    ("isolinux.bin", "/usr/lib/ISOLINUX/isolinux.bin", "isolinux"),
    ("isohdpfx.bin", "/usr/lib/ISOLINUX/isohdpfx.bin", "isolinux"),
    (
        "ldlinux.c32",
        "/usr/lib/syslinux/modules/bios/ldlinux.c32",
        "syslinux-common",
    ),
];
const EFI: &str = "/usr/lib/systemd/boot/efi/systemd-bootx64.efi";
const STUB: &str = "/usr/lib/systemd/boot/efi/linuxx64.efi.stub";
const SHIM: &str = "/usr/lib/shim/shimx64.efi.signed";
const MOK_MANAGER: &str = "mmx64.efi.signed";
const GRUB: &str = "/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed";
const GRUB_NET: &str = "/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed";
const IPXE: &str = "/usr/lib/ipxe";
const IPXE_FILES: [&str; 2] = ["undionly.kpxe", "ipxe.efi"];
const BUSYBOX: [&str; 2] = ["/usr/bin/busybox", "/bin/busybox"];
/// Where kernel versions are listed (merged-usr `/lib` resolves to the first).
const MODULE_ROOTS: [&str; 2] = ["usr/lib/modules", "lib/modules"];

/// Finds what the build needs in `tree`, the image `image` (`ref@digest`,
/// for messages) flattened. Errors name the image, what is missing, every
/// path looked at, the Debian package and the `base.*` field that
/// overrides it.
pub fn locate(tree: &Tree, base: &ImageBase, needs: Needs, image: &str) -> Result<Located> {
    let l = Looker { tree, image };
    let (release, kernel) = l.kernel(base)?;
    let modules_dir = l.modules_dir(base, &release, needs.modules)?;
    let bl = &base.bootloader;
    let isolinux = match &bl.isolinux {
        Some(dir) => {
            let dir = dir.to_string_lossy();
            let one = |name: &str, package: &str| {
                l.required(
                    &[format!("{}/{name}", dir.trim_end_matches('/'))],
                    name,
                    package,
                    "base.bootloader.isolinux",
                )
            };
            [
                one(ISOLINUX[0].0, ISOLINUX[0].2)?,
                one(ISOLINUX[1].0, ISOLINUX[1].2)?,
                one(ISOLINUX[2].0, ISOLINUX[2].2)?,
            ]
        }
        None => {
            let one = |(name, path, package): (&str, &str, &str)| {
                l.required(
                    &[path.to_string()],
                    name,
                    package,
                    "base.bootloader.isolinux",
                )
            };
            [one(ISOLINUX[0])?, one(ISOLINUX[1])?, one(ISOLINUX[2])?]
        }
    };
    let paths = |over: &Option<std::path::PathBuf>, default: &str| -> Vec<String> {
        match over {
            Some(p) => vec![p.to_string_lossy().into_owned()],
            None => vec![default.to_string()],
        }
    };
    let efi = l.required(
        &paths(&bl.efi, EFI),
        "the UEFI boot loader systemd-bootx64.efi",
        "systemd-boot-efi",
        "base.bootloader.efi",
    )?;
    let pick =
        |need: bool, over: &Option<std::path::PathBuf>, default: &str, what, package, field| {
            let tried = paths(over, default);
            if need {
                l.required(&tried, what, package, field).map(Some)
            } else {
                Ok(l.first(&tried))
            }
        };
    let stub = pick(
        needs.stub,
        &bl.stub,
        STUB,
        "systemd's EFI stub linuxx64.efi.stub (secureBoot.mode: sign)",
        "systemd-boot-efi",
        "base.bootloader.stub",
    )?;
    let shim = pick(
        needs.shim_chain || needs.netboot,
        &bl.shim,
        SHIM,
        "shim signed by Microsoft's UEFI CA (secureBoot.mode: shim)",
        "shim-signed",
        "base.bootloader.shim",
    )?;
    let mok_manager = shim.as_ref().and_then(|s| {
        let dir = s.path.rsplit_once('/').map_or("", |(d, _)| d);
        l.first(&[format!("{dir}/{MOK_MANAGER}")])
    });
    let grub = pick(
        needs.shim_chain,
        &bl.grub,
        GRUB,
        "GRUB signed for shim (secureBoot.mode: shim)",
        "grub-efi-amd64-signed",
        "base.bootloader.grub",
    )?;
    let grub_net = pick(
        needs.netboot,
        &bl.grub_net,
        GRUB_NET,
        "the network GRUB signed for shim (netboot.enabled)",
        "grub-efi-amd64-signed",
        "base.bootloader.grubNet",
    )?;
    let ipxe_dir = paths(&bl.ipxe, IPXE).remove(0);
    let ipxe_file = |name: &str| format!("{}/{name}", ipxe_dir.trim_end_matches('/'));
    let ipxe = if needs.netboot {
        let one = |name: &str| {
            l.required(
                &[ipxe_file(name)],
                &format!("iPXE's {name} (netboot.enabled)"),
                "ipxe",
                "base.bootloader.ipxe",
            )
        };
        Some([one(IPXE_FILES[0])?, one(IPXE_FILES[1])?])
    } else {
        match (
            l.first(&[ipxe_file(IPXE_FILES[0])]),
            l.first(&[ipxe_file(IPXE_FILES[1])]),
        ) {
            (Some(a), Some(b)) => Some([a, b]),
            _ => None,
        }
    };
    let busybox_paths = match &base.busybox {
        Some(p) => vec![p.to_string_lossy().into_owned()],
        None => BUSYBOX.iter().map(|s| s.to_string()).collect(),
    };
    let busybox = if needs.busybox {
        let found = l.required(
            &busybox_paths,
            "busybox (rootOn: media: stage 1's shell)",
            "busybox-static",
            "base.busybox",
        )?;
        let head = read_head(&found.data, 64 * 1024)?;
        match elf_is_static(&head) {
            Ok(true) => {}
            Ok(false) => bail!(
                "base image {image}: {} is a dynamically linked busybox (it has an ELF \
                 interpreter), but stage 1 runs before any library is there: install \
                 busybox-static in the image (it replaces busybox), or set base.busybox to a \
                 static busybox in the image",
                found.path
            ),
            Err(e) => bail!(
                "base image {image}: {} is not a usable busybox ({e}): install busybox-static \
                 in the image, or set base.busybox to a static busybox in the image",
                found.path
            ),
        }
        Some(found)
    } else {
        l.first(&busybox_paths)
    };
    Ok(Located {
        release,
        kernel,
        modules_dir,
        isolinux,
        efi,
        stub,
        shim,
        mok_manager,
        grub,
        grub_net,
        ipxe,
        busybox,
    })
}

/// Looks things up in one tree, for one image's messages.
struct Looker<'a> {
    tree: &'a Tree,
    image: &'a str,
}

impl Looker<'_> {
    /// The first of `paths` that is a regular file (after links).
    fn first(&self, paths: &[String]) -> Option<Found> {
        paths.iter().find_map(|p| file_at(self.tree, p))
    }

    /// [`Self::first`], or an error naming what, where, the package and field.
    fn required(&self, paths: &[String], what: &str, package: &str, field: &str) -> Result<Found> {
        match self.first(paths) {
            Some(f) => Ok(f),
            None => bail!(
                "base image {}: no {what}: looked at {}; install the Debian package {package} \
                 in the image, or set {field} to its path in the image",
                self.image,
                paths.join(", ")
            ),
        }
    }

    /// The kernel: `base.kernel`, else the one kernel version the image
    /// has (`/usr/lib/modules/<v>/vmlinuz`, else `/boot/vmlinuz-<v>`).
    fn kernel(&self, base: &ImageBase) -> Result<(String, Found)> {
        let image = self.image;
        if let Some(p) = &base.kernel {
            let p = p.to_string_lossy();
            let found = self.required(
                &[p.to_string()],
                "kernel",
                "linux-image-amd64",
                "base.kernel",
            )?;
            let release = release_of(&found, image)?;
            return Ok((release, found));
        }
        let mut kernels = Vec::new();
        for v in kernel_versions(self.tree) {
            let tried = [
                format!("/usr/lib/modules/{v}/vmlinuz"),
                format!("/boot/vmlinuz-{v}"),
            ];
            if let Some(f) = self.first(&tried) {
                kernels.push((v, f));
            }
        }
        match kernels.len() {
            0 => bail!(
                "base image {image}: no kernel: looked at /usr/lib/modules/<version>/vmlinuz and \
                 /boot/vmlinuz-<version> (versions from /usr/lib/modules/*, /lib/modules/* and \
                 /boot/vmlinuz-*); install the Debian package linux-image-amd64 in the image, \
                 or set base.kernel to its path in the image"
            ),
            1 => {
                let (v, found) = kernels.remove(0);
                let release = release_of(&found, image)?;
                if release != v {
                    bail!(
                        "base image {image}: the kernel {} says it is release {release}, but it \
                         is installed as {v}; its modules would not load: rebuild the image, or \
                         set base.kernel and base.modulesDir",
                        found.path
                    );
                }
                Ok((release, found))
            }
            _ => bail!(
                "base image {image}: more than one kernel: {}; keep one in the image, or set \
                 base.kernel to the one to boot (its path in the image)",
                kernels
                    .iter()
                    .map(|(v, f)| format!("{v} ({})", f.path))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// The modules folder of `release`: `base.modulesDir`, else
    /// `/usr/lib/modules/<release>` (or `/lib/modules/<release>`).
    fn modules_dir(&self, base: &ImageBase, release: &str, need: bool) -> Result<Option<String>> {
        let tried: Vec<String> = match &base.modules_dir {
            Some(p) => vec![p.to_string_lossy().into_owned()],
            None => MODULE_ROOTS
                .iter()
                .map(|r| format!("/{r}/{release}"))
                .collect(),
        };
        let found = tried.iter().find_map(|p| dir_at(self.tree, p));
        if found.is_none() && need {
            bail!(
                "base image {}: no modules folder for kernel {release}: looked at {}; install \
                 the kernel's package (linux-image-{release}) in the image, or set \
                 base.modulesDir to its path in the image (or base.modules: [] for none)",
                self.image,
                tried.join(", ")
            );
        }
        Ok(found)
    }
}

/// The kernel versions the image names: folders under the module roots
/// and `/boot/vmlinuz-<v>` files, sorted.
pub fn kernel_versions(tree: &Tree) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for root in MODULE_ROOTS {
        if let Some(dir) = dir_at(tree, root) {
            out.extend(
                children(tree, &dir)
                    .filter(|(_, n)| n.kind == Kind::Dir)
                    .map(|(name, _)| name.to_string()),
            );
        }
    }
    if let Some(boot) = dir_at(tree, "boot") {
        out.extend(children(tree, &boot).filter_map(|(name, _)| {
            name.strip_prefix("vmlinuz-")
                .filter(|v| !v.is_empty())
                .map(String::from)
        }));
    }
    out
}

/// The direct children of the directory `dir` (a tree path), with names.
fn children<'a>(tree: &'a Tree, dir: &str) -> impl Iterator<Item = (&'a str, &'a Node)> {
    let prefix = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    tree.iter().filter_map(move |(p, n)| {
        let rest = p.strip_prefix(prefix.as_str())?;
        (!rest.is_empty() && !rest.contains('/')).then_some((rest, n))
    })
}

/// `path` (absolute or not) with every link followed: the tree path of
/// what it names, and the node, if any.
fn resolve<'a>(tree: &'a Tree, path: &str) -> Option<(String, &'a Node)> {
    let mut path = path.trim_matches('/').to_string();
    for _ in 0..40 {
        let at = tree.resolve_parent(&path).ok()?;
        let node = tree.get(&at)?;
        match &node.kind {
            Kind::Symlink(target) => {
                path = if target.starts_with('/') {
                    target.clone()
                } else {
                    match at.rsplit_once('/') {
                        Some((dir, _)) => format!("{dir}/{target}"),
                        None => target.clone(),
                    }
                };
            }
            _ => return Some((at, node)),
        }
    }
    None
}

/// The regular file at `path`, links followed.
pub fn file_at(tree: &Tree, path: &str) -> Option<Found> {
    let (at, node) = resolve(tree, path)?;
    match &node.kind {
        Kind::File { data, .. } => Some(Found {
            path: format!("/{at}"),
            data: data.clone(),
            perm: node.perm,
        }),
        _ => None,
    }
}

/// The tree path of the directory at `path`, links followed.
pub fn dir_at(tree: &Tree, path: &str) -> Option<String> {
    match resolve(tree, path)? {
        (
            at,
            Node {
                kind: Kind::Dir, ..
            },
        ) => Some(at),
        _ => None,
    }
}

/// The kernel release in `found`'s bzImage header.
fn release_of(found: &Found, image: &str) -> Result<String> {
    let head = read_head(&found.data, 64 * 1024)?;
    crate::initramfs::kernel::bzimage_release(&head).with_context(|| {
        format!(
            "base image {image}: {} is not a kernel image; set base.kernel to the kernel's path \
             in the image",
            found.path
        )
    })
}

/// The first `n` bytes (or fewer) of a file's data.
pub fn read_head(data: &Data, n: usize) -> Result<Vec<u8>> {
    match data {
        Data::Bytes(b) => Ok(b[..b.len().min(n)].to_vec()),
        Data::Path(p) => {
            let mut out = Vec::with_capacity(n);
            std::fs::File::open(p)
                .with_context(|| format!("reading {}", p.display()))?
                .take(n as u64)
                .read_to_end(&mut out)
                .with_context(|| format!("reading {}", p.display()))?;
            Ok(out)
        }
    }
}

/// Whether the ELF executable `head` begins is statically linked: no
/// `PT_INTERP` program header. `head` must hold the program headers
/// (they follow the ELF header in every real binary).
pub fn elf_is_static(head: &[u8]) -> Result<bool> {
    const PT_INTERP: u32 = 3;
    if head.len() < 0x40 || &head[..4] != b"\x7fELF" {
        bail!("not an ELF executable");
    }
    let le = match head[5] {
        1 => true,
        2 => false,
        _ => bail!("unknown ELF byte order"),
    };
    // Offsets come from the file: every sum is checked.
    let span = |o: usize, n: usize| o.checked_add(n).and_then(|end| head.get(o..end));
    let u16_at = |o: usize| -> Result<u64> {
        let b: [u8; 2] = span(o, 2).context("truncated ELF")?.try_into()?;
        Ok(u64::from(if le {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        }))
    };
    let u32_at = |o: usize| -> Result<u64> {
        let b: [u8; 4] = span(o, 4).context("truncated ELF")?.try_into()?;
        Ok(u64::from(if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }))
    };
    let u64_at = |o: usize| -> Result<u64> {
        let b: [u8; 8] = span(o, 8).context("truncated ELF")?.try_into()?;
        Ok(if le {
            u64::from_le_bytes(b)
        } else {
            u64::from_be_bytes(b)
        })
    };
    let (phoff, phentsize, phnum) = match head[4] {
        1 => (u32_at(0x1C)?, u16_at(0x2A)?, u16_at(0x2C)?),
        2 => (u64_at(0x20)?, u16_at(0x36)?, u16_at(0x38)?),
        _ => bail!("unknown ELF class"),
    };
    if phentsize < 4 {
        bail!("ELF program header entries too small");
    }
    for i in 0..phnum {
        let at = i
            .checked_mul(phentsize)
            .and_then(|o| o.checked_add(phoff))
            .and_then(|o| usize::try_from(o).ok())
            .context("the ELF program header offset is out of range")?;
        if u32_at(at).context("the ELF program headers are not where the header says")?
            == u64::from(PT_INTERP)
        {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Takes the kernel and its modules out of the root tree: `modules_dir`
/// (a tree path) with everything below it, every `/boot/vmlinuz-*` and
/// `/boot/initrd.img-*`, and the kernel itself. Returns how many nodes
/// went.
pub fn strip_kernel(tree: &mut Tree, located: &Located) -> usize {
    let mut doomed: Vec<String> = Vec::new();
    doomed.push(located.kernel.path.trim_start_matches('/').to_string());
    doomed.extend(located.modules_dir.clone());
    if let Some(boot) = dir_at(tree, "boot") {
        doomed.extend(
            children(tree, &boot)
                .filter(|(name, _)| name.starts_with("vmlinuz-") || name.starts_with("initrd.img-"))
                .map(|(name, _)| format!("{boot}/{name}")),
        );
    }
    let mut removed = 0;
    for path in doomed {
        let below = tree.paths_below(&path).len();
        if tree.remove(&path) {
            removed += 1 + below;
        }
    }
    removed
}

#[cfg(test)]
pub(crate) mod tests;
