//! The guest kernel of the vm backend: a kernel image from /boot (not the running kernel) and
//! the modules directory that goes with it.

use super::{ImageError, io};
use std::cmp::Ordering;
use std::path::{Path, PathBuf};

const BOOT_DIR: &str = "/boot";
const MODULES_ROOT: &str = "/lib/modules";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GuestKernel {
    pub kernel: PathBuf,
    pub release: String,
    pub modules_dir: PathBuf,
}

/// `kernel_override`: use that file; its release comes from a `vmlinuz-<release>` file name or,
/// failing that, from the bzImage header. Default: the newest /boot/vmlinuz-*-cloud-amd64
/// (Debian's cloud flavour: virtio built for small guests), else the newest /boot/vmlinuz-*.
/// Its /lib/modules/<release> must exist.
pub fn find_guest_kernel(kernel_override: Option<&Path>) -> Result<GuestKernel, ImageError> {
    find_in(
        Path::new(BOOT_DIR),
        Path::new(MODULES_ROOT),
        kernel_override,
    )
}

fn find_in(
    boot: &Path,
    modules_root: &Path,
    kernel_override: Option<&Path>,
) -> Result<GuestKernel, ImageError> {
    let (kernel, release) = match kernel_override {
        Some(k) => {
            std::fs::metadata(k).map_err(io(k))?;
            let from_name = k
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix("vmlinuz-"))
                .filter(|r| !r.is_empty())
                .map(str::to_string);
            let release = match from_name {
                Some(r) => r,
                None => bzimage_release(k)
                    .map_err(io(k))?
                    .ok_or_else(|| ImageError::KernelRelease(k.to_path_buf()))?,
            };
            (k.to_path_buf(), release)
        }
        None => newest_in_boot(boot)?,
    };
    let modules_dir = modules_root.join(&release);
    if !modules_dir.is_dir() {
        return Err(ImageError::NoKernelModules(modules_dir));
    }
    Ok(GuestKernel {
        kernel,
        release,
        modules_dir,
    })
}

fn newest_in_boot(boot: &Path) -> Result<(PathBuf, String), ImageError> {
    let mut releases = Vec::new();
    for entry in std::fs::read_dir(boot).map_err(io(boot))? {
        let entry = entry.map_err(io(boot))?;
        let name = entry.file_name();
        let Some(release) = name.to_str().and_then(|n| n.strip_prefix("vmlinuz-")) else {
            continue;
        };
        if !release.is_empty() && entry.path().is_file() {
            releases.push(release.to_string());
        }
    }
    let newest = |only_cloud: bool| {
        releases
            .iter()
            .filter(|r| !only_cloud || r.ends_with("-cloud-amd64"))
            .max_by(|a, b| version_cmp(a, b))
            .cloned()
    };
    let release = newest(true)
        .or_else(|| newest(false))
        .ok_or_else(|| ImageError::NoGuestKernel(boot.to_path_buf()))?;
    Ok((boot.join(format!("vmlinuz-{release}")), release))
}

/// Compares release strings as `sort -V` does in the cases kernels need: runs of digits by
/// value (so 6.1.0-10 is newer than 6.1.0-9), everything else byte by byte.
pub fn version_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
                // Leading zeros carry no value; after them, the longer run is the bigger number.
                let na = trim_zeros(&a[..da]);
                let nb = trim_zeros(&b[..db]);
                let ord = na.len().cmp(&nb.len()).then_with(|| na.cmp(nb));
                if ord != Ordering::Equal {
                    return ord;
                }
                a = &a[da..];
                b = &b[db..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

fn trim_zeros(d: &[u8]) -> &[u8] {
    let z = d.iter().take_while(|&&c| c == b'0').count();
    &d[z..]
}

/// The release from an x86 bzImage's setup header (Documentation/arch/x86/boot.rst):
/// `kernel_version` at 0x20E is a u16 offset, minus 0x200, of a NUL-terminated string whose
/// first word is the release. None when the file is not a bzImage or carries no string.
pub fn bzimage_release(path: &Path) -> std::io::Result<Option<String>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    let mut hdr = [0u8; 0x210];
    if f.read_exact(&mut hdr).is_err() {
        return Ok(None);
    }
    let version = u16::from_le_bytes([hdr[0x206], hdr[0x207]]);
    // kernel_version exists from boot protocol 2.00 on, announced by the "HdrS" magic.
    if &hdr[0x202..0x206] != b"HdrS" || version < 0x0200 {
        return Ok(None);
    }
    let ptr = u16::from_le_bytes([hdr[0x20E], hdr[0x20F]]);
    if ptr == 0 {
        return Ok(None);
    }
    f.seek(SeekFrom::Start(0x200 + u64::from(ptr)))?;
    let mut s = [0u8; 256];
    let n = f.read(&mut s)?;
    let s = &s[..n];
    let end = s.iter().position(|&c| c == 0).unwrap_or(s.len());
    let text = String::from_utf8_lossy(&s[..end]);
    Ok(text
        .split_whitespace()
        .next()
        .filter(|r| r.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .map(str::to_string))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Debian cloud kernel of this host and its release (from its file name, which the
    /// header must agree with): whichever version apt installed.
    fn real_kernel() -> Option<(PathBuf, String)> {
        let mut found: Vec<(PathBuf, String)> = std::fs::read_dir(BOOT_DIR)
            .ok()?
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_str()?.to_string();
                let release = name.strip_prefix("vmlinuz-")?;
                release
                    .ends_with("-cloud-amd64")
                    .then(|| (e.path(), release.to_string()))
            })
            .collect();
        found.sort();
        found.pop()
    }

    /// A scratch directory removed on drop (tempfile), failed assertion or not.
    fn tmp(name: &str) -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix(&format!("isobench-kernel-{name}-"))
            .tempdir()
            .expect("a scratch dir")
    }

    #[test]
    fn versions_sort_by_number_not_by_byte() {
        assert_eq!(
            version_cmp("6.1.0-10-cloud-amd64", "6.1.0-9-cloud-amd64"),
            Ordering::Greater
        );
        assert_eq!(version_cmp("6.10.0", "6.9.3"), Ordering::Greater);
        assert_eq!(version_cmp("6.1.0", "6.1.0"), Ordering::Equal);
        assert_eq!(version_cmp("6.1", "6.1.0"), Ordering::Less);
        assert_eq!(version_cmp("5.010", "5.9"), Ordering::Greater);
    }

    #[test]
    fn the_newest_cloud_kernel_wins_over_a_newer_generic_one() {
        let scratch = tmp("boot");
        let d = scratch.path();
        let (boot, mods) = (d.join("boot"), d.join("modules"));
        std::fs::create_dir_all(&boot).unwrap();
        for r in [
            "6.1.0-9-cloud-amd64",
            "6.1.0-10-cloud-amd64",
            "6.12.0-1-amd64",
        ] {
            std::fs::write(boot.join(format!("vmlinuz-{r}")), "x").unwrap();
        }
        std::fs::write(boot.join("config-6.1.0-99-cloud-amd64"), "x").unwrap();
        std::fs::create_dir_all(mods.join("6.1.0-10-cloud-amd64")).unwrap();
        let k = find_in(&boot, &mods, None).unwrap();
        assert_eq!(k.release, "6.1.0-10-cloud-amd64");
        assert_eq!(k.kernel, boot.join("vmlinuz-6.1.0-10-cloud-amd64"));
        assert_eq!(k.modules_dir, mods.join("6.1.0-10-cloud-amd64"));

        // Without a cloud kernel, the newest of the others.
        for r in ["6.1.0-9-cloud-amd64", "6.1.0-10-cloud-amd64"] {
            std::fs::remove_file(boot.join(format!("vmlinuz-{r}"))).unwrap();
        }
        let e = find_in(&boot, &mods, None).unwrap_err().to_string();
        assert!(
            e.contains("6.12.0-1-amd64") && e.contains("scripts/setup.sh"),
            "{e}"
        );

        std::fs::remove_file(boot.join("vmlinuz-6.12.0-1-amd64")).unwrap();
        let e = find_in(&boot, &mods, None).unwrap_err().to_string();
        assert!(e.contains("linux-image-cloud-amd64"), "{e}");
    }

    #[test]
    fn an_override_takes_its_release_from_the_name() {
        let scratch = tmp("override");
        let d = scratch.path();
        let k = d.join("vmlinuz-7.0.0-test");
        std::fs::write(&k, "not a kernel").unwrap();
        std::fs::create_dir_all(d.join("7.0.0-test")).unwrap();
        let g = find_in(Path::new("/nonexistent"), d, Some(&k)).unwrap();
        assert_eq!(g.release, "7.0.0-test");
        assert_eq!(g.kernel, k);

        let bad = d.join("bzImage");
        std::fs::write(&bad, "not a kernel").unwrap();
        let e = find_in(Path::new("/nonexistent"), d, Some(&bad)).unwrap_err();
        assert!(matches!(e, ImageError::KernelRelease(_)), "{e}");
    }

    #[test]
    fn the_release_is_read_from_a_real_bzimage_header() {
        let Some((real, release)) = real_kernel() else {
            crate::skip::because("no /boot/vmlinuz-*-cloud-amd64 on this host (scripts/setup.sh)");
            return;
        };
        assert_eq!(
            bzimage_release(&real).unwrap().as_deref(),
            Some(release.as_str())
        );
        // Under another name, the header is the only source.
        let scratch = tmp("real");
        let d = scratch.path();
        let copy = d.join("bzImage");
        std::fs::copy(&real, &copy).unwrap();
        let modules = Path::new(MODULES_ROOT);
        if modules.join(&release).is_dir() {
            let g = find_in(Path::new("/nonexistent"), modules, Some(&copy)).unwrap();
            assert_eq!(g.release, release);
        }
    }

    #[test]
    fn the_host_default_is_a_boot_kernel_with_modules() {
        match find_guest_kernel(None) {
            Ok(g) => {
                assert!(g.kernel.starts_with(BOOT_DIR));
                assert!(g.modules_dir.join("modules.dep").exists(), "{g:?}");
            }
            Err(e) => {
                crate::skip::because(&e.to_string());
            }
        }
    }
}
