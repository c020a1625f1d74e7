//! The kernel floor of a container launch: the same kernel operations isobench's container
//! makes, in a minimal loop with nothing else: clone with the five namespaces (pid, mount,
//! uts, ipc, net), mounts made private, the overlay root mounted, pivot_root into it, the
//! memory cgroup joined, exec of the image's `/bin/echo ready`, until its line is read. What a
//! launcher adds on top of this is its own cost; the benches print each launcher's ratio to it.
//!
//! As for the container, the timed window starts just before clone and ends when the `ready`
//! line is read: the overlay's directories and the cgroup (with its memory limit) are made
//! before it; the wait for the exit and the removal come after (a container's teardown is
//! timed apart from its start-up too).

use std::ffi::CString;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub struct Floor {
    lowerdir: CString,
    dir: PathBuf,
    /// The memory cgroup under which each launch gets its own directory.
    cgroup: PathBuf,
    n: u64,
}

fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("no NUL in a bench path")
}

impl Floor {
    /// `lowerdir` as overlayfs takes it (the image's layers), scratch space under `dir`, and a
    /// memory cgroup parent `cgroup` (made here, removed by [`Floor::finish`]).
    pub fn new(lowerdir: &str, dir: &Path, cgroup: &Path) -> Floor {
        std::fs::create_dir_all(dir).expect("floor dir");
        std::fs::create_dir_all(cgroup).expect("floor cgroup");
        Floor {
            lowerdir: CString::new(lowerdir).expect("lowerdir"),
            dir: dir.to_path_buf(),
            cgroup: cgroup.to_path_buf(),
            n: 0,
        }
    }

    /// The memory controller's hierarchy on this host: v1's memory mount or the v2 root.
    pub fn memory_root() -> Option<PathBuf> {
        let h = isobench::host::cgroup::CgroupHost::detect().ok()?;
        match h.mode {
            isobench::host::cgroup::CgroupMode::V2 => h.unified,
            _ => {
                h.v1.iter()
                    .find(|(c, _)| *c == "memory")
                    .map(|(_, p)| p.clone())
            }
        }
    }

    /// One launch: clone until the `ready` line was read (then reaped, untimed).
    pub fn launch(&mut self) -> Duration {
        self.n += 1;
        let d = self.dir.join(format!("f{}", self.n));
        for s in ["upper", "work", "merged"] {
            std::fs::create_dir_all(d.join(s)).expect("floor overlay dirs");
        }
        let cg = self.cgroup.join(format!("f{}", self.n));
        std::fs::create_dir(&cg).expect("floor cgroup");
        let v2 = cg.join("memory.max").exists();
        let limit = if v2 {
            "memory.max"
        } else {
            "memory.limit_in_bytes"
        };
        std::fs::write(cg.join(limit), (64u64 << 20).to_string()).expect("memory limit");
        // The cheapest self-join the kernel has, as the container's (host::cgroup's
        // self_join_file): v1's `tasks` skips the global threadgroup lock.
        let join = if v2 { "cgroup.procs" } else { "tasks" };
        let procs: OwnedFd = std::fs::OpenOptions::new()
            .write(true)
            .open(cg.join(join))
            .expect("the cgroup's join file")
            .into();
        let root = cstr(&d.join("merged"));
        let opts = CString::new(format!(
            "lowerdir={},upperdir={},workdir={}",
            self.lowerdir.to_str().expect("utf-8"),
            d.join("upper").display(),
            d.join("work").display()
        ))
        .expect("opts");
        let flags = libc::CLONE_NEWPID
            | libc::CLONE_NEWNS
            | libc::CLONE_NEWUTS
            | libc::CLONE_NEWIPC
            | libc::CLONE_NEWNET;
        let argv = [c"/bin/echo".as_ptr(), c"ready".as_ptr(), std::ptr::null()];
        let mut pipe = [0; 2];
        // SAFETY: pipe2 fills the two ints on our stack.
        let made = unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) };
        assert_eq!(made, 0, "pipe2: {}", std::io::Error::last_os_error());
        let (out_r, out_w) = (pipe[0], pipe[1]);
        let envp = [std::ptr::null::<libc::c_char>()];
        let fd = procs.as_raw_fd();

        let start = Instant::now();
        // SAFETY: fork-like clone (no CLONE_VM, no new stack); the child makes only raw
        // syscalls on data built above and never returns (execve or _exit).
        let pid = unsafe {
            libc::syscall(
                libc::SYS_clone,
                (flags | libc::SIGCHLD) as libc::c_ulong,
                0usize,
                0usize,
                0usize,
                0usize,
            )
        };
        if pid == 0 {
            // SAFETY: the child of the clone above; see there.
            unsafe {
                let ok = libc::dup2(out_w, 1) == 1
                    && libc::write(fd, c"0".as_ptr().cast(), 1) == 1
                    && libc::mount(
                        std::ptr::null(),
                        c"/".as_ptr(),
                        std::ptr::null(),
                        libc::MS_REC | libc::MS_PRIVATE,
                        std::ptr::null(),
                    ) == 0
                    && libc::mount(
                        c"overlay".as_ptr(),
                        root.as_ptr(),
                        c"overlay".as_ptr(),
                        0,
                        opts.as_ptr().cast(),
                    ) == 0
                    && libc::chdir(root.as_ptr()) == 0
                    && libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()) == 0
                    && libc::umount2(c".".as_ptr(), libc::MNT_DETACH) == 0
                    && libc::chdir(c"/".as_ptr()) == 0;
                if ok {
                    libc::execve(argv[0], argv.as_ptr(), envp.as_ptr());
                }
                libc::_exit(127);
            }
        }
        assert!(pid > 0, "clone: {}", std::io::Error::last_os_error());
        let mut buf = [0u8; 6];
        // SAFETY: close our copy of the write end; read into a stack buffer.
        let n = unsafe {
            libc::close(out_w);
            libc::read(out_r, buf.as_mut_ptr().cast(), buf.len())
        };
        let took = start.elapsed();
        assert_eq!(
            &buf[..n.max(0) as usize],
            b"ready\n",
            "the floor's child printed"
        );
        let mut status = 0;
        // SAFETY: waitpid on our own child, status on our stack; close our read end.
        let r = unsafe {
            libc::close(out_r);
            libc::waitpid(pid as i32, &mut status, 0)
        };
        assert_eq!(r, pid as i32);
        assert!(
            libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
            "floor child failed (status {status:#x})"
        );
        drop(procs);
        let _ = std::fs::remove_dir(&cg);
        let _ = isobench::host::remove_dir_tree(&d);
        took
    }

    pub fn finish(self) {
        let _ = std::fs::remove_dir(&self.cgroup);
        let _ = isobench::host::remove_dir_tree(&self.dir);
    }
}
