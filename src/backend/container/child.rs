//! The container's first process between clone and exec of the agent.
//!
//! This runs in a vfork-like child of a multithreaded harness (spawn.rs): in the harness's
//! own address space, on a stack of its own, while the launching thread sleeps and the other
//! threads run on. Their locks (malloc's among them) may be held at any moment, and their
//! memory is live, so the code here allocates nothing, formats nothing, writes only to its
//! own stack (and to errno, which is the sleeping launching thread's: spawn.rs) and calls
//! only async-signal-safe syscalls on data the parent prepared in [`ChildSpec`]. Failures
//! travel to the parent as a stage + errno.

use super::sync::{ChildMsg, Stage, Stamps};
use crate::agent::mono_ns as now_ns;
use crate::security::bpf::Insn;
use crate::security::{Cap, Profile};
use std::ffi::{CString, c_char};
use std::os::fd::RawFd;

/// Character devices of the minimal /dev: (name, major, minor), as the OCI default config lists.
pub const DEV_NODES: &[(&str, u32, u32)] = &[
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];
/// Symlinks of the minimal /dev: (link, target).
pub const DEV_LINKS: &[(&str, &str)] = &[
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
];

/// Filesystem set-up. `root` is absolute on the host (the child still sees the host's tree
/// until pivot_root); every other path is relative to the root, where the child works once
/// the overlay is mounted on it.
pub struct FsSpec {
    pub root: CString,
    pub overlay_opts: CString,
    pub proc_dir: CString,
    pub dev_dir: CString,
    pub dev_null: CString,
    pub dev_nodes: Vec<(CString, libc::dev_t)>,
    pub dev_links: Vec<(CString, CString)>,
    /// Each masked path, and whether it is a directory on the host's kernel (its /proc is
    /// the instance's): a directory gets its tmpfs first.
    pub masked: Vec<(CString, bool)>,
    pub readonly: Vec<CString>,
}

pub struct ChildSpec {
    pub fs: Option<FsSpec>,
    pub hostname: Option<CString>,
    pub cgroup_ns: bool,
    /// The profile's capability sets: None keeps whatever the harness has (profile `none`).
    pub caps: Option<CapSpec>,
    pub no_new_privs: bool,
    /// The seccomp program's sock_fprog header pointing into it (built before the clone: the
    /// child must not allocate).
    pub seccomp: Option<libc::sock_fprog>,
    pub _seccomp_program: Option<std::sync::Arc<Vec<Insn>>>,
    pub exe: CString,
    /// NULL-terminated pointer arrays into `_argv`/`_envp`, built before the clone.
    pub argv: Vec<*const c_char>,
    pub envp: Vec<*const c_char>,
    pub _argv: Vec<CString>,
    pub _envp: Vec<CString>,
}

/// What the child does to its capabilities: drop everything outside `keep` from the bounding
/// set, clear the ambient set, and set effective = permitted = `keep`, inheritable = empty.
pub struct CapSpec {
    pub drop: Vec<u32>,
    pub keep_mask: u64,
}

impl CapSpec {
    pub fn keeping(keep: &[Cap]) -> CapSpec {
        CapSpec {
            drop: (0..=Cap::last())
                .filter(|c| !keep.contains(&Cap(*c)))
                .collect(),
            keep_mask: crate::security::mask(keep),
        }
    }
}

impl ChildSpec {
    /// A child that execs `exe` under `profile`'s capabilities, no_new_privs and seccomp.
    pub fn new(
        exe: CString,
        args: Vec<CString>,
        env: Vec<CString>,
        profile: Profile,
        seccomp: Option<std::sync::Arc<Vec<Insn>>>,
    ) -> ChildSpec {
        let mut argv: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
        argv.push(std::ptr::null());
        let mut envp: Vec<*const c_char> = env.iter().map(|a| a.as_ptr()).collect();
        envp.push(std::ptr::null());
        let fprog = seccomp.as_ref().map(|p| libc::sock_fprog {
            // At most bpf::MAX_INSNS (4096): compile refuses longer programs.
            len: p.len() as u16,
            // Insn is #[repr(C)] with the kernel's sock_filter layout, as libc's is; the
            // buffer is shared and outlives the spec (it holds the Arc).
            filter: p.as_ptr() as *mut libc::sock_filter,
        });
        ChildSpec {
            fs: None,
            hostname: None,
            cgroup_ns: false,
            caps: profile.capabilities().map(CapSpec::keeping),
            no_new_privs: profile.confines(),
            seccomp: fprog,
            _seccomp_program: seccomp,
            exe,
            argv,
            envp,
            _argv: args,
            _envp: env,
        }
    }
}

/// The descriptors the child uses, by number (all O_CLOEXEC in the parent).
pub struct ChildFds {
    /// Child -> parent messages; closes at exec.
    pub msg_w: RawFd,
    /// Becomes the agent's stdout and stderr.
    pub out_w: RawFd,
    /// Host /dev/null: the agent's stdin.
    pub null_r: RawFd,
    /// The join file (`InstanceCgroup::self_join_file`: v1's `tasks`) of the instance's cgroup in
    /// each hierarchy, opened for writing before the clone: the child writes "0" (the writer
    /// itself) into each. Empty when the child was cloned into its cgroup (CLONE_INTO_CGROUP
    /// on cgroup v2).
    pub cgroup_join: Vec<RawFd>,
    /// The child was cloned sharing the harness's descriptor table (CLONE_FILES); its first
    /// act is to take a private table of the descriptors below [`ChildFds::needed_below`]
    /// only (host::fd says why).
    pub share_table: bool,
    /// The mount namespace to enter and copy (container/mntns.rs), instead of the copy of
    /// the host's that CLONE_NEWNS makes.
    pub mount_template: Option<RawFd>,
}

impl ChildFds {
    /// One above the highest descriptor the child uses. Reads only, allocates nothing: the
    /// child calls it.
    pub fn needed_below(&self) -> u32 {
        let top = [self.msg_w, self.out_w, self.null_r]
            .into_iter()
            .chain(self.cgroup_join.iter().copied())
            .chain(self.mount_template)
            .max()
            .unwrap_or(2);
        top.max(2) as u32 + 1
    }
}

fn send(fd: RawFd, msg: ChildMsg) {
    let b = msg.encode();
    // SAFETY: write(2) of a stack buffer to a pipe we own; failure is ignored on purpose
    // (the parent then sees EOF or a timeout).
    unsafe { libc::write(fd, b.as_ptr().cast(), b.len()) };
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

fn fail(fds: &ChildFds, stage: Stage) -> ! {
    send(
        fds.msg_w,
        ChildMsg::Error {
            stage,
            errno: errno(),
        },
    );
    // SAFETY: _exit ends the process without running the parent's atexit handlers or
    // destructors, which belong to the parent's copy of this address space.
    unsafe { libc::_exit(1) }
}

fn check(r: libc::c_long, fds: &ChildFds, stage: Stage) {
    if r < 0 {
        fail(fds, stage);
    }
}

const NULL: *const c_char = std::ptr::null();

/// Every signal the harness handles goes back to its default action in this child, whose
/// handlers are copies of the harness's and would run on the harness's memory (spawn.rs).
/// The raw rt_sigaction reaches the signals glibc keeps for itself too.
///
/// # Safety
/// Called only from [`run`], in the cloned child, with every signal blocked.
unsafe fn default_handlers() {
    /// The kernel's struct sigaction on x86_64.
    #[repr(C)]
    struct KSigaction {
        handler: usize,
        flags: u64,
        restorer: usize,
        mask: u64,
    }
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        let mut old = KSigaction {
            handler: 0,
            flags: 0,
            restorer: 0,
            mask: 0,
        };
        // SAFETY: rt_sigaction reads and writes structs on our stack, laid out as the
        // kernel's, with the kernel's sigset size (8 bytes).
        unsafe {
            let q = libc::syscall(
                libc::SYS_rt_sigaction,
                sig,
                std::ptr::null::<KSigaction>(),
                &mut old as *mut KSigaction,
                8usize,
            );
            if q == 0 && old.handler != libc::SIG_DFL && old.handler != libc::SIG_IGN {
                let dfl = KSigaction {
                    handler: libc::SIG_DFL,
                    flags: 0,
                    restorer: 0,
                    mask: 0,
                };
                libc::syscall(
                    libc::SYS_rt_sigaction,
                    sig,
                    &dfl as *const KSigaction,
                    std::ptr::null_mut::<KSigaction>(),
                    8usize,
                );
            }
        }
    }
}

/// Entered right after the clone, on the child's own stack, with every signal blocked;
/// `mask` is the launching thread's signal mask, which the agent gets. Never returns.
pub fn run(spec: &ChildSpec, fds: &ChildFds, mask: &libc::sigset_t) -> ! {
    let mut st = Stamps {
        started: now_ns(),
        ..Stamps::default()
    };
    // SAFETY: (the whole function) every call is a raw syscall wrapper on pointers into
    // `spec`, which the parent built before clone and which stays valid in this copy of its
    // memory.
    unsafe {
        // First: the harness's descriptor table is shared until here, and nothing below may
        // change it (the dup2s onto 0, 1 and 2 would replace the harness's own streams).
        if fds.share_table {
            check(
                libc::syscall(
                    libc::SYS_close_range,
                    fds.needed_below(),
                    u32::MAX,
                    libc::CLOSE_RANGE_UNSHARE,
                ),
                fds,
                Stage::Fds,
            );
        }
        check(
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) as _,
            fds,
            Stage::Setsid,
        );
        // Own session: a Ctrl-C at the harness's terminal must not reach instances directly.
        check(libc::setsid() as _, fds, Stage::Setsid);
        default_handlers();

        // Into the cgroup first (its limits are already written), so that the kernel memory
        // of the mounts below is charged to the instance. The child moves itself: the
        // parent's write of a pid after clone made it wait for the child's migration.
        for &fd in &fds.cgroup_join {
            if libc::write(fd, c"0".as_ptr().cast(), 1) != 1 {
                fail(fds, Stage::CgroupJoin);
            }
        }
        st.cgroup = now_ns();

        if let Some(fs) = &spec.fs {
            setup_fs(fs, spec.hostname.as_ref(), fds, &mut st);
        } else if let Some(h) = &spec.hostname {
            check(
                libc::sethostname(h.as_ptr(), h.as_bytes().len()) as _,
                fds,
                Stage::Hostname,
            );
        }

        // After joining the cgroup, so that our own cgroup becomes the namespace's root.
        if spec.cgroup_ns {
            check(
                libc::unshare(libc::CLONE_NEWCGROUP) as _,
                fds,
                Stage::CgroupNs,
            );
        }
        libc::umask(0o022);
        if spec.no_new_privs {
            check(
                libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) as _,
                fds,
                Stage::NoNewPrivs,
            );
        }
        if let Some(caps) = &spec.caps {
            drop_caps(caps, fds);
        }

        check(libc::dup2(fds.null_r, 0) as _, fds, Stage::Fds);
        check(libc::dup2(fds.out_w, 1) as _, fds, Stage::Fds);
        check(libc::dup2(fds.out_w, 2) as _, fds, Stage::Fds);
        // Everything above 2 closes at exec, msg_w included (it is how the parent sees exec).
        check(
            libc::syscall(
                libc::SYS_close_range,
                3u32,
                u32::MAX,
                libc::CLOSE_RANGE_CLOEXEC,
            ),
            fds,
            Stage::Fds,
        );
        // The harness's mask back (signals were blocked around the clone); the handlers are
        // the defaults now, so a pending signal acts on this child alone.
        check(
            libc::syscall(
                libc::SYS_rt_sigprocmask,
                libc::SIG_SETMASK,
                mask as *const libc::sigset_t,
                std::ptr::null_mut::<libc::sigset_t>(),
                8usize,
            ),
            fds,
            Stage::SignalMask,
        );
        // Last before exec, so the filter judges the agent and nothing of the set-up; the
        // message write and execve below are on every profile's allow-list.
        if let Some(prog) = &spec.seccomp {
            check(
                libc::syscall(
                    libc::SYS_seccomp,
                    libc::SECCOMP_SET_MODE_FILTER,
                    0,
                    prog as *const libc::sock_fprog,
                ),
                fds,
                Stage::Seccomp,
            );
        }
        st.exec = now_ns();
        send(fds.msg_w, ChildMsg::Exec(st));
        libc::execve(spec.exe.as_ptr(), spec.argv.as_ptr(), spec.envp.as_ptr());
        fail(fds, Stage::Exec)
    }
}

/// # Safety
/// Called only from [`run`], in the cloned child; see there.
unsafe fn setup_fs(fs: &FsSpec, hostname: Option<&CString>, fds: &ChildFds, st: &mut Stamps) {
    // SAFETY: raw syscalls on NUL-terminated strings owned by `fs`, and on a descriptor the
    // parent keeps open.
    unsafe {
        if let Some(t) = fds.mount_template {
            // A copy of the template (private already, and holding only the mounts the root
            // needs): entering it moves this child's root and working directory to its root.
            check(
                libc::setns(t, libc::CLONE_NEWNS) as _,
                fds,
                Stage::Propagation,
            );
            check(
                libc::unshare(libc::CLONE_NEWNS) as _,
                fds,
                Stage::Propagation,
            );
        } else {
            // Nothing we mount may propagate back to the host's mount namespace.
            check(
                libc::mount(
                    NULL,
                    c"/".as_ptr(),
                    NULL,
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ) as _,
                fds,
                Stage::Propagation,
            );
        }
        check(
            libc::mount(
                c"overlay".as_ptr(),
                fs.root.as_ptr(),
                c"overlay".as_ptr(),
                0,
                fs.overlay_opts.as_ptr().cast(),
            ) as _,
            fds,
            Stage::Overlay,
        );
        // Into the new root: the mounts below walk short relative paths from here, not the
        // host's path to the root each time.
        check(libc::chdir(fs.root.as_ptr()) as _, fds, Stage::Overlay);
        let pflags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
        check(
            libc::mount(
                c"proc".as_ptr(),
                fs.proc_dir.as_ptr(),
                c"proc".as_ptr(),
                pflags,
                std::ptr::null(),
            ) as _,
            fds,
            Stage::Proc,
        );
        check(
            libc::mount(
                c"tmpfs".as_ptr(),
                fs.dev_dir.as_ptr(),
                c"tmpfs".as_ptr(),
                libc::MS_NOSUID | libc::MS_STRICTATIME,
                c"mode=755,size=64k".as_ptr().cast(),
            ) as _,
            fds,
            Stage::Dev,
        );
        libc::umask(0);
        for (path, dev) in &fs.dev_nodes {
            check(
                libc::mknod(path.as_ptr(), libc::S_IFCHR | 0o666, *dev) as _,
                fds,
                Stage::Dev,
            );
        }
        for (link, target) in &fs.dev_links {
            check(
                libc::symlink(target.as_ptr(), link.as_ptr()) as _,
                fds,
                Stage::Dev,
            );
        }
        // A bind of /dev/null that fails on a directory still costs a cloned mount, and
        // unmounting it waits an expedited RCU grace period (do_loopback's error path): so a
        // path the host shows as a directory gets its tmpfs first, and the other way round
        // only if the guess was wrong.
        for (p, dir) in &fs.masked {
            let bind = || {
                libc::mount(
                    fs.dev_null.as_ptr(),
                    p.as_ptr(),
                    NULL,
                    libc::MS_BIND,
                    std::ptr::null(),
                )
            };
            // A directory: hidden under an empty read-only tmpfs.
            let tmpfs = || {
                libc::mount(
                    c"tmpfs".as_ptr(),
                    p.as_ptr(),
                    c"tmpfs".as_ptr(),
                    libc::MS_RDONLY,
                    std::ptr::null(),
                )
            };
            let (first, second): (&dyn Fn() -> libc::c_int, &dyn Fn() -> libc::c_int) = if *dir {
                (&tmpfs, &bind)
            } else {
                (&bind, &tmpfs)
            };
            if first() < 0 {
                match errno() {
                    libc::ENOENT => {}
                    libc::ENOTDIR | libc::EISDIR => check(second() as _, fds, Stage::Mask),
                    _ => fail(fds, Stage::Mask),
                }
            }
        }
        for p in &fs.readonly {
            if libc::mount(
                p.as_ptr(),
                p.as_ptr(),
                NULL,
                libc::MS_BIND | libc::MS_REC,
                std::ptr::null(),
            ) < 0
            {
                if errno() == libc::ENOENT {
                    continue;
                }
                fail(fds, Stage::Readonly);
            }
            let ro = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY | pflags;
            check(
                libc::mount(NULL, p.as_ptr(), NULL, ro, std::ptr::null()) as _,
                fds,
                Stage::Readonly,
            );
        }
        if let Some(h) = hostname {
            check(
                libc::sethostname(h.as_ptr(), h.as_bytes().len()) as _,
                fds,
                Stage::Hostname,
            );
        }
        st.rootfs = now_ns();
        // pivot_root(".", ".") (the working directory is the new root since the overlay
        // mount) stacks the old root under the new one; detaching it leaves only the
        // container's tree (runc's approach, no put_old directory needed).
        check(
            libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()),
            fds,
            Stage::PivotRoot,
        );
        check(
            libc::umount2(c".".as_ptr(), libc::MNT_DETACH) as _,
            fds,
            Stage::PivotRoot,
        );
        check(libc::chdir(c"/".as_ptr()) as _, fds, Stage::PivotRoot);
        st.pivot = now_ns();
    }
}

/// Drops every capability outside the profile's set from the bounding set, clears ambient
/// capabilities and sets effective and permitted to the profile's set and inheritable to
/// nothing. Root's capabilities after exec are bounded by the bounding set, which is what
/// holds; an empty inheritable set keeps file capabilities from adding any.
///
/// # Safety
/// Called only from [`run`], in the cloned child; see there.
unsafe fn drop_caps(caps: &CapSpec, fds: &ChildFds) {
    // capset(2) ABI: version 3 takes two 32-bit data words per set.
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
    // SAFETY: prctl and capset with stack structs laid out as the kernel's ABI.
    unsafe {
        for &c in &caps.drop {
            if libc::prctl(libc::PR_CAPBSET_DROP, c as libc::c_ulong, 0, 0, 0) < 0
                && errno() != libc::EINVAL
            {
                fail(fds, Stage::Caps);
            }
        }
        check(
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL,
                0,
                0,
                0,
            ) as _,
            fds,
            Stage::Caps,
        );
        let m = caps.keep_mask;
        let (lo, hi) = (m as u32, (m >> 32) as u32);
        let mut hdr = Header {
            version: LINUX_CAPABILITY_VERSION_3,
            pid: 0,
        };
        let data = [
            Data {
                effective: lo,
                permitted: lo,
                inheritable: 0,
            },
            Data {
                effective: hi,
                permitted: hi,
                inheritable: 0,
            },
        ];
        check(
            libc::syscall(libc::SYS_capset, &mut hdr as *mut Header, data.as_ptr()),
            fds,
            Stage::Caps,
        );
    }
}
