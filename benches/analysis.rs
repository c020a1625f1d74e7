//! The analyses over a run directory, under criterion: `report`, `compare` and `plan` of a
//! synthetic run of 99,990 sample rows (process and container at N = 1, 10, 100, 1000, 45
//! repetitions), so that an analysis that turns quadratic in the rows shows here. Nothing is
//! launched; no root needed. `cargo bench --bench analysis -- --list` lists them.

use criterion::{Criterion, criterion_group, criterion_main};
use isobench::results::meta::RunMeta;
use isobench::results::record::Sample;
use std::path::{Path, PathBuf};
use std::time::Duration;

const COUNTS: [u32; 4] = [1, 10, 100, 1000];
const REPS: u32 = 45;

/// Writes the synthetic run into `dir` (samples.csv and meta.json; the loader computes the
/// summary) and returns how many rows it has.
fn write_run(dir: &Path) -> usize {
    std::fs::create_dir_all(dir).expect("run dir");
    let mut w = csv::Writer::from_path(dir.join("samples.csv")).expect("samples.csv");
    let mut rows = 0;
    for (b, backend) in ["process", "container"].into_iter().enumerate() {
        for &n in &COUNTS {
            for rep in 0..REPS {
                for i in 0..n {
                    // Deterministic spread, so percentiles and bootstraps have work to do.
                    let jitter = f64::from((i * 7919 + rep * 104_729) % 1000) / 1000.0;
                    w.serialize(Sample {
                        run_id: "bench".into(),
                        scenario: "analysis-bench".into(),
                        backend: backend.into(),
                        accel: "none".into(),
                        n,
                        rep,
                        instance: i,
                        ok: true,
                        startup_ms: Some(2.0 + 3.0 * b as f64 + jitter),
                        teardown_ms: Some(1.0 + jitter),
                        pss_kib: Some(900 + 100 * b as u64 + (i % 17) as u64),
                        uss_kib: Some(700 + 100 * b as u64),
                        rss_kib: Some(2000 + 100 * b as u64),
                        cgroup_mem_kib: Some(1200 + 100 * b as u64),
                        host_avail_kib: Some(1500.0 + 200.0 * b as f64 + 10.0 * jitter),
                        idle_cpu_ms_per_s: Some(0.01 * jitter),
                        ..Sample::default()
                    })
                    .expect("row");
                    rows += 1;
                }
            }
        }
    }
    w.flush().expect("flush");
    let meta = RunMeta {
        run_id: "bench".into(),
        scenario: "analysis-bench".into(),
        scenario_text: "name = \"analysis-bench\"\nbackends = [\"process\", \"container\"]\n\
                        counts = [1, 10, 100, 1000]\nrepetitions = 45\n"
            .into(),
        hostname: "benchhost".into(),
        cpu_cores: 2,
        mem_total_kib: 16 * 1024 * 1024,
        ..RunMeta::default()
    };
    std::fs::write(
        dir.join("meta.json"),
        serde_json::to_string_pretty(&meta).expect("meta"),
    )
    .expect("meta.json");
    rows
}

struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn analyses(c: &mut Criterion) {
    let scratch = Scratch(
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("analysis-{}", std::process::id())),
    );
    let run = scratch.0.join("run");
    let mut written = false;
    let mut ensure = || {
        if !written {
            let rows = write_run(&run);
            eprintln!("analysis benches: a synthetic run of {rows} sample rows");
            written = true;
        }
    };
    let mut g = c.benchmark_group("analysis");
    g.sample_size(10)
        .warm_up_time(Duration::from_millis(200))
        .measurement_time(Duration::from_secs(5));
    g.bench_function("load", |b| {
        ensure();
        b.iter(|| isobench::results::load::load(&run, None).expect("load"))
    });
    g.bench_function("report", |b| {
        ensure();
        let args = isobench::report::command::ReportArgs {
            runs: vec![run.clone()],
            out: Some(scratch.0.join("report")),
            labels: Vec::new(),
        };
        b.iter(|| isobench::report::command::report(&args).expect("report"))
    });
    g.bench_function("compare", |b| {
        ensure();
        let args = isobench::compare::CompareArgs {
            base: run.clone(),
            new: run.clone(),
            tolerance: None,
            tolerance_for: Vec::new(),
            tolerances: None,
            confidence: 0.95,
            resamples: 1000,
            fail_on_regression: false,
            allow_different_scenarios: false,
        };
        b.iter(|| isobench::compare::compare(&args).expect("compare"))
    });
    g.bench_function("plan", |b| {
        ensure();
        let args = isobench::plan::PlanArgs {
            runs: vec![run.clone()],
            fleet: false,
            host_costs: Vec::new(),
            host_specs: Vec::new(),
            mix: Vec::new(),
            until: None,
            host_mem: Some("64G".into()),
            host_cpus: Some(32.0),
            headroom: 0.1,
            workloads: None,
            workload_mem: None,
            out: Some(scratch.0.join("plan")),
        };
        b.iter(|| isobench::plan::build(&args).expect("plan"))
    });
    g.finish();
}

criterion_group!(benches, analyses);
criterion_main!(benches);
