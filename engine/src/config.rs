//! Settings: one table, one validation, three surfaces.
//!
//! The library's `createSniffer(config)` (camelCase keys), the sidecar's environment
//! (`MAX_BODY_SIZE`) and the command line (`--max-body-size`) all name the same settings.
//! Every surface feeds values through [`SettingsBuilder::set`], so a bad value gets the
//! same error text everywhere; the error names the setting the way the user spelled it.
//!
//! Invariants of a built [`Settings`]: every field is within its accepted range, `ports`
//! is non-empty without duplicates, and `output_url` (when set) is an absolute `http`/`https`
//! URL that obeys the cleartext rule (see [`SettingsBuilder::new`]).
//!
//! Credentials never appear in an error or in `Debug`: the output URL is shown as
//! `scheme://host[:port]` ([`url_label`]) and the token not at all.

use std::fmt;

use serde_json::Value;

use crate::redact::{
    effective_list, DEFAULT_REDACT_BODY_FIELDS, DEFAULT_REDACT_HEADERS,
    DEFAULT_REDACT_QUERY_PARAMS, REDACTED,
};

/// Which surface a value came from; decides how the setting is named in errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surface {
    /// `createSniffer({...})` keys, e.g. `maxBodySize`.
    Library,
    /// Environment variables, e.g. `MAX_BODY_SIZE`.
    Env,
    /// Command-line flags, e.g. `--max-body-size`.
    Cli,
}

/// A setting's value before validation.
#[derive(Clone, Debug)]
pub enum RawValue {
    /// From env or the command line: always text.
    Text(String),
    /// From the library: a JSON value (numbers, booleans, arrays are typed).
    Json(Value),
}

/// Capture backend choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CaptureBackend {
    /// AF_PACKET, falling back to libpcap when it cannot be set up.
    Auto,
    /// AF_PACKET TPACKET_V3 rings only.
    AfPacket,
    /// libpcap only.
    Pcap,
}

/// What the output URL receives (`outputFormat`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// The schema-v1 messages as JSON (NDJSON when batched).
    #[default]
    Json,
    /// OTLP/HTTP protobuf traces: one span per exchange.
    Otlp,
}

/// Log verbosity.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    /// Errors only.
    Error,
    /// Errors and warnings.
    Warn,
    /// The default.
    Info,
    /// Everything.
    Debug,
}

/// Validated settings. Construct with [`SettingsBuilder`]. `Debug` shows neither the token
/// nor the output URL's credentials, path or query.
#[derive(Clone)]
pub struct Settings {
    /// Interface name or `any`.
    pub interface: String,
    /// Monitored TCP ports (server side).
    pub ports: Vec<u16>,
    /// Where to POST messages.
    pub output_url: Option<String>,
    /// Accept an `http://` output URL to a host that is not loopback; `None` = the surface's
    /// default (see [`SettingsBuilder::new`]).
    pub allow_insecure_output_url: Option<bool>,
    /// Bearer token for the output URL. Never logged.
    pub output_url_auth_token: Option<String>,
    /// Write JSON lines to stdout; `None` = the surface's default.
    pub output_stdout: Option<bool>,
    /// What the output URL receives.
    pub output_format: OutputFormat,
    /// `HOST:PORT` serving `GET /metrics`; `None` = off (the sidecar's default is
    /// `0.0.0.0:9464`, see [`SettingsBuilder::new`]).
    pub metrics_addr: Option<String>,
    /// Fraction of connections observed, decided per connection.
    pub sample_rate: f64,
    /// Body bytes kept per message.
    pub max_body_size: usize,
    /// Messages written to stdout carry their body (else `body: ""`; `bodySize` stays).
    /// Other outputs always carry bodies up to `max_body_size`.
    pub stdout_bodies: bool,
    /// Connections tracked at once (all workers together).
    pub max_concurrent_connections: usize,
    /// Idle connections are evicted after this long (capture time).
    pub connection_idle_timeout_ms: u64,
    /// Lower-cased header names whose values are replaced by `[REDACTED]` (the defaults
    /// plus what was given, see [`crate::redact::effective_list`]).
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
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            interface: "any".into(),
            ports: Vec::new(),
            output_url: None,
            allow_insecure_output_url: None,
            output_url_auth_token: None,
            output_stdout: None,
            output_format: OutputFormat::Json,
            metrics_addr: None,
            sample_rate: 1.0,
            max_body_size: 65_536,
            stdout_bodies: false,
            max_concurrent_connections: 10_000,
            connection_idle_timeout_ms: 60_000,
            redact_headers: effective_list(DEFAULT_REDACT_HEADERS, &[]),
            redact_query_params: effective_list(DEFAULT_REDACT_QUERY_PARAMS, &[]),
            redact_body_fields: effective_list(DEFAULT_REDACT_BODY_FIELDS, &[]),
            capture_backend: CaptureBackend::Auto,
            workers: None,
            read_file: None,
            log_level: LogLevel::Info,
            output_batch_size: 1,
            output_batch_wait_ms: 1_000,
            output_concurrency: 4,
            output_queue_size: 10_000,
            output_drain_timeout_ms: 10_000,
            output_retry_base_ms: 1_000,
        }
    }
}

impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Destructured so that a new field cannot be forgotten here.
        let Settings {
            interface,
            ports,
            output_url,
            allow_insecure_output_url,
            output_url_auth_token,
            output_stdout,
            output_format,
            metrics_addr,
            sample_rate,
            max_body_size,
            stdout_bodies,
            max_concurrent_connections,
            connection_idle_timeout_ms,
            redact_headers,
            redact_query_params,
            redact_body_fields,
            capture_backend,
            workers,
            read_file,
            log_level,
            output_batch_size,
            output_batch_wait_ms,
            output_concurrency,
            output_queue_size,
            output_drain_timeout_ms,
            output_retry_base_ms,
        } = self;
        f.debug_struct("Settings")
            .field("interface", interface)
            .field("ports", ports)
            .field("output_url", &output_url.as_deref().map(url_label))
            .field("allow_insecure_output_url", allow_insecure_output_url)
            .field(
                "output_url_auth_token",
                &output_url_auth_token.as_ref().map(|_| REDACTED),
            )
            .field("output_stdout", output_stdout)
            .field("output_format", output_format)
            .field("metrics_addr", metrics_addr)
            .field("sample_rate", sample_rate)
            .field("max_body_size", max_body_size)
            .field("stdout_bodies", stdout_bodies)
            .field("max_concurrent_connections", max_concurrent_connections)
            .field("connection_idle_timeout_ms", connection_idle_timeout_ms)
            .field("redact_headers", redact_headers)
            .field("redact_query_params", redact_query_params)
            .field("redact_body_fields", redact_body_fields)
            .field("capture_backend", capture_backend)
            .field("workers", workers)
            .field("read_file", read_file)
            .field("log_level", log_level)
            .field("output_batch_size", output_batch_size)
            .field("output_batch_wait_ms", output_batch_wait_ms)
            .field("output_concurrency", output_concurrency)
            .field("output_queue_size", output_queue_size)
            .field("output_drain_timeout_ms", output_drain_timeout_ms)
            .field("output_retry_base_ms", output_retry_base_ms)
            .finish()
    }
}

impl Settings {
    /// The output URL is `http://` to a host that is not loopback: the captured traffic and
    /// the token would cross the network in clear. Surfaces that accept it log
    /// [`Settings::insecure_output_url_warning`].
    pub fn output_url_is_insecure(&self) -> bool {
        self.output_url.as_deref().is_some_and(|u| {
            url_parts(u).is_ok_and(|(scheme, host)| scheme == "http" && !is_loopback_host(host))
        })
    }

    /// The warning to log when the output URL is insecure (credentials never shown).
    pub fn insecure_output_url_warning(&self) -> Option<String> {
        let url = self
            .output_url
            .as_deref()
            .filter(|_| self.output_url_is_insecure())?;
        Some(format!(
            "the output URL {} is plain http to a host that is not loopback: captured traffic and the token cross the network in clear; use https://",
            url_label(url)
        ))
    }
}

/// A rejected setting. `Display` gives the whole message for the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The setting as the user named it (`maxBodySize`, `MAX_BODY_SIZE` or `--max-body-size`).
    pub name: String,
    /// What is wrong and what is accepted.
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid setting {}: {}", self.name, self.reason)
    }
}

impl std::error::Error for ConfigError {}

/// One row of the settings table.
struct Spec {
    key: &'static str,
    env: Option<&'static str>,
    flag: Option<&'static str>,
}

/// The settings table of SPEC.md (plus the output tuning settings).
const TABLE: &[Spec] = &[
    spec("interface", Some("INTERFACE"), Some("--interface")),
    spec("ports", Some("PORTS"), Some("--ports")),
    spec("outputUrl", Some("OUTPUT_URL"), Some("--output-url")),
    spec(
        "allowInsecureOutputUrl",
        Some("ALLOW_INSECURE_OUTPUT_URL"),
        Some("--allow-insecure-output-url"),
    ),
    spec("outputUrlAuthToken", Some("OUTPUT_URL_AUTH_TOKEN"), None),
    spec("outputStdout", Some("OUTPUT_STDOUT"), Some("--stdout")),
    spec(
        "outputFormat",
        Some("OUTPUT_FORMAT"),
        Some("--output-format"),
    ),
    spec("metricsAddr", Some("METRICS_ADDR"), Some("--metrics-addr")),
    spec("sampleRate", Some("SAMPLE_RATE"), Some("--sample-rate")),
    spec(
        "maxBodySize",
        Some("MAX_BODY_SIZE"),
        Some("--max-body-size"),
    ),
    spec(
        "stdoutBodies",
        Some("STDOUT_BODIES"),
        Some("--stdout-bodies"),
    ),
    spec(
        "maxConcurrentConnections",
        Some("MAX_CONCURRENT_CONNECTIONS"),
        Some("--max-connections"),
    ),
    spec(
        "connectionIdleTimeoutMs",
        Some("CONNECTION_IDLE_TIMEOUT_MS"),
        Some("--idle-timeout-ms"),
    ),
    spec(
        "redactHeaders",
        Some("REDACT_HEADERS"),
        Some("--redact-headers"),
    ),
    spec(
        "redactQueryParams",
        Some("REDACT_QUERY_PARAMS"),
        Some("--redact-query-params"),
    ),
    spec(
        "redactBodyFields",
        Some("REDACT_BODY_FIELDS"),
        Some("--redact-body-fields"),
    ),
    spec("captureBackend", Some("CAPTURE_BACKEND"), Some("--backend")),
    spec("workers", Some("WORKERS"), Some("--workers")),
    spec("readFile", None, Some("--read")),
    spec("logLevel", Some("LOG_LEVEL"), Some("--log-level")),
    spec(
        "outputBatchSize",
        Some("OUTPUT_BATCH_SIZE"),
        Some("--output-batch-size"),
    ),
    spec(
        "outputBatchWaitMs",
        Some("OUTPUT_BATCH_WAIT_MS"),
        Some("--output-batch-wait-ms"),
    ),
    spec(
        "outputConcurrency",
        Some("OUTPUT_CONCURRENCY"),
        Some("--output-concurrency"),
    ),
    spec(
        "outputQueueSize",
        Some("OUTPUT_QUEUE_SIZE"),
        Some("--output-queue-size"),
    ),
    spec(
        "outputDrainTimeoutMs",
        Some("OUTPUT_DRAIN_TIMEOUT_MS"),
        Some("--output-drain-timeout-ms"),
    ),
    spec(
        "outputRetryBaseMs",
        Some("OUTPUT_RETRY_BASE_MS"),
        Some("--output-retry-base-ms"),
    ),
];

const fn spec(key: &'static str, env: Option<&'static str>, flag: Option<&'static str>) -> Spec {
    Spec { key, env, flag }
}

/// Environment variables that are settings (the sidecar reads exactly these).
pub fn env_names() -> impl Iterator<Item = &'static str> {
    TABLE.iter().filter_map(|s| s.env)
}

/// Library keys accepted by [`SettingsBuilder::set`] with [`Surface::Library`].
pub fn library_keys() -> impl Iterator<Item = &'static str> {
    TABLE.iter().map(|s| s.key)
}

/// Collects raw values from one surface, then validates them together.
#[derive(Debug)]
pub struct SettingsBuilder {
    surface: Surface,
    settings: Settings,
    ports_set: bool,
    /// `allowInsecureOutputUrl` when it is not given.
    insecure_default: bool,
}

impl SettingsBuilder {
    /// A builder for values coming from `surface`. `production` is true when
    /// `NODE_ENV=production`.
    ///
    /// The surface sets two defaults. `stdoutBodies`: `true` on the command line, `false`
    /// for the library and the sidecar (the env surface). The output URL must be `https://`,
    /// or `http://` to a loopback host; any other `http://` URL needs
    /// `allowInsecureOutputUrl`, which defaults to `true` (accepted; the caller logs
    /// [`Settings::insecure_output_url_warning`]) for the command line and the library
    /// unless `production`, and to `false` (refused) for the sidecar.
    pub fn new(surface: Surface, production: bool) -> Self {
        let settings = Settings {
            stdout_bodies: surface == Surface::Cli,
            metrics_addr: (surface == Surface::Env).then(|| DEFAULT_SIDECAR_METRICS_ADDR.into()),
            ..Settings::default()
        };
        SettingsBuilder {
            surface,
            settings,
            ports_set: false,
            insecure_default: surface != Surface::Env && !production,
        }
    }

    /// The name of `key` on this builder's surface.
    fn name_of(&self, spec: &Spec) -> String {
        match self.surface {
            Surface::Library => spec.key.to_string(),
            Surface::Env => spec.env.unwrap_or(spec.key).to_string(),
            Surface::Cli => spec.flag.unwrap_or(spec.key).to_string(),
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
        let spec = TABLE
            .iter()
            .find(|s| match surface {
                Surface::Library => s.key == name,
                Surface::Env => s.env == Some(name),
                Surface::Cli => s.flag == Some(name),
            })
            .ok_or_else(|| self.unknown(name))?;
        let err_name = match surface {
            Surface::Library => spec.key.to_string(),
            Surface::Env => spec.env.unwrap_or(spec.key).to_string(),
            Surface::Cli => spec.flag.unwrap_or(spec.key).to_string(),
        };
        let err = |reason: String| ConfigError {
            name: err_name.clone(),
            reason,
        };
        let s = &mut self.settings;
        match spec.key {
            "interface" => {
                let v = text(&value).map_err(&err)?;
                if v.is_empty() || v.len() > 15 || v.contains(['/', ' ', '\0']) {
                    return Err(err(format!(
                        "expected an interface name (1-15 characters, no '/' or spaces) or \"any\", got {v:?}"
                    )));
                }
                s.interface = v;
            }
            "ports" => {
                s.ports = parse_ports(&value).map_err(&err)?;
                self.ports_set = true;
            }
            "outputUrl" => {
                // Never echo the value: it may hold credentials.
                let v = text(&value).map_err(|_| err("expected a URL string".into()))?;
                s.output_url = if v.is_empty() { None } else { Some(v) };
            }
            "allowInsecureOutputUrl" => {
                s.allow_insecure_output_url = Some(boolean(&value).map_err(&err)?)
            }
            "stdoutBodies" => s.stdout_bodies = boolean(&value).map_err(&err)?,
            "outputUrlAuthToken" => {
                let v = text(&value).map_err(|_| err("expected a string".into()))?;
                if v.contains(['\r', '\n']) {
                    // Never echo the token itself.
                    return Err(err("must not contain line breaks".into()));
                }
                s.output_url_auth_token = if v.is_empty() { None } else { Some(v) };
            }
            "outputStdout" => s.output_stdout = Some(boolean(&value).map_err(&err)?),
            "outputFormat" => {
                s.output_format = match text(&value).map_err(&err)?.as_str() {
                    "json" => OutputFormat::Json,
                    "otlp" => OutputFormat::Otlp,
                    other => {
                        return Err(err(format!(
                            "expected one of \"json\", \"otlp\", got {other:?}"
                        )))
                    }
                }
            }
            "metricsAddr" => {
                let v = text(&value).map_err(&err)?;
                s.metrics_addr = parse_metrics_addr(&v).map_err(&err)?;
            }
            "sampleRate" => {
                let r = number(&value).map_err(&err)?;
                if !(r > 0.0 && r <= 1.0) {
                    return Err(err(format!(
                        "expected a number with 0 < rate <= 1, got {r}"
                    )));
                }
                s.sample_rate = r;
            }
            "maxBodySize" => {
                s.max_body_size = integer(&value, 0, usize::MAX as u64).map_err(&err)? as usize
            }
            "maxConcurrentConnections" => {
                s.max_concurrent_connections =
                    integer(&value, 1, 10_000_000).map_err(&err)? as usize
            }
            "connectionIdleTimeoutMs" => {
                s.connection_idle_timeout_ms =
                    integer(&value, 1_000, u32::MAX as u64).map_err(&err)?
            }
            "redactHeaders" => {
                let given = parse_name_list(&value, NameKind::Header).map_err(&err)?;
                s.redact_headers = effective_list(DEFAULT_REDACT_HEADERS, &given);
            }
            "redactQueryParams" => {
                let given = parse_name_list(&value, NameKind::QueryParam).map_err(&err)?;
                s.redact_query_params = effective_list(DEFAULT_REDACT_QUERY_PARAMS, &given);
            }
            "redactBodyFields" => {
                let given = parse_name_list(&value, NameKind::BodyField).map_err(&err)?;
                s.redact_body_fields = effective_list(DEFAULT_REDACT_BODY_FIELDS, &given);
            }
            "captureBackend" => {
                s.capture_backend = match text(&value).map_err(&err)?.as_str() {
                    "auto" => CaptureBackend::Auto,
                    "af_packet" => CaptureBackend::AfPacket,
                    "pcap" => CaptureBackend::Pcap,
                    other => {
                        return Err(err(format!(
                            "expected one of \"auto\", \"af_packet\", \"pcap\", got {other:?}"
                        )))
                    }
                }
            }
            "workers" => s.workers = Some(integer(&value, 1, 1024).map_err(&err)? as usize),
            "readFile" => {
                let v = text(&value).map_err(&err)?;
                if v.is_empty() {
                    return Err(err("expected a path to a pcap or pcapng file".into()));
                }
                s.read_file = Some(v);
            }
            "logLevel" => {
                s.log_level = match text(&value).map_err(&err)?.to_ascii_lowercase().as_str() {
                    "error" => LogLevel::Error,
                    "warn" => LogLevel::Warn,
                    "info" => LogLevel::Info,
                    "debug" => LogLevel::Debug,
                    other => {
                        return Err(err(format!(
                        "expected one of \"error\", \"warn\", \"info\", \"debug\", got {other:?}"
                    )))
                    }
                }
            }
            "outputBatchSize" => {
                s.output_batch_size = integer(&value, 1, 10_000).map_err(&err)? as usize
            }
            "outputBatchWaitMs" => {
                s.output_batch_wait_ms = integer(&value, 1, 600_000).map_err(&err)?
            }
            "outputConcurrency" => {
                s.output_concurrency = integer(&value, 1, 256).map_err(&err)? as usize
            }
            "outputQueueSize" => {
                s.output_queue_size = integer(&value, 1, 10_000_000).map_err(&err)? as usize
            }
            "outputDrainTimeoutMs" => {
                s.output_drain_timeout_ms = integer(&value, 0, 3_600_000).map_err(&err)?
            }
            "outputRetryBaseMs" => {
                s.output_retry_base_ms = integer(&value, 1, 60_000).map_err(&err)?
            }
            _ => unreachable!("every TABLE key is matched above"),
        }
        Ok(())
    }

    fn unknown(&self, name: &str) -> ConfigError {
        let known: Vec<String> = TABLE
            .iter()
            .filter(|s| match self.surface {
                Surface::Library => true,
                Surface::Env => s.env.is_some(),
                Surface::Cli => s.flag.is_some(),
            })
            .map(|s| self.name_of(s))
            .collect();
        ConfigError {
            name: name.to_string(),
            reason: format!("unknown setting; accepted: {}", known.join(", ")),
        }
    }

    /// Checks what only makes sense with every value known, and returns the settings.
    pub fn build(self) -> Result<Settings, ConfigError> {
        let s = self.settings;
        let name = |key: &str| {
            let spec = TABLE.iter().find(|s| s.key == key).expect("key in TABLE");
            match self.surface {
                Surface::Library => spec.key.to_string(),
                Surface::Env => spec.env.unwrap_or(spec.key).to_string(),
                Surface::Cli => spec.flag.unwrap_or(spec.key).to_string(),
            }
        };
        if !self.ports_set {
            return Err(ConfigError {
                name: name("ports"),
                reason:
                    "required: the TCP port(s) the application serves HTTP on, e.g. 8080 or 80,8080"
                        .into(),
            });
        }
        if s.output_format == OutputFormat::Otlp && s.output_url.is_none() {
            return Err(ConfigError {
                name: name("outputFormat"),
                reason: format!(
                    "\"otlp\" sends traces to the output URL, and {} is not set (e.g. https://collector:4318/v1/traces)",
                    name("outputUrl")
                ),
            });
        }
        if let Some(url) = &s.output_url {
            check_output_url(url).map_err(|reason| ConfigError {
                name: name("outputUrl"),
                reason,
            })?;
            let allowed = s.allow_insecure_output_url.unwrap_or(self.insecure_default);
            if s.output_url_is_insecure() && !allowed {
                let why = if s.allow_insecure_output_url == Some(false) {
                    format!("{} is false", name("allowInsecureOutputUrl"))
                } else if self.surface == Surface::Env {
                    "the sidecar refuses it".to_string()
                } else {
                    "NODE_ENV=production".to_string()
                };
                return Err(ConfigError {
                    name: name("outputUrl"),
                    reason: format!(
                        "{} is plain http to a host that is not loopback, which sends the captured traffic and the token in clear ({why}); use https://, or set {}=true to accept it",
                        url_label(url),
                        name("allowInsecureOutputUrl"),
                    ),
                });
            }
        }
        Ok(s)
    }
}

fn text(v: &RawValue) -> Result<String, String> {
    match v {
        RawValue::Text(t) => Ok(t.trim().to_string()),
        RawValue::Json(Value::String(t)) => Ok(t.clone()),
        RawValue::Json(other) => Err(format!("expected a string, got {other}")),
    }
}

fn boolean(v: &RawValue) -> Result<bool, String> {
    match v {
        RawValue::Json(Value::Bool(b)) => Ok(*b),
        RawValue::Text(t) => match t.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(true),
            "false" | "0" | "no" => Ok(false),
            other => Err(format!("expected true or false, got {other:?}")),
        },
        RawValue::Json(other) => Err(format!("expected a boolean, got {other}")),
    }
}

fn number(v: &RawValue) -> Result<f64, String> {
    match v {
        RawValue::Json(Value::Number(n)) => n
            .as_f64()
            .ok_or_else(|| format!("expected a number, got {n}")),
        RawValue::Text(t) => t
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .ok_or_else(|| format!("expected a number, got {t:?}")),
        RawValue::Json(other) => Err(format!("expected a number, got {other}")),
    }
}

fn integer(v: &RawValue, min: u64, max: u64) -> Result<u64, String> {
    let range = || {
        if max >= u32::MAX as u64 {
            format!("an integer >= {min}")
        } else {
            format!("an integer from {min} to {max}")
        }
    };
    let n = match v {
        RawValue::Json(Value::Number(n)) => n.as_u64(),
        RawValue::Text(t) => t.trim().parse::<u64>().ok(),
        RawValue::Json(_) => None,
    };
    let shown = match v {
        RawValue::Text(t) => format!("{t:?}"),
        RawValue::Json(j) => j.to_string(),
    };
    match n {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(format!("expected {}, got {shown}", range())),
    }
}

fn parse_ports(v: &RawValue) -> Result<Vec<u16>, String> {
    let items: Vec<RawValue> = match v {
        RawValue::Text(t) => t
            .split(',')
            .map(|p| RawValue::Text(p.trim().to_string()))
            .collect(),
        RawValue::Json(Value::Array(a)) => a.iter().cloned().map(RawValue::Json).collect(),
        RawValue::Json(n @ Value::Number(_)) => vec![RawValue::Json(n.clone())],
        RawValue::Json(Value::String(t)) => return parse_ports(&RawValue::Text(t.clone())),
        RawValue::Json(other) => return Err(format!("expected an array of ports, got {other}")),
    };
    let mut ports = Vec::with_capacity(items.len());
    for item in &items {
        let p =
            integer(item, 1, 65_535).map_err(|e| format!("each port must be 1-65535: {e}"))? as u16;
        if ports.contains(&p) {
            return Err(format!("port {p} is listed twice"));
        }
        ports.push(p);
    }
    if ports.is_empty() {
        return Err("at least one port is required".into());
    }
    Ok(ports)
}

/// What a name list holds (decides which names are valid).
#[derive(Clone, Copy)]
enum NameKind {
    Header,
    QueryParam,
    BodyField,
}

impl NameKind {
    fn what(self) -> &'static str {
        match self {
            NameKind::Header => "header names",
            NameKind::QueryParam => "query parameter names",
            NameKind::BodyField => "field names",
        }
    }
}

/// A comma-separated list (or a JSON array) of names, trimmed, lower-cased, without
/// duplicates; `none` may only come first (it drops the defaults, see
/// [`crate::redact::effective_list`]).
fn parse_name_list(v: &RawValue, kind: NameKind) -> Result<Vec<String>, String> {
    let what = kind.what();
    let names: Vec<String> = match v {
        RawValue::Text(t) => t.split(',').map(|s| s.trim().to_string()).collect(),
        RawValue::Json(Value::String(t)) => t.split(',').map(|s| s.trim().to_string()).collect(),
        RawValue::Json(Value::Array(a)) => a
            .iter()
            .map(|x| match x {
                Value::String(s) => Ok(s.trim().to_string()),
                other => Err(format!("expected {what} as strings, got {other}")),
            })
            .collect::<Result<_, _>>()?,
        RawValue::Json(other) => return Err(format!("expected an array of {what}, got {other}")),
    };
    let mut out: Vec<String> = Vec::new();
    for n in names.into_iter().filter(|n| !n.is_empty()) {
        if n.eq_ignore_ascii_case("none") {
            if !out.is_empty() {
                return Err(format!(
                    "\"none\" (drop the default list) must be the first entry, got it after {:?}",
                    out.last().map(String::as_str).unwrap_or_default()
                ));
            }
            out.push("none".into());
            continue;
        }
        let valid = match kind {
            NameKind::Header => n.bytes().all(is_token_byte),
            NameKind::QueryParam => {
                n.len() <= 256 && !n.chars().any(|c| c.is_control() || "&=#".contains(c))
            }
            NameKind::BodyField => n.len() <= 256 && !n.chars().any(char::is_control),
        };
        if !valid {
            let single = &what[..what.len() - 1];
            return Err(format!("{n:?} is not a valid {single}"));
        }
        let n = n.to_ascii_lowercase();
        if !out.contains(&n) {
            out.push(n);
        }
    }
    Ok(out)
}

/// RFC 9110 `tchar`.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Scheme (lower-cased) and host of an absolute URL (the host without brackets or port).
/// Errors never quote the URL: it may hold credentials.
fn url_parts(url: &str) -> Result<(String, &str), String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| "expected an http:// or https:// URL".to_string())?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        let shown: String = scheme.chars().take(16).collect();
        return Err(format!(
            "expected an http:// or https:// URL, got scheme {shown:?}"
        ));
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = if let Some(stripped) = host_port.strip_prefix('[') {
        stripped.split(']').next().unwrap_or("")
    } else {
        host_port.split(':').next().unwrap_or("")
    };
    if host.is_empty() {
        return Err("the URL has no host".to_string());
    }
    Ok((scheme, host))
}

/// The sidecar serves `/metrics` here unless `METRICS_ADDR` says otherwise (`off` disables it).
pub const DEFAULT_SIDECAR_METRICS_ADDR: &str = "0.0.0.0:9464";

/// `HOST:PORT` (host a name, an IPv4 address or a bracketed IPv6 address; port 0 lets the
/// system pick), or `off`/empty for none.
fn parse_metrics_addr(v: &str) -> Result<Option<String>, String> {
    let v = v.trim();
    if v.is_empty() || v.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let bad = || {
        format!(
            "expected HOST:PORT (e.g. 0.0.0.0:9464, 127.0.0.1:9464, [::]:9464) or \"off\", got {v:?}"
        )
    };
    if v.parse::<std::net::SocketAddr>().is_ok() {
        return Ok(Some(v.to_string()));
    }
    let (host, port) = v.rsplit_once(':').ok_or_else(bad)?;
    port.parse::<u16>().map_err(|_| bad())?;
    let host_ok = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if !host_ok {
        return Err(bad());
    }
    Ok(Some(v.to_string()))
}

fn check_output_url(url: &str) -> Result<(), String> {
    url_parts(url).map(|_| ())
}

/// `scheme://host[:port]` of a URL: what logs and errors may show of it (never the
/// userinfo, path, query or fragment, which can hold credentials).
pub fn url_label(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(not a URL)".into();
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let scheme: String = scheme.chars().take(16).collect();
    format!("{scheme}://{host}")
}

fn is_loopback_host(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

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
            "invalid setting --ports: required: the TCP port(s) the application serves HTTP on, e.g. 8080 or 80,8080"
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
    }

    #[test]
    fn errors_name_the_setting_on_each_surface() {
        let mut b = SettingsBuilder::new(Surface::Env, false);
        let e = b
            .set("MAX_BODY_SIZE", RawValue::Text("-1".into()))
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid setting MAX_BODY_SIZE: expected an integer >= 0, got \"-1\""
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
                    assert!(!s.output_url_is_insecure(), "{ok}");
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
            assert!(s.output_url_is_insecure());
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
        assert!(d.contains("[REDACTED]"), "{d}");
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
}
