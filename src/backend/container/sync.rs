//! The typed protocol on the sync pipes between the harness and a container's first process
//! before it execs the agent (youki's habit: messages, not bare bytes).
//!
//! child -> parent: `FsReady`, then `Exec` just before execve, or `Error` with the stage and
//! errno that failed. parent -> child: `Go` once the child sits in its cgroup.

use std::os::fd::{AsFd, BorrowedFd};
use std::time::Instant;

/// Where the child was when something failed; named in the launch error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Stage {
    Setsid = 1,
    Propagation,
    Overlay,
    Proc,
    Dev,
    Mask,
    Readonly,
    Hostname,
    PivotRoot,
    WaitGo,
    CgroupNs,
    NoNewPrivs,
    Caps,
    Fds,
    Exec,
    Seccomp,
    Unknown,
}

impl Stage {
    fn from_u8(b: u8) -> Stage {
        use Stage::*;
        [
            Setsid,
            Propagation,
            Overlay,
            Proc,
            Dev,
            Mask,
            Readonly,
            Hostname,
            PivotRoot,
            WaitGo,
            CgroupNs,
            NoNewPrivs,
            Caps,
            Fds,
            Exec,
            Seccomp,
        ]
        .into_iter()
        .find(|s| *s as u8 == b)
        .unwrap_or(Unknown)
    }

    pub fn describe(&self) -> &'static str {
        match self {
            Stage::Setsid => "setsid/parent-death signal",
            Stage::Propagation => "making mounts private",
            Stage::Overlay => "mounting the overlay root",
            Stage::Proc => "mounting /proc",
            Stage::Dev => "creating /dev",
            Stage::Mask => "masking /proc paths",
            Stage::Readonly => "making /proc paths read-only",
            Stage::Hostname => "setting the hostname",
            Stage::PivotRoot => "pivot_root",
            Stage::WaitGo => "waiting for the harness",
            Stage::CgroupNs => "entering a new cgroup namespace",
            Stage::NoNewPrivs => "setting no_new_privs",
            Stage::Caps => "dropping capabilities",
            Stage::Fds => "setting up file descriptors",
            Stage::Exec => "exec of the agent",
            Stage::Seccomp => "installing the seccomp filter",
            Stage::Unknown => "an unknown stage",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildMsg {
    FsReady,
    Exec,
    Error { stage: Stage, errno: i32 },
}

pub const MSG_LEN: usize = 6;

impl ChildMsg {
    pub fn encode(&self) -> [u8; MSG_LEN] {
        let (tag, stage, errno) = match *self {
            ChildMsg::FsReady => (1u8, 0u8, 0i32),
            ChildMsg::Exec => (2, 0, 0),
            ChildMsg::Error { stage, errno } => (3, stage as u8, errno),
        };
        let e = errno.to_le_bytes();
        [tag, stage, e[0], e[1], e[2], e[3]]
    }

    pub fn decode(b: &[u8; MSG_LEN]) -> Option<ChildMsg> {
        match b[0] {
            1 => Some(ChildMsg::FsReady),
            2 => Some(ChildMsg::Exec),
            3 => Some(ChildMsg::Error {
                stage: Stage::from_u8(b[1]),
                errno: i32::from_le_bytes([b[2], b[3], b[4], b[5]]),
            }),
            _ => None,
        }
    }
}

pub const GO: u8 = b'G';

#[derive(Debug, PartialEq, Eq)]
pub enum RecvError {
    Timeout,
    /// The child closed its end: it exec'd (expected after `Exec`) or died.
    Closed,
    Garbled,
    Io(i32),
}

/// Reads one message, waiting at most until `deadline`. Pipe writes of 6 bytes are atomic,
/// so a message never arrives in pieces.
pub fn recv(fd: BorrowedFd<'_>, deadline: Instant) -> Result<ChildMsg, RecvError> {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let timeout =
            PollTimeout::try_from(left.as_millis().min(60_000) as u32).unwrap_or(PollTimeout::MAX);
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(0) if left.is_zero() => return Err(RecvError::Timeout),
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(RecvError::Io(e as i32)),
        }
        let mut buf = [0u8; MSG_LEN];
        match nix::unistd::read(fd.as_fd(), &mut buf) {
            Ok(0) => return Err(RecvError::Closed),
            Ok(MSG_LEN) => return ChildMsg::decode(&buf).ok_or(RecvError::Garbled),
            Ok(_) => return Err(RecvError::Garbled),
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(RecvError::Io(e as i32)),
        }
    }
}

/// Non-blocking look for an error the child left before dying (after a failed exec).
pub fn try_recv_error(fd: BorrowedFd<'_>) -> Option<(Stage, i32)> {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    fcntl(fd, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).ok()?;
    let mut buf = [0u8; MSG_LEN];
    while let Ok(MSG_LEN) = nix::unistd::read(fd, &mut buf) {
        if let Some(ChildMsg::Error { stage, errno }) = ChildMsg::decode(&buf) {
            return Some((stage, errno));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        for m in [
            ChildMsg::FsReady,
            ChildMsg::Exec,
            ChildMsg::Error {
                stage: Stage::PivotRoot,
                errno: 22,
            },
            ChildMsg::Error {
                stage: Stage::Exec,
                errno: -1,
            },
        ] {
            assert_eq!(ChildMsg::decode(&m.encode()), Some(m));
        }
        assert_eq!(ChildMsg::decode(&[9, 0, 0, 0, 0, 0]), None);
    }

    #[test]
    fn every_stage_decodes_to_itself() {
        for b in 1..=15u8 {
            assert_eq!(Stage::from_u8(b) as u8, b);
        }
        assert_eq!(Stage::from_u8(200), Stage::Unknown);
    }
}
