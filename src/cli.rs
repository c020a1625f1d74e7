//! Command-line types (clap derive) only; main.rs turns them into library calls.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// How a command prints its results: aligned text for people, or one JSON document on stdout
/// for other tools.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum Format {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Parser)]
#[command(
    name = "isobench",
    version,
    about = "Measures containers against virtual machines on this host: start-up, memory, disk, idle CPU, kernel redundancy."
)]
pub struct Cli {
    /// Output format of the command's results on stdout.
    #[arg(long, value_enum, default_value_t = Format::Text, global = true)]
    pub format: Format,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs a scenario (default: the embedded scenarios/quick.toml) and writes a run directory.
    Run(RunArgs),
    /// Removes what a killed run left (processes, mounts, cgroups, overlays), found by run-id markers.
    Clean(CleanArgs),
    /// Writes report.html, report.md and plots (SVG and PNG) for one or more run directories.
    Report(ReportArgs),
    /// Compares two runs metric by metric: ratio NEW/BASE with a bootstrap confidence interval
    /// and a verdict against a tolerance.
    Compare(CompareArgs),
    /// Capacity planning from a density run: fitted cost models, instances per host, hosts
    /// for W workloads, the VM/container break-even.
    Plan(PlanArgs),
    /// Checks this host: root, cgroups, namespaces, overlayfs, busybox, runc/crun, QEMU, KVM.
    Doctor,
    /// The workload program that runs inside every instance (used by the harness).
    #[command(hide = true)]
    Agent {
        /// idle | touch-memory MIB | write-file MIB
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        workload: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Scenario file (TOML). Without it, the embedded default scenario runs.
    pub scenario: Option<PathBuf>,
    /// Results directory (default: runs/<time>-<scenario>). One that holds anything is
    /// refused unless --overwrite; it is locked while the run lasts.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Empty an existing --out directory first (symlinks in it are removed, not followed;
    /// a mount point in it is refused).
    #[arg(long)]
    pub overwrite: bool,
    /// Where per-run state (overlays, image layers) lives while the run lasts.
    #[arg(long, env = "ISOBENCH_STATE_DIR", default_value = crate::host::state_dir::DEFAULT_STATE_ROOT)]
    pub state_dir: PathBuf,
    /// Cache of VM base disks, kept across runs (built once per image content).
    #[arg(long, env = "ISOBENCH_CACHE_DIR", default_value = crate::host::state_dir::DEFAULT_CACHE_DIR)]
    pub cache_dir: PathBuf,
    /// No progress bars or per-batch lines on stderr.
    #[arg(long, short)]
    pub quiet: bool,
    /// At the end, write report.html, report.md and the plots into the run directory
    /// (as `isobench report RUN_DIR` does).
    #[arg(long)]
    pub report: bool,
}

#[derive(Debug, Args)]
pub struct CleanArgs {
    #[arg(long, env = "ISOBENCH_STATE_DIR", default_value = crate::host::state_dir::DEFAULT_STATE_ROOT)]
    pub state_dir: PathBuf,
    /// Only list what would be removed.
    #[arg(long)]
    pub dry_run: bool,
    /// Also empty the cache of VM base disks.
    #[arg(long)]
    pub cache: bool,
    #[arg(long, env = "ISOBENCH_CACHE_DIR", default_value = crate::host::state_dir::DEFAULT_CACHE_DIR)]
    pub cache_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Run directories (runs/<time>-<scenario>); several are shown side by side.
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
    /// Where to write the report (default: the run directory, or with several runs the first
    /// one's `report-<n>-runs` subdirectory).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// A label per run directory, in the same order (default: the directory's name).
    #[arg(long = "label")]
    pub labels: Vec<String>,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The baseline run directory.
    pub base: PathBuf,
    /// The run directory compared against the baseline.
    pub new: PathBuf,
    /// Relative tolerance for every metric: NEW/BASE up to 1 + TOL is not a regression
    /// [default: the tolerance file's `default`, else 0.10].
    #[arg(long, value_name = "TOL")]
    pub tolerance: Option<f64>,
    /// Tolerance of one metric, as METRIC=TOL (for example startup_ms=0.25); repeatable.
    #[arg(long = "tolerance-for", value_name = "METRIC=TOL")]
    pub tolerance_for: Vec<String>,
    /// A TOML file of tolerances: `default = 0.1` and a `[metrics]` table of METRIC = TOL.
    /// Flags given on the command line win over the file.
    #[arg(long)]
    pub tolerances: Option<PathBuf>,
    /// Confidence level of the intervals.
    #[arg(long, default_value_t = 0.95)]
    pub confidence: f64,
    /// Bootstrap resamples per interval.
    #[arg(long, default_value_t = 2000)]
    pub resamples: u32,
    /// Exit 1 when any metric is worse than BASE beyond its tolerance.
    #[arg(long)]
    pub fail_on_regression: bool,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    /// A density run directory (a sweep over N) to fit the cost models from.
    pub run: PathBuf,
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
    /// Number of workloads W to place (answers how many hosts they need).
    #[arg(long)]
    pub workloads: Option<u64>,
    /// Memory of one workload S, added to every instance's fitted cost (binary unit: 256M).
    #[arg(long)]
    pub workload_mem: Option<String>,
    /// Where plan.csv and the plot go (default: the run directory).
    #[arg(long)]
    pub out: Option<PathBuf>,
}
