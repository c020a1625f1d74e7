//! `isobench compare BASE NEW`: for every group (backend, accelerator, N) measured by both
//! runs and every metric both hold, the ratio NEW/BASE of the medians with a bootstrap
//! confidence interval, and a verdict against a tolerance; `--fail-on-regression` turns any
//! regression into exit code 1, for CI. Two runs of different scenarios are refused (unless
//! `--allow-different-scenarios`); a run compared with itself is said to be one.

pub mod metric;
pub mod render;
pub mod scenario;
pub mod tolerance;
pub mod verdict;

use std::path::PathBuf;

use rayon::prelude::*;
use serde::Serialize;

use crate::results::load::{LoadError, RunData, load};
use crate::results::metrics::Metric;
use crate::results::record::Sample;
use crate::stats;
use scenario::ScenarioCheck;
use tolerance::{ToleranceError, Tolerances};
use verdict::{Method, NoInterval, Verdict};

/// `isobench compare`'s arguments (clap derive; the command line includes them).
#[derive(Debug, clap::Args)]
pub struct CompareArgs {
    /// The baseline run directory.
    pub base: PathBuf,
    /// The run directory compared against the baseline.
    pub new: PathBuf,
    /// Relative tolerance for every metric, a ratio or a percentage (0.1 or 10%): NEW/BASE up
    /// to 1 + TOL is not a regression [default: the tolerance file's `default`, else each
    /// metric's built-in tolerance, sized to the drift between runs of a busy host].
    #[arg(long, value_name = "TOL", allow_hyphen_values = true)]
    pub tolerance: Option<String>,
    /// Tolerance of one metric, as METRIC=TOL (for example startup_ms=0.25 or startup_ms=25%);
    /// repeatable.
    #[arg(long = "tolerance-for", value_name = "METRIC=TOL")]
    pub tolerance_for: Vec<String>,
    /// A TOML file of tolerances: `default = 0.1` and a `[metrics]` table of METRIC = TOL
    /// (a number, or a string such as "10%"). Flags given on the command line win over the file.
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
    /// Compare runs of different scenarios anyway (the differences are printed as a warning);
    /// without it, such runs are refused (exit 2).
    #[arg(long)]
    pub allow_different_scenarios: bool,
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
    #[error(
        "BASE {base} and NEW {new} ran different scenarios ({differences}): compare two runs of one scenario, or give --allow-different-scenarios"
    )]
    DifferentScenarios {
        base: PathBuf,
        new: PathBuf,
        differences: String,
    },
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
    /// The metric's relative tolerance (flag, file or built-in).
    pub tolerance: f64,
    /// The metric's floor, in `unit`: a change no larger is noise whatever the ratio.
    pub floor: f64,
    /// The relative tolerance the verdict used: `tolerance`, or wider where the floor is the
    /// larger share of BASE's median; null when the floor alone decided (`reason` says so).
    pub allowed: Option<f64>,
    /// Whether the floor, not the tolerance, set `allowed`.
    pub by_floor: bool,
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

impl Totals {
    /// Rows not shown to differ beyond the noise: `ok` and `inconclusive`.
    pub fn within_noise(&self) -> usize {
        self.ok + self.inconclusive
    }
}

/// The whole comparison: what `--format json` prints as one document.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// The verdicts in one line, what the text prints first.
    pub summary: String,
    pub base: RunInfo,
    pub new: RunInfo,
    /// BASE and NEW are one run (the same run id or directory): every ratio is 1.
    pub same_run: bool,
    /// Keys in which the runs' scenarios differ (empty when the same, or when unknown: then a
    /// note says why it could not be checked).
    pub scenario_differences: Vec<String>,
    /// What makes the comparison itself doubtful: the same run twice, different scenarios.
    pub warnings: Vec<String>,
    /// "ratio of medians NEW/BASE; bootstrap percentile interval (Efron & Tibshirani 1993)".
    pub statistic: &'static str,
    pub method: Method,
    pub tolerances: Tolerances,
    /// Regressions first, then improvements, then the rest; within each, the largest effect
    /// (|ln ratio|) first.
    pub rows: Vec<Row>,
    pub only_in_base: Vec<Group>,
    pub only_in_new: Vec<Group>,
    pub not_compared: Vec<NotCompared>,
    /// Facts that qualify the ratios: different hosts, failed instances.
    pub notes: Vec<String>,
    /// When BASE and NEW ran on different hosts (host labels): which host is denser, per
    /// backend with a memory model in both (`plan --fleet`'s density, NEW's host as B).
    pub host_density: Vec<crate::plan::fleet::Density>,
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
        args.tolerance.as_deref(),
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
    if let ScenarioCheck::Differ(d) = scenario_check(&base, &new)
        && !args.allow_different_scenarios
    {
        return Err(CompareError::DifferentScenarios {
            base: args.base.clone(),
            new: args.new.clone(),
            differences: scenario::summary(&d),
        });
    }
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
    let mut rows: Vec<Row> = jobs
        .par_iter()
        .map(|(g, m, b, n)| compare_metric(g, m, b, n, tolerances.of(m), method))
        .collect();
    sort_by_effect(&mut rows);
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
    let same = same_run(base, new);
    let mut warnings = Vec::new();
    if let Some(why) = &same {
        warnings.push(format!(
            "BASE and NEW are the same run ({why}): every ratio is 1 by construction, so this checks nothing; compare two runs"
        ));
    }
    let mut notes = notes(base, new, &both);
    let scenario_differences = match scenario_check(base, new) {
        ScenarioCheck::Same => Vec::new(),
        ScenarioCheck::Differ(d) => {
            warnings.push(format!(
                "BASE and NEW ran different scenarios ({}): the ratios include that difference",
                scenario::summary(&d)
            ));
            d
        }
        ScenarioCheck::Unknown(why) => {
            notes.insert(
                0,
                format!("{why}: whether both runs ran the same scenario is not checked"),
            );
            Vec::new()
        }
    };
    Comparison {
        summary: render::summary(&totals, fail_on_regression, exit_code),
        base: RunInfo::of(base),
        new: RunInfo::of(new),
        same_run: same.is_some(),
        scenario_differences,
        warnings,
        statistic: STATISTIC,
        method: *method,
        tolerances: tolerances.clone(),
        rows,
        only_in_base: only_in(&base_groups, &new_groups),
        only_in_new: only_in(&new_groups, &base_groups),
        not_compared,
        notes,
        host_density: host_density(base, new),
        totals,
        fail_on_regression,
        exit_code,
    }
}

/// Density of NEW's host against BASE's when their host labels differ (see
/// [`Comparison::host_density`]).
fn host_density(base: &RunData, new: &RunData) -> Vec<crate::plan::fleet::Density> {
    use crate::plan::fleet;
    if fleet::label_of(base) == fleet::label_of(new) {
        return Vec::new();
    }
    fleet::host_density(base, new, fleet::COMPARE_HEADROOM)
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
    let floor = tolerance::gate(m).floor;
    let judged = verdict::judge_row(
        &interval,
        tol,
        floor,
        (base_median, new_median),
        m.unit.as_str(),
        method,
    );
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
        floor,
        allowed: finite(judged.allowed),
        by_floor: judged.by_floor,
        verdict: judged.verdict,
        reason: judged.reason,
    }
}

/// Regressions, then improvements, then the rest (ok, inconclusive); within each, the largest
/// effect first: |ln ratio|, so that halving and doubling weigh the same. A ratio of 0, below
/// 0 or infinite is the largest effect; a row without a ratio the smallest. Stable: equal
/// effects keep the group and metric order.
fn sort_by_effect(rows: &mut [Row]) {
    let class = |v: Verdict| match v {
        Verdict::Regression => 0,
        Verdict::Improvement => 1,
        Verdict::Ok | Verdict::Inconclusive => 2,
    };
    rows.sort_by(|a, b| {
        class(a.verdict)
            .cmp(&class(b.verdict))
            .then_with(|| effect(b).total_cmp(&effect(a)))
    });
}

/// |ln ratio| of a row (see [`sort_by_effect`]).
fn effect(r: &Row) -> f64 {
    // From the medians rather than `r.ratio`, which is null for an infinite ratio.
    match verdict::ratio(r.new_median, r.base_median) {
        Some(x) if x > 0.0 => x.ln().abs(),
        Some(_) => f64::INFINITY,
        None => -1.0,
    }
}

/// The scenarios the two runs recorded, compared.
fn scenario_check(base: &RunData, new: &RunData) -> ScenarioCheck {
    scenario::check(&base.meta.scenario_text, &new.meta.scenario_text)
}

/// Why BASE and NEW are one run, if they are: the same run id, or the same directory.
fn same_run(base: &RunData, new: &RunData) -> Option<String> {
    if !base.meta.run_id.is_empty() && base.meta.run_id == new.meta.run_id {
        return Some(format!("run id {}", base.meta.run_id));
    }
    let dir = |r: &RunData| r.dir.canonicalize().unwrap_or_else(|_| r.dir.clone());
    (dir(base) == dir(new)).then(|| format!("directory {}", base.dir.display()))
}

/// What qualifies the ratios: runs on different hosts or kernels, failed instances.
fn notes(base: &RunData, new: &RunData, both: &[&Group]) -> Vec<String> {
    let mut out = Vec::new();
    let (b, n) = (&base.meta, &new.meta);
    for (what, bv, nv) in [
        ("host", &b.hostname, &n.hostname),
        ("host label", &b.host_label, &n.host_label),
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

    /// BASE: backends a and b at N=1, 12 repetitions each; NEW: a 2.5 times slower (beyond
    /// the built-in tolerance of start-up, 1), b unchanged without pss, and a group c that
    /// BASE lacks.
    fn runs() -> (RunData, RunData) {
        let base: Vec<Sample> = (0..12)
            .flat_map(|i| {
                let t = 20.0 + f64::from(i % 4) * 0.1;
                [sample("a", 1, i, t, true), sample("b", 1, i, t, true)]
            })
            .collect();
        let mut new: Vec<Sample> = (0..12)
            .flat_map(|i| {
                let t = 20.0 + f64::from(i % 4) * 0.1;
                [
                    sample("a", 1, i, t * 2.5, true),
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
        assert!((a.ratio.unwrap() - 2.5).abs() < 1e-9, "{a:?}");
        assert_eq!(
            (a.base_samples, a.new_samples),
            (12, 12),
            "failed row left out"
        );
        assert_eq!(
            (a.tolerance, a.allowed, a.by_floor),
            (1.0, Some(1.0), false)
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
        assert!(!c.same_run && c.warnings.is_empty(), "{:?}", c.warnings);
        let summary = "1 regression, 0 improvements, 2 within noise (2 ok, 0 inconclusive); \
                       --fail-on-regression: exit 1";
        assert_eq!(c.summary, summary);
        let text = render::text(&c);
        assert!(text.starts_with(&format!("{summary}\n")), "{text}");
        let v: serde_json::Value = serde_json::from_str(&render::json(&c)).unwrap();
        assert_eq!(v["rows"][0]["verdict"], "regression");
        assert_eq!(v["method"]["seed"], verdict::SEED);
        assert_eq!(v["summary"], summary);
    }

    #[test]
    fn without_the_flag_a_regression_exits_zero_and_self_compare_passes() {
        let (base, new) = runs();
        assert_eq!(
            compare_runs(&base, &new, &tol(), &method(), false).exit_code,
            crate::exit::OK
        );
        // A larger tolerance, as a percentage, turns the slowdown into ok.
        let loose = Tolerances::resolve(None, &["startup_ms=200%".into()], None).unwrap();
        let c = compare_runs(&base, &new, &loose, &method(), true);
        assert_eq!(c.totals.regression, 0, "{:?}", c.rows);
    }

    #[test]
    fn a_run_compared_with_itself_passes_and_is_said_to_be_one() {
        let (base, _) = runs();
        let c = compare_runs(&base, &base, &tol(), &method(), true);
        assert_eq!(c.exit_code, crate::exit::OK);
        assert_eq!(c.totals.regression, 0);
        assert!(c.rows.iter().all(|r| r.ratio == Some(1.0)));
        assert!(c.same_run);
        assert!(
            c.warnings[0].starts_with("BASE and NEW are the same run (directory base)"),
            "{:?}",
            c.warnings
        );
        assert!(render::text(&c).contains("\nwarning: BASE and NEW are the same run"));
        // A copy of a run elsewhere is still the same run: its run id says so.
        let mut copy = base.clone();
        copy.dir = PathBuf::from("elsewhere");
        let mut original = base;
        original.meta.run_id = "20261202T070920Z-gate-p1t2".into();
        copy.meta.run_id = original.meta.run_id.clone();
        let c = compare_runs(&original, &copy, &tol(), &method(), true);
        assert!(c.same_run, "{:?}", c.warnings);
        assert!(c.warnings[0].contains("(run id 20261202T070920Z-gate-p1t2)"));
        // Two runs (two ids) in two directories are two runs.
        copy.meta.run_id = "20261202T071000Z-gate-p1t3".into();
        let c = compare_runs(&original, &copy, &tol(), &method(), true);
        assert!(!c.same_run && c.warnings.is_empty(), "{:?}", c.warnings);
    }

    #[test]
    fn different_scenarios_are_a_warning_here_and_unknown_ones_a_note() {
        let (mut base, mut new) = runs();
        let c = compare_runs(&base, &new, &tol(), &method(), false);
        assert!(
            c.notes[0].starts_with("BASE's meta.json records no scenario: whether both runs"),
            "{:?}",
            c.notes
        );
        base.meta.scenario_text = "name = \"x\"\nrepetitions = 12\n".into();
        new.meta.scenario_text = "name = \"x\"\nrepetitions = 15\n".into();
        let c = compare_runs(&base, &new, &tol(), &method(), false);
        assert_eq!(
            c.scenario_differences,
            ["repetitions: 12 in BASE, 15 in NEW"]
        );
        assert_eq!(
            c.warnings,
            [
                "BASE and NEW ran different scenarios (repetitions: 12 in BASE, 15 in NEW): the ratios include that difference"
            ]
        );
    }

    /// Rows of one metric at several effects: regressions first, then improvements, then the
    /// rest, each with the largest |ln ratio| first.
    #[test]
    fn rows_are_sorted_by_verdict_then_effect() {
        let mk = |backends: &[(&str, f64)]| -> RunData {
            let samples = (0..12)
                .flat_map(|i| {
                    backends.iter().map(move |(b, k)| Sample {
                        pss_kib: None,
                        ..sample(b, 1, i, k * (40.0 + f64::from(i % 3)), true)
                    })
                })
                .collect();
            run("r", samples)
        };
        let names = ["same", "x3", "third", "x5", "x1.3", "tenth"];
        let base = mk(&names.map(|n| (n, 1.0)));
        let new = mk(&[
            ("same", 1.0),
            ("x3", 3.0),
            ("third", 1.0 / 3.0),
            ("x5", 5.0),
            ("x1.3", 1.3),
            ("tenth", 0.1),
        ]);
        let mut new = new;
        new.dir = PathBuf::from("n");
        let c = compare_runs(&base, &new, &tol(), &method(), false);
        let order: Vec<(&str, &str)> = c
            .rows
            .iter()
            .filter(|r| r.metric == "startup_ms")
            .map(|r| (r.group.backend.as_str(), r.verdict.word()))
            .collect();
        assert_eq!(
            order,
            [
                ("x5", "regression"),
                ("x3", "regression"),
                ("tenth", "improvement"),
                ("third", "improvement"),
                ("x1.3", "ok"),
                ("same", "ok"),
            ],
            "{:?}",
            c.rows
        );
    }

    /// Tiny values: an idle CPU of 0.1 ms/s becoming 0.5 is five times as much, and noise.
    #[test]
    fn changes_within_the_floor_are_never_a_regression() {
        let cpu = |backend: &str, v: f64| -> Vec<Sample> {
            (0..12)
                .map(|i| Sample {
                    idle_cpu_ms_per_s: Some(v + f64::from(i % 3) * 0.01),
                    ..sample(backend, 1, i, 20.0, true)
                })
                .collect()
        };
        let base = run(
            "b",
            [cpu("small", 0.1), cpu("zero", 0.0), cpu("big", 10.0)].concat(),
        );
        let new = run(
            "n",
            [cpu("small", 0.5), cpu("zero", 1.0), cpu("big", 50.0)].concat(),
        );
        let c = compare_runs(&base, &new, &tol(), &method(), true);
        let row = |b: &str| {
            c.rows
                .iter()
                .find(|r| r.group.backend == b && r.metric == "idle_cpu_ms_per_s")
                .unwrap()
        };
        let small = row("small");
        assert_eq!(small.verdict, Verdict::Ok, "{small:?}");
        assert!(small.by_floor && small.allowed.unwrap() > 4.0, "{small:?}");
        assert!(
            small.reason.contains("widened by the metric's floor"),
            "{small:?}"
        );
        // BASE's median 0.01 here (not 0): 1 ms/s is 100 times as much and within the floor;
        // resampled BASE medians of 0 make the interval unbounded, so it cannot be shown ok.
        let zero = row("zero");
        assert_eq!(zero.verdict, Verdict::Inconclusive, "{zero:?}");
        assert!(zero.by_floor, "{zero:?}");
        // 10 -> 50 ms/s is beyond both floor and tolerance.
        assert_eq!(row("big").verdict, Verdict::Regression);
        assert_eq!(c.totals.regression, 1);
        // With a BASE median of exactly 0 the floor decides on the medians alone.
        let flat = |backend: &str, v: f64| -> Vec<Sample> {
            (0..12)
                .map(|i| Sample {
                    idle_cpu_ms_per_s: Some(v),
                    ..sample(backend, 1, i, 20.0, true)
                })
                .collect()
        };
        let base = run("b", [flat("z", 0.0), flat("y", 0.0)].concat());
        let new = run("n", [flat("z", 1.5), flat("y", 3.0)].concat());
        let c = compare_runs(&base, &new, &tol(), &method(), true);
        let z = c
            .rows
            .iter()
            .find(|r| r.group.backend == "z" && r.metric == "idle_cpu_ms_per_s")
            .unwrap();
        assert_eq!(
            (z.verdict, z.allowed, z.by_floor),
            (Verdict::Ok, None, true),
            "{z:?}"
        );
        assert!(render::text(&c).contains("floor*"));
        let y = c
            .rows
            .iter()
            .find(|r| r.group.backend == "y" && r.metric == "idle_cpu_ms_per_s")
            .unwrap();
        assert_eq!(y.verdict, Verdict::Regression, "{y:?}");
    }

    #[test]
    fn the_same_inputs_print_the_same_intervals() {
        let (base, new) = runs();
        let a = render::json(&compare_runs(&base, &new, &tol(), &method(), false));
        let b = render::json(&compare_runs(&base, &new, &tol(), &method(), false));
        assert_eq!(a, b);
    }
}
