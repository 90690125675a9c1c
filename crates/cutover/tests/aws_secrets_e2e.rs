//! End to end: Secrets Manager and SSM Parameter Store through AWS's own
//! clients (the aws CLI and boto3, installed by
//! `scripts/setup-aws-clients.sh`, found on PATH) against the real binary:
//! secrets created, read by name and ARN, given new versions
//! (AWSCURRENT/AWSPREVIOUS), listed, deleted with and without a recovery
//! window; parameters put, overwritten, read (a SecureString with and
//! without decryption), listed by path page by page and deleted; and
//! AWS's error codes for each refusal.

mod common;

use common::*;
use std::path::PathBuf;
use std::process::{Command, Output};

/// The directory of the `aws` on PATH (its `python3` has boto3).
fn aws_bin_dir() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .find(|d| d.join("aws").is_file() && d.join("python3").is_file())
        .unwrap_or_else(|| {
            panic!(
                "no aws CLI (with a python3 beside it) on PATH: run scripts/setup-aws-clients.sh \
                 and put the directory it prints first on PATH (scripts/test.sh does)"
            )
        })
}

struct Aws {
    bin: PathBuf,
    env: Vec<(&'static str, String)>,
}

impl Aws {
    fn new(server: &Server) -> Aws {
        let key = server.json(&["access-keys", "create", "--name", "e2e"]);
        let key = &key["AccessKey"];
        let env = vec![
            ("AWS_ENDPOINT_URL", server.url()),
            ("AWS_DEFAULT_REGION", "us-east-1".into()),
            (
                "AWS_ACCESS_KEY_ID",
                key["AccessKeyId"].as_str().unwrap().into(),
            ),
            (
                "AWS_SECRET_ACCESS_KEY",
                key["SecretAccessKey"].as_str().unwrap().into(),
            ),
            ("AWS_CONFIG_FILE", "/dev/null".into()),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".into()),
            ("AWS_MAX_ATTEMPTS", "1".into()),
        ];
        Aws {
            bin: aws_bin_dir(),
            env,
        }
    }

    fn run(&self, program: &str, args: &[&str]) -> Output {
        let mut cmd = Command::new(self.bin.join(program));
        cmd.args(args).env_remove("AWS_PROFILE");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    }

    /// `aws ARGS --output json`, which must succeed.
    fn ok(&self, args: &[&str]) -> serde_json::Value {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        let out = self.run("aws", &all);
        assert!(
            out.status.success(),
            "aws {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if out.stdout.iter().all(u8::is_ascii_whitespace) {
            return serde_json::Value::Null;
        }
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// `aws ARGS`, which must fail with AWS's error `code`.
    fn fails(&self, args: &[&str], code: &str) -> String {
        let out = self.run("aws", args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            !out.status.success() && stderr.contains(&format!("({code})")),
            "aws {args:?}: expected {code}, got {stderr}"
        );
        stderr
    }
}

#[test]
fn secrets_manager_through_the_aws_cli() {
    let server = Server::start();
    let aws = Aws::new(&server);
    let created = aws.ok(&[
        "secretsmanager",
        "create-secret",
        "--name",
        "prod/db",
        "--description",
        "the database",
        "--secret-string",
        r#"{"user":"admin","password":"first"}"#,
    ]);
    let arn = created["ARN"].as_str().unwrap().to_string();
    let suffix = arn.rsplit_once("secret:prod/db-").unwrap().1;
    assert!(
        arn.starts_with("arn:aws:secretsmanager:us-east-1:"),
        "{arn}"
    );
    assert!(
        suffix.len() == 6 && suffix.bytes().all(|b| b.is_ascii_alphanumeric()),
        "{arn}"
    );
    let v1 = created["VersionId"].as_str().unwrap().to_string();

    let v2 = aws.ok(&[
        "secretsmanager",
        "put-secret-value",
        "--secret-id",
        &arn,
        "--secret-string",
        "second",
    ]);
    assert_eq!(v2["VersionStages"], serde_json::json!(["AWSCURRENT"]));
    let previous = aws.ok(&[
        "secretsmanager",
        "get-secret-value",
        "--secret-id",
        "prod/db",
        "--version-stage",
        "AWSPREVIOUS",
    ]);
    assert_eq!(previous["VersionId"], v1.as_str());
    assert_eq!(previous["ARN"], arn.as_str());
    assert!(previous["SecretString"].as_str().unwrap().contains("first"));

    let listed = aws.ok(&["secretsmanager", "list-secrets"]);
    let entry = &listed["SecretList"][0];
    assert_eq!(entry["Name"], "prod/db");
    assert_eq!(entry["Description"], "the database");
    assert_eq!(
        entry["SecretVersionsToStages"],
        serde_json::json!({ v1.as_str(): ["AWSPREVIOUS"], v2["VersionId"].as_str().unwrap(): ["AWSCURRENT"] })
    );

    // A scheduled deletion: reads are refused.
    let deleted = aws.ok(&[
        "secretsmanager",
        "delete-secret",
        "--secret-id",
        "prod/db",
        "--recovery-window-in-days",
        "7",
    ]);
    let in_days = (deleted["DeletionDate"].as_f64().unwrap()
        - std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64())
        / 86400.0;
    assert!((6.9..=7.0).contains(&in_days), "{deleted}");
    aws.fails(
        &[
            "secretsmanager",
            "get-secret-value",
            "--secret-id",
            "prod/db",
        ],
        "InvalidRequestException",
    );
    assert!(
        !server.log().contains("second"),
        "a secret value reached the log"
    );
}

#[test]
fn parameter_store_through_the_aws_cli() {
    let server = Server::start();
    let aws = Aws::new(&server);
    let put = aws.ok(&[
        "ssm",
        "put-parameter",
        "--name",
        "/app/db/pass",
        "--value",
        "s3cret",
        "--type",
        "SecureString",
    ]);
    assert_eq!(put["Version"], 1);
    aws.ok(&[
        "ssm",
        "put-parameter",
        "--name",
        "/app/db/url",
        "--value",
        "pg://db",
        "--type",
        "String",
    ]);
    let shown = aws.ok(&[
        "ssm",
        "get-parameter",
        "--name",
        "/app/db/pass",
        "--with-decryption",
    ]);
    assert_eq!(shown["Parameter"]["Value"], "s3cret");
    let arn = shown["Parameter"]["ARN"].as_str().unwrap();
    assert!(
        arn.starts_with("arn:aws:ssm:us-east-1:") && arn.ends_with(":parameter/app/db/pass"),
        "{arn}"
    );

    // The CLI follows NextToken itself: one page per parameter here.
    let all = aws.ok(&[
        "ssm",
        "get-parameters-by-path",
        "--path",
        "/app",
        "--recursive",
        "--page-size",
        "1",
    ]);
    let values: Vec<_> = all["Parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["Name"].as_str().unwrap(), p["Value"].as_str().unwrap()))
        .collect();
    assert_eq!(values[1], ("/app/db/url", "pg://db"));
    assert_eq!(values[0].0, "/app/db/pass");
    assert_ne!(
        values[0].1, "s3cret",
        "a SecureString read without decryption"
    );

    aws.ok(&["ssm", "delete-parameter", "--name", "/app/db/url"]);
    aws.fails(
        &["ssm", "delete-parameter", "--name", "/app/db/url"],
        "ParameterNotFound",
    );
    assert!(
        !server.log().contains("s3cret"),
        "a parameter value reached the log"
    );
}

/// boto3: binary secrets, SecureString round trips, explicit pagination
/// and the error codes as an SDK sees them.
const BOTO3: &str = r#"
import base64, boto3, botocore
sm, ssm = boto3.client("secretsmanager"), boto3.client("ssm")
def code(f, **kw):
    try:
        f(**kw)
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"]
    raise SystemExit("no error from %s" % f)
arn = sm.create_secret(Name="prod/db", SecretString='{"user":"admin"}')["ARN"]
assert code(sm.create_secret, Name="prod/db", SecretString="x") == "ResourceExistsException"
v2 = sm.put_secret_value(SecretId="prod/db", SecretString="second")["VersionId"]
got = sm.get_secret_value(SecretId=arn)
assert (got["SecretString"], got["VersionId"], got["VersionStages"]) == ("second", v2, ["AWSCURRENT"]), got
got = sm.get_secret_value(SecretId=arn.rsplit("-", 1)[0], VersionId=v2)
assert got["Name"] == "prod/db", got
try:
    sm.get_secret_value(SecretId="prod/nope")
    raise SystemExit("found prod/nope")
except sm.exceptions.ResourceNotFoundException as e:
    assert e.response["Error"]["Message"] == "Secrets Manager can't find the specified secret.", e.response
sm.delete_secret(SecretId="prod/db")
assert code(sm.get_secret_value, SecretId="prod/db") == "InvalidRequestException"
assert code(sm.delete_secret, SecretId="prod/db") == "InvalidRequestException"
assert sm.list_secrets()["SecretList"] == []
assert [s["Name"] for s in sm.list_secrets(IncludePlannedDeletion=True)["SecretList"]] == ["prod/db"]
assert code(sm.delete_secret, SecretId="prod/db", RecoveryWindowInDays=3) == "InvalidParameterException"
sm.delete_secret(SecretId="prod/db", ForceDeleteWithoutRecovery=True)
assert code(sm.get_secret_value, SecretId="prod/db") == "ResourceNotFoundException"
blob = bytes(range(256))
sm.create_secret(Name="bin", SecretBinary=blob)
got = sm.get_secret_value(SecretId="bin")
assert got["SecretBinary"] == blob and "SecretString" not in got, got
assert code(sm.create_secret, Name="both", SecretString="a", SecretBinary=b"b") == "InvalidParameterException"
assert code(sm.get_secret_value, SecretId="bin", VersionStage="AWSPENDING") == "ResourceNotFoundException"
assert code(sm.delete_secret, SecretId="bin", ForceDeleteWithoutRecovery=True, RecoveryWindowInDays=7) == "InvalidParameterException"
for i in range(5):
    sm.create_secret(Name="s%d" % i, SecretString="v%d" % i)
names, token = [], None
while True:
    page = sm.list_secrets(MaxResults=2, **({"NextToken": token} if token else {}))
    names += [s["Name"] for s in page["SecretList"]]
    token = page.get("NextToken")
    if not token:
        break
assert names == ["bin", "s0", "s1", "s2", "s3", "s4"], names
assert code(sm.list_secrets, NextToken="bogus") == "InvalidNextTokenException"

ssm.put_parameter(Name="/app/url", Value="u1", Type="String")
assert code(ssm.put_parameter, Name="/app/url", Value="u2", Type="String") == "ParameterAlreadyExists"
assert ssm.put_parameter(Name="/app/url", Value="u2", Overwrite=True)["Version"] == 2
assert code(ssm.put_parameter, Name="app/x", Value="x", Type="String") == "ValidationException"
many = ssm.get_parameters(Names=["/app/url", "/app/none"])
assert [p["Value"] for p in many["Parameters"]] == ["u2"] and many["InvalidParameters"] == ["/app/none"], many
ssm.delete_parameter(Name="/app/url")
assert code(ssm.get_parameter, Name="/app/url") == "ParameterNotFound"
ssm.put_parameter(Name="token", Value="t0p", Type="SecureString", Description="ci token")
p = ssm.get_parameter(Name="/token", WithDecryption=True)["Parameter"]
assert (p["Name"], p["Value"], p["Version"]) == ("token", "t0p", 1), p
assert p["ARN"].endswith(":parameter/token"), p
assert ssm.get_parameter(Name="token")["Parameter"]["Value"] != "t0p"
ssm.put_parameter(Name="token", Value="t1p", Overwrite=True)
p = ssm.get_parameter(Name="token:2", WithDecryption=True)["Parameter"]
assert (p["Value"], p["Type"], p["Selector"]) == ("t1p", "SecureString", ":2"), p
assert code(ssm.get_parameter, Name="token:1") == "ParameterVersionNotFound"
assert code(ssm.put_parameter, Name="untyped", Value="x") == "ValidationException"
for i in range(3):
    ssm.put_parameter(Name="/list/p%d" % i, Value="a,b", Type="StringList")
page = ssm.get_parameters_by_path(Path="/list", MaxResults=2)
assert [p["Name"] for p in page["Parameters"]] == ["/list/p0", "/list/p1"], page
page = ssm.get_parameters_by_path(Path="/list", MaxResults=2, NextToken=page["NextToken"])
assert [p["Name"] for p in page["Parameters"]] == ["/list/p2"] and "NextToken" not in page, page
top = ssm.get_parameters_by_path(Path="/", WithDecryption=True)["Parameters"]
assert [(p["Name"], p["Value"]) for p in top] == [("token", "t1p")], top
typed = lambda t: ssm.get_parameters_by_path(Path="/list", ParameterFilters=[{"Key": "Type", "Values": [t]}])["Parameters"]
assert len(typed("StringList")) == 3 and typed("String") == []
assert code(ssm.get_parameters_by_path, Path="/list", ParameterFilters=[{"Key": "Label", "Values": ["x"]}]) == "InvalidFilterKey"
assert code(ssm.get_parameters_by_path, Path="list") == "ValidationException"
assert code(ssm.delete_parameter, Name="/nope") == "ParameterNotFound"
print("boto3 ok")
"#;

#[test]
fn secrets_and_parameters_through_boto3() {
    let server = Server::start();
    let aws = Aws::new(&server);
    let out = aws.run("python3", &["-c", BOTO3]);
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("boto3 ok"),
        "boto3 (installed beside aws by scripts/setup-aws-clients.sh) failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
