//! Where a run's records go, each as soon as its batch is over, so an interrupted run keeps
//! every row it measured: samples.csv and kernel.csv (there from the start, header only if
//! nothing was measured), syscalls.csv and until.csv (made with their first rows: a run
//! without `syscalls` workloads or an `[until]` table has none), summary.csv rewritten after
//! every batch; and the copies the end of the run reports from.

use crate::results::csv::{CsvRow, CsvSink, ExportError, SampleSink, write_summary};
use crate::results::meta::AccelNote;
use crate::results::record::{KernelRow, Sample, SyscallRow, UntilRow};
use crate::results::summary::summarize;
use crate::runner::batch::BatchOutcome;
use std::path::{Path, PathBuf};

/// The open result files of a run and what went into them.
pub struct Sinks {
    run_dir: PathBuf,
    samples_csv: SampleSink,
    kernel_csv: CsvSink<KernelRow>,
    syscalls_csv: Option<CsvSink<SyscallRow>>,
    until_csv: Option<CsvSink<UntilRow>>,
    pub samples: Vec<Sample>,
    pub syscalls: Vec<SyscallRow>,
    /// (backend, accel, n, ms): each batch whose N all came up, and how long that took.
    pub batch_ready: Vec<(String, String, u32, f64)>,
    /// How each backend ran (or why it could not), for meta.json.
    pub accel: Vec<AccelNote>,
}

impl Sinks {
    /// Creates samples.csv and kernel.csv in `run_dir`.
    pub fn open(run_dir: &Path) -> Result<Sinks, ExportError> {
        Ok(Sinks {
            run_dir: run_dir.to_path_buf(),
            samples_csv: SampleSink::create(&run_dir.join("samples.csv"))?,
            kernel_csv: CsvSink::create(&run_dir.join("kernel.csv"))?,
            syscalls_csv: None,
            until_csv: None,
            samples: Vec::new(),
            syscalls: Vec::new(),
            batch_ready: Vec::new(),
            accel: Vec::new(),
        })
    }

    /// Writes one batch's record.
    pub fn push(&mut self, out: BatchOutcome) -> Result<(), ExportError> {
        self.samples_csv.append(&out.rows)?;
        append_made(
            &mut self.syscalls_csv,
            &self.run_dir,
            "syscalls.csv",
            &out.syscalls,
        )?;
        self.kernel_csv.append(std::slice::from_ref(&out.kernel))?;
        if let Some(ms) = out.all_ready_ms {
            let k = &out.kernel;
            self.batch_ready
                .push((k.backend.clone(), k.accel.clone(), k.n, ms));
        }
        self.syscalls.extend(out.syscalls);
        self.samples.extend(out.rows);
        // summary.csv follows the samples, so an interrupted run has one too.
        self.write_summary()
    }

    /// Writes how far an `[until]` sweep got.
    pub fn push_until(&mut self, row: UntilRow) -> Result<(), ExportError> {
        append_made(&mut self.until_csv, &self.run_dir, "until.csv", &[row])
    }

    /// Notes how a backend ran: its label, accelerator and why.
    pub fn note_accel(&mut self, backend: String, accel: &str, why: String) {
        self.accel.push(AccelNote {
            backend,
            accel: accel.to_string(),
            why,
        });
    }

    pub fn write_summary(&self) -> Result<(), ExportError> {
        write_summary(
            &self.run_dir.join("summary.csv"),
            &summarize(&self.samples, &self.batch_ready),
        )
    }
}

/// Appends `rows` to the sink in `slot`, creating `dir/name` with the first rows.
fn append_made<T: CsvRow>(
    slot: &mut Option<CsvSink<T>>,
    dir: &Path,
    name: &str,
    rows: &[T],
) -> Result<(), ExportError> {
    if rows.is_empty() {
        return Ok(());
    }
    let sink = match slot {
        Some(s) => s,
        None => slot.insert(CsvSink::create(&dir.join(name))?),
    };
    sink.append(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(backend: &str, n: u32, all_ready_ms: Option<f64>) -> BatchOutcome {
        let kernel = KernelRow {
            backend: backend.into(),
            accel: "none".into(),
            n,
            ..KernelRow::default()
        };
        let rows = (0..n)
            .map(|i| Sample {
                backend: backend.into(),
                accel: "none".into(),
                n,
                instance: i,
                ok: true,
                startup_ms: Some(1.0),
                ..Sample::default()
            })
            .collect();
        BatchOutcome {
            rows,
            kernel,
            syscalls: Vec::new(),
            all_ready_ms,
        }
    }

    #[test]
    fn files_without_rows_are_not_made_and_batches_append_as_they_end() {
        let tmp = tempfile::tempdir().unwrap();
        let mut s = Sinks::open(tmp.path()).unwrap();
        s.push(outcome("process", 2, Some(3.5))).unwrap();
        s.push(outcome("process", 1, None)).unwrap();
        let names = |p: &Path| {
            let mut v: Vec<String> = std::fs::read_dir(p)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        assert_eq!(
            names(tmp.path()),
            ["kernel.csv", "samples.csv", "summary.csv"]
        );
        assert_eq!(s.samples.len(), 3);
        assert_eq!(s.batch_ready, [("process".into(), "none".into(), 2, 3.5)]);
        let samples = std::fs::read_to_string(tmp.path().join("samples.csv")).unwrap();
        assert_eq!(samples.lines().count(), 4, "{samples}");

        s.push_until(UntilRow {
            backend: "process".into(),
            n_reached: 7,
            ..UntilRow::default()
        })
        .unwrap();
        let until = std::fs::read_to_string(tmp.path().join("until.csv")).unwrap();
        assert_eq!(until.lines().count(), 2, "{until}");
    }
}
