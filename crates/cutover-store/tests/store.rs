//! Store behaviour against a real SQLite file.

use cutover_core::task::{DesiredStatus, HealthStatus, TaskState};
use cutover_store::{ServiceRow, Store, StoreError, TaskRow, ops};
use serde_json::json;

fn service(name: &str, desired: u32) -> ServiceRow {
    ServiceRow {
        name: name.into(),
        task_definition: "web:1".into(),
        desired_count: desired,
        runtime: "process".into(),
        spec: Default::default(),
        status: cutover_core::service::ServiceStatus::Active,
        lb_group: "a".into(),
        generation: 1,
        created_at: 10,
        updated_at: 10,
    }
}

fn task(id: &str, status: &str, created: u64) -> TaskRow {
    TaskRow {
        id: id.into(),
        service: "web".into(),
        task_set: "primary".into(),
        task_definition: "web:1".into(),
        runtime: "process".into(),
        last_status: status.parse().unwrap(),
        desired_status: DesiredStatus::Running,
        health_status: HealthStatus::Unknown,
        endpoint: Some("127.0.0.1:4000".into()),
        handle: Some(cutover_core::task::TaskHandle {
            task_id: id.into(),
            runtime: "process".into(),
            endpoint: Some("127.0.0.1:4000".parse().unwrap()),
            pid: Some(42),
            started_at_unix_ms: created,
            detail: json!({"port": 4000}),
        }),
        stop_code: None,
        stopped_reason: None,
        exit_code: None,
        created_at: created,
        started_at: None,
        stopping_at: None,
        stopped_at: None,
    }
}

#[test]
fn revisions_increment_and_identical_bodies_are_reused() {
    let s = Store::open_in_memory().unwrap();
    let a = json!({"family": "web", "containerDefinitions": [{"name": "web"}]});
    let b = json!({"family": "web", "containerDefinitions": [{"name": "web", "image": "x"}]});
    s.with(|c| {
        let (r1, new1) = ops::register_task_definition(c, "web", &a, 1, false)?;
        let (r2, new2) = ops::register_task_definition(c, "web", &a, 2, false)?;
        let (r3, new3) = ops::register_task_definition(c, "web", &b, 3, false)?;
        let (r4, new4) = ops::register_task_definition(c, "web", &b, 4, true)?;
        assert_eq!((r1.revision, new1), (1, true));
        assert_eq!((r2.revision, new2), (1, false));
        assert_eq!((r3.revision, new3), (2, true));
        assert_eq!((r4.revision, new4), (3, true));
        assert_eq!(ops::task_definition(c, "web", None)?.unwrap().revision, 3);
        assert_eq!(ops::task_definition(c, "web", Some(2))?.unwrap().body, b);
        assert!(ops::task_definition(c, "web", Some(9))?.is_none());
        assert_eq!(ops::list_task_definitions(c, Some("web"))?.len(), 3);
        assert_eq!(ops::list_task_definitions(c, Some("api"))?.len(), 0);
        Ok(())
    })
    .unwrap();
}

#[test]
fn a_failed_atomic_block_leaves_nothing_behind() {
    let s = Store::open_in_memory().unwrap();
    s.with(|c| ops::put_service(c, &service("web", 2))).unwrap();
    let err = s
        .atomically(|c| {
            ops::put_service(c, &service("web", 5))?;
            ops::put_service(c, &service("api", 1))?;
            Err::<(), _>(StoreError::Conflict("validation failed".into()))
        })
        .unwrap_err();
    assert_eq!(err.to_string(), "validation failed");
    let services = s.with(ops::list_services).unwrap();
    assert_eq!(services, vec![service("web", 2)]);
}

#[test]
fn state_survives_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    {
        let s = Store::open(&path).unwrap();
        s.with(|c| {
            ops::put_service(c, &service("web", 2))?;
            ops::insert_task(c, &task("t1", "RUNNING", 5))?;
            ops::add_event(c, 7, "service/web", "started 1 task")
        })
        .unwrap();
    }
    let s = Store::open(&path).unwrap();
    assert_eq!(s.schema_version().unwrap(), 14);
    let t = s.with(|c| ops::task(c, "t1")).unwrap().unwrap();
    assert_eq!(t, task("t1", "RUNNING", 5));
    let ev = s.with(|c| ops::events(c, "service/web", 10)).unwrap();
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].message, "started 1 task");
}

#[test]
fn task_listing_puts_live_tasks_first_and_filters_stopped() {
    let s = Store::open_in_memory().unwrap();
    s.with(|c| {
        ops::insert_task(c, &task("old", "STOPPED", 1))?;
        ops::insert_task(c, &task("a", "RUNNING", 2))?;
        ops::insert_task(c, &task("b", "PENDING", 3))?;
        Ok(())
    })
    .unwrap();
    let all = s
        .with(|c| ops::list_tasks(c, Some("web"), true, 100))
        .unwrap();
    let ids: Vec<_> = all.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, vec!["b", "a", "old"]);
    let live = s.with(|c| ops::list_tasks(c, None, false, 100)).unwrap();
    assert_eq!(live.len(), 2);
}

#[test]
fn events_by_prefix_keep_the_newest() {
    let s = Store::open_in_memory().unwrap();
    s.with(|c| {
        for i in 0..5 {
            ops::add_event(c, i, "service/web", &format!("e{i}"))?;
        }
        ops::add_event(c, 9, "service/web/task/x", "nested")?;
        ops::add_event(c, 9, "service/webber", "other")?;
        Ok(())
    })
    .unwrap();
    let ev = s.with(|c| ops::events(c, "service/web", 3)).unwrap();
    let msgs: Vec<_> = ev.iter().map(|e| e.message.as_str()).collect();
    assert_eq!(msgs, vec!["e3", "e4", "nested"]);
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        c.pragma_update(None, "user_version", 999).unwrap();
    }
    let err = Store::open(&path).unwrap_err();
    assert!(err.to_string().contains("schema version 999"), "{err}");
}

fn blue_green() -> cutover_deploy::DeploymentEngine {
    use cutover_deploy::{BlueGreen, BlueGreenSpec, Input, TrafficRouting};
    let spec = BlueGreenSpec::new("d-1", TrafficRouting::ecs_canary_10_percent_5_minutes());
    let mut engine = BlueGreen::new(spec, 5);
    engine.handle(5, Input::Start);
    engine.into()
}

fn composite(rule: &str) -> cutover_store::AlarmSpec {
    cutover_store::AlarmSpec::Declared(cutover_spec::stack::Alarm::Composite(
        cutover_spec::stack::CompositeAlarm {
            alarm_rule: rule.into(),
        },
    ))
}

fn error_chain(err: &StoreError) -> String {
    let mut chain = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        chain += &format!(": {s}");
        source = s.source();
    }
    chain
}

#[test]
fn deployments_and_alarms_round_trip() {
    use cutover_deploy::alarm::AlarmState;
    use cutover_deploy::{DeploymentEngine, DeploymentKind, DeploymentStatus};
    use cutover_store::{AlarmRow, DeploymentRow};
    let s = Store::open_in_memory().unwrap();
    let d = DeploymentRow {
        id: "d-1".into(),
        service: "web".into(),
        status: DeploymentStatus::InProgress,
        from_task_definition: "web:1".into(),
        to_task_definition: "web:2".into(),
        config: "CodeDeployDefault.ECSCanary10Percent5Minutes".into(),
        engine: blue_green(),
        green_provisioned: true,
        prod_green_percent: 20,
        test_on_green: true,
        started_by: "user".into(),
        rollback_of: None,
        rolled_back_by: None,
        outcome: None,
        created_at: 5,
        updated_at: 6,
        finished_at: None,
    };
    assert_eq!(d.kind(), DeploymentKind::BlueGreen);
    s.with(|c| ops::put_deployment(c, &d)).unwrap();
    assert_eq!(
        s.with(|c| ops::deployment(c, "d-1")).unwrap(),
        Some(d.clone())
    );
    // The columns keep the spelling they always had.
    let (kind, status): (String, String) = s
        .with(|c| {
            Ok(c.query_row(
                "SELECT kind, status FROM deployments WHERE id = 'd-1'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap())
        })
        .unwrap();
    assert_eq!(
        (kind.as_str(), status.as_str()),
        ("BLUE_GREEN", "InProgress")
    );
    assert_eq!(s.with(ops::unfinished_deployments).unwrap().len(), 1);
    let mut done = d.clone();
    done.finished_at = Some(9);
    done.status = DeploymentStatus::Succeeded;
    s.with(|c| ops::put_deployment(c, &done)).unwrap();
    assert!(s.with(ops::unfinished_deployments).unwrap().is_empty());
    assert_eq!(
        s.with(|c| ops::list_deployments(c, Some("web"), 10))
            .unwrap(),
        vec![done]
    );
    for (id, engine) in [
        ("d-2", DeploymentEngine::Rolling),
        ("d-3", DeploymentEngine::Rollback),
    ] {
        let row = DeploymentRow::new(
            id,
            "web",
            engine,
            DeploymentStatus::Succeeded,
            "web:2",
            "web:1",
            "rolling",
            "user",
            10,
        );
        s.with(|c| ops::put_deployment(c, &row)).unwrap();
        assert_eq!(s.with(|c| ops::deployment(c, id)).unwrap(), Some(row));
    }

    let a = AlarmRow {
        name: "web-5xx".into(),
        spec: composite("ALARM(web-5xx-fast)"),
        state: AlarmState::Ok,
        reason: "initial".into(),
        updated_at: 1,
    };
    s.with(|c| ops::put_alarm(c, &a)).unwrap();
    assert_eq!(s.with(ops::list_alarms).unwrap(), vec![a]);
    s.with(|c| ops::delete_alarm(c, "web-5xx")).unwrap();
    assert!(s.with(ops::list_alarms).unwrap().is_empty());
}

#[test]
fn unknown_stored_deployment_kinds_service_and_deployment_statuses_and_alarm_states_are_refused() {
    use cutover_deploy::alarm::AlarmState;
    use cutover_deploy::{DeploymentEngine, DeploymentStatus};
    use cutover_store::{AlarmRow, DeploymentRow};
    let s = Store::open_in_memory().unwrap();
    let row = DeploymentRow::new(
        "d-1",
        "web",
        DeploymentEngine::Rolling,
        DeploymentStatus::InProgress,
        "web:1",
        "web:2",
        "rolling",
        "user",
        1,
    );
    let alarm = AlarmRow {
        name: "web-5xx".into(),
        spec: composite("ALARM(web-5xx-fast)"),
        state: AlarmState::Alarm,
        reason: String::new(),
        updated_at: 1,
    };
    s.with(|c| {
        ops::put_deployment(c, &row)?;
        ops::put_alarm(c, &alarm)
    })
    .unwrap();
    let corrupt = |sql: &str| s.with(|c| Ok(c.execute(sql, []).unwrap())).unwrap();
    corrupt("UPDATE deployments SET status = 'Done'");
    let err = s.with(|c| ops::deployment(c, "d-1")).unwrap_err();
    assert!(
        error_chain(&err).contains("unknown deployment status \"Done\""),
        "{}",
        error_chain(&err)
    );
    corrupt("UPDATE deployments SET status = 'InProgress', kind = 'CANARY'");
    let err = s.with(ops::unfinished_deployments).unwrap_err();
    assert!(
        error_chain(&err).contains("unknown deployment kind \"CANARY\""),
        "{}",
        error_chain(&err)
    );
    // A blue/green row must hold its engine's state.
    corrupt("UPDATE deployments SET kind = 'BLUE_GREEN'");
    let err = s.with(|c| ops::deployment(c, "d-1")).unwrap_err();
    assert!(
        error_chain(&err).starts_with("state store: corrupt deployment engine state"),
        "{}",
        error_chain(&err)
    );
    s.with(|c| ops::put_service(c, &service("web", 1))).unwrap();
    corrupt("UPDATE services SET status = 'Active'");
    let err = s.with(ops::list_services).unwrap_err();
    assert!(
        error_chain(&err).contains("unknown service status \"Active\""),
        "{}",
        error_chain(&err)
    );
    corrupt("UPDATE alarms SET state = 'Alarm'");
    let err = s.with(ops::list_alarms).unwrap_err();
    assert!(
        error_chain(&err).contains("unknown alarm state \"Alarm\""),
        "{}",
        error_chain(&err)
    );
}

#[test]
fn pipeline_state_survives_definition_updates_and_builds_are_numbered_per_project() {
    use cutover_store::BuildRow;
    use cutover_store::pipeline_ops as pops;
    let s = Store::open_in_memory().unwrap();
    s.with(|c| {
        pops::put_pipeline_definition(c, "app", &serde_json::json!({"name": "app"}), 1)?;
        pops::save_pipeline_state(c, "app", &serde_json::json!({"next_seq": 4}), 2)?;
        pops::put_pipeline_definition(c, "app", &serde_json::json!({"name": "app", "v": 2}), 3)
    })
    .unwrap();
    let p = s.with(|c| pops::pipeline(c, "app")).unwrap().unwrap();
    assert_eq!(p.definition["v"], 2);
    assert_eq!(p.state.unwrap()["next_seq"], 4);
    assert!(matches!(
        s.with(|c| pops::save_pipeline_state(c, "nope", &serde_json::json!({}), 1)),
        Err(cutover_store::StoreError::NotFound { .. })
    ));

    let build = |id: &str, project: &str, number: u64| BuildRow {
        id: id.into(),
        project: project.into(),
        number,
        status: cutover_api::builds::BuildStatus::InProgress,
        initiator: "codepipeline/app".into(),
        action_key: Some(format!("app/e1/Build/Build/{number}")),
        source: None,
        work_dir: "/tmp/w".into(),
        detail: serde_json::json!({}),
        message: None,
        started_at: number,
        finished_at: None,
    };
    s.with(|c| {
        assert_eq!(pops::next_build_number(c, "p")?, 1);
        pops::put_build(c, &build("p:1", "p", 1))?;
        pops::put_build(c, &build("q:1", "q", 1))?;
        assert_eq!(pops::next_build_number(c, "p")?, 2);
        let mut done = build("p:2", "p", 2);
        done.finished_at = Some(9);
        done.status = cutover_api::builds::BuildStatus::Succeeded;
        pops::put_build(c, &done)?;
        Ok(())
    })
    .unwrap();
    let unfinished = s.with(pops::unfinished_builds).unwrap();
    assert_eq!(
        unfinished.iter().map(|b| b.id.as_str()).collect::<Vec<_>>(),
        ["p:1", "q:1"]
    );
    let of_p = s.with(|c| pops::list_builds(c, Some("p"), 10)).unwrap();
    assert_eq!(of_p[0].id, "p:2");
    let by_action = s
        .with(|c| pops::build_for_action(c, "app/e1/Build/Build/2"))
        .unwrap()
        .unwrap();
    assert_eq!(
        by_action.status,
        cutover_api::builds::BuildStatus::Succeeded
    );

    s.with(|c| {
        assert_eq!(pops::repository_head(c, "app", "main")?, None);
        pops::set_repository_head(c, "app", "main", "abc", 5)?;
        assert_eq!(
            pops::repository_head(c, "app", "main")?.as_deref(),
            Some("abc")
        );
        Ok(())
    })
    .unwrap();
}

#[test]
fn task_states_only_move_forward_and_unknown_stored_states_are_refused() {
    let mut t = task("t1", "PENDING", 5);
    t.set_status(TaskState::Running).unwrap();
    t.set_status(TaskState::Running).unwrap();
    let err = t.set_status(TaskState::Pending).unwrap_err();
    assert_eq!(err.to_string(), "task t1: RUNNING cannot become PENDING");
    t.set_status(TaskState::Stopped).unwrap();
    assert!(t.set_status(TaskState::Running).is_err());

    let store = Store::open_in_memory().unwrap();
    store
        .with(|c| {
            ops::insert_task(c, &task("t2", "RUNNING", 5))?;
            c.execute(
                "UPDATE tasks SET last_status = 'RUNNIN' WHERE id = 't2'",
                [],
            )
            .unwrap();
            Ok(())
        })
        .unwrap();
    let err = store.with(|c| ops::task(c, "t2")).unwrap_err();
    let chain = error_chain(&err);
    assert!(chain.contains("\"RUNNIN\""), "{chain}");
}

#[test]
fn a_lifecycle_write_from_a_stale_read_keeps_a_promotions_relabelling() {
    let store = Store::open_in_memory().unwrap();
    let mut green = task("g1", "RUNNING", 5);
    green.task_set = "green-d1".into();
    store
        .with(|c| {
            ops::insert_task(c, &task("b1", "RUNNING", 4))?;
            ops::insert_task(c, &green)
        })
        .unwrap();
    // The service loop reads its tasks ...
    let stale = store.with(|c| ops::task(c, "g1")).unwrap().unwrap();
    // ... a promotion relabels the sets in between ...
    let moved = store
        .atomically(|c| {
            let retired = ops::relabel_task_set(c, "web", "primary", "retired-d1")?;
            let promoted = ops::relabel_task_set(c, "web", "green-d1", "primary")?;
            Ok((retired, promoted))
        })
        .unwrap();
    assert_eq!(moved, (1, 1));
    // ... and the loop writes what it decided from its stale read.
    let mut row = stale;
    row.health_status = HealthStatus::Healthy;
    row.set_status(TaskState::Stopping).unwrap();
    row.desired_status = DesiredStatus::Stopped;
    row.stopping_at = Some(9);
    store.with(|c| ops::update_task_lifecycle(c, &row)).unwrap();
    let now = store.with(|c| ops::task(c, "g1")).unwrap().unwrap();
    assert_eq!(now.task_set, "primary", "the relabelling survives");
    assert_eq!(now.last_status, TaskState::Stopping);
    assert_eq!(now.health_status, HealthStatus::Healthy);
    assert_eq!(now.stopping_at, Some(9));
    let retired = store.with(|c| ops::task(c, "b1")).unwrap().unwrap();
    assert_eq!(retired.task_set, "retired-d1");
}

#[test]
fn a_lifecycle_write_cannot_move_the_stored_status_backwards() {
    let store = Store::open_in_memory().unwrap();
    store
        .with(|c| ops::insert_task(c, &task("t1", "RUNNING", 5)))
        .unwrap();
    let stale = store.with(|c| ops::task(c, "t1")).unwrap().unwrap();
    let mut exited = stale.clone();
    exited.set_status(TaskState::Stopped).unwrap();
    exited.exit_code = Some(1);
    store
        .with(|c| ops::update_task_lifecycle(c, &exited))
        .unwrap();
    // A decision taken on the RUNNING read would now move STOPPED back to
    // STOPPING: refused, and the stored row keeps its exit.
    let mut stopping = stale;
    stopping.set_status(TaskState::Stopping).unwrap();
    let err = store
        .with(|c| ops::update_task_lifecycle(c, &stopping))
        .unwrap_err();
    assert_eq!(err.to_string(), "task t1: STOPPED cannot become STOPPING");
    let now = store.with(|c| ops::task(c, "t1")).unwrap().unwrap();
    assert_eq!(now.last_status, TaskState::Stopped);
    assert_eq!(now.exit_code, Some(1));
    // Unknown ids and duplicate inserts are refused, never created or replaced.
    let mut ghost = task("ghost", "RUNNING", 1);
    ghost.set_status(TaskState::Stopped).unwrap();
    assert!(matches!(
        store.with(|c| ops::update_task_lifecycle(c, &ghost)),
        Err(cutover_store::StoreError::NotFound { kind: "task", .. })
    ));
    assert!(
        store
            .with(|c| ops::insert_task(c, &task("t1", "PENDING", 6)))
            .is_err()
    );
    assert_eq!(
        store
            .with(|c| ops::task(c, "t1"))
            .unwrap()
            .unwrap()
            .last_status,
        TaskState::Stopped
    );
}

#[test]
fn a_service_is_deleted_only_while_draining_and_without_live_tasks() {
    use cutover_core::service::ServiceStatus;
    let store = Store::open_in_memory().unwrap();
    store
        .with(|c| {
            let mut svc = service("web", 1);
            ops::put_service(c, &svc)?;
            // Made ACTIVE again by an apply after the loop read it DRAINING.
            assert!(!ops::delete_drained_service(c, "web")?);
            svc.status = ServiceStatus::Draining;
            ops::put_service(c, &svc)?;
            ops::insert_task(c, &task("t1", "RUNNING", 20))?;
            assert!(!ops::delete_drained_service(c, "web")?, "a task still runs");
            ops::insert_task(c, &task("t0", "STOPPED", 15))?;
            c.execute(
                "UPDATE tasks SET last_status = 'STOPPED' WHERE id = 't1'",
                [],
            )
            .unwrap();
            assert!(ops::delete_drained_service(c, "web")?);
            assert!(ops::service(c, "web")?.is_none());
            Ok(())
        })
        .unwrap();
}
