//! report.md: the [`Document`] as GitHub-flavoured Markdown, plots as PNG images (with a link
//! to the SVG), tables padded so the file also reads well as plain text.

use crate::report::document::{Block, Document, Table};

/// The document as Markdown.
pub fn render(doc: &Document) -> String {
    let mut out = format!("# {}\n\n", doc.title);
    for b in &doc.blocks {
        match b {
            Block::Heading(level, text) => {
                out.push_str(&format!("{} {}\n\n", "#".repeat(usize::from(*level)), text));
            }
            Block::Para(text) => out.push_str(&format!("{text}\n\n")),
            Block::List(items) => {
                for i in items {
                    out.push_str(&format!("- {i}\n"));
                }
                out.push('\n');
            }
            Block::Table(t) => {
                out.push_str(&table(t));
                out.push('\n');
            }
            Block::Plot {
                title,
                svg_path,
                png_path,
                ..
            } => out.push_str(&format!(
                "![{}]({png_path})\n\n[SVG]({svg_path})\n\n",
                title.replace(['[', ']'], "")
            )),
            Block::Code { summary, text } => {
                let fence = if text.contains("```") { "~~~~" } else { "```" };
                out.push_str(&format!("{summary}:\n\n{fence}toml\n{text}"));
                if !text.ends_with('\n') {
                    out.push('\n');
                }
                out.push_str(&format!("{fence}\n\n"));
            }
        }
    }
    out
}

/// A Markdown table with every column padded to its widest cell.
pub fn table(t: &Table) -> String {
    let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
    let header: Vec<String> = t.header.iter().map(|h| cell(h)).collect();
    let rows: Vec<Vec<String>> = t
        .rows
        .iter()
        .map(|r| r.iter().map(|c| cell(c)).collect())
        .collect();
    // Widths count chars: "±" or "≤" are several bytes, and `format!` pads by chars.
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count().max(3)).collect();
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let right = |i: usize| t.right.get(i).copied().unwrap_or(false);
    let line = |cells: &[String]| {
        let parts: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let w = widths[i];
                if right(i) {
                    format!("{c:>w$}")
                } else {
                    format!("{c:<w$}")
                }
            })
            .collect();
        format!("| {} |\n", parts.join(" | "))
    };
    let mut out = line(&header);
    // The delimiter row: a colon at the right end of a cell right-aligns the column.
    let rule: String = widths
        .iter()
        .enumerate()
        .map(|(i, w)| {
            if right(i) {
                format!("{}:|", "-".repeat(w + 1))
            } else {
                format!("{}|", "-".repeat(w + 2))
            }
        })
        .collect();
    out.push_str(&format!("|{rule}\n"));
    for r in &rows {
        out.push_str(&line(r));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_are_aligned_and_escape_pipes() {
        let t = Table {
            header: vec!["claim".into(), "ratio".into()],
            right: vec![false, true],
            rows: vec![
                vec!["a | b".into(), "12.3x".into()],
                vec!["long claim text".into(), "1x".into()],
            ],
        };
        let s = table(&t);
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines.len(), 4, "{s}");
        assert!(
            lines
                .iter()
                .all(|l| l.chars().count() == lines[0].chars().count()),
            "{s}"
        );
        assert!(
            lines[1].ends_with("-:|") && lines[1].starts_with("|--"),
            "right-aligned column: {s}"
        );
        assert!(lines[2].contains("a \\| b"), "{s}");
        assert!(lines[3].contains("|    1x |"), "{s}");
    }
}
