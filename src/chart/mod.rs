//! A chart of the report: a title, one or more panels of series, and one legend, drawn by
//! plotters onto any backend (see [`crate::chart::plot::Figure`]).
//!
//! The legend gets its own column at the right instead of plotters' in-chart series labels, which sit on top of the data.

pub mod axis;
pub mod palette;
pub mod plot;
pub mod series;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::chart::axis::Axis;
use crate::chart::plot::Figure;

/// Marker shapes, one per run, so runs stay apart where colours (per backend) coincide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    Circle,
    Triangle,
    Square,
    Cross,
}

/// How one series looks: colour by backend, marker and dashing by run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Style {
    pub colour: RGBColor,
    pub marker: Marker,
    pub dashed: bool,
}

impl Style {
    /// The style of `backend` in the run at position `run` of the report.
    pub fn of(backend: &str, run: usize) -> Style {
        const MARKERS: [Marker; 4] = [
            Marker::Circle,
            Marker::Triangle,
            Marker::Square,
            Marker::Cross,
        ];
        Style {
            colour: backend_colour(backend),
            marker: MARKERS[run % MARKERS.len()],
            dashed: run % 2 == 1,
        }
    }
}

/// One colour per backend in every plot of report and plan: see [`palette`].
pub fn backend_colour(backend: &str) -> RGBColor {
    palette::backend(backend)
}

/// A named series of points, in data units.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub style: Style,
    pub points: Vec<(f64, f64)>,
    /// Vertical bars (x, low, high), e.g. p10..p90 around a median.
    pub whiskers: Vec<(f64, f64, f64)>,
    pub line: bool,
    pub markers: bool,
}

/// A horizontal reference line, e.g. the host's memory.
#[derive(Debug, Clone, PartialEq)]
pub struct HLine {
    pub name: String,
    pub y: f64,
    pub style: Style,
}

/// How an axis is scaled and described.
#[derive(Debug, Clone, PartialEq)]
pub struct AxisSpec {
    /// Axis title with its unit, e.g. "instances N (log scale)".
    pub desc: String,
    pub log: bool,
    /// A linear axis starts at 0 at the latest.
    pub zero: bool,
}

impl AxisSpec {
    pub fn log(desc: &str) -> AxisSpec {
        AxisSpec {
            desc: format!("{desc}, log scale"),
            log: true,
            zero: false,
        }
    }

    pub fn linear(desc: &str) -> AxisSpec {
        AxisSpec {
            desc: desc.into(),
            log: false,
            zero: true,
        }
    }
}

/// One plot area: axes, series, reference lines.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    pub title: String,
    pub x: AxisSpec,
    pub y: AxisSpec,
    pub series: Vec<Series>,
    pub hlines: Vec<HLine>,
    /// Names of the rows of a dot plot: y = 0, 1, ... label these instead of numbers.
    pub categories: Option<Vec<String>>,
    /// Values the axes must show besides the data: panels of one figure share their ranges.
    pub x_include: Vec<f64>,
    pub y_include: Vec<f64>,
}

impl Panel {
    /// True when at least one point can be drawn on this panel's axes.
    pub fn has_data(&self) -> bool {
        self.axes().is_some()
    }

    fn axes(&self) -> Option<(Axis, Axis)> {
        let (xs, ys) = (self.xs(), self.ys());
        let x = Axis::fit(
            xs.chain(self.x_include.iter().copied()),
            self.x.log,
            self.x.zero,
        )?;
        // Points must be drawable on both axes at once, not each axis on its own.
        self.series
            .iter()
            .flat_map(|s| &s.points)
            .find(|(px, py)| x.to_plot(*px).is_some() && self.y_ok(*py))?;
        let y = match &self.categories {
            Some(c) => Axis {
                log: false,
                lo: -0.6,
                hi: c.len() as f64 - 0.4,
                ticks: (0..c.len()).map(|i| i as f64).collect(),
                minor: Vec::new(),
            },
            None => Axis::fit(
                ys.chain(self.hlines.iter().map(|h| h.y))
                    .chain(self.y_include.iter().copied()),
                self.y.log,
                self.y.zero,
            )?,
        };
        Some((x, y))
    }

    /// Every x value of the panel's series.
    pub fn xs(&self) -> impl Iterator<Item = f64> + '_ {
        self.series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0))
    }

    /// Every y value of the panel's series and whiskers.
    pub fn ys(&self) -> impl Iterator<Item = f64> + '_ {
        self.series.iter().flat_map(|s| {
            s.points
                .iter()
                .map(|p| p.1)
                .chain(s.whiskers.iter().flat_map(|w| [w.1, w.2]))
        })
    }

    fn y_ok(&self, y: f64) -> bool {
        y.is_finite() && (!self.y.log || y > 0.0)
    }

    fn draw<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        let Some((xa, ya)) = self.axes() else {
            return Ok(());
        };
        let y_label_width = match &self.categories {
            Some(c) => 20 + 7 * c.iter().map(|s| s.chars().count()).max().unwrap_or(4) as u32,
            None => 70,
        };
        let mut chart = ChartBuilder::on(area)
            .caption(&self.title, ("sans-serif", 15))
            .margin(10)
            .margin_right(24)
            .x_label_area_size(48)
            .y_label_area_size(y_label_width)
            .build_cartesian_2d(xa.clone(), ya.clone())?;
        let xf = |v: &f64| xa.label(*v);
        let yf = |v: &f64| match &self.categories {
            Some(c) => c.get(v.round() as usize).cloned().unwrap_or_default(),
            None => ya.label(*v),
        };
        chart
            .configure_mesh()
            .x_desc(&self.x.desc)
            .y_desc(if self.categories.is_some() {
                ""
            } else {
                &self.y.desc
            })
            .x_label_formatter(&xf)
            .y_label_formatter(&yf)
            .label_style(("sans-serif", 12))
            .axis_desc_style(("sans-serif", 13))
            .bold_line_style(RGBColor(205, 205, 205))
            .light_line_style(RGBColor(240, 240, 240))
            .draw()?;

        let to = |(x, y): (f64, f64)| Some((xa.to_plot(x)?, ya.to_plot(y)?));
        for h in &self.hlines {
            if let Some(y) = ya.to_plot(h.y) {
                let style = ShapeStyle::from(&h.style.colour).stroke_width(2);
                chart.draw_series(DashedLineSeries::new([(xa.lo, y), (xa.hi, y)], 8, 5, style))?;
            }
        }
        for s in &self.series {
            let pts: Vec<(f64, f64)> = s.points.iter().filter_map(|p| to(*p)).collect();
            let stroke = ShapeStyle::from(&s.style.colour).stroke_width(2);
            for &(x, lo, hi) in &s.whiskers {
                let (Some(a), Some(b)) = (to((x, lo)), to((x, hi))) else {
                    continue;
                };
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![a, b],
                    s.style.colour.stroke_width(1),
                )))?;
                for end in [a, b] {
                    chart.draw_series(std::iter::once(
                        EmptyElement::at(end)
                            + PathElement::new(
                                vec![(-4, 0), (4, 0)],
                                s.style.colour.stroke_width(1),
                            ),
                    ))?;
                }
            }
            if s.line && pts.len() > 1 {
                if s.style.dashed {
                    chart.draw_series(DashedLineSeries::new(pts.clone(), 7, 4, stroke))?;
                } else {
                    chart.draw_series(LineSeries::new(pts.clone(), stroke))?;
                }
            }
            if s.markers {
                let fill = s.style.colour.filled();
                let it = pts.into_iter();
                // One element type per series: plotters' boxed elements would need a 'static
                // backend, and the SVG backend borrows its output string.
                match s.style.marker {
                    Marker::Circle => chart.draw_series(it.map(|p| Circle::new(p, 4, fill)))?,
                    Marker::Triangle => {
                        chart.draw_series(it.map(|p| TriangleMarker::new(p, 5, fill)))?
                    }
                    // Hollow, and larger than the others, so a marker on the same spot shows
                    // through it.
                    Marker::Square => chart.draw_series(it.map(|p| {
                        EmptyElement::at(p) + Rectangle::new([(-6, -6), (6, 6)], stroke)
                    }))?,
                    Marker::Cross => chart.draw_series(it.map(|p| Cross::new(p, 5, stroke)))?,
                };
            }
        }
        Ok(())
    }
}

/// A legend line: a series' or reference line's name and look.
#[derive(Debug, Clone, PartialEq)]
pub struct LegendEntry {
    pub name: String,
    pub style: Style,
    pub line: bool,
    pub marker: bool,
}

/// A whole figure: title, panels, one legend for all panels.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub title: String,
    pub panels: Vec<Panel>,
    pub legend: Vec<LegendEntry>,
}

const WIDTH: u32 = 1200;
/// Grids are wider, so their two columns of panels keep room beside the legend.
const GRID_WIDTH: u32 = 1360;
/// Height of one line of the title (20 px type) and of the space around the title.
const TITLE_LINE_H: u32 = 26;
const TITLE_PAD: u32 = 18;
/// DejaVu Sans's mean advance at 20 px, a little generous: a title wraps before it is cut.
const TITLE_CHAR_W: u32 = 11;
const LEGEND_W: u32 = 250;
const ROW_H: u32 = 400;

impl Chart {
    /// Panels side by side up to this many; a 2-column grid beyond. The legend is always a
    /// column at the right.
    const ROW_MAX: usize = 2;

    /// The title in lines that fit the figure's width, broken between words.
    pub fn title_lines(&self) -> Vec<String> {
        let width = self.width() - 32;
        wrap(&self.title, (width / TITLE_CHAR_W) as usize)
    }

    fn title_h(&self) -> u32 {
        TITLE_PAD + TITLE_LINE_H * self.title_lines().len() as u32
    }

    fn width(&self) -> u32 {
        if self.rows() > 1 { GRID_WIDTH } else { WIDTH }
    }

    fn rows(&self) -> usize {
        if self.panels.len() > Self::ROW_MAX {
            self.panels.len().div_ceil(2)
        } else {
            1
        }
    }
}

impl Figure for Chart {
    fn size(&self) -> (u32, u32) {
        if self.rows() > 1 {
            (GRID_WIDTH, self.title_h() + ROW_H * self.rows() as u32)
        } else {
            (WIDTH, self.title_h() + 480)
        }
    }

    fn draw<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
        area.fill(&WHITE)?;
        let (top, body) = area.split_vertically(self.title_h());
        for (i, line) in self.title_lines().iter().enumerate() {
            top.draw(&Text::new(
                line.as_str(),
                (16, 12 + TITLE_LINE_H as i32 * i as i32),
                ("sans-serif", 20).into_font().color(&BLACK),
            ))?;
        }
        let (plots, legend) = body.split_horizontally(self.size().0 - LEGEND_W);
        let cells = if self.rows() > 1 {
            plots.split_evenly((self.rows(), 2))
        } else {
            plots.split_evenly((1, self.panels.len().max(1)))
        };
        for (p, cell) in self.panels.iter().zip(&cells) {
            p.draw(cell)?;
        }
        draw_legend(&legend, &self.legend)
    }
}

/// `text` broken between words into lines of at most `max` characters (a longer word gets
/// a line of its own).
pub fn wrap(text: &str, max: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    for word in text.split_whitespace() {
        if !cur.is_empty() && cur.chars().count() + 1 + word.chars().count() > max {
            lines.push(std::mem::take(&mut cur));
        }
        if !cur.is_empty() {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    if !cur.is_empty() || lines.is_empty() {
        lines.push(cur);
    }
    lines
}

fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[LegendEntry],
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let x0 = 20;
    let mut y = 50;
    for e in entries {
        let stroke = ShapeStyle::from(&e.style.colour).stroke_width(2);
        if e.line {
            let path = [(x0, y), (x0 + 36, y)];
            if e.style.dashed {
                area.draw(&PathElement::new(vec![path[0], (x0 + 12, y)], stroke))?;
                area.draw(&PathElement::new(vec![(x0 + 22, y), path[1]], stroke))?;
            } else {
                area.draw(&PathElement::new(path.to_vec(), stroke))?;
            }
        }
        if e.marker {
            let c = (x0 + 18, y);
            let fill = e.style.colour.filled();
            match e.style.marker {
                Marker::Circle => area.draw(&Circle::new(c, 4, fill))?,
                Marker::Triangle => area.draw(&TriangleMarker::new(c, 5, fill))?,
                Marker::Square => area.draw(&Rectangle::new(
                    [(c.0 - 6, c.1 - 6), (c.0 + 6, c.1 + 6)],
                    stroke,
                ))?,
                Marker::Cross => area.draw(&Cross::new(c, 5, stroke))?,
            }
        }
        area.draw(&Text::new(
            e.name.as_str(),
            (x0 + 46, y - 7),
            ("sans-serif", 14).into_font().color(&BLACK),
        ))?;
        y += 24;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_wrap_between_words_and_keep_every_word() {
        let t = "Host memory taken by a batch of N instances (the MemAvailable decrease) against the host's MemTotal";
        let lines = wrap(t, 40);
        assert!(lines.len() > 1, "{lines:?}");
        assert!(lines.iter().all(|l| l.chars().count() <= 40), "{lines:?}");
        assert_eq!(lines.join(" "), t);
        assert_eq!(wrap("short", 40), vec!["short"]);
        assert_eq!(wrap("", 40), vec![""]);
        let c = Chart {
            title: t.repeat(2),
            panels: Vec::new(),
            legend: Vec::new(),
        };
        let lines = c.title_lines();
        assert!(lines.len() >= 2);
        assert!(
            lines
                .iter()
                .all(|l| l.chars().count() as u32 * TITLE_CHAR_W <= WIDTH - 32),
            "every line fits the figure: {lines:?}"
        );
    }
}
