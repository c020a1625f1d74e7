//! Facts and seams of the host: cgroups, host metadata, privileges.

pub mod cgroup;
pub mod meta;

/// True when running as root (uid 0): launching containers needs it.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Raises the soft open-file limit to the hard one: every live instance keeps a pipe or two
/// open, and N can be in the thousands.
pub fn raise_nofile_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
    {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

/// The host's kernel boot_id, the identity every container must report and no VM may.
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Peak resident set of this process (VmHWM), in KiB.
pub fn self_peak_rss_kib() -> Option<u64> {
    procfs::process::Process::myself()
        .ok()?
        .status()
        .ok()?
        .vmhwm
}
