# airlift's tasks. Tiers: `just check` (fmt, clippy, and every test with no
# VM, namespace, root device or built server), `just test` (everything CI
# runs, QEMU boots included), `just demo`.

set shell := ["bash", "-euo", "pipefail", "-c"]

# Where `just base` puts the kernel, boot loaders and root filesystems.
cache := env_var_or_default("AIRLIFT_CACHE", env_var("HOME") + "/.cache/airlift")
base := cache + "/base/current"

# `uefi` or `bios`, for `just demo`.
firmware := "uefi"

default:
    @just --list

# Install every Debian package the build, tests, demo and bench use (only what is missing; waits for apt's lock; QEMU matched to the installed qemu-utils).
deps:
    scripts/deps.sh

# Assemble the boot base (kernel, modules, boot loaders, root filesystems) and the demo base image (examples/base/demo/Containerfile, built with buildah) into the cache.
base:
    scripts/make-base.sh

# Formatting, lints, and every test that needs no VM, network namespace, root-only device or built server (.config/nextest.toml, profile check).
check: deps build nextest
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings
    cargo nextest run --workspace --profile check

# cargo-nextest, the runner of `just check` (installed only when missing).
nextest:
    @command -v cargo-nextest >/dev/null || cargo install cargo-nextest --locked

# Build the binaries (the QEMU tests run the real `airlift build`).
build:
    cargo build --workspace --bins

# Garage, the S3 server the registry's S3 tests run against (built once, ~6-17 min).
garage:
    #!/usr/bin/env bash
    set -euo pipefail
    if ! command -v garage >/dev/null && [ ! -x "$HOME/.cargo/bin/garage" ]; then
        echo "garage: building Garage (the S3 server tests/s3/registry_s3.rs runs against) with cargo install, once: about 10 minutes on 2 cores"
        trap 'echo "garage: cargo install garage failed (see above); crates.io must be reachable, and a C compiler installed (build-essential)" >&2' ERR
        CARGO_PROFILE_RELEASE_OPT_LEVEL=1 CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 CARGO_PROFILE_RELEASE_DEBUG=false \
            cargo install garage --locked --no-default-features --features bundled-libs,lmdb
    fi

# The OCI distribution-spec conformance suite, current and v1.1.1, built offline from ../shared/oci-conformance (skipped when both binaries exist; build.sh would relink them).
oci-suite:
    #!/usr/bin/env bash
    set -euo pipefail
    dir="${OCI_CONFORMANCE_DIR:-$HOME/.cache/oci-conformance}"
    if [ -x "$dir/conformance.bin" ] && [ -x "$dir/conformance-v111.test" ]; then
        echo "oci-suite: built in $dir"
        exit 0
    fi
    ../shared/oci-conformance/build.sh "$dir"
    ../shared/oci-conformance/build.sh --v111 "$dir"

# Everything CI runs, QEMU boots included.
test: deps base build garage oci-suite
    cargo test --workspace

# The OCI conformance suite (current and v1.1.1, optional checks on) against airlift-firstboot serve; reports in target/test-output/oci-conformance.
conformance: build oci-suite
    cargo test -p airlift-integration --test conformance -- --nocapture

# Build the smoke ISO and boot it every way (BIOS/UEFI x CD/disk/USB).
boot-matrix: base build
    cargo test -p airlift-integration --test vm -- boot_matrix:: --nocapture

# Secure Boot with a site's own keys: the smoke ISO signed with Debian's OVMF test key boots under that key and is refused under Microsoft's; inspect names the chains (~1.5 min).
own-keys: base build
    cargo test -p airlift-integration --test vm -- own_keys:: --nocapture --test-threads 1

# Boot the demo ISO as host0 under QEMU and pull a bundle image through its forwarded registry port.
e2e-host0: base build
    cargo test -p airlift-integration --test vm -- host0_qemu:: --nocapture

# host0 with a 1 GiB root filesystem (incompressible padding) read from the media as a squashfs image: boots, reports ready, RAM in use printed.
e2e-root-1g: base build
    cargo test -p airlift-integration --test vm -- root_image::host0_boots_a_1gib_root_from_the_media --nocapture

# The root filesystem on the media against in the initramfs (base.rootOn), for the demo and a 1 GiB root: initramfs and ISO sizes, time to ready, RAM in use (four boots; figures for benchmarks/RESULTS.md).
measure-root: base build
    cargo test -p airlift-integration --test vm -- root_image::measure_root_layouts --ignored --nocapture

# Secure Boot with Microsoft's keys (OVMF enforcing): the demo ISO boots through shim and signed GRUB from a CD and a USB stick to host0 ready, status says enabled; a kernel with one byte flipped is refused (2 to 5.5 min).
secure-boot: base build
    cargo test -p airlift-integration --test vm -- secure_boot:: --nocapture --test-threads 1

# The Kubernetes node base (examples/base/k8s-node): built with buildah on the demo's base image, booted as host0 in QEMU; containerd runs and pulls through host0's mirror.
k8s-node: base build
    cargo test -p airlift-integration --test vm -- k8s_node_base:: --nocapture --test-threads 1

# host0's data disk in QEMU: a blank disk formatted and loaded, a push kept across a reboot without the ISO, a disk with data left alone, no disk = media only.
e2e-storage: base build
    cargo test -p airlift-integration --test vm -- e2e_storage:: --nocapture --test-threads 1

# Server hardware with the default module set (image-configs/hardware-matrix.yaml names none): q35 host0 on AHCI + NVMe + igb netboots a node on e1000e; host0 from a USB stick on xHCI with its data disk behind MegaRAID.
hardware-matrix: base build
    cargo test -p airlift-integration --test vm -- hardware_matrix:: --nocapture --test-threads 1

# Build image-configs/demo.yaml into out/demo.iso and boot it as host0: registry and status page forwarded to 127.0.0.1, a tour printed once it is ready, the serial console (a root shell, demo only) here; Ctrl-a x quits (`just firmware=bios demo`; settings in scripts/demo.sh).
demo: deps base build
    AIRLIFT_BASE="$(readlink -f {{base}})" scripts/demo.sh {{firmware}}

# `just demo` with no terminal (AIRLIFT_DEMO_BATCH=1): the tour printed, its skopeo command, the status page and the root shell checked, QEMU gone after.
demo-tour: base build
    cargo test -p airlift-integration --test vm -- demo_tour:: --nocapture

# Netboot end to end: host0 from the ISO serves DHCP/iPXE/HTTP to a BIOS and a UEFI node on a private link; both join and pull through its mirror offline (~15 min cap).
e2e: deps base build
    cargo test -p airlift-integration --test vm -- e2e_netboot:: --nocapture

# Registry HA in QEMU: host0 netboots a replica and a node; a push reaches the replica; host0 is killed and the node still pulls through the replica (failover time printed).
e2e-ha: deps base build
    cargo test -p airlift-integration --test vm -- e2e_ha:: --nocapture

# Day two in QEMU: host0 boots release 1 with a data disk, a node netboots; release 2's update ISO put in a second CD drive is loaded with no reboot and the node pulls the new tags; rollback and forward, gc, backup, then a restore onto a blank data disk (figures printed).
e2e-update: deps base build
    cargo test -p airlift-integration --test vm -- e2e_update:: --nocapture --test-threads 1

# Figures beside cat, xorriso, distribution v3 and docker-registry (never pass/fail) into benchmarks/RESULTS.md; AIRLIFT_BENCH_QUICK=1 for a smoke run.
bench: deps base
    test -x /usr/bin/time || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends time; }
    test -x "$HOME/.cache/airlift-peers/bin/registry" || nice -n 19 ../shared/peers/build.sh
    cargo build --release -p airlift-builder -p airlift-firstboot -p airlift-bench
    target/release/airlift-bench

# cargo-fuzz, for `just fuzz` (installed only when missing; it builds with nightly when installed, else stable with RUSTC_BOOTSTRAP=1).
fuzz-tools:
    @command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked

# Fuzz the parsers (fuzz/): `just fuzz` runs every target for `seconds` each, `just fuzz config 600` one; finds go to fuzz/target/new-corpus (fold them in with `cargo fuzz cmin`), crashes to fuzz/artifacts. `just test` replays fuzz/corpus (tests/loopback/fuzz_corpus.rs).
fuzz target="all" seconds="180": fuzz-tools
    #!/usr/bin/env bash
    set -euo pipefail
    cd fuzz
    # Nightly when installed; else the stable toolchain with RUSTC_BOOTSTRAP
    # (cargo-fuzz's flags are nightly-only; -s none needs no sanitizer runtime).
    if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then tc=+nightly; else tc=+stable; export RUSTC_BOOTSTRAP=1; fi
    if [ "{{target}}" = all ]; then targets=$(cargo $tc fuzz list); else targets="{{target}}"; fi
    for t in $targets; do
        mkdir -p "target/new-corpus/$t" "corpus/$t"
        echo "fuzz: $t for {{seconds}} s"
        nice cargo $tc fuzz run -s none "$t" "target/new-corpus/$t" "corpus/$t" -- \
            -max_total_time={{seconds}} -timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1
    done
