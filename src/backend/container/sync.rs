//! The typed protocol on the sync pipes between the harness and a container's first process
//! before it execs the agent (youki's habit: messages, not bare bytes).
//!
//! child -> parent, one message: `Exec` just before execve, carrying the child's own
//! CLOCK_MONOTONIC stamps of its phases, or `Error` with the stage and errno that failed.
//! Nothing goes the other way: the child joins its cgroup itself (CLONE_INTO_CGROUP, or a
//! write to v1 `tasks` descriptors opened before the clone), so the parent never has to
//! wake it, and one message means one wake-up of the parent per launch.

use std::os::fd::BorrowedFd;

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
    CgroupJoin,
    CgroupNs,
    NoNewPrivs,
    Caps,
    Fds,
    Exec,
    Seccomp,
    SignalMask,
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
            CgroupJoin,
            CgroupNs,
            NoNewPrivs,
            Caps,
            Fds,
            Exec,
            Seccomp,
            SignalMask,
        ]
        .into_iter()
        .find(|s| *s as u8 == b)
        .unwrap_or(Unknown)
    }

    pub fn describe(&self) -> &'static str {
        match self {
            Stage::Setsid => "setsid/parent-death signal",
            Stage::Propagation => "entering a private mount namespace",
            Stage::Overlay => "mounting the overlay root",
            Stage::Proc => "mounting /proc",
            Stage::Dev => "creating /dev",
            Stage::Mask => "masking /proc paths",
            Stage::Readonly => "making /proc paths read-only",
            Stage::Hostname => "setting the hostname",
            Stage::PivotRoot => "pivot_root",
            Stage::CgroupJoin => "joining the instance's cgroup",
            Stage::CgroupNs => "entering a new cgroup namespace",
            Stage::NoNewPrivs => "setting no_new_privs",
            Stage::Caps => "dropping capabilities",
            Stage::Fds => "setting up file descriptors",
            Stage::Exec => "exec of the agent",
            Stage::Seccomp => "installing the seccomp filter",
            Stage::SignalMask => "restoring the signal mask",
            Stage::Unknown => "an unknown stage",
        }
    }
}

/// The child's phases, each its CLOCK_MONOTONIC in ns when the phase ended (0: not reached).
/// The harness's clock is the same one (Rust's `Instant` reads CLOCK_MONOTONIC on Linux), so
/// each stamp minus the harness's start is the phase's end on the launch's time line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stamps {
    /// The child's first instruction: clone returned in it, its namespaces exist.
    pub started: u64,
    /// The child sits in its cgroup (every hierarchy).
    pub cgroup: u64,
    /// Overlay root, /proc, /dev, masks and read-only paths mounted.
    pub rootfs: u64,
    /// pivot_root into the overlay done, the old root detached.
    pub pivot: u64,
    /// Just before execve of the agent (capabilities dropped, seccomp installed).
    pub exec: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildMsg {
    Exec(Stamps),
    Error { stage: Stage, errno: i32 },
}

/// tag, stage, errno (4 bytes), two bytes of padding, five stamps of 8 bytes: well under
/// PIPE_BUF, so a write is atomic and a message never arrives in pieces.
pub const MSG_LEN: usize = 48;

impl ChildMsg {
    pub fn encode(&self) -> [u8; MSG_LEN] {
        let mut b = [0u8; MSG_LEN];
        match *self {
            ChildMsg::Exec(st) => {
                b[0] = 2;
                for (i, v) in [st.started, st.cgroup, st.rootfs, st.pivot, st.exec]
                    .into_iter()
                    .enumerate()
                {
                    b[8 + 8 * i..16 + 8 * i].copy_from_slice(&v.to_le_bytes());
                }
            }
            ChildMsg::Error { stage, errno } => {
                b[0] = 3;
                b[1] = stage as u8;
                b[2..6].copy_from_slice(&errno.to_le_bytes());
            }
        }
        b
    }

    pub fn decode(b: &[u8; MSG_LEN]) -> Option<ChildMsg> {
        let stamp = |i: usize| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[8 + 8 * i..16 + 8 * i]);
            u64::from_le_bytes(w)
        };
        match b[0] {
            2 => Some(ChildMsg::Exec(Stamps {
                started: stamp(0),
                cgroup: stamp(1),
                rootfs: stamp(2),
                pivot: stamp(3),
                exec: stamp(4),
            })),
            3 => Some(ChildMsg::Error {
                stage: Stage::from_u8(b[1]),
                errno: i32::from_le_bytes([b[2], b[3], b[4], b[5]]),
            }),
            _ => None,
        }
    }
}

/// What the child left on the pipe by the time its agent said `ready` (or died): its stamps
/// and, after a failed exec, the error, read without blocking.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Left {
    pub stamps: Option<Stamps>,
    pub error: Option<(Stage, i32)>,
}

/// Reads, without blocking, every message the child left on the pipe.
pub fn drain(fd: BorrowedFd<'_>) -> Left {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let mut left = Left::default();
    if fcntl(fd, FcntlArg::F_SETFL(OFlag::O_NONBLOCK)).is_err() {
        return left;
    }
    let mut buf = [0u8; MSG_LEN];
    while let Ok(MSG_LEN) = nix::unistd::read(fd, &mut buf) {
        match ChildMsg::decode(&buf) {
            Some(ChildMsg::Exec(st)) => left.stamps = Some(st),
            Some(ChildMsg::Error { stage, errno }) => left.error = Some((stage, errno)),
            None => {}
        }
    }
    left
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_round_trip() {
        for m in [
            ChildMsg::Exec(Stamps {
                started: 1,
                cgroup: 2,
                rootfs: 3,
                pivot: u64::MAX,
                exec: 5,
            }),
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
        assert_eq!(ChildMsg::decode(&[9; MSG_LEN]), None);
    }

    #[test]
    fn every_stage_decodes_to_itself() {
        for b in 1..=15u8 {
            assert_eq!(Stage::from_u8(b) as u8, b);
        }
        assert_eq!(Stage::from_u8(200), Stage::Unknown);
    }
}
