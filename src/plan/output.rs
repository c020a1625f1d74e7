//! The plan as text (aligned tables with their definitions) and as plan.csv (one row per
//! backend and accelerator, every unit in its column's name).

use crate::scenario::BackendKind;
use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use super::capacity::{CHEAP_SHARE, Capacity, Range, ResourceLimit};
use super::fit::Fit;
use super::{BackendPlan, Plan, Written};

const MIB: f64 = 1024.0;

/// Numbers in plan's tables follow the report's rule: three significant figures.
use crate::text::format::sig as num;

fn mib(kib: f64) -> String {
    format!("{} MiB", num(kib / MIB))
}

fn gib(kib: f64) -> String {
    format!("{:.1} GiB", kib / MIB / MIB)
}

/// "value ± se unit" for one coefficient, in MiB for memory.
fn coef(value: f64, se: Option<f64>, scale: f64, unit: &str) -> String {
    match se {
        Some(se) => format!("{} ± {} {unit}", num(value / scale), num(se / scale)),
        None => format!("{} {unit}", num(value / scale)),
    }
}

fn range(r: Option<Range>) -> String {
    match r {
        None => "-".into(),
        Some(Range { low, high: Some(h) }) => format!("{low}-{h}"),
        Some(Range { low, high: None }) => format!("{low}-unbounded"),
    }
}

fn allows(l: &ResourceLimit) -> String {
    match l.n {
        Some(n) => n.to_string(),
        None if l.unit == "ms/s"
            && l.note
                .as_deref()
                .is_some_and(|n| n.contains("not idle CPU-bound")) =>
        {
            "not CPU-bound".into()
        }
        None => "not bound".into(),
    }
}

/// Left-aligned columns, two spaces apart.
/// An aligned table (header, rule, rows), every column left-aligned, as the run's own
/// tables are drawn.
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    crate::text::table::render(headers, &vec![false; headers.len()], rows)
}

fn n_values(b: &BackendPlan) -> String {
    let mut ns: Vec<u32> = b.model.batches.iter().map(|x| x.alive).collect();
    ns.dedup();
    ns.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
}

fn max_n_cell(c: &Capacity) -> String {
    match c.max_n {
        Some(n) if c.extrapolated => format!("{n}*"),
        Some(n) => n.to_string(),
        None => "not bound".into(),
    }
}

/// The plan for people.
pub fn text(p: &Plan, written: &Written) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "plan from {} (scenario {}, workload {})",
        p.run.display(),
        if p.scenario.is_empty() {
            "unknown"
        } else {
            &p.scenario
        },
        p.workload.as_deref().unwrap_or("unknown")
    );
    let h = &p.host;
    let _ = writeln!(
        o,
        "host: {} memory from {}, {} cores from {}; headroom {:.0}%: budget {} and {} ms/s of CPU",
        gib(h.mem_kib),
        h.mem_source,
        if h.cpus.fract() == 0.0 {
            format!("{:.0}", h.cpus)
        } else {
            num(h.cpus)
        },
        h.cpus_source,
        h.headroom * 100.0,
        gib(h.mem_budget_kib()),
        num(h.cpu_budget_ms_per_s())
    );
    for w in &p.warnings {
        let _ = writeln!(o, "warning: {w}");
    }

    let _ = writeln!(
        o,
        "\ncost model: total of N instances = fixed + per instance x N (ordinary least squares, one point per batch)\n  memory = {}\n  idle CPU = {}",
        super::definition("memory"),
        super::definition("idle_cpu")
    );
    let rows: Vec<Vec<String>> = p
        .backends
        .iter()
        .map(|b| {
            let m = &b.model;
            let mem = m.memory.fit.as_ref();
            let cell = |f: Option<&Fit>, g: fn(&Fit) -> String| f.map_or("-".to_string(), g);
            vec![
                m.backend.clone(),
                m.accel.clone(),
                m.batches.len().to_string(),
                n_values(b),
                cell(mem, |f| {
                    let c = coef(f.intercept, f.intercept_se, MIB, "MiB");
                    if f.clamped.is_some() {
                        format!("{c} (clamped, see note)")
                    } else {
                        c
                    }
                }),
                cell(mem, |f| coef(f.slope, f.slope_se, MIB, "MiB")),
                cell(mem, |f| {
                    f.r_squared.map_or("-".into(), |r| format!("{r:.4}"))
                }),
                cell(mem, |f| f.residual_se.map_or("-".into(), mib)),
                cell(m.pss.fit.as_ref(), |f| {
                    coef(f.slope, f.slope_se, MIB, "MiB")
                }),
                cell(m.idle_cpu.fit.as_ref(), |f| {
                    coef(f.slope, f.slope_se, 1.0, "ms/s")
                }),
            ]
        })
        .collect();
    o.push_str(&table(
        &[
            "backend",
            "accel",
            "batches",
            "N",
            "memory fixed ± SE",
            "memory per instance ± SE",
            "R²",
            "resid SE",
            "PSS per instance",
            "idle CPU per instance",
        ],
        &rows,
    ));
    for b in &p.backends {
        let m = &b.model;
        for (what, vf) in [
            ("memory", &m.memory),
            ("PSS", &m.pss),
            ("idle CPU", &m.idle_cpu),
        ] {
            if let Some(n) = &vf.note {
                let _ = writeln!(o, "  note: {} ({}) {what}: {n}", m.backend, m.accel);
            }
        }
    }

    let _ = writeln!(
        o,
        "\ncapacity of one host: max N = {}\n  range = {}",
        super::definition("max_n"),
        super::definition("range")
    );
    let rows: Vec<Vec<String>> = p
        .backends
        .iter()
        .map(|b| {
            let c = &b.capacity;
            vec![
                b.model.backend.clone(),
                b.model.accel.clone(),
                max_n_cell(c),
                range(c.range),
                c.binding.map_or("-".into(), |r| r.name().to_string()),
                allows(&c.memory),
                allows(&c.idle_cpu),
            ]
        })
        .collect();
    o.push_str(&table(
        &[
            "backend",
            "accel",
            "max N",
            "range (±2 SE)",
            "bound by",
            "memory allows",
            "idle CPU allows",
        ],
        &rows,
    ));
    if p.backends.iter().any(|b| b.capacity.extrapolated) {
        let _ = writeln!(
            o,
            "  *: beyond the largest N measured: the line is extrapolated (cost that grows faster than linearly at high N would make it fewer)"
        );
    }
    for b in &p.backends {
        for l in [&b.capacity.memory, &b.capacity.idle_cpu] {
            if let Some(n) = &l.note
                && l.n.is_none()
            {
                let _ = writeln!(o, "  note: {} ({}): {n}", b.model.backend, b.model.accel);
            }
        }
    }

    if let Some(first) = p.backends.iter().find_map(|b| b.placement.as_ref()) {
        let _ = writeln!(
            o,
            "\nW = {} workloads of S = {} each (S added to every instance's fitted memory): hosts = {}",
            first.workloads,
            mib(first.workload_mem_kib),
            super::definition("hosts")
        );
        let rows: Vec<Vec<String>> = p
            .backends
            .iter()
            .filter_map(|b| b.placement.as_ref().map(|pl| (b, pl)))
            .map(|(b, pl)| {
                vec![
                    b.model.backend.clone(),
                    b.model.accel.clone(),
                    max_n_cell(&pl.per_host),
                    pl.per_host
                        .binding
                        .map_or("-".into(), |r| r.name().to_string()),
                    pl.hosts
                        .map_or("does not fit on one host".into(), |h| h.to_string()),
                    match pl.hosts_range {
                        None => "-".into(),
                        Some((lo, Some(hi))) => format!("{lo}-{hi}"),
                        Some((lo, None)) => format!("{lo}-(none fits)"),
                    },
                ]
            })
            .collect();
        o.push_str(&table(
            &[
                "backend",
                "accel",
                "per host",
                "bound by",
                "hosts",
                "hosts range (±2 SE)",
            ],
            &rows,
        ));
    }

    if !p.break_even.is_empty() {
        let _ = writeln!(
            o,
            "\nbreak-even of VMs and containers (memory model):\n  (1) {}\n  (2) {}",
            super::definition("break_even_lines"),
            super::definition("break_even_cheap")
        );
        for b in &p.break_even {
            let one = match b.lines_cross_at_n {
                Some(n) => format!(
                    "the lines cross at N = {}: below it {} costs less, above it the other",
                    num(n),
                    b.cheaper_at_n1
                ),
                None => format!("{} cost less at every N >= 1", plural(&b.cheaper_at_n1)),
            };
            let two = match b.cheap_from_workload_kib {
                None => format!(
                    "a {} instance costs no more than a {} instance: no workload size is needed",
                    b.vm, b.container
                ),
                Some(s) => format!(
                    "a {} instance costs {} more than a {} instance; that is below {:.0}% of the VM's per-instance cost once every workload uses {} or more",
                    b.vm,
                    mib(b.vm_premium_kib),
                    b.container,
                    CHEAP_SHARE * 100.0,
                    mib(s)
                ),
            };
            let _ = writeln!(o, "  {} vs {}: (1) {one}; (2) {two}", b.vm, b.container);
        }
    }

    if let Some(dir) = &p.until_run {
        let _ = writeln!(
            o,
            "\npredicted against reached, until run {}:\n  {}",
            dir.display(),
            super::definition("until")
        );
        let rows: Vec<Vec<String>> = p
            .until
            .iter()
            .map(|u| {
                vec![
                    u.backend.clone(),
                    u.accel.clone(),
                    gib(u.budget_kib),
                    u.predicted_n.to_string(),
                    range(u.predicted_range),
                    u.reached_n.to_string(),
                    u.step.to_string(),
                    format!("{}-{}", u.measured_low, u.measured_high),
                    format!("{:+.1}%", u.relative_difference * 100.0),
                    if u.within_step { "yes" } else { "no" }.into(),
                ]
            })
            .collect();
        o.push_str(&table(
            &[
                "backend",
                "accel",
                "budget",
                "predicted max N",
                "range (±2 SE)",
                "reached",
                "step",
                "max N measured",
                "difference",
                "within the step",
            ],
            &rows,
        ));
    }
    for n in &p.notes {
        let _ = writeln!(o, "note: {n}");
    }
    let _ = writeln!(
        o,
        "\nwrote {}, {}, {}",
        written.csv.display(),
        written.svg.display(),
        written.png.display()
    );
    o
}

fn plural(backend: &str) -> String {
    match BackendKind::of_label(backend) {
        Some(BackendKind::Vm) => "VMs".into(),
        Some(BackendKind::Container) if backend == BackendKind::Container.as_str() => {
            "containers".into()
        }
        _ => format!("{backend} instances"),
    }
}

/// One row of plan.csv.
#[derive(Debug, Default, Serialize)]
struct CsvRow {
    backend: String,
    accel: String,
    batches: usize,
    n_values: String,
    mem_fixed_kib: Option<f64>,
    mem_fixed_se_kib: Option<f64>,
    /// Whether least squares gave a fixed cost below 0 and the line was refitted through 0;
    /// then `mem_fixed_kib` is 0 and `mem_fixed_unclamped_kib` what least squares gave.
    mem_fixed_clamped: Option<bool>,
    mem_fixed_unclamped_kib: Option<f64>,
    mem_per_instance_kib: Option<f64>,
    mem_per_instance_se_kib: Option<f64>,
    mem_r_squared: Option<f64>,
    mem_residual_se_kib: Option<f64>,
    pss_fixed_kib: Option<f64>,
    pss_fixed_clamped: Option<bool>,
    pss_fixed_unclamped_kib: Option<f64>,
    pss_per_instance_kib: Option<f64>,
    pss_per_instance_se_kib: Option<f64>,
    pss_r_squared: Option<f64>,
    cpu_fixed_ms_per_s: Option<f64>,
    cpu_fixed_clamped: Option<bool>,
    cpu_fixed_unclamped_ms_per_s: Option<f64>,
    cpu_per_instance_ms_per_s: Option<f64>,
    cpu_per_instance_se_ms_per_s: Option<f64>,
    cpu_r_squared: Option<f64>,
    host_mem_kib: f64,
    host_cpus: f64,
    headroom: f64,
    mem_budget_kib: f64,
    cpu_budget_ms_per_s: f64,
    max_n_memory: Option<u64>,
    max_n_idle_cpu: Option<u64>,
    max_n: Option<u64>,
    max_n_low: Option<u64>,
    max_n_high: Option<u64>,
    bound_by: String,
    extrapolated: bool,
    workloads: Option<u64>,
    workload_mem_kib: Option<f64>,
    max_n_with_workload: Option<u64>,
    hosts: Option<u64>,
    until_budget_kib: Option<f64>,
    until_predicted_n: Option<u64>,
    until_reached_n: Option<u32>,
    until_step: Option<u32>,
    until_measured_low_n: Option<u32>,
    until_measured_high_n: Option<u32>,
    until_relative_difference: Option<f64>,
}

/// The intercept least squares gave before it was clamped at 0, if it was.
fn unclamped(f: &Fit) -> Option<f64> {
    f.clamped.as_ref().map(|c| c.intercept)
}

/// Writes plan.csv: one row per backend and accelerator.
pub fn write_csv(p: &Plan, path: &Path) -> Result<(), csv::Error> {
    let mut w = csv::Writer::from_path(path)?;
    for b in &p.backends {
        let m = &b.model;
        let (mem, pss, cpu) = (
            m.memory.fit.as_ref(),
            m.pss.fit.as_ref(),
            m.idle_cpu.fit.as_ref(),
        );
        let c = &b.capacity;
        let u = p
            .until
            .iter()
            .find(|u| u.backend == m.backend && u.accel == m.accel);
        w.serialize(CsvRow {
            backend: m.backend.clone(),
            accel: m.accel.clone(),
            batches: m.batches.len(),
            n_values: n_values(b).replace(',', " "),
            mem_fixed_kib: mem.map(|f| f.intercept),
            mem_fixed_se_kib: mem.and_then(|f| f.intercept_se),
            mem_fixed_clamped: mem.map(|f| f.clamped.is_some()),
            mem_fixed_unclamped_kib: mem.and_then(unclamped),
            mem_per_instance_kib: mem.map(|f| f.slope),
            mem_per_instance_se_kib: mem.and_then(|f| f.slope_se),
            mem_r_squared: mem.and_then(|f| f.r_squared),
            mem_residual_se_kib: mem.and_then(|f| f.residual_se),
            pss_fixed_kib: pss.map(|f| f.intercept),
            pss_fixed_clamped: pss.map(|f| f.clamped.is_some()),
            pss_fixed_unclamped_kib: pss.and_then(unclamped),
            pss_per_instance_kib: pss.map(|f| f.slope),
            pss_per_instance_se_kib: pss.and_then(|f| f.slope_se),
            pss_r_squared: pss.and_then(|f| f.r_squared),
            cpu_fixed_ms_per_s: cpu.map(|f| f.intercept),
            cpu_fixed_clamped: cpu.map(|f| f.clamped.is_some()),
            cpu_fixed_unclamped_ms_per_s: cpu.and_then(unclamped),
            cpu_per_instance_ms_per_s: cpu.map(|f| f.slope),
            cpu_per_instance_se_ms_per_s: cpu.and_then(|f| f.slope_se),
            cpu_r_squared: cpu.and_then(|f| f.r_squared),
            host_mem_kib: p.host.mem_kib,
            host_cpus: p.host.cpus,
            headroom: p.host.headroom,
            mem_budget_kib: p.host.mem_budget_kib(),
            cpu_budget_ms_per_s: p.host.cpu_budget_ms_per_s(),
            max_n_memory: c.memory.n,
            max_n_idle_cpu: c.idle_cpu.n,
            max_n: c.max_n,
            max_n_low: c.range.map(|r| r.low),
            max_n_high: c.range.and_then(|r| r.high),
            bound_by: c.binding.map_or(String::new(), |r| r.name().to_string()),
            extrapolated: c.extrapolated,
            workloads: b.placement.as_ref().map(|pl| pl.workloads),
            workload_mem_kib: b.placement.as_ref().map(|pl| pl.workload_mem_kib),
            max_n_with_workload: b.placement.as_ref().and_then(|pl| pl.per_host.max_n),
            hosts: b.placement.as_ref().and_then(|pl| pl.hosts),
            until_budget_kib: u.map(|u| u.budget_kib),
            until_predicted_n: u.map(|u| u.predicted_n),
            until_reached_n: u.map(|u| u.reached_n),
            until_step: u.map(|u| u.step),
            until_measured_low_n: u.map(|u| u.measured_low),
            until_measured_high_n: u.map(|u| u.measured_high),
            until_relative_difference: u.map(|u| u.relative_difference),
        })?;
    }
    w.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_prints_in_mib_with_three_figures() {
        assert_eq!(mib(66_560.0), "65.0 MiB");
        assert_eq!(mib(12.0), "0.0117 MiB");
    }

    #[test]
    fn tables_align_columns() {
        let t = table(&["a", "bb"], &[vec!["xxx".into(), "y".into()]]);
        assert_eq!(t, "a    bb\n---- --\nxxx  y\n");
    }
}
