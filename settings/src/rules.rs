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

use crate::table::{by_key, Setting, ALLOW_INSECURE_OUTPUT_URL, OUTPUT_URL, TABLE};
use crate::value::{url_is_insecure, url_label};
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

/// Why a row's conflicts cannot be given with it, for the message and the docs (empty, or
/// ` (…)` with a leading space).
pub(crate) fn conflict_reason(row: &Setting) -> &'static str {
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

/// The output URL rule, the same for every surface and for the webhook: `url` must be
/// `https://`, or `http://` to a loopback host (`localhost`, `127.0.0.0/8`, `::1`); any other
/// `http://` URL sends the captured traffic and the token in clear and is accepted only when
/// `allowInsecureOutputUrl` is true. `allow` is that setting as given (`None`: not given); it
/// then defaults to true on the command line and in the library (the caller logs
/// [`insecure_output_url_warning`]) unless `production` (`NODE_ENV=production`), and to false
/// in the sidecar (the env surface).
///
/// `offer_allow` says whether whoever meets the error can set `allowInsecureOutputUrl`: the
/// webhook checks what it injects with this rule (`Surface::Env`, `allow: None`) but never
/// injects `ALLOW_INSECURE_OUTPUT_URL`, so its error does not suggest it.
///
/// The error never shows more of the URL than [`url_label`] (it may hold credentials).
///
/// ```
/// use tcp_sniffer_settings::{rules, Surface};
/// assert!(rules::output_url(Surface::Env, "https://c.example/in", None, false, true).is_ok());
/// assert!(rules::output_url(Surface::Env, "http://127.0.0.1:9/in", None, false, true).is_ok());
/// let e = rules::output_url(Surface::Env, "http://u:pw@c.example/in", None, false, true);
/// assert_eq!(
///     e.unwrap_err().to_string(),
///     "invalid setting OUTPUT_URL: http://c.example is plain http to a host that is not loopback, which sends the captured traffic and the token in clear (the sidecar refuses it); use https://, or set ALLOW_INSECURE_OUTPUT_URL=true to accept it"
/// );
/// ```
pub fn output_url(
    surface: Surface,
    url: &str,
    allow: Option<bool>,
    production: bool,
    offer_allow: bool,
) -> Result<(), Invalid> {
    let allowed = allow.unwrap_or(surface != Surface::Env && !production);
    if allowed || !url_is_insecure(url) {
        return Ok(());
    }
    let allow_name = ALLOW_INSECURE_OUTPUT_URL.name_on(surface);
    let why = if allow == Some(false) {
        format!("{allow_name} is false")
    } else if surface == Surface::Env {
        "the sidecar refuses it".to_string()
    } else {
        "NODE_ENV=production".to_string()
    };
    let fix = if offer_allow {
        format!("use https://, or set {allow_name}=true to accept it")
    } else {
        "use https://".to_string()
    };
    Err(Invalid {
        name: OUTPUT_URL.name_on(surface),
        reason: format!(
            "{} is plain http to a host that is not loopback, which sends the captured traffic and the token in clear ({why}); {fix}",
            url_label(url)
        ),
    })
}

/// The warning to log when an accepted output URL is plain http to a host that is not
/// loopback (see [`output_url`]); `None` when it is not.
pub fn insecure_output_url_warning(url: &str) -> Option<String> {
    url_is_insecure(url).then(|| {
        format!(
            "the output URL {} is plain http to a host that is not loopback: captured traffic and the token cross the network in clear; use https://",
            url_label(url)
        )
    })
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
    fn output_url_rule_per_surface() {
        let remote = "http://user:pw-secret@collector:8080/in?k=qs-secret";
        for ok in [
            "https://collector:8080/in",
            "http://127.0.0.1:9/",
            "http://localhost:9/",
            "http://[::1]:9/",
        ] {
            for surface in [Surface::Library, Surface::Env, Surface::Cli] {
                assert!(
                    output_url(surface, ok, Some(false), true, true).is_ok(),
                    "{ok}"
                );
            }
            assert_eq!(insecure_output_url_warning(ok), None);
        }
        // Defaults: accepted (with a warning) on the command line and in the library, refused
        // by the sidecar and under NODE_ENV=production.
        assert!(output_url(Surface::Cli, remote, None, false, true).is_ok());
        assert!(output_url(Surface::Library, remote, None, false, true).is_ok());
        assert!(output_url(Surface::Env, remote, Some(true), false, true).is_ok());
        let w = insecure_output_url_warning(remote).unwrap();
        assert!(
            w.contains("http://collector:8080") && !w.contains("secret"),
            "{w}"
        );
        let cases = [
            (Surface::Env, None, false, "OUTPUT_URL", "(the sidecar refuses it); use https://, or set ALLOW_INSECURE_OUTPUT_URL=true to accept it"),
            (Surface::Library, None, true, "outputUrl", "(NODE_ENV=production); use https://, or set allowInsecureOutputUrl=true to accept it"),
            (Surface::Cli, Some(false), false, "--output-url", "(--allow-insecure-output-url is false); use https://, or set --allow-insecure-output-url=true to accept it"),
        ];
        for (surface, allow, production, name, tail) in cases {
            let e = output_url(surface, remote, allow, production, true).unwrap_err();
            assert_eq!(e.name, name);
            assert_eq!(
                e.reason,
                format!("http://collector:8080 is plain http to a host that is not loopback, which sends the captured traffic and the token in clear {tail}")
            );
        }
        // The webhook cannot set the override, so it is not offered.
        let e = output_url(Surface::Env, remote, None, false, false).unwrap_err();
        assert!(
            e.reason.ends_with("(the sidecar refuses it); use https://"),
            "{e}"
        );
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
