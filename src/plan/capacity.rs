//! Answers from the cost models: how many instances a host holds, how many hosts W workloads
//! need, and where VMs and containers break even.

use serde::Serialize;

use super::fit::Fit;

/// Width of every range, in standard errors of the fitted line. Not a 95% interval: with a
/// handful of points Student's t would be wider (4.3 at 2 degrees of freedom); the output says
/// "±2 SE" and gives the number of points, so a reader can judge.
pub const BAND_SE: f64 = 2.0;

/// The share of a VM's per-instance cost its extra cost over a container may have for the
/// isolation to count as cheap.
pub const CHEAP_SHARE: f64 = 0.10;

/// The host planned for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Host {
    pub mem_kib: f64,
    pub cpus: f64,
    /// Share of memory and CPU kept free.
    pub headroom: f64,
    /// Where `mem_kib` and `cpus` came from: `--host-mem` or the run's meta.json.
    pub mem_source: String,
    pub cpus_source: String,
}

impl Host {
    /// Memory instances may use, KiB: host memory x (1 - headroom).
    pub fn mem_budget_kib(&self) -> f64 {
        self.mem_kib * (1.0 - self.headroom)
    }

    /// CPU instances may use while idle, ms/s: cores x 1000 x (1 - headroom).
    pub fn cpu_budget_ms_per_s(&self) -> f64 {
        self.cpus * 1000.0 * (1.0 - self.headroom)
    }
}

/// A resource that can bound the number of instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Resource {
    /// The host view of memory (MemAvailable).
    Memory,
    /// Host CPU of idle instances.
    IdleCpu,
}

impl Resource {
    /// How the output names it.
    pub fn name(self) -> &'static str {
        match self {
            Resource::Memory => "memory",
            Resource::IdleCpu => "idle CPU",
        }
    }
}

/// An interval of instance counts: `high = None` means the fit's lower line never reaches
/// the budget (the slope is within the band of zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Range {
    pub low: u64,
    pub high: Option<u64>,
}

/// How many instances one resource allows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResourceLimit {
    pub resource: Resource,
    /// What instances may use of the resource (KiB or ms/s).
    pub budget: f64,
    pub unit: &'static str,
    /// The most instances whose fitted total stays within the budget; `None` when this
    /// resource does not bound N (no cost per instance, or no model: see `note`).
    pub n: Option<u64>,
    /// N where the fitted line ±BAND_SE standard errors meets the budget; `None` without an
    /// error estimate.
    pub range: Option<Range>,
    pub note: Option<String>,
}

/// The largest integer N >= 0 with `fit.at(N) + extra N + k se(N) <= budget`, or `None` when
/// that holds for every N (the line does not grow). Bisection on the continuous crossing:
/// the band makes the equation a quadratic in sqrt form, and a search is simpler to trust.
fn last_fitting(fit: &Fit, budget: f64, extra: f64, k: f64) -> Option<u64> {
    let g = |n: f64| fit.at(n) + extra * n + k * fit.se_at(n).unwrap_or(0.0);
    if g(0.0) > budget {
        return Some(0);
    }
    let mut hi = 1.0;
    while g(hi) <= budget {
        hi *= 2.0;
        // Beyond 10^12 instances the line has, for planning, stopped growing.
        if hi > 1e12 {
            return None;
        }
    }
    let mut lo = hi / 2.0;
    if hi == 1.0 {
        lo = 0.0;
    }
    while hi - lo > 1e-6 * hi.max(1.0) {
        let mid = (lo + hi) / 2.0;
        if g(mid) <= budget {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    // The bisection stops within a hair of the root; an exact integer root must count.
    let up = lo.ceil();
    Some(if g(up) <= budget { up } else { lo.floor() } as u64)
}

/// How many instances `budget` of `resource` holds under `fit`, each instance also carrying
/// `extra` (a workload's own memory, in the fit's unit).
pub fn limit(
    resource: Resource,
    fit: Option<&Fit>,
    budget: f64,
    unit: &'static str,
    extra: f64,
) -> ResourceLimit {
    let mut out = ResourceLimit {
        resource,
        budget,
        unit,
        n: None,
        range: None,
        note: None,
    };
    let Some(fit) = fit else {
        out.note = Some(format!("no {} model: not counted", resource.name()));
        return out;
    };
    if fit.slope + extra <= 0.0 {
        out.note = Some(format!(
            "{} does not grow with N in this run (fitted cost per instance {:.3} {unit}): not {}-bound",
            resource.name(),
            fit.slope + extra,
            resource.name()
        ));
        return out;
    }
    out.n = last_fitting(fit, budget, extra, 0.0);
    if fit.se_at(0.0).is_some() {
        out.range = Some(Range {
            low: last_fitting(fit, budget, extra, BAND_SE).unwrap_or(u64::MAX),
            high: last_fitting(fit, budget, extra, -BAND_SE),
        });
    } else {
        out.note = Some("no error estimate (fewer than 3 points)".into());
    }
    out
}

/// The most instances a host holds: the smaller of what memory and idle CPU allow.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Capacity {
    pub memory: ResourceLimit,
    pub idle_cpu: ResourceLimit,
    /// `None` when neither resource bounds N (see their notes).
    pub max_n: Option<u64>,
    /// The resource that gives `max_n`.
    pub binding: Option<Resource>,
    /// The range of `max_n` from both resources' ranges; `None` when a bounding resource has
    /// no error estimate.
    pub range: Option<Range>,
    /// True when `max_n` lies beyond the largest N measured: the line is extrapolated.
    pub extrapolated: bool,
}

/// Combines the limits of memory and idle CPU; `largest_n` is the largest N measured.
pub fn capacity(memory: ResourceLimit, idle_cpu: ResourceLimit, largest_n: u32) -> Capacity {
    let bounding: Vec<&ResourceLimit> = [&memory, &idle_cpu]
        .into_iter()
        .filter(|l| l.n.is_some())
        .collect();
    let best = bounding.iter().min_by_key(|l| l.n.unwrap_or(u64::MAX));
    let max_n = best.and_then(|l| l.n);
    let binding = best.map(|l| l.resource);
    let range = if bounding.is_empty() || bounding.iter().any(|l| l.range.is_none()) {
        None
    } else {
        let low = bounding.iter().filter_map(|l| l.range).map(|r| r.low).min();
        let high = bounding
            .iter()
            .filter_map(|l| l.range)
            .filter_map(|r| r.high)
            .min();
        low.map(|low| Range { low, high })
    };
    Capacity {
        extrapolated: max_n.is_some_and(|n| n > u64::from(largest_n)),
        memory,
        idle_cpu,
        max_n,
        binding,
        range,
    }
}

/// W workloads of size S, one per instance: how many hosts they need.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Placement {
    pub workloads: u64,
    pub workload_mem_kib: f64,
    /// Instances (each with its workload) one host holds.
    pub per_host: Capacity,
    /// ceil(W / per_host); `None` when not even one instance fits on a host.
    pub hosts: Option<u64>,
    /// Hosts at the two ends of `per_host.range` (fewest, most).
    pub hosts_range: Option<(u64, Option<u64>)>,
}

/// ceil(W / per host), `None` when nothing fits on a host; with no bound at all, one host.
pub fn hosts_for(workloads: u64, per_host: Option<u64>) -> Option<u64> {
    match per_host {
        None => Some(1),
        Some(0) => None,
        Some(p) => Some(workloads.div_ceil(p)),
    }
}

/// Places `workloads` instances, each with `per_host.memory` including the workload's memory.
pub fn placement(workloads: u64, workload_mem_kib: f64, per_host: Capacity) -> Placement {
    let hosts = hosts_for(workloads, per_host.max_n);
    let hosts_range = per_host.range.map(|r| {
        let fewest = hosts_for(workloads, r.high).unwrap_or(1);
        (fewest, hosts_for(workloads, Some(r.low)))
    });
    Placement {
        workloads,
        workload_mem_kib,
        per_host,
        hosts,
        hosts_range,
    }
}

/// Where a VM backend and a container backend cost the same, in the two senses the output
/// names.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BreakEven {
    pub vm: String,
    pub container: String,
    /// Definition 1: N where the total-cost lines fixed + per instance x N cross, if at N >= 1.
    pub lines_cross_at_n: Option<f64>,
    /// Which costs less for N below the crossing (or at every N without one).
    pub cheaper_at_n1: String,
    /// The VM's extra memory per instance over the container, KiB (slope difference).
    pub vm_premium_kib: f64,
    /// Definition 2: the workload size S (KiB per instance) from which the premium is below
    /// CHEAP_SHARE of a VM's per-instance cost (its fitted cost + S); `Some(0)` when it
    /// already is, `None` when the VM costs no more per instance.
    pub cheap_from_workload_kib: Option<f64>,
}

/// Compares the memory lines of a VM backend and a container backend.
pub fn break_even(vm: (&str, &Fit), container: (&str, &Fit)) -> BreakEven {
    let (v, c) = (vm.1, container.1);
    let diff = |n: f64| v.at(n) - c.at(n);
    let slope_diff = v.slope - c.slope;
    let cross = (slope_diff != 0.0)
        .then(|| (c.intercept - v.intercept) / slope_diff)
        .filter(|n| n.is_finite() && *n >= 1.0);
    let cheaper_at_n1 = if diff(1.0) > 0.0 { container.0 } else { vm.0 };
    let premium = slope_diff;
    let cheap = (premium > 0.0).then(|| (premium / CHEAP_SHARE - v.slope).max(0.0));
    BreakEven {
        vm: vm.0.to_string(),
        container: container.0.to_string(),
        lines_cross_at_n: cross,
        cheaper_at_n1: cheaper_at_n1.to_string(),
        vm_premium_kib: premium,
        cheap_from_workload_kib: cheap,
    }
}

#[cfg(test)]
mod tests {
    use super::super::fit::fit;
    use super::*;

    fn line(a: f64, b: f64) -> Fit {
        fit(&[(1.0, a + b), (10.0, a + 10.0 * b)]).unwrap()
    }

    fn noisy(a: f64, b: f64) -> Fit {
        fit(&[
            (1.0, a + b + 100_000.0),
            (10.0, a + 10.0 * b - 200_000.0),
            (50.0, a + 50.0 * b + 150_000.0),
            (100.0, a + 100.0 * b - 50_000.0),
        ])
        .unwrap()
    }

    fn host() -> Host {
        Host {
            mem_kib: 1_048_576.0,
            cpus: 2.0,
            headroom: 0.25,
            mem_source: "t".into(),
            cpus_source: "t".into(),
        }
    }

    #[test]
    fn budgets_keep_the_headroom_free() {
        assert_eq!(host().mem_budget_kib(), 786_432.0);
        assert_eq!(host().cpu_budget_ms_per_s(), 1500.0);
    }

    #[test]
    fn max_n_is_the_last_whole_instance_within_the_budget() {
        // 1000 + 1000 N <= 786432: N = 785.432 -> 785; exactly on the budget counts.
        let f = line(1000.0, 1000.0);
        let l = limit(Resource::Memory, Some(&f), 786_432.0, "KiB", 0.0);
        assert_eq!(l.n, Some(785));
        assert!(l.range.is_none() && l.note.unwrap().contains("no error estimate"));
        let l = limit(Resource::Memory, Some(&f), 11_000.0, "KiB", 0.0);
        assert_eq!(l.n, Some(10));
        // A workload of 1000 KiB doubles the per-instance cost.
        let l = limit(Resource::Memory, Some(&f), 786_432.0, "KiB", 1000.0);
        assert_eq!(l.n, Some(392));
        // Fixed cost above the budget: nothing fits.
        assert_eq!(
            limit(Resource::Memory, Some(&f), 500.0, "KiB", 0.0).n,
            Some(0)
        );
    }

    #[test]
    fn the_range_brackets_the_estimate_and_narrows_with_less_noise() {
        let f = noisy(2000.0, 64_000.0);
        let l = limit(Resource::Memory, Some(&f), 12_000_000.0, "KiB", 0.0);
        let (n, r) = (l.n.unwrap(), l.range.unwrap());
        assert!(r.low < n && n < r.high.unwrap(), "{l:?}");
        // 12e6 / 64e3 = 187.5, and noise of ±200 MiB moves the line by a few instances.
        assert_eq!(n, ((12e6 - f.intercept) / f.slope).floor() as u64);
        assert!((180..=195).contains(&n), "{l:?}");
        assert!((5..40).contains(&(r.high.unwrap() - r.low)), "{l:?}");
        let quieter = fit(&[
            (1.0, 66_000.0 + 1.0),
            (10.0, 642_000.0 - 2.0),
            (50.0, 3_202_000.0 + 1.5),
            (100.0, 6_402_000.0 - 0.5),
        ])
        .unwrap();
        let q = limit(Resource::Memory, Some(&quieter), 12_000_000.0, "KiB", 0.0);
        let qr = q.range.unwrap();
        assert!(qr.high.unwrap() - qr.low <= r.high.unwrap() - r.low);
    }

    #[test]
    fn no_cost_per_instance_does_not_bound() {
        let zero = line(5.0, 0.0);
        let l = limit(Resource::IdleCpu, Some(&zero), 1800.0, "ms/s", 0.0);
        assert_eq!(l.n, None);
        assert!(l.note.unwrap().contains("not idle CPU-bound"));
        let none = limit(Resource::IdleCpu, None, 1800.0, "ms/s", 0.0);
        assert_eq!(none.n, None);
    }

    #[test]
    fn the_scarcer_resource_binds() {
        let mem = limit(
            Resource::Memory,
            Some(&line(0.0, 100.0)),
            10_000.0,
            "KiB",
            0.0,
        );
        let cpu = limit(
            Resource::IdleCpu,
            Some(&line(0.0, 25.0)),
            1500.0,
            "ms/s",
            0.0,
        );
        let c = capacity(mem.clone(), cpu, 50);
        assert_eq!((c.max_n, c.binding), (Some(60), Some(Resource::IdleCpu)));
        assert!(c.extrapolated && c.range.is_none());
        let free = limit(
            Resource::IdleCpu,
            Some(&line(0.0, 0.0)),
            1500.0,
            "ms/s",
            0.0,
        );
        let c = capacity(mem, free, 500);
        assert_eq!((c.max_n, c.binding), (Some(100), Some(Resource::Memory)));
        assert!(!c.extrapolated);
    }

    #[test]
    fn hosts_round_up_and_say_when_nothing_fits() {
        assert_eq!(hosts_for(1000, Some(185)), Some(6));
        assert_eq!(hosts_for(370, Some(185)), Some(2));
        assert_eq!(hosts_for(1, Some(185)), Some(1));
        assert_eq!(hosts_for(10, Some(0)), None);
        assert_eq!(hosts_for(10, None), Some(1));
        let mem = limit(
            Resource::Memory,
            Some(&noisy(2000.0, 64_000.0)),
            12e6,
            "KiB",
            0.0,
        );
        let cpu = limit(Resource::IdleCpu, None, 1.0, "ms/s", 0.0);
        let p = placement(1000, 0.0, capacity(mem, cpu, 100));
        let (fewest, most) = p.hosts_range.unwrap();
        let h = p.hosts.unwrap();
        assert!(fewest <= h && h <= most.unwrap(), "{p:?}");
    }

    #[test]
    fn break_even_in_both_senses() {
        // VM: 200 MiB each; container: 1 MiB each with a 300 MiB fixed cost (a daemon).
        let mib = 1024.0;
        let vm = line(0.0, 200.0 * mib);
        let ct = line(300.0 * mib, 1.0 * mib);
        let b = break_even(("vm", &vm), ("container", &ct));
        // 300 / 199 = 1.51: the VM is cheaper for one instance only.
        let n = b.lines_cross_at_n.unwrap();
        assert!((n - 300.0 / 199.0).abs() < 1e-9, "{b:?}");
        assert_eq!(b.cheaper_at_n1, "vm");
        // Premium 199 MiB <= 10% of (200 MiB + S): S >= 1790 MiB.
        assert!((b.cheap_from_workload_kib.unwrap() - 1790.0 * mib).abs() < 1e-6);
        // Without the fixed cost the containers cost less at every N.
        let b = break_even(("vm", &vm), ("container", &line(0.0, mib)));
        assert_eq!(
            (b.lines_cross_at_n, b.cheaper_at_n1.as_str()),
            (None, "container")
        );
        // A VM no costlier per instance: isolation never needs a large workload to be cheap.
        let b = break_even(
            ("vm", &line(0.0, mib)),
            ("container", &line(0.0, 2.0 * mib)),
        );
        assert_eq!(b.cheap_from_workload_kib, None);
    }
}
