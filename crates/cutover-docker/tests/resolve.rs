//! The resolver against a stub registry on loopback: anonymous, Basic and
//! Bearer authentication, and hostile answers (wrong digest, redirect, huge
//! body, wrong media type, realm over plain HTTP elsewhere).

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use cutover_docker::{ImageResolver, RegistryResolver, ResolverOptions};
use sha2::{Digest, Sha256};
use std::sync::{Arc, Mutex};

const INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// What the stub does.
#[derive(Clone, Default)]
struct Stub {
    /// `None`: anonymous; `Basic`; `Bearer` (token endpoint at `/token`).
    auth: Option<&'static str>,
    /// Answer this digest header instead of the body's.
    lie_digest: bool,
    redirect: bool,
    huge: bool,
    content_type: Option<&'static str>,
    /// The body served for the tag `v1`.
    body: Arc<Mutex<String>>,
    /// Query strings the token endpoint saw.
    token_queries: Arc<Mutex<Vec<String>>>,
    /// Override the realm.
    realm: Option<String>,
    addr: Arc<Mutex<String>>,
}

const USER_PASS: &str = "Basic dXNlcjpzZWNyZXQ="; // user:secret

async fn manifest(
    State(stub): State<Stub>,
    Path((repo, tag)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match stub.auth {
        Some("Basic") if given != Some(USER_PASS) => {
            return (
                StatusCode::UNAUTHORIZED,
                [(
                    header::WWW_AUTHENTICATE,
                    r#"Basic realm="stub""#.to_string(),
                )],
            )
                .into_response();
        }
        Some("Bearer") if given != Some("Bearer t0ken") => {
            let realm = stub
                .realm
                .clone()
                .unwrap_or_else(|| format!("http://{}/token", stub.addr.lock().unwrap()));
            let challenge =
                format!(r#"Bearer realm="{realm}",service="stub",scope="repository:{repo}:pull""#);
            return (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, challenge)],
            )
                .into_response();
        }
        _ => {}
    }
    if stub.redirect {
        return (
            StatusCode::TEMPORARY_REDIRECT,
            [(header::LOCATION, "http://192.0.2.1/elsewhere")],
        )
            .into_response();
    }
    if tag != "v1" {
        return StatusCode::NOT_FOUND.into_response();
    }
    let body = if stub.huge {
        "x".repeat(5 * 1024 * 1024)
    } else {
        stub.body.lock().unwrap().clone()
    };
    let digest = if stub.lie_digest {
        format!("sha256:{}", "0".repeat(64))
    } else {
        format!("sha256:{:x}", Sha256::digest(body.as_bytes()))
    };
    let mut response = body.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(stub.content_type.unwrap_or(INDEX)),
    );
    h.insert("docker-content-digest", digest.parse().unwrap());
    response
}

async fn token(
    State(stub): State<Stub>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    headers: HeaderMap,
) -> Response {
    stub.token_queries
        .lock()
        .unwrap()
        .push(query.unwrap_or_default());
    if headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        != Some(USER_PASS)
    {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    axum::Json(serde_json::json!({"token": "t0ken"})).into_response()
}

/// Serves `stub` on a loopback port; returns `127.0.0.1:port`.
async fn serve(stub: Stub) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    *stub.addr.lock().unwrap() = addr.clone();
    let app = Router::new()
        .route("/v2/{*rest}", get(route))
        .route("/token", get(token))
        .with_state(stub);
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// `/v2/<name>/manifests/<tag>` with a multi-component name.
async fn route(state: State<Stub>, Path(rest): Path<String>, headers: HeaderMap) -> Response {
    match rest.rsplit_once("/manifests/") {
        Some((repo, tag)) => manifest(state, Path((repo.into(), tag.into())), headers).await,
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A resolver whose `config.json` has `user:secret` for `registry`.
fn resolver(dir: &std::path::Path, registry: &str) -> RegistryResolver {
    let config = dir.join("config.json");
    std::fs::write(
        &config,
        serde_json::json!({"auths": {registry: {"auth": "dXNlcjpzZWNyZXQ="}}}).to_string(),
    )
    .unwrap();
    RegistryResolver::new(ResolverOptions {
        docker_config: Some(config),
        ..ResolverOptions::default()
    })
    .unwrap()
}

fn stub_with(body: &str) -> Stub {
    Stub {
        body: Arc::new(Mutex::new(body.to_string())),
        ..Stub::default()
    }
}

fn sha(body: &str) -> String {
    format!("sha256:{:x}", Sha256::digest(body.as_bytes()))
}

#[tokio::test]
async fn anonymous_basic_and_bearer_resolve_to_the_body_digest() {
    let dir = tempfile::tempdir().unwrap();
    for auth in [None, Some("Basic"), Some("Bearer")] {
        let stub = Stub {
            auth,
            ..stub_with(r#"{"schemaVersion":2}"#)
        };
        let queries = stub.token_queries.clone();
        let addr = serve(stub).await;
        let pinned = resolver(dir.path(), &addr)
            .resolve(&format!("{addr}/team/web:v1"))
            .await
            .unwrap()
            .unwrap();
        let digest = sha(r#"{"schemaVersion":2}"#);
        assert_eq!(pinned.digest, digest, "{auth:?}");
        assert_eq!(pinned.reference, format!("{addr}/team/web@{digest}"));
        if auth == Some("Bearer") {
            let q = queries.lock().unwrap().clone();
            assert_eq!(
                q,
                vec!["scope=repository%3Ateam%2Fweb%3Apull&service=stub".to_string()]
            );
        }
    }
}

#[tokio::test]
async fn a_moved_tag_resolves_to_the_new_content_and_a_digest_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let stub = stub_with("one");
    let body = stub.body.clone();
    let addr = serve(stub).await;
    let r = resolver(dir.path(), &addr);
    let first = r.resolve(&format!("{addr}/web:v1")).await.unwrap().unwrap();
    *body.lock().unwrap() = "two".into();
    let second = r.resolve(&format!("{addr}/web:v1")).await.unwrap().unwrap();
    assert_eq!(
        (first.digest, second.digest.clone()),
        (sha("one"), sha("two"))
    );
    // Already pinned: kept as written, no request needed.
    let written = format!("{addr}/web:v1@{}", sha("one"));
    let kept = r.resolve(&written).await.unwrap().unwrap();
    assert_eq!((kept.reference, kept.digest), (written, sha("one")));
    // Not registry references: nothing to resolve.
    for image in ["sample-app:v1", "/srv/app", "./app.tar"] {
        assert_eq!(r.resolve(image).await.unwrap(), None, "{image}");
    }
}

#[tokio::test]
async fn hostile_or_failing_answers_are_refused_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(Stub, &str, &str)> = vec![
        (
            Stub {
                lie_digest: true,
                ..stub_with("x")
            },
            "v1",
            "is not the manifest's digest",
        ),
        (
            Stub {
                redirect: true,
                ..stub_with("x")
            },
            "v1",
            "redirects are not followed",
        ),
        (
            Stub {
                huge: true,
                ..stub_with("x")
            },
            "v1",
            "larger than",
        ),
        (
            Stub {
                content_type: Some("application/vnd.docker.distribution.manifest.v1+prettyjws"),
                ..stub_with("x")
            },
            "v1",
            "not an image manifest",
        ),
        (stub_with("x"), "v2", "manifest unknown"),
        (
            Stub {
                auth: Some("Bearer"),
                realm: Some("http://192.0.2.1/token".into()),
                ..stub_with("x")
            },
            "v1",
            "refusing the token realm",
        ),
    ];
    for (stub, tag, expected) in cases {
        let addr = serve(stub).await;
        let err = resolver(dir.path(), &addr)
            .resolve(&format!("{addr}/web:{tag}"))
            .await
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("CannotPullContainerError: "), "{err}");
        assert!(err.contains(expected), "{expected}: {err}");
    }
    // Basic without credentials for that registry.
    let addr = serve(Stub {
        auth: Some("Basic"),
        ..stub_with("x")
    })
    .await;
    let err = resolver(dir.path(), "other.example")
        .resolve(&format!("{addr}/web:v1"))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("has none for"), "{err}");
    // Nothing listening.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let err = resolver(dir.path(), "x")
        .resolve(&format!("{closed}/web:v1"))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("CannotPullContainerError"),
        "{err}"
    );
}
