//! The instances' image: the scenario's rootfs with the agent layer on top, as one tar given to
//! `docker import`, tagged `isobench-rootfs:<content key>` (the same SHA-256 walk as the VM
//! base disk's key). Imported only if the daemon does not have that tag already. In a private
//! daemon it lives in the data root under the run's state dir and goes with it; in a daemon
//! that was already there it stays, labelled `isobench.image=1`, for the next run.

use super::DockerError;
use super::cli::Cli;
use crate::image::Layers;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The repository of isobench's images.
pub const REPOSITORY: &str = "isobench-rootfs";
/// The label on isobench's images.
pub const IMAGE_LABEL: &str = "isobench.image";
/// An import of a 100 MB tar on a busy host.
const IMPORT_LIMIT: Duration = Duration::from_secs(300);
const INSPECT_LIMIT: Duration = Duration::from_secs(30);

/// The image of `layers` in the engine (imported now if missing); returns its tag.
pub fn ensure(cli: &Cli, layers: &Layers, work_dir: &Path) -> Result<String, DockerError> {
    let key = crate::image::vmdisk::layers_key(layers)?;
    let tag = format!("{REPOSITORY}:{key}");
    if cli
        .run(
            &["image", "inspect", "--format", "{{.Id}}", &tag],
            INSPECT_LIMIT,
        )
        .is_ok()
    {
        return Ok(tag);
    }
    let tar = work_dir.join("image.tar");
    let built = write_tar(layers, &tar).and_then(|()| {
        let change = format!("LABEL {IMAGE_LABEL}=1");
        let path = tar.display().to_string();
        cli.run(&["import", "--change", &change, &path, &tag], IMPORT_LIMIT)
    });
    let _ = std::fs::remove_file(&tar);
    built.map(|_| tag)
}

/// What `clean --cache` did to isobench's images in a daemon that answers.
#[derive(Debug, Default, serde::Serialize)]
pub struct ImageClean {
    /// The daemon's address, if one answered.
    pub daemon: Option<String>,
    pub removed: Vec<String>,
    pub errors: Vec<String>,
}

/// Removes (or lists, dry) every image labelled `isobench.image=1` in the daemon that answers
/// (`$DOCKER_HOST`, else the system socket); nothing when none does. A private daemon's images
/// went with its run's state dir.
pub fn clean_cached(dry_run: bool) -> ImageClean {
    let mut out = ImageClean::default();
    let Some(exe) = super::cli::find_cli() else {
        return out;
    };
    let Some(cli) = super::daemon::answering(&exe) else {
        return out;
    };
    out.daemon = Some(cli.host.clone());
    let filter = format!("label={IMAGE_LABEL}=1");
    let listed = cli.run(
        &[
            "image",
            "ls",
            "--filter",
            &filter,
            "--format",
            "{{.Repository}}:{{.Tag}}",
        ],
        INSPECT_LIMIT,
    );
    let tags = match listed {
        Ok(t) => t,
        Err(e) => {
            out.errors.push(e.to_string());
            return out;
        }
    };
    for tag in tags
        .lines()
        .filter(|t| t.starts_with(&format!("{REPOSITORY}:")))
    {
        if dry_run {
            out.removed.push(tag.to_string());
            continue;
        }
        match cli.run(&["rmi", tag], IMPORT_LIMIT) {
            Ok(_) => out.removed.push(tag.to_string()),
            Err(e) => out.errors.push(e.to_string()),
        }
    }
    out
}

/// Both layers merged in one tar, as overlayfs shows them: an entry of the agent layer hides
/// the image's entry at the same path (Docker refuses a tar with a path twice). Symlinks are
/// stored as symlinks, never followed.
fn write_tar(layers: &Layers, tar: &Path) -> Result<(), DockerError> {
    let f = std::fs::File::create(tar).map_err(io(tar))?;
    let mut b = tar::Builder::new(std::io::BufWriter::new(f));
    b.follow_symlinks(false);
    // Docker's tar reader does not take GNU sparse entries (type S).
    b.sparse(false);
    let mut upper = Vec::new();
    walk(&layers.agent, Path::new(""), &mut upper)?;
    let hidden: std::collections::HashSet<&PathBuf> = upper.iter().collect();
    let mut lower = Vec::new();
    walk(&layers.image, Path::new(""), &mut lower)?;
    let entries = lower
        .iter()
        .filter(|rel| !hidden.contains(rel))
        .map(|rel| (&layers.image, rel))
        .chain(upper.iter().map(|rel| (&layers.agent, rel)));
    for (root, rel) in entries {
        let p = root.join(rel);
        b.append_path_with_name(&p, rel).map_err(io(&p))?;
    }
    b.into_inner()
        .and_then(|mut w| std::io::Write::flush(&mut w))
        .map_err(io(tar))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> DockerError + use<> {
    let path = path.to_path_buf();
    move |source| DockerError::Io { path, source }
}

/// Every entry below `root` (not `root` itself), parents before children, sorted by name;
/// a symlink is an entry, never followed (the layer's root may be one: an image directory).
fn walk(root: &Path, rel: &Path, out: &mut Vec<PathBuf>) -> Result<(), DockerError> {
    let dir = root.join(rel);
    let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(&dir)
        .map_err(io(&dir))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .map_err(io(&dir))?;
    names.sort();
    for name in names {
        let r = rel.join(&name);
        let meta = std::fs::symlink_metadata(root.join(&r)).map_err(io(&root.join(&r)))?;
        out.push(r.clone());
        if meta.is_dir() {
            walk(root, &r, out)?;
        }
    }
    Ok(())
}

/// The image's layer directory on the host (its one layer's `diff`), to measure what every
/// instance shares; only a path below `data_root` (a private daemon's) is taken.
pub fn layer_dir(cli: &Cli, tag: &str, data_root: Option<&Path>) -> Option<PathBuf> {
    let text = cli
        .run(
            &[
                "image",
                "inspect",
                "--format",
                "{{.GraphDriver.Data.UpperDir}}",
                tag,
            ],
            INSPECT_LIMIT,
        )
        .ok()?;
    under(Path::new(&text), data_root?)
}

/// `p` if it is absolute, has no `..` and lies below `root`: a path the daemon reported,
/// checked before it is read.
pub fn under(p: &Path, root: &Path) -> Option<PathBuf> {
    let clean = p.is_absolute()
        && p.components()
            .all(|c| !matches!(c, std::path::Component::ParentDir));
    (clean && p.starts_with(root) && p != root).then(|| p.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reported_path_is_taken_only_below_the_data_root() {
        let root = Path::new("/s/docker");
        assert!(under(Path::new("/s/docker/overlay2/x/diff"), root).is_some());
        assert!(under(Path::new("/s/docker/../etc"), root).is_none());
        assert!(under(Path::new("/etc"), root).is_none());
        assert!(under(Path::new("s/docker/x"), root).is_none());
        assert!(under(root, root).is_none());
    }
}
