//! One batch, in steps: [`baseline`] (the host before), [`launch`] (N instances with the run's
//! parallelism, each under the death watch once ready), [`measure`] (workloads, isolation,
//! KSM, memory views, idle CPU, all while every instance is alive), and [`teardown`], which
//! turns what was seen into one [`BatchOutcome`]: sample rows, a kernel.csv row and
//! syscalls.csv rows. What differs per backend kind is asked of runner::kind.

use crate::agent::reader::AgentError;
use crate::backend::{Backend, Instance, LaunchError, RunContext};
use crate::measure::ksm::{KsmGuard, KsmReading};
use crate::measure::{self, memory::HostMem};
use crate::results::record::{KernelRow, Sample, SyscallRow};
use crate::runner::kind;
use crate::runner::progress::{Phase, Progress};
use crate::runner::watch::{Death, DeathWatch, Watched};
use crate::scenario::Workload;
use rayon::prelude::*;
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// One launch of a batch: the instance index and what came of it.
pub type Launched = (u32, Result<Box<dyn Instance>, LaunchError>);

/// How long a host-memory reading may wait for MemAvailable to settle (the scenario's
/// `measure.settle_timeout_s`).
pub fn settle_timeout(env: &Env) -> Duration {
    Duration::from_secs_f64(env.ctx.scenario.measure.settle_timeout_s)
}

/// What every step of a batch works with.
pub struct Env<'a> {
    pub ctx: &'a RunContext,
    pub backend: &'a dyn Backend,
    /// The run's launching threads (see runner::measure_plan for why there is one pool).
    pub pool: &'a rayon::ThreadPool,
    pub progress: Progress,
}

impl<'a> Env<'a> {
    /// Steps without a progress display (tests, tools).
    pub fn new(ctx: &'a RunContext, backend: &'a dyn Backend, pool: &'a rayon::ThreadPool) -> Self {
        Env {
            ctx,
            backend,
            pool,
            progress: Progress::hidden(),
        }
    }

    pub fn cancelled(&self) -> bool {
        self.ctx.cancel.load(Ordering::Relaxed)
    }
}

/// A batch as its rows record it: N (for `until`, the N reached) and the repetition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchId {
    pub n: u32,
    pub rep: u32,
}

/// Host readings taken before a batch launches.
pub struct Baseline {
    host: Option<HostMem>,
    kthreads: u32,
}

/// A batch whose instances are up: what launched, the watch over them, the baseline.
pub struct Live {
    pub id: BatchId,
    pub base: Baseline,
    pub launched: Vec<Launched>,
    pub watch: DeathWatch,
    /// Wall time from the first launch until all N were ready, when all N were.
    pub all_ready: Option<Duration>,
}

impl Live {
    /// A batch with nothing launched yet, its watch started (saying deaths through the
    /// progress display, so they print above it).
    pub fn new(env: &Env, id: BatchId, base: Baseline) -> Live {
        Live {
            id,
            base,
            launched: Vec::new(),
            watch: DeathWatch::start_with(Some(env.progress.announcer())),
            all_ready: None,
        }
    }

    /// How many launches came up.
    pub fn up(&self) -> usize {
        self.launched.iter().filter(|(_, r)| r.is_ok()).count()
    }
}

/// What a batch produced: the one record the sinks take.
pub struct BatchOutcome {
    pub rows: Vec<Sample>,
    pub kernel: KernelRow,
    /// syscalls.csv rows of the `syscalls` workload (empty for other workloads).
    pub syscalls: Vec<SyscallRow>,
    /// Wall time until all N were ready, ms, when all N were (summary's batch_ready_ms).
    pub all_ready_ms: Option<f64>,
}

/// Host readings before a batch. Dropping the page cache for the reading would make the
/// batch's first launches re-read their binaries from disk and start slower than any launch
/// a user sees: the files every launch needs are read back into the cache right after (clean
/// page cache counts as available memory, so this barely moves the host view).
///
/// The settle also leaves the host idle and its dentry and inode caches empty, which slows
/// the next few launches of a host-kernel backend by milliseconds (measured here: a container
/// at N = 1 took 9-10 ms right after a settle against 4 ms without). So one launch, torn
/// down at once and not recorded, re-warms the host, as the scenario's warmup does at the
/// start (not for kinds that runner::kind says gain nothing from it).
pub fn baseline(env: &Env) -> Baseline {
    let m = &env.ctx.scenario.measure;
    env.progress.phase(Phase::Settle);
    let host = m
        .memory
        .then(|| measure::memory::settle(m.drop_caches, settle_timeout(env)));
    if m.memory {
        // Re-warming is not waiting: meta.json's wall breakdown counts it as warmup.
        env.progress.phase(Phase::Warmup);
        let mut files = env.backend.launch_files();
        files.push(env.ctx.agent_exe.clone());
        for f in files {
            warm(&f);
        }
        let label = env.backend.label();
        if kind::rewarm_after_settle(env.backend.kind())
            && !env.cancelled()
            && let Ok(inst) = env
                .pool
                .install(|| env.backend.launch(&format!("{label}-rewarm")))
        {
            let _ = inst.teardown();
        }
    }
    Baseline {
        host,
        kthreads: measure::host_kthreads(),
    }
}

/// Reads a file to its end, so its pages are in the page cache.
fn warm(path: &std::path::Path) {
    use std::io::Read;
    if let Ok(mut f) = std::fs::File::open(path) {
        let mut buf = vec![0u8; 1 << 20];
        while matches!(f.read(&mut buf), Ok(n) if n > 0) {}
    }
}

/// A batch of `id.n`: the baseline, then all N launched; `all_ready` is set when all came up.
pub fn launch_all(env: &Env, id: BatchId) -> Live {
    let mut live = Live::new(env, id, baseline(env));
    let start = Instant::now();
    launch(env, &mut live, 0..id.n);
    if live.up() == id.n as usize {
        live.all_ready = Some(start.elapsed());
    }
    live
}

/// Launches instances `range` of `live`'s batch and puts each one under its watch as soon as
/// it is ready.
pub fn launch(env: &Env, live: &mut Live, range: std::ops::Range<u32>) {
    env.progress.phase(Phase::Launch);
    let BatchId { n, rep } = live.id;
    let label = env.backend.label();
    let watch = &live.watch;
    let new: Vec<Launched> = env.pool.install(|| {
        range
            .into_par_iter()
            .filter_map(|i| {
                if env.cancelled() {
                    return None;
                }
                let r = env.backend.launch(&format!("{label}-n{n}-r{rep}-i{i}"));
                if let Ok(inst) = &r {
                    crate::fault::point(crate::fault::Boundary::Launched);
                    watch_instance(env, watch, i, inst.as_ref());
                }
                env.progress.launched();
                Some((i, r))
            })
            .collect()
    });
    live.launched.extend(new);
}

/// Puts a ready instance under the death watch; the process watched is its first host
/// process, named in the error as what it is.
fn watch_instance(env: &Env, watch: &DeathWatch, index: u32, inst: &dyn Instance) {
    let w = Watched {
        index,
        name: inst.name(),
        what: kind::watched_process(env.backend.kind()),
        pid: inst.pid(),
        startup: inst.startup().startup,
        memory_dir: inst.cgroup().and_then(|c| c.dir_for("memory")),
    };
    if let Err(e) = watch.add(&w) {
        // The instance still runs and is measured; its death would show at teardown only.
        env.progress.warn(&format!("isobench: death watch: {e}"));
    }
}

/// Per-instance readings taken while the whole batch is alive.
#[derive(Default, Clone)]
struct Seen {
    mem: Option<measure::memory::ProcMem>,
    cgroup_mem_kib: Option<u64>,
    vmm_overhead_kib: Option<u64>,
    runtime_overhead_kib: Option<u64>,
    disk_private_kib: Option<u64>,
    idle_cpu_ms_per_s: Option<f64>,
    workload_error: Option<String>,
    probe: Option<String>,
    syscalls: Option<std::collections::BTreeMap<String, crate::agent::syscalls::OpCost>>,
    isolation: Option<measure::isolation::Isolation>,
}

/// What [`measure`] saw: per instance (in launch order) and of the host.
pub struct Readings {
    seen: Vec<Seen>,
    host_after: Option<HostMem>,
    kthreads_with: u32,
    ksm: Option<KsmReading>,
    /// How long the wait for KSM's counters took (to settling or to the timeout).
    ksm_wait: Option<Duration>,
    /// gVisor's user-space kernels alive in the batch: (Sentries, their and the Gofers' PSS).
    sandbox_kernels: Option<(u32, u64)>,
    /// How long reading the memory views of the whole batch took.
    measure_ms: Option<f64>,
}

/// The instance of a launch, if it came up.
fn instance(r: &Result<Box<dyn Instance>, LaunchError>) -> Option<&dyn Instance> {
    r.as_ref().ok().map(|b| b.as_ref())
}

/// The instance of a launch if it came up and the watch has not seen it die: a dead one is
/// not measured (its pids are gone or zombies).
fn alive<'a>(batch: &'a Live, (i, r): &'a Launched) -> Option<&'a dyn Instance> {
    instance(r).filter(|_| !batch.watch.is_dead(*i))
}

/// Measures the live batch: the workload first (memory and disk are measured after it did its
/// work), the isolation in force, KSM merging (its guard unmerges on drop, so it lives until
/// the memory views are read), the memory views and the host's reading, with the idle-CPU
/// window open from the first reading on (after merging, with KSM).
pub fn measure(env: &Env, live: &mut Live) -> Readings {
    env.progress.phase(Phase::Measure);
    let mut seen = vec![Seen::default(); live.launched.len()];
    if env.ctx.scenario.workload != Workload::Idle {
        wait_workloads(env, &mut live.launched, &mut seen);
    }
    let m = &env.ctx.scenario.measure;
    // The idle window runs while the harness reads the instances from the outside (isolation,
    // memory views) and waits for the host's reading to settle: the instances idle all along
    // (those readings and dropping caches are the harness's own work, and dropping caches
    // never frees the pages a running process maps). Not with KSM merging, whose ksmd would
    // land in the window: then it opens once merging ended, before the host's settle.
    let merging = m.ksm && kind::merges_pages(env.backend.kind());
    let idle = (!merging).then(|| IdleWindow::open(env, live)).flatten();
    read_isolation(env, live, &mut seen);
    let (ksm, ksm_guard) = merge_pages(env);
    let (ksm, ksm_wait) = (ksm.map(|k| k.0), ksm.map(|k| k.1));
    let measure_ms = read_memory(env, live, &mut seen);
    let sandbox_kernels = kind::user_space_kernels(
        env.backend.kind(),
        live.launched.iter().filter_map(|l| alive(live, l)),
    );
    // Killed here, a run leaves KSM on for `clean` to put back (tests/faults.rs).
    crate::fault::point(crate::fault::Boundary::Measure);
    // ksmd's own CPU would land in the idle window: merging ends here, once the memory
    // views are read. Stopping ksmd keeps what it merged (`run` back to the host's 0 or 1;
    // only 2 would unmerge), so the host's reading below sees the same memory, and the idle
    // window can open now and overlap it.
    drop(ksm_guard);
    let idle = idle.or_else(|| IdleWindow::open(env, live));
    env.progress.phase(Phase::Settle);
    let host_after = m
        .memory
        .then(|| measure::memory::settle(m.drop_caches, settle_timeout(env)));
    let kthreads_with = measure::host_kthreads();
    if let Some(w) = idle {
        w.close(env, live, &mut seen);
    }
    Readings {
        seen,
        host_after,
        kthreads_with,
        ksm,
        ksm_wait,
        sandbox_kernels,
        measure_ms,
    }
}

/// Waits for every live instance's workload to say `done`, and keeps what it reported.
fn wait_workloads(env: &Env, launched: &mut [Launched], seen: &mut [Seen]) {
    let deadline = env.ctx.ready_limit().from_now();
    let cancel = &env.ctx.cancel;
    let reports: Vec<Option<Result<_, AgentError>>> = env.pool.install(|| {
        launched
            .par_iter_mut()
            .map(|(_, r)| match r {
                Ok(inst) => Some(inst.wait_done(deadline, cancel)),
                Err(_) => None,
            })
            .collect()
    });
    for (sn, r) in seen.iter_mut().zip(reports) {
        match r {
            Some(Ok(report)) => {
                sn.probe = report.probe;
                sn.syscalls = report.syscalls;
            }
            Some(Err(e)) => sn.workload_error = Some(format!("workload: {e}")),
            None => {}
        }
    }
}

/// What each instance really runs with, read from the host while it is alive.
fn read_isolation(env: &Env, batch: &Live, seen: &mut [Seen]) {
    let cgroups = crate::host::cgroup::CgroupHost::detect().ok();
    for ((_, r), sn) in batch.launched.iter().zip(seen.iter_mut()) {
        if let Some(inst) = instance(r)
            && let Some(pid) = kind::agent_pid(env.backend.kind(), inst)
        {
            sn.isolation = Some(measure::isolation::read(
                pid,
                cgroups.as_ref(),
                env.backend.device_program(),
            ));
        }
    }
}

/// Merges identical pages across the batch when the scenario asks and the kind gains from it;
/// returns the settled reading, how long the wait for it took, and the guard that restores
/// the host's KSM settings.
fn merge_pages(env: &Env) -> (Option<(KsmReading, Duration)>, Option<KsmGuard>) {
    let m = &env.ctx.scenario.measure;
    if !m.ksm || !kind::merges_pages(env.backend.kind()) || env.cancelled() {
        return (None, None);
    }
    let record = env.ctx.state_dir.join(measure::ksm::KSM_RECORD);
    match KsmGuard::enable_recorded(&record) {
        Ok(g) => {
            let limit = Duration::from_secs_f64(m.ksm_timeout_s);
            env.progress.phase(Phase::Ksm);
            let waited = std::time::Instant::now();
            let reading = g.wait_settled(limit, &env.ctx.cancel);
            let waited = waited.elapsed();
            env.progress.phase(Phase::Measure);
            if !reading.settled && !env.cancelled() {
                env.progress.warn(&format!(
                    "isobench: ksm: pages_sharing still moving after {} (measure.ksm_timeout_s); kept as read, with ksm_settled = false",
                    crate::deadline::seconds(limit)
                ));
            }
            (Some((reading, waited)), Some(g))
        }
        Err(e) => {
            env.progress
                .warn(&format!("isobench: ksm: {e}; identical pages not measured"));
            (None, None)
        }
    }
}

/// The per-instance memory views and private disk; returns how long reading them took (ms).
fn read_memory(env: &Env, live: &Live, seen: &mut [Seen]) -> Option<f64> {
    if !env.ctx.scenario.measure.memory {
        return None;
    }
    let start = Instant::now();
    let kind = env.backend.kind();
    // The engine's shared processes, read once and shared out over the live instances.
    let alive_n = live
        .launched
        .iter()
        .filter(|l| alive(live, l).is_some())
        .count()
        .max(1) as u64;
    let engine_kib = env
        .backend
        .engine_pids()
        .map(|pids| measure::memory::rollup(&pids).pss_kib);
    for (launched, sn) in live.launched.iter().zip(seen.iter_mut()) {
        let Some(inst) = alive(live, launched) else {
            continue;
        };
        let pm = measure::memory::rollup(&inst.pids());
        sn.mem = Some(pm);
        sn.cgroup_mem_kib = inst.cgroup().and_then(measure::memory::cgroup_mem_kib);
        sn.vmm_overhead_kib =
            kind::vmm_overhead_kib(kind, inst, env.ctx.scenario.vm.memory_mib, pm.uss_kib);
        sn.runtime_overhead_kib = engine_kib
            .map(|shared| measure::memory::rollup(&inst.runtime_pids()).pss_kib + shared / alive_n);
        sn.disk_private_kib = inst.private_dir().map(|p| measure::disk::allocated_kib(&p));
    }
    Some(start.elapsed().as_secs_f64() * 1e3)
}

fn cpu_ns(inst: &dyn Instance) -> Option<u64> {
    match inst.cgroup() {
        Some(cg) => measure::cpu::cgroup_cpu_ns(cg),
        None => measure::cpu::pids_cpu_ns(&inst.pids()),
    }
}

/// The idle-CPU window (`measure.idle_window_s`): each live instance's CPU time when it
/// opened, and when.
struct IdleWindow {
    /// Each live instance's CPU time when the window opened, and when it was read.
    before: Vec<Option<(u64, Instant)>>,
    start: Instant,
    window: Duration,
    /// End once the rate holds still (`measure.idle_adaptive`).
    adaptive: bool,
}

impl IdleWindow {
    /// None when the scenario measures no idle CPU (or the run was interrupted).
    fn open(env: &Env, live: &Live) -> Option<IdleWindow> {
        let window_s = env.ctx.scenario.measure.idle_window_s;
        if window_s <= 0.0 || env.cancelled() {
            return None;
        }
        Some(IdleWindow {
            before: live
                .launched
                .iter()
                .map(|l| {
                    alive(live, l)
                        .and_then(cpu_ns)
                        .map(|ns| (ns, Instant::now()))
                })
                .collect(),
            start: Instant::now(),
            window: Duration::from_secs_f64(window_s),
            adaptive: env.ctx.scenario.measure.idle_adaptive,
        })
    }

    /// Waits until the batch's idle CPU rate holds still (`measure::cpu::idle_rate_holds`,
    /// unless the scenario turned that off), at most what is left of the window, then reads
    /// each instance's CPU time again: idle CPU in ms per second of its own interval between
    /// the two readings (reading 1000 instances takes tens of ms, which a short window must
    /// not count as idle time).
    fn close(self, env: &Env, live: &Live, seen: &mut [Seen]) {
        env.progress.phase(Phase::Idle);
        let cpu = |l: &Launched| alive(live, l).and_then(cpu_ns);
        // Each counted instance's latest reading: one that died or could not be read keeps
        // its last, so the batch's sum never drops (a drop would look like a rate that holds).
        let mut last: Vec<Option<u64>> = self.before.iter().map(|b| b.map(|(ns, _)| ns)).collect();
        let counted = last.iter().flatten().count();
        let mut samples = vec![(0.0, last.iter().flatten().sum::<u64>())];
        // In short sleeps, so an interruption ends the window at once.
        loop {
            let t = self.start.elapsed();
            if t >= self.window || env.cancelled() {
                break;
            }
            if self.adaptive && t >= measure::cpu::IDLE_MIN / 2 {
                for (l, v) in live.launched.iter().zip(last.iter_mut()) {
                    if v.is_some() {
                        *v = cpu(l).or(*v);
                    }
                }
                samples.push((t.as_secs_f64(), last.iter().flatten().sum()));
                if measure::cpu::idle_rate_holds(&samples, counted) {
                    break;
                }
            }
            let left = self.window - t;
            let pause = if !self.adaptive {
                Duration::from_millis(100)
            } else if t < measure::cpu::IDLE_MIN / 2 {
                measure::cpu::IDLE_MIN / 2 - t
            } else {
                measure::cpu::IDLE_STEP / 2
            };
            std::thread::sleep(left.min(pause));
        }
        for ((l, sn), b) in live.launched.iter().zip(seen.iter_mut()).zip(self.before) {
            if let (Some((b, since)), Some(a)) = (b, cpu(l)) {
                let took = since.elapsed();
                sn.idle_cpu_ms_per_s = Some(measure::cpu::idle_cpu_ms_per_s(b, a, took));
            }
        }
    }
}

/// What every row of a batch shares: the host view per instance (MemAvailable's decrease,
/// Slab's and AnonPages' increase over the batch, each shared out over the instances that
/// came up), the backend's shared disk, the security profile.
struct Common {
    host_avail: Option<f64>,
    host_slab: Option<f64>,
    host_anon: Option<f64>,
    /// (allocated KiB, apparent KiB), see Backend::shared_disk.
    shared_disk: Option<(u64, u64)>,
    security: String,
}

impl Common {
    fn of(env: &Env, before: Option<HostMem>, after: Option<HostMem>, up: usize) -> Common {
        let per = |f: fn(&HostMem) -> u64| -> Option<f64> {
            let (b, a) = (before?, after?);
            (up > 0).then(|| (f(&b) as f64 - f(&a) as f64) / up as f64)
        };
        Common {
            host_avail: per(|h| h.mem_available_kib),
            host_slab: per(|h| h.slab_kib).map(|v| -v),
            host_anon: per(|h| h.anon_pages_kib).map(|v| -v),
            shared_disk: env.backend.shared_disk(),
            security: security_name(env),
        }
    }
}

/// Tears the batch down and makes its record. Every death up to the watch's stop is in the
/// rows; teardown's kills are not deaths.
pub fn teardown(env: &Env, live: Live, readings: Readings) -> BatchOutcome {
    let kernel = kernel_row(env, &live, &readings);
    let Readings {
        mut seen,
        host_after,
        ..
    } = readings;
    let syscalls = syscall_rows(env, &live, &mut seen);
    let common = Common::of(env, live.base.host, host_after, live.up());
    let Live {
        id,
        launched,
        watch,
        all_ready,
        ..
    } = live;
    let deaths = watch.stop();
    env.progress.phase(Phase::Teardown);
    let rows: Vec<Sample> = env.pool.install(|| {
        launched
            .into_par_iter()
            .zip(seen.into_par_iter())
            .map(|((i, r), sn)| {
                let mut row = sample_row(env, id, i, r.as_deref(), sn, &common);
                if let Some(d) = deaths.get(&i) {
                    died(&mut row, d);
                }
                match r {
                    Ok(inst) => tear_down(inst, &mut row),
                    Err(e) => row.error = e.cause.to_string(),
                }
                row
            })
            .collect()
    });
    BatchOutcome {
        rows,
        kernel,
        syscalls,
        all_ready_ms: all_ready.map(|d| d.as_secs_f64() * 1e3),
    }
}

/// [`measure`] then [`teardown`]: a launched batch to its record.
pub fn measure_and_teardown(env: &Env, mut live: Live) -> BatchOutcome {
    let readings = measure(env, &mut live);
    teardown(env, live, readings)
}

/// The batch's kernel.csv row: distinct kernels, kernel threads, kernel memory, KSM, the
/// summed PSS and the host's MemAvailable decrease.
fn kernel_row(env: &Env, live: &Live, r: &Readings) -> KernelRow {
    let kind = env.backend.kind();
    let facts = || {
        live.launched
            .iter()
            .filter_map(|(_, l)| instance(l))
            .map(|i| &i.startup().facts)
    };
    // A boot_id mounted over the kernel's (LXC's, random per container) names no kernel.
    let mut boot_ids: BTreeSet<&str> = facts()
        .map(|f| f.boot_id.as_str())
        .filter(|b| !b.starts_with(crate::agent::BOOT_ID_MOUNTED))
        .collect();
    let host_boot_id = crate::host::boot_id();
    boot_ids.insert(&host_boot_id);
    // gVisor's sandboxes report one identity between them (no boot_id, the same uname): each
    // Sentry found alive is a kernel, besides the host's.
    let distinct_kernels = match r.sandbox_kernels {
        Some((sentries, _)) => 1 + sentries,
        None => boot_ids.len() as u32,
    };
    let sandbox_kernel_pss_kib = r
        .sandbox_kernels
        .filter(|_| env.ctx.scenario.measure.memory)
        .map(|(_, kib)| kib);
    let (guest_kthreads, guest_kernel) = kind::guest_totals(kind, facts());
    let before_after = live.base.host.zip(r.host_after);
    let kernel_mem = |h: &HostMem| (h.slab_kib + h.kernel_stack_kib + h.page_tables_kib) as i64;
    let host_kernel_kib_delta = before_after.map(|(b, a)| kernel_mem(&a) - kernel_mem(&b));
    let ksm = r.ksm.as_ref();
    let ksm_wait = r.ksm_wait;
    KernelRow {
        run_id: env.ctx.run_id.clone(),
        backend: env.backend.label(),
        accel: env.backend.accel().to_string(),
        n: live.id.n,
        rep: live.id.rep,
        distinct_kernels,
        host_kthreads_before: live.base.kthreads,
        host_kthreads_with: r.kthreads_with,
        guest_kthreads_total: guest_kthreads,
        guest_kernel_kib_total: guest_kernel,
        sandbox_kernel_pss_kib,
        host_kernel_kib_delta,
        kernel_kib_per_kernel: kind::kernel_kib_per_kernel(
            kind,
            guest_kernel.or(sandbox_kernel_pss_kib),
            host_kernel_kib_delta,
            live.up(),
        ),
        host_avail_kib_delta: before_after
            .map(|(b, a)| b.mem_available_kib as i64 - a.mem_available_kib as i64),
        pss_kib_sum: env
            .ctx
            .scenario
            .measure
            .memory
            .then(|| r.seen.iter().filter_map(|s| s.mem.map(|m| m.pss_kib)).sum()),
        ksm_pages_sharing: ksm.map(|k| k.pages_sharing),
        ksm_shared_kib: ksm.map(|k| k.pages_sharing * page_size_kib()),
        ksm_settled: ksm.map(|k| k.settled),
        ksm_wait_s: ksm_wait.map(|d| d.as_secs_f64()),
        measure_ms: r.measure_ms,
    }
}

/// The `syscalls` workload's costs, one row per instance and operation.
fn syscall_rows(env: &Env, live: &Live, seen: &mut [Seen]) -> Vec<SyscallRow> {
    let security = security_name(env);
    let mut rows = Vec::new();
    for ((i, _), sn) in live.launched.iter().zip(seen.iter_mut()) {
        for (op, cost) in sn.syscalls.take().unwrap_or_default() {
            rows.push(SyscallRow {
                run_id: env.ctx.run_id.clone(),
                backend: env.backend.label(),
                accel: env.backend.accel().to_string(),
                security: security.clone(),
                n: live.id.n,
                rep: live.id.rep,
                instance: *i,
                op,
                ns_per_op: cost.ns_per_op,
                ops: cost.ops,
            });
        }
    }
    rows
}

fn security_name(env: &Env) -> String {
    env.backend
        .security()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default()
}

/// An instance's sample row from what was seen of it (its launch error is set by the caller).
fn sample_row(
    env: &Env,
    id: BatchId,
    index: u32,
    inst: Result<&dyn Instance, &LaunchError>,
    sn: Seen,
    common: &Common,
) -> Sample {
    let mut row = Sample {
        run_id: env.ctx.run_id.clone(),
        scenario: env.ctx.scenario.name.clone(),
        backend: env.backend.label(),
        accel: env.backend.accel().to_string(),
        n: id.n,
        rep: id.rep,
        instance: index,
        ..Sample::default()
    };
    let Ok(inst) = inst else {
        return row;
    };
    row.ok = sn.workload_error.is_none();
    row.error = sn.workload_error.clone().unwrap_or_default();
    startup_columns(&mut row, inst);
    kind::guest_columns(env.backend.kind(), &mut row, &inst.startup().facts);
    cost_columns(&mut row, &sn, common);
    row.security = common.security.clone();
    row.probe = sn.probe.unwrap_or_default();
    if let Some(iso) = sn.isolation {
        isolation_columns(&mut row, iso);
    }
    row
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Start-up phases and the agent's facts.
fn startup_columns(row: &mut Sample, inst: &dyn Instance) {
    let st = inst.startup();
    row.startup_ms = Some(ms(st.startup));
    row.spawn_ms = st.spawn.map(ms);
    row.first_output_ms = st.first_output.map(ms);
    row.setup_ms = st.setup.map(ms);
    row.exec_ms = st.exec.map(ms);
    row.clone_ms = st.clone.map(ms);
    row.cgroup_ms = st.cgroup.map(ms);
    row.rootfs_ms = st.rootfs.map(ms);
    row.agent_start_ms = st.agent_start.map(ms);
    row.agent_ready_ms = st.agent_ready.map(ms);
    row.vm_kernel_ms = st.vm_kernel.map(ms);
    row.vm_init_ms = st.vm_init.map(ms);
    row.agent_uptime_s = Some(st.facts.uptime_s).filter(|u| u.is_finite());
    row.kernel_release = st.facts.kernel_release.clone();
    row.boot_id = st.facts.boot_id.clone();
    row.hostname = st.facts.hostname.clone();
    row.pid = Some(inst.pid());
}

/// Memory, disk and idle-CPU columns.
fn cost_columns(row: &mut Sample, sn: &Seen, common: &Common) {
    if let Some(pm) = sn.mem {
        (row.pss_kib, row.uss_kib, row.rss_kib) =
            (Some(pm.pss_kib), Some(pm.uss_kib), Some(pm.rss_kib));
    }
    row.cgroup_mem_kib = sn.cgroup_mem_kib;
    row.vmm_overhead_kib = sn.vmm_overhead_kib;
    row.runtime_overhead_kib = sn.runtime_overhead_kib;
    row.host_avail_kib = common.host_avail;
    row.host_slab_kib = common.host_slab;
    row.host_anon_kib = common.host_anon;
    row.disk_private_kib = sn.disk_private_kib;
    row.disk_shared_kib = common.shared_disk.map(|(alloc, _)| alloc);
    row.disk_full_copy_kib = common.shared_disk.map(|(_, apparent)| apparent);
    row.idle_cpu_ms_per_s = sn.idle_cpu_ms_per_s;
}

fn isolation_columns(row: &mut Sample, iso: measure::isolation::Isolation) {
    row.cap_eff = iso.cap_eff;
    row.cap_bnd = iso.cap_bnd;
    row.cap_inh = iso.cap_inh;
    row.cap_amb = iso.cap_amb;
    row.no_new_privs = iso.no_new_privs;
    row.seccomp = iso.seccomp;
    row.seccomp_filters = iso.seccomp_filters;
    row.ns_private = iso.ns_private;
    row.devices = iso.devices;
}

/// A death explains a workload that never said `done`: it is the error.
fn died(row: &mut Sample, d: &Death) {
    row.ok = false;
    row.error = d.to_string();
}

/// Tears one instance down; its time, or the failure appended to the row's error.
fn tear_down(inst: Box<dyn Instance>, row: &mut Sample) {
    let torn = inst.teardown();
    crate::fault::point(crate::fault::Boundary::Teardown);
    match torn {
        Ok(d) => row.teardown_ms = Some(ms(d)),
        Err(e) if row.error.is_empty() => row.error = e.to_string(),
        Err(e) => row.error = format!("{}; {e}", row.error),
    }
}

fn page_size_kib() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map(|p| p as u64 / 1024)
        .unwrap_or(4)
}
