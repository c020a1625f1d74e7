//! Why a run stopped before its end, and the exit code each reason gives.

use crate::backend::PrepareError;
use crate::results::csv::ExportError;
use crate::runner::outdir::OutDirError;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("not root: backend {0} needs root (namespaces, mounts, cgroups); run isobench as root")]
    NotRoot(&'static str),
    #[error("{0}")]
    Environment(String),
    #[error(transparent)]
    Prepare(#[from] PrepareError),
    #[error(transparent)]
    OutDir(#[from] OutDirError),
    #[error("state dir {path}: cannot create it: {source}")]
    StateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Export(#[from] ExportError),
    #[error(transparent)]
    Fault(#[from] crate::fault::FaultError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl RunError {
    /// Everything that stops a run before it measures is bad input or an unusable host.
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::Export(_) | RunError::Io { .. } => crate::exit::MEASURED_FAILURE,
            _ => crate::exit::BAD_INPUT,
        }
    }
}
