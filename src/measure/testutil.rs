//! Child processes for the measure tests, killed and reaped on drop whatever the test did.

use nix::fcntl::OFlag;
use nix::sys::signal::{Signal, kill};
use nix::sys::wait::waitpid;
use nix::unistd::{ForkResult, Pid, fork, pipe2};
use std::io::Read;
use std::os::fd::{AsRawFd, OwnedFd};

/// A spawned command, killed and reaped on drop.
pub(crate) struct KillOnDrop(pub std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A forked child that maps and touches `mib` MiB of anonymous memory, then waits to be
/// killed. Page i of the region holds i in its first word and 0x5a elsewhere, so two
/// touchers hold identical pages, pairwise (what KSM merges), and no page is all zeros.
/// A toucher that could not be started, and at which step.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ToucherError {
    #[error("{step}: {source}")]
    Sys {
        step: &'static str,
        source: nix::errno::Errno,
    },
    #[error("before touching: {0}")]
    Before(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("child {pid} did not get ready: {outcome}")]
    NotReady { pid: i32, outcome: String },
}

fn sys(step: &'static str) -> impl FnOnce(nix::errno::Errno) -> ToucherError {
    move |source| ToucherError::Sys { step, source }
}

pub(crate) struct Toucher {
    pid: Pid,
}

impl Toucher {
    /// Forks the child; `before_touch` runs in the parent while the child waits (to put it
    /// in a cgroup before it faults its pages in). Returns once every page is touched.
    pub(crate) fn spawn<E>(
        mib: usize,
        mergeable: bool,
        before_touch: impl FnOnce(i32) -> Result<(), E>,
    ) -> Result<Toucher, ToucherError>
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        // Close-on-exec, so that children other tests spawn meanwhile do not hold them open.
        let (go_r, go_w) = pipe2(OFlag::O_CLOEXEC).map_err(sys("pipe"))?;
        let (ready_r, ready_w) = pipe2(OFlag::O_CLOEXEC).map_err(sys("pipe"))?;
        // SAFETY: the child only makes async-signal-safe system calls (prctl, read, mmap,
        // madvise, write, pause, _exit) and writes to memory it mapped itself; it never
        // allocates, locks or unwinds, so the test harness's other threads do not matter.
        match unsafe { fork() }.map_err(sys("fork"))? {
            ForkResult::Child => child_main(mib, mergeable, &go_r, &ready_w),
            ForkResult::Parent { child } => {
                let t = Toucher { pid: child };
                drop(go_r);
                drop(ready_w);
                before_touch(child.as_raw()).map_err(|e| ToucherError::Before(Box::new(e)))?;
                nix::unistd::write(&go_w, b"g").map_err(sys("release child"))?;
                let mut b = [0u8; 1];
                let mut f = std::fs::File::from(ready_r);
                match f.read(&mut b) {
                    Ok(1) => Ok(t),
                    other => Err(ToucherError::NotReady {
                        pid: child.as_raw(),
                        outcome: format!("{other:?}"),
                    }),
                }
            }
        }
    }

    pub(crate) fn pid(&self) -> i32 {
        self.pid.as_raw()
    }
}

impl Drop for Toucher {
    fn drop(&mut self) {
        let _ = kill(self.pid, Signal::SIGKILL);
        let _ = waitpid(self.pid, None);
    }
}

fn child_main(mib: usize, mergeable: bool, go: &OwnedFd, ready: &OwnedFd) -> ! {
    const PAGE: usize = 4096;
    let len = mib << 20;
    // SAFETY: plain system calls on fds this process owns and a region it maps itself; every
    // write stays inside the `len` bytes mmap returned, and the child never returns.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        let mut b = 0u8;
        if libc::read(go.as_raw_fd(), (&raw mut b).cast(), 1) != 1 {
            libc::_exit(2);
        }
        let p = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        );
        if p == libc::MAP_FAILED {
            libc::_exit(3);
        }
        if mergeable && libc::madvise(p, len, libc::MADV_MERGEABLE) != 0 {
            libc::_exit(4);
        }
        let base = p.cast::<u8>();
        for i in 0..len / PAGE {
            let page = base.add(i * PAGE);
            std::ptr::write_bytes(page, 0x5a, PAGE);
            page.cast::<u64>().write(i as u64);
        }
        if libc::write(ready.as_raw_fd(), b"r".as_ptr().cast(), 1) != 1 {
            libc::_exit(5);
        }
        loop {
            libc::pause();
        }
    }
}

/// The run cgroups a measure test creates, removed on drop whatever the test did.
pub(crate) struct RunGuard(pub crate::host::cgroup::RunCgroups);

impl Drop for RunGuard {
    fn drop(&mut self) {
        if let Err(e) = self.0.remove() {
            eprintln!("removing test cgroups: {e}");
        }
    }
}

/// `isobench/<run id>` for a test, the run id made of `label` and this process as a run's is
/// (so `isobench clean` recognises what a crashed test left). Where the test cannot make
/// cgroups here (not root, no cgroup mount, no `controller`) it fails, or with
/// ISOBENCH_ALLOW_SKIP=1 this returns None and the test returns (see crate::skip).
pub(crate) fn test_cgroups(label: &str, controller: &str) -> Option<RunGuard> {
    if crate::skip::unless_root() {
        return None;
    }
    let host = match crate::host::cgroup::CgroupHost::detect() {
        Ok(h) => h,
        Err(e) => {
            crate::skip::because(&e.to_string());
            return None;
        }
    };
    let missing = !host.controllers().iter().any(|c| c == controller);
    if crate::skip::when(missing, &format!("no {controller} cgroup controller here")) {
        return None;
    }
    let run_id = crate::host::run_id::RunId::for_this_process(label).expect("a test run id");
    Some(RunGuard(
        host.create_run(run_id.as_str())
            .expect("create the run cgroup"),
    ))
}
