//! Ordinary least squares of a straight line, y = intercept + slope x, with the standard errors
//! of both coefficients, R², the residual standard error and the confidence band of the line;
//! and the cost line [`fit_cost`], whose intercept (a fixed cost) is clamped at 0.
//!
//! Written out rather than taken from a crate: the formulas are a dozen lines (Montgomery,
//! Peck & Vining, "Introduction to Linear Regression Analysis", ch. 2), and the statistics
//! crates that offer them (linregress, statrs) pull in a matrix library for this one use.

use serde::Serialize;

/// Why a line could not be fitted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FitError {
    /// Fewer than 2 points.
    #[error("{points} point(s): a line needs at least 2")]
    TooFewPoints { points: usize },
    /// Every point at the same x.
    #[error("every point has the same N ({x}): a line needs at least 2 different N")]
    OneX { x: f64 },
    /// A NaN or infinite coordinate.
    #[error("a point is not a finite number")]
    NotFinite,
}

/// A fitted line and how well it fits.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fit {
    pub intercept: f64,
    pub slope: f64,
    /// Standard errors of intercept and slope: `None` with fewer than 3 points (no degrees of
    /// freedom left to estimate the scatter).
    pub intercept_se: Option<f64>,
    pub slope_se: Option<f64>,
    /// 1 - SSR/SST; `None` when every y is the same (SST = 0).
    pub r_squared: Option<f64>,
    /// sqrt(SSR / (points - 2)), in y's unit; `None` with fewer than 3 points.
    pub residual_se: Option<f64>,
    pub points: usize,
    /// How many different x the points have: with fewer than 3, the straight line itself
    /// cannot be checked, whatever R² says.
    pub distinct_x: usize,
    /// Set when ordinary least squares gave an intercept below 0 and the line was refitted
    /// through 0 instead (see [`fit_cost`]): what it gave.
    pub clamped: Option<Clamped>,
    /// Mean of x and the sum of squared deviations of x: what the band needs (for a line
    /// through the origin, 0 and the sum of squares of x).
    #[serde(skip)]
    x_mean: f64,
    #[serde(skip)]
    sxx: f64,
    #[serde(skip)]
    through_origin: bool,
}

/// The intercept ordinary least squares gave before [`fit_cost`] clamped it at 0.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Clamped {
    pub intercept: f64,
    pub intercept_se: Option<f64>,
}

impl Fit {
    /// The fitted y at `x`.
    pub fn at(&self, x: f64) -> f64 {
        self.intercept + self.slope * x
    }

    /// Standard error of the fitted line's mean at `x`:
    /// s * sqrt(1/n + (x - mean x)² / Sxx), or s |x| / sqrt(sum x²) for a line through the
    /// origin. `None` without an error estimate.
    pub fn se_at(&self, x: f64) -> Option<f64> {
        let s = self.residual_se?;
        if self.through_origin {
            return Some(s * x.abs() / self.sxx.sqrt());
        }
        let n = self.points as f64;
        Some(s * (1.0 / n + (x - self.x_mean).powi(2) / self.sxx).sqrt())
    }
}

/// A cost line: [`fit`], unless that gives an intercept below 0. No host frees memory (or
/// CPU) when the first instance starts, so a negative fixed cost is an artefact: noise in the
/// small-N batches, or a cost per instance that grows with N over the measured range. The line
/// is then refitted through the origin, y = slope x, which is the least-squares line among
/// those with intercept >= 0 (the sum of squares is convex, so with its free minimum at a
/// negative intercept the constrained one lies on intercept = 0). With one coefficient left
/// the residual standard error has n - 1 degrees of freedom, the slope's standard error is
/// s / sqrt(sum x²), and the intercept has none. R² stays 1 - SSR/SST (about the mean of y),
/// so it is comparable with the free fit's and a little lower. `clamped` keeps what least
/// squares gave.
pub fn fit_cost(points: &[(f64, f64)]) -> Result<Fit, FitError> {
    let free = fit(points)?;
    // Rounding leaves an exact line through 0 at an intercept of about -1e-12 of its values:
    // that is 0, not a fixed cost to clamp.
    let scale = points.iter().map(|p| p.1.abs()).fold(0.0, f64::max);
    if free.intercept >= -1e-9 * scale {
        return Ok(free);
    }
    let n = points.len();
    let sxx0: f64 = points.iter().map(|p| p.0 * p.0).sum();
    let sxy0: f64 = points.iter().map(|p| p.0 * p.1).sum();
    let slope = sxy0 / sxx0;
    let ssr: f64 = points.iter().map(|p| (p.1 - slope * p.0).powi(2)).sum();
    let y_mean = points.iter().map(|p| p.1).sum::<f64>() / n as f64;
    let syy: f64 = points.iter().map(|p| (p.1 - y_mean).powi(2)).sum();
    let residual_se = Some((ssr / (n as f64 - 1.0)).sqrt());
    Ok(Fit {
        intercept: 0.0,
        slope,
        intercept_se: None,
        slope_se: residual_se.map(|s| s / sxx0.sqrt()),
        r_squared: (syy > 0.0).then(|| 1.0 - ssr / syy),
        residual_se,
        points: n,
        distinct_x: free.distinct_x,
        clamped: Some(Clamped {
            intercept: free.intercept,
            intercept_se: free.intercept_se,
        }),
        x_mean: 0.0,
        sxx: sxx0,
        through_origin: true,
    })
}

/// Fits y = intercept + slope x to `points` (x, y) by ordinary least squares.
pub fn fit(points: &[(f64, f64)]) -> Result<Fit, FitError> {
    if points.iter().any(|(x, y)| !x.is_finite() || !y.is_finite()) {
        return Err(FitError::NotFinite);
    }
    let n = points.len();
    if n < 2 {
        return Err(FitError::TooFewPoints { points: n });
    }
    let nf = n as f64;
    let x_mean = points.iter().map(|p| p.0).sum::<f64>() / nf;
    let y_mean = points.iter().map(|p| p.1).sum::<f64>() / nf;
    let sxx: f64 = points.iter().map(|p| (p.0 - x_mean).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - x_mean) * (p.1 - y_mean)).sum();
    let syy: f64 = points.iter().map(|p| (p.1 - y_mean).powi(2)).sum();
    let mut xs: Vec<f64> = points.iter().map(|p| p.0).collect();
    xs.sort_by(f64::total_cmp);
    xs.dedup();
    if xs.len() < 2 {
        return Err(FitError::OneX { x: xs[0] });
    }
    let slope = sxy / sxx;
    let intercept = y_mean - slope * x_mean;
    let ssr: f64 = points
        .iter()
        .map(|p| (p.1 - intercept - slope * p.0).powi(2))
        .sum();
    let residual_se = (n > 2).then(|| (ssr / (nf - 2.0)).sqrt());
    Ok(Fit {
        intercept,
        slope,
        intercept_se: residual_se.map(|s| s * (1.0 / nf + x_mean * x_mean / sxx).sqrt()),
        slope_se: residual_se.map(|s| s / sxx.sqrt()),
        r_squared: (syy > 0.0).then(|| 1.0 - ssr / syy),
        residual_se,
        points: n,
        distinct_x: xs.len(),
        clamped: None,
        x_mean,
        sxx,
        through_origin: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exact_line_is_recovered_with_zero_error() {
        let pts: Vec<(f64, f64)> = [1.0, 10.0, 25.0, 50.0, 100.0]
            .iter()
            .map(|&x| (x, 300.0 + 65.5 * x))
            .collect();
        let f = fit(&pts).unwrap();
        assert!((f.slope - 65.5).abs() < 1e-9, "{f:?}");
        assert!((f.intercept - 300.0).abs() < 1e-9, "{f:?}");
        assert!(f.slope_se.unwrap() < 1e-9 && f.residual_se.unwrap() < 1e-9);
        assert!((f.r_squared.unwrap() - 1.0).abs() < 1e-12);
        assert_eq!((f.points, f.distinct_x), (5, 5));
        assert!((f.at(200.0) - 13_400.0).abs() < 1e-6);
    }

    #[test]
    fn standard_errors_match_a_hand_computed_example() {
        // x = 1..5, y = 2, 4, 5, 4, 5: slope 0.6, intercept 2.2, SSR 2.4, s² = 0.8,
        // Sxx = 10, so SE(slope) = sqrt(0.08), SE(intercept) = sqrt(0.8 (1/5 + 9/10)).
        let pts = [(1.0, 2.0), (2.0, 4.0), (3.0, 5.0), (4.0, 4.0), (5.0, 5.0)];
        let f = fit(&pts).unwrap();
        assert!((f.slope - 0.6).abs() < 1e-12);
        assert!((f.intercept - 2.2).abs() < 1e-12);
        assert!((f.slope_se.unwrap() - 0.08f64.sqrt()).abs() < 1e-12);
        assert!((f.intercept_se.unwrap() - (0.8f64 * 1.1).sqrt()).abs() < 1e-12);
        assert!((f.residual_se.unwrap() - 0.8f64.sqrt()).abs() < 1e-12);
        // SST = 6: R² = 1 - 2.4/6.
        assert!((f.r_squared.unwrap() - 0.6).abs() < 1e-12);
        // The band is narrowest at the mean of x.
        assert!((f.se_at(3.0).unwrap() - (0.8f64 / 5.0).sqrt()).abs() < 1e-12);
        assert!(f.se_at(10.0).unwrap() > f.se_at(3.0).unwrap());
    }

    #[test]
    fn on_noisy_data_the_slope_lies_within_a_few_standard_errors() {
        // Deterministic noise of ±500 around 1000 + 64 x: the fit must not be exact, and the
        // true slope must be within 3 SE of the estimate.
        let mut rng = fastrand::Rng::with_seed(7);
        let pts: Vec<(f64, f64)> = (0..40)
            .map(|i| {
                let x = f64::from(1 + (i % 8) * 10);
                (x, 1000.0 + 64.0 * x + (rng.f64() - 0.5) * 1000.0)
            })
            .collect();
        let f = fit(&pts).unwrap();
        let se = f.slope_se.unwrap();
        assert!(se > 0.0 && se < 5.0, "{f:?}");
        assert!((f.slope - 64.0).abs() < 3.0 * se, "{f:?}");
        assert!(f.r_squared.unwrap() < 1.0 && f.r_squared.unwrap() > 0.9);
        // Uniform noise of width 1000 has sd 1000/sqrt(12) ≈ 289.
        assert!((f.residual_se.unwrap() - 289.0).abs() < 80.0, "{f:?}");
    }

    #[test]
    fn two_points_give_a_line_without_an_error_estimate() {
        let f = fit(&[(1.0, 10.0), (3.0, 14.0)]).unwrap();
        assert_eq!((f.slope, f.intercept), (2.0, 8.0));
        assert_eq!(
            (f.slope_se, f.residual_se, f.se_at(2.0)),
            (None, None, None)
        );
    }

    #[test]
    fn a_negative_fixed_cost_is_clamped_to_the_line_through_zero() {
        // y = 10 x - 30 plus a wobble: least squares finds an intercept near -30.
        let pts = [(1.0, -19.0), (10.0, 71.0), (50.0, 469.0), (100.0, 971.0)];
        let free = fit(&pts).unwrap();
        assert!(free.intercept < -20.0, "{free:?}");
        let f = fit_cost(&pts).unwrap();
        let c = f.clamped.as_ref().unwrap();
        assert_eq!(
            (c.intercept, c.intercept_se),
            (free.intercept, free.intercept_se)
        );
        assert_eq!((f.intercept, f.intercept_se), (0.0, None));
        // The least-squares slope through the origin: sum xy / sum x².
        let (sxy, sxx) = pts
            .iter()
            .fold((0.0, 0.0), |(a, b), (x, y)| (a + x * y, b + x * x));
        assert!((f.slope - sxy / sxx).abs() < 1e-12, "{f:?}");
        // No other line with intercept >= 0 fits better: nudging either coefficient costs.
        let ssr =
            |a: f64, b: f64| -> f64 { pts.iter().map(|(x, y)| (y - a - b * x).powi(2)).sum() };
        let best = ssr(0.0, f.slope);
        for (a, b) in [
            (0.0, f.slope * 1.001),
            (0.0, f.slope * 0.999),
            (1.0, f.slope),
            (5.0, f.slope - 0.05),
        ] {
            assert!(ssr(a, b) > best, "({a}, {b})");
        }
        // Its residual SE has n - 1 degrees of freedom, the band is 0 at N = 0.
        assert!((f.residual_se.unwrap() - (best / 3.0).sqrt()).abs() < 1e-9);
        assert_eq!(f.se_at(0.0), Some(0.0));
        assert!(
            (f.se_at(100.0).unwrap() - f.residual_se.unwrap() * 100.0 / sxx.sqrt()).abs() < 1e-9
        );
        // A line with an intercept at or above 0 is left as least squares gave it.
        let up = fit_cost(&[(1.0, 40.0), (10.0, 130.0), (50.0, 530.0)]).unwrap();
        assert!(
            up.clamped.is_none() && (up.intercept - 30.0).abs() < 1e-9,
            "{up:?}"
        );
    }

    #[test]
    fn fewer_than_two_points_or_one_n_is_an_error() {
        assert_eq!(fit(&[]), Err(FitError::TooFewPoints { points: 0 }));
        assert_eq!(
            fit(&[(1.0, 2.0)]),
            Err(FitError::TooFewPoints { points: 1 })
        );
        assert_eq!(
            fit(&[(4.0, 2.0), (4.0, 3.0), (4.0, 5.0)]),
            Err(FitError::OneX { x: 4.0 })
        );
        assert_eq!(
            fit(&[(1.0, f64::NAN), (2.0, 1.0)]),
            Err(FitError::NotFinite)
        );
    }
}
