//! Axes of the report's plots: linear or log10, with tick positions chosen here.
//!
//! Every panel draws on plain f64 coordinates; a log axis holds log10 of the values. An
//! [`Axis`] is itself the plotters coordinate, with the ticks chosen here: one coordinate type
//! for all four linear/log combinations, and log axes with ticks at whole decades (plotters'
//! own log coordinate places none on a range narrower than a decade, say 3 800 to 8 000 ms).

use std::ops::Range;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};

/// One axis: its scale and the range it shows, in plot coordinates.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    pub log: bool,
    /// Shown range (plot coordinates: log10 of the value on a log axis), padded.
    pub lo: f64,
    pub hi: f64,
    /// Labelled ticks, plot coordinates.
    pub ticks: Vec<f64>,
    /// Unlabelled grid lines, plot coordinates.
    pub minor: Vec<f64>,
}

/// Share of the range added on each side, so markers at the ends are not cut by the frame.
const PAD: f64 = 0.04;

impl Axis {
    /// An axis showing every value of `values` (finite ones; on a log axis, positive ones).
    /// `zero`: a linear axis starts at 0 at the latest. `None` when no value can be shown.
    pub fn fit(values: impl IntoIterator<Item = f64>, log: bool, zero: bool) -> Option<Axis> {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in values {
            if v.is_finite() && (!log || v > 0.0) {
                lo = lo.min(v);
                hi = hi.max(v);
            }
        }
        if lo > hi {
            return None;
        }
        Some(if log {
            Axis::log(lo, hi)
        } else {
            Axis::linear(if zero { lo.min(0.0) } else { lo }, hi)
        })
    }

    fn log(lo: f64, hi: f64) -> Axis {
        let a = lo.log10().floor();
        let mut b = hi.log10().ceil();
        if b <= a {
            b = a + 1.0;
        }
        let decades: Vec<f64> = (a as i32..=b as i32).map(f64::from).collect();
        // 2x and 5x grid lines help reading values only while decades are wide enough.
        let minor = if decades.len() <= 6 {
            decades[..decades.len() - 1]
                .iter()
                .flat_map(|d| [d + 2f64.log10(), d + 5f64.log10()])
                .collect()
        } else {
            Vec::new()
        };
        let pad = (b - a) * PAD;
        Axis {
            log: true,
            lo: a - pad,
            hi: b + pad,
            ticks: decades,
            minor,
        }
    }

    fn linear(lo: f64, hi: f64) -> Axis {
        let span = if hi > lo { hi - lo } else { lo.abs().max(1.0) };
        let step = nice_step(span / 5.0);
        let a = (lo / step).floor() * step;
        let mut b = (hi / step).ceil() * step;
        if b <= a {
            b = a + step;
        }
        let count = ((b - a) / step).round() as i64;
        let ticks: Vec<f64> = (0..=count).map(|i| a + i as f64 * step).collect();
        let minor = ticks[..ticks.len() - 1]
            .iter()
            .map(|t| t + step / 2.0)
            .collect();
        let pad = (b - a) * PAD;
        Axis {
            log: false,
            lo: a - pad,
            hi: b + pad,
            ticks,
            minor,
        }
    }

    /// A value in plot coordinates; `None` where this axis cannot show it.
    pub fn to_plot(&self, v: f64) -> Option<f64> {
        match (self.log, v.is_finite()) {
            (_, false) => None,
            (true, _) if v <= 0.0 => None,
            (true, _) => Some(v.log10()),
            (false, _) => Some(v),
        }
    }

    /// The label of a tick at plot coordinate `p`.
    pub fn label(&self, p: f64) -> String {
        if self.log {
            decade_label(p.round() as i32)
        } else {
            let step = self.ticks.get(1).map_or(1.0, |b| b - self.ticks[0]);
            let decimals = (-step.log10().floor()).max(0.0) as usize;
            let s = format!("{p:.decimals$}");
            if s.starts_with("-0") && s.trim_start_matches(['-', '0', '.']).is_empty() {
                s[1..].to_string()
            } else {
                s
            }
        }
    }
}

impl Ranged for Axis {
    // Labels come from `Axis::label` through the mesh's label formatters.
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let share = (v - self.lo) / (self.hi - self.lo);
        let len = f64::from(limit.1 - limit.0);
        limit.0 + (len * share).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            self.minor.clone()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.lo..self.hi
    }
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    let e = raw.log10().floor();
    let base = 10f64.powf(e);
    let f = raw / base;
    let m = if f <= 1.0 {
        1.0
    } else if f <= 2.0 {
        2.0
    } else if f <= 5.0 {
        5.0
    } else {
        10.0
    };
    m * base
}

/// 10^e as people write it: 0.01, 1, 100, 10k, 1M; 1e-5 below a thousandth.
fn decade_label(e: i32) -> String {
    match e {
        ..=-4 => format!("1e{e}"),
        -3 => "0.001".into(),
        -2 => "0.01".into(),
        -1 => "0.1".into(),
        0..=2 => format!("{}", 10i64.pow(e as u32)),
        3..=5 => format!("{}k", 10i64.pow(e as u32 - 3)),
        6..=8 => format!("{}M", 10i64.pow(e as u32 - 6)),
        _ => format!("1e{e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_axes_span_whole_decades_with_labels() {
        let a = Axis::fit([3800.0, 8000.0], true, false).unwrap();
        assert_eq!(a.ticks, vec![3.0, 4.0]);
        assert!(a.lo < 3.0 && a.hi > 4.0);
        assert_eq!(a.label(3.0), "1k");
        let b = Axis::fit([0.0, -5.0, 2.0, 1500.0], true, false).unwrap();
        assert_eq!(
            b.ticks,
            vec![0.0, 1.0, 2.0, 3.0, 4.0],
            "0 and -5 cannot be shown"
        );
        assert_eq!(b.minor.len(), 8);
        assert_eq!(b.to_plot(-5.0), None);
        assert_eq!(b.label(0.0), "1");
        assert_eq!(b.label(-2.0), "0.01");
        assert_eq!(b.label(6.0), "1M");
        assert!(Axis::fit([0.0, -1.0, f64::NAN], true, false).is_none());
    }

    #[test]
    fn linear_axes_take_nice_steps_from_zero() {
        let a = Axis::fit([3.0, 13.7], false, true).unwrap();
        assert_eq!(a.ticks, vec![0.0, 5.0, 10.0, 15.0]);
        assert_eq!(a.label(5.0), "5");
        let f = Axis::fit([0.0, 1.0], false, true).unwrap();
        assert_eq!(f.ticks.len(), 6);
        assert_eq!(f.label(f.ticks[1]), "0.2");
        let flat = Axis::fit([0.0, 0.0], false, true).unwrap();
        assert!(flat.ticks.len() >= 2 && flat.hi > flat.lo, "{flat:?}");
    }
}
