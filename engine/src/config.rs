//! Settings: one table, one validation, three surfaces.
//!
//! The library's `createSniffer(config)` (camelCase keys), the sidecar's environment
//! (`MAX_BODY_SIZE`) and the command line (`--max-body-size`) all name the same settings.
//! Every surface feeds values through [`SettingsBuilder::set`], so a bad value gets the
//! same error text everywhere; the error names the setting the way the user spelled it.
//!
//! Invariants of a built [`Settings`]: every field is within its accepted range, `ports`
//! is non-empty without duplicates, and `output_url` (when set) is an absolute `http`/`https`
//! URL that obeys the production rule.

use std::fmt;

use serde_json::Value;

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

/// Validated settings. Construct with [`SettingsBuilder`].
#[derive(Clone, Debug)]
pub struct Settings {
    /// Interface name or `any`.
    pub interface: String,
    /// Monitored TCP ports (server side).
    pub ports: Vec<u16>,
    /// Where to POST messages.
    pub output_url: Option<String>,
    /// Bearer token for the output URL. Never logged.
    pub output_url_auth_token: Option<String>,
    /// Write JSON lines to stdout; `None` = the surface's default.
    pub output_stdout: Option<bool>,
    /// Fraction of connections observed, decided per connection.
    pub sample_rate: f64,
    /// Body bytes kept per message.
    pub max_body_size: usize,
    /// Connections tracked at once (all workers together).
    pub max_concurrent_connections: usize,
    /// Idle connections are evicted after this long (capture time).
    pub connection_idle_timeout_ms: u64,
    /// Lower-cased header names whose values are replaced by `[REDACTED]`.
    pub redact_headers: Vec<String>,
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
            output_url_auth_token: None,
            output_stdout: None,
            sample_rate: 1.0,
            max_body_size: 65_536,
            max_concurrent_connections: 10_000,
            connection_idle_timeout_ms: 60_000,
            redact_headers: DEFAULT_REDACT.iter().map(|s| s.to_string()).collect(),
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

/// Headers redacted unless configured otherwise.
pub const DEFAULT_REDACT: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];

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
    spec("outputUrlAuthToken", Some("OUTPUT_URL_AUTH_TOKEN"), None),
    spec("outputStdout", Some("OUTPUT_STDOUT"), Some("--stdout")),
    spec("sampleRate", Some("SAMPLE_RATE"), Some("--sample-rate")),
    spec(
        "maxBodySize",
        Some("MAX_BODY_SIZE"),
        Some("--max-body-size"),
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
    production: bool,
}

impl SettingsBuilder {
    /// A builder for values coming from `surface`. `production` is true when
    /// `NODE_ENV=production` (then the output URL must be `https://` unless loopback).
    pub fn new(surface: Surface, production: bool) -> Self {
        SettingsBuilder {
            surface,
            settings: Settings::default(),
            ports_set: false,
            production,
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
                let v = text(&value).map_err(&err)?;
                s.output_url = if v.is_empty() { None } else { Some(v) };
            }
            "outputUrlAuthToken" => {
                let v = text(&value).map_err(&err)?;
                if v.contains(['\r', '\n']) {
                    // Never echo the token itself.
                    return Err(err("must not contain line breaks".into()));
                }
                s.output_url_auth_token = if v.is_empty() { None } else { Some(v) };
            }
            "outputStdout" => s.output_stdout = Some(boolean(&value).map_err(&err)?),
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
            "redactHeaders" => s.redact_headers = parse_header_list(&value).map_err(&err)?,
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
        if let Some(url) = &s.output_url {
            check_output_url(url, self.production).map_err(|reason| ConfigError {
                name: name("outputUrl"),
                reason,
            })?;
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

fn parse_header_list(v: &RawValue) -> Result<Vec<String>, String> {
    let names: Vec<String> = match v {
        RawValue::Text(t) => t.split(',').map(|s| s.trim().to_string()).collect(),
        RawValue::Json(Value::String(t)) => t.split(',').map(|s| s.trim().to_string()).collect(),
        RawValue::Json(Value::Array(a)) => a
            .iter()
            .map(|x| match x {
                Value::String(s) => Ok(s.trim().to_string()),
                other => Err(format!("expected header names as strings, got {other}")),
            })
            .collect::<Result<_, _>>()?,
        RawValue::Json(other) => {
            return Err(format!("expected an array of header names, got {other}"))
        }
    };
    let mut out = Vec::new();
    for n in names.into_iter().filter(|n| !n.is_empty()) {
        if !n.bytes().all(is_token_byte) {
            return Err(format!("{n:?} is not a valid header name"));
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

fn check_output_url(url: &str, production: bool) -> Result<(), String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("expected an http:// or https:// URL, got {url:?}"))?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(format!(
            "expected an http:// or https:// URL, got scheme {scheme:?}"
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
        return Err(format!("the URL has no host: {url:?}"));
    }
    if production && scheme == "http" && !is_loopback_host(host) {
        return Err(format!(
            "with NODE_ENV=production only https:// URLs are accepted (plain http is allowed for loopback hosts only), got {url:?}"
        ));
    }
    Ok(())
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

    #[test]
    fn production_requires_https_except_loopback() {
        let build = |url: &str| {
            let mut b = SettingsBuilder::new(Surface::Env, true);
            b.set("PORTS", RawValue::Text("80".into())).unwrap();
            b.set("OUTPUT_URL", RawValue::Text(url.into())).unwrap();
            b.build()
        };
        assert!(build("http://collector.example/ingest").is_err());
        assert!(build("https://collector.example/ingest").is_ok());
        assert!(build("http://127.0.0.1:9000/x").is_ok());
        assert!(build("http://[::1]:9000/x").is_ok());
        assert!(build("http://localhost/x").is_ok());
        assert!(build("ftp://x").is_err());
    }

    #[test]
    fn idle_timeout_and_redaction() {
        assert!(cli(&[("--ports", "80"), ("--idle-timeout-ms", "999")]).is_err());
        let s = cli(&[("--ports", "80"), ("--redact-headers", "X-Api-Key, Cookie")]).unwrap();
        assert_eq!(s.redact_headers, vec!["x-api-key", "cookie"]);
        assert!(cli(&[("--ports", "80"), ("--redact-headers", "bad header")]).is_err());
    }
}
