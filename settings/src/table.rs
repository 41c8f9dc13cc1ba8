//! The settings table: one row per setting. **This is the one place to add a setting.**
//!
//! A row names the setting on every surface (library key, env var, CLI flag), says what it
//! accepts ([`Kind`]), its default ([`DefaultValue`]) and a line of help. Everything else is
//! derived from it: the engine's validation and defaults, the `tcp-sniffer` command line
//! (clap), the table in `docs/settings.md` (generated, see [`crate::docs`]), and the checks
//! that `node-addon/ts/types.ts` and the webhook's validators agree with it
//! (`settings/tests/consistency.rs`, `webhook/tests/settings_table.rs`).
//!
//! To add a setting:
//! 1. add a `pub const NAME: Setting = Setting::new(...)...;` row below and list it in
//!    [`TABLE`] (the order of `TABLE` is the order of the docs and of `--help`);
//! 2. add the field to the engine's `Settings` (`engine/src/config.rs`; the field name is the
//!    key in snake_case, its type what the [`Kind`] parses to: `u64`/`usize` for
//!    [`Kind::Int`], `f64` for [`Kind::Fraction`], `bool`, `String`, `Vec<u16>`,
//!    `Vec<String>`, an enum with `#[serde(rename_all = "snake_case")]` for [`Kind::Choice`],
//!    `Option<_>` when the default is [`DefaultValue::Unset`]);
//! 3. add the key to `SnifferConfig` in `node-addon/ts/types.ts`;
//! 4. regenerate the docs: `UPDATE_DOCS=1 cargo test -p tcp-sniffer-settings --test consistency`.
//!
//! The tests fail until 2–4 are done.

use crate::value::{
    NameKind, DEFAULT_REDACT_BODY_FIELDS, DEFAULT_REDACT_HEADERS, DEFAULT_REDACT_QUERY_PARAMS,
};
use crate::LogLevel;

/// One setting.
#[derive(Clone, Copy, Debug)]
pub struct Setting {
    /// Library key (`createSniffer({...})`), camelCase. Every setting has one.
    pub key: &'static str,
    /// Environment variable (the sidecar reads exactly these), if any.
    pub env: Option<&'static str>,
    /// Command-line flag, if any.
    pub flag: Option<Flag>,
    /// What it accepts.
    pub kind: Kind,
    /// Its default.
    pub default: DefaultValue,
    /// One line of help: what it does (the accepted values and default are added from
    /// `kind` and `default`).
    pub help: &'static str,
    /// Keys of settings it cannot be given with, on any surface (checked by
    /// [`crate::rules::check`]; the command line also tells clap, exit 2).
    pub conflicts: &'static [&'static str],
    /// A setting this one needs when it has a certain value (checked by
    /// [`crate::rules::check`] on every surface, and by the webhook on what it injects).
    pub needs: Option<Needs>,
    /// Whether `createSniffer` takes it (false: a setting of the sidecar process only,
    /// read from its environment, such as `STATS_INTERVAL_MS`).
    pub library: bool,
}

/// "When this setting is `when`, `key` must be set too."
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Needs {
    /// The value (normalised text, e.g. `otlp`) that needs the other setting.
    pub when: &'static str,
    /// Library key of the setting it needs.
    pub key: &'static str,
    /// Why, for the error: it reads "`when` {why}, and {key} is not set".
    pub why: &'static str,
}

/// A command-line flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Flag {
    /// Long name without the dashes (`max-body-size`).
    pub long: &'static str,
    /// Short letter (`-p`), if any.
    pub short: Option<char>,
}

/// What a setting accepts (and what it parses to, see [`crate::value::parse`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A Linux interface name (1–15 bytes, no `/`, `:` or whitespace, not `.`/`..`) or `any`.
    Interface,
    /// TCP ports 1–65535, comma-separated in text (an array or a number in the library), no
    /// duplicates, at least one; or `any` (every TCP port, HTTP recognised by content).
    Ports,
    /// An absolute `http://` or `https://` URL with a host. Never echoed in errors.
    Url,
    /// A secret string without line breaks. Never echoed in errors.
    Secret,
    /// `true`/`false` (text also `1`/`0`/`yes`/`no`).
    Bool,
    /// A number with 0 < x ≤ 1.
    Fraction,
    /// An integer within `min..=max`.
    Int {
        /// Smallest accepted.
        min: u64,
        /// Largest accepted.
        max: u64,
    },
    /// One of these words (case-insensitive; normalised to lower case).
    Choice(&'static [&'static str]),
    /// A list of names, added to the default list; `none` first drops the defaults.
    Names(NameKind),
    /// A file path.
    Path,
    /// `HOST:PORT` to listen on (a name, an IPv4 address or a bracketed IPv6 address; port 0
    /// lets the system pick), or `off`/empty for none.
    HostPort,
}

/// A setting's default.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultValue {
    /// The same everywhere; written as text, parsed by the row's [`Kind`].
    Value(&'static str),
    /// The default list that given names are added to ([`Kind::Names`]).
    List(&'static [&'static str]),
    /// Not set; the text says what happens then (for the docs and `--help`).
    Unset(&'static str),
    /// Must be given; the text is the error's reason when it is not.
    Required(&'static str),
    /// Depends on the surface (text, parsed by the row's [`Kind`]).
    PerSurface {
        /// The command line.
        cli: &'static str,
        /// The sidecar (environment).
        env: &'static str,
        /// `createSniffer`.
        library: &'static str,
    },
}

impl Setting {
    const fn new(key: &'static str, kind: Kind, default: DefaultValue, help: &'static str) -> Self {
        Setting {
            key,
            env: None,
            flag: None,
            kind,
            default,
            help,
            conflicts: &[],
            needs: None,
            library: true,
        }
    }

    const fn needs(self, when: &'static str, key: &'static str, why: &'static str) -> Self {
        Setting {
            needs: Some(Needs { when, key, why }),
            ..self
        }
    }

    const fn sidecar_only(self) -> Self {
        Setting {
            library: false,
            ..self
        }
    }

    const fn env(self, env: &'static str) -> Self {
        Setting {
            env: Some(env),
            ..self
        }
    }

    const fn flag(self, long: &'static str) -> Self {
        Setting {
            flag: Some(Flag { long, short: None }),
            ..self
        }
    }

    const fn short(self, long: &'static str, short: char) -> Self {
        Setting {
            flag: Some(Flag {
                long,
                short: Some(short),
            }),
            ..self
        }
    }

    const fn conflicts(self, keys: &'static [&'static str]) -> Self {
        Setting {
            conflicts: keys,
            ..self
        }
    }

    /// The default as text, for a setting whose default is a [`DefaultValue::Value`]
    /// (usable in constants, e.g. another program's own defaults). Fails to compile (in a
    /// `const`) or panics for any other default.
    pub const fn default_text(&self) -> &'static str {
        match self.default {
            DefaultValue::Value(v) => v,
            _ => panic!("this setting's default is not a single value"),
        }
    }

    /// `--long` of the flag, if any.
    pub fn long_flag(&self) -> Option<String> {
        self.flag.map(|f| format!("--{}", f.long))
    }
}

const fn int(min: u64, max: u64) -> Kind {
    Kind::Int { min, max }
}

/// The largest `maxBodySize`: 16 MiB.
pub const MAX_BODY_SIZE_LIMIT: u64 = 16 * 1024 * 1024;

use DefaultValue::{List, PerSurface, Required, Unset, Value};

/// `interface`.
pub const INTERFACE: Setting = Setting::new(
    "interface",
    Kind::Interface,
    Value("any"),
    "interface to capture on",
)
.env("INTERFACE")
.short("interface", 'i');

/// `ports`.
pub const PORTS: Setting = Setting::new(
    "ports",
    Kind::Ports,
    Required("required: the TCP port(s) the application serves HTTP on, e.g. 8080 or 80,8080, or any"),
    "server ports whose HTTP is observed; `any`: HTTP/1 and the HTTP/2 preface are recognised by content on every TCP port (the side that sends the request line is the client; connections that are not HTTP are let go after the first bytes and counted in `flow.connections_not_http`)",
)
.env("PORTS")
.short("ports", 'p');

/// `outputUrl`.
pub const OUTPUT_URL: Setting = Setting::new(
    "outputUrl",
    Kind::Url,
    Unset("none"),
    "POST each message to this URL; `https://`, or `http://` only to a loopback host (`localhost`, `127.0.0.0/8`, `::1`) or with `allowInsecureOutputUrl`. Errors and logs show only `scheme://host[:port]`",
)
.env("OUTPUT_URL")
.flag("output-url");

/// `allowInsecureOutputUrl`.
pub const ALLOW_INSECURE_OUTPUT_URL: Setting = Setting::new(
    "allowInsecureOutputUrl",
    Kind::Bool,
    Unset("CLI and library: `true` with a warning (`false` with `NODE_ENV=production`); sidecar: `false` (refused, exit 2)"),
    "accept an `http://` output URL to a host that is not loopback (traffic and token cross the network in clear)",
)
.env("ALLOW_INSECURE_OUTPUT_URL")
.flag("allow-insecure-output-url");

/// `outputUrlAuthToken`: env only on the command line (a token in argv is visible to every
/// user of the host).
pub const OUTPUT_URL_AUTH_TOKEN: Setting = Setting::new(
    "outputUrlAuthToken",
    Kind::Secret,
    Unset("none"),
    "sent as `Authorization: Bearer …` to the output URL; never logged",
)
.env("OUTPUT_URL_AUTH_TOKEN");

/// `outputStdout`.
pub const OUTPUT_STDOUT: Setting = Setting::new(
    "outputStdout",
    Kind::Bool,
    Unset("library: `false`; sidecar and CLI: `true` when no output URL is set"),
    "write messages to stdout as JSON lines",
)
.env("OUTPUT_STDOUT")
.flag("stdout");

/// `outputFormat`.
pub const OUTPUT_FORMAT: Setting = Setting::new(
    "outputFormat",
    Kind::Choice(&["json", "otlp"]),
    Value("json"),
    "what the output URL receives: `json`, the messages (NDJSON when batched); `otlp`, OTLP/HTTP protobuf traces to `outputUrl` as given (e.g. `…:4318/v1/traces`), one span per exchange, gzip'd, with the same token, batching (`outputBatchSize` spans), retries and counters; a `200` whose `partial_success` says the collector dropped spans is not retried: the spans count in `output.otlp_spans_rejected` (their messages still count as `delivered`) and a rate-limited warn line carries the collector's `error_message`",
)
.env("OUTPUT_FORMAT")
.flag("output-format")
.needs(
    "otlp",
    "outputUrl",
    "sends traces to the output URL (e.g. https://collector:4318/v1/traces)",
);

/// `metricsAddr`.
pub const METRICS_ADDR: Setting = Setting::new(
    "metricsAddr",
    Kind::HostPort,
    PerSurface {
        cli: "off",
        env: "0.0.0.0:9464",
        library: "off",
    },
    "serve `GET /metrics` at `HOST:PORT` (Prometheus text format, OpenMetrics on request; port 0: any free port); a port in use fails the start (exit 1)",
)
.env("METRICS_ADDR")
.flag("metrics-addr");

/// `sampleRate`.
pub const SAMPLE_RATE: Setting = Setting::new(
    "sampleRate",
    Kind::Fraction,
    Value("1"),
    "fraction of connections observed, decided per connection (deterministic hash of its addresses and ports)",
)
.env("SAMPLE_RATE")
.flag("sample-rate");

/// `maxBodySize`.
pub const MAX_BODY_SIZE: Setting = Setting::new(
    "maxBodySize",
    int(0, MAX_BODY_SIZE_LIMIT),
    Value("65536"),
    "body bytes kept per message (0 = no bodies)",
)
.env("MAX_BODY_SIZE")
.flag("max-body-size");

/// `stdoutBodies`.
pub const STDOUT_BODIES: Setting = Setting::new(
    "stdoutBodies",
    Kind::Bool,
    PerSurface {
        cli: "true",
        env: "false",
        library: "false",
    },
    "messages written to stdout (a container's log) carry `body`; without, `body` is `\"\"` and `bodySize` stays. The callback, events and the output URL carry bodies up to `maxBodySize`",
)
.env("STDOUT_BODIES")
.flag("stdout-bodies");

/// `decodeBodies`.
pub const DECODE_BODIES: Setting = Setting::new(
    "decodeBodies",
    Kind::Bool,
    Value("true"),
    "decompress `gzip`, `deflate`, `br` and `zstd` bodies as they arrive: `body` holds the decoded bytes (at most `maxBodySize`), `decodedBodySize` their length, `bodySize` the length on the wire; decoding stops at 64× the compressed bytes (bomb limit). HTTP/1 and HTTP/2 bodies alike; not gRPC's per-message compression (`grpc-encoding`), whose bodies stay as sent",
)
.env("DECODE_BODIES")
.flag("decode-bodies");

/// `maxConcurrentConnections`.
pub const MAX_CONCURRENT_CONNECTIONS: Setting = Setting::new(
    "maxConcurrentConnections",
    int(1, 10_000_000),
    Value("10000"),
    "connections tracked at once; past it new connections are not tracked and are counted",
)
.env("MAX_CONCURRENT_CONNECTIONS")
.flag("max-connections");

/// `connectionIdleTimeoutMs`.
pub const CONNECTION_IDLE_TIMEOUT_MS: Setting = Setting::new(
    "connectionIdleTimeoutMs",
    int(1_000, u32::MAX as u64),
    Value("60000"),
    "idle connections are evicted after this many milliseconds (capture time when reading a file)",
)
.env("CONNECTION_IDLE_TIMEOUT_MS")
.flag("idle-timeout-ms");

/// `redactHeaders`.
pub const REDACT_HEADERS: Setting = Setting::new(
    "redactHeaders",
    Kind::Names(NameKind::Header),
    List(DEFAULT_REDACT_HEADERS),
    "headers whose values become `[REDACTED]`",
)
.env("REDACT_HEADERS")
.flag("redact-headers");

/// `redactQueryParams`.
pub const REDACT_QUERY_PARAMS: Setting = Setting::new(
    "redactQueryParams",
    Kind::Names(NameKind::QueryParam),
    List(DEFAULT_REDACT_QUERY_PARAMS),
    "query parameters (compared after percent-decoding) whose values in `url` become `[REDACTED]`; the rest of the URL is kept as sent",
)
.env("REDACT_QUERY_PARAMS")
.flag("redact-query-params");

/// `redactBodyFields`.
pub const REDACT_BODY_FIELDS: Setting = Setting::new(
    "redactBodyFields",
    Kind::Names(NameKind::BodyField),
    List(DEFAULT_REDACT_BODY_FIELDS),
    "JSON object keys (any depth) and `application/x-www-form-urlencoded` fields whose values become `\"[REDACTED]\"`",
)
.env("REDACT_BODY_FIELDS")
.flag("redact-body-fields");

/// `captureBackend`.
pub const CAPTURE_BACKEND: Setting = Setting::new(
    "captureBackend",
    Kind::Choice(&["auto", "af_packet", "pcap"]),
    Value("auto"),
    "live capture backend; `auto` is AF_PACKET, falling back to libpcap",
)
.env("CAPTURE_BACKEND")
.flag("backend");

/// `workers`.
pub const WORKERS: Setting = Setting::new(
    "workers",
    int(1, 1024),
    Unset("live: CPUs available (cgroup-aware); file replay: 1"),
    "worker threads",
)
.env("WORKERS")
.flag("workers");

/// `readFile`: not an env var (the sidecar takes `--read` as its own flag).
pub const READ_FILE: Setting = Setting::new(
    "readFile",
    Kind::Path,
    Unset("none"),
    "replay this pcap or pcapng file instead of capturing live",
)
.short("read", 'r')
.conflicts(&["interface", "captureBackend"]);

/// `logLevel`.
pub const LOG_LEVEL: Setting = Setting::new(
    "logLevel",
    Kind::Choice(LogLevel::NAMES),
    Value("info"),
    "log verbosity (logs are JSON lines on stderr)",
)
.env("LOG_LEVEL")
.flag("log-level");

/// `outputBatchSize`.
pub const OUTPUT_BATCH_SIZE: Setting = Setting::new(
    "outputBatchSize",
    int(1, 10_000),
    Value("1"),
    "messages per POST to the output URL; above 1, POSTs carry `application/x-ndjson` with `Content-Encoding: gzip`",
)
.env("OUTPUT_BATCH_SIZE")
.flag("output-batch-size");

/// `outputBatchWaitMs`.
pub const OUTPUT_BATCH_WAIT_MS: Setting = Setting::new(
    "outputBatchWaitMs",
    int(1, 600_000),
    Value("1000"),
    "a partial POST batch is sent after this many milliseconds",
)
.env("OUTPUT_BATCH_WAIT_MS")
.flag("output-batch-wait-ms");

/// `outputConcurrency`.
pub const OUTPUT_CONCURRENCY: Setting = Setting::new(
    "outputConcurrency",
    int(1, 256),
    Value("4"),
    "concurrent POST senders",
)
.env("OUTPUT_CONCURRENCY")
.flag("output-concurrency");

/// `outputQueueSize`.
pub const OUTPUT_QUEUE_SIZE: Setting = Setting::new(
    "outputQueueSize",
    int(1, 10_000_000),
    Value("10000"),
    "messages waiting per output (and in the JavaScript delivery queue) before new ones are dropped and counted",
)
.env("OUTPUT_QUEUE_SIZE")
.flag("output-queue-size");

/// `outputDrainTimeoutMs`.
pub const OUTPUT_DRAIN_TIMEOUT_MS: Setting = Setting::new(
    "outputDrainTimeoutMs",
    int(0, 3_600_000),
    Value("10000"),
    "on stop, pending deliveries get this many milliseconds before they are dropped and counted",
)
.env("OUTPUT_DRAIN_TIMEOUT_MS")
.flag("output-drain-timeout-ms");

/// `outputRetryBaseMs`.
pub const OUTPUT_RETRY_BASE_MS: Setting = Setting::new(
    "outputRetryBaseMs",
    int(1, 60_000),
    Value("1000"),
    "first retry delay of the output URL in milliseconds; retries wait 1×, 2×, 4× this, each ±20 % at random (so a fleet does not retry in step); a `Retry-After` (seconds) on a 429/5xx lengthens the wait, up to 4× this × 1.2",
)
.env("OUTPUT_RETRY_BASE_MS")
.flag("output-retry-base-ms");

/// `statsIntervalMs`: the sidecar's own (it logs the counters); not a library option
/// (`stats()` is there to call) nor a flag (`--stats` prints them at the end).
pub const STATS_INTERVAL_MS: Setting = Setting::new(
    "statsIntervalMs",
    int(1_000, u32::MAX as u64),
    Value("60000"),
    "the sidecar logs its counters every this many milliseconds",
)
.env("STATS_INTERVAL_MS")
.sidecar_only();

/// Every setting, in the order of the docs and of `--help`.
pub const TABLE: &[Setting] = &[
    INTERFACE,
    PORTS,
    OUTPUT_URL,
    ALLOW_INSECURE_OUTPUT_URL,
    OUTPUT_URL_AUTH_TOKEN,
    OUTPUT_STDOUT,
    OUTPUT_FORMAT,
    METRICS_ADDR,
    SAMPLE_RATE,
    MAX_BODY_SIZE,
    STDOUT_BODIES,
    DECODE_BODIES,
    MAX_CONCURRENT_CONNECTIONS,
    CONNECTION_IDLE_TIMEOUT_MS,
    REDACT_HEADERS,
    REDACT_QUERY_PARAMS,
    REDACT_BODY_FIELDS,
    CAPTURE_BACKEND,
    WORKERS,
    READ_FILE,
    LOG_LEVEL,
    OUTPUT_BATCH_SIZE,
    OUTPUT_BATCH_WAIT_MS,
    OUTPUT_CONCURRENCY,
    OUTPUT_QUEUE_SIZE,
    OUTPUT_DRAIN_TIMEOUT_MS,
    OUTPUT_RETRY_BASE_MS,
    STATS_INTERVAL_MS,
];

/// The row with key `key` (library keys, and the keys of sidecar-only rows).
pub fn by_key(key: &str) -> Option<&'static Setting> {
    TABLE.iter().find(|s| s.key == key)
}

/// The row with environment variable `env`.
pub fn by_env(env: &str) -> Option<&'static Setting> {
    TABLE.iter().find(|s| s.env == Some(env))
}

/// The row with flag `--long` (given with its dashes).
pub fn by_flag(flag: &str) -> Option<&'static Setting> {
    let long = flag.strip_prefix("--")?;
    TABLE
        .iter()
        .find(|s| s.flag.is_some_and(|f| f.long == long))
}

/// Environment variables that are settings (the sidecar reads exactly these).
pub fn env_names() -> impl Iterator<Item = &'static str> {
    TABLE.iter().filter_map(|s| s.env)
}

/// Library keys (what `createSniffer` takes).
pub fn library_keys() -> impl Iterator<Item = &'static str> {
    TABLE.iter().filter(|s| s.library).map(|s| s.key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_well_formed() {
        for (i, a) in TABLE.iter().enumerate() {
            assert!(
                a.key.chars().next().unwrap().is_ascii_lowercase()
                    && a.key.chars().all(|c| c.is_ascii_alphanumeric()),
                "{}: keys are camelCase",
                a.key
            );
            if let Some(e) = a.env {
                assert!(
                    e.chars()
                        .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'),
                    "{e}"
                );
            }
            if let Some(f) = a.flag {
                assert!(
                    f.long
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                    "{}",
                    f.long
                );
            }
            for c in a.conflicts {
                assert!(by_key(c).is_some_and(|r| r.flag.is_some()), "{c}");
            }
            if let Some(n) = a.needs {
                assert!(by_key(n.key).is_some(), "{}", n.key);
                assert!(
                    a.parse(&crate::RawValue::Text(n.when.into())).is_ok(),
                    "{}: {} is not a value it takes",
                    a.key,
                    n.when
                );
            }
            assert!(a.library || a.env.is_some(), "{}: on no surface", a.key);
            for b in &TABLE[i + 1..] {
                assert_ne!(a.key, b.key);
                assert!(a.env.is_none() || a.env != b.env, "{:?}", a.env);
                assert!(
                    a.flag.is_none()
                        || (a.flag.map(|f| f.long) != b.flag.map(|f| f.long)
                            && (a.flag.unwrap().short.is_none()
                                || a.flag.map(|f| f.short) != b.flag.map(|f| f.short))),
                    "{:?}",
                    a.flag
                );
            }
        }
    }

    #[test]
    fn lookups() {
        assert_eq!(
            by_flag("--max-connections").unwrap().key,
            "maxConcurrentConnections"
        );
        assert_eq!(by_env("MAX_BODY_SIZE").unwrap().key, "maxBodySize");
        assert!(by_flag("max-connections").is_none());
        assert!(by_env("READ_FILE").is_none());
        assert_eq!(env_names().count(), TABLE.len() - 1);
    }
}
