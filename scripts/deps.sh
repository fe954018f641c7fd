#!/usr/bin/env bash
# Install every Debian package that airlift's build, tests, demo and
# benchmarks run, on any Debian 12 machine, idempotently: only what is
# missing is installed, and a second run does nothing.
#
# QEMU comes as one consistent release. Debian's QEMU packages of one
# release refuse older siblings (qemu-utils 10 from bookworm-backports
# "Breaks: qemu-system-common (< 1:8.0)"), so qemu-system-x86 is taken
# from the suite the installed qemu-utils came from; bookworm-backports is
# added on the mirror already configured for bookworm when it is needed
# and missing.
#
# Another apt or dpkg run holding the lock is waited for (up to
# $AIRLIFT_APT_LOCK_TIMEOUT seconds, default 600), not failed on.
#
#   scripts/deps.sh            install what is missing
#   scripts/deps.sh --list     print every package, one a line, and exit
set -euo pipefail

lock_timeout=${AIRLIFT_APT_LOCK_TIMEOUT:-600}

# What each package is for. One group a line: NAME|why|packages.
groups=(
  "iso|the ISO writer's boot loaders and tools, and its checks|xorriso isolinux syslinux-common syslinux-efi systemd-boot-efi ipxe gdisk dosfstools mtools genisoimage cpio zstd binutils"
  "secureboot|signing boot loaders and unified kernel images with a site's own keys, and checking signatures (faketime freezes sbsign's clock at the build epoch, so signatures are reproducible)|sbsigntool faketime"
  "rootfs|checking the root filesystem image with the reference tools|squashfs-tools"
  "base|just base: the boot base from Debian packages, and the demo base image built from examples/base/demo/Containerfile (buildah is also a client the registry tests push with)|debootstrap buildah"
  "clients|real registry clients and registries the tests pull and push with|skopeo podman umoci containerd docker-registry busybox-static curl openssl jq"
  "qemu|QEMU boots (BIOS and UEFI, Secure Boot firmware)|ovmf"
  "storage|host0's data-disk tests format and probe real devices|e2fsprogs xfsprogs btrfs-progs lvm2 cryptsetup-bin fdisk mdadm util-linux"
  "network|the virtual-IP and netboot tests in network namespaces|iproute2 keepalived"
  "status|the status page is rendered in a real browser|chromium"
  "bench|just bench: load generator and peak-memory readings|wrk time"
  "ci-recipe|the CI recipe's steps (examples/ci, run by tests/loopback/ci_recipe.rs): the config rendered with envsubst, git for the checkout|gettext-base git"
)

# Services some packages enable on install. The tests run these programs
# only inside their own namespaces or on loop devices, never as daemons on
# this machine's own links and disks.
quiet_services=(keepalived.service mdmonitor.service mdcheck_start.timer mdcheck_continuous.timer mdmonitor-oneshot.timer)

log() { printf 'deps: %s\n' "$*"; }
die() { printf 'deps: error: %s\n' "$*" >&2; exit 1; }

all_packages() {
  local g
  for g in "${groups[@]}"; do
    tr ' ' '\n' <<<"${g##*|}"
  done
  printf '%s\n' qemu-system-x86 qemu-utils
}

if [[ ${1:-} == --list ]]; then
  all_packages
  exit 0
fi
[[ $# -eq 0 ]] || die "usage: scripts/deps.sh [--list]"

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
version() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || true; }

apt_get() {
  DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout="$lock_timeout" \
    -o Acquire::Retries=3 "$@"
}

on_error() {
  cat >&2 <<EOF
deps: error: installing packages failed (see apt's message above).
  - "Could not get lock": another apt run held it longer than ${lock_timeout}s;
    wait for it, or raise AIRLIFT_APT_LOCK_TIMEOUT.
  - "Unable to locate package" or "has no installation candidate": run
    apt-get update, and check that /etc/apt/sources.list(.d) has Debian 12
    (bookworm) main.
  - "Breaks" or "held packages": a QEMU from another suite is installed;
    'apt-cache policy qemu-utils qemu-system-x86' shows which.
EOF
}
trap on_error ERR

[[ $(id -u) -eq 0 ]] || {
  missing=()
  for p in $(all_packages); do installed "$p" || missing+=("$p"); done
  (( ${#missing[@]} == 0 )) && exit 0
  die "missing ${missing[*]}; run as root (apt-get install needs it)"
}

# apt-get update takes the lists lock, which DPkg::Lock::Timeout does not
# cover (apt 2.6): wait for it here, the same time as for dpkg's lock.
apt_update() {
  local deadline=$((SECONDS + lock_timeout)) err said=0
  err=$(mktemp)
  until apt_get update -qq 2>"$err"; do
    if grep -q 'Could not get lock' "$err" && (( SECONDS < deadline )); then
      (( said++ )) || log "apt's package lists are locked by another apt run; waiting up to ${lock_timeout}s"
      sleep 5
      continue
    fi
    cat "$err" >&2
    rm -f "$err"
    return 1
  done
  cat "$err" >&2
  rm -f "$err"
}

updated=0
update_once() {
  if (( !updated )); then
    log "apt-get update (package lists)"
    apt_update
    updated=1
  fi
}

have_backports() { apt-cache policy 2>/dev/null | grep -q ' bookworm-backports/main '; }

# The mirror apt already uses for bookworm, from deb822 or one-line sources.
bookworm_mirror() {
  local uri=""
  if compgen -G '/etc/apt/sources.list.d/*.sources' >/dev/null; then
    uri=$(awk 'BEGIN{RS="";FS="\n"}
      /(^|\n)Suites:[^\n]*bookworm([ \n]|$)/ {
        for (i = 1; i <= NF; i++) if ($i ~ /^URIs:/) { sub(/^URIs:[ \t]*/, "", $i); split($i, a, " "); print a[1]; exit }
      }' /etc/apt/sources.list.d/*.sources)
  fi
  if [[ -z $uri ]] && compgen -G '/etc/apt/sources.list*' >/dev/null; then
    uri=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
      awk '$1 == "deb" && $0 ~ / bookworm / { for (i = 2; i <= NF; i++) if ($i ~ /^[a-z]+:\/\//) { print $i; exit } }')
  fi
  printf '%s' "$uri"
}

ensure_backports() {
  update_once
  have_backports && return 0
  local uri
  uri=$(bookworm_mirror)
  [[ -n $uri ]] || die "qemu-utils comes from bookworm-backports but apt has no bookworm source to add backports beside; add 'bookworm-backports main' to /etc/apt/sources.list.d/ yourself"
  log "adding bookworm-backports on $uri (the installed qemu-utils comes from there)"
  local f=/etc/apt/sources.list.d/airlift-backports.sources tmp
  tmp=$(mktemp /etc/apt/sources.list.d/.airlift-backports.XXXXXX)
  cat >"$tmp" <<EOF
# Added by airlift's scripts/deps.sh: QEMU must match the installed qemu-utils.
Types: deb
URIs: $uri
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  chmod 0644 "$tmp"
  sync "$tmp"
  mv -f "$tmp" "$f"
  updated=0
  update_once
  have_backports || die "apt still lists no bookworm-backports after adding $f; check that $uri serves it"
}

# QEMU: one release for qemu-system-x86 and qemu-utils.
qemu_target=()
utils_version=$(version qemu-utils)
system_version=$(version qemu-system-x86)
if [[ -n $system_version && $system_version == "$utils_version" ]]; then
  : # consistent already
elif [[ -n $utils_version ]] && dpkg --compare-versions "$utils_version" ge 1:8; then
  ensure_backports
  qemu_target=(-t bookworm-backports)
  log "installing qemu-system-x86 from bookworm-backports to match qemu-utils $utils_version (QEMU boots in the tests and the demo)"
  apt_get install -y --no-install-recommends "${qemu_target[@]}" qemu-system-x86 qemu-utils
else
  update_once
  log "installing qemu-system-x86 and qemu-utils from bookworm (QEMU boots in the tests and the demo)"
  apt_get install -y --no-install-recommends qemu-system-x86 qemu-utils
fi

newly=()
for g in "${groups[@]}"; do
  name=${g%%|*}
  rest=${g#*|}
  why=${rest%%|*}
  missing=()
  for p in ${g##*|}; do installed "$p" || missing+=("$p"); done
  (( ${#missing[@]} )) || continue
  update_once
  log "installing ${missing[*]} ($name: $why)"
  apt_get install -y --no-install-recommends "${missing[@]}"
  newly+=("${missing[@]}")
done

if (( ${#newly[@]} )); then
  for s in "${quiet_services[@]}"; do
    systemctl disable --now "$s" >/dev/null 2>&1 || true
  done
fi

v=$(version qemu-system-x86)
[[ $v == "$(version qemu-utils)" ]] || die "qemu-system-x86 $v and qemu-utils $(version qemu-utils) differ; 'apt-cache policy qemu-utils qemu-system-x86' shows where each comes from"
log "all packages present (QEMU $v)"
