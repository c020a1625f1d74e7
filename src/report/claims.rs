//! The claims a report tests: what a VM costs against a container (and an OCI runtime's
//! container against isobench's own), figure by figure, as measured ratios.
//!
//! Ratios are taken at the largest N both backends measured, where the two ran under the same
//! load. When each backend also went further on its own (containers to 1000, VMs to 8), a
//! second set compares the per-instance figures at each one's largest N: shared costs are
//! amortised there, and the host view's noise (a MemAvailable reading moves by megabytes) is
//! divided by N.
//!
//! A host-wide reading (MemAvailable, the host kernel's memory and threads) gets no ratio
//! where either batch moved it by less than the run's noise band ([`noise_band`]): the
//! figures are shown, the ratio is said to be within the noise. No ratio is ever `inf` or
//! NaN: the cases without a finite one are [`Ratio`]'s variants, said in words.

use crate::scenario::BackendKind;
use serde::Serialize;

use crate::results::load::RunData;
use crate::results::metrics::{
    CGROUP_MEM_KIB, DISK_PRIVATE_KIB, DISK_SHARED_KIB, DISTINCT_KERNELS, GUEST_KERNEL_KIB,
    GUEST_KTHREADS_TOTAL, HOST_AVAIL_KIB, HOST_KTHREADS_BEFORE, HOST_KTHREADS_WITH,
    IDLE_CPU_MS_PER_S, KERNEL_KIB_PER_KERNEL, KSM_SHARED_KIB, KTHREADS_ADDED, Metric, PSS_KIB,
    RSS_KIB, STARTUP_MS, Stat, USS_KIB, VMM_OVERHEAD_KIB,
};
use crate::text::format::{mib, sig, whole};

/// The backend every claim is measured against.
pub const REFERENCE: &str = "container";

/// One side of a comparison: a backend of the run, at one N.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Side {
    pub backend: String,
    pub accel: String,
    pub n: u32,
}

/// Where the Ns of a claim set come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    /// The largest N both backends measured.
    LargestCommonN,
    /// Each backend at the largest N it measured (per-instance figures only).
    EachLargestN,
}

/// SUBJECT / REFERENCE, or why there is no finite number.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub enum Ratio {
    Finite(f64),
    /// The reference measured 0 and the subject more: no finite ratio.
    ReferenceZero,
    BothZero,
    /// A figure below zero (the host view's noise at small N): a ratio would mean nothing.
    Negative,
    /// One side was not measured.
    Missing,
    /// A figure only the subject has (a VM's VMM, its guest kernel, KSM across VMs).
    SubjectOnly,
    /// A host-wide reading whose batch total lies within the host's noise band (the run's
    /// [`noise_band`], given here in the claim's unit, for the whole batch): the figure is
    /// shown, the ratio is not claimed.
    WithinNoise(f64),
}

impl Ratio {
    /// subject / reference, with the cases that have no finite ratio named.
    pub fn of(subject: Option<f64>, reference: Option<f64>) -> Ratio {
        // A value that is not a finite number was not measured as far as a ratio goes.
        let finite = |x: Option<f64>| x.filter(|v| v.is_finite());
        match (finite(subject), finite(reference)) {
            (Some(s), Some(r)) if s < 0.0 || r < 0.0 => Ratio::Negative,
            (Some(s), Some(r)) if r > 0.0 && (s / r).is_finite() => Ratio::Finite(s / r),
            // s / r overflows: the reference is as good as 0.
            (Some(_), Some(r)) if r > 0.0 => Ratio::ReferenceZero,
            (Some(s), Some(_)) if s > 0.0 => Ratio::ReferenceZero,
            (Some(_), Some(_)) => Ratio::BothZero,
            _ => Ratio::Missing,
        }
    }

    /// [`Ratio::of`], unless `band` is given (a host-wide reading: see [`noise_band`]) and
    /// either side's batch total (the figure x its N for a per-instance figure, the figure
    /// itself for a batch's) lies within it: then [`Ratio::WithinNoise`], with the band in the
    /// claim's unit (`scale` turns the metric's unit into it). Figures and band are in the
    /// metric's own unit here.
    pub fn judged(
        band: Option<f64>,
        per_instance: bool,
        subject: (Option<f64>, u32),
        reference: (Option<f64>, u32),
        scale: impl Fn(f64) -> f64,
    ) -> Ratio {
        if let Some(band) = band {
            let total = |(x, n): (Option<f64>, u32)| {
                x.map(|x| if per_instance { x * f64::from(n) } else { x })
            };
            let quiet = |t: Option<f64>| t.is_some_and(|t| t.abs() < band);
            if quiet(total(subject)) || quiet(total(reference)) {
                return Ratio::WithinNoise(scale(band));
            }
        }
        Ratio::of(subject.0.map(&scale), reference.0.map(&scale))
    }

    /// The ratio in a few words for a terminal line: `<x>x`, or why there is none in
    /// brackets; never `inf` or `NaN`.
    pub fn short(&self, reference: &str) -> String {
        match self {
            Ratio::Finite(x) if x.is_finite() => format!("{}x", sig(*x)),
            Ratio::Finite(_) | Ratio::Missing => "-".into(),
            Ratio::ReferenceZero => format!("- ({reference} 0)"),
            Ratio::BothZero => "- (both 0)".into(),
            Ratio::Negative => "- (below 0)".into(),
            Ratio::SubjectOnly => format!("- ({reference}s have none)"),
            Ratio::WithinNoise(_) => "- (within host noise)".into(),
        }
    }

    /// The ratio in words or as `<x>x`; never `inf` or `NaN`.
    pub fn text(&self, reference: &str, reference_figure: Option<f64>, unit: &str) -> String {
        match self {
            Ratio::Finite(x) if x.is_finite() => format!("{}x", sig(*x)),
            Ratio::Finite(_) => "no finite ratio".into(),
            Ratio::WithinNoise(band) => format!(
                "no ratio: a batch within the host's noise (±{} {unit} for the batch)",
                whole(*band)
            ),
            Ratio::ReferenceZero => format!(
                "no finite ratio: {reference} measured {} {unit}",
                reference_figure.map_or_else(|| "0".into(), sig)
            ),
            Ratio::BothZero => "both 0".into(),
            Ratio::Negative => "no ratio: a figure below 0 (host-view noise)".into(),
            Ratio::Missing => "not measured on both".into(),
            Ratio::SubjectOnly => format!("{reference}s have none"),
        }
    }
}

/// The noise band of a host-wide reading (`metric.host_noise`) in one run, for a batch: the
/// metric's floor, or the largest fall of a batch total the run saw, whichever is larger. A
/// batch cannot free memory or kernel threads that the host had not; a total below 0 is the
/// rest of the host moving meanwhile, so the run's noise was at least that large (on a host
/// shared with builds it reached hundreds of MiB). `totals` are the run's batch totals;
/// `None` for a metric without a floor.
pub fn noise_band(metric: &Metric, totals: impl IntoIterator<Item = f64>) -> Option<f64> {
    let floor = metric.host_noise?;
    Some(
        totals
            .into_iter()
            .filter(|t| t.is_finite() && *t < 0.0)
            .map(f64::abs)
            .fold(floor, f64::max),
    )
}

/// [`noise_band`] of a per-instance host view read from summary.csv's means (the batch total
/// is the mean x N).
pub fn summary_band(metric: &Metric, rows: &[crate::results::record::SummaryRow]) -> Option<f64> {
    noise_band(
        metric,
        rows.iter()
            .filter_map(|r| Some(metric.of_summary(Stat::Mean, r)? * f64::from(r.n))),
    )
}

/// [`noise_band`] of a kernel.csv figure (`per_instance`: the batch total is the figure x N).
pub fn kernel_band(
    metric: &Metric,
    per_instance: bool,
    rows: &[crate::results::record::KernelRow],
) -> Option<f64> {
    noise_band(
        metric,
        rows.iter().filter_map(|k| {
            let v = metric.of_batch(k)?;
            Some(if per_instance { v * f64::from(k.n) } else { v })
        }),
    )
}

/// One measured claim: a figure of both backends and their ratio.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Claim {
    /// What the figure shows, e.g. "containers share the host kernel, VMs boot their own".
    pub claim: String,
    /// The figure compared, e.g. "memory per instance: PSS".
    pub figure: &'static str,
    pub subject: Option<f64>,
    pub reference: Option<f64>,
    pub ratio: Ratio,
    pub ratio_text: String,
    pub unit: &'static str,
    /// The metrics the figure is computed from, the figure's own first (named in JSON).
    pub definitions: &'static [&'static Metric],
}

/// The claims of one run for one pair of backends.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClaimSet {
    pub run: String,
    pub basis: Basis,
    pub subject: Side,
    pub reference: Side,
    pub claims: Vec<Claim>,
}

impl ClaimSet {
    /// "vm (tcg) at N=2 / container at N=2", for headings.
    pub fn title(&self) -> String {
        let side = |s: &Side| {
            if s.accel == "none" || s.accel.is_empty() {
                format!("{} at N={}", s.backend, s.n)
            } else {
                format!("{} ({}) at N={}", s.backend, s.accel, s.n)
            }
        };
        let basis = match self.basis {
            Basis::LargestCommonN => "the largest N both measured",
            Basis::EachLargestN => "each at its largest N, per-instance figures",
        };
        format!(
            "{}: {} / {} ({basis})",
            self.run,
            side(&self.subject),
            side(&self.reference)
        )
    }
}

/// Where a figure is read from.
#[derive(Clone, Copy)]
enum Source {
    /// A statistic of the figure's metric in summary.csv.
    Summary(Stat),
    /// The mean over the repetitions of the batch's kernel.csv rows.
    Kernel,
}

/// How a claim shows its figure.
#[derive(Clone, Copy)]
enum Show {
    /// In the metric's own unit.
    AsIs,
    /// A KiB figure in MiB.
    Mib,
    /// A count, with what it counts as the unit.
    Count(&'static str),
}

struct Def {
    figure: &'static str,
    vm_claim: &'static str,
    /// The metric the figure is, then those it is computed from.
    definitions: &'static [&'static Metric],
    show: Show,
    /// A per-instance figure (compared in the each-largest-N set too); else per batch.
    per_instance: bool,
    /// Only VMs have it: the reference side is not looked up.
    vm_only: bool,
    source: Source,
}

impl Def {
    fn metric(&self) -> &'static Metric {
        self.definitions[0]
    }

    fn unit(&self) -> &'static str {
        match self.show {
            Show::AsIs => self.metric().unit.as_str(),
            Show::Mib => "MiB",
            Show::Count(what) => what,
        }
    }

    fn scale(&self, x: f64) -> f64 {
        match self.show {
            Show::Mib => mib(x),
            Show::AsIs | Show::Count(_) => x,
        }
    }
}

const DEFS: &[Def] = &[
    Def {
        figure: "start-up p50",
        vm_claim: "a container starts faster than a VM boots",
        definitions: &[&STARTUP_MS],
        show: Show::AsIs,
        per_instance: false,
        vm_only: false,
        source: Source::Summary(Stat::P50),
    },
    Def {
        figure: "memory per instance: PSS",
        vm_claim: "a VM costs more memory than a container (PSS: shared pages split among sharers)",
        definitions: &[&PSS_KIB],
        show: Show::Mib,
        per_instance: true,
        vm_only: false,
        source: Source::Summary(Stat::Mean),
    },
    Def {
        figure: "memory per instance: USS",
        vm_claim: "a VM costs more memory than a container (USS: memory only it uses)",
        definitions: &[&USS_KIB],
        show: Show::Mib,
        per_instance: true,
        vm_only: false,
        source: Source::Summary(Stat::Mean),
    },
    Def {
        figure: "memory per instance: RSS",
        vm_claim: "a VM costs more memory than a container (RSS: shared pages counted in full)",
        definitions: &[&RSS_KIB],
        show: Show::Mib,
        per_instance: true,
        vm_only: false,
        source: Source::Summary(Stat::Mean),
    },
    Def {
        figure: "memory per instance: cgroup",
        vm_claim: "a VM costs more memory than a container (its cgroup's charge)",
        definitions: &[&CGROUP_MEM_KIB],
        show: Show::Mib,
        per_instance: true,
        vm_only: false,
        source: Source::Summary(Stat::Mean),
    },
    Def {
        figure: "memory per instance: host MemAvailable",
        vm_claim: "a VM costs the host more memory than a container (MemAvailable decrease / N)",
        definitions: &[&HOST_AVAIL_KIB],
        show: Show::Mib,
        per_instance: true,
        vm_only: false,
        source: Source::Summary(Stat::Mean),
    },
    Def {
        figure: "VMM overhead per VM",
        vm_claim: "a VM pays for its VMM: qemu's own memory besides guest RAM",
        definitions: &[&VMM_OVERHEAD_KIB],
        show: Show::Mib,
        per_instance: true,
        vm_only: true,
        source: Source::Summary(Stat::Mean),
    },
    Def {
        figure: "guest kernel memory per VM",
        vm_claim: "a VM carries its own kernel's memory",
        definitions: &[&GUEST_KERNEL_KIB],
        show: Show::Mib,
        per_instance: true,
        vm_only: true,
        source: Source::Summary(Stat::Mean),
    },
    Def {
        figure: "disk per instance: private layer",
        vm_claim: "a VM's private disk layer is larger than a container's",
        definitions: &[&DISK_PRIVATE_KIB],
        show: Show::AsIs,
        per_instance: true,
        vm_only: false,
        source: Source::Summary(Stat::Mean),
    },
    Def {
        figure: "disk shared once",
        vm_claim: "the VM base disk against the container's image layers (counted once)",
        definitions: &[&DISK_SHARED_KIB],
        show: Show::Mib,
        per_instance: false,
        vm_only: false,
        source: Source::Summary(Stat::Shared),
    },
    Def {
        figure: "idle CPU per instance",
        vm_claim: "an idle VM burns host CPU, an idle container does not",
        definitions: &[&IDLE_CPU_MS_PER_S],
        show: Show::AsIs,
        per_instance: true,
        vm_only: false,
        source: Source::Summary(Stat::Mean),
    },
    Def {
        figure: "distinct kernels of the batch",
        vm_claim: "containers share the host kernel, VMs boot their own",
        definitions: &[&DISTINCT_KERNELS],
        show: Show::Count("kernels"),
        per_instance: false,
        vm_only: false,
        source: Source::Kernel,
    },
    Def {
        figure: "kernel threads added by the batch",
        vm_claim: "every VM runs a guest kernel's threads; containers add none",
        definitions: &[
            &KTHREADS_ADDED,
            &HOST_KTHREADS_BEFORE,
            &HOST_KTHREADS_WITH,
            &GUEST_KTHREADS_TOTAL,
        ],
        show: Show::Count("threads"),
        per_instance: false,
        vm_only: false,
        source: Source::Kernel,
    },
    Def {
        figure: "kernel memory per instance",
        vm_claim: "a guest kernel per VM against the host kernel's growth per container",
        definitions: &[&KERNEL_KIB_PER_KERNEL],
        show: Show::Mib,
        per_instance: true,
        vm_only: false,
        source: Source::Kernel,
    },
    Def {
        figure: "identical memory KSM found",
        vm_claim: "VMs of one image hold identical pages that KSM can merge",
        definitions: &[&KSM_SHARED_KIB],
        show: Show::Mib,
        per_instance: false,
        vm_only: true,
        source: Source::Kernel,
    },
];

/// Every claim set of `run`: vm against container, and each peer (oci-*, docker, lxc) against
/// container.
/// `notes` says why a pair has none.
pub fn claims(run: &RunData, notes: &mut Vec<String>) -> Vec<ClaimSet> {
    let backends = run.backends();
    let has = |b: &str| backends.iter().any(|(name, _)| name == b);
    let mut out = Vec::new();
    if !has(REFERENCE) {
        notes.push(format!(
            "{}: no claims, the run has no {REFERENCE} backend to compare against",
            run.label
        ));
        return out;
    }
    let kind = |b: &str| BackendKind::of_label(b);
    if !backends
        .iter()
        .any(|(b, _)| kind(b) == Some(BackendKind::Vm))
    {
        notes.push(format!(
            "{}: no VM claims, the run has no vm backend",
            run.label
        ));
    }
    // VMs first: they are what the claims are about; then the peers people compare (OCI
    // runtimes, gVisor among them, Docker and LXC), each against isobench's container.
    let peer = |b: &str| {
        matches!(
            kind(b),
            Some(BackendKind::Oci | BackendKind::Docker | BackendKind::Lxc | BackendKind::Gvisor)
        )
    };
    let subjects = backends
        .iter()
        .filter(|(b, _)| kind(b) == Some(BackendKind::Vm))
        .chain(backends.iter().filter(|(b, _)| peer(b)))
        .map(|(b, _)| b.clone());
    for subject in subjects {
        out.extend(pair(run, &subject, notes));
    }
    out
}

/// Ns with at least one ok instance.
fn measured_ns(run: &RunData, backend: &str) -> Vec<(u32, String)> {
    run.summary
        .iter()
        .filter(|r| r.backend == backend && r.ok > 0)
        .map(|r| (r.n, r.accel.clone()))
        .collect()
}

fn pair(run: &RunData, subject: &str, notes: &mut Vec<String>) -> Vec<ClaimSet> {
    let s_ns = measured_ns(run, subject);
    let r_ns = measured_ns(run, REFERENCE);
    let (Some(s_max), Some(r_max)) = (
        s_ns.iter().max_by_key(|(n, _)| *n),
        r_ns.iter().max_by_key(|(n, _)| *n),
    ) else {
        notes.push(format!(
            "{}: no {subject} claims, {subject} or {REFERENCE} has no ok instance",
            run.label
        ));
        return Vec::new();
    };
    let side = |(n, accel): &(u32, String), backend: &str| Side {
        backend: backend.into(),
        accel: accel.clone(),
        n: *n,
    };
    let common = s_ns
        .iter()
        .filter(|(n, _)| r_ns.iter().any(|(m, _)| m == n))
        .max_by_key(|(n, _)| *n);
    let mut sets = Vec::new();
    if let Some(c) = common {
        let r = r_ns.iter().find(|(m, _)| *m == c.0).expect("common N");
        sets.push(set(
            run,
            Basis::LargestCommonN,
            side(c, subject),
            side(r, REFERENCE),
        ));
    }
    if common.is_none_or(|c| c.0 != s_max.0 || c.0 != r_max.0) {
        sets.push(set(
            run,
            Basis::EachLargestN,
            side(s_max, subject),
            side(r_max, REFERENCE),
        ));
    }
    sets
}

fn set(run: &RunData, basis: Basis, subject: Side, reference: Side) -> ClaimSet {
    let is_vm = BackendKind::of_label(&subject.backend) == Some(BackendKind::Vm);
    let claims = DEFS
        .iter()
        .filter(|d| basis == Basis::LargestCommonN || d.per_instance)
        .filter_map(|d| {
            let scale = |x: f64| d.scale(x);
            let s = figure(run, d, &subject).map(scale);
            if d.vm_only {
                // Only shown where the subject has the figure: a VM that measured it.
                return s.map(|s| Claim {
                    claim: d.vm_claim.into(),
                    figure: d.figure,
                    subject: Some(s),
                    reference: None,
                    ratio: Ratio::SubjectOnly,
                    ratio_text: Ratio::SubjectOnly.text(REFERENCE, None, d.unit()),
                    unit: d.unit(),
                    definitions: d.definitions,
                });
            }
            let raw_s = figure(run, d, &subject);
            let raw_r = figure(run, d, &reference);
            let r = raw_r.map(scale);
            if s.is_none() && r.is_none() {
                return None;
            }
            let band = match d.source {
                Source::Summary(_) => summary_band(d.metric(), &run.summary),
                Source::Kernel => kernel_band(d.metric(), d.per_instance, &run.kernel),
            };
            let ratio = Ratio::judged(
                band,
                d.per_instance,
                (raw_s, subject.n),
                (raw_r, reference.n),
                scale,
            );
            Some(Claim {
                claim: if is_vm { d.vm_claim } else { d.figure }.into(),
                figure: d.figure,
                subject: s,
                reference: r,
                ratio,
                ratio_text: ratio.text(REFERENCE, r, d.unit()),
                unit: d.unit(),
                definitions: d.definitions,
            })
        })
        .collect();
    ClaimSet {
        run: run.label.clone(),
        basis,
        subject,
        reference,
        claims,
    }
}

fn figure(run: &RunData, d: &Def, side: &Side) -> Option<f64> {
    let m = d.metric();
    match d.source {
        Source::Summary(stat) => run
            .summary
            .iter()
            .find(|r| r.backend == side.backend && r.accel == side.accel && r.n == side.n)
            .and_then(|r| m.of_summary(stat, r)),
        Source::Kernel => {
            let v: Vec<f64> = run
                .kernel
                .iter()
                .filter(|k| k.backend == side.backend && k.accel == side.accel && k.n == side.n)
                .filter_map(|k| m.of_batch(k))
                .collect();
            crate::stats::mean(&v)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::load::RunData;
    use crate::results::record::{KernelRow, SummaryRow};

    fn row(backend: &str, accel: &str, n: u32) -> SummaryRow {
        SummaryRow {
            backend: backend.into(),
            accel: accel.into(),
            n,
            count: n,
            ok: n,
            ..SummaryRow::default()
        }
    }

    fn run(summary: Vec<SummaryRow>, kernel: Vec<KernelRow>) -> RunData {
        RunData {
            dir: "/nowhere".into(),
            label: "r1".into(),
            meta: Default::default(),
            samples: Vec::new(),
            summary,
            kernel,
            until: Vec::new(),
            syscalls: Vec::new(),
        }
    }

    fn find<'a>(set: &'a ClaimSet, figure: &str) -> &'a Claim {
        set.claims
            .iter()
            .find(|c| c.figure == figure)
            .unwrap_or_else(|| panic!("no {figure} in {set:#?}"))
    }

    #[test]
    fn ratios_at_the_largest_common_n_and_at_each_largest() {
        let ct = |n, pss, idle| SummaryRow {
            startup_ms_p50: Some(4.0),
            pss_kib_mean: Some(pss),
            idle_cpu_ms_per_s_mean: Some(idle),
            ..row("container", "none", n)
        };
        let vm = |n, pss| SummaryRow {
            startup_ms_p50: Some(4000.0),
            pss_kib_mean: Some(pss),
            vmm_overhead_kib_mean: Some(20480.0),
            idle_cpu_ms_per_s_mean: Some(6.0),
            ..row("vm", "tcg", n)
        };
        let r = run(
            vec![
                ct(1, 1024.0, 0.0),
                ct(2, 512.0, 0.0),
                ct(100, 128.0, 0.5),
                vm(1, 204800.0),
                vm(2, 102400.0),
                vm(4, 51200.0),
            ],
            vec![],
        );
        let mut notes = Vec::new();
        let sets = claims(&r, &mut notes);
        assert_eq!(sets.len(), 2, "{sets:#?}");
        let common = &sets[0];
        assert_eq!(common.basis, Basis::LargestCommonN);
        assert_eq!((common.subject.n, common.reference.n), (2, 2));
        assert_eq!(common.subject.accel, "tcg");
        let start = find(common, "start-up p50");
        assert_eq!(start.ratio, Ratio::Finite(1000.0));
        assert_eq!(start.ratio_text, "1000x");
        let pss = find(common, "memory per instance: PSS");
        assert_eq!((pss.subject, pss.reference), (Some(100.0), Some(0.5)));
        assert_eq!(pss.ratio, Ratio::Finite(200.0));
        assert_eq!(pss.unit, "MiB");
        let idle = find(common, "idle CPU per instance");
        assert_eq!(idle.ratio, Ratio::ReferenceZero);
        assert_eq!(
            idle.ratio_text,
            "no finite ratio: container measured 0 ms/s"
        );
        assert!(!idle.ratio_text.contains("inf") && !idle.ratio_text.contains("NaN"));
        let vmm = find(common, "VMM overhead per VM");
        assert_eq!((vmm.subject, vmm.ratio), (Some(20.0), Ratio::SubjectOnly));
        assert!(
            common
                .title()
                .contains("vm (tcg) at N=2 / container at N=2")
        );

        let each = &sets[1];
        assert_eq!(each.basis, Basis::EachLargestN);
        assert_eq!((each.subject.n, each.reference.n), (4, 100));
        assert_eq!(
            find(each, "memory per instance: PSS").ratio,
            Ratio::Finite(400.0)
        );
        assert_eq!(
            find(each, "idle CPU per instance").ratio,
            Ratio::Finite(12.0)
        );
        assert!(
            each.claims.iter().all(|c| c.figure != "start-up p50"),
            "start-up depends on the load, not amortised: only at a common N"
        );
        assert!(notes.is_empty(), "{notes:?}");
    }

    #[test]
    fn kernel_claims_come_from_kernel_csv() {
        let k = |backend: &str, accel: &str, n, kernels, with, guest: Option<u64>| KernelRow {
            backend: backend.into(),
            accel: accel.into(),
            n,
            distinct_kernels: kernels,
            host_kthreads_before: 60,
            host_kthreads_with: with,
            guest_kthreads_total: guest,
            ..KernelRow::default()
        };
        let r = run(
            vec![row("container", "none", 2), row("vm", "kvm", 2)],
            vec![
                k("container", "none", 2, 1, 60, None),
                k("vm", "kvm", 2, 3, 62, Some(94)),
            ],
        );
        let sets = claims(&r, &mut Vec::new());
        assert_eq!(sets.len(), 1, "one common N, also each one's largest");
        let kernels = find(&sets[0], "distinct kernels of the batch");
        assert_eq!((kernels.subject, kernels.reference), (Some(3.0), Some(1.0)));
        assert_eq!(
            kernels.claim,
            "containers share the host kernel, VMs boot their own"
        );
        let threads = find(&sets[0], "kernel threads added by the batch");
        assert_eq!(
            (threads.subject, threads.reference),
            (Some(96.0), Some(0.0))
        );
        // The host's own kernel threads come and go: 0 added is within its noise, no ratio.
        assert_eq!(threads.ratio, Ratio::WithinNoise(4.0));
        assert!(
            threads
                .ratio_text
                .contains("within the host's noise (±4 threads")
        );
        assert!(
            sets[0]
                .claims
                .iter()
                .all(|c| c.figure != "identical memory KSM found"),
            "KSM not measured: no row"
        );
    }

    #[test]
    fn missing_backends_give_notes_not_claims() {
        let mut notes = Vec::new();
        let only_ct = run(vec![row("container", "none", 1)], vec![]);
        assert!(claims(&only_ct, &mut notes).is_empty());
        assert!(notes[0].contains("no vm backend"), "{notes:?}");
        notes.clear();
        let only_vm = run(vec![row("vm", "tcg", 1)], vec![]);
        assert!(claims(&only_vm, &mut notes).is_empty());
        assert!(notes[0].contains("no container backend"), "{notes:?}");
        notes.clear();
        let failed_vm = run(
            vec![
                row("container", "none", 1),
                SummaryRow {
                    ok: 0,
                    ..row("vm", "tcg", 1)
                },
            ],
            vec![],
        );
        assert!(claims(&failed_vm, &mut notes).is_empty());
        assert!(notes[0].contains("no ok instance"), "{notes:?}");
    }

    #[test]
    fn oci_runtimes_are_compared_with_the_container_too() {
        let pss = |b: &str, kib| SummaryRow {
            pss_kib_mean: Some(kib),
            host_avail_kib_mean: Some(-3000.0),
            ..row(b, "none", 10)
        };
        let r = run(
            vec![pss("container", 1024.0), pss("oci-runc", 2048.0)],
            vec![],
        );
        let mut notes = Vec::new();
        let sets = claims(&r, &mut notes);
        assert_eq!(sets.len(), 1);
        assert_eq!(sets[0].subject.backend, "oci-runc");
        let c = find(&sets[0], "memory per instance: PSS");
        assert_eq!(
            (c.claim.as_str(), c.ratio),
            ("memory per instance: PSS", Ratio::Finite(2.0))
        );
        let host = find(&sets[0], "memory per instance: host MemAvailable");
        assert_eq!(host.ratio, Ratio::Negative);
        assert!(notes[0].contains("no vm backend"));
    }

    #[test]
    fn every_claim_reads_a_figure_its_metric_has_in_its_unit() {
        use crate::results::metrics::{Backends, File, Read, Unit};
        for d in DEFS {
            let m = d.metric();
            match d.source {
                Source::Summary(stat) => assert!(
                    m.summary.iter().any(|(s, _)| *s == stat),
                    "{}: summary.csv has no {stat:?} of {m:?}",
                    d.figure
                ),
                Source::Kernel => assert!(
                    matches!(m.read, Read::Batch(_))
                        && matches!(m.file, File::Kernel | File::Report),
                    "{}: {m:?} is not a kernel.csv figure",
                    d.figure
                ),
            }
            match d.show {
                Show::Mib => assert_eq!(m.unit, Unit::Kib, "{}", d.figure),
                Show::Count(_) => assert_eq!(m.unit, Unit::Count, "{}", d.figure),
                Show::AsIs => {}
            }
            if m.backends == Backends::Vm {
                assert!(d.vm_only, "{}: {m:?} is vm only", d.figure);
            }
        }
    }

    #[test]
    fn the_host_view_is_claimed_only_where_the_batch_is_above_its_noise() {
        // At N = 1 a container moved MemAvailable by 0.7 MiB: noise. At N = 1000 by 750 MiB.
        let host = |b: &str, a: &str, n, kib| SummaryRow {
            host_avail_kib_mean: Some(kib),
            pss_kib_mean: Some(kib),
            ..row(b, a, n)
        };
        let r = run(
            vec![
                host("container", "none", 1, 700.0),
                host("container", "none", 1000, 770.0),
                host("vm", "tcg", 1, 172_000.0),
                host("vm", "tcg", 8, 134_000.0),
            ],
            vec![],
        );
        let sets = claims(&r, &mut Vec::new());
        assert_eq!(sets.len(), 2, "{sets:#?}");
        assert_eq!((sets[0].subject.n, sets[0].reference.n), (1, 1));
        let at1 = find(&sets[0], "memory per instance: host MemAvailable");
        assert_eq!(at1.ratio, Ratio::WithinNoise(16.0), "{at1:#?}");
        assert_eq!(
            at1.reference,
            Some(700.0 / 1024.0),
            "the figure is still shown"
        );
        assert!(at1.ratio_text.contains("±16 MiB for the batch"), "{at1:#?}");
        // PSS is the instance's own: no host noise band, a ratio at N = 1 too.
        let pss = find(&sets[0], "memory per instance: PSS");
        assert!(matches!(pss.ratio, Ratio::Finite(_)), "{pss:#?}");
        assert_eq!((sets[1].subject.n, sets[1].reference.n), (8, 1000));
        let at_max = find(&sets[1], "memory per instance: host MemAvailable");
        assert!(
            matches!(at_max.ratio, Ratio::Finite(x) if (x - 134_000.0 / 770.0).abs() < 1e-9),
            "{at_max:#?}"
        );
    }

    #[test]
    fn a_run_whose_host_view_fell_has_a_wider_noise_band() {
        // The rest of the host freed 845 MiB during one batch: the band is at least that.
        let host = |n, mib: f64| SummaryRow {
            host_avail_kib_mean: Some(mib * 1024.0 / f64::from(n)),
            ..row("container", "none", n)
        };
        let rows = vec![host(1, 1.0), host(100, -845.0), host(1000, 610.0)];
        let band = summary_band(&HOST_AVAIL_KIB, &rows).unwrap();
        assert!((band - 845.0 * 1024.0).abs() < 1e-6, "{band}");
        assert_eq!(
            summary_band(&HOST_AVAIL_KIB, &rows[..1]),
            HOST_AVAIL_KIB.host_noise,
            "no fall: the floor"
        );
        assert_eq!(
            summary_band(&PSS_KIB, &rows),
            None,
            "PSS is the instance's own"
        );
        let mut vm = host(8, 1486.0);
        vm.backend = "vm".into();
        vm.accel = "tcg".into();
        let mut r = run(rows, vec![]);
        r.summary.push(vm);
        let sets = claims(&r, &mut Vec::new());
        let each = sets
            .iter()
            .find(|s| s.basis == Basis::EachLargestN)
            .unwrap();
        let c = find(each, "memory per instance: host MemAvailable");
        assert!(
            matches!(c.ratio, Ratio::WithinNoise(b) if (b - 845.0).abs() < 1e-6),
            "610 MiB of containers is within it: {c:#?}"
        );
    }

    #[test]
    fn no_text_of_any_ratio_says_inf_or_nan() {
        let odd = [
            None,
            Some(0.0),
            Some(-0.0),
            Some(1e-320),
            Some(-3.0),
            Some(2.0),
            Some(f64::MAX),
            Some(f64::INFINITY),
            Some(f64::NEG_INFINITY),
            Some(f64::NAN),
        ];
        for s in odd {
            for r in odd {
                let ratio = Ratio::of(s, r);
                if let Ratio::Finite(x) = ratio {
                    assert!(x.is_finite(), "{s:?} / {r:?} = {x}");
                }
                for text in [ratio.text("container", r, "MiB"), ratio.short("container")] {
                    let lower = text.to_lowercase();
                    assert!(
                        !lower.contains("inf") && !lower.contains("nan"),
                        "{s:?} / {r:?}: {text}"
                    );
                }
            }
        }
    }

    #[test]
    fn ratio_cases() {
        assert_eq!(Ratio::of(Some(1.0), None), Ratio::Missing);
        assert_eq!(Ratio::of(Some(0.0), Some(0.0)), Ratio::BothZero);
        assert_eq!(Ratio::of(Some(3.0), Some(0.0)), Ratio::ReferenceZero);
        assert_eq!(Ratio::of(Some(1.0), Some(4.0)), Ratio::Finite(0.25));
        assert_eq!(Ratio::of(Some(1.0), Some(-4.0)), Ratio::Negative);
        let json = serde_json::to_string(&Ratio::Finite(2.5)).unwrap();
        assert_eq!(json, r#"{"kind":"finite","value":2.5}"#);
    }
}
