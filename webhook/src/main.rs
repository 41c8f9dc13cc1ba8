//! `tcp-sniffer-webhook`: parse settings, set up JSON logs on stderr (the format of every
//! tcp-sniffer binary, see `logging`), serve until SIGTERM.
//!
//! Exit codes: 0 after a clean shutdown, 2 for invalid settings, 1 when the server cannot
//! start (certificate unreadable, address in use).

use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use tcp_sniffer_webhook::metrics::Metrics;
use tcp_sniffer_webhook::server;
use tcp_sniffer_webhook::settings::Args;
use tcp_sniffer_webhook::values;

async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "cannot listen for SIGTERM; only SIGINT will stop the server");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => tracing::info!(signal = "SIGTERM", "signal received"),
        _ = tokio::signal::ctrl_c() => tracing::info!(signal = "SIGINT", "signal received"),
    }
}

async fn run(mut settings: tcp_sniffer_webhook::settings::Settings) -> anyhow::Result<()> {
    match server::raise_nofile_limit() {
        Ok(nofile) => {
            let cap = server::connection_cap(settings.server.max_connections, nofile);
            if cap < settings.server.max_connections {
                tracing::warn!(
                    wanted = settings.server.max_connections,
                    cap,
                    nofile,
                    "--max-connections / MAX_CONNECTIONS lowered to fit the open-file limit"
                );
                settings.server.max_connections = cap;
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot read the open-file limit"),
    }
    if let Some(b) = &settings.bootstrap {
        let api = tcp_sniffer_webhook::bootstrap::ApiClient::in_cluster()?;
        let out = tcp_sniffer_webhook::bootstrap::bootstrap(&api, b).await?;
        tracing::info!(
            secret = %format!("{}/{}", b.namespace, b.secret),
            webhook_config = %b.webhook_config,
            generated = out.generated,
            patched_webhooks = out.patched_webhooks,
            "certificate bootstrap done"
        );
    }
    let s = &settings.server;
    let listener = server::bind(s.listen)
        .with_context(|| format!("cannot listen on {} (--listen / LISTEN_ADDR)", s.listen))?;
    let addr = listener.local_addr().context("local address")?;
    let probes = match s.probe_addr {
        Some(a) => Some(server::bind(a).with_context(|| {
            format!("cannot listen on {a} (--probe-addr / PROBE_ADDR; empty turns the probe listener off)")
        })?),
        None => None,
    };
    let probe_addr = match &probes {
        Some(l) => l
            .local_addr()
            .context("probe listener address")?
            .to_string(),
        None => "off".to_string(),
    };
    let i = &settings.inject;
    tracing::info!(
        %addr,
        probe_addr,
        image = %i.image,
        native_sidecar = i.native_sidecar,
        interface = %i.interface,
        output_url = %i.output_url.as_deref().map(values::url_label).unwrap_or_default(),
        token_secret = i.token_secret.as_ref().map(|(n, _)| n.as_str()).unwrap_or(""),
        sample_rate = %i.sample_rate,
        max_body_size = i.max_body_size,
        run_as_user = i.run_as_user,
        max_connections = s.max_connections,
        max_request_bytes = s.max_request_bytes,
        cert = %s.tls_cert.display(),
        key = %s.tls_key.display(),
        version = env!("CARGO_PKG_VERSION"),
        "tcp-sniffer-webhook listening"
    );
    server::run_with_probes(
        listener,
        probes,
        s,
        server::Limits::default(),
        settings.inject.clone(),
        Arc::new(Metrics::default()),
        stop_signal(),
    )
    .await
    .context(
        "cannot load the TLS certificate (--tls-cert / TLS_CERT_FILE, --tls-key / TLS_KEY_FILE)",
    )?;
    Ok(())
}

fn main() {
    let args = Args::parse();
    let settings = match args.validate() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("tcp-sniffer-webhook: {e}");
            std::process::exit(2);
        }
    };
    tcp_sniffer_webhook::logging::init(settings.log_level);
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(run(settings)) {
        tracing::error!(error = format!("{e:#}"), "tcp-sniffer-webhook cannot start");
        std::process::exit(1);
    }
}
