//! Where the harness keeps the descriptors it holds for the life of an instance.
//!
//! A process the harness spawns starts with a copy of its descriptor table and closes every
//! close-on-exec descriptor at exec: with N instances alive that is N-proportional work at
//! every launch (5% of the CPU of launching 1000 containers on this host). The container
//! launcher avoids the copy: its child shares the table (CLONE_FILES) and then takes a
//! private copy of only its lowest descriptors (close_range with CLOSE_RANGE_UNSHARE,
//! container/child.rs). For that to leave the instances' descriptors behind, they live high:
//! [`park`] moves one to [`PARK_BASE`] or above, and the low numbers stay for the few
//! descriptors a launch opens and closes again.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// The lowest number a parked descriptor gets. Below it: standard streams, the run's files,
/// and each launch's short-lived pipes.
pub const PARK_BASE: i32 = 1024;

/// `fd` moved to a number at or above [`PARK_BASE`] (close-on-exec), or `fd` itself where
/// the open-file limit leaves no room up there: it then only costs a launch some copying.
pub fn park(fd: OwnedFd) -> OwnedFd {
    if fd.as_raw_fd() >= PARK_BASE {
        return fd;
    }
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) on a descriptor we own returns a new descriptor (or -1),
    // which the OwnedFd below then owns alone.
    let high = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, PARK_BASE) };
    if high < 0 {
        return fd;
    }
    // SAFETY: `high` is a fresh descriptor nobody else owns; `fd` closes when dropped here.
    unsafe { OwnedFd::from_raw_fd(high) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parked_descriptor_is_high_close_on_exec_and_the_same_file() {
        let (r, w) = nix::unistd::pipe().unwrap();
        let low = r.as_raw_fd();
        let r = park(r);
        assert!(r.as_raw_fd() >= PARK_BASE, "parked at {}", r.as_raw_fd());
        // SAFETY: F_GETFD on a descriptor we own.
        let flags = unsafe { libc::fcntl(r.as_raw_fd(), libc::F_GETFD) };
        assert_eq!(flags & libc::FD_CLOEXEC, libc::FD_CLOEXEC);
        nix::unistd::write(&w, b"x").unwrap();
        let mut b = [0u8; 1];
        assert_eq!(nix::unistd::read(&r, &mut b).unwrap(), 1);
        assert_ne!(r.as_raw_fd(), low);
    }
}
