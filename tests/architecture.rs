//! The tree's shape holds: every top-level module of src/ uses only modules on its own floor
//! or below (the floors are listed in src/lib.rs and drawn in ARCHITECTURE.md), so imports
//! never form a cycle and data flows down. A new module must be given a floor here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// (module, floor): a module may use the modules of its floor and of lower floors only.
const FLOORS: &[(&str, u32)] = &[
    ("text", 1),
    ("stats", 1),
    ("deadline", 1),
    ("fault", 1),
    ("exit", 1),
    // tests/common/skip.rs, which src/lib.rs includes for unit tests only.
    ("skip", 1),
    ("results", 2),
    ("host", 3),
    ("security", 3),
    ("agent", 4),
    ("scenario", 5),
    ("image", 5),
    ("measure", 5),
    ("backend", 6),
    ("runner", 7),
    ("chart", 8),
    ("report", 8),
    ("compare", 8),
    ("plan", 8),
    ("cli", 9),
    ("commands", 9),
];

fn floor(m: &str) -> u32 {
    FLOORS
        .iter()
        .find(|(n, _)| *n == m)
        .map(|(_, f)| *f)
        .unwrap_or_else(|| panic!("module `{m}` has no floor in tests/architecture.rs"))
}

/// The top-level module a file of src/ belongs to.
fn module_of(rel: &Path) -> Option<String> {
    let first = rel.components().next()?.as_os_str().to_str()?;
    let m = first.strip_suffix(".rs").unwrap_or(first);
    (m != "lib" && m != "main").then(|| m.to_string())
}

/// Every `crate::X` a file names outside its `#[cfg(test)] mod tests` (tests may reach
/// anywhere), with the multi-name `use crate::{a, b}` form too.
fn uses(text: &str) -> BTreeSet<String> {
    let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or(text);
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if !name.is_empty() {
                    out.insert(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                out.insert(name);
            }
        }
    }
    out
}

fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

#[test]
fn every_module_uses_only_its_floor_and_below() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&src, &mut files);
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut upward = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        let Some(m) = module_of(rel) else { continue };
        let text = std::fs::read_to_string(f).unwrap();
        for used in uses(&text) {
            if used == m {
                continue;
            }
            if floor(&used) > floor(&m) {
                upward.push(format!(
                    "{} (floor {}) uses {used} (floor {})",
                    rel.display(),
                    floor(&m),
                    floor(&used)
                ));
            }
            edges.entry(m.clone()).or_default().insert(used);
        }
    }
    assert!(
        upward.is_empty(),
        "imports that point up a floor:\n{}",
        upward.join("\n")
    );
    // Every module on the list exists, so the list cannot rot: a file, a folder, or a module
    // src/lib.rs declares (inline, or from elsewhere by #[path]).
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    for (m, _) in FLOORS {
        let declared =
            lib.contains(&format!("pub mod {m} {{")) || lib.contains(&format!("\nmod {m};"));
        let exists = src.join(format!("{m}.rs")).exists() || src.join(m).is_dir() || declared;
        assert!(exists, "FLOORS names {m}, which src/ does not have");
    }
    // Modules of one floor may use each other, but never in a circle.
    if let Some(cycle) = find_cycle(&edges) {
        panic!("import cycle: {}", cycle.join(" -> "));
    }
    eprintln!("module graph (each uses only its floor and below, no cycle):");
    for (m, used) in &edges {
        eprintln!(
            "  {m} -> {}",
            used.iter().cloned().collect::<Vec<_>>().join(", ")
        );
    }
}

/// A cycle of the graph, as the modules along it, if there is one (depth-first search).
fn find_cycle(edges: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        m: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == m) {
            let mut c = path[i..].to_vec();
            c.push(m.to_string());
            return Some(c);
        }
        if done.contains(m) {
            return None;
        }
        path.push(m.to_string());
        for n in edges.get(m).into_iter().flatten() {
            if let Some(c) = visit(n, edges, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(m.to_string());
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|m| visit(m, edges, &mut Vec::new(), &mut done))
}

#[test]
fn a_cycle_is_found_and_a_chain_is_not() {
    let mk = |pairs: &[(&str, &str)]| {
        let mut e: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in pairs {
            e.entry(a.to_string()).or_default().insert(b.to_string());
        }
        e
    };
    assert_eq!(find_cycle(&mk(&[("a", "b"), ("b", "c")])), None);
    assert_eq!(
        find_cycle(&mk(&[("a", "b"), ("b", "c"), ("c", "a")])),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
}

#[test]
fn the_use_parser_sees_groups_and_paths_but_not_tests() {
    let text = "use crate::{host, results::record::Sample};\nfn f() { crate::runner::run(); }\n\
                #[cfg(test)]\nmod tests { use crate::commands; }\n";
    let u = uses(text);
    assert_eq!(
        u.into_iter().collect::<Vec<_>>(),
        ["host", "results", "runner"]
    );
}

#[test]
fn completions_and_the_man_page_come_from_the_command_definitions() {
    let bin = env!("CARGO_BIN_EXE_isobench");
    let out = std::process::Command::new(bin)
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for sub in [
        "run",
        "clean",
        "report",
        "compare",
        "plan",
        "doctor",
        "--overwrite",
    ] {
        assert!(text.contains(sub), "bash completion lacks {sub}");
    }
    let man = std::process::Command::new(bin).arg("man").output().unwrap();
    assert!(man.status.success());
    let page = String::from_utf8_lossy(&man.stdout);
    assert!(
        page.contains(".TH isobench 1"),
        "{}",
        &page[..page.len().min(200)]
    );
    let bad = std::process::Command::new(bin)
        .args(["completions", "cmd.exe"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "an unknown shell is bad input");
}
