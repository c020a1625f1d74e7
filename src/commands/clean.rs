//! `isobench clean`: removes what a killed run left, and only what provably is that run's.
//!
//! What it looks at: the entries of the state root, the directories in `<hierarchy>/isobench/`
//! of every cgroup hierarchy, and the `ISOBENCH_RUN_ID` environment marker of every process.
//! Each name or value is validated as a run id first (host::run_id); one that is not is never
//! used as a path and is listed as ignored, with where it was seen and why.
//!
//! What it trusts, for a run whose owner (named in the run id) is dead:
//! - a state dir only if host::state_dir proves it the run's (a real directory directly in the
//!   state root, owned by root, named by the id, with an owner file that parses and names it);
//! - a process only if it sits in the run's cgroup or its pid and start time are recorded in
//!   the run's state dir, and it runs as root (real and effective uid); the environment marker
//!   is a hint, never a proof. The start time, uid and membership are checked again through a
//!   pidfd right before the signal, so a reused pid is never hit;
//! - mounts only under the proven state dir (reached beneath its descriptor, no symlink);
//! - cgroups only `isobench/<id>` itself, removed without signalling what is in them;
//! - a KSM record only if it parses strictly;
//! - gVisor containers only through runsc's own state root in the proven state dir (see
//!   delete_runsc_sandboxes): their processes run as uid 65534, which clean never signals.
//!
//! It never removes the state root itself, nor anything outside it and the run's own cgroups.
//! A run whose owner still lives is left alone, whatever state root `clean` was given.

use crate::host::cgroup::{self, CgroupHost};
use crate::host::run_id::{self, Marker, ProcId, RunId, escape};
use crate::host::state_dir::{RunStateDir, StateRoot};
use serde::Serialize;
use std::collections::BTreeMap;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Something `clean` saw and left alone: where, the value (escaped), and why.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Ignored {
    pub seen: String,
    pub value: String,
    pub why: String,
}

/// What `clean` did (or, with dry_run, would do); printed as text or JSON.
#[derive(Debug, Default, Serialize)]
pub struct CleanReport {
    pub runs: Vec<String>,
    pub killed: Vec<i32>,
    /// gVisor containers of a dead run deleted through runsc (see delete_runsc_sandboxes).
    pub sandboxes: Vec<String>,
    pub unmounted: Vec<PathBuf>,
    pub cgroups: Vec<PathBuf>,
    pub dirs: Vec<PathBuf>,
    /// KSM settings a killed run had changed were put back.
    pub ksm_restored: bool,
    /// Runs whose owner still lives: not touched.
    pub active: Vec<(String, i32)>,
    /// What looked like a run's but is not proven to be: not touched.
    pub ignored: Vec<Ignored>,
    pub errors: Vec<String>,
}

impl CleanReport {
    /// Nothing was (or would be) cleaned and nothing went wrong.
    pub fn is_empty(&self) -> bool {
        self.runs.is_empty() && self.active.is_empty() && self.errors.is_empty()
    }

    fn ignore(&mut self, seen: String, value: &[u8], why: impl ToString) {
        self.ignored.push(Ignored {
            seen,
            value: escape(value),
            why: why.to_string(),
        });
    }

    /// The report as text: stdout lines, and stderr lines (the errors).
    pub fn render_text(&self, dry_run: bool) -> (String, String) {
        let mut out = String::new();
        // (done, planned) wording of each action.
        let say = |done: &str, planned: &str| {
            if dry_run {
                planned.to_string()
            } else {
                done.to_string()
            }
        };
        for (id, pid) in &self.active {
            out.push_str(&format!(
                "run {id} is still active (pid {pid}): left alone\n"
            ));
        }
        for id in &self.runs {
            out.push_str(&format!("{} run {id}\n", say("cleaned", "would clean")));
        }
        for s in &self.sandboxes {
            out.push_str(&format!(
                "  {} gVisor container {s} (runsc delete --force)\n",
                say("deleted", "would delete")
            ));
        }
        for p in &self.killed {
            out.push_str(&format!("  {} pid {p}\n", say("killed", "would kill")));
        }
        for m in &self.unmounted {
            out.push_str(&format!(
                "  {} {}\n",
                say("unmounted", "would unmount"),
                m.display()
            ));
        }
        for c in &self.cgroups {
            out.push_str(&format!(
                "  {} cgroup {}\n",
                say("removed", "would remove"),
                c.display()
            ));
        }
        if self.ksm_restored {
            out.push_str(&format!(
                "  {} the host's KSM settings\n",
                say("restored", "would restore")
            ));
        }
        for d in &self.dirs {
            out.push_str(&format!(
                "  {} {}\n",
                say("removed", "would remove"),
                d.display()
            ));
        }
        if self.is_empty() {
            out.push_str("nothing to clean\n");
        }
        for i in &self.ignored {
            out.push_str(&format!("ignored {} \"{}\": {}\n", i.seen, i.value, i.why));
        }
        let err: String = self
            .errors
            .iter()
            .map(|e| format!("isobench: clean: {e}\n"))
            .collect();
        (out, err)
    }
}

/// What was found of one run id.
#[derive(Default)]
struct Found {
    state: Option<RunStateDir>,
    cgroups: Vec<PathBuf>,
    hinted: Vec<Marker>,
}

/// Cleans every dead run found under `state_root`, in the cgroup trees and by markers.
pub fn clean(state_root: &Path, dry_run: bool) -> CleanReport {
    let uid = rustix::process::geteuid().as_raw();
    let mut report = CleanReport::default();
    let mut found: BTreeMap<RunId, Found> = BTreeMap::new();
    let root = match StateRoot::open(state_root, uid) {
        Ok(r) => Some(r),
        Err(crate::host::state_dir::StateRootError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::NotFound =>
        {
            None
        }
        Err(e) => {
            report.errors.push(e.to_string());
            None
        }
    };
    if let Some(root) = &root {
        scan_state_root(root, uid, &mut found, &mut report);
    }
    scan_cgroups(&mut found, &mut report);
    scan_markers(&mut found, &mut report);
    for (id, f) in found {
        clean_run(&id, f, root.as_ref(), uid, dry_run, &mut report);
    }
    if !dry_run && let Ok(cg) = CgroupHost::detect() {
        cg.remove_top_if_empty();
    }
    report
}

fn scan_state_root(
    root: &StateRoot,
    uid: u32,
    found: &mut BTreeMap<RunId, Found>,
    r: &mut CleanReport,
) {
    let names = match root.entries() {
        Ok(n) => n,
        Err(e) => {
            r.errors.push(e.to_string());
            return;
        }
    };
    for name in names {
        match root.validate(&name, uid) {
            Ok(dir) => {
                let id = dir.id.clone();
                found.entry(id).or_default().state = Some(dir);
            }
            Err(why) => r.ignore(
                format!("entry of the state root {}", root.path.display()),
                name.as_bytes(),
                why,
            ),
        }
    }
}

fn scan_cgroups(found: &mut BTreeMap<RunId, Found>, r: &mut CleanReport) {
    for (name, dir) in CgroupHost::run_dirs() {
        match RunId::parse_bytes(name.as_bytes()) {
            Ok(id) => found.entry(id).or_default().cgroups.push(dir),
            Err(why) => r.ignore(
                format!(
                    "cgroup dir in {}",
                    dir.parent().unwrap_or(Path::new("")).display()
                ),
                name.as_bytes(),
                format!("not a run id: {why}"),
            ),
        }
    }
}

fn marker_seen(m: &Marker) -> String {
    let uid = m.uid.map_or("?".to_string(), |u| u.to_string());
    format!("{} of process {} (uid {uid})", run_id::RUN_ID_ENV, m.pid)
}

fn scan_markers(found: &mut BTreeMap<RunId, Found>, r: &mut CleanReport) {
    for m in run_id::marked_processes() {
        match RunId::parse_bytes(m.value.as_bytes()) {
            Ok(id) => found.entry(id).or_default().hinted.push(m),
            Err(why) => r.ignore(
                marker_seen(&m),
                m.value.as_bytes(),
                format!("not a run id: {why}; not signalled"),
            ),
        }
    }
}

/// A process proven to be run `id`'s, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Proven {
    proc: ProcId,
    recorded: bool,
}

/// The live processes in run `id`'s cgroup `dir` and every cgroup below it. A process already
/// exiting (a killed container's init waiting for its namespace to empty) is still listed in
/// cgroup.procs for a moment but no longer shows the run's cgroup in /proc/PID/cgroup: it is
/// on its way out, not a member.
fn members(id: &RunId, dir: &Path) -> Vec<ProcId> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        out.extend(
            cgroup::procs(&d)
                .into_iter()
                .filter_map(ProcId::of)
                .filter(|p| p.is_alive() && run_id::in_run_cgroup(p.pid, id)),
        );
        if let Ok(rd) = std::fs::read_dir(&d) {
            dirs.extend(
                rd.flatten()
                    .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                    .map(|e| e.path()),
            );
        }
    }
    out
}

/// The live processes of run `id` now: in its cgroups (any depth), or recorded in its state
/// dir and still the recorded process.
fn proven(id: &RunId, f: &Found) -> BTreeMap<i32, Proven> {
    let mut out = BTreeMap::new();
    for proc in f.cgroups.iter().flat_map(|d| members(id, d)) {
        out.insert(
            proc.pid,
            Proven {
                proc,
                recorded: false,
            },
        );
    }
    if let Some(state) = &f.state {
        for proc in state.recorded().0 {
            if proc.is_alive() {
                out.entry(proc.pid).or_insert(Proven {
                    proc,
                    recorded: true,
                });
            }
        }
    }
    out
}

/// Cleans run `id` from what was found of it, if it is a dead run's (see the module docs).
fn clean_run(
    id: &RunId,
    f: Found,
    root: Option<&StateRoot>,
    uid: u32,
    dry_run: bool,
    r: &mut CleanReport,
) {
    if f.state.is_none() && f.cgroups.is_empty() {
        let where_ = root.map_or("no state root".to_string(), |r| {
            r.path.display().to_string()
        });
        for m in &f.hinted {
            r.ignore(
                marker_seen(m),
                m.value.as_bytes(),
                format!(
                    "run {id} has no cgroup and no state dir in {where_}: the marker alone proves nothing; not signalled"
                ),
            );
        }
        return;
    }
    if let Some(pid) = id.owner_alive() {
        r.active.push((id.to_string(), pid));
        return;
    }
    r.runs.push(id.to_string());
    // Processes first: their end releases mounts and cgroups.
    kill_processes(id, &f, uid, dry_run, r);
    // Then what is left of gVisor's sandboxes, through runsc: clean itself never signals
    // their processes. After the kill, not before: a sandbox whose runsc and Gofer still run
    // answers `delete --force` with a stop that times out, and one whose root processes are
    // gone ends with them; what runsc then deletes is a sandbox left waiting on its own.
    if let Some(state) = &f.state {
        delete_runsc_sandboxes(state, dry_run, r);
    }
    if let Some(state) = &f.state {
        unmount_under(state, dry_run, r);
    }
    remove_cgroups(id, &f.cgroups, dry_run, r);
    if let (Some(state), Some(root)) = (&f.state, root) {
        restore_ksm(state, dry_run, r);
        if dry_run {
            r.dirs.push(state.path.clone());
        } else {
            match root.remove(state) {
                Ok(()) => r.dirs.push(state.path.clone()),
                Err(e) => r.errors.push(e.to_string()),
            }
        }
    }
}

/// Kills the processes proven to be run `id`'s that run as `uid` (or lists them, dry); lists
/// the others, and the markers of unproven processes, as ignored.
fn kill_processes(id: &RunId, f: &Found, uid: u32, dry_run: bool, r: &mut CleanReport) {
    if let Some(state) = &f.state {
        for name in state.recorded().1 {
            r.ignore(
                format!(
                    "pid record in {}",
                    state.path.join(run_id::PIDS_DIR).display()
                ),
                name.as_bytes(),
                "not <pid>-<start time>",
            );
        }
    }
    let first = proven(id, f);
    for m in &f.hinted {
        if !first.contains_key(&m.pid) {
            r.ignore(
                marker_seen(m),
                m.value.as_bytes(),
                format!(
                    "neither in run {id}'s cgroup nor recorded in its state dir: the marker alone proves nothing; not signalled"
                ),
            );
        }
    }
    let owned = |p: &Proven| matches!(run_id::uids(p.proc.pid), Some((real, eff)) if real == uid && eff == uid);
    // Processes of the run under another uid are never signalled; said once they outlived
    // the owner's (gVisor's ptrace stubs run as nobody and end with their Sentry).
    let ignore_others = |left: Vec<Proven>, r: &mut CleanReport| {
        for p in left {
            if let Some((real, eff)) = run_id::uids(p.proc.pid) {
                r.ignore(
                    format!("process {} in run {id}", p.proc.pid),
                    id.as_str().as_bytes(),
                    format!(
                        "runs as uid {real} (effective {eff}), not as the run's owner (uid {uid}): never signalled"
                    ),
                );
            }
        }
    };
    if dry_run {
        let (mine, others): (Vec<Proven>, Vec<Proven>) = first.into_values().partition(owned);
        r.killed.extend(mine.iter().map(|p| p.proc.pid));
        ignore_others(others, r);
        return;
    }
    // A process forked meanwhile shows in the next round.
    for _ in 0..5 {
        let targets: Vec<Proven> = proven(id, f).into_values().filter(owned).collect();
        if targets.is_empty() {
            break;
        }
        for p in &targets {
            match kill_verified(p, id, uid) {
                Ok(true) => r.killed.push(p.proc.pid),
                Ok(false) => {}
                Err(e) => r.errors.push(format!("killing pid {}: {e}", p.proc.pid)),
            }
        }
        wait_gone(&targets, Duration::from_secs(5));
    }
    let others: Vec<Proven> = proven(id, f).into_values().collect();
    wait_gone(&others, OTHERS_WAIT);
    let left: Vec<Proven> = others.into_iter().filter(|p| p.proc.is_alive()).collect();
    ignore_others(left, r);
    r.killed.sort_unstable();
    r.killed.dedup();
}

/// runsc's state root in a run's state dir (backend::oci: `oci-runsc/state`).
const RUNSC_STATE: [&str; 2] = ["oci-runsc", "state"];
/// How long one `runsc list` or `runsc delete` may take before it is killed.
const RUNSC_LIMIT: Duration = Duration::from_secs(15);

/// Deletes the gVisor containers a dead run left, through runsc itself.
///
/// Why: runsc starts each sandbox's Sentry and Gofer as uid 65534, whose processes clean never
/// signals (only the run owner's, see kill_processes). A sandbox whose runsc was killed while
/// it started has no process of root's left to kill, so it outlived the run. runsc ends what
/// its own state root in the proven state dir lists: `runsc --root R list --format json`,
/// then `runsc --root R delete --force ID` for each id that is a container id at all and
/// whose sandbox still runs. R is handed
/// to runsc only if every level below the proven state dir is a real directory (no symlink)
/// owned by root and writable by root alone, so nobody else can have put or pointed it there.
fn delete_runsc_sandboxes(state: &RunStateDir, dry_run: bool, r: &mut CleanReport) {
    let mut root = state.path.clone();
    for part in RUNSC_STATE {
        root.push(part);
        use std::os::unix::fs::MetadataExt;
        match std::fs::symlink_metadata(&root) {
            Ok(m) if m.is_dir() && m.uid() == 0 && m.mode() & 0o022 == 0 => {}
            Ok(_) => {
                r.ignore(
                    format!("runsc state root {}", root.display()),
                    b"",
                    "not a directory owned and writable by root alone: not handed to runsc",
                );
                return;
            }
            // No gVisor in this run.
            Err(_) => return,
        }
    }
    let Some(runsc) = crate::host::exec::which("runsc") else {
        r.errors.push(format!(
            "{}: runsc is not on PATH, so the gVisor containers this run may have left cannot be deleted",
            root.display()
        ));
        return;
    };
    let listed = match runsc_cmd(&runsc, &root, &["list", "--format", "json"]) {
        Ok(out) => out,
        Err(e) => return r.errors.push(e),
    };
    // runc's list format: [{"id", "pid", "status", ...}], or `null` when there is none.
    let entries: Vec<serde_json::Value> = match serde_json::from_str(listed.trim()) {
        Ok(serde_json::Value::Array(a)) => a,
        Ok(_) => Vec::new(),
        Err(e) => {
            return r
                .errors
                .push(format!("runsc list --root {}: {e}", root.display()));
        }
    };
    for entry in entries {
        let cid = entry["id"].as_str().unwrap_or_default();
        if !crate::backend::oci::valid_container_id(cid) {
            r.ignore(
                format!("runsc list --root {}", root.display()),
                cid.as_bytes(),
                "not a container id: not passed to runsc",
            );
            continue;
        }
        // Only a sandbox still running needs runsc: one that ended with the run's processes
        // (gone, or a zombie not yet reaped) makes `delete --force` wait for a stop that
        // never comes, and its state goes with the state dir. The pid is only looked at.
        let pid = entry["pid"].as_i64().and_then(|p| i32::try_from(p).ok());
        if !pid.is_some_and(sandbox_running) {
            continue;
        }
        if dry_run {
            r.sandboxes.push(cid.to_string());
            continue;
        }
        match runsc_cmd(&runsc, &root, &["delete", "--force", cid]) {
            Ok(_) => r.sandboxes.push(cid.to_string()),
            // It may have ended meanwhile: only a sandbox that still runs is a failure.
            Err(e) if pid.is_some_and(sandbox_running) => r.errors.push(e),
            Err(_) => r.sandboxes.push(cid.to_string()),
        }
    }
}

/// Whether `pid` (> 0) is a live process, not a zombie: /proc/PID/stat's state after the
/// command name.
fn sandbox_running(pid: i32) -> bool {
    pid > 0
        && std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                .is_some_and(|state| state != "Z" && state != "X")
        })
}

/// `runsc --root ROOT ARGS...` with a time limit; its stdout, or what went wrong.
fn runsc_cmd(runsc: &Path, root: &Path, args: &[&str]) -> Result<String, String> {
    use crate::host::exec::{Limited, output_within};
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    let what = format!("runsc --root {} {}", root.display(), args.join(" "));
    let mut cmd = Command::new(runsc);
    cmd.arg("--root")
        .arg(root)
        .args(args)
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match output_within(cmd, RUNSC_LIMIT).map_err(|e| format!("{what}: {e}"))? {
        Limited::Done(out) if out.status.success() => {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        }
        Limited::Done(out) => Err(format!(
            "{what}: {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Limited::WaitFailed(e) => Err(format!("{what}: {e}")),
        Limited::TimedOut => Err(format!(
            "{what}: no answer within {} s",
            RUNSC_LIMIT.as_secs()
        )),
    }
}

/// How long clean waits for a run's processes it may not signal (another uid's) to end with
/// the processes it killed, before it leaves them, and their cgroup, in place.
const OTHERS_WAIT: Duration = Duration::from_secs(2);

/// Removes run `id`'s own cgroup trees (or lists them, dry), signalling nothing in them.
fn remove_cgroups(id: &RunId, dirs: &[PathBuf], dry_run: bool, r: &mut CleanReport) {
    for dir in dirs {
        if dry_run {
            r.cgroups.push(dir.clone());
            continue;
        }
        // What is still alive in it now is what clean may not signal: no use waiting.
        let left: Vec<i32> = members(id, dir).iter().map(|p| p.pid).collect();
        if !left.is_empty() {
            r.errors.push(format!(
                "{}: still holds pids {left:?} that clean may not signal; left in place",
                dir.display()
            ));
            continue;
        }
        match cgroup::remove_empty_tree(dir, Duration::from_secs(5)) {
            Ok(()) => r.cgroups.push(dir.clone()),
            Err(e) => r.errors.push(e.to_string()),
        }
    }
}

/// Puts back the KSM settings the run recorded, if its record parses strictly.
fn restore_ksm(state: &RunStateDir, dry_run: bool, r: &mut CleanReport) {
    let record = crate::measure::ksm::KSM_RECORD;
    match state.read_file(record, 4096) {
        Ok(None) => {}
        Ok(Some(_)) if dry_run => r.ksm_restored = true,
        Ok(Some(text)) => match crate::measure::ksm::restore_record(&text) {
            Ok(()) => {
                r.ksm_restored = true;
                // Not restored twice should the state dir stay (the user may change KSM since).
                if let Err(e) = state.remove_file(record) {
                    r.errors.push(e.to_string());
                }
            }
            Err(e) => r.errors.push(format!(
                "{}: KSM settings not restored: {e}",
                state.path.join(record).display()
            )),
        },
        Err(e) => r.errors.push(format!("KSM settings not restored: {e}")),
    }
}

/// Sends SIGKILL to `p` if, seen through a pidfd (which pins the process, so the pid cannot be
/// reused under it), it is still the proven process: same start time, root's, and still in the
/// run's cgroup or recorded. Ok(false) if it is gone or no longer qualifies.
fn kill_verified(p: &Proven, id: &RunId, uid: u32) -> std::io::Result<bool> {
    use rustix::io::Errno;
    use rustix::process::{Pid, PidfdFlags, Signal, pidfd_open, pidfd_send_signal};
    let Some(pid) = Pid::from_raw(p.proc.pid) else {
        return Ok(false);
    };
    let fd = match pidfd_open(pid, PidfdFlags::empty()) {
        Ok(fd) => fd,
        Err(Errno::SRCH) => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    let same = ProcId::of(p.proc.pid) == Some(p.proc)
        && run_id::uids(p.proc.pid) == Some((uid, uid))
        && (p.recorded || run_id::in_run_cgroup(p.proc.pid, id));
    if !same {
        return Ok(false);
    }
    match pidfd_send_signal(&fd, Signal::KILL) {
        Ok(()) => Ok(true),
        Err(Errno::SRCH) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Unmounts, deepest first, every mount point below the proven state dir. Each is reached
/// beneath the state dir's descriptor without following a symlink, and unmounted through that
/// descriptor, so nothing outside the state dir can be hit.
fn unmount_under(state: &RunStateDir, dry_run: bool, r: &mut CleanReport) {
    let mut points: Vec<PathBuf> = procfs::process::Process::myself()
        .and_then(|p| p.mountinfo())
        .map(|mi| {
            mi.into_iter()
                .map(|m| m.mount_point)
                .filter(|m| m.starts_with(&state.path) && *m != state.path)
                .collect()
        })
        .unwrap_or_default();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    points.dedup();
    for m in points {
        if dry_run {
            r.unmounted.push(m);
            continue;
        }
        match state.unmount(&m) {
            Ok(()) => r.unmounted.push(m),
            Err(e) => r.errors.push(format!("umount {}: {e}", m.display())),
        }
    }
}

fn wait_gone(targets: &[Proven], limit: Duration) {
    let start = Instant::now();
    while start.elapsed() < limit {
        // A killed process of a dead run is nobody's child any more: it is gone once /proc/PID
        // is, or once it is a zombie (some inits never reap).
        if targets.iter().all(|p| !p.proc.is_alive()) {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Runs `isobench clean` (and with `--cache` the VM disk cache's cleaning), prints what it did
/// as text or JSON, and returns the exit code.
pub fn command(args: &crate::cli::CleanArgs, format: crate::cli::Format) -> i32 {
    use crate::exit;
    let r = clean(&args.state_dir, args.dry_run);
    // Only what isobench writes in the cache (base disks, dead builds' work files), never the
    // directory or anything else in it.
    let c = args
        .cache
        .then(|| crate::image::vmdisk::clean_cache(&args.cache_dir, args.dry_run));
    // The docker backend's images, cached in a daemon that was already there.
    let d = args
        .cache
        .then(|| crate::backend::docker::image::clean_cached(args.dry_run));
    let code = if r.errors.is_empty()
        && c.as_ref().is_none_or(|c| c.errors.is_empty())
        && d.as_ref().is_none_or(|d| d.errors.is_empty())
    {
        exit::OK
    } else {
        exit::MEASURED_FAILURE
    };
    if format == crate::cli::Format::Json {
        let doc = serde_json::json!({
            "dry_run": args.dry_run,
            "cache": c,
            "docker_images": d,
            "report": r,
        });
        match serde_json::to_string_pretty(&doc) {
            Ok(t) => outln!("{t}"),
            Err(e) => {
                eprintln!("isobench: clean: {e}");
                return exit::MEASURED_FAILURE;
            }
        }
        return code;
    }
    if let Some(c) = &c {
        let verb = if args.dry_run {
            "would remove"
        } else {
            "removed"
        };
        for p in &c.removed {
            outln!("{verb} from the cache: {}", p.display());
        }
        for p in &c.left {
            outln!(
                "left in the cache (not isobench's, or a build still running): {}",
                p.display()
            );
        }
        for e in &c.errors {
            eprintln!("isobench: clean --cache: {e}");
        }
    }
    if let Some(d) = &d {
        let verb = if args.dry_run {
            "would remove"
        } else {
            "removed"
        };
        for t in &d.removed {
            outln!(
                "{verb} from the docker daemon at {}: image {t}",
                d.daemon.as_deref().unwrap_or("?")
            );
        }
        for e in &d.errors {
            eprintln!("isobench: clean --cache: docker: {e}");
        }
    }
    let (out, err) = r.render_text(args.dry_run);
    out!("{out}");
    eprint!("{err}");
    code
}
