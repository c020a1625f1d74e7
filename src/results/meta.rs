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
    /// `complete`, `interrupted`, or `failed: <why>`.
    pub outcome: String,
    /// How each backend ran: `none` on the host kernel, `kvm` or `tcg` for VMs, and why.
    pub accelerators: Vec<AccelNote>,
    /// The scenario's security profiles (`docker`, `runc`, `none`): what container and oci
    /// instances were given. What each instance really had is in its row.
    pub security: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AccelNote {
    pub backend: String,
    pub accel: String,
    pub why: String,
}

/// The git revision isobench was built from (set by build.rs), "unknown" outside a checkout.
pub const GIT_REVISION: &str = env!("ISOBENCH_GIT_REVISION");
