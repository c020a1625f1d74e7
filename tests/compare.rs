//! `isobench compare` with the real binary: on two real runs of the `oci` backend, BASE with the
//! host's runc and NEW with a runc slowed by a wrapper first in PATH, the self-comparison passes
//! and says it is one run, the slowed one fails `--fail-on-regression` naming start-up,
//! tolerances from flags and a file apply with flags first, and the JSON document carries the
//! verdicts. Two runs of the same build, back to back, pass the default gate (the shipped
//! gate-oci scenario, and a process scenario measuring memory and idle CPU). Runs of different
//! scenarios are refused unless `--allow-different-scenarios`. Bad input (no run dir, a bad
//! tolerance, a bad tolerance file, a bad confidence) exits 2 with one line and no output.
//!
//! The statistics themselves are unit-tested in src/stats.rs and src/compare/*.rs on synthetic
//! data; this file checks the command end to end. Tests that run instances need root (and
//! runc): without it they fail, unless ISOBENCH_ALLOW_SKIP=1.

#[path = "common/bin.rs"]
mod bin;
#[path = "common/host.rs"]
mod host;
#[path = "common/skip.rs"]
mod skip;

use isobench::results::record::Sample;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

const BIN: &str = env!("CARGO_BIN_EXE_isobench");

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A temp dir of the test's own, removed when dropped (after `isobench clean` if a run left
/// its state dir behind).
struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> TempDir {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("compare-{}-{n}-{label}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        TempDir(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        p
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let state = self.path("state");
        if state.exists() {
            let out = Command::new(BIN)
                .args(["clean", "--state-dir"])
                .arg(&state)
                .output();
            eprintln!(
                "cleanup: isobench clean --state-dir {}: {out:?}",
                state.display()
            );
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the binary with `args` (and `path` as PATH when given); stdin closed.
fn isobench(args: &[&str], path: Option<&str>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(args).stdin(Stdio::null());
    if let Some(p) = path {
        cmd.env("PATH", p);
    }
    cmd.output()
        .unwrap_or_else(|e| panic!("isobench {args:?}: {e}"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn show(o: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        o.status.code(),
        text(&o.stdout),
        text(&o.stderr)
    )
}

/// The verdict of `metric` for the `oci-runc` group in a text table, if the table has it.
fn verdict_line<'a>(stdout: &'a str, metric: &str) -> Option<&'a str> {
    stdout
        .lines()
        .find(|l| l.starts_with("oci-runc ") && l.contains(&format!(" {metric} (")))
}

fn as_str(p: &Path) -> &str {
    p.to_str().expect("temp paths are UTF-8")
}

// ---- bad input -----------------------------------------------------------------------------

/// A run directory with a samples.csv of synthetic rows: what `compare` reads, without
/// running anything. No meta.json: the scenario is unknown.
fn synthetic_run(dir: &TempDir, name: &str, startup: &[f64]) -> PathBuf {
    let run = dir.path(name);
    std::fs::create_dir_all(&run).unwrap();
    let mut w = csv::Writer::from_path(run.join("samples.csv")).unwrap();
    for (i, t) in startup.iter().enumerate() {
        w.serialize(Sample {
            backend: "process".into(),
            accel: "none".into(),
            n: 1,
            rep: i as u32,
            ok: true,
            startup_ms: Some(*t),
            ..Sample::default()
        })
        .unwrap();
    }
    w.flush().unwrap();
    run
}

fn assert_bad_input(args: &[&str], fragments: &[&str]) {
    let o = isobench(args, None);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {}", show(&o));
    assert!(
        o.stdout.is_empty(),
        "{args:?} printed results: {}",
        show(&o)
    );
    let err = text(&o.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {}", show(&o));
    for f in fragments {
        assert!(err.contains(f), "{args:?}: no {f:?} in: {err}");
    }
}

#[test]
fn bad_input_exits_2_with_one_line_naming_what_is_wrong() {
    let dir = TempDir::new("bad");
    let run = synthetic_run(&dir, "run", &[10.0; 8]);
    let run = as_str(&run);
    let not_a_run = dir.path("empty");
    std::fs::create_dir_all(&not_a_run).unwrap();
    let not_a_run = as_str(&not_a_run);

    assert_bad_input(
        &["compare", not_a_run, run],
        &["BASE", not_a_run, "not a run directory"],
    );
    assert_bad_input(
        &["compare", run, "/nonexistent/run"],
        &["NEW", "/nonexistent/run"],
    );
    assert_bad_input(
        &["compare", run, run, "--tolerance-for", "startup=0.1"],
        &[
            "--tolerance-for startup=0.1",
            "unknown metric",
            "startup_ms",
        ],
    );
    assert_bad_input(
        &["compare", run, run, "--tolerance-for", "startup_ms=-0.2"],
        &["--tolerance-for startup_ms=-0.2", "a number >= 0"],
    );
    assert_bad_input(
        &["compare", run, run, "--tolerance-for", "startup_ms=fast"],
        &["`fast` is not a number >= 0"],
    );
    assert_bad_input(
        &["compare", run, run, "--tolerance=-1"],
        &["--tolerance -1", "a number >= 0"],
    );
    let bad_key = dir.write(
        "bad-key.toml",
        "default = 0.1\n[metric]\nstartup_ms = 0.2\n",
    );
    assert_bad_input(
        &["compare", run, run, "--tolerances", as_str(&bad_key)],
        &[
            as_str(&bad_key),
            "metric: unknown key; allowed: default, [metrics]",
        ],
    );
    let bad_metric = dir.write("bad-metric.toml", "[metrics]\nstart_ms = 0.2\n");
    assert_bad_input(
        &["compare", run, run, "--tolerances", as_str(&bad_metric)],
        &[as_str(&bad_metric), "metrics.start_ms: unknown metric"],
    );
    let bad_value = dir.write("bad-value.toml", "default = -0.1\n");
    assert_bad_input(
        &["compare", run, run, "--tolerances", as_str(&bad_value)],
        &[as_str(&bad_value), "default", "a number >= 0"],
    );
    let bad_syntax = dir.write("bad-syntax.toml", "default = 0.1\n[metrics\n");
    assert_bad_input(
        &["compare", run, run, "--tolerances", as_str(&bad_syntax)],
        &[as_str(&bad_syntax), "line 2"],
    );
    assert_bad_input(
        &["compare", run, run, "--tolerances", "/nonexistent/tol.toml"],
        &["/nonexistent/tol.toml"],
    );
    assert_bad_input(
        &["compare", run, run, "--confidence", "1.5"],
        &["--confidence 1.5", "between 0 and 1"],
    );
    assert_bad_input(
        &["compare", run, run, "--resamples", "0"],
        &["--resamples 0", "allowed: 1 to"],
    );
    // Tolerances as ratios or percentages: what is neither is refused.
    for (flag, value, fragments) in [
        (
            "--tolerance",
            "lots",
            &[
                "--tolerance lots",
                "a number >= 0 or a percentage (0.1 or 10%)",
            ][..],
        ),
        ("--tolerance", "-10%", &["--tolerance -10%", "not allowed"]),
        (
            "--tolerance-for",
            "startup_ms=%",
            &["--tolerance-for startup_ms=%", "`%` is not"],
        ),
    ] {
        assert_bad_input(&["compare", run, run, flag, value], fragments);
    }
    let bad_percent = dir.write("bad-percent.toml", "[metrics]\nstartup_ms = \"2O%\"\n");
    assert_bad_input(
        &["compare", run, run, "--tolerances", as_str(&bad_percent)],
        &[as_str(&bad_percent), "metrics.startup_ms", "`2O%` is not"],
    );
}

/// Writes meta.json with `scenario` as the run's recorded scenario text.
fn with_scenario(run: &Path, id: &str, scenario: &str) {
    let meta = isobench::results::meta::RunMeta {
        run_id: id.into(),
        scenario_text: scenario.into(),
        ..Default::default()
    };
    std::fs::write(
        run.join("meta.json"),
        serde_json::to_string_pretty(&meta).unwrap(),
    )
    .unwrap();
}

const STEADY: [f64; 8] = [10.0, 10.2, 10.1, 9.9, 10.3, 10.0, 9.8, 10.1];

/// Two runs whose recorded scenarios differ in two keys: refused with one line naming both,
/// nothing on stdout; with the flag, compared with a warning. Comments and layout do not count.
#[test]
fn runs_of_different_scenarios_are_refused_unless_allowed() {
    let dir = TempDir::new("scenarios");
    let base = synthetic_run(&dir, "base", &STEADY);
    let new = synthetic_run(&dir, "new", &STEADY);
    let scenario = "name = \"s\"\nbackends = [\"process\"]\ncounts = [1]\nrepetitions = 8\n";
    with_scenario(&base, "20261202T000000Z-s-p1t1", scenario);
    with_scenario(
        &new,
        "20261202T000100Z-s-p2t2",
        &scenario
            .replace("repetitions = 8", "repetitions = 9")
            .replace("counts = [1]", "counts = [1, 2]"),
    );
    let (b, n) = (as_str(&base), as_str(&new));
    assert_bad_input(
        &["compare", b, n, "--fail-on-regression"],
        &[
            "ran different scenarios (counts: [1] in BASE, [1, 2] in NEW; repetitions: 8 in BASE, 9 in NEW)",
            "--allow-different-scenarios",
            b,
            n,
        ],
    );
    let o = isobench(&["compare", b, n, "--allow-different-scenarios"], None);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let out = text(&o.stdout);
    assert!(
        out.contains("\nwarning: BASE and NEW ran different scenarios (counts: [1] in BASE"),
        "{out}"
    );
    let o = isobench(
        &[
            "--format",
            "json",
            "compare",
            b,
            n,
            "--allow-different-scenarios",
        ],
        None,
    );
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["scenario_differences"].as_array().unwrap().len(), 2);

    // The same scenario written differently is the same scenario.
    with_scenario(
        &new,
        "20261202T000100Z-s-p2t2",
        "# the same, reordered\nrepetitions = 8\ncounts = [ 1 ]\nname = \"s\"\n\
         description = \"prose does not count\"\nbackends = [\"process\"]\n",
    );
    let o = isobench(&["compare", b, n, "--fail-on-regression"], None);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(!text(&o.stdout).contains("warning:"), "{}", show(&o));
}

/// The summary comes first; a percentage is a tolerance; BASE given twice is said to be one run.
#[test]
fn the_summary_comes_first_and_the_same_run_is_named() {
    let dir = TempDir::new("summary");
    let base = synthetic_run(&dir, "base", &STEADY);
    let slow: Vec<f64> = STEADY.iter().map(|t| t * 3.0).collect();
    let new = synthetic_run(&dir, "new", &slow);
    let (b, n) = (as_str(&base), as_str(&new));
    let o = isobench(&["compare", b, n, "--fail-on-regression"], None);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let out = text(&o.stdout);
    assert_eq!(
        out.lines().next(),
        Some(
            "1 regression, 0 improvements, 0 within noise (0 ok, 0 inconclusive); --fail-on-regression: exit 1"
        ),
        "{out}"
    );
    // 3x is within a 250% tolerance, given as a flag or in a file.
    let o = isobench(
        &[
            "compare",
            b,
            n,
            "--fail-on-regression",
            "--tolerance",
            "250%",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(
        text(&o.stdout).contains("tolerances: default 2.5 (from --tolerance)"),
        "{}",
        show(&o)
    );
    let file = dir.write("pct.toml", "[metrics]\nstartup_ms = \"250%\"\n");
    let o = isobench(
        &[
            "compare",
            b,
            n,
            "--fail-on-regression",
            "--tolerances",
            as_str(&file),
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));

    let o = isobench(&["compare", b, b, "--fail-on-regression"], None);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let out = text(&o.stdout);
    assert!(
        out.contains(&format!(
            "\nwarning: BASE and NEW are the same run (directory {b}): every ratio is 1"
        )),
        "{out}"
    );
    let o = isobench(&["--format", "json", "compare", b, n], None);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(doc["same_run"], false);
    assert!(doc["summary"].as_str().unwrap().starts_with("1 regression"));
}

/// Synthetic runs, no instances: 1 sample gives no interval (inconclusive, never a
/// regression), and a clear change in 8 samples is found both ways.
#[test]
fn synthetic_runs_follow_the_verdict_rules() {
    let dir = TempDir::new("synthetic");
    let base = synthetic_run(
        &dir,
        "base",
        &[40.0, 40.2, 40.1, 39.9, 40.3, 40.0, 39.8, 40.1],
    );
    let slow = synthetic_run(
        &dir,
        "slow",
        &[60.0, 60.2, 60.1, 59.9, 60.3, 60.0, 59.8, 60.1],
    );
    let one = synthetic_run(&dir, "one", &[10.0]);
    let one_slow = synthetic_run(&dir, "one-slow", &[50.0]);
    let (base, slow) = (as_str(&base), as_str(&slow));

    // 1.5 times as slow is within start-up's built-in tolerance (1: twice as slow), beyond 10%.
    let o = isobench(&["compare", base, slow, "--fail-on-regression"], None);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let tight = ["--fail-on-regression", "--tolerance", "10%"];
    let o = isobench(&[&["compare", base, slow][..], &tight].concat(), None);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let o = isobench(&[&["compare", slow, base][..], &tight].concat(), None);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(
        text(&o.stdout).contains("0 regressions, 1 improvement"),
        "{}",
        show(&o)
    );

    let o = isobench(
        &[
            "compare",
            as_str(&one),
            as_str(&one_slow),
            "--fail-on-regression",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let out = text(&o.stdout);
    assert!(
        out.contains("1 sample: no interval")
            && out.contains("5.000")
            && out.contains("inconclusive"),
        "{out}"
    );
}

// ---- real runs -----------------------------------------------------------------------------

const SCENARIO: &str = r#"name = "cmp"
image = "busybox"
workload = "idle"
backends = ["oci"]
counts = [1]
parallelism = 1
repetitions = 12
warmup = 1
[oci]
runtimes = ["runc"]
[measure]
memory = false
idle_window_s = 0
"#;

/// Seconds the wrapper sleeps before every runc command. The issue suggests 0.05; on this
/// 2-core host, with other builds running, runc's own start-up spreads from 40 to 450 ms, so
/// 12 samples cannot bound a 100 ms shift away from 1 + 10% every time. 0.2 s per command (two
/// commands in a start-up, two in a teardown) is a slowdown no noise hides.
const SLOWDOWN_S: &str = "0.2";

fn run_id(out: &Path) -> String {
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("meta.json")).unwrap()).unwrap();
    meta["run_id"].as_str().unwrap().to_string()
}

/// runc's path, or `None` when the test may skip without it (ISOBENCH_ALLOW_SKIP=1); without
/// root or runc the test fails otherwise, since a skip is never a pass.
fn root_and_runc() -> Option<PathBuf> {
    if skip::unless_root() || skip::unless_on_path(&["runc"]) {
        return None;
    }
    isobench::host::exec::which("runc")
}

/// Runs `scenario` into `dir/name` with `dir/state` as state dir; returns the run id.
fn run_into(dir: &TempDir, scenario: &Path, name: &str, path: Option<&str>) -> String {
    let out = dir.path(name);
    let state = dir.path("state");
    let o = isobench(
        &[
            "run",
            as_str(scenario),
            "--out",
            as_str(&out),
            "--state-dir",
            as_str(&state),
            "-q",
        ],
        path,
    );
    assert_eq!(o.status.code(), Some(0), "run {name}: {}", show(&o));
    run_id(&out)
}

#[test]
fn a_slowed_runc_fails_the_gate_and_the_run_itself_passes() {
    let Some(runc) = root_and_runc() else {
        return;
    };
    let _lock = host::host_lock();
    let dir = TempDir::new("oci");
    let scenario = dir.write("cmp.toml", SCENARIO);
    let slow_bin = dir.path("slow-bin");
    std::fs::create_dir_all(&slow_bin).unwrap();
    let wrapper = dir.write(
        "slow-bin/runc",
        &format!(
            "#!/bin/sh\nsleep {SLOWDOWN_S}\nexec {} \"$@\"\n",
            runc.display()
        ),
    );
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let slow_path = format!(
        "{}:{}",
        slow_bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let state = dir.path("state");
    let before = host::snapshot();
    let run_ids = vec![
        run_into(&dir, &scenario, "base", None),
        run_into(&dir, &scenario, "new", Some(slow_path.as_str())),
    ];
    host::assert_clean_since(&before, &state, &run_ids);
    let (base, new) = (dir.path("base"), dir.path("new"));
    let (base, new) = (as_str(&base), as_str(&new));

    // The run against itself: no regression, exit 0 with the flag.
    let o = isobench(&["compare", base, base, "--fail-on-regression"], None);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let out = text(&o.stdout);
    assert!(out.starts_with("0 regressions"), "{out}");
    assert!(out.contains("--fail-on-regression: exit 0"), "{out}");
    assert!(
        out.contains(&format!(
            "warning: BASE and NEW are the same run (run id {})",
            run_ids[0]
        )),
        "{out}"
    );
    for metric in ["startup_ms", "teardown_ms"] {
        let line = verdict_line(&out, metric).unwrap_or_else(|| panic!("no {metric}: {out}"));
        assert!(
            line.contains(" 12/12 ") && line.contains(" 1.000 "),
            "{line}"
        );
    }

    // Against the slowed runc: start-up of oci-runc is a regression even at its built-in
    // tolerance, and the gate fails; regressions lead the table.
    let o = isobench(&["compare", base, new, "--fail-on-regression"], None);
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let out = text(&o.stdout);
    assert!(!out.contains("warning:"), "{out}");
    let first_row = out
        .lines()
        .find(|l| l.starts_with("oci-runc "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(first_row.trim_end().ends_with("regression"), "{out}");
    let line = verdict_line(&out, "startup_ms").unwrap_or_else(|| panic!("{out}"));
    assert!(line.trim_end().ends_with("regression"), "{line}");
    assert!(out.contains("--fail-on-regression: exit 1"), "{out}");

    // Without the flag the same comparison reports the regression and exits 0.
    let o = isobench(&["compare", base, new], None);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(
        verdict_line(&text(&o.stdout), "startup_ms").is_some_and(|l| l.contains("regression")),
        "{}",
        show(&o)
    );

    // One JSON document with the verdicts, the method and the exit code.
    let o = isobench(
        &[
            "--format",
            "json",
            "compare",
            base,
            new,
            "--fail-on-regression",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", show(&o)));
    let rows = doc["rows"].as_array().expect("rows");
    let startup = rows
        .iter()
        .find(|r| r["backend"] == "oci-runc" && r["metric"] == "startup_ms")
        .expect("an oci-runc startup_ms row");
    assert_eq!(startup["verdict"], "regression", "{startup}");
    assert_eq!(startup["unit"], "ms");
    let (lo, ratio) = (
        startup["ci_low"].as_f64().unwrap(),
        startup["ratio"].as_f64().unwrap(),
    );
    assert!(lo > 1.1 && lo <= ratio, "{startup}");
    assert!(doc["totals"]["regression"].as_u64().unwrap() >= 1, "{doc}");
    assert_eq!(doc["exit_code"], 1);
    assert_eq!(doc["method"]["resamples"], 2000);
    assert!(doc["method"]["seed"].is_u64(), "{doc}");

    // A tolerance wide enough passes the gate: from flags, and from a file.
    let wide = [
        "--tolerance-for",
        "startup_ms=50",
        "--tolerance-for",
        "teardown_ms=50",
    ];
    let mut args = vec!["compare", base, new, "--fail-on-regression"];
    args.extend(wide);
    let o = isobench(&args, None);
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    let file = dir.write("tol.toml", "default = 50\n");
    let file = as_str(&file);
    let o = isobench(
        &[
            "compare",
            base,
            new,
            "--fail-on-regression",
            "--tolerances",
            file,
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(0), "{}", show(&o));
    assert!(
        text(&o.stdout).contains(&format!("tolerances: default 50 (from {file})")),
        "{}",
        show(&o)
    );
    // A flag wins over the file for its metric.
    let o = isobench(
        &[
            "compare",
            base,
            new,
            "--fail-on-regression",
            "--tolerances",
            file,
            "--tolerance-for",
            "startup_ms=0.1",
        ],
        None,
    );
    assert_eq!(o.status.code(), Some(1), "{}", show(&o));

    // Bad tolerances on real runs are still bad input: exit 2, nothing on stdout.
    let o = isobench(
        &["compare", base, new, "--tolerance-for", "startup_ms=-1"],
        None,
    );
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(o.stdout.is_empty());
    let bad = dir.write("bad.toml", "defaults = 0.1\n");
    let o = isobench(&["compare", base, new, "--tolerances", as_str(&bad)], None);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(
        text(&o.stderr).contains("defaults: unknown key"),
        "{}",
        show(&o)
    );
}

/// A process scenario measuring memory and idle CPU at two N: every compared metric but the
/// vm-only ones, in about 20 s a run.
const PROCESS_SCENARIO: &str = r#"name = "gate-process"
image = "busybox"
workload = "idle"
backends = ["process"]
counts = [1, 4]
parallelism = 4
repetitions = 8
warmup = 1
[measure]
memory = true
idle_window_s = 0.5
"#;

/// The default gate does not fail on noise: two runs of the same build, back to back, pass
/// `--fail-on-regression` without a tolerance given, for the shipped gate scenario and for a
/// process scenario that measures memory (whose host view moves by MiBs between runs) and idle
/// CPU. Runs of the two scenarios are refused as different.
#[test]
fn two_runs_of_the_same_build_pass_the_default_gate() {
    if root_and_runc().is_none() {
        return;
    }
    let _lock = host::host_lock();
    let dir = TempDir::new("default-gate");
    let gate = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/gate-oci.toml");
    let process = dir.write("process.toml", PROCESS_SCENARIO);
    let state = dir.path("state");
    let before = host::snapshot();
    let run_ids = vec![
        run_into(&dir, &gate, "gate-a", None),
        run_into(&dir, &gate, "gate-b", None),
        run_into(&dir, &process, "process-a", None),
        run_into(&dir, &process, "process-b", None),
    ];
    host::assert_clean_since(&before, &state, &run_ids);
    let p = |name: &str| dir.path(name).to_str().unwrap().to_string();

    for (a, b, rows) in [("gate-a", "gate-b", 2), ("process-a", "process-b", 18)] {
        let o = isobench(
            &[
                "--format",
                "json",
                "compare",
                &p(a),
                &p(b),
                "--fail-on-regression",
            ],
            None,
        );
        assert_eq!(o.status.code(), Some(0), "{a} {b}: {}", show(&o));
        let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(doc["rows"].as_array().unwrap().len(), rows, "{doc}");
        assert_eq!(doc["totals"]["regression"], 0, "{doc}");
        assert_eq!(doc["same_run"], false);
        assert_eq!(doc["warnings"].as_array().unwrap().len(), 0, "{doc}");
        assert!(doc["notes"].as_array().unwrap().is_empty(), "{doc}");
        assert_eq!(doc["tolerances"]["default"], serde_json::Value::Null);
        let o = isobench(&["compare", &p(a), &p(b), "--fail-on-regression"], None);
        let out = text(&o.stdout);
        assert!(
            out.lines()
                .next()
                .is_some_and(|l| l.starts_with("0 regressions, ")
                    && l.ends_with("--fail-on-regression: exit 0")),
            "{out}"
        );
        eprintln!("{a} against {b}:\n{out}");
    }

    // Real runs of two scenarios: refused, one line naming what differs.
    let o = isobench(&["compare", &p("gate-a"), &p("process-a")], None);
    assert_eq!(o.status.code(), Some(2), "{}", show(&o));
    assert!(o.stdout.is_empty(), "{}", show(&o));
    let err = text(&o.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.contains("ran different scenarios (backends: [\"oci\"] in BASE, [\"process\"] in NEW;"),
        "{err}"
    );
}
