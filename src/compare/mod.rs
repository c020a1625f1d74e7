//! `isobench compare BASE NEW`: for every group (backend, accelerator, N) measured by both
//! runs and every metric both hold, the ratio NEW/BASE of the medians with a bootstrap
//! confidence interval, and a verdict against a tolerance; `--fail-on-regression` turns any
//! regression into exit code 1, for CI.

pub mod metric;
pub mod render;
pub mod tolerance;
pub mod verdict;

use std::path::PathBuf;

use rayon::prelude::*;
use serde::Serialize;

use crate::results::load::{LoadError, RunData, load};
use crate::results::metrics::Metric;
use crate::results::record::Sample;
use crate::stats;
use tolerance::{ToleranceError, Tolerances};
use verdict::{Method, NoInterval, Verdict};

/// `isobench compare`'s arguments (clap derive; the command line includes them).
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// The baseline run directory.
    pub base: PathBuf,
    /// The run directory compared against the baseline.
    pub new: PathBuf,
    /// Relative tolerance for every metric: NEW/BASE up to 1 + TOL is not a regression
    /// [default: the tolerance file's `default`, else 0.10].
    #[arg(long, value_name = "TOL")]
    pub tolerance: Option<f64>,
    /// Tolerance of one metric, as METRIC=TOL (for example startup_ms=0.25); repeatable.
    #[arg(long = "tolerance-for", value_name = "METRIC=TOL")]
    pub tolerance_for: Vec<String>,
    /// A TOML file of tolerances: `default = 0.1` and a `[metrics]` table of METRIC = TOL.
    /// Flags given on the command line win over the file.
    #[arg(long)]
    pub tolerances: Option<PathBuf>,
    /// Confidence level of the intervals.
    #[arg(long, default_value_t = 0.95)]
    pub confidence: f64,
    /// Bootstrap resamples per interval.
    #[arg(long, default_value_t = 2000)]
    pub resamples: u32,
    /// Exit 1 when any metric is worse than BASE beyond its tolerance.
    #[arg(long)]
    pub fail_on_regression: bool,
}

/// The most resamples `--resamples` accepts: a million per side already takes seconds per
/// metric, and no interval gets meaningfully steadier beyond it.
pub const MAX_RESAMPLES: u32 = 1_000_000;

/// Bad input to `compare`: every variant is exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error("{which} {source}")]
    Load {
        which: &'static str,
        source: LoadError,
    },
    #[error(transparent)]
    Tolerance(#[from] ToleranceError),
    #[error("--confidence {0}: allowed: a number strictly between 0 and 1, such as 0.95")]
    Confidence(f64),
    #[error("--resamples {0}: allowed: 1 to {MAX_RESAMPLES}")]
    Resamples(u32),
}

/// A group of samples: one backend (with its accelerator) at one N.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Group {
    pub backend: String,
    pub accel: String,
    pub n: u32,
}

impl Group {
    fn of(s: &Sample) -> Group {
        Group {
            backend: s.backend.clone(),
            accel: s.accel.clone(),
            n: s.n,
        }
    }

    fn holds(&self, s: &Sample) -> bool {
        s.backend == self.backend && s.accel == self.accel && s.n == self.n
    }

    /// "oci-runc/none N=1".
    pub fn describe(&self) -> String {
        format!("{}/{} N={}", self.backend, self.accel, self.n)
    }
}

/// Which run directory, as given and as the report names it.
#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    pub dir: PathBuf,
    pub label: String,
    pub run_id: String,
    pub hostname: String,
    pub started_at: String,
}

impl RunInfo {
    fn of(r: &RunData) -> RunInfo {
        RunInfo {
            dir: r.dir.clone(),
            label: r.label.clone(),
            run_id: r.meta.run_id.clone(),
            hostname: r.meta.hostname.clone(),
            started_at: r.meta.started_at.clone(),
        }
    }
}

/// One metric of one group, BASE against NEW.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    #[serde(flatten)]
    pub group: Group,
    pub metric: &'static str,
    pub unit: &'static str,
    /// Values per side (ok instances; batches for a per-batch metric).
    pub base_samples: usize,
    pub new_samples: usize,
    pub base_median: f64,
    pub new_median: f64,
    /// NEW median / BASE median; null when infinite or undefined (`ratio_text` says which).
    pub ratio: Option<f64>,
    /// The ratio as the text table prints it, in words when it is not a finite number.
    pub ratio_text: String,
    /// The interval's bounds; null when there is none or a bound is infinite (`ci_text`).
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub ci_text: String,
    pub tolerance: f64,
    pub verdict: Verdict,
    pub reason: String,
}

/// A metric one run holds values of for a group and the other does not.
#[derive(Debug, Clone, Serialize)]
pub struct NotCompared {
    #[serde(flatten)]
    pub group: Group,
    pub metric: &'static str,
    /// "BASE" or "NEW": the run that has values.
    pub only_in: &'static str,
}

/// How many rows got each verdict.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub regression: usize,
    pub improvement: usize,
    pub ok: usize,
    pub inconclusive: usize,
}

/// The whole comparison: what `--format json` prints as one document.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub base: RunInfo,
    pub new: RunInfo,
    /// "ratio of medians NEW/BASE; bootstrap percentile interval (Efron & Tibshirani 1993)".
    pub statistic: &'static str,
    pub method: Method,
    pub tolerances: Tolerances,
    pub rows: Vec<Row>,
    pub only_in_base: Vec<Group>,
    pub only_in_new: Vec<Group>,
    pub not_compared: Vec<NotCompared>,
    /// Facts that qualify the ratios: different hosts, failed instances.
    pub notes: Vec<String>,
    pub totals: Totals,
    pub fail_on_regression: bool,
    pub exit_code: i32,
}

const STATISTIC: &str = "ratio NEW/BASE of the medians (all metrics are lower-is-better: above 1 is worse), with a bootstrap percentile interval (Efron & Tibshirani 1993), each run resampled independently";

/// Checks the arguments, loads both runs and compares them.
pub fn compare(args: &CompareArgs) -> Result<Comparison, CompareError> {
    if !(args.confidence > 0.0 && args.confidence < 1.0) {
        return Err(CompareError::Confidence(args.confidence));
    }
    if args.resamples == 0 || args.resamples > MAX_RESAMPLES {
        return Err(CompareError::Resamples(args.resamples));
    }
    let tolerances = Tolerances::resolve(
        args.tolerance,
        &args.tolerance_for,
        args.tolerances.as_deref(),
    )?;
    let base = load(&args.base, None).map_err(|source| CompareError::Load {
        which: "BASE",
        source,
    })?;
    let new = load(&args.new, None).map_err(|source| CompareError::Load {
        which: "NEW",
        source,
    })?;
    let method = Method {
        resamples: args.resamples,
        confidence: args.confidence,
        seed: verdict::SEED,
        min_samples: stats::min_samples_for_median_interval(args.confidence)
            .expect("confidence checked above"),
    };
    Ok(compare_runs(
        &base,
        &new,
        &tolerances,
        &method,
        args.fail_on_regression,
    ))
}

/// Groups in the order `samples` first shows them.
fn groups(samples: &[Sample]) -> Vec<Group> {
    let mut out: Vec<Group> = Vec::new();
    for s in samples {
        if !out.iter().any(|g| g.holds(s)) {
            out.push(Group::of(s));
        }
    }
    out
}

/// Compares two loaded runs (see the module docs).
pub fn compare_runs(
    base: &RunData,
    new: &RunData,
    tolerances: &Tolerances,
    method: &Method,
    fail_on_regression: bool,
) -> Comparison {
    let base_groups = groups(&base.samples);
    let new_groups = groups(&new.samples);
    let both: Vec<&Group> = base_groups
        .iter()
        .filter(|g| new_groups.contains(g))
        .collect();
    let mut jobs: Vec<(&Group, &'static Metric, Vec<f64>, Vec<f64>)> = Vec::new();
    let mut not_compared = Vec::new();
    for g in &both {
        for m in metric::all() {
            let b = metric::values(m, base.samples.iter().filter(|s| g.holds(s)));
            let n = metric::values(m, new.samples.iter().filter(|s| g.holds(s)));
            match (b.is_empty(), n.is_empty()) {
                (false, false) => jobs.push((g, m, b, n)),
                (true, true) => {}
                (b_empty, _) => not_compared.push(NotCompared {
                    group: (*g).clone(),
                    metric: m.name,
                    only_in: if b_empty { "NEW" } else { "BASE" },
                }),
            }
        }
    }
    // Each job draws from its own seeded generator, so the parallel order does not matter.
    let rows: Vec<Row> = jobs
        .par_iter()
        .map(|(g, m, b, n)| compare_metric(g, m, b, n, tolerances.of(m.name), method))
        .collect();
    let mut totals = Totals::default();
    for r in &rows {
        match r.verdict {
            Verdict::Regression => totals.regression += 1,
            Verdict::Improvement => totals.improvement += 1,
            Verdict::Ok => totals.ok += 1,
            Verdict::Inconclusive => totals.inconclusive += 1,
        }
    }
    let exit_code = if fail_on_regression && totals.regression > 0 {
        crate::exit::MEASURED_FAILURE
    } else {
        crate::exit::OK
    };
    Comparison {
        base: RunInfo::of(base),
        new: RunInfo::of(new),
        statistic: STATISTIC,
        method: *method,
        tolerances: tolerances.clone(),
        rows,
        only_in_base: only_in(&base_groups, &new_groups),
        only_in_new: only_in(&new_groups, &base_groups),
        not_compared,
        notes: notes(base, new, &both),
        totals,
        fail_on_regression,
        exit_code,
    }
}

fn only_in(these: &[Group], others: &[Group]) -> Vec<Group> {
    these
        .iter()
        .filter(|g| !others.contains(g))
        .cloned()
        .collect()
}

/// One metric of one group: medians, ratio, interval, verdict.
fn compare_metric(
    g: &Group,
    m: &Metric,
    base: &[f64],
    new: &[f64],
    tol: f64,
    method: &Method,
) -> Row {
    let key = format!("{}/{}/{}/{}", g.backend, g.accel, g.n, m.name);
    let mut rng = fastrand::Rng::with_seed(verdict::seed_for(method.seed, &key));
    // Both sides are non-empty and NaN-free (metric::values), so the medians exist.
    let base_median = stats::median(base).unwrap_or(f64::NAN);
    let new_median = stats::median(new).unwrap_or(f64::NAN);
    let point = verdict::ratio(new_median, base_median);
    let interval = match point {
        // A negative BASE median: no ratio at the point, so none to put an interval on.
        None => Err(NoInterval::NoRatio),
        Some(_) => verdict::ratio_interval(base, new, method, &mut rng),
    };
    let (verdict, reason) = verdict::judge(&interval, tol, method);
    let finite = |x: f64| x.is_finite().then_some(x);
    let (ci_low, ci_high) = match &interval {
        Ok(iv) => (finite(iv.lo), finite(iv.hi)),
        Err(_) => (None, None),
    };
    Row {
        group: g.clone(),
        metric: m.name,
        unit: m.unit.as_str(),
        base_samples: base.len(),
        new_samples: new.len(),
        base_median,
        new_median,
        ratio: point.and_then(finite),
        ratio_text: render::ratio_text(point, base_median, new_median),
        ci_low,
        ci_high,
        ci_text: render::interval_text(&interval),
        tolerance: tol,
        verdict,
        reason,
    }
}

/// What qualifies the ratios: runs on different hosts or kernels, failed instances.
fn notes(base: &RunData, new: &RunData, both: &[&Group]) -> Vec<String> {
    let mut out = Vec::new();
    let (b, n) = (&base.meta, &new.meta);
    for (what, bv, nv) in [
        ("host", &b.hostname, &n.hostname),
        ("host kernel", &b.host_kernel, &n.host_kernel),
        ("CPU", &b.cpu_model, &n.cpu_model),
    ] {
        if bv != nv {
            out.push(format!(
                "BASE and NEW ran with a different {what} ({bv} and {nv}): the ratios include that difference"
            ));
        }
    }
    for g in both {
        let count = |r: &RunData| {
            let rows = r.samples.iter().filter(|s| g.holds(s));
            let (all, failed) = rows.fold((0, 0), |(a, f), s| (a + 1, f + usize::from(!s.ok)));
            (failed, all)
        };
        let ((bf, ba), (nf, na)) = (count(base), count(new));
        if bf > 0 || nf > 0 {
            out.push(format!(
                "{}: {nf} of {na} instances failed in NEW, {bf} of {ba} in BASE; failed instances are not in the medians",
                g.describe()
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(backend: &str, n: u32, rep: u32, startup: f64, ok: bool) -> Sample {
        Sample {
            backend: backend.into(),
            accel: "none".into(),
            n,
            rep,
            ok,
            startup_ms: Some(startup),
            pss_kib: (backend == "a").then_some(1000),
            ..Sample::default()
        }
    }

    fn run(label: &str, samples: Vec<Sample>) -> RunData {
        RunData {
            dir: PathBuf::from(label),
            label: label.into(),
            meta: Default::default(),
            samples,
            summary: Vec::new(),
            kernel: Vec::new(),
            until: Vec::new(),
            syscalls: Vec::new(),
        }
    }

    fn method() -> Method {
        Method {
            resamples: 500,
            confidence: 0.95,
            seed: verdict::SEED,
            min_samples: 6,
        }
    }

    fn tol() -> Tolerances {
        Tolerances::resolve(None, &[], None).unwrap()
    }

    /// BASE: backends a and b at N=1, 12 repetitions each; NEW: a 50% slower, b unchanged
    /// without pss, and a group c that BASE lacks.
    fn runs() -> (RunData, RunData) {
        let base: Vec<Sample> = (0..12)
            .flat_map(|i| {
                let t = 10.0 + f64::from(i % 4) * 0.1;
                [sample("a", 1, i, t, true), sample("b", 1, i, t, true)]
            })
            .collect();
        let mut new: Vec<Sample> = (0..12)
            .flat_map(|i| {
                let t = 10.0 + f64::from(i % 4) * 0.1;
                [
                    sample("a", 1, i, t * 1.5, true),
                    Sample {
                        pss_kib: Some(900),
                        ..sample("b", 1, i, t, true)
                    },
                    sample("c", 1, i, t, true),
                ]
            })
            .collect();
        new.push(sample("a", 1, 12, 1e6, false));
        (run("base", base), run("new", new))
    }

    #[test]
    fn a_slower_backend_is_the_only_regression() {
        let (base, new) = runs();
        let c = compare_runs(&base, &new, &tol(), &method(), true);
        let find = |b: &str, m: &str| {
            c.rows
                .iter()
                .find(|r| r.group.backend == b && r.metric == m)
                .unwrap_or_else(|| panic!("no row {b} {m}"))
        };
        let a = find("a", "startup_ms");
        assert_eq!(a.verdict, Verdict::Regression, "{a:?}");
        assert!((a.ratio.unwrap() - 1.5).abs() < 1e-9, "{a:?}");
        assert_eq!(
            (a.base_samples, a.new_samples),
            (12, 12),
            "failed row left out"
        );
        assert_eq!(find("b", "startup_ms").verdict, Verdict::Ok);
        assert_eq!(find("a", "pss_kib").verdict, Verdict::Ok);
        assert_eq!(c.totals.regression, 1);
        assert_eq!(c.exit_code, crate::exit::MEASURED_FAILURE);
        assert_eq!(c.only_in_new.len(), 1);
        assert_eq!(c.only_in_new[0].backend, "c");
        assert!(c.only_in_base.is_empty());
        // b has pss only in NEW: listed, not compared.
        assert_eq!(c.not_compared.len(), 1);
        assert_eq!(
            (c.not_compared[0].metric, c.not_compared[0].only_in),
            ("pss_kib", "NEW")
        );
        assert!(
            c.notes
                .iter()
                .any(|n| n.starts_with("a/none N=1: 1 of 13 instances failed in NEW")),
            "{:?}",
            c.notes
        );
        let text = render::text(&c);
        assert!(
            text.contains("1 regression, 0 improvements, 2 ok"),
            "{text}"
        );
        assert!(text.contains("--fail-on-regression: exit 1"), "{text}");
        let v: serde_json::Value = serde_json::from_str(&render::json(&c)).unwrap();
        assert_eq!(v["rows"][0]["verdict"], "regression");
        assert_eq!(v["method"]["seed"], verdict::SEED);
    }

    #[test]
    fn without_the_flag_a_regression_exits_zero_and_self_compare_passes() {
        let (base, new) = runs();
        assert_eq!(
            compare_runs(&base, &new, &tol(), &method(), false).exit_code,
            crate::exit::OK
        );
        let c = compare_runs(&base, &base, &tol(), &method(), true);
        assert_eq!(c.exit_code, crate::exit::OK);
        assert_eq!(c.totals.regression, 0);
        assert!(c.rows.iter().all(|r| r.ratio == Some(1.0)));
        // A larger tolerance turns the 50% slowdown into ok.
        let loose = Tolerances::resolve(None, &["startup_ms=0.6".into()], None).unwrap();
        let c = compare_runs(&base, &new, &loose, &method(), true);
        assert_eq!(c.totals.regression, 0, "{:?}", c.rows);
    }

    #[test]
    fn the_same_inputs_print_the_same_intervals() {
        let (base, new) = runs();
        let a = render::json(&compare_runs(&base, &new, &tol(), &method(), false));
        let b = render::json(&compare_runs(&base, &new, &tol(), &method(), false));
        assert_eq!(a, b);
    }
}
