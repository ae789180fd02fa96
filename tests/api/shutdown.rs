//! Graceful shutdown: a request already being received when the signal arrives still gets
//! its full answer; new connections are refused afterwards.

use std::{sync::Arc, time::Duration};

use esim_gateway::{AppShared, AppState, build_app, config::Config, telemetry};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::oneshot,
};

use crate::{helpers::ADMIN_TOKEN, test_db::TestDb};

#[tokio::test]
async fn in_flight_request_finishes_after_shutdown_signal() {
    let db = TestDb::new().await;
    let config = Config::from_lookup(&|k| match k {
        "ADMIN_TOKEN" => Some(ADMIN_TOKEN.to_string()),
        _ => None,
    })
    .unwrap();
    let state = AppState::new(AppShared {
        pool: db.pool.clone(),
        config: Arc::new(config),
        metrics: telemetry::metrics_handle(),
        live_vendors: Default::default(),
        test_vendors: Default::default(),
        cache: esim_gateway::cache::ReplicaCache::new(db.pool.clone()),
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(esim_gateway::serve(listener, build_app(state), async {
        let _ = stopped.await;
    }));

    // Send the headers and half of the body, then signal shutdown mid-request.
    let body = br#"{"name":"Shutdown Shop"}"#;
    let (first, rest) = body.split_at(10);
    let mut conn = TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST /admin/storefronts HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(first).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    conn.write_all(rest).await.unwrap();

    let mut response = String::new();
    conn.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 201"), "{response}");
    assert!(response.contains("\"api_key\""), "{response}");

    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("server stops once the request is done")
        .unwrap()
        .unwrap();
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "no longer listening"
    );
}
