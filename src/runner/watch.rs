//! The death watch: notices at once when an instance that was ready dies (killed from
//! outside, crashed, OOM-killed, QEMU exited), instead of only at teardown, and says what
//! happened in words for its row's `error`.
//!
//! One thread per batch polls a pidfd per instance (pidfd_open(2) on the instance's first
//! host process: the agent, QEMU, or `unshare`). Chosen over the alternatives because:
//! - SIGCHLD comes only for children, and an OCI container's init is not ours until its
//!   runtime exits; a handler cannot do the work, and a SIGCHLD reaper would race the
//!   `waitpid` of every backend's teardown;
//! - cgroup events (`cgroup.events` populated, `memory.events`) exist on v2 only, and the
//!   `process` backend without root has no cgroup at all;
//! - a pidfd works for any process, turns readable when it exits, and does not reap it: the
//!   exit status is read with `waitid(P_PIDFD, WNOWAIT)` (our children, re-parented orphans
//!   included, since the harness is a subreaper) or from a zombie's /proc/PID/stat, and
//!   teardown reaps as before.
//!
//! The pidfds sit in one epoll set: adding an instance is one epoll_ctl, and a death wakes
//! the thread with that instance's token. (A poll(2) over every pidfd, rebuilt at each
//! addition, made a batch of N cost N^2 / 2 pidfd checks: 5% of the CPU of launching 1000
//! containers on this host.)
//!
//! An OOM kill is told apart from any other SIGKILL by the instance cgroup's `oom_kill`
//! counter (memory.events on v2, memory.oom_control on v1), read when the process died. The
//! cgroup is the instance's own, made for it, so the counter starts at 0 and any kill it
//! counts is the instance's. (It was read as a baseline when the watch took the instance on,
//! but an instance over its limit can be killed before that: launching got fast enough for a
//! test to see it.)

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use rustix::process::{Pid, PidfdFlags, WaitId, WaitIdOptions, pidfd_open, waitid};
use std::collections::{BTreeMap, HashMap};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// What the watch is told about one ready instance.
pub struct Watched<'a> {
    /// The instance's index in its batch (the row's `instance`).
    pub index: u32,
    pub name: &'a str,
    /// What the process is, in the error: "agent", "qemu", "unshare".
    pub what: &'static str,
    pub pid: i32,
    /// How long the instance took to be ready: the death's time is told from its start.
    pub startup: Duration,
    /// The instance cgroup's memory controller directory (its own, made for it), for the OOM
    /// counter and the limit.
    pub memory_dir: Option<&'a Path>,
}

/// How an instance ended, as seen by the watch.
#[derive(Debug, Clone, PartialEq)]
pub struct Death {
    pub what: &'static str,
    pub end: End,
    /// From the start of its launch (just before the spawn) to the moment the watch saw it.
    pub after_start: Duration,
    /// The cgroup's OOM killer struck this instance: its memory limit in bytes, if one is set.
    pub oom: Option<Option<u64>>,
}

/// The exit status of a dead process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Signal(i32),
    Exit(i32),
    /// It ended, but neither waitid nor /proc had its status any more.
    Unknown,
}

impl std::fmt::Display for Death {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(limit) = self.oom {
            match limit {
                Some(bytes) => write!(f, "oom-killed at memory limit {} (", mib(bytes))?,
                None => write!(f, "oom-killed (")?,
            }
        }
        let how = match self.end {
            End::Signal(s) => format!("killed by {}", signal_name(s)),
            End::Exit(code) => format!("exited with status {code}"),
            End::Unknown => "ended".to_string(),
        };
        // Milliseconds count here: a death right after ready is a different story from one
        // in the middle of a measurement.
        write!(
            f,
            "{} {how} after ready, {:.3} s after start",
            self.what,
            self.after_start.as_secs_f64()
        )?;
        if self.oom.is_some() {
            write!(f, ")")?;
        }
        Ok(())
    }
}

fn mib(bytes: u64) -> String {
    if bytes.is_multiple_of(1 << 20) {
        format!("{} MiB", bytes >> 20)
    } else {
        format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
    }
}

fn signal_name(s: i32) -> String {
    nix::sys::signal::Signal::try_from(s)
        .map(|sig| sig.as_str().to_string())
        .unwrap_or_else(|_| format!("signal {s}"))
}

/// One instance under watch.
struct Entry {
    index: u32,
    name: String,
    what: &'static str,
    pid: i32,
    pidfd: OwnedFd,
    /// The start of its launch, on the harness's monotonic clock.
    started: Instant,
    memory_dir: Option<PathBuf>,
}

struct Shared {
    /// Every pidfd under watch, its event's data the entry's token in `entries` (None when
    /// no epoll set could be made: deaths are then found by `stop` only).
    epoll: Option<Epoll>,
    entries: Mutex<HashMap<u64, Entry>>,
    next_token: std::sync::atomic::AtomicU64,
    deaths: Mutex<BTreeMap<u32, Death>>,
    stop: AtomicBool,
    /// Says each death the moment it is seen.
    announce: Option<Announce>,
}

/// The event data of the wake pipe (entry tokens count up from 0).
const WAKE: u64 = u64::MAX;

/// Where the watch says a death the moment it sees one (a line without its newline).
pub type Announce = Box<dyn Fn(&str) + Send + Sync>;

/// The watch over one batch's ready instances; [`DeathWatch::stop`] it before teardown, whose
/// kills are not deaths.
pub struct DeathWatch {
    shared: Arc<Shared>,
    wake: Option<OwnedFd>,
    thread: Option<JoinHandle<()>>,
}

impl DeathWatch {
    /// Starts the watch thread. `announce` prints each death on stderr when it is seen.
    /// Without a thread (no pipe or thread to be had) deaths are still found, by
    /// [`DeathWatch::stop`], only not at once.
    pub fn start(announce: bool) -> DeathWatch {
        let on_stderr: Announce = Box::new(|line| eprintln!("{line}"));
        DeathWatch::start_with(announce.then_some(on_stderr))
    }

    /// [`DeathWatch::start`] with deaths said through `announce` (the run's progress display
    /// prints them above itself).
    pub fn start_with(announce: Option<Announce>) -> DeathWatch {
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
            .map_err(|e| {
                eprintln!(
                    "isobench: death watch: epoll_create: {e}; deaths are seen at teardown only"
                )
            })
            .ok();
        let shared = Arc::new(Shared {
            epoll,
            entries: Mutex::new(HashMap::new()),
            next_token: std::sync::atomic::AtomicU64::new(0),
            deaths: Mutex::new(BTreeMap::new()),
            stop: AtomicBool::new(false),
            announce,
        });
        let s = shared.clone();
        let started = shared.epoll.as_ref().map(|epoll| {
            std::io::pipe().and_then(|(wake_r, wake_w)| {
                let wake_r = OwnedFd::from(wake_r);
                epoll
                    .add(&wake_r, EpollEvent::new(EpollFlags::EPOLLIN, WAKE))
                    .map_err(std::io::Error::from)?;
                std::thread::Builder::new()
                    .name("isobench-watch".into())
                    .spawn(move || watch_loop(&s, wake_r))
                    .map(|t| (t, wake_w))
            })
        });
        let (thread, wake) = match started {
            Some(Ok((t, w))) => (Some(t), Some(OwnedFd::from(w))),
            Some(Err(e)) => {
                eprintln!("isobench: death watch: {e}; deaths are seen at teardown only");
                (None, None)
            }
            None => (None, None),
        };
        DeathWatch {
            shared,
            wake,
            thread,
        }
    }

    /// Puts a ready instance under watch. A process that died already (a zombie) is still
    /// caught: its pidfd is readable at once.
    pub fn add(&self, w: &Watched<'_>) -> std::io::Result<()> {
        let pid = Pid::from_raw(w.pid).ok_or_else(|| {
            std::io::Error::other(format!("{}: no pid to watch ({})", w.name, w.pid))
        })?;
        let pidfd = pidfd_open(pid, PidfdFlags::empty()).map_err(|e| {
            std::io::Error::other(format!("{}: pidfd_open of pid {}: {e}", w.name, w.pid))
        })?;
        // Held while the instance lives: out of the way of the next launch (host::fd).
        let pidfd = crate::host::fd::park(pidfd);
        let memory_dir = w.memory_dir.map(Path::to_path_buf);
        let shared = &self.shared;
        let entry = Entry {
            index: w.index,
            name: w.name.to_string(),
            what: w.what,
            pid: w.pid,
            pidfd,
            started: Instant::now()
                .checked_sub(w.startup)
                .unwrap_or_else(Instant::now),
            memory_dir,
        };
        let token = shared.next_token.fetch_add(1, Ordering::Relaxed);
        // In the map before the epoll set, under the map's lock: the thread, woken for this
        // token, finds the entry. Its registration ends when the entry (the pidfd's owner) is
        // dropped.
        let mut entries = lock(&shared.entries);
        let entry = entries.entry(token).or_insert(entry);
        if let Some(epoll) = &shared.epoll
            && let Err(e) = epoll.add(&entry.pidfd, EpollEvent::new(EpollFlags::EPOLLIN, token))
        {
            // Still found by `stop`, only not at once.
            return Err(std::io::Error::other(format!(
                "{}: epoll_ctl: {e}; its death is seen at teardown only",
                w.name
            )));
        }
        Ok(())
    }

    /// The deaths seen so far, by instance index.
    pub fn deaths(&self) -> BTreeMap<u32, Death> {
        lock(&self.shared.deaths).clone()
    }

    pub fn is_dead(&self, index: u32) -> bool {
        lock(&self.shared.deaths).contains_key(&index)
    }

    /// Ends the watch and returns every death, including one the thread had not yet got
    /// to: each pidfd still watched is asked once more, without waiting, so nothing that
    /// died before this call goes unseen (with or without the thread and its epoll set).
    pub fn stop(mut self) -> BTreeMap<u32, Death> {
        self.halt();
        let left: Vec<Entry> = lock(&self.shared.entries).drain().map(|(_, e)| e).collect();
        for e in left {
            if readable(&e.pidfd) {
                record(&self.shared, e);
            }
        }
        self.deaths()
    }

    fn wake(&self) {
        if let Some(w) = &self.wake {
            // A full pipe already wakes the thread: the write may fail harmlessly.
            let _ = nix::unistd::write(w, b"w");
        }
    }

    fn halt(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.wake();
        self.wake = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for DeathWatch {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.halt();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic elsewhere must not stop the watch from reporting.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn readable(fd: &OwnedFd) -> bool {
    let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    matches!(poll(&mut fds, PollTimeout::ZERO), Ok(n) if n > 0)
}

/// Waits up to `timeout` for deaths in `epoll` and records each.
fn collect(shared: &Shared, epoll: &Epoll, timeout: EpollTimeout) -> nix::Result<()> {
    let mut events = [EpollEvent::empty(); 64];
    let n = epoll.wait(&mut events, timeout)?;
    for ev in &events[..n] {
        if ev.data() == WAKE {
            continue;
        }
        // Removed under the lock, recorded after it (reading its status touches /proc).
        let entry = lock(&shared.entries).remove(&ev.data());
        if let Some(e) = entry {
            // Out of the set before the pidfd closes: a copy of the descriptor table (a
            // child between fork and exec) would keep the file, and its registration, alive.
            let _ = epoll.delete(&e.pidfd);
            record(shared, e);
        }
    }
    Ok(())
}

/// The thread: waits on the epoll set until told to stop; a readable pidfd is a death. The
/// wake pipe (registered in the set, kept open here) is written only to stop the thread.
fn watch_loop(shared: &Shared, _wake: OwnedFd) {
    let Some(epoll) = &shared.epoll else {
        return;
    };
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        match collect(shared, epoll, EpollTimeout::NONE) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => {
                eprintln!("isobench: death watch: epoll_wait: {e}; deaths are seen at teardown");
                return;
            }
        }
    }
}

/// Reads how `e` ended (without reaping it) and records it.
fn record(shared: &Shared, e: Entry) {
    let after_start = e.started.elapsed();
    let end = exit_status(&e);
    let oom = e.memory_dir.as_deref().and_then(|dir| {
        let kills = oom_kills(dir)?;
        (kills > 0 && end == End::Signal(libc::SIGKILL)).then(|| memory_limit_bytes(dir))
    });
    let death = Death {
        what: e.what,
        end,
        after_start,
        oom,
    };
    if let Some(say) = &shared.announce {
        say(&format!("isobench: {} died: {death}", e.name));
    }
    lock(&shared.deaths).insert(e.index, death);
}

fn exit_status(e: &Entry) -> End {
    // Our child, or an orphan re-parented to us: its status, and it stays a zombie for
    // teardown to reap.
    if let Ok(Some(st)) = waitid(
        WaitId::PidFd(e.pidfd.as_fd()),
        WaitIdOptions::EXITED | WaitIdOptions::NOWAIT | WaitIdOptions::NOHANG,
    ) {
        if let Some(sig) = st.terminating_signal() {
            return End::Signal(sig);
        }
        if let Some(code) = st.exit_status() {
            return End::Exit(code);
        }
    }
    // Someone else's zombie: /proc/PID/stat field 52 is its wait status (Linux >= 3.5).
    zombie_status(e.pid).unwrap_or(End::Unknown)
}

fn zombie_status(pid: i32) -> Option<End> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the command: state is field 3, exit_code field 52.
    if fields.first() != Some(&"Z") {
        return None;
    }
    let status: i32 = fields.get(49)?.parse().ok()?;
    Some(if status & 0x7f != 0 {
        End::Signal(status & 0x7f)
    } else {
        End::Exit((status >> 8) & 0xff)
    })
}

/// The `oom_kill` counter of a memory cgroup: memory.events (v2) or memory.oom_control (v1)
/// both carry an `oom_kill N` line.
pub fn oom_kills(memory_dir: &Path) -> Option<u64> {
    ["memory.events", "memory.oom_control"]
        .iter()
        .find_map(|f| std::fs::read_to_string(memory_dir.join(f)).ok())?
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill ")?.trim().parse().ok())
}

/// The memory limit in force, in bytes: memory.max (v2) or memory.limit_in_bytes (v1); None
/// when unlimited ("max", or v1's page-rounded LONG_MAX).
pub fn memory_limit_bytes(memory_dir: &Path) -> Option<u64> {
    let text = ["memory.max", "memory.limit_in_bytes"]
        .iter()
        .find_map(|f| std::fs::read_to_string(memory_dir.join(f)).ok())?;
    text.trim().parse::<u64>().ok().filter(|b| *b < 1 << 62)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn death(end: End, oom: Option<Option<u64>>) -> Death {
        Death {
            what: "agent",
            end,
            after_start: Duration::from_millis(1234),
            oom,
        }
    }

    #[test]
    fn deaths_read_as_sentences() {
        assert_eq!(
            death(End::Signal(9), None).to_string(),
            "agent killed by SIGKILL after ready, 1.234 s after start"
        );
        assert_eq!(
            death(End::Exit(3), None).to_string(),
            "agent exited with status 3 after ready, 1.234 s after start"
        );
        assert_eq!(
            death(End::Signal(9), Some(Some(16 << 20))).to_string(),
            "oom-killed at memory limit 16 MiB (agent killed by SIGKILL after ready, 1.234 s after start)"
        );
        assert_eq!(mib(1536 << 10), "1.5 MiB");
    }

    /// A child of this test under watch as instance `index`.
    fn watch_child(watch: &DeathWatch, index: u32, c: &std::process::Child) {
        let w = Watched {
            index,
            name: "t",
            what: "agent",
            pid: c.id() as i32,
            startup: Duration::ZERO,
            memory_dir: None,
        };
        watch.add(&w).unwrap();
    }

    #[test]
    fn a_child_that_dies_is_seen_at_once_with_its_status_and_stays_reapable() {
        let watch = DeathWatch::start(false);
        let mut sleeper = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let mut quitter = std::process::Command::new("sh")
            .args(["-c", "exit 7"])
            .spawn()
            .unwrap();
        watch_child(&watch, 0, &sleeper);
        watch_child(&watch, 1, &quitter);
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(sleeper.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let start = Instant::now();
        while watch.deaths().len() < 2 && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(5));
        }
        let seen = start.elapsed();
        let deaths = watch.stop();
        assert_eq!(deaths[&0].end, End::Signal(libc::SIGTERM), "{deaths:?}");
        assert_eq!(deaths[&1].end, End::Exit(7), "{deaths:?}");
        assert!(seen < Duration::from_secs(1), "seen after {seen:?}");
        // WNOWAIT left them for their owner to reap.
        assert!(sleeper.wait().unwrap().code().is_none());
        assert_eq!(quitter.wait().unwrap().code(), Some(7));
    }

    /// Among many watched processes the one that dies is the one seen, at once; a death the
    /// thread had no time to see is still found by `stop`.
    #[test]
    fn one_death_among_many_is_seen_and_the_others_are_not_deaths() {
        let watch = DeathWatch::start(false);
        let mut kids: Vec<std::process::Child> = (0..64)
            .map(|_| {
                std::process::Command::new("sleep")
                    .arg("30")
                    .spawn()
                    .unwrap()
            })
            .collect();
        for (i, c) in kids.iter().enumerate() {
            watch_child(&watch, i as u32, c);
        }
        kids[17].kill().unwrap();
        let start = Instant::now();
        while !watch.is_dead(17) && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(watch.is_dead(17), "not seen within {:?}", start.elapsed());
        kids[40].kill().unwrap();
        // Give the kernel time to end it, not the watch time to be sure it looked.
        while std::fs::read_to_string(format!("/proc/{}/stat", kids[40].id()))
            .is_ok_and(|s| !s.contains(") Z "))
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        let deaths = watch.stop();
        assert_eq!(deaths.keys().copied().collect::<Vec<_>>(), [17, 40]);
        assert_eq!(deaths[&17].end, End::Signal(libc::SIGKILL));
        for mut c in kids {
            let _ = c.kill();
            c.wait().unwrap();
        }
    }

    #[test]
    fn a_live_process_is_no_death_and_stop_returns_promptly() {
        let watch = DeathWatch::start(false);
        let mut c = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        watch_child(&watch, 0, &c);
        let start = Instant::now();
        assert!(watch.stop().is_empty());
        assert!(start.elapsed() < Duration::from_secs(1));
        c.kill().unwrap();
        c.wait().unwrap();
    }

    #[test]
    fn oom_counters_and_limits_parse_from_either_cgroup_version() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::write(
            dir.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n",
        )
        .unwrap();
        std::fs::write(dir.join("memory.limit_in_bytes"), "16777216\n").unwrap();
        assert_eq!(oom_kills(dir), Some(2));
        assert_eq!(memory_limit_bytes(dir), Some(16 << 20));
        std::fs::write(
            dir.join("memory.events"),
            "low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n",
        )
        .unwrap();
        std::fs::write(dir.join("memory.max"), "max\n").unwrap();
        assert_eq!(oom_kills(dir), Some(1));
        assert_eq!(memory_limit_bytes(dir), None);
    }
}
