//! The plan's plot: each backend's measured batches and fitted memory line against N, the
//! host's memory budget, and where each line meets it; with an until run, where it stopped.
//! Log-log, because one host holds tens of VMs and tens of thousands of containers. The legend
//! carries the answer: instances per host for each backend, and what bounds it.

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{BackendPlan, Plan};

/// Draws a [`Plan`]'s memory view.
pub struct PlanFigure<'a>(pub &'a Plan);

const MIB: f64 = 1024.0;

impl PlanFigure<'_> {
    /// (x range, y range in MiB) covering the points, the lines up to their max N, and the
    /// budgets.
    fn ranges(&self) -> ((f64, f64), (f64, f64)) {
        let p = self.0;
        let budget = p.host.mem_budget_kib() / MIB;
        let mut x_max: f64 = 10.0;
        let mut y_min: f64 = budget;
        let mut y_max: f64 = budget;
        for b in &p.backends {
            for bt in &b.model.batches {
                x_max = x_max.max(f64::from(bt.alive));
                if let Some(y) = bt.host_mem_kib.filter(|y| *y > 0.0) {
                    y_min = y_min.min(y / MIB);
                    y_max = y_max.max(y / MIB);
                }
            }
            if let Some(n) = b.capacity.max_n {
                x_max = x_max.max(n as f64);
            }
            if let Some(f) = &b.model.memory.fit {
                let y1 = f.at(1.0) / MIB;
                if y1 > 0.0 {
                    y_min = y_min.min(y1);
                }
            }
        }
        for u in &p.until {
            x_max = x_max.max(f64::from(u.reached_n));
            y_min = y_min.min(u.budget_kib / MIB);
        }
        let (y0, y1) = (y_min / 2.0, y_max * 2.0);
        // Room below the data for the legend (lower right, about 18 px a row of a plot about
        // 480 px high): the lines rise to the upper right, so the bottom stays clear of them.
        let rows = 1 + p.backends.len() + p.until.len();
        let share = ((rows * 18 + 16) as f64 / 480.0).min(0.5);
        let decades = (y1 / y0).log10();
        let y0 = y0 / 10f64.powf(decades * share / (1.0 - share));
        ((1.0, x_max * 2.0), (y0, y1))
    }
}

/// The answer for one backend as the legend says it: "334 per host (memory-bound,
/// extrapolated; ±2 SE 330-338)", with the hosts W workloads need when asked.
pub fn answer(b: &BackendPlan) -> String {
    let c = &b.capacity;
    let mut s = match (c.max_n, c.binding) {
        (Some(n), Some(r)) => format!(
            "{n} per host ({}-bound{}",
            r.name(),
            if c.extrapolated { ", extrapolated" } else { "" }
        ),
        _ => "no bound (no cost per instance".to_string(),
    };
    if let (Some(super::capacity::Range { low, high: Some(h) }), Some(_)) = (c.range, c.max_n) {
        s.push_str(&format!("; ±2 SE {low}-{h}"));
    }
    s.push(')');
    if let Some(p) = &b.placement {
        let size = crate::text::format::sig(p.workload_mem_kib / MIB);
        s.push_str(&match p.hosts {
            Some(h) => format!("; {h} host(s) for {} x {size} MiB", p.workloads),
            None => format!("; a {size} MiB workload fits on no host"),
        });
    }
    s
}

impl crate::chart::plot::Figure for PlanFigure<'_> {
    fn size(&self) -> (u32, u32) {
        (960, 600)
    }

    fn draw<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let p = self.0;
        area.fill(&WHITE)?;
        let ((x0, x1), (y0, y1)) = self.ranges();
        let hidden = p
            .backends
            .iter()
            .flat_map(|b| &b.model.batches)
            .filter(|bt| bt.host_mem_kib.is_some_and(|y| y <= 0.0))
            .count();
        let caption = if hidden > 0 {
            format!(
                "Memory of N instances (host MemAvailable decrease); {hidden} batch(es) at or below 0 not shown on the log scale"
            )
        } else {
            "Instances per host: memory of N instances (host MemAvailable decrease) against the budget"
                .to_string()
        };
        let mut chart = ChartBuilder::on(area)
            .caption(caption, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("N instances alive together (log scale)")
            .y_desc("total memory, MiB (log scale)")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| {
                if *y >= 1.0 {
                    format!("{y:.0}")
                } else {
                    format!("{y}")
                }
            })
            .label_style(("sans-serif", 13))
            .axis_desc_style(("sans-serif", 14))
            .draw()?;

        let budget = p.host.mem_budget_kib() / MIB;
        chart
            .draw_series(LineSeries::new(
                [(x0, budget), (x1, budget)],
                BLACK.stroke_width(2),
            ))?
            .label(format!(
                "budget {:.1} GiB: {:.1} GiB less {:.0}% headroom; triangles: max N by memory",
                budget / 1024.0,
                p.host.mem_kib / MIB / 1024.0,
                p.host.headroom * 100.0
            ))
            .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.stroke_width(2)));

        for b in &p.backends {
            // The report's palette: a backend has the same colour in the plan as in the report.
            let color = crate::chart::palette::backend(&b.model.backend);
            let name = format!("{} ({})", b.model.backend, b.model.accel);
            let pts: Vec<(f64, f64)> = b
                .model
                .batches
                .iter()
                .filter_map(|bt| {
                    bt.host_mem_kib
                        .filter(|y| *y > 0.0)
                        .map(|y| (f64::from(bt.alive), y / MIB))
                })
                .collect();
            let points = chart.draw_series(
                pts.iter()
                    .map(|&(x, y)| Circle::new((x, y), 4, color.filled())),
            )?;
            let Some(f) = &b.model.memory.fit else {
                // No line to name: the points carry the backend's entry.
                points
                    .label(format!("{name}: {}", answer(b)))
                    .legend(move |(x, y)| Circle::new((x + 10, y), 4, color.filled()));
                continue;
            };
            let end = b.capacity.max_n.map_or(x1, |n| (n as f64).max(1.0)).min(x1);
            let steps = 200;
            let line: Vec<(f64, f64)> = (0..=steps)
                .map(|k| x0 * (end / x0).powf(f64::from(k) / f64::from(steps)))
                .map(|x| (x, f.at(x) / MIB))
                .filter(|(_, y)| *y > 0.0)
                .collect();
            chart
                .draw_series(LineSeries::new(line, color.stroke_width(2)))?
                .label(format!(
                    "{name}: {} MiB each; {}",
                    crate::text::format::sig(f.slope / MIB),
                    answer(b)
                ))
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], color.stroke_width(2))
                });
            if let Some(n) = b.capacity.memory.n {
                chart.draw_series(std::iter::once(TriangleMarker::new(
                    (n.max(1) as f64, budget),
                    7,
                    color.filled(),
                )))?;
            }
        }

        for u in &p.until {
            // The until run's backend's colour, drawn thick: its measured range at its budget.
            let color = crate::chart::palette::backend(&u.backend);
            let y = u.budget_kib / MIB;
            let lo = f64::from(u.measured_low.max(1));
            let hi = f64::from(u.measured_high.max(1));
            chart
                .draw_series(LineSeries::new([(lo, y), (hi, y)], color.stroke_width(5)))?
                .label(format!(
                    "until {}: max N measured {}-{} at its budget {:.1} GiB; cross: predicted {}",
                    u.backend,
                    u.measured_low,
                    u.measured_high,
                    y / 1024.0,
                    u.predicted_n
                ))
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 20, y)], color.stroke_width(5))
                });
            chart.draw_series(std::iter::once(Cross::new(
                ((u.predicted_n.max(1)) as f64, y),
                7,
                color.stroke_width(2),
            )))?;
        }

        chart
            .configure_series_labels()
            // Lines rise from lower left to upper right, where the budget and max N are:
            // the lower right is where the legend hides nothing.
            .position(SeriesLabelPosition::LowerRight)
            .label_font(("sans-serif", 13))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()?;
        Ok(())
    }
}
