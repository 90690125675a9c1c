//! CodeDeploy for hosts through AWS's own CLI (see aws_e2e.rs for the
//! clients): the flow of a GitHub Actions workflow that deploys to
//! on-premises instances. The instance is registered with an IAM user's
//! ARN and tagged, the Server application and its tag-filtered group are
//! created, a real `cutover agent` connects with that user's access key,
//! and a GitHub revision (a commit of a repository the stack declares) is
//! deployed, waited for with `aws deploy wait deployment-successful` and
//! read back target by target with its lifecycle events. Then `cutover
//! deploy --revision git:REPO@REF` deploys the next commit, and hostile
//! calls (forged names, unknown groups, path-traversing repositories, S3)
//! are refused with CodeDeploy's error codes.

mod common;

use common::aws::{AwsClients, error_code};
use common::*;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const APPSPEC: &str = "version: 0.0
os: linux
files:
  - source: VERSION
    destination: /srv/shop
file_exists_behavior: OVERWRITE
hooks:
  ApplicationStart:
    - location: hooks/start.sh
      timeout: 10
";

const START: &str = "#!/bin/sh\necho \"started $(cat VERSION) as $LIFECYCLE_EVENT\"\n";

/// A `cutover agent`, killed on drop.
struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The repository `dir`: the appspec, an executable hook and VERSION v1.
fn repository(dir: &Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    let hook = dir.join("hooks/start.sh");
    std::fs::create_dir_all(hook.parent().unwrap()).unwrap();
    std::fs::write(&hook, START).unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    init_repo(dir, &[("appspec.yml", APPSPEC), ("VERSION", "v1\n")])
}

#[test]
fn a_github_actions_flow_deploys_a_commit_to_a_registered_instance() {
    let server = Server::start();
    let aws = AwsClients::new(&server);
    let (key, secret) = aws.key();
    let work = tempfile::tempdir().unwrap();
    // GitHub's `owner/name` matches the end of the declared URL.
    let repo = work.path().join("me/shop");
    let v1 = repository(&repo);
    std::fs::write(
        work.path().join("stack.yaml"),
        format!(
            "services: {{}}\nrepositories:\n  shop: {{url: {}, pollIntervalSeconds: 0}}\n",
            repo.display()
        ),
    )
    .unwrap();
    let out = server.cli_in(&["apply", "-f", "stack.yaml"], Some(work.path()));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let who = aws.json(&["sts", "get-caller-identity"]);
    let user_arn = who["Arn"].as_str().unwrap().to_string();
    let account = who["Account"].as_str().unwrap().to_string();
    aws.json(&[
        "deploy",
        "register-on-premises-instance",
        "--instance-name",
        "h1",
        "--iam-user-arn",
        &user_arn,
    ]);
    aws.json(&[
        "deploy",
        "add-tags-to-on-premises-instances",
        "--instance-names",
        "h1",
        "--tags",
        "Key=env,Value=prod",
        "Key=team,Value=web",
    ]);
    aws.json(&[
        "deploy",
        "remove-tags-from-on-premises-instances",
        "--instance-names",
        "h1",
        "--tags",
        "Key=team,Value=web",
    ]);
    let created = aws.json(&[
        "deploy",
        "create-application",
        "--application-name",
        "shop",
        "--compute-platform",
        "Server",
    ]);
    assert!(created["applicationId"].is_string(), "{created}");
    aws.json(&[
        "deploy",
        "create-deployment-group",
        "--application-name",
        "shop",
        "--deployment-group-name",
        "prod",
        "--service-role-arn",
        &format!("arn:aws:iam::{account}:role/CodeDeploy"),
        "--deployment-config-name",
        "CodeDeployDefault.AllAtOnce",
        "--on-premises-instance-tag-filters",
        "Key=env,Value=prod,Type=KEY_AND_VALUE",
        "--auto-rollback-configuration",
        "enabled=true,events=DEPLOYMENT_FAILURE",
    ]);
    let group = aws.json(&[
        "deploy",
        "get-deployment-group",
        "--application-name",
        "shop",
        "--deployment-group-name",
        "prod",
    ]);
    let info = &group["deploymentGroupInfo"];
    assert_eq!(info["computePlatform"], "Server", "{group}");
    assert_eq!(info["onPremisesInstanceTagFilters"][0]["Value"], "prod");
    assert_eq!(info["deploymentStyle"]["deploymentType"], "IN_PLACE");
    let apps = aws.json(&["deploy", "list-applications"]);
    assert_eq!(apps["applications"], serde_json::json!(["shop"]));

    // An agent with a wrong secret is refused; with the user's key it connects.
    let (status, _) = post(
        &server.addr.to_string(),
        "/v1/agents/register",
        &[("Authorization", &format!("Bearer {key}:wrong"))],
        r#"{"name": "h1", "version": "x"}"#,
    );
    assert_eq!(status, 401);
    let (status, _) = post(
        &server.addr.to_string(),
        "/v1/agents/register",
        &[],
        r#"{"name": "h1", "version": "x"}"#,
    );
    assert_eq!(status, 401, "an API-registered instance needs its key");
    let root = tempfile::tempdir().unwrap();
    let log = std::fs::File::create(work.path().join("agent.log")).unwrap();
    let _agent = Agent(
        Command::new(BIN)
            .args(["agent", "--server", &server.url(), "--name", "h1"])
            .args(["--tags", "zone=a"])
            .arg("--root")
            .arg(root.path())
            .env("CUTOVER_AGENT_KEY", format!("{key}:{secret}"))
            .env("CUTOVER_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap(),
    );
    let online = wait_until(Duration::from_secs(15), || {
        server.json(&["agents", "describe", "h1"])["online"] == true
    });
    assert!(
        online.is_some(),
        "agent never came online: {}",
        std::fs::read_to_string(work.path().join("agent.log")).unwrap_or_default()
    );
    let instance = aws.json(&[
        "deploy",
        "get-on-premises-instance",
        "--instance-name",
        "h1",
    ]);
    let tags = &instance["instanceInfo"]["tags"];
    assert_eq!(instance["instanceInfo"]["iamUserArn"], user_arn.as_str());
    assert!(
        tags.as_array().unwrap().len() == 2
            && tags.to_string().contains("prod")
            && !tags.to_string().contains("team"),
        "API tags and the agent's own: {instance}"
    );

    let created = aws.json(&[
        "deploy",
        "create-deployment",
        "--application-name",
        "shop",
        "--deployment-group-name",
        "prod",
        "--github-location",
        &format!("repository=me/shop,commitId={v1}"),
        "--description",
        "from GitHub Actions",
    ]);
    let id = created["deploymentId"].as_str().unwrap().to_string();
    let ended = wait_until(Duration::from_secs(20), || {
        let d = aws.json(&["deploy", "get-deployment", "--deployment-id", &id]);
        matches!(
            d["deploymentInfo"]["status"].as_str(),
            Some("Succeeded" | "Failed" | "Stopped")
        )
    });
    assert!(
        ended.is_some(),
        "deployment {id} never ended:\n{}",
        server.log()
    );
    // The real waiter: its first call already sees the end.
    let out = aws.run(&[
        "deploy",
        "wait",
        "deployment-successful",
        "--deployment-id",
        &id,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d = aws.json(&["deploy", "get-deployment", "--deployment-id", &id]);
    let info = &d["deploymentInfo"];
    assert_eq!(info["revision"]["revisionType"], "GitHub", "{d}");
    assert_eq!(info["revision"]["gitHubLocation"]["commitId"], v1.as_str());
    assert_eq!(info["deploymentOverview"]["Succeeded"], 1, "{d}");
    assert_eq!(info["computePlatform"], "Server");
    let listed = aws.json(&[
        "deploy",
        "list-deployments",
        "--application-name",
        "shop",
        "--deployment-group-name",
        "prod",
    ]);
    assert_eq!(listed["deployments"], serde_json::json!([id]));
    let targets = aws.json(&["deploy", "list-deployment-targets", "--deployment-id", &id]);
    assert_eq!(targets["targetIds"], serde_json::json!(["h1"]));
    let got = aws.json(&[
        "deploy",
        "batch-get-deployment-targets",
        "--deployment-id",
        &id,
        "--target-ids",
        "h1",
    ]);
    let target = &got["deploymentTargets"][0];
    assert_eq!(target["deploymentTargetType"], "InstanceTarget", "{got}");
    let instance_target = &target["instanceTarget"];
    assert_eq!(instance_target["status"], "Succeeded");
    let events = instance_target["lifecycleEvents"].as_array().unwrap();
    let names: Vec<&str> = events
        .iter()
        .map(|e| e["lifecycleEventName"].as_str().unwrap())
        .collect();
    let at = |n: &str| names.iter().position(|x| *x == n).unwrap_or(usize::MAX);
    assert!(
        at("DownloadBundle") < at("Install") && at("Install") < at("ApplicationStart"),
        "CodeDeploy's order: {got}"
    );
    let start = events
        .iter()
        .find(|e| e["lifecycleEventName"] == "ApplicationStart")
        .unwrap();
    assert_eq!(start["status"], "Succeeded");
    assert!(
        start["diagnostics"]["logTail"]
            .as_str()
            .unwrap()
            .contains("started v1 as ApplicationStart"),
        "{got}"
    );
    let installed = || {
        std::fs::read_to_string(root.path().join("srv/shop/VERSION"))
            .unwrap_or_default()
            .trim()
            .to_string()
    };
    assert_eq!(installed(), "v1");

    // The CLI's git: revision: the next commit of the same repository.
    commit(&repo, &[("VERSION", "v2\n")], "v2");
    let out = server.cli(&[
        "deploy",
        "--application",
        "shop",
        "--deployment-group",
        "prod",
        "--revision",
        "git:shop@main",
        "--wait",
    ]);
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(installed(), "v2");

    // Hostile or impossible calls are refused, naming the reason.
    let refused = |args: &[&str], code: &str| {
        let out = aws.run(args);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert_eq!(
            error_code(&out),
            code,
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let deploy = |group: &str, location: &str| {
        vec![
            "deploy".to_string(),
            "create-deployment".into(),
            "--application-name".into(),
            "shop".into(),
            "--deployment-group-name".into(),
            group.into(),
            "--github-location".into(),
            location.into(),
        ]
    };
    fn as_strs(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    let unknown_group = deploy("nope", &format!("repository=me/shop,commitId={v1}"));
    refused(
        &as_strs(&unknown_group),
        "DeploymentGroupDoesNotExistException",
    );
    for forged in ["../../etc/passwd", "me/../../shop"] {
        let args = deploy("prod", &format!("repository={forged},commitId={v1}"));
        refused(&as_strs(&args), "InvalidRevisionException");
    }
    let dash = deploy("prod", "repository=me/shop,commitId=--upload-pack=touch");
    refused(&as_strs(&dash), "InvalidRevisionException");
    refused(
        &[
            "deploy",
            "create-deployment",
            "--application-name",
            "shop",
            "--deployment-group-name",
            "prod",
            "--s3-location",
            "bucket=b,key=k,bundleType=zip",
        ],
        "InvalidRevisionException",
    );
    for name in ["../h2", "register"] {
        refused(
            &[
                "deploy",
                "register-on-premises-instance",
                "--instance-name",
                name,
                "--iam-user-arn",
                &user_arn,
            ],
            "InvalidInstanceNameException",
        );
    }
    refused(
        &[
            "deploy",
            "register-on-premises-instance",
            "--instance-name",
            "h2",
            "--iam-user-arn",
            &user_arn,
        ],
        "IamUserArnAlreadyRegisteredException",
    );
    refused(
        &[
            "deploy",
            "create-deployment-group",
            "--application-name",
            "shop",
            "--deployment-group-name",
            "lb",
            "--service-role-arn",
            "r",
            "--load-balancer-info",
            "targetGroupInfoList=[{name=tg}]",
        ],
        "InvalidLoadBalancerInfoException",
    );
    refused(
        &[
            "deploy",
            "add-tags-to-on-premises-instances",
            "--instance-names",
            "ghost",
            "--tags",
            "Key=env,Value=prod",
        ],
        "InstanceNotRegisteredException",
    );
    assert!(!server.log().contains("panicked"), "{}", server.log());
    // Nothing the refusals named was created.
    let instances = aws.json(&["deploy", "list-on-premises-instances"]);
    assert_eq!(instances["instanceNames"], serde_json::json!(["h1"]));
    let groups = aws.json(&[
        "deploy",
        "list-deployment-groups",
        "--application-name",
        "shop",
    ]);
    assert_eq!(groups["deploymentGroups"], serde_json::json!(["prod"]));
}
