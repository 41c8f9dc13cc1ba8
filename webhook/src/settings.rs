//! Settings of the webhook server and of the sidecar it injects.
//!
//! Every setting can be given as a flag or as an environment variable (flag wins). [`Args`] is
//! what clap parses; [`Args::validate`] turns it into checked [`Settings`] or a [`SettingsError`]
//! that names the setting and the values it accepts. The binary prints that error and exits 2.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::values;
use tcp_sniffer_settings::{table, LogLevel};

/// Raw command line / environment, as parsed by clap. Validate with [`Args::validate`].
#[derive(Debug, Clone, Parser)]
#[command(
    name = "tcp-sniffer-webhook",
    version,
    about = "Mutating admission webhook that injects the tcp-sniffer sidecar into pods."
)]
pub struct Args {
    /// Address to listen on (HTTPS only).
    #[arg(long = "listen", env = "LISTEN_ADDR", default_value = "0.0.0.0:8443")]
    pub listen: String,

    /// PEM file with the server certificate chain (leaf first).
    #[arg(long = "tls-cert", env = "TLS_CERT_FILE")]
    pub tls_cert: Option<PathBuf>,

    /// PEM file with the server's private key (PKCS#8, PKCS#1 or SEC1).
    #[arg(long = "tls-key", env = "TLS_KEY_FILE")]
    pub tls_key: Option<PathBuf>,

    /// How often the certificate and key files are checked for changes, in milliseconds.
    #[arg(
        long = "tls-reload-interval-ms",
        env = "TLS_RELOAD_INTERVAL_MS",
        default_value = "5000"
    )]
    pub tls_reload_interval_ms: String,

    /// Image of the tcp-sniffer sidecar (required).
    #[arg(long = "sniffer-image", env = "SNIFFER_IMAGE")]
    pub sniffer_image: Option<String>,

    /// imagePullPolicy of the sidecar: Always, IfNotPresent or Never.
    #[arg(
        long = "sniffer-image-pull-policy",
        env = "SNIFFER_IMAGE_PULL_POLICY",
        default_value = "IfNotPresent"
    )]
    pub sniffer_image_pull_policy: String,

    /// Default OUTPUT_URL written into the sidecar (http:// or https://); empty = none (stdout).
    #[arg(long = "output-url", env = "DEFAULT_OUTPUT_URL", default_value = "")]
    pub output_url: String,

    /// Name of the Secret that holds the output URL's bearer token; empty = no token env.
    #[arg(
        long = "token-secret-name",
        env = "TOKEN_SECRET_NAME",
        default_value = ""
    )]
    pub token_secret_name: String,

    /// Key inside that Secret.
    #[arg(
        long = "token-secret-key",
        env = "TOKEN_SECRET_KEY",
        default_value = "token"
    )]
    pub token_secret_key: String,

    /// Default capture interface of the sidecar.
    #[arg(
        long = "interface",
        env = "DEFAULT_INTERFACE",
        default_value = table::INTERFACE.default_text()
    )]
    pub interface: String,

    /// Default sample rate of the sidecar (0 < rate <= 1).
    #[arg(
        long = "sample-rate",
        env = "DEFAULT_SAMPLE_RATE",
        default_value = table::SAMPLE_RATE.default_text()
    )]
    pub sample_rate: String,

    /// Default max body size of the sidecar, in bytes (0 to 16 MiB).
    #[arg(
        long = "max-body-size",
        env = "DEFAULT_MAX_BODY_SIZE",
        default_value = table::MAX_BODY_SIZE.default_text()
    )]
    pub max_body_size: String,

    /// Default output format of the sidecar: json or otlp (otlp needs an output URL); empty =
    /// the sidecar's own default (json).
    #[arg(
        long = "output-format",
        env = "DEFAULT_OUTPUT_FORMAT",
        default_value = ""
    )]
    pub output_format: String,

    /// Default messages per POST of the sidecar (1-10000); empty = the sidecar's default (1).
    #[arg(
        long = "output-batch-size",
        env = "DEFAULT_OUTPUT_BATCH_SIZE",
        default_value = ""
    )]
    pub output_batch_size: String,

    /// Default CA bundle for the output URL: a ConfigMap `NAME` (key ca.crt) or `NAME/KEY`,
    /// which must exist in every injected pod's namespace; empty = the image's roots.
    #[arg(
        long = "ca-bundle-configmap",
        env = "DEFAULT_CA_BUNDLE_CONFIGMAP",
        default_value = ""
    )]
    pub ca_bundle_configmap: String,

    /// Port of the sidecar's metrics endpoint (METRICS_ADDR, container port `metrics`).
    #[arg(
        long = "sidecar-metrics-port",
        env = "SIDECAR_METRICS_PORT",
        default_value = "9464"
    )]
    pub metrics_port: String,

    /// CPU request of the sidecar (Kubernetes quantity; empty = none).
    #[arg(
        long = "sidecar-cpu-request",
        env = "SIDECAR_CPU_REQUEST",
        default_value = "50m"
    )]
    pub cpu_request: String,

    /// Memory request of the sidecar (Kubernetes quantity; empty = none).
    #[arg(
        long = "sidecar-memory-request",
        env = "SIDECAR_MEMORY_REQUEST",
        default_value = "64Mi"
    )]
    pub memory_request: String,

    /// CPU limit of the sidecar (Kubernetes quantity; empty = none).
    #[arg(
        long = "sidecar-cpu-limit",
        env = "SIDECAR_CPU_LIMIT",
        default_value = "500m"
    )]
    pub cpu_limit: String,

    /// Memory limit of the sidecar (Kubernetes quantity; empty = none).
    #[arg(
        long = "sidecar-memory-limit",
        env = "SIDECAR_MEMORY_LIMIT",
        default_value = "256Mi"
    )]
    pub memory_limit: String,

    /// UID the sidecar runs as. 0 runs it as root (still only NET_RAW); any other value also
    /// sets runAsNonRoot: true.
    #[arg(
        long = "sidecar-run-as-user",
        env = "SIDECAR_RUN_AS_USER",
        default_value = "65532"
    )]
    pub run_as_user: String,

    /// Inject as a native sidecar (init container with restartPolicy: Always; Kubernetes >= 1.29).
    /// false: a plain container, for older clusters; pods that run to completion (Jobs) are
    /// then skipped with a warning.
    #[arg(
        long = "native-sidecar",
        env = "NATIVE_SIDECAR",
        default_value = "true"
    )]
    pub native_sidecar: String,

    /// Largest request body accepted on /mutate, in bytes; larger bodies get 413. The API
    /// server itself refuses objects over 3 MiB.
    #[arg(
        long = "max-request-bytes",
        env = "MAX_REQUEST_BYTES",
        default_value = "3145728"
    )]
    pub max_request_bytes: String,

    /// Most TLS connections open at once. At the cap, the connection idle for longest is
    /// closed to make room (one with a request in flight is never closed); the cap is lowered
    /// to fit the process's open-file limit.
    #[arg(
        long = "max-connections",
        env = "MAX_CONNECTIONS",
        default_value = "4096"
    )]
    pub max_connections: String,

    /// Address of the plain-HTTP probe listener (GET /healthz and /readyz only, nothing else),
    /// for the kubelet's probes: apart from the TLS listener, so that clients filling its
    /// connection cap cannot fail the probes. Empty = no probe listener.
    #[arg(
        long = "probe-addr",
        env = "PROBE_ADDR",
        default_value = "0.0.0.0:8081"
    )]
    pub probe_addr: String,

    /// After SIGTERM, keep serving this long (ms) before closing the listener, so the
    /// API server stops sending to this replica first; /readyz answers 503 meanwhile.
    #[arg(
        long = "shutdown-delay-ms",
        env = "SHUTDOWN_DELAY_MS",
        default_value = "3000"
    )]
    pub shutdown_delay_ms: String,

    /// After the listener is closed, wait at most this long (ms) for in-flight requests.
    #[arg(
        long = "shutdown-timeout-ms",
        env = "SHUTDOWN_TIMEOUT_MS",
        default_value = "20000"
    )]
    pub shutdown_timeout_ms: String,

    /// Log level: error, warn, info or debug.
    #[arg(
        long = "log-level",
        env = "LOG_LEVEL",
        default_value = table::LOG_LEVEL.default_text()
    )]
    pub log_level: String,

    /// Certificate bootstrap (deploy/overlays/self-signed): the Secret, in the pod's namespace,
    /// that holds the webhook's own CA and certificate; made at start when empty, then written
    /// to --tls-cert/--tls-key, and the CA patched into the webhook configuration. Empty = off.
    #[arg(
        long = "bootstrap-secret",
        env = "BOOTSTRAP_SECRET",
        default_value = ""
    )]
    pub bootstrap_secret: String,

    /// Certificate bootstrap: the MutatingWebhookConfiguration whose caBundles are set.
    #[arg(
        long = "bootstrap-webhook-config",
        env = "BOOTSTRAP_WEBHOOK_CONFIG",
        default_value = "tcp-sniffer"
    )]
    pub bootstrap_webhook_config: String,

    /// Certificate bootstrap: the Service the API server calls (the certificate's names).
    #[arg(
        long = "bootstrap-service",
        env = "BOOTSTRAP_SERVICE",
        default_value = "tcp-sniffer-webhook"
    )]
    pub bootstrap_service: String,

    /// Certificate bootstrap: namespace of the Secret and the Service (downward API); empty =
    /// the service account's namespace.
    #[arg(long = "pod-namespace", env = "POD_NAMESPACE", default_value = "")]
    pub pod_namespace: String,
}

/// A setting was missing or out of range. The message names the setting (flag and env var)
/// and what it accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SettingsError {
    /// `--flag / ENV_VAR` of the offending setting.
    pub setting: &'static str,
    /// What is wrong and what is accepted.
    pub message: String,
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid setting {}: {}", self.setting, self.message)
    }
}

impl std::error::Error for SettingsError {}

/// Validated settings of the whole process.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Server side: listener, TLS, limits, shutdown.
    pub server: ServerSettings,
    /// What the injected sidecar looks like.
    pub inject: InjectSettings,
    /// Log level of the webhook's own log lines.
    pub log_level: LogLevel,
    /// Certificate bootstrap before serving (None: the certificate files come from elsewhere).
    pub bootstrap: Option<crate::bootstrap::BootstrapSettings>,
}

/// Settings of the HTTPS server.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Listen address.
    pub listen: SocketAddr,
    /// Certificate chain file (PEM).
    pub tls_cert: PathBuf,
    /// Private key file (PEM).
    pub tls_key: PathBuf,
    /// Poll interval for certificate changes.
    pub tls_reload_interval: Duration,
    /// Largest accepted `/mutate` body.
    pub max_request_bytes: u64,
    /// Concurrent connection cap.
    pub max_connections: usize,
    /// Plain-HTTP probe listener address (None: no probe listener).
    pub probe_addr: Option<SocketAddr>,
    /// Serve-on delay after SIGTERM.
    pub shutdown_delay: Duration,
    /// Drain timeout after the listener closes.
    pub shutdown_timeout: Duration,
}

/// Resource requests and limits of the sidecar; `None` leaves the entry out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SidecarResources {
    /// CPU request.
    pub cpu_request: Option<String>,
    /// Memory request.
    pub memory_request: Option<String>,
    /// CPU limit.
    pub cpu_limit: Option<String>,
    /// Memory limit.
    pub memory_limit: Option<String>,
}

/// Everything [`crate::mutate`] needs: the sidecar's fixed shape and the per-pod defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct InjectSettings {
    /// Sidecar image.
    pub image: String,
    /// Sidecar imagePullPolicy.
    pub image_pull_policy: String,
    /// Default OUTPUT_URL (None: not set, the sidecar writes to stdout).
    pub output_url: Option<String>,
    /// Secret name and key for OUTPUT_URL_AUTH_TOKEN (None: no token env).
    pub token_secret: Option<(String, String)>,
    /// Default INTERFACE.
    pub interface: String,
    /// Default SAMPLE_RATE, already normalised as text.
    pub sample_rate: String,
    /// Default MAX_BODY_SIZE.
    pub max_body_size: u64,
    /// Resources.
    pub resources: SidecarResources,
    /// runAsUser (0 = root).
    pub run_as_user: i64,
    /// Inject as an init container with restartPolicy: Always.
    pub native_sidecar: bool,
    /// Default OUTPUT_FORMAT (None: the sidecar's default).
    pub output_format: Option<String>,
    /// Default OUTPUT_BATCH_SIZE (None: the sidecar's default).
    pub output_batch_size: Option<u32>,
    /// Default CA bundle ConfigMap (name, key) for pods with an output URL.
    pub ca_bundle: Option<(String, String)>,
    /// Port of the sidecar's metrics endpoint.
    pub metrics_port: u16,
}

impl InjectSettings {
    /// Settings with the defaults of the command line and the given image; handy for tests.
    pub fn with_image(image: &str) -> Self {
        InjectSettings {
            image: image.to_string(),
            image_pull_policy: "IfNotPresent".into(),
            output_url: None,
            token_secret: None,
            // The sidecar's own defaults (the settings table).
            interface: table::INTERFACE.default_text().into(),
            sample_rate: table::SAMPLE_RATE.default_text().into(),
            max_body_size: values::max_body_size(table::MAX_BODY_SIZE.default_text())
                .unwrap_or_default(),
            resources: SidecarResources {
                cpu_request: Some("50m".into()),
                memory_request: Some("64Mi".into()),
                cpu_limit: Some("500m".into()),
                memory_limit: Some("256Mi".into()),
            },
            run_as_user: 65532,
            native_sidecar: true,
            output_format: None,
            output_batch_size: None,
            ca_bundle: None,
            metrics_port: 9464,
        }
    }
}

fn err(setting: &'static str, message: impl Into<String>) -> SettingsError {
    SettingsError {
        setting,
        message: message.into(),
    }
}

fn parse_u64(setting: &'static str, v: &str, min: u64, max: u64) -> Result<u64, SettingsError> {
    match v.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(err(
            setting,
            format!("{v:?} is not accepted; expected an integer from {min} to {max}"),
        )),
    }
}

fn quantity(setting: &'static str, v: &str) -> Result<Option<String>, SettingsError> {
    let v = v.trim();
    if v.is_empty() {
        return Ok(None);
    }
    values::positive_quantity(v)
        .map(Some)
        .map_err(|m| err(setting, format!("{m}, or empty for none")))
}

impl Args {
    /// Check every setting; the first problem found is returned.
    pub fn validate(&self) -> Result<Settings, SettingsError> {
        let listen = self.listen.trim().parse::<SocketAddr>().map_err(|_| {
            err(
                "--listen / LISTEN_ADDR",
                format!(
                    "{:?} is not accepted; expected IP:PORT, e.g. 0.0.0.0:8443 or [::]:8443",
                    self.listen
                ),
            )
        })?;
        let tls_cert = match &self.tls_cert {
            Some(p) if !p.as_os_str().is_empty() => p.clone(),
            _ => {
                return Err(err(
                    "--tls-cert / TLS_CERT_FILE",
                    "is required: a PEM certificate chain file",
                ))
            }
        };
        let tls_key = match &self.tls_key {
            Some(p) if !p.as_os_str().is_empty() => p.clone(),
            _ => {
                return Err(err(
                    "--tls-key / TLS_KEY_FILE",
                    "is required: a PEM private key file",
                ))
            }
        };
        let tls_reload_interval = Duration::from_millis(parse_u64(
            "--tls-reload-interval-ms / TLS_RELOAD_INTERVAL_MS",
            &self.tls_reload_interval_ms,
            50,
            3_600_000,
        )?);

        let image = match self.sniffer_image.as_deref().map(str::trim) {
            Some(i) if !i.is_empty() => i.to_string(),
            _ => {
                return Err(err(
                    "--sniffer-image / SNIFFER_IMAGE",
                    "is required: the sidecar image, e.g. registry.example/tcp-sniffer:1.0",
                ))
            }
        };
        if image.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(err(
                "--sniffer-image / SNIFFER_IMAGE",
                format!("{image:?} contains whitespace"),
            ));
        }
        let image_pull_policy = match self.sniffer_image_pull_policy.trim() {
            p @ ("Always" | "IfNotPresent" | "Never") => p.to_string(),
            other => {
                return Err(err(
                    "--sniffer-image-pull-policy / SNIFFER_IMAGE_PULL_POLICY",
                    format!("{other:?} is not accepted; expected Always, IfNotPresent or Never"),
                ))
            }
        };
        let output_url = match self.output_url.trim() {
            "" => None,
            u => Some(
                values::output_url(u).map_err(|m| err("--output-url / DEFAULT_OUTPUT_URL", m))?,
            ),
        };
        let token_secret = match self.token_secret_name.trim() {
            "" => None,
            name => {
                if !values::is_dns1123_subdomain(name) {
                    return Err(err(
                        "--token-secret-name / TOKEN_SECRET_NAME",
                        format!("{name:?} is not a Secret name (lower-case DNS-1123 subdomain, at most 253 characters)"),
                    ));
                }
                let key = self.token_secret_key.trim();
                if !values::is_secret_key(key) {
                    return Err(err(
                        "--token-secret-key / TOKEN_SECRET_KEY",
                        format!("{key:?} is not a Secret key (letters, digits, '-', '_', '.'; at most 253 characters)"),
                    ));
                }
                Some((name.to_string(), key.to_string()))
            }
        };
        let interface = values::interface(&self.interface)
            .map_err(|m| err("--interface / DEFAULT_INTERFACE", m))?;
        let sample_rate = values::sample_rate(&self.sample_rate)
            .map_err(|m| err("--sample-rate / DEFAULT_SAMPLE_RATE", m))?;
        let max_body_size = values::max_body_size(&self.max_body_size)
            .map_err(|m| err("--max-body-size / DEFAULT_MAX_BODY_SIZE", m))?;
        let resources = SidecarResources {
            cpu_request: quantity(
                "--sidecar-cpu-request / SIDECAR_CPU_REQUEST",
                &self.cpu_request,
            )?,
            memory_request: quantity(
                "--sidecar-memory-request / SIDECAR_MEMORY_REQUEST",
                &self.memory_request,
            )?,
            cpu_limit: quantity("--sidecar-cpu-limit / SIDECAR_CPU_LIMIT", &self.cpu_limit)?,
            memory_limit: quantity(
                "--sidecar-memory-limit / SIDECAR_MEMORY_LIMIT",
                &self.memory_limit,
            )?,
        };
        for (what, request, limit, settings) in [
            (
                "cpu",
                &resources.cpu_request,
                &resources.cpu_limit,
                "--sidecar-cpu-request / SIDECAR_CPU_REQUEST",
            ),
            (
                "memory",
                &resources.memory_request,
                &resources.memory_limit,
                "--sidecar-memory-request / SIDECAR_MEMORY_REQUEST",
            ),
        ] {
            let nanos = |q: &Option<String>| q.as_deref().and_then(values::quantity_nanos);
            if let (Some(r), Some(l)) = (nanos(request), nanos(limit)) {
                if r > l {
                    return Err(err(
                        settings,
                        format!(
                            "the {what} request {} is above the {what} limit {}: the API server would refuse every injected pod",
                            request.as_deref().unwrap_or(""),
                            limit.as_deref().unwrap_or("")
                        ),
                    ));
                }
            }
        }
        fn optional(v: &str) -> Option<&str> {
            Some(v.trim()).filter(|v| !v.is_empty())
        }
        let output_format = optional(&self.output_format)
            .map(values::output_format)
            .transpose()
            .map_err(|m| err("--output-format / DEFAULT_OUTPUT_FORMAT", m))?;
        let output_batch_size = optional(&self.output_batch_size)
            .map(values::output_batch_size)
            .transpose()
            .map_err(|m| err("--output-batch-size / DEFAULT_OUTPUT_BATCH_SIZE", m))?;
        let ca_bundle = optional(&self.ca_bundle_configmap)
            .map(values::configmap_ref)
            .transpose()
            .map_err(|m| err("--ca-bundle-configmap / DEFAULT_CA_BUNDLE_CONFIGMAP", m))?;
        let metrics_port = values::port(&self.metrics_port)
            .map_err(|m| err("--sidecar-metrics-port / SIDECAR_METRICS_PORT", m))?;
        let run_as_user = parse_u64(
            "--sidecar-run-as-user / SIDECAR_RUN_AS_USER",
            &self.run_as_user,
            0,
            2_147_483_647,
        )? as i64;
        let native_sidecar = match self.native_sidecar.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => true,
            "false" | "0" | "no" | "" => false,
            other => {
                return Err(err(
                    "--native-sidecar / NATIVE_SIDECAR",
                    format!("{other:?} is not accepted; expected true or false"),
                ))
            }
        };
        let max_request_bytes = parse_u64(
            "--max-request-bytes / MAX_REQUEST_BYTES",
            &self.max_request_bytes,
            1024,
            1 << 30,
        )?;
        let max_connections = parse_u64(
            "--max-connections / MAX_CONNECTIONS",
            &self.max_connections,
            1,
            1_000_000,
        )? as usize;
        let probe_addr = match self.probe_addr.trim() {
            "" => None,
            a => Some(a.parse::<SocketAddr>().map_err(|_| {
                err(
                    "--probe-addr / PROBE_ADDR",
                    format!("{a:?} is not an address; expected IP:PORT such as 0.0.0.0:8081, or empty to turn the probe listener off"),
                )
            })?),
        };
        let shutdown_delay = Duration::from_millis(parse_u64(
            "--shutdown-delay-ms / SHUTDOWN_DELAY_MS",
            &self.shutdown_delay_ms,
            0,
            600_000,
        )?);
        let shutdown_timeout = Duration::from_millis(parse_u64(
            "--shutdown-timeout-ms / SHUTDOWN_TIMEOUT_MS",
            &self.shutdown_timeout_ms,
            0,
            600_000,
        )?);
        let log_level = LogLevel::from_name(&self.log_level).ok_or_else(|| {
            err(
                "--log-level / LOG_LEVEL",
                format!(
                    "{:?} is not accepted; expected one of {}",
                    self.log_level.trim(),
                    LogLevel::NAMES.join(", ")
                ),
            )
        })?;
        let bootstrap = match self.bootstrap_secret.trim() {
            "" => None,
            secret => {
                let name = |setting: &'static str, v: &str| -> Result<String, SettingsError> {
                    let v = v.trim();
                    if values::is_dns1123_subdomain(v) {
                        Ok(v.to_string())
                    } else {
                        Err(err(
                            setting,
                            format!("{v:?} is not an object name (lower-case DNS-1123 subdomain)"),
                        ))
                    }
                };
                // Empty: the service account's namespace, read when bootstrapping.
                let namespace = match self.pod_namespace.trim() {
                    "" => String::new(),
                    n => name("--pod-namespace / POD_NAMESPACE", n)?,
                };
                Some(crate::bootstrap::BootstrapSettings {
                    namespace,
                    secret: name("--bootstrap-secret / BOOTSTRAP_SECRET", secret)?,
                    webhook_config: name(
                        "--bootstrap-webhook-config / BOOTSTRAP_WEBHOOK_CONFIG",
                        &self.bootstrap_webhook_config,
                    )?,
                    service: name(
                        "--bootstrap-service / BOOTSTRAP_SERVICE",
                        &self.bootstrap_service,
                    )?,
                    cert_file: tls_cert.clone(),
                    key_file: tls_key.clone(),
                })
            }
        };
        Ok(Settings {
            bootstrap,
            server: ServerSettings {
                listen,
                tls_cert,
                tls_key,
                tls_reload_interval,
                max_request_bytes,
                max_connections,
                probe_addr,
                shutdown_delay,
                shutdown_timeout,
            },
            inject: InjectSettings {
                image,
                image_pull_policy,
                output_url,
                token_secret,
                interface,
                sample_rate,
                max_body_size,
                resources,
                run_as_user,
                native_sidecar,
                output_format,
                output_batch_size,
                ca_bundle,
                metrics_port,
            },
            log_level,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Result<Settings, SettingsError> {
        let mut argv = vec![
            "tcp-sniffer-webhook",
            "--tls-cert",
            "/c.pem",
            "--tls-key",
            "/k.pem",
        ];
        if !extra.contains(&"--sniffer-image") {
            argv.extend_from_slice(&["--sniffer-image", "img:1"]);
        }
        argv.extend_from_slice(extra);
        Args::try_parse_from(argv).expect("clap parse").validate()
    }

    #[test]
    fn defaults_are_valid() {
        let s = args(&[]).unwrap();
        assert_eq!(s.server.listen, "0.0.0.0:8443".parse().unwrap());
        assert_eq!(s.server.probe_addr, Some("0.0.0.0:8081".parse().unwrap()));
        assert_eq!(args(&["--probe-addr", ""]).unwrap().server.probe_addr, None);
        assert_eq!(s.inject, InjectSettings::with_image("img:1"));
        assert_eq!(s.log_level, LogLevel::Info);
    }

    #[test]
    fn rejects_bad_values_naming_the_setting() {
        for (flags, setting) in [
            (&["--listen", "nope"][..], "--listen / LISTEN_ADDR"),
            (&["--probe-addr", "8081"], "--probe-addr / PROBE_ADDR"),
            (&["--sniffer-image", " "], "--sniffer-image / SNIFFER_IMAGE"),
            (
                &["--sniffer-image-pull-policy", "Sometimes"],
                "--sniffer-image-pull-policy / SNIFFER_IMAGE_PULL_POLICY",
            ),
            (
                &["--output-url", "ftp://x"],
                "--output-url / DEFAULT_OUTPUT_URL",
            ),
            (
                &["--token-secret-name", "Bad_Name"],
                "--token-secret-name / TOKEN_SECRET_NAME",
            ),
            (
                &["--token-secret-name", "ok", "--token-secret-key", "a/b"],
                "--token-secret-key / TOKEN_SECRET_KEY",
            ),
            (&["--interface", "a/b"], "--interface / DEFAULT_INTERFACE"),
            (
                &["--sample-rate", "0"],
                "--sample-rate / DEFAULT_SAMPLE_RATE",
            ),
            (
                &["--sample-rate", "1.5"],
                "--sample-rate / DEFAULT_SAMPLE_RATE",
            ),
            (
                &["--max-body-size=-1"],
                "--max-body-size / DEFAULT_MAX_BODY_SIZE",
            ),
            (
                &["--sidecar-cpu-limit", "lots"],
                "--sidecar-cpu-limit / SIDECAR_CPU_LIMIT",
            ),
            (
                &["--sidecar-run-as-user=-5"],
                "--sidecar-run-as-user / SIDECAR_RUN_AS_USER",
            ),
            (
                &["--native-sidecar", "maybe"],
                "--native-sidecar / NATIVE_SIDECAR",
            ),
            (
                &["--max-request-bytes", "10"],
                "--max-request-bytes / MAX_REQUEST_BYTES",
            ),
            (
                &["--max-connections", "0"],
                "--max-connections / MAX_CONNECTIONS",
            ),
            (&["--log-level", "trace"], "--log-level / LOG_LEVEL"),
            (
                &["--sidecar-memory-limit=-64Mi"],
                "--sidecar-memory-limit / SIDECAR_MEMORY_LIMIT",
            ),
            (
                &["--sidecar-cpu-request", "2"],
                "--sidecar-cpu-request / SIDECAR_CPU_REQUEST",
            ),
            (
                &["--sidecar-memory-request", "1Gi"],
                "--sidecar-memory-request / SIDECAR_MEMORY_REQUEST",
            ),
            (
                &["--output-format", "protobuf"],
                "--output-format / DEFAULT_OUTPUT_FORMAT",
            ),
            (
                &["--output-batch-size", "0"],
                "--output-batch-size / DEFAULT_OUTPUT_BATCH_SIZE",
            ),
            (
                &["--ca-bundle-configmap", "Corp CA"],
                "--ca-bundle-configmap / DEFAULT_CA_BUNDLE_CONFIGMAP",
            ),
            (
                &["--sidecar-metrics-port", "0"],
                "--sidecar-metrics-port / SIDECAR_METRICS_PORT",
            ),
            (
                &["--tls-reload-interval-ms", "1"],
                "--tls-reload-interval-ms / TLS_RELOAD_INTERVAL_MS",
            ),
        ] {
            let e = args(flags).unwrap_err();
            assert_eq!(e.setting, setting, "{flags:?}: {e}");
            assert!(e.to_string().contains(setting));
        }
    }

    #[test]
    fn required_settings() {
        let e = Args::try_parse_from(["x", "--tls-key", "/k", "--sniffer-image", "i"])
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(e.setting, "--tls-cert / TLS_CERT_FILE");
        let e = Args::try_parse_from(["x", "--tls-cert", "/c", "--sniffer-image", "i"])
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(e.setting, "--tls-key / TLS_KEY_FILE");
        let e = Args::try_parse_from(["x", "--tls-cert", "/c", "--tls-key", "/k"])
            .unwrap()
            .validate()
            .unwrap_err();
        assert_eq!(e.setting, "--sniffer-image / SNIFFER_IMAGE");
    }

    #[test]
    fn optional_pieces() {
        let s = args(&[
            "--output-url",
            "https://collector.example/ingest",
            "--token-secret-name",
            "sniffer-token",
            "--sidecar-cpu-limit",
            "",
            "--native-sidecar",
            "false",
            "--sample-rate",
            "0.25",
            "--sidecar-run-as-user",
            "0",
            "--output-format",
            "OTLP",
            "--output-batch-size",
            "50",
            "--ca-bundle-configmap",
            "corp-ca/bundle.pem",
            "--sidecar-metrics-port",
            "9100",
            "--sidecar-cpu-request",
            "2",
        ])
        .unwrap();
        assert_eq!(s.inject.output_format.as_deref(), Some("otlp"));
        assert_eq!(s.inject.output_batch_size, Some(50));
        assert_eq!(
            s.inject.ca_bundle,
            Some(("corp-ca".into(), "bundle.pem".into()))
        );
        assert_eq!(s.inject.metrics_port, 9100);
        // No CPU limit: any request goes.
        assert_eq!(s.inject.resources.cpu_request.as_deref(), Some("2"));
        assert_eq!(
            s.inject.output_url.as_deref(),
            Some("https://collector.example/ingest")
        );
        assert_eq!(
            s.inject.token_secret,
            Some(("sniffer-token".into(), "token".into()))
        );
        assert_eq!(s.inject.resources.cpu_limit, None);
        assert!(!s.inject.native_sidecar);
        assert_eq!(s.inject.sample_rate, "0.25");
        assert_eq!(s.inject.run_as_user, 0);
    }
}
