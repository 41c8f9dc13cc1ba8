//! Server certificate from PEM files, swapped in when the files change.
//!
//! [`CertStore`] is a rustls [`ResolvesServerCert`]: every handshake takes the current
//! certificate under a short read lock, so a reload never drops or fails a connection, and
//! connections already open keep the certificate they started with. [`watch`] polls the two
//! files' metadata (modification time, size, inode, following symlinks as Kubernetes Secret
//! volumes use them) every interval; on a change it loads both files and swaps them in only if
//! they parse and the key matches the certificate. A half-written pair (cert-manager or a script
//! writing one file before the other) is logged, counted, and retried at the next change; the
//! old certificate stays in use meanwhile.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

use crate::metrics::Metrics;

/// Why a certificate/key pair could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// No PEM certificate in the file.
    #[error("{path}: no PEM certificate found ({detail})")]
    NoCertificate {
        /// The file.
        path: PathBuf,
        /// What the PEM reader said.
        detail: String,
    },
    /// No PEM private key in the file.
    #[error("{path}: no PEM private key found ({detail})")]
    NoKey {
        /// The file.
        path: PathBuf,
        /// What the PEM reader said.
        detail: String,
    },
    /// The key is unusable or does not belong to the certificate.
    #[error("certificate {cert} and key {key} do not make a usable pair: {source}")]
    Pair {
        /// Certificate file.
        cert: PathBuf,
        /// Key file.
        key: PathBuf,
        /// rustls's reason.
        source: rustls::Error,
    },
}

type Fingerprint = [(i64, i64, u64, u64, u64); 2];

fn fingerprint(paths: [&Path; 2]) -> Option<Fingerprint> {
    let f = |p: &Path| {
        fs::metadata(p)
            .ok()
            .map(|m| (m.mtime(), m.mtime_nsec(), m.len(), m.ino(), m.dev()))
    };
    Some([f(paths[0])?, f(paths[1])?])
}

/// The ring crypto provider this server uses (no aws-lc-rs: it needs cmake and nasm).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Read and check a certificate chain and key.
pub fn load_pair(
    cert: &Path,
    key: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let read = |p: &Path| {
        fs::read(p).map_err(|source| TlsError::Read {
            path: p.to_path_buf(),
            source,
        })
    };
    let cert_pem = read(cert)?;
    let key_pem = read(key)?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::NoCertificate {
            path: cert.to_path_buf(),
            detail: e.to_string(),
        })?;
    if chain.is_empty() {
        return Err(TlsError::NoCertificate {
            path: cert.to_path_buf(),
            detail: "the file holds no CERTIFICATE section".into(),
        });
    }
    let key_der = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::NoKey {
        path: key.to_path_buf(),
        detail: e.to_string(),
    })?;
    CertifiedKey::from_der(chain, key_der, provider).map_err(|source| TlsError::Pair {
        cert: cert.to_path_buf(),
        key: key.to_path_buf(),
        source,
    })
}

/// The certificate in use, and where it comes from.
#[derive(Debug)]
pub struct CertStore {
    cert_path: PathBuf,
    key_path: PathBuf,
    provider: Arc<CryptoProvider>,
    current: RwLock<Arc<CertifiedKey>>,
    seen: Mutex<Option<Fingerprint>>,
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl CertStore {
    /// Load the pair once; an error here should stop the server at start.
    pub fn load(cert: &Path, key: &Path, metrics: &Metrics) -> Result<Arc<Self>, TlsError> {
        let provider = provider();
        let seen = fingerprint([cert, key]);
        let ck = load_pair(cert, key, &provider)?;
        metrics.tls_loaded(now_unix(), true);
        Ok(Arc::new(CertStore {
            cert_path: cert.to_path_buf(),
            key_path: key.to_path_buf(),
            provider,
            current: RwLock::new(Arc::new(ck)),
            seen: Mutex::new(seen),
        }))
    }

    /// Reload when the files changed since the last look. `Ok(true)`: a new pair is in use.
    pub fn reload_if_changed(&self, metrics: &Metrics) -> Result<bool, TlsError> {
        let now = fingerprint([&self.cert_path, &self.key_path]);
        {
            let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
            if now.is_none() || *seen == now {
                // Missing files (mid-rotation) or unchanged: keep what we have.
                return Ok(false);
            }
            *seen = now;
        }
        match load_pair(&self.cert_path, &self.key_path, &self.provider) {
            Ok(ck) => {
                *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(ck);
                metrics.tls_loaded(now_unix(), false);
                Ok(true)
            }
            Err(e) => {
                metrics.tls_reload_error();
                Err(e)
            }
        }
    }

    /// A rustls server config that resolves through this store; ALPN offers h2 and http/1.1.
    pub fn server_config(self: &Arc<Self>) -> Arc<ServerConfig> {
        let mut cfg = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports the default TLS versions")
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Arc::new(cfg)
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        )
    }
}

/// Poll the files every `interval` until `shutdown` resolves; log every reload and failure.
pub async fn watch(
    store: Arc<CertStore>,
    metrics: Arc<Metrics>,
    interval: Duration,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => return,
            _ = tick.tick() => {}
        }
        let s = store.clone();
        let m = metrics.clone();
        // File reads and parsing are blocking; keep them off the async workers.
        match tokio::task::spawn_blocking(move || s.reload_if_changed(&m)).await {
            Ok(Ok(true)) => tracing::info!(
                cert = %store.cert_path.display(),
                key = %store.key_path.display(),
                "TLS certificate reloaded"
            ),
            Ok(Ok(false)) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "TLS certificate changed but could not be loaded; still serving the previous one")
            }
            Err(e) => tracing::error!(error = %e, "TLS reload task failed"),
        }
    }
}
