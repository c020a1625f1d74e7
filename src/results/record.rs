//! The records isobench writes: one struct per file row, serialised by serde into CSV and JSON
//! alike so the two can never drift. Every numeric field carries its unit in its name; its
//! unit, definition and rounding live in [`crate::results::metrics`], one row per column.

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
    // Phases stamped inside the instance (issue 12); defaulted so older runs still load.
    #[serde(default)]
    pub clone_ms: Option<f64>,
    #[serde(default)]
    pub cgroup_ms: Option<f64>,
    #[serde(default)]
    pub rootfs_ms: Option<f64>,
    #[serde(default)]
    pub agent_start_ms: Option<f64>,
    #[serde(default)]
    pub agent_ready_ms: Option<f64>,
    #[serde(default)]
    pub vm_kernel_ms: Option<f64>,
    #[serde(default)]
    pub vm_init_ms: Option<f64>,
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
    /// Defaulted so that runs written before this column existed still load.
    #[serde(default)]
    pub runtime_overhead_kib: Option<u64>,
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
    pub sandbox_kernel_pss_kib: Option<u64>,
    pub kernel_kib_per_kernel: Option<f64>,
    pub ksm_pages_sharing: Option<u64>,
    pub ksm_shared_kib: Option<u64>,
    pub ksm_settled: Option<bool>,
    #[serde(default)]
    pub ksm_wait_s: Option<f64>,
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
    #[serde(default)]
    pub runtime_overhead_kib_mean: Option<f64>,
    pub guest_kernel_kib_mean: Option<f64>,
    pub disk_private_kib_mean: Option<f64>,
    pub disk_shared_kib: Option<f64>,
    pub idle_cpu_ms_per_s_mean: Option<f64>,
}
