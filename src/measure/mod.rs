//! Measurements of what instances cost, taken from the host (and, for VMs, from the guest's
//! own report): memory, disk, idle CPU, KSM. Pure readers of /proc, /sys and cgroups: they
//! know nothing of backends, and backends nothing of them.

pub mod cpu;
pub mod disk;
pub mod isolation;
pub mod ksm;
pub mod memory;

#[cfg(test)]
mod testutil;

/// Kernel threads (PF_KTHREAD) running on the host now, as the agent counts them in a guest;
/// 0 if /proc cannot be read.
pub fn host_kthreads() -> u32 {
    crate::agent::count_kthreads().unwrap_or(0)
}
