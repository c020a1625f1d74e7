//! Integration tests of the `isobench` command line, with the real binary and real processes:
//! bad input (exit 2, one line, nothing created), an end-to-end run and its result files,
//! the embedded default scenario, SIGINT/SIGTERM during a run, SIGKILL followed by
//! `isobench clean`, and `clean` leaving an active run alone. After every run the host must
//! be as before (tests/common/host.rs).
//!
//! Tests that launch instances or run `isobench clean` hold `host::host_lock()` (a file lock,
//! so it also holds across nextest's one-process-per-test): `clean` acts on every run of the
//! host (cgroups and marked processes), not only on those under its --state-dir, so it must not
//! run while another of these tests has a run in flight. Bad-input tests take no lock: they
//! create nothing, and they only look at cgroup entries their own process could have made.

#[path = "common/bin.rs"]
mod bin;
#[path = "common/host.rs"]
mod host;
#[path = "common/skip.rs"]
mod skip;

use bin::{Output, wait_timeout};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::{OsStr, OsString};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_isobench");

/// Exit codes of src/lib.rs `exit`.
const EXIT_BAD_INPUT: i32 = 2;
const EXIT_INTERRUPTED: i32 = 130;

/// The columns every samples.csv must have (more are allowed).
const SAMPLE_COLUMNS: &[&str] = &[
    "run_id",
    "scenario",
    "backend",
    "accel",
    "n",
    "rep",
    "instance",
    "ok",
    "error",
    "startup_ms",
    "teardown_ms",
    "kernel_release",
    "boot_id",
];

/// The columns every summary.csv must have (more are allowed).
const SUMMARY_COLUMNS: &[&str] = &[
    "backend",
    "accel",
    "n",
    "count",
    "ok",
    "startup_ms_mean",
    "startup_ms_sd",
    "startup_ms_p50",
    "startup_ms_p90",
    "startup_ms_p99",
    "startup_ms_min",
    "startup_ms_max",
];

/// A container scenario that runs for many seconds (2050 launches, one at a time), so a test
/// can interrupt or kill it in the middle.
const LONG_SCENARIO: &str = r#"name = "long"
image = "busybox"
backends = ["container"]
counts = [1, 40]
parallelism = 1
warmup = 0
repetitions = 50
# Cost measurements (cache drops, idle windows) would stretch each batch; these tests are
# about stopping and cleaning, and need batches that follow each other quickly.
[measure]
memory = false
idle_window_s = 0
"#;

/// Rows of LONG_SCENARIO's largest batch: more rows than this after some moment means at least
/// one batch started after that moment.
const LONG_BATCH_MAX: usize = 40;

/// Returns from the test when it cannot run without root and skipping is allowed; fails it
/// otherwise (tests/common/skip.rs).
macro_rules! require_root {
    () => {
        if skip::unless_root() {
            return;
        }
    };
}

/// Serialises the tests that run instances or `isobench clean` (see the module docs).
fn host_lock() -> host::HostLock {
    host::host_lock()
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn unique(label: &str) -> String {
    format!(
        "isobench-cli-{}-{}-{label}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

// ---- fixture -------------------------------------------------------------------------------

/// A test's own temp dir (scenario files, logs, `out/` and `state/`) and the isobench run it
/// may have spawned. Dropping it, on success and on a failed assertion alike, SIGKILLs and
/// reaps the child, runs `isobench clean --state-dir` if the run left anything, and removes
/// the temp dir.
struct Fixture {
    dir: PathBuf,
    child: Option<Child>,
}

impl Fixture {
    fn new(label: &str) -> Fixture {
        let dir = std::env::temp_dir().join(unique(label));
        std::fs::create_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        set_mode(&dir, 0o755);
        Fixture { dir, child: None }
    }

    /// The --out dir (not created by the test).
    fn out(&self) -> PathBuf {
        self.dir.join("out")
    }

    /// The --state-dir (not created by the test).
    fn state(&self) -> PathBuf {
        self.dir.join("state")
    }

    /// Writes a file (world-readable, for the not-root test) and returns its path.
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::write(&p, text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        set_mode(&p, 0o644);
        p
    }

    /// `run [SCENARIO] --out OUT --state-dir STATE -q`.
    fn run_args(&self, scenario: Option<&Path>) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec!["run".into()];
        if let Some(s) = scenario {
            a.push(s.into());
        }
        a.extend([
            "--out".into(),
            self.out().into(),
            "--state-dir".into(),
            self.state().into(),
            // VM base disks: shared by the tests, outside the host's own cache.
            "--cache-dir".into(),
            concat!(env!("CARGO_TARGET_TMPDIR"), "/cache").into(),
            "-q".into(),
        ]);
        a
    }

    fn clean_args(&self) -> Vec<OsString> {
        vec!["clean".into(), "--state-dir".into(), self.state().into()]
    }

    /// Log files for one command's stdout and stderr.
    fn log_files(&self) -> (PathBuf, PathBuf) {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        (
            self.dir.join(format!("cmd-{n}.stdout")),
            self.dir.join(format!("cmd-{n}.stderr")),
        )
    }

    /// Runs `cmd` in the temp dir (so a default `runs/` would land there, not in the repo),
    /// with output to files (no pipe can fill up), and waits up to `timeout`.
    fn run_cmd(&self, mut cmd: Command, timeout: Duration) -> Output {
        let (o, e) = self.log_files();
        cmd.current_dir(&self.dir);
        bin::run_logged(cmd, &o, &e, timeout)
    }

    /// Runs the isobench binary with `args`.
    fn isobench<S: AsRef<OsStr>>(&self, args: &[S], timeout: Duration) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.args(args);
        self.run_cmd(cmd, timeout)
    }

    /// Starts `isobench run SCENARIO` in the background; returns its pid.
    fn spawn_run(&mut self, scenario: &Path) -> i32 {
        assert!(self.child.is_none(), "one background run per fixture");
        let (o, e) = self.log_files();
        let child = Command::new(BIN)
            .args(self.run_args(Some(scenario)))
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(create(&o))
            .stderr(create(&e))
            .spawn()
            .unwrap_or_else(|err| panic!("spawning {BIN}: {err}"));
        let pid = child.id() as i32;
        self.child = Some(child);
        pid
    }

    fn child_pid(&self) -> i32 {
        self.child.as_ref().map(|c| c.id() as i32).expect("a run")
    }

    /// Sends `sig` to the background run (which is not reaped yet, so the pid is still its).
    fn signal(&self, sig: Signal) {
        let pid = self.child_pid();
        kill(Pid::from_raw(pid), sig).unwrap_or_else(|e| panic!("kill {pid} {sig}: {e}"));
    }

    /// Waits up to `timeout` for the background run to end.
    fn wait_child(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let child = self.child.as_mut().expect("a run");
        wait_timeout(child, timeout)
    }

    /// Panics with the background run's logs if it has already ended.
    fn assert_child_running(&mut self, what: &str) {
        let child = self.child.as_mut().expect("a run");
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "isobench run ended ({status}) before {what}\n{}",
                self.logs()
            );
        }
    }

    /// Every log file of this fixture, for failure messages.
    fn logs(&self) -> String {
        let mut names: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.to_string_lossy().contains("cmd-"))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        names
            .iter()
            .map(|p| format!("--- {} ---\n{}", p.display(), read(p)))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// Polls until samples.csv has at least `min` complete data rows (up to `timeout`, failing
    /// early if the run ends); returns the number seen.
    fn wait_for_rows(&mut self, min: usize, timeout: Duration) -> usize {
        let samples = self.out().join("samples.csv");
        let start = Instant::now();
        loop {
            let n = complete_rows(&samples);
            if n >= min {
                return n;
            }
            self.assert_child_running(&format!("samples.csv had {min} rows (it has {n})"));
            assert!(
                start.elapsed() < timeout,
                "samples.csv has {n} rows after {timeout:?}, expected {min}\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The run id from out/meta.json, if it is there.
    fn run_id(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.out().join("meta.json")).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        v["run_id"].as_str().map(str::to_string)
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // kill() is a no-op on a child already reaped by wait_child.
            let _ = c.kill();
            let _ = c.wait();
        }
        // `clean` also removes other runs on the host (see the module docs), so it runs only
        // when this fixture's run left something.
        let leftovers = self.state().exists()
            || self
                .run_id()
                .is_some_and(|id| !host::run_leftovers(&id).is_empty());
        if leftovers {
            let (o, e) = self.log_files();
            let status = Command::new(BIN)
                .args(self.clean_args())
                .current_dir(&self.dir)
                .stdin(Stdio::null())
                .stdout(create(&o))
                .stderr(create(&e))
                .spawn()
                .map(|mut c| {
                    wait_timeout(&mut c, Duration::from_secs(30)).or_else(|| {
                        let _ = c.kill();
                        c.wait().ok()
                    })
                });
            eprintln!(
                "cleanup: isobench clean --state-dir {}: {status:?}\n{}\n{}",
                self.state().display(),
                read(&o),
                read(&e)
            );
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

// ---- helpers -------------------------------------------------------------------------------

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", p.display()));
}

fn create(p: &Path) -> std::fs::File {
    std::fs::File::create(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| format!("<{}: {e}>", p.display()))
}

/// A small scenario: both backends, N = 1 and 3, nothing thrown away.
fn small_scenario(name: &str) -> String {
    format!(
        r#"name = "{name}"
image = "busybox"
workload = "idle"
backends = ["process", "container"]
counts = [1, 3]
parallelism = 2
warmup = 0
repetitions = 1
"#
    )
}

/// A CSV file read by header: the header names and every row as column -> value.
struct Table {
    headers: Vec<String>,
    rows: Vec<BTreeMap<String, String>>,
}

impl Table {
    fn read(path: &Path) -> Table {
        let mut r =
            csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let headers: Vec<String> = r
            .headers()
            .unwrap_or_else(|e| panic!("{}: header: {e}", path.display()))
            .iter()
            .map(str::to_string)
            .collect();
        let rows = r
            .records()
            .enumerate()
            .map(|(i, rec)| {
                let rec = rec.unwrap_or_else(|e| panic!("{}: row {}: {e}", path.display(), i + 1));
                headers
                    .iter()
                    .cloned()
                    .zip(rec.iter().map(str::to_string))
                    .collect()
            })
            .collect();
        Table { headers, rows }
    }

    fn assert_has_columns(&self, path: &Path, columns: &[&str]) {
        let missing: Vec<&&str> = columns
            .iter()
            .filter(|c| !self.headers.iter().any(|h| h == **c))
            .collect();
        assert!(
            missing.is_empty(),
            "{}: missing columns {missing:?}; header: {:?}",
            path.display(),
            self.headers
        );
    }
}

/// Complete, parseable data rows of a CSV file that may still be growing (0 if missing):
/// counts up to the first row that does not parse (a half-written last line).
fn complete_rows(path: &Path) -> usize {
    let Ok(mut r) = csv::Reader::from_path(path) else {
        return 0;
    };
    r.records().take_while(Result::is_ok).count()
}

fn col<'a>(row: &'a BTreeMap<String, String>, name: &str) -> &'a str {
    row.get(name)
        .map(String::as_str)
        .unwrap_or_else(|| panic!("no column {name} in {row:?}"))
}

fn num<T: std::str::FromStr>(row: &BTreeMap<String, String>, name: &str) -> T {
    col(row, name)
        .parse()
        .unwrap_or_else(|_| panic!("{name} is not a number in {row:?}"))
}

fn read_meta(out: &Path) -> serde_json::Value {
    let p = out.join("meta.json");
    let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", p.display()))
}

fn host_file(path: &str) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
        .trim()
        .to_string()
}

/// Checks meta.json of a finished run; returns its run id.
fn check_meta(meta: &serde_json::Value, scenario_text: &str, outcome: &str) -> String {
    let s = |k: &str| -> &str {
        meta[k]
            .as_str()
            .unwrap_or_else(|| panic!("meta.json: {k} is not a string: {meta:#}"))
    };
    assert!(!s("run_id").is_empty(), "{meta:#}");
    assert!(
        s("host_kernel").starts_with(&host_file("/proc/sys/kernel/osrelease")),
        "{meta:#}"
    );
    assert!(
        ["v1", "v2", "hybrid"].contains(&s("cgroup_mode")),
        "{meta:#}"
    );
    // The model string may legitimately be empty on odd hosts; it must be there.
    let _ = s("cpu_model");
    assert!(
        meta["cpu_cores"].as_u64().is_some_and(|n| n > 0),
        "{meta:#}"
    );
    assert!(
        meta["mem_total_kib"].as_u64().is_some_and(|n| n > 0),
        "{meta:#}"
    );
    assert_eq!(s("isobench_version"), env!("CARGO_PKG_VERSION"), "{meta:#}");
    assert!(!s("git_revision").is_empty(), "{meta:#}");
    assert_eq!(s("scenario_text"), scenario_text, "{meta:#}");
    assert!(!s("started_at").is_empty(), "{meta:#}");
    assert!(!s("ended_at").is_empty(), "ended_at must be set: {meta:#}");
    assert_eq!(s("outcome"), outcome, "{meta:#}");
    s("run_id").to_string()
}

/// Checks samples.csv of a complete run: the columns, one ok row per instance per repetition
/// of every (backend, N), and the kernel identity of every row: the host's for backends on the
/// host kernel, a boot_id of its own for every VM.
fn check_samples(out: &Path, run_id: &str, plan: &[(&str, &[u32])], reps: u32) -> Table {
    let path = out.join("samples.csv");
    let t = Table::read(&path);
    t.assert_has_columns(&path, SAMPLE_COLUMNS);
    let release = host_file("/proc/sys/kernel/osrelease");
    let boot_id = host_file("/proc/sys/kernel/random/boot_id");
    let expected: u32 = plan.iter().map(|(_, c)| c.iter().sum::<u32>() * reps).sum();
    assert_eq!(t.rows.len(), expected as usize, "{}", path.display());
    let mut seen: BTreeSet<(String, u32, u32, u32)> = BTreeSet::new();
    for row in &t.rows {
        assert_eq!(col(row, "ok"), "true", "{row:?}");
        assert_eq!(col(row, "error"), "", "{row:?}");
        assert_eq!(col(row, "run_id"), run_id, "{row:?}");
        let startup: f64 = num(row, "startup_ms");
        assert!(startup > 0.0 && startup.is_finite(), "{row:?}");
        let teardown: f64 = num(row, "teardown_ms");
        assert!(teardown >= 0.0, "{row:?}");
        let backend = col(row, "backend").to_string();
        let Some((_, counts)) = plan.iter().find(|(b, _)| *b == backend) else {
            panic!("unexpected backend in {row:?}")
        };
        if backend == "vm" {
            assert_ne!(
                col(row, "boot_id"),
                boot_id,
                "a VM boots its own kernel: {row:?}"
            );
            assert!(["kvm", "tcg"].contains(&col(row, "accel")), "{row:?}");
            assert!(!col(row, "guest_mem_total_kib").is_empty(), "{row:?}");
        } else {
            assert_eq!(col(row, "kernel_release"), release, "{row:?}");
            assert_eq!(col(row, "boot_id"), boot_id, "{row:?}");
            assert_eq!(col(row, "accel"), "none", "{row:?}");
        }
        let (n, rep, i): (u32, u32, u32) = (num(row, "n"), num(row, "rep"), num(row, "instance"));
        assert!(counts.contains(&n) && rep < reps && i < n, "{row:?}");
        assert!(seen.insert((backend, n, rep, i)), "duplicate row {row:?}");
    }
    t
}

/// Checks summary.csv of a complete run: one row per backend x N, all instances ok.
fn check_summary(out: &Path, plan: &[(&str, &[u32])], reps: u32) {
    let path = out.join("summary.csv");
    let t = Table::read(&path);
    t.assert_has_columns(&path, SUMMARY_COLUMNS);
    let got: BTreeSet<(String, u32)> = t
        .rows
        .iter()
        .map(|r| (col(r, "backend").to_string(), num(r, "n")))
        .collect();
    let want: BTreeSet<(String, u32)> = plan
        .iter()
        .flat_map(|(b, counts)| counts.iter().map(|n| (b.to_string(), *n)))
        .collect();
    assert_eq!(got, want, "{}", path.display());
    assert_eq!(t.rows.len(), want.len(), "one row per backend x N");
    for r in &t.rows {
        let n: u32 = num(r, "n");
        assert_eq!(num::<u32>(r, "count"), n * reps, "{r:?}");
        assert_eq!(num::<u32>(r, "ok"), n * reps, "{r:?}");
        for c in ["startup_ms_mean", "startup_ms_p50", "startup_ms_min"] {
            assert!(num::<f64>(r, c) > 0.0, "{c} in {r:?}");
        }
    }
}

/// The stdout table has a line for `backend`.
fn assert_table_line(stdout: &str, backend: &str) {
    assert!(
        stdout
            .lines()
            .any(|l| l.split_whitespace().next() == Some(backend)),
        "no {backend} line in the table:\n{stdout}"
    );
}

/// After an interrupted or ongoing run: every row parses, and only the last batch (the one the
/// signal cut short) may have failed rows.
fn check_partial_samples(out: &Path, at_least: usize) -> Table {
    let path = out.join("samples.csv");
    let t = Table::read(&path);
    t.assert_has_columns(&path, SAMPLE_COLUMNS);
    assert!(
        t.rows.len() >= at_least,
        "{}: {} rows, {at_least} were seen before",
        path.display(),
        t.rows.len()
    );
    let last = t
        .rows
        .last()
        .map(|r| (col(r, "n").to_string(), col(r, "rep").to_string()));
    for row in &t.rows {
        let batch = Some((col(row, "n").to_string(), col(row, "rep").to_string()));
        if batch != last {
            assert_eq!(
                col(row, "ok"),
                "true",
                "failed row before the last batch: {row:?}"
            );
        }
    }
    t
}

// ---- bad input -----------------------------------------------------------------------------

/// Names of the cgroup directories in `isobench/` of the memory hierarchy (v1/hybrid) or of
/// the unified one (pure v2); a missing dir is empty.
fn cgroup_entries() -> BTreeSet<String> {
    let v1 = Path::new("/sys/fs/cgroup/memory");
    let top = if v1.join("cgroup.procs").exists() {
        v1.join("isobench")
    } else {
        PathBuf::from("/sys/fs/cgroup/isobench")
    };
    std::fs::read_dir(top)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// Asserts what every rejected invocation must do: exit 2, print exactly one line on stderr
/// containing `fragments` (and nothing on stdout), and create nothing.
fn assert_bad_input(f: &Fixture, out: &Output, cg_before: &BTreeSet<String>, fragments: &[&str]) {
    assert_eq!(out.status.code(), Some(EXIT_BAD_INPUT), "{out:?}");
    assert!(out.stdout.is_empty(), "stdout should be empty: {out:?}");
    assert!(
        out.stderr.ends_with('\n') && out.stderr.lines().count() == 1,
        "stderr must be exactly one line: {out:?}"
    );
    for frag in fragments {
        assert!(
            out.stderr.contains(frag),
            "stderr should mention {frag:?}: {out:?}"
        );
    }
    assert!(!f.out().exists(), "--out dir was created: {out:?}");
    assert!(!f.state().exists(), "--state-dir was created: {out:?}");
    assert!(
        !f.dir.join("runs").exists(),
        "a default runs/ dir was created"
    );
    // Run ids end in the owner tag `-p<pid>t<start time>` (host::run_id): only entries
    // naming that pid can be this process's; other tests may be creating runs meanwhile.
    let tag = format!("-p{}t", out.pid);
    let new: Vec<String> = cgroup_entries()
        .into_iter()
        .filter(|e| !cg_before.contains(e) && e.contains(&tag))
        .collect();
    assert!(new.is_empty(), "cgroup dirs appeared: {new:?}");
}

/// A scenario that would be valid (and launch containers) but for `change`.
fn scenario_with(change: &str) -> String {
    let base = [
        ("name", "name = \"bad\""),
        ("image", "image = \"busybox\""),
        ("backends", "backends = [\"process\", \"container\"]"),
        ("counts", "counts = [1]"),
        ("parallelism", "parallelism = 1"),
        ("warmup", "warmup = 0"),
    ];
    let key = change.split(['=', ' ']).next().unwrap_or("");
    let mut lines: Vec<String> = base
        .iter()
        .filter(|(k, _)| *k != key)
        .map(|(_, l)| l.to_string())
        .collect();
    lines.push(change.to_string());
    lines.join("\n") + "\n"
}

/// Runs `isobench run <file with text>` and checks it is rejected naming the file and `frags`.
fn rejects_scenario(label: &str, text: &str, frags: &[&str]) {
    let f = Fixture::new(label);
    let path = f.write(&format!("{label}.toml"), text);
    let cg_before = cgroup_entries();
    let out = f.isobench(&f.run_args(Some(&path)), Duration::from_secs(20));
    let shown = path.display().to_string();
    let mut all = vec![shown.as_str()];
    all.extend_from_slice(frags);
    assert_bad_input(&f, &out, &cg_before, &all);
}

#[test]
fn missing_scenario_file_is_bad_input() {
    let f = Fixture::new("missing");
    let cg_before = cgroup_entries();
    let out = f.isobench(
        &f.run_args(Some(Path::new("/nonexistent/x.toml"))),
        Duration::from_secs(20),
    );
    assert_bad_input(&f, &out, &cg_before, &["/nonexistent/x.toml"]);
}

#[test]
fn malformed_toml_is_bad_input() {
    let text = "name = \"bad\"\nimage = \"busybox\"\nbackends = [\"process\", \"container\"\n\
                counts = [1]\n";
    rejects_scenario("syntax", text, &["line 4"]);
}

#[test]
fn unknown_key_is_bad_input() {
    rejects_scenario(
        "unknown-key",
        &scenario_with("colour = \"red\""),
        &["colour"],
    );
}

#[test]
fn wrong_type_is_bad_input() {
    rejects_scenario(
        "wrong-type",
        &scenario_with("counts = \"ten\""),
        &["counts", "ten"],
    );
}

#[test]
fn unknown_backend_is_bad_input() {
    rejects_scenario(
        "backend",
        &scenario_with("backends = [\"kvm\"]"),
        &["backends", "\"kvm\""],
    );
}

#[test]
fn zero_instances_is_bad_input() {
    rejects_scenario(
        "n-zero",
        &scenario_with("counts = [0]"),
        &["counts", "N = 0"],
    );
}

#[test]
fn absurd_instance_count_is_bad_input() {
    rejects_scenario(
        "n-absurd",
        &scenario_with("counts = [100001]"),
        &["counts", "100001"],
    );
}

#[test]
fn missing_image_directory_is_bad_input() {
    rejects_scenario(
        "image",
        &scenario_with("image = \"/nonexistent/rootfs\""),
        &["image", "/nonexistent/rootfs"],
    );
}

/// True if every directory above `p` lets others search it and `p` lets others execute it.
fn others_can_execute(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.permissions().mode())
            .unwrap_or(0)
    };
    mode(p) & 0o001 != 0 && p.ancestors().skip(1).all(|a| mode(a) & 0o001 != 0)
}

#[test]
fn container_backend_as_non_root_is_bad_input() {
    let f = Fixture::new("not-root");
    let scenario = f.write(
        "not-root.toml",
        "name = \"notroot\"\nimage = \"busybox\"\nbackends = [\"container\"]\ncounts = [1]\n",
    );
    let cg_before = cgroup_entries();
    let mut cmd;
    if nix::unistd::geteuid().is_root() {
        let Some(setpriv) = ["/usr/bin/setpriv", "/bin/setpriv"]
            .into_iter()
            .map(Path::new)
            .find(|p| p.exists())
        else {
            skip::because("setpriv (util-linux) is not installed, cannot drop to uid 65534");
            return;
        };
        // uid 65534 must be able to execute the binary: copy it if the target dir is private.
        let mut bin = PathBuf::from(BIN);
        if !others_can_execute(&bin) {
            let copy = f.dir.join("isobench");
            std::fs::copy(&bin, &copy).unwrap_or_else(|e| panic!("copying {BIN}: {e}"));
            set_mode(&copy, 0o755);
            bin = copy;
        }
        cmd = Command::new(setpriv);
        cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(bin);
    } else {
        // Already not root: the binary as is.
        cmd = Command::new(BIN);
    }
    // The fixture dir is root's (0755): uid 65534 could not create --out there even if
    // isobench tried, and the assertions below check it did not.
    cmd.args(f.run_args(Some(&scenario)));
    let out = f.run_cmd(cmd, Duration::from_secs(20));
    assert_bad_input(&f, &out, &cg_before, &["root", "container"]);
}

#[test]
fn usage_errors_exit_2() {
    let f = Fixture::new("usage");
    for args in [
        &["frobnicate"][..],
        &["run", "--no-such-flag"],
        &["clean", "--state-dir"],
    ] {
        let out = f.isobench(args, Duration::from_secs(20));
        assert_eq!(out.status.code(), Some(EXIT_BAD_INPUT), "{args:?}: {out:?}");
        assert!(!out.stderr.is_empty(), "{args:?}: {out:?}");
    }
}

// ---- runs ----------------------------------------------------------------------------------

#[test]
fn end_to_end_small_scenario() {
    require_root!();
    let _lock = host_lock();
    let f = Fixture::new("e2e");
    let text = small_scenario("e2e");
    let scenario = f.write("e2e.toml", &text);
    let before = host::snapshot();
    let out = f.isobench(&f.run_args(Some(&scenario)), Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    let run_id = check_meta(&read_meta(&f.out()), &text, "complete");
    let backends = ["process", "container"];
    let plan: Vec<(&str, &[u32])> = backends.iter().map(|b| (*b, &[1u32, 3][..])).collect();
    check_samples(&f.out(), &run_id, &plan, 1);
    check_summary(&f.out(), &plan, 1);
    for b in backends {
        assert_table_line(&out.stdout, b);
    }
    host::assert_clean_since(&before, &f.state(), &[run_id]);
}

#[test]
fn embedded_default_scenario_runs() {
    require_root!();
    let _lock = host_lock();
    let f = Fixture::new("default");
    let before = host::snapshot();
    let out = f.isobench(&f.run_args(None), Duration::from_secs(180));
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    let quick = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios/quick.toml");
    let meta = read_meta(&f.out());
    let run_id = check_meta(&meta, &host_file_raw(quick), "complete");
    assert!(
        meta["scenario_origin"]
            .as_str()
            .is_some_and(|o| o.contains("embedded")),
        "{meta:#}"
    );
    // quick.toml: process and container at N = 1, 10, 100; VMs at N = 1, 2 ([vm] counts).
    let plan: [(&str, &[u32]); 3] = [
        ("process", &[1, 10, 100]),
        ("container", &[1, 10, 100]),
        ("vm", &[1, 2]),
    ];
    check_samples(&f.out(), &run_id, &plan, 1);
    check_summary(&f.out(), &plan, 1);
    for (b, _) in plan {
        assert_table_line(&out.stdout, b);
    }
    host::assert_clean_since(&before, &f.state(), &[run_id]);
}

fn host_file_raw(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Starts the long scenario, waits for 2 rows, sends `sig`: the run must stop within 15 s
/// with exit 130, keep its rows, say "interrupted", and leave nothing on the host.
fn interrupted_by(sig: Signal) {
    let _lock = host_lock();
    let mut f = Fixture::new(&format!("sig{}", sig as i32));
    let scenario = f.write("long.toml", LONG_SCENARIO);
    let before = host::snapshot();
    f.spawn_run(&scenario);
    let seen = f.wait_for_rows(2, Duration::from_secs(30));

    f.signal(sig);
    let sent = Instant::now();
    let status = f.wait_child(Duration::from_secs(15));
    let Some(status) = status else {
        panic!("isobench did not exit within 15 s of {sig}\n{}", f.logs());
    };
    eprintln!("{sig}: exited after {:?} with {status}", sent.elapsed());
    assert_eq!(
        status.code(),
        Some(EXIT_INTERRUPTED),
        "{status}\n{}",
        f.logs()
    );
    assert!(f.logs().contains("interrupted"), "{}", f.logs());

    check_partial_samples(&f.out(), seen);
    let meta = read_meta(&f.out());
    let run_id = check_meta(&meta, LONG_SCENARIO, "interrupted");
    let summary = f.out().join("summary.csv");
    Table::read(&summary).assert_has_columns(&summary, SUMMARY_COLUMNS);
    host::assert_clean_since(&before, &f.state(), &[run_id]);
}

#[test]
fn sigint_stops_the_run_cleanly() {
    require_root!();
    interrupted_by(Signal::SIGINT);
}

#[test]
fn sigterm_stops_the_run_cleanly() {
    require_root!();
    interrupted_by(Signal::SIGTERM);
}

#[test]
fn clean_removes_what_a_killed_run_left() {
    require_root!();
    let _lock = host_lock();
    let mut f = Fixture::new("sigkill");
    let scenario = f.write("long.toml", LONG_SCENARIO);
    let before = host::snapshot();
    f.spawn_run(&scenario);
    f.wait_for_rows(1, Duration::from_secs(30));
    let run_id = f.run_id().expect("meta.json with a run id");

    f.signal(Signal::SIGKILL);
    let status = f
        .wait_child(Duration::from_secs(10))
        .expect("a SIGKILLed isobench is reaped within 10 s");
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");

    // A killed run cannot clean up after itself.
    let run_state = f.state().join(&run_id);
    assert!(
        run_state.is_dir(),
        "{} should be left by the killed run",
        run_state.display()
    );
    assert!(
        host::isobench_cgroup_dirs()
            .iter()
            .any(|d| d.file_name().is_some_and(|n| n == run_id.as_str())),
        "the killed run's cgroup isobench/{run_id} should be left"
    );
    // Its instances die by the parent-death signal, without `clean`.
    let ids = [run_id.clone()];
    let left = host::wait_until_no_marked(&ids, Duration::from_secs(5));
    assert!(
        left.is_empty(),
        "instances of the killed run still alive after 5 s: {left:?}"
    );

    let out = f.isobench(&f.clean_args(), Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        out.stdout.contains(&format!("cleaned run {run_id}")),
        "{out:?}"
    );
    host::assert_clean_since(&before, &f.state(), &ids);

    let again = f.isobench(&f.clean_args(), Duration::from_secs(60));
    assert_eq!(again.status.code(), Some(0), "{again:?}");
    assert!(!again.stdout.contains(&run_id), "{again:?}");
    if !again.stdout.contains("nothing to clean") {
        // `clean` looks at the whole host: only a concurrent test binary's runs (which hold
        // no lock of ours) can show up here, never anything of ours.
        let foreign: Vec<&str> = again
            .stdout
            .lines()
            .filter(|l| !l.starts_with(' '))
            .collect();
        assert!(
            !foreign.is_empty()
                && foreign
                    .iter()
                    .all(|l| l.starts_with("cleaned run ") || l.starts_with("run ")),
            "second clean should say \"nothing to clean\": {again:?}"
        );
        eprintln!("note: second clean found other runs (a concurrent test binary?): {foreign:?}");
    }
}

#[test]
fn clean_leaves_an_active_run_alone() {
    require_root!();
    let _lock = host_lock();
    let mut f = Fixture::new("active");
    let scenario = f.write("long.toml", LONG_SCENARIO);
    let before = host::snapshot();
    let pid = f.spawn_run(&scenario);
    f.wait_for_rows(1, Duration::from_secs(30));
    let run_id = f.run_id().expect("meta.json with a run id");

    let out = f.isobench(&f.clean_args(), Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        out.stdout
            .contains(&format!("run {run_id} is still active (pid {pid})")),
        "{out:?}"
    );
    assert!(
        !out.stdout.contains(&format!("cleaned run {run_id}")),
        "{out:?}"
    );
    assert!(
        f.state().join(&run_id).is_dir(),
        "clean removed the active run's state dir"
    );
    f.assert_child_running("clean returned");

    // The run goes on unharmed: a batch launched after `clean` returned completes fine.
    let rows = complete_rows(&f.out().join("samples.csv"));
    let seen = f.wait_for_rows(rows + LONG_BATCH_MAX + 1, Duration::from_secs(30));

    f.signal(Signal::SIGINT);
    let status = f
        .wait_child(Duration::from_secs(15))
        .unwrap_or_else(|| panic!("isobench did not exit within 15 s of SIGINT\n{}", f.logs()));
    assert_eq!(
        status.code(),
        Some(EXIT_INTERRUPTED),
        "{status}\n{}",
        f.logs()
    );
    check_partial_samples(&f.out(), seen);
    check_meta(&read_meta(&f.out()), LONG_SCENARIO, "interrupted");
    host::assert_clean_since(&before, &f.state(), &[run_id]);
}

// ---- faults: --out, its lock, deaths, repeated signals, `timeout` ---------------------------

/// A quick run on the process backend only: what the --out tests need.
const PROCESS_SCENARIO: &str = r#"name = "quick-process"
backends = ["process"]
counts = [1]
warmup = 0
[measure]
memory = false
idle_window_s = 0
"#;

/// `run SCENARIO` with the fixture's --out/--state-dir and `extra` arguments.
fn run_with(f: &Fixture, scenario: &Path, extra: &[&str]) -> Vec<OsString> {
    let mut a = f.run_args(Some(scenario));
    a.extend(extra.iter().map(OsString::from));
    a
}

/// Names in a directory, sorted (empty if it does not exist).
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Exit 2 with one line on stderr naming every fragment.
fn assert_one_line_exit_2(out: &Output, fragments: &[&str]) {
    assert_eq!(out.status.code(), Some(EXIT_BAD_INPUT), "{out:?}");
    assert_eq!(out.stderr.lines().count(), 1, "one line: {out:?}");
    for frag in fragments {
        assert!(
            out.stderr.contains(frag),
            "stderr should name {frag:?}: {out:?}"
        );
    }
}

/// Unmounts on drop, so a failed assertion leaves no test mount behind.
struct TestMount(PathBuf);

impl TestMount {
    fn tmpfs(at: &Path, opts: &str) -> TestMount {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", opts, "isobench-test"])
            .arg(at)
            .status()
            .expect("mount runs")
            .success();
        assert!(ok, "mounting a tmpfs at {}", at.display());
        TestMount(at.to_path_buf())
    }
}

impl Drop for TestMount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_non_empty_out_dir_is_refused_and_overwrite_empties_it_without_following_links() {
    require_root!();
    let _lock = host_lock();
    let f = Fixture::new("overwrite");
    let scenario = f.write("p.toml", PROCESS_SCENARIO);
    let outside = f.dir.join("outside");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("keep"), "not the run's").unwrap();
    let out = f.out();
    std::fs::create_dir_all(out.join("plots")).unwrap();
    std::fs::write(out.join("report.html"), "stale").unwrap();
    std::fs::write(out.join("plots/startup.svg"), "stale").unwrap();
    std::os::unix::fs::symlink(&outside, out.join("plots/linked-dir")).unwrap();
    std::os::unix::fs::symlink(outside.join("keep"), out.join("linked-file")).unwrap();
    let stale = names(&out);

    let refused = f.isobench(&run_with(&f, &scenario, &[]), Duration::from_secs(30));
    assert_one_line_exit_2(&refused, &[&out.display().to_string(), "--overwrite"]);
    assert_eq!(names(&out), stale, "a refusal touches nothing");
    assert!(!f.state().exists(), "nothing is created: {refused:?}");

    let ran = f.isobench(
        &run_with(&f, &scenario, &["--overwrite"]),
        Duration::from_secs(60),
    );
    assert_eq!(ran.status.code(), Some(0), "{ran:?}");
    let now = names(&out);
    for gone in ["report.html", "plots", "linked-file"] {
        assert!(!now.contains(&gone.to_string()), "{gone} survived: {now:?}");
    }
    assert!(now.contains(&"samples.csv".to_string()), "{now:?}");
    assert_eq!(
        std::fs::read_to_string(outside.join("keep")).unwrap(),
        "not the run's",
        "a symlink was followed"
    );
}

#[test]
fn overwrite_refuses_a_mount_inside_the_out_dir_and_removes_nothing() {
    require_root!();
    let f = Fixture::new("overwrite-mount");
    let scenario = f.write("p.toml", PROCESS_SCENARIO);
    let out = f.out();
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("report.html"), "stale").unwrap();
    let mnt = TestMount::tmpfs(&out.join("data/mnt"), "size=1m");
    std::fs::write(mnt.0.join("precious"), "on another filesystem").unwrap();

    let refused = f.isobench(
        &run_with(&f, &scenario, &["--overwrite"]),
        Duration::from_secs(30),
    );
    assert_one_line_exit_2(&refused, &["mount point", &mnt.0.display().to_string()]);
    assert!(
        out.join("report.html").exists(),
        "refused before removing anything"
    );
    assert_eq!(
        std::fs::read_to_string(mnt.0.join("precious")).unwrap(),
        "on another filesystem"
    );
    assert!(!f.state().exists(), "{refused:?}");
}

#[test]
fn an_unwritable_out_or_state_dir_is_bad_input_and_creates_nothing() {
    require_root!();
    let f = Fixture::new("unwritable");
    let scenario = f.write("p.toml", PROCESS_SCENARIO);
    let cg_before = cgroup_entries();
    let a_file = f.write("a-file", "");
    let ro = TestMount::tmpfs(&f.dir.join("ro"), "ro,size=1m");
    let proc_out = format!("/proc/isobench-{}", std::process::id());
    for (bad, why) in [
        (proc_out.clone(), "cannot create it"),
        (a_file.join("out").display().to_string(), "cannot create it"),
        (a_file.display().to_string(), "not a directory"),
        (ro.0.display().to_string(), "not writable"),
    ] {
        let mut args = vec!["run".into(), scenario.clone().into_os_string()];
        args.extend(
            ["--out", &bad, "--state-dir"]
                .iter()
                .map(OsString::from)
                .chain([f.state().into_os_string(), "-q".into()]),
        );
        let out = f.isobench(&args, Duration::from_secs(30));
        assert_bad_input(&f, &out, &cg_before, &[&bad, why]);
    }
    assert!(!Path::new(&proc_out).exists());
    assert!(names(&ro.0).is_empty());

    // An unusable --state-dir is found after the out dir was made: it goes again.
    let bad_state = format!("/proc/isobench-state-{}", std::process::id());
    let mut args = vec!["run".into(), scenario.into_os_string()];
    args.extend(
        ["--out"]
            .iter()
            .map(OsString::from)
            .chain([f.out().into_os_string()])
            .chain(["--state-dir", &bad_state, "-q"].iter().map(OsString::from)),
    );
    let out = f.isobench(&args, Duration::from_secs(30));
    assert_bad_input(&f, &out, &cg_before, &[&bad_state]);
}

#[test]
fn a_backend_that_cannot_be_prepared_leaves_no_out_dir() {
    require_root!();
    let _lock = host_lock();
    let f = Fixture::new("bad-tarball");
    std::fs::write(f.dir.join("rootfs.tar"), vec![b'x'; 2048]).unwrap();
    let scenario = f.write(
        "t.toml",
        "name = \"t\"\nimage = \"rootfs.tar\"\nbackends = [\"container\"]\ncounts = [1]\n",
    );
    let cg_before = cgroup_entries();
    let out = f.isobench(&f.run_args(Some(&scenario)), Duration::from_secs(60));
    assert_bad_input(&f, &out, &cg_before, &["rootfs.tar"]);
}

#[test]
fn a_second_run_into_the_same_out_dir_fails_at_once() {
    require_root!();
    let _lock = host_lock();
    let mut f = Fixture::new("locked");
    let long = f.write("long.toml", LONG_SCENARIO);
    let quick = f.write("p.toml", PROCESS_SCENARIO);
    let before = host::snapshot();
    f.spawn_run(&long);
    f.wait_for_rows(2, Duration::from_secs(30));
    let run_id = f.run_id().expect("meta.json with a run id");

    let other_state = f.dir.join("state2");
    for extra in [&[][..], &["--overwrite"][..]] {
        let mut args = vec!["run".into(), quick.clone().into_os_string(), "--out".into()];
        args.push(f.out().into_os_string());
        args.extend(["--state-dir".into(), other_state.clone().into_os_string()]);
        args.extend(extra.iter().map(OsString::from));
        let rows = complete_rows(&f.out().join("samples.csv"));
        let t = Instant::now();
        let second = f.isobench(&args, Duration::from_secs(30));
        assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
        assert_one_line_exit_2(
            &second,
            &[&f.out().display().to_string(), "another isobench run"],
        );
        assert!(!other_state.exists(), "{second:?}");
        assert!(
            complete_rows(&f.out().join("samples.csv")) >= rows,
            "the first run's rows were touched"
        );
    }
    f.assert_child_running("the second run was refused");
    f.signal(Signal::SIGINT);
    let status = f.wait_child(Duration::from_secs(15)).expect("exits");
    assert_eq!(status.code(), Some(EXIT_INTERRUPTED), "{}", f.logs());
    host::assert_clean_since(&before, &f.state(), &[run_id]);
}

#[test]
fn an_instance_killed_from_outside_fails_the_run_with_exit_1() {
    require_root!();
    let _lock = host_lock();
    let mut f = Fixture::new("killed-instance");
    let scenario = f.write(
        "p.toml",
        "name = \"victim\"\nbackends = [\"process\"]\ncounts = [1]\nwarmup = 0\n\
         [measure]\nmemory = false\nidle_window_s = 4\nidle_adaptive = false\n",
    );
    let before = host::snapshot();
    f.spawn_run(&scenario);
    let start = Instant::now();
    let run_id = loop {
        if let Some(id) = f.run_id() {
            break id;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{}", f.logs());
        std::thread::sleep(Duration::from_millis(10));
    };
    let agent = loop {
        let mine: Vec<i32> = host::marked_processes()
            .into_iter()
            .filter(|(_, id)| *id == run_id)
            .map(|(p, _)| p)
            .collect();
        if let [pid] = mine[..] {
            break pid;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{mine:?}\n{}",
            f.logs()
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    // Ready in milliseconds; the idle window keeps the batch alive for seconds.
    std::thread::sleep(Duration::from_millis(500));
    kill(Pid::from_raw(agent), Signal::SIGKILL).unwrap();
    let status = f.wait_child(Duration::from_secs(30)).expect("the run ends");
    assert_eq!(status.code(), Some(1), "{}", f.logs());
    let t = Table::read(&f.out().join("samples.csv"));
    assert_eq!(t.rows.len(), 1);
    let err = col(&t.rows[0], "error");
    assert_eq!(col(&t.rows[0], "ok"), "false");
    assert!(
        err.starts_with("agent killed by SIGKILL after ready, ") && err.ends_with(" s after start"),
        "{err}"
    );
    assert!(
        f.logs().contains(&format!("died: {err}")),
        "the death is announced when seen:\n{}",
        f.logs()
    );
    host::assert_clean_since(&before, &f.state(), &[run_id]);
}

/// Batches of 100 containers: tearing one down takes long enough for signals to land in it.
const STORM_SCENARIO: &str = r#"name = "storm"
image = "busybox"
backends = ["container"]
counts = [100]
parallelism = 2
warmup = 0
repetitions = 5
[measure]
memory = false
idle_window_s = 0
"#;

/// SIGINT in the middle of a batch of 100, then SIGTERM and SIGINT in turn every 10 ms until
/// the run ends: many signals land during teardown, which finishes all the same.
#[test]
fn signals_during_teardown_are_noted_and_teardown_finishes() {
    require_root!();
    let _lock = host_lock();
    let mut f = Fixture::new("sig-storm");
    let scenario = f.write("storm.toml", STORM_SCENARIO);
    let before = host::snapshot();
    f.spawn_run(&scenario);
    f.wait_for_rows(100, Duration::from_secs(120));
    // The second batch is launching: a few dozen instances are up when the signal comes.
    std::thread::sleep(Duration::from_millis(500));
    let run_id = f.run_id().expect("meta.json with a run id");
    f.signal(Signal::SIGINT);
    let sent = Instant::now();
    let mut extra = 0;
    let status = loop {
        if let Some(s) = f.wait_child(Duration::from_millis(10)) {
            break s;
        }
        assert!(sent.elapsed() < Duration::from_secs(30), "{}", f.logs());
        f.signal(if extra % 2 == 0 {
            Signal::SIGTERM
        } else {
            Signal::SIGINT
        });
        extra += 1;
    };
    eprintln!(
        "{extra} more signals while it tore down for {:?}",
        sent.elapsed()
    );
    assert_eq!(status.code(), Some(EXIT_INTERRUPTED), "{}", f.logs());
    assert!(extra > 0, "no signal landed during teardown");
    assert!(
        f.logs().contains("again: still tearing down"),
        "{}",
        f.logs()
    );
    check_meta(&read_meta(&f.out()), STORM_SCENARIO, "interrupted");
    check_partial_samples(&f.out(), 1);
    host::assert_clean_since(&before, &f.state(), &[run_id]);
}

/// `timeout 3 isobench run ...`: GNU timeout sends SIGTERM to the run and then to its whole
/// process group, mid-batch; the run still tears down completely and keeps its samples.
#[test]
fn timeout_3_leaves_nothing_of_the_run() {
    require_root!();
    let _lock = host_lock();
    for (flags, want) in [
        (&[][..], 124),
        (&["--preserve-status"][..], EXIT_INTERRUPTED),
    ] {
        let f = Fixture::new("timeout");
        let scenario = f.write("long.toml", LONG_SCENARIO);
        let before = host::snapshot();
        let mut cmd = Command::new("timeout");
        cmd.args(flags)
            .arg("3")
            .arg(BIN)
            .args(f.run_args(Some(&scenario)));
        let out = f.run_cmd(cmd, Duration::from_secs(60));
        assert_eq!(out.status.code(), Some(want), "{out:?}");
        assert!(out.stderr.contains("SIGTERM"), "{out:?}");
        let run_id = check_meta(&read_meta(&f.out()), LONG_SCENARIO, "interrupted");
        let rows = check_partial_samples(&f.out(), 1).rows.len();
        assert!(rows > 0 && rows < 2050, "mid-scenario at 3 s: {rows} rows");
        host::assert_clean_since(&before, &f.state(), &[run_id]);
    }
}

/// A timeout says what was awaited and the whole limit with the key that sets it, in the row.
#[test]
fn a_ready_timeout_names_what_was_awaited_and_the_whole_limit() {
    require_root!();
    let _lock = host_lock();
    let f = Fixture::new("ready-timeout");
    let scenario = f.write(
        "t.toml",
        "name = \"slow\"\nbackends = [\"process\", \"container\"]\ncounts = [1]\nwarmup = 0\n\
         ready_timeout_s = 0.0001\n[measure]\nmemory = false\nidle_window_s = 0\n",
    );
    let before = host::snapshot();
    let out = f.isobench(&f.run_args(Some(&scenario)), Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let t = Table::read(&f.out().join("samples.csv"));
    assert_eq!(t.rows.len(), 2, "{out:?}");
    for row in &t.rows {
        let err = col(row, "error");
        assert_eq!(col(row, "ok"), "false", "{row:?}");
        assert!(
            err.ends_with("after 0.1 ms (ready_timeout_s)"),
            "{}: {err}",
            col(row, "backend")
        );
    }
    let run_id = check_meta(
        &read_meta(&f.out()),
        &host_file_raw(&scenario.display().to_string()),
        "complete",
    );
    host::assert_clean_since(&before, &f.state(), &[run_id]);
}

#[test]
fn a_fifo_as_out_is_refused_at_once_and_a_nested_state_dir_leaves_no_parents() {
    require_root!();
    let _lock = host_lock();
    let f = Fixture::new("fifo-nested");
    let scenario = f.write("p.toml", PROCESS_SCENARIO);
    let cg_before = cgroup_entries();

    // A FIFO given as --out: refused as not a directory, not waited on.
    let fifo = f.dir.join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let mut args = vec![
        "run".into(),
        scenario.clone().into_os_string(),
        "--out".into(),
    ];
    args.extend([fifo.clone().into_os_string(), "--state-dir".into()]);
    args.extend([f.state().into_os_string(), "-q".into()]);
    let t = Instant::now();
    let out = f.isobench(&args, Duration::from_secs(30));
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "took {:?}",
        t.elapsed()
    );
    assert_bad_input(&f, &out, &cg_before, &["not a directory"]);

    // A --state-dir whose parents do not exist: the run makes them and removes them again.
    let top = f.dir.join("nested");
    let state = top.join("a/b/state");
    let mut args = vec!["run".into(), scenario.into_os_string(), "--out".into()];
    args.extend([f.out().into_os_string(), "--state-dir".into()]);
    args.extend([state.into_os_string(), "-q".into()]);
    let out = f.isobench(&args, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        !top.exists(),
        "the parents the run made for its state root are gone"
    );
}

/// A reader that stops reading early (`isobench doctor | head -1`) is no reason to panic: the
/// output ends quietly and the exit code is the command's own.
#[test]
fn a_closed_stdout_ends_the_output_quietly() {
    let mut child = Command::new(bin::BIN)
        .arg("doctor")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Closed before the command writes anything: every write gets EPIPE.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        out.status.code().is_some(),
        "ended by a signal: {:?}",
        out.status
    );
}
