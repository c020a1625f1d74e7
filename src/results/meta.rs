//! meta.json: what a reader needs to trust or reproduce a run (host, versions, scenario).

use serde::{Deserialize, Serialize};

/// The contents of meta.json. Written at the start of a run and rewritten at its end; read
/// back by `report`, `compare` and `plan`, which tolerate fields an older isobench did not write.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct RunMeta {
    pub run_id: String,
    pub scenario: String,
    pub scenario_origin: String,
    pub scenario_text: String,
    pub isobench_version: String,
    pub git_revision: String,
    pub command_line: Vec<String>,
    pub hostname: String,
    /// How fleet reports and plans name this host (`run --host-label`, default the
    /// hostname): `[A-Za-z0-9._-]`, 1 to 63 characters. Empty in runs of an older isobench.
    pub host_label: String,
    /// Bare metal or a VM (and which hypervisor), with the evidence.
    pub virtualization: Virtualization,
    pub host_kernel: String,
    pub host_boot_id: String,
    pub cgroup_mode: String,
    pub cgroup_controllers: Vec<String>,
    pub cpu_model: String,
    pub cpu_cores: usize,
    pub mem_total_kib: u64,
    pub started_at: String,
    pub ended_at: Option<String>,
    /// Peak resident set of the harness itself over the run, KiB (VmHWM).
    pub harness_peak_rss_kib: Option<u64>,
    /// CPU time (user + system) of the harness process itself over the run, ms: its own
    /// threads, not the instances it launched (RUSAGE_SELF).
    pub harness_cpu_ms: Option<f64>,
    /// harness_cpu_ms over the instances the run launched (rows of samples.csv).
    pub harness_cpu_ms_per_instance: Option<f64>,
    /// Where the run's wall time went, phase by phase.
    pub wall: Option<WallBreakdown>,
    /// `complete`, `interrupted`, or `failed: <why>`.
    pub outcome: String,
    /// How each backend ran: `none` on the host kernel, `kvm` or `tcg` for VMs, and why.
    pub accelerators: Vec<AccelNote>,
    /// The scenario's security profiles (`docker`, `runc`, `none`): what container and oci
    /// instances were given. What each instance really had is in its row.
    pub security: Vec<String>,
}

/// A run's wall time by phase, seconds. The phases are the progress display's: `prepare`
/// (backends, images, probes), `warmup`, `launch`, `measure` (workloads, isolation, memory
/// views), `teardown`, and the waits: `settle` (memory readings holding still), `ksm` (until
/// KSM's counters converge) and `idle` (the idle-CPU window).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct WallBreakdown {
    pub total_s: f64,
    pub prepare_s: f64,
    pub warmup_s: f64,
    pub launch_s: f64,
    pub measure_s: f64,
    pub teardown_s: f64,
    pub settle_s: f64,
    pub ksm_s: f64,
    pub idle_s: f64,
    /// settle + ksm + idle.
    pub waits_s: f64,
    /// waits_s over total_s, percent.
    pub waits_pct: f64,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AccelNote {
    pub backend: String,
    pub accel: String,
    pub why: String,
}

/// Whether the host is bare metal or a VM, and the evidence for it. Density on a VM host is
/// nested (its "bare" containers share a guest kernel, its VMs are nested or emulated), so a
/// fleet report must say which hosts were which.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Virtualization {
    /// `bare-metal`, `vm` or `unknown`.
    pub kind: String,
    /// The hypervisor when `kind` is `vm` (`kvm`, `qemu`, `vmware`, `microsoft`, `xen`,
    /// `amazon`, ...); empty when it cannot be told.
    pub hypervisor: String,
    /// The container the harness itself runs in (`docker`, `lxc`, ...), as
    /// systemd-detect-virt --container says; empty when none or unknown.
    pub container: String,
    /// /sys/class/dmi/id/sys_vendor and product_name (empty when absent).
    pub sys_vendor: String,
    pub product_name: String,
    /// The `hypervisor` flag of /proc/cpuinfo (CPUID leaf 1, ECX bit 31): set by every
    /// hypervisor that announces itself.
    pub cpu_hypervisor_flag: bool,
    /// What `systemd-detect-virt --vm` printed, when it is installed.
    pub detect_virt: Option<String>,
}

impl Virtualization {
    /// One line for tables: `bare metal`, `vm (kvm)`, plus the container the harness ran in.
    pub fn describe(&self) -> String {
        let base = match (self.kind.as_str(), self.hypervisor.as_str()) {
            ("", _) => "-".to_string(),
            ("bare-metal", _) => "bare metal".to_string(),
            ("vm", "") => "vm (hypervisor unknown)".to_string(),
            ("vm", h) => format!("vm ({h})"),
            (k, _) => k.to_string(),
        };
        if self.container.is_empty() {
            base
        } else {
            format!("{base}, harness in a {} container", self.container)
        }
    }
}

/// The git revision isobench was built from (set by build.rs), "unknown" outside a checkout.
pub const GIT_REVISION: &str = env!("ISOBENCH_GIT_REVISION");
