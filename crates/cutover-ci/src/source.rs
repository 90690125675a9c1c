//! Git sources through the `git` command: a bare mirror per repository
//! under `<data_dir>/git/<name>.git`, fetched before each use; branch heads,
//! commit metadata (the source action's output variables), changed files
//! between two commits (for trigger file-path filters), and the export of a
//! commit's tree (`git archive`) as the source artifact.
//!
//! Calls for one repository are serialised by a per-repository lock, so a
//! poll and a source action never fetch into the same mirror at once.
//!
//! Revisions and paths that come from outside (a webhook, an API call)
//! follow `--end-of-options` (git 2.24 or later), so git never reads one as
//! an option.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use tokio::process::Command;

/// Why a git operation failed.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// `git` could not be started.
    #[error("cannot run git: {0}")]
    Spawn(std::io::Error),
    /// `git` failed.
    #[error("git {args} failed for repository {repository:?}: {stderr}")]
    Failed {
        /// The repository name.
        repository: String,
        /// The arguments given.
        args: String,
        /// What git said.
        stderr: String,
    },
    /// Extracting the exported tree failed.
    #[error("cannot export commit {commit} of repository {repository:?}: {message}")]
    Export {
        /// The repository name.
        repository: String,
        /// The commit.
        commit: String,
        /// Why.
        message: String,
    },
}

/// A commit's metadata, as the source action publishes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CommitInfo {
    /// Full commit id.
    pub(crate) id: String,
    /// The full message, trimmed.
    pub(crate) message: String,
    /// ISO 8601 author date.
    pub(crate) author_date: String,
    /// Author name.
    pub(crate) author_name: String,
}

impl CommitInfo {
    /// The output variables of a source action that fetched this commit.
    pub(crate) fn variables(&self, branch: &str) -> BTreeMap<String, String> {
        BTreeMap::from([
            ("CommitId".to_string(), self.id.clone()),
            ("BranchName".to_string(), branch.to_string()),
            ("CommitMessage".to_string(), self.message.clone()),
            ("AuthorDate".to_string(), self.author_date.clone()),
            ("AuthorName".to_string(), self.author_name.clone()),
        ])
    }
}

/// The git mirrors of one data directory.
#[derive(Debug)]
pub(crate) struct Git {
    root: PathBuf,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Git {
    /// Mirrors under `<data_dir>/git`.
    pub(crate) fn new(data_dir: &Path) -> Git {
        Git {
            root: data_dir.join("git"),
            locks: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self, repository: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(repository.to_string())
            .or_default()
            .clone()
    }

    fn mirror(&self, repository: &str) -> PathBuf {
        self.root.join(format!("{}.git", dir_name(repository)))
    }

    /// Clones or fetches the mirror of `repository` from `url`.
    pub(crate) async fn fetch(&self, repository: &str, url: &str) -> Result<(), GitError> {
        let lock = self.lock(repository);
        let _held = lock.lock().await;
        let mirror = self.mirror(repository);
        if mirror.join("HEAD").exists() {
            // Keep the URL current: the stack may have changed it.
            run(repository, &mirror, &["remote", "set-url", "origin", url]).await?;
            run(
                repository,
                &mirror,
                &["fetch", "--prune", "--quiet", "origin"],
            )
            .await?;
        } else {
            std::fs::create_dir_all(&self.root).map_err(GitError::Spawn)?;
            let tmp = self
                .root
                .join(format!(".{repository}.{}", uuid::Uuid::new_v4().simple()));
            let target = tmp.to_string_lossy().into_owned();
            run(
                repository,
                &self.root,
                &["clone", "--mirror", "--quiet", "--", url, &target],
            )
            .await?;
            if let Err(e) = std::fs::rename(&tmp, &mirror) {
                let _ = std::fs::remove_dir_all(&tmp);
                // Another clone of the same repository (an action of the
                // control plane before a restart) got there first: its
                // mirror is as good, and is fetched.
                if !mirror.join("HEAD").exists() {
                    return Err(GitError::Spawn(e));
                }
                run(
                    repository,
                    &mirror,
                    &["fetch", "--prune", "--quiet", "origin"],
                )
                .await?;
            }
        }
        Ok(())
    }

    /// The commit a branch (or any revision) names in the mirror.
    pub(crate) async fn resolve(
        &self,
        repository: &str,
        revision: &str,
    ) -> Result<String, GitError> {
        let spec = format!("{revision}^{{commit}}");
        let out = run(
            repository,
            &self.mirror(repository),
            &[
                "rev-parse",
                "--verify",
                "--quiet",
                "--end-of-options",
                &spec,
            ],
        )
        .await?;
        Ok(out.trim().to_string())
    }

    /// Every tag of the mirror with the commit it names (annotated tags
    /// peeled), by tag name.
    pub(crate) async fn tags(&self, repository: &str) -> Result<Vec<(String, String)>, GitError> {
        let out = run(
            repository,
            &self.mirror(repository),
            &[
                "for-each-ref",
                "--format=%(refname:strip=2)%09%(objectname)%09%(*objectname)",
                "refs/tags",
            ],
        )
        .await?;
        Ok(parse_tags(&out))
    }

    /// The metadata of a commit.
    pub(crate) async fn commit_info(
        &self,
        repository: &str,
        commit: &str,
    ) -> Result<CommitInfo, GitError> {
        let out = run(
            repository,
            &self.mirror(repository),
            &[
                "log",
                "-1",
                "--format=%H%x00%aI%x00%an%x00%B",
                "--end-of-options",
                commit,
            ],
        )
        .await?;
        let mut parts = out.splitn(4, '\0');
        let mut next = || parts.next().unwrap_or_default().to_string();
        Ok(CommitInfo {
            id: next(),
            author_date: next(),
            author_name: next(),
            message: next().trim().to_string(),
        })
    }

    /// Paths changed between two commits (every file of `new` when `old` is
    /// unknown to the mirror).
    pub(crate) async fn changed_files(
        &self,
        repository: &str,
        old: &str,
        new: &str,
    ) -> Result<Vec<String>, GitError> {
        let mirror = self.mirror(repository);
        let diff = ["diff", "--name-only", "--end-of-options", old, new];
        let out = match run(repository, &mirror, &diff).await {
            Ok(out) => out,
            Err(_) => {
                let all = ["ls-tree", "-r", "--name-only", "--end-of-options", new];
                run(repository, &mirror, &all).await?
            }
        };
        Ok(out
            .lines()
            .map(str::to_string)
            .filter(|l| !l.is_empty())
            .collect())
    }

    /// Writes the tree of `commit` into the empty directory `dest`.
    pub(crate) async fn export(
        &self,
        repository: &str,
        commit: &str,
        dest: &Path,
    ) -> Result<(), GitError> {
        let mut child = std::process::Command::new("git")
            .arg("-C")
            .arg(self.mirror(repository))
            .args(["archive", "--format=tar", "--end-of-options", commit])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(GitError::Spawn)?;
        let stdout = child.stdout.take();
        let dest = dest.to_path_buf();
        let (repo, id) = (repository.to_string(), commit.to_string());
        let export_err = move |message: String| GitError::Export {
            repository: repo.clone(),
            commit: id.clone(),
            message,
        };
        tokio::task::spawn_blocking(move || {
            let unpacked = match stdout {
                Some(out) => tar::Archive::new(out)
                    .unpack(&dest)
                    .map_err(|e| e.to_string()),
                None => Err("no output from git archive".to_string()),
            };
            let output = child.wait_with_output().map_err(|e| e.to_string())?;
            if !output.status.success() {
                return Err(String::from_utf8_lossy(&output.stderr).trim().to_string());
            }
            unpacked
        })
        .await
        .map_err(|e| export_err(e.to_string()))?
        .map_err(export_err)
    }
}

/// A repository name as one directory name: `me/app` (a
/// `FullRepositoryId`) becomes `me%2Fapp`.
fn dir_name(repository: &str) -> String {
    repository
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' => (b as char).to_string(),
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// Reads `for-each-ref` lines `name TAB object TAB peeled-object`.
fn parse_tags(out: &str) -> Vec<(String, String)> {
    out.lines()
        .filter_map(|line| {
            let mut parts = line.split('\t');
            let (name, object) = (parts.next()?, parts.next()?);
            let commit = parts.next().filter(|p| !p.is_empty()).unwrap_or(object);
            (!name.is_empty() && !commit.is_empty()).then(|| (name.to_string(), commit.to_string()))
        })
        .collect()
}

async fn run(repository: &str, dir: &Path, args: &[&str]) -> Result<String, GitError> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(GitError::Spawn)?;
    if !out.status.success() {
        return Err(GitError::Failed {
            repository: repository.to_string(),
            args: args.join(" "),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Runs git in `dir` for a test, panicking on failure.
    pub(crate) fn git(dir: &Path, args: &[&str]) -> String {
        let out = std::process::Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A repository on `main` with one commit.
    pub(crate) fn repo_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        git(dir.path(), &["init", "-q", "-b", "main"]);
        git(dir.path(), &["config", "user.email", "dev@example.com"]);
        git(dir.path(), &["config", "user.name", "Dev Eloper"]);
        commit(dir.path(), files, "first");
        dir
    }

    /// Writes `files` and commits them.
    pub(crate) fn commit(dir: &Path, files: &[(&str, &str)], message: &str) -> String {
        for (p, text) in files {
            let path = dir.join(p);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        git(dir, &["add", "-A"]);
        git(dir, &["commit", "-q", "-m", message]);
        git(dir, &["rev-parse", "HEAD"])
    }

    #[test]
    fn repository_names_map_to_single_directories() {
        assert_eq!(dir_name("app"), "app");
        assert_eq!(dir_name("me/app"), "me%2Fapp");
        assert_eq!(dir_name("../x"), "%2E%2E%2Fx");
        assert_eq!(dir_name("a.b"), "a%2Eb");
    }

    #[tokio::test]
    async fn fetch_resolve_describe_diff_and_export() {
        let repo = repo_with(&[("a.txt", "1"), ("src/b.rs", "fn b() {}")]);
        let data = tempfile::tempdir().unwrap();
        let g = Git::new(data.path());
        let url = repo.path().to_string_lossy().into_owned();
        g.fetch("app", &url).await.unwrap();
        let first = g.resolve("app", "main").await.unwrap();
        let second = commit(
            repo.path(),
            &[("src/b.rs", "fn b() { 2 }")],
            "change b\n\nbody",
        );
        assert_eq!(
            g.resolve("app", "main").await.unwrap(),
            first,
            "not fetched yet"
        );
        g.fetch("app", &url).await.unwrap();
        assert_eq!(g.resolve("app", "main").await.unwrap(), second);
        let info = g.commit_info("app", &second).await.unwrap();
        assert_eq!(info.id, second);
        assert_eq!(info.message, "change b\n\nbody");
        assert_eq!(info.author_name, "Dev Eloper");
        assert!(info.author_date.contains('T'));
        assert_eq!(
            g.changed_files("app", &first, &second).await.unwrap(),
            ["src/b.rs"]
        );
        let out = tempfile::tempdir().unwrap();
        g.export("app", &first, out.path()).await.unwrap();
        assert_eq!(
            std::fs::read_to_string(out.path().join("src/b.rs")).unwrap(),
            "fn b() {}"
        );
        assert!(!out.path().join(".git").exists());
        assert!(matches!(
            g.resolve("app", "nope").await,
            Err(GitError::Failed { .. })
        ));
    }

    #[tokio::test]
    async fn tags_list_the_commit_they_name_and_follow_a_move() {
        let repo = repo_with(&[("a.txt", "1")]);
        let first = git(repo.path(), &["rev-parse", "HEAD"]);
        git(repo.path(), &["tag", "v1"]);
        git(repo.path(), &["tag", "-a", "v2", "-m", "annotated"]);
        let data = tempfile::tempdir().unwrap();
        let g = Git::new(data.path());
        let url = repo.path().to_string_lossy().into_owned();
        g.fetch("app", &url).await.unwrap();
        assert_eq!(
            g.tags("app").await.unwrap(),
            [("v1".to_string(), first.clone()), ("v2".to_string(), first)]
        );
        let second = commit(repo.path(), &[("a.txt", "2")], "two");
        git(repo.path(), &["tag", "-f", "v1"]);
        g.fetch("app", &url).await.unwrap();
        assert_eq!(g.tags("app").await.unwrap()[0], ("v1".to_string(), second));
    }

    #[tokio::test]
    async fn revisions_are_never_read_as_options() {
        let repo = repo_with(&[("a.txt", "1")]);
        let data = tempfile::tempdir().unwrap();
        let g = Git::new(data.path());
        g.fetch("app", &repo.path().to_string_lossy())
            .await
            .unwrap();
        let head = g.resolve("app", "main").await.unwrap();
        let victim = data.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let option = format!("--output={}", victim.display());
        // An unknown `old` lists every file of `new`, as documented.
        assert_eq!(
            g.changed_files("app", &option, &head).await.unwrap(),
            ["a.txt"]
        );
        assert!(g.resolve("app", &option).await.is_err());
        assert!(g.commit_info("app", &option).await.is_err());
        let out = tempfile::tempdir().unwrap();
        assert!(g.export("app", &option, out.path()).await.is_err());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
    }
}
