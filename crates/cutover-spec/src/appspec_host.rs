//! CodeDeploy AppSpec files for EC2/on-premises hosts (`appspec.yml`),
//! `version: 0.0`, read through the located document layer.
//!
//! ```yaml
//! version: 0.0
//! os: linux
//! files:
//!   - source: /
//!     destination: /srv/app
//! file_exists_behavior: OVERWRITE
//! permissions:
//!   - object: /srv/app
//!     pattern: "*.sh"
//!     mode: 755
//!     type: [file]
//! hooks:
//!   ApplicationStop:
//!     - location: scripts/stop.sh
//!       timeout: 60
//!       runas: root
//! ```
//!
//! AWS's rules, as the AppSpec reference states them ("files", "permissions"
//! and "hooks" sections for EC2/on-premises):
//! - `os` is `linux` or `windows`; Cutover runs Linux hosts only, so
//!   `windows` is read and refused with a message saying so.
//! - `files[].source` is a path in the revision (`/` is all of it) and
//!   `destination` an absolute path on the host.
//! - `file_exists_behavior` is `DISALLOW` (the default), `OVERWRITE` or `RETAIN`.
//! - `permissions[]`: `object` (absolute) is required; `pattern` (default
//!   `**`) and `except` apply to the contents of a directory object; `mode`
//!   is octal (up to four digits); `type` lists `file` and/or `directory`.
//! - `hooks` maps an event to a list of scripts (`location` in the revision,
//!   `timeout` in seconds, at most 3600, `runas`). The events the agent or
//!   the load balancer performs (`DownloadBundle`, `Install`, `BlockTraffic`,
//!   `AllowTraffic`) and `Start`/`End` take no scripts.
//!
//! Keys are case-sensitive; an unknown key is a warning (AWS files are read
//! leniently). The ECS reader ([`crate::appspec`]) recognises this kind of
//! file and refuses it for ECS deployments.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::check::{Document, Sink, suggest};
use crate::diag::{Parsed, SpecError};
use crate::doc::{Format, Node, Path, quote};

/// The longest `timeout` of a hook script, in seconds (CodeDeploy's limit).
pub const MAX_SCRIPT_TIMEOUT_SECONDS: u32 = 3600;

/// An AppSpec for an EC2/on-premises (host) deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostAppSpec {
    /// Always `"0.0"`.
    pub version: String,
    /// Always [`Os::Linux`] once parsed.
    pub os: Os,
    /// What to copy from the revision, in file order.
    pub files: Vec<FileMapping>,
    /// What to do with a file that already exists at a destination and was
    /// not put there by the last successful deployment.
    pub file_exists_behavior: Option<FileExistsBehavior>,
    /// Permissions applied to installed files, in file order.
    pub permissions: Vec<Permission>,
    /// Scripts of each event, in lifecycle order of the events.
    pub hooks: Vec<EventScripts>,
}

/// The operating system an appspec targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Os {
    /// Linux hosts (the only ones Cutover deploys to).
    Linux,
    /// Windows Server hosts: read, then refused as unsupported.
    Windows,
}

/// One entry of `files`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMapping {
    /// A file or directory of the revision (`/` is the whole revision).
    pub source: String,
    /// An absolute path on the host.
    pub destination: String,
}

/// `file_exists_behavior`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum FileExistsBehavior {
    /// The deployment fails (CodeDeploy's default).
    Disallow,
    /// The revision's file replaces it.
    Overwrite,
    /// The existing file is kept.
    Retain,
}

/// One entry of `permissions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permission {
    /// An absolute path on the host (a file or directory the deployment installed).
    pub object: String,
    /// Files under a directory object this applies to (default `**`).
    #[serde(default = "default_pattern")]
    pub pattern: String,
    /// Patterns excluded from `pattern`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub except: Vec<String>,
    /// Owner name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    /// Group name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Octal mode as written (`644`, `"0755"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// ACL entries (`u:bob:rw`), kept as written.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acls: Vec<String>,
    /// SELinux context.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<SelinuxContext>,
    /// Which kinds of objects it applies to (default both).
    #[serde(default, rename = "type", skip_serializing_if = "Vec::is_empty")]
    pub kind: Vec<ObjectType>,
}

fn default_pattern() -> String {
    "**".to_owned()
}

/// A file mode, written as a YAML integer (`755`) or a string (`"0755"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Mode {
    /// Written as a number; its decimal digits are the octal digits.
    Number(u64),
    /// Written as a string.
    Text(String),
}

impl Mode {
    /// The permission bits, if every digit is octal and there are at most four.
    pub fn bits(&self) -> Option<u32> {
        let digits = match self {
            Mode::Number(n) => n.to_string(),
            Mode::Text(s) => s.clone(),
        };
        if digits.is_empty() || digits.len() > 4 {
            return None;
        }
        u32::from_str_radix(&digits, 8).ok()
    }
}

/// `context` of a permission (SELinux).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SelinuxContext {
    /// SELinux user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// SELinux type (required by AWS).
    #[serde(rename = "type")]
    pub kind: String,
    /// SELinux range.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub range: Option<String>,
}

/// `type` of a permission entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ObjectType {
    /// Regular files.
    File,
    /// Directories.
    Directory,
}

/// One script of a hook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Script {
    /// A path in the revision.
    pub location: String,
    /// Seconds the script may run, 1..=3600 (default 3600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u32>,
    /// The user the script runs as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runas: Option<String>,
}

impl Script {
    /// The timeout in seconds (CodeDeploy's default, one hour, if not given).
    pub fn timeout_seconds(&self) -> u32 {
        self.timeout.unwrap_or(MAX_SCRIPT_TIMEOUT_SECONDS)
    }
}

/// The scripts of one lifecycle event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventScripts {
    /// The event.
    pub event: HostEvent,
    /// Its scripts, run in order.
    pub scripts: Vec<Script>,
}

/// A lifecycle event of a host deployment, in in-place order with a load
/// balancer (see `cutover-deploy`'s `hosts::lifecycle` for the orders).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum HostEvent {
    /// Before the host is taken out of its load balancers.
    BeforeBlockTraffic,
    /// The host leaves its load balancers (no scripts).
    BlockTraffic,
    /// After it left.
    AfterBlockTraffic,
    /// Stops the application (scripts of the last successful revision).
    ApplicationStop,
    /// The agent downloads the revision (no scripts).
    DownloadBundle,
    /// Before files are copied.
    BeforeInstall,
    /// The agent copies files (no scripts).
    Install,
    /// After files are copied.
    AfterInstall,
    /// Starts the application.
    ApplicationStart,
    /// Checks the deployment worked.
    ValidateService,
    /// Before the host returns to its load balancers.
    BeforeAllowTraffic,
    /// The host returns to its load balancers (no scripts).
    AllowTraffic,
    /// After it returned.
    AfterAllowTraffic,
}

impl HostEvent {
    /// Every event, in in-place order with a load balancer.
    pub const ALL: [HostEvent; 13] = [
        HostEvent::BeforeBlockTraffic,
        HostEvent::BlockTraffic,
        HostEvent::AfterBlockTraffic,
        HostEvent::ApplicationStop,
        HostEvent::DownloadBundle,
        HostEvent::BeforeInstall,
        HostEvent::Install,
        HostEvent::AfterInstall,
        HostEvent::ApplicationStart,
        HostEvent::ValidateService,
        HostEvent::BeforeAllowTraffic,
        HostEvent::AllowTraffic,
        HostEvent::AfterAllowTraffic,
    ];

    /// The name as written in files.
    pub fn as_str(self) -> &'static str {
        match self {
            HostEvent::BeforeBlockTraffic => "BeforeBlockTraffic",
            HostEvent::BlockTraffic => "BlockTraffic",
            HostEvent::AfterBlockTraffic => "AfterBlockTraffic",
            HostEvent::ApplicationStop => "ApplicationStop",
            HostEvent::DownloadBundle => "DownloadBundle",
            HostEvent::BeforeInstall => "BeforeInstall",
            HostEvent::Install => "Install",
            HostEvent::AfterInstall => "AfterInstall",
            HostEvent::ApplicationStart => "ApplicationStart",
            HostEvent::ValidateService => "ValidateService",
            HostEvent::BeforeAllowTraffic => "BeforeAllowTraffic",
            HostEvent::AllowTraffic => "AllowTraffic",
            HostEvent::AfterAllowTraffic => "AfterAllowTraffic",
        }
    }

    /// Whether an appspec may give it scripts (the agent performs
    /// `DownloadBundle` and `Install`, the load balancer `BlockTraffic` and
    /// `AllowTraffic`).
    pub fn takes_scripts(self) -> bool {
        !matches!(
            self,
            HostEvent::DownloadBundle
                | HostEvent::Install
                | HostEvent::BlockTraffic
                | HostEvent::AllowTraffic
        )
    }

    fn from_name(name: &str) -> Option<HostEvent> {
        HostEvent::ALL.into_iter().find(|e| e.as_str() == name)
    }
}

impl fmt::Display for HostEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl HostAppSpec {
    /// The scripts of `event` (empty when the appspec gives none).
    pub fn scripts(&self, event: HostEvent) -> &[Script] {
        self.hooks
            .iter()
            .find(|h| h.event == event)
            .map_or(&[], |h| h.scripts.as_slice())
    }
}

/// The shape as written: `hooks` keyed by name, checked after reading.
#[derive(Deserialize)]
struct Raw {
    #[serde(deserialize_with = "crate::appspec::version_string")]
    version: String,
    os: Os,
    #[serde(default)]
    files: Vec<FileMapping>,
    #[serde(default)]
    file_exists_behavior: Option<FileExistsBehavior>,
    #[serde(default)]
    permissions: Vec<Permission>,
    /// Read by `read_hooks`; named here so it is not an unknown field.
    #[serde(default, rename = "hooks")]
    _hooks: Option<serde::de::IgnoredAny>,
}

/// Whether `root` is an EC2/on-premises appspec: no `Resources`, and one of
/// `os`, `files` or `hooks` at the top (the first found is returned).
pub(crate) fn host_appspec_key(root: &Node) -> Option<&'static str> {
    if root.entry("Resources").is_some() {
        return None;
    }
    ["os", "files", "hooks"]
        .into_iter()
        .find(|k| root.entry(k).is_some())
}

/// Whether `text` reads as an EC2/on-premises appspec rather than an ECS
/// one (`cutover validate` picks the reader with it). A document that does
/// not parse is neither.
pub fn is_host_appspec(file: &str, text: &str) -> bool {
    Document::parse(file, text, Format::for_file(file))
        .is_ok_and(|doc| host_appspec_key(doc.root()).is_some())
}

/// Reads an AppSpec for hosts. `*.json` is read as JSON, anything else as
/// YAML. Every mistake is a located error; `os: windows` is refused.
pub fn parse_host_appspec(file: &str, text: &str) -> Result<Parsed<HostAppSpec>, SpecError> {
    let doc = Document::parse(file, text, Format::for_file(file))?;
    let sink = doc.sink(false);
    let raw: Option<Raw> = sink.read(&Path::root());
    let hooks = read_hooks(&sink);
    let spec = raw.map(|raw| HostAppSpec {
        version: raw.version,
        os: raw.os,
        files: raw.files,
        file_exists_behavior: raw.file_exists_behavior,
        permissions: raw.permissions,
        hooks,
    });
    if let Some(spec) = &spec {
        validate(spec, &sink);
    }
    sink.finish(spec)
}

/// `hooks`: each key an event that takes scripts, each value a list of scripts.
fn read_hooks(s: &Sink<'_>) -> Vec<EventScripts> {
    let at = Path::root().key("hooks");
    let mut out: Vec<EventScripts> = Vec::new();
    if let Some(node) = s.root.get(&at)
        && !matches!(
            node.value,
            crate::doc::Value::Map(_) | crate::doc::Value::Null
        )
    {
        s.error(
            &at,
            "expected a mapping from lifecycle events to lists of scripts",
        );
        return out;
    }
    for name in s.keys(&at) {
        let path = at.key(&name);
        let Some(event) = HostEvent::from_name(&name) else {
            let names = HostEvent::ALL
                .iter()
                .filter(|e| e.takes_scripts())
                .map(|e| e.as_str());
            let msg = match suggest(&name, names) {
                Some(c) => format!(
                    "unknown lifecycle event {}, did you mean {c}?",
                    quote(&name)
                ),
                None if matches!(name.as_str(), "Start" | "End") => format!(
                    "{} is run by CodeDeploy itself and cannot have scripts",
                    quote(&name)
                ),
                None => format!(
                    "unknown lifecycle event {}: use one of ApplicationStop, BeforeInstall, AfterInstall, ApplicationStart, ValidateService, BeforeBlockTraffic, AfterBlockTraffic, BeforeAllowTraffic, AfterAllowTraffic",
                    quote(&name)
                ),
            };
            s.error_key(&path, msg);
            continue;
        };
        if !event.takes_scripts() {
            s.error_key(
                &path,
                format!(
                    "{event} is performed by the agent or the load balancer and cannot have scripts"
                ),
            );
            continue;
        }
        // A key without a value (`ApplicationStop:`) has no scripts.
        let scripts = match s.root.get(&path) {
            Some(n) if matches!(n.value, crate::doc::Value::Null) => Some(Vec::new()),
            _ => s.read::<Vec<Script>>(&path),
        };
        if let Some(scripts) = scripts {
            out.push(EventScripts { event, scripts });
        }
    }
    out.sort_by_key(|h| h.event);
    out
}

/// A relative path of the revision that climbs out of it.
fn escapes(path: &str) -> bool {
    path.split(['/', '\\']).any(|c| c == "..")
}

fn validate(spec: &HostAppSpec, s: &Sink<'_>) {
    let root = Path::root();
    if spec.version != "0.0" {
        s.error(
            &root.key("version"),
            format!("unsupported version {}, expected 0.0", quote(&spec.version)),
        );
    }
    if spec.os == Os::Windows {
        s.error(
            &root.key("os"),
            "Windows hosts are not supported: Cutover deploys to Linux hosts only (os: linux)",
        );
        // The paths below are Windows paths: checking them as Linux ones
        // would only add noise.
        return;
    }
    let files = root.key("files");
    for (i, f) in spec.files.iter().enumerate() {
        let at = files.index(i);
        if f.source.trim().is_empty() {
            s.error(
                &at.key("source"),
                "must not be empty (use / for the whole revision)",
            );
        } else if escapes(&f.source) {
            s.error(
                &at.key("source"),
                format!("{} leaves the revision (`..`)", quote(&f.source)),
            );
        }
        if !f.destination.starts_with('/') {
            s.error(
                &at.key("destination"),
                format!("must be an absolute path, found {}", quote(&f.destination)),
            );
        } else if escapes(&f.destination) {
            s.error(
                &at.key("destination"),
                format!("must not contain `..`, found {}", quote(&f.destination)),
            );
        }
    }
    let perms = root.key("permissions");
    for (i, p) in spec.permissions.iter().enumerate() {
        let at = perms.index(i);
        if !p.object.starts_with('/') {
            s.error(
                &at.key("object"),
                format!("must be an absolute path, found {}", quote(&p.object)),
            );
        }
        if let Some(mode) = &p.mode
            && mode.bits().is_none()
        {
            s.error(
                &at.key("mode"),
                "must be an octal mode of up to four digits 0-7, such as 644 or 0755",
            );
        }
        for (j, k) in p.kind.iter().enumerate() {
            if p.kind[..j].contains(k) {
                s.error(&at.key("type").index(j), "listed twice");
            }
        }
        if let Some(c) = &p.context
            && c.kind.trim().is_empty()
        {
            s.error(&at.key("context").key("type"), "must not be empty");
        }
    }
    let hooks = root.key("hooks");
    for h in &spec.hooks {
        let at = hooks.key(h.event.as_str());
        for (i, script) in h.scripts.iter().enumerate() {
            let sp = at.index(i);
            if script.location.trim().is_empty() {
                s.error(&sp.key("location"), "must not be empty");
            } else if escapes(&script.location) {
                s.error(
                    &sp.key("location"),
                    format!("{} leaves the revision (`..`)", quote(&script.location)),
                );
            }
            if let Some(t) = script.timeout {
                s.range(
                    &sp.key("timeout"),
                    t,
                    1,
                    MAX_SCRIPT_TIMEOUT_SECONDS,
                    " seconds",
                );
            }
        }
    }
}
