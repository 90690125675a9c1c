//! The secret store's operations and the buildspec reference grammar.

use super::build_ref::{
    ReferenceError, SecretReference, parameter_name, parameter_value, secret_value,
};
use super::*;
use crate::Store;

fn text(s: &str) -> SecretValue {
    SecretValue::Text(SecretString::from(s))
}

fn version(id: &str, value: SecretValue, at: u64) -> SecretVersion {
    SecretVersion {
        id: id.into(),
        value,
        created_at: at,
    }
}

fn secret_row(name: &str, value: Option<SecretValue>) -> SecretRow {
    SecretRow {
        name: name.into(),
        arn_suffix: "a1B2c3".into(),
        description: Some("db".into()),
        current: value.map(|v| version("v1", v, 10)),
        previous: None,
        created_at: 10,
        changed_at: 10,
        deleted_at: None,
        purge_at: None,
    }
}

fn param(name: &str, value: &str, type_: ParameterType) -> ParameterRow {
    ParameterRow {
        name: name.into(),
        type_,
        value: SecretString::from(value),
        version: 1,
        last_modified: 5,
        description: None,
    }
}

fn shown(v: &SecretValue) -> String {
    match v {
        SecretValue::Text(t) => t.expose_secret().to_string(),
        SecretValue::Binary(b) => format!("{:?}", b.expose_secret()),
    }
}

#[test]
fn secrets_round_trip_with_their_versions_and_never_debug_print_a_value() {
    let s = Store::open_in_memory().unwrap();
    let mut row = secret_row("prod/db", Some(text("hunter2")));
    s.with(|c| put_secret(c, &row)).unwrap();
    row.push_version(version("v2", text("hunter3"), 20));
    s.with(|c| put_secret(c, &row)).unwrap();
    let got = s.with(|c| secret(c, "prod/db")).unwrap().unwrap();
    assert!(!format!("{got:?}").contains("hunter"), "{got:?}");
    assert_eq!(shown(&got.current.as_ref().unwrap().value), "hunter3");
    assert_eq!(got.previous.as_ref().unwrap().id, "v1");
    assert_eq!(got.changed_at, 20);
    assert_eq!(
        got.versions_to_stages(),
        [("v2".into(), AWSCURRENT), ("v1".into(), AWSPREVIOUS)]
    );

    // Versions by label, by id, by both.
    assert_eq!(got.version(None, None).unwrap().0.id, "v2");
    assert_eq!(got.version(None, Some(AWSPREVIOUS)).unwrap().0.id, "v1");
    assert_eq!(got.version(Some("v1"), None).unwrap().1, AWSPREVIOUS);
    assert_eq!(
        got.version(Some("v1"), Some(AWSCURRENT)).unwrap_err(),
        NoVersion::Stage(AWSCURRENT.into())
    );
    assert_eq!(
        got.version(Some("v0"), None).unwrap_err(),
        NoVersion::Id("v0".into())
    );
    assert_eq!(
        got.version(None, Some("AWSPENDING")).unwrap_err(),
        NoVersion::Stage("AWSPENDING".into())
    );

    // A third version drops the oldest.
    row.push_version(version("v3", text("x"), 30));
    assert_eq!(row.previous.as_ref().unwrap().id, "v2");
    assert!(row.version_by_id("v1").is_none());

    // Binary values stay binary; a secret may have no value at all.
    s.with(|c| {
        put_secret(
            c,
            &secret_row("bin", Some(SecretValue::Binary(vec![0, 255, 7].into()))),
        )?;
        put_secret(c, &secret_row("empty", None))
    })
    .unwrap();
    let bin = s.with(|c| secret(c, "bin")).unwrap().unwrap();
    assert_eq!(shown(&bin.current.unwrap().value), "[0, 255, 7]");
    assert!(
        s.with(|c| secret(c, "empty"))
            .unwrap()
            .unwrap()
            .current
            .is_none()
    );
    let names: Vec<_> = s
        .with(list_secrets)
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["bin", "empty", "prod/db"]);
    assert!(s.with(|c| delete_secret(c, "bin")).unwrap());
    assert!(!s.with(|c| delete_secret(c, "bin")).unwrap());
}

#[test]
fn a_secret_is_found_by_name_full_arn_or_partial_arn() {
    let s = Store::open_in_memory().unwrap();
    s.with(|c| put_secret(c, &secret_row("prod/db-main", Some(text("v")))))
        .unwrap();
    let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-main";
    for id in [
        "prod/db-main".to_string(),
        format!("{arn}-a1B2c3"),
        arn.to_string(),
    ] {
        let found = s.with(|c| find_secret(c, &id)).unwrap();
        assert_eq!(
            found.map(|s| s.name).as_deref(),
            Some("prod/db-main"),
            "{id}"
        );
    }
    for id in [
        "prod/db".to_string(),
        format!("{arn}-zzzzzz"),
        "arn:aws:ssm:us-east-1:1:parameter/prod/db-main".into(),
        "arn:short".into(),
    ] {
        assert!(s.with(|c| find_secret(c, &id)).unwrap().is_none(), "{id}");
    }
}

#[test]
fn due_deletions_are_purged() {
    let s = Store::open_in_memory().unwrap();
    let mut row = secret_row("old", Some(text("v")));
    row.deleted_at = Some(100);
    row.purge_at = Some(1000);
    s.with(|c| put_secret(c, &row)).unwrap();
    assert!(s.with(|c| purge_deleted(c, 999)).unwrap().is_empty());
    assert_eq!(s.with(|c| purge_deleted(c, 1000)).unwrap(), ["old"]);
    assert!(s.with(|c| secret(c, "old")).unwrap().is_none());
}

#[test]
fn parameters_round_trip_and_top_level_names_have_two_spellings() {
    let s = Store::open_in_memory().unwrap();
    s.with(|c| {
        put_parameter(c, &param("token", "t", ParameterType::SecureString))?;
        put_parameter(c, &param("/app/db/url", "u", ParameterType::String))?;
        put_parameter(c, &param("/app/db/pass", "p", ParameterType::SecureString))?;
        put_parameter(c, &param("/app/name", "n", ParameterType::StringList))?;
        put_parameter(c, &param("/apple", "a", ParameterType::String))
    })
    .unwrap();
    let token = s.with(|c| parameter(c, "/token")).unwrap().unwrap();
    assert_eq!(token.name, "token");
    assert_eq!(token.type_, ParameterType::SecureString);
    assert!(!format!("{token:?}").contains("\"t\""), "{token:?}");
    assert!(s.with(|c| parameter(c, "app/name")).unwrap().is_none());

    let mut updated = param("/app/name", "n2", ParameterType::StringList);
    updated.version = 2;
    s.with(|c| put_parameter(c, &updated)).unwrap();
    let got = s.with(|c| parameter(c, "/app/name")).unwrap().unwrap();
    assert_eq!((got.version, got.value.expose_secret()), (2, "n2"));

    let names = |path: &str, recursive: bool| -> Vec<String> {
        s.with(|c| parameters_under(c, path, recursive))
            .unwrap()
            .into_iter()
            .map(|p| p.name)
            .collect()
    };
    assert_eq!(names("/app", false), ["/app/name"]);
    assert_eq!(
        names("/app/", true),
        ["/app/db/pass", "/app/db/url", "/app/name"]
    );
    assert_eq!(names("/", false), ["/apple", "token"]);
    assert_eq!(names("/app/db/url", true), Vec::<String>::new());

    assert!(s.with(|c| delete_parameter(c, "/token")).unwrap());
    assert!(!s.with(|c| delete_parameter(c, "token")).unwrap());
}

#[test]
fn an_unknown_stored_parameter_type_is_an_error() {
    let s = Store::open_in_memory().unwrap();
    s.with(|c| put_parameter(c, &param("p", "v", ParameterType::String)))
        .unwrap();
    s.with(|c| {
        c.execute("UPDATE secrets SET parameter_type = 'Weird'", [])
            .map_err(StoreError::sql("test"))
    })
    .unwrap();
    assert!(s.with(|c| parameter(c, "p")).is_err());
}

#[test]
fn buildspec_references_parse_with_arns_and_empty_parts() {
    let parse = |t| SecretReference::parse(t).unwrap();
    assert_eq!(
        parse("prod/db"),
        SecretReference {
            secret_id: "prod/db",
            json_key: None,
            version_stage: None,
            version_id: None
        }
    );
    assert_eq!(
        parse("prod/db:password::v-1"),
        SecretReference {
            secret_id: "prod/db",
            json_key: Some("password"),
            version_stage: None,
            version_id: Some("v-1")
        }
    );
    let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-a1B2c3";
    assert_eq!(parse(arn).secret_id, arn);
    let full = format!("{arn}:user:AWSPREVIOUS");
    let r = parse(&full);
    assert_eq!(
        (r.secret_id, r.json_key, r.version_stage),
        (arn, Some("user"), Some("AWSPREVIOUS"))
    );
    for bad in ["", ":key", "a:b:c:d:e", "arn:aws:secretsmanager:us-east-1"] {
        assert!(SecretReference::parse(bad).is_err(), "{bad:?}");
    }
    assert_eq!(
        parameter_name("arn:aws:ssm:us-east-1:1:parameter/a/b"),
        "/a/b"
    );
    assert_eq!(
        parameter_name("arn:aws:ssm:us-east-1:1:parameter/top"),
        "top"
    );
    assert_eq!(parameter_name("/a/b"), "/a/b");
}

#[test]
fn buildspec_references_resolve_against_the_store() {
    let s = Store::open_in_memory().unwrap();
    let mut row = secret_row("prod/db", Some(text(r#"{"user":"admin","port":5432}"#)));
    row.push_version(version("v2", text(r#"{"user":"root"}"#), 20));
    s.with(|c| {
        put_secret(c, &row)?;
        put_secret(
            c,
            &secret_row("bin", Some(SecretValue::Binary(vec![1].into()))),
        )?;
        put_parameter(c, &param("/ci/token", "tok", ParameterType::SecureString))
    })
    .unwrap();
    let get = |r: &str| s.with(|c| secret_value(c, r)).unwrap();
    assert_eq!(get("prod/db:user").unwrap(), "root");
    assert_eq!(get("prod/db:user:AWSPREVIOUS").unwrap(), "admin");
    assert_eq!(get("prod/db:port::v1").unwrap(), "5432");
    assert_eq!(get("prod/db").unwrap(), r#"{"user":"root"}"#);
    let arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/db-a1B2c3";
    assert_eq!(get(&format!("{arn}:user")).unwrap(), "root");
    assert_eq!(
        get("prod/db:nope").unwrap_err(),
        ReferenceError::NoJsonKey("prod/db".into(), "nope".into())
    );
    assert!(matches!(
        get("prod/db::AWSPENDING"),
        Err(ReferenceError::NoVersion(..))
    ));
    assert!(matches!(get("bin"), Err(ReferenceError::Binary(_))));
    assert!(matches!(get("missing"), Err(ReferenceError::NoSecret(_))));

    // A secret scheduled for deletion is no build's secret.
    row.deleted_at = Some(30);
    row.purge_at = Some(u64::MAX >> 2);
    s.with(|c| put_secret(c, &row)).unwrap();
    assert!(matches!(get("prod/db"), Err(ReferenceError::NoSecret(_))));

    let param = |n: &str| {
        s.with(|c| parameter_value(c, n))
            .unwrap()
            .map(|v| v.expose_secret().to_string())
    };
    assert_eq!(param("/ci/token").unwrap(), "tok");
    assert_eq!(
        param("arn:aws:ssm:us-east-1:1:parameter/ci/token").unwrap(),
        "tok"
    );
    assert!(param("/ci/other").is_err());
}
