//! Measurements of what instances cost, taken from the host (and, for VMs, from the guest's
//! own report): memory, disk, idle CPU, KSM. Pure readers of /proc, /sys and cgroups: they
//! know nothing of backends, and backends nothing of them.

pub mod cpu;
pub mod disk;
pub mod ksm;
pub mod memory;
