//! The `syscalls` workload: system-call micro-benchmarks run by the agent inside its instance,
//! so the cost of what separates a shared kernel from a sandboxed one (seccomp filters, overlay
//! lookups, a user-space kernel, an emulated CPU) shows as nanoseconds per operation.
//!
//! Each operation runs for a time budget, its iteration count doubling until the budget is
//! spent, never a fixed count: under gVisor's ptrace platform a system call costs ~100 µs,
//! and a count sized for the host would take minutes there.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// Files of 4 KiB each that the agent layer carries for the first-write operation
/// (`/.isobench/copyup/<i>`); instances without that layer make their own.
pub const COPYUP_FILES: usize = 64;
pub const COPYUP_DIR: &str = "copyup";
/// Size of each of those files.
pub const COPYUP_FILE_BYTES: usize = 4096;

/// The operations, in the order they run and are reported.
pub const OPS: &[&str] = &[
    "getppid",
    "stat",
    "open_read_close",
    "pipe_roundtrip",
    "mmap_touch_munmap",
    "first_write",
];

/// One operation's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OpCost {
    /// Wall time per operation, ns.
    pub ns_per_op: f64,
    /// How many operations were timed.
    pub ops: u64,
}

/// Runs `op` in doubling batches until `budget` is spent; the cost is total time / count.
fn timed(budget: Duration, mut op: impl FnMut(u64)) -> OpCost {
    let mut batch = 1u64;
    let mut ops = 0u64;
    let start = Instant::now();
    while start.elapsed() < budget {
        op(batch);
        ops += batch;
        batch = (batch * 2).min(1 << 20);
    }
    let ns = start.elapsed().as_nanos() as f64;
    OpCost {
        ns_per_op: ns / ops.max(1) as f64,
        ops,
    }
}

fn getppid(n: u64) {
    for _ in 0..n {
        // SAFETY: a raw syscall without arguments; getppid is never answered from the vDSO.
        std::hint::black_box(unsafe { libc::syscall(libc::SYS_getppid) });
    }
}

fn stat_file(path: &std::ffi::CStr, n: u64) {
    let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
    for _ in 0..n {
        // SAFETY: stat(2) into a buffer of the right type; the result is discarded.
        std::hint::black_box(unsafe { libc::stat(path.as_ptr(), st.as_mut_ptr()) });
    }
}

fn open_read_close(path: &std::ffi::CStr, n: u64) {
    let mut buf = [0u8; 4096];
    for _ in 0..n {
        // SAFETY: open/read/close on a NUL-terminated path and a stack buffer.
        unsafe {
            let fd = libc::open(path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
            if fd >= 0 {
                std::hint::black_box(libc::read(fd, buf.as_mut_ptr().cast(), buf.len()));
                libc::close(fd);
            }
        }
    }
}

fn mmap_touch_munmap(n: u64) {
    const LEN: usize = 1 << 20;
    for _ in 0..n {
        // SAFETY: an anonymous private mapping, written within its length, then unmapped.
        unsafe {
            let p = libc::mmap(
                std::ptr::null_mut(),
                LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            );
            if p == libc::MAP_FAILED {
                continue;
            }
            let bytes = p.cast::<u8>();
            for off in (0..LEN).step_by(4096) {
                bytes.add(off).write_volatile(1);
            }
            libc::munmap(p, LEN);
        }
    }
}

fn pipe() -> (OwnedFd, OwnedFd) {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).expect("pipe2")
}

/// Pins the calling thread to `cpu`; returns whether it worked.
fn pin_to(cpu: usize) -> bool {
    let mut set = nix::sched::CpuSet::new();
    set.set(cpu).is_ok()
        && nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set).is_ok()
}

/// One byte to a second thread and back, per operation. Both threads are pinned to the CPU
/// the agent runs on, so the figure is two system calls and two context switches, not the
/// wake-up latency of another CPU (which varied 30-fold between runs when left to the
/// scheduler on the development host).
fn pipe_roundtrip(budget: Duration) -> Option<OpCost> {
    let (to_r, to_w) = pipe();
    let (back_r, back_w) = pipe();
    let before = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0)).ok();
    // SAFETY: sched_getcpu has no arguments; a negative result means unknown.
    let cpu = usize::try_from(unsafe { libc::sched_getcpu() }).ok();
    let pinned = cpu.is_some_and(pin_to);
    let echo = std::thread::Builder::new()
        .name("echo".into())
        .spawn(move || {
            if let Some(cpu) = cpu.filter(|_| pinned) {
                pin_to(cpu);
            }
            let mut b = [0u8; 1];
            // SAFETY: read/write of one byte on pipes this thread owns; ends at EOF.
            while unsafe { libc::read(to_r.as_raw_fd(), b.as_mut_ptr().cast(), 1) } == 1 {
                // SAFETY: as above.
                if unsafe { libc::write(back_w.as_raw_fd(), b.as_ptr().cast(), 1) } != 1 {
                    break;
                }
            }
        })
        .ok()?;
    let cost = timed(budget, |n| {
        let mut b = [7u8; 1];
        for _ in 0..n {
            // SAFETY: as above, on the other ends.
            unsafe {
                libc::write(to_w.as_raw_fd(), b.as_ptr().cast(), 1);
                libc::read(back_r.as_raw_fd(), b.as_mut_ptr().cast(), 1);
            }
        }
    });
    drop(to_w);
    let _ = echo.join();
    if let Some(set) = before {
        let _ = nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set);
    }
    Some(cost)
}

/// The first write to files that existed before: overlay copy-up in a container (the files
/// are in the image's agent layer), copy-on-write of the qcow2 overlay in a VM; where there is
/// no such layer (process, unshare) the agent makes the files first in its own directory, so
/// the figure is a plain write. Each operation: open for writing, write one byte, close.
fn first_write(budget: Duration) -> Option<OpCost> {
    let layer = std::path::Path::new("/")
        .join(crate::agent::AGENT_DIR)
        .join(COPYUP_DIR);
    let dir = if layer.is_dir() {
        layer
    } else {
        let d = match std::env::var_os(super::workload::WRITE_DIR_ENV) {
            Some(d) => std::path::PathBuf::from(d).join(COPYUP_DIR),
            None => return None,
        };
        std::fs::create_dir_all(&d).ok()?;
        for i in 0..COPYUP_FILES {
            std::fs::write(d.join(i.to_string()), [0u8; COPYUP_FILE_BYTES]).ok()?;
        }
        d
    };
    let files: Vec<std::ffi::CString> = (0..COPYUP_FILES)
        .filter_map(|i| {
            std::ffi::CString::new(
                dir.join(i.to_string())
                    .into_os_string()
                    .into_encoded_bytes(),
            )
            .ok()
        })
        .collect();
    // The first copy-up also copies up the directories above the file: done once, untimed,
    // so every timed operation copies up one file.
    let (first, files) = files.split_first()?;
    // SAFETY: as below.
    unsafe {
        let fd = libc::open(first.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if fd < 0 {
            return None;
        }
        libc::pwrite(fd, [1u8].as_ptr().cast(), 1, 0);
        libc::close(fd);
    }
    let start = Instant::now();
    let mut ops = 0u64;
    for f in files {
        if start.elapsed() >= budget {
            break;
        }
        // SAFETY: open/pwrite/close on a NUL-terminated path and a one-byte stack buffer.
        unsafe {
            let fd = libc::open(f.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return None;
            }
            libc::pwrite(fd, [1u8].as_ptr().cast(), 1, 0);
            libc::close(fd);
        }
        ops += 1;
    }
    Some(OpCost {
        ns_per_op: start.elapsed().as_nanos() as f64 / ops.max(1) as f64,
        ops,
    })
}

/// Runs every operation with `budget` each; an operation that cannot run here is left out.
pub fn run(budget: Duration) -> BTreeMap<&'static str, OpCost> {
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| std::ffi::CString::new(p.into_os_string().into_encoded_bytes()).ok())
        .unwrap_or_else(|| c"/".to_owned());
    let mut out = BTreeMap::new();
    out.insert("getppid", timed(budget, getppid));
    out.insert("stat", timed(budget, |n| stat_file(&exe, n)));
    out.insert(
        "open_read_close",
        timed(budget, |n| open_read_close(&exe, n)),
    );
    if let Some(c) = pipe_roundtrip(budget) {
        out.insert("pipe_roundtrip", c);
    }
    out.insert("mmap_touch_munmap", timed(budget, mmap_touch_munmap));
    if let Some(c) = first_write(budget) {
        out.insert("first_write", c);
    }
    out
}
