//! Removal of a directory tree that never follows a symlink and never crosses a mount point,
//! used for everything of a run (its state dir and the directories inside it) and by `clean`.
//!
//! Hand-written rather than `std::fs::remove_dir_all` or the `remove_dir_all` crate: both stop
//! at symlinks, but neither looks at mount points, so a bind mount left under a run's state dir
//! (by a killed run, or by someone else) would lose its source's contents. Here every entry is
//! reached relative to its parent's descriptor (openat with O_NOFOLLOW|O_DIRECTORY, unlinkat),
//! examined without following it (statx with AT_SYMLINK_NOFOLLOW), and anything on another
//! mount (another mount id or device than the top, the kernel's mount-root attribute, or a
//! mount point in /proc/self/mountinfo) is left in place and reported.

use rustix::fd::{AsFd, BorrowedFd, OwnedFd};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, StatxAttributes, StatxFlags};
use rustix::io::Errno;
use std::collections::BTreeSet;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Deepest nesting removed: a run's trees are a few levels deep; every level holds a descriptor.
pub const MAX_DEPTH: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum RemoveError {
    #[error("{0}: a symlink: not followed, left in place")]
    Symlink(PathBuf),
    #[error("{0}: a mount point: not crossed, left in place")]
    MountPoint(PathBuf),
    #[error("{0}: nested deeper than {MAX_DEPTH} levels: left in place")]
    TooDeep(PathBuf),
    #[error("{0}: replaced while being removed: left in place")]
    Replaced(PathBuf),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not removed: {}", list(.problems))]
    Incomplete {
        path: PathBuf,
        problems: Vec<RemoveError>,
    },
}

fn list(problems: &[RemoveError]) -> String {
    problems
        .iter()
        .map(|p| p.to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

fn io_err(path: &Path, e: Errno) -> RemoveError {
    RemoveError::Io {
        path: path.to_path_buf(),
        source: e.into(),
    }
}

/// Mount points of this mount namespace, as /proc/self/mountinfo lists them.
fn mount_points() -> BTreeSet<PathBuf> {
    procfs::process::Process::myself()
        .and_then(|p| p.mountinfo())
        .map(|mi| mi.into_iter().map(|m| m.mount_point).collect())
        .unwrap_or_default()
}

/// What the walk compares every entry with: the top's mount and device.
struct Walk {
    mnt_id: u64,
    dev: (u32, u32),
    mounts: BTreeSet<PathBuf>,
    problems: Vec<RemoveError>,
}

const STATX_MASK: StatxFlags = StatxFlags::TYPE
    .union(StatxFlags::INO)
    .union(StatxFlags::MNT_ID);

fn statx_at(dir: BorrowedFd<'_>, name: &OsStr) -> Result<rustix::fs::Statx, Errno> {
    rustix::fs::statx(
        dir,
        name,
        AtFlags::SYMLINK_NOFOLLOW | AtFlags::NO_AUTOMOUNT,
        STATX_MASK,
    )
}

fn file_type(st: &rustix::fs::Statx) -> FileType {
    FileType::from_raw_mode(st.stx_mode.into())
}

impl Walk {
    /// True (and reported) when `st` at `path` is on another mount than the top.
    fn crosses(&mut self, st: &rustix::fs::Statx, path: &Path) -> bool {
        // The mount id where the kernel gives one (5.8 on); the device number only where it
        // does not: on overlayfs and btrfs subvolumes files of one mount can report other
        // devices, and such a removal would be refused for nothing.
        let other_mount = (if st.stx_mask & StatxFlags::MNT_ID.bits() != 0 {
            st.stx_mnt_id != self.mnt_id
        } else {
            (st.stx_dev_major, st.stx_dev_minor) != self.dev
        }) || (st.stx_attributes_mask.contains(StatxAttributes::MOUNT_ROOT)
            && st.stx_attributes.contains(StatxAttributes::MOUNT_ROOT))
            || self.mounts.contains(path);
        if other_mount {
            self.problems
                .push(RemoveError::MountPoint(path.to_path_buf()));
        }
        other_mount
    }

    /// Removes everything inside the directory `dir` (at `path`), depth first.
    fn empty(&mut self, dir: &OwnedFd, path: &Path, depth: usize) {
        if depth >= MAX_DEPTH {
            self.problems.push(RemoveError::TooDeep(path.to_path_buf()));
            return;
        }
        let names = match entries(dir) {
            Ok(n) => n,
            Err(e) => {
                self.problems.push(io_err(path, e));
                return;
            }
        };
        for name in names {
            let child = path.join(&name);
            let st = match statx_at(dir.as_fd(), &name) {
                Ok(st) => st,
                Err(Errno::NOENT) => continue,
                Err(e) => {
                    self.problems.push(io_err(&child, e));
                    continue;
                }
            };
            if self.crosses(&st, &child) {
                continue;
            }
            if file_type(&st) == FileType::Directory {
                let sub = match open_dir_at(dir.as_fd(), &name, &st) {
                    Ok(Some(fd)) => fd,
                    Ok(None) => continue,
                    Err(e) => {
                        self.problems.push(e.at(&child));
                        continue;
                    }
                };
                let before = self.problems.len();
                self.empty(&sub, &child, depth + 1);
                drop(sub);
                if self.problems.len() == before {
                    self.unlink(dir.as_fd(), &name, &child, AtFlags::REMOVEDIR);
                }
            } else {
                self.unlink(dir.as_fd(), &name, &child, AtFlags::empty());
            }
        }
    }

    fn unlink(&mut self, dir: BorrowedFd<'_>, name: &OsStr, path: &Path, flags: AtFlags) {
        match rustix::fs::unlinkat(dir, name, flags) {
            Ok(()) | Err(Errno::NOENT) => {}
            Err(e) => self.problems.push(io_err(path, e)),
        }
    }
}

/// Why a directory could not be opened as the one that was examined.
enum OpenError {
    Errno(Errno),
    Replaced,
}

impl OpenError {
    fn at(self, path: &Path) -> RemoveError {
        match self {
            OpenError::Errno(e) => io_err(path, e),
            OpenError::Replaced => RemoveError::Replaced(path.to_path_buf()),
        }
    }
}

/// Opens directory `name` in `dir` without following a symlink, and checks it is the inode
/// `st` described (not something swapped in since). None if it vanished meanwhile.
fn open_dir_at(
    dir: BorrowedFd<'_>,
    name: &OsStr,
    st: &rustix::fs::Statx,
) -> Result<Option<OwnedFd>, OpenError> {
    let fd = match rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(None),
        Err(e) => return Err(OpenError::Errno(e)),
    };
    let now =
        rustix::fs::statx(&fd, "", AtFlags::EMPTY_PATH, STATX_MASK).map_err(OpenError::Errno)?;
    if (
        now.stx_ino,
        now.stx_dev_major,
        now.stx_dev_minor,
        now.stx_mnt_id,
    ) != (
        st.stx_ino,
        st.stx_dev_major,
        st.stx_dev_minor,
        st.stx_mnt_id,
    ) {
        return Err(OpenError::Replaced);
    }
    Ok(Some(fd))
}

/// The names in directory `dir`, without `.` and `..`.
fn entries(dir: &OwnedFd) -> Result<Vec<OsString>, Errno> {
    let mut out = Vec::new();
    for e in rustix::fs::Dir::read_from(dir)? {
        let e = e?;
        let name = e.file_name().to_bytes();
        if name != b"." && name != b".." {
            out.push(OsStr::from_bytes(name).to_os_string());
        }
    }
    Ok(out)
}

/// Removes `path` and everything below it, never following a symlink (a symlink at `path`
/// itself is left, and an error) and never crossing a mount point (left, and an error). A path
/// that does not exist is fine.
pub fn remove_tree(path: &Path) -> Result<(), RemoveError> {
    let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io_err(path, Errno::INVAL));
    };
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    // The caller's path up to the last component is its own (the run's state dir, a test's
    // temp dir): resolved as given. Canonical, so it compares with mountinfo's mount points.
    let parent = match std::fs::canonicalize(parent) {
        Ok(p) => p,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(RemoveError::Io {
                path: parent.to_path_buf(),
                source: e,
            });
        }
    };
    let dir = rustix::fs::open(
        &parent,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| io_err(&parent, e))?;
    remove_tree_at(dir.as_fd(), name, &parent.join(name))
}

/// Removes entry `name` of the directory `parent` (shown as `path`, which must be its
/// canonical path for the mount check) and everything below it, as [`remove_tree`] does.
pub fn remove_tree_at(
    parent: BorrowedFd<'_>,
    name: &OsStr,
    path: &Path,
) -> Result<(), RemoveError> {
    let st = match statx_at(parent, name) {
        Ok(st) => st,
        Err(Errno::NOENT) => return Ok(()),
        Err(e) => return Err(io_err(path, e)),
    };
    if file_type(&st) == FileType::Symlink {
        return Err(RemoveError::Symlink(path.to_path_buf()));
    }
    let top = rustix::fs::statx(parent, "", AtFlags::EMPTY_PATH, STATX_MASK)
        .map_err(|e| io_err(path, e))?;
    let mut walk = Walk {
        mnt_id: top.stx_mnt_id,
        dev: (top.stx_dev_major, top.stx_dev_minor),
        mounts: mount_points(),
        problems: Vec::new(),
    };
    if walk.crosses(&st, path) {
        return Err(walk.problems.remove(0));
    }
    if file_type(&st) != FileType::Directory {
        return match rustix::fs::unlinkat(parent, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(io_err(path, e)),
        };
    }
    let dir = match open_dir_at(parent, name, &st) {
        Ok(Some(fd)) => fd,
        Ok(None) => return Ok(()),
        Err(e) => return Err(e.at(path)),
    };
    walk.empty(&dir, path, 0);
    drop(dir);
    if walk.problems.is_empty() {
        walk.unlink(parent, name, path, AtFlags::REMOVEDIR);
    }
    match walk.problems.len() {
        0 => Ok(()),
        1 => Err(walk.problems.remove(0)),
        _ => Err(RemoveError::Incomplete {
            path: path.to_path_buf(),
            problems: walk.problems,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{PermissionsExt, symlink};

    fn scratch(label: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("isobench-remove-{}-{label}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// Unmounts on drop, so a failed assertion leaves no mount behind.
    struct Mounted(PathBuf);
    impl Drop for Mounted {
        fn drop(&mut self) {
            let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
        }
    }

    fn bind(src: &Path, dst: &Path) -> Mounted {
        nix::mount::mount(
            Some(src),
            dst,
            None::<&str>,
            nix::mount::MsFlags::MS_BIND,
            None::<&str>,
        )
        .unwrap_or_else(|e| panic!("bind {} on {}: {e}", src.display(), dst.display()));
        Mounted(dst.to_path_buf())
    }

    #[test]
    fn removes_a_tree_but_not_what_its_symlinks_point_to() {
        let d = scratch("links");
        let victim = d.join("victim");
        std::fs::create_dir(&victim).unwrap();
        std::fs::write(victim.join("keep"), "x").unwrap();
        let tree = d.join("tree");
        std::fs::create_dir_all(tree.join("a/b/c")).unwrap();
        std::fs::write(tree.join("a/b/c/f"), "x").unwrap();
        symlink(&victim, tree.join("a/to-dir")).unwrap();
        symlink(victim.join("keep"), tree.join("a/b/to-file")).unwrap();
        symlink("/nonexistent", tree.join("dangling")).unwrap();
        // An overlay work dir looks like this: no permissions at all.
        std::fs::create_dir(tree.join("locked")).unwrap();
        std::fs::write(tree.join("locked/f"), "x").unwrap();
        std::fs::set_permissions(tree.join("locked"), std::fs::Permissions::from_mode(0o000))
            .unwrap();
        if nix::unistd::geteuid().is_root() {
            remove_tree(&tree).unwrap();
            assert!(!tree.exists());
        } else {
            // Without root a 000 directory cannot be read: reported, the rest removed.
            let e = remove_tree(&tree).unwrap_err();
            assert!(e.to_string().contains("locked"), "{e}");
            std::fs::set_permissions(tree.join("locked"), std::fs::Permissions::from_mode(0o755))
                .unwrap();
            remove_tree(&tree).unwrap();
        }
        assert_eq!(std::fs::read_to_string(victim.join("keep")).unwrap(), "x");
        // Gone already: fine.
        remove_tree(&tree).unwrap();
        remove_tree(&d.join("never/was")).unwrap();
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_symlink_at_the_top_is_not_followed() {
        let d = scratch("top-link");
        std::fs::create_dir(d.join("victim")).unwrap();
        std::fs::write(d.join("victim/keep"), "x").unwrap();
        symlink(d.join("victim"), d.join("link")).unwrap();
        let e = remove_tree(&d.join("link")).unwrap_err();
        assert!(matches!(e, RemoveError::Symlink(_)), "{e}");
        assert!(d.join("victim/keep").exists());
        assert!(
            d.join("link").symlink_metadata().is_ok(),
            "the link is left too"
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn mount_points_inside_are_not_crossed() {
        if crate::skip::unless_root() {
            return;
        }
        let d = scratch("mounts");
        let victim = d.join("victim");
        std::fs::create_dir(&victim).unwrap();
        std::fs::write(victim.join("keep"), "x").unwrap();
        let tree = d.join("tree");
        std::fs::create_dir_all(tree.join("deep/mnt")).unwrap();
        std::fs::write(tree.join("other"), "x").unwrap();
        // A bind mount of the same filesystem: same device, another mount.
        let m = bind(&victim, &tree.join("deep/mnt"));
        let e = remove_tree(&tree).unwrap_err();
        assert!(
            e.to_string().contains("deep/mnt: a mount point"),
            "the mount point is named: {e}"
        );
        assert_eq!(std::fs::read_to_string(victim.join("keep")).unwrap(), "x");
        assert!(!tree.join("other").exists(), "the rest is removed");
        assert!(
            tree.join("deep/mnt/keep").exists(),
            "nothing under the mount is touched"
        );
        // The top itself a mount point: refused outright.
        let top = bind(&victim, &tree);
        let e = remove_tree(&tree).unwrap_err();
        assert!(matches!(e, RemoveError::MountPoint(_)), "{e}");
        drop(top);
        drop(m);
        remove_tree(&tree).unwrap();
        assert_eq!(std::fs::read_to_string(victim.join("keep")).unwrap(), "x");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
