#!/bin/sh
# Manual smoke boot of the ISO writer's output under QEMU (TCG): one UEFI
# boot (OVMF -> systemd-boot from a large ESP holding the kernel and a
# ~110 MB initramfs) and one BIOS boot (isolinux, boot info table), both
# from the image as a CD, plus UEFI from the image as a virtio disk (GPT path).
# Each boot must print AIRLIFT-SMOKE-OK from /init on ttyS0.
#
# Usage: tests/scripts/iso-smoke-boot.sh [WORKDIR]   (run from the repo root, as root
# for mknod; downloads the Debian kernel package with apt-get download)
set -eu
WORK=${1:-/tmp/airlift-iso-smoke}
mkdir -p "$WORK"
cd "$WORK"
if ! ls kroot/boot/vmlinuz-* >/dev/null 2>&1; then
    pkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-/{print $2; exit}')
    apt-get download "$pkg"
    dpkg -x "$pkg"_*.deb kroot
fi
KERNEL=$(ls "$WORK"/kroot/boot/vmlinuz-* | head -1)

# A busybox initramfs padded to ~110 MB with incompressible data.
rm -rf ird && mkdir -p ird/bin ird/dev ird/proc
cp /bin/busybox ird/bin/busybox
mknod ird/dev/console c 5 1
cat > ird/init <<'INIT'
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox echo "AIRLIFT-SMOKE-OK pad=$(/bin/busybox stat -c %s /pad.bin)"
/bin/busybox poweroff -f
INIT
chmod 755 ird/init
head -c 110M /dev/urandom > ird/pad.bin
(cd ird && find . | cpio -o -H newc --quiet) > initrd.img
ls -l initrd.img

cd - >/dev/null
AIRLIFT_SMOKE_KERNEL="$KERNEL" AIRLIFT_SMOKE_INITRD="$WORK/initrd.img" AIRLIFT_SMOKE_OUT="$WORK/smoke.iso" \
    cargo test -p airlift-builder --test iso_image smoke_boot_image -- --ignored --nocapture
cd "$WORK"
sgdisk -v smoke.iso | tail -2

boot() { # name, qemu args...
    name=$1; shift
    timeout 300 qemu-system-x86_64 -accel tcg -m 1024 -nographic -no-reboot \
        -serial "file:$WORK/$name.log" -monitor none "$@" >/dev/null 2>&1 || true
    if grep -q AIRLIFT-SMOKE-OK "$name.log"; then echo "$name: PASS ($(grep -o 'pad=[0-9]*' "$name.log"))"; else echo "$name: FAIL (see $WORK/$name.log)"; FAIL=1; fi
}
FAIL=0
cp /usr/share/OVMF/OVMF_VARS_4M.fd vars.fd
boot uefi-cd -drive if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd \
    -drive if=pflash,format=raw,file=vars.fd -drive file=smoke.iso,media=cdrom,readonly=on,if=ide,index=2
cp /usr/share/OVMF/OVMF_VARS_4M.fd vars.fd
boot uefi-disk -drive if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd \
    -drive if=pflash,format=raw,file=vars.fd -drive file=smoke.iso,format=raw,if=virtio,readonly=on
boot bios-cd -drive file=smoke.iso,media=cdrom,readonly=on,if=ide,index=2 -boot d
boot bios-disk -drive file=smoke.iso,format=raw,if=virtio,readonly=on
exit $FAIL
