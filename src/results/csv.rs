//! `samples.csv` (appended as measurements arrive) and `summary.csv` (written once, atomically).
//!
//! Headers are derived from the record structs through serde, so the files cannot drift from
//! [`crate::results::record`]. Figures are rounded to the decimals their row of
//! [`crate::results::metrics`] gives (0.001 ms for the clocks, ...) on the way out: the clocks
//! behind them do not resolve better than microseconds in practice, and the shortest-round-trip
//! float formatting would otherwise print noise such as `12.300000000000001`. The rounding is
//! applied to the row's serialised fields by column name, so a new metric is rounded by its row
//! of the table alone.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::results::metrics;
use crate::results::record::{KernelRow, Sample, SummaryRow, SyscallRow, UntilRow};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("creating {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("writing {path}: {source}")]
    Write { path: PathBuf, source: csv::Error },
    #[error("writing {path}: {source}")]
    WriteIo {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("renaming {from} to {path}: {source}")]
    Rename {
        from: PathBuf,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: csv::Error },
}

/// A row type of one of the run's CSV files: which file, for the decimals of its columns.
pub trait CsvRow: Serialize + Default {
    const FILE: metrics::File;
}

impl CsvRow for Sample {
    const FILE: metrics::File = metrics::File::Samples;
}

impl CsvRow for KernelRow {
    const FILE: metrics::File = metrics::File::Kernel;
}

impl CsvRow for UntilRow {
    const FILE: metrics::File = metrics::File::Until;
}

impl CsvRow for SyscallRow {
    const FILE: metrics::File = metrics::File::Syscalls;
}

impl CsvRow for SummaryRow {
    const FILE: metrics::File = metrics::File::Summary;
}

/// samples.csv.
pub type SampleSink = CsvSink<Sample>;

/// Appends rows to a CSV file as they are measured: header once, then rows; flushes to the
/// OS (no fsync) after every append so that an interrupted run keeps every row.
pub struct CsvSink<T> {
    path: PathBuf,
    writer: csv::Writer<File>,
    rounding: Rounding,
    _row: std::marker::PhantomData<T>,
}

impl<T: CsvRow> CsvSink<T> {
    /// Creates or truncates `path` and writes the header immediately, so that even a run that
    /// measures nothing leaves a well-formed file.
    pub fn create(path: &Path) -> Result<CsvSink<T>, ExportError> {
        let write_err = |source| ExportError::Write {
            path: path.to_path_buf(),
            source,
        };
        let file = File::create(path).map_err(|source| ExportError::Create {
            path: path.to_path_buf(),
            source,
        })?;
        let rounding = Rounding::of::<T>().map_err(write_err)?;
        // The header is written by hand, so the writer must not add its own before the first
        // row of the first append.
        let mut writer = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(file);
        writer.write_record(&rounding.header).map_err(write_err)?;
        writer.flush().map_err(|e| write_err(csv::Error::from(e)))?;
        Ok(CsvSink {
            path: path.to_path_buf(),
            writer,
            rounding,
            _row: std::marker::PhantomData,
        })
    }

    /// Appends `rows` and flushes them to the OS.
    pub fn append(&mut self, rows: &[T]) -> Result<(), ExportError> {
        let write_err = |source| ExportError::Write {
            path: self.path.clone(),
            source,
        };
        for row in rows {
            let fields = self.rounding.fields(row).map_err(write_err)?;
            self.writer.serialize(fields).map_err(write_err)?;
        }
        self.writer
            .flush()
            .map_err(|e| write_err(csv::Error::from(e)))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Writes summary.csv atomically (to a temporary file in the same directory, then a rename), so
/// a reader never sees half a file and an old summary survives a failed rewrite. The header is
/// included even when `rows` is empty.
pub fn write_summary(path: &Path, rows: &[SummaryRow]) -> Result<(), ExportError> {
    let bytes = to_csv(rows).map_err(|source| ExportError::Write {
        path: path.to_path_buf(),
        source,
    })?;
    let tmp = temp_path(path);
    let result = write_file(&tmp, &bytes).and_then(|()| {
        std::fs::rename(&tmp, path).map_err(|source| ExportError::Rename {
            from: tmp.clone(),
            path: path.to_path_buf(),
            source,
        })
    });
    if result.is_err() {
        // Best effort: the original error is the one worth reporting.
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Reads samples.csv back.
pub fn read_samples(path: &Path) -> Result<Vec<Sample>, ExportError> {
    read_rows(path)
}

/// Reads any of the run's CSV files back into its record type.
pub fn read_rows<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Vec<T>, ExportError> {
    let read_err = |source| ExportError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = csv::Reader::from_path(path).map_err(read_err)?;
    reader
        .deserialize()
        .collect::<Result<Vec<T>, _>>()
        .map_err(read_err)
}

/// The header of a file and the decimals each of its columns is written with.
struct Rounding {
    header: csv::StringRecord,
    decimals: Vec<Option<u8>>,
}

impl Rounding {
    fn of<T: CsvRow>() -> Result<Rounding, csv::Error> {
        let header = header_of::<T>()?;
        let decimals = header
            .iter()
            .map(|column| metrics::decimals(T::FILE, column))
            .collect();
        Ok(Rounding { header, decimals })
    }

    /// `row`'s fields as serde and csv write them, with every figure that has decimals
    /// rounded to them. Rounding the written text rather than the struct keeps it one loop
    /// over the table instead of one line per field and file; a figure's text is csv's
    /// shortest round-trip form, so parsing it back gives exactly the measured value.
    fn fields<T: Serialize>(&self, row: &T) -> Result<Vec<Field>, csv::Error> {
        let record = record_of(row)?;
        Ok(record
            .iter()
            .zip(&self.decimals)
            .map(|(text, decimals)| {
                match decimals.and_then(|d| Some((text.parse::<f64>().ok()?, d))) {
                    Some((v, d)) => Field::Number(round(v, d)),
                    None => Field::Text(text.to_string()),
                }
            })
            .collect())
    }
}

/// `v` rounded to `decimals` decimals (NaN stays NaN, as it was measured).
fn round(v: f64, decimals: u8) -> f64 {
    let scale = 10f64.powi(i32::from(decimals));
    (v * scale).round() / scale
}

/// One field as written: a rounded figure goes back through csv's own float formatting, so it
/// reads like any other.
enum Field {
    Text(String),
    Number(f64),
}

impl Serialize for Field {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Field::Text(t) => s.serialize_str(t),
            Field::Number(v) => s.serialize_f64(*v),
        }
    }
}

/// `row` as csv writes it, field by field.
fn record_of<T: Serialize>(row: &T) -> Result<csv::StringRecord, csv::Error> {
    // csv's reader drops a UTF-8 byte-order mark at the very start of its input, as a file's
    // BOM; an empty line first (which it skips) keeps one that begins the row's first field.
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(b"\n".to_vec());
    w.serialize(row)?;
    let bytes = w
        .into_inner()
        .map_err(|e| csv::Error::from(e.into_error()))?;
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(bytes.as_slice())
        .records()
        .next()
        .unwrap_or_else(|| Ok(csv::StringRecord::new()))
}

/// The column names serde gives `T`, taken from csv's own header row for a default value and
/// parsed back, so quoting rules are csv's rather than ours.
pub(crate) fn header_of<T: Serialize + Default>() -> Result<csv::StringRecord, csv::Error> {
    let mut w = csv::Writer::from_writer(Vec::new());
    w.serialize(T::default())?;
    let bytes = w
        .into_inner()
        .map_err(|e| csv::Error::from(e.into_error()))?;
    csv::Reader::from_reader(bytes.as_slice())
        .headers()
        .cloned()
}

/// `rows` as CSV with a header line, even for no rows (csv only writes the header together
/// with the first record), figures rounded.
fn to_csv<T: CsvRow>(rows: &[T]) -> Result<Vec<u8>, csv::Error> {
    let rounding = Rounding::of::<T>()?;
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    w.write_record(&rounding.header)?;
    for row in rows {
        w.serialize(rounding.fields(row)?)?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// A sibling of `path`, so the final rename stays within one filesystem and is atomic. The pid
/// keeps two concurrent writers from sharing a temporary file.
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), ExportError> {
    let mut file = File::create(path).map_err(|source| ExportError::Create {
        path: path.to_path_buf(),
        source,
    })?;
    file.write_all(bytes)
        .map_err(|source| ExportError::WriteIo {
            path: path.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch directory removed on drop (tempfile), failed assertion or not.
    fn scratch_dir(name: &str) -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix(&format!("isobench-report-csv-{name}-"))
            .tempdir()
            .unwrap()
    }

    fn sample(instance: u32) -> Sample {
        Sample {
            run_id: "r1".into(),
            scenario: "startup".into(),
            backend: "qemu".into(),
            accel: "kvm".into(),
            n: 2,
            rep: 0,
            instance,
            ok: instance == 0,
            error: if instance == 0 {
                String::new()
            } else {
                "timed out, \"ready\" never came\nsecond line".into()
            },
            startup_ms: Some(123.456_789),
            teardown_ms: None,
            spawn_ms: Some(0.1 + 0.2),
            setup_ms: None,
            exec_ms: Some(1.0),
            agent_uptime_s: Some(0.123_456),
            kernel_release: "6.8.0".into(),
            boot_id: "abc".into(),
            hostname: "host".into(),
            pid: Some(4242),
            ..Sample::default()
        }
    }

    #[test]
    fn header_is_written_at_create() {
        let scratch = scratch_dir("header");
        let dir = scratch.path();
        let path = dir.join("samples.csv");
        let sink = SampleSink::create(&path).unwrap();
        assert_eq!(sink.path(), path);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("run_id,scenario,backend,accel,n,rep,instance,ok,error,"));
        assert!(
            text.trim_end()
                .ends_with("idle_cpu_ms_per_s,security,cap_eff,cap_bnd,cap_inh,cap_amb,no_new_privs,seccomp,seccomp_filters,ns_private,devices,probe")
        );
        assert_eq!(text.lines().count(), 1);
        assert!(read_samples(&path).unwrap().is_empty());
    }

    #[test]
    fn appended_rows_are_on_disk_before_the_sink_is_dropped() {
        let scratch = scratch_dir("append");
        let dir = scratch.path();
        let path = dir.join("samples.csv");
        let mut sink = SampleSink::create(&path).unwrap();
        sink.append(&[sample(0)]).unwrap();
        sink.append(&[]).unwrap();
        sink.append(&[sample(1)]).unwrap();
        // Read while the sink is still alive: this is what an interrupted run leaves behind.
        let back = read_samples(&path).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].startup_ms, Some(123.457));
        assert_eq!(back[0].spawn_ms, Some(0.3));
        assert_eq!(back[0].teardown_ms, None);
        assert_eq!(back[0].agent_uptime_s, Some(0.123_456));
        assert_eq!(back[1].error, sample(1).error);
        assert_eq!(
            back[1],
            Sample {
                startup_ms: Some(123.457),
                spawn_ms: Some(0.3),
                ..sample(1)
            }
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(",0.3,"), "{text}");
        drop(sink);
    }

    #[test]
    fn create_truncates() {
        let scratch = scratch_dir("truncate");
        let dir = scratch.path();
        let path = dir.join("samples.csv");
        let mut sink = SampleSink::create(&path).unwrap();
        sink.append(&[sample(0), sample(1)]).unwrap();
        drop(sink);
        SampleSink::create(&path).unwrap();
        assert!(read_samples(&path).unwrap().is_empty());
    }

    #[test]
    fn summary_has_header_when_empty_and_rounds() {
        let scratch = scratch_dir("summary");
        let dir = scratch.path();
        let path = dir.join("summary.csv");
        write_summary(&path, &[]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 1);
        assert!(text.starts_with("backend,accel,n,count,ok,startup_ms_mean,"));
        assert!(text.trim_end().ends_with(",idle_cpu_ms_per_s_mean"));

        let row = SummaryRow {
            backend: "runc".into(),
            accel: "none".into(),
            n: 1,
            count: 3,
            ok: 3,
            startup_ms_mean: Some(10.000_4),
            startup_ms_sd: Some(2.0 / 3.0),
            ..SummaryRow::default()
        };
        write_summary(&path, &[row]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1], "runc,none,1,3,3,10.0,0.667,,,,,,,,,,,,,,,,,,,");
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn rounding_leaves_words_and_unrounded_figures_as_serde_writes_them() {
        // A byte-order mark, quotes, commas and line breaks in text; NaN, infinities and
        // huge values in rounded columns; full precision where the table gives no decimals.
        let s = Sample {
            run_id: "\u{feff}r".into(),
            error: "\u{feff}a, \"b\"\r\nc".into(),
            startup_ms: Some(f64::NAN),
            teardown_ms: Some(f64::INFINITY),
            spawn_ms: Some(-1e300),
            exec_ms: Some(2.0004),
            agent_uptime_s: Some(0.1 + 0.2),
            pss_kib: Some(u64::MAX),
            ..Sample::default()
        };
        let rounding = Rounding::of::<Sample>().unwrap();
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        w.serialize(rounding.fields(&s).unwrap()).unwrap();
        let ours = String::from_utf8(w.into_inner().unwrap()).unwrap();
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        w.serialize(Sample {
            exec_ms: Some(2.0),
            ..s.clone()
        })
        .unwrap();
        let serde = String::from_utf8(w.into_inner().unwrap()).unwrap();
        assert_eq!(ours, serde);
        assert!(ours.starts_with("\u{feff}r,"), "{ours}");
        assert!(ours.contains(",NaN,inf,-1e300,"), "{ours}");
        assert!(ours.contains(",0.30000000000000004,"), "{ours}");
    }

    #[test]
    fn errors_name_the_path() {
        let scratch = scratch_dir("errors");
        let dir = scratch.path();
        let missing = dir.join("no-such-dir").join("samples.csv");
        let err = SampleSink::create(&missing).err().unwrap().to_string();
        assert!(err.contains("no-such-dir/samples.csv"), "{err}");
        let err = read_samples(&missing).unwrap_err().to_string();
        assert!(err.starts_with("reading "), "{err}");
        assert!(err.contains("no-such-dir/samples.csv"), "{err}");
        let err = write_summary(&missing, &[]).unwrap_err().to_string();
        assert!(err.contains("no-such-dir"), "{err}");
    }
}
