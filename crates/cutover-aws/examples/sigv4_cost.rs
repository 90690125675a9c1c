//! The cost of verifying one SigV4 signature (issue 10's goal: at most
//! 20 µs): verifies the DescribeServices request botocore signed
//! (`tests/vectors/botocore.json`) N times and prints the mean.
//!
//! usage: cargo run --release -p cutover-aws --example sigv4_cost [N]
// A benchmark reads the wall clock; the crate's clippy.toml forbids it in
// the library, not here.
#![allow(clippy::disallowed_methods, clippy::disallowed_types)]

use cutover_aws::sigv4::{Incoming, verify};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri};
use std::time::Instant;

fn main() {
    let n: u32 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let vectors: serde_json::Value =
        serde_json::from_str(include_str!("../tests/vectors/botocore.json")).unwrap();
    let v = &vectors[0];
    let mut headers = HeaderMap::new();
    headers.insert(
        "host",
        HeaderValue::from_str(v["host"].as_str().unwrap()).unwrap(),
    );
    for pair in v["headers"].as_array().unwrap() {
        headers.append(
            HeaderName::from_bytes(pair[0].as_str().unwrap().as_bytes()).unwrap(),
            HeaderValue::from_str(pair[1].as_str().unwrap()).unwrap(),
        );
    }
    let method = Method::POST;
    let uri: Uri = v["target"].as_str().unwrap().parse().unwrap();
    let body = v["body"].as_str().unwrap().as_bytes();
    let (key, secret) = (v["key"].as_str().unwrap(), v["secret"].as_str().unwrap());
    let now = v["now_ms"].as_u64().unwrap();
    let req = Incoming {
        method: &method,
        uri: &uri,
        headers: &headers,
        body,
    };
    let started = Instant::now();
    for _ in 0..n {
        let caller = verify(req, now, |k| (k == key).then(|| secret.to_string()));
        assert!(caller.is_ok());
    }
    let per = started.elapsed() / n;
    println!(
        "sigv4 verify ({} header lines, {} body bytes): {:.2} µs per request over {n} requests (goal: at most 20 µs)",
        headers.len(),
        body.len(),
        per.as_secs_f64() * 1e6
    );
}
