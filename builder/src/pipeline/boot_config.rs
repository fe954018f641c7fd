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

/// GRUB's `grub.cfg` for the signed chain (shim -> GRUB -> kernel): no
/// menu, output on the serial port and the screen, the ISO 9660 volume
/// found by its label (`label`: `[A-Z0-9_]`, checked by the ISO writer),
/// and the kernel and initrd booted from its `/boot`, as isolinux does.
/// `linux ($root)/...` makes the kernel see `BOOT_IMAGE=(dev)/boot/vmlinuz`,
/// which tells a GRUB boot from an isolinux one on the console.
/// Each word of `cmdline` is quoted for GRUB's shell ([`grub_word`]).
pub fn grub_cfg(label: &str, cmdline: &str) -> String {
    let args: Vec<String> = cmdline.split_whitespace().map(grub_word).collect();
    format!(
        "set timeout=0\n\
         serial --unit=0 --speed=115200\n\
         terminal_input serial console\n\
         terminal_output serial console\n\
         search --no-floppy --label {label} --set=root\n\
         echo \"airlift: GRUB boots /boot/vmlinuz from volume {label} on ($root)\"\n\
         linux ($root)/boot/vmlinuz {}\n\
         initrd ($root)/boot/initrd.img\n\
         boot\n",
        args.join(" ")
    )
}

/// One kernel argument as a GRUB word: as is when it holds only
/// characters GRUB's shell leaves alone, else in single quotes (`'`
/// written as `'\''`), so `$`, `;`, quotes and braces reach the kernel
/// unchanged.
pub fn grub_word(word: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || ",._=/:+-@%".contains(c);
    if !word.is_empty() && word.chars().all(plain) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
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
    }

    #[test]
    fn grub_cfg_finds_the_volume_by_label_and_boots_its_kernel() {
        let cmdline = kernel_cmdline("AIRLIFT_X", &["quiet".into()]);
        let cfg = grub_cfg("AIRLIFT_X", &cmdline);
        assert_eq!(
            cfg,
            "set timeout=0\n\
             serial --unit=0 --speed=115200\n\
             terminal_input serial console\n\
             terminal_output serial console\n\
             search --no-floppy --label AIRLIFT_X --set=root\n\
             echo \"airlift: GRUB boots /boot/vmlinuz from volume AIRLIFT_X on ($root)\"\n\
             linux ($root)/boot/vmlinuz console=tty0 console=ttyS0,115200 airlift.label=AIRLIFT_X quiet\n\
             initrd ($root)/boot/initrd.img\n\
             boot\n"
        );
        // The same kernel command line as isolinux's APPEND.
        assert!(isolinux_cfg("t", &cmdline).contains(&format!("APPEND {cmdline}\n")));
    }

    #[test]
    fn grub_words_quote_what_grub_would_expand() {
        assert_eq!(grub_word("console=ttyS0,115200"), "console=ttyS0,115200");
        assert_eq!(grub_word("a=$x"), "'a=$x'");
        assert_eq!(grub_word("a;b"), "'a;b'");
        assert_eq!(grub_word("it's"), "'it'\\''s'");
        assert_eq!(grub_word("x=\"y"), "'x=\"y'");
        assert_eq!(grub_word("{a}"), "'{a}'");
        let cfg = grub_cfg("L", "a=$HOME b");
        assert!(
            cfg.contains("linux ($root)/boot/vmlinuz 'a=$HOME' b\n"),
            "{cfg}"
        );
    }
}
