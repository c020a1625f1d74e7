//! Walks the plan: each peer's backend prepared, warmed up, its batches (or its `[until]`
//! sweep) run and their records pushed to the sinks, then finished. Prints the per-batch line.

use crate::backend::{Backend, Factory, RunContext};
use crate::fault::Boundary;
use crate::runner::batch::{self, BatchId, BatchOutcome, Env};
use crate::runner::error::RunError;
use crate::runner::plan::{Peer, Plan, Step};
use crate::runner::progress::Progress;
use crate::runner::sinks::Sinks;
use crate::runner::until;
use crate::scenario::UntilConfig;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Measures every peer of `plan`; returns the descriptions of whatever a backend could not
/// remove.
pub fn measure_plan(
    ctx: &RunContext,
    plan: &Plan,
    progress: &Progress,
    sinks: &mut Sinks,
    factory: &dyn Factory,
) -> Result<Vec<String>, RunError> {
    // One pool for the whole run: a parent-death signal fires when the *thread* that created
    // the child exits, so launching threads must outlive every instance.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(ctx.scenario.parallelism as usize)
        .thread_name(|i| format!("isobench-launch-{i}"))
        .build()
        .map_err(|e| RunError::Environment(format!("thread pool: {e}")))?;
    let mut leftovers = Vec::new();
    for (i, peer) in plan.peers.iter().enumerate() {
        if ctx.cancel.load(Ordering::Relaxed) {
            break;
        }
        progress.peer(i);
        let ctx = RunContext {
            scenario: Arc::new(ctx.scenario.with_profile(peer.profile)),
            ..ctx.clone()
        };
        let Some(backend) = prepare(&ctx, peer, &pool, progress, sinks, factory)? else {
            continue;
        };
        crate::fault::point(Boundary::Prepared);
        let reason = backend.accel_reason().unwrap_or_default();
        sinks.note_accel(backend.label(), backend.accel(), reason);
        let env = Env {
            ctx: &ctx,
            backend: backend.as_ref(),
            pool: &pool,
            progress: progress.clone(),
        };
        let r = run_peer(&env, peer, sinks);
        if let Err(e) = backend.finish() {
            leftovers.push(e.to_string());
        }
        r?;
    }
    Ok(leftovers)
}

/// The backend of `peer`, or None for an OCI runtime that cannot run here (crun 1.8 on a
/// hybrid cgroup host), a Docker Engine that cannot be reached or started, or a backend its
/// own short probe found unable to run as configured (a VM machine type that does not boot
/// under this accelerator): a finding about the host, not a reason to stop measuring the others.
fn prepare(
    ctx: &RunContext,
    peer: &Peer,
    pool: &rayon::ThreadPool,
    progress: &Progress,
    sinks: &mut Sinks,
    factory: &dyn Factory,
) -> Result<Option<Box<dyn Backend>>, RunError> {
    let created = pool.install(|| factory.create(peer.kind, peer.runtime.as_deref(), ctx));
    match (created, &peer.runtime) {
        (Ok(b), _) => Ok(Some(b)),
        (Err(e), rt) if rt.is_some() || e.skip => {
            progress.warn(&format!(
                "isobench: {} is unavailable on this host: {}; the run goes on",
                peer.label, e.what
            ));
            sinks.note_accel(peer.label.clone(), "unavailable", e.what);
            Ok(None)
        }
        (Err(e), _) => Err(e.into()),
    }
}

/// The warmup, then each batch of the peer in turn, until the run is interrupted.
fn run_peer(env: &Env, peer: &Peer, sinks: &mut Sinks) -> Result<(), RunError> {
    warmup(env, peer.warmup);
    for (i, step) in peer.steps.iter().enumerate() {
        if env.cancelled() {
            return Ok(());
        }
        env.progress.batch(i, step);
        match step {
            Step::Fixed { n, rep } => run_batch(env, BatchId { n: *n, rep: *rep }, sinks)?,
            Step::Until(cfg) => run_sweep(env, cfg, sinks)?,
        }
        env.progress.done();
    }
    Ok(())
}

/// Launches torn down at once and not recorded, so the first batch does not pay for cold
/// caches.
fn warmup(env: &Env, count: u32) {
    if count == 0 {
        return;
    }
    env.progress.warmup();
    let name = env.backend.label();
    for w in 0..count {
        if env.cancelled() {
            break;
        }
        match env
            .pool
            .install(|| env.backend.launch(&format!("{name}-warmup-{w}")))
        {
            Ok(inst) => {
                let _ = inst.teardown();
            }
            Err(e) => env
                .progress
                .warn(&format!("warning: warmup of {name} failed: {e}")),
        }
        env.progress.launched();
    }
    env.progress.done();
}

fn run_batch(env: &Env, id: BatchId, sinks: &mut Sinks) -> Result<(), RunError> {
    let live = batch::launch_all(env, id);
    let out = batch::measure_and_teardown(env, live);
    env.progress.println(&batch_line(&out, id));
    Ok(sinks.push(out)?)
}

fn run_sweep(env: &Env, cfg: &UntilConfig, sinks: &mut Sinks) -> Result<(), RunError> {
    let (out, row) = until::sweep(env, cfg);
    let id = BatchId {
        n: row.n_reached,
        rep: 0,
    };
    env.progress.println(&batch_line(&out, id));
    env.progress.println(&format!(
        "{:>10} stopped at N={}: {}",
        row.backend, row.n_reached, row.stop_reason
    ));
    sinks.push_until(row)?;
    Ok(sinks.push(out)?)
}

/// The batch's line on stderr, with the cross-check of two memory views: summed PSS against
/// the host's MemAvailable decrease, so a reader sees what one view misses.
pub fn batch_line(out: &BatchOutcome, id: BatchId) -> String {
    let k = &out.kernel;
    let BatchId { n, rep } = id;
    let failed: Vec<_> = out.rows.iter().filter(|r| !r.ok).collect();
    let ok = out.rows.len() - failed.len();
    let mut line = format!("{:>10} N={n:<5} rep {rep}: {ok}/{n} ready", k.backend);
    if let Some(ms) = out.all_ready_ms {
        line.push_str(&format!(", all ready in {ms:.1} ms"));
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
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::record::{KernelRow, Sample};

    #[test]
    fn the_batch_line_names_readiness_both_memory_views_and_the_first_failure() {
        let row = |ok: bool, error: &str| Sample {
            ok,
            error: error.into(),
            ..Sample::default()
        };
        let out = BatchOutcome {
            rows: vec![
                row(true, ""),
                row(false, "agent killed by SIGKILL"),
                row(true, ""),
            ],
            kernel: KernelRow {
                backend: "container".into(),
                pss_kib_sum: Some(3072),
                host_avail_kib_delta: Some(2048),
                ..KernelRow::default()
            },
            syscalls: Vec::new(),
            all_ready_ms: None,
        };
        let id = BatchId { n: 3, rep: 1 };
        assert_eq!(
            batch_line(&out, id),
            " container N=3     rep 1: 2/3 ready; PSS 3.0 MiB vs MemAvailable down 2.0 MiB (ratio 1.50) (1 failed: agent killed by SIGKILL)"
        );
        let all = BatchOutcome {
            rows: vec![row(true, "")],
            all_ready_ms: Some(4.26),
            kernel: KernelRow {
                backend: "process".into(),
                host_avail_kib_delta: Some(-1024),
                pss_kib_sum: Some(10),
                ..KernelRow::default()
            },
            syscalls: Vec::new(),
        };
        let line = batch_line(&all, BatchId { n: 1, rep: 0 });
        assert!(
            line.ends_with(
                "1/1 ready, all ready in 4.3 ms; PSS 0.0 MiB vs MemAvailable up 1.0 MiB (ratio -)"
            ),
            "{line}"
        );
    }
}
