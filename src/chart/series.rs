//! Series of the report's plots: which (run, backend) pairs exist, their names and looks, and
//! the data reductions behind the plots (per-N figures, ECDF downsampling).

use std::collections::HashMap;

use crate::chart::{LegendEntry, Panel, Series, Style};
use crate::results::load::RunData;
use crate::results::record::{KernelRow, Sample, SummaryRow};
use crate::stats;

/// Points an ECDF keeps per series: a few hundred keep the curve's shape at any size while
/// the SVG stays small with 100 000 samples.
pub const ECDF_POINTS: usize = 300;

/// One plotted (run, backend, accelerator) combination.
#[derive(Debug, Clone)]
pub struct Key<'a> {
    pub run_index: usize,
    pub run: &'a RunData,
    pub backend: String,
    pub accel: String,
    /// "<label> <backend>" with several runs, "<backend>" with one; the accelerator in
    /// parentheses where there is one ("vm (tcg)").
    pub name: String,
    pub style: Style,
}

impl Key<'_> {
    /// Whether a row of backend `b` and accelerator `a` belongs to this series.
    pub fn is(&self, b: &str, a: &str) -> bool {
        self.backend == b && self.accel == a
    }

    /// A series of this key with `points`, drawn as a line with markers.
    pub fn series(&self, points: Vec<(f64, f64)>) -> Series {
        Series {
            name: self.name.clone(),
            style: self.style,
            points,
            whiskers: Vec::new(),
            line: true,
            markers: true,
        }
    }
}

/// Every (run, backend, accelerator) of `runs`, runs in order, backends in measured order.
pub fn keys(runs: &[RunData]) -> Vec<Key<'_>> {
    let several = runs.len() > 1;
    let mut out = Vec::new();
    for (i, run) in runs.iter().enumerate() {
        for (backend, accel) in run.backends() {
            let mut name = if several {
                format!("{} {backend}", run.label)
            } else {
                backend.clone()
            };
            if !(accel.is_empty() || accel == "none") {
                name.push_str(&format!(" ({accel})"));
            }
            out.push(Key {
                run_index: i,
                run,
                style: Style::of(&backend, i),
                backend,
                accel,
                name,
            });
        }
    }
    out
}

/// (N, figure) of every summary row of `key` that has the figure, in N order.
pub fn per_n(key: &Key<'_>, f: impl Fn(&SummaryRow) -> Option<f64>) -> Vec<(f64, f64)> {
    let mut pts: Vec<(f64, f64)> = key
        .run
        .summary
        .iter()
        .filter(|r| key.is(&r.backend, &r.accel) && r.ok > 0)
        .filter_map(|r| Some((f64::from(r.n), f(r)?)))
        .collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    pts
}

/// (N, mean over repetitions) of a kernel.csv figure of `key`, in N order.
pub fn kernel_per_n(key: &Key<'_>, f: impl Fn(&KernelRow) -> Option<f64>) -> Vec<(f64, f64)> {
    let mut by_n: Vec<(u32, Vec<f64>)> = Vec::new();
    for k in key
        .run
        .kernel
        .iter()
        .filter(|k| key.is(&k.backend, &k.accel))
    {
        let Some(v) = f(k) else { continue };
        match by_n.iter_mut().find(|(n, _)| *n == k.n) {
            Some((_, vs)) => vs.push(v),
            None => by_n.push((k.n, vec![v])),
        }
    }
    let mut pts: Vec<(f64, f64)> = by_n
        .into_iter()
        .filter_map(|(n, vs)| Some((f64::from(n), stats::mean(&vs)?)))
        .collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    pts
}

/// The start-up times of the ok samples of every key, by N: one pass over the samples.
pub fn startups<'a>(keys: &[Key<'a>]) -> Vec<Vec<(u32, Vec<f64>)>> {
    keys.iter()
        .map(|k| {
            let mut by_n: HashMap<u32, Vec<f64>> = HashMap::new();
            for s in k.run.samples.iter().filter(|s| ok_of(s, k)) {
                if let Some(ms) = s.startup_ms {
                    by_n.entry(s.n).or_default().push(ms);
                }
            }
            let mut v: Vec<(u32, Vec<f64>)> = by_n.into_iter().collect();
            v.sort_by_key(|(n, _)| *n);
            v
        })
        .collect()
}

fn ok_of(s: &Sample, k: &Key<'_>) -> bool {
    s.ok && k.is(&s.backend, &s.accel)
}

/// The empirical CDF of `values` as (value, fraction of values <= it), at most `max` points:
/// beyond that, evenly spaced ranks, the smallest and largest always among them.
pub fn ecdf(values: &[f64], max: usize) -> Vec<(f64, f64)> {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 || max == 0 {
        return Vec::new();
    }
    let point = |i: usize| (v[i], (i + 1) as f64 / n as f64);
    if n <= max || max < 2 {
        return (0..n).map(point).collect();
    }
    let mut idx: Vec<usize> = (0..max)
        .map(|j| ((j as f64) * (n - 1) as f64 / (max - 1) as f64).round() as usize)
        .collect();
    idx.dedup();
    idx.into_iter().map(point).collect()
}

/// The legend of `panels`: every series name once, in first-drawn order.
pub fn legend(panels: &[Panel]) -> Vec<LegendEntry> {
    let mut out: Vec<LegendEntry> = Vec::new();
    for p in panels {
        for s in &p.series {
            match out.iter_mut().find(|e| e.name == s.name) {
                Some(e) => {
                    e.line |= s.line;
                    e.marker |= s.markers;
                }
                None => out.push(LegendEntry {
                    name: s.name.clone(),
                    style: s.style,
                    line: s.line,
                    marker: s.markers,
                }),
            }
        }
        for h in &p.hlines {
            if !out.iter().any(|e| e.name == h.name) {
                out.push(LegendEntry {
                    name: h.name.clone(),
                    style: Style {
                        dashed: true,
                        ..h.style
                    },
                    line: true,
                    marker: false,
                });
            }
        }
    }
    out
}

/// Removes the points a log y axis cannot show (<= 0) and says which ones in `dropped`.
/// `unit` is that of the y values.
pub fn keep_positive(
    name: &str,
    unit: &str,
    pts: Vec<(f64, f64)>,
    dropped: &mut Vec<String>,
) -> Vec<(f64, f64)> {
    let (keep, gone): (Vec<_>, Vec<_>) = pts.into_iter().partition(|p| p.1 > 0.0);
    for (n, v) in gone {
        dropped.push(format!(
            "{name} N={n} ({} {unit})",
            crate::text::format::sig(v)
        ));
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecdf_keeps_ends_and_at_most_max_points() {
        let xs: Vec<f64> = (0..100_000).rev().map(f64::from).collect();
        let e = ecdf(&xs, 300);
        assert!(e.len() <= 300 && e.len() > 250, "{}", e.len());
        assert_eq!(e[0], (0.0, 1.0 / 100_000.0));
        assert_eq!(*e.last().unwrap(), (99_999.0, 1.0));
        assert!(e.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 < w[1].1));
        let small = ecdf(&[3.0, 1.0, f64::NAN, 2.0], 300);
        assert_eq!(small, vec![(1.0, 1.0 / 3.0), (2.0, 2.0 / 3.0), (3.0, 1.0)]);
        assert!(ecdf(&[], 300).is_empty());
    }

    #[test]
    fn non_positive_points_are_named_when_dropped() {
        let mut dropped = Vec::new();
        let kept = keep_positive(
            "container",
            "MiB",
            vec![(1.0, -12.0), (10.0, 5.0)],
            &mut dropped,
        );
        assert_eq!(kept, vec![(10.0, 5.0)]);
        assert_eq!(dropped, vec!["container N=1 (-12.0 MiB)".to_string()]);
    }
}
