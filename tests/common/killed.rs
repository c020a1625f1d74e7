//! A run SIGKILLed while its instances are alive, then `isobench clean`: nothing of the run may
//! be left (processes, cgroups, state dir, mounts). Shared by the peers' tests (lxc, gvisor).
#![allow(dead_code)]

use super::host;
use isobench::host::cgroup::CgroupHost;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Harness(std::process::Child);

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The instance cgroups of run `run_id` (any hierarchy) holding a process for which `up`
/// holds: the instances that are up.
pub fn instances_up(run_id: &str, up: impl Fn(i32) -> bool) -> usize {
    let mut names = std::collections::BTreeSet::new();
    for root in CgroupHost::all_roots() {
        let Ok(rd) = std::fs::read_dir(root.join("isobench").join(run_id)) else {
            continue;
        };
        for e in rd.flatten() {
            let d = e.path();
            // The backend's probe instance is not one of the batch's.
            if e.file_name() == "probe" {
                continue;
            }
            if d.is_dir() && isobench::host::cgroup::procs(&d).into_iter().any(&up) {
                names.insert(e.file_name());
            }
        }
    }
    names.len()
}

/// Whether `pid`'s command line starts with `prefix`.
pub fn cmdline_starts(pid: i32, prefix: &str) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c.starts_with(prefix.as_bytes()))
}

/// How a run is killed once `n` instances are up: after `wait`, and with `helpers` the run's
/// root-owned processes naming its state dir too (a runtime's own commands), as a SIGKILL of
/// the whole process group would.
pub struct Kill {
    pub wait: Duration,
    pub helpers: bool,
}

/// Runs `scenario` (TOML, whose long idle window keeps `n` instances alive), waits until
/// `ready(run_id)` counts `n` instances up, SIGKILLs the harness, runs `isobench clean` and
/// checks that nothing of the run is left. `label` names the scratch directory.
pub fn killed_run_is_cleaned(label: &str, scenario: &str, n: usize, ready: impl Fn(&str) -> usize) {
    // A second for the last launch's runtime to finish starting what it started: the kill
    // lands on instances that are up.
    let kill = Kill {
        wait: Duration::from_secs(1),
        helpers: false,
    };
    killed_run_is_cleaned_with(label, scenario, n, ready, kill);
}

/// The scratch directory of [`killed_run_is_cleaned_with`] for `label`.
fn base(label: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("{label}-killed-{}", std::process::id()))
}

/// The state dir the killed run `run_id` of `label` has (for `ready` closures).
pub fn run_state_dir(label: &str, run_id: &str) -> PathBuf {
    base(label).join("state").join(run_id)
}

/// [`killed_run_is_cleaned`], killed as `kill` says; returns what `isobench clean` printed.
pub fn killed_run_is_cleaned_with(
    label: &str,
    scenario: &str,
    n: usize,
    ready: impl Fn(&str) -> usize,
    kill_how: Kill,
) -> String {
    let _lock = host::host_lock();
    let before = host::snapshot();
    let base = base(label);
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    let (sdir, out, cache) = (base.join("state"), base.join("out"), base.join("cache"));
    let file = base.join("killed.toml");
    std::fs::write(&file, scenario).unwrap();
    let exe = env!("CARGO_BIN_EXE_isobench");
    let mut harness = Harness(
        Command::new(exe)
            .arg("run")
            .arg(&file)
            .arg("--out")
            .arg(&out)
            .arg("--state-dir")
            .arg(&sdir)
            .arg("--cache-dir")
            .arg(&cache)
            .arg("-q")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(base.join("stderr")).unwrap())
            .spawn()
            .expect("isobench runs"),
    );
    let stderr = || std::fs::read_to_string(base.join("stderr")).unwrap_or_default();
    let start = Instant::now();
    let run_id = loop {
        if let Ok(Some(st)) = harness.0.try_wait() {
            panic!("isobench exited early ({st}): {}", stderr());
        }
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "{n} instances were not up after 180 s: {}",
            stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
        let Some(id) = std::fs::read_dir(&sdir)
            .ok()
            .and_then(|mut rd| rd.next())
            .and_then(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
        else {
            continue;
        };
        if ready(&id) >= n {
            std::thread::sleep(kill_how.wait);
            break id;
        }
    };
    let pid = harness.0.id() as i32;
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    harness.0.wait().unwrap();
    let state_dir = sdir.join(&run_id);
    if kill_how.helpers {
        use std::os::unix::fs::MetadataExt;
        for (p, cmd) in host::processes_naming(&state_dir) {
            let root = std::fs::metadata(format!("/proc/{p}")).is_ok_and(|m| m.uid() == 0);
            if root {
                eprintln!("killing the run's helper {p}: {cmd}");
                let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
            }
        }
    }
    assert!(state_dir.exists(), "the killed run left no state dir?");
    eprintln!("left by the killed run: {:?}", host::run_leftovers(&run_id));

    let cleaned = Command::new(exe)
        .arg("clean")
        .arg("--state-dir")
        .arg(&sdir)
        .output()
        .expect("isobench clean runs");
    let said = format!(
        "isobench clean: {}\n{}",
        String::from_utf8_lossy(&cleaned.stdout),
        String::from_utf8_lossy(&cleaned.stderr)
    );
    eprintln!("{said}");
    assert!(cleaned.status.success(), "isobench clean failed: {said}");

    let left = host::wait_until_no_marked(std::slice::from_ref(&run_id), Duration::from_secs(5));
    assert!(left.is_empty(), "processes of the run left: {left:?}");
    let naming = wait_until_none_naming(&state_dir, Duration::from_secs(5));
    assert!(
        naming.is_empty(),
        "processes naming the state dir left: {naming:?}"
    );
    for root in CgroupHost::all_roots() {
        let d = root.join("isobench").join(&run_id);
        assert!(!d.exists(), "cgroup left: {}", d.display());
    }
    assert!(
        !state_dir.exists(),
        "state dir left: {}",
        state_dir.display()
    );
    let mounts: Vec<String> = std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap_or_default()
        .lines()
        .filter(|l| l.contains(&*sdir.to_string_lossy()))
        .map(str::to_string)
        .collect();
    assert!(mounts.is_empty(), "mounts left: {mounts:?}");
    host::assert_clean_since(&before, &sdir, &[run_id]);
    let _ = std::fs::remove_dir_all(&base);
    said
}

/// Processes whose command line names `path` (runsc's Sentry and Gofer carry `--root=` under
/// the state dir; lxc-start its lxcpath), once none is left or at the timeout.
pub fn wait_until_none_naming(path: &Path, timeout: Duration) -> Vec<(i32, String)> {
    let start = Instant::now();
    loop {
        let left = host::processes_naming(path);
        if left.is_empty() || start.elapsed() >= timeout {
            return left;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
