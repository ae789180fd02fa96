#![allow(dead_code)] // Shared by every test module; not each uses every helper.

//! `TestApp`: the real router on a random loopback port, over the fresh database that
//! `#[tokio::test]` created for this test.

use std::{collections::HashMap, sync::Arc};

use esim_gateway::{
    AppShared, AppState, build_app, config::Config, telemetry, vendors::registry::Vendors,
};
use serde_json::{Value, json};
use sqlx::PgPool;

use crate::test_db::TestDb;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";

pub struct TestApp {
    pub addr: std::net::SocketAddr,
    pub client: reqwest::Client,
    pub pool: PgPool,
    /// The state the server runs with (same pool, config and vendors).
    pub state: AppState,
    server: tokio::task::JoinHandle<()>,
    /// Dropped last: removes the test's database.
    db: Arc<TestDb>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

pub struct Storefront {
    pub id: String,
    pub api_key: String,
    pub test_api_key: String,
    pub live_api_key: String,
    pub webhook_secret: String,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(&[]).await
    }

    pub async fn spawn_with(env: &[(&str, &str)]) -> TestApp {
        Self::spawn_full(env, Vendors::default()).await
    }

    /// The app with these vendors enabled (sandbox simulators or scripted test vendors).
    pub async fn spawn_full(env: &[(&str, &str)], vendors: Vendors) -> TestApp {
        Self::spawn_on(Arc::new(TestDb::new().await), env, vendors).await
    }

    /// Another app on an existing test database (a restart: same data, new process state).
    pub async fn spawn_on(db: Arc<TestDb>, env: &[(&str, &str)], vendors: Vendors) -> TestApp {
        Self::spawn_modes(db, env, Vendors::default(), vendors).await
    }

    /// The app with both vendor sets: `live` for `sk_live_` keys, `test` for `sk_test_` ones.
    pub async fn spawn_modes(
        db: Arc<TestDb>,
        env: &[(&str, &str)],
        live: Vendors,
        test: Vendors,
    ) -> TestApp {
        let pool = db.pool.clone();
        Self::spawn_with_pool(db, pool, env, live, test).await
    }

    /// A second replica of this app: same database, its own connection pool and in-memory
    /// caches, no vendors (it hears of other replicas' syncs only through Postgres).
    pub async fn spawn_replica(&self) -> TestApp {
        let options = (*self.pool.connect_options()).clone();
        let pool = sqlx::postgres::PgPoolOptions::new()
            .max_connections(5)
            .connect_with(options)
            .await
            .expect("second pool on the test database");
        Self::spawn_with_pool(self.db(), pool, &[], Vendors::default(), Vendors::default()).await
    }

    async fn spawn_with_pool(
        db: Arc<TestDb>,
        pool: PgPool,
        env: &[(&str, &str)],
        live: Vendors,
        test: Vendors,
    ) -> TestApp {
        let mut vars: HashMap<String, String> = HashMap::from([
            ("ADMIN_TOKEN".to_string(), ADMIN_TOKEN.to_string()),
            ("BIND_ADDR".to_string(), "127.0.0.1:0".to_string()),
        ]);
        for (k, v) in env {
            vars.insert(k.to_string(), v.to_string());
        }
        let config = Config::from_lookup(&move |k| vars.get(k).cloned()).expect("test config");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = AppState::new(AppShared {
            pool: pool.clone(),
            config: Arc::new(config),
            metrics: telemetry::metrics_handle(),
            live_vendors: Arc::new(live),
            test_vendors: Arc::new(test),
            cache: esim_gateway::cache::ReplicaCache::new(pool.clone()),
        });
        let state_for_test = state.clone();
        let limits = state.config.server;
        let app = build_app(state);
        let server = tokio::spawn(async move {
            esim_gateway::serve_with(listener, app, limits, std::future::pending())
                .await
                .unwrap();
        });
        TestApp {
            addr,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            pool,
            state: state_for_test,
            server,
            db,
        }
    }

    pub fn db(&self) -> Arc<TestDb> {
        self.db.clone()
    }

    /// Refuses (`false`) or accepts again (`true`) every connection to this app's database;
    /// refusing also ends the open ones, so anything that sends a statement fails.
    pub async fn allow_database(&self, allow: bool) {
        use sqlx::{Connection, Executor};
        let db = self.db.name.clone();
        let options = (*self.pool.connect_options()).clone().database("postgres");
        let mut admin = sqlx::PgConnection::connect_with(&options).await.unwrap();
        admin
            .execute(format!(r#"ALTER DATABASE "{db}" ALLOW_CONNECTIONS {allow}"#).as_str())
            .await
            .unwrap();
        if !allow {
            sqlx::query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE datname = $1 AND pid <> pg_backend_pid()",
            )
            .bind(&db)
            .execute(&mut admin)
            .await
            .unwrap();
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(self.url(path))
    }

    /// The `/metrics` page as text.
    pub async fn metrics(&self) -> String {
        self.get("/metrics")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.post(self.url(path))
    }

    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(ADMIN_TOKEN)
    }

    /// `GET path` as the admin: must answer 200; its JSON body.
    pub async fn admin_json(&self, path: &str) -> serde_json::Value {
        let resp = self.admin(reqwest::Method::GET, path).send().await.unwrap();
        assert_eq!(resp.status(), 200, "GET {path}");
        resp.json().await.unwrap()
    }

    pub async fn create_storefront(&self, name: &str) -> Storefront {
        let resp = self
            .admin(reqwest::Method::POST, "/admin/storefronts")
            .json(&json!({ "name": name }))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        let body: Value = resp.json().await.unwrap();
        Storefront {
            id: body["id"].as_str().unwrap().to_string(),
            api_key: body["api_key"].as_str().unwrap().to_string(),
            test_api_key: body["test_api_key"].as_str().unwrap().to_string(),
            live_api_key: body["live_api_key"].as_str().unwrap().to_string(),
            webhook_secret: body["webhook_secret"].as_str().unwrap().to_string(),
        }
    }
}

/// Asserts the contract's error shape and returns the error code.
pub async fn assert_error_shape(resp: reqwest::Response, status: u16) -> String {
    assert_eq!(resp.status().as_u16(), status, "status");
    let header_id = resp
        .headers()
        .get("x-request-id")
        .expect("x-request-id header")
        .to_str()
        .unwrap()
        .to_string();
    let ct = resp
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(ct.starts_with("application/json"), "content-type {ct}");
    let body: Value = resp.json().await.expect("JSON error body");
    let err = &body["error"];
    assert_eq!(err["request_id"].as_str().unwrap(), header_id);
    assert!(!err["message"].as_str().unwrap().is_empty());
    let code = err["code"].as_str().unwrap().to_string();
    assert!(
        code.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
        "code {code} is snake_case"
    );
    code
}
