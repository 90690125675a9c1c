//! The OpenAPI description, kept beside the router and checked against it.

use axum::Json;
use serde_json::Value;

const DOCUMENT: &str = include_str!("openapi.json");

pub(crate) async fn document() -> Json<Value> {
    Json(serde_json::from_str(DOCUMENT).unwrap_or(Value::Null))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn every_route_is_described_and_nothing_else() {
        let doc: Value = serde_json::from_str(DOCUMENT).expect("openapi.json is valid JSON");
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
}
