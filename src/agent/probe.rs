//! The isolation probes the agent runs from inside its instance (`probe` workload): what a
//! root process in the instance can and cannot do. Each probe reports `ok` or the errno name
//! that stopped it, so a test or a reader sees which layer said no (EPERM: seccomp, a missing
//! capability or the device cgroup; EROFS: a read-only mount).
//!
//! Probes that would change the agent itself (a mount, a new user namespace) run in a forked
//! child that reports through its exit status; nothing a probe creates is left behind, and
//! nothing is ever written to /proc (files are only opened for writing, then closed).

use std::collections::BTreeMap;
use std::ffi::CString;

/// The errno name of `e` (`EPERM`), or its number.
fn errno_name(e: nix::errno::Errno) -> String {
    format!("{e:?}")
}

fn outcome(r: nix::Result<()>) -> String {
    match r {
        Ok(()) => "ok".into(),
        Err(e) => errno_name(e),
    }
}

/// Runs `f` in a forked child and returns its outcome: the child exits 0 on success or with
/// the errno, so the probe cannot change the agent's own mounts or namespaces.
fn in_child(f: fn() -> nix::Result<()>) -> String {
    use nix::sys::wait::{WaitStatus, waitpid};
    use nix::unistd::{ForkResult, fork};
    // SAFETY: the agent is single-threaded while probing; the child only makes raw syscalls
    // and leaves with _exit.
    match unsafe { fork() } {
        Ok(ForkResult::Child) => {
            let code = match f() {
                Ok(()) => 0,
                Err(e) => e as i32,
            };
            // SAFETY: _exit skips the parent's atexit handlers, which this copy must not run.
            unsafe { libc::_exit(code) }
        }
        Ok(ForkResult::Parent { child }) => match waitpid(child, None) {
            Ok(WaitStatus::Exited(_, 0)) => "ok".into(),
            Ok(WaitStatus::Exited(_, code)) => errno_name(nix::errno::Errno::from_raw(code)),
            Ok(other) => format!("{other:?}"),
            Err(e) => format!("waitpid: {}", errno_name(e)),
        },
        Err(e) => format!("fork: {}", errno_name(e)),
    }
}

/// Whether the agent shares its parent's mount namespace (a plain process does: the harness
/// is its parent; an instance's PID 1 has no parent in its namespace).
fn shares_parent_mount_ns() -> bool {
    let mine = std::fs::read_link("/proc/self/ns/mnt").ok();
    let parents = std::fs::read_link(format!("/proc/{}/ns/mnt", nix::unistd::getppid())).ok();
    mine.is_some() && mine == parents
}

/// A tmpfs on a fresh directory of the instance's own, removed at once.
fn try_mount() -> nix::Result<()> {
    use nix::mount::{MsFlags, mount, umount};
    let dir = probe_path("isobench-probe-mnt");
    let _ = std::fs::create_dir(&dir);
    let r = mount(
        Some("tmpfs"),
        &dir,
        Some("tmpfs"),
        MsFlags::empty(),
        None::<&str>,
    )
    .and_then(|()| umount(&dir));
    let _ = std::fs::remove_dir(&dir);
    r
}

/// clone3 with no arguments (size 0), which the kernel refuses before reading anything:
/// EINVAL where the call is let through, ENOSYS where a seccomp rule answers it (Docker's
/// profile, so that glibc falls back to clone(2), whose flags a filter can see). No process
/// is made either way.
fn clone3_answer() -> String {
    // SAFETY: a NULL pointer with size 0: the kernel checks the size first and reads nothing.
    let r = unsafe { libc::syscall(libc::SYS_clone3, std::ptr::null::<u8>(), 0usize) };
    if r < 0 {
        errno_name(nix::errno::Errno::last())
    } else {
        // Not reachable (size 0 is below CLONE_ARGS_SIZE_VER0); said rather than assumed.
        format!("returned {r}")
    }
}

fn try_userns() -> nix::Result<()> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER)
}

/// Where probes make what they make: the instance's private write directory (process and
/// unshare instances), else the root of its own filesystem.
fn probe_path(name: &str) -> std::path::PathBuf {
    match std::env::var_os(super::workload::WRITE_DIR_ENV) {
        Some(d) => std::path::PathBuf::from(d).join(name),
        None => std::path::Path::new("/").join(name),
    }
}

/// mknod of /dev/sda's numbers (block 8:0), then an open of it if the mknod worked.
fn block_device() -> (String, String) {
    use nix::sys::stat::{Mode, SFlag, makedev, mknod};
    let path = probe_path("isobench-probe-blk");
    let made = mknod(
        &path,
        SFlag::S_IFBLK,
        Mode::from_bits_truncate(0o600),
        makedev(8, 0),
    );
    let opened = match made {
        Ok(()) => {
            let r = std::fs::File::open(&path)
                .map(|_| ())
                .map_err(|e| nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0)));
            let _ = std::fs::remove_file(&path);
            outcome(r)
        }
        Err(_) => "not tried".into(),
    };
    (outcome(made), opened)
}

/// A masked file: `masked` when it reads as empty (/dev/null bound over it), `readable` when
/// bytes come back, else the errno (ENOENT where the kernel has no such file).
fn masked(path: &str) -> String {
    use std::io::Read;
    match std::fs::File::open(path) {
        Err(e) => errno_name(nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0))),
        Ok(mut f) => {
            let mut b = [0u8; 1];
            match f.read(&mut b) {
                Ok(0) => "masked".into(),
                Ok(_) => "readable".into(),
                Err(e) => errno_name(nix::errno::Errno::from_raw(e.raw_os_error().unwrap_or(0))),
            }
        }
    }
}

/// A masked directory: `masked` when a tmpfs covers it (the masks' empty read-only tmpfs),
/// `readable` when it is still the kernel's, else the errno (ENOENT where the kernel has no
/// such directory). By filesystem type, not by content: /proc/acpi can be empty anyway.
fn masked_dir(path: &str) -> String {
    match nix::sys::statfs::statfs(path) {
        Err(e) => errno_name(e),
        Ok(fs) if fs.filesystem_type() == nix::sys::statfs::TMPFS_MAGIC => "masked".into(),
        Ok(_) => "readable".into(),
    }
}

/// Opens `path` for writing and closes it at once, writing nothing: `ok` means it is
/// writable, EROFS that a read-only mount covers it.
fn open_for_write(path: &str) -> String {
    let path = CString::new(path).unwrap_or_default();
    // SAFETY: open/close of a NUL-terminated path; nothing is written.
    let fd = unsafe { libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC) };
    if fd < 0 {
        return errno_name(nix::errno::Errno::last());
    }
    // SAFETY: closing the descriptor just opened.
    unsafe { libc::close(fd) };
    "ok".into()
}

/// Every probe, by name.
pub fn run() -> BTreeMap<&'static str, String> {
    let (mknod, open) = block_device();
    BTreeMap::from([
        ("mknod_block", mknod),
        ("open_block", open),
        ("kcore", masked("/proc/kcore")),
        // Masked too, and present on kernels built without /proc/kcore.
        ("timer_list", masked("/proc/timer_list")),
        // A masked directory (ACPI firmware tables; absent on kernels without ACPI).
        ("acpi", masked_dir("/proc/acpi")),
        (
            "sysrq_trigger_open_write",
            open_for_write("/proc/sysrq-trigger"),
        ),
        (
            "proc_sys_open_write",
            open_for_write("/proc/sys/vm/drop_caches"),
        ),
        (
            "mount_tmpfs",
            // In the harness's mount namespace a mount would be the host's, and a kill between
            // mount and umount would leave it there.
            if shares_parent_mount_ns() {
                "not tried (the harness's mount namespace)".into()
            } else {
                in_child(try_mount)
            },
        ),
        ("unshare_user", in_child(try_userns)),
        ("clone3", clone3_answer()),
    ])
}
