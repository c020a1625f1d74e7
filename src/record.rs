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
        let readme = include_str!("../README.md");
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
