//! Facts and seams of the host: cgroups, host metadata, privileges, run identity and state
//! dirs, safe removal.

pub mod cgroup;
pub mod exec;
pub mod facts;
pub mod fd;
pub mod remove;
pub mod run_id;
pub mod state_dir;

/// True when running as root (uid 0): launching containers needs it.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Raises the soft open-file limit to the hard one: every live instance keeps a pipe or two
/// open, and N can be in the thousands.
pub fn raise_nofile_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE)
        && soft < hard
    {
        let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    }
}

/// The host's kernel boot_id, the identity every container must report and no VM may.
pub fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Peak resident set of this process (VmHWM), in KiB.
pub fn self_peak_rss_kib() -> Option<u64> {
    procfs::process::Process::myself()
        .ok()?
        .status()
        .ok()?
        .vmhwm
}

/// `pid` and every process below it (through /proc/PID/task/*/children), pid order.
pub fn with_descendants(pid: i32) -> Vec<i32> {
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let p = out[i];
        if let Ok(tasks) = std::fs::read_dir(format!("/proc/{p}/task")) {
            for t in tasks.flatten() {
                if let Ok(text) = std::fs::read_to_string(t.path().join("children")) {
                    out.extend(
                        text.split_whitespace()
                            .filter_map(|c| c.parse::<i32>().ok()),
                    );
                }
            }
        }
        i += 1;
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Makes this process the reaper of its orphaned descendants. A runtime started detached
/// (`runc run --detach`) leaves the container's init without a parent; without this it would
/// be re-parented to PID 1, which on some hosts (minimal inits, sandboxes) never reaps it.
pub fn become_subreaper() {
    // SAFETY: prctl with integer arguments only; no memory is passed.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    }
}

/// True when `pid` is gone or a zombie (exited, waiting for a parent that may never reap it).
pub fn is_gone(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_none_or(|state| state == "Z" || state == "X"),
    }
}

/// Waits up to `limit` for `pid` to end, reaping it if it is our child (or, as subreaper,
/// our orphaned descendant). Returns whether it ended.
pub fn wait_gone(pid: i32, limit: std::time::Duration) -> bool {
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    let start = std::time::Instant::now();
    loop {
        match waitpid(nix::unistd::Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) => {}
            Ok(_) => return true,
            // Not ours to reap: its end shows in /proc.
            Err(_) if is_gone(pid) => return true,
            Err(_) => {}
        }
        if start.elapsed() >= limit {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// Removes a directory tree that may already be gone, never following a symlink nor crossing
/// a mount point (see [`remove`]); the error names the path and what was left.
pub fn remove_dir_tree(path: &std::path::Path) -> Result<(), remove::RemoveError> {
    remove::remove_tree(path)
}

/// Creates `path` and its missing parents one by one, returning those it made (outermost
/// first), so that a caller can remove exactly those again; on error it removes them itself.
pub fn make_dirs(path: &std::path::Path) -> std::io::Result<Vec<std::path::PathBuf>> {
    let mut missing = Vec::new();
    let mut p = path;
    loop {
        match std::fs::symlink_metadata(p) {
            Ok(_) => break,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => missing.push(p.to_path_buf()),
            Err(e) => return Err(e),
        }
        match p.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => p = parent,
            _ => break,
        }
    }
    let mut made = Vec::new();
    for d in missing.into_iter().rev() {
        if let Err(e) = std::fs::create_dir(&d) {
            remove_made(&made);
            return Err(e);
        }
        made.push(d);
    }
    Ok(made)
}

/// Removes directories [`make_dirs`] made, innermost first; one that is no longer empty
/// (something else wrote into it meanwhile) stays.
pub fn remove_made(made: &[std::path::PathBuf]) {
    for d in made.iter().rev() {
        let _ = std::fs::remove_dir(d);
    }
}

/// Asks the filesystem to spread the directories made in `dir` over its block groups, as it
/// spreads top-level directories (ext4's FS_TOPDIR_FL, `chattr +T`; other filesystems refuse
/// or ignore it, and nothing else changes). Returns whether the flag is set.
///
/// Why: on ext4 without a journal, allocating an inode skips every inode of the group freed
/// in the last minute, reading each one's inode table block to see when. A thousand instances
/// made in one directory all allocate in its group (their directories, overlayfs's work
/// files, the files it creates and deletes at every mount to probe the filesystem), so each
/// allocation walked past the thousands freed before it: 22% of the host's CPU in a batch of
/// 1000 containers on the development machine. Spread, each instance's inodes come and go in
/// a group of their own.
pub fn spread_subdirs(dir: &std::path::Path) -> bool {
    use rustix::fs::{IFlags, ioctl_getflags, ioctl_setflags};
    let Ok(f) = std::fs::File::open(dir) else {
        return false;
    };
    match ioctl_getflags(&f) {
        Ok(flags) if flags.contains(IFlags::TOPDIR) => true,
        Ok(flags) => ioctl_setflags(&f, flags | IFlags::TOPDIR).is_ok(),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On ext4 (where it matters: the development machine's and CI's disks) the flag is set
    /// and reads back; elsewhere it is refused quietly and nothing changes.
    #[test]
    fn spreading_subdirs_sets_ext4_s_topdir_flag() {
        let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
        let ext4 = nix::sys::statfs::statfs(dir.path())
            .map(|s| s.filesystem_type() == nix::sys::statfs::EXT4_SUPER_MAGIC)
            .unwrap();
        let set = spread_subdirs(dir.path());
        let f = std::fs::File::open(dir.path()).unwrap();
        let flags = rustix::fs::ioctl_getflags(&f);
        if ext4 {
            assert!(set, "FS_TOPDIR_FL on ext4");
            assert!(flags.unwrap().contains(rustix::fs::IFlags::TOPDIR));
            // Idempotent: a second call sees the flag.
            assert!(spread_subdirs(dir.path()));
        } else if let Ok(flags) = flags {
            assert_eq!(set, flags.contains(rustix::fs::IFlags::TOPDIR));
        }
        assert!(!spread_subdirs(&dir.path().join("missing")));
    }
}
