//! One [`SummaryRow`] per (backend, accelerator, N) group of samples.

use std::collections::HashMap;

use crate::results::metrics::{
    CGROUP_MEM_KIB, DISK_PRIVATE_KIB, DISK_SHARED_KIB, GUEST_KERNEL_KIB, HOST_AVAIL_KIB,
    IDLE_CPU_MS_PER_S, Metric, PSS_KIB, RSS_KIB, RUNTIME_OVERHEAD_KIB, STARTUP_MS, TEARDOWN_MS,
    USS_KIB, VMM_OVERHEAD_KIB,
};
use crate::results::record::{Sample, SummaryRow};
use crate::stats;

/// (backend, accel, n), borrowed from the samples.
type Key<'a> = (&'a str, &'a str, u32);

/// Groups samples by (backend, accel, n) in first-seen order and computes one SummaryRow each.
///
/// `batch_ready_ms` holds `(backend, accel, n, ms)`, one entry per batch (repetition);
/// `batch_ready_ms_mean` is the mean of the entries matching the group. Entries for a group
/// with no samples are ignored: a summary row describes samples, and a batch without any is
/// not a measurement of that group.
///
/// Start-up statistics cover the `ok` rows only, since a failed instance has no meaningful
/// start-up time; teardown covers every row that has one, because failed instances are torn
/// down too and that cost is real. NaN values are ignored (see [`crate::stats`]).
pub fn summarize(
    samples: &[Sample],
    batch_ready_ms: &[(String, String, u32, f64)],
) -> Vec<SummaryRow> {
    // A HashMap alone would lose the first-seen order the report promises, so it only maps
    // each key to its position in `groups`.
    let mut index: HashMap<Key<'_>, usize> = HashMap::new();
    let mut groups: Vec<(Key<'_>, Vec<&Sample>)> = Vec::new();
    for s in samples {
        let key = (s.backend.as_str(), s.accel.as_str(), s.n);
        let i = *index.entry(key).or_insert_with(|| {
            groups.push((key, Vec::new()));
            groups.len() - 1
        });
        groups[i].1.push(s);
    }

    groups
        .into_iter()
        .map(|((backend, accel, n), rows)| {
            let startup: Vec<f64> = rows
                .iter()
                .filter(|s| s.ok)
                .filter_map(|s| STARTUP_MS.of_sample(s))
                .collect();
            let teardown: Vec<f64> = rows
                .iter()
                .filter_map(|s| TEARDOWN_MS.of_sample(s))
                .collect();
            let batch: Vec<f64> = batch_ready_ms
                .iter()
                .filter(|(b, a, bn, _)| b == backend && a == accel && *bn == n)
                .map(|&(_, _, _, ms)| ms)
                .collect();
            let d = stats::describe(&startup);
            SummaryRow {
                backend: backend.to_owned(),
                accel: accel.to_owned(),
                n,
                count: saturating_u32(rows.len()),
                ok: saturating_u32(rows.iter().filter(|s| s.ok).count()),
                startup_ms_mean: d.map(|d| d.mean),
                startup_ms_sd: d.and_then(|d| d.sd),
                startup_ms_p50: d.map(|d| d.p50),
                startup_ms_p90: d.map(|d| d.p90),
                startup_ms_p99: d.map(|d| d.p99),
                startup_ms_min: d.map(|d| d.min),
                startup_ms_max: d.map(|d| d.max),
                teardown_ms_mean: stats::mean(&teardown),
                teardown_ms_p50: stats::percentile(&teardown, 50.0),
                batch_ready_ms_mean: stats::mean(&batch),
                pss_kib_mean: mean_of(&rows, &PSS_KIB),
                uss_kib_mean: mean_of(&rows, &USS_KIB),
                rss_kib_mean: mean_of(&rows, &RSS_KIB),
                cgroup_mem_kib_mean: mean_of(&rows, &CGROUP_MEM_KIB),
                host_avail_kib_mean: mean_of(&rows, &HOST_AVAIL_KIB),
                vmm_overhead_kib_mean: mean_of(&rows, &VMM_OVERHEAD_KIB),
                runtime_overhead_kib_mean: mean_of(&rows, &RUNTIME_OVERHEAD_KIB),
                guest_kernel_kib_mean: mean_of(&rows, &GUEST_KERNEL_KIB),
                disk_private_kib_mean: mean_of(&rows, &DISK_PRIVATE_KIB),
                disk_shared_kib: mean_of(&rows, &DISK_SHARED_KIB),
                idle_cpu_ms_per_s_mean: mean_of(&rows, &IDLE_CPU_MS_PER_S),
            }
        })
        .collect()
}

/// Mean of one per-instance figure over the rows that have it (the `ok` rows: a failed
/// instance was not measured).
fn mean_of(rows: &[&Sample], m: &Metric) -> Option<f64> {
    let v: Vec<f64> = rows
        .iter()
        .filter(|s| s.ok)
        .filter_map(|s| m.of_sample(s))
        .collect();
    stats::mean(&v)
}

/// Counts beyond u32::MAX samples cannot happen in practice; saturating keeps the conversion
/// total without a panic path.
fn saturating_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(backend: &str, accel: &str, n: u32, ok: bool, startup: Option<f64>) -> Sample {
        Sample {
            backend: backend.into(),
            accel: accel.into(),
            n,
            ok,
            startup_ms: startup,
            teardown_ms: Some(10.0),
            ..Sample::default()
        }
    }

    #[test]
    fn groups_in_first_seen_order() {
        let samples = vec![
            sample("qemu", "kvm", 2, true, Some(100.0)),
            sample("container", "none", 1, true, Some(5.0)),
            sample("qemu", "kvm", 2, true, Some(200.0)),
            sample("qemu", "tcg", 2, true, Some(900.0)),
            sample("container", "none", 1, false, None),
        ];
        let rows = summarize(&samples, &[]);
        let keys: Vec<_> = rows
            .iter()
            .map(|r| (r.backend.as_str(), r.accel.as_str(), r.n))
            .collect();
        assert_eq!(
            keys,
            [
                ("qemu", "kvm", 2),
                ("container", "none", 1),
                ("qemu", "tcg", 2)
            ]
        );
        assert_eq!((rows[0].count, rows[0].ok), (2, 2));
        assert_eq!(rows[0].startup_ms_mean, Some(150.0));
        assert_eq!(rows[0].startup_ms_p50, Some(150.0));
        assert_eq!(rows[0].startup_ms_min, Some(100.0));
        assert_eq!(rows[0].startup_ms_max, Some(200.0));
        assert_eq!((rows[1].count, rows[1].ok), (2, 1));
        assert_eq!(rows[1].startup_ms_sd, None);
        assert_eq!(rows[1].teardown_ms_mean, Some(10.0));
    }

    #[test]
    fn failed_rows_are_left_out_of_startup_but_not_teardown() {
        let mut bad = sample("runc", "none", 1, false, Some(9999.0));
        bad.teardown_ms = Some(30.0);
        let samples = vec![sample("runc", "none", 1, true, Some(4.0)), bad];
        let rows = summarize(&samples, &[]);
        assert_eq!(rows[0].startup_ms_mean, Some(4.0));
        assert_eq!(rows[0].startup_ms_max, Some(4.0));
        assert_eq!(rows[0].teardown_ms_mean, Some(20.0));
        assert_eq!(rows[0].teardown_ms_p50, Some(20.0));
    }

    #[test]
    fn nothing_to_compute_gives_none() {
        let mut s = sample("qemu", "kvm", 1, false, None);
        s.teardown_ms = None;
        let rows = summarize(&[s], &[]);
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!((r.count, r.ok), (1, 0));
        assert_eq!(r.startup_ms_mean, None);
        assert_eq!(r.startup_ms_sd, None);
        assert_eq!(r.startup_ms_p99, None);
        assert_eq!(r.teardown_ms_mean, None);
        assert_eq!(r.teardown_ms_p50, None);
        assert_eq!(r.batch_ready_ms_mean, None);
    }

    #[test]
    fn batch_ready_matches_backend_accel_and_n() {
        let samples = vec![
            sample("qemu", "kvm", 2, true, Some(1.0)),
            sample("qemu", "tcg", 2, true, Some(1.0)),
        ];
        let batches = vec![
            ("qemu".to_string(), "kvm".to_string(), 2, 300.0),
            ("qemu".to_string(), "kvm".to_string(), 2, 500.0),
            ("qemu".to_string(), "kvm".to_string(), 4, 9000.0),
            ("qemu".to_string(), "tcg".to_string(), 2, 7000.0),
            ("runc".to_string(), "none".to_string(), 2, 1.0),
        ];
        let rows = summarize(&samples, &batches);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].batch_ready_ms_mean, Some(400.0));
        assert_eq!(rows[1].batch_ready_ms_mean, Some(7000.0));
    }

    #[test]
    fn every_statistic_the_table_gives_summary_csv_is_computed() {
        use crate::results::metrics::{METRICS, Read, row_with};
        // Two ok rows with every per-instance figure set, and one batch.
        let numbers = |value: &'static str| {
            move |c: &str| {
                if c == "ok" {
                    Some("true")
                } else {
                    METRICS
                        .iter()
                        .any(|m| m.name == c && matches!(m.read, Read::Sample(_)))
                        .then_some(value)
                }
            }
        };
        let rows: Vec<Sample> = vec![row_with(&numbers("2")), row_with(&numbers("4"))];
        let r = &summarize(&rows, &[(String::new(), String::new(), 0, 5.0)])[0];
        for m in METRICS {
            for (stat, _) in m.summary {
                assert!(
                    m.of_summary(*stat, r).is_some(),
                    "{m:?} {stat:?} not computed"
                );
            }
        }
        assert_eq!(
            PSS_KIB.of_summary(crate::results::metrics::Stat::Mean, r),
            Some(3.0)
        );
    }

    #[test]
    fn no_samples_no_rows() {
        let batches = vec![("qemu".to_string(), "kvm".to_string(), 2, 300.0)];
        assert!(summarize(&[], &batches).is_empty());
    }
}
