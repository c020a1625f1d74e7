//! The runner's pure logic on the mock backend (src/backend/mock.rs): statistics in
//! summary.csv, the CSV files a run writes, an instance failing mid-batch, an interrupted run
//! keeping its rows, an unavailable runtime, and the CLI's analyses of such runs. Nothing is
//! launched, so none of this needs root; none of it shows that launching works (the real
//! backends' tests do).

use assert_cmd::Command;
use isobench::backend::mock::{Fate, MockFactory, Script};
use isobench::results::load::{RunData, load};
use isobench::runner::{RunOptions, RunOutcome, run_with};
use isobench::scenario::Scenario;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A scenario that takes no reading from the host: only the runner's logic is exercised.
fn scenario(body: &str) -> Scenario {
    let text = format!(
        "name = \"mock\"\nworkload = {{ touch-memory = 8 }}\n{body}\n\
         [measure]\nmemory = false\nidle_window_s = 0\nksm = false\ndrop_caches = false\n"
    );
    Scenario::parse(&text, "mock.toml", Path::new("/")).expect("mock scenario parses")
}

struct Ran {
    /// Holds the results and state directories until the test ends.
    _tmp: tempfile::TempDir,
    outcome: RunOutcome,
    data: RunData,
    factory: MockFactory,
}

fn run(body: &str, script: Script) -> Ran {
    let tmp = tempfile::tempdir().expect("temp dir");
    let cancel = Arc::new(AtomicBool::new(false));
    let opts = RunOptions {
        out_dir: Some(tmp.path().join("run")),
        overwrite: false,
        state_root: tmp.path().join("state"),
        cache_dir: tmp.path().join("cache"),
        agent_exe: PathBuf::from(env!("CARGO_BIN_EXE_isobench")),
        progress: false,
        cancel,
        command_line: vec!["mock".into()],
        host_label: "mock-host".into(),
    };
    let factory = MockFactory::new(script);
    let outcome = run_with(scenario(body), &opts, &factory).expect("the mock run completes");
    let data = load(&outcome.run_dir, None).expect("the run directory loads back");
    Ran {
        _tmp: tmp,
        outcome,
        data,
        factory,
    }
}

/// `<label>-n<N>-r<rep>-i<i>` -> (N, rep, i); None for warmups.
fn parse_name(name: &str) -> Option<(u32, u32, u32)> {
    let mut parts = name.rsplit('-');
    let i = parts.next()?.strip_prefix('i')?.parse().ok()?;
    let rep = parts.next()?.strip_prefix('r')?.parse().ok()?;
    let n = parts.next()?.strip_prefix('n')?.parse().ok()?;
    Some((n, rep, i))
}

/// Start-up 10 ms x (rep + 1) + i ms: every statistic of a group is known in advance.
fn scripted_startup(name: &str) -> Duration {
    let (_, rep, i) = parse_name(name).unwrap_or((0, 0, 0));
    Duration::from_micros(u64::from(10_000 * (rep + 1) + 1000 * i))
}

/// Equal to the 3 decimals summary.csv keeps of a start-up time.
fn close(a: Option<f64>, b: f64) -> bool {
    a.is_some_and(|a| (a - b).abs() <= 5e-4 + 1e-9)
}

#[test]
fn summary_statistics_follow_the_scripted_startups() {
    let r = run(
        "backends = [\"process\"]\ncounts = [1, 3]\nrepetitions = 5\nwarmup = 1\nparallelism = 2\n",
        Script::default()
            .startup(scripted_startup)
            .teardown(|_| Duration::from_micros(2500)),
    );
    assert_eq!(r.outcome.samples.len(), 5 + 15);
    assert_eq!(r.outcome.failed, 0);
    assert!(!r.outcome.interrupted);
    let s = &r.data.summary;
    assert_eq!(s.len(), 2, "one summary row per N: {s:?}");
    let one = &s[0];
    assert_eq!(
        (one.backend.as_str(), one.n, one.count, one.ok),
        ("mock-process", 1, 5, 5)
    );
    // 10, 20, 30, 40, 50 ms.
    assert!(close(one.startup_ms_mean, 30.0), "{one:?}");
    assert!(close(one.startup_ms_p50, 30.0), "{one:?}");
    assert!(close(one.startup_ms_min, 10.0) && close(one.startup_ms_max, 50.0));
    // Type-7 percentile: 40 + 0.6 x 10.
    assert!(close(one.startup_ms_p90, 46.0), "{one:?}");
    // Sample standard deviation: sqrt(1000 / 4).
    assert!(
        one.startup_ms_sd
            .is_some_and(|sd| (sd - 250f64.sqrt()).abs() < 1e-3),
        "{one:?}"
    );
    assert!(close(one.teardown_ms_p50, 2.5), "{one:?}");
    let three = &s[1];
    assert_eq!((three.n, three.count, three.ok), (3, 15, 15));
    // 10(rep + 1) + i over rep 0..5, i 0..3: 30 + 1.
    assert!(close(three.startup_ms_mean, 31.0), "{three:?}");
    assert!(three.batch_ready_ms_mean.is_some(), "all N were ready");
    // The memory readings were switched off: no figure is invented.
    assert!(three.pss_kib_mean.is_none() && three.idle_cpu_ms_per_s_mean.is_none());

    // Every instance that came up (the warmup's too) was torn down, every backend finished.
    let l = &r.factory.ledger;
    assert_eq!(l.launches.load(Ordering::SeqCst), 21);
    assert_eq!(l.torn_down.load(Ordering::SeqCst), 21);
    assert_eq!(l.live.load(Ordering::SeqCst), 0);
    assert_eq!(*l.finished.lock().unwrap(), *l.prepared.lock().unwrap());
}

#[test]
fn the_csv_files_hold_every_row_as_the_outcome_does() {
    let r = run(
        "backends = [\"process\"]\ncounts = [2]\nrepetitions = 3\nwarmup = 0\n",
        Script::default().startup(scripted_startup),
    );
    let dir = &r.outcome.run_dir;
    for f in ["samples.csv", "summary.csv", "kernel.csv", "meta.json"] {
        assert!(dir.join(f).is_file(), "{f} written");
    }
    // An empty until.csv is not written (the scenario has no [until]).
    assert!(!dir.join("until.csv").exists());
    assert_eq!(r.data.samples.len(), 6);
    let mut keys: Vec<(u32, u32, u32)> = r
        .data
        .samples
        .iter()
        .map(|s| (s.n, s.rep, s.instance))
        .collect();
    keys.sort_unstable();
    let want: Vec<(u32, u32, u32)> = (0..3)
        .flat_map(|rep| (0..2).map(move |i| (2, rep, i)))
        .collect();
    assert_eq!(keys, want);
    for s in &r.data.samples {
        let expected = 10.0 * f64::from(s.rep + 1) + f64::from(s.instance);
        assert!(close(s.startup_ms, expected), "{s:?}");
        assert_eq!(s.scenario, "mock");
        assert_eq!(s.run_id, r.outcome.run_id);
        assert!(s.ok && s.error.is_empty());
    }
    // The CSV as read back is the outcome the runner returned, row for row.
    let csv_startups: Vec<Option<f64>> = r.data.samples.iter().map(|s| s.startup_ms).collect();
    let out_startups: Vec<Option<f64>> = r.outcome.samples.iter().map(|s| s.startup_ms).collect();
    assert_eq!(csv_startups, out_startups);
    assert_eq!(r.data.kernel.len(), 3, "one kernel.csv row per batch");
    assert_eq!(r.data.meta.outcome, "complete");
}

#[test]
fn an_instance_failing_mid_batch_is_its_row_and_the_batch_goes_on() {
    let r = run(
        "backends = [\"process\"]\ncounts = [3]\nrepetitions = 3\nwarmup = 0\n",
        Script::default()
            .startup(scripted_startup)
            .fate(|name| match parse_name(name) {
                Some((3, 0, 1)) => Fate::LaunchFails,
                Some((3, 1, 2)) => Fate::Dies,
                Some((3, 2, 0)) => Fate::TeardownFails,
                _ => Fate::Ready,
            }),
    );
    let row = |rep, i| {
        r.data
            .samples
            .iter()
            .find(|s| (s.rep, s.instance) == (rep, i))
            .unwrap_or_else(|| panic!("row rep {rep} instance {i}"))
    };
    assert_eq!(
        r.data.samples.len(),
        9,
        "a failed instance still has its row"
    );
    let failed = row(0, 1);
    assert!(!failed.ok && failed.startup_ms.is_none(), "{failed:?}");
    assert!(
        failed.error.contains("mock: scripted launch failure"),
        "{}",
        failed.error
    );
    let died = row(1, 2);
    assert!(!died.ok, "{died:?}");
    assert!(
        died.error
            .starts_with("workload: agent output ended before `done`"),
        "{}",
        died.error
    );
    let leaky = row(2, 0);
    assert!(
        leaky.error.contains("teardown: pids [0]"),
        "{}",
        leaky.error
    );
    assert_eq!(r.outcome.failed, 2);
    let s = &r.data.summary[0];
    assert_eq!((s.count, s.ok), (9, 7));
    // The failed launch's start-up is not in the statistics; the death's is not either.
    // ok rows: rep 0 i0, i2 (10, 12), rep 1 i0, i1 (20, 21), rep 2 i0..2 (30, 31, 32).
    assert!(
        close(s.startup_ms_min, 10.0) && close(s.startup_ms_max, 32.0),
        "{s:?}"
    );
    assert!(close(s.startup_ms_mean, 156.0 / 7.0), "{s:?}");
    // Only a batch where all N came up has a time to all ready.
    assert_eq!(r.factory.ledger.live.load(Ordering::SeqCst), 0);
}

#[test]
fn an_interrupted_run_keeps_the_rows_it_measured() {
    // The 4th launch sets the cancel flag, as a Ctrl-C would: batch N=2 rep 0 completes
    // (launches 1-2), rep 1 is cut short.
    let r = run(
        "backends = [\"process\"]\ncounts = [2]\nrepetitions = 10\nwarmup = 0\nparallelism = 1\n",
        Script::default().cancel_after(4),
    );
    assert!(r.outcome.interrupted);
    assert_eq!(r.data.meta.outcome, "interrupted");
    let reps: std::collections::BTreeSet<u32> = r.data.samples.iter().map(|s| s.rep).collect();
    assert!(reps.contains(&0), "the first batch's rows stay: {reps:?}");
    assert!(
        r.data.samples.len() < 20,
        "the run stopped early: {} rows",
        r.data.samples.len()
    );
    assert_eq!(r.data.samples.len(), r.outcome.samples.len());
    let l = &r.factory.ledger;
    assert_eq!(l.live.load(Ordering::SeqCst), 0, "nothing left up");
    assert_eq!(*l.finished.lock().unwrap(), *l.prepared.lock().unwrap());
}

#[test]
fn an_unavailable_runtime_is_noted_and_the_others_are_measured() {
    let r = run(
        "backends = [\"process\", \"oci\"]\ncounts = [1]\nrepetitions = 2\nwarmup = 0\n\
         [oci]\nruntimes = [\"runc\", \"crun\"]\n",
        Script::default().unavailable("oci-crun"),
    );
    let backends: Vec<&str> = r.data.summary.iter().map(|s| s.backend.as_str()).collect();
    assert_eq!(backends, ["mock-process", "mock-oci-runc"]);
    let note = r
        .data
        .meta
        .accelerators
        .iter()
        .find(|a| a.backend == "oci-crun")
        .unwrap_or_else(|| panic!("a note for oci-crun: {:?}", r.data.meta.accelerators));
    assert_eq!(note.accel, "unavailable");
    assert!(note.why.contains("scripted as unavailable"), "{note:?}");
}

#[test]
fn no_scenario_can_name_the_mock() {
    let e = Scenario::parse(
        "name = \"m\"\nbackends = [\"mock\"]\ncounts = [1]\n",
        "m.toml",
        Path::new("/"),
    )
    .expect_err("mock is not a backend of scenario files");
    let msg = e.to_string();
    assert!(msg.contains("mock") && msg.contains("process"), "{msg}");
}

/// `isobench compare` and `report` on two mock runs: the CLI's own logic (verdicts, exit
/// codes, files written), no root needed.
#[test]
fn compare_finds_a_scripted_regression_and_report_writes_its_files() {
    let body = "backends = [\"process\"]\ncounts = [1]\nrepetitions = 12\nwarmup = 0\n";
    let jitter = |name: &str| parse_name(name).map_or(0, |(_, rep, _)| u64::from(rep % 4));
    let base = run(
        body,
        Script::default().startup(move |n| Duration::from_micros(10_000 + 100 * jitter(n))),
    );
    // A run id is unique per process and second: one CLI process makes one run.
    let next_second = || std::thread::sleep(Duration::from_millis(1100));
    next_second();
    let same = run(
        body,
        Script::default().startup(move |n| Duration::from_micros(10_000 + 100 * jitter(n))),
    );
    next_second();
    let slow = run(
        body,
        Script::default().startup(move |n| Duration::from_micros(20_000 + 100 * jitter(n))),
    );
    let compare = |new: &Ran| {
        Command::new(env!("CARGO_BIN_EXE_isobench"))
            .arg("compare")
            .arg(&base.outcome.run_dir)
            .arg(&new.outcome.run_dir)
            .args(["--fail-on-regression", "--tolerance", "10%"])
            .timeout(Duration::from_secs(60))
            .output()
            .expect("compare runs")
    };
    let ok = compare(&same);
    let text = String::from_utf8_lossy(&ok.stdout);
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{text}{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let bad = compare(&slow);
    let text = String::from_utf8_lossy(&bad.stdout);
    assert_eq!(
        bad.status.code(),
        Some(1),
        "{text}{}",
        String::from_utf8_lossy(&bad.stderr)
    );
    assert!(
        text.lines()
            .any(|l| l.contains("startup_ms") && l.contains("regress")),
        "{text}"
    );

    let out = tempfile::tempdir().expect("temp dir");
    Command::new(env!("CARGO_BIN_EXE_isobench"))
        .arg("report")
        .arg(&base.outcome.run_dir)
        .arg("--out")
        .arg(out.path())
        .timeout(Duration::from_secs(120))
        .assert()
        .success();
    for f in ["report.html", "report.md"] {
        assert!(out.path().join(f).is_file(), "{f} written");
    }
}
