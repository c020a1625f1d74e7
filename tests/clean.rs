//! `isobench clean` against hostile and unlucky inputs, as root, with real processes (some of
//! them another user's), real mounts and real cgroups: what is not provably a dead run's own is
//! left untouched and listed as ignored, and what is, is removed.
//!
//! `clean` acts on the whole host, so every test holds the host-wide test lock.

#[path = "common/bin.rs"]
mod bin;
#[path = "common/host.rs"]
mod host;
#[path = "common/skip.rs"]
mod skip;

use isobench::host::cgroup::{CgroupHost, TOP};
use isobench::host::run_id::{OWNER_FILE, Owner, PidRecord, ProcId, RUN_ID_ENV, RunId};
use serde_json::Value;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The unprivileged user hostile processes run as.
const NOBODY: u32 = 65534;

/// Processes a test started: killed and reaped on drop.
struct Procs(Vec<Child>);

impl Procs {
    /// Starts `sleep 600` as `uid` (root if None) with `ISOBENCH_RUN_ID=marker` (none if None).
    fn sleeper(&mut self, uid: Option<u32>, marker: Option<&OsStr>) -> ProcId {
        let mut c = match uid {
            Some(u) => {
                let mut c = Command::new(setpriv());
                c.args([
                    format!("--reuid={u}"),
                    format!("--regid={u}"),
                    "--clear-groups".into(),
                ]);
                c.args(["sleep", "600"]);
                c
            }
            None => {
                let mut c = Command::new("sleep");
                c.arg("600");
                c
            }
        };
        if let Some(m) = marker {
            c.env(RUN_ID_ENV, m);
        }
        let child = c
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawning sleep");
        let pid = child.id() as i32;
        self.0.push(child);
        // setpriv execs sleep in the same process: wait until it runs as `uid`, with the marker.
        let start = std::time::Instant::now();
        while isobench::host::run_id::uids(pid).map(|(r, _)| r) != Some(uid.unwrap_or(0))
            || !std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.starts_with("sleep"))
        {
            assert!(
                start.elapsed().as_secs() < 10,
                "pid {pid} never became sleep"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        ProcId::of(pid).expect("the sleeper runs")
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn setpriv() -> &'static str {
    ["/usr/bin/setpriv", "/bin/setpriv"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("setpriv (util-linux) is installed: scripts/setup.sh")
}

/// A tmpfs mounted for a test, unmounted on drop.
struct Mounted(PathBuf);

impl Mounted {
    fn tmpfs(at: &Path) -> Mounted {
        std::fs::create_dir_all(at).unwrap();
        nix::mount::mount(
            Some("tmpfs"),
            at,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some("size=1m"),
        )
        .unwrap_or_else(|e| panic!("mounting a tmpfs on {}: {e}", at.display()));
        Mounted(at.to_path_buf())
    }

    fn is_mounted(&self) -> bool {
        host::mountinfo()
            .iter()
            .any(|m| Path::new(&m.mount_point) == self.0)
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// `isobench/<id>` cgroups a test made in every hierarchy isobench uses; removed on drop.
struct Cgroups(Vec<PathBuf>);

impl Cgroups {
    fn make(id: &RunId) -> Cgroups {
        let dirs: Vec<PathBuf> = CgroupHost::detect()
            .expect("cgroups are mounted")
            .roots()
            .iter()
            .map(|r| r.join(TOP).join(id))
            .collect();
        for d in &dirs {
            std::fs::create_dir_all(d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        }
        Cgroups(dirs)
    }

    fn add(&self, pid: i32) {
        for d in &self.0 {
            std::fs::write(d.join("cgroup.procs"), pid.to_string())
                .unwrap_or_else(|e| panic!("moving {pid} into {}: {e}", d.display()));
        }
    }

    fn exist(&self) -> bool {
        self.0.iter().any(|d| d.exists())
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        for d in &self.0 {
            let _ = std::fs::remove_dir(d);
        }
    }
}

/// A well-formed run id whose owner is dead: this process's pid with another start time.
fn dead_id(label: &str) -> RunId {
    let me = ProcId::current().unwrap();
    RunId::new(
        label,
        ProcId {
            starttime: me.starttime + 1,
            ..me
        },
    )
    .unwrap()
}

fn owner_json(id: &RunId) -> String {
    Owner::new(id, 0, Path::new("/nonexistent/run")).to_json()
}

/// Every path below `dir` (through mounts, never through symlinks) with its content.
fn tree(dir: &Path) -> BTreeMap<PathBuf, String> {
    let mut out = BTreeMap::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let what = if m.file_type().is_symlink() {
                format!("-> {}", std::fs::read_link(&p).unwrap().display())
            } else if m.is_dir() {
                todo.push(p.clone());
                "dir".into()
            } else {
                std::fs::read_to_string(&p).unwrap_or_default()
            };
            out.insert(p, what);
        }
    }
    out
}

/// The `ignored` list of a `clean --format json` document, as (seen, value, why).
fn ignored(doc: &Value) -> Vec<(String, String, String)> {
    doc["report"]["ignored"]
        .as_array()
        .expect("report.ignored")
        .iter()
        .map(|i| {
            let s = |k: &str| i[k].as_str().unwrap_or_default().to_string();
            (s("seen"), s("value"), s("why"))
        })
        .collect()
}

fn json(out: &bin::Output) -> Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"))
}

/// Asserts that `doc` lists an ignored entry seen at `seen` (substring) with `value` and a
/// reason containing `why`.
fn assert_ignored(doc: &Value, seen: &str, value: &str, why: &str) {
    let all = ignored(doc);
    assert!(
        all.iter()
            .any(|(s, v, w)| s.contains(seen) && v == value && w.contains(why)),
        "no ignored entry ({seen:?}, {value:?}, {why:?}) in {all:#?}"
    );
}

#[test]
fn hostile_markers_and_look_alike_state_dirs_leave_everything_untouched() {
    if skip::unless_root() {
        return;
    }
    let _lock = host::host_lock();
    let s = bin::Scratch::new("clean-hostile");
    let root = s.path("state");
    std::fs::create_dir(&root).unwrap();

    // The victim: files, a mount with a file in it, an owner file that looks like a run's.
    let victim = s.path("victim");
    std::fs::create_dir(&victim).unwrap();
    std::fs::write(victim.join("keep"), "precious").unwrap();
    let mount = Mounted::tmpfs(&victim.join("mnt"));
    std::fs::write(victim.join("mnt/keep"), "precious too").unwrap();
    let sym = dead_id("sym");
    std::fs::write(victim.join(OWNER_FILE), owner_json(&sym)).unwrap();

    // Look-alike state dirs.
    symlink(&victim, root.join(&sym)).unwrap();
    let lookalike = |id: &RunId, owner: &str| {
        let d = root.join(id);
        std::fs::create_dir(&d).unwrap();
        std::fs::write(d.join(OWNER_FILE), owner).unwrap();
        std::fs::write(d.join("keep"), "x").unwrap();
        d
    };
    let foreign = dead_id("foreign");
    let foreign_dir = lookalike(&foreign, &owner_json(&foreign));
    nix::unistd::chown(&foreign_dir, Some(NOBODY.into()), Some(NOBODY.into())).unwrap();
    let garbage = dead_id("garbage");
    lookalike(&garbage, "garbage");
    let other = dead_id("other");
    lookalike(&other, &owner_json(&dead_id("elsewhere")));
    std::fs::create_dir(root.join("not-a-run")).unwrap();
    std::fs::write(root.join("not-a-run/keep"), "x").unwrap();

    // Marked processes: hostile values from another user, well-formed ids of dead runs from
    // that user and from root. `evil` has a cgroup of its own (empty), `ghost` nothing at all.
    let evil = dead_id("evil");
    let evil_cg = Cgroups::make(&evil);
    let ghost = dead_id("ghost");
    let mut procs = Procs(Vec::new());
    let p_abs = procs.sleeper(Some(NOBODY), Some(victim.as_os_str()));
    let p_dotdot = procs.sleeper(Some(NOBODY), Some(OsStr::new("../victim")));
    let p_evil = procs.sleeper(Some(NOBODY), Some(OsStr::new(evil.as_str())));
    let p_evil_root = procs.sleeper(None, Some(OsStr::new(evil.as_str())));
    let p_ghost = procs.sleeper(Some(NOBODY), Some(OsStr::new(ghost.as_str())));
    let p_sym_root = procs.sleeper(None, Some(OsStr::new(sym.as_str())));
    let all = [p_abs, p_dotdot, p_evil, p_evil_root, p_ghost, p_sym_root];

    let victim_before = tree(&victim);
    let root_before = tree(&root);
    let untouched = |what: &str| {
        for p in &all {
            assert!(p.is_alive(), "{what}: process {p:?} was signalled");
        }
        assert_eq!(tree(&victim), victim_before, "{what}: the victim changed");
        assert_eq!(tree(&root), root_before, "{what}: the state root changed");
        assert!(mount.is_mounted(), "{what}: the victim's mount is gone");
    };

    let proc_seen = |p: &ProcId, uid: u32| format!("of process {} (uid {uid})", p.pid);
    let check = |doc: &Value, what: &str| {
        untouched(what);
        assert_ignored(
            doc,
            &proc_seen(&p_abs, NOBODY),
            &victim.to_string_lossy(),
            "not a run id: byte 0 is '/'",
        );
        assert_ignored(
            doc,
            &proc_seen(&p_dotdot, NOBODY),
            "../victim",
            "not a run id: byte 0 is '.'",
        );
        assert_ignored(
            doc,
            &proc_seen(&p_ghost, NOBODY),
            ghost.as_str(),
            "the marker alone proves nothing",
        );
        assert_ignored(
            doc,
            &proc_seen(&p_sym_root, 0),
            sym.as_str(),
            "the marker alone proves nothing",
        );
        let state = "entry of the state root";
        assert_ignored(doc, state, sym.as_str(), "a symlink (to ");
        assert_ignored(
            doc,
            state,
            foreign.as_str(),
            &format!("owned by uid {NOBODY}"),
        );
        assert_ignored(doc, state, garbage.as_str(), "owner.json does not parse");
        assert_ignored(doc, state, other.as_str(), "names run");
        assert_ignored(doc, state, "not-a-run", "not a run id");
    };

    // A dry run, then the real thing: `evil` is a dead run with a cgroup, so it is cleaned
    // (its empty cgroup removed), but the processes carrying its id are not proven its own.
    for dry in [true, false] {
        let mut args = vec!["--format", "json"];
        if dry {
            args.push("--dry-run");
        }
        let out = s.clean(&root, &args);
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let doc = json(&out);
        let what = if dry { "clean --dry-run" } else { "clean" };
        check(&doc, what);
        for p in [&p_evil, &p_evil_root] {
            let uid = if p == &p_evil { NOBODY } else { 0 };
            assert_ignored(&doc, &proc_seen(p, uid), evil.as_str(), "neither in run");
        }
        assert!(
            doc["report"]["runs"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r == evil.as_str()),
            "{what}: the dead run with a cgroup is named: {doc:#}"
        );
        let killed = doc["report"]["killed"].as_array().unwrap();
        assert!(
            !killed.iter().any(|k| all.iter().any(|p| *k == p.pid)),
            "{what}: {killed:?}"
        );
        assert_eq!(evil_cg.exist(), dry, "{what}: the dead run's own cgroup");
    }

    // In text: one line per ignored item, the value escaped; the root stays.
    let out = s.clean(&root, &[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    untouched("clean (text)");
    for needle in [
        format!(
            "ignored {RUN_ID_ENV} of process {} (uid {NOBODY}) \"{}\": not a run id",
            p_abs.pid,
            victim.display()
        ),
        format!(
            "ignored {RUN_ID_ENV} of process {} (uid 0) \"{evil}\": run {evil} has no cgroup",
            p_evil_root.pid
        ),
        format!(
            "ignored entry of the state root {} \"{sym}\": a symlink (to {})",
            std::fs::canonicalize(&root).unwrap().display(),
            victim.display()
        ),
    ] {
        assert!(
            out.stdout.contains(&needle),
            "no line {needle:?} in:\n{}",
            out.stdout
        );
    }
    assert!(root.is_dir(), "clean removed the state root");
    drop(procs);
}

#[test]
fn processes_of_other_users_in_a_dead_runs_cgroup_are_never_signalled() {
    if skip::unless_root() {
        return;
    }
    let _lock = host::host_lock();
    let s = bin::Scratch::new("clean-uid");
    let root = s.path("state");
    std::fs::create_dir(&root).unwrap();
    let id = dead_id("crowded");
    let cg = Cgroups::make(&id);
    let mut procs = Procs(Vec::new());
    let nobody = procs.sleeper(Some(NOBODY), None);
    let mine = procs.sleeper(None, None);
    cg.add(nobody.pid);
    cg.add(mine.pid);

    let out = s.clean(&root, &["--format", "json"]);
    let doc = json(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a cgroup it may not empty is an error: {out:?}"
    );
    assert!(nobody.is_alive(), "another user's process was signalled");
    assert!(
        !mine.is_alive(),
        "root's process in the dead run's cgroup survived: {doc:#}"
    );
    assert_eq!(
        doc["report"]["killed"],
        serde_json::json!([mine.pid]),
        "{doc:#}"
    );
    assert_ignored(
        &doc,
        &format!("process {} in run {id}", nobody.pid),
        id.as_str(),
        &format!("runs as uid {NOBODY}"),
    );
    let errors = doc["report"]["errors"].to_string();
    assert!(
        errors.contains(&format!("{TOP}/{id}")) && errors.contains(&nobody.pid.to_string()),
        "{errors}"
    );
    assert!(cg.exist());

    // Once that process is gone, the run is cleaned.
    drop(procs);
    let out = s.clean(&root, &[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stdout.contains(&format!("cleaned run {id}")), "{out:?}");
    assert!(!cg.exist());
}

#[test]
fn recorded_processes_are_killed_and_markers_alone_are_not() {
    if skip::unless_root() {
        return;
    }
    let _lock = host::host_lock();
    let s = bin::Scratch::new("clean-records");
    let root = s.path("state");
    let id = dead_id("recorded");
    let created = isobench::host::state_dir::create(&root, &id, &s.dir).unwrap();
    let mut procs = Procs(Vec::new());
    let marker = Some(OsStr::new(id.as_str()));
    let recorded = procs.sleeper(None, marker);
    let unrecorded = procs.sleeper(None, marker);
    let foreign = procs.sleeper(Some(NOBODY), marker);
    // Records as the harness writes them; a forged one for another user's process; a stale one
    // (the pid of a live process, another start time: a reused pid).
    std::mem::forget(PidRecord::create(&created.path, recorded.pid).unwrap());
    std::mem::forget(PidRecord::create(&created.path, foreign.pid).unwrap());
    let stale = ProcId {
        starttime: unrecorded.starttime + 1,
        ..unrecorded
    };
    std::fs::write(
        created.path.join("pids").join(PidRecord::file_name(stale)),
        "",
    )
    .unwrap();
    std::fs::write(created.path.join("pids").join("1-2-3"), "").unwrap();
    // A mount left under the run's own state dir is unmounted (not crossed) before removal.
    let mount = Mounted::tmpfs(&created.path.join("layers/mnt"));
    std::fs::write(created.path.join("layers/mnt/f"), "x").unwrap();
    let before = host::snapshot();

    let out = s.clean(&root, &["--format", "json"]);
    let doc = json(&out);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        !recorded.is_alive(),
        "the recorded process survived: {doc:#}"
    );
    assert!(
        unrecorded.is_alive(),
        "a process with only the marker was killed"
    );
    assert!(
        foreign.is_alive(),
        "another user's recorded process was killed"
    );
    assert_eq!(
        doc["report"]["killed"],
        serde_json::json!([recorded.pid]),
        "{doc:#}"
    );
    assert_ignored(
        &doc,
        &format!("of process {} (uid 0)", unrecorded.pid),
        id.as_str(),
        "neither in run",
    );
    assert_ignored(
        &doc,
        &format!("process {} in run {id}", foreign.pid),
        id.as_str(),
        "runs as uid",
    );
    assert_ignored(&doc, "pid record in", "1-2-3", "not <pid>-<start time>");
    assert!(
        !created.path.exists(),
        "the run's state dir is left: {doc:#}"
    );
    assert!(!mount.is_mounted(), "the mount in the state dir is left");
    let point = std::fs::canonicalize(&root)
        .unwrap()
        .join(id.as_str())
        .join("layers/mnt");
    assert_eq!(
        doc["report"]["unmounted"],
        serde_json::json!([point]),
        "{doc:#}"
    );
    drop(procs);
    host::assert_clean_since(&before, &root, &[id.to_string()]);
    assert!(root.is_dir(), "clean removed the state root");
}

/// A dead run's runsc state root is handed to runsc (`list`, `delete --force`) only when every
/// level is a real directory owned and writable by root alone: a symlinked `oci-runsc` (to a
/// directory that holds a `state`) or one writable by others is listed as ignored, runsc is
/// never asked, and the run is still cleaned.
#[test]
fn a_runsc_state_root_through_a_symlink_or_writable_by_others_is_not_handed_to_runsc() {
    use std::os::unix::fs::PermissionsExt;
    if skip::unless_root() {
        return;
    }
    let _lock = host::host_lock();
    let s = bin::Scratch::new("clean-runsc");
    let root = s.path("state");
    std::fs::create_dir(&root).unwrap();
    let elsewhere = s.path("elsewhere");
    std::fs::create_dir_all(elsewhere.join("state")).unwrap();
    let linked = dead_id("linked");
    let open = dead_id("open");
    for id in [&linked, &open] {
        let d = root.join(id.as_str());
        std::fs::create_dir(&d).unwrap();
        std::fs::write(d.join(OWNER_FILE), owner_json(id)).unwrap();
    }
    std::os::unix::fs::symlink(&elsewhere, root.join(linked.as_str()).join("oci-runsc")).unwrap();
    let open_dir = root.join(open.as_str()).join("oci-runsc");
    std::fs::create_dir_all(open_dir.join("state")).unwrap();
    std::fs::set_permissions(&open_dir, std::fs::Permissions::from_mode(0o777)).unwrap();

    let out = s.clean(&root, &["--format", "json"]);
    let doc = json(&out);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let why = "not a directory owned and writable by root alone: not handed to runsc";
    let linked_seen = format!(
        "runsc state root {}",
        root.join(linked.as_str()).join("oci-runsc").display()
    );
    let open_seen = format!("runsc state root {}", open_dir.display());
    assert_ignored(&doc, &linked_seen, "", why);
    assert_ignored(&doc, &open_seen, "", why);
    assert_eq!(doc["report"]["sandboxes"], serde_json::json!([]), "{doc:#}");
    // Both runs are cleaned; what the symlink pointed at is untouched.
    assert!(!root.join(linked.as_str()).exists() && !root.join(open.as_str()).exists());
    assert!(elsewhere.join("state").is_dir());
}
