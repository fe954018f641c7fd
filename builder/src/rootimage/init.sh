#!/bin/sh
# airlift stage 1 (busybox): find the root filesystem image, on the boot
# media (found by its volume label, airlift.label=) or over HTTP
# (airlift.root=URL, checked against airlift.root.sha256=), mount it
# read-only under a tmpfs overlay and switch to systemd (or init=).
# Rendered by airlift (builder/src/rootimage/stage1.rs).
export PATH=/bin
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
# Seconds since the kernel started, for the boot timeline.
uptime_s() { read -r up _ </proc/uptime && echo "$up"; }
echo "AIRLIFT-STAGE1-START uptime=$(uptime_s)"

fail() {
    echo "AIRLIFT-STAGE1-ERROR $*"
    echo "airlift stage 1: a shell on the console; leaving it reboots"
    sh
    reboot -f
}

label="" root="" sum="" init=@INIT@
for word in $(cat /proc/cmdline); do
    case "$word" in
    init=*) init="${word#init=}" ;;
    airlift.label=*) label="${word#airlift.label=}" ;;
    airlift.root=*) root="${word#airlift.root=}" ;;
    airlift.root.sha256=*) sum="${word#airlift.root.sha256=}" ;;
    esac
done

# Load the driver of every device the kernel has found (as udev would),
# then the filesystems stage 1 needs. Run again while waiting: a USB
# controller's driver brings new devices with new aliases.
coldplug() {
    find /sys/devices -name modalias -exec cat {} + 2>/dev/null | sort -u |
        xargs modprobe -qa 2>/dev/null
    modprobe -qa @FILESYSTEMS@ 2>/dev/null
}

# The ISO 9660 volume id of a device ("CD001" at byte 32769, the label
# at 32808, space padded); empty when it holds no ISO 9660 volume.
iso_label() {
    [ "$(dd if="$1" bs=1 skip=32769 count=5 2>/dev/null)" = CD001 ] || return 0
    dd if="$1" bs=1 skip=32808 count=32 2>/dev/null | sed 's/ *$//'
}

find_media() {
    i=0
    while [ "$i" -lt @TRIES@ ]; do
        coldplug
        for name in $(ls /sys/class/block); do
            case "$name" in loop* | ram*) continue ;; esac
            [ -b "/dev/$name" ] || continue
            [ "$(iso_label "/dev/$name")" = "$label" ] && { echo "/dev/$name"; return 0; }
        done
        i=$((i + 1))
        sleep 0.5
    done
    return 1
}

# Bring up the first interface that gets a DHCP lease, fetch the image
# into RAM, check it, and leave the interface as found for stage 2.
fetch_root() {
    i=0
    while [ "$i" -lt @TRIES@ ]; do
        coldplug
        for dir in /sys/class/net/*; do
            iface="${dir##*/}"
            [ "$iface" = lo ] && continue
            ip link set "$iface" up
            udhcpc -i "$iface" -s /bin/airlift-udhcpc -q -n -t 5 -T 2 >/dev/null 2>&1 || continue
            echo "airlift stage 1: $iface is up, fetching $root (uptime=$(uptime_s))"
            wget -q -O "$1" "$root" || fail "could not fetch the root image $root over $iface"
            ip addr flush dev "$iface"
            ip link set "$iface" down
            return 0
        done
        i=$((i + 1))
        sleep 0.5
    done
    fail "no network interface got a DHCP lease to fetch the root image $root"
}

mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
mkdir -p @MEDIA@ /run/airlift/root-ro /run/airlift/root-rw
if [ -n "$root" ]; then
    [ -n "$sum" ] || fail "airlift.root=$root is given without airlift.root.sha256="
    image=/run/airlift/rootfs.squashfs
    fetch_root "$image"
    got=$(sha256sum "$image") && got="${got%% *}"
    [ "$got" = "$sum" ] || fail "the root image $root has sha256 $got, expected $sum"
else
    [ -n "$label" ] || fail "no airlift.label= (nor airlift.root=) on the kernel command line"
    echo "airlift stage 1: looking for the media labelled $label"
    dev=$(find_media) || fail "no ISO 9660 media labelled $label appeared within @SECONDS@ s"
    mount -t iso9660 -o ro "$dev" @MEDIA@ || fail "could not mount $dev (labelled $label)"
    image=@MEDIA@/@IMAGE@
    [ -f "$image" ] || fail "the media labelled $label on $dev has no /@IMAGE@"
fi
mount -t squashfs -o ro,loop "$image" /run/airlift/root-ro ||
    fail "could not mount the root image $image (squashfs)"
mount -t tmpfs -o mode=0755 tmpfs /run/airlift/root-rw
mkdir -p /run/airlift/root-rw/upper /run/airlift/root-rw/work /newroot
mount -t overlay -o lowerdir=/run/airlift/root-ro,upperdir=/run/airlift/root-rw/upper,workdir=/run/airlift/root-rw/work \
    overlay /newroot || fail "could not mount the overlay over the root image"
[ -x "/newroot$init" ] || fail "the root image has no $init (init=)"
echo "AIRLIFT-STAGE1-ROOT image=$image uptime=$(uptime_s)"
for m in run dev sys proc; do
    mount --move "/$m" "/newroot/$m" || fail "could not move /$m into the new root"
done
exec switch_root /newroot "$init"
