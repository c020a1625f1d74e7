//! A run's state dir, `<state root>/<run id>`: made by the run (mode 0700, owner file first),
//! and recognised by `clean` only when it provably is one: a real directory (not a symlink, not
//! a mount point), a direct child of the state root, owned by the cleaning user (root), named by
//! a valid run id, with an owner file that parses and names that id. Everything `clean` reads
//! inside it goes through the descriptor opened during that check, never following a symlink.

use super::run_id::{OWNER_FILE, OWNER_FILE_MAX, Owner, OwnerError, PIDS_DIR, PidRecord, ProcId};
use super::run_id::{RunId, RunIdError};
use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, StatxFlags};
use rustix::io::Errno;
use std::ffi::OsStr;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Default root of the per-run state (overlays, image layers, markers).
pub const DEFAULT_STATE_ROOT: &str = "/var/lib/isobench";
/// Default cache of content-addressed artefacts (VM base disks), kept across runs.
pub const DEFAULT_CACHE_DIR: &str = "/var/cache/isobench";

/// A state dir this process made for its run.
#[derive(Debug)]
pub struct Created {
    pub path: PathBuf,
    /// The state root and its parents that did not exist before (outermost first): only
    /// those may the run remove at its end (`host::remove_made`), and only if empty.
    pub root_made: Vec<PathBuf>,
}

/// Makes run `id`'s state dir under `state_root` (creating the root if needed), private to its
/// owner, and writes its owner file and pid-record dir. Fails if it exists already. On error
/// it removes what it made, and only that: a state dir that was there before (somebody else's
/// in a shared root) stays.
pub fn create(state_root: &Path, id: &RunId, run_dir: &Path) -> std::io::Result<Created> {
    let root_made = crate::host::make_dirs(state_root).map_err(named(state_root))?;
    let path = state_root.join(id);
    if let Err(e) = std::fs::DirBuilder::new().mode(0o700).create(&path) {
        crate::host::remove_made(&root_made);
        return Err(named(&path)(e));
    }
    fill(&path, id, run_dir).inspect_err(|_| {
        let _ = crate::host::remove_dir_tree(&path);
        crate::host::remove_made(&root_made);
    })?;
    Ok(Created { path, root_made })
}

/// The owner file and the pid-record dir of a state dir just made.
fn fill(path: &Path, id: &RunId, run_dir: &Path) -> std::io::Result<()> {
    let uid = rustix::process::geteuid().as_raw();
    let owner = path.join(OWNER_FILE);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&owner)
        .and_then(|mut f| {
            use std::io::Write;
            f.write_all(Owner::new(id, uid, run_dir).to_json().as_bytes())
        })
        .map_err(named(&owner))?;
    let pids = path.join(PIDS_DIR);
    std::fs::create_dir(&pids).map_err(named(&pids))
}

/// An error that names the path it happened on.
fn named(p: &Path) -> impl FnOnce(std::io::Error) -> std::io::Error + '_ {
    move |e| std::io::Error::new(e.kind(), format!("{}: {e}", p.display()))
}

/// Why the state root cannot be trusted to hold run state dirs.
#[derive(Debug, thiserror::Error)]
pub enum StateRootError {
    #[error("state root {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "state root {path}: owned by uid {uid}; only a root owned by uid {wanted} is cleaned (another user could swap its entries)"
    )]
    Owner {
        path: PathBuf,
        uid: u32,
        wanted: u32,
    },
    #[error(
        "state root {path}: writable by other users (mode {mode:o}) without the sticky bit; not cleaned (they could swap its entries)"
    )]
    Writable { path: PathBuf, mode: u32 },
}

/// The state root as `clean` uses it: its canonical path and a descriptor every state dir is
/// opened relative to.
#[derive(Debug)]
pub struct StateRoot {
    pub path: PathBuf,
    fd: OwnedFd,
}

/// Why a state-root entry is not a run's state dir.
#[derive(Debug, thiserror::Error)]
pub enum Rejected {
    #[error("not a run id: {0}")]
    Name(#[from] RunIdError),
    #[error("a symlink (to {0}): not followed")]
    Symlink(String),
    #[error("not a directory")]
    NotDir,
    #[error("a mount point: not a run's state dir")]
    MountPoint,
    #[error("owned by uid {0}, not by root: not a run's state dir")]
    OwnedBy(u32),
    #[error("{OWNER_FILE}: {0}")]
    OwnerFile(FileError),
    #[error(transparent)]
    Owner(#[from] OwnerError),
    #[error("{0}")]
    Io(String),
}

/// Why a small file of a state dir was not read (or removed).
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("missing")]
    Missing,
    #[error("a symlink: not followed")]
    Symlink,
    #[error("not a regular file")]
    NotRegular,
    #[error("owned by uid {found}, not {wanted}")]
    Owner { found: u32, wanted: u32 },
    #[error("larger than {0} bytes")]
    TooLarge(usize),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl From<Errno> for FileError {
    fn from(e: Errno) -> FileError {
        FileError::Io(e.into())
    }
}

/// A [`FileError`] naming the file's path.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", .path.display())]
pub struct StateFileError {
    pub path: PathBuf,
    pub source: FileError,
}

/// A state dir proven to be run `id`'s.
#[derive(Debug)]
pub struct RunStateDir {
    pub id: RunId,
    /// `<canonical state root>/<id>`.
    pub path: PathBuf,
    pub owner: Owner,
    fd: OwnedFd,
}

fn statx_mask() -> StatxFlags {
    StatxFlags::TYPE | StatxFlags::MODE | StatxFlags::UID | StatxFlags::INO | StatxFlags::MNT_ID
}

impl StateRoot {
    /// Opens the state root `path` (the user's own argument: followed as given) and checks that
    /// no other user can swap its entries: owned by `uid`, and not writable by others unless
    /// sticky (as /tmp is, where others cannot rename root's entries).
    pub fn open(path: &Path, uid: u32) -> Result<StateRoot, StateRootError> {
        let io = |source: std::io::Error| StateRootError::Io {
            path: path.to_path_buf(),
            source,
        };
        let canonical = std::fs::canonicalize(path).map_err(io)?;
        let fd = rustix::fs::open(
            &canonical,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| io(e.into()))?;
        let st = rustix::fs::fstat(&fd).map_err(|e| io(e.into()))?;
        if st.st_uid != uid {
            return Err(StateRootError::Owner {
                path: canonical,
                uid: st.st_uid,
                wanted: uid,
            });
        }
        let mode = st.st_mode & 0o7777;
        if mode & 0o022 != 0 && mode & 0o1000 == 0 {
            return Err(StateRootError::Writable {
                path: canonical,
                mode,
            });
        }
        Ok(StateRoot {
            path: canonical,
            fd,
        })
    }

    /// The names in the state root.
    pub fn entries(&self) -> Result<Vec<std::ffi::OsString>, StateRootError> {
        let io = |e: Errno| StateRootError::Io {
            path: self.path.clone(),
            source: e.into(),
        };
        let mut out = Vec::new();
        for e in rustix::fs::Dir::read_from(&self.fd).map_err(io)? {
            let name = e.map_err(io)?.file_name().to_bytes().to_vec();
            if name != b"." && name != b".." {
                out.push(OsStr::from_bytes(&name).to_os_string());
            }
        }
        Ok(out)
    }

    /// Checks that entry `name` is a run's state dir owned by `uid` (see the module docs).
    pub fn validate(&self, name: &OsStr, uid: u32) -> Result<RunStateDir, Rejected> {
        let id = RunId::parse_bytes(name.as_bytes())?;
        let path = self.path.join(&id);
        let io = |e: Errno| Rejected::Io(format!("{}: {e}", path.display()));
        let st = rustix::fs::statx(
            &self.fd,
            name,
            AtFlags::SYMLINK_NOFOLLOW | AtFlags::NO_AUTOMOUNT,
            statx_mask(),
        )
        .map_err(io)?;
        match FileType::from_raw_mode(st.stx_mode.into()) {
            FileType::Directory => {}
            FileType::Symlink => {
                let target = rustix::fs::readlinkat(&self.fd, name, Vec::new())
                    .map(|t| super::run_id::escape(t.as_bytes()))
                    .unwrap_or_else(|e| format!("<{e}>"));
                return Err(Rejected::Symlink(target));
            }
            _ => return Err(Rejected::NotDir),
        }
        let root =
            rustix::fs::statx(&self.fd, "", AtFlags::EMPTY_PATH, statx_mask()).map_err(io)?;
        if st.stx_mnt_id != root.stx_mnt_id
            || (st.stx_dev_major, st.stx_dev_minor) != (root.stx_dev_major, root.stx_dev_minor)
        {
            return Err(Rejected::MountPoint);
        }
        if st.stx_uid != uid {
            return Err(Rejected::OwnedBy(st.stx_uid));
        }
        let fd = rustix::fs::openat(
            &self.fd,
            name,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(io)?;
        let now = rustix::fs::statx(&fd, "", AtFlags::EMPTY_PATH, statx_mask()).map_err(io)?;
        if (now.stx_ino, now.stx_mnt_id) != (st.stx_ino, st.stx_mnt_id) {
            return Err(Rejected::Io(format!(
                "{}: replaced while being checked",
                path.display()
            )));
        }
        let text = read_file_at(&fd, OsStr::new(OWNER_FILE), OWNER_FILE_MAX, uid)
            .map_err(Rejected::OwnerFile)?
            .ok_or(Rejected::OwnerFile(FileError::Missing))?;
        let owner = Owner::parse(&text, &id, uid)?;
        Ok(RunStateDir {
            id,
            path,
            owner,
            fd,
        })
    }

    /// Removes run state dir `dir` (a [`RunStateDir`] of this root) without following a symlink
    /// or crossing a mount point.
    pub fn remove(&self, dir: &RunStateDir) -> Result<(), super::remove::RemoveError> {
        super::remove::remove_tree_at(self.fd.as_fd(), OsStr::new(dir.id.as_str()), &dir.path)
    }
}

/// Reads a small regular file `name` of directory `dir` owned by `uid`, without following a
/// symlink and without blocking on a FIFO: Ok(None) if it does not exist.
fn read_file_at(
    dir: &OwnedFd,
    name: &OsStr,
    max: usize,
    uid: u32,
) -> Result<Option<Vec<u8>>, FileError> {
    let fd = match rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    ) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(None),
        Err(Errno::LOOP) => return Err(FileError::Symlink),
        Err(e) => return Err(e.into()),
    };
    let st = rustix::fs::fstat(&fd)?;
    if FileType::from_raw_mode(st.st_mode) != FileType::RegularFile {
        return Err(FileError::NotRegular);
    }
    if st.st_uid != uid {
        return Err(FileError::Owner {
            found: st.st_uid,
            wanted: uid,
        });
    }
    let mut text = Vec::new();
    std::fs::File::from(fd)
        .take(max as u64 + 1)
        .read_to_end(&mut text)?;
    if text.len() > max {
        return Err(FileError::TooLarge(max));
    }
    Ok(Some(text))
}

impl RunStateDir {
    /// Reads file `name` of this state dir (see [`read_file_at`]); the error names the path.
    pub fn read_file(&self, name: &str, max: usize) -> Result<Option<Vec<u8>>, StateFileError> {
        read_file_at(&self.fd, OsStr::new(name), max, self.owner.uid).map_err(|source| {
            StateFileError {
                path: self.path.join(name),
                source,
            }
        })
    }

    /// Removes the entry `name` of this state dir (unlinkat: a symlink is removed, its target
    /// never touched).
    pub fn remove_file(&self, name: &str) -> Result<(), StateFileError> {
        match rustix::fs::unlinkat(&self.fd, name, AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(StateFileError {
                path: self.path.join(name),
                source: e.into(),
            }),
        }
    }

    /// Unmounts the mount at `mount_point`, which must lie below this state dir: it is reached
    /// beneath the dir's descriptor (openat2 RESOLVE_BENEATH, no symlink followed) and
    /// unmounted through the descriptor of what was reached, so a path swapped meanwhile
    /// cannot redirect the unmount elsewhere.
    pub fn unmount(&self, mount_point: &Path) -> std::io::Result<()> {
        use rustix::fs::ResolveFlags;
        let rel = mount_point.strip_prefix(&self.path).map_err(|_| {
            std::io::Error::new(std::io::ErrorKind::InvalidInput, "not below the state dir")
        })?;
        let fd = rustix::fs::openat2(
            &self.fd,
            rel,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_MAGICLINKS,
        )?;
        let st = rustix::fs::statx(&fd, "", AtFlags::EMPTY_PATH, StatxFlags::MNT_ID)?;
        if !st
            .stx_attributes
            .contains(rustix::fs::StatxAttributes::MOUNT_ROOT)
        {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a mount point (any more)",
            ));
        }
        use std::os::fd::AsRawFd;
        // The magic link is followed to exactly the mount the descriptor holds.
        let via = format!("/proc/self/fd/{}", fd.as_raw_fd());
        nix::mount::umount2(via.as_str(), nix::mount::MntFlags::MNT_DETACH)?;
        Ok(())
    }

    /// The processes recorded in `pids/`, and the entries there that are not records.
    pub fn recorded(&self) -> (Vec<ProcId>, Vec<std::ffi::OsString>) {
        let mut procs = Vec::new();
        let mut bad = Vec::new();
        let Ok(dir) = rustix::fs::openat(
            &self.fd,
            PIDS_DIR,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        ) else {
            return (procs, bad);
        };
        let Ok(entries) = rustix::fs::Dir::read_from(&dir) else {
            return (procs, bad);
        };
        for e in entries.flatten() {
            let name = e.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            match PidRecord::parse_name(name) {
                Some(p) => procs.push(p),
                None => bad.push(OsStr::from_bytes(name).to_os_string()),
            }
        }
        (procs, bad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn scratch(label: &str) -> PathBuf {
        let d =
            std::env::temp_dir().join(format!("isobench-statedir-{}-{label}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::set_permissions(&d, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        d
    }

    fn uid() -> u32 {
        rustix::process::geteuid().as_raw()
    }

    /// A run id of this process: whether its owner lives does not matter to a state dir.
    fn id(label: &str) -> RunId {
        RunId::for_this_process(label).unwrap()
    }

    #[test]
    fn a_created_state_dir_validates() {
        let d = scratch("created");
        let root = d.join("root");
        let id = id("t");
        let c = create(&root, &id, Path::new("/runs/x")).unwrap();
        assert!(!c.root_made.is_empty());
        assert!(
            create(&root, &id, Path::new("/runs/x")).is_err(),
            "exists already"
        );
        let r = StateRoot::open(&root, uid()).unwrap();
        let sd = r.validate(OsStr::new(id.as_str()), uid()).unwrap();
        assert_eq!(sd.id, id);
        assert_eq!(sd.owner.run_dir, Path::new("/runs/x"));
        assert_eq!(sd.path, std::fs::canonicalize(&c.path).unwrap());
        assert_eq!(sd.recorded(), (Vec::new(), Vec::new()));
        r.remove(&sd).unwrap();
        assert!(!c.path.exists());
        assert!(root.exists(), "the root stays");
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn look_alikes_are_rejected_with_a_reason() {
        let d = scratch("lookalikes");
        let root = d.join("root");
        std::fs::create_dir(&root).unwrap();
        let victim = d.join("victim");
        std::fs::create_dir(&victim).unwrap();
        let sym = id("sym");
        std::fs::write(
            victim.join(OWNER_FILE),
            Owner::new(&sym, uid(), Path::new("/r")).to_json(),
        )
        .unwrap();
        symlink(&victim, root.join(sym.as_str())).unwrap();
        let garbage = id("garbage");
        std::fs::create_dir(root.join(garbage.as_str())).unwrap();
        std::fs::write(root.join(garbage.as_str()).join(OWNER_FILE), "garbage").unwrap();
        let other = id("other");
        std::fs::create_dir(root.join(other.as_str())).unwrap();
        std::fs::write(
            root.join(other.as_str()).join(OWNER_FILE),
            Owner::new(&id("elsewhere"), uid(), Path::new("/r")).to_json(),
        )
        .unwrap();
        let missing = id("missing");
        std::fs::create_dir(root.join(missing.as_str())).unwrap();
        let linked = id("linked");
        std::fs::create_dir(root.join(linked.as_str())).unwrap();
        symlink(
            victim.join(OWNER_FILE),
            root.join(linked.as_str()).join(OWNER_FILE),
        )
        .unwrap();
        let file = id("file");
        std::fs::write(root.join(file.as_str()), "").unwrap();
        std::fs::create_dir(root.join("not-a-run")).unwrap();

        let r = StateRoot::open(&root, uid()).unwrap();
        for (name, want) in [
            (sym.as_str(), "a symlink (to "),
            (garbage.as_str(), "does not parse"),
            (other.as_str(), "names run"),
            (missing.as_str(), "missing"),
            (linked.as_str(), "a symlink: not followed"),
            (file.as_str(), "not a directory"),
            ("not-a-run", "not a run id"),
        ] {
            let why = r
                .validate(OsStr::new(name), uid())
                .map(|_| String::new())
                .unwrap_or_else(|e| e.to_string());
            assert!(why.contains(want), "{name}: {why:?}, wanted {want:?}");
        }
        assert_eq!(r.entries().unwrap().len(), 7);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn a_root_others_can_write_is_not_trusted() {
        let d = scratch("writable");
        let root = d.join("root");
        std::fs::create_dir(&root).unwrap();
        let mode = |m| {
            std::fs::set_permissions(&root, std::os::unix::fs::PermissionsExt::from_mode(m))
                .unwrap()
        };
        mode(0o777);
        let e = StateRoot::open(&root, uid()).unwrap_err();
        assert!(e.to_string().contains("writable by other users"), "{e}");
        mode(0o1777);
        StateRoot::open(&root, uid()).expect("sticky, as /tmp");
        let e = StateRoot::open(&root, uid() + 1).unwrap_err();
        assert!(e.to_string().contains("owned by uid"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
