//! Drawing plots once for two backends: SVG (inlined into report.html, saved as .svg) and PNG.
//!
//! plotters' `ttf` feature pulls in font-kit, which loads fonts through fontconfig at run time
//! and does not work in our static glibc binary; the `ab_glyph` feature renders text from a
//! font file we register ourselves. The file comes from Debian's fonts-dejavu-core, which
//! scripts/setup.sh installs.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;

/// The font every plot's text is set in (Debian package fonts-dejavu-core).
pub const FONT_PATH: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    #[error(
        "reading the plot font {path}: {source} (install fonts-dejavu-core: scripts/setup.sh does)"
    )]
    Font {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the plot font {0} is not a usable TrueType font")]
    BadFont(PathBuf),
    #[error("drawing {path}: {message}")]
    Draw { path: PathBuf, message: String },
    #[error("reading {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Registers [`FONT_PATH`] as plotters' "sans-serif" once per process.
pub fn ensure_font() -> Result<(), PlotError> {
    /// The outcome kept for the whole process (an io::Error is not Clone: its kind and text).
    #[derive(Debug)]
    enum FontFailure {
        Read(std::io::ErrorKind, String),
        Unusable,
    }
    static DONE: OnceLock<Result<(), FontFailure>> = OnceLock::new();
    let r = DONE.get_or_init(|| {
        let bytes =
            std::fs::read(FONT_PATH).map_err(|e| FontFailure::Read(e.kind(), e.to_string()))?;
        // plotters keeps a &'static reference to the font; it is read once per process.
        let leaked: &'static [u8] = Box::leak(bytes.into_boxed_slice());
        plotters::style::register_font("sans-serif", FontStyle::Normal, leaked)
            .map_err(|_| FontFailure::Unusable)
    });
    match r {
        Ok(()) => Ok(()),
        Err(FontFailure::Unusable) => Err(PlotError::BadFont(FONT_PATH.into())),
        Err(FontFailure::Read(kind, text)) => Err(PlotError::Font {
            path: FONT_PATH.into(),
            source: std::io::Error::new(*kind, text.clone()),
        }),
    }
}

/// A plot that can draw itself onto any plotters backend, so one description yields both the
/// SVG and the PNG.
pub trait Figure {
    /// Size in pixels (the SVG uses the same numbers as its user units).
    fn size(&self) -> (u32, u32) {
        (900, 520)
    }
    fn draw<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
    ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>>;
}

/// What [`render`] wrote.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Rendered {
    pub svg_path: PathBuf,
    pub png_path: PathBuf,
    /// The SVG document, for inlining into HTML.
    #[serde(skip)]
    pub svg: String,
}

/// Draws `fig` into `<dir>/<stem>.svg` and `<dir>/<stem>.png`.
pub fn render(fig: &impl Figure, dir: &Path, stem: &str) -> Result<Rendered, PlotError> {
    ensure_font()?;
    let size = fig.size();
    let svg_path = dir.join(format!("{stem}.svg"));
    let png_path = dir.join(format!("{stem}.png"));
    let draw_err = |path: &Path, e: &dyn std::fmt::Display| PlotError::Draw {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let mut svg = String::new();
    {
        let area = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        fig.draw(&area).map_err(|e| draw_err(&svg_path, &e))?;
        area.present().map_err(|e| draw_err(&svg_path, &e))?;
    }
    std::fs::write(&svg_path, &svg).map_err(|source| PlotError::Io {
        path: svg_path.clone(),
        source,
    })?;
    {
        let area = BitMapBackend::new(&png_path, size).into_drawing_area();
        fig.draw(&area).map_err(|e| draw_err(&png_path, &e))?;
        area.present().map_err(|e| draw_err(&png_path, &e))?;
    }
    Ok(Rendered {
        svg_path,
        png_path,
        svg,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Line;
    impl Figure for Line {
        fn draw<DB: DrawingBackend>(
            &self,
            area: &DrawingArea<DB, Shift>,
        ) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
            area.fill(&WHITE)?;
            let mut chart = ChartBuilder::on(area)
                .caption("a line", ("sans-serif", 20))
                .x_label_area_size(30)
                .y_label_area_size(40)
                .build_cartesian_2d(0f64..10f64, 0f64..10f64)?;
            chart.configure_mesh().x_desc("x (ms)").draw()?;
            chart.draw_series(LineSeries::new((0..10).map(|i| (i as f64, i as f64)), &RED))?;
            Ok(())
        }
    }

    #[test]
    fn one_figure_gives_an_svg_with_text_and_a_png() {
        let dir = std::env::temp_dir().join(format!("isobench-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let r = render(&Line, &dir, "line").unwrap();
        assert!(
            r.svg.starts_with("<svg") && r.svg.contains("a line"),
            "{}",
            &r.svg[..200.min(r.svg.len())]
        );
        let png = std::fs::read(&r.png_path).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        assert!(png.len() > 2000, "a drawn PNG is more than a header");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
