//! Cost models: what N instances of one backend cost in total, as a fitted line over the
//! batches of a density run. One point per batch (one N, one repetition), so repetitions
//! weigh in as they were measured and a noisy N does not hide behind its mean.

use crate::scenario::BackendKind;
use serde::Serialize;

use crate::results::load::RunData;
use crate::results::metrics::{HOST_AVAIL_KIB, IDLE_CPU_MS_PER_S, Metric, PSS_KIB};
use crate::results::record::Sample;

use super::fit::{Fit, fit_cost};

/// What one batch of a run cost in total, from samples.csv.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Batch {
    pub n: u32,
    pub rep: u32,
    /// Instances that came up (the batch's N unless launches failed): the x of every fit.
    pub alive: u32,
    /// The host's MemAvailable decrease for the whole batch, KiB (`host_avail_kib` x alive).
    pub host_mem_kib: Option<f64>,
    /// Sum of `pss_kib` over the batch's instances, KiB.
    pub pss_kib: Option<f64>,
    /// Sum of `idle_cpu_ms_per_s` over the batch's instances, ms/s.
    pub idle_cpu_ms_per_s: Option<f64>,
}

/// A quantity whose total over N instances is fitted as a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum View {
    /// The host's MemAvailable decrease: what a host really runs out of.
    HostMem,
    /// Sum of PSS: the processes' own share, for reference.
    Pss,
    /// Idle host CPU.
    IdleCpu,
}

impl View {
    /// The per-instance metric whose total over a batch the view fits.
    pub fn metric(self) -> &'static Metric {
        match self {
            View::HostMem => &HOST_AVAIL_KIB,
            View::Pss => &PSS_KIB,
            View::IdleCpu => &IDLE_CPU_MS_PER_S,
        }
    }

    /// Unit of the totals and of both coefficients: the metric's own.
    pub fn unit(self) -> &'static str {
        self.metric().unit.as_str()
    }

    fn total(self, b: &Batch) -> Option<f64> {
        match self {
            View::HostMem => b.host_mem_kib,
            View::Pss => b.pss_kib,
            View::IdleCpu => b.idle_cpu_ms_per_s,
        }
    }
}

/// A fitted line for one view, or why there is none.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ViewFit {
    pub view: View,
    pub unit: &'static str,
    pub fit: Option<Fit>,
    /// Why `fit` is missing, or what limits it (fewer than 3 N: no check of linearity).
    pub note: Option<String>,
}

impl ViewFit {
    fn of(view: View, batches: &[Batch]) -> ViewFit {
        let pts: Vec<(f64, f64)> = batches
            .iter()
            .filter_map(|b| view.total(b).map(|y| (f64::from(b.alive), y)))
            .collect();
        let (fit, note) = if pts.is_empty() {
            (None, Some("not measured in this run".to_string()))
        } else {
            match fit_cost(&pts) {
                Ok(f) => {
                    let mut notes = Vec::new();
                    if let Some(c) = &f.clamped {
                        notes.push(clamped_note(view, c.intercept, c.intercept_se));
                    }
                    if f.residual_se.is_none() {
                        notes.push(format!(
                            "{} points: no error estimate (a line through 2 points fits exactly)",
                            f.points
                        ));
                    } else if f.distinct_x < 3 {
                        notes.push(format!(
                            "{} different N: the standard errors show repetition scatter only; whether cost is linear in N is not checked",
                            f.distinct_x
                        ));
                    }
                    (Some(f), (!notes.is_empty()).then(|| notes.join("; ")))
                }
                Err(e) => (None, Some(format!("no fit: {e}"))),
            }
        };
        ViewFit {
            view,
            unit: view.unit(),
            fit,
            note,
        }
    }
}

/// Why a fixed cost reads 0: least squares gave `intercept` (± `se`), below 0, and the line was
/// refitted through 0 (`fit::fit_cost`). Memory in MiB, as the tables print it.
fn clamped_note(view: View, intercept: f64, se: Option<f64>) -> String {
    let (scale, unit) = match view {
        View::HostMem | View::Pss => (1024.0, "MiB"),
        View::IdleCpu => (1.0, view.unit()),
    };
    let se = se.map_or(String::new(), |s| {
        format!(" ± {}", crate::text::format::sig(s / scale))
    });
    format!(
        "fixed cost clamped to 0: least squares gave {}{se} {unit}, and no host frees {} when instances start (it comes from noise in the small-N batches, or a cost per instance that grows with N); the line was refitted through 0 (the least-squares line with a fixed cost >= 0), and every answer uses it",
        crate::text::format::sig(intercept / scale),
        if view == View::IdleCpu {
            "CPU"
        } else {
            "memory"
        }
    )
}

/// The cost models of one backend (and accelerator).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CostModel {
    pub backend: String,
    pub accel: String,
    pub batches: Vec<Batch>,
    /// The capacity-relevant memory view: the host's MemAvailable decrease.
    pub memory: ViewFit,
    pub pss: ViewFit,
    pub idle_cpu: ViewFit,
}

impl CostModel {
    /// Whether this backend boots its own kernel (a VM, under any accelerator).
    pub fn is_vm(&self) -> bool {
        self.accel != "none" || self.kind() == Some(BackendKind::Vm)
    }

    /// Whether this backend is a container: isobench's own or one run through an OCI runtime.
    pub fn is_container(&self) -> bool {
        matches!(self.kind(), Some(BackendKind::Container | BackendKind::Oci))
    }

    /// The kind of backend the rows' label names.
    fn kind(&self) -> Option<BackendKind> {
        BackendKind::of_label(&self.backend)
    }
}

/// One batch's totals from its sample rows. The host view is per instance in samples.csv (the
/// batch's decrease divided by the instances that came up), so it is multiplied back.
fn batch_of(n: u32, rep: u32, rows: &[&Sample]) -> Batch {
    let alive = rows.iter().filter(|s| s.startup_ms.is_some()).count() as u32;
    let sum = |m: &Metric| -> Option<f64> {
        let v: Vec<f64> = rows.iter().filter_map(|s| m.of_sample(s)).collect();
        (!v.is_empty()).then(|| v.iter().sum())
    };
    // A per-batch figure is the same on every row: one row's value, times the instances.
    let per_batch = |m: &Metric| -> Option<f64> {
        debug_assert!(m.per_batch);
        rows.iter()
            .find_map(|s| m.of_sample(s))
            .map(|per| per * f64::from(alive))
    };
    Batch {
        n,
        rep,
        alive,
        host_mem_kib: per_batch(View::HostMem.metric()),
        pss_kib: sum(View::Pss.metric()),
        idle_cpu_ms_per_s: sum(View::IdleCpu.metric()),
    }
}

/// The cost models of every backend of `run`, in the run's order. Batches for which `skip`
/// says true (backend, accel, n) are left out: an until run's own batch, when the prediction
/// is checked against it.
pub fn models(run: &RunData, skip: impl Fn(&str, &str, u32) -> bool) -> Vec<CostModel> {
    let mut order: Vec<(String, String)> = Vec::new();
    for s in &run.samples {
        let key = (s.backend.clone(), s.accel.clone());
        if !order.contains(&key) {
            order.push(key);
        }
    }
    order
        .into_iter()
        .map(|(backend, accel)| {
            let mut keys: Vec<(u32, u32)> = Vec::new();
            for s in &run.samples {
                if s.backend == backend && s.accel == accel && !keys.contains(&(s.n, s.rep)) {
                    keys.push((s.n, s.rep));
                }
            }
            keys.sort_unstable();
            let batches: Vec<Batch> = keys
                .into_iter()
                .filter(|&(n, _)| !skip(&backend, &accel, n))
                .map(|(n, rep)| {
                    let rows: Vec<&Sample> = run
                        .samples
                        .iter()
                        .filter(|s| {
                            s.backend == backend && s.accel == accel && s.n == n && s.rep == rep
                        })
                        .collect();
                    batch_of(n, rep, &rows)
                })
                .filter(|b| b.alive > 0)
                .collect();
            CostModel {
                memory: ViewFit::of(View::HostMem, &batches),
                pss: ViewFit::of(View::Pss, &batches),
                idle_cpu: ViewFit::of(View::IdleCpu, &batches),
                backend,
                accel,
                batches,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(backend: &str, n: u32, rep: u32, host: f64, pss: u64, cpu: f64) -> Sample {
        Sample {
            backend: backend.into(),
            accel: "none".into(),
            n,
            rep,
            ok: true,
            startup_ms: Some(5.0),
            host_avail_kib: Some(host),
            pss_kib: Some(pss),
            idle_cpu_ms_per_s: Some(cpu),
            ..Sample::default()
        }
    }

    fn run(samples: Vec<Sample>) -> RunData {
        RunData {
            dir: "r".into(),
            label: "r".into(),
            meta: Default::default(),
            samples,
            summary: vec![],
            kernel: vec![],
            until: vec![],
            syscalls: Vec::new(),
        }
    }

    #[test]
    fn batches_are_totals_and_the_line_is_per_instance_cost() {
        // Every batch of N costs 1000 + 500 N KiB on the host: per instance 1000/N + 500.
        let mut s = Vec::new();
        for n in [1u32, 4, 8] {
            for _ in 0..n {
                s.push(sample(
                    "container",
                    n,
                    0,
                    1000.0 / f64::from(n) + 500.0,
                    300,
                    0.5,
                ));
            }
        }
        // A failed launch: no startup_ms, not alive, not counted.
        s.push(Sample {
            startup_ms: None,
            ..sample("container", 8, 0, 0.0, 0, 0.0)
        });
        let m = &models(&run(s), |_, _, _| false)[0];
        assert_eq!(m.batches.len(), 3);
        assert_eq!(m.batches[2].alive, 8);
        let f = m.memory.fit.as_ref().unwrap();
        assert!((f.slope - 500.0).abs() < 1e-9 && (f.intercept - 1000.0).abs() < 1e-9);
        let cpu = m.idle_cpu.fit.as_ref().unwrap();
        assert!((cpu.slope - 0.5).abs() < 1e-12);
        assert!(m.memory.note.is_none(), "{:?}", m.memory.note);
        assert!(m.is_container() && !m.is_vm());
    }

    #[test]
    fn skipped_batches_and_missing_views_are_said() {
        let mut s = vec![sample("vm", 1, 0, 200.0, 10, 1.0)];
        s.push(Sample {
            host_avail_kib: None,
            idle_cpu_ms_per_s: None,
            ..sample("vm", 2, 0, 0.0, 10, 0.0)
        });
        let m = &models(&run(s.clone()), |_, _, _| false)[0];
        assert!(m.memory.fit.is_none());
        assert!(
            m.memory
                .note
                .as_deref()
                .unwrap()
                .contains("a line needs at least 2")
        );
        let m = &models(&run(s), |_, _, n| n == 1)[0];
        assert_eq!(m.batches.len(), 1);
        assert!(m.idle_cpu.note.as_deref().unwrap().contains("not measured"));
    }
}
