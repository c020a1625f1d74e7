//! `plan --fleet`: density runs from several host types and a demand become how many hosts of
//! each type the demand needs, the cheapest mix of types, and which type is denser.
//!
//! A host type is a host label (meta.json's `host_label`, else its hostname). Runs of the same
//! label are pooled: their batches are fitted together, one point per batch as ever (a second
//! run of a host type is more repetitions of it, not another type). A mix is placed backend by
//! backend, each backend on hosts of its own (no host runs two backends): what operators do,
//! and the answer stays exact in whole hosts.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::results::load::{RunData, load};
use crate::text::Format;

use super::capacity::{Capacity, Host, Range};
use super::model::{self, CostModel};
use super::{PlanArgs, PlanError, capacity_of, units, workload_of};

/// The largest demand per backend the exact cheapest mix is computed for (its table has one
/// entry per instance).
pub const MAX_DEMAND: u64 = 10_000_000;

/// Why a fleet plan could not be made; every message names the flag, label or directory.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("{flag} plans a fleet: give --fleet and run directories from several host types")]
    NeedsFleet { flag: &'static str },
    #[error("{flag} {value:?}: {allowed}")]
    Bad {
        flag: &'static str,
        value: String,
        allowed: String,
    },
    #[error(
        "{flag} names host type {label:?}, which no run has (host types: {known}); a host type is meta.json's host_label (`run --host-label`)"
    )]
    UnknownLabel {
        flag: &'static str,
        label: String,
        known: String,
    },
    #[error(
        "--host-cost given for {given} but not for {missing}: give a cost for every host type, or none (then the fewest hosts win)"
    )]
    MissingCost { given: String, missing: String },
    #[error(
        "--fleet needs a demand: --workloads W (W instances, each backend an alternative) or --mix BACKEND=N (repeated)"
    )]
    NoDemand,
    #[error(
        "{dir}: host type {label:?} ran workload {theirs}, but {first_dir} ran {ours}: a fleet plan compares one workload on every host type"
    )]
    OtherWorkload {
        label: String,
        dir: PathBuf,
        theirs: String,
        first_dir: PathBuf,
        ours: String,
    },
    #[error(
        "{dir}/meta.json records no {what} of host type {label:?}: give --host-spec {label}=MEM,CPUS"
    )]
    NoHostFact {
        dir: PathBuf,
        label: String,
        what: &'static str,
    },
    #[error("--mix {backend}={n}: no run of host type(s) {labels} measured backend {backend}")]
    BackendMissing {
        backend: String,
        n: u64,
        labels: String,
    },
}

/// One backend on one host type.
#[derive(Debug, Clone, Serialize)]
pub struct TypeBackend {
    pub backend: String,
    pub accel: String,
    /// Instances of the run's workload one host holds (with --workload-mem added to each).
    pub per_host: Capacity,
    pub model: CostModel,
}

/// A host type: its label, its runs, the host planned for and what it holds per backend.
#[derive(Debug, Clone, Serialize)]
pub struct HostType {
    pub label: String,
    pub runs: Vec<PathBuf>,
    /// As measured: CPU model, bare metal or VM.
    pub cpu_model: String,
    pub virtualization: String,
    pub host: Host,
    /// `--host-cost`, else 1 (then the cheapest mix is the one with the fewest hosts).
    pub cost: f64,
    pub backends: Vec<TypeBackend>,
}

impl HostType {
    fn backend(&self, name: &str) -> Option<&TypeBackend> {
        self.backends.iter().find(|b| b.backend == name)
    }
}

/// Hosts of one type alone for one demand.
#[derive(Debug, Clone, Serialize)]
pub struct Alone {
    pub label: String,
    pub per_host: Option<u64>,
    /// `None`: not one instance fits on such a host.
    pub hosts: Option<u64>,
    /// Hosts at the two ends of the per-host range (fewest, most).
    pub hosts_range: Option<(u64, Option<u64>)>,
    pub cost: Option<f64>,
}

/// The cheapest set of hosts (of any types) that holds a demand.
#[derive(Debug, Clone, Serialize)]
pub struct Mix {
    /// Hosts per type, types with none left out.
    pub hosts: Vec<(String, u64)>,
    pub total_hosts: u64,
    pub cost: f64,
    /// Instances the mix holds at the fitted lines (`None`: unbounded, a host type whose
    /// cost does not grow with N), and at the low and high ends of every type's range
    /// (`None` high: unbounded).
    pub holds: Option<u64>,
    pub holds_range: Option<Range>,
    /// Whether the low end still holds the demand.
    pub holds_at_low_end: Option<bool>,
}

/// One backend's demand and its answers.
#[derive(Debug, Clone, Serialize)]
pub struct DemandAnswer {
    pub backend: String,
    pub instances: u64,
    pub alone: Vec<Alone>,
    pub cheapest: Option<Mix>,
    pub note: Option<String>,
}

/// Host type B against host type A for one backend: instances per host B / A.
#[derive(Debug, Clone, Serialize)]
pub struct Density {
    pub backend: String,
    pub a: String,
    pub b: String,
    pub a_per_host: u64,
    pub b_per_host: u64,
    pub ratio: f64,
    /// From the ±2 SE ranges: [B low / A high, B high / A low]; `None` when either has no
    /// range, high `None` when unbounded.
    pub ratio_range: Option<(f64, Option<f64>)>,
    /// B / A in instances per unit of cost, with --host-cost.
    pub per_cost_ratio: Option<f64>,
}

impl Density {
    /// Which type is denser: only when the whole interval is on one side of 1.
    pub fn verdict(&self) -> String {
        match self.ratio_range {
            Some((low, _)) if low > 1.0 => format!("{} denser", self.b),
            Some((_, Some(high))) if high < 1.0 => format!("{} denser", self.a),
            Some(_) => "not resolved: the interval spans 1".into(),
            None if self.ratio > 1.0 => format!("{} denser (no interval)", self.b),
            None if self.ratio < 1.0 => format!("{} denser (no interval)", self.a),
            None => "equal (no interval)".into(),
        }
    }
}

/// Everything `plan --fleet` computed.
#[derive(Debug, Clone, Serialize)]
pub struct Fleet {
    pub scenario: String,
    pub workload: Option<String>,
    pub workload_mem_kib: f64,
    pub headroom: f64,
    pub costs_given: bool,
    /// `true`: the demands are alternatives (--workloads: W of one backend or another);
    /// `false`: all at once (--mix).
    pub alternatives: bool,
    pub host_types: Vec<HostType>,
    pub demands: Vec<DemandAnswer>,
    /// The whole --mix: the cheapest mixes of every backend, added up.
    pub total: Option<(u64, f64)>,
    pub density: Vec<Density>,
    pub notes: Vec<String>,
    pub definitions: BTreeMap<&'static str, &'static str>,
}

/// What the fleet answers mean, printed with them and kept in the JSON.
pub const DEFINITIONS: &[(&str, &str)] = &[
    (
        "host_type",
        "the runs of one host label (meta.json's host_label, `run --host-label`, default the hostname); runs of the same label are pooled: their batches are fitted together",
    ),
    (
        "per_host",
        "max N of `plan` on one host of the type: its memory and cores (meta.json, or --host-spec) x (1 - headroom), each instance with --workload-mem added",
    ),
    (
        "hosts",
        "ceil(demand / per_host) hosts of that type alone; the range from the ends of per_host's ±2 SE range",
    ),
    (
        "cheapest",
        "the set of hosts of any types that holds the demand at the fitted per_host at the least total --host-cost (without costs: the fewest hosts), found exactly by dynamic programming over instances; ties go to fewer hosts",
    ),
    (
        "mix",
        "with --mix, each backend is placed on hosts of its own (no host runs two backends) and the totals add up",
    ),
    (
        "density",
        "instances per host of type B / of type A for one backend; interval = [B low / A high, B high / A low] from the ±2 SE ranges",
    ),
];

/// `LABEL=VALUE` split, with the label checked.
fn split_pair<'a>(
    flag: &'static str,
    v: &'a str,
    form: &str,
) -> Result<(&'a str, &'a str), FleetError> {
    let bad = || FleetError::Bad {
        flag,
        value: v.to_string(),
        allowed: format!("give {form}"),
    };
    let (l, r) = v.split_once('=').ok_or_else(bad)?;
    crate::host::facts::check_label(flag, l).map_err(|_| bad())?;
    Ok((l, r))
}

fn parse_positive(flag: &'static str, whole: &str, v: &str) -> Result<f64, FleetError> {
    match v.trim().parse::<f64>() {
        Ok(x) if x.is_finite() && x > 0.0 => Ok(x),
        _ => Err(FleetError::Bad {
            flag,
            value: whole.to_string(),
            allowed: "give a number above 0".into(),
        }),
    }
}

/// The label a run's host goes by: host_label, else hostname (runs of an older isobench),
/// else the directory's name.
pub fn label_of(run: &RunData) -> String {
    [&run.meta.host_label, &run.meta.hostname]
        .into_iter()
        .find(|l| !l.is_empty())
        .cloned()
        .unwrap_or_else(|| run.label.clone())
}

/// Pools runs into one: each run's repetitions are renumbered past the previous run's, so
/// every batch stays a point of its own.
fn pool(runs: &[RunData]) -> RunData {
    let mut out = runs[0].clone();
    out.samples.clear();
    out.until.clear();
    let mut offset = 0;
    for r in runs {
        let top = r.samples.iter().map(|s| s.rep).max().unwrap_or(0);
        out.samples.extend(r.samples.iter().cloned().map(|mut s| {
            s.rep += offset;
            s
        }));
        offset += top + 1;
    }
    out
}

/// The checked fleet flags: costs and specs per label, the mix.
struct FleetInputs {
    costs: BTreeMap<String, f64>,
    specs: BTreeMap<String, (f64, Option<f64>)>,
    mix: Vec<(String, u64)>,
}

fn check(args: &PlanArgs) -> Result<FleetInputs, FleetError> {
    let mut costs = BTreeMap::new();
    for v in &args.host_costs {
        let (l, c) = split_pair("--host-cost", v, "LABEL=COST, e.g. big=3.5")?;
        costs.insert(l.to_string(), parse_positive("--host-cost", v, c)?);
    }
    let mut specs = BTreeMap::new();
    for v in &args.host_specs {
        let (l, spec) = split_pair("--host-spec", v, "LABEL=MEM[,CPUS], e.g. big=256G,64")?;
        let (mem, cpus) = match spec.split_once(',') {
            Some((m, c)) => (m, Some(parse_positive("--host-spec", v, c)?)),
            None => (spec, None),
        };
        let mem = units::parse_kib("--host-spec", mem).map_err(|e| FleetError::Bad {
            flag: "--host-spec",
            value: v.clone(),
            allowed: e.to_string(),
        })?;
        specs.insert(l.to_string(), (mem, cpus));
    }
    let mut mix: Vec<(String, u64)> = Vec::new();
    for v in &args.mix {
        let bad = || FleetError::Bad {
            flag: "--mix",
            value: v.clone(),
            allowed: format!("give BACKEND=N with N from 1 to {MAX_DEMAND}, e.g. container=300"),
        };
        let (b, n) = v.split_once('=').ok_or_else(bad)?;
        let n: u64 = n.trim().parse().map_err(|_| bad())?;
        if b.is_empty() || n == 0 || n > MAX_DEMAND || mix.iter().any(|(m, _)| m == b) {
            return Err(bad());
        }
        mix.push((b.to_string(), n));
    }
    if let Some(w) = args.workloads
        && w > MAX_DEMAND
    {
        return Err(FleetError::Bad {
            flag: "--workloads",
            value: w.to_string(),
            allowed: format!("give 1 to {MAX_DEMAND} with --fleet"),
        });
    }
    if mix.is_empty() && args.workloads.is_none() {
        return Err(FleetError::NoDemand);
    }
    Ok(FleetInputs { costs, specs, mix })
}

/// The host types, notes about them, and the workload they all ran.
type Types = (Vec<HostType>, Vec<String>, Option<String>);

/// The host types of the runs, in the order their labels first appear.
fn host_types(
    args: &PlanArgs,
    inputs: &FleetInputs,
    workload_mem_kib: f64,
) -> Result<Types, PlanError> {
    let mut groups: Vec<(String, Vec<RunData>)> = Vec::new();
    for dir in &args.runs {
        let run = load(dir, None)?;
        let label = label_of(&run);
        match groups.iter_mut().find(|(l, _)| *l == label) {
            Some((_, g)) => g.push(run),
            None => groups.push((label, vec![run])),
        }
    }
    let known = groups
        .iter()
        .map(|(l, _)| l.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    for (flag, labels) in [
        ("--host-cost", inputs.costs.keys().collect::<Vec<_>>()),
        ("--host-spec", inputs.specs.keys().collect()),
    ] {
        if let Some(l) = labels
            .into_iter()
            .find(|l| !groups.iter().any(|(g, _)| g == *l))
        {
            return Err(FleetError::UnknownLabel {
                flag,
                label: l.clone(),
                known,
            }
            .into());
        }
    }
    if !inputs.costs.is_empty() {
        let missing: Vec<&str> = groups
            .iter()
            .map(|(l, _)| l.as_str())
            .filter(|l| !inputs.costs.contains_key(*l))
            .collect();
        if !missing.is_empty() {
            return Err(FleetError::MissingCost {
                given: inputs.costs.keys().cloned().collect::<Vec<_>>().join(", "),
                missing: missing.join(", "),
            }
            .into());
        }
    }
    let first = &groups[0].1[0];
    let workload = workload_of(first);
    let mut notes = Vec::new();
    let mut types = Vec::new();
    for (label, runs) in &groups {
        for r in runs {
            let theirs = workload_of(r);
            if theirs != workload {
                return Err(FleetError::OtherWorkload {
                    label: label.clone(),
                    dir: r.dir.clone(),
                    theirs: theirs.unwrap_or_else(|| "unknown".into()),
                    first_dir: first.dir.clone(),
                    ours: workload.clone().unwrap_or_else(|| "unknown".into()),
                }
                .into());
            }
        }
        // Pooled runs of one label should be one kind of host; the smallest one is planned.
        let mem = runs.iter().map(|r| r.meta.mem_total_kib).min().unwrap_or(0);
        let cpus = runs.iter().map(|r| r.meta.cpu_cores).min().unwrap_or(0);
        if runs.len() > 1
            && runs
                .iter()
                .any(|r| r.meta.mem_total_kib != mem || r.meta.cpu_cores != cpus)
        {
            notes.push(format!(
                "host type {label}: its {} runs record different memory or cores; the smallest ({} KiB, {cpus} cores) is planned",
                runs.len(),
                mem
            ));
        }
        let spec = inputs.specs.get(label);
        let dir = &runs[0].dir;
        let fact = |what: &'static str| {
            PlanError::from(FleetError::NoHostFact {
                dir: dir.clone(),
                label: label.clone(),
                what,
            })
        };
        let (mem_kib, mem_source) = match spec {
            Some((m, _)) => (*m, "--host-spec".to_string()),
            None if mem > 0 => (mem as f64, format!("{}/meta.json", dir.display())),
            None => return Err(fact("mem_total_kib")),
        };
        let (cpus, cpus_source) = match spec.and_then(|(_, c)| *c) {
            Some(c) => (c, "--host-spec".to_string()),
            // Core counts are small integers: exact in an f64.
            None if cpus > 0 => (cpus as f64, format!("{}/meta.json", dir.display())),
            None => return Err(fact("cpu_cores")),
        };
        let host = Host {
            mem_kib,
            cpus,
            headroom: args.headroom,
            mem_source,
            cpus_source,
        };
        let pooled = pool(runs);
        let backends = model::models(&pooled, |_, _, _| false)
            .into_iter()
            .filter(|m| m.memory.fit.is_some())
            .map(|m| TypeBackend {
                backend: m.backend.clone(),
                accel: m.accel.clone(),
                per_host: capacity_of(&m, &host, workload_mem_kib),
                model: m,
            })
            .collect::<Vec<_>>();
        if backends.is_empty() {
            return Err(PlanError::NoModel { path: dir.clone() });
        }
        types.push(HostType {
            label: label.clone(),
            runs: runs.iter().map(|r| r.dir.clone()).collect(),
            cpu_model: runs[0].meta.cpu_model.clone(),
            virtualization: runs[0].meta.virtualization.describe(),
            host,
            cost: inputs.costs.get(label).copied().unwrap_or(1.0),
            backends,
        });
    }
    Ok((types, notes, workload))
}

/// The cheapest hosts that hold `demand` instances, each type `h` holding `per_host[h]`
/// (`None`: unbounded) at `cost[h]`. Exact: a table of the least (cost, hosts) for every
/// instance count up to the demand, O(demand x types). A greedy choice by cost per instance
/// is not exact with whole hosts (3 small hosts may cost less than 1 big one for a remainder).
pub fn cheapest(demand: u64, per_host: &[Option<u64>], cost: &[f64]) -> Option<Vec<u64>> {
    // Usable types and what one host of each covers (an unbounded host covers all).
    let cover: Vec<Option<u64>> = per_host
        .iter()
        .map(|p| match p {
            None => Some(demand),
            Some(0) => None,
            Some(k) => Some((*k).min(demand)),
        })
        .collect();
    if cover.iter().all(Option::is_none) {
        return None;
    }
    let d = usize::try_from(demand).ok()?;
    // best[u] = (cost, hosts, type of the last host) covering at least u instances.
    let mut best: Vec<(f64, u64, usize)> = vec![(f64::INFINITY, u64::MAX, usize::MAX); d + 1];
    best[0] = (0.0, 0, usize::MAX);
    for u in 1..=d {
        for (h, c) in cover.iter().enumerate() {
            let Some(k) = c else { continue };
            let prev = u.saturating_sub(usize::try_from(*k).unwrap_or(usize::MAX));
            let (pc, ph, _) = best[prev];
            let cand = (pc + cost[h], ph.saturating_add(1), h);
            let cur = best[u];
            let better = cand.0 < cur.0 - 1e-9 * cur.0.abs().max(1.0)
                || ((cand.0 - cur.0).abs() <= 1e-9 * cur.0.abs().max(1.0) && cand.1 < cur.1);
            if better {
                best[u] = cand;
            }
        }
    }
    let mut counts = vec![0u64; per_host.len()];
    let mut u = d;
    while u > 0 {
        let h = best[u].2;
        counts[h] += 1;
        let k = usize::try_from(cover[h].unwrap_or(demand)).unwrap_or(usize::MAX);
        u = u.saturating_sub(k);
    }
    Some(counts)
}

/// A backend's demand over the host types that bound it. A type where neither memory nor idle
/// CPU grows with N in its run (a host view swamped by noise at small N) is left out with a
/// note: "unbounded" there is a measurement too small to tell, not a host without limits.
fn answer(types: &[HostType], backend: &str, demand: u64) -> DemandAnswer {
    let bounded = |t: &&HostType| {
        t.backend(backend)
            .is_some_and(|b| b.per_host.max_n.is_some())
    };
    let with: Vec<&HostType> = types.iter().filter(bounded).collect();
    let alone = with
        .iter()
        .map(|t| {
            let cap = &t.backend(backend).expect("filtered").per_host;
            let p = super::capacity::placement(demand, 0.0, cap.clone());
            Alone {
                label: t.label.clone(),
                per_host: cap.max_n,
                hosts: p.hosts,
                hosts_range: p.hosts_range,
                cost: p.hosts.map(|h| h as f64 * t.cost),
            }
        })
        .collect();
    let per_host: Vec<Option<u64>> = with
        .iter()
        .map(|t| t.backend(backend).expect("filtered").per_host.max_n)
        .collect();
    let costs: Vec<f64> = with.iter().map(|t| t.cost).collect();
    let cheapest = cheapest(demand, &per_host, &costs).map(|counts| {
        let mut holds = Some(0u64);
        let (mut low, mut high) = (Some(0u64), Some(0u64));
        let mut hosts = Vec::new();
        for ((t, &c), p) in with.iter().zip(&counts).zip(&per_host) {
            if c == 0 {
                continue;
            }
            hosts.push((t.label.clone(), c));
            holds = holds.and_then(|h| p.map(|p| h + p * c));
            match t.backend(backend).expect("filtered").per_host.range {
                Some(r) => {
                    low = low.map(|l| l + r.low.saturating_mul(c));
                    high = high.and_then(|h| r.high.map(|x| h + x.saturating_mul(c)));
                }
                None => {
                    low = None;
                }
            }
        }
        let holds_range = low.map(|low| Range { low, high });
        Mix {
            total_hosts: counts.iter().sum(),
            cost: counts.iter().zip(&costs).map(|(&c, k)| c as f64 * k).sum(),
            hosts,
            holds,
            holds_at_low_end: holds_range.map(|r| r.low >= demand),
            holds_range,
        }
    });
    let labels = |keep: &dyn Fn(&HostType) -> bool| -> Vec<&str> {
        types
            .iter()
            .filter(|t| keep(t))
            .map(|t| t.label.as_str())
            .collect()
    };
    let missing = labels(&|t| t.backend(backend).is_none());
    let unbounded = labels(&|t| {
        t.backend(backend)
            .is_some_and(|b| b.per_host.max_n.is_none())
    });
    let mut notes = Vec::new();
    if !missing.is_empty() {
        notes.push(format!(
            "no memory model of {backend} on host type(s) {}: left out",
            missing.join(", ")
        ));
    }
    if !unbounded.is_empty() {
        notes.push(format!(
            "{backend} on host type(s) {}: neither memory nor idle CPU grows with N in the run(s), so no bound per host can be told (the host view is noise at the N measured): left out; measure larger N or more repetitions there",
            unbounded.join(", ")
        ));
    }
    DemandAnswer {
        backend: backend.to_string(),
        instances: demand,
        alone,
        note: (!notes.is_empty()).then(|| notes.join("; ")),
        cheapest,
    }
}

/// Every pair of host types (in order), per backend both measured.
fn density(types: &[HostType], costs_given: bool) -> Vec<Density> {
    let mut out = Vec::new();
    for (i, a) in types.iter().enumerate() {
        for b in &types[i + 1..] {
            for ab in &a.backends {
                let Some(bb) = b.backend(&ab.backend) else {
                    continue;
                };
                if let Some(d) = density_pair(&ab.per_host, &bb.per_host) {
                    out.push(Density {
                        backend: ab.backend.clone(),
                        a: a.label.clone(),
                        b: b.label.clone(),
                        per_cost_ratio: costs_given.then(|| d.ratio * a.cost / b.cost),
                        ..d
                    });
                }
            }
        }
    }
    out
}

/// Instances per host of B over A with its interval; `None` when either is unbounded or 0.
pub fn density_pair(a: &Capacity, b: &Capacity) -> Option<Density> {
    let (an, bn) = (a.max_n.filter(|n| *n > 0)?, b.max_n.filter(|n| *n > 0)?);
    let ratio_range = match (a.range, b.range) {
        (Some(ar), Some(br)) => {
            let low = match ar.high {
                Some(h) if h > 0 => br.low as f64 / h as f64,
                _ => 0.0,
            };
            let high = br
                .high
                .and_then(|bh| (ar.low > 0).then(|| bh as f64 / ar.low as f64));
            Some((low, high))
        }
        _ => None,
    };
    Some(Density {
        backend: String::new(),
        a: String::new(),
        b: String::new(),
        a_per_host: an,
        b_per_host: bn,
        ratio: bn as f64 / an as f64,
        ratio_range,
        per_cost_ratio: None,
    })
}

/// The headroom `compare` plans each host with when it sets two hosts' density side by side
/// (`plan`'s default).
pub const COMPARE_HEADROOM: f64 = 0.10;

/// Host B (NEW) against host A (BASE) for every backend both have a memory model of: the
/// instances each host holds by its own meta.json (memory, cores) at `headroom`, and their
/// ratio with its interval. Empty when a run records no memory or cores.
pub fn host_density(a: &RunData, b: &RunData, headroom: f64) -> Vec<Density> {
    let per_host = |r: &RunData| -> Vec<(String, Capacity)> {
        if r.meta.mem_total_kib == 0 || r.meta.cpu_cores == 0 {
            return Vec::new();
        }
        let host = Host {
            mem_kib: r.meta.mem_total_kib as f64,
            // Core counts are small integers: exact in an f64.
            cpus: r.meta.cpu_cores as f64,
            headroom,
            mem_source: format!("{}/meta.json", r.dir.display()),
            cpus_source: format!("{}/meta.json", r.dir.display()),
        };
        model::models(r, |_, _, _| false)
            .into_iter()
            .filter(|m| m.memory.fit.is_some())
            .map(|m| (m.backend.clone(), capacity_of(&m, &host, 0.0)))
            .collect()
    };
    let (pa, pb) = (per_host(a), per_host(b));
    pa.iter()
        .filter_map(|(backend, ca)| {
            let (_, cb) = pb.iter().find(|(x, _)| x == backend)?;
            density_pair(ca, cb).map(|d| Density {
                backend: backend.clone(),
                a: label_of(a),
                b: label_of(b),
                ..d
            })
        })
        .collect()
}

/// Builds the fleet plan from the arguments, reading but writing nothing.
pub fn build(args: &PlanArgs) -> Result<Fleet, PlanError> {
    let base = super::check_flags(args)?;
    if args.until.is_some() {
        return Err(FleetError::Bad {
            flag: "--until",
            value: args
                .until
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            allowed: "plan one host (without --fleet) to check an until run".into(),
        }
        .into());
    }
    if base.host_mem_kib.is_some() || args.host_cpus.is_some() {
        return Err(FleetError::Bad {
            flag: if base.host_mem_kib.is_some() {
                "--host-mem"
            } else {
                "--host-cpus"
            },
            value: args
                .host_mem
                .clone()
                .unwrap_or_else(|| args.host_cpus.unwrap_or(0.0).to_string()),
            allowed:
                "with --fleet, give each host type's memory and cores as --host-spec LABEL=MEM,CPUS"
                    .into(),
        }
        .into());
    }
    let inputs = check(args)?;
    let workload_mem_kib = base.workload_mem_kib.unwrap_or(0.0);
    let (types, mut notes, workload) = host_types(args, &inputs, workload_mem_kib)?;
    let costs_given = !inputs.costs.is_empty();
    let (demands, alternatives) = if inputs.mix.is_empty() {
        let w = args.workloads.expect("checked: a demand is given");
        let mut names: Vec<&str> = Vec::new();
        for t in &types {
            for b in &t.backends {
                if !names.contains(&b.backend.as_str()) {
                    names.push(&b.backend);
                }
            }
        }
        (
            names
                .into_iter()
                .map(|b| answer(&types, b, w))
                .collect::<Vec<_>>(),
            true,
        )
    } else {
        let mut out = Vec::new();
        for (b, n) in &inputs.mix {
            if !types.iter().any(|t| t.backend(b).is_some()) {
                return Err(FleetError::BackendMissing {
                    backend: b.clone(),
                    n: *n,
                    labels: types
                        .iter()
                        .map(|t| t.label.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                }
                .into());
            }
            out.push(answer(&types, b, *n));
        }
        (out, false)
    };
    let total = (!alternatives).then(|| {
        demands
            .iter()
            .filter_map(|d| d.cheapest.as_ref())
            .fold((0u64, 0.0), |(h, c), m| (h + m.total_hosts, c + m.cost))
    });
    if types.len() < 2 {
        notes.push(format!(
            "one host type ({}): give runs from several host labels to compare types",
            types[0].label
        ));
    }
    for t in &types {
        if !inputs.specs.contains_key(&t.label) {
            notes.push(format!(
                "host type {}: memory and cores are those of the measuring host ({}); give --host-spec {}=MEM,CPUS for another size",
                t.label, t.host.mem_source, t.label
            ));
        }
    }
    Ok(Fleet {
        scenario: types[0]
            .runs
            .first()
            .and_then(|d| load(d, None).ok())
            .map(|r| r.meta.scenario)
            .unwrap_or_default(),
        workload,
        workload_mem_kib,
        headroom: args.headroom,
        costs_given,
        alternatives,
        density: density(&types, costs_given),
        host_types: types,
        demands,
        total,
        notes,
        definitions: DEFINITIONS.iter().copied().collect(),
    })
}

fn range_text(r: Option<Range>) -> String {
    match r {
        None => "-".into(),
        Some(Range { low, high: Some(h) }) => format!("{low}-{h}"),
        Some(Range { low, high: None }) => format!("{low}-unbounded"),
    }
}

fn opt<T: ToString>(v: Option<T>, none: &str) -> String {
    v.map_or_else(|| none.to_string(), |v| v.to_string())
}

/// The fleet plan as text: host types, per backend and type, the demands, density.
pub fn text(f: &Fleet) -> String {
    use crate::text::format::sig;
    let table = |h: &[&str], rows: &[Vec<String>]| {
        crate::text::table::render(h, &vec![false; h.len()], rows)
    };
    let def = |n: &str| {
        DEFINITIONS
            .iter()
            .find(|(k, _)| *k == n)
            .map_or("", |(_, d)| *d)
    };
    let mut o = String::new();
    let _ = writeln!(
        o,
        "fleet plan: scenario {}, workload {}{}, headroom {}%",
        f.scenario,
        f.workload.as_deref().unwrap_or("unknown"),
        if f.workload_mem_kib > 0.0 {
            format!(
                " + {} MiB per instance (--workload-mem)",
                sig(f.workload_mem_kib / 1024.0)
            )
        } else {
            String::new()
        },
        sig(f.headroom * 100.0)
    );
    let _ = writeln!(o, "host types: {}", def("host_type"));
    let rows: Vec<Vec<String>> = f
        .host_types
        .iter()
        .map(|t| {
            vec![
                t.label.clone(),
                t.runs.len().to_string(),
                format!("{:.1} GiB", t.host.mem_kib / 1024.0 / 1024.0),
                sig(t.host.cpus),
                t.cpu_model.clone(),
                t.virtualization.clone(),
                if f.costs_given {
                    sig(t.cost)
                } else {
                    "-".into()
                },
            ]
        })
        .collect();
    o += &table(
        &[
            "host type",
            "runs",
            "memory",
            "cores",
            "CPU",
            "virtualization",
            "cost",
        ],
        &rows,
    );
    let _ = writeln!(o, "\nper host (backend x host type): {}", def("per_host"));
    let mut rows = Vec::new();
    for t in &f.host_types {
        for b in &t.backends {
            let fit = b.model.memory.fit.as_ref();
            rows.push(vec![
                b.backend.clone(),
                b.accel.clone(),
                t.label.clone(),
                fit.map_or("-".into(), |f| format!("{} MiB", sig(f.slope / 1024.0))),
                format!(
                    "{}{}",
                    opt(b.per_host.max_n, "unbounded"),
                    if b.per_host.extrapolated { "*" } else { "" }
                ),
                range_text(b.per_host.range),
                b.per_host
                    .binding
                    .map_or("-".into(), |r| r.name().to_string()),
            ]);
        }
    }
    o += &table(
        &[
            "backend",
            "accel",
            "host type",
            "memory per instance",
            "per host",
            "range (±2 SE)",
            "bound by",
        ],
        &rows,
    );
    if rows.iter().any(|r| r[4].ends_with('*')) {
        o += "  *: beyond the largest N measured: the line is extrapolated\n";
    }
    let _ = writeln!(
        o,
        "\ndemand ({}): {}\n  cheapest: {}",
        if f.alternatives {
            "--workloads: each backend an alternative"
        } else {
            "--mix: all at once, each backend on hosts of its own"
        },
        def("hosts"),
        def("cheapest")
    );
    for d in &f.demands {
        let _ = writeln!(o, "{} x {}:", d.instances, d.backend);
        let rows: Vec<Vec<String>> = d
            .alone
            .iter()
            .map(|a| {
                vec![
                    a.label.clone(),
                    opt(a.per_host, "unbounded"),
                    opt(a.hosts, "none fit"),
                    a.hosts_range
                        .map_or("-".into(), |(l, h)| format!("{l}-{}", opt(h, "unbounded"))),
                    if f.costs_given {
                        a.cost.map_or("-".into(), sig)
                    } else {
                        "-".into()
                    },
                ]
            })
            .collect();
        o += &table(
            &["host type", "per host", "hosts", "hosts range", "cost"],
            &rows,
        );
        match &d.cheapest {
            Some(m) => {
                let _ = writeln!(
                    o,
                    "  cheapest: {} ({} host{}{}); holds {} instances at the fitted lines, {} across the ranges{}",
                    m.hosts
                        .iter()
                        .map(|(l, c)| format!("{c} x {l}"))
                        .collect::<Vec<_>>()
                        .join(" + "),
                    m.total_hosts,
                    if m.total_hosts == 1 { "" } else { "s" },
                    if f.costs_given {
                        format!(", cost {}", sig(m.cost))
                    } else {
                        String::new()
                    },
                    opt(m.holds, "unbounded"),
                    range_text(m.holds_range),
                    match m.holds_at_low_end {
                        Some(false) => format!(
                            "; at the low end it would not hold {}: add a host or more headroom",
                            d.instances
                        ),
                        _ => String::new(),
                    }
                );
            }
            None => {
                let _ = writeln!(
                    o,
                    "  cheapest: none: no host type has a bound that holds an instance"
                );
            }
        }
        if let Some(n) = &d.note {
            let _ = writeln!(o, "  note: {n}");
        }
    }
    if let Some((hosts, cost)) = f.total {
        let _ = writeln!(
            o,
            "whole mix: {hosts} hosts{}",
            if f.costs_given {
                format!(", cost {}", sig(cost))
            } else {
                String::new()
            }
        );
    }
    if !f.density.is_empty() {
        let _ = writeln!(o, "\ndensity, host type B against A: {}", def("density"));
        let rows: Vec<Vec<String>> = f
            .density
            .iter()
            .map(|d| {
                vec![
                    d.backend.clone(),
                    format!("{} vs {}", d.b, d.a),
                    format!("{} / {}", d.b_per_host, d.a_per_host),
                    format!("{}x", sig(d.ratio)),
                    d.ratio_range.map_or("-".into(), |(l, h)| {
                        format!("{}-{}", sig(l), h.map_or("unbounded".into(), sig))
                    }),
                    d.per_cost_ratio
                        .map_or("-".into(), |r| format!("{}x", sig(r))),
                    d.verdict(),
                ]
            })
            .collect();
        o += &table(
            &[
                "backend",
                "B vs A",
                "per host B / A",
                "ratio",
                "interval",
                "per cost",
                "verdict",
            ],
            &rows,
        );
    }
    for n in &f.notes {
        let _ = writeln!(o, "note: {n}");
    }
    o
}

/// fleet.csv: one row per host type and backend, units in the column names.
pub fn write_csv(f: &Fleet, path: &Path) -> Result<(), PlanError> {
    let err = |e: &dyn std::fmt::Display| PlanError::Write {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let mut w = csv::Writer::from_path(path).map_err(|e| err(&e))?;
    w.write_record([
        "host_type",
        "backend",
        "accel",
        "host_mem_kib",
        "host_cpus",
        "headroom",
        "cost",
        "mem_per_instance_kib",
        "per_host",
        "per_host_low",
        "per_host_high",
        "demand",
        "hosts_alone",
        "hosts_in_cheapest",
    ])
    .map_err(|e| err(&e))?;
    for t in &f.host_types {
        for b in &t.backends {
            let d = f.demands.iter().find(|d| d.backend == b.backend);
            let alone = d.and_then(|d| d.alone.iter().find(|a| a.label == t.label));
            let in_cheapest = d.and_then(|d| d.cheapest.as_ref()).map(|m| {
                m.hosts
                    .iter()
                    .find(|(l, _)| *l == t.label)
                    .map_or(0, |(_, c)| *c)
            });
            w.write_record([
                t.label.clone(),
                b.backend.clone(),
                b.accel.clone(),
                format!("{:.0}", t.host.mem_kib),
                t.host.cpus.to_string(),
                t.host.headroom.to_string(),
                t.cost.to_string(),
                b.model
                    .memory
                    .fit
                    .as_ref()
                    .map_or(String::new(), |f| format!("{:.0}", f.slope)),
                opt(b.per_host.max_n, ""),
                b.per_host
                    .range
                    .map_or(String::new(), |r| r.low.to_string()),
                b.per_host
                    .range
                    .and_then(|r| r.high)
                    .map_or(String::new(), |h| h.to_string()),
                d.map_or(String::new(), |d| d.instances.to_string()),
                alone
                    .and_then(|a| a.hosts)
                    .map_or(String::new(), |h| h.to_string()),
                opt(in_cheapest, ""),
            ])
            .map_err(|e| err(&e))?;
        }
    }
    w.flush().map_err(|e| err(&e))
}

/// `plan --fleet`: builds, writes fleet.csv into --out (default: the current directory's
/// `fleet-plan`), prints text or JSON.
pub fn run(args: &PlanArgs, format: Format) -> Result<(), PlanError> {
    let f = build(args)?;
    let dir = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("fleet-plan"));
    std::fs::create_dir_all(&dir).map_err(|e| PlanError::Write {
        path: dir.clone(),
        message: e.to_string(),
    })?;
    let csv = dir.join("fleet.csv");
    write_csv(&f, &csv)?;
    match format {
        Format::Text => {
            out!("{}", text(&f));
            outln!("wrote {}", csv.display());
        }
        Format::Json => {
            #[derive(Serialize)]
            struct Doc<'a> {
                #[serde(flatten)]
                fleet: &'a Fleet,
                csv: &'a Path,
            }
            outln!(
                "{}",
                serde_json::to_string_pretty(&Doc {
                    fleet: &f,
                    csv: &csv
                })
                .expect("a fleet plan serialises")
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cheapest_is_exact_with_whole_hosts() {
        // 10 instances; big holds 8 for 5, small holds 3 for 2. Greedy by cost per instance
        // (big: 0.625, small: 0.667) takes 2 big = 10; 1 big + 1 small = 7 is cheaper.
        assert_eq!(
            cheapest(10, &[Some(8), Some(3)], &[5.0, 2.0]),
            Some(vec![1, 1])
        );
        // Without costs (all 1): the fewest hosts (2 big or 1 + 1: both 2).
        let fewest = cheapest(10, &[Some(8), Some(3)], &[1.0, 1.0]).unwrap();
        assert_eq!(fewest.iter().sum::<u64>(), 2);
        assert_eq!(
            cheapest(16, &[Some(8), Some(3)], &[1.0, 1.0]),
            Some(vec![2, 0])
        );
        // Small ones only, when they are cheap enough.
        assert_eq!(
            cheapest(9, &[Some(8), Some(3)], &[10.0, 2.0]),
            Some(vec![0, 3])
        );
        // A type that holds nothing is never chosen; none at all: no answer.
        assert_eq!(
            cheapest(4, &[Some(0), Some(3)], &[1.0, 1.0]),
            Some(vec![0, 2])
        );
        assert_eq!(cheapest(4, &[Some(0)], &[1.0]), None);
        // Unbounded: one host.
        assert_eq!(
            cheapest(1000, &[None, Some(3)], &[1.0, 1.0]),
            Some(vec![1, 0])
        );
    }

    fn cap(n: u64, low: u64, high: Option<u64>) -> Capacity {
        use super::super::capacity::{Resource, ResourceLimit};
        let l = ResourceLimit {
            resource: Resource::Memory,
            budget: 1.0,
            unit: "KiB",
            n: Some(n),
            range: Some(Range { low, high }),
            note: None,
        };
        Capacity {
            idle_cpu: l.clone(),
            memory: l,
            max_n: Some(n),
            binding: Some(Resource::Memory),
            range: Some(Range { low, high }),
            extrapolated: false,
        }
    }

    #[test]
    fn density_interval_from_the_ranges() {
        let d = density_pair(&cap(100, 90, Some(110)), &cap(200, 180, Some(220))).unwrap();
        assert!((d.ratio - 2.0).abs() < 1e-12);
        let (l, h) = d.ratio_range.unwrap();
        assert!((l - 180.0 / 110.0).abs() < 1e-12);
        assert!((h.unwrap() - 220.0 / 90.0).abs() < 1e-12);
        let open = density_pair(&cap(100, 90, Some(110)), &cap(200, 180, None)).unwrap();
        assert_eq!(open.ratio_range.unwrap().1, None);
    }
}
