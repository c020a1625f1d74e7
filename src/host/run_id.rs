//! Run identity: the run-id format (one constructor, one validator), the owner file of a run's
//! state dir, the pid records that prove a process belongs to a run, and the environment marker
//! (a hint, never a proof).
//!
//! A run id is `<label>-p<pid>t<start time>`. The label is `<UTC stamp>-<scenario>` for a run
//! (`test<n>`, `doctor`, ... elsewhere): 1 to [`LABEL_MAX_LEN`] bytes of `A-Z a-z 0-9 _ -`,
//! starting with a letter or digit. The owner tag names the harness process by pid and start
//! time (clock ticks after boot, /proc/PID/stat field 22), so a reused pid never passes for the
//! owner, and any marker alone tells whether its run is still alive. Without `/` and `.` a run
//! id can be neither absolute nor `..`, so joined onto a directory it names a direct child.
//!
//! Everything read back from the host (state-root entries, cgroup directory names, environment
//! values, owner files, pid records) is parsed here before anything uses it as a path or a pid.

use serde::{Deserialize, Serialize};
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// The environment variable every process of a run carries: a hint for `clean`, not a proof.
pub const RUN_ID_ENV: &str = "ISOBENCH_RUN_ID";
/// The owner file in each run's state dir.
pub const OWNER_FILE: &str = "owner.json";
/// The directory of pid records in each run's state dir (see [`PidRecord`]).
pub const PIDS_DIR: &str = "pids";
/// Longest run id, in bytes (label, `-p`, pid, `t`, start time).
pub const MAX_LEN: usize = 100;
/// Longest label, in bytes: a stamp (16), a dash and a scenario name (40) fit.
pub const LABEL_MAX_LEN: usize = 64;
/// Largest owner file `clean` reads: a real one is about 200 bytes.
pub const OWNER_FILE_MAX: usize = 4096;

/// Why a string is not a run id (or not a label for one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RunIdError {
    #[error("empty")]
    Empty,
    #[error("{0} bytes long; at most {MAX_LEN} allowed")]
    TooLong(usize),
    #[error("byte {at} is '{shown}'; allowed: A-Z, a-z, 0-9, '_' and '-'")]
    Char { at: usize, shown: String },
    #[error("starts with '{0}'; a run id starts with a letter or a digit")]
    Start(char),
    #[error("no owner tag; a run id ends in -p<pid>t<start time>")]
    NoOwnerTag,
    #[error("owner tag {tag:?}: {why}")]
    OwnerTag { tag: String, why: &'static str },
    #[error("label of {0} bytes; at most {LABEL_MAX_LEN} allowed")]
    LabelTooLong(usize),
    #[error("cannot read this process's start time (/proc/self/stat): {0}")]
    SelfUnknown(String),
}

/// A process as a run records it: pid and start time, which together never name two processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ProcId {
    pub pid: i32,
    /// Clock ticks after boot (/proc/PID/stat field 22).
    pub starttime: u64,
}

impl ProcId {
    /// The process `pid` is now, if it exists (a zombie included).
    pub fn of(pid: i32) -> Option<ProcId> {
        let stat = procfs::process::Process::new(pid).ok()?.stat().ok()?;
        Some(ProcId {
            pid,
            starttime: stat.starttime,
        })
    }

    /// This process.
    pub fn current() -> Result<ProcId, RunIdError> {
        let stat = procfs::process::Process::myself()
            .and_then(|p| p.stat())
            .map_err(|e| RunIdError::SelfUnknown(e.to_string()))?;
        Ok(ProcId {
            pid: std::process::id() as i32,
            starttime: stat.starttime,
        })
    }

    /// Whether this very process still runs: same pid, same start time, not a zombie (a zombie
    /// owner is dead; on hosts whose init never reaps, it stays one for good).
    pub fn is_alive(&self) -> bool {
        let Ok(stat) = procfs::process::Process::new(self.pid).and_then(|p| p.stat()) else {
            return false;
        };
        stat.starttime == self.starttime && !matches!(stat.state, 'Z' | 'X')
    }

    /// `p<pid>t<start time>`, the owner tag of a run id.
    pub fn tag(&self) -> String {
        format!("p{}t{}", self.pid, self.starttime)
    }

    /// Parses an owner tag exactly as [`ProcId::tag`] writes it (no sign, no leading zero).
    pub fn parse_tag(tag: &str) -> Result<ProcId, RunIdError> {
        let bad = |why| RunIdError::OwnerTag {
            tag: tag.to_string(),
            why,
        };
        let rest = tag
            .strip_prefix('p')
            .ok_or_else(|| bad("does not start with 'p'"))?;
        let (pid, start) = rest
            .split_once('t')
            .ok_or_else(|| bad("no 't' before the start time"))?;
        let pid: i32 = canonical_number(pid).ok_or_else(|| bad("the pid is not a number"))?;
        let starttime: u64 =
            canonical_number(start).ok_or_else(|| bad("the start time is not a number"))?;
        if pid <= 0 {
            return Err(bad("the pid is not positive"));
        }
        Ok(ProcId { pid, starttime })
    }
}

/// A decimal number written as Rust writes it: digits only, no leading zero but for 0 itself.
fn canonical_number<T: std::str::FromStr + ToString>(s: &str) -> Option<T> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let v: T = s.parse().ok()?;
    (v.to_string() == s).then_some(v)
}

/// A valid run id. The only way to get one is [`RunId::new`] or [`RunId::parse`], so a
/// `RunId` joined onto a directory always names a direct child of it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RunId {
    text: String,
    owner: ProcId,
}

fn allowed_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// Checks the charset and the first byte of a label or run id.
fn check_chars(b: &[u8]) -> Result<(), RunIdError> {
    let first = *b.first().ok_or(RunIdError::Empty)?;
    if let Some(at) = b.iter().position(|c| !allowed_byte(*c)) {
        return Err(RunIdError::Char {
            at,
            shown: escape(&b[at..at + 1]),
        });
    }
    if !first.is_ascii_alphanumeric() {
        return Err(RunIdError::Start(first as char));
    }
    Ok(())
}

impl RunId {
    /// The run id of `label` owned by `owner`: `<label>-p<pid>t<start time>`.
    pub fn new(label: &str, owner: ProcId) -> Result<RunId, RunIdError> {
        check_chars(label.as_bytes())?;
        if label.len() > LABEL_MAX_LEN {
            return Err(RunIdError::LabelTooLong(label.len()));
        }
        RunId::parse(&format!("{label}-{}", owner.tag()))
    }

    /// The run id of `label` owned by this process.
    pub fn for_this_process(label: &str) -> Result<RunId, RunIdError> {
        RunId::new(label, ProcId::current()?)
    }

    /// Validates `s` as a run id.
    pub fn parse(s: &str) -> Result<RunId, RunIdError> {
        RunId::parse_bytes(s.as_bytes())
    }

    /// Validates raw bytes (a file name, an environment value) as a run id.
    pub fn parse_bytes(b: &[u8]) -> Result<RunId, RunIdError> {
        if b.len() > MAX_LEN {
            return Err(RunIdError::TooLong(b.len()));
        }
        check_chars(b)?;
        // Only ASCII from here on (check_chars).
        let text = String::from_utf8_lossy(b).into_owned();
        let (label, tag) = text.rsplit_once('-').ok_or(RunIdError::NoOwnerTag)?;
        if label.is_empty() {
            return Err(RunIdError::NoOwnerTag);
        }
        if label.len() > LABEL_MAX_LEN {
            return Err(RunIdError::LabelTooLong(label.len()));
        }
        let owner = ProcId::parse_tag(tag)?;
        Ok(RunId { text, owner })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The harness process that made the run.
    pub fn owner(&self) -> ProcId {
        self.owner
    }

    /// The pid of the run's owner if it still runs: then the run is active and left alone.
    pub fn owner_alive(&self) -> Option<i32> {
        self.owner.is_alive().then_some(self.owner.pid)
    }
}

impl std::fmt::Display for RunId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl AsRef<Path> for RunId {
    fn as_ref(&self) -> &Path {
        Path::new(&self.text)
    }
}

/// Bytes read from the host, shown safely: printable ASCII as is, anything else escaped
/// (`\n`, `\xff`), cut after 200 bytes.
pub fn escape(b: &[u8]) -> String {
    const SHOWN: usize = 200;
    let mut s = b[..b.len().min(SHOWN)].escape_ascii().to_string();
    if b.len() > SHOWN {
        s.push_str(&format!("... ({} bytes)", b.len()));
    }
    s
}

/// What a run's owner file records: which run, which process owns it (and as which user), and
/// where its results go. Written once when the state dir is made; `clean` trusts a state dir
/// only if this parses and agrees with the dir's name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Owner {
    pub run_id: String,
    pub pid: i32,
    pub starttime: u64,
    /// The owner's effective uid (root for every run that makes a state dir of consequence).
    pub uid: u32,
    pub run_dir: PathBuf,
}

/// Why an owner file is not the one a run writes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OwnerError {
    #[error("{OWNER_FILE} does not parse: {0}")]
    Parse(String),
    #[error("{OWNER_FILE} names run {found:?}, not the dir's name")]
    OtherRun { found: String },
    #[error("{OWNER_FILE} records owner {recorded}, the run id names {named}")]
    OtherOwner { recorded: String, named: String },
    #[error("{OWNER_FILE} records uid {recorded}, not {wanted}")]
    OtherUid { recorded: u32, wanted: u32 },
}

impl Owner {
    /// The owner record of run `id`, owned by uid `uid`, with results in `run_dir`.
    pub fn new(id: &RunId, uid: u32, run_dir: &Path) -> Owner {
        Owner {
            run_id: id.to_string(),
            pid: id.owner.pid,
            starttime: id.owner.starttime,
            uid,
            run_dir: run_dir.to_path_buf(),
        }
    }

    pub fn to_json(&self) -> String {
        // A struct of plain fields: serialising cannot fail.
        serde_json::to_string(self).unwrap_or_default() + "\n"
    }

    /// Parses an owner file strictly (no unknown or missing field) and checks that it is run
    /// `id`'s, owned by uid `uid`.
    pub fn parse(text: &[u8], id: &RunId, uid: u32) -> Result<Owner, OwnerError> {
        let o: Owner =
            serde_json::from_slice(text).map_err(|e| OwnerError::Parse(e.to_string()))?;
        if o.run_id != id.as_str() {
            return Err(OwnerError::OtherRun { found: o.run_id });
        }
        let recorded = ProcId {
            pid: o.pid,
            starttime: o.starttime,
        };
        if recorded != id.owner {
            return Err(OwnerError::OtherOwner {
                recorded: recorded.tag(),
                named: id.owner.tag(),
            });
        }
        if o.uid != uid {
            return Err(OwnerError::OtherUid {
                recorded: o.uid,
                wanted: uid,
            });
        }
        Ok(o)
    }
}

/// The record that a process not in a run cgroup belongs to the run:
/// `<state dir>/pids/<pid>-<start time>`, an empty file, removed when dropped (once the process
/// is gone). The harness writes one for every process it spawns outside the run's cgroups (an
/// OCI runtime during launch, a QEMU without an accounting cgroup).
#[derive(Debug)]
pub struct PidRecord {
    path: PathBuf,
}

impl PidRecord {
    /// Records process `pid` (which must still exist: a child not yet reaped does) in the run
    /// whose state dir is `state_dir`.
    pub fn create(state_dir: &Path, pid: i32) -> std::io::Result<PidRecord> {
        let p = ProcId::of(pid).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!("/proc/{pid}/stat: the process is gone"),
            )
        })?;
        let dir = state_dir.join(PIDS_DIR);
        match std::fs::create_dir(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(std::io::Error::new(
                    e.kind(),
                    format!("{}: {e}", dir.display()),
                ));
            }
            _ => {}
        }
        let path = dir.join(PidRecord::file_name(p));
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        Ok(PidRecord { path })
    }

    /// `<pid>-<start time>`.
    pub fn file_name(p: ProcId) -> String {
        format!("{}-{}", p.pid, p.starttime)
    }

    /// Parses a record's file name exactly as [`PidRecord::file_name`] writes it.
    pub fn parse_name(name: &[u8]) -> Option<ProcId> {
        let s = std::str::from_utf8(name).ok()?;
        let (pid, start) = s.split_once('-')?;
        let pid: i32 = canonical_number(pid)?;
        (pid > 0).then_some(ProcId {
            pid,
            starttime: canonical_number(start)?,
        })
    }
}

impl Drop for PidRecord {
    fn drop(&mut self) {
        // Gone already when the run's state dir was removed first.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A process carrying [`RUN_ID_ENV`]: what `clean` takes as a hint.
#[derive(Debug, Clone)]
pub struct Marker {
    pub pid: i32,
    /// Real uid, if it could be read.
    pub uid: Option<u32>,
    /// The raw value: anything any user set.
    pub value: OsString,
}

/// Every process but this one whose environment carries [`RUN_ID_ENV`] (root reads them all).
pub fn marked_processes() -> Vec<Marker> {
    let me = std::process::id() as i32;
    let Ok(all) = procfs::process::all_processes() else {
        return Vec::new();
    };
    all.flatten()
        .filter(|p| p.pid != me)
        .filter_map(|p| {
            let value = p.environ().ok()?.remove(std::ffi::OsStr::new(RUN_ID_ENV))?;
            Some(Marker {
                pid: p.pid,
                uid: uids(p.pid).map(|(real, _)| real),
                value,
            })
        })
        .collect()
}

/// (real, effective) uid of `pid`.
pub fn uids(pid: i32) -> Option<(u32, u32)> {
    let s = procfs::process::Process::new(pid).ok()?.status().ok()?;
    Some((s.ruid, s.euid))
}

/// Whether `pid` sits in run `id`'s cgroup tree (`/isobench/<id>` or below) in any hierarchy,
/// as /proc/PID/cgroup shows it to this process.
pub fn in_run_cgroup(pid: i32, id: &RunId) -> bool {
    let top = format!("/{}/{id}", crate::host::cgroup::TOP);
    let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
        return false;
    };
    text.lines().any(|l| {
        // hierarchy-id:controllers:path; the path may itself hold ':'.
        let path = l.splitn(3, ':').nth(2).unwrap_or("");
        path == top || path.strip_prefix(&top).is_some_and(|r| r.starts_with('/'))
    })
}

/// The bytes of an OS string, for [`RunId::parse_bytes`] and [`escape`].
pub fn os_bytes(s: &std::ffi::OsStr) -> &[u8] {
    s.as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::path::Component;

    fn me() -> ProcId {
        ProcId::current().expect("own start time")
    }

    #[test]
    fn the_constructor_makes_ids_the_validator_takes() {
        let id = RunId::new("20261123T000000Z-quick", me()).unwrap();
        assert!(id.as_str().starts_with("20261123T000000Z-quick-p"));
        assert_eq!(RunId::parse(id.as_str()).unwrap(), id);
        assert_eq!(id.owner(), me());
        let test = RunId::new("test12", me()).unwrap();
        assert_eq!(RunId::parse(test.as_str()).unwrap().owner(), me());
        // The longest label and the largest owner tag still fit.
        let long = "a".repeat(LABEL_MAX_LEN);
        let max = ProcId {
            pid: i32::MAX,
            starttime: u64::MAX,
        };
        assert!(RunId::new(&long, max).is_ok());
        assert_eq!(
            RunId::new(&format!("{long}b"), max),
            Err(RunIdError::LabelTooLong(LABEL_MAX_LEN + 1))
        );
    }

    #[test]
    fn a_run_id_names_its_live_owner_and_nothing_else() {
        let me = me();
        let id = RunId::new("x", me).unwrap();
        assert_eq!(id.owner_alive(), Some(me.pid));
        // Same pid, another start time: a reused pid is not the owner.
        let other = ProcId {
            starttime: me.starttime + 1,
            ..me
        };
        assert_eq!(RunId::new("x", other).unwrap().owner_alive(), None);
    }

    #[test]
    fn hostile_strings_are_not_run_ids() {
        let tag = me().tag();
        let cases: Vec<(String, &str)> = vec![
            (String::new(), "empty"),
            (format!("/tmp/victim-{tag}"), "byte 0"),
            (format!("../victim-{tag}"), "byte 0"),
            (format!("a/../../etc-{tag}"), "byte 1"),
            (format!("a..b-{tag}"), "byte 1"),
            (format!(".-{tag}"), "byte 0"),
            (format!("-x-{tag}"), "starts with '-'"),
            (format!("_x-{tag}"), "starts with '_'"),
            (format!("a b-{tag}"), "byte 1"),
            (format!("a\nb-{tag}"), "'\\n'"),
            (format!("a\0b-{tag}"), "'\\x00'"),
            (format!("é-{tag}"), "'\\xc3'"),
            ("run".into(), "no owner tag"),
            (format!("-{tag}"), "starts with '-'"),
            ("x-p12".into(), "no 't'"),
            ("x-12t3".into(), "does not start with 'p'"),
            ("x-p0t3".into(), "not positive"),
            ("x-p012t3".into(), "pid is not a number"),
            ("x-p12t03".into(), "start time is not a number"),
            ("x-p+12t3".into(), "byte 3"),
            ("x-p99999999999t3".into(), "pid is not a number"),
            (
                "x-p12t99999999999999999999".into(),
                "start time is not a number",
            ),
            ("x-p12t".into(), "start time is not a number"),
            (format!("{}-{tag}", "a".repeat(MAX_LEN)), "bytes long"),
        ];
        for (s, why) in cases {
            let e = RunId::parse(&s).expect_err(&s);
            assert!(e.to_string().contains(why), "{s:?}: {e} (wanted {why:?})");
        }
        // Non-UTF-8 bytes are refused, not replaced.
        assert!(RunId::parse_bytes(b"a\xffb-p1t1").is_err());
        assert!(RunId::new("a/b", me()).is_err());
        assert!(RunId::new("..", me()).is_err());
    }

    #[test]
    fn escaped_values_show_what_was_there() {
        assert_eq!(escape(b"/tmp/x"), "/tmp/x");
        assert_eq!(escape(b"a\nb\xff"), "a\\nb\\xff");
        let long = escape(&[b'a'; 300]);
        assert!(long.ends_with("... (300 bytes)"), "{long}");
    }

    #[test]
    fn owner_files_parse_strictly() {
        let id = RunId::new("t", me()).unwrap();
        let o = Owner::new(&id, 0, Path::new("/runs/x"));
        let text = o.to_json();
        assert_eq!(Owner::parse(text.as_bytes(), &id, 0), Ok(o.clone()));
        assert!(matches!(
            Owner::parse(b"garbage", &id, 0),
            Err(OwnerError::Parse(_))
        ));
        // The format of earlier versions (no run id, no uid) is not an owner file now.
        let old = format!(
            r#"{{"pid":{},"starttime":{},"run_dir":"/r"}}"#,
            id.owner().pid,
            id.owner().starttime
        );
        assert!(matches!(
            Owner::parse(old.as_bytes(), &id, 0),
            Err(OwnerError::Parse(_))
        ));
        let extra = text.replace("\"uid\"", "\"extra\":1,\"uid\"");
        assert!(matches!(
            Owner::parse(extra.as_bytes(), &id, 0),
            Err(OwnerError::Parse(_))
        ));
        let other = RunId::new("u", me()).unwrap();
        assert!(matches!(
            Owner::parse(text.as_bytes(), &other, 0),
            Err(OwnerError::OtherRun { .. })
        ));
        assert!(matches!(
            Owner::parse(text.as_bytes(), &id, 1000),
            Err(OwnerError::OtherUid { .. })
        ));
        let forged = Owner {
            starttime: o.starttime + 1,
            ..o
        };
        assert!(matches!(
            Owner::parse(forged.to_json().as_bytes(), &id, 0),
            Err(OwnerError::OtherOwner { .. })
        ));
    }

    #[test]
    fn pid_record_names_round_trip_and_nothing_else_parses() {
        let p = ProcId {
            pid: 42,
            starttime: 7,
        };
        assert_eq!(
            PidRecord::parse_name(PidRecord::file_name(p).as_bytes()),
            Some(p)
        );
        for bad in [
            &b"42"[..],
            b"42-",
            b"-7",
            b"042-7",
            b"42-07",
            b"0-7",
            b"42-7-1",
            b"../42-7",
            b"42-7\n",
        ] {
            assert_eq!(PidRecord::parse_name(bad), None, "{}", escape(bad));
        }
    }

    #[test]
    fn pid_records_are_files_in_the_state_dir_removed_on_drop() {
        let dir = std::env::temp_dir().join(format!("isobench-pidrec-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let me = me();
        let rec = PidRecord::create(&dir, me.pid).unwrap();
        let file = dir.join(PIDS_DIR).join(PidRecord::file_name(me));
        assert!(file.is_file());
        // One record per process: a second one for the same process is refused.
        assert!(PidRecord::create(&dir, me.pid).is_err());
        drop(rec);
        assert!(!file.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Joined onto a state root, a valid id is one normal component below it, whatever it is.
    fn stays_below(root: &Path, s: &str) {
        if RunId::parse(s).is_ok() {
            let joined = root.join(s);
            assert_eq!(joined.parent(), Some(root), "{s:?}");
            let extra: Vec<Component> = joined
                .components()
                .skip(root.components().count())
                .collect();
            assert!(
                matches!(extra.as_slice(), [Component::Normal(n)] if *n == std::ffi::OsStr::new(s)),
                "{s:?} -> {}",
                joined.display()
            );
        }
    }

    proptest! {
        #[test]
        fn no_valid_run_id_escapes_the_state_root(s in "\\PC{0,120}") {
            stays_below(Path::new("/var/lib/isobench"), &s);
        }

        #[test]
        fn no_valid_run_id_escapes_near_misses(
            label in "[A-Za-z0-9_./-]{0,70}",
            pid in "[0-9./+-]{0,12}",
            start in "[0-9./+-]{0,22}",
        ) {
            let s = format!("{label}-p{pid}t{start}");
            stays_below(Path::new("/var/lib/isobench"), &s);
            if let Ok(id) = RunId::parse(&s) {
                prop_assert!(!s.contains('/') && !s.contains('.'));
                prop_assert_eq!(RunId::new(&label, id.owner()).ok(), Some(id));
            }
        }
    }
}
