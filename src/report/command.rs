//! `isobench report RUN_DIR...`: loads the runs, computes the claims, draws the plots and
//! writes report.html, report.md and plots/*.svg|png; prints what it wrote and the claims.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::chart::plot::{self, PlotError};
use crate::exit;
use crate::report::claims::{self, ClaimSet};
use crate::report::document::{self, DrawnPlot};
use crate::report::figures::{self, PlotSpec};
use crate::report::{html, markdown};
use crate::results::load::{self, LoadError, RunData};

/// `isobench report`'s arguments (clap derive; the command line includes them).
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Run directories (runs/<time>-<scenario>); several are shown side by side.
    #[arg(required = true)]
    pub runs: Vec<PathBuf>,
    /// Where to write the report (default: the run directory, or with several runs the first
    /// one's `report-<n>-runs` subdirectory).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// A label per run directory, in the same order (default: the directory's name).
    #[arg(long = "label")]
    pub labels: Vec<String>,
}

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

/// Loads and checks every input, then writes the report.
pub fn report(args: &ReportArgs) -> Result<Report, ReportError> {
    let runs = load_runs(&args.runs, &args.labels)?;
    let out_dir = args.out.clone().unwrap_or_else(|| default_out(&args.runs));
    if out_dir.exists() && !out_dir.is_dir() {
        return Err(ReportError::OutNotDir { path: out_dir });
    }
    // A host without the plot font fails here, before anything is written.
    plot::ensure_font()?;
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
    // Runs from several hosts are named after their hosts unless labels are given.
    if labels.is_empty()
        && let Some(names) = crate::report::hosts::host_labels(&runs)
    {
        for (r, name) in runs.iter_mut().zip(names) {
            r.label = name;
        }
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

pub fn print_text(r: &Report) -> std::io::Result<()> {
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
    if crate::report::hosts::several_hosts(&r.runs) {
        writeln!(out, "\nper host, at each run's largest N:")?;
        write!(
            out,
            "{}",
            markdown::table(&crate::report::hosts::table(&r.runs))
        )?;
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

pub fn print_json(r: &Report) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    serde_json::to_writer(&mut out, r)?;
    writeln!(out)?;
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::meta::RunMeta;
    use crate::results::metrics::Metric;
    use crate::results::record::{KernelRow, Sample};

    fn temp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "isobench-report-{}-{name}-{}",
            std::process::id(),
            fastrand::u32(..)
        ));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn write_csv<T: Serialize>(path: &Path, rows: &[T]) {
        let mut w = ::csv::Writer::from_path(path).unwrap();
        for r in rows {
            w.serialize(r).unwrap();
        }
        w.flush().unwrap();
    }

    /// A run of container and vm at N = 1, 2 (vm idle CPU > 0, container 0), with kernel.csv
    /// when `kernel` is set, and no summary.csv (the loader computes it).
    fn synthetic_run(dir: &Path, backends: &[&str], kernel: bool) {
        std::fs::create_dir_all(dir).unwrap();
        let meta = RunMeta {
            run_id: "synthetic".into(),
            hostname: "testhost".into(),
            mem_total_kib: 8 * 1024 * 1024,
            scenario_text: "name = \"synthetic\"\n".into(),
            ..RunMeta::default()
        };
        std::fs::write(dir.join("meta.json"), serde_json::to_vec(&meta).unwrap()).unwrap();
        let mut samples = Vec::new();
        let mut kernels = Vec::new();
        for b in backends {
            let vm = *b == "vm";
            for n in [1u32, 2] {
                for i in 0..n {
                    samples.push(Sample {
                        backend: b.to_string(),
                        accel: if vm { "tcg" } else { "none" }.into(),
                        n,
                        instance: i,
                        ok: true,
                        startup_ms: Some(if vm { 4000.0 } else { 4.0 } + f64::from(i)),
                        pss_kib: Some(if vm { 200_000 } else { 1000 }),
                        host_avail_kib: Some(if vm { 150_000.0 } else { 500.0 }),
                        vmm_overhead_kib: vm.then_some(20_000),
                        disk_private_kib: Some(if vm { 300 } else { 4 }),
                        disk_shared_kib: Some(7000),
                        idle_cpu_ms_per_s: Some(if vm { 9.0 } else { 0.0 }),
                        ..Sample::default()
                    });
                }
                kernels.push(KernelRow {
                    backend: b.to_string(),
                    accel: if vm { "tcg" } else { "none" }.into(),
                    n,
                    distinct_kernels: if vm { n + 1 } else { 1 },
                    host_kthreads_before: 60,
                    host_kthreads_with: 60,
                    guest_kthreads_total: vm.then_some(47 * u64::from(n)),
                    kernel_kib_per_kernel: Some(if vm { 15_000.0 } else { 100.0 }),
                    ..KernelRow::default()
                });
            }
        }
        write_csv(&dir.join("samples.csv"), &samples);
        if kernel {
            write_csv(&dir.join("kernel.csv"), &kernels);
        }
    }

    fn args(runs: Vec<PathBuf>, out: Option<PathBuf>, labels: &[&str]) -> ReportArgs {
        ReportArgs {
            runs,
            out,
            labels: labels.iter().map(|l| l.to_string()).collect(),
        }
    }

    #[test]
    fn a_report_references_every_plot_defines_every_figure_and_fetches_nothing() {
        let dir = temp("full");
        synthetic_run(&dir, &["container", "vm"], true);
        let r = report(&args(vec![dir.clone()], None, &[])).unwrap();
        assert_eq!(
            r.out_dir, dir,
            "one run: the report goes into the run directory"
        );
        let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
        let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
        let drawn: Vec<&PlotSpec> = r.plots.iter().filter(|p| p.chart.is_some()).collect();
        assert_eq!(
            drawn.len(),
            r.plots.len(),
            "every plot has data: {:?}",
            r.plots
        );
        assert_eq!(html.matches("<svg").count(), drawn.len());
        for p in &drawn {
            let png = std::fs::read(dir.join(format!("plots/{}.png", p.stem))).unwrap();
            assert_eq!(&png[1..4], b"PNG");
            assert!(
                md.contains(&format!("](plots/{}.png)", p.stem)),
                "{}",
                p.stem
            );
            assert!(html.contains(&format!("href=\"plots/{}.svg\"", p.stem)));
        }
        let mut figures: Vec<&Metric> = drawn.iter().flat_map(|p| p.definitions.clone()).collect();
        figures.extend(
            r.claims
                .iter()
                .flat_map(|s| s.claims.iter())
                .flat_map(|c| c.definitions.iter().copied()),
        );
        for m in figures {
            let f = m.name;
            assert!(
                md.contains(&format!("| {f} ")) && md.contains(m.definition),
                "{f} not defined in report.md"
            );
            assert!(
                html.contains(&format!(
                    "<td>{f}</td><td>{}</td>",
                    html::esc(m.unit.as_str())
                )),
                "{f} not in report.html"
            );
        }
        for attr in [
            "src=\"http",
            "href=\"http",
            "src='http",
            "href='http",
            "@import",
            "url(",
        ] {
            assert!(
                !html.contains(attr),
                "report.html fetches something: {attr}"
            );
        }
        assert!(html.contains("no finite ratio: container measured 0 ms/s"));
        assert!(
            md.contains("| threads | kthreads_added "),
            "a claim names its own figure's definition"
        );
        for set in &r.claims {
            for row in &document::claims_table(set).rows {
                for cell in row {
                    assert!(!cell.contains("inf") && !cell.contains("NaN"), "{row:?}");
                }
            }
        }

        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["runs"][0]["samples"].as_array().unwrap().len(), 6);
        assert_eq!(json["runs"][0]["meta"]["hostname"], "testhost");
        assert_eq!(json["runs"][0]["kernel"].as_array().unwrap().len(), 4);
        let idle = json["claims"][0]["claims"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["figure"] == "idle CPU per instance")
            .unwrap();
        assert_eq!(idle["ratio"]["kind"], "reference_zero");
        let files: Vec<&str> = json["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f.as_str().unwrap())
            .collect();
        assert_eq!(files.len(), 2 + 2 * drawn.len());
        assert!(files.iter().all(|f| Path::new(f).is_file()), "{files:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn plots_without_data_are_left_out_with_a_note() {
        let dir = temp("nokernel");
        synthetic_run(&dir, &["container"], false);
        // A drawing of the kernel plot from an earlier report must not survive.
        std::fs::create_dir_all(dir.join("plots")).unwrap();
        std::fs::write(dir.join("plots/kernel.svg"), "<svg/>").unwrap();
        let r = report(&args(vec![dir.clone()], None, &[])).unwrap();
        let kernel = r.plots.iter().find(|p| p.stem == "kernel").unwrap();
        assert!(kernel.chart.is_none());
        assert!(
            kernel.notes[0].starts_with("left out: no run has data"),
            "{:?}",
            kernel.notes
        );
        assert!(!dir.join("plots/kernel.svg").exists());
        let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
        assert!(
            md.contains("- left out: no run has data for it (distinct_kernels"),
            "{md}"
        );
        assert!(!md.contains("plots/kernel.png"));
        assert!(r.claims.is_empty());
        assert!(
            r.claim_notes[0].contains("no vm backend"),
            "{:?}",
            r.claim_notes
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn several_runs_are_labelled_and_bad_input_writes_nothing() {
        let a = temp("a");
        let b = temp("b");
        synthetic_run(&a, &["container", "vm"], true);
        synthetic_run(&b, &["container", "vm"], false);
        let out = temp("out");
        let r = report(&args(
            vec![a.clone(), b.clone()],
            Some(out.clone()),
            &["kvm", "tcg"],
        ))
        .unwrap();
        let md = std::fs::read_to_string(out.join("report.md")).unwrap();
        assert!(
            md.contains("| kvm ") && md.contains("| tcg "),
            "a column per run"
        );
        assert!(
            r.plots[0]
                .chart
                .as_ref()
                .unwrap()
                .legend
                .iter()
                .any(|e| e.name == "tcg vm (tcg)")
        );
        assert_eq!(r.claims.iter().filter(|s| s.run == "tcg").count(), 1);

        let never = temp("never");
        let cases = [
            args(vec![a.clone(), b.clone()], Some(never.clone()), &["one"]),
            args(vec![a.clone(), a.clone()], Some(never.clone()), &[]),
            args(vec![a.join("missing")], Some(never.clone()), &[]),
            args(vec![never.clone()], None, &[]),
        ];
        for c in &cases {
            let e = report(c).unwrap_err();
            assert_eq!(e.exit_code(), exit::BAD_INPUT, "{e}");
            assert!(!e.to_string().contains('\n'), "one line: {e}");
            assert!(!never.exists(), "{e}: wrote {}", never.display());
        }
        // A directory without samples.csv is not a run: nothing is written into it.
        std::fs::create_dir_all(&never).unwrap();
        let e = report(&args(vec![never.clone()], None, &[])).unwrap_err();
        assert!(e.to_string().contains("not a run directory"), "{e}");
        assert_eq!(std::fs::read_dir(&never).unwrap().count(), 0);
        for d in [a, b, out, never] {
            std::fs::remove_dir_all(d).unwrap();
        }
    }
}
