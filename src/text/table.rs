//! Aligned plain-text tables: a header line, a rule, one line per row; numbers right-aligned.
//! Every text table isobench prints (run, compare, plan, the isolation tables) goes through
//! [`render`].

const GAP: &str = "  ";

/// Aligned plain text: a header line, a rule, then one line per row.
pub fn render(header: &[&str], right: &[bool], cells: &[Vec<String>]) -> String {
    // Widths count chars, not bytes: "±" is two bytes, and `format!` pads by chars.
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in cells {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    push_line(
        &mut out,
        &header.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
        &widths,
        right,
    );
    let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
    push_line(&mut out, &rule, &widths, right);
    for row in cells {
        push_line(&mut out, row, &widths, right);
    }
    out
}

fn push_line(out: &mut String, cells: &[String], widths: &[usize], right: &[bool]) {
    let mut line = String::new();
    for (i, (cell, &w)) in cells.iter().zip(widths).enumerate() {
        if i > 0 {
            line.push_str(GAP);
        }
        if right[i] {
            line.push_str(&format!("{cell:>w$}"));
        } else {
            line.push_str(&format!("{cell:<w$}"));
        }
    }
    out.push_str(&line);
    out.push('\n');
}

/// 2 decimals under 100, 1 under 1000, none above: about three significant figures, which is
/// all that run-to-run noise in start-up times leaves meaningful. The thresholds sit where
/// rounding would carry into the next decade (99.995 prints as 100.0, not 100.00).
pub fn num(x: f64) -> String {
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
