//! The open-ended `[until]` sweep: one batch grown `step` instances at a time, all kept alive,
//! until MemAvailable falls below the floor, a launch fails, an instance dies, `max` is
//! reached, or the run is interrupted; then it is measured and torn down like any other batch,
//! and one until.csv row says how far it got and why it stopped.

use crate::measure;
use crate::results::record::UntilRow;
use crate::runner::batch::{self, BatchId, BatchOutcome, Env, Live, settle_timeout};
use crate::runner::progress::Phase;
use crate::scenario::UntilConfig;

/// Runs the sweep of `cfg` with `env`'s backend.
pub fn sweep(env: &Env, cfg: &UntilConfig) -> (BatchOutcome, UntilRow) {
    let base = batch::baseline(env);
    // Read after the baseline's own launch and teardown, so it is what the floor is held
    // against from the first step on: `plan` predicts the reached N from this budget.
    let avail_at_start = measure::memory::host_mem().mem_available_kib;
    let mut live = Live::new(env, BatchId { n: 0, rep: 0 }, base);
    let reason = grow(env, &mut live, cfg);
    let reached = live.up() as u32;
    let row = UntilRow {
        run_id: env.ctx.run_id.clone(),
        backend: env.backend.label(),
        accel: env.backend.accel().to_string(),
        n_reached: reached,
        stop_reason: reason,
        mem_available_kib_at_stop: measure::memory::host_mem().mem_available_kib,
        step: Some(cfg.step),
        mem_available_kib_at_start: Some(avail_at_start),
        mem_available_floor_kib: Some(floor_kib(cfg)),
    };
    // The rows record the N reached; the instances keep the names they were launched with.
    live.id.n = reached;
    (batch::measure_and_teardown(env, live), row)
}

fn floor_kib(cfg: &UntilConfig) -> u64 {
    cfg.mem_available_floor_mib * 1024
}

/// Adds steps to `live` until one of the stop conditions holds; returns which, in words.
fn grow(env: &Env, live: &mut Live, cfg: &UntilConfig) -> String {
    loop {
        let have = live.launched.len() as u32;
        if env.cancelled() {
            return "interrupted".to_string();
        }
        if let Some((i, d)) = live.watch.deaths().into_iter().next() {
            return format!("instance {i} died: {d}");
        }
        if have >= cfg.max {
            return format!("reached max = {}", cfg.max);
        }
        let next = have.saturating_add(cfg.step).min(cfg.max);
        batch::launch(env, live, have..next);
        if let Some((_, Err(e))) = live.launched.iter().find(|(_, r)| r.is_err()) {
            return format!("a launch failed: {}", e.cause);
        }
        // Instances report ready before their workload runs: a reading taken at once would
        // miss the memory the last ones are still touching, and the batch would overshoot
        // the floor. Waiting until MemAvailable holds still (no cache drop: launches must
        // not re-read their files) makes each step's reading see what the step costs.
        env.progress.phase(Phase::Settle);
        let avail = measure::memory::settle(false, settle_timeout(env)).mem_available_kib;
        if avail < floor_kib(cfg) {
            return format!(
                "MemAvailable {} MiB fell below the floor of {} MiB",
                avail / 1024,
                cfg.mem_available_floor_mib
            );
        }
    }
}
