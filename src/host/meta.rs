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

/// Facts about this host that do not depend on the run.
pub struct HostFacts {
    pub hostname: String,
    pub kernel: String,
    pub cpu_model: String,
    pub cpu_cores: usize,
    pub mem_total_kib: u64,
}

impl HostFacts {
    pub fn gather() -> HostFacts {
        let uts = nix::sys::utsname::uname().ok();
        let s = |f: fn(&nix::sys::utsname::UtsName) -> &std::ffi::OsStr| {
            uts.as_ref()
                .map(|u| f(u).to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        let (cpu_model, cpu_cores, mem_total_kib) = match sysinfo::System::new() {
            Ok(mut sys) => {
                sys.refresh_cpu_list(sysinfo::CpuRefreshKind::nothing());
                sys.refresh_memory();
                let model = sys
                    .cpus()
                    .first()
                    .map(|c| c.brand().trim().to_string())
                    .unwrap_or_default();
                (model, sys.cpus().len(), sys.total_memory() / 1024)
            }
            Err(_) => (String::new(), 0, 0),
        };
        HostFacts {
            hostname: s(|u| u.nodename()),
            kernel: format!("{} {}", s(|u| u.release()), s(|u| u.version())),
            cpu_model,
            cpu_cores,
            mem_total_kib,
        }
    }
}

/// The git revision isobench was built from (set by build.rs), "unknown" outside a checkout.
pub const GIT_REVISION: &str = env!("ISOBENCH_GIT_REVISION");
