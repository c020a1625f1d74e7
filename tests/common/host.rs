//! Host-state snapshots for integration tests: what an isobench run may leave on the host
//! (mounts, cgroups, marked processes, its state dir), captured before a run and checked after.
//!
//! Self-contained (std, nix-free) so any test file can include it with
//! `#[path = "common/host.rs"] mod host;` without depending on `tests/common/mod.rs`.
//!
//! Concurrency: test binaries may run in parallel (nextest runs every test in its own
//! process), and other tests launch instances of their own, under run ids of their own making
//! (`test<n>-p<pid>t<start time>` in tests/common/mod.rs). So the check after a run compares the snapshot
//! taken before only for what can be attributed to *our* runs: mounts at or under our state dir
//! or naming one of our run ids, cgroup directories below `isobench/<our run id>`, processes
//! marked with our run ids. Everything a run creates is named that way, so nothing of ours
//! escapes the check; isobench entries of other runs that appeared meanwhile are printed to
//! stderr and otherwise ignored.
//!
//! `isobench clean` acts on every run of the host, not only those under its --state-dir, so
//! tests that run instances or `clean` take [`host_lock`], a file lock shared by all processes.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The environment variable that marks every process of a run (src/host/run_id.rs).
pub const RUN_ID_ENV: &str = "ISOBENCH_RUN_ID";
/// The directory under each cgroup hierarchy that holds every run (src/host/cgroup.rs).
pub const CGROUP_TOP: &str = "isobench";

/// The KSM settings a run changes while it merges (src/measure/ksm.rs), as the files hold them.
pub const KSM_SETTINGS: &[&str] = &["run", "pages_to_scan", "sleep_millisecs"];

/// What of isobench is on the host at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostSnapshot {
    /// `name=value` of each of [`KSM_SETTINGS`] (empty without KSM).
    pub ksm: Vec<String>,
    /// Mounts whose mountinfo line mentions "isobench" anywhere (mount point, root, source,
    /// options such as an overlay's lowerdir), as "MOUNT_POINT (FSTYPE SOURCE ROOT)".
    pub mounts: BTreeSet<String>,
    /// Every directory below `<hierarchy>/isobench`, recursively, for every cgroup (v1) and
    /// cgroup2 mount.
    pub cgroups: BTreeSet<PathBuf>,
    /// (pid, run id) of every process carrying `ISOBENCH_RUN_ID` in its environment.
    pub marked: BTreeSet<(i32, String)>,
}

/// Captures the isobench-related state of the host now.
pub fn snapshot() -> HostSnapshot {
    HostSnapshot {
        mounts: mountinfo()
            .into_iter()
            .filter(|m| m.line.contains("isobench"))
            .map(|m| m.describe())
            .collect(),
        cgroups: isobench_cgroup_dirs(),
        marked: marked_processes(),
        ksm: ksm_settings(),
    }
}

/// `name=value` of each of [`KSM_SETTINGS`] now.
pub fn ksm_settings() -> Vec<String> {
    KSM_SETTINGS
        .iter()
        .filter_map(|k| {
            let v = std::fs::read_to_string(Path::new("/sys/kernel/mm/ksm").join(k)).ok()?;
            Some(format!("{k}={}", v.trim()))
        })
        .collect()
}

/// Asserts that nothing of the runs `run_ids` (whose state root was `state_dir`) is left on
/// the host:
/// - `state_dir` is gone or empty (a run removes a root only if it made it; `clean` never
///   removes one), and nothing is mounted at or under it: no run state dir, no overlay, no
///   qcow2 overlay, no pid record is left;
/// - no isobench mount that appeared since `before` is under `state_dir` or names a run id;
/// - no cgroup directory `<hierarchy>/isobench/<one of run_ids>[/...]` exists;
/// - no process carries `ISOBENCH_RUN_ID=<one of run_ids>`, and none names `state_dir` on
///   its command line (a QEMU's disk, a runtime's `--root`);
/// - KSM's settings are as they were in `before`.
///
/// New isobench mounts and cgroups of other runs are listed on stderr (see the module docs).
pub fn assert_clean_since(before: &HostSnapshot, state_dir: &Path, run_ids: &[String]) {
    let after = snapshot();
    let mut problems: Vec<String> = Vec::new();
    let mut ignored: Vec<String> = Vec::new();

    let left = list_dir(state_dir);
    if !left.is_empty() {
        problems.push(format!(
            "state root {} still holds {left:?}",
            state_dir.display()
        ));
    }
    for (pid, cmd) in processes_naming(state_dir) {
        problems.push(format!("process {pid} names the state root: {cmd}"));
    }
    if after.ksm != before.ksm {
        problems.push(format!(
            "KSM settings changed: {:?} before, {:?} now",
            before.ksm, after.ksm
        ));
    }
    for m in mountinfo() {
        if Path::new(&m.mount_point).starts_with(state_dir) {
            problems.push(format!("mount under the state dir: {}", m.describe()));
        }
    }

    let state = state_dir.to_string_lossy();
    let ours = |s: &str| run_ids.iter().any(|id| s.contains(id.as_str())) || s.contains(&*state);
    for m in after.mounts.difference(&before.mounts) {
        if ours(m) {
            problems.push(format!("mount of our run: {m}"));
        } else {
            ignored.push(format!("mount: {m}"));
        }
    }

    for dir in &after.cgroups {
        let of_ours = run_component(dir).is_some_and(|id| run_ids.contains(&id));
        if of_ours {
            problems.push(format!("cgroup of our run: {}", dir.display()));
        } else if !before.cgroups.contains(dir) {
            ignored.push(format!("cgroup: {}", dir.display()));
        }
    }

    for (pid, id) in &after.marked {
        if run_ids.contains(id) {
            problems.push(format!(
                "process {pid} of our run {id} still alive: {}",
                cmdline(*pid)
            ));
        }
    }

    for i in &ignored {
        eprintln!("note: appeared during the test, not ours (a concurrent test?): {i}");
    }
    assert!(
        problems.is_empty(),
        "host not clean after runs {run_ids:?}:\n  {}",
        problems.join("\n  ")
    );
}

/// Waits up to `timeout` until no process carries one of `run_ids`; returns what is left.
pub fn wait_until_no_marked(run_ids: &[String], timeout: Duration) -> Vec<(i32, String)> {
    let start = Instant::now();
    loop {
        let left: Vec<(i32, String)> = marked_processes()
            .into_iter()
            .filter(|(_, id)| run_ids.contains(id))
            .collect();
        if left.is_empty() || start.elapsed() >= timeout {
            return left;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// True if anything of run `run_id` is on the host: a marked process, a cgroup directory,
/// or a mount naming it.
pub fn run_leftovers(run_id: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (pid, id) in marked_processes() {
        if id == run_id {
            out.push(format!("process {pid}"));
        }
    }
    for d in isobench_cgroup_dirs() {
        if run_component(&d).as_deref() == Some(run_id) {
            out.push(format!("cgroup {}", d.display()));
        }
    }
    for m in mountinfo() {
        if m.line.contains(run_id) {
            out.push(format!("mount {}", m.describe()));
        }
    }
    out
}

/// Held while a test runs instances or `isobench clean`; released on drop.
pub struct HostLock(std::fs::File);

/// Waits for the host-wide test lock: a file lock (`flock`) on a file in /run, so it
/// serialises the test threads and test processes (nextest) of every test binary and of every
/// checkout on this host (their host snapshots would otherwise see each other's instances),
/// and a crashed holder releases it.
pub fn host_lock() -> HostLock {
    let path = Path::new("/run/isobench-tests.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    file.lock()
        .unwrap_or_else(|e| panic!("locking {}: {e}", path.display()));
    HostLock(file)
}

// ---- mounts ------------------------------------------------------------------------------

/// One line of /proc/self/mountinfo.
#[derive(Debug, Clone)]
pub struct Mount {
    pub line: String,
    pub root: String,
    pub mount_point: String,
    pub fstype: String,
    pub source: String,
}

impl Mount {
    fn describe(&self) -> String {
        format!(
            "{} ({} {} {})",
            self.mount_point, self.fstype, self.source, self.root
        )
    }
}

/// The mount table of this process's mount namespace (the host's, for a test process).
pub fn mountinfo() -> Vec<Mount> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut out = Vec::new();
    for line in text.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let l: Vec<&str> = left.split(' ').collect();
        let r: Vec<&str> = right.split(' ').collect();
        if l.len() < 5 || r.len() < 2 {
            continue;
        }
        out.push(Mount {
            line: unescape(line),
            root: unescape(l[3]),
            mount_point: unescape(l[4]),
            fstype: r[0].to_string(),
            source: unescape(r[1]),
        });
    }
    out
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..=i + 3].iter().all(|d| (b'0'..=b'7').contains(d))
        {
            let v = b[i + 1..=i + 3]
                .iter()
                .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
            out.push(v as u8);
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---- cgroups -----------------------------------------------------------------------------

/// Mount points of every cgroup hierarchy: each v1 `cgroup` mount and the `cgroup2` mount.
pub fn cgroup_roots() -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = Vec::new();
    for m in mountinfo() {
        if m.fstype == "cgroup" || m.fstype == "cgroup2" {
            let p = PathBuf::from(&m.mount_point);
            if !roots.contains(&p) {
                roots.push(p);
            }
        }
    }
    roots
}

/// Every directory below `<root>/isobench` for every hierarchy (not the `isobench` dirs
/// themselves, which concurrent runs share).
pub fn isobench_cgroup_dirs() -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    for root in cgroup_roots() {
        walk_dirs(&root.join(CGROUP_TOP), &mut out);
    }
    out
}

fn walk_dirs(dir: &Path, out: &mut BTreeSet<PathBuf>) {
    // Directories come and go under concurrent runs: a vanished one is simply not listed.
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
            let p = e.path();
            walk_dirs(&p, out);
            out.insert(p);
        }
    }
}

/// The first path component after `.../isobench/`: the run id of a run's cgroup tree.
pub fn run_component(dir: &Path) -> Option<String> {
    let mut comps = dir.components().map(|c| c.as_os_str().to_string_lossy());
    comps.find(|c| c == CGROUP_TOP)?;
    comps.next().map(|c| c.into_owned())
}

// ---- processes ---------------------------------------------------------------------------

/// (pid, run id) of every process whose environment carries `ISOBENCH_RUN_ID` (this test
/// process excluded). Needs root to read other users' environments.
pub fn marked_processes() -> BTreeSet<(i32, String)> {
    let me = std::process::id() as i32;
    let mut out = BTreeSet::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    let prefix = format!("{RUN_ID_ENV}=");
    for e in rd.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        // A process may exit between listing and reading: skip it.
        let Ok(env) = std::fs::read(e.path().join("environ")) else {
            continue;
        };
        for var in env.split(|b| *b == 0) {
            if let Some(id) = var.strip_prefix(prefix.as_bytes()) {
                out.insert((pid, String::from_utf8_lossy(id).into_owned()));
            }
        }
    }
    out
}

/// (pid, command line) of every process but this one whose command line mentions `path`.
pub fn processes_naming(path: &Path) -> Vec<(i32, String)> {
    let me = std::process::id() as i32;
    let needle = path.to_string_lossy().into_owned();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| *pid != me)
        .map(|pid| (pid, cmdline(pid)))
        .filter(|(_, cmd)| cmd.contains(&needle))
        .collect()
}

fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
        .unwrap_or_else(|e| format!("<{e}>"))
}

fn list_dir(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_escapes() {
        assert_eq!(
            run_component(Path::new(
                "/sys/fs/cgroup/memory/isobench/20261123T105307Z-t-0001/c1"
            ))
            .as_deref(),
            Some("20261123T105307Z-t-0001")
        );
        assert_eq!(unescape(r"/a\040b\\"), r"/a b\\");
    }
}
