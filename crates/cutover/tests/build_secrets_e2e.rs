//! End to end: a build cannot read the server's environment (issue 14,
//! findings 8 and 14), through the real binary started with a
//! `CUTOVER_TOKEN`.
//!
//! - `env.parameter-store: {TOK: CUTOVER_TOKEN}` fails the build with a
//!   message naming the buildspec field, and the token is in no build log.
//! - A build running `env` on the host, and an invoke command, see no
//!   `CUTOVER_TOKEN`.
//! - After the builds, nothing under the build directories holds the token
//!   and the build directories are 0700.

mod common;

use common::*;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

const TOKEN: &str = "tok-5f1c2b9e-never-in-a-build";

struct TokenServer {
    child: Child,
    url: String,
    data: tempfile::TempDir,
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        stop_data_plane(self.data.path());
    }
}

impl TokenServer {
    fn start() -> TokenServer {
        let data = tempfile::tempdir().unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let log = std::fs::File::create(data.path().join("server-test.log")).unwrap();
        let child = Command::new(BIN)
            .args(["server", "--listen", &addr, "--data-dir"])
            .arg(data.path())
            .env("CUTOVER_TOKEN", TOKEN)
            .env("CUTOVER_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let server = TokenServer {
            child,
            url: format!("http://{addr}"),
            data,
        };
        wait_until(Duration::from_secs(20), || {
            std::net::TcpStream::connect(&addr).is_ok()
        })
        .unwrap_or_else(|| panic!("server did not listen:\n{}", server.log()));
        server
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.data.path().join("server-test.log")).unwrap_or_default()
    }

    fn cli(&self, args: &[&str], dir: &Path) -> Output {
        Command::new(BIN)
            .args(args)
            .env("CUTOVER_SERVER", &self.url)
            .env("CUTOVER_TOKEN", TOKEN)
            .current_dir(dir)
            .output()
            .unwrap()
    }

    fn json(&self, args: &[&str], dir: &Path) -> serde_json::Value {
        let mut all = args.to_vec();
        all.extend(["--output", "json"]);
        let out = self.cli(&all, dir);
        assert!(
            out.status.success(),
            "cutover {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let t = e.file_type().unwrap();
        if t.is_dir() {
            files_under(&e.path(), out);
        } else if t.is_file() {
            out.push(e.path());
        }
    }
}

/// A pipeline `name`: the repository's source, then the build project
/// `name` (its buildspec inline), then an invoke command.
fn pipeline(root: &Path, name: &str, invoke: &str) {
    std::fs::write(
        root.join(format!("{name}.json")),
        format!(
            r#"{{"pipeline": {{"name": "{name}", "stages": [
 {{"name": "Source", "actions": [{{"name": "Source",
   "actionTypeId": {{"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"}},
   "configuration": {{"RepositoryName": "app", "BranchName": "main"}}, "outputArtifacts": [{{"name": "Src"}}]}}]}},
 {{"name": "Build", "actions": [{{"name": "Build",
   "actionTypeId": {{"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"}},
   "configuration": {{"ProjectName": "{name}"}}, "inputArtifacts": [{{"name": "Src"}}]}}]}},
 {{"name": "Notify", "actions": [{{"name": "Run",
   "actionTypeId": {{"category": "Invoke", "owner": "AWS", "provider": "Lambda", "version": "1"}},
   "configuration": {{"FunctionName": "{invoke}"}}}}]}}]}}}}"#
        ),
    )
    .unwrap();
}

fn wait_execution(server: &TokenServer, name: &str, root: &Path) -> serde_json::Value {
    let mut last = serde_json::Value::Null;
    wait_until(Duration::from_secs(60), || {
        last = server.json(&["pipelines", "executions", name], root)["executions"][0].clone();
        matches!(last["status"].as_str(), Some("Succeeded" | "Failed"))
    })
    .unwrap_or_else(|| panic!("{name} did not finish: {last}\n{}", server.log()));
    last
}

#[test]
fn builds_and_invoke_commands_never_see_the_server_token() {
    let server = TokenServer::start();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let repo = root.join("repo");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    git(&repo, &["config", "user.email", "dev@example.com"]);
    git(&repo, &["config", "user.name", "Dev"]);
    std::fs::write(repo.join("README.md"), "hi\n").unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "first"]);
    let invoked = root.join("invoke-env");
    pipeline(root, "steal", "true");
    pipeline(root, "look", &format!("env > {}", invoked.display()));
    std::fs::write(
        root.join("steal.yml"),
        "version: 0.2\nenv:\n  parameter-store:\n    TOK: CUTOVER_TOKEN\nphases:\n  build:\n    commands:\n      - echo got $TOK\n",
    )
    .unwrap();
    std::fs::write(
        root.join("look.yml"),
        "version: 0.2\nphases:\n  build:\n    commands:\n      - env\n",
    )
    .unwrap();
    std::fs::write(
        root.join("stack.yaml"),
        format!(
            "services: {{}}\nrepositories:\n  app: {{url: {}, pollIntervalSeconds: 0}}\nbuildProjects:\n  steal: {{buildspec: steal.yml}}\n  look: {{buildspec: look.yml}}\npipelines:\n  steal: {{file: steal.json}}\n  look: {{file: look.json}}\n",
            repo.display()
        ),
    )
    .unwrap();
    let out = server.cli(&["apply", "-f", "stack.yaml"], root);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        server.log()
    );

    // Each pipeline runs once at its creation (as CodePipeline does).
    let e = wait_execution(&server, "steal", root);
    assert_eq!(e["status"], "Failed", "{e}");
    let text = e.to_string();
    assert!(
        text.contains("env.parameter-store.TOK"),
        "the failure names the buildspec field: {text}"
    );

    let e = wait_execution(&server, "look", root);
    assert_eq!(e["status"], "Succeeded", "{e}\n{}", server.log());
    let env = std::fs::read_to_string(&invoked).unwrap();
    assert!(env.contains("PATH="), "{env}");
    assert!(
        !env.contains("CUTOVER_TOKEN"),
        "the invoke command saw: {env}"
    );

    let builds = server.data.path().join("builds");
    assert_eq!(
        std::fs::metadata(&builds).unwrap().permissions().mode() & 0o777,
        0o700
    );
    let mut files = Vec::new();
    files_under(&builds, &mut files);
    let logs: Vec<&PathBuf> = files.iter().filter(|f| f.ends_with("build.log")).collect();
    assert_eq!(logs.len(), 2, "{files:?}");
    for f in &files {
        let text = String::from_utf8_lossy(&std::fs::read(f).unwrap()).into_owned();
        assert!(!text.contains(TOKEN), "{} holds the token", f.display());
        assert!(!text.contains("CUTOVER_TOKEN="), "{}: {text}", f.display());
    }
    for f in logs {
        assert_eq!(
            std::fs::metadata(f).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let dir = f.parent().unwrap();
        assert_eq!(
            std::fs::metadata(dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }
}
