//! A fresh database per test, cloned from a migrated template (`CREATE DATABASE … TEMPLATE`),
//! which is much faster than migrating every test's database. The template's name carries a
//! hash of the migrations, so changing a migration builds a new template.
//!
//! Server: `TEST_DATABASE_URL`, else `DATABASE_URL`, else the local default; only its
//! server part is used.

use std::hash::{Hash, Hasher};

use sqlx::{Connection, Executor, PgConnection, PgPool, postgres::PgPoolOptions};

pub struct TestDb {
    pub pool: PgPool,
    pub name: String,
    server: url::Url,
}

fn server_url() -> url::Url {
    let raw = std::env::var("TEST_DATABASE_URL")
        .or_else(|_| std::env::var("DATABASE_URL"))
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string());
    url::Url::parse(&raw).expect("TEST_DATABASE_URL is a URL")
}

fn with_db(server: &url::Url, db: &str) -> String {
    let mut u = server.clone();
    u.set_path(db);
    u.to_string()
}

fn template_name() -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for m in esim_gateway::store::MIGRATOR.iter() {
        m.version.hash(&mut h);
        m.checksum.hash(&mut h);
    }
    format!("esim_tmpl_{:016x}", h.finish())
}

async fn admin_conn(server: &url::Url) -> PgConnection {
    PgConnection::connect(&with_db(server, "postgres"))
        .await
        .expect("PostgreSQL is reachable for tests (see README: Running the tests)")
}

/// Drops databases left by test processes that no longer run (a panicking test skips drop).
async fn sweep_stale(conn: &mut PgConnection) {
    let names: Vec<String> =
        sqlx::query_scalar("SELECT datname FROM pg_database WHERE datname LIKE 'esim\\_test\\_%'")
            .fetch_all(&mut *conn)
            .await
            .unwrap_or_default();
    for name in names {
        let pid = name.split('_').nth(2).and_then(|p| p.parse::<u32>().ok());
        let alive = pid.is_some_and(|p| std::path::Path::new(&format!("/proc/{p}")).exists());
        if !alive {
            let _ = conn
                .execute(format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#).as_str())
                .await;
        }
    }
}

async fn ensure_template(server: &url::Url) -> String {
    let template = template_name();
    let mut conn = admin_conn(server).await;
    // Serialises template creation across parallel test processes.
    conn.execute("SELECT pg_advisory_lock(7261001)")
        .await
        .unwrap();
    let exists: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)")
            .bind(&template)
            .fetch_one(&mut conn)
            .await
            .unwrap();
    if !exists {
        sweep_stale(&mut conn).await;
        let building = format!("{template}_building");
        conn.execute(format!(r#"DROP DATABASE IF EXISTS "{building}" WITH (FORCE)"#).as_str())
            .await
            .unwrap();
        conn.execute(format!(r#"CREATE DATABASE "{building}""#).as_str())
            .await
            .unwrap();
        {
            let mut c = PgConnection::connect(&with_db(server, &building))
                .await
                .unwrap();
            esim_gateway::store::MIGRATOR
                .run(&mut c)
                .await
                .expect("migrations apply");
            c.close().await.unwrap();
        }
        conn.execute(format!(r#"ALTER DATABASE "{building}" RENAME TO "{template}""#).as_str())
            .await
            .unwrap();
    }
    conn.execute("SELECT pg_advisory_unlock(7261001)")
        .await
        .unwrap();
    template
}

impl TestDb {
    /// The database's URL, for a gateway in a process of its own (tests/crash.rs).
    #[allow(dead_code)]
    pub fn url(&self) -> String {
        with_db(&self.server, &self.name)
    }

    pub async fn new() -> TestDb {
        static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let server = server_url();
        let template = ensure_template(&server).await;
        let name = format!(
            "esim_test_{}_{}_{}",
            std::process::id(),
            SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            ulid::Ulid::new().to_string().to_lowercase()
        );
        let mut conn = admin_conn(&server).await;
        conn.execute(format!(r#"CREATE DATABASE "{name}" TEMPLATE "{template}""#).as_str())
            .await
            .expect("create test database");
        conn.close().await.ok();
        let pool = PgPoolOptions::new()
            .max_connections(10)
            .connect(&with_db(&server, &name))
            .await
            .unwrap();
        TestDb { pool, name, server }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let server = self.server.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime; do the async cleanup on a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let mut conn = admin_conn(&server).await;
                let _ = conn
                    .execute(format!(r#"DROP DATABASE IF EXISTS "{name}" WITH (FORCE)"#).as_str())
                    .await;
            });
        })
        .join();
    }
}
