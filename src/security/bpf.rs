//! The seccomp program of our own containers: one classic-BPF filter that finds a syscall's
//! verdict by binary search over ranges of syscall numbers.
//!
//! Why by hand and not seccompiler's output (seccompiler is kept as the oracle in the tests):
//! seccompiler emits one linear chain of comparisons, 1525 instructions for Docker's list, and
//! one program per action (allow; ENOSYS for clone3), so two filters. Installing that chain
//! cost 0.84 ms p50 per container on this host, half of a container's whole start-up: when a
//! filter is installed the kernel emulates it once for every syscall number to fill its
//! per-syscall action cache (seccomp_cache_prepare), so the cost is syscalls x chain length.
//! A search tree over ranges of equal verdict is about 250 instructions, ten deep, one filter
//! with per-syscall actions (as libseccomp's binary-tree optimisation gives runtimes, which
//! this static binary does not link), and installs in tens of microseconds. Every system call
//! the agent makes is also judged in ten steps rather than a walk down the chain.
//!
//! Semantics are those of the rules table (`seccomp::rules`), as the two seccompiler filters
//! had them: a syscall's Errno rules are tried first (the kernel keeps the most restrictive
//! result of several filters, so an Errno filter beat the allow-list), then its Allow rules,
//! then the default, EPERM. A rule's argument tests must all hold; a rule without tests
//! matches every call. Another architecture than x86_64 kills the process; x32 calls (numbers
//! with bit 30 set) fall past every rule to the default.

use super::seccomp::{Action, ArgTest, Rule};
use std::collections::BTreeMap;

/// One classic-BPF instruction, laid out as the kernel's `struct sock_filter`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    pub code: u16,
    pub jt: u8,
    pub jf: u8,
    pub k: u32,
}

// Opcodes (linux/filter.h, linux/bpf_common.h).
/// BPF_LD | BPF_W | BPF_ABS: load a 32-bit word of `seccomp_data`.
pub const LD_W_ABS: u16 = 0x20;
/// BPF_ALU | BPF_AND | BPF_K.
pub const ALU_AND_K: u16 = 0x54;
/// BPF_JMP | BPF_JA: jump forward by k.
pub const JMP_JA: u16 = 0x05;
/// BPF_JMP | BPF_JEQ | BPF_K.
pub const JMP_JEQ_K: u16 = 0x15;
/// BPF_JMP | BPF_JGE | BPF_K.
pub const JMP_JGE_K: u16 = 0x35;
/// BPF_RET | BPF_K.
pub const RET_K: u16 = 0x06;

// seccomp return values (linux/seccomp.h).
pub const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub const RET_ERRNO: u32 = 0x0005_0000;
pub const RET_ALLOW: u32 = 0x7fff_0000;
/// AUDIT_ARCH_X86_64: EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE.
pub const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
/// The kernel's limit on a filter's length (BPF_MAXINSNS).
pub const MAX_INSNS: usize = 4096;

// Offsets in `struct seccomp_data`: nr, arch, instruction_pointer, args[6] (little endian).
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
fn off_arg_lo(index: u8) -> u32 {
    16 + 8 * u32::from(index)
}

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> Insn {
    Insn { code, jt, jf, k }
}

/// The seccomp return value of an action.
pub fn ret_value(a: Action) -> u32 {
    match a {
        Action::Allow => RET_ALLOW,
        Action::Errno(e) => RET_ERRNO | (e & 0xffff),
    }
}

#[derive(Debug, thiserror::Error)]
#[error("the seccomp program has {0} instructions, more than the kernel's {MAX_INSNS}")]
pub struct TooLong(pub usize);

/// What a range of syscall numbers gets.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Leaf {
    /// The same return value for every number of the range.
    Ret(u32),
    /// One syscall whose rules test its arguments (Errno rules first, then Allow).
    Rules(Vec<Rule>),
}

/// Compiles `rules` into one program; calls no rule matches get `default` (an action).
pub fn compile(rules: &[Rule], default: Action) -> Result<Vec<Insn>, TooLong> {
    let default_ret = ret_value(default);
    let mut by_nr: BTreeMap<u32, Vec<Rule>> = BTreeMap::new();
    for r in rules {
        by_nr.entry(r.sys.nr as u32).or_default().push(r.clone());
    }
    // Contiguous ranges covering every u32: (first number, leaf).
    let mut ranges: Vec<(u32, Leaf)> = Vec::new();
    // A range whose leaf returns what the previous one returns extends it.
    let push = |ranges: &mut Vec<(u32, Leaf)>, start: u32, leaf: Leaf| {
        if let Some((_, prev @ Leaf::Ret(_))) = ranges.last()
            && *prev == leaf
        {
            return;
        }
        ranges.push((start, leaf));
    };
    let mut next = 0u32;
    for (&nr, rs) in &by_nr {
        if nr > next {
            push(&mut ranges, next, Leaf::Ret(default_ret));
        }
        push(&mut ranges, nr, leaf_of(rs));
        next = nr + 1;
    }
    // Past the highest number (x32's bit 30 included); nothing wraps: numbers are far below
    // u32::MAX.
    push(&mut ranges, next, Leaf::Ret(default_ret));

    let mut prog = vec![
        insn(LD_W_ABS, 0, 0, OFF_ARCH),
        insn(JMP_JEQ_K, 1, 0, AUDIT_ARCH_X86_64),
        insn(RET_K, 0, 0, RET_KILL_PROCESS),
        insn(LD_W_ABS, 0, 0, OFF_NR),
    ];
    prog.extend(tree(&ranges, default_ret));
    if prog.len() > MAX_INSNS {
        return Err(TooLong(prog.len()));
    }
    Ok(prog)
}

/// A syscall's leaf: its Errno rules first (they won over the allow-list), then its Allow
/// rules; a rule without argument tests ends the list, since it always matches.
fn leaf_of(rules: &[Rule]) -> Leaf {
    let mut ordered: Vec<Rule> = rules
        .iter()
        .filter(|r| r.action != Action::Allow)
        .chain(rules.iter().filter(|r| r.action == Action::Allow))
        .cloned()
        .collect();
    if let Some(i) = ordered.iter().position(|r| r.args.is_empty()) {
        ordered.truncate(i + 1);
    }
    match ordered.as_slice() {
        [only] if only.args.is_empty() => Leaf::Ret(ret_value(only.action)),
        _ => Leaf::Rules(ordered),
    }
}

/// The search tree over `ranges` (sorted, contiguous). The accumulator holds the syscall
/// number on entry; every path ends in a return.
fn tree(ranges: &[(u32, Leaf)], default_ret: u32) -> Vec<Insn> {
    if let [(_, leaf)] = ranges {
        return match leaf {
            Leaf::Ret(v) => vec![insn(RET_K, 0, 0, *v)],
            Leaf::Rules(rules) => rules_block(rules, default_ret),
        };
    }
    let mid = ranges.len() / 2;
    let low = tree(&ranges[..mid], default_ret);
    let high = tree(&ranges[mid..], default_ret);
    let bound = ranges[mid].0;
    let mut out = Vec::with_capacity(low.len() + high.len() + 2);
    match u8::try_from(low.len()) {
        // nr >= bound: jump over the low half.
        Ok(skip) => out.push(insn(JMP_JGE_K, skip, 0, bound)),
        // Conditional jumps reach 255 instructions; a long one goes through `ja`.
        Err(_) => {
            out.push(insn(JMP_JGE_K, 0, 1, bound));
            out.push(insn(JMP_JA, 0, 0, low.len() as u32));
        }
    }
    out.extend(low);
    out.extend(high);
    out
}

/// One syscall's rules in order: each rule's tests fall through while they hold and jump to
/// the next rule when one fails; the last instruction returns the default.
fn rules_block(rules: &[Rule], default_ret: u32) -> Vec<Insn> {
    let mut out = Vec::new();
    for r in rules {
        // (instruction, whether its jt rather than its jf leaves the rule)
        let mut block: Vec<(Insn, Option<bool>)> = Vec::new();
        for t in &r.args {
            match *t {
                // Ints (personality's persona, socket's family): the low 32 bits, as the
                // kernel reads them and as seccompiler's Dword compares them.
                ArgTest::Eq { index, value } => {
                    block.push((insn(LD_W_ABS, 0, 0, off_arg_lo(index)), None));
                    block.push((insn(JMP_JEQ_K, 0, 0, value as u32), Some(false)));
                }
                ArgTest::Ne { index, value } => {
                    block.push((insn(LD_W_ABS, 0, 0, off_arg_lo(index)), None));
                    block.push((insn(JMP_JEQ_K, 0, 0, value as u32), Some(true)));
                }
                // All 64 bits: low word, then high word (skipped when it cannot fail).
                ArgTest::MaskedEq { index, mask, value } => {
                    for (off, m, v) in [
                        (off_arg_lo(index), mask as u32, value as u32),
                        (
                            off_arg_lo(index) + 4,
                            (mask >> 32) as u32,
                            (value >> 32) as u32,
                        ),
                    ] {
                        if m == 0 && v == 0 {
                            continue;
                        }
                        block.push((insn(LD_W_ABS, 0, 0, off), None));
                        if m != u32::MAX {
                            block.push((insn(ALU_AND_K, 0, 0, m), None));
                        }
                        block.push((insn(JMP_JEQ_K, 0, 0, v), Some(false)));
                    }
                }
            }
        }
        block.push((insn(RET_K, 0, 0, ret_value(r.action)), None));
        let end = block.len();
        for (i, (ins, leaves_on)) in block.iter_mut().enumerate() {
            if let Some(on_true) = leaves_on {
                // A rule's tests are a handful of instructions: always within a short jump.
                let skip = (end - i - 1) as u8;
                if *on_true {
                    ins.jt = skip;
                } else {
                    ins.jf = skip;
                }
            }
        }
        out.extend(block.into_iter().map(|(i, _)| i));
        // The accumulator may now hold an argument: the next rule reloads what it tests.
    }
    out.push(insn(RET_K, 0, 0, default_ret));
    out
}

/// Runs `prog` on one `seccomp_data` as the kernel would, for the tests (here and of the
/// callers): only the instructions [`compile`] and seccompiler emit are known.
#[cfg(test)]
pub fn run(prog: &[Insn], nr: u32, arch: u32, args: [u64; 6]) -> u32 {
    let word = |off: u32| -> u32 {
        match off {
            0 => nr,
            4 => arch,
            o if (16..64).contains(&o) => {
                let a = args[((o - 16) / 8) as usize];
                if (o - 16) % 8 == 0 {
                    a as u32
                } else {
                    (a >> 32) as u32
                }
            }
            o => panic!("load at offset {o}"),
        }
    };
    let (mut pc, mut acc) = (0usize, 0u32);
    loop {
        let i = prog[pc];
        pc += 1;
        match i.code {
            LD_W_ABS => acc = word(i.k),
            ALU_AND_K => acc &= i.k,
            JMP_JA => pc += i.k as usize,
            RET_K => return i.k,
            code => {
                let taken = match code {
                    JMP_JEQ_K => acc == i.k,
                    JMP_JGE_K => acc >= i.k,
                    0x25 => acc > i.k,      // BPF_JGT
                    0x45 => acc & i.k != 0, // BPF_JSET
                    c => panic!("opcode {c:#x} at {}", pc - 1),
                };
                pc += usize::from(if taken { i.jt } else { i.jf });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::Profile;
    use crate::security::seccomp::{ENOSYS, EPERM, rules};
    use proptest::prelude::*;

    /// What the rules say for one call, read straight off the table.
    fn expected(rules: &[Rule], nr: u32, args: [u64; 6]) -> u32 {
        let holds = |t: &ArgTest| match *t {
            ArgTest::Eq { index, value } => args[index as usize] as u32 == value as u32,
            ArgTest::Ne { index, value } => args[index as usize] as u32 != value as u32,
            ArgTest::MaskedEq { index, mask, value } => args[index as usize] & mask == value,
        };
        let mine: Vec<&Rule> = rules.iter().filter(|r| r.sys.nr as u32 == nr).collect();
        for errno_first in [true, false] {
            for r in mine
                .iter()
                .filter(|r| (r.action != Action::Allow) == errno_first)
            {
                if r.args.iter().all(holds) {
                    return ret_value(r.action);
                }
            }
        }
        RET_ERRNO | EPERM
    }

    /// The two programs seccompiler made of the same rules (allow-list, then one per Errno
    /// action), combined as the kernel combines filters: the most restrictive action wins,
    /// and among Errno results the filter installed last.
    fn seccompiler_verdict(rules: &[Rule], nr: u32, args: [u64; 6]) -> u32 {
        use seccompiler::{
            BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition,
            SeccompFilter, SeccompRule, TargetArch,
        };
        let cond = |a: &ArgTest| {
            match *a {
                ArgTest::Eq { index, value } => {
                    SeccompCondition::new(index, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, value)
                }
                ArgTest::Ne { index, value } => {
                    SeccompCondition::new(index, SeccompCmpArgLen::Dword, SeccompCmpOp::Ne, value)
                }
                ArgTest::MaskedEq { index, mask, value } => SeccompCondition::new(
                    index,
                    SeccompCmpArgLen::Qword,
                    SeccompCmpOp::MaskedEq(mask),
                    value,
                ),
            }
            .unwrap()
        };
        let mut actions = vec![Action::Allow];
        for r in rules {
            if !actions.contains(&r.action) {
                actions.push(r.action);
            }
        }
        let mut verdict = RET_ALLOW;
        for action in actions {
            let mut map: BTreeMap<i64, Vec<SeccompRule>> = BTreeMap::new();
            let mut plain = Vec::new();
            for r in rules.iter().filter(|r| r.action == action) {
                if r.args.is_empty() {
                    plain.push(r.sys.nr);
                } else {
                    map.entry(r.sys.nr)
                        .or_default()
                        .push(SeccompRule::new(r.args.iter().map(cond).collect()).unwrap());
                }
            }
            for nr in plain {
                map.insert(nr, Vec::new());
            }
            let (mismatch, on_match) = match action {
                Action::Allow => (SeccompAction::Errno(EPERM), SeccompAction::Allow),
                Action::Errno(e) => (SeccompAction::Allow, SeccompAction::Errno(e)),
            };
            let f = SeccompFilter::new(map, mismatch, on_match, TargetArch::x86_64).unwrap();
            let p: BpfProgram = f.try_into().unwrap();
            let p: Vec<Insn> = p.iter().map(|i| insn(i.code, i.jt, i.jf, i.k)).collect();
            let v = run(&p, nr, AUDIT_ARCH_X86_64, args);
            // The kernel keeps the lowest action (as a signed value: KILL is the lowest), and
            // of equal ones the filter installed last's.
            if ((v & 0xffff_0000) as i32) <= ((verdict & 0xffff_0000) as i32) {
                verdict = v;
            }
        }
        verdict
    }

    fn profiles() -> Vec<Vec<Rule>> {
        [Profile::Docker, Profile::Runc]
            .iter()
            .map(|p| rules(*p).unwrap())
            .collect()
    }

    /// Argument values that hit every test of the table: its values, their neighbours,
    /// masked bits, high words.
    fn interesting_args(rules: &[Rule]) -> Vec<u64> {
        let mut v = vec![0, 1, u64::MAX, 1 << 32, 0xffff_ffff];
        for r in rules {
            for t in &r.args {
                let (x, m) = match *t {
                    ArgTest::Eq { value, .. } | ArgTest::Ne { value, .. } => (value, 0),
                    ArgTest::MaskedEq { mask, value, .. } => (value, mask),
                };
                v.extend([x, x ^ 1, x | (1 << 40), x | m, m & m.wrapping_neg()]);
            }
        }
        v.sort();
        v.dedup();
        v
    }

    #[test]
    fn one_short_program_within_the_kernel_limit() {
        for r in profiles() {
            let p = compile(&r, Action::Errno(EPERM)).unwrap();
            assert!(p.len() < 400, "{} instructions", p.len());
        }
    }

    #[test]
    fn every_syscall_number_gets_the_verdict_of_the_table_and_of_seccompiler() {
        for r in profiles() {
            let p = compile(&r, Action::Errno(EPERM)).unwrap();
            let args = interesting_args(&r);
            for nr in (0..600).chain([0x4000_0000, 0x4000_0001, u32::MAX]) {
                for &a in &args {
                    let a6 = [a; 6];
                    let want = expected(&r, nr, a6);
                    assert_eq!(
                        run(&p, nr, AUDIT_ARCH_X86_64, a6),
                        want,
                        "nr {nr} arg {a:#x}"
                    );
                    assert_eq!(
                        seccompiler_verdict(&r, nr, a6),
                        want,
                        "seccompiler, nr {nr}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_rules_that_matter_come_out_as_docker_means_them() {
        let r = rules(Profile::Docker).unwrap();
        let p = compile(&r, Action::Errno(EPERM)).unwrap();
        let call = |nr: i64, a0: u64| run(&p, nr as u32, AUDIT_ARCH_X86_64, [a0, 0, 0, 0, 0, 0]);
        assert_eq!(call(libc::SYS_getppid, 0), RET_ALLOW);
        assert_eq!(call(libc::SYS_mount, 0), RET_ERRNO | EPERM);
        assert_eq!(call(libc::SYS_clone3, 0), RET_ERRNO | ENOSYS);
        assert_eq!(call(libc::SYS_clone, libc::SIGCHLD as u64), RET_ALLOW);
        assert_eq!(
            call(libc::SYS_clone, libc::CLONE_NEWUSER as u64),
            RET_ERRNO | EPERM
        );
        assert_eq!(call(libc::SYS_socket, libc::AF_UNIX as u64), RET_ALLOW);
        assert_eq!(
            call(libc::SYS_socket, libc::AF_VSOCK as u64),
            RET_ERRNO | EPERM
        );
        // Another architecture is killed; x32 numbers fall to the default.
        assert_eq!(
            run(&p, 0, 0x4000_0003, [0; 6]),
            RET_KILL_PROCESS,
            "i386 (AUDIT_ARCH_I386)"
        );
        assert_eq!(call(0x4000_0000 | libc::SYS_getppid, 0), RET_ERRNO | EPERM);
    }

    proptest! {
        #[test]
        fn any_rule_set_compiles_to_its_own_verdicts(
            picks in proptest::collection::vec((0u32..400, 0u8..4, 0u64..4, any::<bool>()), 0..300),
            nr in 0u32..420,
            a0 in 0u64..6,
        ) {
            let all = crate::security::seccomp::all_syscalls();
            let rules: Vec<Rule> = picks
                .iter()
                .map(|&(i, kind, v, errno)| Rule {
                    sys: all[i as usize % all.len()],
                    action: if errno { Action::Errno(ENOSYS) } else { Action::Allow },
                    args: match kind {
                        0 => vec![],
                        1 => vec![ArgTest::Eq { index: 0, value: v }],
                        2 => vec![ArgTest::Ne { index: 0, value: v }],
                        _ => vec![ArgTest::MaskedEq { index: 0, mask: 0b110 | (1 << 35), value: v & 0b110 }],
                    },
                })
                .collect();
            let p = compile(&rules, Action::Errno(EPERM)).unwrap();
            let args = [a0, 0, 0, 0, 0, 0];
            prop_assert_eq!(run(&p, nr, AUDIT_ARCH_X86_64, args), expected(&rules, nr, args));
        }
    }
}
