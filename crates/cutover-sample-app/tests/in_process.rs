//! The sample app's routes, served in-process on an ephemeral loopback port.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{get, get_first_frame};
use cutover_sample_app::{SampleAppConfig, VERSION_HEADER, serve};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// Starts the app; dropping or firing the sender shuts it down.
async fn start(
    cfg: SampleAppConfig,
) -> (SocketAddr, oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        serve(cfg, listener, async {
            let _ = stop_rx.await;
        })
        .await
        .unwrap();
    });
    (addr, stop_tx, server)
}

fn config() -> SampleAppConfig {
    SampleAppConfig {
        version: "v7".into(),
        ..SampleAppConfig::default()
    }
}

#[tokio::test]
async fn root_answers_version_with_header() {
    let (addr, _stop, _server) = start(config()).await;
    let answer = get(addr, "/").await.unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body, "v7\n");
    assert_eq!(answer.headers[VERSION_HEADER], "v7");
    assert_eq!(get(addr, "/nope").await.unwrap().status, 404);
}

#[tokio::test]
async fn health_follows_healthy_flag() {
    let (addr, _stop, _server) = start(config()).await;
    assert_eq!(get(addr, "/health").await.unwrap().status, 200);

    let sick = SampleAppConfig {
        healthy: false,
        ..config()
    };
    let (addr, _stop, _server) = start(sick).await;
    let answer = get(addr, "/health").await.unwrap();
    assert_eq!(answer.status, 503);
    assert_eq!(get(addr, "/").await.unwrap().status, 200);
}

#[tokio::test]
async fn fail_rate_one_fails_everything_but_health() {
    let failing = SampleAppConfig {
        fail_rate: 1.0,
        ..config()
    };
    let (addr, _stop, _server) = start(failing).await;
    for _ in 0..5 {
        assert_eq!(get(addr, "/").await.unwrap().status, 500);
    }
    assert_eq!(get(addr, "/health").await.unwrap().status, 200);
}

#[tokio::test]
async fn latency_is_added_except_to_health() {
    let slow = SampleAppConfig {
        latency: Duration::from_millis(300),
        ..config()
    };
    let (addr, _stop, _server) = start(slow).await;
    let began = Instant::now();
    assert_eq!(get(addr, "/").await.unwrap().status, 200);
    assert!(began.elapsed() >= Duration::from_millis(300));
    let began = Instant::now();
    assert_eq!(get(addr, "/health").await.unwrap().status, 200);
    assert!(began.elapsed() < Duration::from_millis(300));
}

#[tokio::test]
async fn slow_waits_the_asked_time() {
    let (addr, _stop, _server) = start(config()).await;
    let began = Instant::now();
    let answer = get(addr, "/slow?ms=200").await.unwrap();
    assert_eq!(answer.status, 200);
    assert!(began.elapsed() >= Duration::from_millis(200));
    assert_eq!(get(addr, "/slow?ms=x").await.unwrap().status, 400);
}

#[tokio::test]
async fn events_stream_one_per_interval() {
    let (addr, _stop, _server) = start(config()).await;
    let began = Instant::now();
    let answer = get(addr, "/events?count=3&interval_ms=50").await.unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.headers["content-type"], "text/event-stream");
    assert!(began.elapsed() >= Duration::from_millis(100));
    let events: Vec<&str> = answer
        .body
        .split("\n\n")
        .filter(|e| !e.is_empty())
        .collect();
    assert_eq!(
        events,
        [
            "id: 0\ndata: {\"seq\":0,\"version\":\"v7\"}",
            "id: 1\ndata: {\"seq\":1,\"version\":\"v7\"}",
            "id: 2\ndata: {\"seq\":2,\"version\":\"v7\"}",
        ]
    );
}

#[tokio::test]
async fn shutdown_finishes_in_flight_and_refuses_new() {
    let (addr, stop, server) = start(config()).await;
    // Two events 300 ms apart: the request is in flight from its first event to its second.
    let in_flight = get_first_frame(addr, "/events?count=2&interval_ms=300")
        .await
        .unwrap();
    stop.send(()).unwrap();
    assert_eq!(in_flight.status, 200);
    let body = in_flight.finish().await.unwrap();
    assert_eq!(
        body,
        "id: 0\ndata: {\"seq\":0,\"version\":\"v7\"}\n\nid: 1\ndata: {\"seq\":1,\"version\":\"v7\"}\n\n"
    );
    server.await.unwrap();
    assert!(
        get(addr, "/").await.is_err(),
        "listener is closed after shutdown"
    );
}

#[tokio::test]
async fn grace_period_bounds_shutdown() {
    let cfg = SampleAppConfig {
        grace_period: Duration::from_millis(100),
        ..config()
    };
    let (addr, stop, server) = start(cfg).await;
    // In flight for 10 s after its first event, far beyond the grace period.
    let in_flight = get_first_frame(addr, "/events?count=2&interval_ms=10000")
        .await
        .unwrap();
    let began = Instant::now();
    stop.send(()).unwrap();
    server.await.unwrap();
    assert!(began.elapsed() < Duration::from_secs(2));
    drop(in_flight);
}
