//! Descriptive statistics over the samples of one group: pure functions on `f64` slices.
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
    if lo == hi {
        // Exact rank: avoids computing inf - inf = NaN when the values there are infinite.
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
}
