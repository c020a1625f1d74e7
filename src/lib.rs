//! isobench: measures containers against virtual machines on a real Linux host.
//!
//! Dependencies point one way: cli -> runner -> {backend, measure, record}; a backend knows
//! nothing of statistics or reports, and reports never touch a backend.

pub mod agent;
pub mod backend;
pub mod batch;
pub mod clean;
pub mod cli;
pub mod compare;
pub mod deadline;
pub mod doctor;
pub mod fault;
pub mod host;
pub mod image;
pub mod interrupt;
pub mod measure;
pub mod outdir;
pub mod plan;
pub mod record;
pub mod report;
pub mod runner;
pub mod scenario;
pub mod security;
pub mod stats;
pub mod watch;

/// Exit codes, as ripgrep and friends use them: 0 ok, 1 a measured failure (an instance failed),
/// 2 bad input or an unusable environment, 130 interrupted by a signal.
pub mod exit {
    pub const OK: i32 = 0;
    pub const MEASURED_FAILURE: i32 = 1;
    pub const BAD_INPUT: i32 = 2;
    pub const INTERRUPTED: i32 = 130;
}
