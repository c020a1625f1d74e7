//! `samples.csv` (appended as measurements arrive) and `summary.csv` (written once, atomically).
//!
//! Headers are derived from the record structs through serde, so the files cannot drift from
//! [`crate::results::record`]. Millisecond fields are rounded to 0.001 ms on a copy just before writing:
//! the clocks behind them do not resolve better than microseconds in practice, and the
//! shortest-round-trip float formatting would otherwise print noise such as `12.300000000000001`.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::results::record::{Sample, SummaryRow};

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

/// A row type of an appended CSV file, with how it is rounded for writing.
pub trait CsvRow: Serialize + Default + Clone {
    fn rounded(&self) -> Self {
        self.clone()
    }
}

impl CsvRow for Sample {
    fn rounded(&self) -> Self {
        rounded_sample(self)
    }
}

impl CsvRow for crate::results::record::KernelRow {
    fn rounded(&self) -> Self {
        let mut r = self.clone();
        r.kernel_kib_per_kernel = round3(r.kernel_kib_per_kernel);
        r.measure_ms = round3(r.measure_ms);
        r
    }
}

impl CsvRow for crate::results::record::UntilRow {}

impl CsvRow for crate::results::record::SyscallRow {
    fn rounded(&self) -> Self {
        let mut r = self.clone();
        r.ns_per_op = (r.ns_per_op * 10.0).round() / 10.0;
        r
    }
}

/// samples.csv.
pub type SampleSink = CsvSink<Sample>;

/// Appends rows to a CSV file as they are measured: header once, then rows; flushes to the
/// OS (no fsync) after every append so that an interrupted run keeps every row.
pub struct CsvSink<T> {
    path: PathBuf,
    writer: csv::Writer<File>,
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
        // The header is written by hand, so the writer must not add its own before the first
        // row of the first append.
        let mut writer = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(file);
        writer
            .write_record(&header_of::<T>().map_err(write_err)?)
            .map_err(write_err)?;
        writer.flush().map_err(|e| write_err(csv::Error::from(e)))?;
        Ok(CsvSink {
            path: path.to_path_buf(),
            writer,
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
            self.writer.serialize(row.rounded()).map_err(write_err)?;
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
    let rounded: Vec<SummaryRow> = rows.iter().map(rounded_summary).collect();
    let bytes = to_csv(&rounded).map_err(|source| ExportError::Write {
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

/// Rounds to 0.001; see the module documentation for why.
fn round3(x: Option<f64>) -> Option<f64> {
    x.map(|v| (v * 1000.0).round() / 1000.0)
}

fn rounded_sample(s: &Sample) -> Sample {
    Sample {
        startup_ms: round3(s.startup_ms),
        teardown_ms: round3(s.teardown_ms),
        spawn_ms: round3(s.spawn_ms),
        first_output_ms: round3(s.first_output_ms),
        host_avail_kib: round3(s.host_avail_kib),
        host_slab_kib: round3(s.host_slab_kib),
        host_anon_kib: round3(s.host_anon_kib),
        idle_cpu_ms_per_s: round3(s.idle_cpu_ms_per_s),
        setup_ms: round3(s.setup_ms),
        exec_ms: round3(s.exec_ms),
        ..s.clone()
    }
}

fn rounded_summary(r: &SummaryRow) -> SummaryRow {
    SummaryRow {
        startup_ms_mean: round3(r.startup_ms_mean),
        startup_ms_sd: round3(r.startup_ms_sd),
        startup_ms_p50: round3(r.startup_ms_p50),
        startup_ms_p90: round3(r.startup_ms_p90),
        startup_ms_p99: round3(r.startup_ms_p99),
        startup_ms_min: round3(r.startup_ms_min),
        startup_ms_max: round3(r.startup_ms_max),
        teardown_ms_mean: round3(r.teardown_ms_mean),
        teardown_ms_p50: round3(r.teardown_ms_p50),
        batch_ready_ms_mean: round3(r.batch_ready_ms_mean),
        pss_kib_mean: round3(r.pss_kib_mean),
        uss_kib_mean: round3(r.uss_kib_mean),
        rss_kib_mean: round3(r.rss_kib_mean),
        cgroup_mem_kib_mean: round3(r.cgroup_mem_kib_mean),
        host_avail_kib_mean: round3(r.host_avail_kib_mean),
        vmm_overhead_kib_mean: round3(r.vmm_overhead_kib_mean),
        guest_kernel_kib_mean: round3(r.guest_kernel_kib_mean),
        disk_private_kib_mean: round3(r.disk_private_kib_mean),
        disk_shared_kib: round3(r.disk_shared_kib),
        idle_cpu_ms_per_s_mean: round3(r.idle_cpu_ms_per_s_mean),
        ..r.clone()
    }
}

/// The column names serde gives `T`, taken from csv's own header row for a default value and
/// parsed back, so quoting rules are csv's rather than ours.
fn header_of<T: Serialize + Default>() -> Result<csv::StringRecord, csv::Error> {
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
/// with the first record).
fn to_csv<T: Serialize + Default>(rows: &[T]) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::new());
    w.write_record(&header_of::<T>()?)?;
    for row in rows {
        w.serialize(row)?;
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

    fn scratch_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("isobench-report-csv-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
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
        let dir = scratch_dir("header");
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
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn appended_rows_are_on_disk_before_the_sink_is_dropped() {
        let dir = scratch_dir("append");
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
        assert_eq!(back[1], rounded_sample(&sample(1)));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(",0.3,"), "{text}");
        drop(sink);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn create_truncates() {
        let dir = scratch_dir("truncate");
        let path = dir.join("samples.csv");
        let mut sink = SampleSink::create(&path).unwrap();
        sink.append(&[sample(0), sample(1)]).unwrap();
        drop(sink);
        SampleSink::create(&path).unwrap();
        assert!(read_samples(&path).unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn summary_has_header_when_empty_and_rounds() {
        let dir = scratch_dir("summary");
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
        assert_eq!(lines[1], "runc,none,1,3,3,10.0,0.667,,,,,,,,,,,,,,,,,,");
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(names.len(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn errors_name_the_path() {
        let dir = scratch_dir("errors");
        let missing = dir.join("no-such-dir").join("samples.csv");
        let err = SampleSink::create(&missing).err().unwrap().to_string();
        assert!(err.contains("no-such-dir/samples.csv"), "{err}");
        let err = read_samples(&missing).unwrap_err().to_string();
        assert!(err.starts_with("reading "), "{err}");
        assert!(err.contains("no-such-dir/samples.csv"), "{err}");
        let err = write_summary(&missing, &[]).unwrap_err().to_string();
        assert!(err.contains("no-such-dir"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
