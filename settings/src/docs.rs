//! Text derived from the table: the settings table of `docs/settings.md` and the pieces of
//! `--help`. `docs/settings.md` holds [`markdown_table`] between [`BEGIN`] and [`END`]; a test
//! (`settings/tests/consistency.rs`) regenerates it and fails when the file differs.
//!
//! The rules between settings (a row's `conflicts` and `needs`, checked by
//! [`crate::rules::check`]) are written from the rows too, on both settings of each rule, so
//! a reader of either row sees them ([`rules`]).

use crate::rules::conflict_reason;
use crate::table::{by_key, DefaultValue, Kind, Setting, TABLE};
use crate::value::int_range;
use crate::Surface;

/// Marks the start of the generated table in `docs/settings.md`.
pub const BEGIN: &str =
    "<!-- settings table: generated from settings/src/table.rs; do not edit by hand -->";
/// Marks its end.
pub const END: &str = "<!-- end of settings table -->";

/// What `kind` accepts, in Markdown (backticks around literal values).
pub fn accepted(kind: Kind) -> String {
    match kind {
        Kind::Interface => {
            "an interface name (1–15 characters, no `/`, `:` or spaces), or `any`".into()
        }
        Kind::Ports => {
            "1–65535, comma-separated in env/CLI (an array in the library), no duplicates, at least one; or `any`".into()
        }
        Kind::Url => "an `http://` or `https://` URL".into(),
        Kind::Secret => "a string without line breaks".into(),
        Kind::Bool => "boolean (`true`/`false`/`1`/`0`/`yes`/`no`)".into(),
        Kind::Fraction => "0 < rate ≤ 1".into(),
        Kind::Int { min, max } => {
            if max >= u32::MAX as u64 {
                format!("≥ {min}")
            } else {
                format!("{min}–{max}")
            }
        }
        Kind::Choice(c) => c
            .iter()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(", "),
        Kind::Names(k) => format!(
            "{}, comma-separated (an array in the library), case-insensitive, **added** to the defaults; `none` as the first entry drops the defaults",
            k.what()
        ),
        Kind::Path => "a pcap or pcapng file".into(),
        Kind::HostPort => "`HOST:PORT` (e.g. `0.0.0.0:9464`, `[::]:9464`), or `off`".into(),
    }
}

/// The default, in Markdown.
pub fn default(s: &Setting) -> String {
    match s.default {
        DefaultValue::Value(v) => format!("`{v}`"),
        DefaultValue::List(l) => format!("`{}`", l.join(", ")),
        DefaultValue::Unset(text) => text.into(),
        DefaultValue::Required(_) => "(required)".into(),
        DefaultValue::PerSurface { cli, env, library } => {
            format!("CLI: `{cli}`; sidecar: `{env}`; library: `{library}`")
        }
    }
}

/// The CLI column: `-p, --ports`, `(env only)` or `—`.
fn flag_cell(s: &Setting) -> String {
    match (s.flag, s.env) {
        (Some(f), _) => match f.short {
            Some(c) => format!("`-{c}, --{}`", f.long),
            None => format!("`--{}`", f.long),
        },
        (None, Some(_)) => "(env only)".into(),
        (None, None) => "—".into(),
    }
}

/// The rules that involve `s`, in Markdown, each setting named by `name` (in backticks):
/// the settings it cannot be given with (its own `conflicts` and the rows that list it), what
/// it needs with which value, and which setting needs it. Empty when none.
pub fn rules(s: &Setting, name: impl Fn(&Setting) -> String) -> Vec<String> {
    let named = |key: &str| by_key(key).map_or_else(|| key.to_string(), &name);
    let mut out = Vec::new();
    if !s.conflicts.is_empty() {
        let others: Vec<String> = s
            .conflicts
            .iter()
            .map(|k| format!("`{}`", named(k)))
            .collect();
        out.push(format!(
            "cannot be given with {}{}",
            others.join(" or "),
            conflict_reason(s)
        ));
    }
    for row in TABLE.iter().filter(|r| r.conflicts.contains(&s.key)) {
        out.push(format!(
            "cannot be given with `{}`{}",
            name(row),
            conflict_reason(row)
        ));
    }
    if let Some(n) = s.needs {
        out.push(format!(
            "`{}` needs `{}`: `{}` {}",
            n.when,
            named(n.key),
            n.when,
            n.why
        ));
    }
    for row in TABLE
        .iter()
        .filter(|r| r.needs.is_some_and(|n| n.key == s.key))
    {
        if let Some(n) = row.needs {
            out.push(format!("needed by `{} {}`", name(row), n.when));
        }
    }
    out
}

/// The settings table of `docs/settings.md` (without the markers).
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| config key | env var | CLI flag | default | accepted | rules |\n|---|---|---|---|---|---|\n",
    );
    for s in TABLE {
        let env = s.env.map_or("—".to_string(), |e| format!("`{e}`"));
        let key = if s.library {
            format!("`{}`", s.key)
        } else {
            "(sidecar only)".to_string()
        };
        let rules = rules(s, |r| r.key.to_string());
        let rules = if rules.is_empty() {
            "—".to_string()
        } else {
            rules.join("; ")
        };
        out.push_str(&format!(
            "| {key} | {env} | {} | {} | {}; {} | {} |\n",
            flag_cell(s),
            default(s),
            accepted(s.kind),
            s.help.replace('|', "\\|"),
            rules.replace('|', "\\|"),
        ));
    }
    out
}

/// Markdown to plain text for a terminal: drops backticks and `**`.
pub fn plain(md: &str) -> String {
    md.replace("**", "").replace('`', "")
}

/// The help of one flag for `--help`: what it does, what it accepts, its default.
pub fn flag_help(s: &Setting) -> String {
    let accepted = match s.kind {
        Kind::Int { min, max } => int_range(min, max),
        k => accepted(k),
    };
    let default = match s.default {
        DefaultValue::PerSurface { cli, .. } => format!("Default: `{cli}`."),
        DefaultValue::Required(_) => "Required.".into(),
        _ => format!("Default: {}.", default(s)),
    };
    let mut help = format!("{}. Accepts {accepted}. {default}", s.help);
    for rule in rules(s, |r| r.name_on(Surface::Cli)) {
        help.push_str(&format!(" {}{}.", rule[..1].to_uppercase(), &rule[1..]));
    }
    plain(&help)
}

/// The value name shown in `--help` (`--ports LIST`).
pub fn value_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Interface => "NAME",
        Kind::Ports | Kind::Names(_) => "LIST",
        Kind::Url => "URL",
        Kind::Secret => "TOKEN",
        Kind::Bool => "BOOL",
        Kind::Fraction => "RATE",
        Kind::Int { .. } => "N",
        Kind::Choice(_) => "WORD",
        Kind::Path => "FILE",
        Kind::HostPort => "HOST:PORT",
    }
}
