//! The figures `compare` compares: the rows of [`crate::results::metrics::METRICS`] marked
//! `compared` (per-instance columns of samples.csv, all lower-is-better), and how one group's
//! values of each are taken from its samples.

use crate::results::metrics::{self, Metric};
use crate::results::record::Sample;

/// Every compared metric, in the table's order.
pub fn all() -> impl Iterator<Item = &'static Metric> {
    metrics::compared()
}

/// The compared metric called `name`.
pub fn find(name: &str) -> Option<&'static Metric> {
    all().find(|m| m.name == name)
}

/// The README's row of `m` in the table of built-in tolerances and floors.
pub fn gate_row(m: &Metric) -> String {
    let g = super::tolerance::gate(m);
    format!(
        "| `{}` | {} | {} {} |",
        m.name,
        super::verdict::tolerance_text(g.tolerance),
        g.floor,
        m.unit
    )
}

/// Every compared metric's name, comma-separated: what error messages list as allowed.
pub fn names() -> String {
    all().map(|m| m.name).collect::<Vec<_>>().join(", ")
}

/// The values of `m` over `samples` (one group's rows): ok rows only, empty cells and NaN left
/// out; for a per-batch metric, the first ok row of each repetition, because N copies of one
/// reading are one observation, and counting them as N would shrink its interval to nothing.
pub fn values<'a>(m: &Metric, samples: impl IntoIterator<Item = &'a Sample>) -> Vec<f64> {
    let mut seen_reps: Vec<u32> = Vec::new();
    let mut out = Vec::new();
    for s in samples.into_iter().filter(|s| s.ok) {
        if m.per_batch {
            if seen_reps.contains(&s.rep) {
                continue;
            }
            seen_reps.push(s.rep);
        }
        if let Some(v) = m.of_sample(s).filter(|v| !v.is_nan()) {
            out.push(v);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::metrics::{HOST_AVAIL_KIB, PSS_KIB, STARTUP_MS};

    #[test]
    fn the_compared_metrics_are_the_eleven_cost_columns() {
        assert_eq!(
            names(),
            "startup_ms, teardown_ms, pss_kib, uss_kib, rss_kib, cgroup_mem_kib, host_avail_kib, \
             vmm_overhead_kib, guest_kernel_kib, disk_private_kib, idle_cpu_ms_per_s"
        );
        assert_eq!(find("startup_ms").unwrap().unit.as_str(), "ms");
        assert_eq!(find("idle_cpu_ms_per_s").unwrap().unit.as_str(), "ms/s");
        assert!(find("startup").is_none());
        assert!(find("spawn_ms").is_none(), "a metric compare leaves out");
    }

    #[test]
    fn the_readme_lists_the_compared_metrics() {
        let readme = include_str!("../../README.md")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let listed = all()
            .map(|m| format!("`{}`", m.name))
            .collect::<Vec<_>>()
            .join(", ");
        assert!(
            readme.contains(&format!("`ok = true` only: {listed} (definitions")),
            "README.md's \"What is compared\" does not list {listed}"
        );
    }

    #[test]
    fn the_readme_lists_the_built_in_tolerances_as_the_table_does() {
        let rows = crate::results::metrics::tests::readme_table(
            "| metric | built-in tolerance | floor |\n|---|---|---|\n",
        );
        let want: Vec<String> = all().map(gate_row).collect();
        assert_eq!(
            rows,
            want,
            "README.md's built-in tolerances differ from results::metrics::METRICS; want:\n{}",
            want.join("\n")
        );
    }

    #[test]
    fn values_skip_failed_rows_empty_cells_and_repeat_batch_figures() {
        let row = |rep, ok, startup: Option<f64>, avail| Sample {
            rep,
            ok,
            startup_ms: startup,
            host_avail_kib: Some(avail),
            ..Sample::default()
        };
        let rows = [
            row(0, true, Some(5.0), 100.0),
            row(0, true, Some(6.0), 100.0),
            row(0, false, Some(99.0), 100.0),
            row(1, true, None, 200.0),
            row(1, true, Some(f64::NAN), 200.0),
            row(1, true, Some(7.0), 200.0),
        ];
        assert_eq!(values(&STARTUP_MS, &rows), [5.0, 6.0, 7.0]);
        assert_eq!(values(&HOST_AVAIL_KIB, &rows), [100.0, 200.0]);
        assert!(values(&PSS_KIB, &rows).is_empty());
    }
}
