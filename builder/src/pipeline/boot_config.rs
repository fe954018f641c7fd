//! The boot loaders' config files, rendered from the appliance (pure).
//!
//! The kernel command line names the serial console last
//! (`console=tty0 console=ttyS0,115200`): the last `console=` becomes
//! `/dev/console`, which is where `/init` and systemd's
//! `StandardOutput=console` write, and tests read the serial port.

/// What every boot entry passes to the kernel.
pub fn kernel_cmdline(volume_label: &str, extra: &[String]) -> String {
    let mut words = vec![
        "console=tty0".to_string(),
        "console=ttyS0,115200".to_string(),
        format!("airlift.label={volume_label}"),
    ];
    words.extend(extra.iter().cloned());
    words.join(" ")
}

/// `/isolinux/isolinux.cfg`: boot at once, kernel and initrd from `/boot`.
pub fn isolinux_cfg(title: &str, cmdline: &str) -> String {
    format!(
        "SERIAL 0 115200\n\
         DEFAULT airlift\n\
         PROMPT 0\n\
         TIMEOUT 0\n\
         LABEL airlift\n\
         \x20 MENU LABEL {title}\n\
         \x20 KERNEL /boot/vmlinuz\n\
         \x20 INITRD /boot/initrd.img\n\
         \x20 APPEND {cmdline}\n"
    )
}

/// systemd-boot's `loader/loader.conf`: no menu, the one entry.
pub fn loader_conf() -> String {
    "timeout 0\ndefault airlift.conf\nconsole-mode keep\neditor no\n".to_string()
}

/// systemd-boot's `loader/entries/airlift.conf` (kernel and initrd in the ESP).
pub fn loader_entry(title: &str, cmdline: &str) -> String {
    format!("title {title}\nlinux /vmlinuz\ninitrd /initrd.img\noptions {cmdline}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_console_is_last_and_label_is_passed() {
        let c = kernel_cmdline("AIRLIFT_X", &["quiet".into()]);
        assert_eq!(
            c,
            "console=tty0 console=ttyS0,115200 airlift.label=AIRLIFT_X quiet"
        );
    }

    #[test]
    fn configs_name_the_kernel_and_initrd() {
        let i = isolinux_cfg("demo 1.0", "x=1");
        assert!(i.contains("KERNEL /boot/vmlinuz\n"));
        assert!(i.contains("INITRD /boot/initrd.img\n"));
        assert!(i.contains("APPEND x=1\n"));
        assert!(loader_conf().starts_with("timeout 0\n"));
        assert_eq!(
            loader_entry("demo", "x=1"),
            "title demo\nlinux /vmlinuz\ninitrd /initrd.img\noptions x=1\n"
        );
    }
}
