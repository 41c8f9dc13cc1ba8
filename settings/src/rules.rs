//! Rules between settings, read from the table's rows (`conflicts`,
//! `needs`) and checked here for every surface: the engine's validation (so the
//! command line, the sidecar's environment and `createSniffer` refuse the same
//! combinations with the same words) and the webhook (which must never inject a
//! combination the sidecar refuses). The command line also hands the conflicts to clap,
//! which reports them first, with its own wording, exit 2.
//!
//! ```
//! use serde_json::{json, Map};
//! use tcp_sniffer_settings::{rules, Surface};
//! let mut given = Map::new();
//! given.insert("readFile".into(), json!("f.pcap"));
//! given.insert("interface".into(), json!("eth0"));
//! let e = rules::check(Surface::Library, &given).unwrap_err();
//! assert_eq!(e.to_string(), "invalid setting interface: cannot be given with readFile (a file is replayed, nothing is captured live)");
//! ```

use std::fmt;

use serde_json::{Map, Value};

use crate::table::{by_key, Setting, TABLE};
use crate::Surface;

/// A rejected setting, or a combination of settings that cannot work. `Display` is the
/// whole message. (The engine's `ConfigError` is this type.)
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    /// The setting to change, as the user named it (`maxBodySize`, `MAX_BODY_SIZE` or
    /// `--max-body-size`).
    pub name: String,
    /// What is wrong and what is accepted.
    pub reason: String,
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid setting {}: {}", self.name, self.reason)
    }
}

impl std::error::Error for Invalid {}

/// Why a row's conflicts cannot be given with it, for the message.
fn conflict_reason(row: &Setting) -> &'static str {
    match row.key {
        "readFile" => " (a file is replayed, nothing is captured live)",
        _ => "",
    }
}

/// Checks `given` — the values given on `surface`, normalised, by key — against every
/// rule of the table. Defaults count for `needs` rules (a default can need another
/// setting); only given values count for conflicts (a default never conflicts).
pub fn check(surface: Surface, given: &Map<String, Value>) -> Result<(), Invalid> {
    let value = |row: &Setting| -> Value {
        match given.get(row.key) {
            Some(v) => v.clone(),
            None => row.default_on(surface),
        }
    };
    for row in TABLE {
        if given.contains_key(row.key) {
            for other in row.conflicts {
                let Some(o) = by_key(other).filter(|_| given.contains_key(*other)) else {
                    continue;
                };
                return Err(Invalid {
                    name: o.name_on(surface),
                    reason: format!(
                        "cannot be given with {}{}",
                        row.name_on(surface),
                        conflict_reason(row)
                    ),
                });
            }
        }
        if let Some(needs) = row.needs {
            let Some(needed) = by_key(needs.key) else {
                continue;
            };
            if value(row).as_str() == Some(needs.when) && value(needed).is_null() {
                return Err(Invalid {
                    name: row.name_on(surface),
                    reason: format!(
                        "{:?} {}, and {} is not set",
                        needs.when,
                        needs.why,
                        needed.name_on(surface)
                    ),
                });
            }
        }
    }
    Ok(())
}

/// Every pair of settings the table says cannot be given together, as keys.
pub fn conflicting_pairs() -> impl Iterator<Item = (&'static str, &'static str)> {
    TABLE
        .iter()
        .flat_map(|row| row.conflicts.iter().map(move |other| (row.key, *other)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn given(pairs: &[(&str, Value)]) -> Map<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn conflicts_are_refused_on_every_surface() {
        for (a, b) in conflicting_pairs() {
            let g = given(&[(a, json!("x")), (b, json!("y"))]);
            for surface in [Surface::Library, Surface::Env, Surface::Cli] {
                let e = check(surface, &g).unwrap_err();
                let other = by_key(b).unwrap();
                assert_eq!(e.name, other.name_on(surface), "{e}");
                assert!(
                    e.reason
                        .contains(&by_key(a).unwrap().name_on(surface).to_string()),
                    "{e}"
                );
            }
            assert!(check(Surface::Cli, &given(&[(a, json!("x"))])).is_ok());
        }
        assert!(conflicting_pairs().any(|p| p == ("readFile", "interface")));
        assert!(conflicting_pairs().any(|p| p == ("readFile", "captureBackend")));
    }

    #[test]
    fn otlp_needs_an_output_url() {
        let e = check(Surface::Env, &given(&[("outputFormat", json!("otlp"))])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid setting OUTPUT_FORMAT: \"otlp\" sends traces to the output URL (e.g. https://collector:4318/v1/traces), and OUTPUT_URL is not set"
        );
        let e = check(Surface::Cli, &given(&[("outputFormat", json!("otlp"))])).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("invalid setting --output-format:"),
            "{e}"
        );
        assert!(e.reason.contains("--output-url"), "{e}");
        let ok = given(&[
            ("outputFormat", json!("otlp")),
            ("outputUrl", json!("https://c:4318/v1/traces")),
        ]);
        assert!(check(Surface::Library, &ok).is_ok());
        assert!(check(Surface::Library, &given(&[("outputFormat", json!("json"))])).is_ok());
    }
}
