//! Running the real `isobench` binary from integration tests: with a timeout, output kept in
//! files (no pipe can fill up), and the root requirement of the developers' guide (a test that
//! cannot run fails, unless ISOBENCH_ALLOW_SKIP=1).
//!
//! Self-contained (std, nix and the isobench library) so any test file can include it with
//! `#[path = "common/bin.rs"] mod bin;`.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_isobench");

/// Polls `child` until it exits or `timeout` passes.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(s)) => return Some(s),
            Ok(None) if start.elapsed() < timeout => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => return None,
            Err(e) => panic!("waiting for pid {}: {e}", child.id()),
        }
    }
}

/// What a finished command printed, and how it ended.
pub struct Output {
    pub pid: u32,
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Debug for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "pid {} {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.pid, self.status, self.stdout, self.stderr
        )
    }
}

/// Runs `cmd` with its stdout and stderr written to the files `out` and `err` (no pipe can
/// fill up), for at most `timeout`: past it, the command is killed and the test fails with
/// what it printed.
pub fn run_logged(mut cmd: Command, out: &Path, err: &Path, timeout: Duration) -> Output {
    let file =
        |p: &Path| std::fs::File::create(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(file(out))
        .stderr(file(err))
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
    let pid = child.id();
    let Some(status) = wait_timeout(&mut child, timeout) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "{cmd:?} did not finish within {timeout:?}\nstdout:\n{}\nstderr:\n{}",
            read(out),
            read(err)
        );
    };
    Output {
        pid,
        status,
        stdout: read(out),
        stderr: read(err),
    }
}

/// A test's scratch directory (removed on drop) where commands run and leave their logs.
pub struct Scratch {
    pub dir: PathBuf,
    logs: std::sync::atomic::AtomicUsize,
}

impl Scratch {
    pub fn new(label: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("isobench-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        Scratch {
            dir,
            logs: Default::default(),
        }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Two fresh log file names in this directory, for a command's stdout and stderr.
    fn log_files(&self) -> (PathBuf, PathBuf) {
        let n = self.logs.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        (
            self.path(&format!("cmd-{n}.out")),
            self.path(&format!("cmd-{n}.err")),
        )
    }

    fn command<S: AsRef<OsStr>>(&self, args: &[S], env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .envs(env.iter().copied())
            .current_dir(&self.dir);
        cmd
    }

    /// Starts `isobench ARGS` with `env` added, in this directory, output to log files.
    pub fn spawn<S: AsRef<OsStr>>(
        &self,
        args: &[S],
        env: &[(&str, &str)],
    ) -> (Child, PathBuf, PathBuf) {
        let (o, e) = self.log_files();
        let file = |p: &Path| {
            std::fs::File::create(p).unwrap_or_else(|err| panic!("{}: {err}", p.display()))
        };
        let child = self
            .command(args, env)
            .stdin(Stdio::null())
            .stdout(file(&o))
            .stderr(file(&e))
            .spawn()
            .unwrap_or_else(|err| panic!("spawning {BIN}: {err}"));
        (child, o, e)
    }

    /// Runs `isobench ARGS` with `env` added to its end (at most `timeout`).
    pub fn run<S: AsRef<OsStr>>(
        &self,
        args: &[S],
        env: &[(&str, &str)],
        timeout: Duration,
    ) -> Output {
        let (o, e) = self.log_files();
        run_logged(self.command(args, env), &o, &e, timeout)
    }

    /// `isobench clean --state-dir ROOT [more args]`.
    pub fn clean(&self, root: &Path, more: &[&str]) -> Output {
        let mut args: Vec<&OsStr> = vec![
            OsStr::new("clean"),
            OsStr::new("--state-dir"),
            root.as_os_str(),
        ];
        args.extend(more.iter().map(OsStr::new));
        self.run(&args, &[], Duration::from_secs(120))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        // Never through a mount a failed test may have left (see host::remove).
        if let Err(e) = isobench::host::remove_dir_tree(&self.dir) {
            eprintln!("cleanup: {e}");
        }
    }
}

pub fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| format!("<{}: {e}>", p.display()))
}
