//! Aligned plain-text tables: a header line, a rule, one line per row; numbers right-aligned.
//! Every text table isobench prints (run, compare, plan, the isolation tables) goes through
//! [`render`], which lays them out with comfy-table (widths by Unicode display width, so "±"
//! and "µ" line up), in one borderless style: columns two spaces apart, a dashed rule under
//! the header, no trailing spaces.

use comfy_table::{
    CellAlignment, ColumnConstraint, ContentLineStyle, LineStyle, Table, TableStyle,
};

/// Columns one padding space plus one junction space apart; the rule runs under each column
/// and its padding.
const STYLE: TableStyle = TableStyle::new()
    .header_lines(ContentLineStyle::none().junction(' '))
    .header_separator(LineStyle::none().fill('-').junction(' '))
    .content_lines(ContentLineStyle::none().junction(' '));

/// Aligned plain text: a header line, a rule, then one line per row. `right[i]` right-aligns
/// column i (numbers), header included.
pub fn render(header: &[&str], right: &[bool], cells: &[Vec<String>]) -> String {
    let mut t = Table::new();
    t.load_style(STYLE).set_header(header.to_vec());
    for row in cells {
        t.add_row(row.clone());
    }
    let last = header.len().saturating_sub(1);
    for (i, col) in t.column_iter_mut().enumerate() {
        col.set_padding((0, u16::from(i < last)));
        // Never squeezed: the table is as wide as its widest cells (a pipe has no width).
        col.set_constraint(ColumnConstraint::ContentWidth);
        if right.get(i).copied().unwrap_or(false) {
            col.set_cell_alignment(CellAlignment::Right);
        }
    }
    let mut out = t.trim_fmt();
    out.push('\n');
    out
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
    fn columns_align_by_display_width_with_numbers_to_the_right() {
        let t = render(
            &["backend", "ms"],
            &[false, true],
            &[
                vec!["vm".into(), "1.5 ± 0.2".into()],
                vec!["container".into(), "12".into()],
            ],
        );
        assert_eq!(
            t,
            "backend           ms\n\
             ---------- ---------\n\
             vm         1.5 ± 0.2\n\
             container         12\n"
        );
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
