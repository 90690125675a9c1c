//! The command-line grammar (clap types only; behaviour is in `commands/`).

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Cutover: blue/green deployments of your services on your own machines.
#[derive(Debug, Parser)]
#[command(name = "cutover", version, about, propagate_version = true)]
pub(crate) struct Cli {
    #[command(flatten)]
    pub(crate) globals: Globals,
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// Options every client command takes.
#[derive(Debug, Clone, Args)]
pub(crate) struct Globals {
    /// Control-plane URL.
    #[arg(
        long,
        global = true,
        env = "CUTOVER_SERVER",
        default_value = "http://127.0.0.1:7070"
    )]
    pub(crate) server: String,
    /// API token (needed when the server has one).
    #[arg(long, global = true, env = "CUTOVER_TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// PEM file of a CA certificate to trust besides the system's WebPKI
    /// roots, for a server whose TLS certificate is self-signed or private.
    #[arg(long, global = true, env = "CUTOVER_CA_CERT", value_name = "PEM")]
    pub(crate) ca_cert: Option<PathBuf>,
    /// Output format.
    #[arg(long, short = 'o', global = true, value_enum, env = "CUTOVER_OUTPUT", default_value_t = Output::Table)]
    pub(crate) output: Output,
}

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Output {
    /// Aligned columns for people.
    Table,
    /// The API's JSON, for scripts.
    Json,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the control plane.
    Server(ServerArgs),
    /// Run the data plane (L7 load balancer), or talk to a running one.
    Proxy(cutover_proxy::cli::ProxyArgs),
    /// A guided tour: runs a sample service and deploys it under live traffic.
    Demo(DemoArgs),
    /// The built-in demo service (env: PORT, APP_VERSION, FAIL_RATE, LATENCY_MS, START_DELAY_MS, HEALTHY).
    SampleApp,
    /// Create or update services from a stack file.
    Apply(ApplyArgs),
    /// Check files offline (no server) with the server's own parsers.
    Validate(ValidateArgs),
    /// Register and inspect task definitions.
    #[command(name = "task-definitions", alias = "taskdefs")]
    TaskDefinitions {
        #[command(subcommand)]
        command: TaskDefCommand,
    },
    /// Inspect and change services.
    Services {
        #[command(subcommand)]
        command: ServiceCommand,
    },
    /// Inspect tasks.
    Tasks {
        #[command(subcommand)]
        command: TaskCommand,
    },
    /// Print the logs of a service (all its tasks) or of one task.
    Logs(LogsArgs),
    /// Deploy a new revision of a service (blue/green or rolling, as the service declares).
    Deploy(DeployArgs),
    /// Inspect and control deployments.
    Deployments {
        #[command(subcommand)]
        command: DeploymentCommand,
    },
    /// Inspect alarms and set their state for drills.
    Alarms {
        #[command(subcommand)]
        command: AlarmCommand,
    },
    /// Run and inspect pipelines (CodePipeline).
    Pipelines {
        #[command(subcommand)]
        command: PipelineCommand,
    },
    /// Inspect builds and their logs (CodeBuild).
    Builds {
        #[command(subcommand)]
        command: BuildCommand,
    },
    /// AWS access keys for the aws CLI and the SDKs (`AWS_ENDPOINT_URL`).
    #[command(name = "access-keys")]
    AccessKeys {
        #[command(subcommand)]
        command: AccessKeyCommand,
    },
    /// The OCI registry under /v2/ (garbage collection, lifecycle policies).
    Registry {
        #[command(subcommand)]
        command: RegistryCommand,
    },
    /// Run the host agent: register this host and run the deployments' commands.
    Agent(AgentArgs),
    /// Register, list, describe and deregister hosts (agents).
    Agents {
        #[command(subcommand)]
        command: AgentsCommand,
    },
    /// Scan an image of this registry and gate on its findings: exit 1 when
    /// findings at or above --fail-on exist, 2 when the image is missing or
    /// its scan failed.
    Scan(ScanArgs),
    /// The advisory database the scanner matches images against (OSV).
    Vulnerabilities {
        #[command(subcommand)]
        command: VulnerabilitiesCommand,
    },
    /// Internal: the per-task supervisor of the process runtime.
    #[command(name = "__shim", hide = true)]
    Shim(ShimArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ServerArgs {
    /// Where state, logs and images live.
    #[arg(long, env = "CUTOVER_DATA_DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// API address. Any non-loopback address requires a token.
    #[arg(long, env = "CUTOVER_LISTEN", default_value = "127.0.0.1:7070")]
    pub(crate) listen: SocketAddr,
    /// Read the API token from this file (mode 0600 or stricter) instead of
    /// `--token` or CUTOVER_TOKEN (it wins over both).
    #[arg(long, env = "CUTOVER_TOKEN_FILE", value_name = "FILE")]
    pub(crate) token_file: Option<PathBuf>,
    /// Keep setuid and setgid bits in process-runtime images (stripped by
    /// default: a setuid file in an image would run with its owner's rights).
    #[arg(long, env = "CUTOVER_KEEP_SETUID_IMAGES")]
    pub(crate) keep_setuid_images: bool,
    /// Container engine for `runtime: docker` (unix:///path or tcp://host:port);
    /// default: DOCKER_HOST, else the usual Docker and Podman sockets.
    #[arg(long)]
    pub(crate) docker_host: Option<String>,
    /// The AWS region builds and hooks are given (AWS_REGION); requests
    /// signed for any region are answered.
    #[arg(long, env = "CUTOVER_AWS_REGION", default_value = "us-east-1")]
    pub(crate) aws_region: String,
    /// The runtime of services whose stack names none: process, docker or
    /// swarm (swarm needs DOCKER_HOST to name a Swarm manager).
    #[arg(long = "runtime", env = "CUTOVER_RUNTIME", value_name = "RUNTIME", value_parser = ["process", "docker", "swarm"])]
    pub(crate) default_runtime: Option<String>,
    /// Admin address (host:port) of a `cutover proxy` on a cluster node, fed
    /// the same configuration as the local proxy; repeat for each node. A
    /// traffic step counts only once every proxy acknowledged it.
    #[arg(
        long = "node-proxy",
        env = "CUTOVER_NODE_PROXIES",
        value_delimiter = ',',
        value_name = "ADDR"
    )]
    pub(crate) node_proxies: Vec<SocketAddr>,
    /// File with the node proxies' admin token (mode 0600 or stricter).
    #[arg(long, env = "CUTOVER_NODE_PROXY_TOKEN_FILE", value_name = "FILE")]
    pub(crate) node_proxy_token_file: Option<PathBuf>,
    /// A registry (host or host:port) whose tags are resolved to digests
    /// over plain HTTP, as Podman's registries.conf `insecure = true`;
    /// loopback registries always are. Repeat it, or list them
    /// comma-separated in the environment.
    #[arg(
        long = "insecure-registry",
        env = "CUTOVER_INSECURE_REGISTRIES",
        value_name = "HOST[:PORT]",
        value_delimiter = ','
    )]
    pub(crate) insecure_registries: Vec<String>,
    /// PEM certificate chain: the whole listener (API, /v2/, console, AWS
    /// endpoint) speaks HTTPS with it. Needs --tls-key.
    #[arg(
        long,
        env = "CUTOVER_TLS_CERT",
        value_name = "PEM",
        requires = "tls_key"
    )]
    pub(crate) tls_cert: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) of --tls-cert.
    #[arg(
        long,
        env = "CUTOVER_TLS_KEY",
        value_name = "PEM",
        requires = "tls_cert"
    )]
    pub(crate) tls_key: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Keep state here instead of a temporary directory.
    #[arg(long)]
    pub(crate) data_dir: Option<PathBuf>,
    /// Control-plane port for the demo's own server (0 = any free port).
    #[arg(long, default_value_t = 0)]
    pub(crate) port: u16,
}

#[derive(Debug, Args)]
pub(crate) struct ApplyArgs {
    /// The stack file.
    #[arg(short = 'f', long = "file")]
    pub(crate) file: PathBuf,
    /// Print what would change; change nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ValidateArgs {
    /// The files to check.
    #[arg(required = true)]
    pub(crate) files: Vec<PathBuf>,
    /// What the files are (default: found from each file's name, else its content).
    #[arg(long, value_enum)]
    pub(crate) kind: Option<ValidateKind>,
    /// A stack file: a pipeline's repositories, build projects and services must be its own.
    #[arg(long)]
    pub(crate) stack: Option<PathBuf>,
}

/// The kinds of file `cutover validate` checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ValidateKind {
    /// An ECS task definition (`taskdef.json`).
    Taskdef,
    /// A CodeDeploy appspec for ECS.
    Appspec,
    /// A CodeBuild buildspec.
    Buildspec,
    /// CodePipeline's `imagedefinitions.json`.
    Imagedefinitions,
    /// CodePipeline's `imageDetail.json`.
    Imagedetail,
    /// A CodePipeline definition.
    Pipeline,
    /// A Cutover stack.
    Stack,
    /// A `cutover proxy` configuration (`lb.yaml`).
    Lb,
}

impl ValidateKind {
    /// The name `--kind` takes.
    pub(crate) fn name(self) -> &'static str {
        match self {
            ValidateKind::Taskdef => "taskdef",
            ValidateKind::Appspec => "appspec",
            ValidateKind::Buildspec => "buildspec",
            ValidateKind::Imagedefinitions => "imagedefinitions",
            ValidateKind::Imagedetail => "imagedetail",
            ValidateKind::Pipeline => "pipeline",
            ValidateKind::Stack => "stack",
            ValidateKind::Lb => "lb",
        }
    }
}

#[derive(Debug, Subcommand)]
pub(crate) enum TaskDefCommand {
    /// Register a revision from an ECS task definition JSON file.
    Register {
        /// The file (RegisterTaskDefinition input or describe-task-definition output).
        #[arg(long)]
        file: PathBuf,
    },
    /// List revisions.
    #[command(alias = "ls")]
    List {
        /// Only this family.
        #[arg(long)]
        family: Option<String>,
    },
    /// Show one revision: `family` (newest) or `family:revision`.
    Describe {
        /// `family[:revision]`.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ServiceCommand {
    /// List services.
    #[command(alias = "list")]
    Ls,
    /// Show a service, its tasks and recent events.
    Describe {
        /// Service name.
        name: String,
    },
    /// Change the desired count.
    Scale {
        /// Service name.
        name: String,
        /// New desired count.
        #[arg(long)]
        desired: u32,
    },
    /// Delete a service (its tasks are stopped).
    Delete {
        /// Service name.
        name: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum TaskCommand {
    /// List tasks.
    #[command(alias = "list")]
    Ls {
        /// Only this service's tasks.
        #[arg(long)]
        service: Option<String>,
        /// Include stopped tasks.
        #[arg(long)]
        all: bool,
    },
    /// Show one task.
    Describe {
        /// Task id.
        id: String,
    },
}

#[derive(Debug, Args)]
pub(crate) struct LogsArgs {
    /// A service name or a task id.
    pub(crate) target: String,
    /// Keep printing new lines.
    #[arg(long, short = 'f')]
    pub(crate) follow: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ShimArgs {
    /// The task's state directory.
    #[arg(long)]
    pub(crate) task_dir: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct DeployArgs {
    /// The service (a container deployment).
    #[arg(
        required_unless_present = "application",
        conflicts_with = "application"
    )]
    pub(crate) service: Option<String>,
    /// A host deployment: the application (CodeDeploy's Server platform).
    #[arg(
        long,
        requires_all = ["deployment_group", "revision"],
        conflicts_with_all = ["task_definition", "appspec", "images", "env"]
    )]
    pub(crate) application: Option<String>,
    /// A host deployment's deployment group.
    #[arg(long, requires = "application")]
    pub(crate) deployment_group: Option<String>,
    /// A host deployment's revision: a directory (packed as tar), a
    /// `.tar`, `.tar.gz`/`.tgz` or `.zip` bundle, or `git:[REPOSITORY@]REF`
    /// (a commit of a stack repository, read by the server).
    #[arg(long, requires = "application")]
    pub(crate) revision: Option<PathBuf>,
    /// Task definition: a JSON file, or `family[:revision]` already registered
    /// (default: the service's current revision, e.g. with --image/--env).
    #[arg(long)]
    pub(crate) task_definition: Option<String>,
    /// An ECS appspec.yaml (hooks, container/port check).
    #[arg(long)]
    pub(crate) appspec: Option<PathBuf>,
    /// Deployment configuration (predefined CodeDeployDefault.* or from the stack).
    #[arg(long)]
    pub(crate) deployment_config: Option<String>,
    /// Replace a container's image: CONTAINER=IMAGE (repeatable).
    #[arg(long = "image", value_name = "CONTAINER=IMAGE")]
    pub(crate) images: Vec<String>,
    /// Set an environment variable: CONTAINER:KEY=VALUE (repeatable).
    #[arg(long = "env", value_name = "CONTAINER:KEY=VALUE")]
    pub(crate) env: Vec<String>,
    /// Follow the deployment live; exit non-zero if it fails, stops or rolls back.
    /// (Host deployments: per-host progress, and the automatic rollback if any.)
    #[arg(long)]
    pub(crate) wait: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DeploymentCommand {
    /// List deployments, newest first.
    #[command(alias = "list")]
    Ls {
        /// Only this service's.
        #[arg(long)]
        service: Option<String>,
    },
    /// Show a deployment: lifecycle events, traffic, history.
    Get {
        /// Deployment id.
        id: String,
    },
    /// Follow a deployment live until it ends.
    Watch {
        /// Deployment id.
        id: String,
    },
    /// Stop a deployment.
    Stop {
        /// Deployment id.
        id: String,
        /// Roll production traffic back to the original tasks.
        #[arg(long, conflicts_with = "no_rollback")]
        rollback: bool,
        /// Leave traffic where it is.
        #[arg(long)]
        no_rollback: bool,
    },
    /// Reroute a deployment waiting for it, or end its termination wait.
    Continue {
        /// Deployment id.
        id: String,
    },
    /// Roll a service back (instant during the termination wait).
    Rollback {
        /// The service.
        service: String,
        /// Follow the rollback live.
        #[arg(long)]
        wait: bool,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum AccessKeyCommand {
    /// Create a key; prints `aws iam create-access-key`'s shape, the only
    /// time the secret is shown.
    Create {
        /// Who the key is for (IAM's UserName).
        #[arg(long)]
        name: Option<String>,
    },
    /// List keys (never their secrets).
    #[command(alias = "list")]
    Ls,
    /// Delete a key: requests it signs are refused from now on.
    #[command(alias = "rm")]
    Delete {
        /// The access key id.
        id: String,
    },
}

#[derive(Debug, Args)]
pub(crate) struct AgentArgs {
    /// The host's name (its on-premises instance name).
    #[arg(long)]
    pub(crate) name: String,
    /// Tags, `k=v,...` (matched by deployment groups' tag filters).
    #[arg(long, value_delimiter = ',')]
    pub(crate) tags: Vec<String>,
    /// The host's zone (zonal deployments).
    #[arg(long)]
    pub(crate) zone: Option<String>,
    /// Map every absolute destination under DIR (several agents on one
    /// machine); nothing is written outside it.
    #[arg(long, value_name = "DIR")]
    pub(crate) root: Option<PathBuf>,
    /// HOST:PORT the load balancer sends this host's traffic to.
    #[arg(long, value_name = "HOST:PORT")]
    pub(crate) target: Option<String>,
    /// A variable for every hook script (K=V; repeatable).
    #[arg(long, value_name = "K=V")]
    pub(crate) env: Vec<String>,
    /// Read the agent key (`cutover agents register NAME`) from this file;
    /// else CUTOVER_AGENT_KEY.
    #[arg(long, value_name = "FILE")]
    pub(crate) key_file: Option<PathBuf>,
    /// Where the agent keeps its state and bundles (default: ROOT/.cutover-agent
    /// with --root, else the data directory's agent-NAME).
    #[arg(long, value_name = "DIR")]
    pub(crate) state_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AgentsCommand {
    /// Issue the key of agent NAME (shown once; replaces an earlier key).
    Register {
        /// The host's name.
        name: String,
    },
    /// List hosts.
    #[command(alias = "list")]
    Ls,
    /// Show one host.
    Describe {
        /// The host's name.
        name: String,
    },
    /// Deregister a host (its key and queued commands go).
    #[command(alias = "rm")]
    Deregister {
        /// The host's name.
        name: String,
    },
}

#[derive(Debug, Args)]
pub(crate) struct ScanArgs {
    /// `HOST:PORT/REPO:TAG`, `REPO:TAG` or `REPO@sha256:...` of this registry.
    pub(crate) image: String,
    /// Exit 1 when findings at or above this severity exist (CRITICAL,
    /// HIGH, MEDIUM, LOW, INFORMATIONAL, UNDEFINED).
    #[arg(long = "fail-on", value_name = "SEVERITY")]
    pub(crate) fail_on: Option<String>,
    /// Scan again even if a scan against the current advisories exists.
    #[arg(long)]
    pub(crate) rescan: bool,
    /// Give up waiting for the scan after this many seconds.
    #[arg(long, default_value_t = 600)]
    pub(crate) timeout: u64,
}

#[derive(Debug, Subcommand)]
pub(crate) enum VulnerabilitiesCommand {
    /// Import OSV advisories: a directory of OSV JSON records (and OSV
    /// all.zip files in it), or one all.zip file. The offline path.
    Import {
        /// The directory or zip file.
        path: std::path::PathBuf,
    },
    /// Download OSV's all.zip of each ecosystem of the stored images (or
    /// those given) and import them.
    Update {
        /// Where OSV's per-ecosystem archives are (`<source>/<Ecosystem>/all.zip`).
        #[arg(
            long,
            default_value = "https://osv-vulnerabilities.storage.googleapis.com"
        )]
        source: String,
        /// Ecosystems to download (`Debian`, `npm`, ...); default: those of the stored images.
        #[arg(long = "ecosystem")]
        ecosystems: Vec<String>,
    },
    /// The database's version, size and update time.
    Status,
}

#[derive(Debug, Subcommand)]
pub(crate) enum RegistryCommand {
    /// Delete blobs no manifest references (after a one-hour grace
    /// period) and uploads unfinished for 24 hours; the server also does
    /// this every hour.
    Gc,
    /// Run every repository's lifecycle policy now: delete exactly the
    /// images a preview at this instant lists (the server also does this
    /// at start and every hour).
    Lifecycle,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AlarmCommand {
    /// List alarms and their states.
    #[command(alias = "list")]
    Ls,
    /// Show an alarm and its recent history.
    Describe {
        /// Alarm name.
        name: String,
    },
    /// Show an alarm's state changes.
    History {
        /// Alarm name.
        name: String,
    },
    /// Set an alarm's state for a drill (held until the next evaluation).
    SetState {
        /// Alarm name.
        name: String,
        /// OK, ALARM or INSUFFICIENT_DATA.
        #[arg(long)]
        state: cutover_deploy::alarm::AlarmState,
        /// Why.
        #[arg(long, default_value = "drill")]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum PipelineCommand {
    /// List pipelines and their latest execution.
    #[command(alias = "list")]
    Ls,
    /// Show a pipeline: stages, transitions, latest execution, events.
    Get {
        /// Pipeline name.
        name: String,
    },
    /// Start an execution.
    Start {
        /// Pipeline name.
        name: String,
        /// Override a pipeline variable (repeatable).
        #[arg(long = "variable", value_name = "NAME=VALUE")]
        variables: Vec<String>,
        /// Follow the execution, printing stage and action progress; exit
        /// non-zero unless it succeeds.
        #[arg(long)]
        wait: bool,
    },
    /// List a pipeline's executions, newest first.
    Executions {
        /// Pipeline name.
        name: String,
    },
    /// Approve a manual approval action.
    Approve(ApprovalArgs),
    /// Reject a manual approval action (the stage fails).
    Reject(ApprovalArgs),
    /// Retry the stage a failed or stopped execution ended in.
    Retry {
        /// Pipeline name.
        name: String,
        /// Execution id.
        #[arg(long)]
        execution: String,
        /// Stage name.
        #[arg(long)]
        stage: String,
        /// Run every action of the stage again, not only the failed ones.
        #[arg(long)]
        all_actions: bool,
    },
    /// Stop an execution.
    Stop {
        /// Pipeline name.
        name: String,
        /// Execution id.
        #[arg(long)]
        execution: String,
        /// Abandon running actions instead of letting them finish.
        #[arg(long)]
        abandon: bool,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Disable a stage's inbound transition.
    DisableTransition {
        /// Pipeline name.
        name: String,
        /// Stage name.
        #[arg(long)]
        stage: String,
        /// Why.
        #[arg(long, default_value = "disabled from the cli")]
        reason: String,
    },
    /// Enable a stage's inbound transition.
    EnableTransition {
        /// Pipeline name.
        name: String,
        /// Stage name.
        #[arg(long)]
        stage: String,
    },
}

#[derive(Debug, Subcommand)]
pub(crate) enum BuildCommand {
    /// List builds, newest first.
    #[command(alias = "list")]
    Ls {
        /// Only this build project.
        #[arg(long)]
        project: Option<String>,
    },
    /// Show a build: phases, exported variables, artifacts, reports.
    Get {
        /// Build id (`project:uuid`).
        id: String,
    },
    /// Print a build's log.
    Logs {
        /// Build id (`project:uuid`).
        id: String,
        /// Keep printing until the build ends.
        #[arg(long, short)]
        follow: bool,
    },
}

/// Which manual approval an answer is for.
#[derive(Debug, Args)]
pub(crate) struct ApprovalArgs {
    /// Pipeline name.
    pub(crate) name: String,
    /// Stage of the approval.
    #[arg(long)]
    pub(crate) stage: String,
    /// Approval action name.
    #[arg(long)]
    pub(crate) action: String,
    /// Comment.
    #[arg(long, default_value = "")]
    pub(crate) summary: String,
    /// Execution (default: the one waiting there).
    #[arg(long)]
    pub(crate) execution: Option<String>,
}
