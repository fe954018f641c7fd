#!/usr/bin/env bash
# Assemble airlift's boot base from Debian packages, outside the clone:
#
#   ${AIRLIFT_CACHE:-$HOME/.cache/airlift}/base/<key>/
#     vmlinuz  kernel-version  modules/ (= lib/modules/<version>)
#     isolinux/{isolinux.bin,ldlinux.c32,isohdpfx.bin}
#     efi/systemd-bootx64.efi  efi/linuxx64.efi.stub (systemd-boot-efi)
#     efi/shimx64.efi  efi/mmx64.efi (shim-signed, shim-helpers-amd64-signed: signed by Microsoft's UEFI CA)
#     efi/grubx64.efi  efi/grubnetx64.efi (grub-efi-amd64-signed: signed by Debian)
#     ipxe/{undionly.kpxe,ipxe.efi}
#     busybox  rootfs-smoke/ (busybox + applet links)
#     rootfs/  (debootstrap minbase + systemd, pruned, /init -> systemd)
#     images/  (OCI layout: `busybox`, `hello`, made with umoci)
#     demo-base.oci.tar  (the demo's OS as an image, tag `bookworm`: rootfs/
#       plus examples/base/demo/Containerfile, built with buildah)
#     packages.txt  .complete
#   ${AIRLIFT_CACHE}/base/current -> <key>
#
# <key> is a hash of the candidate versions of every package used (and of
# this script's recipe version). Packages are fetched with `apt-get
# download` and unpacked with `dpkg -x`; nothing is installed on the host.
# A complete folder (marker `.complete`, written last) is reused as is.
# The work happens in a temp folder renamed into place, so an interrupted
# run leaves nothing half-made behind.
set -euo pipefail

# Bump when the layout or the recipe changes, so old caches are not reused.
RECIPE=4

CACHE="${AIRLIFT_CACHE:-$HOME/.cache/airlift}"
REPO=$(cd "$(dirname "$0")/.." && pwd)
BASES="$CACHE/base"
SUITE=bookworm
ROOTFS_INCLUDE=systemd,systemd-sysv,udev,kmod,iproute2,skopeo,netavark,dnsmasq-base,ca-certificates,e2fsprogs,gdisk,util-linux

log() { printf 'make-base: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

for tool in apt-get apt-cache dpkg debootstrap sha256sum buildah; do
    command -v "$tool" >/dev/null || die "$tool not found (run \`just deps\`)"
done

# One build at a time: a second run (another terminal, a test) waits for the
# first and then finds its result.
mkdir -p "$BASES"
exec 9>"$BASES/.lock"
if ! flock -n 9; then
    log "another make-base run holds $BASES/.lock; waiting for it"
    flock 9
fi

# The mirror this machine's apt uses (deb822 or one-line sources).
mirror() {
    local uri
    uri=$(grep -rhoE '^URIs:\s*\S+' /etc/apt/sources.list.d/ 2>/dev/null |
        awk '{print $2}' | grep -E '/debian/?$' | head -n1 || true)
    if [[ -z "$uri" && -f /etc/apt/sources.list ]]; then
        uri=$(awk '$1=="deb" && $2 ~ /\/debian\/?$/ {print $2; exit}' /etc/apt/sources.list)
    fi
    [[ -n "$uri" ]] || die "no Debian mirror found in /etc/apt/sources.list(.d)"
    printf '%s\n' "$uri"
}

candidate() {
    apt-cache show --no-all-versions "$1" 2>/dev/null | awk '/^Version:/ {print $2; exit}'
}

if [[ -z "$(candidate linux-image-amd64)" ]]; then
    log "apt lists missing; running apt-get update"
    apt-get update -qq
fi

# linux-image-amd64 is a metapackage; the kernel is its versioned dependency.
KPKG=$(apt-cache show --no-all-versions linux-image-amd64 |
    awk -F': ' '/^Depends:/ {print $2; exit}' | grep -oE 'linux-image-[0-9][^ ,]*-amd64' | head -n1)
[[ -n "$KPKG" ]] || die "cannot find the kernel package linux-image-amd64 depends on"

PKGS=("$KPKG" isolinux syslinux-common systemd-boot-efi ipxe busybox-static shim-signed shim-helpers-amd64-signed grub-efi-amd64-signed)
MIRROR=$(mirror)
# One apt-cache call for every candidate version (each call costs ~1 s).
VERSIONS=$(apt-cache policy "${PKGS[@]}" debootstrap |
    awk '/^[^ ]/ {p=$1; sub(/:$/, "", p)} /Candidate:/ {print p "=" $2}')
{
    echo "recipe=$RECIPE"
    echo "suite=$SUITE mirror=$MIRROR include=$ROOTFS_INCLUDE"
    for p in "${PKGS[@]}" debootstrap; do
        line=$(grep -m1 "^$p=" <<<"$VERSIONS" || true)
        [[ -n "$line" && "$line" != *"=(none)" ]] ||
            die "package $p has no candidate version (apt-get update?)"
        echo "$line"
    done
} >"${TMPDIR:-/tmp}/airlift-base-pkgs.$$"
KEY=$(sha256sum <"${TMPDIR:-/tmp}/airlift-base-pkgs.$$" | cut -c1-16)
DEST="$BASES/$KEY"

# Small OCI images made locally (no registry): `busybox` (busybox-static
# as /bin/busybox with applet links for sh) and `hello` (a script on top
# of busybox), both in one OCI layout at <base>/images. Made once; the
# folder has its own marker so older bases gain it without a rebuild.
make_images() {
    local base=$1 work lay
    [[ -f "$base/images/.complete" ]] && return 0
    command -v umoci >/dev/null || die "umoci not found (run \`just deps\`)"
    log "making local OCI images"
    work=$(mktemp -d "$base/.images.XXXXXX")
    lay="$work/images"
    mkdir -p "$work/bb/bin" "$work/hello/usr/local/bin"
    cp "$base/busybox" "$work/bb/bin/busybox"
    ln -s busybox "$work/bb/bin/sh"
    printf '#!/bin/sh\necho "hello from an airlift bundle"\n' >"$work/hello/usr/local/bin/hello"
    chmod 0755 "$work/hello/usr/local/bin/hello"
    umoci init --layout "$lay"
    umoci new --image "$lay:busybox"
    umoci insert --image "$lay:busybox" "$work/bb/bin" /bin
    umoci config --image "$lay:busybox" --config.cmd /bin/sh --architecture amd64 --os linux
    umoci new --image "$lay:hello"
    umoci insert --image "$lay:hello" "$work/bb/bin" /bin
    umoci insert --image "$lay:hello" "$work/hello/usr" /usr
    umoci config --image "$lay:hello" --config.cmd /usr/local/bin/hello --architecture amd64 --os linux
    umoci gc --layout "$lay"
    touch "$lay/.complete"
    rm -rf "$base/images"
    mv -T "$lay" "$base/images"
    rm -rf "$work"
}

# The demo's base as a container image (examples/base/demo/Containerfile
# on top of rootfs/), written as an oci-archive. buildah keeps its
# storage in a temp folder here, so nothing is left in the host's
# containers storage. Rebuilt when the Containerfile or the kernel
# package changes (demo-base.key).
make_demo_image() {
    local base=$1 file key work
    file="$REPO/examples/base/demo/Containerfile"
    [[ -f "$file" ]] || die "$file not found"
    command -v buildah >/dev/null || die "buildah not found (run \`just deps\`)"
    key=$({ sha256sum <"$file"; echo "$KPKG $MIRROR"; } | sha256sum | cut -c1-16)
    if [[ -f "$base/demo-base.oci.tar" && "$(cat "$base/demo-base.key" 2>/dev/null)" == "$key" ]]; then
        return 0
    fi
    log "building the demo base image with buildah (about 1.5 minutes)"
    work=$(mktemp -d "$base/.demo-image.XXXXXX")
    mkdir -p "$work/ctx"
    tar --numeric-owner --sort=name -C "$base/rootfs" -cf "$work/ctx/rootfs.tar" .
    local store=(--root "$work/storage" --runroot "$work/run" --storage-driver vfs)
    if ! buildah "${store[@]}" build --layers --isolation chroot --network host \
        --build-arg MIRROR="$MIRROR" --build-arg KERNEL_PACKAGE="$KPKG" \
        -t localhost/airlift/demo-base:bookworm -f "$file" "$work/ctx" >"$work/build.log" 2>&1; then
        tail -n 30 "$work/build.log" >&2
        rm -rf "$work"
        die "buildah build of $file failed (log above)"
    fi
    buildah "${store[@]}" push -q localhost/airlift/demo-base:bookworm \
        "oci-archive:$work/demo-base.oci.tar:bookworm" >/dev/null ||
        { rm -rf "$work"; die "buildah push to an oci-archive failed"; }
    sync -f "$work/demo-base.oci.tar"
    mv -f "$work/demo-base.oci.tar" "$base/demo-base.oci.tar"
    printf '%s\n' "$key" >"$base/demo-base.key.tmp"
    mv -f "$base/demo-base.key.tmp" "$base/demo-base.key"
    rm -rf "$work"
}

link_current() {
    ln -sfn "$KEY" "$BASES/current.tmp.$$"
    mv -T "$BASES/current.tmp.$$" "$BASES/current"
}

if [[ -f "$DEST/.complete" ]]; then
    rm -f "${TMPDIR:-/tmp}/airlift-base-pkgs.$$"
    make_images "$DEST"
    make_demo_image "$DEST"
    link_current
    log "up to date"
    printf '%s\n' "$DEST"
    exit 0
fi

mkdir -p "$BASES"
WORK=$(mktemp -d "$BASES/.build-$KEY.XXXXXX")
cleanup() { rm -rf "$WORK" "${TMPDIR:-/tmp}/airlift-base-pkgs.$$"; }
trap cleanup EXIT
mv "${TMPDIR:-/tmp}/airlift-base-pkgs.$$" "$WORK/packages.txt.tmp"
OUT="$WORK/base"
mkdir -p "$OUT"/{isolinux,efi,ipxe} "$WORK/debs" "$WORK/x"

log "downloading ${PKGS[*]}"
(cd "$WORK/debs" && apt-get download -q "${PKGS[@]}" >/dev/null 2>"$WORK/download.log") || {
    cat "$WORK/download.log" >&2
    die "apt-get download failed"
}
for deb in "$WORK"/debs/*.deb; do
    dpkg -x "$deb" "$WORK/x"
done
X="$WORK/x"

# Kernel and modules.
KVER=$(find "$X/lib/modules" -mindepth 1 -maxdepth 1 -type d -printf '%f\n' | head -n1)
[[ -n "$KVER" && -f "$X/boot/vmlinuz-$KVER" ]] || die "no kernel found in $KPKG"
cp "$X/boot/vmlinuz-$KVER" "$OUT/vmlinuz"
mv "$X/lib/modules/$KVER" "$OUT/modules"
printf '%s\n' "$KVER" >"$OUT/kernel-version"

# Boot loaders.
find_one() { # NAME under X, first match
    local f
    f=$(find "$X" -name "$1" -type f "${@:2}" | sort | head -n1)
    [[ -n "$f" ]] || die "$1 not found in the extracted packages"
    printf '%s\n' "$f"
}
cp "$X/usr/lib/ISOLINUX/isolinux.bin" "$OUT/isolinux/"
cp "$X/usr/lib/ISOLINUX/isohdpfx.bin" "$OUT/isolinux/"
cp "$X/usr/lib/syslinux/modules/bios/ldlinux.c32" "$OUT/isolinux/"
cp "$(find_one systemd-bootx64.efi)" "$OUT/efi/"
cp "$(find_one linuxx64.efi.stub)" "$OUT/efi/"
# The Secure Boot chain: Microsoft-signed shim, Debian-signed GRUB (the
# disk one and the network one), each named as the ESP and TFTP want.
cp "$X/usr/lib/shim/shimx64.efi.signed" "$OUT/efi/shimx64.efi"
cp "$X/usr/lib/shim/mmx64.efi.signed" "$OUT/efi/mmx64.efi"
cp "$X/usr/lib/grub/x86_64-efi-signed/grubx64.efi.signed" "$OUT/efi/grubx64.efi"
cp "$X/usr/lib/grub/x86_64-efi-signed/grubnetx64.efi.signed" "$OUT/efi/grubnetx64.efi"
cp "$(find_one undionly.kpxe)" "$OUT/ipxe/"
cp "$(find_one ipxe.efi -path '*ipxe*')" "$OUT/ipxe/"
cp "$X/bin/busybox" "$OUT/busybox"
chmod 0755 "$OUT/busybox"

# The smoke root filesystem: busybox and its applet links. /init comes
# from overlays/smoke.
log "making rootfs-smoke"
S="$OUT/rootfs-smoke"
mkdir -p "$S"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,mnt,media,tmp,run,etc}
cp "$OUT/busybox" "$S/bin/busybox"
"$OUT/busybox" --list-full | while read -r applet; do
    [[ "$applet" == bin/busybox ]] && continue
    mkdir -p "$S/$(dirname "$applet")"
    ln -sf /bin/busybox "$S/$applet"
done

# The systemd root filesystem.
log "debootstrap $SUITE from $MIRROR (about 1.5 minutes)"
R="$OUT/rootfs"
debootstrap --variant=minbase --include="$ROOTFS_INCLUDE" "$SUITE" "$R" "$MIRROR" \
    >"$WORK/debootstrap.log" 2>&1 || {
    tail -n 30 "$WORK/debootstrap.log" >&2
    die "debootstrap failed (log above)"
}
log "pruning rootfs"
rm -rf "$R"/usr/share/{doc,man,info,locale,lintian,linda,bug}/* \
    "$R"/var/cache/apt/* "$R"/var/lib/apt/lists/* "$R"/var/cache/debconf/*-old \
    "$R"/var/log/*.log "$R"/var/log/apt/* "$R"/tmp/* "$R"/proc/* "$R"/sys/* "$R"/dev/*
# Every VM gets its own machine id at boot.
: >"$R/etc/machine-id"
rm -f "$R/var/lib/dbus/machine-id"
ln -sfn /lib/systemd/systemd "$R/init"
echo airlift >"$R/etc/hostname"
# Units that only slow a RAM-rooted appliance down (see FIELD-NOTES).
for unit in getty@.service serial-getty@.service getty-static.service getty.target \
    console-getty.service e2scrub_all.service e2scrub_all.timer e2scrub_reap.service \
    systemd-random-seed.service apt-daily.timer apt-daily-upgrade.timer \
    dpkg-db-backup.timer fstrim.timer e2scrub@.service systemd-tmpfiles-clean.timer \
    man-db.timer logrotate.timer; do
    ln -sfn /dev/null "$R/etc/systemd/system/$unit"
done
# Root in RAM: nothing to remount.
: >"$R/etc/fstab"

mv "$WORK/packages.txt.tmp" "$OUT/packages.txt"
touch "$OUT/.complete"
rm -rf "$DEST"
mv -T "$OUT" "$DEST"
make_images "$DEST"
make_demo_image "$DEST"
link_current
log "done"
printf '%s\n' "$DEST"
