//! isobench: measures containers against virtual machines on a real Linux host.
//!
//! Dependencies point one way, down the floors listed below: commands -> runner -> backend ->
//! {measure, host}; a backend knows nothing of statistics or reports, and reports never touch
//! a backend.

// Floors, from the bottom up; a module uses only modules on its own floor or below
// (ARCHITECTURE.md draws the graph, and a test keeps it free of cycles).
//   1  text, stats, deadline, fault           pure helpers (and the outln!/out! macros below)
//   2  results                                the records and their files
//   3  host, security                         the kernel's seams; the security profiles
//   4  agent                                  the program inside every instance
//   5  scenario, image, measure               what to run, root filesystems, readings
//   6  backend                                ways of running the agent
//   7  runner                                 a run: batches, deaths, its results directory
//   8  chart, report, compare, plan           what a run's files say
//   9  cli, commands                          one file per subcommand
/// `println!` for a command's output on stdout, which a reader may close early
/// (`isobench run … | head`): the work is done and its files are written by then, so a closed
/// stdout ends the printing quietly instead of panicking. Defined before the modules, so every
/// module below can name it (`outln!`).
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// `print!` for a command's output, as `outln!`.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($arg)*);
    }};
}

pub mod agent;
pub mod backend;
pub mod chart;
pub mod cli;
pub mod commands;
pub mod compare;
pub mod deadline;
pub mod fault;
pub mod host;
pub mod image;
pub mod measure;
pub mod plan;
pub mod report;
pub mod results;
pub mod runner;
pub mod scenario;
pub mod security;
pub mod stats;
pub mod text;

/// The test suite's one skip rule, for unit tests too: a test that cannot run here fails
/// unless ISOBENCH_ALLOW_SKIP=1 (see the file).
#[cfg(test)]
#[path = "../tests/common/skip.rs"]
mod skip;

/// Exit codes, as ripgrep and friends use them: 0 ok, 1 a measured failure (an instance failed),
/// 2 bad input or an unusable environment, 130 interrupted by a signal.
pub mod exit {
    pub const OK: i32 = 0;
    pub const MEASURED_FAILURE: i32 = 1;
    pub const BAD_INPUT: i32 = 2;
    pub const INTERRUPTED: i32 = 130;
}
