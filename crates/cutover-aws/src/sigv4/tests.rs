//! The verifier against signatures botocore made (tests/vectors), and every
//! way a request is refused.

use super::*;
use http::{HeaderName, HeaderValue};

struct Vector {
    name: String,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Vec<u8>,
    key: String,
    secret: String,
    now: Millis,
}

fn vectors() -> Vec<Vector> {
    let text = include_str!("../../tests/vectors/botocore.json");
    let all: Vec<serde_json::Value> = serde_json::from_str(text).unwrap();
    all.into_iter()
        .map(|v| {
            let s = |k: &str| v[k].as_str().unwrap().to_string();
            let mut headers = HeaderMap::new();
            headers.insert("host", HeaderValue::from_str(&s("host")).unwrap());
            for pair in v["headers"].as_array().unwrap() {
                headers.append(
                    HeaderName::from_bytes(pair[0].as_str().unwrap().as_bytes()).unwrap(),
                    HeaderValue::from_str(pair[1].as_str().unwrap()).unwrap(),
                );
            }
            Vector {
                name: s("name"),
                method: Method::from_bytes(s("method").as_bytes()).unwrap(),
                uri: s("target").parse().unwrap(),
                headers,
                body: s("body").into_bytes(),
                key: s("key"),
                secret: s("secret"),
                now: v["now_ms"].as_u64().unwrap(),
            }
        })
        .collect()
}

impl Vector {
    fn check(&self, now: Millis) -> Result<Caller, SigV4Error> {
        self.check_with(&self.headers, now, |k| {
            (k == self.key).then(|| self.secret.clone())
        })
    }

    /// Verifies this request with `headers` instead of its own.
    fn check_with(
        &self,
        headers: &HeaderMap,
        now: Millis,
        secret_of: impl FnOnce(&str) -> Option<String>,
    ) -> Result<Caller, SigV4Error> {
        let req = Incoming {
            method: &self.method,
            uri: &self.uri,
            headers,
            body: &self.body,
        };
        verify(req, now, secret_of)
    }
}

#[test]
fn every_request_botocore_signed_verifies() {
    let vectors = vectors();
    assert_eq!(vectors.len(), 4);
    for v in &vectors {
        let caller = v.check(v.now).unwrap_or_else(|e| panic!("{}: {e}", v.name));
        assert_eq!(caller.access_key_id, v.key, "{}", v.name);
    }
    let sts = vectors.iter().find(|v| v.name == "sts-query").unwrap();
    let caller = sts.check(sts.now).unwrap();
    assert_eq!(
        (caller.region.as_str(), caller.service.as_str()),
        ("eu-west-3", "sts")
    );
}

#[test]
fn a_changed_body_or_signed_header_or_secret_is_a_mismatch() {
    for v in vectors() {
        let tampered = Vector {
            body: b"{}x".to_vec(),
            ..v
        };
        assert_eq!(
            tampered.check(tampered.now),
            Err(SigV4Error::Mismatch),
            "{}",
            tampered.name
        );
    }
    let mut v = vectors().remove(0);
    v.headers.insert(
        "x-amz-target",
        HeaderValue::from_static("AmazonEC2ContainerServiceV20141113.DeleteService"),
    );
    assert_eq!(v.check(v.now), Err(SigV4Error::Mismatch));

    let mut v = vectors().remove(0);
    v.secret.push('x');
    assert_eq!(v.check(v.now), Err(SigV4Error::Mismatch));

    let mut v = vectors().remove(0);
    v.uri = "/?extra=1".parse().unwrap();
    assert_eq!(v.check(v.now), Err(SigV4Error::Mismatch));
}

#[test]
fn an_unsigned_header_may_change() {
    let mut v = vectors().remove(0);
    v.headers
        .insert("user-agent", HeaderValue::from_static("a proxy added this"));
    assert!(v.check(v.now).is_ok());
}

#[test]
fn a_claimed_payload_hash_must_be_the_body_s() {
    let mut v = vectors().remove(0);
    v.headers.insert(
        "x-amz-content-sha256",
        HeaderValue::from_static("UNSIGNED-PAYLOAD"),
    );
    assert_eq!(v.check(v.now), Err(SigV4Error::Mismatch));
}

#[test]
fn an_unknown_key_is_unrecognized() {
    let v = vectors().remove(0);
    let err = v.check_with(&v.headers, v.now, |_| None).unwrap_err();
    assert_eq!(err, SigV4Error::UnknownKey);
    assert_eq!(err.code(), "UnrecognizedClientException");
}

#[test]
fn fifteen_minutes_of_skew_either_way_and_no_more() {
    let v = vectors().remove(0);
    assert!(v.check(v.now + MAX_SKEW_MS).is_ok());
    assert!(v.check(v.now - MAX_SKEW_MS).is_ok());
    let late = v.check(v.now + MAX_SKEW_MS + 1000).unwrap_err();
    assert_eq!(late.code(), "InvalidSignatureException");
    assert_eq!(
        late.to_string(),
        "Signature expired: 20261204T190500Z is now earlier than 20261204T190501Z (20261204T192001Z - 15 min.)"
    );
    let early = v.check(v.now - MAX_SKEW_MS - 1000).unwrap_err();
    assert!(matches!(early, SigV4Error::NotYetCurrent { .. }), "{early}");
    assert_eq!(early.code(), "InvalidSignatureException");
}

#[test]
fn an_unsigned_request_is_missing_its_token() {
    let v = vectors().remove(0);
    let mut headers = v.headers.clone();
    headers.remove("authorization");
    let err = v
        .check_with(&headers, v.now, |_| panic!("no key is looked up"))
        .unwrap_err();
    assert_eq!(err.code(), "MissingAuthenticationTokenException");
}

#[test]
fn malformed_authorization_headers_are_incomplete_not_a_panic() {
    let v = vectors().remove(0);
    let bad = [
        "",
        "AWS4-HMAC-SHA256",
        "AWS4-HMAC-SHA1 Credential=a/b/c/d/aws4_request, SignedHeaders=host, Signature=00",
        "AWS4-HMAC-SHA256 Credential=, SignedHeaders=host, Signature=00",
        "AWS4-HMAC-SHA256 Credential=AKIACUTOVEREXAMPLE01/20261204/us-east-1/ecs, SignedHeaders=host;x-amz-date, Signature=00",
        "AWS4-HMAC-SHA256 Credential=AKIACUTOVEREXAMPLE01/20261204/us-east-1/ecs/aws4_request, Signature=00",
        "AWS4-HMAC-SHA256 Credential=AKIACUTOVEREXAMPLE01/20261204/us-east-1/ecs/aws4_request, SignedHeaders=x-amz-date, Signature=00",
        "AWS4-HMAC-SHA256 Credential=AKIACUTOVEREXAMPLE01/20261205/us-east-1/ecs/aws4_request, SignedHeaders=host;x-amz-date, Signature=00",
        "AWS4-HMAC-SHA256 Credential=AKIACUTOVEREXAMPLE01/20261204/us-east-1/ecs/aws4_request, SignedHeaders=Host;X-Amz-Date, Signature=00",
        "AWS4-HMAC-SHA256 Credential=AKIACUTOVEREXAMPLE01/20261204/us-east-1/ecs/aws4_request, SignedHeaders=host;x-amz-date;x-absent, Signature=00",
        "AWS4-HMAC-SHA256 Credential=AKIACUTOVEREXAMPLE01/20261204/us-east-1/ecs/aws4_request, SignedHeaders=;;, Signature=00",
    ];
    for text in bad {
        let mut headers = v.headers.clone();
        headers.insert("authorization", HeaderValue::from_str(text).unwrap());
        let err = v
            .check_with(&headers, v.now, |_| Some(v.secret.clone()))
            .unwrap_err();
        assert!(
            matches!(err, SigV4Error::Incomplete(_) | SigV4Error::Missing),
            "{text:?}: {err:?}"
        );
    }
    for date in [
        "",
        "2026-12-04T19:05:00Z",
        "20261304T190500Z",
        "20261204T190500",
    ] {
        let mut headers = v.headers.clone();
        headers.insert("x-amz-date", HeaderValue::from_str(date).unwrap());
        assert!(matches!(
            v.check_with(&headers, v.now, |_| Some(v.secret.clone())),
            Err(SigV4Error::Incomplete(_))
        ));
    }
}

#[test]
fn the_canonical_path_and_query_follow_aws_encoding() {
    assert_eq!(canonical_path("/"), "/");
    assert_eq!(canonical_path(""), "/");
    assert_eq!(canonical_path("/a/./b/../c/"), "/a/c/");
    assert_eq!(canonical_path("/a%20b"), "/a%2520b");
    assert_eq!(canonical_query("b=2&a=1&a=0&c"), "a=0&a=1&b=2&c=");
    assert_eq!(canonical_query("k=a+b&s=%7e"), "k=a%2Bb&s=~");
}
