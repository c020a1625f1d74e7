//! The device allow-list: which device nodes an instance may create (mknod) and open.
//!
//! Enforced by the cgroup device controller: on v1 the `devices` hierarchy (`devices.deny` then
//! `devices.allow`, read back from `devices.list`); on v2 an eBPF program of type
//! BPF_PROG_TYPE_CGROUP_DEVICE attached to the instance's cgroup (v2 has no device files).
//!
//! The eBPF program is assembled here, instruction by instruction, rather than with aya or
//! libbpf-rs: it is fifteen-odd fixed instructions (the shape runc's devicefilter emits), and
//! those crates would bring an ELF loader or a C library into a static binary for it.

use std::ffi::CString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

/// One rule: device type, major and minor (`None` = any), and the access it allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceRule {
    /// 'c' (character) or 'b' (block).
    pub kind: char,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    /// Any of "r", "w", "m" (mknod), as the v1 devices files spell it.
    pub access: &'static str,
}

const fn chr(major: u32, minor: Option<u32>) -> DeviceRule {
    DeviceRule {
        kind: 'c',
        major: Some(major),
        minor,
        access: "rwm",
    }
}

/// The allow-list every confining profile gets: null, zero, full, random, urandom, tty, ptmx
/// and the pts devices. Docker's and runc's defaults also allow `mknod` of every device
/// (`c *:* m`, `b *:* m`), which lets a container root create a block device node it then
/// cannot open; this list does not, so the mknod itself fails.
pub const ALLOWED: &[DeviceRule] = &[
    chr(1, Some(3)), // /dev/null
    chr(1, Some(5)), // /dev/zero
    chr(1, Some(7)), // /dev/full
    chr(1, Some(8)), // /dev/random
    chr(1, Some(9)), // /dev/urandom
    chr(5, Some(0)), // /dev/tty
    chr(5, Some(2)), // /dev/ptmx
    chr(136, None),  // /dev/pts/*
];

impl DeviceRule {
    /// The rule as the v1 devices files and devices.list write it: `c 1:3 rwm`, `c 136:* rwm`.
    pub fn v1_line(&self) -> String {
        let n = |v: Option<u32>| v.map_or_else(|| "*".to_string(), |v| v.to_string());
        format!(
            "{} {}:{} {}",
            self.kind,
            n(self.major),
            n(self.minor),
            self.access
        )
    }

    /// The rule as an OCI `linux.resources.devices` entry.
    pub fn oci(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "allow": true,
            "type": self.kind.to_string(),
            "access": self.access,
        });
        if let Some(m) = self.major {
            v["major"] = m.into();
        }
        if let Some(m) = self.minor {
            v["minor"] = m.into();
        }
        v
    }
}

/// The OCI `linux.resources.devices` list: deny everything, then allow the list.
pub fn oci(rules: Option<&[DeviceRule]>) -> serde_json::Value {
    match rules {
        Some(rules) => {
            let mut v = vec![serde_json::json!({ "allow": false, "access": "rwm" })];
            v.extend(rules.iter().map(DeviceRule::oci));
            serde_json::Value::Array(v)
        }
        None => serde_json::json!([{ "allow": true, "access": "rwm" }]),
    }
}

// ---- v2: the eBPF device program ---------------------------------------------------------

/// One eBPF instruction (struct bpf_insn of linux/bpf.h).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Insn {
    code: u8,
    /// dst register in the low nibble, src in the high one.
    regs: u8,
    off: i16,
    imm: i32,
}

// Opcodes (linux/bpf.h, linux/bpf_common.h).
const LDX_MEM_W: u8 = 0x61; // dst = *(u32 *)(src + off)
const ALU32_AND_K: u8 = 0x54; // dst &= imm (32-bit)
const ALU32_RSH_K: u8 = 0x74; // dst >>= imm (32-bit)
const ALU32_MOV_X: u8 = 0xbc; // dst = src (32-bit)
const ALU64_MOV_K: u8 = 0xb7; // dst = imm
const JNE_K: u8 = 0x55; // if dst != imm goto +off
const JNE_X: u8 = 0x5d; // if dst != src goto +off
const EXIT: u8 = 0x95;

const fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> Insn {
    Insn {
        code,
        regs: (src << 4) | dst,
        off,
        imm,
    }
}

/// bpf_cgroup_dev_ctx: access_type = (access << 16) | type, then major, then minor.
const DEV_BLOCK: i32 = 1;
const DEV_CHAR: i32 = 2;
const ACC_MKNOD: i32 = 1;
const ACC_READ: i32 = 2;
const ACC_WRITE: i32 = 4;

fn access_bits(access: &str) -> i32 {
    access.chars().fold(0, |a, c| {
        a | match c {
            'm' => ACC_MKNOD,
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            _ => 0,
        }
    })
}

/// The program: returns 1 (allow) when the access matches a rule, else 0. Registers after the
/// prologue: r2 = device type, r3 = requested access, r4 = major, r5 = minor.
pub fn program(rules: &[DeviceRule]) -> Vec<Insn> {
    let mut p = vec![
        insn(LDX_MEM_W, 2, 1, 0, 0),
        insn(ALU32_AND_K, 2, 0, 0, 0xffff),
        insn(LDX_MEM_W, 3, 1, 0, 0),
        insn(ALU32_RSH_K, 3, 0, 0, 16),
        insn(LDX_MEM_W, 4, 1, 4, 0),
        insn(LDX_MEM_W, 5, 1, 8, 0),
    ];
    for r in rules {
        let mut block: Vec<Insn> = Vec::new();
        // Each test jumps past the rest of this block; offsets are patched once its length
        // is known (`i16::MIN` marks a jump to the block's end).
        let kind = if r.kind == 'b' { DEV_BLOCK } else { DEV_CHAR };
        block.push(insn(JNE_K, 2, 0, i16::MIN, kind));
        let acc = access_bits(r.access);
        if acc != ACC_MKNOD | ACC_READ | ACC_WRITE {
            // The requested bits must all be in the rule's: (r3 & acc) == r3.
            block.push(insn(ALU32_MOV_X, 1, 3, 0, 0));
            block.push(insn(ALU32_AND_K, 1, 0, 0, acc));
            block.push(insn(JNE_X, 1, 3, i16::MIN, 0));
        }
        if let Some(m) = r.major {
            block.push(insn(JNE_K, 4, 0, i16::MIN, m as i32));
        }
        if let Some(m) = r.minor {
            block.push(insn(JNE_K, 5, 0, i16::MIN, m as i32));
        }
        block.push(insn(ALU64_MOV_K, 0, 0, 0, 1));
        block.push(insn(EXIT, 0, 0, 0, 0));
        let len = block.len();
        for (i, ins) in block.iter_mut().enumerate() {
            if ins.off == i16::MIN {
                ins.off = (len - i - 1) as i16;
            }
        }
        p.extend(block);
    }
    p.push(insn(ALU64_MOV_K, 0, 0, 0, 0));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_QUERY: libc::c_long = 16;
const BPF_OBJ_GET_INFO_BY_FD: libc::c_long = 15;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;
const BPF_F_QUERY_EFFECTIVE: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("loading the eBPF device program: {0}")]
    Load(std::io::Error),
    #[error("{path}: attaching the eBPF device program: {source}")]
    Attach {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
}

/// bpf(2). nix has no wrapper for it.
///
/// # Safety
/// `attr` must point to a properly initialised `union bpf_attr` prefix of `size` bytes for `cmd`.
unsafe fn bpf(cmd: libc::c_long, attr: *mut u8, size: usize) -> libc::c_long {
    // SAFETY: forwarded from the caller's contract.
    unsafe { libc::syscall(libc::SYS_bpf, cmd, attr, size as libc::c_uint) }
}

/// A loaded device program: attached to as many cgroups as needed, closed on drop (cgroups
/// it is attached to keep it alive).
#[derive(Debug)]
pub struct DeviceProgram {
    fd: OwnedFd,
    /// The program's kernel id, to recognise it in a cgroup's attached programs.
    pub id: u32,
}

impl DeviceProgram {
    pub fn load(rules: &[DeviceRule]) -> Result<DeviceProgram, DeviceError> {
        let insns = program(rules);
        let license = c"Apache";
        #[repr(C)]
        #[derive(Default)]
        struct Load {
            prog_type: u32,
            insn_cnt: u32,
            insns: u64,
            license: u64,
            log_level: u32,
            log_size: u32,
            log_buf: u64,
            kern_version: u32,
            prog_flags: u32,
            prog_name: [u8; 16],
        }
        let mut name = [0u8; 16];
        name[..8].copy_from_slice(b"isobench");
        let mut attr = Load {
            prog_type: BPF_PROG_TYPE_CGROUP_DEVICE,
            insn_cnt: insns.len() as u32,
            insns: insns.as_ptr() as u64,
            license: license.as_ptr() as u64,
            prog_name: name,
            ..Load::default()
        };
        // SAFETY: `attr` is the BPF_PROG_LOAD prefix of bpf_attr; the pointers in it refer to
        // `insns` and `license`, which outlive the call.
        let fd = unsafe {
            bpf(
                BPF_PROG_LOAD,
                (&mut attr as *mut Load).cast(),
                std::mem::size_of::<Load>(),
            )
        };
        if fd < 0 {
            return Err(DeviceError::Load(std::io::Error::last_os_error()));
        }
        // SAFETY: the kernel returned a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        let id = prog_id(&fd).map_err(DeviceError::Load)?;
        Ok(DeviceProgram { fd, id })
    }

    /// Attaches the program to the cgroup v2 directory `dir` (alongside any others: runc and
    /// systemd attach with the same flag).
    pub fn attach(&self, dir: &Path) -> Result<(), DeviceError> {
        let cg = open_dir(dir)?;
        #[repr(C)]
        struct Attach {
            target_fd: u32,
            attach_bpf_fd: u32,
            attach_type: u32,
            attach_flags: u32,
            replace_bpf_fd: u32,
        }
        let mut attr = Attach {
            target_fd: cg.as_raw_fd() as u32,
            attach_bpf_fd: self.fd.as_raw_fd() as u32,
            attach_type: BPF_CGROUP_DEVICE,
            attach_flags: BPF_F_ALLOW_MULTI,
            replace_bpf_fd: 0,
        };
        // SAFETY: the BPF_PROG_ATTACH prefix of bpf_attr, with descriptors open for the call.
        let r = unsafe {
            bpf(
                BPF_PROG_ATTACH,
                (&mut attr as *mut Attach).cast(),
                std::mem::size_of::<Attach>(),
            )
        };
        if r < 0 {
            return Err(DeviceError::Attach {
                path: dir.to_path_buf(),
                source: std::io::Error::last_os_error(),
            });
        }
        Ok(())
    }
}

fn open_dir(dir: &Path) -> Result<OwnedFd, DeviceError> {
    let io = |source| DeviceError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let c = CString::new(dir.as_os_str().as_encoded_bytes())
        .map_err(|_| io(std::io::ErrorKind::InvalidInput.into()))?;
    // SAFETY: open(2) of a NUL-terminated path; the result is checked.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
        )
    };
    if fd < 0 {
        return Err(io(std::io::Error::last_os_error()));
    }
    // SAFETY: a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The kernel id of a loaded program (bpf_prog_info.id, the second u32 of the struct).
fn prog_id(fd: &OwnedFd) -> std::io::Result<u32> {
    let mut info = [0u32; 64];
    #[repr(C)]
    struct GetInfo {
        bpf_fd: u32,
        info_len: u32,
        info: u64,
    }
    let mut attr = GetInfo {
        bpf_fd: fd.as_raw_fd() as u32,
        info_len: std::mem::size_of_val(&info) as u32,
        info: info.as_mut_ptr() as u64,
    };
    // SAFETY: the BPF_OBJ_GET_INFO_BY_FD prefix; `info` outlives the call and its size is
    // given in info_len.
    let r = unsafe {
        bpf(
            BPF_OBJ_GET_INFO_BY_FD,
            (&mut attr as *mut GetInfo).cast(),
            std::mem::size_of::<GetInfo>(),
        )
    };
    if r < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(info[1])
}

/// The ids of the device programs in effect for the cgroup v2 directory `dir` (its own and
/// those inherited from its ancestors): the v2 read-back of device rules.
pub fn effective_programs(dir: &Path) -> Result<Vec<u32>, DeviceError> {
    let cg = open_dir(dir)?;
    let mut ids = [0u32; 64];
    #[repr(C)]
    struct Query {
        target_fd: u32,
        attach_type: u32,
        query_flags: u32,
        attach_flags: u32,
        prog_ids: u64,
        prog_cnt: u32,
    }
    let mut attr = Query {
        target_fd: cg.as_raw_fd() as u32,
        attach_type: BPF_CGROUP_DEVICE,
        query_flags: BPF_F_QUERY_EFFECTIVE,
        attach_flags: 0,
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
    };
    // SAFETY: the BPF_PROG_QUERY prefix; `ids` outlives the call and prog_cnt is its length.
    let r = unsafe {
        bpf(
            BPF_PROG_QUERY,
            (&mut attr as *mut Query).cast(),
            std::mem::size_of::<Query>(),
        )
    };
    if r < 0 {
        return Err(DeviceError::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(ids[..(attr.prog_cnt as usize).min(ids.len())].to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_lines_and_oci_entries_spell_the_rules() {
        assert_eq!(ALLOWED[0].v1_line(), "c 1:3 rwm");
        assert_eq!(ALLOWED[7].v1_line(), "c 136:* rwm");
        let v = oci(Some(ALLOWED));
        assert_eq!(v[0]["allow"], false);
        assert_eq!(v[8]["major"], 136);
        assert!(v[8].get("minor").is_none());
        assert_eq!(oci(None)[0]["allow"], true);
    }

    #[test]
    fn every_jump_lands_inside_the_program() {
        let p = program(ALLOWED);
        for (i, ins) in p.iter().enumerate() {
            if ins.code == JNE_K || ins.code == JNE_X {
                let target = i as i64 + 1 + ins.off as i64;
                assert!(
                    target > i as i64 && (target as usize) < p.len(),
                    "{i}: {ins:?}"
                );
                // Every jump lands on the next rule's first test or on the final deny.
                let t = &p[target as usize];
                assert!(t.code == JNE_K || t.code == ALU64_MOV_K, "{i} -> {t:?}");
            }
        }
        assert_eq!(p.last().unwrap().code, EXIT);
    }
}
