//! TLS for listeners: loads a PEM certificate chain and private key into a rustls server
//! configuration offering HTTP/2 and HTTP/1.1 by ALPN. The proxy's TLS listeners and
//! `cutover server --tls-cert/--tls-key` share it.
//!
//! Certificate and key files must be regular files of at most 1 MiB: a device (`/dev/zero`),
//! a FIFO or a directory is refused at once with an error naming the file, never read.

use std::sync::Arc;

use tokio_rustls::TlsAcceptor;

use crate::config::TlsConfig;

/// Why a certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The key file holds no private key.
    #[error("{path}: no private key found")]
    NoKey {
        /// The file.
        path: String,
    },
    /// The certificate file holds no certificate.
    #[error("{path}: no certificate found")]
    NoCert {
        /// The file.
        path: String,
    },
    /// rustls rejected the pair.
    #[error("{cert} with {key}: invalid certificate or key: {source}")]
    Rustls {
        /// The certificate file.
        cert: String,
        /// The key file.
        key: String,
        /// What rustls said.
        #[source]
        source: rustls::Error,
    },
}

/// Largest certificate or key file read.
pub(crate) const MAX_PEM_FILE: u64 = 1 << 20;

/// Builds an acceptor from the listener's `tls` section.
pub fn acceptor(cfg: &TlsConfig) -> Result<TlsAcceptor, TlsError> {
    let read = |path: &str| {
        crate::auth::read_regular_file(std::path::Path::new(path), MAX_PEM_FILE).map_err(|source| {
            TlsError::Read {
                path: path.to_owned(),
                source,
            }
        })
    };
    let cert_pem = read(&cfg.cert_file)?;
    let key_pem = read(&cfg.key_file)?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|source| TlsError::Read {
            path: cfg.cert_file.clone(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::NoCert {
            path: cfg.cert_file.clone(),
        });
    }
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|source| TlsError::Read {
            path: cfg.key_file.clone(),
            source,
        })?
        .ok_or_else(|| TlsError::NoKey {
            path: cfg.key_file.clone(),
        })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let rejected = |source: rustls::Error| TlsError::Rustls {
        cert: cfg.cert_file.clone(),
        key: cfg.key_file.clone(),
        source,
    };
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(rejected)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(rejected)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_files_are_refused_at_once_with_the_file_named() {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key.pem");
        std::fs::write(&key, "").unwrap();
        let cfg = TlsConfig {
            cert_file: "/dev/zero".into(),
            key_file: key.display().to_string(),
        };
        let started = std::time::Instant::now();
        let e = acceptor(&cfg).err().unwrap().to_string();
        assert_eq!(e, "cannot read /dev/zero: not a regular file");
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        let big = dir.path().join("big.pem");
        std::fs::write(&big, vec![b'a'; (MAX_PEM_FILE + 1) as usize]).unwrap();
        let cfg = TlsConfig {
            cert_file: big.display().to_string(),
            key_file: key.display().to_string(),
        };
        let e = acceptor(&cfg).err().unwrap().to_string();
        assert!(e.ends_with("big.pem: larger than 1048576 bytes"), "{e}");
    }
}
