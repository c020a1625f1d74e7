//! Disk views of a file or directory tree: the space it really allocates (what copy-on-write
//! layers such as overlay upper dirs and qcow2 overlays cost) and its apparent size (what a
//! full copy would cost).

use std::collections::HashSet;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The two views of one walk.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiskUsage {
    /// Sum of st_blocks * 512 over the inodes, KiB (rounded up).
    pub allocated_kib: u64,
    /// Sum of st_size over the inodes, KiB (the total rounded up, not each file).
    pub apparent_kib: u64,
    /// Inodes counted (directories, files, symlinks, ...), each once.
    pub inodes: u64,
}

/// Walks `path` once: every entry counted, directories included; symlinks not followed (the
/// link itself is counted); an inode with several hard links counted once; entries on another
/// filesystem than `path` (mount points below it) skipped with everything under them, as
/// `du -x` does. Entries that vanish during the walk are skipped; any other error names the
/// path it happened on.
pub fn usage(path: &Path) -> io::Result<DiskUsage> {
    let with_path =
        |p: &Path, e: io::Error| io::Error::new(e.kind(), format!("{}: {e}", p.display()));
    let root = std::fs::symlink_metadata(path).map_err(|e| with_path(path, e))?;
    let dev = root.dev();
    let mut bytes_allocated: u64 = 0;
    let mut bytes_apparent: u64 = 0;
    let mut inodes: u64 = 0;
    // Only inodes with more than one link can be met twice; directories cannot be hard-linked.
    let mut linked: HashSet<u64> = HashSet::new();
    let mut count = |md: &std::fs::Metadata| {
        if !md.is_dir() && md.nlink() > 1 && !linked.insert(md.ino()) {
            return;
        }
        bytes_allocated += md.blocks() * 512;
        bytes_apparent += md.size();
        inodes += 1;
    };
    count(&root);
    let mut dirs: Vec<PathBuf> = Vec::new();
    if root.is_dir() {
        dirs.push(path.to_path_buf());
    }
    while let Some(dir) = dirs.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(with_path(&dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| with_path(&dir, e))?;
            // DirEntry::metadata is fstatat(dirfd, name, AT_SYMLINK_NOFOLLOW): no path is
            // built per entry and symlinks are not followed.
            let md = match entry.metadata() {
                Ok(md) => md,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(with_path(&entry.path(), e)),
            };
            if md.dev() != dev {
                continue;
            }
            count(&md);
            if md.is_dir() {
                dirs.push(entry.path());
            }
        }
    }
    Ok(DiskUsage {
        allocated_kib: bytes_allocated.div_ceil(1024),
        apparent_kib: bytes_apparent.div_ceil(1024),
        inodes,
    })
}

/// Space `path` allocates on disk, KiB (see [`usage`]); 0 if it cannot be walked.
pub fn allocated_kib(path: &Path) -> u64 {
    usage(path).map(|u| u.allocated_kib).unwrap_or(0)
}

/// Apparent size of `path`, KiB (see [`usage`]); 0 if it cannot be walked.
pub fn apparent_kib(path: &Path) -> u64 {
    usage(path).map(|u| u.apparent_kib).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, SeekFrom, Write};

    /// A scratch directory removed on drop (tempfile).
    fn temp_dir(tag: &str) -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix(&format!("isobench-disk-test-{tag}-"))
            .tempdir()
            .expect("create the scratch dir")
    }

    #[test]
    fn sparse_file_allocates_less_than_it_appears() {
        let d = temp_dir("sparse");
        let f = d.path().join("sparse");
        let mut file = std::fs::File::create(&f).expect("create");
        file.write_all(&[1u8; 4096]).expect("write");
        file.seek(SeekFrom::Start(64 << 20)).expect("seek");
        file.write_all(&[1u8; 4096]).expect("write");
        file.sync_all().expect("sync");
        drop(file);
        let (alloc, app) = (allocated_kib(&f), apparent_kib(&f));
        println!("sparse file: allocated {alloc} KiB, apparent {app} KiB");
        assert_eq!(app, (64 << 10) + 4);
        assert!((8..1024).contains(&alloc), "{alloc}");
        // The directory adds its own inode to both views.
        let u = usage(d.path()).expect("walk");
        assert_eq!(u.inodes, 2);
        assert!(u.allocated_kib >= alloc && u.apparent_kib > app, "{u:?}");
    }

    #[test]
    fn hard_links_count_once_and_symlinks_are_not_followed() {
        let d = temp_dir("links");
        let sub = d.path().join("sub");
        std::fs::create_dir(&sub).expect("mkdir");
        let data = vec![7u8; 1 << 20];
        std::fs::write(sub.join("a"), &data).expect("write");
        let one = usage(d.path()).expect("walk");
        std::fs::hard_link(sub.join("a"), d.path().join("b")).expect("link");
        let linked = usage(d.path()).expect("walk");
        assert_eq!(linked.inodes, one.inodes, "{one:?} {linked:?}");
        assert_eq!(linked.apparent_kib, one.apparent_kib);
        // A 1 MiB file elsewhere, reached only through a symlink.
        let outside = temp_dir("outside");
        std::fs::write(outside.path().join("big"), &data).expect("write");
        std::os::unix::fs::symlink(outside.path(), d.path().join("to-dir")).expect("symlink");
        std::os::unix::fs::symlink(outside.path().join("big"), d.path().join("to-file"))
            .expect("symlink");
        let with_links = usage(d.path()).expect("walk");
        assert_eq!(with_links.inodes, one.inodes + 2, "{with_links:?}");
        assert!(
            with_links.apparent_kib < one.apparent_kib + 64,
            "symlink targets were counted: {one:?} {with_links:?}"
        );
        assert!(
            one.apparent_kib >= 1024 && one.allocated_kib >= 1024,
            "{one:?}"
        );
        // A path that does not exist is an error naming it.
        let missing = d.path().join("missing");
        let e = usage(&missing).expect_err("missing path");
        assert!(e.to_string().contains("missing"), "{e}");
        assert_eq!(allocated_kib(&missing), 0);
    }

    /// Unmounts on drop.
    struct Mounted(PathBuf);
    impl Drop for Mounted {
        fn drop(&mut self) {
            let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
        }
    }

    #[test]
    fn other_filesystems_are_not_crossed() {
        if crate::skip::unless_root() {
            return;
        }
        let d = temp_dir("xdev");
        let mnt = d.path().join("mnt");
        std::fs::create_dir(&mnt).expect("mkdir");
        nix::mount::mount(
            Some("tmpfs"),
            &mnt,
            Some("tmpfs"),
            nix::mount::MsFlags::empty(),
            Some("size=8m"),
        )
        .expect("mount a tmpfs");
        let _m = Mounted(mnt.clone());
        std::fs::write(mnt.join("big"), vec![7u8; 1 << 20]).expect("write");
        let inside = usage(&mnt).expect("walk the tmpfs");
        assert!(inside.apparent_kib >= 1024, "{inside:?}");
        let outside = usage(d.path()).expect("walk");
        // Only the scratch dir itself: the mount point and all below it are another fs.
        assert_eq!(outside.inodes, 1, "{outside:?}");
        assert!(outside.apparent_kib < 1024, "{outside:?}");
    }
}
