//! JWK sets: fetched from `https://`, `http://` or `file://`, cached, refetched when a token
//! names an unknown `kid` or the set is older than [`MAX_AGE_MS`], at most once per
//! [`REFRESH_INTERVAL_MS`] (a flood of tokens with made-up `kid`s costs one fetch per interval).
//!
//! Each key is kept with the algorithms its `kty`/`crv`/`alg` allow, and symmetric (`oct`) and
//! encryption (`use: enc`) keys are dropped: a token is only ever verified with an algorithm its
//! key was published for, which rules out `alg: none` and HS256-with-the-public-key confusion.
//! A fetch failure is logged and keeps the keys already known; with none known, requests get 503.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};

use cutover_clock::Clock;

/// The least time between two fetches of one set.
pub(crate) const REFRESH_INTERVAL_MS: u64 = 10_000;
/// A set older than this is refetched on the next request (keys rotate).
pub(crate) const MAX_AGE_MS: u64 = 3_600_000;
/// The largest JWK set document read.
const MAX_BYTES: usize = 1 << 20;
/// The longest a fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// One verification key.
pub(crate) struct Key {
    pub(crate) kid: Option<String>,
    pub(crate) algorithms: Vec<Algorithm>,
    pub(crate) key: DecodingKey,
}

#[derive(Default)]
struct State {
    keys: Arc<Vec<Key>>,
    fetched_ms: Option<u64>,
    attempted_ms: Option<u64>,
}

/// The cached keys of one `jwksUri`, shared by every rule naming it.
pub(crate) struct Jwks {
    uri: String,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
    /// Held while fetching, so that concurrent misses cause one fetch.
    fetching: tokio::sync::Mutex<()>,
}

impl Jwks {
    pub(crate) fn new(uri: &str, clock: Arc<dyn Clock>) -> Self {
        Jwks {
            uri: uri.to_owned(),
            clock,
            state: Mutex::default(),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    /// The current keys; `None` when the set was never fetched successfully. Fetches first when
    /// the set is missing, stale, or (with `want` naming a `kid` not in it) may be outdated, and
    /// the last attempt is older than [`REFRESH_INTERVAL_MS`].
    pub(crate) async fn keys(&self, want: Option<&str>) -> Option<Arc<Vec<Key>>> {
        let needs = |s: &State, now: u64| {
            let stale = s
                .fetched_ms
                .is_none_or(|f| now.saturating_sub(f) >= MAX_AGE_MS);
            let missing = want.is_some_and(|k| !s.keys.iter().any(|x| x.kid.as_deref() == Some(k)));
            let allowed = s
                .attempted_ms
                .is_none_or(|a| now.saturating_sub(a) >= REFRESH_INTERVAL_MS);
            (stale || missing) && allowed
        };
        {
            let s = self.state.lock().unwrap();
            if !needs(&s, self.now_ms()) {
                return s.fetched_ms.map(|_| s.keys.clone());
            }
        }
        let _one = self.fetching.lock().await;
        let now = self.now_ms();
        if needs(&self.state.lock().unwrap(), now) {
            self.state.lock().unwrap().attempted_ms = Some(now);
            match fetch(&self.uri).await.and_then(|b| parse_set(&b)) {
                Ok(keys) => {
                    tracing::info!(jwks_uri = %self.uri, keys = keys.len(), "fetched the JWK set");
                    let mut s = self.state.lock().unwrap();
                    s.keys = Arc::new(keys);
                    s.fetched_ms = Some(now);
                }
                Err(e) => {
                    tracing::warn!(jwks_uri = %self.uri, error = %e, "cannot fetch the JWK set")
                }
            }
        }
        let s = self.state.lock().unwrap();
        s.fetched_ms.map(|_| s.keys.clone())
    }
}

/// Reads a JWK set document, keeping the signature keys it can use.
pub(crate) fn parse_set(bytes: &[u8]) -> Result<Vec<Key>, String> {
    #[derive(serde::Deserialize)]
    struct RawSet {
        keys: Vec<serde_json::Value>,
    }
    let raw: RawSet =
        serde_json::from_slice(bytes).map_err(|e| format!("not a JWK set document: {e}"))?;
    let mut keys = Vec::new();
    for v in raw.keys {
        // Keys of kinds this crate does not know (or malformed ones) are skipped, not fatal:
        // an issuer's set may hold encryption keys or new key types next to its signing keys.
        let Ok(jwk) = serde_json::from_value::<Jwk>(v) else {
            continue;
        };
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
            continue;
        }
        let algorithms = allowed(&jwk);
        if algorithms.is_empty() {
            continue;
        }
        if let Ok(key) = DecodingKey::from_jwk(&jwk) {
            keys.push(Key {
                kid: jwk.common.key_id.clone(),
                algorithms,
                key,
            });
        }
    }
    Ok(keys)
}

/// The signature algorithms a public key may verify: its `alg` when given (and matching its
/// type), else every asymmetric algorithm of its type and curve. Never an HMAC.
fn allowed(jwk: &Jwk) -> Vec<Algorithm> {
    use Algorithm as A;
    let family: &[Algorithm] = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => {
            &[A::RS256, A::RS384, A::RS512, A::PS256, A::PS384, A::PS512]
        }
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => &[A::ES256],
            EllipticCurve::P384 => &[A::ES384],
            _ => &[],
        },
        AlgorithmParameters::OctetKeyPair(p) => match p.curve {
            EllipticCurve::Ed25519 => &[A::EdDSA],
            _ => &[],
        },
        AlgorithmParameters::OctetKey(_) => &[],
    };
    match jwk.common.key_algorithm {
        None => family.to_vec(),
        Some(ka) => family
            .iter()
            .copied()
            .filter(|a| key_algorithm(*a) == Some(ka))
            .collect(),
    }
}

fn key_algorithm(a: Algorithm) -> Option<KeyAlgorithm> {
    use Algorithm as A;
    use KeyAlgorithm as K;
    Some(match a {
        A::RS256 => K::RS256,
        A::RS384 => K::RS384,
        A::RS512 => K::RS512,
        A::PS256 => K::PS256,
        A::PS384 => K::PS384,
        A::PS512 => K::PS512,
        A::ES256 => K::ES256,
        A::ES384 => K::ES384,
        A::EdDSA => K::EdDSA,
        _ => return None,
    })
}

type HttpsClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Empty<Bytes>,
>;

/// One client for every JWK set fetch, trusting the Mozilla roots of `webpki-roots`.
fn client() -> &'static HttpsClient {
    static CLIENT: OnceLock<HttpsClient> = OnceLock::new();
    CLIENT.get_or_init(|| {
        let builder = hyper_rustls::HttpsConnectorBuilder::new();
        // The ring provider's default protocol versions: cannot fail.
        let connector = builder
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .expect("ring supports the default TLS versions")
            .https_or_http()
            .enable_http1()
            .build();
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
            .build(connector)
    })
}

/// The bytes at `uri` (`file://`, `http://`, `https://`), at most 1 MiB.
async fn fetch(uri: &str) -> Result<Vec<u8>, String> {
    if let Some(path) = uri.strip_prefix("file://") {
        let bytes = tokio::fs::read(path)
            .await
            .map_err(|e| format!("{path}: {e}"))?;
        if bytes.len() > MAX_BYTES {
            return Err(format!("{path}: larger than {MAX_BYTES} bytes"));
        }
        return Ok(bytes);
    }
    let uri: http::Uri = uri.parse().map_err(|e| format!("{e}"))?;
    let get = async {
        let resp = client().get(uri).await.map_err(|e| e.to_string())?;
        if resp.status() != http::StatusCode::OK {
            return Err(format!("status {}", resp.status()));
        }
        let body = Limited::new(resp.into_body(), MAX_BYTES)
            .collect()
            .await
            .map_err(|e| e.to_string())?;
        Ok(body.to_bytes().to_vec())
    };
    tokio::time::timeout(FETCH_TIMEOUT, get)
        .await
        .map_err(|_| format!("no answer within {FETCH_TIMEOUT:?}"))?
}
