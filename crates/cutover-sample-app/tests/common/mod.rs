//! A minimal HTTP/1 client for the sample app's tests.

#![allow(dead_code)]

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::{HeaderMap, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// One answered request.
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: String,
}

/// A streamed answer whose first body frame has arrived: the request is in flight on the
/// server until the rest of `body` is read.
pub(crate) struct InFlight {
    pub(crate) status: StatusCode,
    pub(crate) first: Bytes,
    pub(crate) body: Incoming,
}

impl InFlight {
    /// The whole body: the first frame and the rest, read to the end.
    pub(crate) async fn finish(self) -> std::io::Result<String> {
        let rest = self
            .body
            .collect()
            .await
            .map_err(std::io::Error::other)?
            .to_bytes();
        Ok(format!(
            "{}{}",
            String::from_utf8_lossy(&self.first),
            String::from_utf8_lossy(&rest)
        ))
    }
}

/// Sends `GET path` (a streamed route such as `/events`) and returns once the first body
/// frame arrived: the notification that the server is handling the request.
pub(crate) async fn get_first_frame(addr: SocketAddr, path: &str) -> std::io::Result<InFlight> {
    let stream = TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(conn);
    let request = Request::get(path)
        .header("host", addr.to_string())
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender
        .send_request(request)
        .await
        .map_err(std::io::Error::other)?;
    let status = response.status();
    let mut body = response.into_body();
    let first = loop {
        match body.frame().await {
            Some(frame) => {
                if let Ok(data) = frame.map_err(std::io::Error::other)?.into_data() {
                    break data;
                }
            }
            None => break Bytes::new(),
        }
    };
    Ok(InFlight {
        status,
        first,
        body,
    })
}

/// Sends `GET path` on a fresh connection and reads the whole answer.
pub(crate) async fn get(addr: SocketAddr, path: &str) -> std::io::Result<Answer> {
    let stream = TcpStream::connect(addr).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(conn);
    let request = Request::get(path)
        .header("host", addr.to_string())
        .body(Empty::<Bytes>::new())
        .unwrap();
    let response = sender
        .send_request(request)
        .await
        .map_err(std::io::Error::other)?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(std::io::Error::other)?
        .to_bytes();
    Ok(Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}
