//! Our own containers against the real kernel: namespaces, overlay root, /proc and /dev,
//! masks, capabilities, cgroup limits, and that teardown or a failed launch leaves nothing.

mod common;

use common::*;
use isobench::scenario::BackendKind;
use std::path::Path;

const LIMITS: &str = "[limits]\nmemory_mib = 48\npids = 32\ncpus = 0.25\n";

#[test]
fn a_container_sees_only_itself_and_carries_its_limits() {
    if skip::unless_root() {
        return;
    }
    let run = TestRun::new(BackendKind::Container, &scenario(LIMITS));
    let inst = run.backend().launch("iso-a").expect("container launches");
    let pid = inst.pid();

    // PID namespace: the agent is PID 1 and `ps` sees nothing of the host.
    assert_eq!(inst.startup().facts.pid, 1);

    // Every phase is stamped where it happens, in launch order (issue 12: setup_ms used to
    // equal exec_ms, both read by the parent at once).
    let st = inst.startup();
    let phases = [
        ("spawn", st.spawn),
        ("clone", st.clone),
        ("cgroup", st.cgroup),
        ("rootfs", st.rootfs),
        ("setup", st.setup),
        ("exec", st.exec),
        ("agent_start", st.agent_start),
        ("agent_ready", st.agent_ready),
        ("startup", Some(st.startup)),
    ];
    for w in phases[1..].windows(2) {
        let (a, b) = (w[0].1.expect(w[0].0), w[1].1.expect(w[1].0));
        assert!(a <= b, "{} ({a:?}) after {} ({b:?})", w[0].0, w[1].0);
    }
    assert!(
        st.setup < st.exec,
        "setup_ms must not equal exec_ms: {st:?}"
    );
    // The agent on the host's kernel does not scan the host's /proc before `ready`.
    assert_eq!(st.facts.kthreads, None);
    let (ok, ps) = nsenter(pid, &["/bin/ps", "-o", "pid,comm"]);
    assert!(ok, "ps failed: {ps}");
    let pids: Vec<&str> = ps
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert_eq!(pids.len(), 2, "only the agent and ps itself, got:\n{ps}");
    assert!(pids.contains(&"1"), "{ps}");

    // UTS: its own hostname.
    let (_, host) = nsenter(pid, &["/bin/hostname"]);
    assert_eq!(host.trim(), "iso-a");
    assert_eq!(inst.startup().facts.hostname, "iso-a");

    // Mount namespace and root: host files are not there, its own are.
    let marker = std::env::temp_dir().join(format!("isobench-host-marker-{}", std::process::id()));
    std::fs::write(&marker, "host").unwrap();
    let (seen, _) = nsenter(pid, &["/bin/test", "-e", marker.to_str().unwrap()]);
    let _ = std::fs::remove_file(&marker);
    assert!(!seen, "a host file is visible inside the container");
    assert!(Path::new(&format!("/proc/{pid}/root/bin/busybox")).exists());
    assert!(!Path::new(&format!("/proc/{pid}/root/work")).exists());

    // Writes land in its private upper dir only.
    let (ok, out) = nsenter(pid, &["/bin/sh", "-c", "echo hello > /root/written"]);
    assert!(ok, "{out}");
    let upper = inst.private_dir().expect("a container has an upper dir");
    assert_eq!(read(upper.join("root/written")), "hello");
    assert!(
        !run.ctx
            .state_dir
            .join("layers/busybox/root/written")
            .exists(),
        "the shared image changed"
    );

    // Fresh /proc, minimal /dev, no /sys.
    let (_, devs) = nsenter(pid, &["/bin/ls", "/dev"]);
    let mut devs: Vec<&str> = devs.split_whitespace().collect();
    devs.sort();
    assert_eq!(
        devs,
        [
            "fd", "full", "null", "random", "stderr", "stdin", "stdout", "tty", "urandom", "zero"
        ]
    );
    let (_, sys) = nsenter(pid, &["/bin/ls", "-A", "/sys"]);
    assert_eq!(sys.trim(), "", "no host /sys");

    // OCI masked paths read empty; read-only paths refuse writes.
    for masked in ["/proc/kcore", "/proc/keys", "/proc/timer_list"] {
        if !Path::new(masked).exists() {
            continue;
        }
        let (ok, out) = nsenter(pid, &["/bin/cat", masked]);
        assert!(
            ok && out.is_empty(),
            "{masked} should read empty, got {} bytes",
            out.len()
        );
    }
    let (wrote, out) = nsenter(
        pid,
        &["/bin/sh", "-c", "echo x > /proc/sys/kernel/hostname"],
    );
    assert!(!wrote, "/proc/sys must be read-only: {out}");

    // Capabilities: the default profile's (Docker's) bounding set, no_new_privs; only stdio
    // is open.
    let want = isobench::security::mask(isobench::security::DOCKER_CAPS);
    assert_eq!(
        u64::from_str_radix(&status_field(pid, "CapBnd"), 16).unwrap(),
        want
    );
    assert_eq!(
        u64::from_str_radix(&status_field(pid, "CapEff"), 16).unwrap(),
        want
    );
    assert_eq!(status_field(pid, "NoNewPrivs"), "1");
    let mut fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    fds.sort();
    assert_eq!(fds, ["0", "1", "2"]);

    // Every namespace is its own.
    for ns in ["pid", "mnt", "uts", "ipc", "net", "cgroup"] {
        let mine = std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap();
        let its = std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap();
        assert_ne!(mine, its, "{ns} namespace is shared with the host");
    }
    // Cgroup namespace: the container's own cgroup is its root.
    let (_, cg) = nsenter(pid, &["/bin/cat", "/proc/1/cgroup"]);
    assert!(
        cg.lines()
            .filter(|l| l.contains("memory"))
            .all(|l| l.ends_with(":/")),
        "{cg}"
    );

    // Limits were written, and the agent sits in the cgroup that has them.
    let cgroup = inst.cgroup().expect("a container has a cgroup");
    let v2 = cgroup.read("memory", "memory.max").is_ok();
    let mem = if v2 {
        cgroup.read("memory", "memory.max")
    } else {
        cgroup.read("memory", "memory.limit_in_bytes")
    };
    assert_eq!(mem.unwrap(), (48u64 << 20).to_string());
    assert_eq!(cgroup.read("pids", "pids.max").unwrap(), "32");
    let quota = if v2 {
        cgroup.read("cpu", "cpu.max").unwrap()
    } else {
        cgroup.read("cpu", "cpu.cfs_quota_us").unwrap()
    };
    assert!(quota.starts_with("25000"), "cpu quota {quota}");
    assert!(
        cgroup
            .read("pids", "cgroup.procs")
            .unwrap()
            .lines()
            .any(|l| l == pid.to_string())
    );
    // Same kernel as the host.
    assert_eq!(
        inst.startup().facts.kernel_release,
        read("/proc/sys/kernel/osrelease")
    );
    assert_eq!(
        inst.startup().facts.boot_id,
        read("/proc/sys/kernel/random/boot_id")
    );

    let dirs = cgroup.dirs().to_vec();
    let inst_dir = upper.parent().unwrap().to_path_buf();
    inst.teardown().expect("teardown succeeds");
    assert!(!alive(pid), "agent survived teardown");
    for d in dirs {
        assert!(!d.exists(), "cgroup {} left after teardown", d.display());
    }
    assert!(!inst_dir.exists(), "overlay dirs left after teardown");
}

#[test]
fn the_pids_limit_holds_inside_the_container() {
    if skip::unless_root() {
        return;
    }
    let run = TestRun::new(BackendKind::Container, &scenario(LIMITS));
    let inst = run
        .backend()
        .launch("iso-pids")
        .expect("container launches");
    let cgroup = inst.cgroup().unwrap();
    // Put a shell into the container's cgroup and namespaces, then fork past the limit.
    let procs = cgroup.dir_for("pids").unwrap().join("cgroup.procs");
    let script = format!(
        "echo $$ > {} && exec nsenter -t {} -a -r -w -- /bin/sh -c 'n=0; for i in $(seq 40); do sleep 3 & done; echo started; wait'",
        procs.display(),
        inst.pid()
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &script])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Resource temporarily unavailable") || text.contains("can't fork"),
        "forking past pids.max=32 should fail:\n{text}"
    );
    // The kernel counts every fork it refused because of pids.max.
    let events = cgroup.read("pids", "pids.events").unwrap();
    let refused: u64 = events
        .lines()
        .find_map(|l| l.strip_prefix("max "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    assert!(
        refused > 0,
        "pids.events should count refused forks: {events}"
    );
    inst.teardown().unwrap();
}

#[test]
fn a_failed_launch_leaves_nothing_and_names_the_stage() {
    if skip::unless_root() {
        return;
    }
    let run = TestRun::new(BackendKind::Container, &scenario(""));
    // Hostnames are at most 64 bytes: sethostname fails inside the child after the mounts.
    let name = "x".repeat(70);
    let err = run.backend().launch(&name).err().expect("launch must fail");
    assert!(err.to_string().contains("setting the hostname"), "{err}");
    let inst_dir = run.ctx.state_dir.join("instances").join(&name);
    assert!(
        !inst_dir.exists(),
        "overlay dirs left after a failed launch"
    );
    for root in isobench::host::cgroup::CgroupHost::detect()
        .unwrap()
        .roots()
    {
        let d = root.join("isobench").join(&run.ctx.run_id).join(&name);
        assert!(
            !d.exists(),
            "cgroup {} left after a failed launch",
            d.display()
        );
    }
    let marked = isobench::host::run_id::marked_processes();
    assert!(
        !marked.iter().any(|m| m.value == *run.ctx.run_id),
        "a process of the failed launch survived"
    );
}

#[test]
fn namespaces_can_be_switched_off() {
    if skip::unless_root() {
        return;
    }
    let run = TestRun::new(
        BackendKind::Container,
        &scenario("[namespaces]\nnet = false\nuts = false\n"),
    );
    let inst = run
        .backend()
        .launch("iso-shared")
        .expect("container launches");
    let pid = inst.pid();
    let same = |ns: &str| {
        std::fs::read_link(format!("/proc/self/ns/{ns}")).unwrap()
            == std::fs::read_link(format!("/proc/{pid}/ns/{ns}")).unwrap()
    };
    assert!(
        same("net") && same("uts"),
        "net and uts are shared when switched off"
    );
    assert!(!same("pid") && !same("mnt"), "pid and mount stay private");
    assert_eq!(
        inst.startup().facts.hostname,
        nix::unistd::gethostname().unwrap().to_string_lossy()
    );
    inst.teardown().unwrap();
}

#[test]
fn a_directory_image_is_used_read_only() {
    if skip::unless_root() {
        return;
    }
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("dir-image-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("etc")).unwrap();
    std::fs::write(dir.join("etc/marker"), "from the image").unwrap();
    let run = TestRun::new(
        BackendKind::Container,
        &scenario(&format!("image = \"{}\"", dir.display())),
    );
    let inst = run
        .backend()
        .launch("iso-dir")
        .expect("container launches from a directory image");
    let pid = inst.pid();
    assert_eq!(
        read(format!("/proc/{pid}/root/etc/marker")),
        "from the image"
    );
    std::fs::write(format!("/proc/{pid}/root/etc/marker"), "changed inside").unwrap();
    assert_eq!(
        read(dir.join("etc/marker")),
        "from the image",
        "the image directory must not change"
    );
    inst.teardown().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_process_backend_is_the_host_itself() {
    let run = TestRun::new(BackendKind::Process, &scenario(""));
    let inst = run.backend().launch("plain").expect("process launches");
    let pid = inst.pid();
    assert_ne!(inst.startup().facts.pid, 1);
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap(),
        std::fs::read_link("/proc/self/ns/pid").unwrap()
    );
    assert_eq!(
        inst.startup().facts.boot_id,
        read("/proc/sys/kernel/random/boot_id")
    );
    inst.teardown().unwrap();
    assert!(!alive(pid));
}

/// The launcher's child shares the harness's descriptor table until its first syscall takes a
/// private copy of the low part (CLONE_FILES, then close_range with CLOSE_RANGE_UNSHARE): its
/// dup2s onto 0, 1 and 2 must land in that copy, never in the harness's table, and nothing of
/// the harness's (parked high, as live instances' pipes are) may reach the agent.
#[test]
fn launching_leaves_the_harness_descriptors_as_they_were() {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    if skip::unless_root() {
        return;
    }
    let ident = |fd: i32| {
        let m = std::fs::metadata(format!("/proc/self/fd/{fd}")).ok();
        m.map(|m| (m.dev(), m.ino()))
    };
    let stdio: Vec<_> = (0..3).map(ident).collect();
    // Descriptors held the way live instances' are: parked high.
    let held: Vec<_> = (0..50)
        .map(|_| {
            let (r, _w) = nix::unistd::pipe().unwrap();
            isobench::host::fd::park(r)
        })
        .collect();
    assert!(
        held.iter()
            .all(|f| f.as_raw_fd() >= isobench::host::fd::PARK_BASE)
    );
    let run = TestRun::new(BackendKind::Container, &scenario(LIMITS));
    let insts: Vec<_> = (0..3)
        .map(|i| run.backend().launch(&format!("fds-{i}")).expect("launches"))
        .collect();
    assert_eq!((0..3).map(ident).collect::<Vec<_>>(), stdio);
    for inst in &insts {
        let pid = inst.pid();
        let mut fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        fds.sort();
        assert_eq!(fds, ["0", "1", "2"], "instance {pid}");
        let out = std::fs::metadata(format!("/proc/{pid}/fd/1")).unwrap();
        assert_ne!(
            Some((out.dev(), out.ino())),
            stdio[1],
            "the agent writes to its pipe"
        );
    }
    for inst in insts {
        inst.teardown().expect("teardown succeeds");
    }
}
