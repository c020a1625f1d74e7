//! Root filesystems for instances: the image (busybox, a directory, a tarball) and the agent
//! layer put on top of it, both prepared once per run and shared read-only by every instance.

use crate::scenario::ImageSpec;
use std::path::{Path, PathBuf};

pub mod initramfs;
pub mod kernel;
pub mod vmdisk;

pub use crate::agent::{AGENT_DIR, AGENT_IN_ROOTFS};

/// Where Debian's busybox-static puts its binary.
pub const BUSYBOX_PATHS: &[&str] = &["/bin/busybox", "/usr/bin/busybox"];

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("busybox not found at {}: install busybox-static (scripts/setup.sh)", BUSYBOX_PATHS.join(" or "))]
    NoBusybox,
    #[error(
        "{0} is dynamically linked; the busybox image needs a static busybox (install busybox-static)"
    )]
    BusyboxNotStatic(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: running `{cmd}` failed: {why}")]
    Command {
        path: PathBuf,
        cmd: String,
        why: String,
    },
    #[error(
        "no guest kernel: {0} has no vmlinuz-*; install linux-image-cloud-amd64 (scripts/setup.sh)"
    )]
    NoGuestKernel(PathBuf),
    #[error(
        "{0}: cannot tell the kernel release (the name is not vmlinuz-<release> and the file has no bzImage version string)"
    )]
    KernelRelease(PathBuf),
    #[error(
        "{0} missing: the guest kernel's modules are needed; install linux-image-cloud-amd64 (scripts/setup.sh)"
    )]
    NoKernelModules(PathBuf),
    #[error(
        "kernel module {name} not found in {dir} (neither in modules.dep nor in modules.builtin)"
    )]
    ModuleNotFound { name: String, dir: PathBuf },
    #[error(
        "{0}: compressed kernel module; only uncompressed or gzip (.ko.gz) modules are supported"
    )]
    CompressedModule(PathBuf),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ImageError + '_ {
    move |source| ImageError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The read-only layers of every instance's root, top first (overlayfs `lowerdir` order).
#[derive(Debug, Clone)]
pub struct Layers {
    pub agent: PathBuf,
    pub image: PathBuf,
}

impl Layers {
    /// Builds the layers under `dir` (a directory of the run's state dir).
    /// Backends of one run share the layers: the first call builds them, later calls (the
    /// `prepared` marker exists) return the same directories.
    pub fn prepare(spec: &ImageSpec, dir: &Path, agent_exe: &Path) -> Result<Layers, ImageError> {
        let agent = dir.join("agent");
        let image = match spec {
            ImageSpec::Busybox => dir.join("busybox"),
            ImageSpec::Directory(p) => p.clone(),
            ImageSpec::Tarball(_) => dir.join("image"),
        };
        let marker = dir.join("prepared");
        if marker.exists() {
            return Ok(Layers { agent, image });
        }
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        build_agent_layer(&agent, agent_exe)?;
        match spec {
            ImageSpec::Busybox => build_busybox(&image)?,
            ImageSpec::Directory(_) => {}
            ImageSpec::Tarball(p) => unpack_tarball(p, &image)?,
        }
        std::fs::write(&marker, "").map_err(io(&marker))?;
        Ok(Layers { agent, image })
    }

    /// (allocated KiB, apparent KiB) of both layers: what all instances share, and what a
    /// full copy of the root filesystem per instance would cost.
    pub fn disk_usage(&self) -> (u64, u64) {
        use crate::measure::disk::{allocated_kib, apparent_kib};
        (
            allocated_kib(&self.agent) + allocated_kib(&self.image),
            apparent_kib(&self.agent) + apparent_kib(&self.image),
        )
    }

    /// The layers' directories (agent first), as `lowerdir` lists them.
    pub fn dirs(&self) -> [&Path; 2] {
        [&self.agent, &self.image]
    }

    /// The overlayfs `lowerdir=` value.
    pub fn lowerdir(&self) -> String {
        format!("{}:{}", self.agent.display(), self.image.display())
    }
}

/// The agent binary plus the mount points every instance needs, whatever the image has.
fn build_agent_layer(root: &Path, agent_exe: &Path) -> Result<(), ImageError> {
    let bin_dir = root.join(AGENT_DIR);
    std::fs::create_dir_all(&bin_dir).map_err(io(&bin_dir))?;
    for d in ["proc", "dev", "sys", "tmp", "var/tmp"] {
        let p = root.join(d);
        std::fs::create_dir_all(&p).map_err(io(&p))?;
    }
    for d in ["tmp", "var/tmp"] {
        set_mode(&root.join(d), 0o1777)?;
    }
    let dst = bin_dir.join("isobench");
    // A hard link costs nothing when the state dir shares the binary's filesystem.
    if std::fs::hard_link(agent_exe, &dst).is_err() {
        std::fs::copy(agent_exe, &dst).map_err(io(&dst))?;
    }
    // Files the `syscalls` workload writes to once each: the first write to a file of the
    // image (overlay copy-up, qcow2 copy-on-write).
    use crate::agent::syscalls::{COPYUP_DIR, COPYUP_FILE_BYTES, COPYUP_FILES};
    let copyup = bin_dir.join(COPYUP_DIR);
    std::fs::create_dir_all(&copyup).map_err(io(&copyup))?;
    for i in 0..COPYUP_FILES {
        let f = copyup.join(i.to_string());
        std::fs::write(&f, [0u8; COPYUP_FILE_BYTES]).map_err(io(&f))?;
    }
    Ok(())
}

fn set_mode(p: &Path, mode: u32) -> Result<(), ImageError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).map_err(io(p))
}

/// Finds the host's static busybox.
pub fn find_busybox() -> Result<PathBuf, ImageError> {
    let p = BUSYBOX_PATHS
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
        .ok_or(ImageError::NoBusybox)?;
    if has_interpreter(&p).map_err(io(&p))? {
        return Err(ImageError::BusyboxNotStatic(p));
    }
    Ok(p)
}

/// True when an ELF file names a dynamic loader (a PT_INTERP program header). Read by hand:
/// three header fields are all we need, not an ELF crate.
pub fn has_interpreter(path: &Path) -> std::io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    let mut eh = [0u8; 64];
    f.read_exact(&mut eh)?;
    if &eh[..4] != b"\x7fELF" || eh[4] != 2 {
        return Err(std::io::Error::other("not a 64-bit ELF file"));
    }
    let phoff = u64::from_le_bytes(eh[0x20..0x28].try_into().unwrap_or_default());
    let phentsize = u16::from_le_bytes([eh[0x36], eh[0x37]]) as u64;
    let phnum = u16::from_le_bytes([eh[0x38], eh[0x39]]) as u64;
    for i in 0..phnum {
        f.seek(SeekFrom::Start(phoff + i * phentsize))?;
        let mut t = [0u8; 4];
        f.read_exact(&mut t)?;
        if u32::from_le_bytes(t) == 3 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// A minimal rootfs from the host's static busybox: the binary, one symlink per applet where
/// busybox itself says it belongs, and the few /etc files tools expect.
fn build_busybox(root: &Path) -> Result<(), ImageError> {
    use std::os::unix::process::CommandExt;
    let busybox = find_busybox()?;
    // Its own process group, as every helper command (see oci.rs).
    let out = std::process::Command::new(&busybox)
        .process_group(0)
        .arg("--list-full")
        .output()
        .map_err(io(&busybox))?;
    if !out.status.success() {
        return Err(ImageError::Command {
            path: busybox,
            cmd: "busybox --list-full".into(),
            why: format!("exit status {}", out.status),
        });
    }
    for d in [
        "bin", "sbin", "usr/bin", "usr/sbin", "etc", "root", "proc", "dev", "sys", "tmp",
        "var/tmp", "run",
    ] {
        let p = root.join(d);
        std::fs::create_dir_all(&p).map_err(io(&p))?;
    }
    let bb = root.join("bin/busybox");
    if std::fs::hard_link(&busybox, &bb).is_err() {
        std::fs::copy(&busybox, &bb).map_err(io(&bb))?;
    }
    for applet in String::from_utf8_lossy(&out.stdout).lines() {
        let applet = applet.trim().trim_start_matches('/');
        if applet.is_empty() || applet == "bin/busybox" {
            continue;
        }
        let link = root.join(applet);
        if let Some(parent) = link.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        match std::os::unix::fs::symlink("/bin/busybox", &link) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(&link)(e)),
        }
    }
    let files = [
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        ),
        ("etc/group", "root:x:0:\nnogroup:x:65534:\n"),
        ("etc/hostname", "isobench\n"),
        ("etc/hosts", "127.0.0.1 localhost\n"),
    ];
    for (f, text) in files {
        let p = root.join(f);
        std::fs::write(&p, text).map_err(io(&p))?;
    }
    for d in ["tmp", "var/tmp"] {
        set_mode(&root.join(d), 0o1777)?;
    }
    Ok(())
}

/// Unpacks a rootfs tarball (`docker export` output, optionally gzipped).
fn unpack_tarball(tarball: &Path, root: &Path) -> Result<(), ImageError> {
    std::fs::create_dir_all(root).map_err(io(root))?;
    let f = std::fs::File::open(tarball).map_err(io(tarball))?;
    let name = tarball.to_string_lossy();
    let reader: Box<dyn std::io::Read> = if name.ends_with(".gz") || name.ends_with(".tgz") {
        Box::new(flate2::read::GzDecoder::new(f))
    } else {
        Box::new(f)
    };
    let mut ar = tar::Archive::new(reader);
    ar.set_preserve_permissions(true);
    ar.set_preserve_ownerships(true);
    ar.set_unpack_xattrs(true);
    ar.unpack(root).map_err(io(tarball))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_static_isobench_binary_has_no_interpreter() {
        // build.target + crt-static in .cargo/config.toml make the test binary static too.
        let me = std::env::current_exe().unwrap();
        assert!(
            !has_interpreter(&me).unwrap(),
            "{} should be statically linked",
            me.display()
        );
    }

    #[test]
    fn a_dynamic_binary_has_an_interpreter() {
        // /bin/sh is dynamically linked on every Debian host.
        let sh = Path::new("/bin/sh");
        if crate::skip::when(!sh.exists(), "/bin/sh missing on this host") {
            return;
        }
        let real = std::fs::canonicalize(sh).unwrap();
        assert!(has_interpreter(&real).unwrap());
    }

    #[test]
    fn tarball_unpacks_into_a_rootfs() {
        let dir = std::env::temp_dir().join(format!("isobench-tar-{}", std::process::id()));
        let src = dir.join("src");
        std::fs::create_dir_all(src.join("etc")).unwrap();
        std::fs::write(src.join("etc/os-release"), "ID=test\n").unwrap();
        let tarball = dir.join("rootfs.tar.gz");
        let gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&tarball).unwrap(),
            flate2::Compression::fast(),
        );
        let mut b = tar::Builder::new(gz);
        b.append_dir_all(".", &src).unwrap();
        b.into_inner().unwrap().finish().unwrap();
        let root = dir.join("root");
        unpack_tarball(&tarball, &root).unwrap();
        assert_eq!(
            std::fs::read_to_string(root.join("etc/os-release")).unwrap(),
            "ID=test\n"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// Property: whatever entries a tarball holds (`..` components, absolute paths, symlinks
    /// pointing out and entries written through them, hard links to files outside, device
    /// nodes, FIFOs), unpacking it never panics, never writes outside the target directory,
    /// and makes no device node.
    mod hostile_tarballs {
        use super::super::unpack_tarball;
        use proptest::prelude::*;
        use std::path::{Path, PathBuf};

        #[derive(Debug, Clone, Copy)]
        enum Kind {
            File,
            Dir,
            Symlink,
            HardLink,
            Char,
            Block,
            Fifo,
        }

        #[derive(Debug, Clone)]
        struct Entry {
            kind: Kind,
            path: String,
            /// Link target (symlinks, hard links).
            link: String,
        }

        /// A path: components that name the outside directory, climb out, or are ordinary,
        /// relative or absolute. `@` stands for the absolute path of the outside directory.
        fn path() -> impl Strategy<Value = String> {
            let part = prop_oneof![
                Just("..".to_string()),
                Just(".".to_string()),
                Just(String::new()),
                Just("outside".to_string()),
                Just("f".to_string()),
                "[a-c]{1,2}",
            ];
            (
                prop_oneof![Just(""), Just("/"), Just("@/"), Just("../")],
                proptest::collection::vec(part, 1..4),
            )
                .prop_map(|(lead, parts)| format!("{lead}{}", parts.join("/")))
        }

        fn entry() -> impl Strategy<Value = Entry> {
            let kind = prop_oneof![
                Just(Kind::File),
                Just(Kind::Dir),
                Just(Kind::Symlink),
                Just(Kind::HardLink),
                Just(Kind::Char),
                Just(Kind::Block),
                Just(Kind::Fifo),
            ];
            (kind, path(), path()).prop_map(|(kind, path, link)| Entry { kind, path, link })
        }

        /// Writes `s` (with `@` replaced by `outside`) into a raw header field, bypassing the
        /// checks tar's builder makes: a hostile archive does not come from a careful builder.
        fn raw(field: &mut [u8], s: &str, outside: &Path) -> bool {
            let s = s.replace('@', &outside.display().to_string());
            let b = s.as_bytes();
            if b.len() >= field.len() {
                return false;
            }
            field.fill(0);
            field[..b.len()].copy_from_slice(b);
            true
        }

        fn archive(entries: &[Entry], outside: &Path) -> Vec<u8> {
            let mut b = tar::Builder::new(Vec::new());
            for e in entries {
                let mut h = tar::Header::new_gnu();
                let (t, data): (tar::EntryType, &[u8]) = match e.kind {
                    Kind::File => (tar::EntryType::Regular, b"written by the archive"),
                    Kind::Dir => (tar::EntryType::Directory, b""),
                    Kind::Symlink => (tar::EntryType::Symlink, b""),
                    Kind::HardLink => (tar::EntryType::Link, b""),
                    Kind::Char => (tar::EntryType::Char, b""),
                    Kind::Block => (tar::EntryType::Block, b""),
                    Kind::Fifo => (tar::EntryType::Fifo, b""),
                };
                h.set_entry_type(t);
                h.set_size(data.len() as u64);
                h.set_mode(0o644);
                h.set_uid(0);
                h.set_gid(0);
                if matches!(e.kind, Kind::Char | Kind::Block) {
                    // 8:0 is /dev/sda, 1:1 /dev/mem: what an attacker would want.
                    let _ = h.set_device_major(8);
                    let _ = h.set_device_minor(0);
                }
                let old = h.as_old_mut();
                if !raw(&mut old.name, &e.path, outside)
                    || !raw(&mut old.linkname, &e.link, outside)
                {
                    continue;
                }
                h.set_cksum();
                b.append(&h, data).unwrap();
            }
            b.into_inner().unwrap()
        }

        /// Every path below `dir` (not following symlinks) with its type and contents.
        fn listing(dir: &Path) -> Vec<(PathBuf, String)> {
            use std::os::unix::fs::FileTypeExt;
            let mut out = Vec::new();
            let Ok(rd) = std::fs::read_dir(dir) else {
                return out;
            };
            for e in rd.flatten() {
                let p = e.path();
                let Ok(t) = e.file_type() else { continue };
                let what = if t.is_dir() {
                    out.extend(listing(&p));
                    "dir".to_string()
                } else if t.is_symlink() {
                    format!("-> {:?}", std::fs::read_link(&p).ok())
                } else if t.is_char_device() || t.is_block_device() {
                    "device".to_string()
                } else {
                    std::fs::read_to_string(&p).unwrap_or_default()
                };
                out.push((p, what));
            }
            out.sort();
            out
        }

        proptest! {
            // 128 cases: about a second of CPU, beside timing-sensitive unit tests on 2 cores
            // (PROPTEST_CASES=5000 for a longer search).
            #![proptest_config(ProptestConfig::with_cases(128))]
            #[test]
            fn nothing_lands_outside_the_target(entries in proptest::collection::vec(entry(), 1..8)) {
                let tmp = tempfile::tempdir().unwrap();
                let root = tmp.path();
                let outside = root.join("outside");
                let target = root.join("target");
                std::fs::create_dir_all(&outside).unwrap();
                std::fs::write(outside.join("f"), "sentinel").unwrap();
                let tarball = root.join("hostile.tar");
                std::fs::write(&tarball, archive(&entries, &outside)).unwrap();
                let outside_before = listing(&outside);

                // An error is fine (a hostile archive may be refused); a panic or an escape is not.
                let _ = unpack_tarball(&tarball, &target);

                let outside_after = listing(&outside);
                let mut top: Vec<String> = std::fs::read_dir(root)
                    .unwrap()
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect();
                top.sort();
                let inside = listing(&target);
                prop_assert_eq!(outside_before, outside_after);
                prop_assert_eq!(top, vec!["hostile.tar", "outside", "target"]);
                let devices: Vec<_> = inside.iter().filter(|(_, w)| w == "device").collect();
                prop_assert!(devices.is_empty(), "device nodes made: {:?}", devices);
            }
        }
    }
}
