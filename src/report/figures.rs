//! The plots of a report, built from the loaded runs: what each shows, the definitions it
//! draws on, and the chart itself (or why it is left out).

use serde::Serialize;

use crate::chart::series::{self, ECDF_POINTS, Key};
use crate::chart::{AxisSpec, Chart, HLine, LegendEntry, Marker, Panel, Series, Style};
use crate::report::claims::summary_band;
use crate::results::load::RunData;
use crate::results::metrics::{
    Backends, CGROUP_MEM_KIB, DISK_FULL_COPY_KIB, DISK_PRIVATE_KIB, DISK_SHARED_KIB,
    DISTINCT_KERNELS, GUEST_KERNEL_KIB, GUEST_KTHREADS_TOTAL, HOST_AVAIL_KIB, HOST_KTHREADS_BEFORE,
    HOST_KTHREADS_WITH, IDLE_CPU_MS_PER_S, KERNEL_KIB_BATCH, KERNEL_KIB_PER_KERNEL, KSM_SHARED_KIB,
    KTHREADS_ADDED, Metric, PSS_KIB, RSS_KIB, STARTUP_MS, Stat, USS_KIB, VMM_OVERHEAD_KIB,
};
use crate::stats;
use crate::text::format::{gib, mib, sig, whole};

/// One plot of the report.
#[derive(Debug, Clone, Serialize)]
pub struct PlotSpec {
    /// File name without extension: plots/<stem>.svg and .png.
    pub stem: &'static str,
    /// Short name, for the report's heading.
    pub heading: &'static str,
    /// The chart's title: what it shows and under which definition.
    pub title: String,
    /// How the plot is computed, for the text under it.
    pub about: String,
    /// The metrics it draws (named in JSON).
    pub definitions: Vec<&'static Metric>,
    /// Points left out, panels without data; or why the whole plot is left out.
    pub notes: Vec<String>,
    /// `None`: no run has data for it; the report says so in one line instead.
    #[serde(skip)]
    pub chart: Option<Chart>,
}

const N_AXIS: &str = "instances running at once, N";

/// Every plot of the report, in the order shown.
pub fn all(runs: &[RunData]) -> Vec<PlotSpec> {
    let keys = series::keys(runs);
    vec![
        startup(&keys),
        memory(&keys),
        memory_total(&keys, runs),
        disk(&keys),
        idle_cpu(&keys),
        kernel(&keys),
    ]
}

/// Which axes the panels of a figure share (the same N range on every panel reads faster).
#[derive(Clone, Copy)]
struct Share {
    x: bool,
    y: bool,
}

/// Keeps the panels with data, notes the others, and makes the chart if any panel is left.
fn finish(
    mut spec: PlotSpec,
    panels: Vec<Panel>,
    legend: Option<Vec<LegendEntry>>,
    share: Share,
) -> PlotSpec {
    let (mut kept, empty): (Vec<Panel>, Vec<Panel>) = panels.into_iter().partition(Panel::has_data);
    let xs: Vec<f64> = kept.iter().flat_map(Panel::xs).collect();
    let ys: Vec<f64> = kept.iter().flat_map(Panel::ys).collect();
    for p in &mut kept {
        if share.x {
            p.x_include = xs.clone();
        }
        if share.y {
            p.y_include = ys.clone();
        }
    }
    if kept.is_empty() {
        let names: Vec<&str> = spec.definitions.iter().map(|m| m.name).collect();
        spec.notes = vec![format!(
            "left out: no run has data for it ({})",
            names.join(", ")
        )];
        return spec;
    }
    for p in empty {
        spec.notes.push(format!(
            "panel \"{}\" left out: no data in any run",
            p.title
        ));
    }
    let legend = legend.unwrap_or_else(|| series::legend(&kept));
    spec.chart = Some(Chart {
        title: spec.title.clone(),
        panels: kept,
        legend,
    });
    spec
}

fn spec(
    (stem, heading): (&'static str, &'static str),
    title: &str,
    about: &str,
    definitions: &[&'static Metric],
) -> PlotSpec {
    PlotSpec {
        stem,
        heading,
        title: title.into(),
        about: about.into(),
        definitions: definitions.to_vec(),
        notes: Vec::new(),
        chart: None,
    }
}

fn panel(title: &str, x: AxisSpec, y: AxisSpec, series: Vec<Series>) -> Panel {
    Panel {
        title: title.into(),
        x,
        y,
        series,
        hlines: Vec::new(),
        categories: None,
        x_include: Vec::new(),
        y_include: Vec::new(),
    }
}

fn note_dropped(spec: &mut PlotSpec, panel: &str, dropped: Vec<String>) {
    if !dropped.is_empty() {
        spec.notes.push(format!(
            "{panel}: values at or below 0 cannot be drawn on a log scale and are left out: {}",
            dropped.join(", ")
        ));
    }
}

/// [`note_dropped`] for a host-wide reading, with why it can fall below 0; `band` is the
/// runs' noise band for a batch (KiB), see [`crate::report::claims::noise_band`].
fn note_host_noise(spec: &mut PlotSpec, panel: &str, dropped: Vec<String>, band: Option<f64>) {
    if dropped.is_empty() {
        return;
    }
    note_dropped(spec, panel, dropped);
    spec.notes.push(format!(
        "{panel} below 0: the host's available memory rose while the batch ran, because the \
         rest of the host freed more than the batch took (page cache the kernel reclaimed, \
         memory of an earlier batch or of other programs being freed). Such a batch measured \
         the host's noise, not itself: the claims compare no batch within the noise band ({} \
         MiB for a batch here: the larger of {} MiB and the largest such fall). Read this \
         view at large N, on a quiet host.",
        band.map_or_else(|| "-".into(), |b| sig(mib(b))),
        whole(mib(HOST_AVAIL_KIB.host_noise.unwrap_or(0.0)))
    ));
}

/// The host view's noise band over every run of the report (KiB, for a batch).
fn host_band(runs: &[&RunData]) -> Option<f64> {
    runs.iter()
        .filter_map(|r| summary_band(&HOST_AVAIL_KIB, &r.summary))
        .reduce(f64::max)
}

fn startup(keys: &[Key<'_>]) -> PlotSpec {
    let title = "Start-up latency (startup_ms): spawn until the agent's ready line";
    let spec = spec(
        ("startup", "Start-up latency"),
        title,
        &format!(
            "Left: the empirical CDF of the start-up time of every ok instance, all N pooled \
             (at most {ECDF_POINTS} points per series, evenly spaced ranks, both ends kept). \
             Right: the median per N, whiskers from p10 to p90 (type-7 percentiles over the ok \
             instances of every repetition)."
        ),
        &[&STARTUP_MS],
    );
    let data = series::startups(keys);
    let mut ecdf = Vec::new();
    let mut by_n = Vec::new();
    for (k, groups) in keys.iter().zip(&data) {
        let all: Vec<f64> = groups.iter().flat_map(|(_, v)| v.iter().copied()).collect();
        if all.is_empty() {
            continue;
        }
        ecdf.push(Series {
            markers: false,
            ..k.series(series::ecdf(&all, ECDF_POINTS))
        });
        let mut medians = Vec::new();
        let mut whiskers = Vec::new();
        for (n, v) in groups {
            let n = f64::from(*n);
            let q = |p| stats::percentile(v, p);
            if let (Some(p10), Some(p50), Some(p90)) = (q(10.0), q(50.0), q(90.0)) {
                medians.push((n, p50));
                whiskers.push((n, p10, p90));
            }
        }
        by_n.push(Series {
            whiskers,
            ..k.series(medians)
        });
    }
    let panels = vec![
        panel(
            "ECDF, all N pooled",
            AxisSpec::log("start-up (ms)"),
            AxisSpec::linear("fraction of instances started within x"),
            ecdf,
        ),
        panel(
            "median per N, whiskers p10-p90",
            AxisSpec::log(N_AXIS),
            AxisSpec::log("start-up (ms)"),
            by_n,
        ),
    ];
    finish(spec, panels, None, Share { x: false, y: false })
}

fn memory(keys: &[Key<'_>]) -> PlotSpec {
    let title =
        "Memory per instance against N, one definition per panel (mean over the ok instances)";
    let views: [(&str, &str, &'static Metric); 7] = [
        ("PSS: shared pages split among sharers", "PSS", &PSS_KIB),
        ("USS: pages only the instance uses", "USS", &USS_KIB),
        ("RSS: shared pages counted in full", "RSS", &RSS_KIB),
        (
            "cgroup: charged to its own cgroup",
            "cgroup",
            &CGROUP_MEM_KIB,
        ),
        ("host MemAvailable decrease / N", "host", &HOST_AVAIL_KIB),
        (
            "VMM overhead: qemu's own memory",
            "VMM overhead",
            &VMM_OVERHEAD_KIB,
        ),
        ("guest kernel memory", "guest kernel", &GUEST_KERNEL_KIB),
    ];
    let mut spec = spec(
        ("memory", "Memory per instance"),
        title,
        "Each panel is one definition of an instance's memory, from summary.csv (the mean over \
         the ok instances of every repetition at that N), in MiB on a log scale. The views \
         differ by what they count: compare backends within a panel, not across panels. \
         Views only one backend has (a VM's VMM overhead and guest kernel) share a panel, \
         told apart by marker and dashing.",
        &views.map(|v| v.2),
    );
    let mut panels = Vec::new();
    for (ptitle, short, m) in views {
        let mut dropped = Vec::new();
        let series: Vec<Series> = keys
            .iter()
            .map(|k| {
                let pts = series::per_n(k, |r| m.of_summary(Stat::Mean, r).map(mib));
                k.series(series::keep_positive(&k.name, "MiB", pts, &mut dropped))
            })
            .filter(|s| !s.points.is_empty())
            .collect();
        if m.host_noise.is_some() {
            let runs: Vec<&RunData> = keys.iter().map(|k| k.run).collect();
            note_host_noise(&mut spec, m.name, dropped, host_band(&runs));
        } else {
            note_dropped(&mut spec, m.name, dropped);
        }
        let only = if m.backends == Backends::Vm {
            " (VMs)"
        } else {
            ""
        };
        panels.push((
            short.to_string(),
            m.name,
            panel(
                &format!("{ptitle}{only} ({})", m.name),
                AxisSpec::log(N_AXIS),
                AxisSpec::log("MiB per instance"),
                series,
            ),
        ));
    }
    finish(spec, merge_lone(panels), None, Share { x: true, y: true })
}

/// Panels that would hold one line each (views only VMs have) merged into one: their lines
/// keep the backend's colour and get a marker and dashing each, and the view's short name
/// (`labelled`: (short name, metric name, panel)) after the series name, so the legend tells them apart.
/// Fewer than two such panels: unchanged.
fn merge_lone(labelled: Vec<(String, &str, Panel)>) -> Vec<Panel> {
    let lone = |p: &Panel| p.series.len() == 1;
    if labelled.iter().filter(|(_, _, p)| lone(p)).count() < 2 {
        return labelled.into_iter().map(|(_, _, p)| p).collect();
    }
    // Not the plain circle and solid line: those are the backend's own look elsewhere.
    const LOOKS: [(Marker, bool); 4] = [
        (Marker::Triangle, false),
        (Marker::Square, true),
        (Marker::Cross, false),
        (Marker::Triangle, true),
    ];
    let mut out = Vec::new();
    let mut merged: Option<Panel> = None;
    let mut names: Vec<String> = Vec::new();
    for (short, metric, p) in labelled {
        if !lone(&p) {
            out.push(p);
            continue;
        }
        let (marker, dashed) = LOOKS[names.len() % LOOKS.len()];
        let mut series = p.series;
        for s in &mut series {
            s.name = format!("{}: {short}", s.name);
            s.style.marker = marker;
            s.style.dashed = dashed;
        }
        names.push(format!("{short} ({metric})"));
        match &mut merged {
            Some(m) => m.series.extend(series),
            None => merged = Some(Panel { series, ..p }),
        }
    }
    if let Some(mut m) = merged {
        m.title = format!("one backend each: {}", names.join(", "));
        out.push(m);
    }
    out
}

fn memory_total(keys: &[Key<'_>], runs: &[RunData]) -> PlotSpec {
    let title = "Host memory a batch of N instances takes (its MemAvailable decrease) against the \
         host's MemTotal";
    let mut spec = spec(
        ("memory_total", "Host memory against its capacity"),
        title,
        "The host's MemAvailable decrease for a whole batch of N (host_avail_kib x N: the mean \
         over repetitions), in GiB, log-log; the upper dashed line is the host's MemTotal from \
         meta.json, the lower one the host view's noise band (a batch below it cannot be told \
         from what the rest of the host did meanwhile; the claims compare no such batch): \
         16 MiB, or the largest fall below 0 a batch of the run saw, if larger. \
         Only measured batches are drawn; isobench plan extrapolates to the line.",
        &[&HOST_AVAIL_KIB],
    );
    let mut dropped = Vec::new();
    let series: Vec<Series> = keys
        .iter()
        .map(|k| {
            let pts = series::per_n(k, |r| {
                HOST_AVAIL_KIB
                    .of_summary(Stat::Mean, r)
                    .map(|v| gib(v * f64::from(r.n)))
            });
            k.series(series::keep_positive(&k.name, "GiB", pts, &mut dropped))
        })
        .filter(|s| !s.points.is_empty())
        .collect();
    let band = host_band(&runs.iter().collect::<Vec<_>>());
    note_host_noise(&mut spec, "host_avail_kib x N", dropped, band);
    let mut p = panel(
        "host_avail_kib x N, per batch",
        AxisSpec::log(N_AXIS),
        AxisSpec::log("GiB per batch of N"),
        series,
    );
    p.hlines = runs
        .iter()
        .enumerate()
        .filter(|(_, r)| r.meta.mem_total_kib > 0)
        .map(|(i, r)| {
            let g = gib(r.meta.mem_total_kib as f64);
            HLine {
                name: if runs.len() > 1 {
                    format!("{} MemTotal {} GiB", r.label, sig(g))
                } else {
                    format!("host MemTotal {} GiB", sig(g))
                },
                y: g,
                style: Style {
                    colour: crate::chart::palette::REFERENCE,
                    ..Style::of("", i)
                },
            }
        })
        .collect();
    if let Some(band) = band {
        p.hlines.push(HLine {
            name: format!("host noise band {} MiB", whole(mib(band))),
            y: gib(band),
            style: Style {
                colour: crate::chart::palette::NOISE,
                ..Style::of("", 0)
            },
        });
    }
    finish(spec, vec![p], None, Share { x: false, y: false })
}

fn disk(keys: &[Key<'_>]) -> PlotSpec {
    let title = "Disk per instance: private copy-on-write layer, shared base once, full copy";
    let mut spec = spec(
        ("disk", "Disk per instance"),
        title,
        "One row per backend, at the largest N it measured (named in the row): the mean \
         private layer per instance (disk_private_kib), what every instance shares, counted \
         once (disk_shared_kib), and what a full copy of the root filesystem per instance \
         would cost instead (disk_full_copy_kib), in KiB on a log scale.",
        &[&DISK_PRIVATE_KIB, &DISK_SHARED_KIB, &DISK_FULL_COPY_KIB],
    );
    let shapes = [
        ("private layer per instance", Marker::Circle),
        ("shared base, once", Marker::Square),
        ("full copy per instance", Marker::Cross),
    ];
    let mut rows: Vec<String> = Vec::new();
    let mut series: Vec<Series> = Vec::new();
    let mut dropped = Vec::new();
    for k in keys {
        let Some(top) = k
            .run
            .summary
            .iter()
            .filter(|r| k.is(&r.backend, &r.accel) && r.ok > 0)
            .max_by_key(|r| r.n)
        else {
            continue;
        };
        let full: Vec<f64> = k
            .run
            .samples
            .iter()
            .filter(|s| s.ok && s.n == top.n && k.is(&s.backend, &s.accel))
            .filter_map(|s| DISK_FULL_COPY_KIB.of_sample(s))
            .collect();
        let values = [
            DISK_PRIVATE_KIB.of_summary(Stat::Mean, top),
            DISK_SHARED_KIB.of_summary(Stat::Shared, top),
            stats::mean(&full),
        ];
        if values.iter().all(Option::is_none) {
            continue;
        }
        let y = rows.len() as f64;
        rows.push(format!("{}, N={}", k.name, top.n));
        // Rows are numbered from the bottom; they are flipped below so the first is on top.
        for ((what, marker), v) in shapes.iter().zip(values) {
            let Some(v) = v else { continue };
            if v <= 0.0 {
                dropped.push(format!("{} {what} ({} KiB)", k.name, sig(v)));
                continue;
            }
            series.push(Series {
                name: what.to_string(),
                style: Style {
                    marker: *marker,
                    ..k.style
                },
                points: vec![(v, y)],
                whiskers: Vec::new(),
                line: false,
                markers: true,
            });
        }
    }
    note_dropped(&mut spec, "disk", dropped);
    let top_row = rows.len().saturating_sub(1) as f64;
    for s in &mut series {
        for p in &mut s.points {
            p.1 = top_row - p.1;
        }
    }
    rows.reverse();
    let mut p = panel(
        "KiB per instance (shared: once for all instances)",
        AxisSpec::log("KiB"),
        AxisSpec::linear(""),
        series,
    );
    p.categories = Some(rows);
    // The legend explains the shapes; the row labels name the backends and their colours.
    let legend = shapes
        .iter()
        .map(|(what, marker)| LegendEntry {
            name: what.to_string(),
            style: Style {
                colour: crate::chart::palette::REFERENCE,
                marker: *marker,
                dashed: false,
            },
            line: false,
            marker: true,
        })
        .collect();
    finish(spec, vec![p], Some(legend), Share { x: false, y: false })
}

fn idle_cpu(keys: &[Key<'_>]) -> PlotSpec {
    let title = "Idle CPU per instance (idle_cpu_ms_per_s): host CPU burnt while idle";
    let spec = spec(
        ("idle_cpu", "Idle CPU"),
        title,
        "Host CPU time per second of the idle window, per instance (mean over the ok \
         instances at that N), in ms of CPU per s of wall time on a linear scale: 0 is drawn \
         as 0. 1000 ms/s is one core kept busy.",
        &[&IDLE_CPU_MS_PER_S],
    );
    let series: Vec<Series> = keys
        .iter()
        .map(|k| {
            k.series(series::per_n(k, |r| {
                IDLE_CPU_MS_PER_S.of_summary(Stat::Mean, r)
            }))
        })
        .filter(|s| !s.points.is_empty())
        .collect();
    let p = panel(
        "mean per instance",
        AxisSpec::log(N_AXIS),
        AxisSpec::linear("host CPU (ms per s), per instance"),
        series,
    );
    finish(spec, vec![p], None, Share { x: false, y: false })
}

fn kernel(keys: &[Key<'_>]) -> PlotSpec {
    let title = "Kernel redundancy (kernel.csv): kernels running, their memory for the batch \
         and per instance, kernel threads, KSM";
    let mut spec = spec(
        ("kernel", "Kernel redundancy"),
        title,
        "From kernel.csv, one row per batch, the mean over repetitions at each N. Distinct \
         kernels counts boot_ids across the host and the instances. Kernel memory of the \
         batch (kernel_kib_batch) is what the batch's kernels cost together: N guest kernels \
         for VMs, the host kernel's growth (Slab, kernel stacks, page tables) for backends \
         that share it; the dashed grey line is the host view's noise band, below which the \
         growth of the host kernel cannot be told from the rest of the host's. Kernel memory \
         per instance is the same divided by N (kernel_kib_per_kernel). Kernel threads added \
         is host_kthreads_with - host_kthreads_before + guest_kthreads_total; KSM is the \
         memory of the batch KSM found identical (only for runs with ksm = true). Backends \
         that share the host kernel coincide on the first and fourth panels (1 kernel, no \
         threads added): their lines lie on top of each other.",
        &[
            &DISTINCT_KERNELS,
            &KERNEL_KIB_BATCH,
            &KERNEL_KIB_PER_KERNEL,
            &HOST_KTHREADS_BEFORE,
            &HOST_KTHREADS_WITH,
            &GUEST_KTHREADS_TOTAL,
            &KTHREADS_ADDED,
            &KSM_SHARED_KIB,
        ],
    );
    let lin = |desc: &str| AxisSpec::linear(desc);
    let build = |f: &dyn Fn(&crate::results::record::KernelRow) -> Option<f64>,
                 log: bool,
                 dropped: &mut Vec<String>| {
        keys.iter()
            .map(|k| {
                let pts = series::kernel_per_n(k, f);
                let pts = if log {
                    series::keep_positive(&k.name, "MiB", pts, dropped)
                } else {
                    pts
                };
                k.series(pts)
            })
            .filter(|s| !s.points.is_empty())
            .collect::<Vec<_>>()
    };
    let mut dropped_batch = Vec::new();
    let mut dropped_mem = Vec::new();
    let mut dropped_ksm = Vec::new();
    let mut batch = panel(
        "kernel memory of the batch (kernel_kib_batch)",
        AxisSpec::log(N_AXIS),
        AxisSpec::log("MiB per batch of N"),
        build(
            &|k| KERNEL_KIB_BATCH.of_batch(k).map(mib),
            true,
            &mut dropped_batch,
        ),
    );
    let kernel_band = keys
        .iter()
        .filter_map(|k| crate::report::claims::kernel_band(&KERNEL_KIB_BATCH, false, &k.run.kernel))
        .reduce(f64::max);
    if let Some(band) = kernel_band {
        batch.hlines.push(HLine {
            name: format!("host noise band {} MiB", whole(mib(band))),
            y: mib(band),
            style: Style {
                colour: crate::chart::palette::NOISE,
                ..Style::of("", 0)
            },
        });
    }
    let panels = vec![
        panel(
            "distinct kernels of the batch (distinct_kernels)",
            AxisSpec::log(N_AXIS),
            lin("kernels running"),
            build(&|k| DISTINCT_KERNELS.of_batch(k), false, &mut Vec::new()),
        ),
        batch,
        panel(
            "kernel memory per instance (kernel_kib_per_kernel)",
            AxisSpec::log(N_AXIS),
            AxisSpec::log("MiB per instance"),
            build(
                &|k| KERNEL_KIB_PER_KERNEL.of_batch(k).map(mib),
                true,
                &mut dropped_mem,
            ),
        ),
        panel(
            "kernel threads added by the batch (kthreads_added)",
            AxisSpec::log(N_AXIS),
            lin("kernel threads"),
            build(&|k| KTHREADS_ADDED.of_batch(k), false, &mut Vec::new()),
        ),
        panel(
            "memory KSM found identical (ksm_shared_kib)",
            AxisSpec::log(N_AXIS),
            AxisSpec::log("MiB per batch"),
            build(
                &|k| KSM_SHARED_KIB.of_batch(k).map(mib),
                true,
                &mut dropped_ksm,
            ),
        ),
    ];
    note_dropped(&mut spec, "kernel_kib_batch", dropped_batch);
    if !dropped_mem.is_empty() {
        note_dropped(&mut spec, "kernel_kib_per_kernel", dropped_mem);
        spec.notes.push(
            "kernel memory below 0: the host kernel's memory shrank while the batch ran (it \
             freed caches and slabs of its own): for backends that share the host kernel a \
             small batch is within the host's noise."
                .into(),
        );
    }
    note_dropped(&mut spec, "ksm_shared_kib", dropped_ksm);
    finish(spec, panels, None, Share { x: true, y: false })
}
