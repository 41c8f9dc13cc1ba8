//! Text derived from the table: the settings table of `docs/settings.md` and the pieces of
//! `--help`. `docs/settings.md` holds [`markdown_table`] between [`BEGIN`] and [`END`]; a test
//! (`settings/tests/consistency.rs`) regenerates it and fails when the file differs.

use crate::table::{DefaultValue, Kind, Setting, TABLE};
use crate::value::int_range;

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

/// The settings table of `docs/settings.md` (without the markers).
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| config key | env var | CLI flag | default | accepted |\n|---|---|---|---|---|\n",
    );
    for s in TABLE {
        let env = s.env.map_or("—".to_string(), |e| format!("`{e}`"));
        let key = if s.library {
            format!("`{}`", s.key)
        } else {
            "(sidecar only)".to_string()
        };
        out.push_str(&format!(
            "| {key} | {env} | {} | {} | {}; {} |\n",
            flag_cell(s),
            default(s),
            accepted(s.kind),
            s.help.replace('|', "\\|"),
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
    plain(&format!("{}. Accepts {accepted}. {default}", s.help))
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
