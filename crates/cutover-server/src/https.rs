//! HTTPS on the server's listener (`cutover server --tls-cert --tls-key`):
//! an `axum::serve` listener that hands the router TLS streams.
//!
//! The TCP accept loop never waits for a handshake: each one runs in its
//! own task, bounded by [`HANDSHAKE_TIMEOUT`], and only finished ones reach
//! the router through a channel, so a slow or silent client delays nobody
//! else. At most [`MAX_HANDSHAKES`] run at once: at that number the loop
//! stops accepting until one ends (new clients wait in the kernel's backlog,
//! as nginx stops accepting at `worker_connections`), so silent clients
//! cannot grow the server's tasks and memory without bound. A failed handshake (a plain-HTTP client, a client that does not
//! trust the certificate) is logged at debug level and closes only that
//! connection. The loop ends, and the port closes, when the server stops
//! serving (the channel's receiver is dropped).
//!
//! [`mark_https`] sets `X-Forwarded-Proto: https` on every request of such a
//! listener (replacing whatever the client sent), the header the console
//! already reads behind a TLS-terminating proxy to make its session cookie
//! `Secure`.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// `router` with every request marked as having come over HTTPS.
pub(crate) fn mark_https(router: axum::Router) -> axum::Router {
    router.layer(axum::middleware::map_request(
        |mut req: axum::extract::Request| async move {
            req.headers_mut().insert(
                "x-forwarded-proto",
                axum::http::HeaderValue::from_static("https"),
            );
            req
        },
    ))
}

/// How long a client has to finish its TLS handshake.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes finished but not yet taken by the router.
const BACKLOG: usize = 128;

/// Handshakes in progress at most.
pub(crate) const MAX_HANDSHAKES: usize = 1024;

/// TLS connections of one TCP listener, for `axum::serve`.
pub(crate) struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    addr: SocketAddr,
}

impl TlsListener {
    /// Starts accepting on `tcp`, handshaking with `acceptor`.
    pub(crate) fn new(tcp: TcpListener, acceptor: TlsAcceptor) -> io::Result<TlsListener> {
        Self::with_cap(tcp, acceptor, MAX_HANDSHAKES)
    }

    /// [`TlsListener::new`] with at most `cap` handshakes in progress.
    fn with_cap(tcp: TcpListener, acceptor: TlsAcceptor, cap: usize) -> io::Result<TlsListener> {
        let addr = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(BACKLOG);
        let slots = Arc::new(Semaphore::new(cap));
        tokio::spawn(async move {
            loop {
                let slot = tokio::select! {
                    _ = tx.closed() => break,
                    s = slots.clone().acquire_owned() => match s {
                        Ok(s) => s,
                        Err(_) => break,
                    },
                };
                let (stream, peer) = tokio::select! {
                    _ = tx.closed() => break,
                    accepted = tcp.accept() => match accepted {
                        Ok(a) => a,
                        Err(e) => {
                            // Out of file descriptors and the like: back off
                            // as axum's own TCP listener does.
                            tracing::warn!(error = %e, "cannot accept a connection");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    },
                };
                let (acceptor, tx) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    let shake = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream));
                    let shaken = shake.await;
                    drop(slot);
                    match shaken {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { ready, addr })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(conn) => conn,
            // The accept loop only ends once this receiver is gone.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::serve::Listener as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
    use tokio::io::AsyncWriteExt as _;

    fn pair() -> (TlsAcceptor, tokio_rustls::TlsConnector) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let der = CertificateDer::from(cert.der().to_vec());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![der.clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            )
            .unwrap();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(der).unwrap();
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        (
            TlsAcceptor::from(Arc::new(server)),
            tokio_rustls::TlsConnector::from(Arc::new(client)),
        )
    }

    #[tokio::test]
    async fn silent_clients_hold_at_most_the_cap_and_the_next_client_waits_for_a_slot() {
        let (acceptor, connector) = pair();
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut listener = TlsListener::with_cap(tcp, acceptor, 2).unwrap();
        let addr = listener.local_addr().unwrap();
        // Two silent clients take both slots.
        let mut silent = Vec::new();
        for _ in 0..2 {
            silent.push(TcpStream::connect(addr).await.unwrap());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let name = ServerName::try_from("localhost").unwrap();
        let client = tokio::spawn({
            let connector = connector.clone();
            async move {
                let tcp = TcpStream::connect(addr).await.unwrap();
                connector.connect(name, tcp).await.unwrap()
            }
        });
        // Not served while both slots are held ...
        let waited = tokio::time::timeout(Duration::from_millis(400), listener.accept()).await;
        assert!(waited.is_err(), "a handshake ran beyond the cap");
        assert!(!client.is_finished());
        // ... and served once a silent client goes away.
        let mut gone = silent.pop().unwrap();
        gone.shutdown().await.unwrap();
        drop(gone);
        let (_tls, _peer) = tokio::time::timeout(Duration::from_secs(5), listener.accept())
            .await
            .expect("the waiting client is served once a slot frees");
        tokio::time::timeout(Duration::from_secs(5), client)
            .await
            .unwrap()
            .unwrap();
    }
}
