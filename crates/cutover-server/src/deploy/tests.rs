//! The deployment driver in-process, on a paused clock: a 15-minute canary
//! runs in milliseconds, and a crash of the control plane at any step
//! resumes to the same outcome.

use crate::testing::Harness;
use cutover_runtime::fake::Call;
use std::time::Duration;

use crate::testing::WEB_TASKDEF as TASKDEF_V1;

/// A blue/green service with a 10% canary held for 15 minutes and a
/// 5-minute termination wait.
const STACK: &str = r#"services:
  web:
    runtime: process
    desiredCount: 2
    taskDefinition: ./taskdef.json
    loadBalancer:
      containerName: web
      containerPort: 8080
      listener: 127.0.0.1:18080
      testListener: 127.0.0.1:18081
      healthCheck: {path: /health, intervalSeconds: 1, timeoutSeconds: 1, healthyThresholdCount: 2, unhealthyThresholdCount: 2}
    deployment:
      type: BLUE_GREEN
      config: Canary10Percent15Minutes
      terminationWaitSeconds: 300
      autoRollback: [DEPLOYMENT_FAILURE]
deploymentConfigs:
  Canary10Percent15Minutes:
    trafficRouting: {type: TimeBasedCanary, timeBasedCanary: {canaryPercentage: 10, canaryInterval: 15}}
"#;

fn v2() -> String {
    TASKDEF_V1.replace("\"v1\"", "\"v2\"")
}

/// Applies v1 and waits until its two tasks run.
async fn with_v1() -> Harness {
    let h = Harness::start().await;
    h.apply(STACK, &[("./taskdef.json", TASKDEF_V1)]).await;
    let up = h
        .run_until(Duration::from_secs(60), Duration::from_millis(100), |h| {
            h.runtime.running().len() == 2
        })
        .await;
    assert!(up, "v1 never ran: {:?}", h.runtime.calls());
    h
}

/// The production listener's weights at each change, as the percent sent
/// to the replacement (whichever group was not live at the start).
fn green_percents(h: &Harness) -> Vec<u32> {
    let history = h.dataplane.weights_history("web-prod");
    let Some(original) = history
        .first()
        .and_then(|ws| ws.first())
        .map(|(g, _)| g.clone())
    else {
        return Vec::new();
    };
    history
        .into_iter()
        .map(|ws| {
            let total: u32 = ws.iter().map(|(_, w)| w).sum();
            let green: u32 = ws
                .iter()
                .filter(|(g, _)| *g != original)
                .map(|(_, w)| w)
                .sum();
            (green * 100).checked_div(total).unwrap_or(0)
        })
        .collect()
}

fn status(h: &Harness, id: &str) -> String {
    h.deployment(id).status.to_string()
}

#[tokio::test(start_paused = true)]
async fn a_fifteen_minute_canary_runs_in_milliseconds() {
    let wall = std::time::Instant::now();
    let h = with_v1().await;
    h.apply(STACK, &[("./taskdef.json", &v2())]).await;
    let id = h.latest_deployment("web").expect("a deployment").id;
    let start = h.elapsed_ms();

    let done = h
        .run_until(Duration::from_secs(3600), Duration::from_secs(1), |h| {
            status(h, &id) == "Succeeded"
        })
        .await;
    assert!(done, "deployment ended {}", status(&h, &id));
    let took = h.elapsed_ms() - start;
    assert!(
        took >= (15 * 60 + 300) * 1000,
        "canary and termination wait take 20 minutes of control-plane time, took {took} ms"
    );
    assert!(
        took < 25 * 60 * 1000,
        "took {took} ms of control-plane time"
    );

    // Traffic moved 0 -> 10 -> 100 and never anywhere else.
    let percents = green_percents(&h);
    assert_eq!(
        percents
            .iter()
            .copied()
            .filter(|p| *p != 0)
            .collect::<Vec<_>>()
            .first(),
        Some(&10),
        "{percents:?}"
    );
    assert_eq!(percents.last(), Some(&100), "{percents:?}");
    assert!(
        percents.iter().all(|p| [0, 10, 100].contains(p)),
        "{percents:?}"
    );

    // v2 runs; v1 is stopped once it has drained (the target groups'
    // deregistration delay, 300 s by default).
    let drained = h
        .run_until(Duration::from_secs(310), Duration::from_secs(1), |h| {
            h.runtime.running().len() == 2
        })
        .await;
    assert!(drained, "{:?}", h.runtime.running());
    let running = h.runtime.running();
    assert_eq!(running.len(), 2, "{running:?}");
    assert!(running.iter().all(|(_, td)| td == "web:2"), "{running:?}");
    let stops = h
        .runtime
        .calls()
        .into_iter()
        .filter(|c| matches!(c, Call::Stop { .. }))
        .count();
    assert_eq!(stops, 2, "{:?}", h.runtime.calls());
    eprintln!(
        "20 minutes of deployment in {} ms of wall time",
        wall.elapsed().as_millis()
    );
}

#[tokio::test(start_paused = true)]
async fn a_crash_at_any_step_resumes_to_the_same_outcome() {
    // Crash the control plane at each second-granular point of the
    // deployment's first minutes and at the canary's end, and check that
    // every run ends Succeeded with traffic only ever at 0, 10 or 100%.
    for crash_after_s in [0u64, 1, 2, 3, 5, 8, 13, 30, 899, 900, 901, 1_150, 1_201] {
        let mut h = with_v1().await;
        h.apply(STACK, &[("./taskdef.json", &v2())]).await;
        let id = h.latest_deployment("web").expect("a deployment").id;
        h.advance(Duration::from_secs(crash_after_s)).await;
        h = h.crash().await;
        let done = h
            .run_until(Duration::from_secs(3600), Duration::from_secs(5), |h| {
                let s = status(h, &id);
                s == "Succeeded" || s == "Failed" || s == "Stopped"
            })
            .await;
        assert!(
            done,
            "crash at {crash_after_s} s: stuck in {}",
            status(&h, &id)
        );
        assert_eq!(status(&h, &id), "Succeeded", "crash at {crash_after_s} s");
        let percents = green_percents(&h);
        assert!(
            percents.iter().all(|p| [0, 10, 100].contains(p)),
            "crash at {crash_after_s} s: {percents:?}"
        );
        assert_eq!(percents.last(), Some(&100), "crash at {crash_after_s} s");
        h.run_until(Duration::from_secs(310), Duration::from_secs(5), |h| {
            h.runtime.running().len() == 2
        })
        .await;
        let running = h.runtime.running();
        assert_eq!(running.len(), 2, "crash at {crash_after_s} s: {running:?}");
        assert!(
            running.iter().all(|(_, td)| td == "web:2"),
            "crash at {crash_after_s} s: {running:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_replacement_that_never_gets_healthy_rolls_back_without_moving_traffic() {
    let h = with_v1().await;
    h.runtime
        .fail_starts("web:2", "CannotPullContainerError: no such image");
    h.apply(STACK, &[("./taskdef.json", &v2())]).await;
    let id = h.latest_deployment("web").expect("a deployment").id;
    let done = h
        .run_until(Duration::from_secs(3600), Duration::from_secs(1), |h| {
            let s = status(h, &id);
            s == "Failed" || s == "Stopped" || s == "Succeeded"
        })
        .await;
    assert!(done, "stuck in {}", status(&h, &id));
    assert_eq!(status(&h, &id), "Failed");
    assert!(
        green_percents(&h).iter().all(|p| *p == 0),
        "{:?}",
        green_percents(&h)
    );
    let running = h.runtime.running();
    assert!(running.iter().all(|(_, td)| td == "web:1"), "{running:?}");
    assert_eq!(running.len(), 2, "{running:?}");
}

/// The stack with a 1-second 5xx alarm that stops the deployment.
fn stack_with_alarm() -> String {
    STACK.replace(
        "      autoRollback: [DEPLOYMENT_FAILURE]\n",
        "      autoRollback: [DEPLOYMENT_FAILURE, DEPLOYMENT_STOP_ON_ALARM]\n      alarms: [web-5xx]\n",
    ) + r#"alarms:
  web-5xx:
    metric: {name: HTTPCode_Target_5XX_Count, service: web}
    statistic: Sum
    periodSeconds: 1
    evaluationPeriods: 1
    threshold: 5
    comparisonOperator: GreaterThanOrEqualToThreshold
    treatMissingData: notBreaching
"#
}

#[tokio::test(start_paused = true)]
async fn an_alarm_during_the_canary_rolls_back_in_one_traffic_change() {
    use cutover_proxy::metrics::{MetricSample, SecondBucket};
    let stack = stack_with_alarm();
    let h = Harness::start().await;
    h.apply(&stack, &[("./taskdef.json", TASKDEF_V1)]).await;
    assert!(
        h.run_until(Duration::from_secs(60), Duration::from_millis(100), |h| {
            h.runtime.running().len() == 2
        })
        .await
    );
    h.apply(&stack, &[("./taskdef.json", &v2())]).await;
    let id = h.latest_deployment("web").expect("a deployment").id;
    let canary = h
        .run_until(Duration::from_secs(120), Duration::from_millis(200), |h| {
            green_percents(h).last() == Some(&10)
        })
        .await;
    assert!(canary, "{:?}", green_percents(&h));

    // One bad second of 5xx on the production listener.
    let second = h.clock_sec() + 1;
    let bad = MetricSample {
        request_count: 100,
        target5xx: 40,
        ..MetricSample::default()
    };
    let mut bucket = SecondBucket {
        time: second,
        ..SecondBucket::default()
    };
    bucket.listeners.insert("web-prod".into(), bad.clone());
    for g in ["web-blue", "web-green"] {
        bucket.target_groups.insert(g.into(), bad.clone());
    }
    h.dataplane.push_second(bucket);
    let started = h.elapsed_ms();
    let stopped = h
        .run_until(Duration::from_secs(30), Duration::from_millis(100), |h| {
            green_percents(h).last() == Some(&0)
        })
        .await;
    assert!(stopped, "{:?} {}", green_percents(&h), status(&h, &id));
    let reaction = h.elapsed_ms() - started;
    assert!(
        reaction <= 3_000,
        "traffic back on the original {reaction} ms after the bad second began"
    );
    let percents = green_percents(&h);
    assert_eq!(
        &percents[percents.len() - 2..],
        &[10, 0],
        "rolled back in one change: {percents:?}"
    );
    let ended = h
        .run_until(Duration::from_secs(60), Duration::from_secs(1), |h| {
            status(h, &id) == "Stopped"
        })
        .await;
    assert!(ended, "{}", status(&h, &id));
}

/// A rolling service whose update an alarm stops (and rolls back).
const ROLLING_STACK: &str = r#"services:
  web:
    runtime: process
    desiredCount: 2
    taskDefinition: ./taskdef.json
    loadBalancer:
      containerName: web
      containerPort: 8080
      listener: 127.0.0.1:18080
      healthCheck: {path: /health, intervalSeconds: 1, timeoutSeconds: 1, healthyThresholdCount: 2, unhealthyThresholdCount: 2}
    deployment:
      type: ROLLING
      alarms: [web-drill]
      autoRollback: [DEPLOYMENT_STOP_ON_ALARM]
alarms:
  web-drill:
    metric: {name: HTTPCode_Target_5XX_Count, service: web}
    statistic: Sum
    periodSeconds: 60
    evaluationPeriods: 1
    threshold: 1000000
    comparisonOperator: GreaterThanOrEqualToThreshold
    treatMissingData: notBreaching
"#;

#[tokio::test(start_paused = true)]
async fn an_alarm_that_fires_and_clears_between_two_checks_still_stops_a_rolling_update() {
    use axum::http::Method;
    let h = Harness::start().await;
    h.apply(ROLLING_STACK, &[("./taskdef.json", TASKDEF_V1)])
        .await;
    assert!(
        h.run_until(Duration::from_secs(60), Duration::from_millis(100), |h| {
            h.runtime.running().len() == 2
        })
        .await
    );
    let (code, body) = h
        .call(
            Method::POST,
            "/v1/deployments",
            Some(serde_json::json!({"service": "web", "env": {"web": {"APP_VERSION": "v2"}}})),
        )
        .await;
    assert!(code.is_success(), "{code} {body}");
    let id = h.latest_deployment("web").expect("a rolling update").id;
    assert_eq!(h.deployment(&id).kind().to_string(), "ROLLING");
    // The alarm enters ALARM and is back to OK before the watcher's next
    // look at the stored state (the evaluator does that at a period's end).
    for state in ["ALARM", "OK"] {
        let (code, body) = h
            .call(
                Method::PUT,
                "/v1/alarms/web-drill/state",
                Some(serde_json::json!({"state": state, "reason": "drill"})),
            )
            .await;
        assert!(code.is_success(), "{code} {body}");
    }
    let ended = h
        .run_until(Duration::from_secs(60), Duration::from_millis(100), |h| {
            h.deployment(&id).finished_at.is_some()
        })
        .await;
    let (_, history) = h.call(Method::GET, "/v1/alarms/web-drill", None).await;
    assert!(ended, "{} {history}", status(&h, &id));
    let d = h.deployment(&id);
    assert_eq!(d.status.to_string(), "Stopped");
    assert_eq!(d.outcome.as_deref(), Some("alarm web-drill fired"));
}

/// An appspec hook naming a Lambda function is resolved through the
/// `functions` of the service's stack when the deployment is created: an
/// unmapped name is refused there, located in the appspec, and a mapped
/// one (here by ARN) is recorded as the stack's entry.
#[tokio::test(start_paused = true)]
async fn appspec_hooks_naming_functions_resolve_through_the_stack() {
    use axum::http::{Method, StatusCode};
    let h = with_v1().await;
    let stack = format!(
        "{STACK}functions:\n  CodeDeployHook_BeforeTraffic: {{command: [./smoke.sh], timeoutSeconds: 60}}\n"
    );
    h.apply(&stack, &[("./taskdef.json", TASKDEF_V1)]).await;
    let before = h.latest_deployment("web").map(|d| d.id);
    let create = |function: &str| {
        let appspec = format!(
            "version: 0.0\nResources:\n  - TargetService:\n      Type: AWS::ECS::Service\n      Properties:\n        TaskDefinition: <TASK_DEFINITION>\n        LoadBalancerInfo: {{ContainerName: web, ContainerPort: 8080}}\nHooks:\n  - BeforeAllowTraffic: \"{function}\"\n"
        );
        h.call(
            Method::POST,
            "/v1/deployments",
            Some(serde_json::json!({"service": "web",
                "taskDefinition": {"file": "taskdef.json", "content": v2()},
                "appspec": {"file": "appspec.yaml", "content": appspec}})),
        )
    };

    let (status, body) = create("CodeDeployHook_AfterTraffic").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body:#}");
    let d = &body["error"]["diagnostics"][0];
    assert_eq!(
        (&d["line"], &d["column"], &d["path"]),
        (&9.into(), &25.into(), &"Hooks[0].BeforeAllowTraffic".into()),
        "{body:#}"
    );
    assert!(
        d["message"]
            .as_str()
            .unwrap()
            .starts_with(r#"Lambda function "CodeDeployHook_AfterTraffic" is not mapped"#),
        "{body:#}"
    );
    assert_eq!(h.latest_deployment("web").map(|d| d.id), before);

    let (status, body) =
        create("arn:aws:lambda:us-east-1:111122223333:function:CodeDeployHook_BeforeTraffic").await;
    assert_eq!(status, StatusCode::CREATED, "{body:#}");
    let id = body["deployment"]["id"].as_str().unwrap().to_string();
    let subject = format!("deployment/{id}/appspec-hooks");
    // A test reading the store once.
    #[allow(clippy::disallowed_methods)]
    let recorded = h
        .state
        .store
        .with(|c| cutover_store::ops::events(c, &subject, 1))
        .unwrap();
    let hooks = super::spec::recorded_appspec_hooks(&recorded[0].message);
    let hook = &hooks["BeforeAllowTraffic"];
    assert_eq!(
        (hook.command.as_slice(), hook.timeout_seconds),
        (&["./smoke.sh".to_string()][..], Some(60))
    );
}
