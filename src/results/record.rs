//! The records isobench writes: one struct per file row, serialised by serde into CSV and JSON
//! alike so the two can never drift. Every numeric field carries its unit in its name, and its
//! definition lives in [`DEFINITIONS`], the single place the README and reports read it from.

use serde::{Deserialize, Serialize};

/// One row of `samples.csv`: one instance in one repetition of one batch of N.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub run_id: String,
    pub scenario: String,
    pub backend: String,
    /// `kvm` or `tcg` for VMs; `none` for backends that run on the host kernel.
    pub accel: String,
    pub n: u32,
    pub rep: u32,
    pub instance: u32,
    pub ok: bool,
    pub error: String,
    pub startup_ms: Option<f64>,
    pub teardown_ms: Option<f64>,
    pub spawn_ms: Option<f64>,
    pub first_output_ms: Option<f64>,
    pub setup_ms: Option<f64>,
    pub exec_ms: Option<f64>,
    pub agent_uptime_s: Option<f64>,
    pub kernel_release: String,
    pub boot_id: String,
    pub hostname: String,
    pub pid: Option<i32>,
    pub guest_mem_total_kib: Option<u64>,
    pub guest_mem_used_kib: Option<u64>,
    pub guest_kernel_kib: Option<u64>,
    pub guest_kthreads: Option<u32>,
    pub pss_kib: Option<u64>,
    pub uss_kib: Option<u64>,
    pub rss_kib: Option<u64>,
    pub cgroup_mem_kib: Option<u64>,
    pub host_avail_kib: Option<f64>,
    pub host_slab_kib: Option<f64>,
    pub host_anon_kib: Option<f64>,
    pub vmm_overhead_kib: Option<u64>,
    pub disk_private_kib: Option<u64>,
    pub disk_shared_kib: Option<u64>,
    pub disk_full_copy_kib: Option<u64>,
    pub idle_cpu_ms_per_s: Option<f64>,
    // The isolation read back from the host while the instance ran (measure/isolation.rs).
    // Defaulted so that runs written before these columns existed still load.
    #[serde(default)]
    pub security: String,
    #[serde(default)]
    pub cap_eff: String,
    #[serde(default)]
    pub cap_bnd: String,
    #[serde(default)]
    pub cap_inh: String,
    #[serde(default)]
    pub cap_amb: String,
    #[serde(default)]
    pub no_new_privs: Option<bool>,
    #[serde(default)]
    pub seccomp: String,
    #[serde(default)]
    pub seccomp_filters: Option<u32>,
    #[serde(default)]
    pub ns_private: String,
    #[serde(default)]
    pub devices: String,
    #[serde(default)]
    pub probe: String,
}

/// One row of `kernel.csv`: kernel-level redundancy of one batch (backend, N, repetition).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KernelRow {
    pub run_id: String,
    pub backend: String,
    pub accel: String,
    pub n: u32,
    pub rep: u32,
    pub distinct_kernels: u32,
    pub host_kthreads_before: u32,
    pub host_kthreads_with: u32,
    pub guest_kthreads_total: Option<u64>,
    pub host_kernel_kib_delta: Option<i64>,
    pub guest_kernel_kib_total: Option<u64>,
    pub kernel_kib_per_kernel: Option<f64>,
    pub ksm_pages_sharing: Option<u64>,
    pub ksm_shared_kib: Option<u64>,
    pub ksm_settled: Option<bool>,
    pub pss_kib_sum: Option<u64>,
    pub host_avail_kib_delta: Option<i64>,
    pub measure_ms: Option<f64>,
}

/// One row of `syscalls.csv`: the cost of one system-call operation measured by the agent of
/// one instance (workload `syscalls`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SyscallRow {
    pub run_id: String,
    pub backend: String,
    pub accel: String,
    pub security: String,
    pub n: u32,
    pub rep: u32,
    pub instance: u32,
    /// One of agent::syscalls::OPS.
    pub op: String,
    pub ns_per_op: f64,
    /// How many operations were timed.
    pub ops: u64,
}

/// One row of `until.csv`: how far an open-ended density sweep got, and why it stopped.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UntilRow {
    pub run_id: String,
    pub backend: String,
    pub accel: String,
    pub n_reached: u32,
    pub stop_reason: String,
    pub mem_available_kib_at_stop: u64,
    /// Instances added per step. Optional (like the two below) so that an until.csv written
    /// before these columns existed still loads.
    #[serde(default)]
    pub step: Option<u32>,
    #[serde(default)]
    pub mem_available_kib_at_start: Option<u64>,
    #[serde(default)]
    pub mem_available_floor_kib: Option<u64>,
}

/// One row of `summary.csv`: the samples of one backend (and accelerator) at one N, over all
/// repetitions. Statistics cover the rows with `ok = true` only.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SummaryRow {
    pub backend: String,
    pub accel: String,
    pub n: u32,
    pub count: u32,
    pub ok: u32,
    pub startup_ms_mean: Option<f64>,
    pub startup_ms_sd: Option<f64>,
    pub startup_ms_p50: Option<f64>,
    pub startup_ms_p90: Option<f64>,
    pub startup_ms_p99: Option<f64>,
    pub startup_ms_min: Option<f64>,
    pub startup_ms_max: Option<f64>,
    pub teardown_ms_mean: Option<f64>,
    pub teardown_ms_p50: Option<f64>,
    /// Wall time from the first launch of the batch until all N were ready (mean over reps).
    pub batch_ready_ms_mean: Option<f64>,
    pub pss_kib_mean: Option<f64>,
    pub uss_kib_mean: Option<f64>,
    pub rss_kib_mean: Option<f64>,
    pub cgroup_mem_kib_mean: Option<f64>,
    pub host_avail_kib_mean: Option<f64>,
    pub vmm_overhead_kib_mean: Option<f64>,
    pub guest_kernel_kib_mean: Option<f64>,
    pub disk_private_kib_mean: Option<f64>,
    pub disk_shared_kib: Option<f64>,
    pub idle_cpu_ms_per_s_mean: Option<f64>,
}

/// Definition and unit of every figure isobench writes: `(column, unit, definition)`.
/// The README's definitions table is checked against this list by a test.
pub const DEFINITIONS: &[(&str, &str, &str)] = &[
    (
        "startup_ms",
        "ms",
        "CLOCK_MONOTONIC in the harness just before the spawn (clone, fork+exec, exec of runc or qemu) until the agent's `ready` line is read by the harness",
    ),
    (
        "spawn_ms",
        "ms",
        "phase: from the same start until clone/fork returned in the harness",
    ),
    (
        "first_output_ms",
        "ms",
        "phase: from the same start until the first byte of the instance's output reached the harness (for a VM, its serial console: the guest kernel is running)",
    ),
    (
        "setup_ms",
        "ms",
        "phase (container): from the same start until the child reported its filesystems ready (overlay, /proc, /dev, masks, pivot_root done)",
    ),
    (
        "exec_ms",
        "ms",
        "phase (container): from the same start until the child reported it is about to exec the agent (cgroup joined, capabilities dropped)",
    ),
    (
        "teardown_ms",
        "ms",
        "from the kill signal until the instance's processes are reaped and its cgroup, overlay and files are removed",
    ),
    (
        "agent_uptime_s",
        "s",
        "/proc/uptime of the kernel the agent runs on, read by the agent just before `ready` (host uptime for containers, guest uptime for VMs)",
    ),
    (
        "guest_mem_total_kib",
        "KiB",
        "vm only: MemTotal of the guest kernel's /proc/meminfo at ready",
    ),
    (
        "guest_mem_used_kib",
        "KiB",
        "vm only: MemTotal - MemAvailable of the guest at ready",
    ),
    (
        "guest_kernel_kib",
        "KiB",
        "vm only: Slab + KernelStack + PageTables of the guest at ready: the guest kernel's own memory",
    ),
    (
        "guest_kthreads",
        "count",
        "vm only: kernel threads (PF_KTHREAD) running in the guest at ready",
    ),
    (
        "pss_kib",
        "KiB",
        "sum of Pss over every host process of the instance (container, oci: its cgroup's processes; vm: the qemu process; process: the process and its children), from /proc/PID/smaps_rollup, after the workload ran",
    ),
    (
        "uss_kib",
        "KiB",
        "sum of Private_Clean + Private_Dirty over the same processes: memory only this instance uses",
    ),
    (
        "rss_kib",
        "KiB",
        "sum of Rss over the same processes: shared pages counted in full",
    ),
    (
        "cgroup_mem_kib",
        "KiB",
        "memory charged to the instance's own cgroup (v2 memory.current, v1 memory.usage_in_bytes), kernel memory charged there included; empty for backends without one",
    ),
    (
        "host_avail_kib",
        "KiB",
        "the decrease of the host's available memory (MemAvailable plus the free pages on the per-CPU lists, /proc/zoneinfo `count`, which MemAvailable leaves out) for the whole batch of N, divided by N; each reading taken after dropping caches and waiting until it moves by less than 1 MiB in 100 ms (the method gVisor and Kata use, plus the per-CPU lists)",
    ),
    (
        "host_slab_kib",
        "KiB",
        "the host's Slab increase for the batch, divided by N (same readings)",
    ),
    (
        "host_anon_kib",
        "KiB",
        "the host's AnonPages increase for the batch, divided by N (same readings)",
    ),
    (
        "vmm_overhead_kib",
        "KiB",
        "vm only: qemu's private memory (uss_kib) minus the resident part of the mapping that backs guest RAM",
    ),
    (
        "disk_private_kib",
        "KiB",
        "allocated bytes of the instance's private copy-on-write layer (overlay upper dir, qcow2 overlay) after the workload ran",
    ),
    (
        "disk_shared_kib",
        "KiB",
        "allocated bytes of what every instance of the backend shares (image and agent layers, or the VM base disk): counted once per run",
    ),
    (
        "disk_full_copy_kib",
        "KiB",
        "apparent size of the instance's root filesystem: what a full copy per instance would cost",
    ),
    (
        "idle_cpu_ms_per_s",
        "ms/s",
        "host CPU time the instance used per second of an idle window after the workload ran (its cgroup's CPU accounting; qemu's or the process's utime + stime where there is no cgroup)",
    ),
    (
        "security",
        "name",
        "the scenario's security profile (`docker`, `runc`, `none`) as applied to the instance; empty for backends that take none (process, unshare, vm)",
    ),
    (
        "cap_eff",
        "hex mask",
        "CapEff of the instance's agent from /proc/PID/status, read from the host while it ran; cap_bnd, cap_inh, cap_amb: CapBnd, CapInh, CapAmb likewise",
    ),
    (
        "no_new_privs",
        "bool",
        "NoNewPrivs of the agent from /proc/PID/status",
    ),
    (
        "seccomp",
        "mode",
        "Seccomp of the agent from /proc/PID/status: disabled, strict or filter; seccomp_filters: how many filters are installed (Seccomp_filters)",
    ),
    (
        "ns_private",
        "list",
        "namespace types (cgroup, ipc, mnt, net, pid, user, uts) whose /proc/PID/ns inode differs from the harness's",
    ),
    (
        "devices",
        "rules",
        "the device rules of the instance's cgroup: v1 devices.list (`all` when unrestricted), v2 the eBPF device programs in effect",
    ),
    (
        "probe",
        "JSON",
        "workload `probe` only: what a root process inside the instance could do: `ok` or the errno that stopped mknod of a block device, opening it, reading /proc/kcore (`masked` when empty), opening /proc/sysrq-trigger for writing, mounting a tmpfs, creating a user namespace",
    ),
    (
        "ns_per_op",
        "ns",
        "syscalls.csv: wall time per operation inside the instance, over as many operations as fit a time budget (workload `syscalls = BUDGET_MS`, 100 by default): getppid (a system call no vDSO answers), stat of the agent's binary, open + read 4 KiB + close of it, a one-byte pipe round trip between two threads, mmap + write every page + munmap of 1 MiB, and the first write to a 4 KiB file that existed before the instance started (overlay copy-up, qcow2 copy-on-write; a plain write for process and unshare); for VMs under TCG every figure includes the CPU emulation",
    ),
    (
        "distinct_kernels",
        "count",
        "kernel.csv: distinct boot_ids across the host and the batch's instances (1 for containers: they share the host's)",
    ),
    (
        "host_kthreads_before",
        "count",
        "kernel.csv: kernel threads (PF_KTHREAD) on the host before the batch; host_kthreads_with: with the batch alive",
    ),
    (
        "guest_kthreads_total",
        "count",
        "kernel.csv: kernel threads summed over every guest of the batch",
    ),
    (
        "host_kernel_kib_delta",
        "KiB",
        "kernel.csv: the host's Slab + KernelStack + PageTables increase for the batch (same readings as host_avail_kib)",
    ),
    (
        "guest_kernel_kib_total",
        "KiB",
        "kernel.csv: Slab + KernelStack + PageTables summed over every guest kernel of the batch",
    ),
    (
        "kernel_kib_per_kernel",
        "KiB",
        "kernel.csv: kernel memory per running kernel: guest kernel memory per VM, or the host's kernel-memory increase per instance for backends that share the host kernel",
    ),
    (
        "ksm_shared_kib",
        "KiB",
        "kernel.csv, with `ksm = true`: KSM's pages_sharing x page size once it settled (pages_shared changed by at most 5% between two full scans) or at the timeout (ksm_settled = false): memory of the batch found identical",
    ),
    (
        "measure_ms",
        "ms",
        "kernel.csv: how long sampling the memory views of the batch's N instances took (smaps_rollup and cgroup reads)",
    ),
    (
        "mem_available_kib_at_start",
        "KiB",
        "until.csv: the host's MemAvailable just before the first launch of the until batch (after the baseline reading)",
    ),
    (
        "mem_available_floor_kib",
        "KiB",
        "until.csv: the scenario's `mem_available_floor_mib` in KiB: the batch stops growing after the step that leaves MemAvailable below it",
    ),
    (
        "batch_ready_ms",
        "ms",
        "wall time from the first launch of a batch of N until all N instances were ready",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_readme_defines_every_figure_as_the_code_does() {
        let readme = include_str!("../../README.md");
        for (col, unit, def) in DEFINITIONS {
            let row = format!("| `{col}` | {unit} | {def} |");
            assert!(
                readme.contains(&row),
                "README.md lacks the definitions row:\n{row}"
            );
        }
    }

    #[test]
    fn every_timed_column_has_a_definition() {
        let mut w = csv::Writer::from_writer(Vec::new());
        w.serialize(Sample::default()).unwrap();
        let text = String::from_utf8(w.into_inner().unwrap()).unwrap();
        let header = text.lines().next().unwrap();
        for col in header
            .split(',')
            .filter(|c| c.ends_with("_ms") || c.ends_with("_s"))
        {
            assert!(
                DEFINITIONS.iter().any(|(c, _, _)| *c == col),
                "{col} has no definition"
            );
        }
    }
}
