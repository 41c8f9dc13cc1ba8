//! Settings: one table, one validation, three surfaces.
//!
//! The library's `createSniffer(config)` (camelCase keys), the sidecar's environment
//! (`MAX_BODY_SIZE`) and the command line (`--max-body-size`) all name the same settings.
//! The settings themselves — names on every surface, accepted values, defaults, help — are
//! the rows of the `tcp-sniffer-settings` crate ([`tcp_sniffer_settings::table`]); this
//! module feeds every surface's values through those rows' parsers
//! ([`SettingsBuilder::set`]), so a bad value gets the same error text everywhere, naming
//! the setting the way the user spelled it. [`Settings`] is then deserialised from the
//! normalised values by its camelCase field names: a row without a field (or a field without
//! a row) fails the tests below, so the two cannot drift.
//!
//! Invariants of a built [`Settings`]: every field is within its accepted range, `ports`
//! has no duplicates (empty means `any`: every TCP port, HTTP recognised by content), and `output_url` (when set) is an absolute `http`/`https`
//! URL that obeys the cleartext rule (see [`SettingsBuilder::new`]).
//!
//! Credentials never appear in an error or in `Debug`: the output URL is shown as
//! `scheme://host[:port]` ([`url_label`]) and the token not at all. Serialised (the Node
//! addon's `validate`), the token is only `outputUrlAuthTokenSet: bool`.

use std::fmt;

use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};
use tcp_sniffer_settings::table::{self, DefaultValue, TABLE};
use tcp_sniffer_settings::value::effective_list;

pub use tcp_sniffer_settings::value::{url_label, RawValue, Surface};
pub use tcp_sniffer_settings::LogLevel;

/// Capture backend choice (`captureBackend`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureBackend {
    /// AF_PACKET, falling back to libpcap when it cannot be set up.
    Auto,
    /// AF_PACKET TPACKET_V3 rings only.
    AfPacket,
    /// libpcap only.
    Pcap,
}

/// What the output URL receives (`outputFormat`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputFormat {
    /// The schema-v1 messages as JSON (NDJSON when batched).
    #[default]
    Json,
    /// OTLP/HTTP protobuf traces: one span per exchange.
    Otlp,
}

/// The sidecar serves `/metrics` here unless `METRICS_ADDR` says otherwise (`off` disables it).
pub const DEFAULT_SIDECAR_METRICS_ADDR: &str = match table::METRICS_ADDR.default {
    DefaultValue::PerSurface { env, .. } => env,
    _ => panic!("metricsAddr's default depends on the surface"),
};

/// Validated settings. Construct with [`SettingsBuilder`]. `Debug` shows neither the token
/// nor the output URL's credentials, path or query. Each field is the table row whose key is
/// its name in camelCase (see `tcp_sniffer_settings::table` for what each accepts).
#[derive(Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Settings {
    /// Interface name or `any`.
    pub interface: String,
    /// Monitored TCP ports (server side). Empty means `any` (the setting's value `"any"`,
    /// and [`Settings::default`]): every TCP port, HTTP recognised by content; see
    /// [`Settings::any_port`].
    #[serde(default, with = "ports_any")]
    pub ports: Vec<u16>,
    /// Where to POST messages.
    pub output_url: Option<String>,
    /// Accept an `http://` output URL to a host that is not loopback; `None` = the surface's
    /// default (see [`SettingsBuilder::new`]).
    pub allow_insecure_output_url: Option<bool>,
    /// Bearer token for the output URL. Never logged; serialised as `outputUrlAuthTokenSet`.
    #[serde(
        rename(
            serialize = "outputUrlAuthTokenSet",
            deserialize = "outputUrlAuthToken"
        ),
        serialize_with = "is_set"
    )]
    pub output_url_auth_token: Option<String>,
    /// Write JSON lines to stdout; `None` = the surface's default.
    pub output_stdout: Option<bool>,
    /// What the output URL receives.
    pub output_format: OutputFormat,
    /// `HOST:PORT` serving `GET /metrics`; `None` = off (the sidecar's default is
    /// [`DEFAULT_SIDECAR_METRICS_ADDR`]).
    pub metrics_addr: Option<String>,
    /// Fraction of connections observed, decided per connection.
    pub sample_rate: f64,
    /// Body bytes kept per message.
    pub max_body_size: usize,
    /// Messages written to stdout carry their body (else `body: ""`; `bodySize` stays).
    /// Other outputs always carry bodies up to `max_body_size`.
    pub stdout_bodies: bool,
    /// Decompress `Content-Encoding` bodies as they arrive (gzip, deflate, br, zstd).
    pub decode_bodies: bool,
    /// Connections tracked at once (all workers together).
    pub max_concurrent_connections: usize,
    /// Idle connections are evicted after this long (capture time).
    pub connection_idle_timeout_ms: u64,
    /// Lower-cased header names whose values are replaced by `[REDACTED]` (the defaults
    /// plus what was given, see [`effective_list`]).
    pub redact_headers: Vec<String>,
    /// Lower-cased query parameter names whose values in `url` become `[REDACTED]`.
    pub redact_query_params: Vec<String>,
    /// Lower-cased JSON keys and form fields whose values become `"[REDACTED]"`.
    pub redact_body_fields: Vec<String>,
    /// Capture backend for live capture.
    pub capture_backend: CaptureBackend,
    /// Worker threads; `None` = CPUs available to the process.
    pub workers: Option<usize>,
    /// Replay this pcap/pcapng file instead of capturing live.
    pub read_file: Option<String>,
    /// Log verbosity.
    pub log_level: LogLevel,
    /// Messages per POST; 1 = one JSON object per request.
    pub output_batch_size: usize,
    /// A partial batch is sent after this long.
    pub output_batch_wait_ms: u64,
    /// Concurrent POST senders.
    pub output_concurrency: usize,
    /// Messages waiting for delivery before new ones are dropped (counted).
    pub output_queue_size: usize,
    /// On stop, how long pending deliveries may take before they are dropped (counted).
    pub output_drain_timeout_ms: u64,
    /// First retry delay; later retries double it (1 s, 2 s, 4 s by default).
    pub output_retry_base_ms: u64,
    /// The sidecar logs the counters this often (its own setting: the engine only
    /// validates it, with the rest of the sidecar's environment).
    pub stats_interval_ms: u64,
}

/// `ports` as the settings table normalises it: an array of ports, or `"any"` (held as an
/// empty list).
mod ports_any {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use tcp_sniffer_settings::value::ANY_PORT;

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Repr {
        List(Vec<u16>),
        Word(String),
    }

    pub fn serialize<S: Serializer>(ports: &[u16], s: S) -> Result<S::Ok, S::Error> {
        if ports.is_empty() {
            s.serialize_str(ANY_PORT)
        } else {
            ports.serialize(s)
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u16>, D::Error> {
        match Repr::deserialize(d)? {
            Repr::List(p) => Ok(p),
            Repr::Word(w) if w == ANY_PORT => Ok(Vec::new()),
            Repr::Word(w) => Err(serde::de::Error::custom(format!(
                "ports: expected a list or \"{ANY_PORT}\", got {w:?}"
            ))),
        }
    }
}

fn is_set<S: Serializer>(token: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_bool(token.is_some())
}

/// The table's values for `given` (normalised by the rows' parsers) over the defaults on
/// `surface`. A name list is added to its default list. Errors with the reason of a
/// required setting that is missing.
fn from_table(surface: Surface, given: &Map<String, Value>) -> Result<Settings, ConfigError> {
    let mut map = Map::new();
    for row in TABLE {
        let value = match (given.get(row.key), row.default) {
            (Some(Value::Array(names)), DefaultValue::List(defaults)) => {
                let names: Vec<String> = names
                    .iter()
                    .filter_map(|n| n.as_str().map(str::to_string))
                    .collect();
                effective_list(defaults, &names).into()
            }
            (Some(v), _) => v.clone(),
            (None, DefaultValue::Required(reason)) => {
                return Err(ConfigError {
                    name: row.name_on(surface),
                    reason: reason.into(),
                })
            }
            (None, _) => row.default_on(surface),
        };
        map.insert(row.key.into(), value);
    }
    // Only fails when a table row and a field of `Settings` disagree: a bug the tests catch.
    serde_json::from_value(Value::Object(map)).map_err(|e| ConfigError {
        name: "settings".into(),
        reason: format!("internal error: the settings table and Settings disagree: {e}"),
    })
}

impl Default for Settings {
    /// The table's defaults (the library's where they depend on the surface), `ports: any`.
    fn default() -> Self {
        let mut given = Map::new();
        given.insert(table::PORTS.key.into(), Value::Array(Vec::new()));
        from_table(Surface::Library, &given).expect("the table's defaults build Settings")
    }
}

impl fmt::Debug for Settings {
    /// The serialised form (so a new field cannot be forgotten here: it has no token, only
    /// `outputUrlAuthTokenSet`), with the output URL cut to `scheme://host[:port]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut v = serde_json::to_value(self).map_err(|_| fmt::Error)?;
        if let Some(url) = &self.output_url {
            v["outputUrl"] = url_label(url).into();
        }
        write!(f, "Settings {v}")
    }
}

impl Settings {
    /// `ports: any`: every TCP port is watched and HTTP is recognised by content.
    pub fn any_port(&self) -> bool {
        self.ports.is_empty()
    }

    /// The warning to log when the output URL is `http://` to a host that is not loopback
    /// (accepted, see [`SettingsBuilder::new`]): the captured traffic and the token cross the
    /// network in clear. Credentials are never shown.
    pub fn insecure_output_url_warning(&self) -> Option<String> {
        tcp_sniffer_settings::rules::insecure_output_url_warning(self.output_url.as_deref()?)
    }
}

/// A rejected setting (`name`, `reason`); `Display` gives the whole message for the user.
/// The settings crate's type, so a rule broken there reads the same here.
pub use tcp_sniffer_settings::rules::Invalid as ConfigError;

/// Environment variables that are settings (the sidecar reads exactly these).
pub fn env_names() -> impl Iterator<Item = &'static str> {
    table::env_names()
}

/// Library keys accepted by [`SettingsBuilder::set`] with [`Surface::Library`].
pub fn library_keys() -> impl Iterator<Item = &'static str> {
    table::library_keys()
}

/// Collects raw values from one surface, then validates them together.
pub struct SettingsBuilder {
    surface: Surface,
    /// Normalised values given so far, by library key.
    given: Map<String, Value>,
    /// `NODE_ENV=production` (`allowInsecureOutputUrl` then defaults to false everywhere).
    production: bool,
}

impl fmt::Debug for SettingsBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Only the keys: values may be credentials.
        f.debug_struct("SettingsBuilder")
            .field("surface", &self.surface)
            .field("given", &self.given.keys().collect::<Vec<_>>())
            .field("production", &self.production)
            .finish()
    }
}

impl SettingsBuilder {
    /// A builder for values coming from `surface`. `production` is true when
    /// `NODE_ENV=production`.
    ///
    /// The surface sets two defaults. `stdoutBodies`: `true` on the command line, `false`
    /// for the library and the sidecar (the env surface; see the table's row). The output
    /// URL must be `https://`, or `http://` to a loopback host; any other `http://` URL needs
    /// `allowInsecureOutputUrl`, which defaults to `true` (accepted; the caller logs
    /// [`Settings::insecure_output_url_warning`]) for the command line and the library
    /// unless `production`, and to `false` (refused) for the sidecar.
    pub fn new(surface: Surface, production: bool) -> Self {
        SettingsBuilder {
            surface,
            given: Map::new(),
            production,
        }
    }

    /// Sets one value. `name` is the setting as spelled on this builder's surface
    /// (a library key, an env var, or a long flag such as `--max-body-size`).
    pub fn set(&mut self, name: &str, value: RawValue) -> Result<(), ConfigError> {
        let surface = self.surface;
        self.set_as(surface, name, value)
    }

    /// Sets a value given on another surface than the builder's: the command line takes the
    /// output URL's token only from `OUTPUT_URL_AUTH_TOKEN` (a token in argv is visible to
    /// every user of the host). Errors name the setting as `surface` spells it.
    pub fn set_as(
        &mut self,
        surface: Surface,
        name: &str,
        value: RawValue,
    ) -> Result<(), ConfigError> {
        let row = tcp_sniffer_settings::find(surface, name).ok_or_else(|| self.unknown(name))?;
        let v = row.parse(&value).map_err(|reason| ConfigError {
            name: row.name_on(surface),
            reason,
        })?;
        self.given.insert(row.key.into(), v);
        Ok(())
    }

    fn unknown(&self, name: &str) -> ConfigError {
        let known: Vec<String> = TABLE
            .iter()
            .filter(|s| s.on(self.surface))
            .map(|s| s.name_on(self.surface))
            .collect();
        ConfigError {
            name: name.to_string(),
            reason: format!("unknown setting; accepted: {}", known.join(", ")),
        }
    }

    /// Checks what only makes sense with every value known, and returns the settings.
    pub fn build(self) -> Result<Settings, ConfigError> {
        // The rules between settings (conflicts, one setting needing another): the table's,
        // the same for every surface and for the webhook.
        tcp_sniffer_settings::rules::check(self.surface, &self.given)?;
        let s = from_table(self.surface, &self.given)?;
        if let Some(url) = &s.output_url {
            // The output URL rule lives with the table: the webhook checks what it injects
            // with the same function.
            tcp_sniffer_settings::rules::output_url(
                self.surface,
                url,
                s.allow_insecure_output_url,
                self.production,
                true,
            )?;
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::redact::{
        DEFAULT_REDACT_BODY_FIELDS, DEFAULT_REDACT_HEADERS, DEFAULT_REDACT_QUERY_PARAMS,
    };

    #[test]
    fn metrics_addr_and_output_format() {
        let build = |surface: Surface, kv: &[(&str, &str)]| {
            let mut b = SettingsBuilder::new(surface, false);
            let ports = match surface {
                Surface::Library => "ports",
                Surface::Env => "PORTS",
                Surface::Cli => "--ports",
            };
            b.set(ports, RawValue::Text("80".into())).unwrap();
            for (k, v) in kv {
                b.set(k, RawValue::Text((*v).into()))?;
            }
            b.build()
        };
        // Defaults: the sidecar serves metrics, the CLI and the library do not.
        assert_eq!(
            build(Surface::Env, &[]).unwrap().metrics_addr.as_deref(),
            Some("0.0.0.0:9464")
        );
        assert_eq!(build(Surface::Cli, &[]).unwrap().metrics_addr, None);
        assert_eq!(build(Surface::Library, &[]).unwrap().metrics_addr, None);
        assert_eq!(
            build(Surface::Env, &[("METRICS_ADDR", "off")])
                .unwrap()
                .metrics_addr,
            None
        );
        for ok in ["127.0.0.1:9464", "[::1]:0", "localhost:9090", "0.0.0.0:1"] {
            let s = build(Surface::Cli, &[("--metrics-addr", ok)]).unwrap();
            assert_eq!(s.metrics_addr.as_deref(), Some(ok));
        }
        for bad in ["9464", "host:", ":9464", "h:70000", "a b:1", "::1:9"] {
            let e = build(Surface::Library, &[("metricsAddr", bad)]).unwrap_err();
            assert_eq!(e.name, "metricsAddr");
            assert!(e.reason.contains("HOST:PORT"), "{e}");
        }
        let e = build(Surface::Cli, &[("--output-format", "zipkin")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid setting --output-format: expected one of \"json\", \"otlp\", got \"zipkin\""
        );
        let e = build(Surface::Env, &[("OUTPUT_FORMAT", "otlp")]).unwrap_err();
        assert_eq!(e.name, "OUTPUT_FORMAT");
        assert!(e.reason.contains("OUTPUT_URL"), "{e}");
        let s = build(
            Surface::Env,
            &[
                ("OUTPUT_FORMAT", "otlp"),
                ("OUTPUT_URL", "https://otel.example:4318/v1/traces"),
            ],
        )
        .unwrap();
        assert_eq!(s.output_format, OutputFormat::Otlp);
    }

    /// Every surface refuses the table's conflicting pairs, naming them as it spells them;
    /// the webhook and clap read the same rows (`tcp_sniffer_settings::rules`).
    #[test]
    fn cross_setting_rules_are_the_same_on_every_surface() {
        for (a, b) in tcp_sniffer_settings::rules::conflicting_pairs() {
            let (ra, rb) = (table::by_key(a).unwrap(), table::by_key(b).unwrap());
            for surface in [Surface::Library, Surface::Env, Surface::Cli] {
                if !ra.on(surface) || !rb.on(surface) {
                    continue;
                }
                let mut builder = SettingsBuilder::new(surface, false);
                let sample = |r: &tcp_sniffer_settings::Setting| match r.kind {
                    tcp_sniffer_settings::Kind::Choice(c) => c[0].to_string(),
                    tcp_sniffer_settings::Kind::Interface => "lo".into(),
                    _ => "capture.pcap".into(),
                };
                for (k, v) in [
                    ("ports", "80".to_string()),
                    (a, sample(ra)),
                    (b, sample(rb)),
                ] {
                    let row = table::by_key(k).unwrap();
                    builder
                        .set(&row.name_on(surface), RawValue::Text(v))
                        .unwrap();
                }
                let e = builder.build().unwrap_err();
                assert_eq!(e.name, rb.name_on(surface), "{e}");
                assert!(e.reason.contains(&ra.name_on(surface)), "{e}");
            }
        }
        // A sidecar-only row: the environment takes it, createSniffer does not.
        let mut b = SettingsBuilder::new(Surface::Env, false);
        b.set("PORTS", RawValue::Text("80".into())).unwrap();
        b.set("STATS_INTERVAL_MS", RawValue::Text("5000".into()))
            .unwrap();
        assert_eq!(b.build().unwrap().stats_interval_ms, 5000);
        let mut b = SettingsBuilder::new(Surface::Library, false);
        let e = b
            .set("statsIntervalMs", RawValue::Json(serde_json::json!(5000)))
            .unwrap_err();
        assert!(e.reason.starts_with("unknown setting"), "{e}");
    }

    fn cli(pairs: &[(&str, &str)]) -> Result<Settings, ConfigError> {
        let mut b = SettingsBuilder::new(Surface::Cli, false);
        for (k, v) in pairs {
            b.set(k, RawValue::Text(v.to_string()))?;
        }
        b.build()
    }

    #[test]
    fn ports_are_required_and_validated() {
        assert_eq!(
            cli(&[]).unwrap_err().to_string(),
            "invalid setting --ports: required: the TCP port(s) the application serves HTTP on, e.g. 8080 or 80,8080, or any"
        );
        assert_eq!(
            cli(&[("--ports", "80, 8080")]).unwrap().ports,
            vec![80, 8080]
        );
        assert!(cli(&[("--ports", "80,80")])
            .unwrap_err()
            .reason
            .contains("listed twice"));
        assert!(cli(&[("--ports", "0")]).is_err());
        assert!(cli(&[("--ports", "65536")]).is_err());
        assert!(cli(&[("--ports", "")]).is_err());
        let any = cli(&[("--ports", "any")]).unwrap();
        assert!(any.any_port() && any.ports.is_empty());
        assert_eq!(serde_json::to_value(&any).unwrap()["ports"], "any");
        assert!(cli(&[("--ports", "any,80")])
            .unwrap_err()
            .to_string()
            .contains("must stand alone"));
    }

    #[test]
    fn errors_name_the_setting_on_each_surface() {
        let mut b = SettingsBuilder::new(Surface::Env, false);
        let e = b
            .set("MAX_BODY_SIZE", RawValue::Text("-1".into()))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid setting MAX_BODY_SIZE: expected an integer from 0 to 16777216, got \"-1\""
        );
        let mut b = SettingsBuilder::new(Surface::Library, false);
        let e = b
            .set("sampleRate", RawValue::Json(serde_json::json!(0)))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid setting sampleRate: expected a number with 0 < rate <= 1, got 0"
        );
        let e = b
            .set("maxBodySzie", RawValue::Json(serde_json::json!(1)))
            .unwrap_err();
        assert!(e.to_string().starts_with(
            "invalid setting maxBodySzie: unknown setting; accepted: interface, ports"
        ));
    }

    #[test]
    fn decode_bodies_defaults_on_and_can_be_turned_off() {
        assert!(cli(&[("--ports", "80")]).unwrap().decode_bodies);
        assert!(Settings::default().decode_bodies);
        let off = cli(&[("--ports", "80"), ("--decode-bodies", "false")]).unwrap();
        assert!(!off.decode_bodies);
        let s = build_url(Surface::Env, false, &[("DECODE_BODIES", "false")]).unwrap();
        assert!(!s.decode_bodies);
        assert!(cli(&[("--ports", "80"), ("--decode-bodies", "maybe")]).is_err());
    }

    fn build_url(
        surface: Surface,
        production: bool,
        pairs: &[(&str, &str)],
    ) -> Result<Settings, ConfigError> {
        let mut b = SettingsBuilder::new(surface, production);
        let (ports, url, allow) = match surface {
            Surface::Env => ("PORTS", "OUTPUT_URL", "ALLOW_INSECURE_OUTPUT_URL"),
            Surface::Cli => ("--ports", "--output-url", "--allow-insecure-output-url"),
            Surface::Library => ("ports", "outputUrl", "allowInsecureOutputUrl"),
        };
        b.set(ports, RawValue::Text("80".into())).unwrap();
        for (k, v) in pairs {
            let k = match *k {
                "url" => url,
                "allow" => allow,
                other => other,
            };
            b.set(k, RawValue::Text(v.to_string()))?;
        }
        b.build()
    }

    #[test]
    fn cleartext_output_url_rules_per_surface() {
        let remote = "http://user:pw@collector.example:8080/ingest?key=qs-secret";
        // Loopback and https are accepted everywhere.
        for surface in [Surface::Env, Surface::Cli, Surface::Library] {
            for production in [false, true] {
                for ok in [
                    "https://collector.example/ingest",
                    "http://127.0.0.1:9000/x",
                    "http://[::1]:9000/x",
                    "http://localhost/x",
                    "HTTP://LOCALHOST/x",
                ] {
                    let s = build_url(surface, production, &[("url", ok)]).unwrap();
                    assert_eq!(s.insecure_output_url_warning(), None);
                }
                assert!(build_url(surface, production, &[("url", "ftp://x")]).is_err());
            }
        }
        // The sidecar (env) refuses a remote http URL unless ALLOW_INSECURE_OUTPUT_URL=true.
        let e = build_url(Surface::Env, false, &[("url", remote)]).unwrap_err();
        assert_eq!(e.name, "OUTPUT_URL");
        assert!(e.reason.contains("ALLOW_INSECURE_OUTPUT_URL=true"), "{e}");
        assert!(e.reason.contains("http://collector.example:8080"), "{e}");
        let s = build_url(Surface::Env, false, &[("url", remote), ("allow", "true")]).unwrap();
        let w = s.insecure_output_url_warning().unwrap();
        assert!(
            w.contains("http://collector.example:8080") && w.contains("in clear"),
            "{w}"
        );
        // The CLI and the library accept it (with the warning) unless NODE_ENV=production,
        // and an explicit false refuses it.
        for surface in [Surface::Cli, Surface::Library] {
            let s = build_url(surface, false, &[("url", remote)]).unwrap();
            assert!(s.insecure_output_url_warning().is_some());
            assert!(build_url(surface, true, &[("url", remote)]).is_err());
            assert!(build_url(surface, true, &[("url", remote), ("allow", "true")]).is_ok());
            assert!(build_url(surface, false, &[("url", remote), ("allow", "false")]).is_err());
        }
        // No error or warning ever shows the URL's credentials, path or query.
        for surface in [Surface::Env, Surface::Cli, Surface::Library] {
            let e = build_url(surface, true, &[("url", remote)])
                .unwrap_err()
                .to_string();
            for secret in ["user", "pw", "qs-secret", "ingest"] {
                assert!(!e.contains(secret), "{e}");
            }
        }
        for bad in [
            "user:pw@nohost",
            "ftp://user:pw@x/?qs-secret",
            "http://user:pw@/x?qs-secret",
        ] {
            let e = build_url(Surface::Cli, false, &[("url", bad)])
                .unwrap_err()
                .to_string();
            assert!(!e.contains("pw") && !e.contains("qs-secret"), "{e}");
        }
        assert!(build_url(Surface::Env, false, &[("allow", "maybe")]).is_err());
        // Library values of the wrong type are not echoed either.
        let mut b = SettingsBuilder::new(Surface::Library, false);
        let e = b
            .set(
                "outputUrlAuthToken",
                RawValue::Json(serde_json::json!(9_876_543)),
            )
            .unwrap_err();
        assert!(!e.to_string().contains("9876543"), "{e}");
        let e = b
            .set(
                "outputUrl",
                RawValue::Json(serde_json::json!({"u": "pw-secret"})),
            )
            .unwrap_err();
        assert!(!e.to_string().contains("pw-secret"), "{e}");
    }

    #[test]
    fn debug_never_shows_credentials() {
        let mut s = build_url(
            Surface::Env,
            false,
            &[(
                "url",
                "https://user:pw@collector.example/ingest?key=qs-secret",
            )],
        )
        .unwrap();
        s.output_url_auth_token = Some("tok-s3cret".into());
        let d = format!("{s:?} {:?}", SettingsBuilder::new(Surface::Env, false));
        for secret in ["tok-s3cret", "user", "pw@", "qs-secret", "/ingest"] {
            assert!(!d.contains(secret), "{secret} in {d}");
        }
        assert!(d.contains("https://collector.example"), "{d}");
        assert!(d.contains("\"outputUrlAuthTokenSet\":true"), "{d}");
    }

    #[test]
    fn stdout_bodies_default_per_surface() {
        assert!(cli(&[("--ports", "80")]).unwrap().stdout_bodies);
        assert!(
            !cli(&[("--ports", "80"), ("--stdout-bodies", "false")])
                .unwrap()
                .stdout_bodies
        );
        for surface in [Surface::Env, Surface::Library] {
            let s = build_url(surface, false, &[]).unwrap();
            assert!(!s.stdout_bodies);
        }
        let s = build_url(Surface::Env, false, &[("STDOUT_BODIES", "true")]).unwrap();
        assert!(s.stdout_bodies);
        assert!(!Settings::default().stdout_bodies);
    }

    #[test]
    fn idle_timeout_and_redaction() {
        assert!(cli(&[("--ports", "80"), ("--idle-timeout-ms", "999")]).is_err());
        let d = Settings::default();
        assert_eq!(d.redact_headers, DEFAULT_REDACT_HEADERS);
        assert_eq!(d.redact_query_params, DEFAULT_REDACT_QUERY_PARAMS);
        assert_eq!(d.redact_body_fields, DEFAULT_REDACT_BODY_FIELDS);
        // A list adds to the defaults.
        let s = cli(&[("--ports", "80"), ("--redact-headers", "X-Custom, Cookie")]).unwrap();
        assert_eq!(s.redact_headers[..6], *DEFAULT_REDACT_HEADERS);
        assert_eq!(s.redact_headers[6..], ["x-custom"]);
        let s = cli(&[("--ports", "80"), ("--redact-query-params", "Session")]).unwrap();
        assert!(s.redact_query_params.contains(&"access_token".to_string()));
        assert_eq!(s.redact_query_params.last().unwrap(), "session");
        let s = cli(&[("--ports", "80"), ("--redact-body-fields", "pin")]).unwrap();
        assert!(s.redact_body_fields.contains(&"password".to_string()));
        assert_eq!(s.redact_body_fields.last().unwrap(), "pin");
        // `none` first drops them; only first.
        let s = cli(&[
            ("--ports", "80"),
            ("--redact-headers", "none,x-a"),
            ("--redact-query-params", "NONE"),
            ("--redact-body-fields", "none"),
        ])
        .unwrap();
        assert_eq!(s.redact_headers, ["x-a"]);
        assert!(s.redact_query_params.is_empty() && s.redact_body_fields.is_empty());
        let e = cli(&[("--ports", "80"), ("--redact-headers", "x-a,none")]).unwrap_err();
        assert!(e.to_string().contains("must be the first entry"), "{e}");
        // Invalid names.
        assert!(cli(&[("--ports", "80"), ("--redact-headers", "bad header")]).is_err());
        assert!(cli(&[("--ports", "80"), ("--redact-query-params", "a=b")]).is_err());
        assert!(cli(&[("--ports", "80"), ("--redact-body-fields", "a\u{1}")]).is_err());
        let mut b = SettingsBuilder::new(Surface::Library, false);
        let e = b
            .set("redactBodyFields", RawValue::Json(serde_json::json!([1])))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid setting redactBodyFields: expected field names as strings, got 1"
        );
    }

    /// Every row of the table is a field of `Settings` and every field a row: a row added
    /// without its field (or the reverse) fails here, not at a user's start.
    #[test]
    fn table_and_struct_agree() {
        let v = serde_json::to_value(Settings::default()).unwrap();
        let mut fields: Vec<&str> = v.as_object().unwrap().keys().map(|k| k.as_str()).collect();
        fields.sort_unstable();
        let mut keys: Vec<&str> = TABLE
            .iter()
            .map(|s| match s.key {
                "outputUrlAuthToken" => "outputUrlAuthTokenSet",
                k => k,
            })
            .collect();
        keys.sort_unstable();
        assert_eq!(fields, keys);
        // Each row's default is the struct's default; a value given on each surface lands
        // in its field (the serialised form is the normalised one).
        for row in TABLE {
            let got = &v[row.key];
            let want = row.default_on(Surface::Library);
            if row.key != "outputUrlAuthToken" && row.key != "ports" {
                assert_eq!(*got, want, "{}", row.key);
            }
        }
        // Every choice of captureBackend and logLevel deserialises.
        for row in [&table::CAPTURE_BACKEND, &table::LOG_LEVEL] {
            let tcp_sniffer_settings::Kind::Choice(choices) = row.kind else {
                panic!("{} is a choice", row.key)
            };
            for c in choices {
                let mut b = SettingsBuilder::new(Surface::Library, false);
                b.set("ports", RawValue::Json(serde_json::json!([80])))
                    .unwrap();
                b.set(row.key, RawValue::Json(serde_json::json!(c)))
                    .unwrap();
                let s = serde_json::to_value(b.build().unwrap()).unwrap();
                assert_eq!(s[row.key], *c);
            }
        }
    }

    #[test]
    fn serialised_settings_never_carry_the_token() {
        let mut b = SettingsBuilder::new(Surface::Env, false);
        b.set("PORTS", RawValue::Text("80".into())).unwrap();
        b.set("OUTPUT_URL_AUTH_TOKEN", RawValue::Text("tok-s3cret".into()))
            .unwrap();
        let v = serde_json::to_value(b.build().unwrap()).unwrap();
        assert_eq!(v["outputUrlAuthTokenSet"], true);
        assert!(!v.to_string().contains("tok-s3cret"), "{v}");
        assert_eq!(v["stdoutBodies"], false);
        assert_eq!(v["logLevel"], "info");
        assert_eq!(v["captureBackend"], "auto");
    }
}
