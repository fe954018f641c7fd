//! The iPXE script a netbooting machine gets (pure): its kernel and
//! initrd from host0 over plain HTTP, and on the kernel command line
//! everything `airlift-firstboot join` needs: the role, host0's join
//! endpoint, the token and the CA's fingerprint (so the node can check
//! the CA it is sent).

use std::fmt::Write as _;

use super::config::Profile;

/// What the script is made from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptParams<'a> {
    /// The booting machine's MAC (normalised).
    pub mac: &'a str,
    /// Its profile.
    pub profile: &'a Profile,
    /// `http://HOST:PORT` of the boot files, as the client reached them.
    pub http_base: &'a str,
    /// `https://HOST:PORT` of host0's registry and join endpoint.
    pub server: &'a str,
    /// The appliance's join token.
    pub token: &'a str,
    /// `sha256:<hex>` of host0's CA.
    pub ca_fingerprint: Option<&'a str>,
    /// SHA-256 (hex) of the root filesystem image, when the root is read
    /// from it: stage 1 fetches `http_base/boot/rootfs.squashfs`.
    pub root_sha256: Option<&'a str>,
}

/// The kernel command line (without `initrd=`), one argument a string:
/// the iPXE script and the network GRUB's configs ([`super::grub`]) both
/// render it from here, so a machine gets the same line either way.
pub fn kernel_arg_list(p: &ScriptParams) -> Vec<String> {
    let mut args = vec![
        "console=tty0".to_string(),
        "console=ttyS0,115200".to_string(),
        format!("airlift.role={}", p.profile.role.as_str()),
        format!("airlift.server={}", p.server),
        format!("airlift.token={}", p.token),
        format!("airlift.mac={}", p.mac),
    ];
    if let Some(fp) = p.ca_fingerprint {
        args.push(format!("airlift.ca={fp}"));
    }
    if let Some(sum) = p.root_sha256 {
        args.push(format!("airlift.root={}/boot/rootfs.squashfs", p.http_base));
        args.push(format!("airlift.root.sha256={sum}"));
    }
    if let Some(h) = &p.profile.hostname {
        args.push(format!("airlift.hostname={h}"));
        args.push(format!("systemd.hostname={h}"));
    }
    args.extend(p.profile.kernel_args.iter().cloned());
    args
}

/// [`kernel_arg_list`] as one line.
pub fn kernel_args(p: &ScriptParams) -> String {
    kernel_arg_list(p).join(" ")
}

/// The script. `initrd=initrd.img` is on the kernel line because the
/// kernel's EFI stub (UEFI boots) finds the initrd by that name.
pub fn render(p: &ScriptParams) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "#!ipxe");
    let _ = writeln!(
        s,
        "echo airlift: {} boots as {} ({})",
        p.mac,
        p.profile.name,
        p.profile.role.as_str()
    );
    let _ = writeln!(
        s,
        "kernel {base}/boot/vmlinuz initrd=initrd.img {args}",
        base = p.http_base,
        args = kernel_args(p)
    );
    let _ = writeln!(
        s,
        "initrd --name initrd.img {}/boot/initrd.img",
        p.http_base
    );
    let _ = writeln!(s, "boot");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::netboot::config::Role;

    #[test]
    fn script_for_a_known_node() {
        let profile = Profile {
            name: "node:node-1".into(),
            hostname: Some("node-1".into()),
            role: Role::Join,
            kernel_args: vec!["quiet".into()],
        };
        let text = render(&ScriptParams {
            mac: "52:54:00:a1:00:01",
            profile: &profile,
            http_base: "http://10.77.0.1:8080",
            server: "https://10.77.0.1:5000",
            token: "t0k",
            ca_fingerprint: Some("sha256:ab"),
            root_sha256: None,
        });
        assert_eq!(
            text,
            "#!ipxe\n\
             echo airlift: 52:54:00:a1:00:01 boots as node:node-1 (join)\n\
             kernel http://10.77.0.1:8080/boot/vmlinuz initrd=initrd.img console=tty0 \
             console=ttyS0,115200 airlift.role=join airlift.server=https://10.77.0.1:5000 \
             airlift.token=t0k airlift.mac=52:54:00:a1:00:01 airlift.ca=sha256:ab \
             airlift.hostname=node-1 systemd.hostname=node-1 quiet\n\
             initrd --name initrd.img http://10.77.0.1:8080/boot/initrd.img\n\
             boot\n"
        );
    }

    #[test]
    fn a_root_image_is_named_with_its_digest() {
        let profile = Profile {
            name: "default".into(),
            hostname: None,
            role: Role::Join,
            kernel_args: vec![],
        };
        let sum = "c".repeat(64);
        let args = kernel_args(&ScriptParams {
            mac: "52:54:00:a1:00:02",
            profile: &profile,
            http_base: "http://10.77.0.1:8080",
            server: "https://10.77.0.1:5000",
            token: "t",
            ca_fingerprint: None,
            root_sha256: Some(&sum),
        });
        assert!(args.ends_with(&format!(
            " airlift.root=http://10.77.0.1:8080/boot/rootfs.squashfs airlift.root.sha256={sum}"
        )));
    }
}
