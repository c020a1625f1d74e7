//! Runs from many hosts: how a report names each run after its host, and the backend x host
//! table. A run's rows are traced to their host by their run directory: every run directory
//! holds one host's meta.json (host_label, CPU, memory, virtualization), so samples.csv needs
//! no host column.
//!
//! Runs of the same host label are kept apart in a report (each is a column of its own,
//! named `label/directory`): the report shows what each host measured; `plan --fleet` pools
//! them into one host type.

use std::collections::BTreeSet;

use crate::report::document::{Block, Table};
use crate::results::load::RunData;
use crate::results::metrics::{HOST_AVAIL_KIB, IDLE_CPU_MS_PER_S, Metric, PSS_KIB, STARTUP_MS};
use crate::results::record::SummaryRow;
use crate::text::format::sig;

/// The host a run was measured on: host_label, else hostname (an older isobench), else "-".
pub fn host_of(r: &RunData) -> &str {
    [&r.meta.host_label, &r.meta.hostname]
        .into_iter()
        .find(|l| !l.is_empty())
        .map_or("-", |s| s.as_str())
}

/// True when the runs come from more than one host.
pub fn several_hosts(runs: &[RunData]) -> bool {
    runs.iter().map(host_of).collect::<BTreeSet<_>>().len() > 1
}

/// Default labels for runs of several hosts: the host label, or `label/directory` when two
/// runs share a host label. Runs of one host keep their directory names.
pub fn host_labels(runs: &[RunData]) -> Option<Vec<String>> {
    if !several_hosts(runs) {
        return None;
    }
    Some(
        runs.iter()
            .map(|r| {
                let h = host_of(r);
                if runs.iter().filter(|o| host_of(o) == h).count() > 1 {
                    format!("{h}/{}", r.label)
                } else {
                    h.to_string()
                }
            })
            .collect(),
    )
}

/// The figures of the backend x host table, each from summary.csv at the run's largest N.
pub const METRICS: [&Metric; 4] = [&STARTUP_MS, &PSS_KIB, &HOST_AVAIL_KIB, &IDLE_CPU_MS_PER_S];

/// The row of each backend at its largest N with an ok instance.
fn at_largest_n<'a>(r: &'a RunData, backend: &str, accel: &str) -> Option<&'a SummaryRow> {
    r.summary
        .iter()
        .filter(|s| s.backend == backend && s.accel == accel && s.ok > 0)
        .max_by_key(|s| s.n)
}

/// Backend x host: one row per backend and run, grouped by backend so hosts sit together.
pub fn table(runs: &[RunData]) -> Table {
    let mut backends: Vec<(String, String)> = Vec::new();
    for r in runs {
        for k in r.backends() {
            if !backends.contains(&k) {
                backends.push(k);
            }
        }
    }
    let mib = |kib: Option<f64>| kib.map_or("-".into(), |k| sig(k / 1024.0));
    let num = |v: Option<f64>| v.map_or("-".into(), sig);
    let mut rows = Vec::new();
    for (b, a) in &backends {
        for r in runs {
            let Some(s) = at_largest_n(r, b, a) else {
                continue;
            };
            rows.push(vec![
                b.clone(),
                a.clone(),
                r.label.clone(),
                format!(
                    "{}, {} cores, {} GiB",
                    r.meta.virtualization.describe(),
                    r.meta.cpu_cores,
                    sig(r.meta.mem_total_kib as f64 / 1024.0 / 1024.0)
                ),
                s.n.to_string(),
                num(s.startup_ms_p50),
                mib(s.pss_kib_mean),
                mib(s.host_avail_kib_mean),
                num(s.idle_cpu_ms_per_s_mean),
            ]);
        }
    }
    let header = vec![
        "backend".to_string(),
        "accel".into(),
        "host".into(),
        "host type".into(),
        "N".into(),
        format!("{} p50 ({})", STARTUP_MS.name, STARTUP_MS.unit.as_str()),
        format!("{} mean (MiB)", PSS_KIB.name),
        format!("{} mean (MiB)", HOST_AVAIL_KIB.name),
        format!(
            "{} mean ({})",
            IDLE_CPU_MS_PER_S.name,
            IDLE_CPU_MS_PER_S.unit.as_str()
        ),
    ];
    let mut right = vec![true; header.len()];
    right[..4].fill(false);
    Table {
        header,
        right,
        rows,
    }
}

/// The report's "Per host" section, when the runs come from several hosts.
pub fn section(b: &mut Vec<Block>, runs: &[RunData], used: &mut BTreeSet<&'static Metric>) {
    if !several_hosts(runs) {
        return;
    }
    used.extend(METRICS);
    b.push(Block::Heading(2, "Per host".into()));
    b.push(Block::Para(
        "Each backend on each host, at the largest N the host's run measured (per-instance \
         means over its ok instances; start-up the median). A run's rows belong to the host \
         of its directory's meta.json; runs of one host label are shown apart. For instances \
         per host and a fleet, `isobench plan --fleet` fits each host type's cost line."
            .into(),
    ));
    b.push(Block::Table(table(runs)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::record::SummaryRow;

    fn run(dir: &str, host: &str, pss: f64) -> RunData {
        RunData {
            dir: dir.into(),
            label: dir.into(),
            meta: crate::results::meta::RunMeta {
                host_label: host.into(),
                cpu_cores: 4,
                mem_total_kib: 8 * 1024 * 1024,
                ..Default::default()
            },
            samples: Vec::new(),
            summary: [1, 4]
                .into_iter()
                .map(|n| SummaryRow {
                    backend: "container".into(),
                    accel: "none".into(),
                    n,
                    count: n,
                    ok: n,
                    pss_kib_mean: Some(pss * f64::from(n)),
                    ..Default::default()
                })
                .collect(),
            kernel: Vec::new(),
            until: Vec::new(),
            syscalls: Vec::new(),
        }
    }

    #[test]
    fn runs_are_named_after_their_hosts_and_shared_labels_kept_apart() {
        let one_host = [run("r1", "a", 1024.0), run("r2", "a", 1024.0)];
        assert_eq!(
            host_labels(&one_host),
            None,
            "one host: directory names stay"
        );
        let runs = [
            run("r1", "small", 1024.0),
            run("r2", "big", 2048.0),
            run("r3", "big", 2048.0),
        ];
        assert_eq!(host_labels(&runs).unwrap(), ["small", "big/r2", "big/r3"]);
        let t = table(&runs);
        assert_eq!(t.rows.len(), 3);
        // At the largest N (4): 4 x 1024 KiB = 4 MiB.
        assert_eq!(t.rows[0][4], "4");
        assert_eq!(t.rows[0][6], "4.00");
        assert!(t.header[6].starts_with("pss_kib"));
    }
}
