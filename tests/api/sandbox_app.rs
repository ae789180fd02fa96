//! The gateway in front of the five sandbox vendors on loopback ports, with its background
//! workers running, the catalogues synced and one storefront ready.

use esim_gateway::domain::secret::ExposeSecret;
use std::{sync::Arc, time::Duration};

use esim_gateway::{
    catalog::pricing::Pricing,
    ordering::Ctx,
    sandbox::{Fault, SimCore, SimSettings},
    vendors::{
        AdapterOptions, VendorId,
        registry::{VendorMode, Vendors},
        sandbox::Sandbox,
    },
    workers::{catalog_sync::sync_all, outbox::OutboxWorker, provisioner},
};
use serde_json::Value;
use tokio::task::JoinHandle;

use crate::{
    helpers::{Storefront, TestApp},
    test_db::TestDb,
};

/// Adapter timeout in tests: short, so "respond after the timeout" faults are quick.
pub const VENDOR_TIMEOUT: Duration = Duration::from_millis(1500);

pub struct SandboxApp {
    pub app: TestApp,
    pub sandbox: Arc<Sandbox>,
    pub sf: Storefront,
    workers: Vec<JoinHandle<()>>,
}

impl Drop for SandboxApp {
    fn drop(&mut self) {
        for w in &self.workers {
            w.abort();
        }
    }
}

/// A set of the five simulators, without callbacks until a gateway gives them its URL.
async fn simulators(settings: SimSettings) -> Arc<Sandbox> {
    Arc::new(
        Sandbox::start(settings, None)
            .await
            .expect("simulators start"),
    )
}

const ENV: &[(&str, &str)] = &[("PROVISION_RETRY_BASE", "100ms"), ("MARKUP_PERCENT", "20")];

impl SandboxApp {
    pub async fn start() -> SandboxApp {
        Self::start_with(SimSettings::fast(), ENV).await
    }

    pub async fn start_with(settings: SimSettings, env: &[(&str, &str)]) -> SandboxApp {
        let sandbox = simulators(settings).await;
        let db = Arc::new(TestDb::new().await);
        let app = Self::app_on(&sandbox, db, env).await;
        let sf = app.create_storefront("Sandbox Shop").await;
        sync_all(
            &app.pool,
            &app.state.test_vendors,
            &Pricing::from_config(&app.state.config),
        )
        .await;
        let workers = Self::workers(&app);
        SandboxApp {
            app,
            sandbox,
            sf,
            workers,
        }
    }

    /// The gateway with both modes: `sandbox` (its built-in simulators) serves test mode,
    /// and a second, separately started set of simulators stands in for the live vendors
    /// (configured with `VendorMode::Live` like real credentials). Both catalogues synced.
    pub async fn start_both() -> (SandboxApp, Arc<Sandbox>) {
        let settings = SimSettings::fast();
        let sandbox = simulators(settings).await;
        let live = simulators(settings).await;
        let opts = AdapterOptions {
            timeout: VENDOR_TIMEOUT,
        };
        let live_vendors = Vendors::from_credentials(&live.credentials, &opts, VendorMode::Live);
        let app = TestApp::spawn_modes(
            Arc::new(TestDb::new().await),
            ENV,
            live_vendors,
            sandbox.vendors(&opts),
        )
        .await;
        let base = url::Url::parse(&app.url("/")).unwrap();
        sandbox.set_webhook_base(Some(&base));
        live.set_webhook_base(Some(&base));
        let sf = app.create_storefront("Two Mode Shop").await;
        let pricing = Pricing::from_config(&app.state.config);
        sync_all(&app.pool, &app.state.test_vendors, &pricing).await;
        sync_all(&app.pool, &app.state.live_vendors, &pricing).await;
        let workers = Self::workers(&app);
        (
            SandboxApp {
                app,
                sandbox,
                sf,
                workers,
            },
            live,
        )
    }

    async fn app_on(sandbox: &Sandbox, db: Arc<TestDb>, env: &[(&str, &str)]) -> TestApp {
        let vendors = sandbox.vendors(&AdapterOptions {
            timeout: VENDOR_TIMEOUT,
        });
        let app = TestApp::spawn_on(db, env, vendors).await;
        let base = url::Url::parse(&app.url("/")).unwrap();
        sandbox.set_webhook_base(Some(&base));
        app
    }

    fn workers(app: &TestApp) -> Vec<JoinHandle<()>> {
        vec![
            provisioner::spawn(Ctx::from_state(&app.state)),
            OutboxWorker::new(
                app.pool.clone(),
                Duration::from_millis(100),
                app.state.config.sandbox,
            )
            .spawn(),
        ]
    }

    /// A new gateway process on the same database and sandbox: the old one's server and
    /// workers stop first, mid-whatever-they-were-doing.
    pub async fn restart(self) -> SandboxApp {
        let SandboxApp {
            app,
            sandbox,
            sf,
            workers,
        } = &self;
        for w in workers {
            w.abort();
        }
        let db = app.db();
        let sandbox = sandbox.clone();
        let sf = Storefront {
            id: sf.id.clone(),
            api_key: sf.api_key.clone(),
            test_api_key: sf.test_api_key.clone(),
            live_api_key: sf.live_api_key.clone(),
            webhook_secret: sf.webhook_secret.clone(),
        };
        drop(self);
        let app = Self::app_on(&sandbox, db, ENV).await;
        let workers = Self::workers(&app);
        SandboxApp {
            app,
            sandbox,
            sf,
            workers,
        }
    }

    /// The simulated eSIM Go account's API key, which also signs its callbacks.
    pub fn esimgo_api_key(&self) -> String {
        self.sandbox
            .credentials
            .esimgo
            .as_ref()
            .expect("eSIM Go is simulated")
            .api_key
            .expose_secret()
            .to_string()
    }

    /// The simulated eSIMfx account's webhook token, the `token` header of its callbacks.
    pub fn esimfx_webhook_token(&self) -> String {
        self.sandbox
            .credentials
            .esimfx
            .as_ref()
            .and_then(|c| c.webhook_token.as_ref())
            .expect("eSIMfx is simulated with a webhook token")
            .expose_secret()
            .to_string()
    }

    pub fn core(&self, v: VendorId) -> &SimCore {
        self.sandbox.core(v)
    }

    pub fn fault(&self, v: VendorId, op: &str, fault: Fault) {
        self.core(v).faults.inject(op, fault);
    }

    pub async fn post_order(&self, key: &str, body: &Value) -> (u16, Value) {
        let resp = self
            .app
            .post("/v1/orders")
            .bearer_auth(&self.sf.api_key)
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap())
    }

    pub async fn get(&self, path: &str) -> Value {
        let resp = self
            .app
            .get(path)
            .bearer_auth(&self.sf.api_key)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "GET {path}");
        resp.json().await.unwrap()
    }

    pub async fn admin_get(&self, path: &str) -> Value {
        self.app.admin_json(path).await
    }

    /// Polls the order until it leaves `pending`/`provisioning` (or the time is up).
    pub async fn settle(&self, order_id: &str, within: Duration) -> Value {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let o = self.get(&format!("/v1/orders/{order_id}")).await;
            let status = o["status"].as_str().unwrap().to_string();
            if !matches!(status.as_str(), "pending" | "provisioning")
                || tokio::time::Instant::now() >= deadline
            {
                return o;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The admin view of an order (vendor, cost, attempts).
    pub async fn admin_order(&self, order_id: &str) -> Value {
        let list = self.admin_get("/admin/orders?limit=200").await;
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["id"] == order_id)
            .cloned()
            .unwrap_or_else(|| panic!("order {order_id} not in /admin/orders"))
    }

    /// The plan's offers, cheapest first.
    pub async fn ranking(&self, plan_id: &str) -> Vec<VendorId> {
        let offers = self
            .admin_get(&format!("/admin/plans/{plan_id}/offers"))
            .await;
        offers["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["vendor"].as_str().unwrap().parse().unwrap())
            .collect()
    }

    /// Orders each simulator received for this order id.
    pub fn vendor_orders_for(&self, order_id: &str) -> Vec<(VendorId, usize)> {
        self.sandbox.orders_for(order_id)
    }

    /// A plan sold by at least `min_vendors` vendors whose cheapest is `cheapest` (if given).
    pub async fn plan_with(
        &self,
        min_vendors: usize,
        cheapest: Option<VendorId>,
    ) -> (String, Vec<VendorId>) {
        let plans = self.get("/v1/plans?country=JP&limit=200").await;
        let mut ids: Vec<String> = plans["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap().to_string())
            .collect();
        let more = self.get("/v1/plans?limit=200").await;
        ids.extend(
            more["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["id"].as_str().unwrap().to_string()),
        );
        for id in ids {
            let ranking = self.ranking(&id).await;
            let mut distinct = ranking.clone();
            distinct.dedup();
            if distinct.len() >= min_vendors && cheapest.is_none_or(|c| ranking.first() == Some(&c))
            {
                return (id, ranking);
            }
        }
        panic!("no plan with {min_vendors} vendors and cheapest {cheapest:?}");
    }

    /// A single-country plan this vendor has an offer for.
    pub async fn plan_carried_by(&self, vendor: VendorId) -> String {
        let plans = self.get("/v1/plans?country=JP&limit=200").await;
        for p in plans["data"].as_array().unwrap() {
            let id = p["id"].as_str().unwrap();
            if self.ranking(id).await.contains(&vendor) {
                return id.to_string();
            }
        }
        panic!("{vendor} sells nothing for Japan");
    }
}
