//! The isobench binary: parse arguments, call the library, map the outcome to an exit code.
//! The only place that prints errors.

use anyhow::Context;
use clap::Parser;
use isobench::cli::{Cli, Command, Format};
use isobench::exit;
use isobench::scenario::Scenario;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

fn main() {
    // The agent path first and lean: it is every instance's start-up.
    let args: Vec<String> = std::env::args().collect();
    if isobench::agent::vminit::is_guest_init(args.first().map(String::as_str).unwrap_or("")) {
        eprintln!("{}", isobench::agent::vminit::run(&args[1..]));
        std::process::exit(exit::MEASURED_FAILURE);
    }
    if args.get(1).map(String::as_str) == Some("agent") {
        match isobench::agent::workload::run(&args[2..]) {
            Ok(never) => match never {},
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(exit::BAD_INPUT);
            }
        }
    }
    let cli = Cli::parse();
    std::process::exit(match real_main(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("isobench: {e:#}");
            exit::MEASURED_FAILURE
        }
    });
}

fn real_main(cli: Cli) -> anyhow::Result<i32> {
    let format = cli.format;
    match cli.command {
        Command::Report(args) => Ok(isobench::report::command::command(&args, format)),
        Command::Compare(args) => Ok(isobench::compare::command(&args, format)),
        Command::Plan(args) => Ok(isobench::plan::command(&args, format)),
        Command::Run {
            scenario,
            out,
            overwrite,
            state_dir,
            cache_dir,
            quiet,
            report,
        } => {
            let scenario = match scenario {
                Some(path) => match Scenario::load(&path) {
                    Ok(s) => s,
                    Err(e) => return Ok(bad_input(e)),
                },
                None => Scenario::default_embedded(),
            };
            let cancel = Arc::new(AtomicBool::new(false));
            isobench::interrupt::install(cancel.clone()).context("installing signal handlers")?;
            let opts = isobench::runner::RunOptions {
                out_dir: out,
                overwrite,
                state_root: state_dir,
                cache_dir,
                agent_exe: std::env::current_exe()
                    .context("locating the isobench binary (the agent)")?,
                progress: !quiet,
                cancel,
                command_line: std::env::args().collect(),
            };
            let outcome = match isobench::runner::run(scenario, &opts) {
                Ok(o) => o,
                Err(e) => {
                    eprintln!("isobench: {e}");
                    return Ok(e.exit_code());
                }
            };
            // The report comes from the files, so it shows exactly what the run wrote.
            let (report_files, report_failed) =
                match report.then(|| write_run_report(&outcome.run_dir)) {
                    Some(Ok(files)) => (files, false),
                    Some(Err(())) => (Vec::new(), true),
                    None => (Vec::new(), false),
                };
            if format == Format::Json {
                print_run_json(&outcome, &report_files)?;
            } else {
                print_run_text(&outcome);
                if let Some(html) = report_files.first() {
                    println!("report: {}", html.display());
                }
            }
            for l in &outcome.leftovers {
                eprintln!("isobench: could not remove {l}; run `isobench clean`");
            }
            Ok(if outcome.interrupted {
                eprintln!(
                    "isobench: interrupted; the samples measured so far are in {}",
                    outcome.run_dir.display()
                );
                exit::INTERRUPTED
            } else if outcome.failed > 0 || !outcome.leftovers.is_empty() || report_failed {
                exit::MEASURED_FAILURE
            } else {
                exit::OK
            })
        }
        Command::Clean {
            state_dir,
            dry_run,
            cache,
            cache_dir,
        } => {
            let r = isobench::clean::clean(&state_dir, dry_run);
            // Only what isobench writes in the cache (base disks, dead builds' work files),
            // never the directory or anything else in it.
            let c = cache.then(|| isobench::image::vmdisk::clean_cache(&cache_dir, dry_run));
            let code = if r.errors.is_empty() && c.as_ref().is_none_or(|c| c.errors.is_empty()) {
                exit::OK
            } else {
                exit::MEASURED_FAILURE
            };
            if format == Format::Json {
                let doc = serde_json::json!({
                    "dry_run": dry_run,
                    "cache": c,
                    "report": r,
                });
                println!("{}", serde_json::to_string_pretty(&doc)?);
                return Ok(code);
            }
            if let Some(c) = &c {
                let verb = if dry_run { "would remove" } else { "removed" };
                for p in &c.removed {
                    println!("{verb} from the cache: {}", p.display());
                }
                for p in &c.left {
                    println!(
                        "left in the cache (not isobench's, or a build still running): {}",
                        p.display()
                    );
                }
                for e in &c.errors {
                    eprintln!("isobench: clean --cache: {e}");
                }
            }
            let (out, err) = r.render_text(dry_run);
            print!("{out}");
            eprint!("{err}");
            Ok(code)
        }
        Command::Doctor => {
            let checks = isobench::doctor::run_checks();
            if format == Format::Json {
                println!("{}", serde_json::to_string_pretty(&checks)?);
            } else {
                print!("{}", isobench::doctor::render(&checks));
            }
            Ok(if checks.iter().all(|c| c.ok || !c.required) {
                exit::OK
            } else {
                exit::BAD_INPUT
            })
        }
        Command::Agent { .. } => unreachable!("handled before argument parsing"),
    }
}

/// The end-of-run tables: start-up, costs when measured, the VM/container ratios.
fn print_run_text(outcome: &isobench::runner::RunOutcome) {
    use isobench::report::table;
    println!("{}", table::render_summary(&outcome.summary));
    if outcome
        .summary
        .iter()
        .any(|r| r.pss_kib_mean.is_some() || r.idle_cpu_ms_per_s_mean.is_some())
    {
        println!("{}", table::render_costs(&outcome.summary));
    }
    let isolation = isobench::report::isolation::isolation_rows(&outcome.samples);
    if outcome.samples.iter().any(|s| !s.security.is_empty()) {
        println!(
            "{}",
            isobench::report::isolation::render_isolation(&isolation)
        );
    }
    if !outcome.syscalls.is_empty() {
        let s = isobench::report::isolation::syscall_summary(&outcome.syscalls);
        println!(
            "system calls, median ns per operation (ratio to process):\n{}",
            isobench::report::isolation::render_syscalls(&s)
        );
    }
    print!("{}", table::render_ratios(&outcome.summary));
    println!("results: {}", outcome.run_dir.display());
    if let Some(kib) = outcome.harness_peak_rss_kib {
        println!("harness peak RSS: {:.1} MiB", kib as f64 / 1024.0);
    }
}

/// One JSON document with everything the run wrote (meta, raw samples, summary, kernel and
/// until rows), read back from the run directory so it is exactly what the files hold.
fn print_run_json(
    outcome: &isobench::runner::RunOutcome,
    report_files: &[std::path::PathBuf],
) -> anyhow::Result<()> {
    let run = isobench::report::load::load(&outcome.run_dir, None)
        .with_context(|| format!("reading back {}", outcome.run_dir.display()))?;
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
        "samples": run.samples,
        "report_files": report_files,
    });
    println!("{}", serde_json::to_string_pretty(&doc)?);
    Ok(())
}

/// `run --report`: the report of the run just made, into its directory. A report that cannot
/// be written is a failure of the run command (exit 1), but the measurements stay on disk.
fn write_run_report(run_dir: &std::path::Path) -> Result<Vec<std::path::PathBuf>, ()> {
    let args = isobench::cli::ReportArgs {
        runs: vec![run_dir.to_path_buf()],
        out: None,
        labels: Vec::new(),
    };
    isobench::report::command::report(&args)
        .map(|r| r.files)
        .map_err(|e| {
            eprintln!(
                "isobench: writing the report of {}: {e}; the results are there, `isobench report` can retry",
                run_dir.display()
            );
        })
}

fn bad_input(e: impl std::fmt::Display) -> i32 {
    eprintln!("isobench: {e}");
    exit::BAD_INPUT
}
