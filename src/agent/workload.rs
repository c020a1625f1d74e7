//! The agent's side: print facts and `ready`, run the workload, print `done`, idle until killed.

use super::{DONE_LINE, ERROR_PREFIX, Facts, PROBE_PREFIX, READY_LINE, SYSCALLS_PREFIX};
use std::io::Write;

/// Where `write-file` writes inside the instance: on its private copy-on-write layer.
pub const WRITE_FILE_PATH: &str = "/var/tmp/isobench-write-file";
/// For instances without a root of their own (process, unshare): the directory the harness
/// gave the instance on the host, so `write-file` lands in a private place it removes.
pub const WRITE_DIR_ENV: &str = "ISOBENCH_WRITE_DIR";

fn write_file_path() -> std::path::PathBuf {
    match std::env::var_os(WRITE_DIR_ENV) {
        Some(d) => std::path::PathBuf::from(d).join("isobench-write-file"),
        None => std::path::PathBuf::from(WRITE_FILE_PATH),
    }
}

/// Most children the `fork` workload makes: enough to hit any sensible pids limit.
pub const FORK_MAX: i64 = 4096;
/// Time budget of each `syscalls` operation, ms: by default, and at most.
pub const SYSCALLS_BUDGET_MS_DEFAULT: i64 = 100;
pub const SYSCALLS_BUDGET_MS_MAX: i64 = 10_000;

const MIB: usize = 1 << 20;

/// Why the agent could not run its workload (printed by the agent, which then exits).
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    #[error("agent: {workload:?}: {what} must be 1..={max}")]
    BadNumber {
        workload: Vec<String>,
        what: &'static str,
        max: usize,
    },
    #[error(
        "agent: unknown workload {0:?}; allowed: idle, probe, syscalls [BUDGET_MS], touch-memory MIB, write-file MIB, fork COUNT"
    )]
    Unknown(String),
    #[error("agent: writing to stdout: {0}")]
    Stdout(#[source] std::io::Error),
    #[error("agent: encoding the {what} line: {source}")]
    Json {
        what: &'static str,
        source: serde_json::Error,
    },
    #[error("agent: write-file {}: {source}", .path.display())]
    WriteFile {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// The `fork` workload's outcome when the kernel refused a fork: how far it got.
    #[error("fork {wanted}: refused after {made} children: {}", fork_why(*.errno))]
    ForkRefused {
        wanted: usize,
        made: usize,
        errno: nix::errno::Errno,
    },
}

fn fork_why(errno: nix::errno::Errno) -> String {
    if errno == nix::errno::Errno::EAGAIN {
        "EAGAIN (a pids limit or RLIMIT_NPROC is in force)".to_string()
    } else {
        errno.to_string()
    }
}

fn json<T: serde::Serialize>(what: &'static str, v: &T) -> Result<String, WorkloadError> {
    serde_json::to_string(v).map_err(|source| WorkloadError::Json { what, source })
}

/// Runs the agent with the workload named by `args` (`idle`, `touch-memory MIB`,
/// `write-file MIB`). Returns only on bad arguments or an I/O error; otherwise it idles
/// until killed, because an instance's lifetime is the harness's decision.
pub fn run(args: &[String]) -> Result<std::convert::Infallible, WorkloadError> {
    let workload: Vec<&str> = args.iter().map(String::as_str).collect();
    let number =
        |v: Option<&&str>, max: usize, what: &'static str| -> Result<usize, WorkloadError> {
            v.and_then(|s| s.parse::<usize>().ok())
                .filter(|m| (1..=max).contains(m))
                .ok_or_else(|| WorkloadError::BadNumber {
                    workload: args.to_vec(),
                    what,
                    max,
                })
        };
    let mib = |v| number(v, 65536, "MiB");
    // Validate before printing anything, so a bad call never looks ready.
    let plan = match workload.first().copied() {
        Some("idle") | None => Plan::Idle,
        Some("probe") => Plan::Probe,
        Some("syscalls") => Plan::Syscalls(match workload.get(1) {
            None => SYSCALLS_BUDGET_MS_DEFAULT as usize,
            v => number(v, SYSCALLS_BUDGET_MS_MAX as usize, "BUDGET_MS")?,
        }),
        Some("touch-memory") => Plan::Touch(mib(workload.get(1))?),
        Some("write-file") => Plan::Write(mib(workload.get(1))?),
        Some("fork") => Plan::Fork(number(workload.get(1), FORK_MAX as usize, "COUNT")?),
        Some(other) => return Err(WorkloadError::Unknown(other.to_string())),
    };

    // `ready` first, then the facts: reading /proc (meminfo, mountinfo, the boot id; in a VM
    // every kernel thread) is the agent's measurement of its kernel, not the instance's
    // start-up, and took 0.3 ms of a container's 3.5 before `ready` when it came first.
    let ready_ns = super::mono_ns();
    let mut out = std::io::stdout().lock();
    // One write(2) per line: stdout's line buffer is flushed at once, so the harness wakes
    // once for `ready`, inside start-up, and once for the facts, after it.
    out.write_all(format!("{READY_LINE}\n").as_bytes())
        .and_then(|()| out.flush())
        .map_err(WorkloadError::Stdout)?;
    let mut facts = Facts::gather();
    facts.ready_ns = Some(ready_ns);
    let facts = json("facts", &facts)?;
    out.write_all(format!("{facts}\n").as_bytes())
        .and_then(|()| out.flush())
        .map_err(WorkloadError::Stdout)?;

    // The memory stays referenced until the process dies: `_held` lives for the idle loop.
    let mut failed = None;
    let _held = match plan {
        Plan::Idle => Vec::new(),
        Plan::Probe => {
            let results = json("probe", &super::probe::run())?;
            writeln!(out, "{PROBE_PREFIX}{results}").map_err(WorkloadError::Stdout)?;
            Vec::new()
        }
        Plan::Syscalls(ms) => {
            let costs = super::syscalls::run(std::time::Duration::from_millis(ms as u64));
            let line = json("syscalls", &costs)?;
            writeln!(out, "{SYSCALLS_PREFIX}{line}").map_err(WorkloadError::Stdout)?;
            Vec::new()
        }
        Plan::Touch(m) => touch_memory(m),
        Plan::Write(m) => {
            write_file(m)?;
            Vec::new()
        }
        Plan::Fork(n) => {
            failed = fork_children(n).err();
            Vec::new()
        }
    };
    let last = match failed {
        None => DONE_LINE.to_string(),
        Some(why) => format!("{ERROR_PREFIX}{why}"),
    };
    writeln!(out, "{last}")
        .and_then(|()| out.flush())
        .map_err(WorkloadError::Stdout)?;
    drop(out);
    loop {
        // pause() until a signal; the harness ends us with SIGKILL.
        nix::unistd::pause();
    }
}

enum Plan {
    Idle,
    Probe,
    Syscalls(usize),
    Touch(usize),
    Write(usize),
    Fork(usize),
}

/// Forks `n` children that idle until killed (they die with the instance). A fork refused
/// with EAGAIN is what a pids limit (or RLIMIT_NPROC) does: the error says how far it got.
fn fork_children(n: usize) -> Result<(), WorkloadError> {
    use nix::unistd::{ForkResult, fork};
    for made in 0..n {
        // SAFETY: the agent is single-threaded; the child only loops on pause(2).
        match unsafe { fork() } {
            Ok(ForkResult::Child) => loop {
                nix::unistd::pause();
            },
            Ok(ForkResult::Parent { .. }) => {}
            Err(errno) => {
                return Err(WorkloadError::ForkRefused {
                    wanted: n,
                    made,
                    errno,
                });
            }
        }
    }
    Ok(())
}

/// Allocates `mib` MiB and writes one byte per page so every page is really backed.
fn touch_memory(mib: usize) -> Vec<u8> {
    let mut buf = vec![0u8; mib * MIB];
    let page = 4096;
    for i in (0..buf.len()).step_by(page) {
        // Non-zero so the kernel cannot keep the zero page mapped.
        buf[i] = 1 + (i / page % 251) as u8;
    }
    std::hint::black_box(&buf);
    buf
}

/// Writes `mib` MiB of non-repeating data and syncs it, so it lands on the instance's private
/// layer (overlay upper dir, qcow2 overlay) where disk use is measured.
fn write_file(mib: usize) -> Result<(), WorkloadError> {
    let path = write_file_path();
    let err = |source| WorkloadError::WriteFile {
        path: path.clone(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let mut f = std::fs::File::create(&path).map_err(err)?;
    let mut block = vec![0u8; MIB];
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..mib {
        // xorshift: cheap bytes that no filesystem can compress or dedupe away.
        for chunk in block.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
        }
        f.write_all(&block).map_err(err)?;
    }
    f.sync_all().map_err(err)
}
