//! The run: for each backend and each N, launch N instances with the scenario's parallelism,
//! keep all N alive until every one is ready, tear them down, and push one sample per instance
//! to the results as soon as its batch is over. Everything of the run is removed at its end,
//! on error and on interruption alike.

pub mod batch;
pub mod interrupt;
pub mod outdir;
pub mod watch;

use crate::backend::{self, Backend, PrepareError, RunContext};
use crate::fault::Boundary;
use crate::host::cgroup::CgroupHost;
use crate::host::facts::HostFacts;
use crate::host::run_id::RunId;
use crate::host::state_dir;
use crate::results::csv::{CsvSink, ExportError, SampleSink, write_summary};
use crate::results::meta::{GIT_REVISION, RunMeta};
use crate::results::record::{KernelRow, Sample, SummaryRow, SyscallRow, UntilRow};
use crate::results::summary::summarize;
use crate::runner::outdir::{OutDir, OutDirError};
use crate::scenario::{BackendKind, Scenario};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

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

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("not root: backend {0} needs root (namespaces, mounts, cgroups); run isobench as root")]
    NotRoot(&'static str),
    #[error("{0}")]
    Environment(String),
    #[error(transparent)]
    Prepare(#[from] PrepareError),
    #[error(transparent)]
    OutDir(#[from] OutDirError),
    #[error("state dir {path}: cannot create it: {source}")]
    StateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Export(#[from] ExportError),
    #[error(transparent)]
    Fault(#[from] crate::fault::FaultError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl RunError {
    /// Everything that stops a run before it measures is bad input or an unusable host.
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::Export(_) | RunError::Io { .. } => crate::exit::MEASURED_FAILURE,
            _ => crate::exit::BAD_INPUT,
        }
    }
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RunError + '_ {
    move |source| RunError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Checks what a scenario needs before anything is created, so bad input leaves nothing.
pub fn preflight(scenario: &Scenario) -> Result<(), RunError> {
    for b in &scenario.backends {
        let needs_root = matches!(b, BackendKind::Container | BackendKind::Unshare);
        if needs_root && !crate::host::is_root() {
            return Err(RunError::NotRoot(b.as_str()));
        }
    }
    if scenario.backends.contains(&BackendKind::Container) {
        CgroupHost::detect()
            .map_err(|e| RunError::Environment(format!("backend container: {e}")))?;
        if scenario.namespaces.mount && scenario.image == crate::scenario::ImageSpec::Busybox {
            crate::image::find_busybox()
                .map_err(|e| RunError::Environment(format!("image busybox: {e}")))?;
        }
    }
    if scenario.backends.contains(&BackendKind::Vm) {
        for (cmd, pkg) in [
            (crate::backend::vm::qemu::QEMU, "qemu-system-x86"),
            ("qemu-img", "qemu-utils"),
            ("mkfs.ext4", "e2fsprogs"),
        ] {
            if crate::host::exec::which(cmd).is_none() {
                return Err(RunError::Environment(format!(
                    "backend vm: {cmd} is not on PATH: install {pkg} (scripts/setup.sh)"
                )));
            }
        }
        // The guest kernel and the modules of isobench's initramfs: read-only look-ups, so a
        // missing kernel is bad input found before anything is made.
        let vm_err =
            |e: crate::image::ImageError| RunError::Environment(format!("backend vm: {e}"));
        let kernel = crate::image::kernel::find_guest_kernel(scenario.vm.kernel.as_deref())
            .map_err(vm_err)?;
        if scenario.vm.initrd.is_none() {
            crate::image::initramfs::resolve_modules(
                &kernel.modules_dir,
                crate::image::initramfs::GUEST_MODULES,
            )
            .map_err(vm_err)?;
        }
    }
    if scenario.backends.contains(&BackendKind::Unshare)
        && crate::host::exec::which("unshare").is_none()
    {
        return Err(RunError::Environment(
            "backend unshare: the unshare command (util-linux) is not on PATH".into(),
        ));
    }
    Ok(())
}

/// Runs a scenario to the end (or to an interruption) and returns what it measured.
pub fn run(scenario: Scenario, opts: &RunOptions) -> Result<RunOutcome, RunError> {
    crate::fault::init()?;
    preflight(&scenario)?;
    crate::host::raise_nofile_limit();
    let now = chrono::Utc::now();
    let stamp = now.format("%Y%m%dT%H%M%SZ").to_string();
    let id = RunId::for_this_process(&format!("{stamp}-{}", scenario.name))
        .map_err(|e| RunError::Environment(format!("run id: {e}")))?;
    let run_id = id.to_string();
    let run_dir = match &opts.out_dir {
        Some(d) => d.clone(),
        None => unique_dir(&PathBuf::from("runs").join(format!("{stamp}-{}", scenario.name))),
    };
    // The results directory first: it is checked, locked and proved writable before the run
    // makes anything else, so that bad input there leaves nothing behind.
    let mut out_dir = OutDir::prepare(&run_dir, opts.overwrite)?;
    // state_dir::create removes what it made on error, and nothing else.
    let created = match state_dir::create(&opts.state_root, &id, &run_dir) {
        Ok(c) => c,
        Err(source) => {
            out_dir.discard();
            return Err(RunError::StateDir {
                path: opts.state_root.join(&run_id),
                source,
            });
        }
    };
    let state_dir = created.path.clone();
    crate::fault::point(Boundary::StateDir);
    // --overwrite empties the old results only now, once nothing before could refuse the run.
    if let Err(e) = out_dir.clear() {
        let _ = crate::host::remove_dir_tree(&state_dir);
        crate::host::remove_made(&created.root_made);
        out_dir.discard();
        return Err(e.into());
    }

    let host = HostFacts::gather();
    let cg = CgroupHost::detect().ok();
    let mut meta = RunMeta {
        run_id: run_id.clone(),
        scenario: scenario.name.clone(),
        scenario_origin: scenario.origin.clone(),
        scenario_text: scenario.text.clone(),
        isobench_version: env!("CARGO_PKG_VERSION").into(),
        git_revision: GIT_REVISION.into(),
        command_line: opts.command_line.clone(),
        hostname: host.hostname,
        host_kernel: host.kernel,
        host_boot_id: crate::host::boot_id(),
        cgroup_mode: cg
            .as_ref()
            .map(|c| c.mode.as_str().to_string())
            .unwrap_or_else(|| "none".into()),
        cgroup_controllers: cg.as_ref().map(|c| c.controllers()).unwrap_or_default(),
        cpu_model: host.cpu_model,
        cpu_cores: host.cpu_cores,
        mem_total_kib: host.mem_total_kib,
        started_at: now.to_rfc3339(),
        ended_at: None,
        harness_peak_rss_kib: None,
        outcome: "running".into(),
        accelerators: Vec::new(),
        security: scenario
            .profiles
            .iter()
            .map(|p| p.as_str().to_string())
            .collect(),
    };
    let ctx = RunContext {
        run_id: run_id.clone(),
        scenario: Arc::new(scenario),
        state_dir: state_dir.clone(),
        agent_exe: opts.agent_exe.clone(),
        cancel: opts.cancel.clone(),
        cache_dir: opts.cache_dir.clone(),
    };
    let opened = write_meta(&run_dir, &meta).and_then(|_| {
        Ok(RunState {
            kernel: CsvSink::create(&run_dir.join("kernel.csv"))?,
            syscalls: None,
            syscall_rows: Vec::new(),
            kernel_rows: Vec::new(),
            until: CsvSink::create(&run_dir.join("until.csv"))?,
            accel: Vec::new(),
            samples: Vec::new(),
            batch_ready: Vec::new(),
            sink: SampleSink::create(&run_dir.join("samples.csv"))?,
            run_dir: run_dir.clone(),
        })
    });
    let (result, state) = match opened {
        Ok(mut state) => (measure_all(&ctx, opts, &mut state), Some(state)),
        Err(e) => (Err(e), None),
    };
    crate::fault::point(Boundary::Finish);

    // Whatever happened above, nothing of the run may stay on the host.
    let mut leftovers = Vec::new();
    if let Err(e) = crate::host::remove_dir_tree(&state_dir) {
        leftovers.push(e);
    }
    // A state root that was there before the run (a --state-dir the user made, one other runs
    // share) is not the run's to remove; the dirs the run made for it go if empty.
    crate::host::remove_made(&created.root_made);
    // OCI runtimes make the run's cgroup dir in every hierarchy (and may recreate parents
    // another backend already removed): sweep them all.
    if let Err(e) = CgroupHost::remove_run_everywhere(&run_id) {
        leftovers.push(e.to_string());
    }
    // Bad input or an unusable host found before any sample (a backend that cannot be
    // prepared here, an unreadable tarball): the run leaves nothing, its results directory
    // included. Once something was measured, it stays, whatever comes after.
    let state = match (state, &result) {
        (Some(state), Ok(_)) => state,
        (Some(state), Err(e))
            if !(e.exit_code() == crate::exit::BAD_INPUT && state.samples.is_empty()) =>
        {
            state
        }
        (state, _) => {
            drop(state);
            out_dir.discard();
            return Err(result.err().unwrap_or_else(|| {
                RunError::Environment("results directory could not be opened".into())
            }));
        }
    };
    let (interrupted, mut backend_leftovers) = match &result {
        Ok(l) => (ctx.cancel.load(Ordering::Relaxed), l.clone()),
        Err(_) => (ctx.cancel.load(Ordering::Relaxed), Vec::new()),
    };
    leftovers.append(&mut backend_leftovers);

    let summary = summarize(&state.samples, &state.batch_ready);
    write_summary(&run_dir.join("summary.csv"), &summary)?;
    meta.ended_at = Some(chrono::Utc::now().to_rfc3339());
    meta.harness_peak_rss_kib = crate::host::self_peak_rss_kib();
    meta.accelerators = state
        .accel
        .iter()
        .map(|(b, a, why)| crate::results::meta::AccelNote {
            backend: b.clone(),
            accel: a.clone(),
            why: why.clone(),
        })
        .collect();
    meta.outcome = match (&result, interrupted) {
        (Err(e), _) => format!("failed: {e}"),
        (Ok(_), true) => "interrupted".into(),
        (Ok(_), false) => "complete".into(),
    };
    write_meta(&run_dir, &meta)?;
    result?;
    let failed = state.samples.iter().filter(|s| !s.ok).count();
    Ok(RunOutcome {
        run_id,
        run_dir,
        samples: state.samples,
        summary,
        syscalls: state.syscall_rows,
        failed,
        interrupted,
        leftovers,
        harness_peak_rss_kib: meta.harness_peak_rss_kib,
        out_dir,
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

struct RunState {
    kernel: CsvSink<KernelRow>,
    /// syscalls.csv, created with its first rows (only `syscalls` workloads have any).
    syscalls: Option<CsvSink<SyscallRow>>,
    syscall_rows: Vec<SyscallRow>,
    kernel_rows: Vec<KernelRow>,
    until: CsvSink<UntilRow>,
    /// (backend, accelerator, why): how each backend ran, for meta.json.
    accel: Vec<(String, String, String)>,
    samples: Vec<Sample>,
    batch_ready: Vec<(String, String, u32, f64)>,
    sink: SampleSink,
    run_dir: PathBuf,
}

impl RunState {
    fn push(&mut self, out: batch::BatchOutcome) -> Result<(), RunError> {
        self.sink.append(&out.rows)?;
        if !out.syscalls.is_empty() {
            let sink = match &mut self.syscalls {
                Some(s) => s,
                None => self
                    .syscalls
                    .insert(CsvSink::create(&self.run_dir.join("syscalls.csv"))?),
            };
            sink.append(&out.syscalls)?;
            self.syscall_rows.extend(out.syscalls);
        }
        self.kernel.append(std::slice::from_ref(&out.kernel))?;
        self.kernel_rows.push(out.kernel);
        self.samples.extend(out.rows);
        // summary.csv follows the samples, so an interrupted run has one too.
        write_summary(
            &self.run_dir.join("summary.csv"),
            &summarize(&self.samples, &self.batch_ready),
        )?;
        Ok(())
    }
}

/// Returns the descriptions of whatever a backend could not remove.
fn measure_all(
    ctx: &RunContext,
    opts: &RunOptions,
    state: &mut RunState,
) -> Result<Vec<String>, RunError> {
    let s = ctx.scenario.clone();
    // One pool for the whole run: a parent-death signal fires when the *thread* that created
    // the child exits, so launching threads must outlive every instance.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(s.parallelism as usize)
        .thread_name(|i| format!("isobench-launch-{i}"))
        .build()
        .map_err(|e| RunError::Environment(format!("thread pool: {e}")))?;
    let mut leftovers = Vec::new();
    for &kind in &s.backends {
        // The oci backend runs once per runtime, each a peer of the others in this run; the
        // backends that take a security profile run once per profile of the scenario.
        let runtimes: Vec<Option<&str>> = match kind {
            BackendKind::Oci => s.oci.runtimes.iter().map(|r| Some(r.as_str())).collect(),
            _ => vec![None],
        };
        let profiles: Vec<crate::security::Profile> = match kind {
            BackendKind::Container | BackendKind::Oci => s.profiles.clone(),
            _ => vec![s.security],
        };
        for (runtime, profile) in runtimes
            .iter()
            .flat_map(|r| profiles.iter().map(move |p| (*r, *p)))
        {
            if ctx.cancel.load(Ordering::Relaxed) {
                return Ok(leftovers);
            }
            let pctx = RunContext {
                scenario: Arc::new(s.with_profile(profile)),
                ..ctx.clone()
            };
            let ctx = &pctx;
            let created = pool.install(|| match runtime {
                Some(rt) => backend::create_oci(rt, ctx),
                None => backend::create(kind, ctx),
            });
            let backend = match (created, runtime) {
                (Ok(b), _) => b,
                // A runtime that cannot run here (crun 1.8 on a hybrid cgroup host) is a finding
                // about the host, not a reason to stop measuring the others.
                (Err(e), Some(rt)) => {
                    let label = backend::profile_label(format!("oci-{rt}"), &ctx.scenario);
                    eprintln!(
                        "isobench: {label} is unavailable on this host: {}; the run goes on",
                        e.what
                    );
                    state.accel.push((label, "unavailable".into(), e.what));
                    continue;
                }
                (Err(e), None) => return Err(e.into()),
            };
            crate::fault::point(Boundary::Prepared);
            state.accel.push((
                backend.label(),
                backend.accel().into(),
                backend.accel_reason().unwrap_or_default(),
            ));
            let r = run_backend(ctx, opts, state, backend.as_ref(), &pool);
            if let Err(e) = backend.finish() {
                leftovers.push(e);
            }
            r?;
        }
    }
    Ok(leftovers)
}

fn run_backend(
    ctx: &RunContext,
    opts: &RunOptions,
    state: &mut RunState,
    backend: &dyn Backend,
    pool: &rayon::ThreadPool,
) -> Result<(), RunError> {
    let s = &ctx.scenario;
    let label = backend.label();
    let name = label.as_str();
    for w in 0..s.warmup {
        if ctx.cancel.load(Ordering::Relaxed) {
            return Ok(());
        }
        match pool.install(|| backend.launch(&format!("{name}-warmup-{w}"))) {
            Ok(inst) => {
                let _ = inst.teardown();
            }
            Err(e) => eprintln!("warning: warmup of {name} failed: {e}"),
        }
    }
    if let Some(cfg) = &s.until {
        let bar = progress_bar(opts.progress, cfg.max as u64, &format!("{name} until"));
        let (out, row) = batch::until(ctx, backend, pool, cfg, &bar);
        bar.finish_and_clear();
        if opts.progress {
            report_batch(&out, row.n_reached, 0, None);
            eprintln!(
                "{name:>10} stopped at N={}: {}",
                row.n_reached, row.stop_reason
            );
        }
        state.until.append(&[row])?;
        return state.push(out);
    }
    for &n in s.counts_for(backend.kind()) {
        for rep in 0..s.repetitions {
            if ctx.cancel.load(Ordering::Relaxed) {
                return Ok(());
            }
            run_batch(ctx, opts, state, backend, pool, n, rep)?;
        }
    }
    Ok(())
}

/// Runs one batch of N and reports it on stderr.
fn run_batch(
    ctx: &RunContext,
    opts: &RunOptions,
    state: &mut RunState,
    backend: &dyn Backend,
    pool: &rayon::ThreadPool,
    n: u32,
    rep: u32,
) -> Result<(), RunError> {
    let label = backend.label();
    let bar = progress_bar(opts.progress, n as u64, &format!("{label} N={n} rep {rep}"));
    let base = batch::baseline(ctx, backend, pool);
    let start = Instant::now();
    let watch = crate::runner::watch::DeathWatch::start(true);
    let launched = batch::launch(ctx, backend, pool, (n, rep), 0..n, &bar, &watch);
    let all_ready = start.elapsed();
    bar.finish_and_clear();
    let all_ok = launched.len() as u32 == n && launched.iter().all(|(_, r)| r.is_ok());
    let out = batch::measure_and_teardown(ctx, backend, pool, launched, watch, n, rep, &base);
    if all_ok {
        state.batch_ready.push((
            label.clone(),
            backend.accel().to_string(),
            n,
            all_ready.as_secs_f64() * 1e3,
        ));
    }
    if opts.progress {
        report_batch(&out, n, rep, Some(all_ready));
    }
    state.push(out)
}

/// The batch's line on stderr, with the cross-check of two memory views: summed PSS against
/// the host's MemAvailable decrease, so a reader sees what one view misses.
fn report_batch(out: &batch::BatchOutcome, n: u32, rep: u32, all_ready: Option<Duration>) {
    let k = &out.kernel;
    let failed: Vec<&Sample> = out.rows.iter().filter(|r| !r.ok).collect();
    let ok = out.rows.len() - failed.len();
    let mut line = format!("{:>10} N={n:<5} rep {rep}: {ok}/{n} ready", k.backend);
    if let Some(d) = all_ready {
        line.push_str(&format!(", all ready in {:.1} ms", d.as_secs_f64() * 1e3));
    }
    if let (Some(pss), Some(avail)) = (k.pss_kib_sum, k.host_avail_kib_delta) {
        let ratio = if avail > 0 {
            format!("{:.2}", pss as f64 / avail as f64)
        } else {
            "-".into()
        };
        let moved = if avail >= 0 { "down" } else { "up" };
        line.push_str(&format!(
            "; PSS {:.1} MiB vs MemAvailable {moved} {:.1} MiB (ratio {ratio})",
            pss as f64 / 1024.0,
            avail.unsigned_abs() as f64 / 1024.0
        ));
    }
    if let Some(f) = failed.first() {
        line.push_str(&format!(" ({} failed: {})", failed.len(), f.error));
    }
    eprintln!("{line}");
}

fn progress_bar(show: bool, len: u64, msg: &str) -> indicatif::ProgressBar {
    if !show {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(len);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg:>24} [{bar:30}] {pos}/{len} launched ({elapsed})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(msg.to_string());
    bar
}
