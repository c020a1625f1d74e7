//! The seccomp allow-list of Docker's default profile (moby's profiles/seccomp/default.json as
//! of commit 00f3d189e420d485e42d15fe494f96d272284e0e), as x86_64 syscall numbers, compiled to BPF with seccompiler for our own containers and
//! written as the OCI `linux.seccomp` section for runtimes (runc, crun), so both get the same
//! rules from this one table.
//!
//! Docker's file is a superset written for every architecture; only its x86_64 part is kept:
//! names that do not exist on x86_64 (`chown32`, `_llseek`, `socketcall`, the `*_time64`
//! calls, ...) and the rules for other architectures are left out, and the filter accepts the
//! x86_64 ABI only (Docker also lets 32-bit x86 and x32 binaries in; the agent is a 64-bit
//! static binary, so nothing measured depends on that). Rules Docker grants only to a
//! capability are included exactly when the profile keeps that capability, as Docker does.
//!
//! Our own containers get the rules as one BPF program with per-syscall actions (allow; ENOSYS
//! for clone3, which makes glibc fall back to clone(2), whose flags a filter can inspect),
//! compiled by `security::bpf` into a binary search (see there for why not seccompiler's
//! linear chain). Runtimes get the same rules as one filter in their own formats (libseccomp
//! takes per-rule actions). The isolation read-back shows the filter count from
//! /proc/PID/status: one for every backend.

use super::{Cap, Profile, bpf};
use serde_json::{Value, json};

/// A syscall: its libc constant's name (`SYS_accept`) and its x86_64 number. The numbers come
/// from libc and are checked at compile time: a name that does not exist on x86_64 does not
/// build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sys {
    sym: &'static str,
    pub nr: i64,
}

impl Sys {
    /// The syscall's name as seccomp profiles spell it (`accept`).
    pub fn name(&self) -> &'static str {
        self.sym.strip_prefix("SYS_").unwrap_or(self.sym)
    }
}

macro_rules! sys {
    ($($sym:ident),+ $(,)?) => {
        &[$(Sys { sym: stringify!($sym), nr: nr::$sym }),+]
    };
}

/// libc's syscall numbers, plus the few x86_64 ones libc does not name.
mod nr {
    pub use libc::*;
    /// arch/x86/entry/syscalls/syscall_64.tbl; named as libc names the others.
    #[allow(non_upper_case_globals)]
    pub const SYS_io_pgetevents: c_long = 333;
}

/// errno values the profile returns: EPERM for whatever is not allowed (Docker's
/// `defaultErrnoRet`), ENOSYS for clone3.
pub(crate) const EPERM: u32 = libc::EPERM as u32;
pub(crate) const ENOSYS: u32 = libc::ENOSYS as u32;

/// Docker's unconditional allow-list (its first rule), x86_64 names only, plus the rules
/// Docker includes for every amd64 host (`arch_prctl`, `modify_ldt`) and for kernels from 4.8
/// on (`ptrace`, `process_vm_readv`, `process_vm_writev`).
const ALLOWED: &[Sys] = sys!(
    SYS_accept,
    SYS_accept4,
    SYS_access,
    SYS_adjtimex,
    SYS_alarm,
    SYS_bind,
    SYS_brk,
    SYS_capget,
    SYS_capset,
    SYS_chdir,
    SYS_chmod,
    SYS_chown,
    SYS_clock_adjtime,
    SYS_clock_getres,
    SYS_clock_gettime,
    SYS_clock_nanosleep,
    SYS_close,
    SYS_close_range,
    SYS_connect,
    SYS_copy_file_range,
    SYS_creat,
    SYS_dup,
    SYS_dup2,
    SYS_dup3,
    SYS_epoll_create,
    SYS_epoll_create1,
    SYS_epoll_ctl,
    SYS_epoll_ctl_old,
    SYS_epoll_pwait,
    SYS_epoll_pwait2,
    SYS_epoll_wait,
    SYS_epoll_wait_old,
    SYS_eventfd,
    SYS_eventfd2,
    SYS_execve,
    SYS_execveat,
    SYS_exit,
    SYS_exit_group,
    SYS_faccessat,
    SYS_faccessat2,
    SYS_fadvise64,
    SYS_fallocate,
    SYS_fanotify_mark,
    SYS_fchdir,
    SYS_fchmod,
    SYS_fchmodat,
    SYS_fchown,
    SYS_fchownat,
    SYS_fcntl,
    SYS_fdatasync,
    SYS_fgetxattr,
    SYS_flistxattr,
    SYS_flock,
    SYS_fork,
    SYS_fremovexattr,
    SYS_fsetxattr,
    SYS_fstat,
    SYS_fstatfs,
    SYS_fsync,
    SYS_ftruncate,
    SYS_futex,
    SYS_futex_waitv,
    SYS_futimesat,
    SYS_getcpu,
    SYS_getcwd,
    SYS_getdents,
    SYS_getdents64,
    SYS_getegid,
    SYS_geteuid,
    SYS_getgid,
    SYS_getgroups,
    SYS_getitimer,
    SYS_getpeername,
    SYS_getpgid,
    SYS_getpgrp,
    SYS_getpid,
    SYS_getppid,
    SYS_getpriority,
    SYS_getrandom,
    SYS_getresgid,
    SYS_getresuid,
    SYS_getrlimit,
    SYS_get_robust_list,
    SYS_getrusage,
    SYS_getsid,
    SYS_getsockname,
    SYS_getsockopt,
    SYS_get_thread_area,
    SYS_gettid,
    SYS_gettimeofday,
    SYS_getuid,
    SYS_getxattr,
    SYS_inotify_add_watch,
    SYS_inotify_init,
    SYS_inotify_init1,
    SYS_inotify_rm_watch,
    SYS_io_cancel,
    SYS_ioctl,
    SYS_io_destroy,
    SYS_io_getevents,
    SYS_io_pgetevents,
    SYS_ioprio_get,
    SYS_ioprio_set,
    SYS_io_setup,
    SYS_io_submit,
    SYS_io_uring_enter,
    SYS_io_uring_register,
    SYS_io_uring_setup,
    SYS_kill,
    SYS_landlock_add_rule,
    SYS_landlock_create_ruleset,
    SYS_landlock_restrict_self,
    SYS_lchown,
    SYS_lgetxattr,
    SYS_link,
    SYS_linkat,
    SYS_listen,
    SYS_listxattr,
    SYS_llistxattr,
    SYS_lremovexattr,
    SYS_lseek,
    SYS_lsetxattr,
    SYS_lstat,
    SYS_madvise,
    SYS_membarrier,
    SYS_memfd_create,
    SYS_memfd_secret,
    SYS_mincore,
    SYS_mkdir,
    SYS_mkdirat,
    SYS_mknod,
    SYS_mknodat,
    SYS_mlock,
    SYS_mlock2,
    SYS_mlockall,
    SYS_mmap,
    SYS_mprotect,
    SYS_mq_getsetattr,
    SYS_mq_notify,
    SYS_mq_open,
    SYS_mq_timedreceive,
    SYS_mq_timedsend,
    SYS_mq_unlink,
    SYS_mremap,
    SYS_msgctl,
    SYS_msgget,
    SYS_msgrcv,
    SYS_msgsnd,
    SYS_msync,
    SYS_munlock,
    SYS_munlockall,
    SYS_munmap,
    SYS_name_to_handle_at,
    SYS_nanosleep,
    SYS_newfstatat,
    SYS_open,
    SYS_openat,
    SYS_openat2,
    SYS_pause,
    SYS_pidfd_open,
    SYS_pidfd_send_signal,
    SYS_pipe,
    SYS_pipe2,
    SYS_pkey_alloc,
    SYS_pkey_free,
    SYS_pkey_mprotect,
    SYS_poll,
    SYS_ppoll,
    SYS_prctl,
    SYS_pread64,
    SYS_preadv,
    SYS_preadv2,
    SYS_prlimit64,
    SYS_process_mrelease,
    SYS_pselect6,
    SYS_pwrite64,
    SYS_pwritev,
    SYS_pwritev2,
    SYS_read,
    SYS_readahead,
    SYS_readlink,
    SYS_readlinkat,
    SYS_readv,
    SYS_recvfrom,
    SYS_recvmmsg,
    SYS_recvmsg,
    SYS_remap_file_pages,
    SYS_removexattr,
    SYS_rename,
    SYS_renameat,
    SYS_renameat2,
    SYS_restart_syscall,
    SYS_rmdir,
    SYS_rseq,
    SYS_rt_sigaction,
    SYS_rt_sigpending,
    SYS_rt_sigprocmask,
    SYS_rt_sigqueueinfo,
    SYS_rt_sigreturn,
    SYS_rt_sigsuspend,
    SYS_rt_sigtimedwait,
    SYS_rt_tgsigqueueinfo,
    SYS_sched_getaffinity,
    SYS_sched_getattr,
    SYS_sched_getparam,
    SYS_sched_get_priority_max,
    SYS_sched_get_priority_min,
    SYS_sched_getscheduler,
    SYS_sched_rr_get_interval,
    SYS_sched_setaffinity,
    SYS_sched_setattr,
    SYS_sched_setparam,
    SYS_sched_setscheduler,
    SYS_sched_yield,
    SYS_seccomp,
    SYS_select,
    SYS_semctl,
    SYS_semget,
    SYS_semop,
    SYS_semtimedop,
    SYS_sendfile,
    SYS_sendmmsg,
    SYS_sendmsg,
    SYS_sendto,
    SYS_setfsgid,
    SYS_setfsuid,
    SYS_setgid,
    SYS_setgroups,
    SYS_setitimer,
    SYS_setpgid,
    SYS_setpriority,
    SYS_setregid,
    SYS_setresgid,
    SYS_setresuid,
    SYS_setreuid,
    SYS_setrlimit,
    SYS_set_robust_list,
    SYS_setsid,
    SYS_setsockopt,
    SYS_set_thread_area,
    SYS_set_tid_address,
    SYS_setuid,
    SYS_setxattr,
    SYS_shmat,
    SYS_shmctl,
    SYS_shmdt,
    SYS_shmget,
    SYS_shutdown,
    SYS_sigaltstack,
    SYS_signalfd,
    SYS_signalfd4,
    SYS_socketpair,
    SYS_splice,
    SYS_stat,
    SYS_statfs,
    SYS_statx,
    SYS_symlink,
    SYS_symlinkat,
    SYS_sync,
    SYS_sync_file_range,
    SYS_syncfs,
    SYS_sysinfo,
    SYS_tee,
    SYS_tgkill,
    SYS_time,
    SYS_timer_create,
    SYS_timer_delete,
    SYS_timer_getoverrun,
    SYS_timer_gettime,
    SYS_timer_settime,
    SYS_timerfd_create,
    SYS_timerfd_gettime,
    SYS_timerfd_settime,
    SYS_times,
    SYS_tkill,
    SYS_truncate,
    SYS_umask,
    SYS_uname,
    SYS_unlink,
    SYS_unlinkat,
    SYS_utime,
    SYS_utimensat,
    SYS_utimes,
    SYS_vfork,
    SYS_vmsplice,
    SYS_wait4,
    SYS_waitid,
    SYS_write,
    SYS_writev,
    // includes: arches amd64 (and x32, x86 for modify_ldt)
    SYS_arch_prctl,
    SYS_modify_ldt,
    // includes: minKernel 4.8
    SYS_process_vm_readv,
    SYS_process_vm_writev,
    SYS_ptrace,
);

/// Docker's capability-gated rules: each group is allowed only when the profile keeps the
/// capability.
const BY_CAPABILITY: &[(Cap, &[Sys])] = &[
    (Cap::DAC_READ_SEARCH, sys!(SYS_open_by_handle_at)),
    (
        Cap::SYS_ADMIN,
        sys!(
            SYS_bpf,
            SYS_clone,
            SYS_clone3,
            SYS_fanotify_init,
            SYS_fsconfig,
            SYS_fsmount,
            SYS_fsopen,
            SYS_fspick,
            SYS_lookup_dcookie,
            SYS_mount,
            SYS_mount_setattr,
            SYS_move_mount,
            SYS_open_tree,
            SYS_perf_event_open,
            SYS_quotactl,
            SYS_quotactl_fd,
            SYS_setdomainname,
            SYS_sethostname,
            SYS_setns,
            SYS_syslog,
            SYS_umount2,
            SYS_unshare,
        ),
    ),
    (Cap::SYS_BOOT, sys!(SYS_reboot)),
    (Cap::SYS_CHROOT, sys!(SYS_chroot)),
    (
        Cap::SYS_MODULE,
        sys!(SYS_delete_module, SYS_init_module, SYS_finit_module),
    ),
    (Cap::SYS_PACCT, sys!(SYS_acct)),
    (
        Cap::SYS_PTRACE,
        sys!(
            SYS_kcmp,
            SYS_pidfd_getfd,
            SYS_process_madvise,
            SYS_process_vm_readv,
            SYS_process_vm_writev,
            SYS_ptrace,
        ),
    ),
    (Cap::SYS_RAWIO, sys!(SYS_iopl, SYS_ioperm)),
    (Cap::SYS_TIME, sys!(SYS_settimeofday, SYS_clock_settime)),
    (Cap::SYS_TTY_CONFIG, sys!(SYS_vhangup)),
    (
        Cap::SYS_NICE,
        sys!(
            SYS_get_mempolicy,
            SYS_mbind,
            SYS_set_mempolicy,
            SYS_set_mempolicy_home_node
        ),
    ),
    (Cap::SYSLOG, sys!(SYS_syslog)),
    (Cap::BPF, sys!(SYS_bpf)),
    (Cap::PERFMON, sys!(SYS_perf_event_open)),
];

/// clone(2) flags that create namespaces (CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER
/// | NEWPID | NEWNET): without CAP_SYS_ADMIN, clone is allowed only with none of them set.
const CLONE_NAMESPACE_FLAGS: u64 = 0x7E02_0000;
/// AF_VSOCK: Docker denies sockets of this family.
const AF_VSOCK: u64 = 40;
/// personality(2) values Docker allows: PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32,
/// and 0xffffffff (the query).
const PERSONALITIES: &[u64] = &[0x0, 0x8, 0x20000, 0x20008, 0xffff_ffff];

/// One argument test of a rule: `(arg[index] & mask) == value` or `arg[index] != value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArgTest {
    Eq { index: u8, value: u64 },
    Ne { index: u8, value: u64 },
    MaskedEq { index: u8, mask: u64, value: u64 },
}

/// What a matching rule does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Allow,
    Errno(u32),
}

/// One rule: the syscall, the action, and the argument tests that must all hold (none: the
/// rule matches every call). Several rules for one syscall are alternatives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub sys: Sys,
    pub action: Action,
    pub args: Vec<ArgTest>,
}

/// The rules of `profile`, or `None` when it has no seccomp filter. Everything not matched
/// returns EPERM.
pub fn rules(profile: Profile) -> Option<Vec<Rule>> {
    if !profile.confines() {
        return None;
    }
    let allow = |sys: Sys, args: Vec<ArgTest>| Rule {
        sys,
        action: Action::Allow,
        args,
    };
    let mut out: Vec<Rule> = ALLOWED.iter().map(|&s| allow(s, vec![])).collect();
    let socket = sys!(SYS_socket)[0];
    out.push(allow(
        socket,
        vec![ArgTest::Ne {
            index: 0,
            value: AF_VSOCK,
        }],
    ));
    let personality = sys!(SYS_personality)[0];
    for &value in PERSONALITIES {
        out.push(allow(personality, vec![ArgTest::Eq { index: 0, value }]));
    }
    for (cap, group) in BY_CAPABILITY {
        if profile.keeps(*cap) {
            out.extend(group.iter().map(|&s| allow(s, vec![])));
        }
    }
    if !profile.keeps(Cap::SYS_ADMIN) {
        out.push(allow(
            sys!(SYS_clone)[0],
            vec![ArgTest::MaskedEq {
                index: 0,
                mask: CLONE_NAMESPACE_FLAGS,
                value: 0,
            }],
        ));
        out.push(Rule {
            sys: sys!(SYS_clone3)[0],
            action: Action::Errno(ENOSYS),
            args: vec![],
        });
    }
    Some(out)
}

#[derive(Debug, thiserror::Error)]
#[error("compiling the seccomp filter of profile {profile}: {source}")]
pub struct SeccompError {
    pub profile: Profile,
    pub source: bpf::TooLong,
}

/// The BPF program for our own containers (one filter; everything the rules do not allow
/// returns EPERM), or `None` for a profile without seccomp.
pub fn compile(profile: Profile) -> Result<Option<Vec<bpf::Insn>>, SeccompError> {
    let Some(rules) = rules(profile) else {
        return Ok(None);
    };
    bpf::compile(&rules, Action::Errno(EPERM))
        .map(Some)
        .map_err(|source| SeccompError { profile, source })
}

/// Every syscall the table names, once (for tests that make rule sets of their own).
#[cfg(test)]
pub fn all_syscalls() -> Vec<Sys> {
    let mut v: Vec<Sys> = ALLOWED.to_vec();
    v.extend(BY_CAPABILITY.iter().flat_map(|(_, g)| g.iter().copied()));
    v.extend(
        sys!(SYS_socket, SYS_personality, SYS_clone, SYS_clone3)
            .iter()
            .copied(),
    );
    v.sort_by_key(|s| s.nr);
    v.dedup();
    v
}

/// The OCI runtime-spec `linux.seccomp` section for `profile`, or `None` without seccomp.
pub fn oci(profile: Profile) -> Option<Value> {
    let rules = rules(profile)?;
    let mut syscalls: Vec<Value> = Vec::new();
    // Unconditional allows as one entry, as Docker's file has them; every conditional rule
    // and every other action as an entry of its own.
    let plain: Vec<&str> = rules
        .iter()
        .filter(|r| r.action == Action::Allow && r.args.is_empty())
        .map(|r| r.sys.name())
        .collect();
    syscalls.push(json!({ "names": plain, "action": "SCMP_ACT_ALLOW" }));
    for r in rules
        .iter()
        .filter(|r| r.action != Action::Allow || !r.args.is_empty())
    {
        let mut entry = match r.action {
            Action::Allow => json!({ "names": [r.sys.name()], "action": "SCMP_ACT_ALLOW" }),
            Action::Errno(e) => {
                json!({ "names": [r.sys.name()], "action": "SCMP_ACT_ERRNO", "errnoRet": e })
            }
        };
        if !r.args.is_empty() {
            entry["args"] = r
                .args
                .iter()
                .map(|a| match *a {
                    ArgTest::Eq { index, value } => {
                        json!({ "index": index, "value": value, "op": "SCMP_CMP_EQ" })
                    }
                    ArgTest::Ne { index, value } => {
                        json!({ "index": index, "value": value, "op": "SCMP_CMP_NE" })
                    }
                    // In the OCI spec, MASKED_EQ's `value` is the mask and `valueTwo` the datum.
                    ArgTest::MaskedEq { index, mask, value } => json!({
                        "index": index, "value": mask, "valueTwo": value, "op": "SCMP_CMP_MASKED_EQ"
                    }),
                })
                .collect();
        }
        syscalls.push(entry);
    }
    Some(json!({
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": EPERM,
        "architectures": ["SCMP_ARCH_X86_64"],
        "syscalls": syscalls,
    }))
}

/// The same rules as LXC's seccomp policy file (version 2, lxc.container.conf(5)), for the
/// `lxc` backend: an allow-list whose default is EPERM, one line per rule, `name action
/// [index,value,op,mask]...`. What differs from the OCI section: LXC also applies the rules to
/// the i386 and x32 ABIs (it builds a context per ABI of an amd64 host; names those ABIs lack
/// are skipped), which Docker's x86_64 rules here leave out; MASKED_EQ is written
/// `[index,value,SCMP_CMP_MASKED_EQ,mask]` (LXC hands libseccomp the mask first).
pub fn lxc(profile: Profile) -> Option<String> {
    let rules = rules(profile)?;
    let mut out = format!("2\nallowlist errno {EPERM}\n");
    for r in &rules {
        out.push_str(r.sys.name());
        match r.action {
            Action::Allow => out.push_str(" allow"),
            Action::Errno(e) => out.push_str(&format!(" errno {e}")),
        }
        for a in &r.args {
            out.push_str(&match *a {
                ArgTest::Eq { index, value } => format!(" [{index},{value},SCMP_CMP_EQ]"),
                ArgTest::Ne { index, value } => format!(" [{index},{value},SCMP_CMP_NE]"),
                ArgTest::MaskedEq { index, mask, value } => {
                    format!(" [{index},{value},SCMP_CMP_MASKED_EQ,{mask}]")
                }
            });
        }
        out.push('\n');
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lxc_policy_has_every_rule_with_its_action_and_arguments() {
        assert!(lxc(Profile::None).is_none());
        let text = lxc(Profile::Docker).unwrap();
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("2"));
        assert_eq!(lines.next(), Some("allowlist errno 1"));
        let body: Vec<&str> = lines.collect();
        assert_eq!(body.len(), rules(Profile::Docker).unwrap().len());
        assert!(body.contains(&"read allow"));
        assert!(body.contains(&"clone3 errno 38"));
        let clone = format!("clone allow [0,0,SCMP_CMP_MASKED_EQ,{CLONE_NAMESPACE_FLAGS}]");
        assert!(body.contains(&clone.as_str()), "{clone}");
        assert!(body.iter().any(|l| l.starts_with("personality allow [0,")));
        assert!(!body.iter().any(|l| l.starts_with("mount ")));
    }

    fn allowed(profile: Profile, name: &str) -> bool {
        rules(profile)
            .unwrap()
            .iter()
            .any(|r| r.sys.name() == name && r.action == Action::Allow && r.args.is_empty())
    }

    #[test]
    fn mount_and_unshare_need_cap_sys_admin_which_no_confining_profile_keeps() {
        for p in [Profile::Docker, Profile::Runc] {
            for name in ["mount", "umount2", "unshare", "setns", "bpf", "reboot"] {
                assert!(!allowed(p, name), "{p}: {name}");
            }
            assert!(allowed(p, "read") && allowed(p, "execve") && allowed(p, "close_range"));
        }
        assert!(rules(Profile::None).is_none());
        assert!(compile(Profile::None).unwrap().is_none());
    }

    #[test]
    fn capability_gated_rules_follow_the_profile() {
        // Docker keeps CAP_SYS_CHROOT; runc spec's three capabilities do not include it.
        assert!(allowed(Profile::Docker, "chroot"));
        assert!(!allowed(Profile::Runc, "chroot"));
    }

    #[test]
    fn clone_is_conditional_and_clone3_says_enosys() {
        let r = rules(Profile::Docker).unwrap();
        let clone: Vec<&Rule> = r.iter().filter(|r| r.sys.name() == "clone").collect();
        assert_eq!(clone.len(), 1);
        assert_eq!(
            clone[0].args,
            [ArgTest::MaskedEq {
                index: 0,
                mask: CLONE_NAMESPACE_FLAGS,
                value: 0
            }]
        );
        assert!(
            r.iter()
                .any(|r| r.sys.name() == "clone3" && r.action == Action::Errno(ENOSYS))
        );
        // The namespace flags are exactly the seven CLONE_NEW* bits.
        let ns = (libc::CLONE_NEWNS
            | libc::CLONE_NEWCGROUP
            | libc::CLONE_NEWUTS
            | libc::CLONE_NEWIPC
            | libc::CLONE_NEWUSER
            | libc::CLONE_NEWPID
            | libc::CLONE_NEWNET) as u64;
        assert_eq!(ns, CLONE_NAMESPACE_FLAGS);
    }

    #[test]
    fn compiles_to_one_program_within_the_kernel_limit() {
        assert!(compile(Profile::None).unwrap().is_none());
        let prog = compile(Profile::Docker).unwrap().unwrap();
        assert!(!prog.is_empty() && prog.len() <= bpf::MAX_INSNS);
    }

    #[test]
    fn the_oci_section_names_every_rule_once() {
        let v = oci(Profile::Runc).unwrap();
        assert_eq!(v["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(v["defaultErrnoRet"], 1);
        let all: Vec<&str> = v["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|e| e["names"].as_array().unwrap().iter())
            .map(|n| n.as_str().unwrap())
            .collect();
        assert!(all.contains(&"read") && all.contains(&"socket") && all.contains(&"clone3"));
        assert!(!all.contains(&"mount") && !all.contains(&"chroot"));
        let clone3 = v["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["names"][0] == "clone3")
            .unwrap();
        assert_eq!(clone3["errnoRet"], 38);
    }
}
