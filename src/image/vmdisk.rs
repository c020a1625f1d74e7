//! The vm backend's shared base disk: a raw ext4 image of the same rootfs the containers see
//! (the agent layer over the image layer), built once per content and reused across runs.

use super::initramfs::stripped_copy;
use super::{AGENT_DIR, ImageError, Layers, io};
use crate::host::run_id::ProcId;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

const MIB: u64 = 1 << 20;

/// Bumped whenever the way a disk is made (mkfs flags, staging rules) changes, so that disks
/// cached by an older isobench are not mistaken for current ones.
const FORMAT: &[u8] = b"isobench-vmdisk-v2";

/// Where mke2fs lives when root's PATH is not in the environment (sudo, cron, systemd units).
const MKFS_CANDIDATES: &[&str] = &["mkfs.ext4", "/usr/sbin/mkfs.ext4", "/sbin/mkfs.ext4"];

/// A disk size for `layers`: their apparent size * 1.3 + 32 MiB + `extra_mib` (free space the
/// workload writes into), rounded up to a multiple of 8 MiB. Unreadable entries count as 0:
/// the build that follows reports them.
pub fn default_size_mib(layers: &Layers, extra_mib: u64) -> u64 {
    let bytes = apparent_size(&layers.agent) + apparent_size(&layers.image);
    let data_mib = (bytes * 13).div_ceil(10 * MIB);
    (data_mib + 32 + extra_mib).next_multiple_of(8)
}

fn apparent_size(p: &Path) -> u64 {
    apparent_size_of(p, std::fs::metadata(p))
}

fn apparent_size_of(p: &Path, meta: std::io::Result<std::fs::Metadata>) -> u64 {
    let Ok(meta) = meta else {
        return 0;
    };
    let mut total = meta.len();
    if meta.is_dir()
        && let Ok(rd) = std::fs::read_dir(p)
    {
        total += rd
            .flatten()
            .map(|e| {
                let p = e.path();
                apparent_size_of(&p, std::fs::symlink_metadata(&p))
            })
            .sum::<u64>();
    }
    total
}

/// A raw ext4 image of the rootfs (agent layer over image layer), built with `mkfs.ext4 -d` and
/// cached under `cache_dir` as `base-<hash>.ext4`, the hash covering every file of both layers
/// and `size_mib`. An existing image of the same hash is returned without rebuilding.
pub fn build_base_disk(
    layers: &Layers,
    cache_dir: &Path,
    size_mib: u64,
) -> Result<PathBuf, ImageError> {
    let key = content_key(layers, size_mib)?;
    let out = cache_dir.join(format!("base-{key}.ext4"));
    if out.is_file() {
        return Ok(out);
    }
    std::fs::create_dir_all(cache_dir).map_err(io(cache_dir))?;
    remove_stale(cache_dir);

    // The builder's pid and start time in the names of its work files: a later build or
    // `clean --cache` removes them only once that process is provably gone.
    let owner = ProcId::current()
        .map(|p| p.tag())
        .map_err(|e| io(cache_dir)(std::io::Error::other(e.to_string())))?;
    let staging = Staging(cache_dir.join(format!(".staging-{key}-{owner}")));
    let _ = crate::host::remove::remove_tree(&staging.0);
    std::fs::create_dir(&staging.0).map_err(io(&staging.0))?;
    let mut dirs = BTreeMap::new();
    stage_layer(&layers.image, &staging.0, Path::new(""), false, &mut dirs)?;
    stage_layer(&layers.agent, &staging.0, Path::new(""), true, &mut dirs)?;
    // Modes last and deepest first: a read-only directory must not stop its own filling.
    for (rel, (mode, uid, gid)) in dirs.iter().rev() {
        let p = staging.0.join(rel);
        chown(&p, *uid, *gid);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode & 0o7777))
            .map_err(io(&p))?;
    }

    let tmp = cache_dir.join(format!(".base-{key}.ext4.tmp-{owner}"));
    let _ = std::fs::remove_file(&tmp);
    let made = mkfs(&staging.0, &tmp, size_mib).and_then(|()| {
        std::fs::File::open(&tmp)
            .and_then(|f| f.sync_all())
            .map_err(io(&tmp))?;
        std::fs::rename(&tmp, &out).map_err(io(&out))
    });
    if made.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    made.map(|()| out)
}

/// Removed on drop, so an error halfway through staging leaves nothing behind.
struct Staging(PathBuf);

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = crate::host::remove::remove_tree(&self.0);
    }
}

/// What an entry of the cache dir is, by its name: the only names isobench writes there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CacheEntry {
    /// `base-<32 hex>.ext4`: a finished base disk.
    Disk,
    /// `.staging-<32 hex>-p<pid>t<start>` or `.base-<32 hex>.ext4.tmp-p<pid>t<start>`: a
    /// build's work file, owned by that process.
    Work(ProcId),
}

fn is_key(s: &str) -> bool {
    s.len() == 32
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

impl CacheEntry {
    /// The entry called `name`, or None for a name isobench does not write (never touched).
    pub fn parse(name: &str) -> Option<CacheEntry> {
        if let Some(key) = name
            .strip_prefix("base-")
            .and_then(|r| r.strip_suffix(".ext4"))
        {
            return is_key(key).then_some(CacheEntry::Disk);
        }
        let (key, tag) = if let Some(rest) = name.strip_prefix(".staging-") {
            rest.split_once('-')?
        } else {
            name.strip_prefix(".base-")?.split_once(".ext4.tmp-")?
        };
        if !is_key(key) {
            return None;
        }
        ProcId::parse_tag(tag).ok().map(CacheEntry::Work)
    }
}

/// Staging dirs and temp images of builds whose process is gone (a killed run): each can be as
/// big as the disk, and the cache dir outlives runs. A name isobench does not write, or a
/// builder that still runs, is left alone; removal never follows a symlink or crosses a mount.
fn remove_stale(cache_dir: &Path) {
    let Ok(rd) = std::fs::read_dir(cache_dir) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name();
        if let Some(CacheEntry::Work(owner)) = name.to_str().and_then(CacheEntry::parse)
            && !owner.is_alive()
        {
            let _ = crate::host::remove::remove_tree(&e.path());
        }
    }
}

/// What `clean --cache` removed and left.
#[derive(Debug, Default, serde::Serialize)]
pub struct CacheClean {
    pub removed: Vec<PathBuf>,
    /// Entries isobench did not write, or work files of a build still running: left alone.
    pub left: Vec<PathBuf>,
    pub errors: Vec<String>,
}

/// Empties the VM disk cache of what isobench put there: base disks, and the work files of
/// builds that are gone. Anything else in the directory, and the directory itself, stays:
/// `--cache-dir` may name a directory the user shares with other things.
pub fn clean_cache(cache_dir: &Path, dry_run: bool) -> CacheClean {
    let mut out = CacheClean::default();
    let Ok(rd) = std::fs::read_dir(cache_dir) else {
        return out;
    };
    for e in rd.flatten() {
        let p = e.path();
        let ours = match e.file_name().to_str().and_then(CacheEntry::parse) {
            Some(CacheEntry::Disk) => true,
            Some(CacheEntry::Work(owner)) => !owner.is_alive(),
            None => false,
        };
        if !ours {
            out.left.push(p);
        } else if dry_run {
            out.removed.push(p);
        } else {
            match crate::host::remove::remove_tree(&p) {
                Ok(()) => out.removed.push(p),
                Err(err) => out.errors.push(err.to_string()),
            }
        }
    }
    out.removed.sort();
    out.left.sort();
    out
}

/// The content key of both layers alone (the `docker` backend's image tag): the same walk
/// as a base disk's key, without a disk size.
pub fn layers_key(layers: &Layers) -> Result<String, ImageError> {
    content_key(layers, 0)
}

/// The cache key: SHA-256 over a deterministic walk (sorted names) of both layers, hashing each
/// entry's relative path, mode, uid, gid, symlink target, size and content, plus `size_mib`;
/// the first 128 bits in hex. SHA-256 rather than std's DefaultHasher, whose algorithm may
/// change between Rust releases: a key must name the same content for every build.
fn content_key(layers: &Layers, size_mib: u64) -> Result<String, ImageError> {
    let mut h = Sha256::new();
    h.update(FORMAT);
    h.update(size_mib.to_le_bytes());
    let mut buf = vec![0u8; MIB as usize];
    for (tag, root) in [(b"agent", &layers.agent), (b"image", &layers.image)] {
        h.update(tag);
        hash_tree(root, Path::new(""), &mut h, &mut buf)?;
    }
    Ok(h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect())
}

fn hash_tree(root: &Path, rel: &Path, h: &mut Sha256, buf: &mut [u8]) -> Result<(), ImageError> {
    let p = root.join(rel);
    let meta = entry_metadata(&p, rel)?;
    // Lengths before variable-size fields, so that no two trees hash the same byte stream.
    let name = rel.as_os_str().as_encoded_bytes();
    h.update((name.len() as u64).to_le_bytes());
    h.update(name);
    h.update(meta.mode().to_le_bytes());
    h.update(meta.uid().to_le_bytes());
    h.update(meta.gid().to_le_bytes());
    let ft = meta.file_type();
    if ft.is_symlink() {
        let target = std::fs::read_link(&p).map_err(io(&p))?;
        let t = target.as_os_str().as_encoded_bytes();
        h.update((t.len() as u64).to_le_bytes());
        h.update(t);
    } else if ft.is_file() {
        h.update(meta.len().to_le_bytes());
        let mut f = std::fs::File::open(&p).map_err(io(&p))?;
        loop {
            let n = f.read(buf).map_err(io(&p))?;
            if n == 0 {
                break;
            }
            h.update(&buf[..n]);
        }
    } else if ft.is_dir() {
        for name in sorted_names(&p)? {
            hash_tree(root, &rel.join(name), h, buf)?;
        }
    }
    Ok(())
}

/// A layer's root may be a symlink to the rootfs (an image given as a directory) and must be a
/// directory; below it, nothing is followed.
fn entry_metadata(p: &Path, rel: &Path) -> Result<std::fs::Metadata, ImageError> {
    if !rel.as_os_str().is_empty() {
        return std::fs::symlink_metadata(p).map_err(io(p));
    }
    let meta = std::fs::metadata(p).map_err(io(p))?;
    if !meta.is_dir() {
        return Err(io(p)(std::io::ErrorKind::NotADirectory.into()));
    }
    Ok(meta)
}

fn sorted_names(dir: &Path) -> Result<Vec<std::ffi::OsString>, ImageError> {
    let mut names = std::fs::read_dir(dir)
        .map_err(io(dir))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<Vec<_>, _>>()
        .map_err(io(dir))?;
    names.sort();
    Ok(names)
}

/// Copies `src_root/rel` into `staging/rel` with overlayfs's rules: what a later layer puts at
/// a path replaces what is there (a non-directory hides a directory and the reverse), and
/// directories merge. Directory attributes go to `dirs`, to be applied at the end.
fn stage_layer(
    src_root: &Path,
    staging: &Path,
    rel: &Path,
    is_agent: bool,
    dirs: &mut BTreeMap<PathBuf, (u32, u32, u32)>,
) -> Result<(), ImageError> {
    let src = src_root.join(rel);
    let dst = staging.join(rel);
    let meta = entry_metadata(&src, rel)?;
    let ft = meta.file_type();
    let existing = std::fs::symlink_metadata(&dst).ok();
    if ft.is_dir() {
        match existing {
            Some(m) if m.is_dir() => {}
            other => {
                if other.is_some() {
                    std::fs::remove_file(&dst).map_err(io(&dst))?;
                }
                std::fs::create_dir(&dst).map_err(io(&dst))?;
            }
        }
        dirs.insert(rel.to_path_buf(), (meta.mode(), meta.uid(), meta.gid()));
        for name in sorted_names(&src)? {
            stage_layer(src_root, staging, &rel.join(name), is_agent, dirs)?;
        }
        return Ok(());
    }
    // Sockets, fifos and device nodes mean nothing on a disk image: the guest makes its own.
    if ft.is_socket() || ft.is_fifo() || ft.is_block_device() || ft.is_char_device() {
        return Ok(());
    }
    if let Some(m) = existing {
        if m.is_dir() {
            std::fs::remove_dir_all(&dst).map_err(io(&dst))?;
            dirs.retain(|d, _| !d.starts_with(rel));
        } else {
            std::fs::remove_file(&dst).map_err(io(&dst))?;
        }
    }
    if ft.is_symlink() {
        let target = std::fs::read_link(&src).map_err(io(&src))?;
        std::os::unix::fs::symlink(&target, &dst).map_err(io(&dst))?;
        chown(&dst, meta.uid(), meta.gid());
    } else if is_agent && rel == Path::new(AGENT_DIR).join("isobench") {
        stripped_copy(&src, &dst)?;
        chown(&dst, meta.uid(), meta.gid());
    } else if std::fs::hard_link(&src, &dst).is_err() {
        // Another filesystem, or protected_hardlinks for a non-owner: a copy, then its owner.
        // A hard link is never chmod'ed or chown'ed: that would change the layer itself.
        std::fs::copy(&src, &dst).map_err(io(&dst))?;
        chown(&dst, meta.uid(), meta.gid());
    }
    Ok(())
}

/// mkfs.ext4 -d takes owners from the staged files. Only root may give files away; without it
/// they stay the builder's, which is all an unprivileged build can do (runs need root anyway).
fn chown(p: &Path, uid: u32, gid: u32) {
    let _ = std::os::unix::fs::lchown(p, Some(uid), Some(gid));
}

fn mkfs(staging: &Path, image: &Path, size_mib: u64) -> Result<(), ImageError> {
    let size = format!("{size_mib}M");
    // -b 4096: mke2fs would pick 1 KiB blocks for a disk under 512 MiB ("small"), unlike
    // the 4 KiB of the host filesystems the containers write to; disk figures should compare
    // like with like.
    let args: Vec<&std::ffi::OsStr> = vec![
        "-q".as_ref(),
        "-F".as_ref(),
        "-b".as_ref(),
        "4096".as_ref(),
        "-L".as_ref(),
        "isobench".as_ref(),
        "-E".as_ref(),
        "root_owner=0:0".as_ref(),
        "-d".as_ref(),
        staging.as_os_str(),
        image.as_os_str(),
        size.as_ref(),
    ];
    let cmd_line = format!(
        "mkfs.ext4 {}",
        args.iter()
            .map(|a| a.to_string_lossy())
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut last_err = None;
    for exe in MKFS_CANDIDATES {
        // Its own process group: signals for the run reach the harness only (interrupt.rs).
        let mut cmd = std::process::Command::new(exe);
        std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
        match cmd.args(&args).output() {
            Ok(out) if out.status.success() => return Ok(()),
            Ok(out) => {
                let stderr = String::from_utf8_lossy(&out.stderr);
                let why = stderr
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect::<Vec<_>>()
                    .join("; ");
                return Err(ImageError::Command {
                    path: image.to_path_buf(),
                    cmd: cmd_line,
                    why: if why.is_empty() {
                        format!("exit status {}", out.status)
                    } else {
                        why
                    },
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => last_err = Some(e),
            Err(e) => {
                return Err(ImageError::Command {
                    path: image.to_path_buf(),
                    cmd: cmd_line,
                    why: e.to_string(),
                });
            }
        }
    }
    Err(ImageError::Command {
        path: image.to_path_buf(),
        cmd: cmd_line,
        why: format!(
            "{}: install e2fsprogs (scripts/setup.sh)",
            last_err.map_or_else(|| "not found".to_string(), |e| e.to_string())
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    /// A scratch directory removed on drop (tempfile), failed assertion or not.
    fn tmp(name: &str) -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix(&format!("isobench-vmdisk-{name}-"))
            .tempdir()
            .expect("a scratch dir")
    }

    fn set_mode(p: &Path, mode: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    fn fake_layers(d: &Path) -> Layers {
        let image = d.join("image");
        for sub in ["etc", "bin", "usr/share/doc", "tmp"] {
            std::fs::create_dir_all(image.join(sub)).unwrap();
        }
        std::fs::write(image.join("etc/x"), "from the image\n").unwrap();
        std::fs::write(image.join("etc/only-image"), "kept\n").unwrap();
        std::fs::write(image.join("bin/tool"), "#!/bin/sh\necho tool\n").unwrap();
        set_mode(&image.join("bin/tool"), 0o755);
        std::fs::write(image.join("usr/share/doc/readme"), "deep\n").unwrap();
        std::os::unix::fs::symlink("etc/x", image.join("link")).unwrap();
        nix::unistd::mkfifo(
            &image.join("fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o644),
        )
        .unwrap();
        // A file in the image where the agent layer has a directory: the directory wins.
        std::fs::write(image.join(AGENT_DIR), "shadowed").unwrap();

        let agent = d.join("agent");
        std::fs::create_dir_all(agent.join(AGENT_DIR)).unwrap();
        std::fs::create_dir_all(agent.join("etc")).unwrap();
        std::fs::create_dir_all(agent.join("tmp")).unwrap();
        set_mode(&agent.join("tmp"), 0o1777);
        std::fs::write(agent.join("etc/x"), "from the agent\n").unwrap();
        std::fs::write(agent.join(AGENT_DIR).join("isobench"), "#!fake agent\n").unwrap();
        set_mode(&agent.join(AGENT_DIR).join("isobench"), 0o755);
        Layers { agent, image }
    }

    fn debugfs(img: &Path, request: &str) -> String {
        let out = Command::new("debugfs")
            .arg("-R")
            .arg(request)
            .arg(img)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn has(cmd: &str) -> bool {
        Command::new("which")
            .arg(cmd)
            .output()
            .is_ok_and(|o| o.status.success())
    }

    #[test]
    fn cache_names_are_ours_only_in_the_exact_shapes_isobench_writes() {
        let key = "0123456789abcdef0123456789abcdef";
        assert_eq!(
            CacheEntry::parse(&format!("base-{key}.ext4")),
            Some(CacheEntry::Disk)
        );
        let me = ProcId::current().unwrap();
        assert_eq!(
            CacheEntry::parse(&format!(".staging-{key}-{}", me.tag())),
            Some(CacheEntry::Work(me))
        );
        assert_eq!(
            CacheEntry::parse(&format!(".base-{key}.ext4.tmp-{}", me.tag())),
            Some(CacheEntry::Work(me))
        );
        for stranger in [
            "precious",
            "base-.ext4",
            "base-0123.ext4",
            &format!("base-{}.ext4", key.to_uppercase()),
            &format!("base-{key}.ext4.bak"),
            &format!(".staging-{key}-123"),
            &format!(".staging-{key}-../../etc"),
            &format!(".base-{key}.ext4.tmp-p1"),
        ] {
            assert_eq!(CacheEntry::parse(stranger), None, "{stranger}");
        }
    }

    #[test]
    fn clean_cache_removes_only_what_isobench_wrote_and_never_follows_a_link() {
        let scratch = tmp("clean-cache");
        let d = scratch.path();
        let cache = d.join("cache");
        let outside = d.join("outside");
        std::fs::create_dir_all(&cache).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("keep"), "mine").unwrap();
        let key = "0123456789abcdef0123456789abcdef";
        let other = "fedcba9876543210fedcba9876543210";
        std::fs::write(cache.join(format!("base-{key}.ext4")), "disk").unwrap();
        std::fs::write(cache.join("precious"), "not isobench's").unwrap();
        std::os::unix::fs::symlink(&outside, cache.join(format!("base-{other}.ext4"))).unwrap();
        // A build whose process is gone (pid 1 never started at tick 1), and one still running.
        let dead = cache.join(format!(".staging-{key}-p1t1"));
        std::fs::create_dir_all(dead.join("sub")).unwrap();
        let live = cache.join(format!(
            ".base-{key}.ext4.tmp-{}",
            ProcId::current().unwrap().tag()
        ));
        std::fs::write(&live, "building").unwrap();

        let dry = clean_cache(&cache, true);
        assert_eq!(dry.removed.len(), 3, "{dry:?}");
        assert!(
            cache.join(format!("base-{key}.ext4")).exists(),
            "a dry run removes nothing"
        );

        let c = clean_cache(&cache, false);
        assert!(!cache.join(format!("base-{key}.ext4")).exists());
        assert!(!dead.exists());
        assert!(live.exists(), "a running build's file stays");
        assert!(cache.join("precious").exists(), "a stranger stays");
        assert_eq!(
            std::fs::read_to_string(outside.join("keep")).unwrap(),
            "mine"
        );
        assert!(cache.exists(), "the cache dir itself stays");
        assert_eq!(c.errors.len(), 1, "the symlink is refused: {c:?}");
    }

    #[test]
    fn the_size_covers_the_layers_with_room() {
        let scratch = tmp("size");
        let d = scratch.path();
        let layers = fake_layers(d);
        let s = default_size_mib(&layers, 0);
        assert_eq!(s % 8, 0);
        assert!(s >= 40, "{s}");
        std::fs::write(layers.image.join("big"), vec![0u8; 10 * MIB as usize]).unwrap();
        let big = default_size_mib(&layers, 16);
        assert!(big.is_multiple_of(8) && big >= 13 + 32 + 16, "{big}");
    }

    #[test]
    fn the_disk_is_built_once_per_content_and_holds_the_merged_root() {
        let no_mkfs = !has("mkfs.ext4") && !Path::new("/usr/sbin/mkfs.ext4").exists();
        if crate::skip::when(no_mkfs, "mkfs.ext4 missing (install e2fsprogs)") {
            return;
        }
        let scratch = tmp("build");
        let d = scratch.path();
        let layers = fake_layers(d);
        let cache = d.join("cache");
        let size = default_size_mib(&layers, 0);

        let t = std::time::Instant::now();
        let first = build_base_disk(&layers, &cache, size).unwrap();
        eprintln!("first build: {:?}", t.elapsed());
        let name = first.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.starts_with("base-") && name.ends_with(".ext4") && name.len() == 5 + 32 + 5,
            "{name}"
        );
        let m1 = std::fs::metadata(&first).unwrap();
        assert_eq!(m1.len(), size * MIB);

        let t = std::time::Instant::now();
        let again = build_base_disk(&layers, &cache, size).unwrap();
        eprintln!("cached: {:?}", t.elapsed());
        let m2 = std::fs::metadata(&again).unwrap();
        assert_eq!(again, first);
        assert_eq!(
            (m1.modified().unwrap(), m1.ino()),
            (m2.modified().unwrap(), m2.ino())
        );

        // Only the image and nothing else is left in the cache dir.
        let left: Vec<_> = std::fs::read_dir(&cache)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 1, "{left:?}");

        if has("debugfs") {
            let root = debugfs(&first, "ls -l /");
            for n in ["etc", "bin", "usr", "link", "tmp", AGENT_DIR, "lost+found"] {
                assert!(root.contains(n), "{n} missing from {root}");
            }
            assert!(!root.contains("fifo"), "{root}");
            assert!(root.contains("41777"), "tmp should be 1777: {root}");
            assert_eq!(debugfs(&first, "cat /etc/x"), "from the agent\n");
            assert_eq!(debugfs(&first, "cat /etc/only-image"), "kept\n");
            assert_eq!(debugfs(&first, "cat /usr/share/doc/readme"), "deep\n");
            assert!(debugfs(&first, "ls -l /bin").contains("100755"));
            let agent = debugfs(&first, &format!("ls -l /{AGENT_DIR}"));
            assert!(
                agent.contains("100755") && agent.contains("isobench"),
                "{agent}"
            );
            assert_eq!(
                debugfs(&first, &format!("cat /{AGENT_DIR}/isobench")),
                "#!fake agent\n"
            );
            let link = debugfs(&first, "stat /link");
            assert!(link.contains("Fast link dest: \"etc/x\""), "{link}");
            let fsck = Command::new("e2fsck")
                .arg("-fn")
                .arg(&first)
                .output()
                .unwrap();
            assert!(fsck.status.success(), "{fsck:?}");
        } else {
            crate::skip::because("debugfs missing: the image's contents cannot be checked");
        }

        // One byte changed: another disk.
        std::fs::write(layers.image.join("etc/only-image"), "kepT\n").unwrap();
        let changed = build_base_disk(&layers, &cache, size).unwrap();
        assert_ne!(changed, first);
        // So is another size.
        let bigger = build_base_disk(&layers, &cache, size + 8).unwrap();
        assert_ne!(bigger, changed);
        // The source layers are untouched by staging.
        assert_eq!(
            std::fs::read_to_string(layers.image.join("etc/x")).unwrap(),
            "from the image\n"
        );
    }

    #[test]
    fn a_failing_mkfs_names_the_command_and_leaves_nothing() {
        let no_mkfs = !has("mkfs.ext4") && !Path::new("/usr/sbin/mkfs.ext4").exists();
        if crate::skip::when(no_mkfs, "mkfs.ext4 missing (install e2fsprogs)") {
            return;
        }
        let scratch = tmp("fail");
        let d = scratch.path();
        let layers = fake_layers(d);
        let cache = d.join("cache");
        // mke2fs shrugs off a disk too small for a journal, not one too small for the files.
        std::fs::write(layers.image.join("big"), vec![1u8; 3 * MIB as usize]).unwrap();
        let e = build_base_disk(&layers, &cache, 1).unwrap_err().to_string();
        assert!(e.contains("mkfs.ext4") && e.contains("-d"), "{e}");
        assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 0);
    }

    /// Timing of the parts that scale with the agent binary: `cargo test --lib
    /// image::vmdisk::tests::timing -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn timing_of_a_50_mib_layer() {
        let scratch = tmp("timing");
        let d = scratch.path();
        let layers = fake_layers(d);
        let mut data = vec![0u8; 50 * MIB as usize];
        for (i, b) in data.iter_mut().enumerate() {
            *b = (i.wrapping_mul(2_654_435_761) >> 13) as u8;
        }
        std::fs::write(layers.image.join("big"), &data).unwrap();
        let size = default_size_mib(&layers, 0);
        let t = std::time::Instant::now();
        content_key(&layers, size).unwrap();
        let hash = t.elapsed();
        let t = std::time::Instant::now();
        build_base_disk(&layers, &d.join("cache"), size).unwrap();
        eprintln!(
            "50 MiB: hash {hash:?}, full build (hash + staging + mkfs) {:?}, {size} MiB disk",
            t.elapsed()
        );
    }
}
