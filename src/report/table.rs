//! The plain-text summary table printed at the end of a run.

use crate::record::SummaryRow;

const HEADER: [&str; 10] = [
    "backend",
    "accel",
    "N",
    "ok/count",
    "startup p50 (ms)",
    "p90 (ms)",
    "p99 (ms)",
    "mean ± sd (ms)",
    "teardown p50 (ms)",
    "all-ready (ms)",
];

/// Names and labels read left-aligned; numbers right-aligned so their digits line up.
const RIGHT_ALIGNED: [bool; 10] = [false, false, true, true, true, true, true, true, true, true];

const GAP: &str = "  ";

/// The table printed at the end of a run: one line per SummaryRow.
/// Columns: backend, accel, N, ok/count, startup p50, p90, p99, mean ± sd (ms), teardown p50
/// (ms), all-ready (ms). Plain text aligned with spaces, a header line and a rule; "-" for
/// missing values. Every line, the rule included, has the same width in characters.
pub fn render_summary(rows: &[SummaryRow]) -> String {
    let cells: Vec<[String; 10]> = rows.iter().map(row_cells).collect();
    // Widths count chars, not bytes: "±" is two bytes, and `format!` pads by chars.
    let mut widths = HEADER.map(|h| h.chars().count());
    for row in &cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }

    let mut out = String::new();
    push_line(&mut out, &HEADER.map(String::from), &widths);
    let rule = widths.map(|w| "-".repeat(w));
    push_line(&mut out, &rule, &widths);
    for row in &cells {
        push_line(&mut out, row, &widths);
    }
    out
}

fn push_line(out: &mut String, cells: &[String; 10], widths: &[usize; 10]) {
    let mut line = String::new();
    for (i, (cell, &w)) in cells.iter().zip(widths).enumerate() {
        if i > 0 {
            line.push_str(GAP);
        }
        if RIGHT_ALIGNED[i] {
            line.push_str(&format!("{cell:>w$}"));
        } else {
            line.push_str(&format!("{cell:<w$}"));
        }
    }
    out.push_str(&line);
    out.push('\n');
}

fn row_cells(r: &SummaryRow) -> [String; 10] {
    let mean_sd = match (r.startup_ms_mean, r.startup_ms_sd) {
        (Some(m), Some(s)) => format!("{} ± {}", num(m), num(s)),
        // A single ok sample has a mean but no sd; showing the mean alone says exactly that.
        (Some(m), None) => num(m),
        (None, _) => "-".to_string(),
    };
    [
        r.backend.clone(),
        r.accel.clone(),
        r.n.to_string(),
        format!("{}/{}", r.ok, r.count),
        opt(r.startup_ms_p50),
        opt(r.startup_ms_p90),
        opt(r.startup_ms_p99),
        mean_sd,
        opt(r.teardown_ms_p50),
        opt(r.batch_ready_ms_mean),
    ]
}

fn opt(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_string(), num)
}

/// 2 decimals under 100, 1 under 1000, none above: about three significant figures, which is
/// all that run-to-run noise in start-up times leaves meaningful. The thresholds sit where
/// rounding would carry into the next decade (99.995 prints as 100.0, not 100.00).
fn num(x: f64) -> String {
    let a = x.abs();
    if a < 99.995 {
        format!("{x:.2}")
    } else if a < 999.95 {
        format!("{x:.1}")
    } else {
        format!("{x:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows() -> Vec<SummaryRow> {
        vec![
            SummaryRow {
                backend: "container".into(),
                accel: "none".into(),
                n: 1,
                count: 10,
                ok: 10,
                startup_ms_mean: Some(4.567),
                startup_ms_sd: Some(0.5),
                startup_ms_p50: Some(4.5),
                startup_ms_p90: Some(5.25),
                startup_ms_p99: Some(5.9),
                startup_ms_min: Some(4.0),
                startup_ms_max: Some(6.0),
                teardown_ms_mean: Some(2.0),
                teardown_ms_p50: Some(1.75),
                batch_ready_ms_mean: None,
            },
            SummaryRow {
                backend: "qemu-microvm".into(),
                accel: "kvm".into(),
                n: 100,
                count: 100,
                ok: 97,
                startup_ms_mean: Some(1234.4),
                startup_ms_sd: None,
                startup_ms_p50: Some(250.04),
                startup_ms_p90: None,
                startup_ms_p99: Some(12345.6),
                teardown_ms_p50: None,
                batch_ready_ms_mean: Some(4321.0),
                ..SummaryRow::default()
            },
        ]
    }

    #[test]
    fn two_rows_render_aligned() {
        let text = render_summary(&rows());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4, "{text}");
        assert!(lines[0].starts_with("backend"));
        assert!(lines[1].chars().all(|c| c == '-' || c == ' '));
        assert!(lines[2].starts_with("container "));
        assert!(lines[3].starts_with("qemu-microvm "));
        let width = lines[0].chars().count();
        assert!(lines.iter().all(|l| l.chars().count() == width), "{text}");

        // Each column starts where its header does.
        let col = |line: &str, header: &str| -> usize {
            let byte = line.find(header).unwrap();
            line[..byte].chars().count()
        };
        let accel = col(lines[0], "accel");
        assert_eq!(col(lines[2], "none"), accel);
        assert_eq!(col(lines[3], "kvm"), accel);

        assert!(lines[2].contains("10/10"));
        assert!(lines[3].contains("97/100"));
        assert!(lines[2].contains("4.57 ± 0.50"));
        assert!(lines[3].contains("1234"));
        assert!(lines[3].contains("250.0"));
        assert!(lines[3].contains("12346"));
        assert!(lines[3].contains("4321"));
        // None prints as a lone "-".
        assert!(lines[2].split_whitespace().any(|c| c == "-"));
        assert!(lines[3].split_whitespace().filter(|c| *c == "-").count() >= 2);
    }

    #[test]
    fn empty_renders_header_and_rule() {
        let text = render_summary(&[]);
        assert_eq!(text.lines().count(), 2);
        assert!(text.contains("all-ready (ms)"));
    }

    #[test]
    fn number_precision() {
        assert_eq!(num(0.0), "0.00");
        assert_eq!(num(12.345_6), "12.35");
        assert_eq!(num(99.994), "99.99");
        assert_eq!(num(99.996), "100.0");
        assert_eq!(num(123.45), "123.5");
        assert_eq!(num(999.96), "1000");
        assert_eq!(num(1234.5), "1234");
        assert_eq!(num(-5.0), "-5.00");
    }
}
