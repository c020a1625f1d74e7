//! Descriptive statistics over the samples of one group: pure functions on `f64` slices, and
//! the bootstrap that `isobench compare` puts confidence intervals on medians with.
//!
//! NaN values are ignored everywhere: they are filtered out before anything is computed, so a
//! slice holding only NaNs behaves like an empty one. A measurement that produced NaN carries no
//! information about the others, and letting it propagate would blank a whole summary row.
//! Infinities are kept (they sort to the ends and propagate through the mean), because they do
//! not occur in honest measurements and hiding them would hide a bug.

/// The non-NaN values of `xs`, in their original order.
fn non_nan(xs: &[f64]) -> Vec<f64> {
    xs.iter().copied().filter(|x| !x.is_nan()).collect()
}

/// The non-NaN values of `xs`, sorted ascending. `total_cmp` is a total order on the values
/// that remain (no NaN), so the sort is well defined.
fn sorted(xs: &[f64]) -> Vec<f64> {
    let mut v = non_nan(xs);
    v.sort_by(f64::total_cmp);
    v
}

/// Arithmetic mean of the non-NaN values; `None` when there are none.
pub fn mean(xs: &[f64]) -> Option<f64> {
    mean_of(&non_nan(xs))
}

fn mean_of(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    Some(v.iter().sum::<f64>() / v.len() as f64)
}

/// Sample standard deviation (with Bessel's correction, dividing by n - 1) of the non-NaN
/// values; `None` for fewer than two values, where it is undefined.
///
/// Computed in two passes (mean first, then the sum of squared deviations from it), which is
/// numerically stable, unlike the one-pass `sum(x^2) - n*mean^2` textbook formula that cancels
/// catastrophically when the spread is small next to the mean (Chan, Golub & LeVeque,
/// "Algorithms for computing the sample variance: analysis and recommendations",
/// The American Statistician 37(3), 1983). Start-up times are exactly that case: large means,
/// small spreads.
pub fn sd(xs: &[f64]) -> Option<f64> {
    sd_of(&non_nan(xs))
}

fn sd_of(v: &[f64]) -> Option<f64> {
    if v.len() < 2 {
        return None;
    }
    let m = mean_of(v)?;
    let ss: f64 = v.iter().map(|x| (x - m) * (x - m)).sum();
    Some((ss / (v.len() - 1) as f64).sqrt())
}

/// Percentile by linear interpolation between closest ranks (Hyndman & Fan 1996 type 7, the
/// default of R and NumPy). `p` in [0, 100]. Input need not be sorted.
///
/// Returns `None` for an empty input (after dropping NaNs) and for `p` outside [0, 100] or NaN.
///
/// Reference: R. J. Hyndman and Y. Fan, "Sample quantiles in statistical packages",
/// The American Statistician 50(4):361-365, 1996, definition 7; it is `quantile(type = 7)` in
/// R and `numpy.percentile(method="linear")`.
pub fn percentile(xs: &[f64], p: f64) -> Option<f64> {
    percentile_sorted(&sorted(xs), p)
}

/// Type 7 on an already sorted, NaN-free slice: with h = (n - 1) * p / 100, the value is
/// x[floor(h)] + (h - floor(h)) * (x[floor(h) + 1] - x[floor(h)]), using 0-based indices.
fn percentile_sorted(v: &[f64], p: f64) -> Option<f64> {
    if v.is_empty() || !(0.0..=100.0).contains(&p) {
        return None;
    }
    let h = (v.len() - 1) as f64 * p / 100.0;
    // h is in [0, n - 1], so the truncating casts stay in bounds.
    let lo = h.floor() as usize;
    let hi = h.ceil() as usize;
    let frac = h - lo as f64;
    if lo == hi || v[lo] == v[hi] {
        // Exact rank, or equal neighbours: avoids computing inf - inf = NaN when the values
        // there are infinite.
        return Some(v[lo]);
    }
    Some(v[lo] + frac * (v[hi] - v[lo]))
}

/// Smallest non-NaN value; `None` when there is none.
pub fn min(xs: &[f64]) -> Option<f64> {
    xs.iter().copied().filter(|x| !x.is_nan()).reduce(f64::min)
}

/// Largest non-NaN value; `None` when there is none.
pub fn max(xs: &[f64]) -> Option<f64> {
    xs.iter().copied().filter(|x| !x.is_nan()).reduce(f64::max)
}

/// All of the above at once on one sorted copy (used for summaries; avoids re-sorting per
/// percentile). Same definitions as the individual functions; `n` counts non-NaN values only.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Describe {
    pub n: usize,
    pub mean: f64,
    pub sd: Option<f64>,
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

/// Describes the non-NaN values of `xs`; `None` when there are none.
pub fn describe(xs: &[f64]) -> Option<Describe> {
    let v = sorted(xs);
    let (&min, &max) = (v.first()?, v.last()?);
    Some(Describe {
        n: v.len(),
        mean: mean_of(&v)?,
        sd: sd_of(&v),
        min,
        p50: percentile_sorted(&v, 50.0)?,
        p90: percentile_sorted(&v, 90.0)?,
        p99: percentile_sorted(&v, 99.0)?,
        max,
    })
}

/// Median: the type 7 50th percentile (the mean of the two middle values for an even count),
/// the same value `percentile(xs, 50.0)` gives. `None` when there is no non-NaN value.
pub fn median(xs: &[f64]) -> Option<f64> {
    let mut v = non_nan(xs);
    median_in_place(&mut v)
}

/// The type 7 median of a NaN-free slice, reordering it. Selection (`select_nth_unstable`) is
/// O(n) against the O(n log n) of a sort, which matters when a bootstrap takes thousands of
/// medians of a thousand samples each. Bit-identical to `percentile_sorted(sorted, 50.0)`: same
/// neighbours, same interpolation expression.
fn median_in_place(v: &mut [f64]) -> Option<f64> {
    let n = v.len();
    if n == 0 {
        return None;
    }
    let hi = n / 2;
    let (left, &mut at_hi, _) = v.select_nth_unstable_by(hi, f64::total_cmp);
    if n % 2 == 1 {
        return Some(at_hi);
    }
    // Even count: the lower middle value is the largest of the left part.
    let at_lo = left.iter().copied().reduce(f64::max)?;
    if at_lo == at_hi {
        return Some(at_lo);
    }
    Some(at_lo + 0.5 * (at_hi - at_lo))
}

/// Medians of `resamples` bootstrap resamples of the non-NaN values of `xs`: each resample
/// draws as many values as there are, uniformly with replacement (Efron & Tibshirani,
/// "An Introduction to the Bootstrap", Chapman & Hall 1993, ch. 6). Empty when `xs` has no
/// non-NaN value. Deterministic for a given state of `rng`.
pub fn bootstrap_medians(xs: &[f64], resamples: u32, rng: &mut fastrand::Rng) -> Vec<f64> {
    let v = non_nan(xs);
    if v.is_empty() {
        return Vec::new();
    }
    let mut draw = vec![0.0; v.len()];
    (0..resamples)
        .filter_map(|_| {
            for d in draw.iter_mut() {
                *d = v[rng.usize(..v.len())];
            }
            median_in_place(&mut draw)
        })
        .collect()
}

/// A two-sided confidence interval `[lo, hi]` (`lo <= hi`); the bounds may be infinite.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub lo: f64,
    pub hi: f64,
}

/// The bootstrap percentile interval at `confidence` from the `replicates` of a statistic
/// (Efron & Tibshirani 1993, ch. 13.3): with B replicates and alpha = 1 - confidence, the
/// k-th smallest and the k-th largest replicate, k = floor((B + 1) * alpha / 2) (at least 1):
/// their rule for a B * alpha that is not a whole number. Order statistics, not interpolated
/// percentiles, so infinite replicates (a ratio over a zero median) stay meaningful bounds.
///
/// `None` when there is no replicate, a replicate is NaN (an undefined statistic has no
/// interval), or `confidence` is not strictly between 0 and 1.
pub fn percentile_interval(replicates: &[f64], confidence: f64) -> Option<Interval> {
    if replicates.is_empty()
        || replicates.iter().any(|x| x.is_nan())
        || !(confidence > 0.0 && confidence < 1.0)
    {
        return None;
    }
    let mut v = replicates.to_vec();
    v.sort_by(f64::total_cmp);
    let b = v.len();
    let alpha = 1.0 - confidence;
    // (B + 1) * alpha / 2 < (B + 1) / 2, so k <= B + 1 - k and the bounds are ordered.
    let k = (((b + 1) as f64 * alpha / 2.0).floor() as usize).clamp(1, b);
    Some(Interval {
        lo: v[k - 1],
        hi: v[b - k],
    })
}

/// The fewest samples for which a confidence interval for a median at level `confidence` can
/// exist without assuming a distribution: the widest interval there is, [min, max] of n
/// samples, covers the median with probability 1 - 2 * (1/2)^n (each sample lies on either
/// side of the median with probability 1/2; the interval misses only when all n land on one
/// side: W. J. Conover, "Practical Nonparametric Statistics", 3rd ed., Wiley 1999, ch. 3,
/// the confidence interval for a quantile).
/// So 6 at 95%, 8 at 99%. Below that, a bootstrap interval of the median claims a confidence
/// no method can deliver; `compare` then gives no interval. `None` for `confidence` outside
/// (0, 1).
pub fn min_samples_for_median_interval(confidence: f64) -> Option<usize> {
    if !(confidence > 0.0 && confidence < 1.0) {
        return None;
    }
    // 1 - 2 * 0.5^n rounds to 1.0 in f64 from n = 54 on, which meets any confidence below 1:
    // the search ends there at the latest.
    (1..=64usize).find(|&n| 1.0 - 2.0 * 0.5f64.powi(n as i32) >= confidence)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn empty_inputs_give_none() {
        assert_eq!(mean(&[]), None);
        assert_eq!(sd(&[]), None);
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(min(&[]), None);
        assert_eq!(max(&[]), None);
        assert_eq!(describe(&[]), None);
    }

    #[test]
    fn mean_by_hand() {
        assert_eq!(mean(&[1.0, 2.0, 3.0, 4.0]), Some(2.5));
        assert_eq!(mean(&[7.0]), Some(7.0));
    }

    #[test]
    fn sd_by_hand() {
        // Mean 5, squared deviations sum to 32, 32 / 7 = 4.571428..., sqrt = 2.13808993...
        let s = sd(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]).unwrap();
        assert!(close(s, (32.0f64 / 7.0).sqrt()), "{s}");
        assert!((s - 2.138_089_935).abs() < 1e-9, "{s}");
        assert_eq!(sd(&[3.0]), None);
        assert_eq!(sd(&[3.0, 3.0]), Some(0.0));
    }

    #[test]
    fn sd_is_stable_with_a_large_offset() {
        // Same spread as [1, 2, 3] (sd 1) shifted by 1e9: the one-pass formula loses it.
        let s = sd(&[1e9 + 1.0, 1e9 + 2.0, 1e9 + 3.0]).unwrap();
        assert!(close(s, 1.0), "{s}");
    }

    #[test]
    fn percentile_type7_by_hand() {
        let xs = [4.0, 1.0, 3.0, 2.0]; // unsorted on purpose
        // h = 3 * 0.5 = 1.5 -> 2 + 0.5 * (3 - 2)
        assert_eq!(percentile(&xs, 50.0), Some(2.5));
        // h = 3 * 0.9 = 2.7 -> 3 + 0.7 * (4 - 3)
        assert!(close(percentile(&xs, 90.0).unwrap(), 3.7));
        // h = 3 * 0.99 = 2.97
        assert!(close(percentile(&xs, 99.0).unwrap(), 3.97));
        assert_eq!(percentile(&xs, 0.0), Some(1.0));
        assert_eq!(percentile(&xs, 100.0), Some(4.0));
        assert_eq!(percentile(&[5.0], 90.0), Some(5.0));
        // numpy.percentile([10, 20, 30, 40, 50], 25) == 20.0
        assert_eq!(
            percentile(&[10.0, 20.0, 30.0, 40.0, 50.0], 25.0),
            Some(20.0)
        );
    }

    #[test]
    fn percentile_rejects_p_out_of_range() {
        assert_eq!(percentile(&[1.0, 2.0], -1.0), None);
        assert_eq!(percentile(&[1.0, 2.0], 100.5), None);
        assert_eq!(percentile(&[1.0, 2.0], f64::NAN), None);
    }

    #[test]
    fn nan_is_ignored() {
        let xs = [f64::NAN, 1.0, 2.0, f64::NAN, 3.0, 4.0];
        assert_eq!(mean(&xs), Some(2.5));
        assert_eq!(percentile(&xs, 50.0), Some(2.5));
        assert_eq!(min(&xs), Some(1.0));
        assert_eq!(max(&xs), Some(4.0));
        assert_eq!(sd(&[f64::NAN, 1.0]), None);
        assert_eq!(mean(&[f64::NAN]), None);
        assert_eq!(describe(&[f64::NAN, f64::NAN]), None);
        assert_eq!(describe(&xs).map(|d| d.n), Some(4));
    }

    #[test]
    fn describe_matches_individual_functions() {
        let xs = [9.0, 2.0, 5.0, 4.0, 4.0, 7.0, 4.0, 5.0];
        let d = describe(&xs).unwrap();
        assert_eq!(d.n, 8);
        assert_eq!(d.mean, mean(&xs).unwrap());
        assert_eq!(d.sd, sd(&xs));
        assert_eq!(d.min, 2.0);
        assert_eq!(d.max, 9.0);
        assert_eq!(d.p50, percentile(&xs, 50.0).unwrap());
        assert_eq!(d.p90, percentile(&xs, 90.0).unwrap());
        assert_eq!(d.p99, percentile(&xs, 99.0).unwrap());
        assert_eq!(d.p50, 4.5);
    }

    #[test]
    fn describe_single_value() {
        let d = describe(&[3.5]).unwrap();
        assert_eq!((d.n, d.mean, d.sd, d.min, d.max), (1, 3.5, None, 3.5, 3.5));
        assert_eq!((d.p50, d.p90, d.p99), (3.5, 3.5, 3.5));
    }

    #[test]
    fn percentile_between_equal_infinities_is_infinite() {
        let xs = [1.0, f64::INFINITY, f64::INFINITY, f64::INFINITY];
        assert_eq!(percentile(&xs, 80.0), Some(f64::INFINITY));
        assert_eq!(percentile(&xs, 50.0), Some(f64::INFINITY));
    }

    #[test]
    fn median_matches_the_type7_percentile() {
        let mut rng = fastrand::Rng::with_seed(7);
        for n in 1..40 {
            let xs: Vec<f64> = (0..n).map(|_| (rng.f64() * 100.0).round()).collect();
            assert_eq!(median(&xs), percentile(&xs, 50.0), "{xs:?}");
        }
        assert_eq!(median(&[3.0, 1.0, 2.0, 10.0]), Some(2.5));
        assert_eq!(median(&[f64::NAN, 4.0]), Some(4.0));
        assert_eq!(median(&[0.0, f64::INFINITY]), Some(f64::INFINITY));
        assert_eq!(median(&[]), None);
    }

    #[test]
    fn bootstrap_is_deterministic_for_a_seed() {
        let xs: Vec<f64> = (0..25).map(|i| (i * i % 17) as f64).collect();
        let a = bootstrap_medians(&xs, 500, &mut fastrand::Rng::with_seed(42));
        let b = bootstrap_medians(&xs, 500, &mut fastrand::Rng::with_seed(42));
        let c = bootstrap_medians(&xs, 500, &mut fastrand::Rng::with_seed(43));
        assert_eq!(a.len(), 500);
        assert_eq!(a, b);
        assert_ne!(a, c, "another seed draws other resamples");
        // Every replicate median lies within the data's range.
        assert!(a.iter().all(|m| (0.0..=16.0).contains(m)), "{a:?}");
    }

    #[test]
    fn bootstrap_of_a_constant_or_single_value_is_that_value() {
        let mut rng = fastrand::Rng::with_seed(1);
        let one = bootstrap_medians(&[5.0], 100, &mut rng);
        assert!(one.len() == 100 && one.iter().all(|&m| m == 5.0));
        let same = bootstrap_medians(&[2.0; 9], 100, &mut rng);
        let iv = percentile_interval(&same, 0.95).unwrap();
        assert_eq!((iv.lo, iv.hi), (2.0, 2.0));
        assert!(bootstrap_medians(&[], 100, &mut rng).is_empty());
        assert!(bootstrap_medians(&[f64::NAN], 100, &mut rng).is_empty());
    }

    #[test]
    fn percentile_interval_picks_the_order_statistics() {
        // 1..=1999: B = 1999, alpha = 0.05 -> k = floor(2000 * 0.025) = 50: the 50th smallest
        // and the 50th largest.
        let reps: Vec<f64> = (1..=1999).rev().map(f64::from).collect();
        let iv = percentile_interval(&reps, 0.95).unwrap();
        assert_eq!((iv.lo, iv.hi), (50.0, 1950.0));
        // Few replicates: k is at least 1, so the interval is [min, max].
        let iv = percentile_interval(&[3.0, 1.0, 2.0], 0.95).unwrap();
        assert_eq!((iv.lo, iv.hi), (1.0, 3.0));
        // Infinite replicates are kept as bounds, never NaN.
        let mut with_inf = vec![f64::INFINITY; 100];
        with_inf[0] = 1.0;
        let iv = percentile_interval(&with_inf, 0.9).unwrap();
        assert_eq!((iv.lo, iv.hi), (f64::INFINITY, f64::INFINITY));
        assert_eq!(percentile_interval(&[], 0.95), None);
        assert_eq!(percentile_interval(&[1.0, f64::NAN], 0.95), None);
        assert_eq!(percentile_interval(&[1.0], 1.0), None);
        assert_eq!(percentile_interval(&[1.0], 0.0), None);
        assert_eq!(percentile_interval(&[1.0], f64::NAN), None);
    }

    #[test]
    fn min_samples_for_a_median_interval() {
        // 1 - 2 * 0.5^5 = 0.9375 < 0.95 <= 1 - 2 * 0.5^6 = 0.96875.
        assert_eq!(min_samples_for_median_interval(0.95), Some(6));
        // 1 - 2 * 0.5^7 = 0.984 < 0.99 <= 0.992.
        assert_eq!(min_samples_for_median_interval(0.99), Some(8));
        assert_eq!(min_samples_for_median_interval(0.5), Some(2));
        // One sample never brackets a median: [x, x] covers it with probability 0.
        assert_eq!(min_samples_for_median_interval(0.1), Some(2));
        assert_eq!(min_samples_for_median_interval(1.0), None);
        assert_eq!(min_samples_for_median_interval(-0.1), None);
    }

    /// The percentile interval of a median has roughly its nominal coverage: over many
    /// synthetic samples from a known distribution, the 90% interval of the median holds the
    /// true median in roughly 90% of them. Exponential(1), median ln 2: skewed like start-up
    /// times. Bootstrap intervals of a median from 40 samples are known to run slightly
    /// conservative or liberal by a few points, hence the band.
    #[test]
    fn bootstrap_interval_covers_the_true_median_at_about_its_level() {
        let mut rng = fastrand::Rng::with_seed(2024);
        let truth = std::f64::consts::LN_2;
        let trials = 300;
        let mut covered = 0;
        for _ in 0..trials {
            let xs: Vec<f64> = (0..40).map(|_| -(1.0 - rng.f64()).ln()).collect();
            let reps = bootstrap_medians(&xs, 1000, &mut rng);
            let iv = percentile_interval(&reps, 0.90).unwrap();
            if iv.lo <= truth && truth <= iv.hi {
                covered += 1;
            }
        }
        let rate = covered as f64 / trials as f64;
        assert!((0.82..=0.97).contains(&rate), "coverage {rate}");
    }
}
