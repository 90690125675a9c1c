//! Signature Version 4, verified: the request's `Authorization` header is
//! parsed, the canonical request rebuilt from what arrived (method, path,
//! query, exactly the headers the client says it signed, and the hash of the
//! body as received), and the signature recomputed with the key's secret and
//! compared in constant time.
//!
//! Why not the `aws-sigv4` crate: it signs outgoing requests and chooses
//! itself which headers to sign; a verifier must honour exactly the client's
//! `SignedHeaders` list and hash the body it actually received, so it
//! rebuilds the canonical request from the incoming parts. The algorithm is
//! AWS's published one (`Create a canonical request`, `Create a string to
//! sign`, `Derive a signing key`); tests check it against signatures made by
//! botocore.
//!
//! The time is an argument ([`Millis`]), like every pure crate's.

use cutover_core::Millis;
use hmac::{Hmac, Mac};
use http::{HeaderMap, Method, Uri};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime};

/// The one algorithm accepted.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// How far a request's time may be from the server's, either way (AWS: 15 minutes).
pub const MAX_SKEW_MS: Millis = 15 * 60 * 1000;

/// Every byte but AWS's unreserved characters is encoded.
const STRICT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');
/// The same, keeping `/` (for the path).
const PATH: &AsciiSet = &STRICT.remove(b'/');

/// Who signed a verified request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The access key id of the credential.
    pub access_key_id: String,
    /// The region of the credential scope.
    pub region: String,
    /// The service of the credential scope (`ecs`, `codedeploy`, ...).
    pub service: String,
}

/// Why a request was refused; [`SigV4Error::code`] is AWS's error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    /// Neither an `Authorization` header nor a presigned query.
    #[error("Missing Authentication Token")]
    Missing,
    /// The header is there but malformed or incomplete.
    #[error("{0}")]
    Incomplete(String),
    /// The access key id is not known (or was deleted).
    #[error("The security token included in the request is invalid.")]
    UnknownKey,
    /// The request's time is more than 15 minutes from the server's.
    #[error("Signature expired: {signed} is now earlier than {earliest} ({now} - 15 min.)")]
    Expired {
        /// The request's `X-Amz-Date`.
        signed: String,
        /// The earliest accepted.
        earliest: String,
        /// The server's time.
        now: String,
    },
    /// The request's time is more than 15 minutes ahead of the server's.
    #[error("Signature not yet current: {signed} is still later than {latest} ({now} + 15 min.)")]
    NotYetCurrent {
        /// The request's `X-Amz-Date`.
        signed: String,
        /// The latest accepted.
        latest: String,
        /// The server's time.
        now: String,
    },
    /// The signature does not match (wrong secret, or anything signed was changed).
    #[error(
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    )]
    Mismatch,
}

impl SigV4Error {
    /// AWS's error code for this refusal (the JSON protocols' `__type`).
    pub fn code(&self) -> &'static str {
        match self {
            SigV4Error::Missing => "MissingAuthenticationTokenException",
            SigV4Error::Incomplete(_) => "IncompleteSignatureException",
            SigV4Error::UnknownKey => "UnrecognizedClientException",
            SigV4Error::Expired { .. }
            | SigV4Error::NotYetCurrent { .. }
            | SigV4Error::Mismatch => "InvalidSignatureException",
        }
    }
}

/// The parts of an incoming request that a signature covers.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    /// The HTTP method.
    pub method: &'a Method,
    /// The request target as received (path and query, percent-encoded).
    pub uri: &'a Uri,
    /// Every header as received.
    pub headers: &'a HeaderMap,
    /// The body as received.
    pub body: &'a [u8],
}

/// The parsed `Authorization` header.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Authorization<'a> {
    key: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

/// Verifies `req`'s signature at `now`; `secret_of` gives the secret of an
/// access key id, or `None` if there is no such (active) key.
pub fn verify(
    req: Incoming<'_>,
    now: Millis,
    secret_of: impl FnOnce(&str) -> Option<String>,
) -> Result<Caller, SigV4Error> {
    let Some(header) = req.headers.get(http::header::AUTHORIZATION) else {
        return Err(SigV4Error::Missing);
    };
    let header = header
        .to_str()
        .map_err(|_| SigV4Error::Incomplete("Authorization header is not ASCII".into()))?;
    let auth = parse_authorization(header)?;
    let amz_date = header_str(req.headers, "x-amz-date")
        .ok_or_else(|| SigV4Error::Incomplete("Missing X-Amz-Date header".into()))?;
    let signed_at = parse_amz_date(amz_date)?;
    if !auth.signed_headers.contains(&"host") {
        return Err(SigV4Error::Incomplete(
            "'Host' must be a 'SignedHeader' in the AWS Authorization.".into(),
        ));
    }
    if !amz_date.starts_with(auth.date) || auth.date.len() != 8 {
        return Err(SigV4Error::Incomplete(format!(
            "Credential should be scoped to a valid date: '{}' is not the date of X-Amz-Date {amz_date}",
            auth.date
        )));
    }
    check_skew(signed_at, amz_date, now)?;
    let secret = secret_of(auth.key).ok_or(SigV4Error::UnknownKey)?;
    let payload_hash = hex::encode(Sha256::digest(req.body));
    if let Some(claimed) = header_str(req.headers, "x-amz-content-sha256") {
        // A client that names the payload's hash must name this body's.
        if claimed != payload_hash {
            return Err(SigV4Error::Mismatch);
        }
    }
    let canonical = canonical_request(&req, &auth.signed_headers, &payload_hash)?;
    let scope = format!(
        "{}/{}/{}/aws4_request",
        auth.date, auth.region, auth.service
    );
    let string_to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    );
    let key = signing_key(&secret, auth.date, auth.region, auth.service);
    let expected = hex::encode(hmac(&key, string_to_sign.as_bytes()));
    if expected.as_bytes().ct_eq(auth.signature.as_bytes()).into() {
        Ok(Caller {
            access_key_id: auth.key.to_string(),
            region: auth.region.to_string(),
            service: auth.service.to_string(),
        })
    } else {
        Err(SigV4Error::Mismatch)
    }
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn parse_authorization(header: &str) -> Result<Authorization<'_>, SigV4Error> {
    let incomplete = |what: &str| {
        SigV4Error::Incomplete(format!(
            "Authorization header requires '{what}' parameter. Authorization={header}"
        ))
    };
    let (algorithm, rest) = header
        .split_once(' ')
        .ok_or_else(|| incomplete("Credential"))?;
    if algorithm != ALGORITHM {
        return Err(SigV4Error::Incomplete(format!(
            "Unsupported AWS 'algorithm': '{algorithm}' (only {ALGORITHM})"
        )));
    }
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        match part.split_once('=') {
            Some(("Credential", v)) => credential = Some(v),
            Some(("SignedHeaders", v)) => signed = Some(v),
            Some(("Signature", v)) => signature = Some(v),
            _ => {}
        }
    }
    let credential = credential.ok_or_else(|| incomplete("Credential"))?;
    let signed = signed.ok_or_else(|| incomplete("SignedHeaders"))?;
    let signature = signature.ok_or_else(|| incomplete("Signature"))?;
    let scope: Vec<&str> = credential.split('/').collect();
    let [key, date, region, service, "aws4_request"] = scope[..] else {
        return Err(SigV4Error::Incomplete(format!(
            "Credential should be KEY/DATE/REGION/SERVICE/aws4_request, not {credential}"
        )));
    };
    if key.is_empty() || region.is_empty() || service.is_empty() {
        return Err(SigV4Error::Incomplete(format!(
            "Credential has an empty part: {credential}"
        )));
    }
    let signed_headers: Vec<&str> = signed.split(';').collect();
    if signed_headers
        .iter()
        .any(|h| h.is_empty() || h.bytes().any(|b| b.is_ascii_uppercase()))
    {
        return Err(SigV4Error::Incomplete(format!(
            "SignedHeaders must be lower-case names separated by ';': {signed}"
        )));
    }
    Ok(Authorization {
        key,
        date,
        region,
        service,
        signed_headers,
        signature,
    })
}

fn parse_amz_date(text: &str) -> Result<OffsetDateTime, SigV4Error> {
    let format = format_description!("[year][month][day]T[hour][minute][second]Z");
    PrimitiveDateTime::parse(text, &format)
        .map(PrimitiveDateTime::assume_utc)
        .map_err(|_| {
            SigV4Error::Incomplete(format!(
                "X-Amz-Date must be in the ISO8601 basic format YYYYMMDD'T'HHMMSS'Z', not {text}"
            ))
        })
}

fn amz_date(t: OffsetDateTime) -> String {
    let format = format_description!("[year][month][day]T[hour][minute][second]Z");
    t.format(&format).unwrap_or_default()
}

fn check_skew(signed_at: OffsetDateTime, text: &str, now: Millis) -> Result<(), SigV4Error> {
    let signed_ms = signed_at.unix_timestamp().max(0) as Millis * 1000;
    let at = |ms: Millis| {
        OffsetDateTime::from_unix_timestamp((ms / 1000) as i64)
            .map(amz_date)
            .unwrap_or_default()
    };
    if signed_ms + MAX_SKEW_MS < now {
        return Err(SigV4Error::Expired {
            signed: text.to_string(),
            earliest: at(now - MAX_SKEW_MS),
            now: at(now),
        });
    }
    if signed_ms > now + MAX_SKEW_MS {
        return Err(SigV4Error::NotYetCurrent {
            signed: text.to_string(),
            latest: at(now + MAX_SKEW_MS),
            now: at(now),
        });
    }
    Ok(())
}

/// AWS's canonical request of `req`, over exactly `signed` headers.
fn canonical_request(
    req: &Incoming<'_>,
    signed: &[&str],
    payload_hash: &str,
) -> Result<String, SigV4Error> {
    let mut out = String::with_capacity(256);
    out.push_str(req.method.as_str());
    out.push('\n');
    out.push_str(&canonical_path(req.uri.path()));
    out.push('\n');
    out.push_str(&canonical_query(req.uri.query().unwrap_or("")));
    out.push('\n');
    for name in signed {
        let values: Vec<String> = req
            .headers
            .get_all(*name)
            .iter()
            .map(|v| collapse_spaces(&String::from_utf8_lossy(v.as_bytes())))
            .collect();
        if values.is_empty() {
            if let Some(host) = req.uri.authority().filter(|_| *name == "host") {
                out.push_str(&format!("host:{host}\n"));
                continue;
            }
            return Err(SigV4Error::Incomplete(format!(
                "the signed header {name} is not in the request"
            )));
        }
        out.push_str(name);
        out.push(':');
        out.push_str(&values.join(","));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed.join(";"));
    out.push('\n');
    out.push_str(payload_hash);
    Ok(out)
}

/// The path with dot segments removed, each byte but unreserved ones and
/// `/` encoded again (the services other than S3 sign the encoded path,
/// encoded once more).
fn canonical_path(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut normalized = segments.join("/");
    if !normalized.starts_with('/') {
        normalized.insert(0, '/');
    }
    if path.ends_with('/') && !normalized.ends_with('/') {
        normalized.push('/');
    }
    utf8_percent_encode(&normalized, PATH).to_string()
}

/// Query parameters decoded, encoded strictly, sorted by name then value.
fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (strict(k), strict(v))
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn strict(encoded: &str) -> String {
    let decoded: Vec<u8> = percent_decode_str(encoded).collect();
    percent_encoding::percent_encode(&decoded, STRICT).to_string()
}

/// Trims a header value and collapses runs of spaces to one.
fn collapse_spaces(value: &str) -> String {
    value.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes a key of any length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

#[cfg(test)]
mod tests;
