//! The front door of the gateway replicas, as a load balancer would be: storefront requests
//! and vendor callbacks both come through it, and it forwards each to a replica that is up.
//! A replica that refuses the connection is skipped (nothing was sent); a replica that dies
//! mid-request makes a 502, which the storefront retries with its Idempotency-Key.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use axum::{
    Router,
    body::Body,
    extract::{Request, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};

pub struct Front {
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Front {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct Ctx {
    /// Every replica's port, up or not: a crash is not announced, the port just stops
    /// answering.
    ports: Arc<Vec<u16>>,
    next: Arc<AtomicUsize>,
    client: reqwest::Client,
}

impl Front {
    pub async fn start(ports: Vec<u16>) -> Front {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let ctx = Ctx {
            ports: Arc::new(ports),
            next: Arc::default(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .pool_idle_timeout(Duration::from_secs(2))
                .build()
                .unwrap(),
        };
        let app = Router::new().fallback(forward).with_state(ctx);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Front {
            url: format!("http://{addr}"),
            task,
        }
    }
}

async fn forward(State(ctx): State<Ctx>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 16 << 20).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    let ports = &ctx.ports;
    let start = ctx.next.fetch_add(1, Ordering::Relaxed);
    let path = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    for i in 0..ports.len() {
        let port = ports[(start + i) % ports.len()];
        let mut rb = ctx
            .client
            .request(
                parts.method.clone(),
                format!("http://127.0.0.1:{port}{path}"),
            )
            .body(body.clone());
        for (name, value) in &parts.headers {
            if name != header::HOST && name != header::CONTENT_LENGTH {
                rb = rb.header(name, value);
            }
        }
        match rb.send().await {
            Ok(resp) => {
                let status = resp.status();
                let headers = resp.headers().clone();
                let Ok(bytes) = resp.bytes().await else {
                    return StatusCode::BAD_GATEWAY.into_response();
                };
                let mut out = Response::new(Body::from(bytes));
                *out.status_mut() = status;
                for (name, value) in &headers {
                    if name != header::TRANSFER_ENCODING && name != header::CONTENT_LENGTH {
                        out.headers_mut().append(name, value.clone());
                    }
                }
                return out;
            }
            // Nothing reached that replica: another one may take the request.
            Err(e) if e.is_connect() => continue,
            Err(_) => return StatusCode::BAD_GATEWAY.into_response(),
        }
    }
    StatusCode::BAD_GATEWAY.into_response()
}
