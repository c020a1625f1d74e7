//! One batch: launch N instances with the run's parallelism, keep all N alive while they are
//! measured (memory views, disk, idle CPU, kernel redundancy, KSM), tear them down, and turn
//! what was seen into sample rows and a kernel.csv row. Also the open-ended `until` sweep,
//! which grows one batch step by step.

use crate::backend::{Backend, Instance, LaunchError, RunContext};
use crate::measure::{self, memory::HostMem};
use crate::results::record::{KernelRow, Sample, SyscallRow, UntilRow};
use crate::runner::watch::{DeathWatch, Watched};
use crate::scenario::{BackendKind, UntilConfig, Workload};
use rayon::prelude::*;
use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// One launch of a batch: the instance index and what came of it.
pub type Launched = (u32, Result<Box<dyn Instance>, LaunchError>);

/// How long a host-memory reading may wait for MemAvailable to settle.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(5);

/// What a batch produced.
pub struct BatchOutcome {
    pub rows: Vec<Sample>,
    pub kernel: KernelRow,
    /// syscalls.csv rows of the `syscalls` workload (empty for other workloads).
    pub syscalls: Vec<SyscallRow>,
    /// Wall time until all N were ready, when all N were.
    pub all_ready_ms: Option<f64>,
}

/// Host readings taken before a batch launches.
pub struct Baseline {
    host: Option<HostMem>,
    kthreads: u32,
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
/// start. Not for VMs: their seconds-long boots do not notice, and a re-warm costs a boot.
pub fn baseline(ctx: &RunContext, backend: &dyn Backend, pool: &rayon::ThreadPool) -> Baseline {
    let m = &ctx.scenario.measure;
    let host = m
        .memory
        .then(|| measure::memory::settle(m.drop_caches, SETTLE_TIMEOUT));
    if m.memory {
        let mut files = backend.launch_files();
        files.push(ctx.agent_exe.clone());
        for f in files {
            warm(&f);
        }
        if backend.kind() != BackendKind::Vm
            && !ctx.cancel.load(Ordering::Relaxed)
            && let Ok(inst) =
                pool.install(|| backend.launch(&format!("{}-rewarm", backend.label())))
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

/// Launches instances `first..first + count` of a batch named by `n` and `rep`, and puts each
/// one under `watch` as soon as it is ready.
pub fn launch(
    ctx: &RunContext,
    backend: &dyn Backend,
    pool: &rayon::ThreadPool,
    names: (u32, u32),
    range: std::ops::Range<u32>,
    bar: &indicatif::ProgressBar,
    watch: &DeathWatch,
) -> Vec<Launched> {
    let (n, rep) = names;
    let label = backend.label();
    pool.install(|| {
        range
            .into_par_iter()
            .filter_map(|i| {
                if ctx.cancel.load(Ordering::Relaxed) {
                    return None;
                }
                let r = backend.launch(&format!("{label}-n{n}-r{rep}-i{i}"));
                if let Ok(inst) = &r {
                    crate::fault::point(crate::fault::Boundary::Launched);
                    watch_instance(watch, backend.kind(), i, inst.as_ref());
                }
                bar.inc(1);
                Some((i, r))
            })
            .collect()
    })
}

/// Puts a ready instance under the death watch; the process watched is its first host
/// process, named in the error as what it is.
fn watch_instance(watch: &DeathWatch, kind: BackendKind, index: u32, inst: &dyn Instance) {
    let what = match kind {
        BackendKind::Vm => "qemu",
        BackendKind::Unshare => "unshare",
        _ => "agent",
    };
    let w = Watched {
        index,
        name: inst.name(),
        what,
        pid: inst.pid(),
        startup: inst.startup().startup,
        memory_dir: inst.cgroup().and_then(|c| c.dir_for("memory")),
    };
    if let Err(e) = watch.add(&w) {
        // The instance still runs and is measured; its death would show at teardown only.
        eprintln!("isobench: death watch: {e}");
    }
}

/// Per-instance readings taken while the whole batch is alive.
#[derive(Default, Clone)]
struct Seen {
    mem: Option<measure::memory::ProcMem>,
    cgroup_mem_kib: Option<u64>,
    vmm_overhead_kib: Option<u64>,
    disk_private_kib: Option<u64>,
    idle_cpu_ms_per_s: Option<f64>,
    workload_error: Option<String>,
    probe: Option<String>,
    syscalls: Option<std::collections::BTreeMap<String, crate::agent::syscalls::OpCost>>,
    isolation: Option<measure::isolation::Isolation>,
}

/// The host pid of the instance's agent, whose isolation is read back: unshare's agent is its
/// child; a VM's agent runs behind the hypervisor, where the host cannot look.
fn agent_pid(kind: BackendKind, inst: &dyn Instance) -> Option<i32> {
    match kind {
        BackendKind::Vm => None,
        BackendKind::Unshare => crate::host::with_descendants(inst.pid())
            .into_iter()
            .find(|p| *p != inst.pid()),
        _ => Some(inst.pid()),
    }
}

/// The instance of a launch, if it came up.
fn live(r: &Result<Box<dyn Instance>, LaunchError>) -> Option<&dyn Instance> {
    r.as_ref().ok().map(|b| b.as_ref())
}

fn cpu_ns(inst: &dyn Instance) -> Option<u64> {
    match inst.cgroup() {
        Some(cg) => measure::cpu::cgroup_cpu_ns(cg),
        None => measure::cpu::pids_cpu_ns(&inst.pids()),
    }
}

/// Measures the live batch, tears it down, and returns its rows. `n` is the batch's N as
/// recorded (for `until`, the N reached).
///
/// An instance the watch saw die is not measured from then on; its row is not ok and its
/// `error` says how it died (the watch is stopped before teardown, whose kills are no deaths).
#[allow(clippy::too_many_arguments)]
pub fn measure_and_teardown(
    ctx: &RunContext,
    backend: &dyn Backend,
    pool: &rayon::ThreadPool,
    mut launched: Vec<Launched>,
    watch: DeathWatch,
    n: u32,
    rep: u32,
    base: &Baseline,
) -> BatchOutcome {
    let s = &ctx.scenario;
    let m = &s.measure;
    let label = backend.label();
    let accel = backend.accel().to_string();
    let security = backend
        .security()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let mut seen = vec![Seen::default(); launched.len()];

    // The workload first: memory and disk are measured after it did its work.
    if s.workload != Workload::Idle {
        let deadline = ctx.ready_limit().from_now();
        let reports: Vec<Option<Result<_, String>>> = pool.install(|| {
            launched
                .par_iter_mut()
                .map(|(_, r)| match r {
                    Ok(inst) => Some(
                        inst.wait_done(deadline, &ctx.cancel)
                            .map_err(|e| format!("workload: {e}")),
                    ),
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
                Some(Err(e)) => sn.workload_error = Some(e),
                None => {}
            }
        }
    }

    // What each instance really runs with, read from the host while it is alive.
    let cgroups = crate::host::cgroup::CgroupHost::detect().ok();
    for ((_, r), sn) in launched.iter().zip(seen.iter_mut()) {
        if let Some(inst) = live(r)
            && let Some(pid) = agent_pid(backend.kind(), inst)
        {
            sn.isolation = Some(measure::isolation::read(
                pid,
                cgroups.as_ref(),
                backend.device_program(),
            ));
        }
    }

    // KSM merges while the batch is alive. The guard restores the host's settings on drop,
    // which unmerges the pages: it lives until the memory views below have been read, so
    // they show what merging saved.
    let mut ksm = None;
    let mut ksm_guard = None;
    if m.ksm && backend.kind() == BackendKind::Vm && !ctx.cancel.load(Ordering::Relaxed) {
        match measure::ksm::KsmGuard::enable_recorded(&ctx.state_dir.join(measure::ksm::KSM_RECORD))
        {
            Ok(g) => {
                let limit = Duration::from_secs_f64(m.ksm_timeout_s);
                let reading = g.wait_settled(limit, &ctx.cancel);
                if !reading.settled && !ctx.cancel.load(Ordering::Relaxed) {
                    eprintln!(
                        "isobench: ksm: pages_sharing still moving after {} (measure.ksm_timeout_s); kept as read, with ksm_settled = false",
                        crate::deadline::seconds(limit)
                    );
                }
                ksm = Some(reading);
                ksm_guard = Some(g);
            }
            Err(e) => eprintln!("isobench: ksm: {e}; identical pages not measured"),
        }
    }

    // An instance that died is not measured: its pids are gone or zombies.
    let alive = |i: u32, r| live(r).filter(|_| !watch.is_dead(i));
    let measure_start = Instant::now();
    if m.memory {
        for ((i, r), sn) in launched.iter().zip(seen.iter_mut()) {
            let Some(inst) = alive(*i, r) else { continue };
            let pm = measure::memory::rollup(&inst.pids());
            sn.mem = Some(pm);
            sn.cgroup_mem_kib = inst.cgroup().and_then(measure::memory::cgroup_mem_kib);
            if backend.kind() == BackendKind::Vm {
                sn.vmm_overhead_kib =
                    measure::memory::guest_ram_resident_kib(inst.pid(), s.vm.memory_mib)
                        .map(|g| pm.uss_kib.saturating_sub(g));
            }
            sn.disk_private_kib = inst.private_dir().map(|p| measure::disk::allocated_kib(&p));
        }
    }
    let measure_ms = m
        .memory
        .then(|| measure_start.elapsed().as_secs_f64() * 1e3);
    let host_after = m
        .memory
        .then(|| measure::memory::settle(m.drop_caches, SETTLE_TIMEOUT));
    let kthreads_with = measure::host_kthreads();
    crate::fault::point(crate::fault::Boundary::Measure);
    // ksmd's own CPU would land in the idle window: merging ends here.
    drop(ksm_guard);

    if m.idle_window_s > 0.0 && !ctx.cancel.load(Ordering::Relaxed) {
        let window = Duration::from_secs_f64(m.idle_window_s);
        let before: Vec<Option<u64>> = launched
            .iter()
            .map(|(i, r)| alive(*i, r).and_then(cpu_ns))
            .collect();
        let start = Instant::now();
        while start.elapsed() < window && !ctx.cancel.load(Ordering::Relaxed) {
            std::thread::sleep(
                (window - start.elapsed().min(window)).min(Duration::from_millis(100)),
            );
        }
        let took = start.elapsed();
        for (((i, r), sn), b) in launched.iter().zip(seen.iter_mut()).zip(before) {
            if let (Some(b), Some(a)) = (b, alive(*i, r).and_then(cpu_ns)) {
                sn.idle_cpu_ms_per_s = Some(measure::cpu::idle_cpu_ms_per_s(b, a, took));
            }
        }
    }

    let shared = backend.shared_disk();
    let host_boot_id = crate::host::boot_id();
    let per_instance = |f: fn(&HostMem) -> u64| -> Option<f64> {
        let (b, a) = (base.host?, host_after?);
        let ok = launched.iter().filter(|(_, r)| r.is_ok()).count();
        (ok > 0).then(|| (f(&b) as f64 - f(&a) as f64) / ok as f64)
    };
    // MemAvailable decreases; Slab and AnonPages increase: both reported as per-instance cost.
    let host_avail = per_instance(|h| h.mem_available_kib);
    let host_slab = per_instance(|h| h.slab_kib).map(|v| -v);
    let host_anon = per_instance(|h| h.anon_pages_kib).map(|v| -v);

    let mut kernel = KernelRow {
        run_id: ctx.run_id.clone(),
        backend: label.clone(),
        accel: accel.clone(),
        n,
        rep,
        host_kthreads_before: base.kthreads,
        host_kthreads_with: kthreads_with,
        measure_ms,
        ..KernelRow::default()
    };
    let mut boot_ids: BTreeSet<String> = BTreeSet::from([host_boot_id]);
    let mut guest_kthreads: Option<u64> = None;
    let mut guest_kernel: Option<u64> = None;
    for (_, r) in &launched {
        if let Some(inst) = live(r) {
            let f = &inst.startup().facts;
            boot_ids.insert(f.boot_id.clone());
            if backend.kind() == BackendKind::Vm {
                guest_kthreads =
                    Some(guest_kthreads.unwrap_or(0) + u64::from(f.kthreads.unwrap_or(0)));
                guest_kernel = Some(guest_kernel.unwrap_or(0) + f.kernel_kib().unwrap_or(0));
            }
        }
    }
    kernel.distinct_kernels = boot_ids.len() as u32;
    kernel.guest_kthreads_total = guest_kthreads;
    kernel.guest_kernel_kib_total = guest_kernel;
    let kernel_mem = |h: &HostMem| (h.slab_kib + h.kernel_stack_kib + h.page_tables_kib) as i64;
    kernel.host_kernel_kib_delta = base
        .host
        .zip(host_after)
        .map(|(b, a)| kernel_mem(&a) - kernel_mem(&b));
    kernel.host_avail_kib_delta = base
        .host
        .zip(host_after)
        .map(|(b, a)| b.mem_available_kib as i64 - a.mem_available_kib as i64);
    let alive = launched.iter().filter(|(_, r)| r.is_ok()).count();
    kernel.kernel_kib_per_kernel = match (backend.kind(), guest_kernel) {
        (BackendKind::Vm, Some(g)) if alive > 0 => Some(g as f64 / alive as f64),
        (BackendKind::Vm, _) => None,
        _ if alive > 0 => kernel
            .host_kernel_kib_delta
            .map(|d| d as f64 / alive as f64),
        _ => None,
    };
    kernel.pss_kib_sum = m
        .memory
        .then(|| seen.iter().filter_map(|s| s.mem.map(|m| m.pss_kib)).sum());
    if let Some(k) = ksm {
        kernel.ksm_pages_sharing = Some(k.pages_sharing);
        kernel.ksm_shared_kib = Some(k.pages_sharing * page_size_kib());
        kernel.ksm_settled = Some(k.settled);
    }

    let mut syscalls = Vec::new();
    for ((i, _), sn) in launched.iter().zip(seen.iter_mut()) {
        for (op, cost) in sn.syscalls.take().unwrap_or_default() {
            syscalls.push(SyscallRow {
                run_id: ctx.run_id.clone(),
                backend: label.clone(),
                accel: accel.clone(),
                security: security.clone(),
                n,
                rep,
                instance: *i,
                op,
                ns_per_op: cost.ns_per_op,
                ops: cost.ops,
            });
        }
    }

    // Every death up to here is in; teardown's kills are not deaths.
    let deaths = watch.stop();
    let rows: Vec<Sample> = pool.install(|| {
        launched
            .into_par_iter()
            .zip(seen.into_par_iter())
            .map(|((i, r), sn)| {
                let mut row = Sample {
                    run_id: ctx.run_id.clone(),
                    scenario: s.name.clone(),
                    backend: label.clone(),
                    accel: accel.clone(),
                    n,
                    rep,
                    instance: i,
                    ..Sample::default()
                };
                let inst = match r {
                    Err(e) => {
                        row.error = e.what;
                        return row;
                    }
                    Ok(inst) => inst,
                };
                let st = inst.startup().clone();
                let ms = |d: Duration| d.as_secs_f64() * 1e3;
                row.ok = sn.workload_error.is_none();
                row.error = sn.workload_error.unwrap_or_default();
                // A death explains a workload that never said `done`: it is the error.
                if let Some(d) = deaths.get(&i) {
                    row.ok = false;
                    row.error = d.to_string();
                }
                row.startup_ms = Some(ms(st.startup));
                row.spawn_ms = st.spawn.map(ms);
                row.first_output_ms = st.first_output.map(ms);
                row.setup_ms = st.setup.map(ms);
                row.exec_ms = st.exec.map(ms);
                row.agent_uptime_s = Some(st.facts.uptime_s).filter(|u| u.is_finite());
                row.kernel_release = st.facts.kernel_release.clone();
                row.boot_id = st.facts.boot_id.clone();
                row.hostname = st.facts.hostname.clone();
                row.pid = Some(inst.pid());
                if backend.kind() == BackendKind::Vm {
                    let f = &st.facts;
                    row.guest_mem_total_kib = f.mem_total_kib;
                    row.guest_mem_used_kib = f
                        .mem_total_kib
                        .zip(f.mem_available_kib)
                        .map(|(t, a)| t.saturating_sub(a));
                    row.guest_kernel_kib = f.kernel_kib();
                    row.guest_kthreads = f.kthreads;
                }
                if let Some(pm) = sn.mem {
                    (row.pss_kib, row.uss_kib, row.rss_kib) =
                        (Some(pm.pss_kib), Some(pm.uss_kib), Some(pm.rss_kib));
                }
                row.cgroup_mem_kib = sn.cgroup_mem_kib;
                row.vmm_overhead_kib = sn.vmm_overhead_kib;
                row.host_avail_kib = host_avail;
                row.host_slab_kib = host_slab;
                row.host_anon_kib = host_anon;
                row.disk_private_kib = sn.disk_private_kib;
                row.disk_shared_kib = shared.map(|(alloc, _)| alloc);
                row.disk_full_copy_kib = shared.map(|(_, apparent)| apparent);
                row.idle_cpu_ms_per_s = sn.idle_cpu_ms_per_s;
                row.security = security.clone();
                row.probe = sn.probe.unwrap_or_default();
                if let Some(iso) = sn.isolation {
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
                let torn = inst.teardown();
                crate::fault::point(crate::fault::Boundary::Teardown);
                match torn {
                    Ok(d) => row.teardown_ms = Some(ms(d)),
                    Err(e) => {
                        row.error = if row.error.is_empty() {
                            e
                        } else {
                            format!("{}; {e}", row.error)
                        }
                    }
                }
                row
            })
            .collect()
    });
    BatchOutcome {
        rows,
        kernel,
        syscalls,
        all_ready_ms: None,
    }
}

fn page_size_kib() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map(|p| p as u64 / 1024)
        .unwrap_or(4)
}

/// Grows one batch `step` instances at a time, all kept alive, until MemAvailable falls
/// below the floor, a launch fails, `max` is reached, or the run is interrupted; then
/// measures and tears down the whole batch like any other.
pub fn until(
    ctx: &RunContext,
    backend: &dyn Backend,
    pool: &rayon::ThreadPool,
    cfg: &UntilConfig,
    bar: &indicatif::ProgressBar,
) -> (BatchOutcome, UntilRow) {
    let base = baseline(ctx, backend, pool);
    let mut launched: Vec<Launched> = Vec::new();
    let floor_kib = cfg.mem_available_floor_mib * 1024;
    // Read after the baseline's own launch and teardown, so it is what the floor is held
    // against from the first step on: `plan` predicts the reached N from this budget.
    let avail_at_start = measure::memory::host_mem().mem_available_kib;
    let watch = DeathWatch::start(true);
    let reason = loop {
        let have = launched.len() as u32;
        if ctx.cancel.load(Ordering::Relaxed) {
            break "interrupted".to_string();
        }
        if let Some((i, d)) = watch.deaths().into_iter().next() {
            break format!("instance {i} died: {d}");
        }
        if have >= cfg.max {
            break format!("reached max = {}", cfg.max);
        }
        let next = (have + cfg.step).min(cfg.max);
        launched.extend(launch(ctx, backend, pool, (0, 0), have..next, bar, &watch));
        if let Some((_, Err(e))) = launched.iter().find(|(_, r)| r.is_err()) {
            break format!("a launch failed: {}", e.what);
        }
        // Instances report ready before their workload runs: a reading taken at once would
        // miss the memory the last ones are still touching, and the batch would overshoot
        // the floor. Waiting until MemAvailable holds still (no cache drop: launches must
        // not re-read their files) makes each step's reading see what the step costs.
        let avail = measure::memory::settle(false, SETTLE_TIMEOUT).mem_available_kib;
        if avail < floor_kib {
            break format!(
                "MemAvailable {} MiB fell below the floor of {} MiB",
                avail / 1024,
                cfg.mem_available_floor_mib
            );
        }
    };
    let reached = launched.iter().filter(|(_, r)| r.is_ok()).count() as u32;
    let avail = measure::memory::host_mem().mem_available_kib;
    let row = UntilRow {
        run_id: ctx.run_id.clone(),
        backend: backend.label(),
        accel: backend.accel().to_string(),
        n_reached: reached,
        stop_reason: reason,
        mem_available_kib_at_stop: avail,
        step: Some(cfg.step),
        mem_available_kib_at_start: Some(avail_at_start),
        mem_available_floor_kib: Some(floor_kib),
    };
    let out = measure_and_teardown(ctx, backend, pool, launched, watch, reached, 0, &base);
    (out, row)
}
