//! The one vocabulary of figures: every column isobench writes that is a figure (or a setting
//! read back from the host) has exactly one [`Metric`] here, with its unit, definition, CSV
//! rounding, better direction, the file and backends it belongs to, and how a consumer reads
//! it from a row. The CSV writers, `compare`, the report's claims, figures and definitions
//! table, `plan`'s cost model and the README's Definitions table all read this table; tests
//! keep the record structs, the README and it in agreement.
//!
//! A new metric is one `pub static` row here (listed in [`METRICS`]), its field in the row
//! struct of [`crate::results::record`], and the code that measures it (`measure/` or
//! `agent/`, filled in by `runner::batch`). The tests then name what else it needs: the
//! README's row (printed by the failing test), and, if the row gives summary statistics,
//! their fields in `SummaryRow` and `summary::summarize`. Rounding, `compare` and the report's
//! definitions follow from the row; claims and figures that should show it add its handle.
//!
//! Columns that name a row rather than measure it (run id, backend, N, repetition, instance,
//! error text, ...) are [`labels`], not metrics.

use std::cmp::Ordering;
use std::hash::{Hash, Hasher};

use serde::Serialize;

use crate::results::record::{KernelRow, Sample, SummaryRow};

/// The unit a metric's values are in: the README's unit column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Ms,
    S,
    Ns,
    Kib,
    /// CPU milliseconds per second of wall time (1000 is one core kept busy).
    MsPerS,
    Count,
    Pages,
    /// A word from a fixed set (a profile's name).
    Name,
    /// A /proc/PID/status capability mask.
    HexMask,
    Bool,
    /// A word from a fixed set (seccomp's mode).
    Mode,
    List,
    Rules,
    Json,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Ms => "ms",
            Unit::S => "s",
            Unit::Ns => "ns",
            Unit::Kib => "KiB",
            Unit::MsPerS => "ms/s",
            Unit::Count => "count",
            Unit::Pages => "pages",
            Unit::Name => "name",
            Unit::HexMask => "hex mask",
            Unit::Bool => "bool",
            Unit::Mode => "mode",
            Unit::List => "list",
            Unit::Rules => "rules",
            Unit::Json => "JSON",
        }
    }

    /// Whether values in this unit are numbers (rounded, compared, plotted); else words or
    /// flags, shown as read.
    pub fn is_number(self) -> bool {
        matches!(
            self,
            Unit::Ms | Unit::S | Unit::Ns | Unit::Kib | Unit::MsPerS | Unit::Count | Unit::Pages
        )
    }
}

impl std::fmt::Display for Unit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Unit {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The file a metric is a column of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum File {
    /// samples.csv: one row per instance per repetition.
    Samples,
    /// kernel.csv: one row per batch.
    Kernel,
    /// syscalls.csv: one row per instance and operation.
    Syscalls,
    /// until.csv: one row per backend of an open-ended sweep.
    Until,
    /// Only in summary.csv, as statistics (a figure of a batch, not of a row of another file).
    Summary,
    /// In no file: the report computes it from kernel.csv rows.
    Report,
}

impl File {
    /// The file's name as the definitions name it, or `report` for a derived figure.
    pub fn name(self) -> &'static str {
        match self {
            File::Samples => "samples.csv",
            File::Kernel => "kernel.csv",
            File::Syscalls => "syscalls.csv",
            File::Until => "until.csv",
            File::Summary => "summary.csv",
            File::Report => "report",
        }
    }
}

/// Which way a change of the figure is an improvement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    /// A cost: less is better.
    Lower,
    /// A capacity: more is better.
    Higher,
    /// A fact or a setting: neither.
    Neither,
}

/// The backends a metric has values for; the others leave it empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backends {
    All,
    /// Only backends that boot their own kernel.
    Vm,
    /// Only isobench's own container, whose child reports its phases.
    Container,
    /// Only backends run by a container engine with processes of its own (docker).
    Engine,
}

/// How a consumer reads one value of a metric from a row, where it is a number per row.
#[derive(Clone, Copy)]
pub enum Read {
    /// One instance's value, from its samples.csv row.
    Sample(fn(&Sample) -> Option<f64>),
    /// One batch's value, from its kernel.csv row (or computed from it, for [`File::Report`]).
    Batch(fn(&KernelRow) -> Option<f64>),
    /// Not read row by row: words, flags, or figures only their file's own readers use.
    No,
}

/// A statistic summary.csv holds of a metric over one (backend, accelerator, N) group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stat {
    Mean,
    Sd,
    P50,
    P90,
    P99,
    Min,
    Max,
    /// A figure every instance of the group shares (the disk shared once): its mean, which is
    /// that one value, under the metric's own name.
    Shared,
}

impl Stat {
    /// What the statistic appends to the metric's name in summary.csv's header.
    pub fn suffix(self) -> &'static str {
        match self {
            Stat::Mean => "_mean",
            Stat::Sd => "_sd",
            Stat::P50 => "_p50",
            Stat::P90 => "_p90",
            Stat::P99 => "_p99",
            Stat::Min => "_min",
            Stat::Max => "_max",
            Stat::Shared => "",
        }
    }
}

/// How one statistic of a metric is read from a summary.csv row.
pub type SummaryRead = fn(&SummaryRow) -> Option<f64>;

/// How `isobench compare` judges a metric when the user sets no tolerance of their own: how
/// far NEW may drift from BASE, as noise, before the change can count at all.
///
/// Both are sized from what runs of the *unchanged* system differ by on a busy host (the
/// 2-core development host with other builds running): the confidence interval of a ratio
/// covers the noise within each run, not the drift between runs, and that drift is what a gate
/// on defaults must not fail on. On 8 runs of `scenarios/gate-oci.toml` and 4 of a process
/// scenario with memory measured (68 ordered pairs), the intervals' low ends reached 1.49
/// (`startup_ms`), 1.79 (`teardown_ms`) and, for `host_avail_kib` at N = 4, 2.28 with medians
/// 2.5 MiB apart; the PSS of 4 processes by 15% (342 KiB each: what they share with the rest
/// of the host moves), their cgroup's charge by 244 KiB. A quiet, dedicated host drifts far
/// less: measure it the same way and tighten with `--tolerance` or a tolerance file.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Gate {
    /// Relative: NEW/BASE may reach 1 + tolerance before it is worse (a ratio, not a percent).
    pub tolerance: f64,
    /// Absolute, in the metric's unit: a change no larger than this is noise whatever the
    /// ratio, so that tiny values (an idle process's CPU, a batch's MemAvailable decrease at
    /// N = 1) cannot fail a gate by doubling. Never replaced by a tolerance flag: it is the
    /// measurement's resolution on a busy host, not a policy.
    pub floor: f64,
}

impl Gate {
    /// Clocks of start-up and teardown: on a busy host whole runs shift by tens of percent
    /// (the lowest interval bound above reached 1.79), so NEW may take up to twice BASE's
    /// time; a change of 5 ms or less is scheduling noise.
    const TIMING: Gate = Gate {
        tolerance: 1.0,
        floor: 5.0,
    };

    /// A memory view of the instance: 10%, above the view's own noise `floor_kib` (half a
    /// MiB for what the host's sharing and the kernel's charging move between runs).
    const fn memory(floor_kib: f64) -> Gate {
        Gate {
            tolerance: 0.1,
            floor: floor_kib,
        }
    }
}

/// Decimals of every statistic in summary.csv: means and percentiles of millisecond clocks
/// and KiB counts resolve no better than that, and 3 decimals keep float noise such as
/// `12.300000000000001` out of the file.
pub const SUMMARY_DECIMALS: u8 = 3;

/// One figure: a column of one of the run's files (or a figure the report derives).
pub struct Metric {
    /// The column's name, which is also how the README, the report and JSON name the figure.
    pub name: &'static str,
    pub unit: Unit,
    /// What the figure is, precisely enough to reproduce it; the README's definition.
    pub definition: &'static str,
    pub file: File,
    /// Decimals the CSV keeps (on a copy, just before writing); `None`: written as measured.
    pub decimals: Option<u8>,
    pub better: Better,
    pub backends: Backends,
    /// One figure per batch repeated on each of its N rows (`host_avail_kib` is the batch's
    /// MemAvailable decrease divided by N): one observation per batch, not N.
    pub per_batch: bool,
    /// `compare` compares it, BASE against NEW, judged by default as [`Gate`] says.
    pub compare: Option<Gate>,
    pub read: Read,
    /// The statistics summary.csv holds of it, each with how it is read from a summary row.
    pub summary: &'static [(Stat, SummaryRead)],
    /// A reading of the whole host (MemAvailable, the host kernel's memory, its kernel
    /// threads): the band around 0, in the metric's unit, within which a *batch's* total
    /// (the value x N for a per-instance figure) cannot be told from what the rest of the host
    /// did meanwhile. The report claims no ratio from a total inside it and says so.
    pub host_noise: Option<f64>,
}

impl Metric {
    /// The defaults every row of the table starts from: a number of samples.csv, written as
    /// measured, neither better nor worse, for every backend, read by nobody row by row.
    const BASE: Metric = Metric {
        name: "",
        unit: Unit::Count,
        definition: "",
        file: File::Samples,
        decimals: None,
        better: Better::Neither,
        backends: Backends::All,
        per_batch: false,
        compare: None,
        read: Read::No,
        summary: &[],
        host_noise: None,
    };

    /// One instance's value from its samples.csv row; `None` when the row has none or the
    /// metric is not a per-instance number.
    pub fn of_sample(&self, s: &Sample) -> Option<f64> {
        match self.read {
            Read::Sample(f) => f(s),
            _ => None,
        }
    }

    /// One batch's value from its kernel.csv row; `None` when the row has none or the metric
    /// is not a per-batch number.
    pub fn of_batch(&self, k: &KernelRow) -> Option<f64> {
        match self.read {
            Read::Batch(f) => f(k),
            _ => None,
        }
    }

    /// The statistic `stat` of this metric in a summary row; `None` when the row has none or
    /// summary.csv does not hold that statistic.
    pub fn of_summary(&self, stat: Stat, r: &SummaryRow) -> Option<f64> {
        self.summary
            .iter()
            .find(|(s, _)| *s == stat)
            .and_then(|(_, f)| f(r))
    }

    /// The row of the README's Definitions table.
    pub fn markdown_row(&self) -> String {
        format!("| `{}` | {} | {} |", self.name, self.unit, self.definition)
    }
}

impl std::fmt::Debug for Metric {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

// A metric is its name: names are unique (a test checks), and the fn pointers inside cannot
// be compared reliably anyway.
impl PartialEq for Metric {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}
impl Eq for Metric {}
impl Hash for Metric {
    fn hash<H: Hasher>(&self, h: &mut H) {
        self.name.hash(h);
    }
}
impl PartialOrd for Metric {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Metric {
    fn cmp(&self, other: &Self) -> Ordering {
        self.name.cmp(other.name)
    }
}

/// A metric serialises as its name, the way every file and JSON document refers to it.
impl Serialize for Metric {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name)
    }
}

fn num<T: Into<f64>>(x: Option<T>) -> Option<f64> {
    x.map(Into::into)
}

// KiB counts fit f64's 53-bit mantissa exactly up to 8 EiB, far beyond any host.
#[allow(clippy::cast_precision_loss)]
fn big(x: Option<u64>) -> Option<f64> {
    x.map(|v| v as f64)
}

// ---- samples.csv: start-up and its phases ----

pub static STARTUP_MS: Metric = Metric {
    name: "startup_ms",
    unit: Unit::Ms,
    definition: "CLOCK_MONOTONIC in the harness just before the spawn (clone, fork+exec, exec of runc or qemu) until the agent's `ready` line reached the harness (the read that brought it; the facts line the agent writes after `ready` is not part of start-up)",
    decimals: Some(3),
    better: Better::Lower,
    compare: Some(Gate::TIMING),
    read: Read::Sample(|s| s.startup_ms),
    summary: &[
        (Stat::Mean, |r| r.startup_ms_mean),
        (Stat::Sd, |r| r.startup_ms_sd),
        (Stat::P50, |r| r.startup_ms_p50),
        (Stat::P90, |r| r.startup_ms_p90),
        (Stat::P99, |r| r.startup_ms_p99),
        (Stat::Min, |r| r.startup_ms_min),
        (Stat::Max, |r| r.startup_ms_max),
    ],
    ..Metric::BASE
};

pub static SPAWN_MS: Metric = Metric {
    name: "spawn_ms",
    unit: Unit::Ms,
    definition: "phase: from the same start until clone/fork returned in the harness (the container's clone is vfork-like and a process's spawn waits for its exec: both return once the agent is exec'd)",
    decimals: Some(3),
    better: Better::Lower,
    read: Read::Sample(|s| s.spawn_ms),
    ..Metric::BASE
};

pub static FIRST_OUTPUT_MS: Metric = Metric {
    name: "first_output_ms",
    unit: Unit::Ms,
    definition: "phase: from the same start until the first byte of the instance's output reached the harness (for a VM, its serial console: the guest kernel is running)",
    decimals: Some(3),
    better: Better::Lower,
    read: Read::Sample(|s| s.first_output_ms),
    ..Metric::BASE
};

pub static CLONE_MS: Metric = Metric {
    name: "clone_ms",
    unit: Unit::Ms,
    definition: "phase (container): from the same start until the child's first instruction after clone, in its new namespaces (the child's own CLOCK_MONOTONIC stamp)",
    decimals: Some(3),
    better: Better::Lower,
    backends: Backends::Container,
    read: Read::Sample(|s| s.clone_ms),
    ..Metric::BASE
};

pub static CGROUP_MS: Metric = Metric {
    name: "cgroup_ms",
    unit: Unit::Ms,
    definition: "phase (container): from the same start until the child sat in its cgroup (born there by CLONE_INTO_CGROUP on cgroup v2; on v1 it wrote itself into each hierarchy's `tasks` file, opened before the clone), stamped by the child",
    decimals: Some(3),
    better: Better::Lower,
    backends: Backends::Container,
    read: Read::Sample(|s| s.cgroup_ms),
    ..Metric::BASE
};

pub static ROOTFS_MS: Metric = Metric {
    name: "rootfs_ms",
    unit: Unit::Ms,
    definition: "phase (container): from the same start until the child had mounted its root (a private mount namespace entered, overlay, /proc, /dev, masks, read-only paths), stamped by the child",
    decimals: Some(3),
    better: Better::Lower,
    backends: Backends::Container,
    read: Read::Sample(|s| s.rootfs_ms),
    ..Metric::BASE
};

pub static SETUP_MS: Metric = Metric {
    name: "setup_ms",
    unit: Unit::Ms,
    definition: "phase (container): from the same start until the child's pivot_root into the overlay was done and the old root detached, stamped by the child",
    decimals: Some(3),
    better: Better::Lower,
    backends: Backends::Container,
    read: Read::Sample(|s| s.setup_ms),
    ..Metric::BASE
};

pub static EXEC_MS: Metric = Metric {
    name: "exec_ms",
    unit: Unit::Ms,
    definition: "phase (container): from the same start until the child was about to exec the agent (capabilities dropped, seccomp installed), stamped by the child",
    decimals: Some(3),
    better: Better::Lower,
    backends: Backends::Container,
    read: Read::Sample(|s| s.exec_ms),
    ..Metric::BASE
};

pub static AGENT_START_MS: Metric = Metric {
    name: "agent_start_ms",
    unit: Unit::Ms,
    definition: "phase: from the same start until the agent's main was entered (exec done), stamped by the agent; for a VM, the agent's stamp on the guest's clock placed by its distance to `ready` (as vm_init_ms)",
    decimals: Some(3),
    better: Better::Lower,
    read: Read::Sample(|s| s.agent_start_ms),
    ..Metric::BASE
};

pub static AGENT_READY_MS: Metric = Metric {
    name: "agent_ready_ms",
    unit: Unit::Ms,
    definition: "phase: from the same start until the agent was about to write `ready` (its facts are read after), stamped by the agent; empty for a VM (startup_ms minus this is the harness's reading of the line)",
    decimals: Some(3),
    better: Better::Lower,
    read: Read::Sample(|s| s.agent_ready_ms),
    ..Metric::BASE
};

pub static VM_KERNEL_MS: Metric = Metric {
    name: "vm_kernel_ms",
    unit: Unit::Ms,
    definition: "vm only: phase: from the same start until the guest kernel's clock started (QEMU, firmware and boot loader done), on the host's time line: startup_ms minus the guest's CLOCK_MONOTONIC at `ready`",
    decimals: Some(3),
    better: Better::Lower,
    backends: Backends::Vm,
    read: Read::Sample(|s| s.vm_kernel_ms),
    ..Metric::BASE
};

pub static VM_INIT_MS: Metric = Metric {
    name: "vm_init_ms",
    unit: Unit::Ms,
    definition: "vm only: phase: from the same start until the guest's /init (isobench) entered main (the kernel booted), placed like vm_kernel_ms by its distance to `ready` on the guest's clock; init then loads modules, mounts the disk and execs the agent (agent_start_ms)",
    decimals: Some(3),
    better: Better::Lower,
    backends: Backends::Vm,
    read: Read::Sample(|s| s.vm_init_ms),
    ..Metric::BASE
};

pub static TEARDOWN_MS: Metric = Metric {
    name: "teardown_ms",
    unit: Unit::Ms,
    definition: "from the kill signal until the instance's processes are reaped and its cgroup, overlay and files are removed",
    decimals: Some(3),
    better: Better::Lower,
    compare: Some(Gate::TIMING),
    read: Read::Sample(|s| s.teardown_ms),
    summary: &[
        (Stat::Mean, |r| r.teardown_ms_mean),
        (Stat::P50, |r| r.teardown_ms_p50),
    ],
    ..Metric::BASE
};

pub static AGENT_UPTIME_S: Metric = Metric {
    name: "agent_uptime_s",
    unit: Unit::S,
    definition: "/proc/uptime of the kernel the agent runs on, read by the agent just after `ready` (host uptime for containers, guest uptime for VMs)",
    read: Read::Sample(|s| s.agent_uptime_s),
    ..Metric::BASE
};

// ---- samples.csv: memory, as the host sees it ----

pub static PSS_KIB: Metric = Metric {
    name: "pss_kib",
    unit: Unit::Kib,
    definition: "sum of Pss over every host process of the instance (container, oci: its cgroup's processes; vm: the qemu process; process: the process and its children), from /proc/PID/smaps_rollup, after the workload ran",
    better: Better::Lower,
    compare: Some(Gate::memory(512.0)),
    read: Read::Sample(|s| big(s.pss_kib)),
    summary: &[(Stat::Mean, |r| r.pss_kib_mean)],
    ..Metric::BASE
};

pub static USS_KIB: Metric = Metric {
    name: "uss_kib",
    unit: Unit::Kib,
    definition: "sum of Private_Clean + Private_Dirty over the same processes: memory only this instance uses",
    better: Better::Lower,
    compare: Some(Gate::memory(512.0)),
    read: Read::Sample(|s| big(s.uss_kib)),
    summary: &[(Stat::Mean, |r| r.uss_kib_mean)],
    ..Metric::BASE
};

pub static RSS_KIB: Metric = Metric {
    name: "rss_kib",
    unit: Unit::Kib,
    definition: "sum of Rss over the same processes: shared pages counted in full",
    better: Better::Lower,
    compare: Some(Gate::memory(512.0)),
    read: Read::Sample(|s| big(s.rss_kib)),
    summary: &[(Stat::Mean, |r| r.rss_kib_mean)],
    ..Metric::BASE
};

pub static CGROUP_MEM_KIB: Metric = Metric {
    name: "cgroup_mem_kib",
    unit: Unit::Kib,
    definition: "memory charged to the instance's own cgroup (v2 memory.current, v1 memory.usage_in_bytes), kernel memory charged there included; empty for backends without one",
    better: Better::Lower,
    compare: Some(Gate::memory(512.0)),
    read: Read::Sample(|s| big(s.cgroup_mem_kib)),
    summary: &[(Stat::Mean, |r| r.cgroup_mem_kib_mean)],
    ..Metric::BASE
};

pub static HOST_AVAIL_KIB: Metric = Metric {
    name: "host_avail_kib",
    unit: Unit::Kib,
    definition: "the decrease of the host's available memory (MemAvailable plus the free pages on the per-CPU lists, /proc/zoneinfo `count`, which MemAvailable leaves out) for the whole batch of N, divided by N; each reading taken after dropping caches and waiting until it moves by less than 1 MiB in 100 ms (the method gVisor and Kata use, plus the per-CPU lists)",
    decimals: Some(3),
    better: Better::Lower,
    per_batch: true,
    // A reading of the whole host: other processes move MemAvailable by MiBs between runs.
    compare: Some(Gate {
        tolerance: 0.5,
        floor: 16384.0,
    }),
    read: Read::Sample(|s| s.host_avail_kib),
    summary: &[(Stat::Mean, |r| r.host_avail_kib_mean)],
    // The same 16 MiB as compare's floor: batches of 1 and 10 idle instances moved the
    // development host's MemAvailable by -1 to +27 MiB (process N = 10 in reports/density)
    // where 1000 of them cost 0.5 to 0.9 MiB each.
    host_noise: Some(16384.0),
    ..Metric::BASE
};

pub static HOST_SLAB_KIB: Metric = Metric {
    name: "host_slab_kib",
    unit: Unit::Kib,
    definition: "the host's Slab increase for the batch, divided by N (same readings)",
    decimals: Some(3),
    better: Better::Lower,
    per_batch: true,
    read: Read::Sample(|s| s.host_slab_kib),
    ..Metric::BASE
};

pub static HOST_ANON_KIB: Metric = Metric {
    name: "host_anon_kib",
    unit: Unit::Kib,
    definition: "the host's AnonPages increase for the batch, divided by N (same readings)",
    decimals: Some(3),
    better: Better::Lower,
    per_batch: true,
    read: Read::Sample(|s| s.host_anon_kib),
    ..Metric::BASE
};

pub static VMM_OVERHEAD_KIB: Metric = Metric {
    name: "vmm_overhead_kib",
    unit: Unit::Kib,
    definition: "vm only: qemu's private memory (uss_kib) minus the resident part of the mapping that backs guest RAM",
    better: Better::Lower,
    backends: Backends::Vm,
    compare: Some(Gate::memory(1024.0)),
    read: Read::Sample(|s| big(s.vmm_overhead_kib)),
    summary: &[(Stat::Mean, |r| r.vmm_overhead_kib_mean)],
    ..Metric::BASE
};

pub static RUNTIME_OVERHEAD_KIB: Metric = Metric {
    name: "runtime_overhead_kib",
    unit: Unit::Kib,
    definition: "engine only (docker): what the engine costs per instance, read with pss_kib: the PSS of the instance's containerd-shim plus the PSS of dockerd and containerd divided by the number of live instances of the batch (the attached docker CLI, the harness's reader, is not counted)",
    better: Better::Lower,
    backends: Backends::Engine,
    read: Read::Sample(|s| big(s.runtime_overhead_kib)),
    summary: &[(Stat::Mean, |r| r.runtime_overhead_kib_mean)],
    ..Metric::BASE
};

// ---- samples.csv: the guest's own view (VMs) ----

pub static GUEST_MEM_TOTAL_KIB: Metric = Metric {
    name: "guest_mem_total_kib",
    unit: Unit::Kib,
    definition: "vm only: MemTotal of the guest kernel's /proc/meminfo at ready",
    backends: Backends::Vm,
    read: Read::Sample(|s| big(s.guest_mem_total_kib)),
    ..Metric::BASE
};

pub static GUEST_MEM_USED_KIB: Metric = Metric {
    name: "guest_mem_used_kib",
    unit: Unit::Kib,
    definition: "vm only: MemTotal - MemAvailable of the guest at ready",
    better: Better::Lower,
    backends: Backends::Vm,
    read: Read::Sample(|s| big(s.guest_mem_used_kib)),
    ..Metric::BASE
};

pub static GUEST_KERNEL_KIB: Metric = Metric {
    name: "guest_kernel_kib",
    unit: Unit::Kib,
    definition: "vm only: Slab + KernelStack + PageTables of the guest at ready: the guest kernel's own memory",
    better: Better::Lower,
    backends: Backends::Vm,
    compare: Some(Gate::memory(512.0)),
    read: Read::Sample(|s| big(s.guest_kernel_kib)),
    summary: &[(Stat::Mean, |r| r.guest_kernel_kib_mean)],
    ..Metric::BASE
};

pub static GUEST_KTHREADS: Metric = Metric {
    name: "guest_kthreads",
    unit: Unit::Count,
    definition: "vm only: kernel threads (PF_KTHREAD) running in the guest at ready",
    backends: Backends::Vm,
    read: Read::Sample(|s| num(s.guest_kthreads)),
    ..Metric::BASE
};

// ---- samples.csv: disk and idle CPU ----

pub static DISK_PRIVATE_KIB: Metric = Metric {
    name: "disk_private_kib",
    unit: Unit::Kib,
    definition: "allocated bytes of the instance's private copy-on-write layer (overlay upper dir, qcow2 overlay) after the workload ran",
    better: Better::Lower,
    compare: Some(Gate::memory(256.0)),
    read: Read::Sample(|s| big(s.disk_private_kib)),
    summary: &[(Stat::Mean, |r| r.disk_private_kib_mean)],
    ..Metric::BASE
};

pub static DISK_SHARED_KIB: Metric = Metric {
    name: "disk_shared_kib",
    unit: Unit::Kib,
    definition: "allocated bytes of what every instance of the backend shares (image and agent layers, or the VM base disk): counted once per run",
    better: Better::Lower,
    per_batch: true,
    read: Read::Sample(|s| big(s.disk_shared_kib)),
    summary: &[(Stat::Shared, |r| r.disk_shared_kib)],
    ..Metric::BASE
};

pub static DISK_FULL_COPY_KIB: Metric = Metric {
    name: "disk_full_copy_kib",
    unit: Unit::Kib,
    definition: "apparent size of the instance's root filesystem: what a full copy per instance would cost",
    read: Read::Sample(|s| big(s.disk_full_copy_kib)),
    ..Metric::BASE
};

pub static IDLE_CPU_MS_PER_S: Metric = Metric {
    name: "idle_cpu_ms_per_s",
    unit: Unit::MsPerS,
    definition: "host CPU time the instance used per second of an idle window after the workload ran (its cgroup's CPU accounting; qemu's or the process's utime + stime where there is no cgroup); the window lasts measure.idle_window_s at most and ends sooner, after 0.25 s at the least, once the batch's rate over its latest 0.1 s or more agrees with its rate over the whole window within 10%",
    decimals: Some(3),
    better: Better::Lower,
    // Idle instances use a few ms/s at most, and a busy host's scheduling moves that by as
    // much: 2 ms/s (0.2% of a core) is noise, and twice is within it.
    compare: Some(Gate {
        tolerance: 1.0,
        floor: 2.0,
    }),
    read: Read::Sample(|s| s.idle_cpu_ms_per_s),
    summary: &[(Stat::Mean, |r| r.idle_cpu_ms_per_s_mean)],
    ..Metric::BASE
};

// ---- samples.csv: the isolation read back from the host (measure/isolation.rs) ----

pub static SECURITY: Metric = Metric {
    name: "security",
    unit: Unit::Name,
    definition: "the scenario's security profile (`docker`, `runc`, `none`) as applied to the instance; empty for backends that take none (process, unshare, vm)",
    ..Metric::BASE
};

pub static CAP_EFF: Metric = Metric {
    name: "cap_eff",
    unit: Unit::HexMask,
    definition: "CapEff of the instance's agent from /proc/PID/status, read from the host while it ran",
    ..Metric::BASE
};

pub static CAP_BND: Metric = Metric {
    name: "cap_bnd",
    unit: Unit::HexMask,
    definition: "CapBnd of the agent from /proc/PID/status, read likewise",
    ..Metric::BASE
};

pub static CAP_INH: Metric = Metric {
    name: "cap_inh",
    unit: Unit::HexMask,
    definition: "CapInh of the agent from /proc/PID/status, read likewise",
    ..Metric::BASE
};

pub static CAP_AMB: Metric = Metric {
    name: "cap_amb",
    unit: Unit::HexMask,
    definition: "CapAmb of the agent from /proc/PID/status, read likewise",
    ..Metric::BASE
};

pub static NO_NEW_PRIVS: Metric = Metric {
    name: "no_new_privs",
    unit: Unit::Bool,
    definition: "NoNewPrivs of the agent from /proc/PID/status",
    ..Metric::BASE
};

pub static SECCOMP: Metric = Metric {
    name: "seccomp",
    unit: Unit::Mode,
    definition: "Seccomp of the agent from /proc/PID/status: disabled, strict or filter",
    ..Metric::BASE
};

pub static SECCOMP_FILTERS: Metric = Metric {
    name: "seccomp_filters",
    unit: Unit::Count,
    definition: "Seccomp_filters of the agent from /proc/PID/status: how many seccomp filters are installed",
    read: Read::Sample(|s| num(s.seccomp_filters)),
    ..Metric::BASE
};

pub static NS_PRIVATE: Metric = Metric {
    name: "ns_private",
    unit: Unit::List,
    definition: "namespace types (cgroup, ipc, mnt, net, pid, user, uts) whose /proc/PID/ns inode differs from the harness's",
    ..Metric::BASE
};

pub static DEVICES: Metric = Metric {
    name: "devices",
    unit: Unit::Rules,
    definition: "the device rules of the instance's cgroup: v1 devices.list (`all` when unrestricted), v2 the eBPF device programs in effect",
    ..Metric::BASE
};

pub static PROBE: Metric = Metric {
    name: "probe",
    unit: Unit::Json,
    definition: "workload `probe` only: what a root process inside the instance could do: `ok` or the errno that stopped mknod of a block device, opening it, reading /proc/kcore (`masked` when empty), opening /proc/sysrq-trigger for writing, mounting a tmpfs, creating a user namespace",
    ..Metric::BASE
};

// ---- syscalls.csv ----

pub static NS_PER_OP: Metric = Metric {
    name: "ns_per_op",
    unit: Unit::Ns,
    definition: "syscalls.csv: wall time per operation inside the instance, over as many operations as fit a time budget (workload `syscalls = BUDGET_MS`, 100 by default): getppid (a system call no vDSO answers), stat of the agent's binary, open + read 4 KiB + close of it, a one-byte pipe round trip between two threads, mmap + write every page + munmap of 1 MiB, and the first write to a 4 KiB file that existed before the instance started (overlay copy-up, qcow2 copy-on-write; a plain write for process and unshare); for VMs under TCG every figure includes the CPU emulation",
    file: File::Syscalls,
    // Tenths of a nanosecond: the clock reads resolve no better over a 100 ms budget.
    decimals: Some(1),
    better: Better::Lower,
    ..Metric::BASE
};

pub static OPS: Metric = Metric {
    name: "ops",
    unit: Unit::Count,
    definition: "syscalls.csv: how many operations ns_per_op was timed over",
    file: File::Syscalls,
    ..Metric::BASE
};

// ---- kernel.csv ----

pub static DISTINCT_KERNELS: Metric = Metric {
    name: "distinct_kernels",
    unit: Unit::Count,
    definition: "kernel.csv: distinct boot_ids across the host and the batch's instances (1 for containers: they share the host's; a boot_id mounted over the kernel's file, as LXC does with a random one per container, is recorded as `mounted:ID` and names no kernel); for gvisor 1 + the sandboxes' Sentries alive (user-space kernels, which have no boot_id)",
    file: File::Kernel,
    read: Read::Batch(|k| Some(f64::from(k.distinct_kernels))),
    ..Metric::BASE
};

pub static HOST_KTHREADS_BEFORE: Metric = Metric {
    name: "host_kthreads_before",
    unit: Unit::Count,
    definition: "kernel.csv: kernel threads (PF_KTHREAD) on the host before the batch",
    file: File::Kernel,
    read: Read::Batch(|k| Some(f64::from(k.host_kthreads_before))),
    ..Metric::BASE
};

pub static HOST_KTHREADS_WITH: Metric = Metric {
    name: "host_kthreads_with",
    unit: Unit::Count,
    definition: "kernel.csv: kernel threads (PF_KTHREAD) on the host with the batch alive",
    file: File::Kernel,
    read: Read::Batch(|k| Some(f64::from(k.host_kthreads_with))),
    ..Metric::BASE
};

pub static GUEST_KTHREADS_TOTAL: Metric = Metric {
    name: "guest_kthreads_total",
    unit: Unit::Count,
    definition: "kernel.csv: kernel threads summed over every guest of the batch",
    file: File::Kernel,
    backends: Backends::Vm,
    read: Read::Batch(|k| big(k.guest_kthreads_total)),
    ..Metric::BASE
};

// i64 KiB deltas: exact in f64 for any memory a host has.
#[allow(clippy::cast_precision_loss)]
fn signed(x: Option<i64>) -> Option<f64> {
    x.map(|v| v as f64)
}

pub static HOST_KERNEL_KIB_DELTA: Metric = Metric {
    name: "host_kernel_kib_delta",
    unit: Unit::Kib,
    definition: "kernel.csv: the host's Slab + KernelStack + PageTables increase for the batch (same readings as host_avail_kib)",
    file: File::Kernel,
    better: Better::Lower,
    read: Read::Batch(|k| signed(k.host_kernel_kib_delta)),
    ..Metric::BASE
};

pub static GUEST_KERNEL_KIB_TOTAL: Metric = Metric {
    name: "guest_kernel_kib_total",
    unit: Unit::Kib,
    definition: "kernel.csv: Slab + KernelStack + PageTables summed over every guest kernel of the batch",
    file: File::Kernel,
    better: Better::Lower,
    backends: Backends::Vm,
    read: Read::Batch(|k| big(k.guest_kernel_kib_total)),
    ..Metric::BASE
};

pub static SANDBOX_KERNEL_PSS_KIB: Metric = Metric {
    name: "sandbox_kernel_pss_kib",
    unit: Unit::Kib,
    definition: "kernel.csv, gvisor only: PSS of the batch's user-space kernels, every sandbox's Sentry (runsc-sandbox) and Gofer (runsc-gofer) processes summed; each Sentry counts in distinct_kernels",
    file: File::Kernel,
    better: Better::Lower,
    read: Read::Batch(|k| big(k.sandbox_kernel_pss_kib)),
    ..Metric::BASE
};

pub static KERNEL_KIB_PER_KERNEL: Metric = Metric {
    name: "kernel_kib_per_kernel",
    unit: Unit::Kib,
    definition: "kernel.csv: kernel memory per running kernel: guest kernel memory per VM, a sandbox's Sentry + Gofer PSS for gvisor, or the host's kernel-memory increase per instance for backends that share the host kernel",
    file: File::Kernel,
    decimals: Some(3),
    better: Better::Lower,
    read: Read::Batch(|k| k.kernel_kib_per_kernel),
    // For backends on the host kernel it is the host's Slab + KernelStack + PageTables
    // increase: batches of 1 instance read -0.04 to -0.14 MiB, of 10 about 1 MiB.
    host_noise: Some(4096.0),
    ..Metric::BASE
};

pub static KSM_PAGES_SHARING: Metric = Metric {
    name: "ksm_pages_sharing",
    unit: Unit::Pages,
    definition: "kernel.csv, with `ksm = true`: KSM's pages_sharing (/sys/kernel/mm/ksm) at the reading of ksm_shared_kib: how many more pages map a page KSM merged, the pages merging saved",
    file: File::Kernel,
    read: Read::Batch(|k| big(k.ksm_pages_sharing)),
    ..Metric::BASE
};

pub static KSM_SHARED_KIB: Metric = Metric {
    name: "ksm_shared_kib",
    unit: Unit::Kib,
    definition: "kernel.csv, with `ksm = true`: KSM's pages_sharing x page size once it settled (pages_shared and pages_sharing changed by at most 5% between two full scans) or at the timeout (ksm_settled = false): memory of the batch found identical",
    file: File::Kernel,
    read: Read::Batch(|k| big(k.ksm_shared_kib)),
    ..Metric::BASE
};

pub static KSM_SETTLED: Metric = Metric {
    name: "ksm_settled",
    unit: Unit::Bool,
    definition: "kernel.csv, with `ksm = true`: whether KSM's counters settled before the timeout (see ksm_shared_kib)",
    file: File::Kernel,
    ..Metric::BASE
};

pub static KSM_WAIT_S: Metric = Metric {
    name: "ksm_wait_s",
    unit: Unit::S,
    definition: "kernel.csv, with `ksm = true`: how long the harness waited for KSM's counters, from enabling merging until they settled (ksm_settled = true) or the timeout (measure.ksm_timeout_s)",
    decimals: Some(3),
    better: Better::Lower,
    file: File::Kernel,
    read: Read::Batch(|k| k.ksm_wait_s),
    ..Metric::BASE
};

pub static PSS_KIB_SUM: Metric = Metric {
    name: "pss_kib_sum",
    unit: Unit::Kib,
    definition: "kernel.csv: pss_kib summed over the batch's instances (empty when memory is not measured)",
    file: File::Kernel,
    better: Better::Lower,
    read: Read::Batch(|k| big(k.pss_kib_sum)),
    ..Metric::BASE
};

pub static HOST_AVAIL_KIB_DELTA: Metric = Metric {
    name: "host_avail_kib_delta",
    unit: Unit::Kib,
    definition: "kernel.csv: the decrease of the host's available memory for the whole batch, from the readings of host_avail_kib, not divided by N (below 0 when it rose)",
    file: File::Kernel,
    better: Better::Lower,
    read: Read::Batch(|k| signed(k.host_avail_kib_delta)),
    ..Metric::BASE
};

pub static MEASURE_MS: Metric = Metric {
    name: "measure_ms",
    unit: Unit::Ms,
    definition: "kernel.csv: how long sampling the memory views of the batch's N instances took (smaps_rollup and cgroup reads)",
    file: File::Kernel,
    decimals: Some(3),
    better: Better::Lower,
    read: Read::Batch(|k| k.measure_ms),
    ..Metric::BASE
};

// ---- until.csv ----

pub static N_REACHED: Metric = Metric {
    name: "n_reached",
    unit: Unit::Count,
    definition: "until.csv: instances of the until batch that came up before it stopped growing",
    file: File::Until,
    better: Better::Higher,
    ..Metric::BASE
};

pub static MEM_AVAILABLE_KIB_AT_STOP: Metric = Metric {
    name: "mem_available_kib_at_stop",
    unit: Unit::Kib,
    definition: "until.csv: the host's available memory (as for host_avail_kib: MemAvailable plus the per-CPU free pages) when the batch stopped growing, every instance of it alive",
    file: File::Until,
    ..Metric::BASE
};

pub static STEP: Metric = Metric {
    name: "step",
    unit: Unit::Count,
    definition: "until.csv: instances added per step (the scenario's `[until] step`)",
    file: File::Until,
    ..Metric::BASE
};

pub static MEM_AVAILABLE_KIB_AT_START: Metric = Metric {
    name: "mem_available_kib_at_start",
    unit: Unit::Kib,
    definition: "until.csv: the host's available memory (as for host_avail_kib) just before the first launch of the until batch (after the baseline reading)",
    file: File::Until,
    ..Metric::BASE
};

pub static MEM_AVAILABLE_FLOOR_KIB: Metric = Metric {
    name: "mem_available_floor_kib",
    unit: Unit::Kib,
    definition: "until.csv: the scenario's `mem_available_floor_mib` in KiB: the batch stops growing after the step that leaves MemAvailable below it",
    file: File::Until,
    ..Metric::BASE
};

// ---- summary.csv only ----

pub static BATCH_READY_MS: Metric = Metric {
    name: "batch_ready_ms",
    unit: Unit::Ms,
    definition: "wall time from the first launch of a batch of N until all N instances were ready",
    file: File::Summary,
    better: Better::Lower,
    summary: &[(Stat::Mean, |r| r.batch_ready_ms_mean)],
    ..Metric::BASE
};

// ---- derived by the report ----

/// Host kernel threads the batch added plus every guest's kernel threads.
fn kthreads_added(k: &KernelRow) -> Option<f64> {
    let host = f64::from(k.host_kthreads_with) - f64::from(k.host_kthreads_before);
    Some(host + big(k.guest_kthreads_total).unwrap_or(0.0))
}

pub static KTHREADS_ADDED: Metric = Metric {
    name: "kthreads_added",
    unit: Unit::Count,
    definition: "report: host_kthreads_with - host_kthreads_before + guest_kthreads_total of the batch (kernel.csv, mean over repetitions)",
    file: File::Report,
    read: Read::Batch(kthreads_added),
    // The host's kworkers come and go on their own: batches of containers read -1 to 0.
    host_noise: Some(4.0),
    ..Metric::BASE
};

fn kernel_kib_batch(k: &KernelRow) -> Option<f64> {
    k.kernel_kib_per_kernel.map(|v| v * f64::from(k.n))
}

pub static KERNEL_KIB_BATCH: Metric = Metric {
    name: "kernel_kib_batch",
    unit: Unit::Kib,
    definition: "report: kernel_kib_per_kernel x N of the batch (kernel.csv, mean over repetitions): the kernel memory a whole batch costs, N guest kernels for VMs, the host kernel's growth for backends that share it",
    file: File::Report,
    better: Better::Lower,
    read: Read::Batch(kernel_kib_batch),
    host_noise: Some(4096.0),
    ..Metric::BASE
};

/// Every metric, in the order the README's Definitions table and the report's list them (and
/// `compare` compares them): per instance, then per batch, then the derived figures.
pub static METRICS: &[&Metric] = &[
    &STARTUP_MS,
    &SPAWN_MS,
    &FIRST_OUTPUT_MS,
    &SETUP_MS,
    &EXEC_MS,
    &CLONE_MS,
    &CGROUP_MS,
    &ROOTFS_MS,
    &AGENT_START_MS,
    &AGENT_READY_MS,
    &VM_KERNEL_MS,
    &VM_INIT_MS,
    &TEARDOWN_MS,
    &AGENT_UPTIME_S,
    &PSS_KIB,
    &USS_KIB,
    &RSS_KIB,
    &CGROUP_MEM_KIB,
    &HOST_AVAIL_KIB,
    &HOST_SLAB_KIB,
    &HOST_ANON_KIB,
    &VMM_OVERHEAD_KIB,
    &RUNTIME_OVERHEAD_KIB,
    &GUEST_MEM_TOTAL_KIB,
    &GUEST_MEM_USED_KIB,
    &GUEST_KERNEL_KIB,
    &GUEST_KTHREADS,
    &DISK_PRIVATE_KIB,
    &DISK_SHARED_KIB,
    &DISK_FULL_COPY_KIB,
    &IDLE_CPU_MS_PER_S,
    &SECURITY,
    &CAP_EFF,
    &CAP_BND,
    &CAP_INH,
    &CAP_AMB,
    &NO_NEW_PRIVS,
    &SECCOMP,
    &SECCOMP_FILTERS,
    &NS_PRIVATE,
    &DEVICES,
    &PROBE,
    &NS_PER_OP,
    &OPS,
    &DISTINCT_KERNELS,
    &HOST_KTHREADS_BEFORE,
    &HOST_KTHREADS_WITH,
    &GUEST_KTHREADS_TOTAL,
    &HOST_KERNEL_KIB_DELTA,
    &GUEST_KERNEL_KIB_TOTAL,
    &SANDBOX_KERNEL_PSS_KIB,
    &KERNEL_KIB_PER_KERNEL,
    &KSM_PAGES_SHARING,
    &KSM_SHARED_KIB,
    &KSM_SETTLED,
    &KSM_WAIT_S,
    &PSS_KIB_SUM,
    &HOST_AVAIL_KIB_DELTA,
    &MEASURE_MS,
    &N_REACHED,
    &MEM_AVAILABLE_KIB_AT_STOP,
    &STEP,
    &MEM_AVAILABLE_KIB_AT_START,
    &MEM_AVAILABLE_FLOOR_KIB,
    &BATCH_READY_MS,
    &KTHREADS_ADDED,
    &KERNEL_KIB_BATCH,
];

/// The metrics `compare` compares, in table order.
pub fn compared() -> impl Iterator<Item = &'static Metric> {
    METRICS.iter().copied().filter(|m| m.compare.is_some())
}

/// The metric called `name`.
pub fn by_name(name: &str) -> Option<&'static Metric> {
    METRICS.iter().copied().find(|m| m.name == name)
}

/// The columns of `file` that are not metrics: they say which row it is (run, backend, N,
/// repetition, instance, operation), what happened to it in words (`ok`, `error`,
/// `stop_reason`), or name the instance (`kernel_release`, `boot_id`, `hostname`, `pid`), as the
/// README's Results section describes them.
pub fn labels(file: File) -> &'static [&'static str] {
    match file {
        File::Samples => &[
            "run_id",
            "scenario",
            "backend",
            "accel",
            "n",
            "rep",
            "instance",
            "ok",
            "error",
            "kernel_release",
            "boot_id",
            "hostname",
            "pid",
        ],
        File::Kernel => &["run_id", "backend", "accel", "n", "rep"],
        File::Syscalls => &[
            "run_id", "backend", "accel", "security", "n", "rep", "instance", "op",
        ],
        File::Until => &["run_id", "backend", "accel", "stop_reason"],
        File::Summary => &["backend", "accel", "n", "count", "ok"],
        File::Report => &[],
    }
}

/// The metric and statistic a column of summary.csv holds.
pub fn summary_column(column: &str) -> Option<(&'static Metric, Stat)> {
    METRICS
        .iter()
        .flat_map(|m| m.summary.iter().map(move |(s, _)| (*m, *s)))
        .find(|(m, s)| column.strip_prefix(m.name) == Some(s.suffix()))
}

/// The decimals the CSV file `file` keeps of `column`; `None`: written as measured (whole
/// numbers, words, and figures whose precision is their own).
pub fn decimals(file: File, column: &str) -> Option<u8> {
    if file == File::Summary {
        return summary_column(column).map(|_| SUMMARY_DECIMALS);
    }
    METRICS
        .iter()
        .find(|m| m.file == file && m.name == column)
        .and_then(|m| m.decimals)
}

/// A default row of `T` with the columns `set` gives a text for set to it, through the
/// file's own CSV form (for tests that fill columns by name).
#[cfg(test)]
pub(crate) fn row_with<T>(set: &dyn Fn(&str) -> Option<&'static str>) -> T
where
    T: Serialize + serde::de::DeserializeOwned + Default,
{
    let head = crate::results::csv::header_of::<T>().unwrap();
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    w.serialize(T::default()).unwrap();
    let bytes = w.into_inner().unwrap();
    let row = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(bytes.as_slice())
        .records()
        .next()
        .unwrap()
        .unwrap();
    let fields: csv::StringRecord = head
        .iter()
        .zip(row.iter())
        .map(|(h, v)| set(h).unwrap_or(v))
        .collect();
    fields.deserialize(Some(&head)).unwrap()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::results::csv::header_of;
    use crate::results::record::{SyscallRow, UntilRow};

    fn header<T: Serialize + Default>() -> Vec<String> {
        header_of::<T>()
            .unwrap()
            .iter()
            .map(str::to_string)
            .collect()
    }

    /// The file's columns, from its record struct through serde.
    fn columns(file: File) -> Vec<String> {
        match file {
            File::Samples => header::<Sample>(),
            File::Kernel => header::<KernelRow>(),
            File::Syscalls => header::<SyscallRow>(),
            File::Until => header::<UntilRow>(),
            File::Summary => header::<SummaryRow>(),
            File::Report => Vec::new(),
        }
    }

    const FILES: [File; 4] = [File::Samples, File::Kernel, File::Syscalls, File::Until];

    #[test]
    fn names_are_unique() {
        for (i, m) in METRICS.iter().enumerate() {
            assert!(
                METRICS[i + 1..].iter().all(|o| o.name != m.name),
                "{} twice",
                m.name
            );
            assert_eq!(by_name(m.name), Some(*m));
        }
    }

    #[test]
    fn every_column_is_a_label_or_exactly_one_metric() {
        for file in FILES {
            let cols = columns(file);
            for col in &cols {
                let metrics = METRICS
                    .iter()
                    .filter(|m| m.file == file && m.name == col)
                    .count();
                let label = labels(file).contains(&col.as_str());
                assert!(
                    (metrics == 1) != label && metrics <= 1,
                    "{} column {col}: {metrics} metric rows, label: {label}",
                    file.name()
                );
            }
            for l in labels(file) {
                assert!(cols.iter().any(|c| c == l), "label {l} not a column");
            }
        }
        for m in METRICS {
            match m.file {
                File::Summary => assert!(!m.summary.is_empty(), "{m:?} not in summary.csv"),
                File::Report => assert!(matches!(m.read, Read::Batch(_)), "{m:?} read from?"),
                f => assert!(
                    columns(f).iter().any(|c| c == m.name),
                    "{m:?} names no column of {}",
                    f.name()
                ),
            }
        }
    }

    #[test]
    fn every_summary_column_is_a_label_or_one_statistic_of_one_metric() {
        let cols = columns(File::Summary);
        for col in &cols {
            let label = labels(File::Summary).contains(&col.as_str());
            let stats = METRICS
                .iter()
                .flat_map(|m| m.summary.iter().map(move |(s, _)| (m, s)))
                .filter(|(m, s)| format!("{}{}", m.name, s.suffix()) == *col)
                .count();
            assert!(
                (stats == 1) != label && stats <= 1,
                "summary.csv column {col}: {stats} statistics, label: {label}"
            );
        }
        for m in METRICS {
            for (s, _) in m.summary {
                let col = format!("{}{}", m.name, s.suffix());
                assert!(cols.contains(&col), "{col} is not a summary.csv column");
                assert_eq!(summary_column(&col), Some((*m, *s)));
            }
        }
    }

    fn with_7<T>(column: &str) -> T
    where
        T: Serialize + serde::de::DeserializeOwned + Default,
    {
        row_with(&|c| (c == column).then_some("7"))
    }

    #[test]
    fn every_reader_reads_its_own_column() {
        for m in METRICS {
            match m.read {
                Read::Sample(_) => {
                    let s: Sample = with_7(m.name);
                    assert_eq!(m.of_sample(&s), Some(7.0), "{m:?}");
                    for o in METRICS.iter().filter(|o| o.name != m.name) {
                        assert_ne!(o.of_sample(&s), Some(7.0), "{o:?} reads {m:?}");
                    }
                }
                Read::Batch(_) if m.file == File::Kernel => {
                    let k: KernelRow = with_7(m.name);
                    assert_eq!(m.of_batch(&k), Some(7.0), "{m:?}");
                    for o in METRICS.iter().filter(|o| o.file == File::Kernel) {
                        if o.name != m.name {
                            assert_ne!(o.of_batch(&k), Some(7.0), "{o:?} reads {m:?}");
                        }
                    }
                }
                _ => {}
            }
            for (stat, _) in m.summary {
                let r: SummaryRow = with_7(&format!("{}{}", m.name, stat.suffix()));
                assert_eq!(m.of_summary(*stat, &r), Some(7.0), "{m:?} {stat:?}");
                for o in METRICS {
                    for (s, _) in o.summary {
                        if (o.name, s) != (m.name, stat) {
                            assert_ne!(o.of_summary(*s, &r), Some(7.0), "{o:?} {s:?}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_fields_agree_with_each_other_and_the_definitions() {
        for m in METRICS {
            let what = format!("{m:?}");
            assert!(!m.definition.is_empty(), "{what}");
            if m.decimals.is_some() || m.compare.is_some() || !m.summary.is_empty() {
                assert!(m.unit.is_number(), "{what}: a number?");
            }
            match m.read {
                Read::Sample(_) => assert!(m.file == File::Samples && m.unit.is_number(), "{what}"),
                Read::Batch(_) => assert!(
                    matches!(m.file, File::Kernel | File::Report) && m.unit.is_number(),
                    "{what}"
                ),
                Read::No => {}
            }
            // compare's verdicts take a ratio above 1 as worse, per batch or per instance.
            if let Some(g) = m.compare {
                assert!(matches!(m.read, Read::Sample(_)), "{what}");
                assert_eq!(m.better, Better::Lower, "{what}");
                assert!(g.tolerance >= 0.0 && g.floor >= 0.0, "{what}");
            }
            if m.per_batch {
                assert_eq!(m.file, File::Samples, "{what}");
            }
            match m.file {
                File::Kernel | File::Syscalls | File::Until => assert!(
                    m.definition.starts_with(m.file.name()),
                    "{what}: the definition names its file"
                ),
                File::Report => assert!(m.definition.starts_with("report: "), "{what}"),
                File::Samples | File::Summary => {}
            }
            if m.file == File::Samples {
                assert_eq!(
                    m.backends == Backends::Vm,
                    m.definition.starts_with("vm only: "),
                    "{what}"
                );
                assert_eq!(
                    m.backends == Backends::Container,
                    m.definition.starts_with("phase (container): "),
                    "{what}"
                );
                assert_eq!(
                    m.backends == Backends::Engine,
                    m.definition.starts_with("engine only (docker): "),
                    "{what}"
                );
            }
        }
    }

    #[test]
    fn decimals_are_found_by_file_and_column() {
        assert_eq!(decimals(File::Samples, "startup_ms"), Some(3));
        assert_eq!(decimals(File::Samples, "agent_uptime_s"), None);
        assert_eq!(decimals(File::Samples, "pss_kib"), None);
        assert_eq!(decimals(File::Samples, "backend"), None);
        assert_eq!(decimals(File::Kernel, "startup_ms"), None);
        assert_eq!(decimals(File::Syscalls, "ns_per_op"), Some(1));
        assert_eq!(decimals(File::Summary, "pss_kib_mean"), Some(3));
        assert_eq!(decimals(File::Summary, "disk_shared_kib"), Some(3));
        assert_eq!(decimals(File::Summary, "count"), None);
        assert_eq!(
            summary_column("startup_ms_p99"),
            Some((&STARTUP_MS, Stat::P99))
        );
        assert_eq!(summary_column("startup_ms"), None);
    }

    /// The rows of the README's table whose header and rule are `head`.
    pub(crate) fn readme_table(head: &str) -> Vec<&'static str> {
        let readme = include_str!("../../README.md");
        let at = readme
            .find(head)
            .unwrap_or_else(|| panic!("README.md has no table {head:?}"))
            + head.len();
        readme[at..]
            .lines()
            .take_while(|l| l.starts_with('|'))
            .collect()
    }

    #[test]
    fn the_readme_defines_every_figure_as_the_table_does() {
        let rows = readme_table("| column | unit | definition |\n|---|---|---|\n");
        let want: Vec<String> = METRICS.iter().map(|m| m.markdown_row()).collect();
        for w in &want {
            assert!(
                rows.contains(&w.as_str()),
                "README.md lacks the definitions row:\n{w}"
            );
        }
        assert_eq!(
            rows, want,
            "README.md's Definitions table differs from results::metrics::METRICS"
        );
    }
}
