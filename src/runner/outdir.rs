//! The results directory of a run (`--out`, default `runs/<time>-<scenario>`):
//! - one that holds anything is refused unless `--overwrite`, which empties it first, so no
//!   stale report.html or plot of another run survives next to this run's files;
//! - it is locked (flock on the directory itself) for the run's whole life: a second run into
//!   it fails at once instead of interleaving rows, or emptying it under the first;
//! - it is proved writable before the run creates anything else, and removed again (with the
//!   parents the run made) when the run stops on bad input before measuring anything.
//!
//! Emptying never follows a symlink and never crosses a mount point: a directory holding a
//! mount anywhere below it is refused before anything is removed (statx's mount id and
//! STATX_ATTR_MOUNT_ROOT checked for every entry), then each entry goes through
//! host::remove, the removal `clean` and the runner use.

use rustix::fs::{AtFlags, Mode, OFlags, StatxAttributes, StatxFlags, openat, statx, unlinkat};
use std::ffi::{CStr, OsStr};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Why a results directory cannot be used. Every one is bad input (exit 2), and nothing of
/// the run exists yet when it is raised.
#[derive(Debug, thiserror::Error)]
pub enum OutDirError {
    #[error("results directory {0}: exists and is not a directory")]
    NotADirectory(PathBuf),
    #[error("results directory {path}: cannot create it: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("results directory {path}: cannot open it: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("results directory {0}: another isobench run is writing into it (it holds its lock)")]
    Locked(PathBuf),
    #[error(
        "results directory {0}: not empty; give a new --out, or pass --overwrite to empty it first"
    )]
    NotEmpty(PathBuf),
    #[error("results directory {path}: not writable: {source}")]
    Unwritable {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("results directory {path}: emptying it for --overwrite: {source}")]
    Empty { path: PathBuf, source: EmptyError },
}

/// Why `--overwrite` could not empty a results directory.
#[derive(Debug, thiserror::Error)]
pub enum EmptyError {
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{} is a mount point; nothing was removed (isobench does not cross mounts)",
        .0.display()
    )]
    MountPoint(PathBuf),
    #[error(transparent)]
    Remove(#[from] crate::host::remove::RemoveError),
}

/// An [`EmptyError::Io`] naming `path`.
fn io_at(path: &Path) -> impl FnOnce(rustix::io::Errno) -> EmptyError + '_ {
    move |e| EmptyError::Io {
        path: path.to_path_buf(),
        source: e.into(),
    }
}

/// A results directory in use by this run: open and locked until dropped.
#[derive(Debug)]
pub struct OutDir {
    path: PathBuf,
    /// The directory itself; its flock is the run's lock.
    dir: File,
    /// Directories this run made (the out dir and missing parents), outermost first.
    created: Vec<PathBuf>,
    /// `--overwrite` of a directory that holds something: emptied by [`OutDir::clear`], once
    /// the run has made everything else it needs.
    to_clear: bool,
}

impl OutDir {
    /// Makes `path` the results directory of this run: created if missing, locked, writable,
    /// and empty or, with `overwrite`, to be emptied by [`OutDir::clear`] (refused otherwise,
    /// and refused at once when a mount point sits below it). On error nothing this call made
    /// is left.
    pub fn prepare(path: &Path, overwrite: bool) -> Result<OutDir, OutDirError> {
        let created = crate::host::make_dirs(path).map_err(|source| OutDirError::Create {
            path: path.to_path_buf(),
            source,
        })?;
        let dir = open_locked(path).map_err(|e| {
            // Another run holds it (it may even have made it a moment ago): not ours to
            // remove.
            if !matches!(e, OutDirError::Locked(_)) {
                crate::host::remove_made(&created);
            }
            e
        })?;
        let mut out = OutDir {
            path: path.to_path_buf(),
            dir,
            created,
            to_clear: false,
        };
        out.accept_contents(overwrite).map_err(|e| out.undo(e))?;
        out.probe_writable().map_err(|source| {
            out.undo(OutDirError::Unwritable {
                path: path.to_path_buf(),
                source,
            })
        })?;
        Ok(out)
    }

    /// An empty directory is taken as is; one that holds something only with `overwrite`
    /// and no mount point below it, to be emptied by [`OutDir::clear`].
    fn accept_contents(&mut self, overwrite: bool) -> Result<(), OutDirError> {
        let holds = entries(self.dir.as_fd()).map_err(|e| OutDirError::Open {
            path: self.path.clone(),
            source: e.into(),
        })?;
        if holds.is_empty() {
            return Ok(());
        }
        if !overwrite {
            return Err(OutDirError::NotEmpty(self.path.clone()));
        }
        self.check_no_mount().map_err(|source| OutDirError::Empty {
            path: self.path.clone(),
            source,
        })?;
        self.to_clear = true;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Empties a directory given with `--overwrite`. Called once the run has checked its
    /// input and made its state dir, so an error found before (an unusable --state-dir) leaves
    /// the old results in place.
    pub fn clear(&mut self) -> Result<(), OutDirError> {
        if std::mem::take(&mut self.to_clear) {
            self.empty().map_err(|source| OutDirError::Empty {
                path: self.path.clone(),
                source,
            })?;
        }
        Ok(())
    }

    /// Removes everything the run wrote into the directory, and the directories it made: for a
    /// run that stopped on bad input before it measured anything.
    pub fn discard(self) {
        // Not cleared yet: what it holds is the old results --overwrite was to replace, and
        // the run wrote nothing there.
        if !self.to_clear {
            let _ = self.empty();
        }
        crate::host::remove_made(&self.created);
    }

    /// Removes what `prepare` made, and returns `e`.
    fn undo(&self, e: OutDirError) -> OutDirError {
        crate::host::remove_made(&self.created);
        e
    }

    /// Refuses a directory with a mount point anywhere below it, before anything is removed.
    fn check_no_mount(&self) -> Result<(), EmptyError> {
        let fd = self.dir.as_fd();
        let here = mount_id(fd, c".").map_err(io_at(&self.path))?;
        match find_mount(fd, &self.path, here)? {
            Some(m) => Err(EmptyError::MountPoint(m)),
            None => Ok(()),
        }
    }

    /// Empties the directory, refusing (before removing anything) if a mount point is
    /// anywhere below it.
    fn empty(&self) -> Result<(), EmptyError> {
        self.check_no_mount()?;
        let fd = self.dir.as_fd();
        // host::remove compares against mountinfo's canonical mount points.
        let canonical = std::fs::canonicalize(&self.path).map_err(|source| EmptyError::Io {
            path: self.path.clone(),
            source,
        })?;
        for name in entries(fd).map_err(io_at(&self.path))? {
            let st = stat_entry(fd, &name).map_err(io_at(&self.path))?;
            let name = OsStr::from_bytes(&name);
            if is_dir(&st) {
                crate::host::remove::remove_tree_at(fd, name, &canonical.join(name))?;
            } else {
                // A symlink is unlinked itself, never followed; files likewise.
                unlinkat(fd, name, AtFlags::empty()).map_err(io_at(&canonical.join(name)))?;
            }
        }
        Ok(())
    }

    /// Creates and removes a file: as root, only this tells a read-only mount or a full
    /// filesystem before the run makes anything else.
    fn probe_writable(&self) -> std::io::Result<()> {
        let name = format!(".isobench-probe-{}", std::process::id());
        let fd = openat(
            self.dir.as_fd(),
            name.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o600),
        )?;
        drop(fd);
        unlinkat(self.dir.as_fd(), name.as_str(), AtFlags::empty())?;
        Ok(())
    }
}

/// Opens `path` as a directory and takes its lock. O_DIRECTORY: a FIFO or a device given as
/// --out is refused at once instead of blocking the open.
fn open_locked(path: &Path) -> Result<File, OutDirError> {
    use std::os::unix::fs::OpenOptionsExt;
    let open_err = |source| OutDirError::Open {
        path: path.to_path_buf(),
        source,
    };
    let dir = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NONBLOCK)
        .open(path)
        .map_err(|source| {
            if source.raw_os_error() == Some(libc::ENOTDIR) {
                OutDirError::NotADirectory(path.to_path_buf())
            } else {
                open_err(source)
            }
        })?;
    if !dir.metadata().map(|m| m.is_dir()).unwrap_or(false) {
        return Err(OutDirError::NotADirectory(path.to_path_buf()));
    }
    match dir.try_lock() {
        Ok(()) => Ok(dir),
        Err(std::fs::TryLockError::WouldBlock) => Err(OutDirError::Locked(path.to_path_buf())),
        Err(std::fs::TryLockError::Error(source)) => Err(open_err(source)),
    }
}

/// The names in a directory, without `.` and `..`.
fn entries(dir: BorrowedFd<'_>) -> rustix::io::Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    for e in rustix::fs::Dir::read_from(dir)? {
        let name = e?.file_name().to_bytes().to_vec();
        if name != b"." && name != b".." {
            out.push(name);
        }
    }
    Ok(out)
}

/// Facts of the entry `name` in `dir`, the entry itself if it is a symlink.
fn stat_entry(dir: BorrowedFd<'_>, name: &[u8]) -> rustix::io::Result<rustix::fs::Statx> {
    statx(
        dir,
        OsStr::from_bytes(name),
        AtFlags::SYMLINK_NOFOLLOW,
        StatxFlags::TYPE | StatxFlags::MNT_ID,
    )
}

fn mount_id(dir: BorrowedFd<'_>, name: &CStr) -> rustix::io::Result<u64> {
    statx(dir, name, AtFlags::SYMLINK_NOFOLLOW, StatxFlags::MNT_ID).map(|s| s.stx_mnt_id)
}

/// True when an entry is the root of a mount (another mount id than its parent's, or
/// STATX_ATTR_MOUNT_ROOT, which also tells a bind mount of the same filesystem).
fn is_mount(st: &rustix::fs::Statx, parent_mount: u64) -> bool {
    st.stx_mnt_id != parent_mount
        || (st.stx_attributes_mask.contains(StatxAttributes::MOUNT_ROOT)
            && st.stx_attributes.contains(StatxAttributes::MOUNT_ROOT))
}

fn is_dir(st: &rustix::fs::Statx) -> bool {
    rustix::fs::FileType::from_raw_mode(st.stx_mode.into()) == rustix::fs::FileType::Directory
}

/// Opens the subdirectory `name` of `dir`, never through a symlink.
fn open_subdir(dir: BorrowedFd<'_>, name: &[u8]) -> rustix::io::Result<OwnedFd> {
    openat(
        dir,
        OsStr::from_bytes(name),
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
}

/// The first mount point found below `dir` (whose mount id is `mount`), if any.
fn find_mount(dir: BorrowedFd<'_>, path: &Path, mount: u64) -> Result<Option<PathBuf>, EmptyError> {
    let at = |name: &[u8]| path.join(OsStr::from_bytes(name));
    for name in entries(dir).map_err(io_at(path))? {
        let st = stat_entry(dir, &name).map_err(io_at(&at(&name)))?;
        if is_mount(&st, mount) {
            return Ok(Some(at(&name)));
        }
        if is_dir(&st) {
            let sub = open_subdir(dir, &name).map_err(io_at(&at(&name)))?;
            if let Some(m) = find_mount(sub.as_fd(), &at(&name), mount)? {
                return Ok(Some(m));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_directory_and_its_parents_are_made_and_removed_on_discard() {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("a/b/out");
        let o = OutDir::prepare(&out, false).unwrap();
        std::fs::write(out.join("samples.csv"), "x").unwrap();
        o.discard();
        assert!(
            !t.path().join("a").exists(),
            "the parents it made are gone too"
        );
    }

    #[test]
    fn a_non_empty_directory_is_refused_unless_overwrite_and_a_lock_excludes_a_second_run() {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("out");
        std::fs::create_dir_all(out.join("plots")).unwrap();
        std::fs::write(out.join("report.html"), "stale").unwrap();
        std::fs::write(out.join("plots/startup.svg"), "stale").unwrap();
        let e = OutDir::prepare(&out, false).unwrap_err();
        assert!(matches!(e, OutDirError::NotEmpty(_)), "{e}");
        assert!(
            out.join("report.html").exists(),
            "a refusal removes nothing"
        );

        let mut o = OutDir::prepare(&out, true).unwrap();
        assert!(
            out.join("report.html").exists(),
            "nothing is removed before the run starts"
        );
        o.clear().unwrap();
        assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
        let second = OutDir::prepare(&out, true).unwrap_err();
        assert!(matches!(second, OutDirError::Locked(_)), "{second}");
        drop(o);
        OutDir::prepare(&out, false).expect("the lock goes with the first run");
    }

    #[test]
    fn a_run_refused_before_it_cleared_the_old_results_leaves_them() {
        let t = tempfile::tempdir().unwrap();
        let out = t.path().join("out");
        std::fs::create_dir_all(&out).unwrap();
        std::fs::write(out.join("samples.csv"), "old").unwrap();
        OutDir::prepare(&out, true).unwrap().discard();
        assert_eq!(
            std::fs::read_to_string(out.join("samples.csv")).unwrap(),
            "old"
        );
    }

    #[test]
    fn overwrite_unlinks_symlinks_and_never_follows_them() {
        let t = tempfile::tempdir().unwrap();
        let outside = t.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("keep"), "mine").unwrap();
        let out = t.path().join("out");
        std::fs::create_dir_all(out.join("sub")).unwrap();
        std::os::unix::fs::symlink(&outside, out.join("dirlink")).unwrap();
        std::os::unix::fs::symlink(outside.join("keep"), out.join("sub/filelink")).unwrap();
        OutDir::prepare(&out, true).unwrap().clear().unwrap();
        assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
        assert_eq!(
            std::fs::read_to_string(outside.join("keep")).unwrap(),
            "mine"
        );
    }

    #[test]
    fn a_path_below_a_file_is_a_create_error_and_leaves_nothing() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(t.path().join("f"), "").unwrap();
        let e = OutDir::prepare(&t.path().join("f/out"), false).unwrap_err();
        assert!(matches!(e, OutDirError::Create { .. }), "{e}");
        assert!(e.to_string().contains("f/out"), "{e}");
        let e = OutDir::prepare(&t.path().join("f"), false).unwrap_err();
        assert!(matches!(e, OutDirError::NotADirectory(_)), "{e}");
    }
}
