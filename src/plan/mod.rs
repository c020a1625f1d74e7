//! `isobench plan`: capacity planning from a density run. Fits a cost model per backend
//! (total memory and idle CPU of N instances as fixed + per instance x N), then answers how
//! many instances a host holds, how many hosts W workloads of size S need, and where VMs and
//! containers break even; with an `until` run, sets its predicted N against the N reached.

/// Instances per host, hosts for W workloads, the VM/container break-even.
pub mod capacity;
/// The plot: batches, fitted lines, the budget.
pub mod figure;
/// Ordinary least squares of a line, with standard errors.
pub mod fit;
/// Several host types: hosts of each type for a demand, the cheapest mix, density A vs B.
pub mod fleet;
/// Cost models per backend from a run's batches.
pub mod model;
/// The text tables and plan.csv.
pub mod output;
/// Binary memory units on the command line.
pub mod units;
/// Predicted against reached N of an until run.
pub mod until;

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::results::load::{LoadError, RunData, load};
use crate::results::metrics::GUEST_MEM_TOTAL_KIB;
use crate::text::Format;

use capacity::{BreakEven, Capacity, Host, Placement, Resource};
use model::CostModel;
use until::UntilCheck;

/// `isobench plan`'s arguments (clap derive; the command line includes them).
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// A density run directory (a sweep over N) to fit the cost models from; with --fleet,
    /// one or more per host type (runs of the same host label are pooled).
    #[arg(required = true, value_name = "RUN")]
    pub runs: Vec<PathBuf>,
    /// Plan a fleet: RUN... come from several host types (meta.json's host_label); answers
    /// how many hosts of each type the demand (--workloads or --mix) needs, and the cheapest
    /// mix of host types (by --host-cost, else the fewest hosts).
    #[arg(long)]
    pub fleet: bool,
    /// With --fleet: the cost of one host of type LABEL (any unit: money per month, watts),
    /// repeated per host type; give one for every type or none.
    #[arg(long = "host-cost", value_name = "LABEL=COST")]
    pub host_costs: Vec<String>,
    /// With --fleet: memory and cores of one host of type LABEL (default: its runs'
    /// meta.json), e.g. big=256G,64 or big=256G.
    #[arg(long = "host-spec", value_name = "LABEL=MEM[,CPUS]")]
    pub host_specs: Vec<String>,
    /// With --fleet: a demand of several backends at once, BACKEND=N, repeated (e.g.
    /// --mix container=300 --mix vm=20); each backend is placed on hosts of its own.
    #[arg(long = "mix", value_name = "BACKEND=N")]
    pub mix: Vec<String>,
    /// An `until` run directory whose reached N is set against the prediction (used
    /// automatically when RUN itself holds an until.csv).
    #[arg(long)]
    pub until: Option<PathBuf>,
    /// Host memory to plan for, with a binary unit: 64G, 512M, 1T (default: the run host's).
    #[arg(long)]
    pub host_mem: Option<String>,
    /// Host CPU cores to plan for (default: the run host's).
    #[arg(long)]
    pub host_cpus: Option<f64>,
    /// Share of memory and CPU kept free, 0 to <1.
    #[arg(long, default_value_t = 0.10)]
    pub headroom: f64,
    /// Number of workloads W to place (answers how many hosts they need; with --fleet, W
    /// instances of each backend, each backend an alternative).
    #[arg(long)]
    pub workloads: Option<u64>,
    /// Memory of one workload S, added to every instance's fitted cost (binary unit: 256M).
    #[arg(long)]
    pub workload_mem: Option<String>,
    /// Where plan.csv and the plot go (default: the run directory).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Why `plan` could not answer; every message names the flag, file or directory.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// `--host-mem` or `--workload-mem` without a binary unit.
    #[error(transparent)]
    Size(#[from] units::SizeError),
    /// Another flag out of its range.
    #[error("{flag} {value}: {allowed}")]
    Flag {
        flag: &'static str,
        value: String,
        allowed: &'static str,
    },
    /// A run directory that does not load.
    #[error(transparent)]
    Load(#[from] LoadError),
    /// A run without any backend that has a memory fit.
    #[error(
        "{path}: no backend has a memory model (it needs batches at 2 or more N with `measure.memory = true`); an until run alone cannot be fitted: give a density run and the until run as --until"
    )]
    NoModel { path: PathBuf },
    /// meta.json lacks the host's memory or cores, and no flag gives them.
    #[error("{path}/meta.json records no {what}: give {flag}")]
    NoHostFact {
        path: PathBuf,
        what: &'static str,
        flag: &'static str,
    },
    #[error(
        "{path}: --until holds no until.csv rows: give a run of a scenario with an [until] table"
    )]
    NoUntilRows { path: PathBuf },
    /// plan.csv or the out dir could not be written.
    #[error("writing {path}: {message}")]
    Write { path: PathBuf, message: String },
    /// The plot could not be drawn.
    #[error(transparent)]
    Plot(#[from] crate::chart::plot::PlotError),
    /// Several runs without --fleet.
    #[error(
        "{count} run directories given: plan one host from one density run, or give --fleet to plan a fleet from runs of several host types"
    )]
    SeveralRuns { count: usize },
    /// A fleet flag without --fleet, or a fleet input that does not fit.
    #[error(transparent)]
    Fleet(#[from] fleet::FleetError),
}

/// One backend's model and the answers drawn from it.
#[derive(Debug, Clone, Serialize)]
pub struct BackendPlan {
    pub model: CostModel,
    /// Instances of the run's workload one host holds.
    pub capacity: Capacity,
    /// With `--workloads` or `--workload-mem`: the same with S added to every instance, and
    /// the hosts W need.
    pub placement: Option<Placement>,
}

/// Everything `plan` computed: what the text, JSON, CSV and plot show.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub run: PathBuf,
    pub scenario: String,
    pub workload: Option<String>,
    pub host: Host,
    pub backends: Vec<BackendPlan>,
    pub break_even: Vec<BreakEven>,
    pub until_run: Option<PathBuf>,
    pub until: Vec<UntilCheck>,
    /// Until rows that could not be compared, and other caveats of the whole plan.
    pub notes: Vec<String>,
    /// What may make an answer wrong for the host planned for: a CPU budget taken from the
    /// measuring host, a workload larger than a VM's guest RAM.
    pub warnings: Vec<String>,
    pub definitions: std::collections::BTreeMap<&'static str, &'static str>,
}

/// What each answer means, printed with it and kept in the JSON.
pub const DEFINITIONS: &[(&str, &str)] = &[
    (
        "model",
        "total of N instances = fixed + per_instance x N, fitted by ordinary least squares over one point per batch (N, repetition); a fixed cost below 0 is clamped to 0 (the line refitted through 0, the least-squares line with fixed >= 0); SE = standard error, R² = 1 - SSR/SST, resid SE = residual standard error",
    ),
    (
        "memory",
        "the host's MemAvailable decrease for the batch (host_avail_kib x N, after drop_caches): what a host runs out of",
    ),
    (
        "idle_cpu",
        "sum of idle_cpu_ms_per_s over the batch: host CPU ms per s while the instances idle (a busy workload's CPU is not in this model)",
    ),
    (
        "max_n",
        "the most instances whose fitted memory stays within host memory x (1 - headroom) and whose fitted idle CPU stays within cores x 1000 ms/s x (1 - headroom); the smaller one binds",
    ),
    (
        "range",
        "the same N from the fitted line ±2 standard errors of the line (not a 95% interval with few points)",
    ),
    (
        "hosts",
        "ceil(W / max_n with S KiB added to every instance's cost)",
    ),
    (
        "break_even_lines",
        "the N where a VM backend's and a container backend's total-memory lines cross, if at N >= 1",
    ),
    (
        "break_even_cheap",
        "the workload size S per instance from which a VM's extra memory per instance over a container is below 10% of the VM's per-instance cost (fitted + S)",
    ),
    (
        "until",
        "predicted: the most instances the fitted line puts within the until run's budget (MemAvailable at start - floor); measured: it stopped after the first step past the floor, so the most that fitted lies in [reached - step, reached - 1]; difference = (predicted - midpoint) / midpoint",
    ),
];

/// The definition called `name` in [`DEFINITIONS`].
pub fn definition(name: &str) -> &'static str {
    DEFINITIONS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, d)| *d)
        .unwrap_or_else(|| panic!("no plan definition called {name}"))
}

/// The checked flags.
struct Inputs {
    host_mem_kib: Option<f64>,
    workload_mem_kib: Option<f64>,
}

fn check_flags(args: &PlanArgs) -> Result<Inputs, PlanError> {
    if let Some(c) = args.host_cpus
        && !(c.is_finite() && c > 0.0)
    {
        return Err(PlanError::Flag {
            flag: "--host-cpus",
            value: c.to_string(),
            allowed: "give a number of cores above 0, e.g. 16",
        });
    }
    if !(args.headroom.is_finite() && (0.0..1.0).contains(&args.headroom)) {
        return Err(PlanError::Flag {
            flag: "--headroom",
            value: args.headroom.to_string(),
            allowed: "give a share from 0 to below 1, e.g. 0.1",
        });
    }
    if args.workloads == Some(0) {
        return Err(PlanError::Flag {
            flag: "--workloads",
            value: "0".into(),
            allowed: "give at least 1 workload",
        });
    }
    Ok(Inputs {
        host_mem_kib: args
            .host_mem
            .as_deref()
            .map(|v| units::parse_kib("--host-mem", v))
            .transpose()?,
        workload_mem_kib: args
            .workload_mem
            .as_deref()
            .map(|v| units::parse_kib("--workload-mem", v))
            .transpose()?,
    })
}

/// The scenario the run recorded in meta.json, as a TOML table (`None` when it recorded none).
fn scenario_of(run: &RunData) -> Option<toml::Table> {
    run.meta.scenario_text.parse().ok()
}

/// The run's workload as its scenario wrote it (`idle`, `{ touch-memory = 64 }`), so a
/// prediction for a run of another workload can be flagged.
fn workload_of(run: &RunData) -> Option<String> {
    let t = scenario_of(run)?;
    Some(match t.get("workload") {
        None => "idle".to_string(),
        Some(toml::Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    })
}

/// MiB the run's own workload keeps resident in each instance: `touch-memory`'s size, else 0.
fn touched_mib(run: &RunData) -> f64 {
    let t = scenario_of(run);
    let size = t
        .as_ref()
        .and_then(|t| t.get("workload"))
        .and_then(toml::Value::as_table)
        .and_then(|w| w.get("touch-memory"))
        .and_then(toml::Value::as_integer);
    // A scenario's workload size is at most 65536 MiB: exact in an f64.
    size.map_or(0.0, |mib| mib as f64)
}

/// The RAM a VM backend's guest has, KiB, and where that comes from: the largest
/// `guest_mem_total_kib` its instances reported (the guest kernel's MemTotal, what a workload
/// can use at most), else the scenario's `[vm] memory_mib` (or its default).
fn guest_ram_kib(run: &RunData, backend: &str, accel: &str) -> (f64, String) {
    let measured = run
        .samples
        .iter()
        .filter(|s| s.backend == backend && s.accel == accel)
        .filter_map(|s| GUEST_MEM_TOTAL_KIB.of_sample(s))
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
    if let Some(kib) = measured {
        return (kib, "MemTotal the guests reported".into());
    }
    let configured = scenario_of(run)
        .as_ref()
        .and_then(|t| t.get("vm"))
        .and_then(toml::Value::as_table)
        .and_then(|vm| vm.get("memory_mib"))
        .and_then(toml::Value::as_integer);
    match configured {
        // [vm] memory_mib is at most a few TiB in MiB: exact in an f64.
        Some(mib) => (
            mib as f64 * 1024.0,
            "[vm] memory_mib of the run's scenario".into(),
        ),
        None => (
            crate::scenario::VmConfig::default().memory_mib as f64 * 1024.0,
            "the default [vm] memory_mib".into(),
        ),
    }
}

/// What may make the answers wrong for the host planned for (see [`Plan::warnings`]).
fn warnings(args: &PlanArgs, inputs: &Inputs, run: &RunData, models: &[CostModel]) -> Vec<String> {
    let mut out = Vec::new();
    if args.host_cpus.is_none() {
        out.push(format!(
            "the CPU budget is the measuring host's {} cores ({}/meta.json){}: give --host-cpus for the host you plan for",
            run.meta.cpu_cores,
            run.dir.display(),
            if inputs.host_mem_kib.is_some() {
                ", although --host-mem was given"
            } else {
                ""
            }
        ));
    }
    let own_kib = touched_mib(run) * 1024.0;
    let extra_kib = inputs.workload_mem_kib.unwrap_or(0.0);
    let workload_kib = own_kib + extra_kib;
    for m in models.iter().filter(|m| m.is_vm()) {
        let (ram_kib, from) = guest_ram_kib(run, &m.backend, &m.accel);
        if workload_kib > ram_kib {
            let mib = |kib: f64| crate::text::format::sig(kib / 1024.0);
            let parts: Vec<String> = [
                (own_kib, "the run's touch-memory"),
                (extra_kib, "--workload-mem"),
            ]
            .iter()
            .filter(|(kib, _)| *kib > 0.0)
            .map(|(kib, what)| format!("{} MiB of {what}", mib(*kib)))
            .collect();
            out.push(format!(
                "{} ({}): the workload's memory, {} MiB ({}), exceeds the guest's RAM, {} MiB ({from}): such a VM needs a larger guest, which this run did not measure, so its answers are too optimistic",
                m.backend,
                m.accel,
                mib(workload_kib),
                parts.join(" + "),
                mib(ram_kib),
            ));
        }
    }
    out
}

/// Builds the plan from the arguments, reading but writing nothing.
pub fn build(args: &PlanArgs) -> Result<Plan, PlanError> {
    let inputs = check_flags(args)?;
    let run_dir = single_run(args)?;
    let run = load(run_dir, None)?;
    let until_run = match &args.until {
        Some(dir) => {
            let u = load(dir, None)?;
            if u.until.is_empty() {
                return Err(PlanError::NoUntilRows { path: dir.clone() });
            }
            Some(u)
        }
        None => None,
    };
    // An until run's own batch would be the very point the prediction is checked against:
    // when RUN holds both, that batch stays out of the fit.
    let own_until = if until_run.is_none() {
        run.until.clone()
    } else {
        Vec::new()
    };
    let models = model::models(&run, |b, a, n| {
        own_until
            .iter()
            .any(|u| u.backend == b && u.accel == a && u.n_reached == n)
    });
    if !models.iter().any(|m| m.memory.fit.is_some()) {
        return Err(PlanError::NoModel {
            path: run_dir.clone(),
        });
    }

    let host = Host {
        mem_kib: match inputs.host_mem_kib {
            Some(k) => k,
            None if run.meta.mem_total_kib > 0 => run.meta.mem_total_kib as f64,
            None => {
                return Err(PlanError::NoHostFact {
                    path: run_dir.clone(),
                    what: "mem_total_kib",
                    flag: "--host-mem",
                });
            }
        },
        cpus: match args.host_cpus {
            Some(c) => c,
            None if run.meta.cpu_cores > 0 => run.meta.cpu_cores as f64,
            None => {
                return Err(PlanError::NoHostFact {
                    path: run_dir.clone(),
                    what: "cpu_cores",
                    flag: "--host-cpus",
                });
            }
        },
        headroom: args.headroom,
        mem_source: if inputs.host_mem_kib.is_some() {
            "--host-mem".into()
        } else {
            format!("{}/meta.json (the measuring host)", run_dir.display())
        },
        cpus_source: if args.host_cpus.is_some() {
            "--host-cpus".into()
        } else {
            format!("{}/meta.json (the measuring host)", run_dir.display())
        },
    };

    let wanted = args.workloads.is_some() || inputs.workload_mem_kib.is_some();
    let backends: Vec<BackendPlan> = models
        .into_iter()
        .map(|m| {
            let per_host = |extra_kib: f64| capacity_of(&m, &host, extra_kib);
            let placement = wanted.then(|| {
                let s = inputs.workload_mem_kib.unwrap_or(0.0);
                capacity::placement(args.workloads.unwrap_or(1), s, per_host(s))
            });
            BackendPlan {
                capacity: per_host(0.0),
                placement,
                model: m,
            }
        })
        .collect();

    let mut break_even = Vec::new();
    for v in backends.iter().filter(|b| b.model.is_vm()) {
        for c in backends.iter().filter(|b| b.model.is_container()) {
            if let (Some(vf), Some(cf)) = (&v.model.memory.fit, &c.model.memory.fit) {
                break_even.push(capacity::break_even(
                    (&v.model.backend, vf),
                    (&c.model.backend, cf),
                ));
            }
        }
    }

    let warnings = warnings(args, &inputs, &run, &models_only_of(&backends));
    let mut notes = Vec::new();
    let workload = workload_of(&run);
    let (until_rows, until_dir) = match &until_run {
        Some(u) => (u.until.clone(), Some(u.dir.clone())),
        None if !own_until.is_empty() => (own_until.clone(), Some(run.dir.clone())),
        None => (Vec::new(), None),
    };
    if let Some(u) = &until_run {
        let uw = workload_of(u);
        if uw != workload {
            notes.push(format!(
                "the until run's workload ({}) is not the density run's ({}): the prediction is for another workload",
                uw.as_deref().unwrap_or("unknown"),
                workload.as_deref().unwrap_or("unknown")
            ));
        }
        if u.meta.hostname != run.meta.hostname {
            notes.push(format!(
                "the until run was measured on host {:?}, the density run on {:?}",
                u.meta.hostname, run.meta.hostname
            ));
        }
    }
    let models_only = models_only_of(&backends);
    let mut until = Vec::new();
    for row in &until_rows {
        match until::check(row, &models_only) {
            Ok(c) => until.push(c),
            Err(e) => notes.push(format!("until: {e}")),
        }
    }

    Ok(Plan {
        run: run_dir.clone(),
        scenario: run.meta.scenario.clone(),
        workload,
        host,
        backends,
        break_even,
        until_run: until_dir,
        until,
        notes,
        warnings,
        definitions: DEFINITIONS.iter().copied().collect(),
    })
}

/// How many instances of `m` one `host` holds, each carrying `extra_kib` of workload memory.
pub fn capacity_of(m: &CostModel, host: &Host, extra_kib: f64) -> Capacity {
    let largest = m.batches.iter().map(|b| b.alive).max().unwrap_or(0);
    capacity::capacity(
        capacity::limit(
            Resource::Memory,
            m.memory.fit.as_ref(),
            host.mem_budget_kib(),
            "KiB",
            extra_kib,
        ),
        capacity::limit(
            Resource::IdleCpu,
            m.idle_cpu.fit.as_ref(),
            host.cpu_budget_ms_per_s(),
            "ms/s",
            0.0,
        ),
        largest,
    )
}

/// The one run of a single-host plan; several need --fleet, and fleet flags need it too.
fn single_run(args: &PlanArgs) -> Result<&PathBuf, PlanError> {
    if let Some(flag) = [
        (!args.host_costs.is_empty(), "--host-cost"),
        (!args.host_specs.is_empty(), "--host-spec"),
        (!args.mix.is_empty(), "--mix"),
    ]
    .iter()
    .find_map(|(given, f)| given.then_some(*f))
    {
        return Err(fleet::FleetError::NeedsFleet { flag }.into());
    }
    match args.runs.as_slice() {
        [one] => Ok(one),
        more => Err(PlanError::SeveralRuns { count: more.len() }),
    }
}

fn models_only_of(backends: &[BackendPlan]) -> Vec<CostModel> {
    backends.iter().map(|b| b.model.clone()).collect()
}

/// What `plan` wrote.
#[derive(Debug, Clone, Serialize)]
pub struct Written {
    pub csv: PathBuf,
    pub svg: PathBuf,
    pub png: PathBuf,
}

/// Writes plan.csv and the plot (plan.svg, plan.png) into `dir`, creating it.
pub fn write(plan: &Plan, dir: &Path) -> Result<Written, PlanError> {
    let err = |path: &Path, e: &dyn std::fmt::Display| PlanError::Write {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    std::fs::create_dir_all(dir).map_err(|e| err(dir, &e))?;
    let csv = dir.join("plan.csv");
    output::write_csv(plan, &csv).map_err(|e| err(&csv, &e))?;
    let r = crate::chart::plot::render(&figure::PlanFigure(plan), dir, "plan")?;
    Ok(Written {
        csv,
        svg: r.svg_path,
        png: r.png_path,
    })
}

pub fn run(args: &PlanArgs, format: Format) -> Result<(), PlanError> {
    if args.fleet {
        return fleet::run(args, format);
    }
    let plan = build(args)?;
    let dir = args.out.clone().unwrap_or_else(|| plan.run.clone());
    let written = write(&plan, &dir)?;
    match format {
        Format::Text => out!("{}", output::text(&plan, &written)),
        Format::Json => {
            #[derive(Serialize)]
            struct Doc<'a> {
                #[serde(flatten)]
                plan: &'a Plan,
                files: &'a Written,
            }
            let doc = Doc {
                plan: &plan,
                files: &written,
            };
            outln!(
                "{}",
                serde_json::to_string_pretty(&doc).expect("a plan serialises")
            );
        }
    }
    Ok(())
}
