//! The settings table against what is written elsewhere by hand: `docs/settings.md` (its
//! table is generated from the rows) and the TypeScript `SnifferConfig` of the npm package.
//! (The webhook's validators are checked in `webhook/tests/settings_table.rs`; the engine's
//! `Settings` in `engine/src/config.rs`'s `table_and_struct_agree`.)

use std::path::PathBuf;

use tcp_sniffer_settings::{docs, DefaultValue, Kind, TABLE};

fn repo_file(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(rel)
}

const REGENERATE: &str = "UPDATE_DOCS=1 cargo test -p tcp-sniffer-settings --test consistency";

/// `docs/settings.md` holds the generated table between its markers, byte for byte.
/// With `UPDATE_DOCS=1` the test rewrites it instead.
#[test]
fn docs_settings_md_is_generated_from_the_table() {
    let path = repo_file("docs/settings.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let (Some(a), Some(b)) = (text.find(docs::BEGIN), text.find(docs::END)) else {
        panic!(
            "{} has lost its markers {:?} … {:?}; put them back around the settings table and run: {REGENERATE}",
            path.display(),
            docs::BEGIN,
            docs::END
        );
    };
    let start = a + docs::BEGIN.len();
    let want = format!("\n{}", docs::markdown_table());
    if text[start..b] == want {
        return;
    }
    if std::env::var_os("UPDATE_DOCS").is_some() {
        let new = format!("{}{want}{}", &text[..start], &text[b..]);
        std::fs::write(&path, new).unwrap();
        return;
    }
    panic!(
        "docs/settings.md's table differs from the settings table (settings/src/table.rs). Regenerate it with:\n    {REGENERATE}"
    );
}

/// The row of `docs/settings.md`'s table for `key` (a sidecar-only row by its env var).
fn docs_row<'a>(text: &'a str, row: &tcp_sniffer_settings::Setting) -> &'a str {
    let cell = if row.library {
        format!("| `{}` |", row.key)
    } else {
        format!("| (sidecar only) | `{}` |", row.env.unwrap_or(row.key))
    };
    text.lines()
        .find(|l| l.starts_with(&cell))
        .unwrap_or_else(|| panic!("docs/settings.md has no table row for {}", row.key))
}

/// Every rule between settings in the table (`conflicts`, `needs`) is written in
/// `docs/settings.md` on the rows of both settings it involves, so whoever reads either row
/// learns it. Checked on the file, whatever the generator does.
#[test]
fn docs_settings_md_lists_conflicts_and_needs() {
    let text = std::fs::read_to_string(repo_file("docs/settings.md")).unwrap();
    let mut rules = 0;
    for row in TABLE {
        for other in row.conflicts {
            let o = tcp_sniffer_settings::table::by_key(other).unwrap();
            for (a, b) in [(row, o), (o, row)] {
                let line = docs_row(&text, a);
                assert!(
                    line.contains("cannot be given with") && line.contains(&format!("`{}`", b.key)),
                    "docs/settings.md's row for {} does not say it cannot be given with {}; regenerate: {REGENERATE}\n{line}",
                    a.key,
                    b.key
                );
            }
            rules += 1;
        }
        if let Some(n) = row.needs {
            let line = docs_row(&text, row);
            assert!(
                line.contains(&format!("`{}` needs `{}`", n.when, n.key)) && line.contains(n.why),
                "docs/settings.md's row for {} does not say that {:?} needs {}; regenerate: {REGENERATE}\n{line}",
                row.key,
                n.when,
                n.key
            );
            let needed = tcp_sniffer_settings::table::by_key(n.key).unwrap();
            let line = docs_row(&text, needed);
            assert!(
                line.contains(&format!("needed by `{} {}`", row.key, n.when)),
                "docs/settings.md's row for {} does not say {} {} needs it; regenerate: {REGENERATE}\n{line}",
                n.key,
                row.key,
                n.when
            );
            rules += 1;
        }
    }
    // readFile's two conflicts and outputFormat=otlp's need of outputUrl, at least.
    assert!(rules >= 3, "only {rules} rules in the table");
}

/// The body of `export interface NAME { … }` in `ts`.
fn interface_body<'a>(ts: &'a str, name: &str) -> &'a str {
    let head = format!("export interface {name} {{");
    let start = ts
        .find(&head)
        .unwrap_or_else(|| panic!("no {head} in types.ts"))
        + head.len();
    let mut depth = 1;
    for (i, c) in ts[start..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return &ts[start..start + i];
                }
            }
            _ => {}
        }
    }
    panic!("unterminated interface {name}");
}

/// `(key, optional, type)` of each member at the top level of an interface body (comments
/// skipped).
fn members(body: &str) -> Vec<(String, bool, String)> {
    let mut out = Vec::new();
    let mut in_comment = false;
    for line in body.lines().map(str::trim) {
        if in_comment {
            in_comment = !line.contains("*/");
            continue;
        }
        if line.starts_with("/*") {
            in_comment = !line.contains("*/");
            continue;
        }
        if line.starts_with("//") || line.is_empty() {
            continue;
        }
        let Some((name, ty)) = line.split_once(':') else {
            continue;
        };
        let (name, optional) = match name.strip_suffix('?') {
            Some(n) => (n, true),
            None => (name, false),
        };
        if name.chars().all(|c| c.is_ascii_alphanumeric()) {
            out.push((
                name.to_string(),
                optional,
                ty.trim().trim_end_matches(';').to_string(),
            ));
        }
    }
    out
}

/// `SnifferConfig` in `node-addon/ts/types.ts` has exactly the table's keys (plus the
/// JavaScript-only `onHttpMessage`), required only where the table requires, with a type
/// that fits the row's kind (and exactly the row's choices for a choice).
#[test]
fn typescript_config_type_matches_the_table() {
    let ts = std::fs::read_to_string(repo_file("node-addon/ts/types.ts")).unwrap();
    let members = members(interface_body(&ts, "SnifferConfig"));
    let mut problems = Vec::new();
    for row in TABLE.iter().filter(|r| r.library) {
        let Some((_, optional, ty)) = members.iter().find(|(k, _, _)| k == row.key) else {
            problems.push(format!("{}: missing from SnifferConfig", row.key));
            continue;
        };
        let required = matches!(row.default, DefaultValue::Required(_));
        if *optional == required {
            problems.push(format!(
                "{}: {} in SnifferConfig, but the table says {}",
                row.key,
                if *optional { "optional" } else { "required" },
                if required { "required" } else { "optional" }
            ));
        }
        let fits = match row.kind {
            Kind::Interface | Kind::Url | Kind::Secret | Kind::Path | Kind::HostPort => {
                ty == "string"
            }
            Kind::Bool => ty == "boolean",
            Kind::Fraction | Kind::Int { .. } => ty == "number",
            Kind::Ports => ty.contains("number[]"),
            Kind::Names(_) => ty.contains("string[]"),
            Kind::Choice(choices) => {
                let mut got: Vec<&str> =
                    ty.split('|').map(|t| t.trim().trim_matches('\'')).collect();
                let mut want = choices.to_vec();
                got.sort_unstable();
                want.sort_unstable();
                got == want
            }
        };
        if !fits {
            problems.push(format!(
                "{}: type {ty} does not fit {:?}",
                row.key, row.kind
            ));
        }
    }
    for (k, _, _) in &members {
        if k != "onHttpMessage" && !TABLE.iter().any(|r| r.key == k) {
            problems.push(format!(
                "{k}: in SnifferConfig but not in the settings table"
            ));
        }
        if TABLE.iter().any(|r| r.key == k && !r.library) {
            problems.push(format!(
                "{k}: in SnifferConfig but a setting of the sidecar only (createSniffer refuses it)"
            ));
        }
    }
    assert!(
        problems.is_empty(),
        "node-addon/ts/types.ts disagrees with settings/src/table.rs:\n  {}",
        problems.join("\n  ")
    );
}
