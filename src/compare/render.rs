//! Printing a comparison: an aligned text table for people, one JSON document for tools.

use super::verdict::{NoInterval, percent, tolerance_text};
use super::{Comparison, Group, Row, Totals};
use crate::stats::Interval;
use crate::text::table::{num, render};

/// The ratio NEW/BASE as the table prints it: three decimals (a 10% tolerance needs more than
/// the two of `num`), and words where it is not a finite number.
pub fn ratio_text(ratio: Option<f64>, base_median: f64, new_median: f64) -> String {
    match ratio {
        None => "none (BASE < 0)".into(),
        // Words, never `inf`: a user reads "grew from 0", not a float's spelling.
        Some(r) if r == f64::INFINITY => "none (BASE median 0, NEW above)".into(),
        Some(r) if r == f64::NEG_INFINITY => "none (BASE median 0, NEW below)".into(),
        Some(_) if base_median == 0.0 && new_median == 0.0 => "1 (both 0)".into(),
        Some(r) => ratio_num(r),
    }
}

fn ratio_num(r: f64) -> String {
    if r == f64::INFINITY {
        // An interval's end where a resample's BASE median was 0: no bound, said in words.
        "unbounded".into()
    } else if !r.is_finite() {
        "none".into()
    } else if r.abs() < 9.9995 {
        format!("{r:.3}")
    } else {
        num(r)
    }
}

/// The interval as the table prints it, or why there is none.
pub fn interval_text(interval: &Result<Interval, NoInterval>) -> String {
    match interval {
        Ok(iv) => format!("[{}, {}]", ratio_num(iv.lo), ratio_num(iv.hi)),
        Err(NoInterval::TooFewSamples { have: 1, .. }) => "1 sample: no interval".into(),
        Err(NoInterval::TooFewSamples { have, need }) => {
            format!("{have} samples (< {need}): no interval")
        }
        Err(NoInterval::NoRatio) => "none (BASE < 0)".into(),
        Err(NoInterval::NegativeResample) => "none (BASE < 0 in resamples)".into(),
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

fn groups_text(gs: &[Group]) -> String {
    if gs.is_empty() {
        return "-".into();
    }
    gs.iter()
        .map(Group::describe)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The verdicts in one line: "1 regression, 0 improvements, 16 within noise (9 ok, 7
/// inconclusive)", and with `--fail-on-regression` the exit code it leads to.
pub fn summary(t: &Totals, fail_on_regression: bool, exit_code: i32) -> String {
    let mut s = format!(
        "{}, {}, {} within noise ({} ok, {} inconclusive)",
        plural(t.regression, "regression", "regressions"),
        plural(t.improvement, "improvement", "improvements"),
        t.within_noise(),
        t.ok,
        t.inconclusive
    );
    if fail_on_regression {
        s.push_str(&format!("; --fail-on-regression: exit {exit_code}"));
    }
    s
}

/// The tolerance column: the tolerance the verdict used, marked `*` where the metric's floor
/// set it (see the legend under the table).
fn tol_cell(r: &Row) -> String {
    match (r.by_floor, r.allowed) {
        (false, _) => tolerance_text(r.tolerance),
        (true, Some(a)) => format!("{}*", tolerance_text(a)),
        (true, None) => "floor*".into(),
    }
}

/// The comparison as text: the summary line, both runs, warnings, what was compared and how,
/// the table (largest effects first), groups and metrics left out, notes, and the totals.
pub fn text(c: &Comparison) -> String {
    let mut out = format!("{}\n", c.summary);
    for (which, r) in [("BASE", &c.base), ("NEW ", &c.new)] {
        out.push_str(&format!(
            "{which} {} ({}): run {}, host {}, started {}\n",
            r.label,
            r.dir.display(),
            or_dash(&r.run_id),
            or_dash(&r.hostname),
            or_dash(&r.started_at)
        ));
    }
    for w in &c.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    let m = &c.method;
    let pct = percent(m.confidence);
    out.push_str(&format!(
        "ratio = NEW median / BASE median; every metric is lower-is-better, so above 1 is worse\n\
         interval: {pct}% bootstrap percentile, {} resamples of each run, fixed seed {} (reruns \
         print the same); none with fewer than {} values in a run\n",
        m.resamples, m.seed, m.min_samples
    ));
    out.push_str(
        "verdict, against the band [1/(1 + tol), 1 + tol]: regression = interval above it; \
         improvement = below it; ok = within it; inconclusive = reaches past it, or no interval\n\
         the intervals cover the noise within each run, not drift between runs: the built-in \
         tolerances allow for a busy host's drift; size your own by comparing two runs of the \
         unchanged system\n",
    );
    let t = &c.tolerances;
    let mut tol = match t.default {
        Some(d) => format!(
            "tolerances: default {} (from {})",
            tolerance_text(d),
            t.default_from
        ),
        None => format!("tolerances: {} (README: Tolerances)", t.default_from),
    };
    for (name, v) in &t.metrics {
        tol.push_str(&format!(", {name} {}", tolerance_text(*v)));
    }
    out.push_str(&tol);
    out.push_str("\n\n");

    let ci_header = format!("{pct}% interval");
    let header = [
        "backend",
        "accel",
        "N",
        "metric (unit)",
        "values B/N",
        "BASE median",
        "NEW median",
        "ratio",
        ci_header.as_str(),
        "tol",
        "verdict",
    ];
    let right = [
        false, false, true, false, true, true, true, true, false, true, false,
    ];
    let cells: Vec<Vec<String>> = c
        .rows
        .iter()
        .map(|r| {
            vec![
                r.group.backend.clone(),
                r.group.accel.clone(),
                r.group.n.to_string(),
                format!("{} ({})", r.metric, r.unit),
                format!("{}/{}", r.base_samples, r.new_samples),
                num(r.base_median),
                num(r.new_median),
                r.ratio_text.clone(),
                r.ci_text.clone(),
                tol_cell(r),
                r.verdict.word().to_string(),
            ]
        })
        .collect();
    if cells.is_empty() {
        out.push_str("no group (backend, accel, N) with values in both runs\n");
    } else {
        out.push_str(&render(&header, &right, &cells));
        if c.rows.iter().any(|r| r.by_floor) {
            out.push_str(
                "*: the metric's floor (a change that is noise whatever the ratio) divided by \
                 BASE's median is wider than its tolerance; floor*: the medians are within the \
                 floor and BASE's is 0 or below\n",
            );
        }
    }
    out.push('\n');
    out.push_str(&format!(
        "only in BASE: {}\nonly in NEW: {}\n",
        groups_text(&c.only_in_base),
        groups_text(&c.only_in_new)
    ));
    if !c.not_compared.is_empty() {
        let list: Vec<String> = c
            .not_compared
            .iter()
            .map(|n| {
                format!(
                    "{} {} (only in {})",
                    n.group.describe(),
                    n.metric,
                    n.only_in
                )
            })
            .collect();
        out.push_str(&format!(
            "not compared, values in one run only: {}\n",
            list.join(", ")
        ));
    }
    for n in &c.notes {
        out.push_str(&format!("note: {n}\n"));
    }
    out.push_str(&hosts_text(&c.host_density));
    out.push_str(&c.summary);
    out.push('\n');
    out
}

/// NEW's host against BASE's: instances per host and which is denser, when they differ.
fn hosts_text(ds: &[crate::plan::fleet::Density]) -> String {
    use crate::text::format::sig;
    let Some(first) = ds.first() else {
        return String::new();
    };
    let rows: Vec<Vec<String>> = ds
        .iter()
        .map(|d| {
            vec![
                d.backend.clone(),
                d.a_per_host.to_string(),
                d.b_per_host.to_string(),
                format!("{}x", sig(d.ratio)),
                d.ratio_range.map_or("-".into(), |(l, h)| {
                    format!("[{}, {}]", sig(l), h.map_or("unbounded".into(), sig))
                }),
                d.verdict(),
            ]
        })
        .collect();
    let base = format!("per host {}", first.a);
    let new = format!("per host {}", first.b);
    format!(
        "hosts: {} (NEW) against {} (BASE): instances of the run's workload one host holds, by each run's own memory and cores with {}% headroom (`plan`'s max N); interval from the ±2 SE ranges: [NEW low / BASE high, NEW high / BASE low]; `plan --fleet` plans with costs and other sizes\n{}",
        first.b,
        first.a,
        sig(crate::plan::fleet::COMPARE_HEADROOM * 100.0),
        render(
            &[
                "backend",
                &base,
                &new,
                "ratio NEW/BASE",
                "interval",
                "verdict"
            ],
            &[false, true, true, true, false, false],
            &rows
        )
    )
}

fn or_dash(s: &str) -> &str {
    if s.is_empty() { "-" } else { s }
}

/// The comparison as one JSON document (pretty-printed). Non-finite numbers are null with a
/// `*_text` field in words beside them, so no NaN or Infinity (invalid JSON) is ever written.
pub fn json(c: &Comparison) -> String {
    serde_json::to_string_pretty(c).expect("a comparison serializes: plain data")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratio_words_for_what_is_not_a_number() {
        assert_eq!(ratio_text(Some(1.02345), 10.0, 10.2345), "1.023");
        assert_eq!(ratio_text(Some(1.0), 0.0, 0.0), "1 (both 0)");
        assert_eq!(
            ratio_text(Some(f64::INFINITY), 0.0, 3.0),
            "none (BASE median 0, NEW above)"
        );
        assert_eq!(ratio_text(None, -3.0, 3.0), "none (BASE < 0)");
        assert_eq!(ratio_text(Some(123.456), 1.0, 123.456), "123.5");
    }

    #[test]
    fn interval_words() {
        let iv = Ok(Interval {
            lo: 0.98765,
            hi: f64::INFINITY,
        });
        assert_eq!(interval_text(&iv), "[0.988, unbounded]");
        assert_eq!(
            interval_text(&Err(NoInterval::TooFewSamples { have: 1, need: 6 })),
            "1 sample: no interval"
        );
        assert_eq!(
            interval_text(&Err(NoInterval::TooFewSamples { have: 3, need: 6 })),
            "3 samples (< 6): no interval"
        );
    }
}
