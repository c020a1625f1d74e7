//! Checking a plan against an `until` run: the N it predicts for the until run's memory
//! budget against the N the run reached.
//!
//! An until run adds `step` instances at a time and stops after the first step that leaves
//! MemAvailable below the floor. With M(N) the memory N instances take from MemAvailable and
//! B = MemAvailable at start - floor, it stops at the first multiple of `step` with M(N) > B.
//! So the most instances that fitted, max{N : M(N) <= B}, lies in [reached - step,
//! reached - 1]: the run measures it only to within one step, and the comparison says so.

use serde::Serialize;

use crate::results::record::UntilRow;

use super::capacity::{Range, Resource, limit};
use super::model::CostModel;

/// The prediction for one until row and what the run reached.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct UntilCheck {
    pub backend: String,
    pub accel: String,
    /// MemAvailable at start - floor, KiB: the budget the until run had.
    pub budget_kib: f64,
    /// The most instances the fitted line puts within the budget.
    pub predicted_n: u64,
    /// The same from the line ±2 SE.
    pub predicted_range: Option<Range>,
    /// Where the run would stop if the line were exact: the next multiple of `step`.
    pub predicted_stop_n: u64,
    pub reached_n: u32,
    pub step: u32,
    /// The interval the most instances that fitted lies in, from the run: [reached - step,
    /// reached - 1].
    pub measured_low: u32,
    pub measured_high: u32,
    /// (predicted_n - midpoint of the interval) / midpoint.
    pub relative_difference: f64,
    /// Whether predicted_n lies in the measured interval.
    pub within_step: bool,
}

/// Why a row could not be compared.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UntilSkip {
    /// The run stopped at its max, a failed launch or an interrupt.
    #[error(
        "{backend} ({accel}): the until run stopped for another reason than the floor ({reason}): nothing to compare"
    )]
    NotTheFloor {
        backend: String,
        accel: String,
        reason: String,
    },
    #[error(
        "{backend} ({accel}): until.csv lacks step, mem_available_kib_at_start or mem_available_floor_kib (written by an older isobench): the budget is unknown"
    )]
    NoBudget { backend: String, accel: String },
    /// The density run has no memory fit for this backend.
    #[error("{backend} ({accel}): the density run has no memory model for it")]
    NoModel { backend: String, accel: String },
}

/// Compares one until row with the density run's model of the same backend and accelerator.
pub fn check(row: &UntilRow, models: &[CostModel]) -> Result<UntilCheck, UntilSkip> {
    let (backend, accel) = (row.backend.clone(), row.accel.clone());
    if !row.stop_reason.starts_with("MemAvailable") {
        return Err(UntilSkip::NotTheFloor {
            backend,
            accel,
            reason: row.stop_reason.clone(),
        });
    }
    let (Some(step), Some(start), Some(floor)) = (
        row.step,
        row.mem_available_kib_at_start,
        row.mem_available_floor_kib,
    ) else {
        return Err(UntilSkip::NoBudget { backend, accel });
    };
    let Some(fit) = models
        .iter()
        .find(|m| m.backend == row.backend && m.accel == row.accel)
        .and_then(|m| m.memory.fit.as_ref())
    else {
        return Err(UntilSkip::NoModel { backend, accel });
    };
    let budget = start as f64 - floor as f64;
    let l = limit(Resource::Memory, Some(fit), budget, "KiB", 0.0);
    // A line that does not grow would never reach the floor; the run did, so say "0 fit"
    // rather than invent a number: the relative difference then shows the model is wrong.
    let predicted = l.n.unwrap_or(0);
    let low = row.n_reached.saturating_sub(step);
    let high = row.n_reached.saturating_sub(1);
    let mid = (f64::from(low) + f64::from(high)) / 2.0;
    Ok(UntilCheck {
        budget_kib: budget,
        predicted_n: predicted,
        predicted_range: l.range,
        predicted_stop_n: (predicted / u64::from(step) + 1) * u64::from(step),
        reached_n: row.n_reached,
        step,
        measured_low: low,
        measured_high: high,
        relative_difference: if mid > 0.0 {
            (predicted as f64 - mid) / mid
        } else {
            f64::NAN
        },
        within_step: (u64::from(low)..=u64::from(high)).contains(&predicted),
        backend,
        accel,
    })
}

#[cfg(test)]
mod tests {
    use super::super::fit::fit;
    use super::super::model::{View, ViewFit};
    use super::*;

    fn model(a: f64, b: f64) -> CostModel {
        let vf = |view| ViewFit {
            view,
            unit: "KiB",
            fit: Some(fit(&[(1.0, a + b), (10.0, a + 10.0 * b), (50.0, a + 50.0 * b)]).unwrap()),
            note: None,
        };
        CostModel {
            backend: "container".into(),
            accel: "none".into(),
            batches: vec![],
            memory: vf(View::HostMem),
            pss: vf(View::Pss),
            idle_cpu: vf(View::IdleCpu),
        }
    }

    fn row(reached: u32) -> UntilRow {
        UntilRow {
            backend: "container".into(),
            accel: "none".into(),
            n_reached: reached,
            stop_reason: "MemAvailable 8000 MiB fell below the floor of 8192 MiB".into(),
            step: Some(10),
            mem_available_kib_at_start: Some(20 * 1024 * 1024),
            mem_available_floor_kib: Some(8 * 1024 * 1024),
            ..UntilRow::default()
        }
    }

    #[test]
    fn an_exact_model_predicts_within_the_last_step() {
        // Budget 12 GiB, 65 MiB per instance and 10 MiB fixed: (12288 - 10) / 65 = 188.9.
        let m = [model(10.0 * 1024.0, 65.0 * 1024.0)];
        let c = check(&row(190), &m).unwrap();
        assert_eq!(c.predicted_n, 188);
        assert_eq!(c.predicted_stop_n, 190);
        assert_eq!((c.measured_low, c.measured_high), (180, 189));
        assert!(c.within_step);
        assert!((c.relative_difference - (188.0 - 184.5) / 184.5).abs() < 1e-12);
        // A run that went twice as far is 2x off.
        let c = check(&row(380), &m).unwrap();
        assert!(!c.within_step && c.relative_difference < -0.45, "{c:?}");
    }

    #[test]
    fn rows_that_cannot_be_compared_say_why() {
        let m = [model(0.0, 1024.0)];
        let mut r = row(100);
        r.stop_reason = "reached max = 100".into();
        assert!(matches!(check(&r, &m), Err(UntilSkip::NotTheFloor { .. })));
        let mut r = row(100);
        r.mem_available_kib_at_start = None;
        assert!(matches!(check(&r, &m), Err(UntilSkip::NoBudget { .. })));
        let mut r = row(100);
        r.backend = "vm".into();
        assert!(matches!(check(&r, &m), Err(UntilSkip::NoModel { .. })));
    }
}
