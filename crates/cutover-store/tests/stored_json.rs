//! JSON columns written by earlier versions read back as the typed rows,
//! and are written back in the same shape (no migration: the serde shapes
//! did not change when the rows were typed).

use cutover_deploy::alarm::AlarmState;
use cutover_spec::stack::{Alarm, ComparisonOperator, MetricName, Statistic, TreatMissingData};
use cutover_store::{AlarmSpec, Store, ops};
use serde_json::{Value, json};

fn column(s: &Store, sql: &str) -> Value {
    s.with(|c| {
        let text: String = c.query_row(sql, [], |r| r.get(0)).unwrap();
        Ok(serde_json::from_str(&text).unwrap())
    })
    .unwrap()
}

fn exec(s: &Store, sql: &str, text: &str) {
    s.with(|c| Ok(c.execute(sql, [text]).unwrap())).unwrap();
}

#[test]
fn a_stored_task_handle_reads_back_typed_and_is_written_in_the_same_shape() {
    // What the process runtime's handle looked like in a task row.
    let stored = json!({"taskId": "t1", "runtime": "process", "endpoint": "127.0.0.1:4000",
        "pid": 42, "startedAtUnixMs": 5, "detail": {"taskDir": "/data/tasks/t1", "port": 4000,
        "shimPid": 41, "warnings": []}});
    let s = Store::open_in_memory().unwrap();
    exec(
        &s,
        "INSERT INTO tasks (id, service, task_set, task_definition, runtime, last_status,
           desired_status, health_status, handle, created_at)
         VALUES ('t1', 'web', 'primary', 'web:1', 'process', 'RUNNING', 'RUNNING', 'HEALTHY', ?1, 1)",
        &stored.to_string(),
    );
    let mut t = s.with(|c| ops::task(c, "t1")).unwrap().unwrap();
    let h = t.handle.clone().expect("a handle");
    assert_eq!(
        (h.task_id.as_str(), h.pid, h.endpoint.map(|e| e.port())),
        ("t1", Some(42), Some(4000))
    );
    assert_eq!(h.detail["shimPid"], 41);
    t.stopped_reason = Some("written back".into());
    s.with(|c| ops::update_task_lifecycle(c, &t)).unwrap();
    assert_eq!(
        column(&s, "SELECT handle FROM tasks WHERE id = 't1'"),
        stored
    );
}

#[test]
fn stored_alarm_declarations_read_back_typed_and_are_written_in_the_same_shape() {
    // As `apply` stored them: the stack's alarm entry with its defaults.
    let metric = json!({"metric": {"name": "HTTPCode_Target_5XX_Count", "service": "web"},
        "statistic": "p99.5", "periodSeconds": 60, "evaluationPeriods": 3, "datapointsToAlarm": 2,
        "threshold": 1.5, "comparisonOperator": "GreaterThanThreshold", "treatMissingData": "notBreaching"});
    let composite = json!({"alarmRule": "ALARM(a) OR ALARM(b)"});
    let s = Store::open_in_memory().unwrap();
    for (name, spec) in [("a-metric", &metric), ("b-composite", &composite)] {
        s.with(|c| {
            Ok(c.execute(
                "INSERT INTO alarms (name, spec, state, reason, updated_at) VALUES (?1, ?2, 'OK', '', 1)",
                [name, &spec.to_string()],
            )
            .unwrap())
        })
        .unwrap();
    }
    let rows = s.with(ops::list_alarms).unwrap();
    let Ok(Alarm::Metric(m)) = rows[0].spec.declared() else {
        panic!("{:?}", rows[0].spec);
    };
    assert_eq!(m.metric.name, MetricName::Target5xx);
    assert_eq!(m.statistic, Statistic::Percentile(99.5));
    assert_eq!((m.evaluation_periods, m.datapoints_to_alarm), (3, 2));
    assert_eq!(m.threshold, 1.5);
    assert_eq!(
        m.comparison_operator,
        ComparisonOperator::GreaterThanThreshold
    );
    assert_eq!(m.treat_missing_data, TreatMissingData::NotBreaching);
    let Ok(Alarm::Composite(c)) = rows[1].spec.declared() else {
        panic!("{:?}", rows[1].spec);
    };
    assert_eq!(c.alarm_rule, "ALARM(a) OR ALARM(b)");
    for mut row in rows {
        row.state = AlarmState::Alarm;
        s.with(|c| ops::put_alarm(c, &row)).unwrap();
    }
    assert_eq!(
        column(&s, "SELECT spec FROM alarms WHERE name = 'a-metric'"),
        metric
    );
    assert_eq!(
        column(&s, "SELECT spec FROM alarms WHERE name = 'b-composite'"),
        composite
    );
}

#[test]
fn an_unreadable_alarm_declaration_is_kept_as_text_and_hides_no_other_alarm() {
    let s = Store::open_in_memory().unwrap();
    let text = r#"{"metric": {"name": "RequestCount", "service": "web"}, "statistic": "Sum",
        "threshold": 1, "comparisonOperator": "Sideways"}"#;
    for (name, spec) in [("bad", text), ("good", r#"{"alarmRule": "ALARM(bad)"}"#)] {
        s.with(|c| {
            Ok(c.execute(
                "INSERT INTO alarms (name, spec, state, reason, updated_at) VALUES (?1, ?2, 'OK', '', 1)",
                [name, spec],
            )
            .unwrap())
        })
        .unwrap();
    }
    let mut rows = s.with(ops::list_alarms).unwrap();
    assert!(rows[1].spec.declared().is_ok());
    let AlarmSpec::Unreadable { json, error } = &rows[0].spec else {
        panic!("{:?}", rows[0].spec);
    };
    assert_eq!(json, text);
    assert!(error.contains("Sideways"), "{error}");
    // Its state can still be recorded; the text stays as it was.
    rows[0].state = AlarmState::InsufficientData;
    s.with(|c| ops::put_alarm(c, &rows[0])).unwrap();
    let spec: String = s
        .with(|c| {
            Ok(
                c.query_row("SELECT spec FROM alarms WHERE name = 'bad'", [], |r| {
                    r.get(0)
                })
                .unwrap(),
            )
        })
        .unwrap();
    assert_eq!(spec, text);
}
