//! # tcp-sniffer-settings
//!
//! The settings of tcp-sniffer, defined once. [`table`] has one row per setting (library
//! key, environment variable, command-line flag, default, accepted values, help); [`value`]
//! has the parsers every surface feeds values through; [`docs`] derives the documentation
//! and `--help` text; [`log`] is the one log line format and the one mapping of log level
//! names.
//!
//! The engine (`tcp-sniffer`) builds its validated `Settings` from these rows, the
//! `tcp-sniffer` binary builds its command line from them, and the webhook validates the
//! values it writes into the sidecar with the same parsers, so the sidecar never receives a
//! value it would refuse. This crate is kept small (serde only) so the webhook can use it
//! without depending on the engine.
//!
//! ```
//! use tcp_sniffer_settings::{table, value::{parse, RawValue}};
//! let row = table::by_env("MAX_BODY_SIZE").unwrap();
//! assert_eq!(row.key, "maxBodySize");
//! assert_eq!(parse(row.kind, &RawValue::Text("1024".into())).unwrap(), 1024);
//! assert!(parse(row.kind, &RawValue::Text("-1".into())).is_err());
//! ```
#![deny(missing_docs)]

pub mod docs;
pub mod log;
pub mod rules;
pub mod table;
pub mod value;

pub use log::LogLevel;
pub use table::{DefaultValue, Flag, Kind, Setting, TABLE};
pub use value::{RawValue, Surface};

impl Setting {
    /// How this setting is named on `surface` (the key, the env var or `--flag`); the key
    /// when it does not exist there.
    pub fn name_on(&self, surface: Surface) -> String {
        match surface {
            Surface::Library => self.key.to_string(),
            Surface::Env => self.env.unwrap_or(self.key).to_string(),
            Surface::Cli => self.long_flag().unwrap_or_else(|| self.key.to_string()),
        }
    }

    /// Whether the setting can be given on `surface`.
    pub fn on(&self, surface: Surface) -> bool {
        match surface {
            Surface::Library => self.library,
            Surface::Env => self.env.is_some(),
            Surface::Cli => self.flag.is_some(),
        }
    }

    /// Parses a value for this setting (see [`value::parse`]).
    pub fn parse(&self, v: &RawValue) -> Result<serde_json::Value, String> {
        value::parse(self.kind, v)
    }

    /// The default on `surface` in normalised JSON form: `null` when unset or required.
    pub fn default_on(&self, surface: Surface) -> serde_json::Value {
        let text = match self.default {
            DefaultValue::Value(v) => v,
            DefaultValue::List(l) => return l.into(),
            DefaultValue::Unset(_) | DefaultValue::Required(_) => return serde_json::Value::Null,
            DefaultValue::PerSurface { cli, env, library } => match surface {
                Surface::Cli => cli,
                Surface::Env => env,
                Surface::Library => library,
            },
        };
        // Every default parses: `defaults_parse` in the tests below checks each row.
        self.parse(&RawValue::Text(text.into()))
            .unwrap_or(serde_json::Value::Null)
    }
}

/// The row named `name` on `surface`.
pub fn find(surface: Surface, name: &str) -> Option<&'static Setting> {
    let row = match surface {
        Surface::Library => table::by_key(name),
        Surface::Env => table::by_env(name),
        Surface::Cli => table::by_flag(name),
    }?;
    row.on(surface).then_some(row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse() {
        for s in TABLE {
            let texts: Vec<&str> = match s.default {
                DefaultValue::Value(v) => vec![v],
                DefaultValue::PerSurface { cli, env, library } => vec![cli, env, library],
                DefaultValue::List(l) => {
                    assert!(matches!(s.kind, Kind::Names(_)), "{}", s.key);
                    l.to_vec()
                }
                _ => vec![],
            };
            for t in texts {
                assert!(s.parse(&RawValue::Text(t.into())).is_ok(), "{}: {t}", s.key);
            }
        }
        assert_eq!(table::MAX_BODY_SIZE.default_on(Surface::Env), 65536);
        assert_eq!(table::STDOUT_BODIES.default_on(Surface::Cli), true);
        assert_eq!(table::STDOUT_BODIES.default_on(Surface::Env), false);
        assert!(table::OUTPUT_URL.default_on(Surface::Cli).is_null());
    }

    #[test]
    fn names_per_surface() {
        let s = find(Surface::Cli, "--max-connections").unwrap();
        assert_eq!(s.name_on(Surface::Env), "MAX_CONCURRENT_CONNECTIONS");
        assert_eq!(s.name_on(Surface::Library), "maxConcurrentConnections");
        assert_eq!(
            table::OUTPUT_URL_AUTH_TOKEN.name_on(Surface::Cli),
            "outputUrlAuthToken"
        );
        assert!(!table::READ_FILE.on(Surface::Env));
    }
}
