//! Whether BASE and NEW ran the same scenario, from the scenario text each run recorded in
//! its meta.json. A ratio of two runs of different scenarios (other N, other limits, another
//! workload) measures the scenario change, not the change the user made, so `compare` refuses
//! it unless told to go on.
//!
//! The texts are compared as TOML values, key by key: comments, layout and key order do not
//! count, and neither does `description` (prose). A key written out with its default value in
//! one file and left out in the other does count: the recorded text is all a run keeps, and
//! validating it again (to fill in defaults) would need the image paths of the host it ran on.

use std::collections::BTreeMap;

/// Keys whose value does not change what is measured.
const IGNORED: &[&str] = &["description"];

/// What comparing the two recorded scenarios found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScenarioCheck {
    /// The same scenario, key by key.
    Same,
    /// Keys that differ, each as "repetitions: 15 in BASE, 12 in NEW".
    Differ(Vec<String>),
    /// It cannot be told, and why ("BASE's meta.json records no scenario").
    Unknown(Unreadable),
}

/// Why a run's recorded scenario cannot be compared; `run` is `BASE` or `NEW`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unreadable {
    #[error("{run}'s meta.json records no scenario")]
    Missing { run: &'static str },
    #[error("{run}'s recorded scenario is not valid TOML")]
    NotToml { run: &'static str },
}

/// Compares the scenario texts of BASE and NEW.
pub fn check(base: &str, new: &str) -> ScenarioCheck {
    let parse = |run: &'static str, text: &str| -> Result<BTreeMap<String, String>, Unreadable> {
        if text.trim().is_empty() {
            return Err(Unreadable::Missing { run });
        }
        let table: toml::Table = text.parse().map_err(|_| Unreadable::NotToml { run })?;
        let mut flat = BTreeMap::new();
        flatten("", &table, &mut flat);
        Ok(flat)
    };
    let (b, n) = match (parse("BASE", base), parse("NEW", new)) {
        (Ok(b), Ok(n)) => (b, n),
        (Err(e), _) | (_, Err(e)) => return ScenarioCheck::Unknown(e),
    };
    let mut keys: Vec<&String> = b.keys().chain(n.keys()).collect();
    keys.sort();
    keys.dedup();
    let shown = |v: Option<&String>| v.map_or_else(|| "not set".to_string(), String::clone);
    let differences: Vec<String> = keys
        .into_iter()
        .filter(|k| b.get(*k) != n.get(*k))
        .map(|k| {
            format!(
                "{k}: {} in BASE, {} in NEW",
                shown(b.get(k)),
                shown(n.get(k))
            )
        })
        .collect();
    if differences.is_empty() {
        ScenarioCheck::Same
    } else {
        ScenarioCheck::Differ(differences)
    }
}

/// Every value of `table` under its dotted key (`measure.memory`), tables opened, other values
/// (arrays included) as TOML prints them, so `["runc"]` and `[ "runc" ]` are equal.
fn flatten(prefix: &str, table: &toml::Table, out: &mut BTreeMap<String, String>) {
    for (key, value) in table {
        let full = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        if IGNORED.contains(&full.as_str()) {
            continue;
        }
        let shown = match value {
            toml::Value::Table(t) => {
                flatten(&full, t, out);
                continue;
            }
            // `30` and `30.0` are one timeout: Rust prints the float 30.0 as "30".
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            // Single-line and without the original's spacing: the value, not its layout.
            v => v.to_string(),
        };
        out.insert(full, shown);
    }
}

/// The first few differences on one line, and how many more there are: what an error or a
/// warning shows.
pub fn summary(differences: &[String]) -> String {
    const SHOWN: usize = 3;
    let mut s = differences
        .iter()
        .take(SHOWN)
        .cloned()
        .collect::<Vec<_>>()
        .join("; ");
    if differences.len() > SHOWN {
        s.push_str(&format!("; and {} more", differences.len() - SHOWN));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const GATE: &str = include_str!("../../scenarios/gate-oci.toml");

    #[test]
    fn layout_comments_order_and_description_do_not_count() {
        let same = "# another comment\nname = \"gate-oci\"\ndescription = \"other words\"\n\
            image = \"busybox\"\nworkload = \"idle\"\nbackends = [ \"oci\" ]\ncounts = [1]\n\
            repetitions = 15\nparallelism = 1\nwarmup = 1\nready_timeout_s = 30.0\n\
            [measure]\nidle_window_s = 0\nmemory = false\n[oci]\nruntimes = [\"runc\"]\n";
        assert_eq!(check(GATE, same), ScenarioCheck::Same);
        assert_eq!(check(GATE, GATE), ScenarioCheck::Same);
    }

    #[test]
    fn each_differing_key_is_named_with_both_values() {
        let other = GATE
            .replace("repetitions = 15", "repetitions = 12")
            .replace("runtimes = [\"runc\"]", "runtimes = [\"crun\"]")
            .replace("memory = false\n", "");
        let ScenarioCheck::Differ(d) = check(GATE, &other) else {
            panic!("no difference found")
        };
        assert_eq!(
            d,
            [
                "measure.memory: false in BASE, not set in NEW",
                "oci.runtimes: [\"runc\"] in BASE, [\"crun\"] in NEW",
                "repetitions: 15 in BASE, 12 in NEW",
            ]
        );
        assert_eq!(
            summary(&d),
            "measure.memory: false in BASE, not set in NEW; oci.runtimes: [\"runc\"] in BASE, \
             [\"crun\"] in NEW; repetitions: 15 in BASE, 12 in NEW"
        );
        let many: Vec<String> = (0..5).map(|i| format!("k{i}")).collect();
        assert_eq!(summary(&many), "k0; k1; k2; and 2 more");
    }

    #[test]
    fn a_run_without_a_recorded_scenario_cannot_be_checked() {
        assert_eq!(
            check("", GATE),
            ScenarioCheck::Unknown(Unreadable::Missing { run: "BASE" })
        );
        assert_eq!(
            Unreadable::Missing { run: "BASE" }.to_string(),
            "BASE's meta.json records no scenario"
        );
        assert_eq!(
            check(GATE, "name = "),
            ScenarioCheck::Unknown(Unreadable::NotToml { run: "NEW" })
        );
        assert_eq!(
            Unreadable::NotToml { run: "NEW" }.to_string(),
            "NEW's recorded scenario is not valid TOML"
        );
    }
}
