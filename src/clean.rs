//! `isobench clean`: removes what a killed run left, found by its run-id markers only:
//! state dirs under the state root (with an owner file), `isobench/<run-id>` cgroups, and
//! processes carrying `ISOBENCH_RUN_ID` in their environment. A run whose owner is still
//! alive (the run id names it, see [`owner_tag`]) is left alone.

use crate::host::cgroup::{self, CgroupHost};
use crate::runner::OWNER_FILE;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The environment variable that marks every process of a run.
pub const RUN_ID_ENV: &str = "ISOBENCH_RUN_ID";

/// What the state dir's owner file records, for a human reading a leftover state dir.
#[derive(Debug, Serialize, Deserialize)]
pub struct Owner {
    pub pid: i32,
    pub starttime: u64,
    pub run_dir: PathBuf,
}

fn starttime(pid: i32) -> Option<u64> {
    procfs::process::Process::new(pid)
        .ok()?
        .stat()
        .ok()
        .map(|s| s.starttime)
}

/// The owner's identity, the last part of every run id: `p<pid>t<start time>`, the start time
/// in clock ticks after boot (/proc/PID/stat field 22), so a reused pid never passes for the
/// owner. Carried in the run id, it travels with every marker (process environments, cgroup
/// names, state dirs), so any marker alone tells whether its run is still alive, whatever
/// state root `clean` was pointed at.
pub fn owner_tag() -> String {
    let pid = std::process::id() as i32;
    format!("p{pid}t{}", starttime(pid).unwrap_or(0))
}

/// The pid of the live process that owns `run_id`, if it still runs.
pub fn run_owner_alive(run_id: &str) -> Option<i32> {
    let tag = run_id.rsplit('-').next()?.strip_prefix('p')?;
    let (pid, t) = tag.split_once('t')?;
    let (pid, t): (i32, u64) = (pid.parse().ok()?, t.parse().ok()?);
    (starttime(pid) == Some(t)).then_some(pid)
}

/// Writes the owner marker of a run's state dir.
pub fn write_owner(state_dir: &Path, run_dir: &Path) -> std::io::Result<()> {
    let pid = std::process::id() as i32;
    let owner = Owner {
        pid,
        starttime: starttime(pid).unwrap_or(0),
        run_dir: run_dir.to_path_buf(),
    };
    std::fs::write(
        state_dir.join(OWNER_FILE),
        serde_json::to_string(&owner).map_err(std::io::Error::other)?,
    )
}

/// What `clean` did (or, with dry_run, would do); printed as text or JSON.
#[derive(Debug, Default, Serialize)]
pub struct CleanReport {
    pub runs: Vec<String>,
    pub killed: Vec<i32>,
    pub unmounted: Vec<PathBuf>,
    pub cgroups: Vec<PathBuf>,
    pub dirs: Vec<PathBuf>,
    /// KSM settings a killed run had changed were put back.
    pub ksm_restored: bool,
    /// Runs whose owner still lives: not touched.
    pub active: Vec<(String, i32)>,
    pub errors: Vec<String>,
}

impl CleanReport {
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty() && self.active.is_empty() && self.errors.is_empty()
    }
}

/// Processes whose environment carries `RUN_ID_ENV`, as (pid, run id).
pub fn marked_processes() -> Vec<(i32, String)> {
    let mut out = Vec::new();
    let me = std::process::id() as i32;
    let Ok(all) = procfs::process::all_processes() else {
        return out;
    };
    for p in all.flatten() {
        if p.pid == me {
            continue;
        }
        if let Ok(env) = p.environ()
            && let Some(id) = env.get(std::ffi::OsStr::new(RUN_ID_ENV))
        {
            out.push((p.pid, id.to_string_lossy().into_owned()));
        }
    }
    out
}

/// Mount points at or under `dir` in this mount namespace, deepest first.
fn mounts_under(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = procfs::process::Process::myself()
        .and_then(|p| p.mountinfo())
        .map(|mi| {
            mi.into_iter()
                .map(|m| m.mount_point)
                .filter(|m| m.starts_with(dir))
                .collect()
        })
        .unwrap_or_default();
    v.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    v
}

/// Cleans every dead run found under `state_root` and in the cgroup trees.
pub fn clean(state_root: &Path, dry_run: bool) -> CleanReport {
    let mut report = CleanReport::default();
    let cg = CgroupHost::detect().ok();
    let procs = marked_processes();
    let mut ids: BTreeSet<String> = BTreeSet::new();
    if let Ok(rd) = std::fs::read_dir(state_root) {
        for e in rd.flatten() {
            if e.path().join(OWNER_FILE).exists() {
                ids.insert(e.file_name().to_string_lossy().into_owned());
            }
        }
    }
    if let Some(cg) = &cg {
        ids.extend(cg.run_dirs().into_iter().map(|(id, _)| id));
    }
    ids.extend(procs.iter().map(|(_, id)| id.clone()));

    for id in ids {
        let state_dir = state_root.join(&id);
        if let Some(pid) = run_owner_alive(&id) {
            report.active.push((id, pid));
            continue;
        }
        report.runs.push(id.clone());
        if dry_run {
            continue;
        }
        // Processes first (their death releases mounts and cgroups), then mounts, cgroups, files.
        let mine: Vec<i32> = procs
            .iter()
            .filter(|(_, r)| *r == id)
            .map(|(p, _)| *p)
            .collect();
        for &pid in &mine {
            if kill(Pid::from_raw(pid), Signal::SIGKILL).is_ok() {
                report.killed.push(pid);
            }
        }
        wait_gone(&mine, Duration::from_secs(5));
        for m in mounts_under(&state_dir) {
            match nix::mount::umount2(&m, nix::mount::MntFlags::MNT_DETACH) {
                Ok(()) => report.unmounted.push(m),
                Err(e) => report.errors.push(format!("umount {}: {e}", m.display())),
            }
        }
        if let Some(cg) = &cg {
            for (rid, dir) in cg.run_dirs() {
                if rid == id {
                    match cgroup::remove_tree(&dir, Duration::from_secs(5)) {
                        Ok(()) => report.cgroups.push(dir),
                        Err(e) => report.errors.push(e.to_string()),
                    }
                }
            }
        }
        match crate::measure::ksm::restore_recorded(&state_dir.join(crate::batch::KSM_RECORD)) {
            Ok(true) => report.ksm_restored = true,
            Ok(false) => {}
            Err(e) => report.errors.push(format!("restoring KSM settings: {e}")),
        }
        if state_dir.exists() {
            match std::fs::remove_dir_all(&state_dir) {
                Ok(()) => report.dirs.push(state_dir),
                Err(e) => report.errors.push(format!("{}: {e}", state_dir.display())),
            }
        }
    }
    if !dry_run {
        if let Some(cg) = &cg {
            cg.remove_top_if_empty();
        }
        let _ = std::fs::remove_dir(state_root);
    }
    report
}

fn wait_gone(pids: &[i32], limit: Duration) {
    let start = Instant::now();
    while start.elapsed() < limit {
        // A killed process of a dead run is nobody's child any more: it is gone once /proc/PID
        // is, or once it is a zombie (some inits never reap).
        if pids.iter().all(|p| crate::host::is_gone(*p)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_id_names_its_live_owner_and_nothing_else() {
        let me = std::process::id() as i32;
        assert_eq!(
            run_owner_alive(&format!("20261123T000000Z-quick-{}", owner_tag())),
            Some(me)
        );
        // Same pid, another start time: a reused pid is not the owner.
        assert_eq!(run_owner_alive(&format!("x-p{me}t1")), None);
        assert_eq!(run_owner_alive("20261123T000000Z-quick-4a12"), None);
        assert_eq!(run_owner_alive("no-tag"), None);
    }
}
