//! Numbered schema migrations, tracked in `PRAGMA user_version`.
//!
//! Migrations are append-only: never edit one that has shipped; add the next.
//! Each runs in its own transaction together with the version bump.

use crate::StoreError;
use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    // 1: task definitions, services, tasks, events, applied stacks.
    r#"
    CREATE TABLE task_definitions (
        family        TEXT NOT NULL,
        revision      INTEGER NOT NULL,
        body          TEXT NOT NULL,
        digest        TEXT NOT NULL,
        registered_at INTEGER NOT NULL,
        PRIMARY KEY (family, revision)
    );
    CREATE TABLE services (
        name            TEXT PRIMARY KEY,
        task_definition TEXT NOT NULL,
        desired_count   INTEGER NOT NULL,
        runtime         TEXT NOT NULL,
        spec            TEXT NOT NULL,
        status          TEXT NOT NULL,
        generation      INTEGER NOT NULL,
        created_at      INTEGER NOT NULL,
        updated_at      INTEGER NOT NULL
    );
    CREATE TABLE tasks (
        id              TEXT PRIMARY KEY,
        service         TEXT NOT NULL,
        task_set        TEXT NOT NULL,
        task_definition TEXT NOT NULL,
        runtime         TEXT NOT NULL,
        last_status     TEXT NOT NULL,
        desired_status  TEXT NOT NULL,
        health_status   TEXT NOT NULL,
        endpoint        TEXT,
        handle          TEXT,
        stop_code       TEXT,
        stopped_reason  TEXT,
        exit_code       INTEGER,
        created_at      INTEGER NOT NULL,
        started_at      INTEGER,
        stopping_at     INTEGER,
        stopped_at      INTEGER
    );
    CREATE INDEX tasks_by_service ON tasks (service, last_status);
    CREATE TABLE events (
        id      INTEGER PRIMARY KEY AUTOINCREMENT,
        at      INTEGER NOT NULL,
        subject TEXT NOT NULL,
        message TEXT NOT NULL
    );
    CREATE INDEX events_by_subject ON events (subject, id);
    CREATE TABLE stacks (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        applied_at INTEGER NOT NULL,
        file       TEXT NOT NULL,
        body       TEXT NOT NULL
    );
    "#,
    // 2: deployments, alarms, and which target group is live per service.
    r#"
    ALTER TABLE services ADD COLUMN lb_group TEXT NOT NULL DEFAULT 'a';
    CREATE TABLE deployments (
        id                   TEXT PRIMARY KEY,
        service              TEXT NOT NULL,
        kind                 TEXT NOT NULL,
        status               TEXT NOT NULL,
        from_task_definition TEXT NOT NULL,
        to_task_definition   TEXT NOT NULL,
        config               TEXT NOT NULL,
        engine               TEXT NOT NULL,
        green_provisioned    INTEGER NOT NULL,
        prod_green_percent   INTEGER NOT NULL,
        test_on_green        INTEGER NOT NULL,
        started_by           TEXT NOT NULL,
        rollback_of          TEXT,
        rolled_back_by       TEXT,
        outcome              TEXT,
        created_at           INTEGER NOT NULL,
        updated_at           INTEGER NOT NULL,
        finished_at          INTEGER
    );
    CREATE INDEX deployments_by_service ON deployments (service, created_at);
    CREATE TABLE alarms (
        name       TEXT PRIMARY KEY,
        spec       TEXT NOT NULL,
        state      TEXT NOT NULL,
        reason     TEXT NOT NULL,
        updated_at INTEGER NOT NULL
    );
    "#,
    // 3: repositories, build projects, pipelines with their engine state,
    // the last seen head per repository branch, and builds.
    r#"
    CREATE TABLE repositories (
        name       TEXT PRIMARY KEY,
        spec       TEXT NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE build_projects (
        name       TEXT PRIMARY KEY,
        spec       TEXT NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE pipelines (
        name       TEXT PRIMARY KEY,
        definition TEXT NOT NULL,
        state      TEXT,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE repository_heads (
        repository TEXT NOT NULL,
        branch     TEXT NOT NULL,
        commit_id  TEXT NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (repository, branch)
    );
    CREATE TABLE builds (
        id          TEXT PRIMARY KEY,
        project     TEXT NOT NULL,
        number      INTEGER NOT NULL,
        status      TEXT NOT NULL,
        initiator   TEXT NOT NULL,
        action_key  TEXT,
        source      TEXT,
        work_dir    TEXT NOT NULL,
        detail      TEXT NOT NULL,
        message     TEXT,
        started_at  INTEGER NOT NULL,
        finished_at INTEGER
    );
    CREATE INDEX builds_by_project ON builds (project, number);
    CREATE INDEX builds_by_action ON builds (action_key);
    "#,
    // 4: webhook deliveries already acted on (replays are acknowledged and
    // ignored); pruned after a week.
    r#"
    CREATE TABLE webhook_deliveries (
        repository  TEXT NOT NULL,
        delivery    TEXT NOT NULL,
        received_at INTEGER NOT NULL,
        PRIMARY KEY (repository, delivery)
    );
    CREATE INDEX webhook_deliveries_by_age ON webhook_deliveries (received_at);
    "#,
    // 5: the installation's settings (its AWS account id) and the access
    // keys the AWS protocols are signed with; a key with an owner (a build,
    // a hook) is short-lived and removed with it.
    r#"
    CREATE TABLE settings (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    CREATE TABLE access_keys (
        id         TEXT PRIMARY KEY,
        secret     TEXT NOT NULL,
        name       TEXT NOT NULL,
        status     TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER,
        owner      TEXT
    );
    CREATE INDEX access_keys_by_owner ON access_keys (owner);
    "#,
    // 6: task definition revisions deregistered through ECS's API (they stay
    // readable, as on AWS, but run no new service).
    r#"
    CREATE TABLE task_definition_deregistrations (
        family          TEXT NOT NULL,
        revision        INTEGER NOT NULL,
        deregistered_at INTEGER NOT NULL,
        PRIMARY KEY (family, revision)
    );
    "#,
    // 7: deployment configurations created through CodeDeploy's API (a
    // stack's own `deploymentConfigs` stay in the applied stack).
    r#"
    CREATE TABLE deployment_configs (
        name       TEXT PRIMARY KEY,
        id         TEXT NOT NULL,
        body       TEXT NOT NULL,
        created_at INTEGER NOT NULL
    );
    "#,
    // 8: the one secret store of Secrets Manager secrets (`kind` 'secret')
    // and SSM parameters (`kind` 'parameter'), read by the AWS protocols and
    // by builds. `value` is TEXT for a string and BLOB for a binary secret;
    // NULL for a secret created without a value.
    r#"
    CREATE TABLE secrets (
        kind                TEXT NOT NULL,
        name                TEXT NOT NULL,
        description         TEXT,
        created_at          INTEGER NOT NULL,
        changed_at          INTEGER NOT NULL,
        value               BLOB,
        version_id          TEXT,
        version_at          INTEGER,
        previous_value      BLOB,
        previous_version_id TEXT,
        previous_at         INTEGER,
        arn_suffix          TEXT,
        deleted_at          INTEGER,
        purge_at            INTEGER,
        parameter_type      TEXT,
        parameter_version   INTEGER,
        PRIMARY KEY (kind, name)
    );
    "#,
    // 9: the OCI registry's metadata (`registry`): repositories, manifests
    // (their bytes are blobs under `<data>/registry/blobs`), what each
    // manifest references, tags, and the blobs linked into each repository.
    r#"
    CREATE TABLE registry_repositories (
        name             TEXT PRIMARY KEY,
        created_at       INTEGER NOT NULL,
        tag_mutability   TEXT NOT NULL,
        scan_on_push     INTEGER NOT NULL,
        anonymous_pull   INTEGER NOT NULL,
        lifecycle_policy TEXT
    );
    CREATE TABLE registry_manifests (
        repository    TEXT NOT NULL REFERENCES registry_repositories(name) ON DELETE CASCADE,
        digest        TEXT NOT NULL,
        media_type    TEXT NOT NULL,
        size          INTEGER NOT NULL,
        image_size    INTEGER NOT NULL,
        pushed_at     INTEGER NOT NULL,
        artifact_type TEXT,
        subject       TEXT,
        annotations   TEXT,
        PRIMARY KEY (repository, digest)
    );
    CREATE INDEX registry_manifests_subject ON registry_manifests (repository, subject);
    CREATE TABLE registry_manifest_refs (
        repository TEXT NOT NULL,
        digest     TEXT NOT NULL,
        child      TEXT NOT NULL,
        kind       TEXT NOT NULL,
        PRIMARY KEY (repository, digest, child),
        FOREIGN KEY (repository, digest) REFERENCES registry_manifests(repository, digest) ON DELETE CASCADE
    );
    CREATE INDEX registry_manifest_refs_child ON registry_manifest_refs (child);
    CREATE TABLE registry_tags (
        repository TEXT NOT NULL,
        tag        TEXT NOT NULL,
        digest     TEXT NOT NULL,
        updated_at INTEGER NOT NULL,
        PRIMARY KEY (repository, tag),
        FOREIGN KEY (repository, digest) REFERENCES registry_manifests(repository, digest) ON DELETE CASCADE
    );
    CREATE TABLE registry_blobs (
        repository TEXT NOT NULL REFERENCES registry_repositories(name) ON DELETE CASCADE,
        digest     TEXT NOT NULL,
        size       INTEGER NOT NULL,
        linked_at  INTEGER NOT NULL,
        PRIMARY KEY (repository, digest)
    );
    CREATE INDEX registry_blobs_digest ON registry_blobs (digest);
    "#,
    // 10: image digests pinned per service and task definition revision
    // (`image_pins`): written once, when a deployment (or the first task) of
    // that revision resolves its image, and never changed.
    r#"
    CREATE TABLE image_pins (
        service         TEXT NOT NULL,
        task_definition TEXT NOT NULL,
        container       TEXT NOT NULL,
        image           TEXT NOT NULL,
        reference       TEXT NOT NULL,
        digest          TEXT NOT NULL,
        deployment      TEXT,
        resolved_at     INTEGER NOT NULL,
        PRIMARY KEY (service, task_definition)
    );
    "#,
    // 11: host agents, the commands queued for them and
    // their results, and each host's last successful revision per group.
    r#"
    CREATE TABLE agents (
        name          TEXT PRIMARY KEY,
        registration  TEXT,
        key_hash      TEXT,
        registered_at INTEGER NOT NULL,
        last_seen     INTEGER NOT NULL
    );
    CREATE TABLE agent_commands (
        seq           INTEGER PRIMARY KEY AUTOINCREMENT,
        id            TEXT NOT NULL UNIQUE,
        host          TEXT NOT NULL,
        body          TEXT NOT NULL,
        dispatched_at INTEGER NOT NULL,
        cancelled     INTEGER NOT NULL DEFAULT 0,
        result        TEXT,
        reported_at   INTEGER
    );
    CREATE INDEX agent_commands_open ON agent_commands (host, reported_at);
    CREATE TABLE agent_revisions (
        host             TEXT NOT NULL,
        deployment_group TEXT NOT NULL,
        bundle           TEXT NOT NULL,
        PRIMARY KEY (host, deployment_group)
    );
    "#,
    // 12: host deployments (issue 12): the stack's `applications:`, each host
    // deployment's planner state and per-host records (one typed JSON body),
    // and each host's last successful revision per deployment group.
    r#"
    CREATE TABLE host_applications (
        name       TEXT PRIMARY KEY,
        body       TEXT NOT NULL,
        stack      TEXT NOT NULL,
        updated_at INTEGER NOT NULL
    );
    CREATE TABLE host_deployments (
        id               TEXT PRIMARY KEY,
        application      TEXT NOT NULL,
        deployment_group TEXT NOT NULL,
        status           TEXT NOT NULL,
        body             TEXT NOT NULL,
        created_at       INTEGER NOT NULL,
        updated_at       INTEGER NOT NULL,
        finished_at      INTEGER
    );
    CREATE INDEX host_deployments_group ON host_deployments (application, deployment_group, created_at);
    CREATE TABLE host_revisions (
        application      TEXT NOT NULL,
        deployment_group TEXT NOT NULL,
        host             TEXT NOT NULL,
        bundle           TEXT NOT NULL,
        target           TEXT,
        deployment_id    TEXT NOT NULL,
        at               INTEGER NOT NULL,
        PRIMARY KEY (application, deployment_group, host)
    );
    "#,
    // 13: image scans (`scans`): one row per manifest digest (findings
    // depend only on the image's content and the advisory data), with the
    // advisory database version they were matched against; and the
    // advisory database's metadata (its file is `<data>/advisories.db`).
    r#"
    CREATE TABLE registry_scans (
        digest                TEXT PRIMARY KEY,
        status                TEXT NOT NULL,
        description           TEXT NOT NULL,
        db_version            TEXT,
        completed_at          INTEGER,
        advisories_updated_at INTEGER,
        ecosystems            TEXT NOT NULL,
        findings              TEXT NOT NULL
    );
    CREATE TABLE advisory_db (
        id         INTEGER PRIMARY KEY CHECK (id = 1),
        version    TEXT NOT NULL,
        advisories INTEGER NOT NULL,
        updated_at INTEGER NOT NULL
    );
    "#,
    // 14: on-premises instances registered through CodeDeploy's API
    // (RegisterOnPremisesInstance): the IAM user or session ARN whose
    // access keys the instance's agent authenticates with.
    r#"
    ALTER TABLE agents ADD COLUMN iam_arn TEXT;
    "#,
];

/// The schema version stored in the file.
pub(crate) fn version(conn: &Connection) -> Result<u32, StoreError> {
    conn.query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(StoreError::sql("read schema version"))
}

/// Brings the schema up to date.
pub(crate) fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let current = version(conn)?;
    let supported = MIGRATIONS.len() as u32;
    if current > supported {
        return Err(StoreError::TooNew {
            found: current,
            supported,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn
            .transaction()
            .map_err(StoreError::sql("begin migration"))?;
        tx.execute_batch(sql)
            .map_err(StoreError::sql("apply migration"))?;
        tx.pragma_update(None, "user_version", (i + 1) as u32)
            .map_err(StoreError::sql("bump schema version"))?;
        tx.commit().map_err(StoreError::sql("commit migration"))?;
        tracing::info!(version = i + 1, "migrated state database");
    }
    Ok(())
}
