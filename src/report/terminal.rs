//! The tables printed at the end of a run: start-up per backend and N, the costs, and the
//! VM-to-container ratios (all from summary.csv's rows).

use crate::report::claims::{Ratio, summary_band};
use crate::report::flags;
use crate::results::metrics::{
    CGROUP_MEM_KIB, DISK_PRIVATE_KIB, HOST_AVAIL_KIB, IDLE_CPU_MS_PER_S, Metric, PSS_KIB,
    STARTUP_MS,
};
use crate::results::record::{Sample, SummaryRow};
use crate::text::table::{num, render};

const HEADER: [&str; 10] = [
    "backend",
    "accel",
    "N",
    "ok/count",
    "startup p50 (ms)",
    "p90 (ms)",
    "p99 (ms)",
    "mean ± sd (ms)",
    "teardown p50 (ms)",
    "all-ready (ms)",
];

/// Names and labels read left-aligned; numbers right-aligned so their digits line up.
const RIGHT_ALIGNED: [bool; 10] = [false, false, true, true, true, true, true, true, true, true];

/// The table printed at the end of a run: one line per SummaryRow.
/// Columns: backend, accel, N, ok/count, startup p50, p90, p99, mean ± sd (ms), teardown p50
/// (ms), all-ready (ms). Plain text aligned with spaces, a header line and a rule; "-" for
/// missing values. Every line, the rule included, has the same width in characters.
pub fn render_summary(rows: &[SummaryRow]) -> String {
    let cells: Vec<Vec<String>> = rows.iter().map(|r| row_cells(r).to_vec()).collect();
    render(&HEADER, &RIGHT_ALIGNED, &cells)
}

const COST_HEADER: [&str; 13] = [
    "backend",
    "accel",
    "N",
    "PSS (MiB)",
    "USS (MiB)",
    "cgroup (MiB)",
    "host (MiB)",
    "guest kernel (MiB)",
    "VMM (MiB)",
    "engine (MiB)",
    "disk private (MiB)",
    "disk shared (MiB)",
    "idle CPU (ms/s)",
];

/// What each instance costs, per backend and N (means over the ok instances; memory views
/// and disk in MiB per instance, the shared disk once per run): the second table of a run.
pub fn render_costs(rows: &[SummaryRow]) -> String {
    let mib = |x: Option<f64>| opt(x.map(|k| k / 1024.0));
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            vec![
                r.backend.clone(),
                r.accel.clone(),
                r.n.to_string(),
                mib(r.pss_kib_mean),
                mib(r.uss_kib_mean),
                mib(r.cgroup_mem_kib_mean),
                mib(r.host_avail_kib_mean),
                mib(r.guest_kernel_kib_mean),
                mib(r.vmm_overhead_kib_mean),
                mib(r.runtime_overhead_kib_mean),
                mib(r.disk_private_kib_mean),
                mib(r.disk_shared_kib),
                opt(r.idle_cpu_ms_per_s_mean),
            ]
        })
        .collect();
    let mut right = [true; 13];
    right[0] = false;
    right[1] = false;
    render(&COST_HEADER, &right, &cells)
}

/// VM-to-container ratios: how many times more a VM costs than a container under each
/// definition, each backend at the largest N it measured (per-instance figures are steadiest
/// there: the host view's noise is divided by N), both Ns named. Empty when the run lacks
/// either backend.
pub fn render_ratios(rows: &[SummaryRow]) -> String {
    let largest = |b: &str| {
        rows.iter()
            .filter(|r| r.backend == b && r.ok > 0)
            .max_by_key(|r| r.n)
    };
    let (Some(vm), Some(ct)) = (largest("vm"), largest("container")) else {
        return String::new();
    };
    // The claims' rules: no `inf` or NaN, and no ratio from a host-wide reading whose batch
    // is within the host's noise (the metric's host_noise band).
    let ratio = |m: &Metric, v: Option<f64>, c: Option<f64>| {
        Ratio::judged(summary_band(m, rows), true, (v, vm.n), (c, ct.n), |x| x).short("container")
    };
    let figures: [(&str, &Metric, Option<f64>, Option<f64>); 6] = [
        (
            "start-up p50",
            &STARTUP_MS,
            vm.startup_ms_p50,
            ct.startup_ms_p50,
        ),
        ("PSS", &PSS_KIB, vm.pss_kib_mean, ct.pss_kib_mean),
        (
            "host MemAvailable",
            &HOST_AVAIL_KIB,
            vm.host_avail_kib_mean,
            ct.host_avail_kib_mean,
        ),
        (
            "cgroup",
            &CGROUP_MEM_KIB,
            vm.cgroup_mem_kib_mean,
            ct.cgroup_mem_kib_mean,
        ),
        (
            "disk private",
            &DISK_PRIVATE_KIB,
            vm.disk_private_kib_mean,
            ct.disk_private_kib_mean,
        ),
        (
            "idle CPU",
            &IDLE_CPU_MS_PER_S,
            vm.idle_cpu_ms_per_s_mean,
            ct.idle_cpu_ms_per_s_mean,
        ),
    ];
    let parts: Vec<String> = figures
        .iter()
        .map(|(name, m, v, c)| format!("{name} {}", ratio(m, *v, *c)))
        .collect();
    let at = if vm.n == ct.n {
        format!("at N={}", vm.n)
    } else {
        format!("(vm N={}, container N={})", vm.n, ct.n)
    };
    format!("vm / container {at} ({}): {}\n", vm.accel, parts.join(", "))
}

/// The metrics whose flags `isobench run` prints: those of its tables' headline columns.
pub const FLAGGED: [&Metric; 4] = [&STARTUP_MS, &PSS_KIB, &HOST_AVAIL_KIB, &IDLE_CPU_MS_PER_S];

/// The statistics flags of the run's headline figures (outliers, high variance, too few
/// values for an interval), one `flag: ` line each, as hyperfine warns under its results;
/// empty when there is none.
pub fn render_flags(samples: &[Sample]) -> String {
    flags::lines(&flags::flags(samples, &[], &FLAGGED))
        .into_iter()
        .map(|l| format!("flag: {l}\n"))
        .collect()
}

fn row_cells(r: &SummaryRow) -> [String; 10] {
    let mean_sd = match (r.startup_ms_mean, r.startup_ms_sd) {
        (Some(m), Some(s)) => format!("{} ± {}", num(m), num(s)),
        // A single ok sample has a mean but no sd; showing the mean alone says exactly that.
        (Some(m), None) => num(m),
        (None, _) => "-".to_string(),
    };
    [
        r.backend.clone(),
        r.accel.clone(),
        r.n.to_string(),
        format!("{}/{}", r.ok, r.count),
        opt(r.startup_ms_p50),
        opt(r.startup_ms_p90),
        opt(r.startup_ms_p99),
        mean_sd,
        opt(r.teardown_ms_p50),
        opt(r.batch_ready_ms_mean),
    ]
}

fn opt(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_string(), num)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_and_ratios_compare_vm_with_container_at_a_shared_n() {
        let ct = SummaryRow {
            backend: "container".into(),
            accel: "none".into(),
            n: 2,
            ok: 1,
            startup_ms_p50: Some(4.0),
            pss_kib_mean: Some(512.0),
            host_avail_kib_mean: Some(20480.0),
            ..SummaryRow::default()
        };
        let vm = SummaryRow {
            backend: "vm".into(),
            accel: "tcg".into(),
            n: 2,
            ok: 1,
            startup_ms_p50: Some(4000.0),
            pss_kib_mean: Some(204800.0),
            host_avail_kib_mean: Some(204800.0),
            ..SummaryRow::default()
        };
        let costs = render_costs(&[ct.clone(), vm.clone()]);
        assert!(
            costs.contains("200.0 ") && costs.contains("0.50"),
            "{costs}"
        );
        let r = render_ratios(&[ct.clone(), vm.clone()]);
        assert!(r.starts_with("vm / container at N=2 (tcg):"), "{r}");
        let other_n = SummaryRow {
            n: 100,
            ..ct.clone()
        };
        let r2 = render_ratios(&[other_n, SummaryRow { n: 1, ..vm.clone() }]);
        assert!(
            r2.starts_with("vm / container (vm N=1, container N=100) (tcg):"),
            "{r2}"
        );
        assert!(
            r.contains("start-up p50 1000x")
                && r.contains("PSS 400x")
                && r.contains("host MemAvailable 10.0x")
                && r.contains("idle CPU -"),
            "{r}"
        );
        let busy_vm = SummaryRow {
            idle_cpu_ms_per_s_mean: Some(6.0),
            ..vm.clone()
        };
        let idle_ct = SummaryRow {
            idle_cpu_ms_per_s_mean: Some(0.0),
            ..ct.clone()
        };
        let r3 = render_ratios(&[idle_ct, busy_vm]);
        assert!(r3.contains("idle CPU - (container 0)"), "{r3}");
        assert!(!r3.contains("inf") && !r3.contains("NaN"), "{r3}");
        // A container batch that moved MemAvailable by 1 MiB is within the host's noise.
        let quiet_ct = SummaryRow {
            host_avail_kib_mean: Some(1024.0),
            n: 1,
            ..ct.clone()
        };
        let r4 = render_ratios(&[quiet_ct, SummaryRow { n: 1, ..vm.clone() }]);
        assert!(
            r4.contains("host MemAvailable - (within host noise)"),
            "{r4}"
        );
        assert_eq!(render_ratios(&[ct]), "", "no vm, no ratio");
    }

    fn rows() -> Vec<SummaryRow> {
        vec![
            SummaryRow {
                backend: "container".into(),
                accel: "none".into(),
                n: 1,
                count: 10,
                ok: 10,
                startup_ms_mean: Some(4.567),
                startup_ms_sd: Some(0.5),
                startup_ms_p50: Some(4.5),
                startup_ms_p90: Some(5.25),
                startup_ms_p99: Some(5.9),
                startup_ms_min: Some(4.0),
                startup_ms_max: Some(6.0),
                teardown_ms_mean: Some(2.0),
                teardown_ms_p50: Some(1.75),
                batch_ready_ms_mean: None,
                ..SummaryRow::default()
            },
            SummaryRow {
                backend: "qemu-microvm".into(),
                accel: "kvm".into(),
                n: 100,
                count: 100,
                ok: 97,
                startup_ms_mean: Some(1234.4),
                startup_ms_sd: None,
                startup_ms_p50: Some(250.04),
                startup_ms_p90: None,
                startup_ms_p99: Some(12345.6),
                teardown_ms_p50: None,
                batch_ready_ms_mean: Some(4321.0),
                ..SummaryRow::default()
            },
        ]
    }

    #[test]
    fn two_rows_render_aligned() {
        let text = render_summary(&rows());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[0].starts_with("backend"));
        assert!(lines[1].chars().all(|c| c == '-' || c == ' '));
        assert!(lines[2].starts_with("container "));
        assert!(lines[3].starts_with("qemu-microvm "));
        let width = lines[0].chars().count();
        assert!(lines.iter().all(|l| l.chars().count() == width), "{text}");

        // Each column starts where its header does.
        let col = |line: &str, header: &str| -> usize {
            let byte = line.find(header).unwrap();
            line[..byte].chars().count()
        };
        let accel = col(lines[0], "accel");
        assert_eq!(col(lines[2], "none"), accel);
        assert_eq!(col(lines[3], "kvm"), accel);

        assert!(lines[2].contains("10/10"));
        assert!(lines[3].contains("97/100"));
        assert!(lines[2].contains("4.57 ± 0.50"));
        assert!(lines[3].contains("1234"));
        assert!(lines[3].contains("250.0"));
        assert!(lines[3].contains("12346"));
        assert!(lines[3].contains("4321"));
        // None prints as a lone "-".
        assert!(lines[2].split_whitespace().any(|c| c == "-"));
        assert!(lines[3].split_whitespace().filter(|c| *c == "-").count() >= 2);
    }

    #[test]
    fn flags_are_printed_one_line_each() {
        let s = |i: u32, ms: f64| Sample {
            backend: "container".into(),
            accel: "none".into(),
            n: 20,
            instance: i,
            ok: true,
            startup_ms: Some(ms),
            ..Sample::default()
        };
        let mut v: Vec<Sample> = (0..19)
            .map(|i| s(i, 5.0 + f64::from(i % 3) * 0.1))
            .collect();
        v.push(s(19, 500.0));
        let text = render_flags(&v);
        assert!(
            text.starts_with("flag: startup_ms: outliers")
                && text.contains("container N=20 (1 of 20)"),
            "{text}"
        );
        assert!(text.lines().all(|l| l.starts_with("flag: ")), "{text}");
        assert_eq!(render_flags(&v[..19]), "", "a steady group has no flag");
    }

    #[test]
    fn empty_renders_header_and_rule() {
        let text = render_summary(&[]);
        assert_eq!(text.lines().count(), 2);
        assert!(text.contains("all-ready (ms)"));
    }
}
