//! The mount namespace every container's own is copied from: the host's tree with every mount
//! detached but `/` and those on the paths to the run's state dir and the image's layers (a
//! directory image may live anywhere), all private.
//!
//! Why: a new mount namespace starts as a copy of its creator's, every mount of it, and the
//! container then makes them private and detaches them all again after pivot_root (each
//! detach waits an RCU grace period). Copying the host's tree made a launch's cost grow with
//! the host's mount table; a host that runs containers has hundreds of mounts (every running
//! container's overlay among them). Copied from this template, a container's namespace holds
//! the one or two mounts its root lives on. What the instance sees after pivot_root is the
//! same: only its own tree.
//!
//! The template is made on a thread of its own: a thread may unshare its mount namespace
//! (it takes a private fs_struct with it), and the host's, the harness's own, is untouched.
//! Its descriptor keeps it alive; the container's child enters it (setns) and unshares a copy.

use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};

pub struct MountTemplate {
    fd: OwnedFd,
    /// How many mounts a copy of it holds.
    pub mounts: usize,
}

impl MountTemplate {
    /// The template for instances whose files are under the directories `keep` (the run's
    /// state dir, the image's layers).
    pub fn new(keep: &[&Path]) -> std::io::Result<MountTemplate> {
        // Compared with mount points, which are canonical.
        let keep: Vec<PathBuf> = keep
            .iter()
            .map(|p| p.canonicalize().unwrap_or_else(|_| p.to_path_buf()))
            .collect();
        std::thread::Builder::new()
            .name("isobench-mntns".into())
            .spawn(move || make(&keep))?
            .join()
            .map_err(|_| std::io::Error::other("the mount template's thread panicked"))?
    }

    pub fn fd(&self) -> libc::c_int {
        self.fd.as_raw_fd()
    }
}

/// On its own thread: the private copy, trimmed, then a descriptor of it.
fn make(keep: &[PathBuf]) -> std::io::Result<MountTemplate> {
    use nix::mount::{MntFlags, MsFlags, mount, umount2};
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)?;
    // Nothing done here may reach the host's namespace.
    mount(
        None::<&str>,
        "/",
        None::<&str>,
        MsFlags::MS_REC | MsFlags::MS_PRIVATE,
        None::<&str>,
    )?;
    // This thread's view (/proc/self is the main thread's, the host's namespace). Both files
    // are opened before /proc itself is detached below.
    let (ns, after) = (
        std::fs::File::open("/proc/thread-self/ns/mnt")?,
        std::fs::File::open("/proc/thread-self/mountinfo")?,
    );
    let read = |f: std::fs::File| {
        use procfs::FromRead;
        procfs::process::MountInfos::from_read(f).map_err(std::io::Error::other)
    };
    let before = std::fs::File::open("/proc/thread-self/mountinfo")?;
    let mut points: Vec<PathBuf> = read(before)?.into_iter().map(|m| m.mount_point).collect();
    // Deepest first, so a mount goes before the one it sits on. These are mount points of
    // this private copy, detached in it alone.
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in points {
        if !p.is_absolute() || keep.iter().any(|k| k.starts_with(&p)) {
            continue;
        }
        // One detached with its parent already is gone (EINVAL/ENOENT): nothing to do. A
        // symlink is not followed (the path is the host's, if only in this private copy).
        let _ = umount2(&p, MntFlags::MNT_DETACH | MntFlags::UMOUNT_NOFOLLOW);
    }
    let mounts = read(after)?.0.len();
    let fd = ns;
    Ok(MountTemplate {
        fd: fd.into(),
        mounts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The template keeps `/` and the mounts on the path to the state dir, and nothing of the
    /// host's tree changes.
    #[test]
    fn the_template_holds_only_what_the_state_dir_needs() {
        if crate::skip::unless_root() {
            return;
        }
        let host_before = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let t = MountTemplate::new(&[Path::new("/tmp")]).unwrap();
        let host_after = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        assert_eq!(host_before, host_after, "the host's mount table changed");
        let on_path = host_before
            .lines()
            .filter_map(|l| l.split(' ').nth(4))
            .filter(|mp| Path::new("/tmp").starts_with(mp))
            .count();
        assert!(t.mounts >= 1 && t.mounts <= on_path, "{} mounts", t.mounts);
        assert!(t.mounts < host_before.lines().count());
        // A descriptor of a mount namespace other than ours.
        let ours = std::fs::read_link("/proc/self/ns/mnt").unwrap();
        let its = std::fs::read_link(format!("/proc/self/fd/{}", t.fd())).unwrap();
        assert_ne!(ours, its);
        assert!(its.to_string_lossy().starts_with("mnt:["), "{its:?}");
    }
}
