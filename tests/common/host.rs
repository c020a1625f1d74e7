//! Host-state snapshots for integration tests: what an isobench run may leave on the host
//! (mounts, cgroups, marked processes, its state dir), captured before a run and checked after.
//!
//! Self-contained (std, nix-free) so any test file can include it with
//! `#[path = "common/host.rs"] mod host;` without depending on `tests/common/mod.rs`.
//!
//! Concurrency: test binaries may run in parallel (nextest), and other binaries launch
//! containers of their own. So a comparison with the snapshot taken before never fails on an
//! entry that provably belongs to *another* run (its path or mount names a run id that is not
//! one of ours): such entries are printed to stderr and otherwise ignored. Everything of our
//! runs (named by our run ids or under our state dir), and every new isobench entry that names
//! no run at all, fails the check. Marked processes are only checked for our run ids.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The environment variable that marks every process of a run (src/clean.rs).
pub const RUN_ID_ENV: &str = "ISOBENCH_RUN_ID";
/// The directory under each cgroup hierarchy that holds every run (src/host/cgroup.rs).
pub const CGROUP_TOP: &str = "isobench";

/// What of isobench is on the host at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostSnapshot {
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
    }
}

/// Asserts that nothing of the runs `run_ids` (whose state root was `state_dir`) is left on
/// the host and that no unattributable isobench mount or cgroup appeared since `before`:
/// - `state_dir` does not exist, and nothing is mounted at or under it;
/// - no mount that appeared since `before` mentions isobench, unless it names another run;
/// - no cgroup directory below an `isobench` dir belongs to one of `run_ids`, and none that
///   appeared since `before` is outside a run-id directory;
/// - no process carries `ISOBENCH_RUN_ID=<one of run_ids>`.
pub fn assert_clean_since(before: &HostSnapshot, state_dir: &Path, run_ids: &[String]) {
    let after = snapshot();
    let mut problems: Vec<String> = Vec::new();
    let mut ignored: Vec<String> = Vec::new();

    if state_dir.exists() {
        problems.push(format!(
            "state dir {} still exists: {:?}",
            state_dir.display(),
            list_dir(state_dir)
        ));
    }
    for m in mountinfo() {
        if Path::new(&m.mount_point).starts_with(state_dir) {
            problems.push(format!("mount under the state dir: {}", m.describe()));
        }
    }

    let ours = |s: &str| run_ids.iter().any(|id| s.contains(id.as_str()));
    for m in after.mounts.difference(&before.mounts) {
        if ours(m) || m.contains(&*state_dir.to_string_lossy()) {
            problems.push(format!("mount of our run: {m}"));
        } else if mentions_run_id(m) {
            ignored.push(format!("mount of another run: {m}"));
        } else {
            problems.push(format!("new isobench mount: {m}"));
        }
    }

    for dir in &after.cgroups {
        match run_component(dir) {
            Some(id) if run_ids.iter().any(|r| *r == id) => {
                problems.push(format!("cgroup of our run: {}", dir.display()));
            }
            Some(id) if !before.cgroups.contains(dir) && !looks_like_run_id(&id) => {
                problems.push(format!(
                    "new cgroup dir outside any run-id dir: {}",
                    dir.display()
                ));
            }
            Some(_) if !before.cgroups.contains(dir) => {
                ignored.push(format!("cgroup of another run: {}", dir.display()));
            }
            _ => {}
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
        eprintln!("note: ignored (belongs to a concurrent run): {i}");
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
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..=i + 3].iter().all(|d| (b'0'..=b'7').contains(d)) {
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

/// A run id as src/runner.rs makes them: `YYYYMMDDTHHMMSSZ-<scenario>-<4 hex digits>`.
pub fn looks_like_run_id(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() < 16 + 1 + 1 + 5 {
        return false;
    }
    let stamp_ok = b[..16].iter().enumerate().all(|(i, c)| match i {
        8 => *c == b'T',
        15 => *c == b'Z',
        _ => c.is_ascii_digit(),
    });
    let tail = &b[b.len() - 5..];
    stamp_ok
        && b[16] == b'-'
        && tail[0] == b'-'
        && tail[1..]
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
}

/// True if some whitespace- or slash-separated word of `s` looks like a run id.
fn mentions_run_id(s: &str) -> bool {
    s.split(|c: char| c.is_whitespace() || c == '/' || c == ',' || c == '=' || c == ':')
        .any(looks_like_run_id)
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
    fn run_ids_are_recognised() {
        assert!(looks_like_run_id("20261123T105307Z-long-5134"));
        assert!(looks_like_run_id("20261123T105307Z-a-b-c-ffff"));
        assert!(!looks_like_run_id("container-n40-r1-i0"));
        assert!(!looks_like_run_id("20261123T105307Z-long-51g4"));
        assert!(mentions_run_id(
            "/tmp/x/state/20261123T105307Z-long-5134/instances (overlay overlay /)"
        ));
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
