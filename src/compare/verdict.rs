//! One metric of one group, BASE against NEW: the ratio of medians, its bootstrap interval and
//! the verdict against a tolerance. Pure functions of the values, so the rules are unit-tested
//! on synthetic data.

use serde::Serialize;

use crate::stats::{self, Interval};
use crate::text::format::sig;

/// How the intervals are computed; printed with every comparison so it can be repeated.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Method {
    /// Bootstrap resamples drawn from each side, per interval.
    pub resamples: u32,
    /// Confidence level of the intervals, in (0, 1).
    pub confidence: f64,
    /// Fixed seed of the resampling (mixed with the group and metric names, so a metric's
    /// interval does not depend on which other groups the runs hold): reruns print the same.
    pub seed: u64,
    /// The fewest samples per side for an interval at `confidence`
    /// (`stats::min_samples_for_median_interval`).
    pub min_samples: usize,
}

/// The seed every comparison starts from.
pub const SEED: u64 = 42;

/// What the comparison of one metric concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// NEW is worse than BASE beyond the tolerance, with the stated confidence.
    Regression,
    /// NEW is better than BASE beyond the tolerance, with the stated confidence.
    Improvement,
    /// NEW is within the tolerance of BASE, with the stated confidence.
    Ok,
    /// None of the above could be shown: the interval reaches past a tolerance bound, or there
    /// is no interval (too few samples, a negative median).
    Inconclusive,
}

impl Verdict {
    /// The word tables print.
    pub fn word(self) -> &'static str {
        match self {
            Verdict::Regression => "regression",
            Verdict::Improvement => "improvement",
            Verdict::Ok => "ok",
            Verdict::Inconclusive => "inconclusive",
        }
    }
}

/// NEW/BASE of two medians of a lower-is-better figure, with zeros handled so that it is never
/// NaN: both zero is 1 (no change); BASE zero is +infinity when NEW is above it (worse by any
/// factor) and -infinity when NEW is below it. `None` when BASE is negative (only a noisy
/// `host_avail_kib` can be): dividing by it would flip the meaning of "worse", so there is no
/// ratio.
pub fn ratio(new: f64, base: f64) -> Option<f64> {
    if base < 0.0 || base.is_nan() || new.is_nan() {
        None
    } else if base == 0.0 {
        Some(if new > 0.0 {
            f64::INFINITY
        } else if new < 0.0 {
            f64::NEG_INFINITY
        } else {
            1.0
        })
    } else {
        Some(new / base)
    }
}

/// Why there is no interval, when there is none.
#[derive(Debug, Clone, PartialEq)]
pub enum NoInterval {
    /// A side has fewer samples than a median interval at this confidence needs.
    TooFewSamples { have: usize, need: usize },
    /// BASE's median is negative: there is no ratio to put an interval on.
    NoRatio,
    /// A resample's BASE median is negative: the ratio is undefined there, so the
    /// distribution the interval is read from is incomplete.
    NegativeResample,
}

/// The interval of NEW/BASE, or why there is none. Each side is resampled independently
/// (the runs are independent), and the i-th replicate of NEW is paired with the i-th of BASE.
pub fn ratio_interval(
    base: &[f64],
    new: &[f64],
    method: &Method,
    rng: &mut fastrand::Rng,
) -> Result<Interval, NoInterval> {
    let have = base.len().min(new.len());
    if have < method.min_samples {
        return Err(NoInterval::TooFewSamples {
            have,
            need: method.min_samples,
        });
    }
    let b = stats::bootstrap_medians(base, method.resamples, rng);
    let n = stats::bootstrap_medians(new, method.resamples, rng);
    let ratios: Option<Vec<f64>> = n.iter().zip(&b).map(|(n, b)| ratio(*n, *b)).collect();
    ratios
        .and_then(|r| stats::percentile_interval(&r, method.confidence))
        .ok_or(NoInterval::NegativeResample)
}

/// The verdict for `interval` at relative tolerance `tol`, and the reason in words.
///
/// - regression: the interval's low end is above 1 + tol (worse beyond the tolerance);
/// - improvement: its high end is below 1 / (1 + tol) (better beyond the tolerance);
/// - ok: it lies within [1 / (1 + tol), 1 + tol] (any change is within the tolerance: the
///   equivalence-test reading, Schuirmann 1987's two one-sided tests);
/// - inconclusive: it reaches past a bound without lying beyond it, or there is no interval.
///   Only "regression" fails `--fail-on-regression`; "inconclusive" says that more
///   repetitions are needed to tell.
///
/// The band is symmetric for ratios: at tolerance 1, twice as slow is the limit one way and
/// half as slow the other (1 - tol would be 0, and no improvement could ever be shown).
pub fn judge(
    interval: &Result<Interval, NoInterval>,
    tol: f64,
    method: &Method,
) -> (Verdict, String) {
    let iv = match interval {
        Ok(iv) => iv,
        Err(NoInterval::TooFewSamples { have, need }) => {
            return (
                Verdict::Inconclusive,
                format!(
                    "{have} sample{} on a side: no {}% interval (needs {need})",
                    if *have == 1 { "" } else { "s" },
                    percent(method.confidence)
                ),
            );
        }
        Err(NoInterval::NoRatio) => {
            return (
                Verdict::Inconclusive,
                "BASE median below 0: no ratio".into(),
            );
        }
        Err(NoInterval::NegativeResample) => {
            return (
                Verdict::Inconclusive,
                "BASE median below 0 in some resamples: no interval".into(),
            );
        }
    };
    let (low, high) = (1.0 / (1.0 + tol), 1.0 + tol);
    let band = format!("[{}, {}]", sig(low), tolerance_text(high));
    if iv.lo > high {
        (
            Verdict::Regression,
            format!("interval above {band}: worse beyond the tolerance"),
        )
    } else if iv.hi < low {
        (
            Verdict::Improvement,
            format!("interval below {band}: better beyond the tolerance"),
        )
    } else if iv.lo >= low && iv.hi <= high {
        (Verdict::Ok, format!("interval within {band}"))
    } else {
        (
            Verdict::Inconclusive,
            format!("interval reaches past {band}: more repetitions may decide"),
        )
    }
}

/// A row's verdict with the metric's floor applied, and the tolerance it was judged at.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    pub verdict: Verdict,
    pub reason: String,
    /// The relative tolerance the verdict used: `tol`, or wider where the floor is the larger
    /// share of BASE's median; infinite when the floor alone decided (see [`judge_row`]).
    pub allowed: f64,
    /// Whether the floor, not the tolerance, set `allowed`.
    pub by_floor: bool,
}

/// The verdict of one row: [`judge`] at the tolerance `tol`, widened to `floor / base_median`
/// where that is larger, so that no change of `floor` (in `unit`) or less can be a regression
/// or an improvement, whatever ratio two tiny values make. With BASE's median at 0 or below
/// there is no share of it to widen to: medians no more than `floor` apart are then `ok`
/// outright, and others are judged at `tol`.
pub fn judge_row(
    interval: &Result<Interval, NoInterval>,
    tol: f64,
    floor: f64,
    (base_median, new_median): (f64, f64),
    unit: &str,
    method: &Method,
) -> Judged {
    let apart = (new_median - base_median).abs();
    if base_median <= 0.0 && apart <= floor {
        return Judged {
            verdict: Verdict::Ok,
            reason: format!(
                "medians {} {unit} apart, within the metric's floor of {floor} {unit}",
                sig(apart)
            ),
            allowed: f64::INFINITY,
            by_floor: true,
        };
    }
    let widened = if base_median > 0.0 {
        floor / base_median
    } else {
        0.0
    };
    let (allowed, by_floor) = if widened > tol {
        (widened, true)
    } else {
        (tol, false)
    };
    let (verdict, mut reason) = judge(interval, allowed, method);
    if by_floor {
        reason.push_str(&format!(
            " (tolerance {} widened by the metric's floor: {floor} {unit} / BASE median)",
            tolerance_text(tol)
        ));
    }
    Judged {
        verdict,
        reason,
        allowed,
        by_floor,
    }
}

/// A tolerance as given (`0.1`, `1`, `0.25`), or with three significant figures when it was
/// computed (a floor's share of a median, `10.9`).
pub fn tolerance_text(tol: f64) -> String {
    let plain = tol.to_string();
    if plain.len() <= 6 { plain } else { sig(tol) }
}

/// `0.95` as "95", `0.999` as "99.9".
pub fn percent(p: f64) -> String {
    let s = format!("{:.4}", p * 100.0);
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A seed for one (group, metric): `SEED` mixed with a hash of `key`. FNV-1a written out
/// because std's `DefaultHasher` may change between Rust releases, and reruns must print the
/// same intervals.
pub fn seed_for(seed: u64, key: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^ seed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn method(resamples: u32, confidence: f64) -> Method {
        Method {
            resamples,
            confidence,
            seed: SEED,
            min_samples: stats::min_samples_for_median_interval(confidence).unwrap(),
        }
    }

    fn iv(lo: f64, hi: f64) -> Result<Interval, NoInterval> {
        Ok(Interval { lo, hi })
    }

    #[test]
    fn ratio_handles_zero_and_negative_medians_without_nan() {
        assert_eq!(ratio(3.0, 2.0), Some(1.5));
        assert_eq!(ratio(0.0, 0.0), Some(1.0));
        assert_eq!(ratio(2.0, 0.0), Some(f64::INFINITY));
        assert_eq!(ratio(-2.0, 0.0), Some(f64::NEG_INFINITY));
        assert_eq!(ratio(0.0, 4.0), Some(0.0));
        assert_eq!(ratio(-1.0, 4.0), Some(-0.25));
        assert_eq!(ratio(1.0, -4.0), None);
        assert_eq!(ratio(f64::NAN, 1.0), None);
    }

    #[test]
    fn verdict_rules_at_the_tolerance_bounds() {
        let m = method(100, 0.95);
        let v = |lo, hi| judge(&iv(lo, hi), 0.1, &m).0;
        assert_eq!(v(1.11, 1.3), Verdict::Regression);
        assert_eq!(v(1.1, 1.3), Verdict::Inconclusive, "low end on 1 + tol");
        assert_eq!(v(1.02, 1.3), Verdict::Inconclusive, "worse, not beyond tol");
        assert_eq!(v(0.5, 0.909), Verdict::Improvement);
        assert_eq!(
            v(0.5, 1.0 / 1.1),
            Verdict::Inconclusive,
            "high end on 1 / (1 + tol)"
        );
        assert_eq!(v(1.0 / 1.1, 1.1), Verdict::Ok, "bounds are within");
        assert_eq!(v(0.9, 1.1), Verdict::Inconclusive, "0.9 is below 1 / 1.1");
        assert_eq!(v(0.97, 1.04), Verdict::Ok);
        // At tolerance 1: twice as slow one way, half as slow the other.
        let w = |lo, hi| judge(&iv(lo, hi), 1.0, &m).0;
        assert_eq!(w(2.01, 3.0), Verdict::Regression);
        assert_eq!(w(0.2, 0.49), Verdict::Improvement);
        assert_eq!(w(0.5, 2.0), Verdict::Ok);
        assert_eq!(
            judge(&iv(2.5, 3.0), 1.0, &m).1,
            "interval above [0.500, 2]: worse beyond the tolerance"
        );
        assert_eq!(v(0.5, 1.5), Verdict::Inconclusive);
        assert_eq!(v(f64::INFINITY, f64::INFINITY), Verdict::Regression);
        assert_eq!(v(1.0, f64::INFINITY), Verdict::Inconclusive);
        assert_eq!(v(f64::NEG_INFINITY, 0.5), Verdict::Improvement);
        // Tolerance 0: only an exact interval [1, 1] is ok.
        assert_eq!(judge(&iv(1.0, 1.0), 0.0, &m).0, Verdict::Ok);
        assert_eq!(judge(&iv(1.0, 1.01), 0.0, &m).0, Verdict::Inconclusive);
        assert_eq!(judge(&iv(1.001, 1.01), 0.0, &m).0, Verdict::Regression);
    }

    #[test]
    fn the_floor_widens_the_tolerance_of_small_medians() {
        let m = method(100, 0.95);
        let row = |lo, hi, base, new| judge_row(&iv(lo, hi), 0.1, 5.0, (base, new), "ms", &m);
        // BASE 100 ms: 5 ms is 5%, below the tolerance: judged at 0.1.
        let j = row(1.2, 1.3, 100.0, 125.0);
        assert_eq!(
            (j.verdict, j.allowed, j.by_floor),
            (Verdict::Regression, 0.1, false)
        );
        // BASE 2 ms: 5 ms is 2.5 times the median, so 3x is still within it.
        let j = row(2.8, 3.2, 2.0, 6.0);
        assert_eq!((j.verdict, j.allowed, j.by_floor), (Verdict::Ok, 2.5, true));
        assert!(
            j.reason.contains("widened by the metric's floor: 5 ms"),
            "{j:?}"
        );
        let j = row(4.0, 4.5, 2.0, 8.5);
        assert_eq!(j.verdict, Verdict::Regression, "{j:?}");
        // BASE at 0 or below: medians within the floor are ok outright, others judged at tol.
        let none = Err(NoInterval::NoRatio);
        let j = judge_row(&none, 0.1, 5.0, (-3.0, 1.0), "KiB", &m);
        assert_eq!((j.verdict, j.by_floor), (Verdict::Ok, true), "{j:?}");
        assert!(j.allowed.is_infinite());
        assert_eq!(
            j.reason,
            "medians 4.00 KiB apart, within the metric's floor of 5 KiB"
        );
        let j = judge_row(&none, 0.1, 5.0, (-3.0, 9.0), "KiB", &m);
        assert_eq!((j.verdict, j.by_floor), (Verdict::Inconclusive, false));
        let j = judge_row(
            &iv(f64::INFINITY, f64::INFINITY),
            0.1,
            5.0,
            (0.0, 9.0),
            "ms",
            &m,
        );
        assert_eq!(j.verdict, Verdict::Regression);
        // A floor of 0 changes nothing.
        let j = judge_row(&iv(1.2, 1.3), 0.1, 0.0, (0.001, 0.00125), "ms", &m);
        assert_eq!((j.verdict, j.by_floor), (Verdict::Regression, false));
    }

    #[test]
    fn no_interval_is_inconclusive_and_says_why() {
        let m = method(100, 0.95);
        let (v, why) = judge(
            &Err(NoInterval::TooFewSamples { have: 1, need: 6 }),
            0.1,
            &m,
        );
        assert_eq!(v, Verdict::Inconclusive);
        assert_eq!(why, "1 sample on a side: no 95% interval (needs 6)");
        for e in [NoInterval::NoRatio, NoInterval::NegativeResample] {
            let (v, why) = judge(&Err(e), 0.1, &m);
            assert_eq!(v, Verdict::Inconclusive);
            assert!(why.contains("below 0"), "{why}");
        }
    }

    #[test]
    fn too_few_samples_give_no_interval() {
        let m = method(200, 0.95);
        let mut rng = fastrand::Rng::with_seed(1);
        let five = [1.0, 2.0, 3.0, 4.0, 5.0];
        let six = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        assert_eq!(
            ratio_interval(&five, &six, &m, &mut rng),
            Err(NoInterval::TooFewSamples { have: 5, need: 6 })
        );
        assert!(ratio_interval(&six, &six, &m, &mut rng).is_ok());
        assert_eq!(
            ratio_interval(&[], &six, &m, &mut rng),
            Err(NoInterval::TooFewSamples { have: 0, need: 6 })
        );
    }

    #[test]
    fn zeros_and_negatives_in_the_resamples() {
        let m = method(500, 0.95);
        let mut rng = fastrand::Rng::with_seed(3);
        let zeros = [0.0; 10];
        let iv = ratio_interval(&zeros, &zeros, &m, &mut rng).unwrap();
        assert_eq!((iv.lo, iv.hi), (1.0, 1.0), "both zero: no change");
        let iv = ratio_interval(&zeros, &[5.0; 10], &m, &mut rng).unwrap();
        assert_eq!(iv.lo, f64::INFINITY, "from nothing to something");
        assert_eq!(judge(&Ok(iv), 0.1, &m).0, Verdict::Regression);
        let noisy = [-3.0, -2.0, -1.0, 1.0, 2.0, 3.0, 4.0];
        assert_eq!(
            ratio_interval(&noisy, &noisy, &m, &mut rng),
            Err(NoInterval::NegativeResample)
        );
    }

    /// NEW drawn from the distribution of BASE scaled by a known factor: the interval of the
    /// ratio of medians must hold that factor in about the stated share of trials, and the
    /// verdicts must follow the factor.
    #[test]
    fn interval_covers_the_true_ratio_of_synthetic_data() {
        let m = method(1000, 0.90);
        let mut rng = fastrand::Rng::with_seed(11);
        // Log-normal-ish start-up times around 40 ms with a long right tail.
        let draw = |k: f64, n: usize, rng: &mut fastrand::Rng| -> Vec<f64> {
            (0..n)
                .map(|_| {
                    let z: f64 = (0..12).map(|_| rng.f64()).sum::<f64>() - 6.0;
                    k * 40.0 * (0.2 * z).exp()
                })
                .collect()
        };
        let trials = 200;
        let mut covered = 0;
        for _ in 0..trials {
            let base = draw(1.0, 30, &mut rng);
            let new = draw(1.3, 30, &mut rng);
            let iv = ratio_interval(&base, &new, &m, &mut rng).unwrap();
            if iv.lo <= 1.3 && 1.3 <= iv.hi {
                covered += 1;
            }
        }
        let rate = covered as f64 / trials as f64;
        assert!((0.82..=0.97).contains(&rate), "coverage {rate}");

        // Verdicts follow the true factor at 60 samples a side, 10% tolerance.
        let m = method(1000, 0.95);
        let mut verdict_for = |k: f64| {
            let base = draw(1.0, 60, &mut rng);
            let new = draw(k, 60, &mut rng);
            judge(&ratio_interval(&base, &new, &m, &mut rng), 0.1, &m).0
        };
        assert_eq!(verdict_for(1.6), Verdict::Regression);
        assert_eq!(verdict_for(0.5), Verdict::Improvement);
        assert_ne!(verdict_for(1.0), Verdict::Regression);
    }

    #[test]
    fn same_seed_same_interval() {
        let m = method(300, 0.95);
        let base: Vec<f64> = (0..20).map(|i| 10.0 + (i * 7 % 11) as f64).collect();
        let new: Vec<f64> = base.iter().map(|x| x * 1.1).collect();
        let key = seed_for(SEED, "oci-runc/none/1/startup_ms");
        let a = ratio_interval(&base, &new, &m, &mut fastrand::Rng::with_seed(key));
        let b = ratio_interval(&base, &new, &m, &mut fastrand::Rng::with_seed(key));
        assert_eq!(a, b);
        assert_ne!(key, seed_for(SEED, "oci-runc/none/1/teardown_ms"));
        // FNV-1a of the empty string is its offset basis.
        assert_eq!(seed_for(0, ""), 0xcbf2_9ce4_8422_2325);
    }

    #[test]
    fn percent_prints_without_trailing_zeros() {
        assert_eq!(percent(0.95), "95");
        assert_eq!(percent(0.999), "99.9");
        assert_eq!(percent(0.5), "50");
    }
}
