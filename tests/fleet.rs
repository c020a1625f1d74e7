//! Runs from many hosts: the Ansible playbook (deploy/ansible/site.yml) for real with the
//! distribution's ansible-core on two labelled local hosts (`ansible_connection=local`), then
//! `report` and `plan --fleet` over what it fetched; `plan --fleet` on run directories with
//! known costs (exact answers); bad fleet input (exit 2, nothing written); the Kubernetes
//! manifest parsed and checked for what the harness needs.

#[path = "common/bin.rs"]
mod bin;
mod common;
#[path = "common/host.rs"]
mod host;

use isobench::results::meta::RunMeta;
use isobench::results::record::Sample;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_isobench");
const EXIT_BAD_INPUT: i32 = 2;
const MIB: f64 = 1024.0;
const SRC: &str = env!("CARGO_MANIFEST_DIR");

fn show(o: &std::process::Output) -> String {
    format!(
        "{}\n--- stdout ---\n{}\n--- stderr ---\n{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn isobench(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running isobench {args:?}: {e}"))
}

fn meta_of(dir: &Path) -> RunMeta {
    let p = dir.join("meta.json");
    serde_json::from_slice(&std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .unwrap()
}

#[test]
fn ansible_runs_two_labelled_hosts_and_report_and_plan_answer_per_host() {
    if common::skip::unless_root() || common::skip::unless_on_path(&["ansible-playbook"]) {
        return;
    }
    let playbook = isobench::host::exec::which("ansible-playbook").expect("checked above");
    let _lock = host::host_lock();
    let s = bin::Scratch::new("fleet-ansible");
    let inventory = s.path("inventory.ini");
    std::fs::write(
        &inventory,
        "[isobench]\n\
         fleet-small ansible_connection=local isobench_host_label=small isobench_host_cost=1\n\
         fleet-big ansible_connection=local isobench_host_label=big isobench_host_cost=2.5 isobench_host_spec=64G,32\n\
         \n\
         [isobench:vars]\n\
         ansible_python_interpreter=/usr/bin/python3\n\
         isobench_become=false\n",
    )
    .unwrap();
    let (runs, home, state) = (s.path("runs"), s.path("home"), s.path("state"));
    let before = host::snapshot();
    let mut cmd = Command::new(playbook);
    // One host at a time: both "hosts" are this machine, and would measure each other.
    cmd.args(["--forks", "1", "-i"])
        .arg(&inventory)
        .arg(Path::new(SRC).join("deploy/ansible/site.yml"))
        .arg("-e")
        .arg(format!("isobench_binary={BIN}"))
        .arg("-e")
        .arg(format!("isobench_fetch_dir={}", runs.display()))
        .arg("-e")
        .arg(format!(
            "isobench_home={}/{{{{ inventory_hostname }}}}",
            home.display()
        ))
        .arg("-e")
        .arg(format!(
            "isobench_state_dir={}/{{{{ inventory_hostname }}}}",
            state.display()
        ))
        .arg("-e")
        .arg("isobench_workloads=1000")
        .env("ANSIBLE_NOCOLOR", "1")
        .env("ANSIBLE_HOST_KEY_CHECKING", "False")
        .env("ANSIBLE_LOCAL_TEMP", s.path("ansible-tmp"))
        .env("ANSIBLE_REMOTE_TEMP", s.path("ansible-tmp"));
    let o = bin::run_logged(
        cmd,
        &s.path("playbook.out"),
        &s.path("playbook.err"),
        Duration::from_secs(600),
    );
    assert!(
        o.status.success(),
        "ansible-playbook failed: {}\n{}\n{}",
        o.status,
        o.stdout,
        o.stderr
    );

    // Every host's run came back, labelled, from its own directories.
    let small = runs.join("fleet-small");
    let big = runs.join("fleet-big");
    let (ms, mb) = (meta_of(&small), meta_of(&big));
    assert_eq!(
        (ms.host_label.as_str(), mb.host_label.as_str()),
        ("small", "big")
    );
    assert_ne!(ms.run_id, mb.run_id);
    for m in [&ms, &mb] {
        assert_eq!(m.outcome, "complete", "{m:?}");
        assert!(m.cpu_cores > 0 && m.mem_total_kib > 0, "{m:?}");
        assert!(
            ["bare-metal", "vm", "unknown"].contains(&m.virtualization.kind.as_str()),
            "{:?}",
            m.virtualization
        );
    }
    for h in ["fleet-small", "fleet-big"] {
        assert!(
            home.join(h).join("run/samples.csv").is_file(),
            "{h}'s own out dir"
        );
        host::assert_clean_since(
            &before,
            &state.join(h),
            &[ms.run_id.clone(), mb.run_id.clone()],
        );
    }

    // The controller play ran report and plan --fleet over both; the playbook printed them.
    let report_md = std::fs::read_to_string(runs.join("report/report.md")).unwrap();
    assert!(report_md.contains("## Per host"), "{report_md}");
    for label in ["small", "big"] {
        assert!(
            report_md.contains(&format!("| process   | none  | {label}")),
            "no process row of {label} in the per-host table:\n{report_md}"
        );
    }
    assert!(
        o.stdout.contains("per host, at each run's largest N"),
        "{}",
        o.stdout
    );
    assert!(o.stdout.contains("1000 x container:"), "{}", o.stdout);
    assert!(o.stdout.contains("cheapest: "), "{}", o.stdout);
    let csv = std::fs::read_to_string(runs.join("fleet-plan/fleet.csv")).unwrap();
    for want in [
        "small,process",
        "small,container",
        "big,process",
        "big,container",
    ] {
        assert!(csv.contains(want), "{want} missing in fleet.csv:\n{csv}");
    }

    // The same answer as JSON: two host types, the big one as --host-spec said, a cheapest
    // mix for both backends.
    let out = s.path("plan-json");
    let o = isobench(&[
        "plan",
        "--fleet",
        small.to_str().unwrap(),
        big.to_str().unwrap(),
        "--workloads",
        "1000",
        "--host-cost=small=1",
        "--host-cost=big=2.5",
        "--host-spec=big=64G,32",
        "--out",
        out.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", show(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let types = v["host_types"].as_array().unwrap();
    let labels: Vec<&str> = types.iter().map(|t| t["label"].as_str().unwrap()).collect();
    assert_eq!(labels, ["small", "big"]);
    assert_eq!(types[1]["host"]["mem_kib"].as_f64(), Some(64.0 * MIB * MIB));
    assert_eq!(types[1]["host"]["cpus"].as_f64(), Some(32.0));
    for d in v["demands"].as_array().unwrap() {
        assert_eq!(d["instances"], 1000);
        // A host type whose host-memory line does not grow on this busy host (noise at
        // N <= 3) is left out with a note; with a bounded one there is a cheapest mix.
        match d["cheapest"]["total_hosts"].as_u64() {
            Some(h) => assert!(h >= 1, "{d}"),
            None => assert!(d["note"].as_str().unwrap().contains("left out"), "{d}"),
        }
        for a in d["alone"].as_array().unwrap() {
            assert!(
                a["per_host"].as_u64().unwrap() > 0,
                "only bounded types: {d}"
            );
        }
    }
    // Density B vs A for each backend both bound (a host-memory line that does not grow on
    // a busy host leaves a backend unbounded, and out of this table).
    for d in v["density"].as_array().unwrap() {
        assert_eq!(
            (d["a"].as_str(), d["b"].as_str()),
            (Some("small"), Some("big")),
            "{d}"
        );
        assert!(d["ratio"].as_f64().unwrap() > 0.0, "{d}");
    }
}

/// A run of `backend` on a host of `mem_gib`, costing exactly `per_mib` per instance.
fn write_run(dir: &Path, label: &str, mem_gib: u64, backend: &str, per_mib: f64) {
    std::fs::create_dir_all(dir).unwrap();
    let mut w = csv::Writer::from_path(dir.join("samples.csv")).unwrap();
    for n in [1u32, 2, 4] {
        for i in 0..n {
            w.serialize(Sample {
                backend: backend.into(),
                accel: "none".into(),
                n,
                rep: 0,
                instance: i,
                ok: true,
                startup_ms: Some(5.0),
                host_avail_kib: Some(per_mib * MIB),
                pss_kib: Some((per_mib * MIB) as u64),
                idle_cpu_ms_per_s: Some(0.0),
                ..Sample::default()
            })
            .unwrap();
        }
    }
    w.flush().unwrap();
    let meta = RunMeta {
        run_id: format!("run-{label}"),
        scenario: "fleet".into(),
        scenario_text: "name = \"fleet\"\nworkload = { touch-memory = 64 }\n".into(),
        hostname: "same-machine".into(),
        host_label: label.into(),
        cpu_cores: 8,
        mem_total_kib: mem_gib * 1024 * 1024,
        ..RunMeta::default()
    };
    std::fs::write(dir.join("meta.json"), serde_json::to_vec(&meta).unwrap()).unwrap();
}

#[test]
fn fleet_plan_with_known_costs_is_exact() {
    let s = bin::Scratch::new("fleet-known");
    let (a, b, a2) = (s.path("a"), s.path("b"), s.path("a2"));
    // 100 MiB per instance. 8 GiB x 0.9 / 100 MiB = 73.7 -> 73; 16 GiB -> 147.
    write_run(&a, "small", 8, "container", 100.0);
    write_run(&b, "large", 16, "container", 100.0);
    // A second run of "small": pooled with the first (the same line, twice the points).
    write_run(&a2, "small", 8, "container", 100.0);
    let out = s.path("out");
    let o = isobench(&[
        "plan",
        "--fleet",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        a2.to_str().unwrap(),
        "--workloads",
        "200",
        "--host-cost",
        "small=1",
        "--host-cost",
        "large=1.8",
        "--out",
        out.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", show(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let types = v["host_types"].as_array().unwrap();
    assert_eq!(types.len(), 2, "runs of one label are one host type");
    assert_eq!(types[0]["runs"].as_array().unwrap().len(), 2);
    let per_host = |t: usize| types[t]["backends"][0]["per_host"]["max_n"].as_u64();
    assert_eq!((per_host(0), per_host(1)), (Some(73), Some(147)));
    let d = &v["demands"][0];
    // Alone: 3 small (cost 3) or 2 large (3.6); together 1 + 1 holds 220 for 2.8.
    assert_eq!(d["alone"][0]["hosts"], 3);
    assert_eq!(d["alone"][1]["hosts"], 2);
    let m = &d["cheapest"];
    assert_eq!(m["total_hosts"], 2);
    assert!((m["cost"].as_f64().unwrap() - 2.8).abs() < 1e-9, "{m}");
    assert_eq!(m["holds"], 220);
    let dens = &v["density"][0];
    assert_eq!(
        (dens["a"].as_str(), dens["b"].as_str()),
        (Some("small"), Some("large"))
    );
    assert!((dens["ratio"].as_f64().unwrap() - 147.0 / 73.0).abs() < 1e-9);
    assert!(out.join("fleet.csv").is_file());

    // compare of host A against host B: the density, NEW's host over BASE's.
    let o = isobench(&[
        "compare",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let c: serde_json::Value =
        serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {}", show(&o)));
    let hd = &c["host_density"][0];
    assert_eq!(
        (hd["a"].as_str(), hd["b"].as_str()),
        (Some("small"), Some("large")),
        "{c}"
    );
    assert_eq!(
        (hd["a_per_host"].as_u64(), hd["b_per_host"].as_u64()),
        (Some(73), Some(147))
    );
    let o = isobench(&["compare", a.to_str().unwrap(), b.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("large denser"), "{}", show(&o));
    // The same host label: no density (it is one host type).
    let o = isobench(&[
        "compare",
        a.to_str().unwrap(),
        a2.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let c: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(c["host_density"], serde_json::json!([]));

    // A mix: each backend on hosts of its own, the totals added.
    let vm = s.path("vm");
    write_run(&vm, "small", 8, "vm", 400.0);
    let o = isobench(&[
        "plan",
        "--fleet",
        a.to_str().unwrap(),
        vm.to_str().unwrap(),
        b.to_str().unwrap(),
        "--mix",
        "container=100",
        "--mix",
        "vm=10",
        "--out",
        out.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{}", show(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // No costs: the fewest hosts. 100 containers: 1 large (147). 10 VMs at 400 MiB: only
    // small runs them, 7372.8 / 400 = 18 per host: 1 host.
    assert_eq!(v["total"][0], 2, "{}", v["total"]);
    assert!(
        v["demands"][1]["note"].as_str().unwrap().contains("large"),
        "{}",
        v["demands"][1]
    );
}

#[test]
fn bad_fleet_input_exits_2_naming_what_and_writes_nothing() {
    let s = bin::Scratch::new("fleet-bad");
    let (a, b) = (s.path("a"), s.path("b"));
    write_run(&a, "small", 8, "container", 100.0);
    write_run(&b, "large", 16, "container", 100.0);
    let out = s.path("out");
    let (a, b, o) = (
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        out.to_str().unwrap(),
    );
    let cases: &[(&[&str], &str)] = &[
        (&["plan", a, b, "--out", o], "--fleet"),
        (
            &["plan", a, "--host-cost", "small=1", "--out", o],
            "--host-cost",
        ),
        (&["plan", "--fleet", a, b, "--out", o], "--workloads"),
        (
            &[
                "plan",
                "--fleet",
                a,
                b,
                "--workloads",
                "5",
                "--host-cost",
                "small=1",
                "--out",
                o,
            ],
            "large",
        ),
        (
            &[
                "plan",
                "--fleet",
                a,
                b,
                "--workloads",
                "5",
                "--host-cost",
                "medium=1",
                "--out",
                o,
            ],
            "medium",
        ),
        (
            &[
                "plan",
                "--fleet",
                a,
                b,
                "--workloads",
                "5",
                "--host-cost",
                "small=-1",
                "--out",
                o,
            ],
            "--host-cost",
        ),
        (
            &[
                "plan",
                "--fleet",
                a,
                b,
                "--workloads",
                "5",
                "--host-spec",
                "large=16",
                "--out",
                o,
            ],
            "--host-spec",
        ),
        (
            &["plan", "--fleet", a, b, "--mix", "container", "--out", o],
            "--mix",
        ),
        (
            &["plan", "--fleet", a, b, "--mix", "oci-runc=3", "--out", o],
            "oci-runc",
        ),
        (
            &[
                "plan",
                "--fleet",
                a,
                b,
                "--workloads",
                "5",
                "--host-mem",
                "8G",
                "--out",
                o,
            ],
            "--host-spec",
        ),
    ];
    for (args, names) in cases {
        let r = isobench(args);
        assert_eq!(
            r.status.code(),
            Some(EXIT_BAD_INPUT),
            "{args:?}: {}",
            show(&r)
        );
        let err = String::from_utf8_lossy(&r.stderr);
        assert_eq!(err.lines().count(), 1, "{args:?}: one line: {err}");
        assert!(err.contains(names), "{args:?} should name {names}: {err}");
        assert!(!out.exists(), "{args:?} wrote {}", out.display());
    }
    // A bad host label: refused before anything is made.
    let run_out = s.path("run-out");
    let r = isobench(&[
        "run",
        "--host-label",
        "../etc",
        "--out",
        run_out.to_str().unwrap(),
    ]);
    assert_eq!(r.status.code(), Some(EXIT_BAD_INPUT), "{}", show(&r));
    assert!(String::from_utf8_lossy(&r.stderr).contains("--host-label"));
    assert!(!run_out.exists());
}

/// The Kubernetes Job: parsed, and checked for what the harness needs on a node.
#[test]
fn kubernetes_manifest_gives_the_harness_what_it_needs() {
    let path = PathBuf::from(SRC).join("deploy/kubernetes/isobench-job.yaml");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let docs: Vec<serde_norway::Value> = serde_norway::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).expect("each document parses"))
        .collect();
    let job = docs
        .iter()
        .find(|d| d["kind"] == "Job")
        .expect("a Job document");
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    assert_eq!(
        pod["hostPID"], true,
        "clean and the death watch see host pids"
    );
    let c = &pod["containers"][0];
    assert_eq!(c["securityContext"]["privileged"], true);
    let mounts: Vec<(&str, &str)> = c["volumeMounts"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["name"].as_str().unwrap(),
                m["mountPath"].as_str().unwrap(),
            )
        })
        .collect();
    let volumes = pod["volumes"].as_sequence().unwrap();
    let host_path_of = |name: &str| {
        volumes
            .iter()
            .find(|v| v["name"] == name)
            .and_then(|v| v["hostPath"]["path"].as_str())
    };
    for (path, why) in [
        ("/sys/fs/cgroup", "the host's cgroup fs"),
        ("/var/lib/isobench", "the state dir on the node"),
    ] {
        let (name, _) = mounts
            .iter()
            .find(|(_, p)| *p == path)
            .unwrap_or_else(|| panic!("{path} ({why}) not mounted: {mounts:?}"));
        assert_eq!(host_path_of(name), Some(path), "{path} is the node's own");
    }
    let (results, _) = mounts
        .iter()
        .find(|(_, p)| *p == "/results")
        .expect("a results volume");
    assert!(
        volumes
            .iter()
            .any(|v| v["name"] == *results && v["persistentVolumeClaim"]["claimName"].is_string()),
        "results go to a persistent volume claim"
    );
    let args: Vec<String> = c["command"]
        .as_sequence()
        .into_iter()
        .flatten()
        .chain(c["args"].as_sequence().into_iter().flatten())
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    let joined = args.join(" ");
    for want in [
        "isobench run",
        "--host-label",
        "--out /results/",
        "--state-dir /var/lib/isobench",
    ] {
        assert!(joined.contains(want), "command lacks {want:?}: {joined}");
    }
    // The label is the node's name, from the downward API.
    let env = c["env"].as_sequence().unwrap();
    assert!(
        env.iter().any(|e| e["name"] == "NODE_NAME"
            && e["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName")
    );
}
