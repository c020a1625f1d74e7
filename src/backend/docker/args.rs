//! The `docker run` command line of one instance, from the scenario alone (pure: unit-tested
//! here without a daemon). Everything the scenario says is given explicitly, so a daemon
//! configured otherwise (a default seccomp file, `--default-ulimit`, userns-remap) does not
//! change what is measured without showing in the command.

use crate::backend::RunContext;
use crate::image::AGENT_IN_ROOTFS;
use crate::security::Profile;
use std::path::Path;

/// The label every container of a run carries: `isobench.run=<run-id>`.
pub const RUN_LABEL: &str = "isobench.run";

/// What `docker run` needs besides the scenario: where things are.
pub struct RunArgs<'a> {
    /// The image (`isobench-rootfs:<content key>`).
    pub image: &'a str,
    /// `--cgroup-parent`: `/isobench/<run-id>/<name>` (the cgroupfs driver puts the container
    /// in `<parent>/<container id>`).
    pub cgroup_parent: &'a str,
    /// Where the CLI writes the container id at create.
    pub cidfile: &'a Path,
    /// The profile's seccomp allow-list in Docker's JSON format (None for profile `none`).
    pub seccomp_file: Option<&'a Path>,
}

/// Docker's capability names: `CHOWN` for `CAP_CHOWN` (Docker 20.10 takes both; the short
/// form is what every release takes).
fn docker_cap(name: &str) -> String {
    name.strip_prefix("CAP_").unwrap_or(name).to_string()
}

/// The security options of `profile`: capabilities (all dropped, the profile's added back),
/// no_new_privs, seccomp; for `none` every capability, no seccomp, no masked paths, every
/// device (the closest Docker comes without `--privileged`, which would also change mounts).
pub fn security_args(profile: Profile, seccomp_file: Option<&Path>) -> Vec<String> {
    let mut a = Vec::new();
    match profile.capabilities() {
        Some(caps) => {
            a.extend(["--cap-drop".to_string(), "ALL".to_string()]);
            for c in caps {
                a.extend(["--cap-add".to_string(), docker_cap(&c.name())]);
            }
        }
        None => a.extend(["--cap-add".to_string(), "ALL".to_string()]),
    }
    if profile.confines() {
        a.extend(["--security-opt".into(), "no-new-privileges".into()]);
        if let Some(f) = seccomp_file {
            a.extend(["--security-opt".into(), format!("seccomp={}", f.display())]);
        }
    } else {
        a.extend([
            "--security-opt".into(),
            "seccomp=unconfined".into(),
            "--security-opt".into(),
            "systempaths=unconfined".into(),
            "--device-cgroup-rule".into(),
            "a *:* rwm".into(),
        ]);
    }
    a
}

/// `docker run` arguments (after the global `--host`) for instance `name`: attached to stdout
/// and stderr (the agent's lines), signals not proxied, the scenario's namespaces, limits and
/// security profile, the agent as entrypoint with the workload's arguments.
pub fn run_args(ctx: &RunContext, name: &str, r: &RunArgs) -> Vec<String> {
    let s = &ctx.scenario;
    let ns = s.namespaces;
    let mut a: Vec<String> = [
        "run",
        "--attach",
        "stdout",
        "--attach",
        "stderr",
        "--sig-proxy=false",
        "--pull",
        "never",
    ]
    .into_iter()
    .map(String::from)
    .collect();
    a.push("--cidfile".into());
    a.push(r.cidfile.display().to_string());
    a.push("--label".into());
    a.push(format!("{RUN_LABEL}={}", ctx.run_id));
    a.push("--cgroup-parent".into());
    a.push(r.cgroup_parent.to_string());
    a.push("--network".into());
    a.push(if ns.net { "none" } else { "host" }.into());
    for (private, flag) in [(ns.pid, "--pid"), (ns.ipc, "--ipc"), (ns.uts, "--uts")] {
        if !private {
            a.push(flag.into());
            a.push("host".into());
        }
    }
    a.push("--cgroupns".into());
    a.push(if ns.cgroup { "private" } else { "host" }.into());
    if let Some(mib) = s.limits.memory_mib {
        a.push("--memory".into());
        a.push(format!("{mib}m"));
    }
    if let Some(cpus) = s.limits.cpus {
        a.push("--cpus".into());
        a.push(format!("{cpus}"));
    }
    if let Some(pids) = s.limits.pids {
        a.push("--pids-limit".into());
        a.push(pids.to_string());
    }
    a.extend(security_args(s.security, r.seccomp_file));
    for (k, v) in ctx.marker_env(name) {
        a.push("--env".into());
        a.push(format!("{k}={v}"));
    }
    a.push("--entrypoint".into());
    a.push(AGENT_IN_ROOTFS.into());
    a.push(r.image.into());
    a.push("agent".into());
    a.extend(s.workload.agent_args());
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;
    use std::path::PathBuf;
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;

    fn ctx(extra: &str) -> RunContext {
        let toml = format!("name = \"t\"\nbackends = [\"docker\"]\ncounts = [1]\n{extra}\n");
        RunContext {
            run_id: "r1".into(),
            scenario: Arc::new(Scenario::parse(&toml, "t.toml", Path::new("/")).unwrap()),
            state_dir: PathBuf::from("/s"),
            agent_exe: PathBuf::from("/a"),
            cancel: Arc::new(AtomicBool::new(false)),
            cache_dir: PathBuf::from("/c"),
        }
    }

    fn args(extra: &str) -> Vec<String> {
        let c = ctx(extra);
        run_args(
            &c,
            "docker-0",
            &RunArgs {
                image: "img:1",
                cgroup_parent: "/isobench/r1/docker-0",
                cidfile: Path::new("/s/cid"),
                seccomp_file: Some(Path::new("/s/seccomp.json")),
            },
        )
    }

    fn has_pair(a: &[String], k: &str, v: &str) -> bool {
        a.windows(2).any(|w| w[0] == k && w[1] == v)
    }

    #[test]
    fn the_docker_profile_drops_all_and_adds_dockers_fourteen() {
        let a = args("");
        assert!(has_pair(&a, "--cap-drop", "ALL"));
        assert_eq!(a.iter().filter(|x| *x == "--cap-add").count(), 14);
        assert!(has_pair(&a, "--cap-add", "CHOWN") && has_pair(&a, "--cap-add", "NET_RAW"));
        assert!(has_pair(&a, "--security-opt", "no-new-privileges"));
        assert!(has_pair(&a, "--security-opt", "seccomp=/s/seccomp.json"));
        assert!(has_pair(&a, "--network", "none"));
        assert!(has_pair(&a, "--cgroup-parent", "/isobench/r1/docker-0"));
        assert!(has_pair(&a, "--label", "isobench.run=r1"));
        assert!(has_pair(&a, "--env", "ISOBENCH_INSTANCE=docker-0"));
        assert!(!a.iter().any(|x| x == "--pid" || x == "-d"));
        let tail: Vec<&str> = a[a.len() - 4..].iter().map(String::as_str).collect();
        assert_eq!(tail, [AGENT_IN_ROOTFS, "img:1", "agent", "idle"]);
    }

    #[test]
    fn the_none_profile_keeps_everything_and_limits_and_namespaces_follow_the_scenario() {
        let a = args(
            "security = \"none\"\n[limits]\nmemory_mib = 64\ncpus = 0.5\npids = 100\n[namespaces]\npid = false\nnet = false\n",
        );
        assert!(has_pair(&a, "--cap-add", "ALL") && !a.contains(&"--cap-drop".to_string()));
        assert!(has_pair(&a, "--security-opt", "seccomp=unconfined"));
        assert!(!a.contains(&"no-new-privileges".to_string()));
        assert!(has_pair(&a, "--memory", "64m") && has_pair(&a, "--cpus", "0.5"));
        assert!(has_pair(&a, "--pids-limit", "100"));
        assert!(has_pair(&a, "--pid", "host") && has_pair(&a, "--network", "host"));
    }

    #[test]
    fn the_runc_profile_adds_three_capabilities() {
        let a = args("security = \"runc\"\n");
        assert_eq!(a.iter().filter(|x| *x == "--cap-add").count(), 3);
        assert!(has_pair(&a, "--cap-add", "AUDIT_WRITE"));
    }
}
