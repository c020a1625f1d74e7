//! Command-line types (clap derive) only; main.rs turns them into library calls.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "isobench",
    version,
    about = "Measures containers against virtual machines on this host: start-up, memory, disk, idle CPU, kernel redundancy."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Runs a scenario (default: the embedded scenarios/quick.toml) and writes a run directory.
    Run {
        /// Scenario file (TOML). Without it, the embedded default scenario runs.
        scenario: Option<PathBuf>,
        /// Results directory (default: runs/<time>-<scenario>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Where per-run state (overlays, image layers) lives while the run lasts.
        #[arg(long, env = "ISOBENCH_STATE_DIR", default_value = crate::runner::DEFAULT_STATE_ROOT)]
        state_dir: PathBuf,
        /// Cache of VM base disks, kept across runs (built once per image content).
        #[arg(long, env = "ISOBENCH_CACHE_DIR", default_value = crate::runner::DEFAULT_CACHE_DIR)]
        cache_dir: PathBuf,
        /// No progress bars or per-batch lines on stderr.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Removes what a killed run left (processes, mounts, cgroups, overlays), found by run-id markers.
    Clean {
        #[arg(long, env = "ISOBENCH_STATE_DIR", default_value = crate::runner::DEFAULT_STATE_ROOT)]
        state_dir: PathBuf,
        /// Only list what would be removed.
        #[arg(long)]
        dry_run: bool,
        /// Also empty the cache of VM base disks.
        #[arg(long)]
        cache: bool,
        #[arg(long, env = "ISOBENCH_CACHE_DIR", default_value = crate::runner::DEFAULT_CACHE_DIR)]
        cache_dir: PathBuf,
    },
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
