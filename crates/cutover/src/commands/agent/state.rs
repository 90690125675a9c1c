//! The agent's state directory: small JSON files written atomically
//! (temporary file, fsync, rename), so a crash leaves the old or the new
//! content, never half of it.
//!
//! - `in-flight.json`: the command being run and when it started;
//! - `result.json`: a result not yet acknowledged by the server;
//! - `groups/<group>.json`: per deployment group, the files the last
//!   install wrote and the last successful revision;
//! - `bundles/<hex>.<format>` and `revisions/<hex>/`: downloaded bundles
//!   and their unpacked trees.

use anyhow::Context;
use cutover_api::agents::{AgentCommand, BundleFormat, BundleRef, CommandResult};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};

pub(crate) struct State {
    dir: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct InFlight {
    command: AgentCommand,
    started_at_ms: u64,
    /// The process group of the script running, and the boot it runs in
    /// (a group id of another boot names nothing of ours).
    #[serde(default)]
    script_group: Option<(u32, String)>,
}

#[derive(Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Group {
    #[serde(default)]
    installed: Vec<PathBuf>,
    #[serde(default)]
    last_successful: Option<BundleRef>,
}

impl State {
    pub(crate) fn open(dir: &Path) -> anyhow::Result<State> {
        for sub in ["groups", "bundles", "revisions"] {
            std::fs::create_dir_all(dir.join(sub))
                .with_context(|| format!("cannot create the state directory {}", dir.display()))?;
        }
        Ok(State {
            dir: dir.to_path_buf(),
        })
    }

    fn read<T: DeserializeOwned>(&self, name: &str) -> anyhow::Result<Option<T>> {
        match std::fs::read(self.dir.join(name)) {
            Ok(b) => Ok(Some(
                serde_json::from_slice(&b).with_context(|| format!("corrupt state file {name}"))?,
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn write<T: Serialize>(&self, name: &str, value: &T) -> anyhow::Result<()> {
        let path = self.dir.join(name);
        let mut tmp = tempfile::NamedTempFile::new_in(path.parent().unwrap_or(&self.dir))?;
        tmp.write_all(&serde_json::to_vec(value)?)?;
        tmp.as_file().sync_all()?;
        tmp.persist(&path).map_err(|e| e.error)?;
        Ok(())
    }

    fn remove(&self, name: &str) -> anyhow::Result<()> {
        match std::fs::remove_file(self.dir.join(name)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }

    pub(crate) fn in_flight(&self) -> anyhow::Result<Option<(AgentCommand, u64)>> {
        Ok(self
            .read::<InFlight>("in-flight.json")?
            .map(|f| (f.command, f.started_at_ms)))
    }

    pub(crate) fn set_in_flight(
        &self,
        command: &AgentCommand,
        started_at_ms: u64,
    ) -> anyhow::Result<()> {
        self.write(
            "in-flight.json",
            &InFlight {
                command: command.clone(),
                started_at_ms,
                script_group: None,
            },
        )
    }

    /// Records the process group of the script now running.
    pub(crate) fn set_script_group(&self, group: u32) -> anyhow::Result<()> {
        let Some(mut f) = self.read::<InFlight>("in-flight.json")? else {
            return Ok(());
        };
        f.script_group = Some((group, boot_id()));
        self.write("in-flight.json", &f)
    }

    /// The process group of a script of the command in flight, if it was
    /// started in this boot.
    pub(crate) fn script_group(&self) -> anyhow::Result<Option<u32>> {
        Ok(self
            .read::<InFlight>("in-flight.json")?
            .and_then(|f| f.script_group)
            .and_then(|(g, boot)| (boot == boot_id()).then_some(g)))
    }

    pub(crate) fn clear_in_flight(&self) -> anyhow::Result<()> {
        self.remove("in-flight.json")
    }

    pub(crate) fn pending_result(&self) -> anyhow::Result<Option<CommandResult>> {
        self.read("result.json")
    }

    pub(crate) fn set_result(&self, r: &CommandResult) -> anyhow::Result<()> {
        self.write("result.json", r)
    }

    pub(crate) fn clear_result(&self) -> anyhow::Result<()> {
        self.remove("result.json")
    }

    fn group_file(group: &str) -> String {
        // Group names are the stack's keys; keep the file name plain.
        let safe: String = group
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("groups/{safe}.json")
    }

    pub(crate) fn installed(&self, group: &str) -> anyhow::Result<Vec<PathBuf>> {
        Ok(self
            .read::<Group>(&Self::group_file(group))?
            .unwrap_or_default()
            .installed)
    }

    pub(crate) fn set_installed(&self, group: &str, files: &[PathBuf]) -> anyhow::Result<()> {
        let name = Self::group_file(group);
        let mut g = self.read::<Group>(&name)?.unwrap_or_default();
        g.installed = files.to_vec();
        self.write(&name, &g)
    }

    pub(crate) fn set_last_successful(&self, group: &str, b: &BundleRef) -> anyhow::Result<()> {
        let name = Self::group_file(group);
        let mut g = self.read::<Group>(&name)?.unwrap_or_default();
        g.last_successful = Some(b.clone());
        self.write(&name, &g)
    }

    fn hex(b: &BundleRef) -> anyhow::Result<&str> {
        let hex = b.digest.strip_prefix("sha256:").unwrap_or("");
        anyhow::ensure!(
            hex.len() == 64 && hex.bytes().all(|c| c.is_ascii_hexdigit()),
            "bad bundle digest {:?}",
            b.digest
        );
        Ok(hex)
    }

    pub(crate) fn bundle_file(&self, b: &BundleRef) -> anyhow::Result<PathBuf> {
        let ext = match b.format {
            BundleFormat::Tar => "tar",
            BundleFormat::Tgz => "tgz",
            BundleFormat::Zip => "zip",
        };
        Ok(self
            .dir
            .join("bundles")
            .join(format!("{}.{ext}", Self::hex(b)?)))
    }

    pub(crate) fn revision_dir(&self, b: &BundleRef) -> anyhow::Result<PathBuf> {
        Ok(self.dir.join("revisions").join(Self::hex(b)?))
    }
}

/// This boot's id (Linux), empty elsewhere.
fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}
