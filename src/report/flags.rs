//! Warnings about the statistics behind a figure, given where the figure is shown (under a
//! plot of the report, and after the tables `isobench run` prints), as hyperfine warns under
//! its results: outliers, a high variance, and too few values for an interval.
//!
//! The groups are those of summary.csv: one (backend, accelerator, N). A per-instance figure
//! has one value per ok instance of every repetition; a per-batch figure (a host-wide reading,
//! a kernel.csv figure) has one value per repetition, however large N is.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::results::metrics::{Metric, Read, Stat};
use crate::results::record::{KernelRow, Sample};
use crate::stats;
use crate::text::format::sig;

/// The confidence of the interval the values should be enough for (compare's default).
pub const CONFIDENCE: f64 = 0.95;

/// A coefficient of variation (sd / |mean|) above this is flagged: the mean of such a group
/// says little about any one instance.
pub const CV_LIMIT: f64 = 0.5;

/// hyperfine's outlier rule (src/outlier_detection.rs): a value whose modified Z-score
/// (x - median) / (1.4826 MAD) exceeds 14.826 in magnitude, ten MADs scaled to a normal sd
/// (Iglewicz and Hoaglin, "How to Detect and Handle Outliers", ASQC 1993, for the score).
pub const OUTLIER_Z: f64 = 14.826;

/// What is wrong with the values of one group.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Kind {
    /// Fewer values than an interval of the median at [`CONFIDENCE`] needs
    /// (`stats::min_samples_for_median_interval`): no interval can be given.
    TooFew { have: usize, need: usize },
    /// sd / |mean| above [`CV_LIMIT`].
    HighVariance { cv: f64 },
    /// Values beyond [`OUTLIER_Z`] modified Z-scores.
    Outliers { count: usize, of: usize },
}

impl Kind {
    fn rank(&self) -> u8 {
        match self {
            Kind::Outliers { .. } => 0,
            Kind::HighVariance { .. } => 1,
            Kind::TooFew { .. } => 2,
        }
    }

    /// What is flagged, for the head of a line.
    fn what(&self) -> String {
        match self {
            Kind::Outliers { .. } => format!(
                "outliers (modified Z-score above {OUTLIER_Z}, hyperfine's rule; the mean \
                 moves with them, the median does not)"
            ),
            Kind::HighVariance { .. } => format!(
                "high variance (sd above {:.0}% of the mean)",
                CV_LIMIT * 100.0
            ),
            Kind::TooFew { need, .. } => format!(
                "too few values for a {:.0}% interval of the median ({need} needed; more \
                 repetitions give more)",
                CONFIDENCE * 100.0
            ),
        }
    }

    /// The group's own figure, in brackets after it.
    fn detail(&self) -> String {
        match self {
            Kind::Outliers { count, of } => format!("{count} of {of}"),
            Kind::HighVariance { cv } => format!("{}%", sig(cv * 100.0)),
            Kind::TooFew { have, .. } => format!("{have}"),
        }
    }
}

/// One flag: a metric of one group.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Flag {
    pub backend: String,
    pub accel: String,
    pub n: u32,
    pub metric: &'static Metric,
    #[serde(flatten)]
    pub kind: Kind,
}

type Group = (String, String, u32);

/// The flags of `metrics` over a run's rows: per-instance metrics from the ok rows of
/// `samples`, per-batch ones from one value per repetition (samples.csv's per-batch columns,
/// or kernel.csv). Ordered by metric (as given), kind, backend and N.
pub fn flags(samples: &[Sample], kernel: &[KernelRow], metrics: &[&'static Metric]) -> Vec<Flag> {
    let need = stats::min_samples_for_median_interval(CONFIDENCE).unwrap_or(6);
    let mut out = Vec::new();
    for &m in metrics {
        // A figure shared by every instance of a run (the disk shared once) has no spread.
        if m.summary.iter().any(|(st, _)| *st == Stat::Shared) {
            continue;
        }
        let mut groups: BTreeMap<Group, Vec<f64>> = BTreeMap::new();
        match m.read {
            Read::Sample(_) => {
                // A per-batch column repeats the batch's one value on each of its rows.
                let mut seen = std::collections::BTreeSet::new();
                for s in samples.iter().filter(|s| s.ok) {
                    if m.per_batch && !seen.insert((&s.backend, &s.accel, s.n, s.rep)) {
                        continue;
                    }
                    if let Some(v) = m.of_sample(s).filter(|v| v.is_finite()) {
                        groups
                            .entry((s.backend.clone(), s.accel.clone(), s.n))
                            .or_default()
                            .push(v);
                    }
                }
            }
            Read::Batch(_) => {
                for k in kernel {
                    if let Some(v) = m.of_batch(k).filter(|v| v.is_finite()) {
                        groups
                            .entry((k.backend.clone(), k.accel.clone(), k.n))
                            .or_default()
                            .push(v);
                    }
                }
            }
            Read::No => {}
        }
        let mut these: Vec<Flag> = Vec::new();
        for ((backend, accel, n), v) in groups {
            for kind in judge(&v, need) {
                these.push(Flag {
                    backend: backend.clone(),
                    accel: accel.clone(),
                    n,
                    metric: m,
                    kind,
                });
            }
        }
        these.sort_by(|a, b| {
            (a.kind.rank(), &a.backend, a.n).cmp(&(b.kind.rank(), &b.backend, b.n))
        });
        out.extend(these);
    }
    out
}

/// The flags of one group's values. Too few values for an interval is the only flag such a
/// group gets: the spread of two or three values is no evidence of anything.
pub fn judge(v: &[f64], need: usize) -> Vec<Kind> {
    if v.len() < need {
        return vec![Kind::TooFew {
            have: v.len(),
            need,
        }];
    }
    let mut out = Vec::new();
    let outliers = outliers(v);
    if outliers > 0 {
        out.push(Kind::Outliers {
            count: outliers,
            of: v.len(),
        });
    }
    if let (Some(mean), Some(sd)) = (stats::mean(v), stats::sd(v))
        && mean != 0.0
        && sd / mean.abs() > CV_LIMIT
    {
        out.push(Kind::HighVariance {
            cv: sd / mean.abs(),
        });
    }
    out
}

/// The MAD below which a group counts as steady whatever its MAD says, relative to the
/// median: isobench's figures are quantised (pages of 4 KiB, rounded milliseconds), so that
/// more than half of a group can be equal (MAD 0), where hyperfine divides by f64::EPSILON
/// and makes every other value an outlier (a USS one page above the rest). With this floor a
/// value is an outlier only if it lies more than 22% (14.826 x 1.4826 x 1%) of the median
/// away from it, besides hyperfine's ten MADs.
pub const MAD_FLOOR: f64 = 0.01;

/// How many values have a modified Z-score above [`OUTLIER_Z`], the MAD at least
/// [`MAD_FLOOR`] of the median. A group whose median is 0 and MAD 0 (idle CPU of instances
/// that mostly burn none) counts every value that is not 0.
pub fn outliers(v: &[f64]) -> usize {
    let Some(median) = stats::median(v) else {
        return 0;
    };
    let dev: Vec<f64> = v.iter().map(|x| (x - median).abs()).collect();
    let mad = stats::median(&dev)
        .unwrap_or(0.0)
        .max(MAD_FLOOR * median.abs());
    if mad > 0.0 {
        dev.iter()
            .filter(|d| *d / (1.4826 * mad) > OUTLIER_Z)
            .count()
    } else {
        dev.iter().filter(|d| **d > 0.0).count()
    }
}

/// The flags as lines of text: one line per kind and list of groups, each group with its own
/// figure; metrics flagged for the same groups with the same figures share a line (a run of
/// one repetition has too few values of every per-batch figure at every N). Empty when there
/// is no flag.
pub fn lines(flags: &[Flag]) -> Vec<String> {
    // (metrics, kind rank, what, groups), in the order first seen.
    let mut out: Vec<(Vec<&str>, u8, String, String)> = Vec::new();
    let mut keys: Vec<(&str, u8)> = Vec::new();
    for f in flags {
        let key = (f.metric.name, f.kind.rank());
        if !keys.contains(&key) {
            keys.push(key);
        }
    }
    for (name, rank) in keys {
        let fs: Vec<&Flag> = flags
            .iter()
            .filter(|f| f.metric.name == name && f.kind.rank() == rank)
            .collect();
        let groups = groups(&fs);
        match out.iter_mut().find(|o| o.1 == rank && o.3 == groups) {
            Some(o) => o.0.push(name),
            None => out.push((vec![name], rank, fs[0].kind.what(), groups)),
        }
    }
    out.into_iter()
        .map(|(names, _, what, groups)| format!("{}: {what}: {groups}", names.join(", ")))
        .collect()
}

/// "container N=1 (1), vm (tcg) N=1, 2, 4 (1 each)": the groups of one line, backend by
/// backend, the Ns of a backend together where their figures agree.
fn groups(fs: &[&Flag]) -> String {
    let mut sides: Vec<String> = Vec::new();
    for f in fs {
        if !sides.contains(&side(f)) {
            sides.push(side(f));
        }
    }
    sides
        .iter()
        .map(|sd| {
            let of: Vec<&&Flag> = fs.iter().filter(|f| side(f) == *sd).collect();
            let details: Vec<String> = of.iter().map(|f| f.kind.detail()).collect();
            if of.len() > 1 && details.iter().all(|d| *d == details[0]) {
                let ns: Vec<String> = of.iter().map(|f| f.n.to_string()).collect();
                format!("{sd} N={} ({} each)", ns.join(", "), details[0])
            } else {
                let each: Vec<String> = of
                    .iter()
                    .zip(&details)
                    .map(|(f, d)| format!("N={} ({d})", f.n))
                    .collect();
                format!("{sd} {}", each.join(", "))
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn side(f: &Flag) -> String {
    if f.accel.is_empty() || f.accel == "none" {
        f.backend.clone()
    } else {
        format!("{} ({})", f.backend, f.accel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::metrics::{HOST_AVAIL_KIB, KTHREADS_ADDED, STARTUP_MS, TEARDOWN_MS};

    fn sample(backend: &str, n: u32, rep: u32, startup: f64, host: f64) -> Sample {
        Sample {
            backend: backend.into(),
            accel: "none".into(),
            n,
            rep,
            ok: true,
            startup_ms: Some(startup),
            host_avail_kib: Some(host),
            ..Sample::default()
        }
    }

    #[test]
    fn too_few_values_are_the_only_flag_of_a_small_group() {
        assert_eq!(
            judge(&[1.0, 100.0], 6),
            vec![Kind::TooFew { have: 2, need: 6 }]
        );
        assert_eq!(stats::min_samples_for_median_interval(CONFIDENCE), Some(6));
    }

    #[test]
    fn an_outlier_and_a_high_variance_are_flagged_a_steady_group_is_not() {
        let steady = [10.0, 10.5, 9.5, 10.2, 9.8, 10.1, 9.9];
        assert!(judge(&steady, 6).is_empty(), "{:?}", judge(&steady, 6));
        let mut one_off = steady.to_vec();
        one_off.push(400.0);
        let k = judge(&one_off, 6);
        assert!(k.contains(&Kind::Outliers { count: 1, of: 8 }), "{k:?}");
        assert!(
            k.iter()
                .any(|k| matches!(k, Kind::HighVariance { cv } if *cv > 0.5)),
            "{k:?}"
        );
        let spread = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0];
        let k = judge(&spread, 6);
        assert!(
            matches!(k.as_slice(), [Kind::HighVariance { .. }]),
            "a wide but even spread has no outlier: {k:?}"
        );
    }

    #[test]
    fn a_mostly_constant_figure_flags_only_a_real_departure() {
        let mut v = vec![4.0; 20];
        assert_eq!(outliers(&v), 0);
        v[3] = 8.0;
        assert_eq!(outliers(&v), 1, "one of 20 doubled");
        v[3] = 4.004;
        v[5] = 3.996;
        assert_eq!(outliers(&v), 0, "a rounding-size wobble is no outlier");
        // USS in pages: 11 instances at 172 KiB, 9 a page or two above: no outlier.
        let mut uss = vec![172.0; 11];
        uss.extend([
            176.0, 176.0, 180.0, 176.0, 176.0, 176.0, 180.0, 176.0, 176.0,
        ]);
        assert_eq!(outliers(&uss), 0);
        uss.push(2048.0);
        assert_eq!(outliers(&uss), 1, "a USS of 2 MiB among 172 KiB is one");
        let mut idle = vec![0.0; 30];
        idle[7] = 5.0;
        assert_eq!(outliers(&idle), 1, "mostly no CPU, one instance busy");
    }

    #[test]
    fn per_batch_figures_count_repetitions_not_instances() {
        // 100 instances in each of 2 repetitions: 200 start-ups, but 2 batches.
        let mut s = Vec::new();
        for rep in 0..2 {
            for i in 0..100 {
                s.push(sample("container", 100, rep, 5.0 + f64::from(i % 7), 700.0));
            }
        }
        let f = flags(&s, &[], &[&STARTUP_MS, &HOST_AVAIL_KIB]);
        assert!(f.iter().all(|f| f.metric != &STARTUP_MS), "{f:?}");
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].metric, &HOST_AVAIL_KIB);
        assert_eq!(f[0].kind, Kind::TooFew { have: 2, need: 6 });
        let k = KernelRow {
            backend: "vm".into(),
            accel: "tcg".into(),
            n: 4,
            host_kthreads_before: 60,
            host_kthreads_with: 60,
            guest_kthreads_total: Some(180),
            ..KernelRow::default()
        };
        let f = flags(&[], &[k], &[&KTHREADS_ADDED]);
        let text = lines(&f);
        assert_eq!(
            text,
            vec![
                "kthreads_added: too few values for a 95% interval of the median (6 needed; \
                 more repetitions give more): vm (tcg) N=4 (1)"
            ]
        );
    }

    #[test]
    fn lines_group_by_metric_and_kind_and_never_say_inf_or_nan() {
        let mut s = Vec::new();
        for i in 0..10 {
            s.push(sample("container", 10, 0, 5.0, 0.0));
            s.push(sample(
                "oci-runc",
                10,
                0,
                if i == 0 { 900.0 } else { 40.0 },
                0.0,
            ));
        }
        s.push(sample("vm", 1, 0, 4000.0, f64::INFINITY));
        s.push(sample("vm", 1, 1, f64::NAN, f64::NAN));
        let text = lines(&flags(&s, &[], &[&STARTUP_MS, &TEARDOWN_MS]));
        assert_eq!(text.len(), 3, "{text:#?}");
        assert!(text[0].starts_with("startup_ms: outliers"), "{text:#?}");
        assert!(text[0].contains("oci-runc N=10 (1 of 10)"), "{text:#?}");
        assert!(
            text[1].starts_with("startup_ms: high variance"),
            "{text:#?}"
        );
        assert!(text[2].ends_with("vm N=1 (1)"), "{text:#?}");
        // Teardown was not measured: it has no flag of its own and shares no line.
        assert!(text.iter().all(|l| !l.contains("teardown_ms")), "{text:#?}");
        let both = lines(&flags(
            &[sample("vm", 1, 0, 4000.0, 9000.0)],
            &[],
            &[&STARTUP_MS, &HOST_AVAIL_KIB],
        ));
        assert_eq!(
            both,
            vec![
                "startup_ms, host_avail_kib: too few values for a 95% interval of the median \
                 (6 needed; more repetitions give more): vm N=1 (1)"
            ]
        );
        assert!(
            text.iter()
                .all(|l| !l.contains("inf") && !l.contains("NaN")),
            "{text:#?}"
        );
    }
}
