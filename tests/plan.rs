//! `isobench plan` with the real binary: on a real density run of containers touching memory
//! (fit near the touched size, files written, JSON), on run directories written here with
//! known costs (exact answers, the until comparison), and on bad input (exit 2, one line,
//! nothing written).
//!
//! The real run launches containers, so it holds `host::host_lock()` like every test that
//! does. The synthetic runs launch nothing and take no lock.

#[path = "common/bin.rs"]
mod bin;
#[path = "common/host.rs"]
mod host;
#[path = "common/skip.rs"]
mod skip;

use isobench::results::meta::RunMeta;
use isobench::results::record::{Sample, UntilRow};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_isobench");
const EXIT_BAD_INPUT: i32 = 2;
const MIB: f64 = 1024.0;

/// A temp dir removed on drop, failed assertion or not (tempfile).
fn temp_dir(label: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("isobench-plan-{label}-"))
        .tempdir()
        .unwrap()
}

fn isobench(args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running isobench {args:?}: {e}"))
}

fn show(o: &Output) -> String {
    format!(
        "{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// plan.csv's rows as column -> value.
fn plan_rows(path: &Path) -> Vec<BTreeMap<String, String>> {
    let mut r = csv::Reader::from_path(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let headers: Vec<String> = r.headers().unwrap().iter().map(str::to_string).collect();
    r.records()
        .map(|rec| {
            headers
                .iter()
                .cloned()
                .zip(rec.unwrap().iter().map(str::to_string))
                .collect()
        })
        .collect()
}

fn num(row: &BTreeMap<String, String>, col: &str) -> f64 {
    row.get(col)
        .unwrap_or_else(|| panic!("plan.csv has no column {col}"))
        .parse()
        .unwrap_or_else(|e| panic!("{col} = {:?}: {e}", row[col]))
}

// ---- synthetic runs ------------------------------------------------------------------------

/// Writes a run directory whose batches cost exactly `fixed + per x N` KiB on the host
/// (per instance: that / N), with a PSS of `per` each and no idle CPU.
fn write_density_run(dir: &Path, ns: &[u32], fixed: f64, per: f64) {
    write_backend_run(
        dir,
        ns,
        fixed,
        per,
        &Sample {
            backend: "container".into(),
            accel: "none".into(),
            ..Sample::default()
        },
    );
    write_meta(dir, "capacity");
}

/// The rows of [`write_density_run`], each starting from `like` (backend, accel, VM fields).
fn write_backend_run(dir: &Path, ns: &[u32], fixed: f64, per: f64, like: &Sample) {
    std::fs::create_dir_all(dir).unwrap();
    let mut w = csv::Writer::from_path(dir.join("samples.csv")).unwrap();
    for &n in ns {
        for i in 0..n {
            w.serialize(Sample {
                n,
                rep: 0,
                instance: i,
                ok: true,
                startup_ms: Some(5.0),
                host_avail_kib: Some((fixed + per * f64::from(n)) / f64::from(n)),
                pss_kib: Some(per as u64),
                idle_cpu_ms_per_s: Some(0.0),
                ..like.clone()
            })
            .unwrap();
        }
    }
    w.flush().unwrap();
}

fn write_meta(dir: &Path, scenario: &str) {
    write_meta_text(
        dir,
        scenario,
        &format!("name = \"{scenario}\"\nworkload = {{ touch-memory = 64 }}\n"),
    );
}

fn write_meta_text(dir: &Path, scenario: &str, text: &str) {
    let meta = RunMeta {
        scenario: scenario.into(),
        scenario_text: text.into(),
        hostname: "testhost".into(),
        cpu_cores: 4,
        mem_total_kib: 16 * 1024 * 1024,
        ..RunMeta::default()
    };
    std::fs::write(
        dir.join("meta.json"),
        serde_json::to_string_pretty(&meta).unwrap(),
    )
    .unwrap();
}

/// An until run that reached `reached` with the given budget.
fn write_until_run(dir: &Path, reached: u32, start_kib: u64, floor_kib: u64) {
    std::fs::create_dir_all(dir).unwrap();
    let mut w = csv::Writer::from_path(dir.join("samples.csv")).unwrap();
    w.serialize(Sample {
        backend: "container".into(),
        accel: "none".into(),
        n: reached,
        ok: true,
        startup_ms: Some(5.0),
        ..Sample::default()
    })
    .unwrap();
    w.flush().unwrap();
    let mut w = csv::Writer::from_path(dir.join("until.csv")).unwrap();
    w.serialize(UntilRow {
        run_id: "u".into(),
        backend: "container".into(),
        accel: "none".into(),
        n_reached: reached,
        stop_reason: "MemAvailable 1 MiB fell below the floor of 2 MiB".into(),
        mem_available_kib_at_stop: floor_kib - 1,
        step: Some(10),
        mem_available_kib_at_start: Some(start_kib),
        mem_available_floor_kib: Some(floor_kib),
    })
    .unwrap();
    w.flush().unwrap();
    write_meta(dir, "capacity-until");
}

#[test]
fn known_costs_give_exact_answers_and_the_until_comparison() {
    let t = temp_dir("known");
    let (run, until, out) = (
        t.path().join("run"),
        t.path().join("until"),
        t.path().join("out"),
    );
    // 10 MiB fixed, 65 MiB per instance.
    write_density_run(&run, &[1, 10, 50, 100], 10.0 * MIB, 65.0 * MIB);
    // Budget 12 GiB: (12288 - 10) / 65 = 188.9 -> 188 fit; a run with step 10 stops at 190.
    write_until_run(&until, 190, 20 * 1024 * 1024, 8 * 1024 * 1024);
    let o = isobench(&[
        "plan",
        run.to_str().unwrap(),
        "--until",
        until.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--host-mem",
        "64G",
        "--headroom",
        "0.25",
        "--workloads",
        "1000",
        "--workload-mem",
        "191M",
    ]);
    assert!(o.status.success(), "{}", show(&o));
    let rows = plan_rows(&out.join("plan.csv"));
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert!(
        (num(r, "mem_per_instance_kib") - 65.0 * MIB).abs() < 1e-6,
        "{r:?}"
    );
    assert!((num(r, "mem_fixed_kib") - 10.0 * MIB).abs() < 1e-6, "{r:?}");
    // 64 GiB x 0.75 = 49152 MiB: (49152 - 10) / 65 = 756.0 -> 756.
    assert_eq!(num(r, "max_n"), 756.0);
    assert_eq!(r["bound_by"], "memory");
    // With 191 MiB more per instance: (49152 - 10) / 256 = 191.96 -> 191 per host, and
    // 1000 / 191 -> 6 hosts.
    assert_eq!(num(r, "max_n_with_workload"), 191.0);
    assert_eq!(num(r, "hosts"), 6.0);
    assert_eq!(num(r, "until_predicted_n"), 188.0);
    assert_eq!(num(r, "until_reached_n"), 190.0);
    assert!((num(r, "until_relative_difference") - (188.0 - 184.5) / 184.5).abs() < 1e-9);
    let text = String::from_utf8_lossy(&o.stdout);
    for needle in [
        "predicted max N",
        "180-189",
        "within the step",
        "not CPU-bound",
        "756",
    ] {
        assert!(text.contains(needle), "no {needle:?} in:\n{text}");
    }
    assert!(out.join("plan.svg").is_file() && out.join("plan.png").is_file());
    // The plot's legend gives the answers: instances per host, what bounds them, the hosts.
    let svg = std::fs::read_to_string(out.join("plan.svg")).unwrap();
    for needle in [
        "container (none): 65.0 MiB each; 756 per host (memory-bound, extrapolated",
        "6 host(s) for 1000 x 191 MiB",
        "budget 48.0 GiB: 64.0 GiB less 25% headroom",
    ] {
        assert!(svg.contains(needle), "plan.svg has no {needle:?}");
    }
    // The run directories themselves were only read.
    assert!(!run.join("plan.csv").exists() && !until.join("plan.csv").exists());

    // The same as one JSON document.
    let o = isobench(&[
        "plan",
        run.to_str().unwrap(),
        "--until",
        until.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", show(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not one JSON document: {e}\n{}", show(&o)));
    assert_eq!(v["until"][0]["predicted_n"], 188);
    assert_eq!(
        v["host"]["mem_kib"],
        16.0 * MIB * MIB,
        "meta.json's host by default"
    );
    assert_eq!(v["host"]["cpus"], 4.0);
    assert!(
        v["definitions"]["max_n"]
            .as_str()
            .unwrap()
            .contains("headroom")
    );
    let slope = v["backends"][0]["model"]["memory"]["fit"]["slope"]
        .as_f64()
        .unwrap();
    assert!((slope - 65.0 * MIB).abs() < 1e-6);
}

#[test]
fn an_until_run_given_as_the_run_is_not_fitted_from_its_own_batch() {
    let t = temp_dir("own");
    let until = t.path().join("until");
    write_until_run(&until, 190, 20 * 1024 * 1024, 8 * 1024 * 1024);
    let o = isobench(&["plan", until.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(EXIT_BAD_INPUT), "{}", show(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("--until") && err.contains(until.to_str().unwrap()),
        "{err}"
    );
    assert!(!until.join("plan.csv").exists());
}

#[test]
fn bad_input_exits_2_with_one_line_and_writes_nothing() {
    let t = temp_dir("bad");
    let run = t.path().join("run");
    write_density_run(&run, &[1, 10, 50], 0.0, 1024.0);
    let out = t.path().join("out");
    let r = run.to_str().unwrap();
    let o_arg = out.to_str().unwrap();
    let cases: Vec<(Vec<&str>, &[&str])> = vec![
        (vec![r, "--host-mem", "64"], &["--host-mem", "K, M, G or T"]),
        (vec![r, "--host-mem", "64GB"], &["--host-mem", "64G"]),
        (vec![r, "--workload-mem", "0M"], &["--workload-mem"]),
        (vec![r, "--headroom", "1"], &["--headroom", "below 1"]),
        (vec![r, "--host-cpus", "0"], &["--host-cpus"]),
        (vec![r, "--workloads", "0"], &["--workloads"]),
        (
            vec!["/nonexistent/run"],
            &["/nonexistent/run", "samples.csv"],
        ),
        (vec![r, "--until", r], &["--until", "until.csv"]),
    ];
    for (args, frags) in cases {
        let mut all = vec!["plan"];
        all.extend(&args);
        all.extend(["--out", o_arg]);
        let o = isobench(&all);
        assert_eq!(
            o.status.code(),
            Some(EXIT_BAD_INPUT),
            "{args:?}: {}",
            show(&o)
        );
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        for f in frags {
            assert!(err.contains(f), "{args:?}: no {f:?} in {err}");
        }
        assert!(o.stdout.is_empty(), "{args:?}: {}", show(&o));
        assert!(!out.exists(), "{args:?} created {}", out.display());
        assert!(
            !run.join("plan.csv").exists(),
            "{args:?} wrote into the run"
        );
    }
}

/// A density run whose exact line has a fixed cost below 0: the line is refitted through 0, and
/// the text, plan.csv and the JSON say so, with what least squares gave.
#[test]
fn a_negative_fixed_cost_is_clamped_and_said() {
    let t = temp_dir("clamp");
    let (run, out) = (t.path().join("run"), t.path().join("out"));
    // -20 MiB + 65 MiB x N: least squares finds -20 MiB exactly.
    write_density_run(&run, &[1, 10, 50, 100], -20.0 * MIB, 65.0 * MIB);
    let r = run.to_str().unwrap();
    let o_arg = out.to_str().unwrap();
    let o = isobench(&["plan", r, "--out", o_arg, "--host-cpus", "8"]);
    assert!(o.status.success(), "{}", show(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("0 MiB (clamped, see note)"), "{text}");
    assert!(
        text.contains(
            "note: container (none) memory: fixed cost clamped to 0: least squares gave -20.0 "
        ),
        "{text}"
    );
    let row = &plan_rows(&out.join("plan.csv"))[0];
    assert_eq!(num(row, "mem_fixed_kib"), 0.0);
    assert_eq!(row["mem_fixed_clamped"], "true");
    assert!(
        (num(row, "mem_fixed_unclamped_kib") + 20.0 * MIB).abs() < 1e-6,
        "{row:?}"
    );
    // The PSS line (65 MiB each, no fixed cost) is not clamped.
    assert_eq!(row["pss_fixed_clamped"], "false");
    assert_eq!(row["pss_fixed_unclamped_kib"], "");
    // Through 0, the slope is sum(xy)/sum(x²), a little below 65 MiB; every answer uses it.
    let (xs, ys): (Vec<f64>, Vec<f64>) = [1.0, 10.0, 50.0, 100.0]
        .iter()
        .map(|&n: &f64| (n, -20.0 * MIB + 65.0 * MIB * n))
        .unzip();
    let slope =
        xs.iter().zip(&ys).map(|(x, y)| x * y).sum::<f64>() / xs.iter().map(|x| x * x).sum::<f64>();
    assert!(
        (num(row, "mem_per_instance_kib") - slope).abs() < 1e-6,
        "{row:?}"
    );
    assert_eq!(
        num(row, "max_n"),
        (num(row, "mem_budget_kib") / slope).floor(),
        "{row:?}"
    );
    let o = isobench(&["plan", r, "--out", o_arg, "--format", "json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let fit = &v["backends"][0]["model"]["memory"]["fit"];
    assert_eq!(fit["intercept"], 0.0);
    assert!((fit["clamped"]["intercept"].as_f64().unwrap() + 20.0 * MIB).abs() < 1e-6);
}

/// The warnings: a CPU budget from the measuring host (stronger when --host-mem is given),
/// and a workload larger than a VM's guest RAM, measured or configured.
#[test]
fn plan_warns_of_a_borrowed_cpu_budget_and_a_workload_beyond_the_guest() {
    let t = temp_dir("warn");
    let (run, out) = (t.path().join("run"), t.path().join("out"));
    // VMs at 40 MiB + 126 MiB x N, their guests reporting `guest_total` KiB of MemTotal.
    let write_vm_run = |guest_total: Option<u64>, scenario: &str| {
        let vm = Sample {
            backend: "vm".into(),
            accel: "tcg".into(),
            guest_mem_total_kib: guest_total,
            ..Sample::default()
        };
        write_backend_run(&run, &[1, 2, 4, 8], 40.0 * MIB, 126.0 * MIB, &vm);
        write_meta_text(&run, "vm", scenario);
    };
    write_vm_run(
        Some(94_820),
        "name = \"vm\"\nbackends = [\"vm\"]\n[vm]\nmemory_mib = 128\n",
    );
    let r = run.to_str().unwrap();
    let o_arg = out.to_str().unwrap();
    let warnings = |args: &[&str]| -> (Vec<String>, String) {
        let mut all = vec!["plan", r, "--out", o_arg];
        all.extend(args);
        let o = isobench(&all);
        assert!(o.status.success(), "{}", show(&o));
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        all.extend(["--format", "json"]);
        let o = isobench(&all);
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        let w = v["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_str().unwrap().to_string())
            .collect();
        (w, text)
    };
    let (w, text) = warnings(&[]);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].starts_with("the CPU budget is the measuring host's 4 cores")
            && w[0].ends_with("give --host-cpus for the host you plan for"),
        "{w:?}"
    );
    assert!(text.contains(&format!("\nwarning: {}\n", w[0])), "{text}");
    let (w, _) = warnings(&["--host-mem", "256G"]);
    assert!(w[0].contains(", although --host-mem was given:"), "{w:?}");
    // 64 MiB fits a guest reporting 92.6 MiB; 100 MiB does not.
    let (w, _) = warnings(&["--host-cpus", "64", "--workload-mem", "64M"]);
    assert!(w.is_empty(), "{w:?}");
    let (w, text) = warnings(&[
        "--host-cpus",
        "64",
        "--workload-mem",
        "100M",
        "--workloads",
        "10",
    ]);
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(
        w[0],
        "vm (tcg): the workload's memory, 100 MiB (100 MiB of --workload-mem), exceeds the guest's RAM, 92.6 MiB (MemTotal the guests reported): such a VM needs a larger guest, which this run did not measure, so its answers are too optimistic"
    );
    assert!(
        text.contains("warning: vm (tcg): the workload's memory"),
        "{text}"
    );

    // Without the guests' MemTotal: the scenario's [vm] memory_mib, plus the run's own
    // touch-memory.
    write_vm_run(
        None,
        "name = \"vm\"\nworkload = { touch-memory = 100 }\n[vm]\nmemory_mib = 256\n",
    );
    let (w, _) = warnings(&["--host-cpus", "64", "--workload-mem", "200M"]);
    assert_eq!(
        w,
        [
            "vm (tcg): the workload's memory, 300 MiB (100 MiB of the run's touch-memory + 200 MiB of --workload-mem), exceeds the guest's RAM, 256 MiB ([vm] memory_mib of the run's scenario): such a VM needs a larger guest, which this run did not measure, so its answers are too optimistic"
        ]
    );
}

// ---- a real run ----------------------------------------------------------------------------

/// Containers touching 32 MiB each at N = 1, 4, 8: the PSS model must find about 32 MiB per
/// instance (the processes' own pages), the host view must carry kernel.csv's totals, and the
/// answers must follow from the fit.
#[test]
fn plan_fits_a_real_density_run() {
    if skip::unless_root() {
        return;
    }
    let _lock = host::host_lock();
    let t = temp_dir("real");
    let scenario = t.path().join("s.toml");
    std::fs::write(
        &scenario,
        r#"name = "plan-test"
workload = { touch-memory = 32 }
backends = ["container"]
counts = [1, 4, 8]
parallelism = 2
warmup = 1
ready_timeout_s = 60

[limits]
memory_mib = 64
pids = 64

[measure]
memory = true
drop_caches = true
idle_window_s = 0.5
"#,
    )
    .unwrap();
    let (run, state) = (t.path().join("run"), t.path().join("state"));
    let before = host::snapshot();
    let o = isobench(&[
        "run",
        scenario.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
        "-q",
    ]);
    assert!(o.status.success(), "{}", show(&o));
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("meta.json")).unwrap()).unwrap();
    host::assert_clean_since(
        &before,
        &state,
        &[meta["run_id"].as_str().unwrap().to_string()],
    );

    let o = isobench(&["plan", run.to_str().unwrap(), "--workloads", "100"]);
    assert!(o.status.success(), "{}", show(&o));
    for f in ["plan.csv", "plan.svg", "plan.png"] {
        let p = run.join(f);
        assert!(
            p.is_file() && std::fs::metadata(&p).unwrap().len() > 100,
            "{} missing or empty",
            p.display()
        );
    }
    let rows = plan_rows(&run.join("plan.csv"));
    assert_eq!(rows.len(), 1, "{rows:?}");
    let r = &rows[0];
    assert_eq!(
        (r["backend"].as_str(), r["n_values"].as_str()),
        ("container", "1 4 8")
    );
    let pss = num(r, "pss_per_instance_kib") / MIB;
    assert!(
        (32.0..36.0).contains(&pss),
        "PSS per instance {pss} MiB: {r:?}"
    );
    // Whatever the fit, the answers follow from it: max N is within the budget.
    let (fixed, per, budget) = (
        num(r, "mem_fixed_kib"),
        num(r, "mem_per_instance_kib"),
        num(r, "mem_budget_kib"),
    );
    let n = num(r, "max_n");
    assert!(
        fixed + per * n <= budget && fixed + per * (n + 1.0) > budget,
        "{r:?}"
    );
    assert!(num(r, "hosts") >= 1.0);

    let o = isobench(&["plan", run.to_str().unwrap(), "--format", "json"]);
    assert!(o.status.success(), "{}", show(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("not one JSON document: {e}\n{}", show(&o)));
    assert_eq!(v["backends"][0]["capacity"]["max_n"].as_f64(), Some(n));
    // The host view's batch totals are kernel.csv's MemAvailable decreases. Its fitted slope
    // is not asserted: on this host the kernel keeps up to ~400 MiB of free pages on per-CPU
    // lists, outside MemFree, so a batch of 256 MiB can read as almost nothing.
    let batches = v["backends"][0]["model"]["batches"].as_array().unwrap();
    assert_eq!(batches.len(), 3);
    let mut k = csv::Reader::from_path(run.join("kernel.csv")).unwrap();
    let deltas: Vec<(u64, f64)> = k
        .deserialize::<isobench::results::record::KernelRow>()
        .map(|r| {
            let r = r.unwrap();
            (u64::from(r.n), r.host_avail_kib_delta.unwrap() as f64)
        })
        .collect();
    for b in batches {
        let n = b["n"].as_u64().unwrap();
        let total = b["host_mem_kib"].as_f64().unwrap();
        let (_, delta) = deltas.iter().find(|(kn, _)| *kn == n).unwrap();
        assert!(
            (total - delta).abs() < 1.0,
            "N = {n}: {total} against {delta}"
        );
    }

    // A bad flag on a real run: exit 2, and plan.csv is not rewritten.
    let stamp = std::fs::metadata(run.join("plan.csv"))
        .unwrap()
        .modified()
        .unwrap();
    let o = isobench(&["plan", run.to_str().unwrap(), "--host-mem", "64"]);
    assert_eq!(o.status.code(), Some(EXIT_BAD_INPUT), "{}", show(&o));
    assert_eq!(
        std::fs::metadata(run.join("plan.csv"))
            .unwrap()
            .modified()
            .unwrap(),
        stamp
    );
}

/// A real until run writes what `plan` needs to predict it: the step, MemAvailable at start
/// and the floor. A floor above any host's memory stops it after the first step.
#[test]
fn until_csv_records_the_budget() {
    if skip::unless_root() {
        return;
    }
    let _lock = host::host_lock();
    let t = temp_dir("until");
    let scenario = t.path().join("u.toml");
    std::fs::write(
        &scenario,
        "name = \"plan-until\"\nbackends = [\"container\"]\ncounts = [1]\nwarmup = 0\n\
         [until]\nstep = 2\nmax = 10\nmem_available_floor_mib = 1048576\n\
         [measure]\nidle_window_s = 0\ndrop_caches = false\n",
    )
    .unwrap();
    let (run, state) = (t.path().join("run"), t.path().join("state"));
    let o = isobench(&[
        "run",
        scenario.to_str().unwrap(),
        "--out",
        run.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
        "-q",
    ]);
    assert!(o.status.success(), "{}", show(&o));
    assert!(!state.exists(), "nothing left");
    let rows: Vec<UntilRow> = csv::Reader::from_path(run.join("until.csv"))
        .unwrap()
        .deserialize()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(rows.len(), 1);
    let u = &rows[0];
    assert_eq!((u.n_reached, u.step), (2, Some(2)));
    assert_eq!(u.mem_available_floor_kib, Some(1_048_576 * 1024));
    let total: u64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    let start = u.mem_available_kib_at_start.unwrap();
    assert!(start > 0 && start <= total, "{u:?}");
    assert!(u.stop_reason.starts_with("MemAvailable"), "{u:?}");
}
