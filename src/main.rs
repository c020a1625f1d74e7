//! The isobench binary: the agent's fast path, then parse the arguments and dispatch to
//! `commands::*`, which print their results and choose the exit code.

use clap::Parser;
use isobench::cli::{Cli, Command};
use isobench::{commands, exit};

fn main() {
    // The agent path first and lean: it is every instance's start-up (stamped first thing).
    isobench::agent::mark_start();
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
    let format = cli.format;
    std::process::exit(match cli.command {
        Command::Run(args) => commands::run::command(args, format),
        Command::Clean(args) => commands::clean::command(&args, format),
        Command::Report(args) => commands::report::command(&args, format),
        Command::Compare(args) => commands::compare::command(&args, format),
        Command::Plan(args) => commands::plan::command(&args, format),
        Command::Doctor => commands::doctor::command(format),
        Command::Completions { shell } => commands::docs::completions(shell),
        Command::Man => commands::docs::man(),
        Command::Agent { .. } => unreachable!("handled before argument parsing"),
    });
}
