//! The vm backend's initramfs: the static isobench binary as /init plus the kernel modules the
//! guest needs to see its disk, in a newc cpio archive.

use super::{ImageError, io};
use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Modules the guest needs to see its disk: virtio-blk over PCI (q35) and over MMIO (microvm).
pub const GUEST_MODULES: &[&str] = &["virtio_blk", "virtio_pci", "virtio_mmio"];

/// modules.dep and modules.builtin spell names with '-' or '_' at will; the kernel treats the
/// two as one.
fn module_key(name: &str) -> String {
    name.replace('-', "_")
}

/// The file name without its directory and `.ko[.gz|.xz|.zst]`.
fn module_stem(path: &str) -> &str {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.split_once(".ko").map_or(file, |(stem, _)| stem)
}

/// Resolves `wanted` module names and their dependencies from <modules_dir>/modules.dep into
/// load order (dependencies first, each once). Built-in modules are skipped.
pub fn resolve_modules(modules_dir: &Path, wanted: &[&str]) -> Result<Vec<PathBuf>, ImageError> {
    let dep_file = modules_dir.join("modules.dep");
    let text = std::fs::read_to_string(&dep_file).map_err(io(&dep_file))?;
    let mut deps: HashMap<String, (String, Vec<String>)> = HashMap::new();
    for line in text.lines() {
        let Some((module, rest)) = line.split_once(':') else {
            continue;
        };
        let module = module.trim();
        if module.is_empty() {
            continue;
        }
        let needs = rest.split_whitespace().map(str::to_string).collect();
        deps.insert(module_key(module_stem(module)), (module.to_string(), needs));
    }
    let builtin_file = modules_dir.join("modules.builtin");
    let builtin: HashSet<String> = match std::fs::read_to_string(&builtin_file) {
        Ok(t) => t
            .lines()
            .map(|l| module_key(module_stem(l.trim())))
            .collect(),
        // Some kernels ship without one; then nothing counts as built in.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => HashSet::new(),
        Err(e) => return Err(io(&builtin_file)(e)),
    };

    let mut order = Vec::new();
    let mut seen = HashSet::new();
    for name in wanted {
        let key = module_key(name);
        match deps.get(&key) {
            Some((path, _)) => visit(path, &deps, &mut seen, &mut order),
            None if builtin.contains(&key) => {}
            None => {
                return Err(ImageError::ModuleNotFound {
                    name: name.to_string(),
                    dir: modules_dir.to_path_buf(),
                });
            }
        }
    }
    order
        .into_iter()
        .map(|rel| {
            let p = modules_dir.join(rel);
            if p.extension().is_some_and(|e| e == "xz" || e == "zst") {
                Err(ImageError::CompressedModule(p))
            } else {
                Ok(p)
            }
        })
        .collect()
}

/// Depth first: a module's own dependencies go before it. Marked seen on entry so that a cycle
/// in a broken modules.dep ends instead of recursing forever.
fn visit(
    module: &str,
    deps: &HashMap<String, (String, Vec<String>)>,
    seen: &mut HashSet<String>,
    order: &mut Vec<String>,
) {
    if !seen.insert(module.to_string()) {
        return;
    }
    let key = module_key(module_stem(module));
    if let Some((_, needs)) = deps.get(&key) {
        // modprobe loads a line's dependencies from the last to the first.
        for dep in needs.iter().rev() {
            visit(dep, deps, seen, order);
        }
    }
    order.push(module.to_string());
}

/// Copies `src` to `dst` without debug info when `strip` is available (a debug build of
/// isobench is mostly DWARF, which the guest would otherwise read from disk or hold in RAM),
/// else as is. `dst` keeps `src`'s permission bits either way.
pub(crate) fn stripped_copy(src: &Path, dst: &Path) -> Result<(), ImageError> {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::remove_file(dst);
    use std::os::unix::process::CommandExt;
    // Its own process group, as every helper command: a group signal (Ctrl-C, `timeout`) must
    // not kill it halfway while the harness tears down in order.
    let stripped = std::process::Command::new("strip")
        .process_group(0)
        .arg("--strip-debug")
        .arg("-o")
        .arg(dst)
        .arg(src)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !stripped {
        // Not an ELF file strip knows, or no binutils: the unstripped bytes work just as well.
        let _ = std::fs::remove_file(dst);
        std::fs::copy(src, dst).map_err(io(dst))?;
    }
    let mode = std::fs::metadata(src)
        .map_err(io(src))?
        .permissions()
        .mode();
    std::fs::set_permissions(dst, std::fs::Permissions::from_mode(mode & 0o7777)).map_err(io(dst))
}

/// Module contents, gunzipped when needed.
fn module_bytes(path: &Path) -> Result<Vec<u8>, ImageError> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    match ext {
        "xz" | "zst" => Err(ImageError::CompressedModule(path.to_path_buf())),
        "gz" => {
            let f = std::fs::File::open(path).map_err(io(path))?;
            let mut out = Vec::new();
            flate2::read::GzDecoder::new(f)
                .read_to_end(&mut out)
                .map_err(io(path))?;
            Ok(out)
        }
        _ => std::fs::read(path).map_err(io(path)),
    }
}

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFCHR: u32 = 0o020000;

/// A newc cpio writer (Documentation/driver-api/early-userspace/buffer-format.rst), written by
/// hand: the format is a 110-byte ASCII header, the name and the data, each padded to 4 bytes;
/// a cpio crate would add a dependency and nothing we need.
struct Cpio<W: Write> {
    out: W,
    written: u64,
    next_ino: u32,
}

impl<W: Write> Cpio<W> {
    fn new(out: W) -> Self {
        Cpio {
            out,
            written: 0,
            // Inode 0 is avoided: some extractors treat it as "no inode".
            next_ino: 1,
        }
    }

    fn entry(
        &mut self,
        name: &str,
        mode: u32,
        rdev: (u32, u32),
        data: &[u8],
    ) -> std::io::Result<()> {
        let nlink = if mode & S_IFDIR != 0 { 2 } else { 1 };
        let ino = if name == "TRAILER!!!" {
            0
        } else {
            self.next_ino
        };
        self.next_ino += 1;
        let size = u32::try_from(data.len())
            .map_err(|_| std::io::Error::other(format!("{name}: too big for cpio")))?;
        // mtime 0: the archive depends on its inputs only.
        let header = format!(
            "070701{ino:08x}{mode:08x}{uid:08x}{gid:08x}{nlink:08x}{mtime:08x}{size:08x}\
             {maj:08x}{min:08x}{rmaj:08x}{rmin:08x}{namesize:08x}{check:08x}",
            uid = 0,
            gid = 0,
            mtime = 0,
            maj = 0,
            min = 0,
            rmaj = rdev.0,
            rmin = rdev.1,
            namesize = name.len() + 1,
            check = 0,
        );
        self.put(header.as_bytes())?;
        self.put(name.as_bytes())?;
        self.put(&[0])?;
        self.pad()?;
        self.put(data)?;
        self.pad()
    }

    fn put(&mut self, b: &[u8]) -> std::io::Result<()> {
        self.out.write_all(b)?;
        self.written += b.len() as u64;
        Ok(())
    }

    fn pad(&mut self) -> std::io::Result<()> {
        let n = (4 - self.written % 4) % 4;
        self.put(&[0u8; 3][..n as usize])
    }

    fn finish(mut self) -> std::io::Result<W> {
        self.entry("TRAILER!!!", 0, (0, 0), &[])?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Writes an uncompressed newc cpio archive to `out`: /dev /proc /sys /newroot /modules,
/// /dev/console, /init (a stripped copy of `init_exe`), each module as /modules/NN-<name>.ko in
/// load order and /modules/order listing them. Written beside `out` and renamed into place, so
/// a half-written archive is never booted.
pub fn build_initramfs(out: &Path, init_exe: &Path, modules: &[PathBuf]) -> Result<(), ImageError> {
    let file_name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "initramfs".into());
    let tmp = out.with_file_name(format!(".{file_name}.tmp-{}", std::process::id()));
    let tmp_init = out.with_file_name(format!(".{file_name}.init-{}", std::process::id()));
    let result = write_archive(&tmp, &tmp_init, init_exe, modules)
        .and_then(|()| std::fs::rename(&tmp, out).map_err(io(out)));
    let _ = std::fs::remove_file(&tmp_init);
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn write_archive(
    tmp: &Path,
    tmp_init: &Path,
    init_exe: &Path,
    modules: &[PathBuf],
) -> Result<(), ImageError> {
    stripped_copy(init_exe, tmp_init)?;
    let init = std::fs::read(tmp_init).map_err(io(tmp_init))?;

    // Two digits, more only past 100 modules: the names must keep sorting in load order.
    let width = modules.len().saturating_sub(1).to_string().len().max(2);
    let mut names = Vec::new();
    let mut contents = Vec::new();
    for (i, m) in modules.iter().enumerate() {
        let stem = module_stem(&m.to_string_lossy()).to_string();
        names.push(format!("{i:0width$}-{stem}.ko"));
        contents.push(module_bytes(m)?);
    }
    let mut order = names.join("\n");
    if !order.is_empty() {
        order.push('\n');
    }

    let f = std::fs::File::create(tmp).map_err(io(tmp))?;
    let mut c = Cpio::new(std::io::BufWriter::new(f));
    let w = (|| -> std::io::Result<std::io::BufWriter<std::fs::File>> {
        for d in ["dev", "proc", "sys", "newroot", "modules"] {
            c.entry(d, S_IFDIR | 0o755, (0, 0), &[])?;
        }
        c.entry("dev/console", S_IFCHR | 0o600, (5, 1), &[])?;
        c.entry("init", S_IFREG | 0o755, (0, 0), &init)?;
        for (name, data) in names.iter().zip(&contents) {
            c.entry(&format!("modules/{name}"), S_IFREG | 0o644, (0, 0), data)?;
        }
        c.entry("modules/order", S_IFREG | 0o644, (0, 0), order.as_bytes())?;
        c.finish()
    })()
    .map_err(io(tmp))?;
    w.into_inner()
        .map_err(|e| io(tmp)(e.into_error()))?
        .sync_all()
        .map_err(io(tmp))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scratch directory removed on drop (tempfile), failed assertion or not.
    fn tmp(name: &str) -> tempfile::TempDir {
        tempfile::Builder::new()
            .prefix(&format!("isobench-initramfs-{name}-"))
            .tempdir()
            .expect("a scratch dir")
    }

    struct Entry {
        name: String,
        mode: u32,
        rdev: (u32, u32),
        data: Vec<u8>,
    }

    /// Parses newc back, checking the magic and the 4-byte alignment of every name and body.
    fn parse(buf: &[u8]) -> Vec<Entry> {
        let mut pos = 0;
        let mut out = Vec::new();
        loop {
            assert_eq!(pos % 4, 0, "header at {pos} not aligned");
            let h = &buf[pos..pos + 110];
            assert_eq!(&h[..6], b"070701");
            let field = |i: usize| {
                u32::from_str_radix(std::str::from_utf8(&h[6 + i * 8..14 + i * 8]).unwrap(), 16)
                    .unwrap()
            };
            let (mode, size, rmaj, rmin, namesize) =
                (field(1), field(6), field(9), field(10), field(11));
            let name_start = pos + 110;
            let name =
                String::from_utf8(buf[name_start..name_start + namesize as usize - 1].to_vec())
                    .unwrap();
            assert_eq!(buf[name_start + namesize as usize - 1], 0);
            let data_start = (name_start + namesize as usize).next_multiple_of(4);
            let data = buf[data_start..data_start + size as usize].to_vec();
            pos = (data_start + size as usize).next_multiple_of(4);
            let end = name == "TRAILER!!!";
            out.push(Entry {
                name,
                mode,
                rdev: (rmaj, rmin),
                data,
            });
            if end {
                assert_eq!(pos, buf.len(), "bytes after the trailer");
                return out;
            }
        }
    }

    #[test]
    fn the_archive_parses_back() {
        let scratch = tmp("archive");
        let d = scratch.path();
        let init = d.join("init-src");
        std::fs::write(&init, b"#!fake init, five bytes odd").unwrap();
        let m1 = d.join("virtio.ko");
        std::fs::write(&m1, b"module one").unwrap();
        let m2 = d.join("virtio_blk.ko.gz");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(b"module two, gzipped").unwrap();
        std::fs::write(&m2, gz.finish().unwrap()).unwrap();
        let out = d.join("initramfs.cpio");
        build_initramfs(&out, &init, &[m1, m2]).unwrap();

        let buf = std::fs::read(&out).unwrap();
        let entries = parse(&buf);
        let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "dev",
                "proc",
                "sys",
                "newroot",
                "modules",
                "dev/console",
                "init",
                "modules/00-virtio.ko",
                "modules/01-virtio_blk.ko",
                "modules/order",
                "TRAILER!!!"
            ]
        );
        let get = |n: &str| entries.iter().find(|e| e.name == n).unwrap();
        assert_eq!(get("dev").mode, 0o040755);
        let console = get("dev/console");
        assert_eq!((console.mode, console.rdev), (0o020600, (5, 1)));
        assert_eq!(get("init").mode, 0o100755);
        assert_eq!(get("init").data, b"#!fake init, five bytes odd");
        assert_eq!(get("modules/00-virtio.ko").data, b"module one");
        assert_eq!(get("modules/01-virtio_blk.ko").data, b"module two, gzipped");
        assert_eq!(
            get("modules/order").data,
            b"00-virtio.ko\n01-virtio_blk.ko\n"
        );
        // No temp files left beside the archive.
        let left: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with('.'))
            .collect();
        assert!(left.is_empty(), "{left:?}");

        if std::process::Command::new("which")
            .arg("cpio")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            let listing = std::process::Command::new("cpio")
                .arg("-itv")
                .stdin(std::fs::File::open(&out).unwrap())
                .output()
                .unwrap();
            assert!(listing.status.success(), "{listing:?}");
            let text = String::from_utf8_lossy(&listing.stdout);
            assert!(text.contains("crw-------"), "{text}");
            assert!(
                text.contains("dev/console") && text.contains("modules/order"),
                "{text}"
            );
        } else {
            crate::skip::because("cpio not installed: the archive cannot be cross-checked");
        }
    }

    #[test]
    fn a_real_binary_is_stripped_and_stays_static() {
        let scratch = tmp("strip");
        let d = scratch.path();
        let me = std::env::current_exe().unwrap();
        let out = d.join("isobench");
        stripped_copy(&me, &out).unwrap();
        let (a, b) = (
            std::fs::metadata(&me).unwrap().len(),
            std::fs::metadata(&out).unwrap().len(),
        );
        assert!(b <= a);
        assert!(!crate::image::has_interpreter(&out).unwrap());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&out).unwrap().permissions().mode() & 0o111,
            0o111
        );
    }

    fn fake_modules_dir(d: &Path) {
        std::fs::write(
            d.join("modules.dep"),
            "kernel/drivers/virtio/virtio_ring.ko:\n\
             kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko\n\
             kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko\n\
             kernel/drivers/virtio/virtio_pci_modern_dev.ko:\n\
             kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko\n\
             kernel/drivers/char/hw_random/virtio-rng.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko\n\
             kernel/drivers/foo/packed.ko.xz:\n",
        )
        .unwrap();
        std::fs::write(
            d.join("modules.builtin"),
            "kernel/drivers/virtio/virtio_mmio.ko\n",
        )
        .unwrap();
    }

    #[test]
    fn dependencies_come_first_and_once() {
        let scratch = tmp("deps");
        let d = scratch.path();
        fake_modules_dir(d);
        let got = resolve_modules(
            d,
            &["virtio_blk", "virtio_pci", "virtio_mmio", "virtio-blk"],
        )
        .unwrap();
        let rel: Vec<String> = got
            .iter()
            .map(|p| p.strip_prefix(d).unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            rel,
            [
                "kernel/drivers/virtio/virtio_ring.ko",
                "kernel/drivers/virtio/virtio.ko",
                "kernel/drivers/block/virtio_blk.ko",
                "kernel/drivers/virtio/virtio_pci_modern_dev.ko",
                "kernel/drivers/virtio/virtio_pci.ko",
            ]
        );
        // '-' and '_' are one.
        let rng = resolve_modules(d, &["virtio_rng"]).unwrap();
        assert!(rng.last().unwrap().ends_with("virtio-rng.ko"));

        let e = resolve_modules(d, &["nope"]).unwrap_err().to_string();
        assert!(
            e.contains("nope") && e.contains(&d.display().to_string()),
            "{e}"
        );
        let e = resolve_modules(d, &["packed"]).unwrap_err().to_string();
        assert!(e.contains("packed.ko.xz") && e.contains("gzip"), "{e}");
    }

    #[test]
    fn the_real_guest_modules_resolve() {
        // The host's guest kernel, whichever version apt installed.
        let guest = match crate::image::kernel::find_guest_kernel(None) {
            Ok(g) => g,
            Err(e) => {
                crate::skip::because(&format!("no guest kernel with modules here: {e}"));
                return;
            }
        };
        let got = resolve_modules(&guest.modules_dir, GUEST_MODULES).unwrap();
        let pos = |n: &str| {
            got.iter()
                .position(|p| p.file_name().is_some_and(|f| f == n))
                .unwrap_or_else(|| panic!("{n} missing from {got:?}"))
        };
        assert!(pos("virtio.ko") < pos("virtio_blk.ko"));
        assert!(pos("virtio.ko") < pos("virtio_pci.ko"));
        assert!(pos("virtio_ring.ko") < pos("virtio.ko"));
        let unique: HashSet<_> = got.iter().collect();
        assert_eq!(unique.len(), got.len());
        assert!(got.iter().all(|p| p.is_file()), "{got:?}");
        eprintln!("guest modules: {got:?}");
    }
}
