//! The figures `compare` compares: the per-instance columns of samples.csv, all lower-is-better,
//! and how one group's values of each are taken from its samples.

use crate::results::record::{DEFINITIONS, Sample};

/// One compared column of samples.csv.
#[derive(Debug, Clone, Copy)]
pub struct Metric {
    /// The column's name in samples.csv (and in `record::DEFINITIONS`).
    pub name: &'static str,
    /// True when the column holds one figure per batch repeated on each of its N rows
    /// (`host_avail_kib` is the batch's MemAvailable decrease divided by N): it is then taken
    /// once per batch, because N copies of one reading are one observation, and counting them
    /// as N would shrink its interval to nothing.
    pub per_batch: bool,
    get: fn(&Sample) -> Option<f64>,
}

fn kib(x: Option<u64>) -> Option<f64> {
    x.map(|v| v as f64)
}

/// Every compared metric, in the order tables list them. All are costs: lower is better.
pub const METRICS: [Metric; 11] = [
    Metric {
        name: "startup_ms",
        per_batch: false,
        get: |s| s.startup_ms,
    },
    Metric {
        name: "teardown_ms",
        per_batch: false,
        get: |s| s.teardown_ms,
    },
    Metric {
        name: "pss_kib",
        per_batch: false,
        get: |s| kib(s.pss_kib),
    },
    Metric {
        name: "uss_kib",
        per_batch: false,
        get: |s| kib(s.uss_kib),
    },
    Metric {
        name: "rss_kib",
        per_batch: false,
        get: |s| kib(s.rss_kib),
    },
    Metric {
        name: "cgroup_mem_kib",
        per_batch: false,
        get: |s| kib(s.cgroup_mem_kib),
    },
    Metric {
        name: "host_avail_kib",
        per_batch: true,
        get: |s| s.host_avail_kib,
    },
    Metric {
        name: "vmm_overhead_kib",
        per_batch: false,
        get: |s| kib(s.vmm_overhead_kib),
    },
    Metric {
        name: "guest_kernel_kib",
        per_batch: false,
        get: |s| kib(s.guest_kernel_kib),
    },
    Metric {
        name: "disk_private_kib",
        per_batch: false,
        get: |s| kib(s.disk_private_kib),
    },
    Metric {
        name: "idle_cpu_ms_per_s",
        per_batch: false,
        get: |s| s.idle_cpu_ms_per_s,
    },
];

/// The metric called `name`, if `compare` knows it.
pub fn find(name: &str) -> Option<&'static Metric> {
    METRICS.iter().find(|m| m.name == name)
}

/// Every metric name, comma-separated: what error messages list as allowed.
pub fn names() -> String {
    METRICS.map(|m| m.name).join(", ")
}

impl Metric {
    /// The unit of the metric as `record::DEFINITIONS` gives it ("ms", "KiB", "ms/s").
    pub fn unit(&self) -> &'static str {
        DEFINITIONS
            .iter()
            .find(|(col, _, _)| *col == self.name)
            .map_or("", |(_, unit, _)| *unit)
    }

    /// The values of this metric over `samples` (one group's rows): ok rows only, empty cells
    /// and NaN left out; for a per-batch metric, the first ok row of each repetition.
    pub fn values<'a>(&self, samples: impl IntoIterator<Item = &'a Sample>) -> Vec<f64> {
        let mut seen_reps: Vec<u32> = Vec::new();
        let mut out = Vec::new();
        for s in samples.into_iter().filter(|s| s.ok) {
            if self.per_batch {
                if seen_reps.contains(&s.rep) {
                    continue;
                }
                seen_reps.push(s.rep);
            }
            if let Some(v) = (self.get)(s).filter(|v| !v.is_nan()) {
                out.push(v);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_is_a_defined_column_with_a_unit() {
        for m in &METRICS {
            assert!(!m.unit().is_empty(), "{} has no definition", m.name);
        }
        assert_eq!(find("startup_ms").unwrap().unit(), "ms");
        assert_eq!(find("idle_cpu_ms_per_s").unwrap().unit(), "ms/s");
        assert!(find("startup").is_none());
    }

    #[test]
    fn every_metric_reads_its_own_column() {
        // Each field gets a distinct value; each metric must return the one of its column.
        let s = Sample {
            ok: true,
            startup_ms: Some(1.0),
            teardown_ms: Some(2.0),
            pss_kib: Some(3),
            uss_kib: Some(4),
            rss_kib: Some(5),
            cgroup_mem_kib: Some(6),
            host_avail_kib: Some(7.0),
            vmm_overhead_kib: Some(8),
            guest_kernel_kib: Some(9),
            disk_private_kib: Some(10),
            idle_cpu_ms_per_s: Some(11.0),
            ..Sample::default()
        };
        let got: Vec<f64> = METRICS.iter().map(|m| m.values([&s])[0]).collect();
        assert_eq!(got, (1..=11).map(f64::from).collect::<Vec<_>>());
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
        assert_eq!(find("startup_ms").unwrap().values(&rows), [5.0, 6.0, 7.0]);
        assert_eq!(
            find("host_avail_kib").unwrap().values(&rows),
            [100.0, 200.0]
        );
        assert!(find("pss_kib").unwrap().values(&rows).is_empty());
    }
}
