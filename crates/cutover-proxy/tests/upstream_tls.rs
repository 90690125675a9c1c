//! Upstream TLS (`protocol: HTTPS`): HTTP/2 by ALPN `h2` (`protocolVersion: GRPC`) with a gRPC
//! unary call and its trailers through the proxy, HTTP/1.1 by ALPN `http/1.1`, health checks
//! over TLS, and the trust of a self-signed target: refused by the system's roots, accepted
//! with its `caFile` or (only when written) `insecureSkipVerify`; an unreadable `caFile`
//! breaks only its own group.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use common::{Proxy, client, get};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::{TcpListener, TcpStream};

type Body = BoxBody<Bytes, Infallible>;

/// A TLS backend with a self-signed certificate for `localhost` and `127.0.0.1`, offering ALPN
/// `h2` and `http/1.1` and serving whichever was chosen:
/// - `/echo.Echo/Unary`: the request body back, then trailers `grpc-status: 0`;
/// - anything else: `tls <path>`;
///
/// each answer with `x-seen-version`, `x-seen-alpn` and `x-seen-scheme` headers.
struct TlsBackend {
    addr: SocketAddr,
    /// The certificate, PEM, in a file: a `caFile` trusting it.
    ca_file: tempfile::NamedTempFile,
}

async fn tls_backend() -> TlsBackend {
    let cert =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let ca_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca_file.path(), cert.cert.pem()).unwrap();
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(cert.key_pair.serialize_der());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key.into())
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that refuses the certificate ends the handshake: nothing to serve.
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let alpn = tls.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
                let seen = String::from_utf8_lossy(alpn.as_deref().unwrap_or(b"-")).into_owned();
                let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let seen = seen.clone();
                    async move { Ok::<_, Infallible>(answer(req, &seen).await) }
                });
                let io = TokioIo::new(tls);
                if alpn.as_deref() == Some(b"h2") {
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(io, service)
                        .await;
                } else {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                }
            });
        }
    });
    TlsBackend { addr, ca_file }
}

async fn answer(req: Request<Incoming>, alpn: &str) -> Response<Body> {
    let builder = Response::builder()
        .header("x-seen-version", format!("{:?}", req.version()))
        .header("x-seen-alpn", alpn)
        .header(
            "x-seen-scheme",
            req.uri().scheme_str().unwrap_or("-").to_owned(),
        );
    if req.uri().path() == "/echo.Echo/Unary" {
        let body = req.into_body().collect().await.unwrap().to_bytes();
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("0"));
        trailers.insert("grpc-message", HeaderValue::from_static("done"));
        let frames =
            futures_util::stream::iter([Ok(Frame::data(body)), Ok(Frame::trailers(trailers))]);
        return builder
            .header("content-type", "application/grpc")
            .body(StreamBody::new(frames).boxed())
            .unwrap();
    }
    let text = format!("tls {}", req.uri().path());
    builder.body(Full::new(Bytes::from(text)).boxed()).unwrap()
}

/// A configuration with one listener forwarding to group `tls` of `target`, whose keys are
/// `extra` (indented under the group).
fn config(target: &str, extra: &str) -> String {
    format!(
        "admin: ADMIN
listeners:
  - name: front
    address: LISTEN
    defaultAction: {{forward: [{{targetGroup: tls, weight: 1}}]}}
targetGroups:
  - name: tls
    targets: [\"{target}\"]
{extra}"
    )
}

const CHECK: &str = "    healthCheck: {path: /health, intervalSeconds: 0.1, timeoutSeconds: 1, healthyThresholdCount: 1, unhealthyThresholdCount: 2}\n";

#[tokio::test]
async fn grpc_over_tls_with_alpn_h2_passes_trailers_through() {
    let target = tls_backend().await;
    // A gRPC group's health check is a gRPC call (here to the echo method, answering OK).
    let check = CHECK.replace("path: /health", "path: /echo.Echo/Unary, grpcCode: \"0\"");
    assert_ne!(check, CHECK);
    let extra = format!(
        "    protocol: HTTPS\n    protocolVersion: GRPC\n    caFile: {}\n{check}",
        target.ca_file.path().display()
    );
    let proxy = Proxy::start(&config(&target.addr.to_string(), &extra)).await;
    // The health check connects over TLS and speaks HTTP/2 too.
    proxy.wait_healthy("tls", 1).await;

    let stream = TcpStream::connect(proxy.listen).await.unwrap();
    let (mut grpc, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let message = Bytes::from_static(b"\0\0\0\0\x05hello");
    let req = Request::post(format!("http://{}/echo.Echo/Unary", proxy.listen))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(Full::new(message.clone()).boxed())
        .unwrap();
    let resp = grpc.send_request(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["x-seen-version"], "HTTP/2.0");
    assert_eq!(resp.headers()["x-seen-alpn"], "h2");
    assert_eq!(resp.headers()["x-seen-scheme"], "https");
    let collected = resp.into_body().collect().await.unwrap();
    let trailers = collected.trailers().cloned().expect("trailers");
    assert_eq!(collected.to_bytes(), message);
    assert_eq!(trailers["grpc-status"], "0");
    assert_eq!(trailers["grpc-message"], "done");
}

#[tokio::test]
async fn http1_over_tls_uses_alpn_http1_and_checks_the_target_name() {
    let target = tls_backend().await;
    // By name: the certificate's `localhost` entry is what is checked.
    let by_name = format!("localhost:{}", target.addr.port());
    let extra = format!(
        "    protocol: HTTPS\n    caFile: {}\n{CHECK}",
        target.ca_file.path().display()
    );
    let proxy = Proxy::start(&config(&by_name, &extra)).await;
    proxy.wait_healthy("tls", 1).await;
    let (status, headers, body) = get(&client(), &proxy.url("/orders"), &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, "tls /orders");
    assert_eq!(headers["x-seen-version"], "HTTP/1.1");
    assert_eq!(headers["x-seen-alpn"], "http/1.1");
}

#[tokio::test]
async fn a_self_signed_target_needs_its_ca_file_or_an_explicit_insecure_skip_verify() {
    let target = tls_backend().await;
    let check = CHECK;
    // The system's roots do not know the target's certificate: its health check fails.
    let proxy = Proxy::start(&config(
        &target.addr.to_string(),
        &format!("    protocol: HTTPS\n{check}"),
    ))
    .await;
    proxy
        .wait_for("the self-signed target to be unhealthy", |h| {
            h.group("tls").is_some_and(|g| g.unhealthy_host_count == 1)
        })
        .await;
    let (status, _, _) = get(&client(), &proxy.url("/"), &[]).await;
    assert!(status.is_server_error(), "{status}");
    drop(proxy);

    let proxy = Proxy::start(&config(
        &target.addr.to_string(),
        &format!("    protocol: HTTPS\n    insecureSkipVerify: true\n{check}"),
    ))
    .await;
    proxy.wait_healthy("tls", 1).await;
    let (status, _, body) = get(&client(), &proxy.url("/"), &[]).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "tls /"));
}

#[tokio::test]
async fn an_unreadable_ca_file_breaks_only_its_own_group() {
    let target = tls_backend().await;
    let plain = common::backend("plain").await;
    let yaml = format!(
        "admin: ADMIN
listeners:
  - name: front
    address: LISTEN
    rules:
      - conditions: [{{pathPattern: [\"/tls/*\"]}}]
        action: {{forward: [{{targetGroup: tls, weight: 1}}]}}
    defaultAction: {{forward: [{{targetGroup: plain, weight: 1}}]}}
targetGroups:
  - name: plain
    targets: [\"{}\"]
  - name: tls
    targets: [\"{}\"]
    protocol: HTTPS
    caFile: /nonexistent/ca.pem
{CHECK}",
        plain.addr, target.addr
    );
    let proxy = Proxy::start(&yaml).await;
    proxy
        .wait_for("the tls group's target to be unhealthy", |h| {
            h.group("tls").is_some_and(|g| {
                g.unhealthy_host_count == 1 && g.targets[0].reason.contains("/nonexistent/ca.pem")
            })
        })
        .await;
    let (status, _, body) = get(&client(), &proxy.url("/"), &[]).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "plain"));
    let (status, _, _) = get(&client(), &proxy.url("/tls/x"), &[]).await;
    assert!(status.is_server_error(), "{status}");
}
