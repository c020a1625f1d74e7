//! `isobench run`: load the scenario, install the signal handling, run it, print the tables
//! (or one JSON document), optionally write the report, and choose the exit code.

use crate::cli::{Format, ReportArgs, RunArgs};
use crate::exit;
use crate::host::facts::{LabelError, check_label};
use crate::report::terminal;
use crate::runner::RunOutcome;
use crate::scenario::Scenario;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// Runs `isobench run`; prints its errors itself and returns the exit code.
pub fn command(args: RunArgs, format: Format) -> i32 {
    let scenario = match &args.scenario {
        Some(path) => match Scenario::load(path) {
            Ok(s) => s,
            Err(e) => return fail(e, exit::BAD_INPUT),
        },
        None => Scenario::default_embedded(),
    };
    let host_label = match host_label(args.host_label.as_deref()) {
        Ok(l) => l,
        Err(e) => return fail(e, exit::BAD_INPUT),
    };
    let cancel = Arc::new(AtomicBool::new(false));
    if let Err(e) = crate::runner::interrupt::install(cancel.clone()) {
        return fail(
            format!("installing signal handlers: {e}"),
            exit::MEASURED_FAILURE,
        );
    }
    let agent_exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            return fail(
                format!("locating the isobench binary (the agent): {e}"),
                exit::MEASURED_FAILURE,
            );
        }
    };
    let opts = crate::runner::RunOptions {
        out_dir: args.out,
        overwrite: args.overwrite,
        state_root: args.state_dir,
        cache_dir: args.cache_dir,
        agent_exe,
        progress: !args.quiet,
        cancel,
        command_line: std::env::args().collect(),
        host_label,
    };
    let outcome = match crate::runner::run(scenario, &opts) {
        Ok(o) => o,
        Err(e) => {
            let code = e.exit_code();
            return fail(e, code);
        }
    };
    // The report comes from the files, so it shows exactly what the run wrote.
    let (report_files, report_failed) = match args.report.then(|| write_report(&outcome.run_dir)) {
        Some(Ok(files)) => (files, false),
        Some(Err(())) => (Vec::new(), true),
        None => (Vec::new(), false),
    };
    if format == Format::Json {
        if let Err(e) = print_json(&outcome, &report_files) {
            return fail(e, exit::MEASURED_FAILURE);
        }
    } else {
        print_text(&outcome);
        if let Some(html) = report_files.first() {
            outln!("report: {}", html.display());
        }
    }
    for l in &outcome.leftovers {
        eprintln!("isobench: could not remove {l}; run `isobench clean`");
    }
    if outcome.interrupted {
        eprintln!(
            "isobench: interrupted; the samples measured so far are in {}",
            outcome.run_dir.display()
        );
        exit::INTERRUPTED
    } else if outcome.failed > 0 || !outcome.leftovers.is_empty() || report_failed {
        exit::MEASURED_FAILURE
    } else {
        exit::OK
    }
}

/// `--host-label`, or the hostname when none is given; either must be a valid label.
fn host_label(given: Option<&str>) -> Result<String, LabelError> {
    match given {
        Some(l) => check_label("--host-label", l),
        None => {
            let name = nix::unistd::gethostname()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_default();
            check_label("--host-label", &name).map_err(|_| LabelError::Hostname { name })
        }
    }
}

fn fail(e: impl std::fmt::Display, code: i32) -> i32 {
    eprintln!("isobench: {e}");
    code
}

/// The end-of-run tables: start-up, costs when measured, the isolation read back, system-call
/// costs, the VM/container ratios.
fn print_text(outcome: &RunOutcome) {
    outln!("{}", terminal::render_summary(&outcome.summary));
    if outcome
        .summary
        .iter()
        .any(|r| r.pss_kib_mean.is_some() || r.idle_cpu_ms_per_s_mean.is_some())
    {
        outln!("{}", terminal::render_costs(&outcome.summary));
    }
    if outcome.samples.iter().any(|s| !s.security.is_empty()) {
        let rows = crate::report::isolation::isolation_rows(&outcome.samples);
        outln!("{}", crate::report::isolation::render_isolation(&rows));
    }
    if !outcome.syscalls.is_empty() {
        let s = crate::report::isolation::syscall_summary(&outcome.syscalls);
        outln!(
            "system calls, median ns per operation (ratio to process):\n{}",
            crate::report::isolation::render_syscalls(&s)
        );
    }
    out!("{}", terminal::render_ratios(&outcome.summary));
    out!("{}", terminal::render_flags(&outcome.samples));
    outln!("results: {}", outcome.run_dir.display());
    if let Some(kib) = outcome.harness_peak_rss_kib {
        outln!("harness peak RSS: {:.1} MiB", kib as f64 / 1024.0);
    }
}

/// One JSON document with everything the run wrote (meta, raw samples, summary, kernel,
/// until and syscalls rows), read back from the run directory so it is exactly what the files
/// hold.
fn print_json(outcome: &RunOutcome, report_files: &[PathBuf]) -> Result<(), JsonError> {
    let run = crate::results::load::load(&outcome.run_dir, None).map_err(|source| {
        JsonError::ReadBack {
            dir: outcome.run_dir.clone(),
            source,
        }
    })?;
    let doc = serde_json::json!({
        "run_dir": outcome.run_dir,
        "interrupted": outcome.interrupted,
        "failed_instances": outcome.failed,
        "leftovers": outcome.leftovers,
        "harness_peak_rss_kib": outcome.harness_peak_rss_kib,
        "meta": run.meta,
        "summary": run.summary,
        "kernel": run.kernel,
        "until": run.until,
        "syscalls": run.syscalls,
        "samples": run.samples,
        "report_files": report_files,
    });
    outln!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(())
}

/// Why `run --format json` could not print the run.
#[derive(Debug, thiserror::Error)]
enum JsonError {
    #[error("reading back {}: {source}", .dir.display())]
    ReadBack {
        dir: PathBuf,
        source: crate::results::load::LoadError,
    },
    #[error("encoding the run as JSON: {0}")]
    Encode(#[from] serde_json::Error),
}

/// `run --report`: the report of the run just made, into its directory. A report that cannot
/// be written is a failure of the run command (exit 1), but the measurements stay on disk.
fn write_report(run_dir: &Path) -> Result<Vec<PathBuf>, ()> {
    let args = ReportArgs {
        runs: vec![run_dir.to_path_buf()],
        out: None,
        labels: Vec::new(),
    };
    crate::report::command::report(&args)
        .map(|r| r.files)
        .map_err(|e| {
            eprintln!(
                "isobench: writing the report of {}: {e}; the results are there, `isobench report` can retry",
                run_dir.display()
            );
        })
}
