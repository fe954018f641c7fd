//! The root filesystem read from the media: the squashfs image of the
//! whole root ([`squashfs`]) and the stage-1 initramfs that finds it
//! ([`stage1`]: busybox, a rendered `/init`, the kernel modules).

pub mod squashfs;
pub mod stage1;
pub mod superblock;
