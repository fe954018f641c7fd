#!/usr/bin/env bash
# `just demo`: a short guided tour. Builds image-configs/demo.yaml into
# out/demo.iso, boots it in QEMU (TCG) as host0 with its registry port
# (which also serves the status page at /) forwarded to this host's
# loopback, and once host0 prints AIRLIFT-HOST0-READY on the serial
# console, prints what to try from this host.
#
#   scripts/demo.sh [uefi|bios]       (`just demo`, `just firmware=bios demo`)
#
# Interactive (default): the serial console is this terminal; the demo
# image gives root a shell there (no password, demo only: overlays/demo).
# Quit QEMU with Ctrl-a x.
#
# AIRLIFT_DEMO_BATCH=1: no terminal. Boot, print the tour, then run its
# checks (the printed skopeo command, the status page and its JSON, a
# command in the root shell), power the VM off and exit 0 only if all
# passed. QEMU is killed on any exit.
#
# Environment:
#   AIRLIFT_DEMO_PORT     host port forwarded to the registry and status
#                         page (default 5000 if free, else the first free
#                         one of 5001-5099, then 40000-40999)
#   AIRLIFT_DEMO_ISO      the ISO to write and boot (default out/demo.iso)
#   AIRLIFT_DEMO_TIMEOUT  batch: seconds to wait for host0 (default 600)
#   AIRLIFT_BASE          the boot base (default: `just base`'s current one)
#   AIRLIFT_QEMU_ACCEL    QEMU accelerator (default tcg)
set -euo pipefail

cd "$(dirname "$0")/.."
firmware=${1:-uefi}
batch=${AIRLIFT_DEMO_BATCH:-}
[[ $batch == 0 ]] && batch=
config=image-configs/demo.yaml
iso=${AIRLIFT_DEMO_ISO:-out/demo.iso}
timeout=${AIRLIFT_DEMO_TIMEOUT:-600}
export AIRLIFT_BASE=${AIRLIFT_BASE:-$(readlink -f "${AIRLIFT_CACHE:-$HOME/.cache/airlift}/base/current")}

die() { printf 'demo: %s\n' "$*" >&2; exit 1; }
case $firmware in uefi | bios) ;; *) die "firmware must be uefi or bios, not '$firmware'" ;; esac
for tool in qemu-system-x86_64 ss curl skopeo; do
    command -v "$tool" >/dev/null || die "$tool not found: run \`just deps\`"
done

# Nothing listens on 127.0.0.1:$1 (or on all addresses).
port_free() { [[ -z $(ss -Hltn "sport = :$1") ]]; }

if [[ -n ${AIRLIFT_DEMO_PORT:-} ]]; then
    port=$AIRLIFT_DEMO_PORT
    port_free "$port" || die "AIRLIFT_DEMO_PORT=$port is in use on this host"
else
    port=
    for p in 5000 $(seq 5001 5099) $(seq 40000 40999); do
        if port_free "$p"; then port=$p; break; fi
    done
    [[ -n $port ]] || die "no free port in 5000-5099 or 40000-40999: set AIRLIFT_DEMO_PORT"
fi

# The registry's port inside the appliance (registry.port, default 5000).
guest_port=$(awk '/^registry:/ {r=1; next} /^[^ #]/ {r=0} r && $1 == "port:" {print $2; exit}' "$config")
guest_port=${guest_port:-5000}

mkdir -p "$(dirname "$iso")"
target/debug/airlift build "$config" -o "$iso"

# Two bundled images, as host0 serves them: under their full original
# name (registry host included) on its own port.
mapfile -t images < <(target/debug/airlift inspect "$iso" | awk '/^Images/ {i=1; next} i && /^  / {print $1}')
((${#images[@]} > 0)) || die "airlift inspect $iso lists no images"
inspect_image=${images[0]}
pull_image=${images[1]:-${images[0]}}

run=$(mktemp -d "${TMPDIR:-/tmp}/airlift-demo.XXXXXX")
qemu_pid=
watcher_pid=
drain_pid=
cleanup() {
    if [[ -n $watcher_pid ]]; then kill "$watcher_pid" 2>/dev/null || true; fi
    if [[ -n $qemu_pid ]] && kill -0 "$qemu_pid" 2>/dev/null; then
        kill "$qemu_pid" 2>/dev/null || true
        wait "$qemu_pid" 2>/dev/null || true
    fi
    if [[ -n $drain_pid ]]; then kill "$drain_pid" 2>/dev/null || true; fi
    rm -rf "$run"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

serial=$run/serial.log
: >"$serial"
args=(-accel "${AIRLIFT_QEMU_ACCEL:-tcg}" -cpu "qemu64,+rdrand" -smp 2 -m 2048
    -nodefaults -vga std -display none -no-reboot
    -drive "file=$iso,media=cdrom,readonly=on,if=ide,index=2"
    -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$port-:$guest_port"
    -device "virtio-net-pci,netdev=n0")
if [[ $firmware == uefi ]]; then
    cp /usr/share/OVMF/OVMF_VARS_4M.fd "$run/vars.fd"
    args+=(-drive "if=pflash,format=raw,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd"
        -drive "if=pflash,format=raw,file=$run/vars.fd")
fi

# The tour, once host0 is ready ($1: its READY line; $2: line end).
tour() {
    local announced=${1#*registry=} e=$2 where
    announced=${announced%% *}
    announced=${announced%%,*}
    where="its address on QEMU's private user network, which this host cannot reach."
    [[ $announced == *://127.* ]] && where="its own loopback: it found no network address."
    local lines=(
        ""
        "==================== airlift demo: host0 is ready ===================="
        "host0 announces its registry as $announced,"
        "$where"
        "This host reaches the same registry and status page through"
        "127.0.0.1:$port, forwarded to the VM's port $guest_port."
        "Try, in another terminal:"
        ""
        "  skopeo inspect --tls-verify=false docker://127.0.0.1:$port/$inspect_image"
        "  podman pull --tls-verify=false 127.0.0.1:$port/$pull_image"
        "  curl -k https://127.0.0.1:$port/airlift/v1/status"
        ""
        "Status page: https://127.0.0.1:$port/ (a browser warns first: the"
        "certificate comes from the appliance's own CA, hence --tls-verify=false"
        "and -k above)."
        "Root shell: press Enter here (the serial console; root, no password:"
        "the demo image only)."
        "Quit: Ctrl-a x (or type poweroff in the shell)."
        "======================================================================"
    )
    printf "%s$e" "${lines[@]}"
}

# The first READY line on the serial console (empty if none yet).
ready_line() { grep -a -m1 -o $'AIRLIFT-HOST0-READY[^\r]*' "$serial" || true; }

echo "demo: booting $iso ($firmware, QEMU ${AIRLIFT_QEMU_ACCEL:-tcg}); registry and status page on 127.0.0.1:$port"

if [[ -z $batch ]]; then
    echo "demo: host0 takes about a minute under TCG; a tour is printed when it is ready. Quit with Ctrl-a x."
    (
        until line=$(ready_line) && [[ -n $line ]]; do sleep 0.5; done
        # After the shell's login banner (up to 30 s), so the tour is the
        # last thing on the screen.
        for _ in $(seq 60); do
            grep -aqE 'root@[^ ]*:~# ' "$serial" && break
            sleep 0.5
        done
        tour "$line" $'\r\n'
    ) &
    watcher_pid=$!
    rc=0
    qemu-system-x86_64 "${args[@]}" \
        -chardev "stdio,id=s0,mux=on,signal=off,logfile=$serial" \
        -serial chardev:s0 -mon chardev=s0,mode=readline || rc=$?
    exit "$rc"
fi

# Batch: the serial console on a pipe pair (we type into .in), logged.
mkfifo "$run/serial.in" "$run/serial.out"
cat "$run/serial.out" >/dev/null &
drain_pid=$!
qemu-system-x86_64 "${args[@]}" -monitor none \
    -chardev "pipe,id=s0,path=$run/serial,logfile=$serial" -serial chardev:s0 \
    </dev/null 2>"$run/qemu.err" &
qemu_pid=$!

fail() {
    printf 'demo: FAILED: %s\n--- serial console, last 40 lines ---\n' "$*" >&2
    tail -n 40 "$serial" | tr -d '\r' >&2
    cat "$run/qemu.err" >&2
    exit 1
}
# Wait (up to $2 s) until the serial log matches the regex $1.
wait_serial() {
    local deadline=$((SECONDS + $2))
    until grep -aqE "$1" "$serial"; do
        kill -0 "$qemu_pid" 2>/dev/null || fail "QEMU exited before /$1/"
        ((SECONDS < deadline)) || fail "no /$1/ on the serial console within $2 s"
        sleep 1
    done
}

start=$SECONDS
wait_serial AIRLIFT-HOST0-READY "$timeout"
echo "demo: host0 ready after $((SECONDS - start)) s: $(ready_line)"
tour "$(ready_line)" $'\n'

echo "demo: running the tour's checks"
# 1. The skopeo command, as printed (retried while slirp's forward settles).
deadline=$((SECONDS + 120))
until out=$(skopeo inspect --tls-verify=false "docker://127.0.0.1:$port/$inspect_image" 2>&1); do
    ((SECONDS < deadline)) || fail "skopeo inspect kept failing: $out"
    sleep 2
done
digest=$(grep -o '"Digest": "sha256:[0-9a-f]*"' <<<"$out" | head -n1)
[[ -n $digest ]] || fail "skopeo inspect printed no digest: $out"
echo "demo: check skopeo inspect 127.0.0.1:$port/$inspect_image ok: $digest"

# 2. The status page and the JSON it shows.
page=$(curl -fsSk --max-time 30 "https://127.0.0.1:$port/") || fail "GET / failed"
title=$(grep -o '<title>[^<]*</title>' <<<"$page" || true)
[[ $title == '<title>airlift appliance</title>' ]] || fail "the status page has no airlift title: ${page:0:300}"
status=$(curl -fsSk --max-time 30 "https://127.0.0.1:$port/airlift/v1/status") || fail "GET /airlift/v1/status failed"
state=$(grep -o '"state": "[a-z-]*"' <<<"$status" | head -n1)
name=$(grep -o '"name": "[^"]*"' <<<"$status" | head -n1)
registry=$(grep -o '"registry": "[^"]*"' <<<"$status" | head -n1)
[[ -n $state && -n $name ]] || fail "unexpected status JSON: $status"
echo "demo: check status page https://127.0.0.1:$port/ ok: $title; status $state $name $registry"

# 3. The root shell on the serial console.
wait_serial 'root@[^ ]*:~# ' 120
# shellcheck disable=SC2016 # $(...) runs in the guest's shell, not here.
printf 'echo "AIRLIFT-DEMO-SHELL uid=$(id -u) host0=$(systemctl is-active airlift-host0)"\r' >"$run/serial.in"
wait_serial 'AIRLIFT-DEMO-SHELL uid=0 host0=active' 60
echo "demo: check root shell on the serial console ok: $(grep -a -o 'AIRLIFT-DEMO-SHELL uid=0 host0=active' "$serial" | head -n1)"

# Power off through the shell (QEMU runs with -no-reboot and exits).
printf 'poweroff\r' >"$run/serial.in"
deadline=$((SECONDS + 90))
while kill -0 "$qemu_pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 1; done
if kill -0 "$qemu_pid" 2>/dev/null; then
    echo "demo: the VM did not power off within 90 s; killing QEMU"
else
    echo "demo: the VM powered off"
fi
echo "demo: batch tour passed in $((SECONDS - start)) s from boot"
