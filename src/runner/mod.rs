//! The run: the scenario becomes a plan of batches (plan.rs) before anything runs; the plan is
//! walked peer by peer (walk.rs): each batch is launched, measured and torn down in steps
//! (batch.rs; the `[until]` sweep in until.rs), what differs per backend kind asked of
//! kind.rs, and becomes one record pushed to the result files (sinks.rs) as soon as it is
//! over. One display follows it all (progress.rs). Data only flows down that line: nothing
//! below calls back up. Everything of the run is removed from the host at its end, on error
//! and on interruption alike; the results stay.

pub mod batch;
pub mod error;
pub mod interrupt;
pub mod kind;
pub mod outdir;
pub mod plan;
pub mod preflight;
pub mod progress;
pub mod sinks;
pub mod until;
pub mod walk;
pub mod watch;

pub use error::RunError;
pub use preflight::preflight;

use crate::backend::RunContext;
use crate::fault::Boundary;
use crate::host::cgroup::CgroupHost;
use crate::host::facts::HostFacts;
use crate::host::run_id::RunId;
use crate::host::state_dir;
use crate::results::csv::write_summary;
use crate::results::meta::{GIT_REVISION, RunMeta, WallBreakdown};
use crate::results::record::{Sample, SummaryRow, SyscallRow};
use crate::results::summary::summarize;
use crate::runner::outdir::OutDir;
use crate::runner::plan::Plan;
use crate::runner::progress::Progress;
use crate::runner::sinks::Sinks;
use crate::scenario::Scenario;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The results directory; default `runs/<time>-<scenario>`.
    pub out_dir: Option<PathBuf>,
    /// Empty an existing, non-empty results directory instead of refusing it.
    pub overwrite: bool,
    pub state_root: PathBuf,
    /// Content-addressed artefacts kept across runs (VM base disks).
    pub cache_dir: PathBuf,
    /// The isobench binary: the agent of every instance.
    pub agent_exe: PathBuf,
    pub progress: bool,
    pub cancel: Arc<AtomicBool>,
    pub command_line: Vec<String>,
    /// meta.json's host_label, checked by the caller (`host::facts::check_label`).
    pub host_label: String,
}

#[derive(Debug)]
pub struct RunOutcome {
    pub run_id: String,
    pub run_dir: PathBuf,
    pub samples: Vec<Sample>,
    pub summary: Vec<SummaryRow>,
    /// syscalls.csv's rows (workload `syscalls` only).
    pub syscalls: Vec<SyscallRow>,
    pub failed: usize,
    pub interrupted: bool,
    /// What could not be removed at the end (a bug or a host problem: `isobench clean`).
    pub leftovers: Vec<String>,
    pub harness_peak_rss_kib: Option<u64>,
    /// The results directory, still locked: a second run cannot start into it until this is
    /// dropped (after the report is written).
    pub out_dir: OutDir,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RunError + '_ {
    move |source| RunError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Runs a scenario to the end (or to an interruption) and returns what it measured.
pub fn run(scenario: Scenario, opts: &RunOptions) -> Result<RunOutcome, RunError> {
    run_with(scenario, opts, &crate::backend::Real)
}

/// [`run`] with the backends `factory` makes: the real ones, or a mock for tests of the
/// runner's logic (statistics, exports, failures, interruption) that need no root.
pub fn run_with(
    scenario: Scenario,
    opts: &RunOptions,
    factory: &dyn crate::backend::Factory,
) -> Result<RunOutcome, RunError> {
    let run_start = std::time::Instant::now();
    crate::fault::init()?;
    preflight(&scenario)?;
    crate::host::raise_nofile_limit();
    let now = chrono::Utc::now();
    let places = Places::make(&scenario, opts, &now.format("%Y%m%dT%H%M%SZ").to_string())?;
    let meta = start_meta(&scenario, opts, &places.run_id, now);
    let ctx = RunContext {
        run_id: places.run_id.clone(),
        scenario: Arc::new(scenario),
        state_dir: places.state_dir.clone(),
        agent_exe: opts.agent_exe.clone(),
        cancel: opts.cancel.clone(),
        cache_dir: opts.cache_dir.clone(),
    };
    let (result, sinks, phases) = measure(&ctx, &places.run_dir, &meta, opts.progress, factory);
    crate::fault::point(Boundary::Finish);
    // Whatever happened above, nothing of the run may stay on the host.
    let leftovers = places.remove_run_state();
    match keep_results(sinks, &result) {
        Some(sinks) => {
            let interrupted = ctx.cancel.load(Ordering::Relaxed);
            let wall = wall_breakdown(run_start.elapsed().as_secs_f64(), &phases);
            finish(places, meta, sinks, (result, wall), leftovers, interrupted)
        }
        None => {
            places.out_dir.discard();
            Err(result.err().unwrap_or_else(|| {
                RunError::Environment("results directory could not be opened".into())
            }))
        }
    }
}

/// Where a run writes: its id, its results directory (locked) and its state dir.
struct Places {
    run_id: String,
    run_dir: PathBuf,
    out_dir: OutDir,
    state_dir: PathBuf,
    /// Parents of the state dir the run made (a nested --state-dir), outermost first.
    root_made: Vec<PathBuf>,
}

impl Places {
    /// The results directory first: it is checked, locked and proved writable before the run
    /// makes anything else, so that bad input there leaves nothing behind. Then the state
    /// dir; on error, what this made is removed again.
    fn make(scenario: &Scenario, opts: &RunOptions, stamp: &str) -> Result<Places, RunError> {
        let label = format!("{stamp}-{}", scenario.name);
        let id = RunId::for_this_process(&label)
            .map_err(|e| RunError::Environment(format!("run id: {e}")))?;
        let run_dir = match &opts.out_dir {
            Some(d) => d.clone(),
            None => unique_dir(&PathBuf::from("runs").join(&label)),
        };
        let mut out_dir = OutDir::prepare(&run_dir, opts.overwrite)?;
        // state_dir::create removes what it made on error, and nothing else.
        let created = match state_dir::create(&opts.state_root, &id, &run_dir) {
            Ok(c) => c,
            Err(source) => {
                out_dir.discard();
                return Err(RunError::StateDir {
                    path: opts.state_root.join(id.to_string()),
                    source,
                });
            }
        };
        crate::fault::point(Boundary::StateDir);
        // --overwrite empties the old results only now, once nothing before could refuse the
        // run.
        if let Err(e) = out_dir.clear() {
            let _ = crate::host::remove_dir_tree(&created.path);
            crate::host::remove_made(&created.root_made);
            out_dir.discard();
            return Err(e.into());
        }
        Ok(Places {
            run_id: id.to_string(),
            run_dir,
            out_dir,
            state_dir: created.path,
            root_made: created.root_made,
        })
    }

    /// Removes everything of the run from the host (its results stay); returns what could not
    /// be removed.
    fn remove_run_state(&self) -> Vec<String> {
        let mut leftovers = Vec::new();
        if let Err(e) = crate::host::remove_dir_tree(&self.state_dir) {
            leftovers.push(e.to_string());
        }
        // A state root that was there before the run (a --state-dir the user made, one other
        // runs share) is not the run's to remove; the dirs the run made for it go if empty.
        crate::host::remove_made(&self.root_made);
        // OCI runtimes make the run's cgroup dir in every hierarchy (and may recreate parents
        // another backend already removed): sweep them all.
        if let Err(e) = CgroupHost::remove_run_everywhere(&self.run_id) {
            leftovers.push(e.to_string());
        }
        leftovers
    }
}

/// meta.json as the run starts: the host, the versions, the scenario.
fn start_meta(
    scenario: &Scenario,
    opts: &RunOptions,
    run_id: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> RunMeta {
    let host = HostFacts::gather();
    let cg = CgroupHost::detect().ok();
    RunMeta {
        run_id: run_id.to_string(),
        scenario: scenario.name.clone(),
        scenario_origin: scenario.origin.clone(),
        scenario_text: scenario.text.clone(),
        isobench_version: env!("CARGO_PKG_VERSION").into(),
        git_revision: GIT_REVISION.into(),
        command_line: opts.command_line.clone(),
        hostname: host.hostname,
        host_label: opts.host_label.clone(),
        virtualization: host.virtualization,
        host_kernel: host.kernel,
        host_boot_id: crate::host::boot_id(),
        cgroup_mode: cg
            .as_ref()
            .map_or_else(|| "none".into(), |c| c.mode.as_str().to_string()),
        cgroup_controllers: cg.as_ref().map(|c| c.controllers()).unwrap_or_default(),
        cpu_model: host.cpu_model,
        cpu_cores: host.cpu_cores,
        mem_total_kib: host.mem_total_kib,
        started_at: now.to_rfc3339(),
        ended_at: None,
        harness_peak_rss_kib: None,
        harness_cpu_ms: None,
        harness_cpu_ms_per_instance: None,
        wall: None,
        outcome: "running".into(),
        accelerators: Vec::new(),
        security: scenario
            .profiles
            .iter()
            .map(|p| p.as_str().to_string())
            .collect(),
    }
}

/// What [`measure`] returns: the walk's result, the sinks if they opened, and the seconds spent
/// in each phase.
type Measured = (
    Result<Vec<String>, RunError>,
    Option<Sinks>,
    Vec<(progress::Phase, f64)>,
);

/// Writes meta.json, opens the result files and walks the plan under one progress display.
/// Returns the walk's result (the backends' leftovers) and the sinks, if they opened.
fn measure(
    ctx: &RunContext,
    run_dir: &Path,
    meta: &RunMeta,
    show_progress: bool,
    factory: &dyn crate::backend::Factory,
) -> Measured {
    let opened = write_meta(run_dir, meta).and_then(|()| Ok(Sinks::open(run_dir)?));
    match opened {
        Ok(mut sinks) => {
            let plan = Plan::of(&ctx.scenario);
            let progress = Progress::new(show_progress, &plan, &ctx.scenario);
            let result = walk::measure_plan(ctx, &plan, &progress, &mut sinks, factory);
            progress.finish();
            (result, Some(sinks), progress.wall())
        }
        Err(e) => (Err(e), None, Vec::new()),
    }
}

/// meta.json's `wall`: the run's wall time and the phases' shares of it.
fn wall_breakdown(total_s: f64, phases: &[(progress::Phase, f64)]) -> WallBreakdown {
    use progress::Phase;
    let of = |p: Phase| {
        phases
            .iter()
            .filter(|(q, _)| *q == p)
            .map(|(_, s)| *s)
            .sum::<f64>()
    };
    let waits_s: f64 = phases
        .iter()
        .filter(|(p, _)| p.is_wait())
        .map(|(_, s)| *s)
        .sum();
    WallBreakdown {
        total_s,
        prepare_s: of(Phase::Prepare),
        warmup_s: of(Phase::Warmup),
        launch_s: of(Phase::Launch),
        measure_s: of(Phase::Measure),
        teardown_s: of(Phase::Teardown),
        settle_s: of(Phase::Settle),
        ksm_s: of(Phase::Ksm),
        idle_s: of(Phase::Idle),
        waits_s,
        waits_pct: if total_s > 0.0 {
            100.0 * waits_s / total_s
        } else {
            0.0
        },
    }
}

/// CPU time (user + system) this process used so far, ms (getrusage RUSAGE_SELF).
fn self_cpu_ms() -> Option<f64> {
    let u = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF).ok()?;
    let ms = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 * 1e3 + t.tv_usec() as f64 / 1e3;
    Some(ms(u.user_time()) + ms(u.system_time()))
}

/// The sinks whose results stay. Bad input or an unusable host found before any sample (a
/// backend that cannot be prepared here, an unreadable tarball): the run leaves nothing, its
/// results directory included. Once something was measured, it stays, whatever came after.
fn keep_results(sinks: Option<Sinks>, result: &Result<Vec<String>, RunError>) -> Option<Sinks> {
    match (sinks, result) {
        (Some(s), Ok(_)) => Some(s),
        (Some(s), Err(e)) if !(e.exit_code() == crate::exit::BAD_INPUT && s.samples.is_empty()) => {
            Some(s)
        }
        _ => None,
    }
}

/// The end of a run whose results stay: the last summary.csv and meta.json, then the outcome
/// (or the error that stopped it).
fn finish(
    places: Places,
    mut meta: RunMeta,
    sinks: Sinks,
    (result, wall): (Result<Vec<String>, RunError>, WallBreakdown),
    mut leftovers: Vec<String>,
    interrupted: bool,
) -> Result<RunOutcome, RunError> {
    if let Ok(backend_leftovers) = &result {
        leftovers.extend(backend_leftovers.iter().cloned());
    }
    let summary = summarize(&sinks.samples, &sinks.batch_ready);
    write_summary(&places.run_dir.join("summary.csv"), &summary)?;
    meta.ended_at = Some(chrono::Utc::now().to_rfc3339());
    meta.harness_peak_rss_kib = crate::host::self_peak_rss_kib();
    meta.harness_cpu_ms = self_cpu_ms();
    let launched = sinks.samples.len();
    meta.harness_cpu_ms_per_instance = meta
        .harness_cpu_ms
        .filter(|_| launched > 0)
        .map(|ms| ms / launched as f64);
    meta.wall = Some(wall);
    meta.accelerators = sinks.accel;
    meta.outcome = match (&result, interrupted) {
        (Err(e), _) => format!("failed: {e}"),
        (Ok(_), true) => "interrupted".into(),
        (Ok(_), false) => "complete".into(),
    };
    write_meta(&places.run_dir, &meta)?;
    result?;
    let failed = sinks.samples.iter().filter(|s| !s.ok).count();
    Ok(RunOutcome {
        run_id: places.run_id,
        run_dir: places.run_dir,
        samples: sinks.samples,
        summary,
        syscalls: sinks.syscalls,
        failed,
        interrupted,
        leftovers,
        harness_peak_rss_kib: meta.harness_peak_rss_kib,
        out_dir: places.out_dir,
    })
}

fn unique_dir(base: &Path) -> PathBuf {
    let mut p = base.to_path_buf();
    let mut i = 2;
    while p.exists() {
        p = PathBuf::from(format!("{}-{i}", base.display()));
        i += 1;
    }
    p
}

fn write_meta(run_dir: &Path, meta: &RunMeta) -> Result<(), RunError> {
    let p = run_dir.join("meta.json");
    let text = serde_json::to_string_pretty(meta).map_err(|e| RunError::Io {
        path: p.clone(),
        source: e.into(),
    })?;
    std::fs::write(&p, text + "\n").map_err(io_err(&p))
}
