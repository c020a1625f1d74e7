//! Facts about this host that do not depend on a run: name, kernel, CPU, memory.

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
