//! The report's content, independent of its format: report.html and report.md render the
//! same [`Document`], so they cannot say different things.

use std::collections::BTreeSet;

use crate::report::claims::ClaimSet;
use crate::report::claims::summary_band;
use crate::report::figures::PlotSpec;
use crate::report::flags;
use crate::results::load::RunData;
use crate::results::metrics::{
    self, BATCH_READY_MS, CAP_AMB, CAP_BND, CAP_EFF, CAP_INH, CGROUP_MEM_KIB, DEVICES,
    DISK_PRIVATE_KIB, HOST_AVAIL_KIB, IDLE_CPU_MS_PER_S, KERNEL_KIB_PER_KERNEL, KTHREADS_ADDED,
    MEM_AVAILABLE_KIB_AT_STOP, Metric, N_REACHED, NO_NEW_PRIVS, NS_PER_OP, NS_PRIVATE, PSS_KIB,
    SECCOMP, SECCOMP_FILTERS, SECURITY, STARTUP_MS, TEARDOWN_MS,
};
use crate::text::format::{figure, gib, mib, opt, sig, whole};

/// A piece of the report.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    Heading(u8, String),
    Para(String),
    List(Vec<String>),
    Table(Table),
    /// A plot drawn into plots/<stem>.svg and .png (paths relative to the report).
    Plot {
        title: String,
        svg_path: String,
        png_path: String,
        /// The SVG document itself, inlined into the HTML.
        svg: String,
    },
    /// Preformatted text with a one-line summary (HTML shows it folded).
    Code {
        summary: String,
        text: String,
    },
}

/// A table: header and rows of cells; `right[i]` aligns column i to the right (numbers).
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub header: Vec<String>,
    pub right: Vec<bool>,
    pub rows: Vec<Vec<String>>,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    pub title: String,
    pub blocks: Vec<Block>,
}

/// A plot as drawn, or `None` in `svg` when it was left out.
pub struct DrawnPlot<'a> {
    pub spec: &'a PlotSpec,
    /// (svg path, png path relative to the report, SVG text) when drawn.
    pub drawn: Option<(String, String, String)>,
}

/// Builds the report of `runs` with their claims and plots.
pub fn build(
    runs: &[RunData],
    sets: &[ClaimSet],
    claim_notes: &[String],
    plots: &[DrawnPlot<'_>],
) -> Document {
    let labels: Vec<&str> = runs.iter().map(|r| r.label.as_str()).collect();
    let mut b = Vec::new();
    b.push(Block::Para(format!(
        "{} Every figure is defined at the end of the report; medians and percentiles are \
         type 7 (R's and NumPy's default).",
        provenance(runs)
    )));
    b.push(Block::Heading(2, "Environment".into()));
    b.push(Block::Table(environment(runs)));
    let mut used: BTreeSet<&'static Metric> = BTreeSet::new();
    crate::report::hosts::section(&mut b, runs, &mut used);
    claims(&mut b, sets, claim_notes, &mut used);
    b.push(Block::Heading(2, "Plots".into()));
    for p in plots {
        plot(&mut b, p, runs, &mut used);
    }
    isolation(&mut b, runs, &mut used);
    b.push(Block::Heading(2, "Summary per backend and N".into()));
    for r in runs {
        summary(&mut b, r, runs.len() > 1, &mut used);
    }
    b.push(Block::Heading(2, "Definitions".into()));
    b.push(Block::Para(
        "Every figure shown above, as isobench defines it (results::metrics; derived \
         figures marked \"report:\"). Per-instance figures in plots and claims are means over \
         the ok instances of all repetitions at one N."
            .into(),
    ));
    b.push(Block::Table(definitions(&used)));
    for r in runs {
        b.push(Block::Code {
            summary: format!("scenario of {} ({})", r.label, r.meta.scenario_origin),
            text: r.meta.scenario_text.clone(),
        });
    }
    Document {
        title: format!("isobench report: {}", labels.join(", ")),
        blocks: b,
    }
}

fn environment(runs: &[RunData]) -> Table {
    let mut header = vec!["".to_string()];
    header.extend(runs.iter().map(|r| r.label.clone()));
    let row = |name: &str, f: &dyn Fn(&RunData) -> String| {
        let mut cells = vec![name.to_string()];
        cells.extend(runs.iter().map(f));
        cells
    };
    let rows = vec![
        row("directory", &|r| r.dir.display().to_string()),
        row("run id", &|r| r.meta.run_id.clone()),
        row("scenario", &|r| {
            format!("{} ({})", r.meta.scenario, r.meta.scenario_origin)
        }),
        row("outcome", &|r| r.meta.outcome.clone()),
        row("started", &|r| r.meta.started_at.clone()),
        row("ended", &|r| r.meta.ended_at.clone().unwrap_or("-".into())),
        row("host", &|r| r.meta.hostname.clone()),
        row("host label", &|r| r.meta.host_label.clone()),
        row("virtualization", &|r| r.meta.virtualization.describe()),
        row("host kernel", &|r| r.meta.host_kernel.clone()),
        row("CPU", &|r| {
            format!("{} ({} cores)", r.meta.cpu_model, r.meta.cpu_cores)
        }),
        row("memory (MemTotal)", &|r| {
            format!("{} GiB", sig(gib(r.meta.mem_total_kib as f64)))
        }),
        row("cgroups", &|r| {
            format!(
                "{} ({})",
                r.meta.cgroup_mode,
                r.meta.cgroup_controllers.join(", ")
            )
        }),
        row("backends", &|r| {
            r.meta
                .accelerators
                .iter()
                .map(|a| {
                    let why = if a.why.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", a.why)
                    };
                    format!("{} {}{why}", a.backend, a.accel)
                })
                .collect::<Vec<_>>()
                .join("; ")
        }),
        row("instances (ok / rows)", &|r| {
            let ok = r.samples.iter().filter(|s| s.ok).count();
            format!("{ok} / {}", r.samples.len())
        }),
        row("isobench", &|r| {
            format!("{} ({})", r.meta.isobench_version, r.meta.git_revision)
        }),
        row("command line", &|r| r.meta.command_line.join(" ")),
        row("harness peak RSS", &|r| {
            opt(r.meta.harness_peak_rss_kib.map(|k| mib(k as f64))) + " MiB"
        }),
    ];
    Table {
        right: vec![false; header.len()],
        header,
        rows,
    }
}

/// The claims as a table in the shape text mode prints too.
pub fn claims_table(set: &ClaimSet) -> Table {
    let side = |backend: &str, n: u32| format!("{backend} (N={n})");
    Table {
        header: vec![
            "claim".into(),
            side(&set.subject.backend, set.subject.n),
            side(&set.reference.backend, set.reference.n),
            "ratio".into(),
            "unit".into(),
            "defined as".into(),
        ],
        right: vec![false, true, true, true, false, false],
        rows: set
            .claims
            .iter()
            .map(|c| {
                vec![
                    c.claim.clone(),
                    figure(c.subject, c.unit),
                    figure(c.reference, c.unit),
                    c.ratio_text.clone(),
                    c.unit.into(),
                    c.definitions.first().map_or("", |m| m.name).into(),
                ]
            })
            .collect(),
    }
}

fn claims(
    b: &mut Vec<Block>,
    sets: &[ClaimSet],
    notes: &[String],
    used: &mut BTreeSet<&'static Metric>,
) {
    b.push(Block::Heading(2, "Claims".into()));
    let band = |m: &Metric| m.host_noise.map_or_else(|| "-".into(), whole);
    b.push(Block::Para(format!(
        "Each row: a figure of the subject backend, the same figure of the container \
         backend, and their ratio. First at the largest N both measured (the same load); then, \
         where either went further, the per-instance figures at each backend's largest N \
         (shared costs amortised, the host view's noise divided by N). A host-wide reading \
         (MemAvailable, the host kernel's memory and threads) is compared only where both \
         batches moved it by more than its noise band (at least {} MiB of MemAvailable, {} \
         MiB of kernel memory, {} kernel threads for the batch, and at least the largest fall \
         below 0 a batch of the run saw, which only the rest of the host can cause): below \
         that, the figure is shown and the ratio is not claimed. Definitions: see the end of the report; a ratio that has \
         no finite value is said in words.",
        band_mib(&HOST_AVAIL_KIB),
        band_mib(&KERNEL_KIB_PER_KERNEL),
        band(&KTHREADS_ADDED)
    )));
    for set in sets {
        b.push(Block::Heading(3, set.title()));
        b.push(Block::Table(claims_table(set)));
        for c in &set.claims {
            used.extend(c.definitions.iter().copied());
        }
    }
    if !notes.is_empty() {
        b.push(Block::List(notes.to_vec()));
    }
}

/// Which isobench measured the runs and wrote the report: one revision when they are the same
/// build (`-dirty`: built from a tree with uncommitted changes), each named when not.
pub fn provenance(runs: &[RunData]) -> String {
    let this = crate::results::meta::GIT_REVISION;
    let dirs = runs
        .iter()
        .map(|r| r.dir.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let version = env!("CARGO_PKG_VERSION");
    let measured: BTreeSet<&str> = runs.iter().map(|r| r.meta.git_revision.as_str()).collect();
    let dirty = |rev: &str| {
        if rev.ends_with("-dirty") {
            " (built with uncommitted changes)"
        } else {
            ""
        }
    };
    if measured.len() == 1 && measured.contains(this) {
        format!(
            "Measured and written by isobench {version}, git revision {this}{} ({dirs}).",
            dirty(this)
        )
    } else {
        let each: Vec<String> = runs
            .iter()
            .map(|r| format!("{} by {}", r.label, r.meta.git_revision))
            .collect();
        format!(
            "Written by isobench {version}, git revision {this}{}, from runs measured by other \
             builds ({}; {dirs}): re-run them with this build for one revision throughout.",
            dirty(this),
            each.join(", ")
        )
    }
}

/// A metric's host noise band in MiB, as the claims' text gives it.
fn band_mib(m: &Metric) -> String {
    m.host_noise.map_or_else(|| "-".into(), |k| whole(mib(k)))
}

fn plot(
    b: &mut Vec<Block>,
    p: &DrawnPlot<'_>,
    runs: &[RunData],
    used: &mut BTreeSet<&'static Metric>,
) {
    b.push(Block::Heading(3, p.spec.heading.into()));
    if let Some((svg_path, png_path, svg)) = &p.drawn {
        used.extend(p.spec.definitions.iter().copied());
        b.push(Block::Plot {
            title: p.spec.title.clone(),
            svg_path: svg_path.clone(),
            png_path: png_path.clone(),
            svg: svg.clone(),
        });
        b.push(Block::Para(p.spec.about.clone()));
    }
    if !p.spec.notes.is_empty() {
        b.push(Block::List(p.spec.notes.clone()));
    }
    if p.drawn.is_some() {
        let flags = flag_lines(runs, &p.spec.definitions);
        if !flags.is_empty() {
            b.push(Block::List(flags));
        }
    }
}

/// The statistics flags of `metrics` in every run, each line marked as a flag (and with its
/// run's label when there are several).
pub fn flag_lines(runs: &[RunData], metrics: &[&'static Metric]) -> Vec<String> {
    runs.iter()
        .flat_map(|r| {
            let lines = flags::lines(&flags::flags(&r.samples, &r.kernel, metrics));
            let prefix = if runs.len() > 1 {
                format!("flag ({}): ", r.label)
            } else {
                "flag: ".to_string()
            };
            lines.into_iter().map(move |l| format!("{prefix}{l}"))
        })
        .collect()
}

/// A text table (report::table's cells) as a report table.
fn text_table(header: &[&str], right: &[bool], rows: Vec<Vec<String>>) -> Table {
    Table {
        header: header.iter().map(|h| h.to_string()).collect(),
        right: right.to_vec(),
        rows,
    }
}

/// The isolation each backend's instances were verified to have, and what their system calls
/// cost, for the runs that measured them.
fn isolation(b: &mut Vec<Block>, runs: &[RunData], used: &mut BTreeSet<&'static Metric>) {
    use crate::report::isolation::{isolation_rows, syscall_summary};
    let with_iso: Vec<&RunData> = runs
        .iter()
        .filter(|r| r.samples.iter().any(|s| !s.cap_eff.is_empty()))
        .collect();
    let with_sys: Vec<&RunData> = runs.iter().filter(|r| !r.syscalls.is_empty()).collect();
    if with_iso.is_empty() && with_sys.is_empty() {
        return;
    }
    b.push(Block::Heading(2, "Isolation and system-call cost".into()));
    if !with_iso.is_empty() {
        used.extend([
            &SECURITY,
            &CAP_EFF,
            &CAP_BND,
            &CAP_INH,
            &CAP_AMB,
            &NO_NEW_PRIVS,
            &SECCOMP,
            &SECCOMP_FILTERS,
            &NS_PRIVATE,
            &DEVICES,
        ]);
        b.push(Block::Para(
            "What each backend's instances were verified to run with, read from the host \
             while they ran (/proc/PID/status of the agent, its namespaces against the \
             harness's, its cgroup's device rules), not what the profile asked for. Where \
             instances of one backend differed, every value is shown."
                .into(),
        ));
        for r in with_iso {
            if runs.len() > 1 {
                b.push(Block::Heading(3, r.label.clone()));
            }
            let rows = isolation_rows(&r.samples)
                .into_iter()
                .map(|i| {
                    vec![
                        i.backend,
                        i.security,
                        i.capabilities,
                        i.cap_bnd,
                        i.inheritable_ambient,
                        i.no_new_privs,
                        i.seccomp,
                        i.ns_private,
                        i.devices,
                    ]
                })
                .collect();
            b.push(Block::Table(text_table(
                &[
                    "backend",
                    "profile",
                    "CapEff",
                    "CapBnd",
                    "CapInh / CapAmb",
                    "no_new_privs",
                    "seccomp (filters)",
                    "own namespaces",
                    "devices",
                ],
                &[false; 9],
                rows,
            )));
        }
    }
    if !with_sys.is_empty() {
        used.insert(&NS_PER_OP);
        b.push(Block::Para(
            "System calls: the median over instances of ns per operation, each measured by \
             the agent inside its instance over a time budget, with the ratio to `process` at \
             the same N. Read them at N = 1: at larger N the instances run their benchmarks \
             at once and share the CPUs. Figures of VMs under TCG include the CPU emulation."
                .into(),
        ));
        for r in with_sys {
            if runs.len() > 1 {
                b.push(Block::Heading(3, r.label.clone()));
            }
            let rows = syscall_summary(&r.syscalls)
                .into_iter()
                .map(|s| {
                    let accel = if s.accel == "tcg" {
                        "tcg (emulated)".to_string()
                    } else {
                        s.accel
                    };
                    vec![
                        s.backend,
                        accel,
                        s.n.to_string(),
                        s.op,
                        s.instances.to_string(),
                        sig(s.ns_per_op_p50),
                        s.ratio_to_process
                            .map_or("-".into(), |x| format!("{}x", sig(x))),
                    ]
                })
                .collect();
            b.push(Block::Table(text_table(
                &[
                    "backend",
                    "accel",
                    "N",
                    "operation",
                    "instances",
                    "ns per op (p50)",
                    "vs process",
                ],
                &[false, false, true, false, true, true, true],
                rows,
            )));
        }
    }
}

fn summary(b: &mut Vec<Block>, r: &RunData, several: bool, used: &mut BTreeSet<&'static Metric>) {
    if several {
        b.push(Block::Heading(3, r.label.clone()));
    }
    used.extend([
        &STARTUP_MS,
        &TEARDOWN_MS,
        &PSS_KIB,
        &CGROUP_MEM_KIB,
        &HOST_AVAIL_KIB,
        &DISK_PRIVATE_KIB,
        &IDLE_CPU_MS_PER_S,
        &BATCH_READY_MS,
    ]);
    let header = [
        "backend",
        "accel",
        "N",
        "ok / count",
        "start-up p50 (ms)",
        "p99 (ms)",
        "all ready (ms)",
        "teardown p50 (ms)",
        "PSS (MiB)",
        "cgroup (MiB)",
        "host (MiB)",
        "disk private (KiB)",
        "idle CPU (ms/s)",
    ];
    let m = |x: Option<f64>| opt(x.map(mib));
    let rows = r
        .summary
        .iter()
        .map(|s| {
            vec![
                s.backend.clone(),
                s.accel.clone(),
                s.n.to_string(),
                format!("{} / {}", s.ok, s.count),
                opt(s.startup_ms_p50),
                opt(s.startup_ms_p99),
                opt(s.batch_ready_ms_mean),
                opt(s.teardown_ms_p50),
                m(s.pss_kib_mean),
                m(s.cgroup_mem_kib_mean),
                m(s.host_avail_kib_mean),
                opt(s.disk_private_kib_mean),
                opt(s.idle_cpu_ms_per_s_mean),
            ]
        })
        .collect();
    let mut right = vec![true; header.len()];
    right[0] = false;
    right[1] = false;
    b.push(Block::Table(Table {
        header: header.iter().map(|h| h.to_string()).collect(),
        right,
        rows,
    }));
    if let Some(note) = negative_host_note(r) {
        b.push(Block::List(vec![note]));
    }
    if !r.until.is_empty() {
        used.extend([&N_REACHED, &MEM_AVAILABLE_KIB_AT_STOP]);
        b.push(Block::Para(format!(
            "{}: how far the open-ended sweep got (until.csv):",
            r.label
        )));
        b.push(Block::Table(Table {
            header: vec![
                "backend".into(),
                "N reached".into(),
                "stopped because".into(),
                "MemAvailable at stop (MiB)".into(),
            ],
            right: vec![false, true, false, true],
            rows: r
                .until
                .iter()
                .map(|u| {
                    vec![
                        format!("{} {}", u.backend, u.accel),
                        u.n_reached.to_string(),
                        u.stop_reason.clone(),
                        sig(mib(u.mem_available_kib_at_stop as f64)),
                    ]
                })
                .collect(),
        }));
    }
}

/// Why a host view below 0 is no measuring error, naming the rows that show one; `None`
/// when there is none.
pub fn negative_host_note(r: &RunData) -> Option<String> {
    let rows: Vec<String> = r
        .summary
        .iter()
        .filter_map(|s| {
            let v = s.host_avail_kib_mean.filter(|v| *v < 0.0)?;
            Some(format!("{} N={} ({} MiB)", s.backend, s.n, sig(mib(v))))
        })
        .collect();
    if rows.is_empty() {
        return None;
    }
    Some(format!(
        "host (MiB) below 0 at {}: the host's MemAvailable rose while the batch ran, because \
         the rest of the host freed more than the batch took (page cache the kernel \
         reclaimed, memory of an earlier batch or of other programs being freed). Such a batch \
         measured the host's noise, not itself; the claims compare no batch within this run's \
         noise band ({} MiB for a batch: the larger of {} MiB and the largest such fall). Read \
         this view at large N on a quiet host; PSS, USS and the cgroup's charge are the \
         instance's own and have no such noise.",
        rows.join(", "),
        summary_band(&HOST_AVAIL_KIB, &r.summary).map_or_else(|| "-".into(), |b| sig(mib(b))),
        whole(mib(HOST_AVAIL_KIB.host_noise.unwrap_or(0.0)))
    ))
}

fn definitions(used: &BTreeSet<&'static Metric>) -> Table {
    // In the table's order (the README's), derived figures last.
    let rows = metrics::METRICS
        .iter()
        .filter(|m| used.contains(*m))
        .map(|m| {
            vec![
                m.name.to_string(),
                m.unit.as_str().to_string(),
                m.definition.to_string(),
            ]
        })
        .collect();
    Table {
        header: vec!["figure".into(), "unit".into(), "definition".into()],
        right: vec![false, false, false],
        rows,
    }
}
