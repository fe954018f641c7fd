//! QEMU for the tests, one module for every way they boot: the machine
//! and its command line, the VM slots that bound how many run at once in
//! one process, a running VM and its serial console, one VM booted until
//! a marker, a cluster of VMs on a private link, the ISOs they boot
//! (built once per image config and process), and two ways into a running
//! VM: QMP (change a CD) and a test-only command channel on ttyS1.

pub mod boot;
pub mod cluster;
pub mod guest_shell;
pub mod image;
pub mod machine;
pub mod qmp;
pub mod running;
pub mod serial;
pub mod slots;

pub use boot::{boot_until, Boot};
pub use cluster::{get_json, wait_for, Cluster};
pub use guest_shell::GuestShell;
pub use image::{airlift_base, build_image, built, check_base, without_el_torito};
pub use machine::{
    accel, qemu_args, Firmware, Media, Vm, DEFAULT_TIMEOUT, OVMF_CODE, OVMF_CODE_SECURE,
    OVMF_CODE_SNAKEOIL, OVMF_VARS, OVMF_VARS_MS, OVMF_VARS_SNAKEOIL,
};
pub use qmp::Qmp;
pub use running::{start, Running};
pub use serial::{read_lossy, tail, wait_serial, Serial};
pub use slots::{max_parallel, Slot};
