//! Step 3: check what a normalised config points at and how its fields
//! fit together, collecting every problem (not just the first). Each
//! problem names the file, the field, its line and column, and what to do.

use std::collections::HashMap;
use std::fs;
use std::io::Read;
use std::path::Path;

use airlift_oci::Digest;

use super::checks;
use super::locate::{join_index, join_key};
use super::normalise::Appliance;
use super::problem::Problem;
use super::schema::*;

/// What the config is checked for: `airlift bundle` needs only images;
/// `airlift build` also needs `base`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Bundle,
    Build,
}

/// Files `isolinux` must hold.
pub const ISOLINUX_FILES: [&str; 3] = ["isolinux.bin", "ldlinux.c32", "isohdpfx.bin"];

/// Check `app` for `purpose`; every problem found, in config order.
pub fn validate(app: &Appliance, purpose: Purpose) -> Result<(), Vec<Problem>> {
    let mut v = Validator {
        app,
        problems: Vec::new(),
    };
    v.metadata();
    v.images();
    v.base(purpose);
    v.overlays();
    v.registry();
    v.netboot(purpose);
    v.runtimes();
    v.storage();
    v.ha();
    v.output();
    if v.problems.is_empty() {
        Ok(())
    } else {
        Err(v.problems)
    }
}

struct Validator<'a> {
    app: &'a Appliance,
    problems: Vec<Problem>,
}

/// What a path should be.
#[derive(Clone, Copy)]
enum Kind {
    File,
    Dir,
}

impl Validator<'_> {
    fn problem(&mut self, field: &str, message: impl Into<String>) {
        self.problems.push(self.app.origin.problem(field, message));
    }

    fn check(&mut self, field: &str, result: Result<(), String>) {
        if let Err(message) = result {
            self.problem(field, message);
        }
    }

    /// `path` exists and is of `kind`; returns whether it is.
    fn expect(&mut self, field: &str, path: &Path, kind: Kind, what: &str) -> bool {
        let result = match (fs::metadata(path), kind) {
            (Ok(m), Kind::File) if m.is_file() => Ok(()),
            (Ok(m), Kind::Dir) if m.is_dir() => Ok(()),
            (Ok(_), Kind::File) => Err(format!(
                "{} is not a regular file; point it at {what}",
                path.display()
            )),
            (Ok(_), Kind::Dir) => Err(format!(
                "{} is not a folder; point it at {what}",
                path.display()
            )),
            (Err(e), _) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
                "{} does not exist; point it at {what}",
                path.display()
            )),
            (Err(e), _) => Err(format!(
                "{} cannot be read ({e}); point it at {what}",
                path.display()
            )),
        };
        let ok = result.is_ok();
        self.check(field, result);
        ok
    }

    fn metadata(&mut self) {
        let m = &self.app.metadata;
        self.check(
            "metadata.name",
            checks::dns_label(&m.name).map_err(|e| format!("{e} (e.g. edge-cluster)")),
        );
        if m.version.trim().is_empty() {
            self.problem(
                "metadata.version",
                "is empty; write a version such as 1.0.0",
            );
        }
    }

    fn images(&mut self) {
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
            let from = join_key(&field, "from");
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
                    let spec = crate::sources::SourceSpec::from_config(Some(&image.source));
                    if let Err(e) = spec.check_local(&image.platforms) {
                        self.problem(&join_key(&from, f), format!("{e:#}"));
                    }
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

    fn base(&mut self, purpose: Purpose) {
        let Some(b) = &self.app.base else {
            if purpose == Purpose::Build {
                self.problem(
                    "base",
                    "is missing; airlift build needs base: with kernel, rootfs and bootloader",
                );
            }
            return;
        };
        self.expect(
            "base.kernel",
            &b.kernel,
            Kind::File,
            "the kernel image (bzImage)",
        );
        self.rootfs(&b.rootfs);
        if let Some(m) = &b.modules_dir {
            self.expect(
                "base.modulesDir",
                m,
                Kind::Dir,
                "a lib/modules/VERSION folder",
            );
        } else if !b.modules.is_empty() {
            self.problem(
                "base.modules",
                "names modules but base.modulesDir is not set; set it to the lib/modules/VERSION folder",
            );
        }
        for (i, m) in b.modules.iter().enumerate() {
            self.check(&join_index("base.modules", i), checks::module_name(m));
        }
        let bl = &b.bootloader;
        let what = "a folder holding isolinux.bin, ldlinux.c32 and isohdpfx.bin (Debian: isolinux, syslinux-common)";
        if self.expect("base.bootloader.isolinux", &bl.isolinux, Kind::Dir, what) {
            for name in ISOLINUX_FILES {
                if !bl.isolinux.join(name).is_file() {
                    self.problem(
                        "base.bootloader.isolinux",
                        format!(
                            "{} has no {name}; copy it there (Debian: /usr/lib/ISOLINUX/isolinux.bin, \
                             /usr/lib/syslinux/modules/bios/ldlinux.c32, /usr/lib/ISOLINUX/isohdpfx.bin)",
                            bl.isolinux.display()
                        ),
                    );
                }
            }
        }
        self.expect(
            "base.bootloader.efi",
            &bl.efi,
            Kind::File,
            "the UEFI boot loader (e.g. systemd-bootx64.efi)",
        );
        if let Some(ipxe) = &bl.ipxe {
            self.expect(
                "base.bootloader.ipxe",
                ipxe,
                Kind::Dir,
                "a folder holding iPXE binaries (undionly.kpxe, ipxe.efi)",
            );
        }
        for (i, a) in b.kernel_args.iter().enumerate() {
            if a.trim().is_empty() {
                self.problem(&join_index("base.kernelArgs", i), "is empty; remove it");
            }
        }
    }

    /// The root filesystem: a folder, or a tar file (plain, gzip, zstd or xz).
    fn rootfs(&mut self, path: &Path) {
        const WHAT: &str =
            "a root filesystem folder or tar file (.tar, .tar.gz, .tar.zst, .tar.xz)";
        match fs::metadata(path) {
            Ok(m) if m.is_dir() => {}
            Ok(m) if m.is_file() => {
                if !looks_like_tar(path) {
                    self.problem(
                        "base.rootfs",
                        format!(
                            "{} is neither a tar file nor a gzip, zstd or xz one; point it at {WHAT}",
                            path.display()
                        ),
                    );
                }
            }
            _ => {
                self.expect("base.rootfs", path, Kind::Dir, WHAT);
            }
        }
    }

    fn overlays(&mut self) {
        for (i, o) in self.app.overlays.iter().enumerate() {
            let what = "a folder laid over the root filesystem";
            self.expect(&join_index("overlays", i), o, Kind::Dir, what);
        }
    }

    fn registry(&mut self) {
        let r = &self.app.registry;
        if r.port == 0 {
            self.problem("registry.port", "is 0; choose a port such as 5000 or 443");
        }
        let tls = &r.tls;
        match tls.mode {
            TlsMode::Provided => {
                for (name, path) in [("cert", &tls.cert), ("key", &tls.key)] {
                    let field = join_key("registry.tls", name);
                    match path {
                        Some(p) => {
                            self.expect(&field, p, Kind::File, "a PEM file");
                        }
                        None => self.problem(
                            &field,
                            "is missing; mode: provided needs cert and key (PEM files)",
                        ),
                    }
                }
            }
            TlsMode::Generate | TlsMode::Off => {
                for (name, path) in [("cert", &tls.cert), ("key", &tls.key)] {
                    if path.is_some() {
                        self.problem(
                            &join_key("registry.tls", name),
                            "is only used with mode: provided; set mode: provided or remove it",
                        );
                    }
                }
            }
        }
        for (i, n) in tls.extra_names.iter().enumerate() {
            if n.parse::<std::net::IpAddr>().is_err() {
                let f = join_index("registry.tls.extraNames", i);
                self.check(
                    &f,
                    checks::hostname(n).map_err(|e| format!("{e}, or an IP address")),
                );
            }
        }
        let push = &r.push;
        if push.enabled && push.htpasswd.is_none() && push.token_file.is_none() {
            self.problem(
                "registry.push.enabled",
                "push is enabled but nobody may push: set push.htpasswd or push.tokenFile",
            );
        }
        if let Some(h) = &push.htpasswd {
            self.expect(
                "registry.push.htpasswd",
                h,
                Kind::File,
                "a bcrypt htpasswd file",
            );
        }
        if let Some(t) = &push.token_file {
            self.expect(
                "registry.push.tokenFile",
                t,
                Kind::File,
                "a file holding the token",
            );
        }
        for (i, m) in r.mirrors.iter().enumerate() {
            let f = join_index("registry.mirrors", i);
            self.check(
                &f,
                airlift_oci::reference::validate_registry(m)
                    .map_err(|e| format!("{e}; name an upstream registry like quay.io")),
            );
        }
    }

    fn netboot(&mut self, purpose: Purpose) {
        let n = &self.app.netboot;
        if let Some(i) = &n.interface {
            self.check("netboot.interface", checks::interface(i));
        }
        match (&n.range, n.dhcp) {
            (Some(r), DhcpMode::Full) => {
                self.check("netboot.range", checks::dhcp_range(r).map(|_| ()));
            }
            (None, DhcpMode::Full) if n.enabled => self.problem(
                "netboot.range",
                "is missing; dhcp: full hands out addresses from range: FIRST-LAST (e.g. 10.44.0.100-10.44.0.200)",
            ),
            (Some(_), _) => self.problem(
                "netboot.range",
                "is only used with dhcp: full; set dhcp: full or remove it",
            ),
            _ => {}
        }
        if n.default_profile
            .as_ref()
            .is_some_and(|p| p.role == Role::Host0)
        {
            self.problem(
                "netboot.defaultProfile.role",
                "a netbooted machine cannot be host0 (host0 boots from the media); use join or replica",
            );
        }
        if n.replicas > 0 && n.default_profile.is_none() {
            self.problem(
                "netboot.replicas",
                "counts machines of the default profile, but there is no netboot.defaultProfile; \
                 add one, or give machines role: replica in netboot.nodes",
            );
        }
        let mut macs: HashMap<String, usize> = HashMap::new();
        for (i, node) in n.nodes.iter().enumerate() {
            let field = join_index("netboot.nodes", i);
            match checks::mac(&node.mac) {
                Ok(mac) => {
                    if let Some(first) = macs.get(&mac) {
                        let msg = format!(
                            "{} is listed twice (also netboot.nodes[{first}]); give each machine one entry",
                            node.mac
                        );
                        self.problem(&join_key(&field, "mac"), msg);
                    } else {
                        macs.insert(mac, i);
                    }
                }
                Err(e) => self.problem(&join_key(&field, "mac"), e),
            }
            if let Some(h) = &node.hostname {
                self.check(&join_key(&field, "hostname"), checks::hostname(h));
            }
            if node.role == Role::Host0 {
                self.problem(
                    &join_key(&field, "role"),
                    "a netbooted machine cannot be host0 (host0 boots from the media); use join or replica",
                );
            }
        }
        if n.enabled && purpose == Purpose::Build {
            if let Some(b) = &self.app.base {
                if b.bootloader.ipxe.is_none() {
                    self.problem(
                        "base.bootloader.ipxe",
                        "is missing but netboot is enabled; set it to a folder holding iPXE binaries (Debian: /usr/lib/ipxe)",
                    );
                }
            }
        }
    }

    fn runtimes(&mut self) {
        let rs = &self.app.runtimes;
        for (i, r) in rs.iter().enumerate() {
            if rs[..i].contains(r) {
                self.problem(
                    &join_index("runtimes", i),
                    format!("{r:?} is listed twice; remove one"),
                );
            }
        }
    }

    fn storage(&mut self) {
        let Some(d) = &self.app.storage.data_disk else {
            return;
        };
        match (&d.device, d.min_size_gib) {
            (Some(_), Some(_)) => self.problem(
                "storage.dataDisk",
                "sets both device and minSizeGiB; keep exactly one",
            ),
            (None, None) => self.problem(
                "storage.dataDisk",
                "sets neither device nor minSizeGiB; set exactly one",
            ),
            (Some(dev), None) => {
                if !dev.starts_with("/dev/") {
                    self.problem(
                        "storage.dataDisk.device",
                        format!(
                            "{} is not a device path; write /dev/vdb or /dev/disk/by-id/…",
                            dev.display()
                        ),
                    );
                }
            }
            (None, Some(0)) => self.problem(
                "storage.dataDisk.minSizeGiB",
                "is 0; give the smallest acceptable disk size in GiB (at least 1)",
            ),
            (None, Some(_)) => {}
        }
    }

    /// The virtual IP: a host address, a valid interface name, and none
    /// of the addresses the config gives out or gives host0.
    fn ha(&mut self) {
        let Some(v) = self.app.ha.as_ref().and_then(|h| h.virtual_ip.as_ref()) else {
            return;
        };
        const FIELD: &str = "ha.virtualIp.address";
        let vip = v.address;
        if let Some(i) = &v.interface {
            self.check("ha.virtualIp.interface", checks::interface(i));
        }
        if let Some(why) = vip.unusable_reason() {
            self.problem(
                FIELD,
                format!(
                    "{vip} {why}; give an unused host address of the registry machines' subnet"
                ),
            );
        }
        let n = &self.app.netboot;
        if let (std::net::IpAddr::V4(ip), Some(range), DhcpMode::Full) =
            (vip.addr, &n.range, n.dhcp)
        {
            if let Ok((first, last)) = checks::dhcp_range(range) {
                if (first..=last).contains(&ip) {
                    self.problem(
                        FIELD,
                        format!(
                            "{ip} is inside netboot.range {range}, so host0's DHCP server could \
                             give it to a node; choose an address outside the range"
                        ),
                    );
                }
            }
        }
        let host0 = self
            .app
            .base
            .iter()
            .flat_map(|b| &b.kernel_args)
            .filter_map(|a| a.strip_prefix("airlift.address="))
            .flat_map(|v| v.split(','))
            .filter_map(|c| c.parse::<airlift_appliance::IpCidr>().ok());
        for own in host0 {
            if own.addr == vip.addr {
                self.problem(
                    FIELD,
                    format!(
                        "{} is host0's own address (base.kernelArgs airlift.address={own}); the \
                         virtual IP must be a different, unused address of that subnet",
                        vip.addr
                    ),
                );
            }
        }
    }

    fn output(&mut self) {
        let o = &self.app.output;
        self.check("output.volumeLabel", checks::volume_label(&o.volume_label));
        for (iso, local) in &o.extra_files {
            let f = join_key("output.extraFiles", iso);
            self.check(&f, checks::iso_path(iso));
            if !local.exists() {
                self.problem(
                    &f,
                    format!(
                        "{} does not exist; point it at the file or folder to copy into the ISO",
                        local.display()
                    ),
                );
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
fn pick_in_index(index: &serde_json::Value, reference: Option<&str>) -> Result<(), String> {
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
fn looks_like_tar(path: &Path) -> bool {
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

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
