//! Command-line types (clap derive) only; main.rs turns them into library calls.

pub use crate::compare::CompareArgs;
pub use crate::plan::PlanArgs;
pub use crate::report::command::ReportArgs;
pub use crate::text::Format;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

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
    /// Prints a shell completion script (see the README for where to install it).
    Completions {
        /// bash, zsh, fish, elvish or powershell.
        shell: clap_complete::Shell,
    },
    /// Prints the man page (roff), generated from these same definitions.
    Man,
    /// The workload program that runs inside every instance (used by the harness).
    #[command(hide = true)]
    Agent {
        /// idle | probe | syscalls [BUDGET_MS] | touch-memory MIB | write-file MIB | fork COUNT
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
    /// No progress display and no per-batch lines on stderr (warnings and deaths still print).
    #[arg(long, short)]
    pub quiet: bool,
    /// At the end, write report.html, report.md and the plots into the run directory
    /// (as `isobench report RUN_DIR` does).
    #[arg(long)]
    pub report: bool,
    /// How fleet reports and plans name this host or host type (meta.json's host_label):
    /// 1 to 63 of A-Z a-z 0-9 . _ - (default: the hostname).
    #[arg(long, env = "ISOBENCH_HOST_LABEL")]
    pub host_label: Option<String>,
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
