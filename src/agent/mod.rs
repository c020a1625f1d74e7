//! The agent: the one workload program that runs inside every instance (as PID 1 of a
//! container, as a plain child process, later as a VM's init), and the harness side of its
//! line protocol. Identical workloads are what make backends comparable.
//!
//! Protocol on the agent's stdout, one line each:
//!   1. a JSON facts line (`Facts`), read from the kernel the agent runs on;
//!   2. `ready`: the end of start-up for every backend;
//!   3. `done` once the workload has finished its work (it then idles until killed).

pub mod reader;
pub mod workload;

use serde::{Deserialize, Serialize};

pub const READY_LINE: &str = "ready";
pub const DONE_LINE: &str = "done";

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
}

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
        Facts {
            kernel_release: read_trimmed("/proc/sys/kernel/osrelease"),
            boot_id: read_trimmed("/proc/sys/kernel/random/boot_id"),
            uptime_s,
            hostname: nix::unistd::gethostname()
                .ok()
                .and_then(|h| h.into_string().ok())
                .unwrap_or_default(),
            pid: std::process::id(),
        }
    }
}
