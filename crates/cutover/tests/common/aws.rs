//! AWS's own clients against a test server: the aws CLI and boto3 from the
//! venv `scripts/setup-aws-clients.sh` installs (scripts/test.sh puts it
//! first on PATH), with a fresh access key of the server.

use super::Server;
use std::path::PathBuf;
use std::process::{Command, Output};

/// The aws CLI and its Python, signed with a key of one server.
pub struct AwsClients {
    bin_dir: PathBuf,
    env: Vec<(String, String)>,
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

impl AwsClients {
    /// Creates an access key on `server` and points the clients at it.
    pub fn new(server: &Server) -> AwsClients {
        let aws = on_path("aws").unwrap_or_else(|| {
            panic!(
                "the aws CLI is not on PATH: run the tests with scripts/test.sh, or put the bin directory printed by scripts/setup-aws-clients.sh first on PATH"
            )
        });
        let key = server.json(&["access-keys", "create", "--name", "tests"]);
        let key = &key["AccessKey"];
        let mut clients = AwsClients {
            bin_dir: aws.parent().unwrap().to_path_buf(),
            env: vec![
                ("AWS_ENDPOINT_URL".into(), server.url()),
                (
                    "AWS_ACCESS_KEY_ID".into(),
                    key["AccessKeyId"].as_str().unwrap().into(),
                ),
                (
                    "AWS_SECRET_ACCESS_KEY".into(),
                    key["SecretAccessKey"].as_str().unwrap().into(),
                ),
                ("AWS_DEFAULT_REGION".into(), "us-east-1".into()),
                ("AWS_CONFIG_FILE".into(), "/nonexistent".into()),
                ("AWS_SHARED_CREDENTIALS_FILE".into(), "/nonexistent".into()),
                ("AWS_PAGER".into(), String::new()),
            ],
        };
        if let Some(ca) = &server.ca_cert {
            clients
                .env
                .push(("AWS_CA_BUNDLE".into(), ca.display().to_string()));
        }
        clients
    }

    /// The directory holding `aws` (and the venv's Python).
    pub fn bin_dir(&self) -> &std::path::Path {
        &self.bin_dir
    }

    /// The access key id and secret the clients sign with.
    pub fn key(&self) -> (String, String) {
        let get = |k: &str| {
            self.env
                .iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap()
        };
        (get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY"))
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(self.bin_dir.join(program));
        c.envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    /// `aws ARGS...`.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command("aws").args(args).output().unwrap()
    }

    /// `aws ARGS... --output json`, asserting success.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self
            .command("aws")
            .args(args)
            .args(["--output", "json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "aws {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        if out.stdout.iter().all(u8::is_ascii_whitespace) {
            return serde_json::Value::Null;
        }
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Runs a Python script (with boto3) in the clients' venv; `args`
    /// become `sys.argv[1:]`.
    pub fn python(&self, script: &str, args: &[&str]) -> Output {
        let python = if self.bin_dir.join("python3").is_file() {
            "python3"
        } else {
            "python"
        };
        self.command(python)
            .arg("-c")
            .arg(script)
            .args(args)
            .output()
            .unwrap()
    }
}

/// The error code in an aws CLI failure (`An error occurred (CODE) ...`).
pub fn error_code(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr);
    err.split_once("An error occurred (")
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(code, _)| code.to_string())
        .unwrap_or_else(|| format!("(no AWS error in: {err})"))
}
