//! How a load balancer talks to a target group's targets: the protocol (`HTTP`, `HTTPS`, or the
//! older `http1` / `h2c`), ALB's `protocolVersion` (`HTTP1`, `HTTP2`, `GRPC`), the TLS trust of
//! an `HTTPS` group (`caFile`, `insecureSkipVerify`), the pool's idle timeout and the
//! per-target connection limit. One model, with its checks, for both places that accept these
//! keys: a target group of `lb.yaml` (read by `cutover-proxy`, which connects) and a service's
//! `loadBalancer` in `stack.yaml`. Both carry the keys flat, under the same names, and turn
//! them into a [`TargetConnection`] to check them.

use serde::{Deserialize, Serialize};

use crate::gateway::Invalid;

/// The protocol spoken to a target group's targets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum TargetProtocol {
    /// HTTP/1.1 over TCP with a keep-alive pool (the default; `HTTP` without a version).
    #[default]
    #[serde(rename = "http1")]
    Http1,
    /// HTTP/2 over TCP with prior knowledge (`HTTP` with `protocolVersion: HTTP2`).
    #[serde(rename = "h2c")]
    H2c,
    /// Plain TCP, ALB's `HTTP`: HTTP/1.1, or HTTP/2 with prior knowledge by `protocolVersion`.
    #[serde(rename = "HTTP")]
    Http,
    /// TLS, ALB's `HTTPS`: ALPN `http/1.1`, or `h2` by `protocolVersion`.
    #[serde(rename = "HTTPS")]
    Https,
}

impl TargetProtocol {
    /// Whether it is the default (`http1`), left out when written.
    pub fn is_default(&self) -> bool {
        *self == TargetProtocol::Http1
    }
}

/// ALB's target group `ProtocolVersion`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ProtocolVersion {
    /// HTTP/1.1 (the default).
    Http1,
    /// HTTP/2.
    Http2,
    /// gRPC: HTTP/2, with `TE: trailers` and the trailers passed through.
    Grpc,
}

/// A target group's connection keys, as `lb.yaml` and a stack's `loadBalancer` write them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TargetConnection {
    /// `HTTP`, `HTTPS`, `http1` (default) or `h2c`.
    #[serde(default, skip_serializing_if = "TargetProtocol::is_default")]
    pub protocol: TargetProtocol,
    /// `HTTP1` (default), `HTTP2` or `GRPC`; with `protocol: HTTP` or `HTTPS` only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protocol_version: Option<ProtocolVersion>,
    /// Seconds an upstream connection may stay unused before it is closed (default 60).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idle_timeout_seconds: Option<f64>,
    /// HTTP/1 connections open to one target at most (default unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections_per_target: Option<u32>,
    /// `HTTPS`: PEM file of the certificate authorities trusted for the targets' certificates,
    /// instead of the system's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<String>,
    /// `HTTPS`: accept any certificate from the targets (the traffic is encrypted but the
    /// target is not authenticated). Only when written so.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub insecure_skip_verify: bool,
}

impl TargetConnection {
    /// Whether connections to the targets are TLS.
    pub fn tls(&self) -> bool {
        self.protocol == TargetProtocol::Https
    }

    /// Whether requests go to the targets as HTTP/2 (`h2c`, or a version `HTTP2` / `GRPC`).
    pub fn http2(&self) -> bool {
        self.protocol == TargetProtocol::H2c
            || matches!(
                self.protocol_version,
                Some(ProtocolVersion::Http2 | ProtocolVersion::Grpc)
            )
    }

    /// Whether the targets speak gRPC (`protocolVersion: GRPC`): their health checks are gRPC
    /// calls matched by `grpcCode`.
    pub fn grpc(&self) -> bool {
        self.protocol_version == Some(ProtocolVersion::Grpc)
    }

    /// Checks what serde cannot: which keys go together, and the ranges.
    pub fn check(&self) -> Result<(), Invalid> {
        let bad = |field: &str, message: &str| Err((field.to_owned(), message.to_owned()));
        if self.protocol_version.is_some()
            && matches!(self.protocol, TargetProtocol::Http1 | TargetProtocol::H2c)
        {
            return bad(
                "protocolVersion",
                "goes with protocol HTTP or HTTPS (http1 and h2c name their version)",
            );
        }
        if !self.tls() {
            if self.ca_file.is_some() {
                return bad("caFile", "needs protocol HTTPS");
            }
            if self.insecure_skip_verify {
                return bad("insecureSkipVerify", "needs protocol HTTPS");
            }
        }
        if let Some(f) = &self.ca_file {
            if f.trim().is_empty() {
                return bad("caFile", "must not be empty");
            }
            if self.insecure_skip_verify {
                return bad(
                    "insecureSkipVerify",
                    "verifies nothing, so a caFile with it would be ignored: give one of them",
                );
            }
        }
        if let Some(t) = self.idle_timeout_seconds
            && !(t.is_finite() && (0.05..=86_400.0).contains(&t))
        {
            return bad(
                "idleTimeoutSeconds",
                "must be between 0.05 and 86400 seconds",
            );
        }
        if let Some(n) = self.max_connections_per_target
            && !(1..=100_000).contains(&n)
        {
            return bad("maxConnectionsPerTarget", "must be between 1 and 100000");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(protocol: TargetProtocol, version: Option<ProtocolVersion>) -> TargetConnection {
        TargetConnection {
            protocol,
            protocol_version: version,
            ..TargetConnection::default()
        }
    }

    #[test]
    fn protocol_and_version_decide_tls_and_http2() {
        use ProtocolVersion as V;
        use TargetProtocol as P;
        let cases = [
            (conn(P::Http1, None), false, false),
            (conn(P::H2c, None), false, true),
            (conn(P::Http, None), false, false),
            (conn(P::Http, Some(V::Grpc)), false, true),
            (conn(P::Https, None), true, false),
            (conn(P::Https, Some(V::Http1)), true, false),
            (conn(P::Https, Some(V::Http2)), true, true),
            (conn(P::Https, Some(V::Grpc)), true, true),
        ];
        for (c, tls, h2) in cases {
            c.check().unwrap();
            assert_eq!((c.tls(), c.http2()), (tls, h2), "{c:?}");
        }
    }

    #[test]
    fn keys_that_do_not_go_together_are_refused() {
        let mut c = conn(TargetProtocol::H2c, Some(ProtocolVersion::Http2));
        assert_eq!(c.check().unwrap_err().0, "protocolVersion");
        c = conn(TargetProtocol::Http, None);
        c.ca_file = Some("/ca.pem".into());
        assert_eq!(c.check().unwrap_err().0, "caFile");
        c.protocol = TargetProtocol::Https;
        c.check().unwrap();
        c.insecure_skip_verify = true;
        assert_eq!(c.check().unwrap_err().0, "insecureSkipVerify");
        c.ca_file = None;
        c.check().unwrap();
        c.max_connections_per_target = Some(0);
        assert_eq!(c.check().unwrap_err().0, "maxConnectionsPerTarget");
        c.max_connections_per_target = None;
        c.idle_timeout_seconds = Some(f64::NAN);
        assert_eq!(c.check().unwrap_err().0, "idleTimeoutSeconds");
    }
}
