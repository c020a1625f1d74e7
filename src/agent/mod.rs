//! The agent: the one workload program that runs inside every instance (as PID 1 of a
//! container, as a plain child process, later as a VM's init), and the harness side of its
//! line protocol. Identical workloads are what make backends comparable.
//!
//! Protocol on the agent's stdout, one line each:
//!   1. a JSON facts line (`Facts`), read from the kernel the agent runs on;
//!   2. `ready`: the end of start-up for every backend;
//!   3. for the `probe` workload, `probe {JSON}`: the isolation probes' outcomes; for the
//!      `syscalls` workload, `syscalls {JSON}`: ns per operation of each micro-benchmark;
//!   4. `done` once the workload has finished its work (it then idles until killed), or
//!      `error: MESSAGE` when the workload could not do its work (it idles all the same, so
//!      the instance is measured and torn down like the others).

pub mod probe;
pub mod reader;
pub mod syscalls;
pub mod vminit;
pub mod workload;

use serde::{Deserialize, Serialize};

/// Where the agent lives inside every instance. A directory of its own, so the agent layer
/// never shadows the image's files (its libc, its /bin).
pub const AGENT_DIR: &str = ".isobench";
pub const AGENT_IN_ROOTFS: &str = "/.isobench/isobench";

pub const READY_LINE: &str = "ready";
pub const DONE_LINE: &str = "done";
/// Prefix of the line that carries the `probe` workload's results.
pub const PROBE_PREFIX: &str = "probe ";
/// Prefix of the line that carries the `syscalls` workload's results.
pub const SYSCALLS_PREFIX: &str = "syscalls ";
/// Prefix of the line that says the workload failed, and why.
pub const ERROR_PREFIX: &str = "error: ";

/// What the agent reports of the kernel and system it runs on.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Facts {
    pub kernel_release: String,
    pub boot_id: String,
    /// /proc/uptime of that kernel, in seconds.
    pub uptime_s: f64,
    pub hostname: String,
    /// The agent's own pid as it sees it (1 in a new PID namespace).
    pub pid: u32,
    /// /proc/meminfo of that kernel, KiB (for a container these are the host's figures).
    #[serde(default)]
    pub mem_total_kib: Option<u64>,
    #[serde(default)]
    pub mem_available_kib: Option<u64>,
    #[serde(default)]
    pub slab_kib: Option<u64>,
    #[serde(default)]
    pub kernel_stack_kib: Option<u64>,
    #[serde(default)]
    pub page_tables_kib: Option<u64>,
    /// Kernel threads visible in /proc (PF_KTHREAD set); None when none are visible, as in a
    /// PID namespace.
    #[serde(default)]
    pub kthreads: Option<u32>,
    /// CLOCK_MONOTONIC, ns, when the agent's `main` was entered and just before it wrote
    /// `ready`: its phases on the harness's time line when it shares the harness's kernel.
    #[serde(default)]
    pub start_ns: Option<u64>,
    #[serde(default)]
    pub ready_ns: Option<u64>,
    /// In a VM: CLOCK_MONOTONIC of the guest when its /init (this binary) entered `main`,
    /// handed over by init in [`INIT_NS_ENV`]; with the guest clock's start, it splits a
    /// VM's boot into kernel and init.
    #[serde(default)]
    pub init_ns: Option<u64>,
}

/// How a VM's /init hands its own start stamp to the agent it execs.
pub const INIT_NS_ENV: &str = "ISOBENCH_INIT_NS";

/// CLOCK_MONOTONIC in ns, the clock of every phase stamp (Rust's `Instant` reads the same
/// clock on Linux). clock_gettime(2) is async-signal-safe: the container's child uses it
/// between clone and exec.
pub fn mono_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes into the timespec on our stack.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64).saturating_mul(1_000_000_000) + ts.tv_nsec as u64
}

static START_NS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Called first in `main` on the agent's path: the stamp of the agent's start.
pub fn mark_start() {
    START_NS.store(mono_ns(), std::sync::atomic::Ordering::Relaxed);
}

/// The stamp [`mark_start`] took (0 before it ran).
pub fn start_ns() -> u64 {
    START_NS.load(std::sync::atomic::Ordering::Relaxed)
}

/// Whether the agent counts kernel threads: only as a VM's agent, on a kernel of its own
/// (vminit sets it). On the host's kernel a count means reading every /proc/PID/stat of the
/// host before `ready`, which made start-up grow with the number of processes; the harness
/// counts the host's kernel threads itself, once per batch, outside every launch.
pub const COUNT_KTHREADS_ENV: &str = "ISOBENCH_COUNT_KTHREADS";

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

impl Facts {
    /// Reads the facts from /proc. Missing files give empty fields rather than failing: an
    /// instance without /proc still reports `ready`, and the empty field is visible in the row.
    pub fn gather() -> Facts {
        let uptime_s = read_trimmed("/proc/uptime")
            .split_whitespace()
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or(f64::NAN);
        let meminfo = read_meminfo();
        let uname = nix::sys::utsname::uname().ok();
        let field = |f: fn(&nix::sys::utsname::UtsName) -> &std::ffi::OsStr| {
            uname
                .as_ref()
                .map(|u| f(u).to_string_lossy().into_owned())
                .unwrap_or_default()
        };
        let mut kernel_release = read_trimmed("/proc/sys/kernel/osrelease");
        if kernel_release.is_empty() {
            // gVisor's /proc/sys/kernel has no osrelease; uname(2) is its kernel's answer.
            kernel_release = field(nix::sys::utsname::UtsName::release);
        }
        let mut boot_id = read_trimmed(BOOT_ID_FILE);
        if !boot_id.is_empty() && boot_id_mounted_over() {
            boot_id = format!("{BOOT_ID_MOUNTED}{boot_id}");
        }
        if boot_id.is_empty() {
            boot_id = absent_boot_id(&[
                &field(nix::sys::utsname::UtsName::sysname),
                &field(nix::sys::utsname::UtsName::release),
                &field(nix::sys::utsname::UtsName::version),
                &field(nix::sys::utsname::UtsName::machine),
            ]);
        }
        Facts {
            kernel_release,
            boot_id,
            uptime_s,
            hostname: nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_default(),
            pid: std::process::id(),
            mem_total_kib: meminfo.get("MemTotal").copied(),
            mem_available_kib: meminfo.get("MemAvailable").copied(),
            slab_kib: meminfo.get("Slab").copied(),
            kernel_stack_kib: meminfo.get("KernelStack").copied(),
            page_tables_kib: meminfo.get("PageTables").copied(),
            kthreads: std::env::var_os(COUNT_KTHREADS_ENV)
                .is_some()
                .then(count_kthreads)
                .flatten(),
            start_ns: Some(start_ns()).filter(|t| *t > 0),
            ready_ns: None,
            init_ns: std::env::var(INIT_NS_ENV).ok().and_then(|v| v.parse().ok()),
        }
    }

    /// Slab + KernelStack + PageTables: the kernel's own memory as meminfo shows it.
    pub fn kernel_kib(&self) -> Option<u64> {
        Some(self.slab_kib? + self.kernel_stack_kib? + self.page_tables_kib?)
    }
}

/// Prefix of the `boot_id` of a kernel that has none (gVisor's Sentry): the row says so.
pub const BOOT_ID_ABSENT: &str = "absent:";
/// Prefix of a `boot_id` read from a file mounted over the kernel's (LXC bind-mounts a random
/// one per container over it, /dev/.lxc-boot-id): it identifies no kernel.
pub const BOOT_ID_MOUNTED: &str = "mounted:";
const BOOT_ID_FILE: &str = "/proc/sys/kernel/random/boot_id";

/// Whether something is mounted on the boot_id file. statx says it in one call where the
/// kernel reports mount roots (5.8 and later): the file is then the root of a mount. Else
/// mountinfo's mount points (field 5) say it; generating mountinfo takes the mount
/// namespaces' lock that every concurrent launch's mounts take, and 1000 agents read it in
/// a batch.
fn boot_id_mounted_over() -> bool {
    use rustix::fs::{AtFlags, StatxAttributes, StatxFlags};
    if let Ok(st) = rustix::fs::statx(
        rustix::fs::CWD,
        BOOT_ID_FILE,
        AtFlags::SYMLINK_NOFOLLOW,
        StatxFlags::BASIC_STATS,
    ) {
        let root = StatxAttributes::MOUNT_ROOT;
        if st.stx_attributes_mask.contains(root) {
            return st.stx_attributes.contains(root);
        }
    }
    read_trimmed("/proc/self/mountinfo")
        .lines()
        .any(|l| l.split(' ').nth(4) == Some(BOOT_ID_FILE))
}

/// The identity of a kernel without /proc/sys/kernel/random/boot_id: `absent:` and the first
/// 16 hex digits of the SHA-256 of its uname (sysname, release, version, machine). It tells
/// that kernel from the host's and from a guest's, never fails, and is the same for every
/// sandbox of one gVisor build: the harness counts gVisor's kernels by their Sentry processes
/// (runner::kind::user_space_kernel), not by this.
pub fn absent_boot_id(uname: &[&str]) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(uname.join("\n").as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("{BOOT_ID_ABSENT}{hex}")
}

/// `/proc/meminfo` as name -> KiB.
fn read_meminfo() -> std::collections::HashMap<String, u64> {
    read_trimmed("/proc/meminfo")
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.to_string(), v.split_whitespace().next()?.parse().ok()?))
        })
        .collect()
}

/// PF_KTHREAD in /proc/PID/stat's flags field (include/linux/sched.h).
const PF_KTHREAD: u64 = 0x0020_0000;

pub fn count_kthreads() -> Option<u32> {
    let mut n = 0;
    for e in std::fs::read_dir("/proc").ok()?.flatten() {
        let name = e.file_name();
        if !name.to_string_lossy().bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // Fields after the parenthesised command: state is field 3, flags field 9.
        let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) else {
            continue;
        };
        let flags: u64 = rest
            .split_whitespace()
            .nth(6)
            .and_then(|f| f.parse().ok())
            .unwrap_or(0);
        if flags & PF_KTHREAD != 0 {
            n += 1;
        }
    }
    (n > 0).then_some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file mounted over boot_id, as LXC mounts one, is seen (in a private mount namespace
    /// of a thread of its own, gone with it); the host's boot_id has nothing on it.
    #[test]
    fn a_file_mounted_over_boot_id_is_seen() {
        if crate::skip::unless_root() {
            return;
        }
        assert!(
            !boot_id_mounted_over(),
            "the host's boot_id has a mount on it"
        );
        let seen = std::thread::spawn(|| {
            let null = std::ptr::null::<libc::c_char>();
            // SAFETY: unshare and mounts on C strings; after the unshare they change only this
            // thread's own mount namespace, private first so nothing propagates to the host's.
            unsafe {
                assert_eq!(libc::unshare(libc::CLONE_NEWNS), 0);
                let private = libc::MS_REC | libc::MS_PRIVATE;
                assert_eq!(
                    libc::mount(null, c"/".as_ptr(), null, private, null.cast()),
                    0
                );
                let (src, dst) = (c"/etc/hostname", c"/proc/sys/kernel/random/boot_id");
                let bind = libc::MS_BIND;
                assert_eq!(
                    libc::mount(src.as_ptr(), dst.as_ptr(), null, bind, null.cast()),
                    0
                );
            }
            boot_id_mounted_over()
        })
        .join()
        .unwrap();
        assert!(seen, "a bind mount over {BOOT_ID_FILE} was not seen");
    }
}
