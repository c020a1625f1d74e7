//! The one palette of every figure isobench draws (the report's plots and the plan's): a
//! backend has the same colour everywhere, so a reader learns it once. Colours are Tableau 10
//! (Tableau's default categorical palette, also matplotlib's `tab10`), chosen because they
//! stay apart for most colour-blind readers and in greyscale print; one per backend isobench
//! has, so no two backends share a colour.

use plotters::style::RGBColor;

/// The colour of `backend` (a scenario backend name, e.g. `container`, `oci-runc`, `vm`).
/// Backends without an assigned colour get one of the remaining Tableau colours by a stable
/// hash of their name, so a new backend keeps its colour from run to run.
pub fn backend(backend: &str) -> RGBColor {
    match backend {
        "process" => RGBColor(127, 127, 127),
        "unshare" => RGBColor(148, 103, 189),
        "container" => RGBColor(31, 119, 180),
        "oci-runc" => RGBColor(44, 160, 44),
        "oci-crun" => RGBColor(23, 190, 207),
        "vm" => RGBColor(214, 39, 40),
        "docker" => RGBColor(255, 127, 14),
        "lxc" => RGBColor(140, 86, 75),
        "oci-runsc" => RGBColor(188, 189, 34),
        g if g.starts_with("gvisor") => RGBColor(227, 119, 194),
        other => {
            // Tableau 20's light shades of the ten: a backend without a colour of its own
            // still differs from every named one.
            const REST: [RGBColor; 6] = [
                RGBColor(174, 199, 232),
                RGBColor(255, 187, 120),
                RGBColor(152, 223, 138),
                RGBColor(255, 152, 150),
                RGBColor(197, 176, 213),
                RGBColor(196, 156, 148),
            ];
            let h: usize = other.bytes().map(usize::from).sum();
            REST[h % REST.len()]
        }
    }
}

/// Reference lines that belong to no backend (the host's memory, a budget): dark grey.
pub const REFERENCE: RGBColor = RGBColor(60, 60, 60);

/// A noise band drawn as a reference line: light grey, below the data.
pub const NOISE: RGBColor = RGBColor(170, 170, 170);

/// The backends with a colour of their own, in the README's order (its palette table is
/// checked against this list by a test).
pub const NAMED: [&str; 10] = [
    "process",
    "unshare",
    "container",
    "oci-runc",
    "oci-crun",
    "vm",
    "docker",
    "lxc",
    "gvisor",
    "oci-runsc",
];

/// `#rrggbb`, as the README and HTML write a colour.
pub fn hex(c: RGBColor) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_backends_have_distinct_colours_and_others_are_stable() {
        let mut seen: Vec<String> = NAMED.iter().map(|b| hex(backend(b))).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), NAMED.len(), "{seen:?}");
        assert_eq!(backend("my-runtime"), backend("my-runtime"));
        assert!(
            !seen.contains(&hex(backend("my-runtime"))),
            "a stranger looks like no one"
        );
        assert_eq!(hex(backend("container")), "#1f77b4");
        assert!(!seen.contains(&hex(REFERENCE)));
    }

    #[test]
    fn the_readme_palette_table_is_this_palette() {
        let readme = include_str!("../../README.md");
        let rows: Vec<(String, String)> = readme
            .lines()
            .filter_map(|l| {
                let cells: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
                let [b, c] = cells.as_slice() else {
                    return None;
                };
                let b = b.strip_prefix('`')?.strip_suffix('`')?;
                let hex = c.split('`').nth(1)?;
                hex.starts_with('#')
                    .then(|| (b.to_string(), hex.to_string()))
            })
            .collect();
        let want: Vec<(String, String)> = NAMED
            .iter()
            .map(|b| (b.to_string(), hex(backend(b))))
            .collect();
        assert_eq!(rows, want, "README's backend colour table");
    }
}
