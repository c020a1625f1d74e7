//! Kernel samepage merging (/sys/kernel/mm/ksm): switched on for a measurement with settings
//! that converge in seconds, waited on until merging settles, and put back as it was.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The host's KSM settings while a batch has KSM on, in the run's state dir: `clean`
/// restores them after a killed run.
pub const KSM_RECORD: &str = "ksm-saved";

const KSM_DIR: &str = "/sys/kernel/mm/ksm";

/// Pages ksmd scans per wake-up while a guard is active (the kernel's default is 100).
///
/// With `SLEEP_MS` between batches ksmd scans at most 8192 pages (32 MiB) per ~10 ms plus
/// the work itself. Measured on the 2-core development host (6.18) at 4096 pages: 1 GiB of
/// mergeable memory took ~2 s per full scan and settled (three full scans, see
/// `wait_settled`) in ~6 s, with ksmd at ~55% of one core; 8192 pages roughly halve that
/// (eight idle 128 MiB guests: 4.8 s -> see the note of issue 12), with ksmd near one core
/// while the harness only waits for it. Kata's "aggressive" setting (1000 pages per 50 ms,
/// tests/metrics/lib/common.bash) scans at most 20,000 pages/s: 13 s per GiB and scan. ksmd
/// still sleeps between batches, so it does not pin a core the way `sleep_millisecs = 0`
/// would, and the guard puts the host's settings back when the measurement is done.
const SCAN_PAGES: u64 = 8192;
/// Milliseconds ksmd sleeps between batches while a guard is active (default 20).
const SLEEP_MS: u64 = 10;

/// How often `wait_settled` reads the counters and checks `cancel`.
const POLL: Duration = Duration::from_millis(100);
/// ksmd with nothing registered for merging does not scan at all, so full_scans never moves:
/// when the scan counters stand still this long, there is nothing to merge.
const IDLE_AFTER: Duration = Duration::from_secs(1);

/// One guard at a time in this process: a second one would save the first one's settings
/// as "the host's" and restore those.
static ACTIVE: AtomicBool = AtomicBool::new(false);

/// KSM's counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct KsmReading {
    /// KSM pages in use: distinct contents kept once.
    pub pages_shared: u64,
    /// Pages mapped to those KSM pages beyond the first: roughly the pages saved.
    pub pages_sharing: u64,
    /// Full scans of all mergeable memory completed since KSM started.
    pub full_scans: u64,
    /// Whether merging settled (see [`KsmGuard::wait_settled`]); false for a bare reading.
    pub settled: bool,
}

fn path(name: &str) -> PathBuf {
    PathBuf::from(KSM_DIR).join(name)
}

fn read_str(name: &str) -> io::Result<String> {
    let p = path(name);
    std::fs::read_to_string(&p)
        .map(|s| s.trim().to_string())
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", p.display())))
}

fn read_u64(name: &str) -> io::Result<u64> {
    let s = read_str(name)?;
    s.parse().map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: not a number: {s:?}", path(name).display()),
        )
    })
}

fn write(name: &str, value: &str) -> io::Result<()> {
    let p = path(name);
    std::fs::write(&p, value)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: writing {value:?}: {e}", p.display())))
}

/// Whether this kernel has KSM (CONFIG_KSM).
pub fn ksm_available() -> bool {
    path("run").exists()
}

/// KSM's counters now (`settled` false); None without KSM.
pub fn read_ksm() -> Option<KsmReading> {
    Some(KsmReading {
        pages_shared: read_u64("pages_shared").ok()?,
        pages_sharing: read_u64("pages_sharing").ok()?,
        full_scans: read_u64("full_scans").ok()?,
        settled: false,
    })
}

/// Counters that move while ksmd scans. pages_scanned and pages_skipped (smart scan) exist
/// on newer kernels only; without them idleness cannot be told from a slow scan.
fn scan_progress() -> Option<(u64, u64)> {
    let scanned = read_u64("pages_scanned").ok()?;
    Some((scanned, read_u64("pages_skipped").unwrap_or(0)))
}

/// The settings a guard changes, as the files held them.
#[derive(Debug, Clone, PartialEq)]
struct Settings {
    run: String,
    pages_to_scan: String,
    sleep_millisecs: String,
}

impl Settings {
    fn read() -> io::Result<Settings> {
        Ok(Settings {
            run: read_str("run")?,
            pages_to_scan: read_str("pages_to_scan")?,
            sleep_millisecs: read_str("sleep_millisecs")?,
        })
    }

    /// The record's text: one `key=value` line per setting.
    fn record(&self) -> String {
        format!(
            "run={}\npages_to_scan={}\nsleep_millisecs={}\n",
            self.run, self.pages_to_scan, self.sleep_millisecs
        )
    }

    /// Parses a record strictly: exactly the three keys, once each, each a decimal number of at
    /// most 20 digits, `run` one of 0, 1, 2. A record is read back from a killed run's state
    /// dir and its values are written into /sys: nothing else may pass.
    fn parse_record(text: &str) -> Result<Settings, RecordError> {
        let mut vals: [Option<String>; 3] = [None, None, None];
        for line in text.lines() {
            let (k, v) = line
                .split_once('=')
                .ok_or_else(|| RecordError::NotKeyValue(line.to_string()))?;
            let slot = match k {
                "run" => 0,
                "pages_to_scan" => 1,
                "sleep_millisecs" => 2,
                _ => return Err(RecordError::UnknownKey(k.to_string())),
            };
            if v.is_empty() || v.len() > 20 || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(RecordError::NotANumber {
                    key: k.to_string(),
                    value: v.to_string(),
                });
            }
            if vals[slot].replace(v.to_string()).is_some() {
                return Err(RecordError::Twice(k.to_string()));
            }
        }
        let [Some(run), Some(pages_to_scan), Some(sleep_millisecs)] = vals else {
            return Err(RecordError::Incomplete);
        };
        if !matches!(run.as_str(), "0" | "1" | "2") {
            return Err(RecordError::BadRun(run));
        }
        Ok(Settings {
            run,
            pages_to_scan,
            sleep_millisecs,
        })
    }

    /// Writes these settings back. If KSM was off, `run = 2` first unmerges every page merged
    /// meanwhile (the host's memory is as it was), then `run = 0`. Every write is tried; the
    /// first error is returned.
    fn put_back(&self) -> io::Result<()> {
        let run: &[&str] = if self.run == "0" {
            &["2", "0"]
        } else {
            &[self.run.as_str()]
        };
        let mut first = Ok(());
        for (k, v) in [
            ("pages_to_scan", self.pages_to_scan.as_str()),
            ("sleep_millisecs", self.sleep_millisecs.as_str()),
        ]
        .into_iter()
        .chain(run.iter().map(|v| ("run", *v)))
        {
            if let Err(e) = write(k, v) {
                first = first.and(Err(e));
            }
        }
        first
    }
}

/// KSM switched on for a measurement; the host's settings come back on drop.
///
/// Only `run`, `pages_to_scan` and `sleep_millisecs` are changed; `merge_across_nodes`,
/// `use_zero_pages`, `smart_scan`, `max_page_sharing` and the scan-time advisor are left as
/// the host has them (with `advisor_mode = scan-time` the kernel tunes pages_to_scan itself).
#[derive(Debug)]
pub struct KsmGuard {
    saved: Settings,
    /// Where the saved settings are also written, so `isobench clean` can put them back
    /// after a run killed while KSM was on (a drop never runs then).
    record: Option<PathBuf>,
    /// The lock of [`host_lock`], held while the settings are ours (released after the drop
    /// put them back, or by the kernel when the run dies).
    _lock: std::fs::File,
}

/// One isobench run at a time may hold KSM's host-wide settings: a second run that saved the
/// first one's "on" settings as the host's would put them back after the first restored the
/// host's, and leave KSM on (seen with concurrent runs). The lock is an flock on KSM's own
/// sysfs directory: nothing is created on the host for it, and a killed run's lock goes with
/// its process.
fn host_lock() -> io::Result<std::fs::File> {
    let named = |e: io::Error| io::Error::new(e.kind(), format!("{KSM_DIR}: {e}"));
    let dir = std::fs::File::open(KSM_DIR).map_err(named)?;
    match dir.try_lock() {
        Ok(()) => Ok(dir),
        Err(std::fs::TryLockError::WouldBlock) => Err(io::Error::new(
            io::ErrorKind::ResourceBusy,
            format!("{KSM_DIR}: another isobench run on this host holds KSM's settings"),
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(named(e)),
    }
}

impl KsmGuard {
    /// Saves the current settings, sets `pages_to_scan` and `sleep_millisecs` for a fast
    /// scan, then `run = 1`. Errors name the file; a kernel without KSM is an error naming
    /// /sys/kernel/mm/ksm, and so is a second guard while one is active in this process.
    pub fn enable() -> io::Result<KsmGuard> {
        KsmGuard::enable_with(None)
    }

    /// [`KsmGuard::enable`], first writing the host's settings to `record` (removed when the
    /// guard drops): the copy [`restore_recorded`] reads after a killed run.
    pub fn enable_recorded(record: &Path) -> io::Result<KsmGuard> {
        KsmGuard::enable_with(Some(record))
    }

    fn enable_with(record: Option<&Path>) -> io::Result<KsmGuard> {
        if !ksm_available() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{KSM_DIR}: missing: this kernel was built without KSM (CONFIG_KSM)"),
            ));
        }
        if ACTIVE
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                format!("{KSM_DIR}: another measurement holds KSM's settings"),
            ));
        }
        let taken = host_lock().and_then(|lock| {
            let saved = Settings::read()?;
            if let Some(r) = record {
                std::fs::write(r, saved.record())
                    .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", r.display())))?;
            }
            Ok((lock, saved))
        });
        let (lock, saved) = match taken {
            Ok(t) => t,
            Err(e) => {
                ACTIVE.store(false, Ordering::Release);
                return Err(e);
            }
        };
        // From here on a failed write drops the guard, which puts back what was written.
        let guard = KsmGuard {
            saved,
            record: record.map(Path::to_path_buf),
            _lock: lock,
        };
        write("pages_to_scan", &SCAN_PAGES.to_string())?;
        write("sleep_millisecs", &SLEEP_MS.to_string())?;
        write("run", "1")?;
        Ok(guard)
    }

    /// Waits until merging has settled, `timeout` passed or `cancel` was set (checked every
    /// 100 ms), and returns the last reading.
    ///
    /// Settled is Kata's rule (wait_ksm_settle in tests/metrics/lib/common.bash: pages_shared
    /// changed by at most 5% between two full scans) made precise:
    /// 1. R0 is read at the call. KSM merges a page only after its checksum stayed the same
    ///    over one full scan, so nothing present at the call can merge before the second full
    ///    scan after it: the first comparison point A is the reading once
    ///    `full_scans >= R0.full_scans + 2`.
    /// 2. B is the reading once `full_scans >= A.full_scans + 1` (a whole scan after A).
    /// 3. Settled if both pages_shared and pages_sharing changed from A to B by at most 5% of
    ///    max(A's value, 1) (so 0 -> 0 is settled, 0 -> 1 is not); else A = B and back to 2.
    ///
    /// pages_sharing is checked too because when N identical guests merge, pages_shared stops
    /// growing once the first pair merged while pages_sharing still climbs with every other
    /// guest.
    ///
    /// ksmd does not scan at all when no process has mergeable memory: if the scan counters
    /// (pages_scanned, pages_skipped, full_scans) stand still for a second, the current
    /// reading is returned as settled. On kernels without pages_scanned this falls back to
    /// the timeout. `settled` is false on timeout, on cancel, and if the counters cannot be
    /// read.
    pub fn wait_settled(&self, timeout: Duration, cancel: &AtomicBool) -> KsmReading {
        let deadline = Instant::now() + timeout;
        let Some(r0) = read_ksm() else {
            return KsmReading::default();
        };
        let mut watch = Watch {
            deadline,
            cancel,
            last: r0,
            progress: scan_progress(),
            still_since: Instant::now(),
        };
        let mut a = match watch.until_scans(r0.full_scans.saturating_add(2)) {
            Wait::Reached(r) => r,
            Wait::Idle(r) => return KsmReading { settled: true, ..r },
            Wait::Stopped(r) => return r,
        };
        loop {
            let b = match watch.until_scans(a.full_scans.saturating_add(1)) {
                Wait::Reached(r) => r,
                Wait::Idle(r) => return KsmReading { settled: true, ..r },
                Wait::Stopped(r) => return r,
            };
            if within_5_percent(a.pages_shared, b.pages_shared)
                && within_5_percent(a.pages_sharing, b.pages_sharing)
            {
                return KsmReading { settled: true, ..b };
            }
            a = b;
        }
    }
}

/// |b - a| <= 5% of max(a, 1).
fn within_5_percent(a: u64, b: u64) -> bool {
    u128::from(a.abs_diff(b)) * 100 <= u128::from(a.max(1)) * 5
}

enum Wait {
    /// full_scans reached the target.
    Reached(KsmReading),
    /// ksmd is not scanning: nothing is registered for merging.
    Idle(KsmReading),
    /// Timeout, cancel, or the counters became unreadable: the last reading, not settled.
    Stopped(KsmReading),
}

/// Polls the counters for `wait_settled`.
struct Watch<'a> {
    deadline: Instant,
    cancel: &'a AtomicBool,
    last: KsmReading,
    progress: Option<(u64, u64)>,
    still_since: Instant,
}

impl Watch<'_> {
    fn until_scans(&mut self, target: u64) -> Wait {
        loop {
            if self.last.full_scans >= target {
                return Wait::Reached(self.last);
            }
            let now = Instant::now();
            if self.cancel.load(Ordering::Relaxed) || now >= self.deadline {
                return Wait::Stopped(self.last);
            }
            std::thread::sleep(POLL.min(self.deadline - now));
            let Some(r) = read_ksm() else {
                return Wait::Stopped(self.last);
            };
            let progress = scan_progress();
            let moved = r.full_scans != self.last.full_scans || progress != self.progress;
            self.last = r;
            self.progress = progress;
            if moved {
                self.still_since = Instant::now();
            } else if progress.is_some() && self.still_since.elapsed() >= IDLE_AFTER {
                return Wait::Idle(r);
            }
        }
    }
}

impl Drop for KsmGuard {
    /// Puts the saved settings back. If KSM was off, `run = 2` first unmerges every page
    /// merged meanwhile (the host's memory is as it was), then `run = 0`. Errors are ignored:
    /// there is nobody to report them to, and a drop must not panic.
    fn drop(&mut self) {
        let _ = self.saved.put_back();
        if let Some(r) = &self.record {
            let _ = std::fs::remove_file(r);
        }
        ACTIVE.store(false, Ordering::Release);
    }
}

/// Puts back the KSM settings a killed run recorded (the text of its record, see
/// [`KsmGuard::enable_recorded`]), as a guard's drop would have. A record that does not parse
/// strictly changes nothing: the error says why.
/// Why a recorded KSM settings file is refused (its values would be written into /sys).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    #[error("line {0:?} is not key=value")]
    NotKeyValue(String),
    #[error("unknown key {0:?}")]
    UnknownKey(String),
    #[error("{key} = {value:?} is not a number")]
    NotANumber { key: String, value: String },
    #[error("{0} is given twice")]
    Twice(String),
    #[error("run, pages_to_scan and sleep_millisecs are all needed")]
    Incomplete,
    #[error("run = {0} is not 0, 1 or 2")]
    BadRun(String),
}

pub fn restore_record(text: &[u8]) -> io::Result<()> {
    let text = std::str::from_utf8(text)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "not UTF-8"))?;
    Settings::parse_record(text)
        .map_err(|why| io::Error::new(io::ErrorKind::InvalidData, why))?
        .put_back()
}

/// [`restore_record`] from the file `record`, which is then removed. Ok(false) when there is
/// none.
pub fn restore_recorded(record: &Path) -> io::Result<bool> {
    let text = match std::fs::read(record) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => {
            return Err(io::Error::new(
                e.kind(),
                format!("{}: {e}", record.display()),
            ));
        }
    };
    restore_record(&text).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("{}: not a KSM settings record: {e}", record.display()),
        )
    })?;
    std::fs::remove_file(record)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::testutil::Toucher;
    use std::sync::Mutex;

    /// KSM's settings are host-wide: its tests run one at a time.
    static KSM_TESTS: Mutex<()> = Mutex::new(());

    #[test]
    fn records_parse_strictly() {
        let good = Settings {
            run: "0".into(),
            pages_to_scan: "100".into(),
            sleep_millisecs: "20".into(),
        };
        assert_eq!(Settings::parse_record(&good.record()), Ok(good.clone()));
        for bad in [
            "",
            "garbage",
            "run=0\npages_to_scan=100\n",
            "run=0\npages_to_scan=100\nsleep_millisecs=20\nrun=1\n",
            "run=0\npages_to_scan=100\nsleep_millisecs=20\nmax_page_sharing=1\n",
            "run=3\npages_to_scan=100\nsleep_millisecs=20\n",
            "run=0\npages_to_scan=-1\nsleep_millisecs=20\n",
            "run=0\npages_to_scan=1 0\nsleep_millisecs=20\n",
            "run=0\npages_to_scan=../../x\nsleep_millisecs=20\n",
            "run=0\npages_to_scan=\nsleep_millisecs=20\n",
        ] {
            assert!(Settings::parse_record(bad).is_err(), "{bad:?}");
        }
        assert!(
            restore_record(b"run=1\n").is_err(),
            "nothing is written from half a record"
        );
    }

    #[test]
    fn five_percent_rule() {
        assert!(within_5_percent(0, 0));
        assert!(!within_5_percent(0, 1));
        assert!(within_5_percent(100, 105));
        assert!(within_5_percent(100, 95));
        assert!(!within_5_percent(100, 106));
        assert!(!within_5_percent(100, 0));
        assert!(within_5_percent(u64::MAX, u64::MAX));
    }

    /// None (with the reason printed) when the test cannot touch KSM here.
    /// Also holds the host-wide test lock of tests/common/host.rs: integration tests compare
    /// KSM's settings before and after a run, which these tests change meanwhile.
    fn usable() -> Option<(std::sync::MutexGuard<'static, ()>, std::fs::File)> {
        let no_ksm = format!("{KSM_DIR} is missing (a kernel without CONFIG_KSM)");
        if crate::skip::when(!ksm_available(), &no_ksm) || crate::skip::unless_root() {
            return None;
        }
        let one = KSM_TESTS.lock().unwrap_or_else(|e| e.into_inner());
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open("/run/isobench-tests.lock")
            .expect("/run/isobench-tests.lock");
        lock.lock().expect("locking /run/isobench-tests.lock");
        Some((one, lock))
    }

    /// enable(), retried while another guard of this process (another test) is active.
    fn enable() -> KsmGuard {
        let start = Instant::now();
        loop {
            match KsmGuard::enable() {
                Err(e)
                    if e.kind() == io::ErrorKind::ResourceBusy
                        && start.elapsed() < Duration::from_secs(60) =>
                {
                    std::thread::sleep(Duration::from_millis(100))
                }
                r => return r.expect("enable KSM"),
            }
        }
    }

    /// utime + stime of ksmd, ns, if it can be found.
    fn ksmd_cpu_ns() -> Option<u64> {
        let p = procfs::process::all_processes()
            .ok()?
            .flatten()
            .find(|p| p.stat().is_ok_and(|s| s.comm == "ksmd"))?;
        crate::measure::cpu::pids_cpu_ns(&[p.pid])
    }

    #[test]
    fn guard_sets_and_restores_the_settings() {
        let Some(_one) = usable() else { return };
        let before = Settings::read().expect("read KSM's settings");
        {
            let g = enable();
            assert_eq!(read_str("run").expect("run"), "1");
            assert_eq!(
                read_u64("pages_to_scan").expect("pages_to_scan"),
                SCAN_PAGES
            );
            assert_eq!(read_u64("sleep_millisecs").expect("sleep"), SLEEP_MS);
            let e = KsmGuard::enable().expect_err("a second guard at once");
            assert_eq!(e.kind(), io::ErrorKind::ResourceBusy);
            // Cancel is honoured within a poll.
            let start = Instant::now();
            let r = g.wait_settled(Duration::from_secs(10), &AtomicBool::new(true));
            assert!(!r.settled && start.elapsed() < Duration::from_millis(500));
        }
        assert_eq!(Settings::read().expect("read KSM's settings"), before);
    }

    #[test]
    fn another_run_holding_the_settings_is_refused_and_nothing_changes() {
        let Some(_one) = usable() else { return };
        let before = Settings::read().expect("read KSM's settings");
        // Another run's lock: an flock on another open file of the same directory conflicts
        // as one in another process would.
        let other = host_lock().expect("lock KSM's directory");
        let e = KsmGuard::enable().expect_err("KSM held by another run");
        assert_eq!(e.kind(), io::ErrorKind::ResourceBusy, "{e}");
        assert!(e.to_string().contains("another isobench run"), "{e}");
        assert_eq!(Settings::read().expect("read KSM's settings"), before);
        drop(other);
        drop(enable());
        assert_eq!(Settings::read().expect("read KSM's settings"), before);
    }

    #[test]
    fn a_killed_runs_record_puts_the_settings_back() {
        let Some(_one) = usable() else { return };
        let before = Settings::read().expect("read KSM's settings");
        let record =
            std::env::temp_dir().join(format!("isobench-ksm-record-{}", std::process::id()));
        {
            let g = KsmGuard::enable_recorded(&record).expect("enable KSM with a record");
            assert!(record.exists(), "the record is written before KSM changes");
            drop(g);
        }
        assert!(!record.exists(), "a guard that drops removes its record");
        assert_eq!(Settings::read().unwrap(), before);

        // A run killed while KSM was on leaves the record and the changed settings behind.
        let g = KsmGuard::enable_recorded(&record).expect("enable KSM with a record");
        let kept = std::fs::read_to_string(&record).unwrap();
        drop(g);
        std::fs::write(&record, &kept).unwrap();
        write("pages_to_scan", "1234").unwrap();
        assert!(
            restore_recorded(&record).expect("restore"),
            "the record was used"
        );
        assert_eq!(Settings::read().unwrap(), before);
        assert!(!record.exists());
        assert!(
            !restore_recorded(&record).unwrap(),
            "nothing to restore twice"
        );
    }

    #[test]
    fn identical_pages_of_two_processes_merge() {
        let Some(_one) = usable() else { return };
        let before = Settings::read().expect("read KSM's settings");
        let base = read_ksm().expect("read KSM's counters");
        let cpu0 = ksmd_cpu_ns();
        let g = enable();
        let enabled = Instant::now();
        // Nothing mergeable yet (unless another process on the host has some): the idle
        // rule answers in about a second instead of at the timeout.
        let idle = g.wait_settled(Duration::from_secs(20), &AtomicBool::new(false));
        println!(
            "before the children: {idle:?} after {:?}",
            enabled.elapsed()
        );
        let a = Toucher::spawn(8, true, |_| Ok::<(), std::io::Error>(()))
            .expect("fork the first child");
        let b = Toucher::spawn(8, true, |_| Ok::<(), std::io::Error>(()))
            .expect("fork the second child");
        let start = Instant::now();
        let r = g.wait_settled(Duration::from_secs(20), &AtomicBool::new(false));
        let took = start.elapsed();
        let cpu = cpu0
            .zip(ksmd_cpu_ns())
            .map(|(c0, c1)| c1.saturating_sub(c0));
        println!(
            "two children with 8 MiB of pairwise identical pages: {r:?} after {took:?} \
             (from {base:?}); ksmd CPU {} ms over {:?}",
            cpu.map_or(-1, |c| (c / 1_000_000) as i64),
            enabled.elapsed()
        );
        // Page i of one child is page i of the other: 2048 pairs, so 2048 more pages sharing
        // (each pair is one KSM page plus one sharer). A tenth is left for pages ksmd had not
        // got to when the counters settled; nothing merged at all fails the test.
        const PAIRS: u64 = 8 * 1024 / 4;
        assert!(r.settled, "KSM did not settle within 20 s: {r:?}");
        assert!(
            r.pages_sharing >= base.pages_sharing + PAIRS * 9 / 10,
            "identical pages of two processes did not merge: {r:?} (from {base:?})"
        );
        drop(a);
        drop(b);
        drop(g);
        assert_eq!(Settings::read().expect("read KSM's settings"), before);
        if before.run == "0" {
            let after = read_ksm().expect("read KSM's counters");
            assert_eq!(
                after.pages_shared, 0,
                "run=2 unmerges everything: {after:?}"
            );
        }
    }

    /// How long 1 GiB of mergeable memory (two processes of 512 MiB, pairwise identical)
    /// takes to settle, and what ksmd costs meanwhile; run with
    /// `cargo test --release --lib measure:: -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn one_gib_settles_within_seconds() {
        let Some(_one) = usable() else { return };
        let before = Settings::read().expect("read KSM's settings");
        let a = Toucher::spawn(512, true, |_| Ok::<(), std::io::Error>(()))
            .expect("fork the first child");
        let b = Toucher::spawn(512, true, |_| Ok::<(), std::io::Error>(()))
            .expect("fork the second child");
        let cpu0 = ksmd_cpu_ns();
        let g = enable();
        let start = Instant::now();
        let r = g.wait_settled(Duration::from_secs(120), &AtomicBool::new(false));
        let took = start.elapsed();
        let cpu = cpu0
            .zip(ksmd_cpu_ns())
            .map(|(c0, c1)| c1.saturating_sub(c0));
        println!(
            "1 GiB mergeable: {r:?} after {took:?}; ksmd CPU {} ms ({:.0}% of a core)",
            cpu.map_or(-1, |c| (c / 1_000_000) as i64),
            cpu.map_or(0.0, |c| c as f64 / 1e9 / took.as_secs_f64() * 100.0)
        );
        let unmerge = Instant::now();
        drop(g);
        println!("restore (run=2 unmerges) took {:?}", unmerge.elapsed());
        drop(a);
        drop(b);
        assert_eq!(Settings::read().expect("read KSM's settings"), before);
        assert!(r.settled, "{r:?}");
    }
}
