//! Connection limits and protocol hygiene: slow or idle clients cannot hold sockets, the
//! connection cap holds, ambiguous headers are refused and request ids are bounded.

use std::time::{Duration, Instant};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::helpers::{ADMIN_TOKEN, TestApp, assert_error_shape};

/// Reads until the server closes the connection (EOF or reset) and returns what it sent.
async fn read_until_closed(conn: &mut TcpStream, within: Duration) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, conn.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(got),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn a_connection_that_never_ends_its_headers_is_closed_after_the_timeout() {
    let app = TestApp::spawn_with(&[
        ("HEADER_READ_TIMEOUT", "300ms"),
        ("KEEP_ALIVE_TIMEOUT", "5s"),
    ])
    .await;
    let mut conn = TcpStream::connect(app.addr).await.unwrap();
    let started = Instant::now();
    conn.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // Trickling more header lines does not extend the deadline.
    let trickle = async {
        for i in 0..30 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if conn
                .write_all(format!("X-Slow-{i}: y\r\n").as_bytes())
                .await
                .is_err()
            {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_millis(600), trickle).await;
    let closed = read_until_closed(&mut conn, Duration::from_secs(3)).await;
    let elapsed = started.elapsed();
    assert!(closed.is_some(), "still open after {elapsed:?}");
    assert!(
        elapsed >= Duration::from_millis(290),
        "closed too early: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_millis(1500),
        "closed late: {elapsed:?}"
    );

    // A connection that sends nothing at all is closed too.
    let mut silent = TcpStream::connect(app.addr).await.unwrap();
    assert!(
        read_until_closed(&mut silent, Duration::from_secs(2))
            .await
            .is_some()
    );
    // And the server still answers.
    assert_eq!(app.get("/healthz").send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed_after_their_own_timeout() {
    let app = TestApp::spawn_with(&[
        ("HEADER_READ_TIMEOUT", "300ms"),
        ("KEEP_ALIVE_TIMEOUT", "1200ms"),
    ])
    .await;
    let mut conn = TcpStream::connect(app.addr).await.unwrap();
    let request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut buf = [0u8; 4096];
    conn.write_all(request).await.unwrap();
    let n = conn.read(&mut buf).await.unwrap();
    assert!(buf[..n].starts_with(b"HTTP/1.1 200"));
    // Idle for longer than the header timeout: still open, keep-alive has its own limit.
    tokio::time::sleep(Duration::from_millis(600)).await;
    conn.write_all(request).await.unwrap();
    let n = conn.read(&mut buf).await.unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    let idle_from = Instant::now();
    assert!(
        read_until_closed(&mut conn, Duration::from_secs(4))
            .await
            .is_some()
    );
    let idle = idle_from.elapsed();
    assert!(
        idle >= Duration::from_millis(1100) && idle < Duration::from_millis(2500),
        "{idle:?}"
    );
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_for_a_free_slot() {
    let app =
        TestApp::spawn_with(&[("MAX_CONNECTIONS", "1"), ("HEADER_READ_TIMEOUT", "10s")]).await;
    let hog = TcpStream::connect(app.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let client = app.client.clone();
    let url = app.url("/healthz");
    let waiting = tokio::spawn(async move { client.get(url).send().await.map(|r| r.status()) });
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(!waiting.is_finished(), "served beyond MAX_CONNECTIONS");
    drop(hog);
    let status = tokio::time::timeout(Duration::from_secs(3), waiting)
        .await
        .expect("served once a slot is free")
        .unwrap()
        .unwrap();
    assert_eq!(status, 200);
}

#[tokio::test]
async fn duplicate_singleton_headers_are_refused() {
    let app = TestApp::spawn().await;
    let resp = app
        .get("/admin/storefronts")
        .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
        .header("authorization", "Bearer someone-else-entirely")
        .send()
        .await
        .unwrap();
    assert_eq!(assert_error_shape(resp, 400).await, "duplicate_header");
    let resp = app
        .post("/v1/orders")
        .bearer_auth("sk_x")
        .header("idempotency-key", "a")
        .header("idempotency-key", "b")
        .json(&serde_json::json!({"plan_id": "jp-1gb-7d"}))
        .send()
        .await
        .unwrap();
    assert_eq!(assert_error_shape(resp, 400).await, "duplicate_header");
}

#[tokio::test]
async fn client_request_ids_are_kept_only_when_short_and_printable() {
    let app = TestApp::spawn().await;
    let resp = app
        .get("/nowhere")
        .header("x-request-id", "shop-req-42")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "shop-req-42");
    let long = "r".repeat(20_000);
    for bad in [
        reqwest::header::HeaderValue::from_str(&long).unwrap(),
        reqwest::header::HeaderValue::from_bytes(b"caf\xe9-\xff").unwrap(),
        reqwest::header::HeaderValue::from_static("has space"),
    ] {
        let resp = app
            .get("/nowhere")
            .header("x-request-id", bad.clone())
            .send()
            .await
            .unwrap();
        let echoed = resp.headers()["x-request-id"].to_str().unwrap().to_string();
        assert_ne!(echoed.as_bytes(), bad.as_bytes());
        assert!(!echoed.is_empty() && echoed.len() <= 128, "{echoed}");
        // The body carries the same (replacement) id as the header.
        assert_eq!(assert_error_shape(resp, 404).await, "not_found");
    }
    let resp = app
        .get("/nowhere")
        .header("x-request-id", "one")
        .header("x-request-id", "two")
        .send()
        .await
        .unwrap();
    let echoed = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    assert!(echoed != "one" && echoed != "two");
}

#[tokio::test]
async fn a_chunked_body_over_the_limit_is_413() {
    let app = TestApp::spawn().await;
    let mut conn = TcpStream::connect(app.addr).await.unwrap();
    let head = format!(
        "POST /admin/storefronts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {ADMIN_TOKEN}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let chunk = format!("{:x}\r\n{}\r\n", 16 * 1024, " ".repeat(16 * 1024));
    for _ in 0..20 {
        if conn.write_all(chunk.as_bytes()).await.is_err() {
            break;
        }
    }
    let _ = conn.write_all(b"0\r\n\r\n").await;
    let got = read_until_closed(&mut conn, Duration::from_secs(5))
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("payload_too_large"), "{text}");
}

#[tokio::test]
async fn oversized_uris_and_header_sections_get_the_error_shape() {
    let app = TestApp::spawn().await;
    // Just over the 8 KiB URI limit, unauthenticated and authenticated routes alike.
    let long_query = format!("/v1/plans?country={}", "FR,".repeat(3000));
    for path in ["/healthz?x=".to_string() + &"a".repeat(9000), long_query] {
        let resp = app
            .get(&path)
            .bearer_auth("sk_x")
            .header("x-request-id", "shop-req-uri")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.headers()["x-request-id"], "shop-req-uri");
        assert_eq!(assert_error_shape(resp, 414).await, "uri_too_long");
    }
    // A URI under the limit is served.
    let path = format!("/healthz?x={}", "a".repeat(7000));
    assert_eq!(app.get(&path).send().await.unwrap().status(), 200);

    // Over 32 KiB of headers, and over 100 header fields.
    let mut big = app.get("/healthz");
    for i in 0..4 {
        big = big.header(format!("x-filler-{i}"), "v".repeat(10_000));
    }
    let resp = big.send().await.unwrap();
    assert!(resp.headers().contains_key("x-request-id"));
    assert_eq!(assert_error_shape(resp, 431).await, "headers_too_large");
    // The same over HTTP/2 (hyper's own header-list limit sits above ours there too).
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let mut big = h2.get(app.url("/healthz"));
    for i in 0..4 {
        big = big.header(format!("x-filler-{i}"), "v".repeat(10_000));
    }
    let resp = big.send().await.unwrap();
    assert_eq!(resp.version(), reqwest::Version::HTTP_2);
    assert_eq!(assert_error_shape(resp, 431).await, "headers_too_large");
    let mut many = app.get("/healthz");
    for i in 0..120 {
        many = many.header(format!("x-field-{i}"), "v");
    }
    assert_eq!(
        assert_error_shape(many.send().await.unwrap(), 431).await,
        "headers_too_large"
    );
}

/// Beyond hyper's own buffer, or when the request cannot be parsed as HTTP at all, there is
/// no request to route: hyper answers with an empty body and closes the connection.
#[tokio::test]
async fn requests_hyper_cannot_take_get_its_empty_answer_and_are_closed() {
    let app = TestApp::spawn().await;
    let addr = app.addr;
    let raw = |req: Vec<u8>| async move {
        let mut conn = TcpStream::connect(addr).await.unwrap();
        let _ = conn.write_all(&req).await;
        let got = read_until_closed(&mut conn, Duration::from_secs(5))
            .await
            .expect("closed");
        String::from_utf8_lossy(&got).to_string()
    };
    let huge = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Huge: {}\r\n\r\n",
        "h".repeat(80 * 1024)
    );
    let text = raw(huge.into_bytes()).await;
    assert!(text.starts_with("HTTP/1.1 431"), "{text}");
    let text = raw(b"GET /healthz HTTP/1.1\r\nHost x\r\n\r\n".to_vec()).await;
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    // The server still answers.
    assert_eq!(app.get("/healthz").send().await.unwrap().status(), 200);
}
