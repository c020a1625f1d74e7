//! How the container's first process is made: a clone that shares the harness's memory until
//! it execs the agent (CLONE_VM | CLONE_VFORK, as posix_spawn makes its children), on a stack
//! of its own.
//!
//! Why not a fork-like clone: a fork copies the page tables of the harness (its heap, every
//! thread's stack) and the exec then tears that copy down again. With the harness at 16 MiB
//! that cost 0.3 to 0.6 ms per launch on this host, a third of a container's whole start-up,
//! and it grows with the harness, so the launcher measured itself. A vfork-like child
//! copies nothing, and the parent's thread sleeps until the child has exec'd (or died), which
//! is what makes sharing the memory safe:
//!
//! - the child writes only to its own stack ([`Stack`]) and to the kernel; it reads the spec
//!   the parent built before the clone, which nothing changes while the parent sleeps;
//! - errno is the parent thread's (same TLS): only the child writes it while the parent
//!   sleeps, and the parent reads no errno of the clone's but its return value;
//! - signal handlers are the harness's (copied, in shared memory): every signal is blocked
//!   around the clone, and the child resets each handled signal to its default before it
//!   unblocks them, just before exec (child.rs), so no handler of the harness ever runs in it.
//!
//! The cost of CLONE_VFORK: the launching thread cannot time the child out before its exec.
//! A child stuck in a mount is in its cgroup already, where teardown and `clean` find it.
//!
//! On cgroup v2 the clone is clone3 with CLONE_INTO_CGROUP (the child is born in its cgroup);
//! glibc 2.36 has no clone3 wrapper, and a child on a new stack cannot return into Rust code,
//! so that call is a few lines of assembly that call the entry function on the new stack.
//! Elsewhere glibc's clone(3) does the same for clone(2).

use super::child::{self, ChildFds, ChildSpec};
use std::ffi::c_void;

/// The child's stack: an anonymous mapping with a guard page below it. The child needs a few
/// KiB (no allocation, a handful of frames); pages it never touches cost nothing.
pub struct Stack {
    base: *mut c_void,
    len: usize,
}

const STACK_LEN: usize = 256 << 10;
const GUARD: usize = 4096;

impl Stack {
    pub fn new() -> std::io::Result<Stack> {
        // SAFETY: a fresh private anonymous mapping; nothing else refers to it.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                STACK_LEN,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(std::io::Error::last_os_error());
        }
        let stack = Stack {
            base,
            len: STACK_LEN,
        };
        // SAFETY: the lowest page of the mapping just made: an overflow faults there instead
        // of writing into whatever lies below.
        if unsafe { libc::mprotect(base, GUARD, libc::PROT_NONE) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(stack)
    }

    /// The initial stack pointer: the end of the mapping, 16-byte aligned (page aligned).
    fn top(&self) -> *mut c_void {
        // SAFETY: one past the end of the mapping, which is where a stack starts.
        unsafe { self.base.cast::<u8>().add(self.len).cast() }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        // SAFETY: our own mapping; the child that used it has exec'd or died (CLONE_VFORK
        // returns only then).
        unsafe { libc::munmap(self.base, self.len) };
    }
}

/// What the child's entry function receives (a pointer into the parent's sleeping frame).
struct Entry<'a> {
    spec: &'a ChildSpec,
    fds: &'a ChildFds,
    mask: &'a libc::sigset_t,
}

extern "C" fn entry(arg: *mut c_void) -> libc::c_int {
    // SAFETY: `arg` points to the Entry in `spawn`'s frame, which lives until the parent
    // resumes, and the parent resumes only after this child has exec'd or exited.
    let e = unsafe { &*(arg as *const Entry) };
    child::run(e.spec, e.fds, e.mask)
}

/// Runs `f` with every signal blocked in this thread, passing it the thread's own mask, which
/// is restored afterwards. Around a clone whose child shares the harness's memory: no handler
/// of the harness may run in that child before it has reset them (child.rs).
fn with_signals_blocked<T>(f: impl FnOnce(&libc::sigset_t) -> T) -> T {
    let mut all = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    let mut old = std::mem::MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigfillset and pthread_sigmask fill sets on our stack.
    let old = unsafe {
        libc::sigfillset(all.as_mut_ptr());
        libc::pthread_sigmask(libc::SIG_SETMASK, all.as_ptr(), old.as_mut_ptr());
        old.assume_init()
    };
    let r = f(&old);
    // SAFETY: restores this thread's mask saved above.
    unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
    r
}

extern "C" fn unshare_probe_entry(_arg: *mut c_void) -> libc::c_int {
    // SAFETY: close_range and _exit in the probe child, which touches no memory.
    unsafe {
        let r = libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_UNSHARE,
        );
        libc::_exit(if r == 0 { 0 } else { 1 })
    }
}

/// Whether a child cloned with CLONE_FILES can take a private copy of its lowest descriptors
/// only (close_range with CLOSE_RANGE_UNSHARE, Linux 5.9; a seccomp filter around the harness
/// may refuse it): asked once, of a child cloned as the launcher clones.
pub fn can_share_files() -> bool {
    static CAN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *CAN.get_or_init(|| {
        let Ok(stack) = Stack::new() else {
            return false;
        };
        let flags = (libc::CLONE_VM | libc::CLONE_VFORK | libc::CLONE_FILES) as u64;
        // SAFETY: glibc's clone on our stack, which outlives the child (CLONE_VFORK), with
        // every signal blocked (the probe child never unblocks them and only calls
        // close_range and _exit); the entry takes no argument.
        let pid = with_signals_blocked(|_| unsafe {
            libc::clone(
                unshare_probe_entry,
                stack.top(),
                flags as libc::c_int | libc::SIGCHLD,
                std::ptr::null_mut(),
            )
        });
        if pid <= 0 {
            return false;
        }
        let mut status = 0;
        // SAFETY: waitpid on our own child into a stack int.
        let waited = unsafe { libc::waitpid(pid, &mut status, 0) };
        waited == pid && libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
    })
}

/// How the child is placed in its cgroup.
#[derive(Clone, Copy)]
pub enum Join {
    /// clone3 with CLONE_INTO_CGROUP and this cgroup v2 directory descriptor.
    Into(libc::c_int),
    /// The child writes itself into `fds.cgroup_join` (cgroup v1, hybrid).
    Itself,
}

/// Makes the container's first process with `flags` (namespaces), running [`child::run`].
/// Returns its pid once it has exec'd the agent or failed (its message says which), or the
/// clone's error; `Join::Into` fails with the kernel's errno where clone3 or
/// CLONE_INTO_CGROUP is missing, for the caller to fall back to `Join::Itself`.
pub fn spawn(flags: u64, join: Join, spec: &ChildSpec, fds: &ChildFds) -> std::io::Result<i32> {
    thread_local! {
        /// The launching thread's child stack, made once and used by each of its launches in
        /// turn (CLONE_VFORK: the previous child has exec'd or died when spawn returns). An
        /// munmap per launch made every launch flush the other CPUs' TLBs.
        static STACK: std::cell::RefCell<Option<Stack>> = const { std::cell::RefCell::new(None) };
    }
    let stack = match STACK.with(|s| s.borrow_mut().take()) {
        Some(s) => s,
        None => Stack::new()?,
    };
    let mut vm = (libc::CLONE_VM | libc::CLONE_VFORK) as u64;
    if fds.share_table {
        // The child shares the descriptor table until its first syscall takes a private
        // copy of only the low descriptors it needs (child.rs): no copy of every
        // instance's descriptors, and none to close at exec (host::fd).
        vm |= libc::CLONE_FILES as u64;
    }
    // Every signal blocked until the clone has returned; the child starts with that mask and
    // gets the thread's own (`old`) back just before exec.
    let (ret, err) = with_signals_blocked(|old| {
        let arg = Entry {
            spec,
            fds,
            mask: old,
        };
        let arg_ptr = &arg as *const Entry as *mut c_void;
        let ret = match join {
            // SAFETY: the stack is ours and outlives the child's use of it (CLONE_VFORK); the
            // entry and its argument are valid until the parent resumes.
            Join::Into(cgroup) => unsafe {
                clone3_on_stack(flags | vm, Some(cgroup), &stack, entry, arg_ptr)
            },
            // SAFETY: as above; glibc's clone(3) switches to the stack and calls the entry.
            Join::Itself => unsafe {
                libc::clone(
                    entry,
                    stack.top(),
                    (flags | vm) as libc::c_int | libc::SIGCHLD,
                    arg_ptr,
                ) as libc::c_long
            },
        };
        (ret, std::io::Error::last_os_error())
    });
    // The child has exec'd or died (CLONE_VFORK): the stack is free for the next launch.
    STACK.with(|s| *s.borrow_mut() = Some(stack));
    if ret < 0 {
        // clone3_on_stack returns -errno, glibc's clone -1 with errno set.
        return Err(if ret == -1 && matches!(join, Join::Itself) {
            err
        } else {
            std::io::Error::from_raw_os_error(-ret as i32)
        });
    }
    Ok(ret as i32)
}

/// struct clone_args of include/uapi/linux/sched.h, up to `cgroup` (CLONE_ARGS_SIZE_VER2).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// clone3(2) whose child starts on `stack` and calls `f(arg)`, which must not return (it
/// execs or exits; if it returned, the child exits with its value). Returns the child's pid
/// or -errno in the parent.
///
/// # Safety
/// `stack` must stay mapped, and `f` and `arg` valid, until the child has exec'd or exited;
/// with CLONE_VM the child runs in this address space.
unsafe fn clone3_on_stack(
    flags: u64,
    cgroup: Option<libc::c_int>,
    stack: &Stack,
    f: extern "C" fn(*mut c_void) -> libc::c_int,
    arg: *mut c_void,
) -> libc::c_long {
    let args = CloneArgs {
        flags: flags | cgroup.map_or(0, |_| CLONE_INTO_CGROUP),
        exit_signal: libc::SIGCHLD as u64,
        stack: stack.base as u64,
        stack_size: stack.len as u64,
        cgroup: cgroup.map_or(0, |fd| fd as u64),
        ..CloneArgs::default()
    };
    let ret: libc::c_long;
    // SAFETY: the syscall reads `args`; in the parent it returns the pid or -errno. In the
    // child (rax = 0) the kernel has set rsp to stack + stack_size (16-byte aligned, so the
    // callee sees the ABI's alignment after `call` pushes the return address); r12 and r13
    // survive the syscall, so the child calls f(arg) on the new stack and never comes back
    // into this frame, which belongs to the parent.
    unsafe {
        std::arch::asm!(
            "syscall",
            "test rax, rax",
            "jnz 2f",
            "xor ebp, ebp",
            "mov rdi, r12",
            "call r13",
            "mov edi, eax",
            "mov eax, {exit}",
            "syscall",
            "ud2",
            "2:",
            exit = const libc::SYS_exit,
            inlateout("rax") libc::SYS_clone3 => ret,
            in("rdi") &args as *const CloneArgs,
            in("rsi") std::mem::size_of::<CloneArgs>(),
            in("r12") arg,
            in("r13") f,
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The child's entry for the tests: writes its pid and a word from the parent's memory
    /// (shared: CLONE_VM) to the pipe, then exits 7.
    extern "C" fn probe_entry(arg: *mut c_void) -> libc::c_int {
        // SAFETY: arg points to the parent's [fd, word], alive while the parent sleeps.
        let [fd, word] = unsafe { *(arg as *const [i32; 2]) };
        // SAFETY: getpid, write of a stack buffer and _exit in the child.
        unsafe {
            let msg = [libc::getpid(), word];
            libc::write(fd, msg.as_ptr().cast(), 8);
            libc::_exit(7)
        }
    }

    fn reap(pid: i32) -> i32 {
        let mut status = 0;
        // SAFETY: waitpid on our own child into a stack int.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status), "status {status:#x}");
        libc::WEXITSTATUS(status)
    }

    fn read_msg(fd: &std::os::fd::OwnedFd) -> [i32; 2] {
        use std::os::fd::AsRawFd;
        let mut msg = [0i32; 2];
        // SAFETY: read into a stack buffer of 8 bytes.
        let n = unsafe { libc::read(fd.as_raw_fd(), msg.as_mut_ptr().cast(), 8) };
        assert_eq!(n, 8);
        msg
    }

    /// This kernel (6.x) has CLOSE_RANGE_UNSHARE; the launcher then shares the table.
    #[test]
    fn a_cloned_child_can_take_a_private_copy_of_its_low_descriptors() {
        assert!(can_share_files());
    }

    /// The assembly path (cgroup v2's) runs its child on the new stack, in shared memory,
    /// and comes back to the parent with the child's pid, here on any host (no cgroup).
    #[test]
    fn clone3_on_a_new_stack_runs_the_entry_and_returns_the_pid() {
        use std::os::fd::AsRawFd;
        let (r, w) = nix::unistd::pipe().unwrap();
        let arg = [w.as_raw_fd(), 4242];
        let stack = Stack::new().unwrap();
        let vm = (libc::CLONE_VM | libc::CLONE_VFORK) as u64;
        // SAFETY: the stack and arg outlive the child (CLONE_VFORK: it has exited when this
        // returns).
        let pid = unsafe {
            clone3_on_stack(
                vm,
                None,
                &stack,
                probe_entry,
                &arg as *const _ as *mut c_void,
            )
        };
        assert!(pid > 0, "clone3: {pid}");
        assert_eq!(read_msg(&r), [pid as i32, 4242]);
        assert_eq!(reap(pid as i32), 7);
    }

    /// A refused clone3 comes back as -errno (CLONE_INTO_CGROUP with a descriptor that is no
    /// cgroup directory): the caller's cue to fall back.
    #[test]
    fn a_refused_clone3_returns_the_errno() {
        let stack = Stack::new().unwrap();
        let dev_null = std::fs::File::open("/dev/null").unwrap();
        use std::os::fd::AsRawFd;
        let vm = (libc::CLONE_VM | libc::CLONE_VFORK) as u64;
        // SAFETY: the kernel refuses before any child exists.
        let r = unsafe {
            clone3_on_stack(
                vm,
                Some(dev_null.as_raw_fd()),
                &stack,
                probe_entry,
                std::ptr::null_mut(),
            )
        };
        assert!(r < 0, "clone3 into /dev/null as a cgroup returned {r}");
    }
}
