//! How connections to a target group's targets are made: plain TCP, or TLS (`protocol:
//! HTTPS`) offering ALPN `h2` or `http/1.1` by the group's protocol version, and whether
//! requests then go as HTTP/2 or HTTP/1.1.
//!
//! An `HTTPS` group trusts the system's certificate authorities (`rustls-native-certs`, read
//! once), or only those of its `caFile`; with `insecureSkipVerify` it accepts any certificate
//! (the signatures of the handshake are still checked, the certificate's issuer and name are
//! not). The name checked is the target's host as configured (`localhost:8443` checks
//! `localhost`, `127.0.0.1:8443` an IP address entry). The same transport serves requests and
//! health checks.
//!
//! A `caFile` that cannot be read breaks only its group: every connection attempt fails with
//! the reason (its targets turn unhealthy, its requests get 503), and the rest of the
//! configuration applies. The control plane writes many services into one configuration, and
//! a file missing on one machine must not stop the others' deployments.

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use crate::config::TargetConnection;

/// A connection to a target: TCP, or TLS over it.
pub(crate) type Stream = tokio_util::either::Either<TcpStream, Box<TlsStream<TcpStream>>>;

/// How a target group's connections are made and spoken.
#[derive(Clone, Default)]
pub struct Transport {
    http2: bool,
    /// gRPC targets (`protocolVersion: GRPC`): health checks are gRPC calls.
    grpc: bool,
    tls: Option<Arc<UpstreamTls>>,
}

/// The TLS side of an `HTTPS` group: the keys it was made from and its connectors, or why
/// there are none.
struct UpstreamTls {
    connectors: Result<Connectors, Arc<str>>,
    ca_file: Option<String>,
    insecure: bool,
}

/// The group's connector, and one offering only `http/1.1` for upgrades (WebSocket) when the
/// group speaks HTTP/2.
struct Connectors {
    main: TlsConnector,
    http1: Option<TlsConnector>,
}

impl PartialEq for Transport {
    /// Same protocol and the same trust keys (a changed `caFile` content is read again when a
    /// key changes), and neither broken (a `caFile` that could not be read is tried again at
    /// each configuration change).
    fn eq(&self, other: &Self) -> bool {
        let keys = |t: &Transport| t.tls.as_ref().map(|t| (t.ca_file.clone(), t.insecure));
        self.http2 == other.http2
            && self.grpc == other.grpc
            && keys(self) == keys(other)
            && self.error().is_none()
            && other.error().is_none()
    }
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("http2", &self.http2)
            .field("grpc", &self.grpc)
            .field("tls", &self.tls.as_ref().map(|t| (&t.ca_file, t.insecure)))
            .finish()
    }
}

/// Why an `HTTPS` group's TLS settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TransportError {
    /// The `caFile` could not be read.
    #[error("caFile {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The `caFile` holds no usable certificate.
    #[error("caFile {path}: no certificate found")]
    NoCert { path: String },
    /// rustls refused the configuration.
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

impl Transport {
    /// The transport of a target group's connection keys (reads its `caFile`; see
    /// [`Transport::error`]).
    pub(crate) fn of(c: &TargetConnection) -> Self {
        let (http2, grpc) = (c.http2(), c.grpc());
        if !c.tls() {
            return Transport {
                http2,
                grpc,
                tls: None,
            };
        }
        Transport {
            http2,
            grpc,
            tls: Some(Arc::new(UpstreamTls {
                connectors: connectors(c, http2).map_err(|e| e.to_string().into()),
                ca_file: c.ca_file.clone(),
                insecure: c.insecure_skip_verify,
            })),
        }
    }

    /// Why this `HTTPS` group cannot connect at all (an unreadable `caFile`).
    pub(crate) fn error(&self) -> Option<&str> {
        self.tls.as_ref()?.connectors.as_ref().err().map(|e| &**e)
    }

    /// Whether requests go as HTTP/2.
    pub fn http2(&self) -> bool {
        self.http2
    }

    /// Whether the targets speak gRPC (health checks are gRPC calls).
    pub fn grpc(&self) -> bool {
        self.grpc
    }

    /// Whether connections are TLS (`https` is the request URI's scheme over HTTP/2).
    pub fn tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Connects to `addr`, with TLS for `host` (the target's configured host) when the group
    /// is `HTTPS`; `http1` offers only ALPN `http/1.1` whatever the group speaks (upgrades).
    pub(crate) async fn connect(
        &self,
        addr: SocketAddr,
        host: &str,
        http1: bool,
    ) -> std::io::Result<Stream> {
        let stream = TcpStream::connect(addr).await?;
        let _ = stream.set_nodelay(true);
        let Some(tls) = &self.tls else {
            return Ok(Stream::Left(stream));
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host.to_owned()).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{host:?} is not a TLS server name: {e}"),
            )
        })?;
        let connectors = tls
            .connectors
            .as_ref()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let connector = match &connectors.http1 {
            Some(c) if http1 => c,
            _ => &connectors.main,
        };
        let stream = connector.connect(name, stream).await?;
        Ok(Stream::Right(Box::new(stream)))
    }
}

/// The TLS connectors of an `HTTPS` group (reads its `caFile`).
fn connectors(c: &TargetConnection, http2: bool) -> Result<Connectors, TransportError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?;
    let mut config = if c.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth()
    } else {
        let roots = match &c.ca_file {
            Some(path) => Arc::new(ca_file_roots(path)?),
            None => system_roots(),
        };
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let mut http1 = None;
    if http2 {
        http1 = Some(TlsConnector::from(Arc::new(config.clone())));
        config.alpn_protocols = vec![b"h2".to_vec()];
    }
    Ok(Connectors {
        main: TlsConnector::from(Arc::new(config)),
        http1,
    })
}

/// The host part of a target's `host:port`.
pub(crate) fn host_of(address: &str) -> &str {
    address.rsplit_once(':').map_or(address, |(h, _)| h)
}

fn ca_file_roots(path: &str) -> Result<RootCertStore, TransportError> {
    let read_err = |source| TransportError::Read {
        path: path.to_owned(),
        source,
    };
    let pem = crate::auth::read_regular_file(std::path::Path::new(path), crate::tls::MAX_PEM_FILE)
        .map_err(read_err)?;
    let mut roots = RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut pem.as_slice()) {
        roots.add(cert.map_err(read_err)?)?;
    }
    if roots.is_empty() {
        return Err(TransportError::NoCert {
            path: path.to_owned(),
        });
    }
    Ok(roots)
}

/// The system's certificate authorities, read on first use.
fn system_roots() -> Arc<RootCertStore> {
    static ROOTS: OnceLock<Arc<RootCertStore>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                tracing::warn!(error = %e, "a system certificate could not be read");
            }
            let mut roots = RootCertStore::empty();
            let (added, ignored) = roots.add_parsable_certificates(found.certs);
            tracing::debug!(added, ignored, "system certificate authorities loaded");
            Arc::new(roots)
        })
        .clone()
}

/// `insecureSkipVerify`: any certificate is accepted; the handshake's signatures are still
/// checked with the provider's algorithms.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
