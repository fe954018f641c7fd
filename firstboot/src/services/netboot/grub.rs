//! The network GRUB's configs (pure), for UEFI machines that boot
//! through shim and Debian's signed network GRUB (Secure Boot refuses
//! unsigned iPXE). That GRUB speaks TFTP but not HTTP, so it cannot ask
//! host0's boot server for a per-MAC script; instead host0 writes, when
//! netboot starts:
//!
//! - `grub/grub.cfg`: what GRUB reads first (its prefix is `/grub`); it
//!   sources `grub/<mac>.cfg` for the booting machine's MAC
//!   (`${net_default_mac}`, from the PXE answer) and, when there is no
//!   such file, `grub/default.cfg`;
//! - `grub/<mac>.cfg` for every machine `netboot.nodes` names;
//! - `grub/default.cfg` from `netboot.defaultProfile` (the MAC comes from
//!   GRUB's variable), or a refusal when there is no default profile.
//!
//! Static files mean the default profile is rendered once: `netboot.replicas`
//! counting happens when a machine asks for an iPXE script, so a machine
//! booting through GRUB with the default profile gets the profile's own
//! role. Name replicas by MAC in `netboot.nodes` to netboot them under
//! Secure Boot. The kernel line is the iPXE script's
//! ([`script::kernel_arg_list`]); kernel and initrd come over TFTP.

use std::fmt::Write as _;

use super::config::{self, Netboot, Profile};
use super::script::{self, ScriptParams};

/// The folder (on the TFTP root) GRUB's prefix points at.
pub const FOLDER: &str = "grub";
/// The kernel and initrd on the TFTP root.
pub const KERNEL: &str = "boot/vmlinuz";
/// See [`KERNEL`].
pub const INITRD: &str = "boot/initrd.img";
/// GRUB's variable holding the booting NIC's MAC (`52:54:00:…`).
pub const MAC_VAR: &str = "${net_default_mac}";
/// The default profile's file name in [`FOLDER`].
pub const DEFAULT_CFG: &str = "default.cfg";

/// What every machine's kernel line shares.
#[derive(Debug, Clone, Copy)]
pub struct Common<'a> {
    /// `http://HOST:PORT` of the boot files.
    pub http_base: &'a str,
    /// `https://HOST:PORT` of host0's registry and join endpoint.
    pub server: &'a str,
    pub token: &'a str,
    pub ca_fingerprint: Option<&'a str>,
    /// SHA-256 (hex) of the media's root filesystem image, when the root
    /// is read from it (stage 1 fetches it over HTTP from `http_base`).
    pub root_sha256: Option<&'a str>,
}

/// Every config file, as (path under the TFTP root, text), sorted by path.
pub fn files(cfg: &Netboot, c: &Common) -> Vec<(String, String)> {
    let mut out = vec![(format!("{FOLDER}/grub.cfg"), top_cfg())];
    for n in &cfg.nodes {
        let Ok(mac) = config::normalise_mac(&n.mac) else {
            continue;
        };
        if let Some(p) = config::profile_for(cfg, &mac) {
            out.push((format!("{FOLDER}/{mac}.cfg"), entry(&mac, &p, c)));
        }
    }
    let default = match config::profile_for_unlisted(cfg) {
        Some(p) => entry(MAC_VAR, &p, c),
        None => refusal(),
    };
    out.push((format!("{FOLDER}/{DEFAULT_CFG}"), default));
    out.sort();
    out.dedup_by(|a, b| a.0 == b.0);
    out
}

/// `grub/grub.cfg`: the machine's own file, else the default one.
pub fn top_cfg() -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Written by airlift-firstboot (netboot); a restart replaces it."
    );
    let _ = writeln!(s, "set timeout=0");
    let _ = writeln!(
        s,
        "# A machine netboot.nodes names has its own file; a missing one is not an error here."
    );
    let _ = writeln!(s, "source \"${{prefix}}/{MAC_VAR}.cfg\"");
    let _ = writeln!(s, "source \"${{prefix}}/{DEFAULT_CFG}\"");
    s
}

/// One machine's (or, with `mac` = [`MAC_VAR`], the default profile's) boot.
pub fn entry(mac: &str, profile: &Profile, c: &Common) -> String {
    let params = ScriptParams {
        mac,
        profile,
        http_base: c.http_base,
        server: c.server,
        token: c.token,
        ca_fingerprint: c.ca_fingerprint,
        root_sha256: c.root_sha256,
    };
    let args: Vec<String> = script::kernel_arg_list(&params)
        .iter()
        .map(|a| quote(a))
        .collect();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "echo {}",
        double_quoted(&format!(
            "airlift: {mac} boots as {} ({}) through GRUB",
            profile.name,
            profile.role.as_str()
        ))
    );
    let _ = writeln!(s, "linux /{KERNEL} {}", args.join(" "));
    let _ = writeln!(s, "initrd /{INITRD}");
    let _ = writeln!(s, "boot");
    s
}

/// `default.cfg` when there is no default profile: say so and go back to
/// the firmware (the next boot option).
fn refusal() -> String {
    format!(
        "echo {}\nsleep 5\nexit\n",
        double_quoted(&format!(
            "airlift: {MAC_VAR} is not in netboot.nodes and there is no netboot.defaultProfile; not booted"
        ))
    )
}

/// A GRUB word holding `arg` as is: bare when it is plain, else in single
/// quotes. [`MAC_VAR`] stays outside the quotes so GRUB expands it.
pub fn quote(arg: &str) -> String {
    if let Some((head, tail)) = arg.split_once(MAC_VAR) {
        return format!("{}{MAC_VAR}{}", quote_part(head), quote(tail));
    }
    quote_part(arg)
}

/// `text` in GRUB's double quotes, for `echo`: `\`, `"` and `$` escaped,
/// but [`MAC_VAR`] left for GRUB to expand.
pub fn double_quoted(text: &str) -> String {
    let escaped: Vec<String> = text
        .split(MAC_VAR)
        .map(|part| {
            part.replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('$', "\\$")
        })
        .collect();
    format!("\"{}\"", escaped.join(MAC_VAR))
}

fn quote_part(arg: &str) -> String {
    let plain = |b: u8| b.is_ascii_alphanumeric() || b"._,:/=+@%-".contains(&b);
    if !arg.is_empty() && arg.bytes().all(plain) {
        return arg.to_string();
    }
    if arg.is_empty() {
        return String::new();
    }
    format!("'{}'", arg.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn netboot(default: bool) -> Netboot {
        let mut v = serde_json::json!({
            "enabled": true, "dhcp": "off",
            "nodes": [
                {"mac": "52-54-00-A1-00-01", "hostname": "node-1", "role": "replica",
                 "kernelArgs": ["quiet", "x=it's $y"]},
                {"mac": "52:54:00:a1:00:02"}
            ]
        });
        if default {
            v["defaultProfile"] = serde_json::json!({"role": "join", "kernelArgs": ["loglevel=4"]});
        }
        config::from_json(v).unwrap()
    }

    const COMMON: Common<'static> = Common {
        http_base: "http://10.77.0.1:8080",
        server: "https://10.77.0.1:5000",
        token: "t0k",
        ca_fingerprint: Some("sha256:ab"),
        root_sha256: Some("5e"),
    };

    #[test]
    fn one_file_per_named_machine_and_a_default() {
        let f = files(&netboot(true), &COMMON);
        let names: Vec<&str> = f.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "grub/52:54:00:a1:00:01.cfg",
                "grub/52:54:00:a1:00:02.cfg",
                "grub/default.cfg",
                "grub/grub.cfg"
            ]
        );
        assert_eq!(
            f[3].1,
            "# Written by airlift-firstboot (netboot); a restart replaces it.\n\
             set timeout=0\n\
             # A machine netboot.nodes names has its own file; a missing one is not an error here.\n\
             source \"${prefix}/${net_default_mac}.cfg\"\n\
             source \"${prefix}/default.cfg\"\n"
        );
        assert_eq!(
            f[0].1,
            "echo \"airlift: 52:54:00:a1:00:01 boots as node:node-1 (replica) through GRUB\"\n\
             linux /boot/vmlinuz console=tty0 console=ttyS0,115200 airlift.role=replica \
             airlift.server=https://10.77.0.1:5000 airlift.token=t0k airlift.mac=52:54:00:a1:00:01 \
             airlift.ca=sha256:ab airlift.root=http://10.77.0.1:8080/boot/rootfs.squashfs \
             airlift.root.sha256=5e airlift.hostname=node-1 systemd.hostname=node-1 quiet \
             'x=it'\\''s $y'\n\
             initrd /boot/initrd.img\n\
             boot\n"
        );
        assert_eq!(
            f[2].1,
            "echo \"airlift: ${net_default_mac} boots as default (join) through GRUB\"\n\
             linux /boot/vmlinuz console=tty0 console=ttyS0,115200 airlift.role=join \
             airlift.server=https://10.77.0.1:5000 airlift.token=t0k \
             airlift.mac=${net_default_mac} airlift.ca=sha256:ab \
             airlift.root=http://10.77.0.1:8080/boot/rootfs.squashfs airlift.root.sha256=5e \
             loglevel=4\n\
             initrd /boot/initrd.img\n\
             boot\n"
        );
    }

    #[test]
    fn the_kernel_line_is_the_ipxe_scripts() {
        let cfg = netboot(true);
        let mac = "52:54:00:a1:00:02";
        let profile = config::profile_for(&cfg, mac).unwrap();
        let ipxe = script::render(&ScriptParams {
            mac,
            profile: &profile,
            http_base: COMMON.http_base,
            server: COMMON.server,
            token: COMMON.token,
            ca_fingerprint: COMMON.ca_fingerprint,
            root_sha256: COMMON.root_sha256,
        });
        let grub = entry(mac, &profile, &COMMON);
        let args = |text: &str, prefix: &str| -> String {
            let line = text.lines().find(|l| l.starts_with(prefix)).unwrap();
            line.split_once(" console=tty0").unwrap().1.to_string()
        };
        assert_eq!(args(&ipxe, "kernel "), args(&grub, "linux "));
    }

    #[test]
    fn without_a_default_profile_unknown_machines_are_refused() {
        let f = files(&netboot(false), &COMMON);
        let default = &f.iter().find(|(n, _)| n == "grub/default.cfg").unwrap().1;
        assert!(!default.contains("linux"), "{default}");
        assert!(default.contains("not in netboot.nodes"), "{default}");
        assert!(default.ends_with("exit\n"), "{default}");
    }

    #[test]
    fn quoting() {
        assert_eq!(quote("a=b,c:d/e"), "a=b,c:d/e");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("a;b"), "'a;b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote("$x"), "'$x'");
        assert_eq!(
            quote("airlift.mac=${net_default_mac}"),
            "airlift.mac=${net_default_mac}"
        );
        assert_eq!(
            quote("m ${net_default_mac} x"),
            "'m '${net_default_mac}' x'"
        );
        assert_eq!(
            double_quoted(r#"a "b" $c \ ${net_default_mac}"#),
            r#""a \"b\" \$c \\ ${net_default_mac}""#
        );
    }
}
