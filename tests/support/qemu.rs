//! Booting images in QEMU and waiting for a marker on the serial console.
//!
//! * Acceleration: TCG unless `AIRLIFT_QEMU_ACCEL` says otherwise (this
//!   machine's `/dev/kvm` is a software PVM that cannot boot a stock
//!   kernel). CPU `qemu64,+rdrand` so the guest RNG is ready at once.
//! * The serial console goes to a file that is polled for the marker; the
//!   VM is killed once the marker is seen (after a short grace period for
//!   a guest that powers itself off), on timeout, and when dropped.
//! * At most [`max_parallel`] VMs run at once in one test process (2 by
//!   default: the machine has 2 cores), whatever the test threads do.
//! * Drive options are the ones measured to work (FIELD-NOTES): IDE CD,
//!   virtio disk, xHCI + usb-storage; OVMF with a writable VARS copy.

use std::fmt;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// OVMF firmware code (4 MiB build, no Secure Boot).
pub const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
/// OVMF variable store template (copied per VM).
pub const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";

/// Default hard timeout of one boot under TCG.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(180);

/// Which firmware boots the VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firmware {
    /// SeaBIOS (QEMU's default).
    Bios,
    /// OVMF (EDK II).
    Uefi,
}

/// How the image is attached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    /// IDE CD-ROM (El Torito).
    Cd,
    /// virtio-blk hard disk (MBR/GPT).
    Disk,
    /// USB stick on an xHCI controller.
    Usb,
}

impl fmt::Display for Firmware {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Firmware::Bios => "bios",
            Firmware::Uefi => "uefi",
        })
    }
}

impl fmt::Display for Media {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Media::Cd => "cd",
            Media::Disk => "disk",
            Media::Usb => "usb",
        })
    }
}

/// One VM to boot.
#[derive(Debug, Clone)]
pub struct Vm {
    pub firmware: Firmware,
    pub media: Media,
    /// The image to boot (attached read-only).
    pub image: PathBuf,
    pub memory_mib: u32,
    pub cpus: u32,
    pub timeout: Duration,
    /// Extra QEMU arguments (network devices …).
    pub extra_args: Vec<String>,
}

impl Vm {
    /// 1 GiB, 1 vCPU, [`DEFAULT_TIMEOUT`].
    pub fn new(firmware: Firmware, media: Media, image: &Path) -> Vm {
        Vm {
            firmware,
            media,
            image: image.to_path_buf(),
            memory_mib: 1024,
            cpus: 1,
            timeout: DEFAULT_TIMEOUT,
            extra_args: Vec::new(),
        }
    }
}

/// What a boot that reached its marker produced.
#[derive(Debug, Clone)]
pub struct Boot {
    /// The whole serial log.
    pub serial: String,
    /// The first line holding the marker.
    pub marker_line: String,
    /// From QEMU start to the marker.
    pub elapsed: Duration,
}

/// `-accel` value: `AIRLIFT_QEMU_ACCEL`, else `tcg`.
pub fn accel() -> String {
    std::env::var("AIRLIFT_QEMU_ACCEL").unwrap_or_else(|_| "tcg".to_string())
}

/// VMs at once per test process: `AIRLIFT_QEMU_PARALLEL`, else 2.
pub fn max_parallel() -> usize {
    std::env::var("AIRLIFT_QEMU_PARALLEL")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(2)
}

static SLOTS: Mutex<usize> = Mutex::new(0);
static FREED: Condvar = Condvar::new();

/// A running-VM slot, given back on drop.
struct Slot;

impl Slot {
    fn take() -> Slot {
        let mut used = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
        while *used >= max_parallel() {
            used = FREED.wait(used).unwrap_or_else(|e| e.into_inner());
        }
        *used += 1;
        Slot
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut used = SLOTS.lock().unwrap_or_else(|e| e.into_inner());
        *used -= 1;
        FREED.notify_one();
    }
}

/// Kills and reaps QEMU when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The QEMU command line for `vm` (without the serial and firmware-vars
/// paths, which [`boot_until`] adds).
pub fn qemu_args(vm: &Vm, ovmf_vars: Option<&Path>) -> Vec<String> {
    let image = vm.image.display().to_string();
    let mut a: Vec<String> = [
        "-accel",
        &accel(),
        "-cpu",
        "qemu64,+rdrand",
        "-m",
        &vm.memory_mib.to_string(),
        "-smp",
        &vm.cpus.to_string(),
        "-display",
        "none",
        "-monitor",
        "none",
        "-no-reboot",
        "-nodefaults",
        "-vga",
        "std",
        "-net",
        "none",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    if vm.firmware == Firmware::Uefi {
        let vars = ovmf_vars.expect("UEFI VMs need a VARS copy");
        a.push("-drive".into());
        a.push(format!("if=pflash,format=raw,readonly=on,file={OVMF_CODE}"));
        a.push("-drive".into());
        a.push(format!("if=pflash,format=raw,file={}", vars.display()));
    }
    match vm.media {
        Media::Cd => {
            a.push("-drive".into());
            a.push(format!(
                "file={image},media=cdrom,readonly=on,if=ide,index=2"
            ));
        }
        Media::Disk => {
            a.push("-drive".into());
            a.push(format!("file={image},format=raw,if=virtio,readonly=on"));
        }
        Media::Usb => {
            a.extend(["-device".into(), "qemu-xhci".into(), "-drive".into()]);
            a.push(format!("if=none,id=u0,file={image},format=raw,readonly=on"));
            a.extend(["-device".into(), "usb-storage,drive=u0,bootindex=0".into()]);
        }
    }
    a.extend(vm.extra_args.iter().cloned());
    a
}

/// Boots `vm` and waits for a serial line containing `marker`. Fails with
/// the tail of the serial log on timeout or when QEMU exits first.
pub fn boot_until(vm: &Vm, marker: &str) -> Result<Boot> {
    let _slot = Slot::take();
    let dir = tempfile::Builder::new()
        .prefix("airlift-qemu-")
        .tempdir()
        .context("making a temp folder for the VM")?;
    let serial = dir.path().join("serial.log");
    let vars = if vm.firmware == Firmware::Uefi {
        let v = dir.path().join("OVMF_VARS.fd");
        fs::copy(OVMF_VARS, &v)
            .with_context(|| format!("copying {OVMF_VARS} (apt-get install ovmf)"))?;
        Some(v)
    } else {
        None
    };
    let mut args = qemu_args(vm, vars.as_deref());
    args.push("-serial".into());
    args.push(format!("file:{}", serial.display()));

    let start = Instant::now();
    let child = Command::new("qemu-system-x86_64")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting qemu-system-x86_64 (apt-get install qemu-system-x86)")?;
    let mut running = Running(child);
    let label = format!("{}+{} {}", vm.firmware, vm.media, vm.image.display());

    loop {
        let log = read_lossy(&serial);
        if let Some(line) = log.lines().find(|l| l.contains(marker)) {
            let elapsed = start.elapsed();
            let marker_line = line.trim_end().to_string();
            // Give a guest that powers off after the marker a moment to
            // finish its output; then stop it.
            let grace = Instant::now();
            while grace.elapsed() < Duration::from_secs(5) {
                if running.0.try_wait()?.is_some() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            drop(running);
            return Ok(Boot {
                serial: read_lossy(&serial),
                marker_line,
                elapsed,
            });
        }
        if let Some(status) = running.0.try_wait()? {
            let mut stderr = String::new();
            if let Some(mut e) = running.0.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut stderr);
            }
            let log = read_lossy(&serial);
            if let Some(line) = log.lines().find(|l| l.contains(marker)) {
                return Ok(Boot {
                    marker_line: line.trim_end().to_string(),
                    serial: log,
                    elapsed: start.elapsed(),
                });
            }
            bail!(
                "{label}: QEMU exited ({status}) before {marker:?} after {:.0?}\nqemu stderr:\n{stderr}\n{}",
                start.elapsed(),
                tail(&log, 60)
            );
        }
        if start.elapsed() > vm.timeout {
            drop(running);
            bail!(
                "{label}: no {marker:?} on the serial console within {:?}; killed\n{}",
                vm.timeout,
                tail(&read_lossy(&serial), 60)
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn read_lossy(path: &Path) -> String {
    fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

/// The last `n` lines of a serial log, framed for a failure message.
pub fn tail(log: &str, n: usize) -> String {
    let lines: Vec<&str> = log.lines().collect();
    let from = lines.len().saturating_sub(n);
    format!(
        "--- serial log, last {} of {} lines ---\n{}\n--- end of serial log ---",
        lines.len() - from,
        lines.len(),
        lines[from..].join("\n")
    )
}

/// A copy of `iso` with its El Torito boot record (sector 17) zeroed, so
/// firmware can only boot it through the partition table (OVMF reads El
/// Torito on disks too).
pub fn without_el_torito(iso: &Path, out: &Path) -> Result<()> {
    fs::copy(iso, out).with_context(|| format!("copying {}", iso.display()))?;
    let mut f = fs::OpenOptions::new()
        .write(true)
        .open(out)
        .with_context(|| format!("opening {}", out.display()))?;
    use std::io::{Seek, SeekFrom};
    f.seek(SeekFrom::Start(17 * 2048))?;
    f.write_all(&[0u8; 2048])?;
    f.sync_all()?;
    Ok(())
}

/// The boot base made by `just base`: `AIRLIFT_BASE`, else
/// `${AIRLIFT_CACHE:-~/.cache/airlift}/base/current`. Panics with what to
/// run when it is missing: boot tests never skip silently.
pub fn airlift_base() -> PathBuf {
    let base = match std::env::var_os("AIRLIFT_BASE") {
        Some(b) => PathBuf::from(b),
        None => {
            let cache = std::env::var_os("AIRLIFT_CACHE")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
                        .join(".cache/airlift")
                });
            cache.join("base/current")
        }
    };
    check_base(&base).unwrap_or_else(|e| panic!("{e}"))
}

/// `base` resolved, if `just base` finished making it (its `.complete`
/// marker exists); otherwise a message saying what to run.
pub fn check_base(base: &Path) -> std::result::Result<PathBuf, String> {
    if !base.join(".complete").is_file() {
        return Err(format!(
            "the boot base {} is missing or incomplete: run `just base` (scripts/make-base.sh)",
            base.display()
        ));
    }
    fs::canonicalize(base).map_err(|e| format!("resolving {}: {e}", base.display()))
}

/// Runs `airlift build CONFIG -o OUT` with `AIRLIFT_BASE` set and a fixed
/// `SOURCE_DATE_EPOCH`, then `airlift verify OUT`, so every ISO the tests
/// boot also passes the check users run; panics with airlift's output on
/// either failure. Returns the build's time alone.
pub fn build_image(config: &Path, out: &Path) -> Duration {
    let airlift = crate::tools::binary("airlift");
    let start = Instant::now();
    let result = Command::new(&airlift)
        .arg("build")
        .arg(config)
        .arg("-o")
        .arg(out)
        .env("AIRLIFT_BASE", airlift_base())
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .output()
        .expect("running airlift build");
    assert!(
        result.status.success(),
        "airlift build {} failed ({}):\n{}",
        config.display(),
        result.status,
        String::from_utf8_lossy(&result.stderr)
    );
    let took = start.elapsed();
    let verify = Command::new(&airlift)
        .arg("verify")
        .arg(out)
        .output()
        .expect("running airlift verify");
    assert!(
        verify.status.success(),
        "airlift verify {} failed ({}):\n{}{}",
        out.display(),
        verify.status,
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    took
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drive_options_match_the_media() {
        let img = Path::new("/x.iso");
        let cd = qemu_args(&Vm::new(Firmware::Bios, Media::Cd, img), None).join(" ");
        assert!(
            cd.contains("file=/x.iso,media=cdrom,readonly=on,if=ide,index=2"),
            "{cd}"
        );
        assert!(!cd.contains("pflash"));
        let usb = qemu_args(
            &Vm::new(Firmware::Uefi, Media::Usb, img),
            Some(Path::new("/v.fd")),
        )
        .join(" ");
        assert!(
            usb.contains("qemu-xhci") && usb.contains("usb-storage,drive=u0"),
            "{usb}"
        );
        assert!(usb.contains("if=pflash,format=raw,file=/v.fd"), "{usb}");
        let disk = qemu_args(&Vm::new(Firmware::Bios, Media::Disk, img), None).join(" ");
        assert!(disk.contains("if=virtio"), "{disk}");
    }

    #[test]
    fn a_missing_base_says_to_run_just_base() {
        let dir = tempfile::tempdir().unwrap();
        let err = check_base(&dir.path().join("nope")).unwrap_err();
        assert!(err.contains("run `just base`"), "{err}");
        // Present but unfinished (no marker) is missing too.
        let err = check_base(dir.path()).unwrap_err();
        assert!(err.contains("incomplete"), "{err}");
        fs::write(dir.path().join(".complete"), "").unwrap();
        assert!(check_base(dir.path()).is_ok());
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let t = tail("a\nb\nc\n", 2);
        assert!(t.contains("last 2 of 3") && t.contains("b\nc"), "{t}");
    }
}
