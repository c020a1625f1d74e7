//! The plan of a run: every peer (backend x runtime x security profile) and every batch it
//! will make (N x repetition, or one `[until]` sweep), in the order they run, computed from
//! the scenario before anything runs. The runner walks it; the progress display takes its
//! total and its ETA basis from it.

use crate::scenario::{BackendKind, Scenario, UntilConfig};
use crate::security::Profile;

/// One backend as it appears in result rows, prepared, warmed up, measured and finished in
/// turn: a kind, for `oci` one runtime, and one security profile.
#[derive(Debug, Clone, PartialEq)]
pub struct Peer {
    pub kind: BackendKind,
    /// The OCI runtime (`runc`, `crun`) of an `oci` peer; None for the other kinds.
    pub runtime: Option<String>,
    /// The profile in effect for this peer (the scenario's first one for backends that take
    /// none: they run once).
    pub profile: Profile,
    /// The row label the peer's backend will have (`container`, `oci-runc+none`): what the
    /// progress display names before the backend exists.
    pub label: String,
    /// Launches before measuring, torn down at once and not recorded.
    pub warmup: u32,
    pub steps: Vec<Step>,
}

/// One batch of a peer.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// N instances, all alive together, for repetition `rep`.
    Fixed { n: u32, rep: u32 },
    /// One batch grown step by step until a floor, a failure or `max` (see runner::until).
    Until(UntilConfig),
}

impl Step {
    /// The instances this batch launches; for an `[until]` sweep its `max`, an upper bound.
    pub fn launches(&self) -> u32 {
        match self {
            Step::Fixed { n, .. } => *n,
            Step::Until(cfg) => cfg.max,
        }
    }
}

impl std::fmt::Display for Step {
    /// "N=10 rep 0", "until N <= 2000": the batch as the progress display names it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::Fixed { n, rep } => write!(f, "N={n} rep {rep}"),
            Step::Until(cfg) => write!(f, "until N <= {}", cfg.max),
        }
    }
}

/// Every peer of a run, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub peers: Vec<Peer>,
}

impl Plan {
    /// The plan of `scenario`: backends in the scenario's order; the oci backend once per
    /// runtime; backends that take a security profile (container, oci) once per profile;
    /// each peer's N (its kind's counts) times each repetition, or its `[until]` sweep.
    pub fn of(scenario: &Scenario) -> Plan {
        let mut peers = Vec::new();
        for &kind in &scenario.backends {
            let runtimes: Vec<Option<String>> = match kind {
                BackendKind::Oci => scenario.oci.runtimes.iter().cloned().map(Some).collect(),
                BackendKind::Gvisor => vec![Some("runsc".to_string())],
                _ => vec![None],
            };
            let profiles: Vec<Profile> = match kind {
                BackendKind::Container
                | BackendKind::Oci
                | BackendKind::Docker
                | BackendKind::Gvisor
                | BackendKind::Lxc => scenario.profiles.clone(),
                _ => vec![scenario.security],
            };
            for runtime in runtimes {
                for &profile in &profiles {
                    peers.push(peer(scenario, kind, runtime.clone(), profile));
                }
            }
        }
        Plan { peers }
    }

    /// How many batches the run makes (an `[until]` sweep is one).
    pub fn batches(&self) -> usize {
        self.peers.iter().map(|p| p.steps.len()).sum()
    }

    /// How many instances the run launches at most, warmups included.
    pub fn launches(&self) -> u64 {
        self.peers
            .iter()
            .flat_map(|p| {
                let warm = std::iter::once(u64::from(p.warmup));
                warm.chain(p.steps.iter().map(|s| u64::from(s.launches())))
            })
            .fold(0, u64::saturating_add)
    }
}

fn peer(scenario: &Scenario, kind: BackendKind, runtime: Option<String>, p: Profile) -> Peer {
    let base = match &runtime {
        Some(rt) => crate::scenario::oci_label(rt, &scenario.oci),
        None => kind.as_str().to_string(),
    };
    // runsc listed among `[oci] runtimes` is the gvisor peer all the same (its backend's kind).
    let kind = match &runtime {
        Some(rt) if crate::scenario::is_runsc(rt) => BackendKind::Gvisor,
        _ => kind,
    };
    // Only the backends that take a profile name it in their label (see Backend::label).
    let label = match kind {
        BackendKind::Container
        | BackendKind::Oci
        | BackendKind::Docker
        | BackendKind::Gvisor
        | BackendKind::Lxc => crate::backend::profile_label(base, &scenario.with_profile(p)),
        _ => base,
    };
    let steps = match &scenario.until {
        Some(cfg) => vec![Step::Until(cfg.clone())],
        None => scenario
            .counts_for(kind)
            .iter()
            .flat_map(|&n| (0..scenario.repetitions).map(move |rep| Step::Fixed { n, rep }))
            .collect(),
    };
    Peer {
        kind,
        runtime,
        profile: p,
        label,
        warmup: scenario.warmup,
        steps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn scenario(text: &str) -> Scenario {
        Scenario::parse(text, "t.toml", Path::new("/")).unwrap()
    }

    #[test]
    fn batches_run_backend_by_backend_each_n_for_every_repetition() {
        let s = scenario(
            "name = \"t\"\nbackends = [\"process\", \"vm\"]\ncounts = [1, 10]\nrepetitions = 2\nwarmup = 3\n[vm]\ncounts = [2]\n",
        );
        let plan = Plan::of(&s);
        let got: Vec<(&str, Vec<Step>)> = plan
            .peers
            .iter()
            .map(|p| (p.label.as_str(), p.steps.clone()))
            .collect();
        let fixed = |n, rep| Step::Fixed { n, rep };
        assert_eq!(
            got,
            vec![
                (
                    "process",
                    vec![fixed(1, 0), fixed(1, 1), fixed(10, 0), fixed(10, 1)]
                ),
                ("vm", vec![fixed(2, 0), fixed(2, 1)]),
            ]
        );
        assert_eq!(plan.batches(), 6);
        // process: 3 warmups + 2 x (1 + 10); vm: 3 + 2 x 2.
        assert_eq!(plan.launches(), 3 + 22 + 3 + 4);
        // Without peers beyond one per backend, the plan agrees with the scenario's count.
        assert_eq!(plan.launches(), s.total_launches());
    }

    #[test]
    fn oci_runs_once_per_runtime_and_profiled_backends_once_per_profile() {
        let s = scenario(
            "name = \"t\"\nbackends = [\"process\", \"container\", \"oci\"]\ncounts = [1]\nsecurity = [\"docker\", \"none\"]\n[oci]\nruntimes = [\"runc\", \"crun\"]\n",
        );
        let plan = Plan::of(&s);
        let labels: Vec<&str> = plan.peers.iter().map(|p| p.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "process",
                "container+docker",
                "container+none",
                "oci-runc+docker",
                "oci-runc+none",
                "oci-crun+docker",
                "oci-crun+none"
            ]
        );
        let crun_none = &plan.peers[6];
        assert_eq!(crun_none.runtime.as_deref(), Some("crun"));
        assert_eq!(crun_none.profile, Profile::None);
        assert_eq!(plan.peers[0].profile, Profile::Docker);
        assert_eq!(plan.batches(), 7);
    }

    #[test]
    fn gvisor_is_runsc_labelled_with_its_platform_from_either_list() {
        let s = scenario(
            "name = \"t\"\nbackends = [\"gvisor\", \"lxc\"]\ncounts = [1]\n[oci]\nrunsc_platform = \"kvm\"\n",
        );
        let plan = Plan::of(&s);
        let got: Vec<(&str, BackendKind, Option<&str>)> = plan
            .peers
            .iter()
            .map(|p| (p.label.as_str(), p.kind, p.runtime.as_deref()))
            .collect();
        assert_eq!(
            got,
            [
                ("oci-runsc-kvm", BackendKind::Gvisor, Some("runsc")),
                ("lxc", BackendKind::Lxc, None)
            ]
        );
        let s = scenario(
            "name = \"t\"\nbackends = [\"oci\"]\ncounts = [1]\n[oci]\nruntimes = [\"runc\", \"runsc\"]\n",
        );
        let plan = Plan::of(&s);
        assert_eq!(plan.peers[1].label, "oci-runsc-ptrace");
        assert_eq!(plan.peers[1].kind, BackendKind::Gvisor);
        assert_eq!(plan.peers[0].kind, BackendKind::Oci);
    }

    #[test]
    fn an_until_scenario_plans_one_sweep_per_peer_bounded_by_max() {
        let s = scenario(
            "name = \"t\"\nbackends = [\"container\"]\ncounts = [1, 5]\nwarmup = 0\n[until]\nstep = 10\nmax = 300\nmem_available_floor_mib = 512\n",
        );
        let plan = Plan::of(&s);
        assert_eq!(plan.peers.len(), 1);
        assert!(matches!(&plan.peers[0].steps[..], [Step::Until(c)] if c.max == 300));
        assert_eq!(plan.batches(), 1);
        assert_eq!(plan.launches(), 300);
    }
}
