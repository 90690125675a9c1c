//! HTTPS on the server's listener (`cutover server --tls-cert --tls-key`):
//! an `axum::serve` listener that hands the router TLS streams.
//!
//! The TCP accept loop never waits for a handshake: each one runs in its
//! own task, bounded by [`HANDSHAKE_TIMEOUT`], and only finished ones reach
//! the router through a channel, so a slow or silent client delays nobody
//! else. A failed handshake (a plain-HTTP client, a client that does not
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
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
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

/// TLS connections of one TCP listener, for `axum::serve`.
pub(crate) struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    addr: SocketAddr,
}

impl TlsListener {
    /// Starts accepting on `tcp`, handshaking with `acceptor`.
    pub(crate) fn new(tcp: TcpListener, acceptor: TlsAcceptor) -> io::Result<TlsListener> {
        let addr = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(BACKLOG);
        tokio::spawn(async move {
            loop {
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
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
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
