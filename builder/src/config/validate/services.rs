//! The appliance services: registry, netboot, runtimes, storage and HA.

use crate::config::BaseSpec;
use std::collections::HashMap;

use super::Kind;
use super::{Purpose, Validator};
use crate::config::checks;
use crate::config::locate::{join_index, join_key};
use crate::config::schema::*;

impl Validator<'_> {
    pub(super) fn registry(&mut self) {
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

    pub(super) fn netboot(&mut self, purpose: Purpose) {
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
            if let Some(b) = self.app.base.as_ref().and_then(BaseSpec::paths) {
                if b.bootloader.ipxe.is_none() {
                    self.problem(
                        "base.bootloader.ipxe",
                        "is missing but netboot is enabled; set it to a folder holding iPXE binaries (Debian: /usr/lib/ipxe)",
                    );
                }
            }
        }
    }

    pub(super) fn runtimes(&mut self) {
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

    pub(super) fn storage(&mut self) {
        let s = &self.app.storage;
        if let Some(p) = s.warn_percent.filter(|p| !(1..=99).contains(p)) {
            self.problem(
                "storage.warnPercent",
                format!(
                    "is {p}; give the usage (1 to 99 percent) past which the status page warns"
                ),
            );
        }
        if s.keep_releases == Some(0) {
            self.problem(
                "storage.keepReleases",
                "is 0; garbage collection always keeps the current release: give 1 or more",
            );
        }
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
    pub(super) fn ha(&mut self) {
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
            .flat_map(|b| b.kernel_args())
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
}
