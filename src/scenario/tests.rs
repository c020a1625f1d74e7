//! The scenario's parsing and validation, message by message.

use super::error::line_of;
use super::raw::WORKLOAD_EXPECTED;
use super::validate::default_parallelism;
use super::*;

const ORIGIN: &str = "scenarios/x.toml";

/// The smallest valid scenario, with `extra` appended (top-level keys or tables).
fn minimal(extra: &str) -> String {
    format!("name = \"t\"\nbackends = [\"process\"]\ncounts = [1]\n{extra}")
}

fn parse(text: &str) -> Result<Scenario, ScenarioError> {
    Scenario::parse(text, ORIGIN, Path::new("/nonexistent-base"))
}

/// Parses `text`, expects an error, checks it is one line naming the origin and containing
/// every fragment, and returns the message.
fn parse_err(text: &str, fragments: &[&str]) -> String {
    let msg = match parse(text) {
        Ok(s) => panic!("expected an error for {text:?}, got {s:?}"),
        Err(e) => e.to_string(),
    };
    assert_one_line(&msg);
    assert!(
        msg.starts_with(ORIGIN),
        "{msg:?} does not start with the origin"
    );
    for f in fragments {
        assert!(msg.contains(f), "{msg:?} does not contain {f:?}");
    }
    msg
}

fn assert_one_line(msg: &str) {
    assert!(!msg.contains(['\n', '\r']), "not one line: {msg:?}");
    assert!(!msg.is_empty());
}

/// A fresh directory under the system temp dir, removed on drop (tempfile).
fn temp_dir(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("isobench-scenario-test-{tag}-"))
        .tempdir()
        .unwrap()
}

#[test]
fn embedded_default_parses_with_the_documented_values() {
    let s = Scenario::default_embedded();
    assert_eq!(s.name, "quick");
    assert!(s.description.contains("quick"));
    assert_eq!(s.origin, DEFAULT_SCENARIO_ORIGIN);
    assert_eq!(s.text, DEFAULT_SCENARIO_TEXT);
    assert_eq!(s.image, ImageSpec::Busybox);
    assert_eq!(s.workload, Workload::Idle);
    assert_eq!(
        s.backends,
        vec![
            BackendKind::Process,
            BackendKind::Container,
            BackendKind::Vm
        ]
    );
    assert_eq!(s.counts, vec![1, 10, 100]);
    assert_eq!(s.counts_for(BackendKind::Vm), [1, 2]);
    assert_eq!((s.vm.accel, s.vm.memory_mib), (Accel::Auto, 128));
    assert_eq!(s.parallelism, 2);
    assert_eq!(s.repetitions, 1);
    assert_eq!(s.warmup, 1);
    assert_eq!(s.ready_timeout_s, 30.0);
    assert_eq!(
        s.limits,
        Limits {
            memory_mib: Some(64),
            cpus: Some(0.5),
            pids: Some(64)
        }
    );
    assert_eq!(s.namespaces, Namespaces::default());
}

#[test]
fn startup_scenario_parses() {
    let text = include_str!("../../scenarios/startup.toml");
    let s = Scenario::parse(text, "scenarios/startup.toml", Path::new("scenarios")).unwrap();
    assert_eq!(s.name, "startup");
    assert_eq!(
        s.backends,
        vec![
            BackendKind::Process,
            BackendKind::Unshare,
            BackendKind::Container
        ]
    );
    assert_eq!(s.counts, vec![1, 10]);
    assert_eq!(s.repetitions, 30);
    assert_eq!(s.parallelism, 2);
    assert_eq!(s.warmup, 3);
    assert_eq!(s.limits, Scenario::default_embedded().limits);
    // 3 backends x ((1 + 10) x 30 + 3)
    assert_eq!(s.total_launches(), 3 * (11 * 30 + 3));
}

#[test]
fn defaults_apply() {
    let s = parse(&minimal("")).unwrap();
    assert_eq!(s.description, "");
    assert_eq!(s.image, ImageSpec::Busybox);
    assert_eq!(s.workload, Workload::Idle);
    assert_eq!(s.parallelism, default_parallelism());
    assert!((1..=1024).contains(&s.parallelism));
    assert_eq!(s.repetitions, 1);
    assert_eq!(s.warmup, 1);
    assert_eq!(s.ready_timeout_s, 30.0);
    assert_eq!(s.limits, Limits::default());
    assert_eq!(
        s.namespaces,
        Namespaces {
            pid: true,
            mount: true,
            uts: true,
            ipc: true,
            net: true,
            cgroup: true
        }
    );
    assert_eq!(s.origin, ORIGIN);
    assert_eq!(s.text, minimal(""));
}

#[test]
fn namespaces_can_be_turned_off_one_by_one() {
    let s = parse(&minimal("[namespaces]\nnet = false\ncgroup = false\n")).unwrap();
    assert!(s.namespaces.pid && s.namespaces.mount && s.namespaces.uts && s.namespaces.ipc);
    assert!(!s.namespaces.net && !s.namespaces.cgroup);
}

#[test]
fn floats_accept_integers() {
    let s = parse(&minimal("ready_timeout_s = 5\n[limits]\ncpus = 2\n")).unwrap();
    assert_eq!(s.ready_timeout_s, 5.0);
    assert_eq!(s.limits.cpus, Some(2.0));
    let s = parse(&minimal("ready_timeout_s = 0.25\n")).unwrap();
    assert_eq!(s.ready_timeout_s, 0.25);
}

#[test]
fn range_edges_are_accepted() {
    let name = format!("0{}_", "a-".repeat(19));
    let s = parse(&format!(
        "name = \"{name}\"\nbackends = [\"unshare\"]\n\
         counts = [1, 100000]\nparallelism = 1024\nrepetitions = 10000\nwarmup = 0\n\
         ready_timeout_s = 3600\nworkload = {{ write-file = 65536 }}\n\
         [limits]\nmemory_mib = 1048576\ncpus = 1024\npids = 4194304\n"
    ))
    .unwrap();
    assert_eq!(s.name.len(), 40);
    assert_eq!(s.counts, vec![1, 100_000]);
    assert_eq!(s.parallelism, 1024);
    assert_eq!(s.repetitions, 10_000);
    assert_eq!(s.warmup, 0);
    assert_eq!(s.limits.memory_mib, Some(1_048_576));
    assert_eq!(s.limits.pids, Some(4_194_304));
    assert_eq!(s.workload, Workload::WriteFile { mib: 65536 });
}

#[test]
fn workload_forms_parse() {
    let cases = [
        (
            "workload = \"idle\"\n",
            Workload::Idle,
            vec!["idle"],
            "idle",
        ),
        (
            "workload = { touch-memory = 64 }\n",
            Workload::TouchMemory { mib: 64 },
            vec!["touch-memory", "64"],
            "touch-memory=64",
        ),
        (
            "workload = { write-file = 16 }\n",
            Workload::WriteFile { mib: 16 },
            vec!["write-file", "16"],
            "write-file=16",
        ),
        // A standard table works as well as an inline one.
        (
            "[workload]\ntouch-memory = 1\n",
            Workload::TouchMemory { mib: 1 },
            vec!["touch-memory", "1"],
            "touch-memory=1",
        ),
    ];
    for (extra, want, args, label) in cases {
        let s = parse(&minimal(extra)).unwrap();
        assert_eq!(s.workload, want, "{extra}");
        assert_eq!(s.workload.agent_args(), args);
        assert_eq!(s.workload.label(), label);
    }
}

#[test]
fn the_vm_table_sets_the_guest_and_its_own_counts() {
    let s = parse(&minimal("[vm]\naccel = \"tcg\"\nmachine = \"microvm\"\nmemory_mib = 256\nvcpus = 2\ncounts = [1, 2]\n")).unwrap();
    assert_eq!(
        (s.vm.accel, s.vm.machine, s.vm.memory_mib, s.vm.vcpus),
        (Accel::Tcg, Machine::Microvm, 256, 2)
    );
    assert_eq!(s.counts_for(BackendKind::Vm), [1, 2]);
    assert_eq!(s.counts_for(BackendKind::Process), [1]);
    let d = parse(&minimal("")).unwrap();
    assert_eq!(d.vm, VmConfig::default());
    assert_eq!(
        d.counts_for(BackendKind::Vm),
        [1],
        "without [vm] counts, VMs use counts"
    );
}

#[test]
fn vm_table_errors_name_the_key_and_what_is_allowed() {
    parse_err(
        &minimal("[vm]\naccel = \"hvf\"\n"),
        &["vm.accel", "auto, kvm, tcg"],
    );
    parse_err(
        &minimal("[vm]\nmachine = \"pc\"\n"),
        &["vm.machine", "q35, microvm"],
    );
    parse_err(
        &minimal("[vm]\nkernel = \"/nonexistent/vmlinuz\"\n"),
        &["vm.kernel", "/nonexistent/vmlinuz"],
    );
    parse_err(
        &minimal("[vm]\ncounts = [0]\n"),
        &["vm.counts", "1..=100000"],
    );
    parse_err(
        &minimal("[vm]\nmemory_mib = 8\n"),
        &["vm.memory_mib", "32..="],
    );
    parse_err(
        &minimal("[vm]\ndisk = 1\n"),
        &["unknown field `disk`", "`counts`"],
    );
}

#[test]
fn backend_names_round_trip() {
    assert_eq!(
        BackendKind::allowed_names(),
        "process, unshare, container, vm, oci, docker, gvisor, lxc"
    );
    for &k in BackendKind::ALL {
        assert_eq!(BackendKind::from_name(k.as_str()), Some(k));
        assert_eq!(k.to_string(), k.as_str());
        // serde and as_str must agree: results are written with serde, read back by name.
        let v: toml::Value = toml::Value::try_from(k).unwrap();
        assert_eq!(v.as_str(), Some(k.as_str()));
        let back: BackendKind = v.try_into().unwrap();
        assert_eq!(back, k);
    }
    assert_eq!(BackendKind::from_name("Process"), None);
}

#[test]
fn a_row_label_names_its_kind() {
    for &k in BackendKind::ALL {
        assert_eq!(BackendKind::of_label(k.as_str()), Some(k));
    }
    assert_eq!(
        BackendKind::of_label("container+docker"),
        Some(BackendKind::Container)
    );
    assert_eq!(BackendKind::of_label("oci-runc"), Some(BackendKind::Oci));
    assert_eq!(
        BackendKind::of_label("oci-runsc-ptrace+none"),
        Some(BackendKind::Gvisor)
    );
    assert_eq!(
        BackendKind::of_label("oci-crun+none"),
        Some(BackendKind::Oci)
    );
    assert_eq!(
        BackendKind::of_label("oci-runsc-ptrace+docker"),
        Some(BackendKind::Gvisor)
    );
    assert_eq!(BackendKind::of_label("lxc+none"), Some(BackendKind::Lxc));
    for not in ["oci-", "vms", "", "+docker", "Process"] {
        assert_eq!(BackendKind::of_label(not), None, "{not:?}");
    }
}

#[test]
fn total_launches_arithmetic() {
    let s = parse(
        "name = \"t\"\nbackends = [\"process\", \"container\"]\ncounts = [1, 10, 100]\n\
         repetitions = 3\nwarmup = 2\n",
    )
    .unwrap();
    // 2 backends x ((1 + 10 + 100) x 3 + 2 warmups)
    assert_eq!(s.total_launches(), 2 * (111 * 3 + 2));
    let s = parse(&minimal("warmup = 0\n")).unwrap();
    assert_eq!(s.total_launches(), 1);
    // process and container at 1 + 10 + 100, vm at 1 + 2, one warmup each.
    assert_eq!(
        Scenario::default_embedded().total_launches(),
        2 * (111 + 1) + (3 + 1)
    );
}

#[test]
fn toml_errors_carry_line_and_key() {
    let msg = parse_err(
        "name = \"t\"\nbackends = [\"process\"]\ncounts = [1]\nfoo = 1\n",
        &["line 4", "unknown field `foo`", "expected one of `name`"],
    );
    assert_eq!(
        msg.split(": ").take(2).collect::<Vec<_>>(),
        vec![ORIGIN, "line 4"]
    );
    parse_err(
        &minimal("[limits]\nmemory_mib = 1\nswap_mib = 2\n"),
        &[
            "line 6",
            "limits",
            "unknown field `swap_mib`",
            "`memory_mib`",
        ],
    );
    parse_err(
        &minimal("[namespaces]\nuser = false\n"),
        &["line 5", "namespaces", "unknown field `user`", "`cgroup`"],
    );
    parse_err(
        &minimal("workload = { touch-memory = 1, write-file = 2 }\n"),
        &["line 4", "workload", "exactly one key"],
    );
    parse_err(
        &minimal("workload = { sleep = 1 }\n"),
        &[
            "line 4",
            "workload",
            "unknown field `sleep`",
            "`touch-memory`",
        ],
    );
}

#[test]
fn wrong_types_are_errors_naming_the_key() {
    let bad = |text: &str, fragments: &[&str]| parse_err(text, fragments);
    let p = "[\"process\"]";
    bad(
        &core("5", p, "[1]"),
        &["line 1: name: invalid type", "a string"],
    );
    bad(
        &core("\"t\"", "\"process\"", "[1]"),
        &["line 2: backends: invalid type"],
    );
    bad(
        &core("\"t\"", p, "[\"1\"]"),
        &["line 3: counts: invalid type", "an integer"],
    );
    bad(
        &core("\"t\"", p, "[1.5]"),
        &["line 3: counts: invalid type", "an integer"],
    );
    let bad = |extra: &str, fragments: &[&str]| parse_err(&minimal(extra), fragments);
    bad(
        "parallelism = \"2\"",
        &["line 4: parallelism: invalid type", "an integer"],
    );
    bad(
        "repetitions = true",
        &["line 4: repetitions: invalid type", "an integer"],
    );
    bad(
        "warmup = 1.0",
        &["line 4: warmup: invalid type", "an integer"],
    );
    bad(
        "ready_timeout_s = \"30\"",
        &["line 4: ready_timeout_s: invalid type", "a number"],
    );
    bad(
        "description = 1",
        &["line 4: description: invalid type", "a string"],
    );
    bad("image = 1", &["line 4: image: invalid type", "a string"]);
    bad(
        "limits = 3",
        &["line 4: limits: invalid type", "memory_mib, cpus, pids"],
    );
    bad(
        "[limits]\ncpus = \"half\"",
        &["line 5: limits.cpus: invalid type", "a number"],
    );
    bad(
        "[limits]\npids = 6.5",
        &["line 5: limits.pids: invalid type", "an integer"],
    );
    bad(
        "[namespaces]\npid = \"yes\"",
        &["line 5: namespaces.pid: invalid type", "a boolean"],
    );
    let allowed = WORKLOAD_EXPECTED;
    bad("workload = 5", &["line 4: workload: invalid type", allowed]);
    bad(
        "workload = \"busy\"",
        &["line 4: workload: invalid value", "\"busy\"", allowed],
    );
    bad(
        "workload = {}",
        &["line 4: workload: empty workload table", allowed],
    );
    bad(
        "workload = { touch-memory = \"64\" }",
        &["line 4: workload", "an integer"],
    );
}

#[test]
fn syntax_errors_and_missing_keys() {
    parse_err(&minimal("counts = [1,\n"), &["line 4"]);
    parse_err(
        &minimal("name = \"again\"\n"),
        &["line 4: name: duplicate key"],
    );
    parse_err(
        &minimal("[limits]\npids = 1\npids = 2\n"),
        &["line 6: pids: duplicate key"],
    );
    parse_err("this is not toml\n", &["line 1"]);
    for key in ["name", "backends", "counts"] {
        let text: String = minimal("")
            .lines()
            .filter(|l| !l.starts_with(key))
            .map(|l| format!("{l}\n"))
            .collect();
        let msg = parse_err(&text, &[&format!("missing field `{key}`"), "required keys"]);
        assert!(!msg.contains("line"), "{msg}");
    }
}

/// A scenario from its three required values, written as TOML.
fn core(name: &str, backends: &str, counts: &str) -> String {
    format!("name = {name}\nbackends = {backends}\ncounts = {counts}\n")
}

#[test]
fn name_rules() {
    let bad =
        |name: &str, fragments: &[&str]| parse_err(&core(name, "[\"process\"]", "[1]"), fragments);
    bad("\"\"", &["name: \"\" is not a valid name", "a-z"]);
    bad("\"Quick\"", &["name: \"Quick\"", "a-z, 0-9, '_' and '-'"]);
    bad("\"-x\"", &["name:", "starting with a-z or 0-9"]);
    bad("\"_x\"", &["name:", "starting with a-z or 0-9"]);
    bad("\"a/b\"", &["name:"]);
    bad("\"a.b\"", &["name:"]);
    bad("\"a b\"", &["name:"]);
    bad("\"café\"", &["name:"]);
    bad(
        &format!("{:?}", "a".repeat(41)),
        &["name:", "1 to 40 characters"],
    );
}

#[test]
fn backend_rules() {
    let bad =
        |backends: &str, fragments: &[&str]| parse_err(&core("\"t\"", backends, "[1]"), fragments);
    bad("[]", &["backends: empty", "process, unshare, container"]);
    bad(
        "[\"kvm\"]",
        &["backends: unknown backend \"kvm\"; allowed: process, unshare, container"],
    );
    bad("[\"Process\"]", &["backends: unknown backend \"Process\""]);
    bad(
        "[\"process\", \"container\", \"process\"]",
        &["backends: \"process\" is listed twice"],
    );
}

#[test]
fn count_rules() {
    let bad = |counts: &str, fragments: &[&str]| {
        parse_err(&core("\"t\"", "[\"process\"]", counts), fragments)
    };
    bad("[]", &["counts: empty", "1..=100000"]);
    bad(
        "[0]",
        &["counts: N = 0 is out of range; allowed 1..=100000"],
    );
    bad(
        "[1, 100001]",
        &["counts: N = 100001 is out of range; allowed 1..=100000"],
    );
    bad("[-5]", &["counts: N = -5 is out of range"]);
    bad("[10, 10]", &["counts: N = 10 is listed twice"]);
}

#[test]
fn numeric_rules() {
    let bad = |extra: &str, fragments: &[&str]| parse_err(&minimal(extra), fragments);
    bad(
        "parallelism = 0",
        &["parallelism: 0 is out of range; allowed 1..=1024"],
    );
    bad(
        "parallelism = 1025",
        &["parallelism: 1025 is out of range; allowed 1..=1024"],
    );
    bad(
        "repetitions = 0",
        &["repetitions: 0 is out of range; allowed 1..=10000"],
    );
    bad("repetitions = 10001", &["repetitions:", "1..=10000"]);
    bad(
        "warmup = -1",
        &["warmup: -1 is out of range; allowed 0..=1000"],
    );
    bad("warmup = 1001", &["warmup:", "0..=1000"]);
    let timeout = ["ready_timeout_s:", "allowed > 0 and <= 3600"];
    bad("ready_timeout_s = 0", &timeout);
    bad("ready_timeout_s = -1.5", &timeout);
    bad("ready_timeout_s = 3600.5", &timeout);
    bad("ready_timeout_s = nan", &timeout);
    bad("ready_timeout_s = inf", &timeout);
    bad(
        "workload = { touch-memory = 0 }",
        &["workload.touch-memory:", "1..=65536"],
    );
    bad(
        "workload = { write-file = 65537 }",
        &["workload.write-file:", "1..=65536"],
    );
    bad(
        "[limits]\nmemory_mib = 0",
        &["limits.memory_mib:", "1..=1048576"],
    );
    bad(
        "[limits]\nmemory_mib = 1048577",
        &["limits.memory_mib:", "1..=1048576"],
    );
    bad(
        "[limits]\ncpus = 0",
        &["limits.cpus:", "allowed > 0 and <= 1024"],
    );
    bad(
        "[limits]\ncpus = 1024.5",
        &["limits.cpus:", "allowed > 0 and <= 1024"],
    );
    bad(
        "[limits]\ncpus = nan",
        &["limits.cpus:", "allowed > 0 and <= 1024"],
    );
    bad("[limits]\npids = 0", &["limits.pids:", "1..=4194304"]);
    bad("[limits]\npids = 4194305", &["limits.pids:", "1..=4194304"]);
}

#[test]
fn image_rules() {
    let bad = |extra: &str, fragments: &[&str]| parse_err(&minimal(extra), fragments);
    bad("image = \"\"", &["image: empty path", "\"busybox\""]);
    bad(
        "image = \"/nope/rootfs\"",
        &[concat!(
            "image: /nope/rootfs does not exist",
            " (allowed: \"busybox\", a directory, or a .tar/.tar.gz/.tgz file)"
        )],
    );
}

#[test]
fn image_paths_resolve_against_base_dir() {
    let dir = temp_dir("image");
    std::fs::create_dir(dir.path().join("rootfs")).unwrap();
    for f in ["a.tar", "b.tar.gz", "c.tgz", "notes.txt"] {
        std::fs::write(dir.path().join(f), b"").unwrap();
    }
    let at = |image: &str| {
        Scenario::parse(
            &minimal(&format!("image = {image:?}\n")),
            ORIGIN,
            dir.path(),
        )
    };
    assert_eq!(
        at("rootfs").unwrap().image,
        ImageSpec::Directory(dir.path().join("rootfs"))
    );
    for f in ["a.tar", "b.tar.gz", "c.tgz"] {
        assert_eq!(at(f).unwrap().image, ImageSpec::Tarball(dir.path().join(f)));
    }
    // Absolute paths ignore the base directory.
    let abs = dir.path().join("c.tgz");
    let s = Scenario::parse(
        &minimal(&format!("image = {:?}\n", abs.display().to_string())),
        ORIGIN,
        Path::new("/somewhere/else"),
    )
    .unwrap();
    assert_eq!(s.image, ImageSpec::Tarball(abs));

    let msg = at("notes.txt").unwrap_err().to_string();
    assert_one_line(&msg);
    assert!(msg.starts_with(&format!("{ORIGIN}: image: ")), "{msg}");
    assert!(msg.contains("notes.txt is a file without a .tar"), "{msg}");
    assert!(msg.contains(".tar/.tar.gz/.tgz"), "{msg}");

    let msg = at("missing.tar").unwrap_err().to_string();
    assert_one_line(&msg);
    let missing = dir.path().join("missing.tar");
    assert!(
        msg.contains(&format!("image: {} does not exist", missing.display())),
        "{msg}"
    );
}

#[test]
fn load_reads_the_file_and_resolves_against_its_directory() {
    let dir = temp_dir("load");
    std::fs::create_dir(dir.path().join("rootfs")).unwrap();
    let path = dir.path().join("s.toml");
    let text = minimal("image = \"rootfs\"\n");
    std::fs::write(&path, &text).unwrap();
    let s = Scenario::load(&path).unwrap();
    assert_eq!(s.image, ImageSpec::Directory(dir.path().join("rootfs")));
    assert_eq!(s.text, text);
    assert_eq!(s.origin, path.display().to_string());

    std::fs::write(&path, "name = \"t\"\nbackends = [\"kvm\"]\ncounts = [1]\n").unwrap();
    let msg = Scenario::load(&path).unwrap_err().to_string();
    assert_one_line(&msg);
    assert!(
        msg.starts_with(&format!("{}: backends: unknown backend", path.display())),
        "{msg}"
    );
}

#[test]
fn load_missing_file_names_the_path() {
    let msg = Scenario::load(Path::new("scenarios/nope.toml"))
        .unwrap_err()
        .to_string();
    assert_eq!(
        msg,
        "scenario file scenarios/nope.toml: No such file or directory (os error 2)"
    );
}

#[test]
fn newlines_never_reach_a_message() {
    // A quoted key with a newline in it ends up in the toml crate's message.
    let msg = parse_err(&minimal("\"a\\nb\" = 1\n"), &["line 4", "unknown field"]);
    assert_one_line(&msg);
    let msg = Scenario::parse("name = 1\n", "odd\nname.toml", Path::new("."))
        .unwrap_err()
        .to_string();
    assert_one_line(&msg);
    assert!(msg.starts_with("odd name.toml: "), "{msg}");
    assert_eq!(one_line("a\n  b\r\n\nc"), "a b c");
}

#[test]
fn line_numbers_count_from_one() {
    assert_eq!(line_of("", 0), 1);
    assert_eq!(line_of("a\nb\nc", 2), 2);
    assert_eq!(line_of("a\nb\nc", 99), 3);
}

#[test]
fn section_rules_name_the_key_and_what_is_allowed() {
    let cases: &[(&str, &str)] = &[
        (
            "workload = { fork = 0 }",
            "workload.fork: 0 is out of range; allowed 1..=4096",
        ),
        (
            "workload = { syscalls = 0 }",
            "workload.syscalls: 0 is out of range; allowed 1..=10000",
        ),
        (
            "[oci]\nruntimes = []",
            "oci.runtimes: empty; allowed: a list of runc, crun, runsc, or paths to an executable file",
        ),
        (
            "[oci]\nruntimes = [\"runc\", \"youki\"]",
            "oci.runtimes: unknown runtime \"youki\"; allowed: a list of runc, crun, runsc, or paths to an executable file",
        ),
        (
            // A directory: some hosts' /etc files carry execute bits.
            "[oci]\nruntimes = [\"/etc\"]",
            "oci.runtimes: /etc is not an executable file; allowed: a list of runc, crun, runsc, or paths to an executable file",
        ),
        (
            "[oci]\nruntimes = [\"/nonexistent/runc\"]",
            "oci.runtimes: /nonexistent/runc: No such file or directory (os error 2); allowed:",
        ),
        (
            "[oci]\nruntimes = [\"runc\", \"/bin/sh\", \"runc\"]",
            "oci.runtimes: runtime \"runc\" is listed twice; each runtime may appear once",
        ),
        (
            "[oci]\nrunsc_platform = \"kvmm\"",
            "oci.runsc_platform: \"kvmm\" is not allowed; allowed: ptrace, kvm, systrap",
        ),
        (
            "[measure]\nidle_window_s = -1",
            "measure.idle_window_s: -1 is out of range; allowed > 0 and <= 3600",
        ),
        (
            "[measure]\nksm_timeout_s = nan",
            "measure.ksm_timeout_s: NaN is out of range; allowed > 0 and <= 3600",
        ),
        (
            "[measure]\nsettle_timeout_s = 0",
            "measure.settle_timeout_s: 0 is out of range; allowed > 0 and <= 3600",
        ),
        (
            "[until]\nstep = 0\nmax = 1\nmem_available_floor_mib = 0",
            "until.step: 0 is out of range; allowed 1..=100000",
        ),
        (
            "[until]\nstep = 1\nmax = 1\nmem_available_floor_mib = -1",
            "until.mem_available_floor_mib: -1 is out of range; allowed 0..=1048576",
        ),
        (
            "security = []",
            "security: empty; allowed: \"docker\", \"runc\", \"none\", or a list of them",
        ),
        (
            "security = \"selinux\"",
            "security: \"selinux\" is not a profile; allowed:",
        ),
        (
            "security = [\"docker\", \"docker\"]",
            "security: \"docker\" is listed twice; each profile may appear once",
        ),
        (
            "[vm]\nvcpus = 257",
            "vm.vcpus: 257 is out of range; allowed 1..=256",
        ),
        (
            "[vm]\nprobe_timeout_s = 601",
            "vm.probe_timeout_s: 601 is out of range; allowed > 0 and <= 600",
        ),
        (
            "[vm]\ncounts = [2, 2]",
            "vm.counts: N = 2 is listed twice; each N may appear once",
        ),
    ];
    for (extra, want) in cases {
        let msg = parse_err(&minimal(extra), &[want]);
        assert!(msg.starts_with(&format!("{ORIGIN}: ")), "{msg}");
    }
    // Sections are checked in order: oci before measure, until and vm.
    parse_err(
        &minimal(
            "[vm]\nvcpus = 0\n[until]\nstep = 0\nmax = 1\nmem_available_floor_mib = 0\n[measure]\nidle_window_s = -1\n[oci]\nruntimes = []\n",
        ),
        &["oci.runtimes: empty"],
    );
    // An idle window of 0 turns idle CPU off; profiles keep their order.
    let s = parse(&minimal(
        "security = [\"none\", \"runc\"]\n[measure]\nidle_window_s = 0\n",
    ))
    .unwrap();
    assert_eq!(s.measure.idle_window_s, 0.0);
    assert_eq!(
        s.profiles,
        [
            crate::security::Profile::None,
            crate::security::Profile::Runc
        ]
    );
    assert_eq!(s.security, crate::security::Profile::None);
    // The idle window ends once the rate holds still unless told to run its whole length.
    assert!(s.measure.idle_adaptive);
    let s = parse(&minimal("[measure]\nidle_adaptive = false\n")).unwrap();
    assert!(!s.measure.idle_adaptive);
}

#[test]
fn gvisor_and_runsc_among_the_oci_runtimes_would_run_runsc_twice() {
    let text = "name = \"t\"\nbackends = [\"gvisor\", \"oci\"]\ncounts = [1]\n[oci]\nruntimes = [\"runc\", \"runsc\"]\n";
    parse_err(
        text,
        &["oci.runtimes: \"runsc\" is gVisor, which the gvisor backend runs already"],
    );
    let ok = "name = \"t\"\nbackends = [\"gvisor\", \"oci\"]\ncounts = [1]\n[oci]\nruntimes = [\"runc\"]\nrunsc_platform = \"kvm\"\n";
    let s = Scenario::parse(ok, "t.toml", Path::new("/")).unwrap();
    assert_eq!(s.oci.runsc_platform, "kvm");
    assert_eq!(crate::scenario::oci_label("runsc", &s.oci), "oci-runsc-kvm");
    assert_eq!(
        crate::scenario::oci_label("/usr/sbin/runc", &s.oci),
        "oci-runc"
    );
}
