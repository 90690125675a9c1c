//! `/v1/openapi.json`: the document generated from the `cutover_api` types
//! ([`cutover_api::openapi::document`]), checked against the router.

use axum::Json;
use axum::response::IntoResponse;

pub(crate) async fn document() -> impl IntoResponse {
    Json(cutover_api::openapi::document())
}

#[cfg(test)]
mod tests {
    use crate::testing::Harness;
    use axum::http::{Method, StatusCode};
    use cutover_api::ApiErrorBody;
    use cutover_api::openapi::ENDPOINTS;
    use std::collections::BTreeSet;

    #[test]
    fn every_route_is_described_and_nothing_else() {
        let doc = serde_json::to_value(cutover_api::openapi::document()).unwrap();
        let mut described = BTreeSet::new();
        for (path, ops) in doc["paths"].as_object().unwrap() {
            for method in ops.as_object().unwrap().keys() {
                described.insert((method.clone(), path.clone()));
            }
        }
        let routed: BTreeSet<_> = crate::api::ROUTES
            .iter()
            .map(|(m, p)| (m.to_string(), p.to_string()))
            .collect();
        assert_eq!(described, routed);
    }

    /// Each documented route reaches a handler of the real router: the
    /// answer is not the router's own 404 (empty body) or 405.
    #[tokio::test(start_paused = true)]
    async fn every_described_route_is_routed() {
        let h = Harness::start().await;
        for e in ENDPOINTS {
            let path: String = e
                .path
                .split('/')
                .map(|seg| if seg.starts_with('{') { "x" } else { seg })
                .collect::<Vec<_>>()
                .join("/");
            let method = Method::from_bytes(e.method.to_uppercase().as_bytes()).unwrap();
            let body = matches!(e.method, "post" | "put").then(|| serde_json::json!({}));
            let (status, answer) = h.call(method, &path, body).await;
            assert_ne!(
                status,
                StatusCode::METHOD_NOT_ALLOWED,
                "{} {path}",
                e.method
            );
            if status == StatusCode::NOT_FOUND {
                let err: Result<ApiErrorBody, _> = serde_json::from_value(answer.clone());
                assert!(err.is_ok(), "{} {path}: unrouted: {answer}", e.method);
            }
        }
    }

    #[test]
    fn the_served_document_is_valid_json_with_every_schema() {
        let doc = serde_json::to_value(cutover_api::openapi::document()).unwrap();
        assert_eq!(doc["openapi"].as_str().map(|v| &v[..2]), Some("3."));
        let schemas: Vec<&String> = doc["components"]["schemas"]
            .as_object()
            .unwrap()
            .keys()
            .collect();
        for name in [
            "Service",
            "Task",
            "Deployment",
            "Alarm",
            "Build",
            "ApiErrorBody",
        ] {
            assert!(schemas.iter().any(|s| *s == name), "{name}: {schemas:?}");
        }
    }
}
