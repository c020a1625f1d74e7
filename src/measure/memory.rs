//! Memory views of an instance: per-process PSS/USS/RSS, the cgroup's charge, host-wide
//! meminfo figures, and the resident part of a QEMU guest's RAM.

use crate::host::cgroup::InstanceCgroup;
use std::fmt::Write as _;
use std::io::Read;
use std::time::{Duration, Instant};

/// Memory of a set of processes, KiB, summed over /proc/PID/smaps_rollup.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ProcMem {
    /// Proportional set size: shared pages divided among their users.
    pub pss_kib: u64,
    /// Unique set size: Private_Clean + Private_Dirty (+ Private_Hugetlb), what killing the
    /// processes would give back.
    pub uss_kib: u64,
    /// Resident set size, shared pages counted in full.
    pub rss_kib: u64,
}

/// Reads smaps_rollup files with one path buffer and one read buffer for any number of pids.
///
/// Parsed by hand rather than with procfs's `Process::smaps_rollup`: procfs opens a /proc/PID
/// directory fd first and stores every `Key: value` line in a `HashMap<String, u64>` (one
/// allocation per line, ~25 lines), where isobench needs four keys from up to 1000 processes
/// after every batch. Here each file is opened once, read once into a reused buffer, and
/// scanned as bytes.
struct RollupReader {
    path: String,
    buf: Vec<u8>,
}

impl RollupReader {
    fn new() -> RollupReader {
        RollupReader {
            path: String::with_capacity(40),
            buf: Vec::with_capacity(4096),
        }
    }

    /// None if the process is gone (ENOENT/ESRCH), is a kernel thread (reading its smaps
    /// fails with ESRCH: it has no mm) or a zombie (empty file), or the file is unreadable.
    fn read(&mut self, pid: i32) -> Option<ProcMem> {
        self.path.clear();
        // Writing into a String cannot fail.
        let _ = write!(self.path, "/proc/{pid}/smaps_rollup");
        let mut f = std::fs::File::open(&self.path).ok()?;
        self.buf.clear();
        f.read_to_end(&mut self.buf).ok()?;
        parse_rollup(&self.buf)
    }
}

/// The KiB value of a `Key:   1234 kB` line whose key (with its colon) is `key`.
fn field(line: &[u8], key: &[u8]) -> Option<u64> {
    let rest = line.strip_prefix(key)?;
    let digits = rest.trim_ascii_start();
    let mut v: u64 = 0;
    let mut any = false;
    for &b in digits {
        if !b.is_ascii_digit() {
            break;
        }
        v = v.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        any = true;
    }
    any.then_some(v)
}

/// Rss, Pss and the private counters of one smaps_rollup text; None when it has no Rss line
/// (an empty file: a zombie or a kernel thread).
fn parse_rollup(text: &[u8]) -> Option<ProcMem> {
    let mut m = ProcMem::default();
    let mut seen_rss = false;
    for line in text.split(|&b| b == b'\n') {
        // The first byte tells the keys apart cheaply; most lines are skipped on it.
        match line.first() {
            Some(b'R') => {
                if let Some(v) = field(line, b"Rss:") {
                    m.rss_kib = v;
                    seen_rss = true;
                }
            }
            // "Pss:" with its colon, so Pss_Dirty, Pss_Anon, ... do not match.
            Some(b'P') => {
                if let Some(v) = field(line, b"Pss:") {
                    m.pss_kib = v;
                } else if let Some(v) = field(line, b"Private_Clean:")
                    .or_else(|| field(line, b"Private_Dirty:"))
                    .or_else(|| field(line, b"Private_Hugetlb:"))
                {
                    m.uss_kib += v;
                }
            }
            _ => {}
        }
    }
    seen_rss.then_some(m)
}

/// Sums smaps_rollup over `pids`. Pids that vanished, kernel threads and zombies add nothing.
pub fn rollup(pids: &[i32]) -> ProcMem {
    let mut r = RollupReader::new();
    let mut sum = ProcMem::default();
    for &pid in pids {
        if let Some(m) = r.read(pid) {
            sum.pss_kib += m.pss_kib;
            sum.uss_kib += m.uss_kib;
            sum.rss_kib += m.rss_kib;
        }
    }
    sum
}

/// smaps_rollup of one process; None if it could not be read (gone, a kernel thread, a
/// zombie), which `rollup` cannot tell from a process using nothing.
pub fn rollup_one(pid: i32) -> Option<ProcMem> {
    RollupReader::new().read(pid)
}

/// Memory charged to the instance's cgroup, KiB: v2 `memory.current`, v1
/// `memory.usage_in_bytes` (on current kernels this includes the kernel memory charged to
/// the cgroup: slab, stacks, page tables). None if unreadable.
///
/// The v2 file is tried first and the v1 file if it is missing: each exists only in its own
/// hierarchy, so this needs no mode from the caller and works on v1, hybrid and v2 hosts.
pub fn cgroup_mem_kib(cg: &InstanceCgroup) -> Option<u64> {
    let text = cg
        .read("memory", "memory.current")
        .or_else(|_| cg.read("memory", "memory.usage_in_bytes"))
        .ok()?;
    let bytes: u64 = text.trim().parse().ok()?;
    Some(bytes / 1024)
}

/// Host-wide figures from /proc/meminfo, KiB.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HostMem {
    /// MemAvailable plus the free pages on the per-CPU lists ([`pcp_free_kib`]): the memory
    /// the host can still hand out.
    pub mem_available_kib: u64,
    pub slab_kib: u64,
    pub anon_pages_kib: u64,
    pub kernel_stack_kib: u64,
    pub page_tables_kib: u64,
}

/// /proc/meminfo now (zeros if it cannot be read; a field the kernel lacks reads 0).
pub fn host_mem() -> HostMem {
    use procfs::Current;
    // procfs reports meminfo in bytes.
    let Ok(m) = procfs::Meminfo::current() else {
        return HostMem::default();
    };
    let kib = |v: Option<u64>| v.unwrap_or(0) / 1024;
    HostMem {
        mem_available_kib: kib(m.mem_available) + pcp_free_kib(),
        slab_kib: m.slab / 1024,
        anon_pages_kib: kib(m.anon_pages),
        kernel_stack_kib: kib(m.kernel_stack),
        page_tables_kib: kib(m.page_tables),
    }
}

/// Free pages on the per-CPU page lists, KiB: the sum of every zone's per-CPU `count` in
/// /proc/zoneinfo (0 if unreadable).
///
/// MemFree, and so MemAvailable, counts only the buddy allocator's free pages; pages parked on
/// the per-CPU lists are free but left out. Those lists grow when much memory is freed at
/// once (dropping caches, tearing a batch down; on the development host 90-390 MiB) and new
/// allocations take from them first, so without this term a batch's memory vanished from a
/// MemAvailable difference: 10 containers touching 64 MiB each read as a few MiB in all.
/// procfs does not parse zoneinfo's pagesets, hence the dozen lines here.
pub fn pcp_free_kib() -> u64 {
    let Ok(text) = std::fs::read_to_string("/proc/zoneinfo") else {
        return 0;
    };
    let pages = pcp_pages(&text);
    let page_kib = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map_or(4, |b| (b / 1024) as u64);
    pages * page_kib
}

/// Sum of the per-CPU `count:` lines of a /proc/zoneinfo text, in pages.
fn pcp_pages(zoneinfo: &str) -> u64 {
    zoneinfo
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("count:"))
        .filter_map(|v| v.trim().parse::<u64>().ok())
        .sum()
}

/// Two consecutive MemAvailable readings this close (KiB) count as settled.
const SETTLE_BAND_KIB: u64 = 1024;
const SETTLE_STEP: Duration = Duration::from_millis(100);

/// Host memory once it has settled; see [`settle_reported`].
pub fn settle(drop_caches: bool, timeout: Duration) -> HostMem {
    settle_reported(drop_caches, timeout).0
}

/// Optionally drops the page cache, then reads MemAvailable every 100 ms until two
/// consecutive readings are within 1 MiB of each other or `timeout` passes, and returns the
/// last reading, and whether the caches were really dropped (false when not asked, or when
/// /proc/sys/vm/drop_caches could not be written, e.g. not root).
///
/// Reading MemAvailable after dropping caches is how gVisor and Kata measure density:
/// gVisor's test/benchmarks/base/size_test.go drops caches (harness.DropCaches) and reads
/// /proc/meminfo before and after starting N containers; Kata's
/// tests/metrics/density/fast_footprint.sh (DUMP_CACHES) echoes 3 to drop_caches and reads
/// `free`'s "available". gVisor reads once right after the drop, Kata once after a fixed
/// sleep (PAYLOAD_SLEEP); the 1 MiB two-reading band is isobench's own, so that reclaim and
/// deferred frees (RCU, per-CPU page lists) still running after the drop do not land in the
/// figure.
pub fn settle_reported(drop_caches: bool, timeout: Duration) -> (HostMem, bool) {
    let dropped = drop_caches && {
        nix::unistd::sync();
        std::fs::write("/proc/sys/vm/drop_caches", "3").is_ok()
    };
    let deadline = Instant::now() + timeout;
    let mut prev = host_mem();
    loop {
        let now = Instant::now();
        if now >= deadline {
            return (prev, dropped);
        }
        std::thread::sleep(SETTLE_STEP.min(deadline - now));
        let cur = host_mem();
        if cur.mem_available_kib.abs_diff(prev.mem_available_kib) <= SETTLE_BAND_KIB {
            return (cur, dropped);
        }
        prev = cur;
    }
}

/// Whether an smaps mapping name is anonymous memory: no name, or a name given with
/// prctl(PR_SET_VMA_ANON_NAME) (`[anon:...]`). [heap], [stack], files and memfds are not.
fn is_anonymous(path: &procfs::process::MMapPath) -> bool {
    use procfs::process::MMapPath;
    match path {
        MMapPath::Anonymous => true,
        MMapPath::Other(name) => name.starts_with("anon:"),
        _ => false,
    }
}

/// Resident KiB of the QEMU process's mapping that backs guest RAM, from /proc/PID/smaps.
///
/// The guest's RAM is the anonymous, writable, non-executable mapping whose Size is exactly
/// `guest_mib` MiB: QEMU allocates each RAM block with one mmap (q35's split of RAM around
/// the 4 GiB PCI hole is done with memory-region aliases over that one block, not with
/// separate mappings). If no mapping has that exact size (another QEMU layout, or several
/// memory backends), the largest such mapping of at least half the guest's RAM and at most
/// its size is taken: then only that part of the RAM is counted. Executable mappings are
/// left out because under TCG QEMU's translation buffer is a large anonymous rwx mapping
/// (1 GiB on QEMU 7.2), which would otherwise win. None if the process or no candidate is
/// found.
///
/// Parsed with procfs: this runs once per VM, over a few hundred mappings.
pub fn guest_ram_resident_kib(qemu_pid: i32, guest_mib: u64) -> Option<u64> {
    use procfs::process::MMPermissions;
    let maps = procfs::process::Process::new(qemu_pid).ok()?.smaps().ok()?;
    let want = guest_mib.checked_mul(1024 * 1024)?;
    let mut best: Option<(u64, u64)> = None; // (size, rss) bytes
    for m in maps.iter() {
        if !is_anonymous(&m.pathname)
            || !m.perms.contains(MMPermissions::WRITE)
            || m.perms.contains(MMPermissions::EXECUTE)
        {
            continue;
        }
        // procfs converts the kB values to bytes; Size is the mapping's length.
        let size = m.address.1.saturating_sub(m.address.0);
        let rss = m.extension.map.get("Rss").copied().unwrap_or(0);
        if size == want {
            return Some(rss / 1024);
        }
        if size >= want / 2 && size <= want && best.is_none_or(|(s, _)| size > s) {
            best = Some((size, rss));
        }
    }
    best.map(|(_, rss)| rss / 1024)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::testutil::{KillOnDrop, Toucher};

    #[test]
    fn parses_a_rollup_and_rejects_an_empty_one() {
        let text = b"55b99afbc000-7ffed54f7000 ---p 00000000 00:00 0    [rollup]
Rss:                1688 kB
Pss:                 511 kB
Pss_Dirty:           108 kB
Pss_Anon:            108 kB
Shared_Clean:       1508 kB
Private_Clean:        72 kB
Private_Dirty:       108 kB
Private_Hugetlb:       4 kB
Referenced:         1688 kB
";
        assert_eq!(
            parse_rollup(text),
            Some(ProcMem {
                pss_kib: 511,
                uss_kib: 184,
                rss_kib: 1688
            })
        );
        assert_eq!(parse_rollup(b""), None);
    }

    #[test]
    fn rollup_of_a_process_touching_64_mib() {
        let child =
            Toucher::spawn(64, false, |_| Ok::<(), std::io::Error>(())).expect("fork a toucher");
        let m = rollup(&[child.pid()]);
        println!("toucher: {m:?}");
        assert!(m.pss_kib >= 64 * 1024, "{m:?}");
        assert!(m.uss_kib >= 64 * 1024 && m.uss_kib <= m.rss_kib, "{m:?}");
        assert!(m.pss_kib <= m.rss_kib, "{m:?}");
        // A vanished pid and a kernel thread add nothing.
        let kthread = procfs::process::all_processes()
            .expect("list /proc")
            .flatten()
            .find(|p| p.stat().is_ok_and(|s| s.flags & 0x0020_0000 != 0))
            .map(|p| p.pid);
        // (Not compared with the toucher's own figures: it shares pages copy-on-write with
        // this test process, whose other threads keep writing to them.)
        let mut pids = vec![i32::MAX];
        pids.extend(kthread);
        assert_eq!(rollup(&pids), ProcMem::default());
        assert_eq!(rollup_one(i32::MAX), None);
        if let Some(k) = kthread {
            assert_eq!(rollup_one(k), None, "kernel thread {k}");
        }
    }

    #[test]
    fn host_mem_and_settle_are_plausible() {
        let h = host_mem();
        assert!(h.mem_available_kib > 0 && h.slab_kib > 0, "{h:?}");
        let start = Instant::now();
        let (s, dropped) = settle_reported(false, Duration::from_secs(5));
        assert!(!dropped);
        assert!(start.elapsed() < Duration::from_secs(6));
        assert!(s.mem_available_kib > 0 && s.anon_pages_kib > 0, "{s:?}");
        assert!(s.kernel_stack_kib > 0 && s.page_tables_kib > 0, "{s:?}");
        let root = nix::unistd::geteuid().is_root();
        let start = Instant::now();
        let (d, dropped) = settle_reported(true, Duration::from_secs(5));
        println!(
            "settle with drop_caches: {d:?} (dropped: {dropped}) in {:?}",
            start.elapsed()
        );
        assert_eq!(dropped, root);
        assert!(d.mem_available_kib > 0, "{d:?}");
        // A zero timeout returns the first reading at once.
        let start = Instant::now();
        assert!(settle(false, Duration::ZERO).mem_available_kib > 0);
        assert!(start.elapsed() < Duration::from_millis(50));
    }

    #[test]
    fn cgroup_charge_of_a_process_touching_64_mib() {
        let Some(run) = crate::measure::testutil::test_cgroups("measure-test", "memory") else {
            return;
        };
        let cg = run
            .0
            .create_instance("mem", &crate::scenario::Limits::default())
            .expect("create the instance cgroup");
        let before = cgroup_mem_kib(&cg).expect("read an empty cgroup's charge");
        // The child joins the cgroup before it touches anything: pages are charged to the
        // cgroup they are faulted in, and are not moved when a process migrates.
        let child =
            Toucher::spawn(64, false, |pid| cg.add_pid(pid)).expect("fork a toucher in the cgroup");
        let after = cgroup_mem_kib(&cg).expect("read the cgroup's charge");
        println!(
            "cgroup {:?}: {before} KiB empty, {after} KiB with the toucher",
            cg.dir_for("memory")
        );
        assert!(after >= 64 * 1024, "{after} KiB");
        drop(child);
    }

    /// QEMU with 128 MiB and no disk: SeaBIOS runs (and finds nothing to boot) unless
    /// `stopped`. None, with the reason printed, if QEMU cannot be started.
    fn qemu(stopped: bool) -> Option<KillOnDrop> {
        let qemu = "qemu-system-x86_64";
        let mut cmd = std::process::Command::new(qemu);
        cmd.args([
            "-nodefaults",
            "-display",
            "none",
            "-machine",
            "q35,accel=tcg",
            "-m",
            "128",
        ]);
        if stopped {
            cmd.arg("-S");
        }
        let spawned = cmd
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        match spawned {
            Ok(c) => Some(KillOnDrop(c)),
            Err(e) => {
                crate::skip::because(&format!("{qemu} cannot be spawned: {e}"));
                None
            }
        }
    }

    /// Polls until `ok` holds for the guest RAM reading of `pid`, up to 10 s.
    fn wait_guest_ram(pid: i32, ok: impl Fn(u64) -> bool) -> Option<u64> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let r = guest_ram_resident_kib(pid, 128);
            if r.is_some_and(&ok) || Instant::now() >= deadline {
                return r;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    #[test]
    fn guest_ram_of_a_real_qemu() {
        let Some(stopped) = qemu(true) else { return };
        let pid = stopped.0.id() as i32;
        // QEMU maps guest RAM while it sets the machine up, before it stops (-S); the
        // stopped guest has touched none of it.
        let resident = wait_guest_ram(pid, |_| true).expect("QEMU's 128 MiB RAM mapping");
        let m = rollup(&[pid]);
        println!(
            "qemu -m 128 -S: guest RAM resident {resident} KiB, uss {} KiB, vmm overhead {} KiB",
            m.uss_kib,
            m.uss_kib.saturating_sub(resident)
        );
        assert!(resident <= 128 * 1024);
        assert!(m.uss_kib >= resident);
        // No mapping of a guest size that was not asked for (the 1 GiB TCG buffer is
        // executable, so it is no candidate for 2 GiB either).
        assert_eq!(guest_ram_resident_kib(pid, 4096), None);
        assert_eq!(guest_ram_resident_kib(pid, 2048), None);
        drop(stopped);

        let Some(running) = qemu(false) else { return };
        let pid = running.0.id() as i32;
        let resident = wait_guest_ram(pid, |kib| kib > 0).expect("QEMU's 128 MiB RAM mapping");
        let m = rollup(&[pid]);
        println!(
            "qemu -m 128 (SeaBIOS, nothing to boot): guest RAM resident {resident} KiB, uss {} KiB, vmm overhead {} KiB",
            m.uss_kib,
            m.uss_kib.saturating_sub(resident)
        );
        assert!(resident > 0 && resident <= 128 * 1024, "{resident}");
        assert!(m.uss_kib > resident, "{m:?}");
    }

    /// Spawns 1000 `sleep 30` and times `rollup` over them; run with
    /// `cargo test --release --lib measure:: -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn rollup_of_1000_processes_is_fast() {
        let children: Vec<KillOnDrop> = (0..1000)
            .map(|_| {
                KillOnDrop(
                    std::process::Command::new("sleep")
                        .arg("30")
                        .spawn()
                        .expect("spawn sleep"),
                )
            })
            .collect();
        let pids: Vec<i32> = children.iter().map(|c| c.0.id() as i32).collect();
        // Let every child exec sleep, so its rollup is that of sleep, not of a forked copy
        // of the test binary.
        std::thread::sleep(Duration::from_millis(500));
        let mut best = Duration::MAX;
        let mut m = ProcMem::default();
        for _ in 0..5 {
            let start = Instant::now();
            m = rollup(&pids);
            best = best.min(start.elapsed());
        }
        let per_pid: Duration = {
            let start = Instant::now();
            for &p in &pids {
                rollup(&[p]);
            }
            start.elapsed()
        };
        let cpu_start = Instant::now();
        let cpu = crate::measure::cpu::pids_cpu_ns(&pids);
        let cpu_took = cpu_start.elapsed();
        println!(
            "rollup over {} processes: best of 5 {best:?} (one call per pid: {per_pid:?}); {m:?}; pids_cpu_ns {cpu:?} in {cpu_took:?}",
            pids.len()
        );
        assert!(m.rss_kib > 0);
        assert!(best < Duration::from_secs(1), "{best:?}");
    }

    #[test]
    fn per_cpu_free_pages_are_summed_over_zones_and_cpus() {
        let zoneinfo = "Node 0, zone   Normal
  pages free     123
        nr_free_pages 123
  pagesets
    cpu: 0
              count:    11571
              high:     32007
              batch:    63
  vm stats threshold: 24
    cpu: 1
              count:    10884
              high:     24396
Node 0, zone  DMA32
  pagesets
    cpu: 0
              count:    77
";
        assert_eq!(pcp_pages(zoneinfo), 11571 + 10884 + 77);
        assert_eq!(pcp_pages("Node 0, zone DMA\n  pages free 3\n"), 0);
    }
}
