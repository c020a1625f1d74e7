//! report.html: the [`Document`] as one self-contained page. The plots are inline SVG and the
//! style sheet is inline, so the file opens anywhere, offline, with nothing fetched.

use crate::report::document::{Block, Document, Table};

const STYLE: &str = "
body { font-family: 'DejaVu Sans', Helvetica, Arial, sans-serif; margin: 2em auto; max-width: 1240px; color: #222; line-height: 1.4; padding: 0 1em; }
h1 { font-size: 1.6em; border-bottom: 2px solid #444; padding-bottom: .2em; }
h2 { font-size: 1.3em; margin-top: 2em; border-bottom: 1px solid #bbb; }
h3 { font-size: 1.05em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: .6em 0 1.2em; font-size: .86em; }
th, td { border: 1px solid #ccc; padding: .25em .55em; vertical-align: top; }
th { background: #f1f1f1; text-align: left; }
td:first-child { min-width: 9em; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
figure { margin: .5em 0; }
figure svg { width: 100%; height: auto; border: 1px solid #ddd; }
figcaption { font-size: .85em; color: #555; }
ul { font-size: .9em; color: #444; }
pre { background: #f6f6f6; padding: .8em; overflow-x: auto; font-size: .82em; }
";

/// The document as an HTML page.
pub fn render(doc: &Document) -> String {
    let mut out = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        esc(&doc.title),
        esc(&doc.title)
    );
    for b in &doc.blocks {
        match b {
            Block::Heading(level, text) => {
                out.push_str(&format!("<h{level}>{}</h{level}>\n", esc(text)));
            }
            Block::Para(text) => out.push_str(&format!("<p>{}</p>\n", esc(text))),
            Block::List(items) => {
                out.push_str("<ul>\n");
                for i in items {
                    out.push_str(&format!("<li>{}</li>\n", esc(i)));
                }
                out.push_str("</ul>\n");
            }
            Block::Table(t) => out.push_str(&table(t)),
            Block::Plot {
                svg,
                svg_path,
                png_path,
                ..
            } => out.push_str(&format!(
                "<figure>\n{}\n<figcaption>Also as files: <a href=\"{}\">{}</a>, \
                 <a href=\"{}\">{}</a></figcaption>\n</figure>\n",
                strip_xml_declaration(svg),
                esc(svg_path),
                esc(svg_path),
                esc(png_path),
                esc(png_path)
            )),
            Block::Code { summary, text } => out.push_str(&format!(
                "<details><summary>{}</summary><pre>{}</pre></details>\n",
                esc(summary),
                esc(text)
            )),
        }
    }
    out.push_str("</body>\n</html>\n");
    out
}

fn table(t: &Table) -> String {
    let mut out = String::from("<table>\n<tr>");
    for h in &t.header {
        out.push_str(&format!("<th>{}</th>", esc(h)));
    }
    out.push_str("</tr>\n");
    for r in &t.rows {
        out.push_str("<tr>");
        for (i, c) in r.iter().enumerate() {
            if t.right.get(i).copied().unwrap_or(false) {
                out.push_str(&format!("<td class=\"num\">{}</td>", esc(c)));
            } else {
                out.push_str(&format!("<td>{}</td>", esc(c)));
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
    out
}

/// An `<?xml ...?>` line is not allowed inside HTML; plotters does not write one today, but an
/// SVG written by anything else might.
fn strip_xml_declaration(svg: &str) -> &str {
    match svg.strip_prefix("<?xml") {
        Some(rest) => rest
            .split_once("?>")
            .map_or(svg, |(_, body)| body.trim_start()),
        None => svg,
    }
}

/// Escapes text for HTML element content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_svg_inlined() {
        let doc = Document {
            title: "a <b> & c".into(),
            blocks: vec![
                Block::Plot {
                    title: "t".into(),
                    svg_path: "plots/x.svg".into(),
                    png_path: "plots/x.png".into(),
                    svg: "<?xml version=\"1.0\"?>\n<svg viewBox=\"0 0 1 1\"></svg>".into(),
                },
                Block::Table(Table {
                    header: vec!["h".into(), "n".into()],
                    right: vec![false, true],
                    rows: vec![vec!["<x>".into(), "1".into()]],
                }),
            ],
        };
        let h = render(&doc);
        assert!(h.contains("<title>a &lt;b&gt; &amp; c</title>"), "{h}");
        assert!(h.contains("<figure>\n<svg viewBox"), "{h}");
        assert!(!h.contains("<?xml"));
        assert!(
            h.contains("<td>&lt;x&gt;</td><td class=\"num\">1</td>"),
            "{h}"
        );
    }
}
