//! `isobench report RUN_DIR...`: loads the runs, computes the claims, draws the plots and
//! writes report.html, report.md and plots/*.svg|png; prints what it wrote and the claims.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::cli::{Format, ReportArgs};
use crate::exit;
use crate::report::claims::{self, ClaimSet};
use crate::report::document::{self, DrawnPlot};
use crate::report::figures::{self, PlotSpec};
use crate::report::load::{self, LoadError, RunData};
use crate::report::plot::{self, PlotError};
use crate::report::{html, markdown};

/// Why `isobench report` failed.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("{path}: no such directory; give run directories written by `isobench run`")]
    NoDir { path: PathBuf },
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(
        "{labels} --label given for {runs} run directories: give none, or one per directory in the same order"
    )]
    LabelCount { labels: usize, runs: usize },
    #[error("two runs are labelled \"{0}\": give each run a distinct --label")]
    DuplicateLabel(String),
    #[error("--out {path}: exists and is not a directory")]
    OutNotDir { path: PathBuf },
    #[error("creating {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Plot(#[from] PlotError),
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl ReportError {
    /// Bad input exits 2 (nothing is written before the input is checked); failures while
    /// writing exit 1.
    pub fn exit_code(&self) -> i32 {
        match self {
            ReportError::NoDir { .. }
            | ReportError::Load(_)
            | ReportError::LabelCount { .. }
            | ReportError::DuplicateLabel(_)
            | ReportError::OutNotDir { .. }
            | ReportError::CreateDir { .. } => exit::BAD_INPUT,
            ReportError::Plot(_) | ReportError::Write { .. } => exit::MEASURED_FAILURE,
        }
    }
}

/// What a report run produced.
#[derive(Debug, Serialize)]
pub struct Report {
    pub out_dir: PathBuf,
    pub runs: Vec<RunData>,
    pub claims: Vec<ClaimSet>,
    pub claim_notes: Vec<String>,
    pub plots: Vec<PlotSpec>,
    /// Every file written, report.html first.
    pub files: Vec<PathBuf>,
}

/// Runs `isobench report`, prints its results in `format`, returns the exit code.
pub fn command(args: &ReportArgs, format: Format) -> i32 {
    match report(args) {
        Ok(r) => {
            let printed = match format {
                Format::Text => print_text(&r),
                Format::Json => print_json(&r),
            };
            match printed {
                Ok(()) => exit::OK,
                Err(e) => {
                    eprintln!("isobench report: writing to stdout: {e}");
                    exit::MEASURED_FAILURE
                }
            }
        }
        Err(e) => {
            eprintln!("isobench report: {e}");
            e.exit_code()
        }
    }
}

/// Loads and checks every input, then writes the report.
pub fn report(args: &ReportArgs) -> Result<Report, ReportError> {
    let runs = load_runs(&args.runs, &args.labels)?;
    let out_dir = args.out.clone().unwrap_or_else(|| default_out(&args.runs));
    if out_dir.exists() && !out_dir.is_dir() {
        return Err(ReportError::OutNotDir { path: out_dir });
    }
    // Everything is checked: from here on, files are written.
    let plots_dir = out_dir.join("plots");
    std::fs::create_dir_all(&plots_dir).map_err(|source| ReportError::CreateDir {
        path: plots_dir.clone(),
        source,
    })?;

    let mut claim_notes = Vec::new();
    let claims: Vec<ClaimSet> = runs
        .iter()
        .flat_map(|r| claims::claims(r, &mut claim_notes))
        .collect();
    let plots = figures::all(&runs);
    let mut files = vec![out_dir.join("report.html"), out_dir.join("report.md")];
    let mut drawn = Vec::new();
    for spec in &plots {
        drawn.push(draw(spec, &plots_dir, &mut files)?);
    }
    let doc = document::build(&runs, &claims, &claim_notes, &drawn);
    write(&files[0], &html::render(&doc))?;
    write(&files[1], &markdown::render(&doc))?;
    Ok(Report {
        out_dir,
        runs,
        claims,
        claim_notes,
        plots,
        files,
    })
}

fn load_runs(dirs: &[PathBuf], labels: &[String]) -> Result<Vec<RunData>, ReportError> {
    if !labels.is_empty() && labels.len() != dirs.len() {
        return Err(ReportError::LabelCount {
            labels: labels.len(),
            runs: dirs.len(),
        });
    }
    let mut runs: Vec<RunData> = Vec::new();
    for (i, dir) in dirs.iter().enumerate() {
        if !dir.is_dir() {
            return Err(ReportError::NoDir { path: dir.clone() });
        }
        let run = load::load(dir, labels.get(i).cloned())?;
        if runs.iter().any(|r| r.label == run.label) {
            return Err(ReportError::DuplicateLabel(run.label));
        }
        runs.push(run);
    }
    Ok(runs)
}

/// The run directory itself for one run; the first run's `report-<n>-runs` for several.
fn default_out(dirs: &[PathBuf]) -> PathBuf {
    match dirs {
        [one] => one.clone(),
        [first, ..] => first.join(format!("report-{}-runs", dirs.len())),
        [] => PathBuf::from("."),
    }
}

/// Draws one plot into `dir`, or removes an older drawing of it when it is left out now, so
/// a report directory never shows a plot the report does not.
fn draw<'a>(
    spec: &'a PlotSpec,
    dir: &Path,
    files: &mut Vec<PathBuf>,
) -> Result<DrawnPlot<'a>, ReportError> {
    let Some(chart) = &spec.chart else {
        for ext in ["svg", "png"] {
            let stale = dir.join(format!("{}.{ext}", spec.stem));
            match std::fs::remove_file(&stale) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    return Err(ReportError::Write {
                        path: stale,
                        source,
                    });
                }
            }
        }
        return Ok(DrawnPlot { spec, drawn: None });
    };
    let r = plot::render(chart, dir, spec.stem)?;
    files.push(r.svg_path.clone());
    files.push(r.png_path.clone());
    Ok(DrawnPlot {
        spec,
        drawn: Some((
            format!("plots/{}.svg", spec.stem),
            format!("plots/{}.png", spec.stem),
            r.svg,
        )),
    })
}

fn write(path: &Path, text: &str) -> Result<(), ReportError> {
    // Written beside and renamed: a reader never sees half a report.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|source| ReportError::Write {
            path: path.to_path_buf(),
            source,
        })
}

fn print_text(r: &Report) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "report: {}", r.files[0].display())?;
    writeln!(out, "        {}", r.files[1].display())?;
    for p in &r.plots {
        match &p.chart {
            Some(_) => writeln!(
                out,
                "plot:   {} (.png beside it)",
                r.out_dir
                    .join("plots")
                    .join(format!("{}.svg", p.stem))
                    .display()
            )?,
            None => writeln!(out, "plot {} {}", p.stem, p.notes.join("; "))?,
        }
    }
    for set in &r.claims {
        writeln!(out, "\n{}", set.title())?;
        write!(out, "{}", markdown::table(&document::claims_table(set)))?;
    }
    for n in &r.claim_notes {
        writeln!(out, "note: {n}")?;
    }
    Ok(())
}

fn print_json(r: &Report) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    serde_json::to_writer(&mut out, r)?;
    writeln!(out)?;
    out.flush()
}
