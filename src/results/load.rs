//! Reading a run directory back: meta.json and the CSV files, for `report`, `compare` and
//! `plan`. A run interrupted before its summary was written still loads: the summary is then
//! computed from samples.csv.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::results::csv::{ExportError, read_rows};
use crate::results::meta::RunMeta;
use crate::results::record::{KernelRow, Sample, SummaryRow, UntilRow};

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(
        "{path}: not a run directory (no samples.csv); give a directory written by `isobench run`"
    )]
    NotARun { path: PathBuf },
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not valid meta.json: {source}")]
    Meta {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error(transparent)]
    Csv(#[from] ExportError),
}

/// Everything one run directory holds.
#[derive(Debug, Clone, Serialize)]
pub struct RunData {
    pub dir: PathBuf,
    /// How reports name this run: given by the user, or the directory's name.
    pub label: String,
    pub meta: RunMeta,
    pub samples: Vec<Sample>,
    pub summary: Vec<SummaryRow>,
    pub kernel: Vec<KernelRow>,
    pub until: Vec<UntilRow>,
    /// syscalls.csv (workload `syscalls` only).
    pub syscalls: Vec<crate::results::record::SyscallRow>,
}

impl RunData {
    /// Backends in the order the run measured them (first seen in the summary), each with its
    /// accelerator, e.g. `("vm", "tcg")`.
    pub fn backends(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for r in &self.summary {
            let key = (r.backend.clone(), r.accel.clone());
            if !out.contains(&key) {
                out.push(key);
            }
        }
        out
    }
}

/// Loads the run directory `dir`. meta.json may be missing (a run killed before writing it):
/// the meta is then empty. kernel.csv and until.csv are optional.
pub fn load(dir: &Path, label: Option<String>) -> Result<RunData, LoadError> {
    let samples_path = dir.join("samples.csv");
    if !samples_path.is_file() {
        return Err(LoadError::NotARun {
            path: dir.to_path_buf(),
        });
    }
    let meta_path = dir.join("meta.json");
    let meta = match std::fs::read(&meta_path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|source| LoadError::Meta {
            path: meta_path.clone(),
            source,
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => RunMeta::default(),
        Err(source) => {
            return Err(LoadError::Io {
                path: meta_path,
                source,
            });
        }
    };
    let samples: Vec<Sample> = read_rows(&samples_path)?;
    let optional = |name: &str| dir.join(name).is_file().then(|| dir.join(name));
    let summary = match optional("summary.csv") {
        Some(p) => read_rows(&p)?,
        None => crate::results::summary::summarize(&samples, &[]),
    };
    let kernel = match optional("kernel.csv") {
        Some(p) => read_rows(&p)?,
        None => Vec::new(),
    };
    let until = match optional("until.csv") {
        Some(p) => read_rows(&p)?,
        None => Vec::new(),
    };
    let syscalls = match optional("syscalls.csv") {
        Some(p) => read_rows(&p)?,
        None => Vec::new(),
    };
    let label = label.unwrap_or_else(|| {
        dir.canonicalize()
            .unwrap_or_else(|_| dir.to_path_buf())
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| dir.display().to_string())
    });
    Ok(RunData {
        dir: dir.to_path_buf(),
        label,
        meta,
        samples,
        summary,
        kernel,
        until,
        syscalls,
    })
}
