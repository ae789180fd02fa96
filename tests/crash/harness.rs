//! The crash harness: the real binary in live mode against the simulators running in a
//! process of their own (`esim-gateway sandbox --vendors-only`), a storefront that retries
//! every request with its Idempotency-Key until it gets a final answer, SIGKILLs at chosen
//! moments, and an audit of the vendors' own records against the gateway's orders.

use std::{
    collections::{BTreeMap, BTreeSet},
    fmt,
    fs::OpenOptions,
    path::{Path, PathBuf},
    process::{Child, Command},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use esim_gateway::{sandbox::runtime::VendorsFile, vendors::VendorId};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{front::Front, test_db::TestDb};

const ADMIN: &str = "crash-admin-token-0123456789";
const BIN: &str = env!("CARGO_BIN_EXE_esim-gateway");

/// When a kill lands.
#[derive(Debug, Clone, Copy)]
pub enum KillAt {
    /// Once this many orders have been sent: purchases are in flight (vendor answers are
    /// slowed by injected delays, so the vendor has acted and the gateway has not heard).
    Sent(usize),
    /// Every order sent, some still waiting for the vendor to allocate profiles.
    Provisioning,
    /// While vendor callbacks are being delivered (right after one more arrives).
    Callbacks,
}

#[derive(Debug, Clone, Copy)]
pub struct Kill {
    pub at: KillAt,
    /// Start the killed replica again on the same port and database.
    pub restart: bool,
}

#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: &'static str,
    pub orders: usize,
    pub replicas: usize,
    pub kills: Vec<Kill>,
    /// Storefront requests in flight at once.
    pub concurrency: usize,
    /// How late the vendors answer the slowed order calls, and how many of each vendor's
    /// order calls are slowed.
    pub slow_answer: Duration,
    pub slow_orders_per_vendor: u32,
    /// Vendor allocation time (asynchronous vendors) and callback delay.
    pub provisioning_delay: Duration,
    pub callback_delay: Duration,
    /// `ORDER_LEASE` of the gateways (`None`: their default): how long a dead process's
    /// orders wait before another takes them over.
    pub order_lease: Option<Duration>,
    /// `ORDER_ATTENTION_AFTER` of the gateways.
    pub attention_after: Duration,
    /// After the last kill, every order must be terminal or flagged within this, and no
    /// storefront request may wait longer than this for its final answer.
    pub settle_within: Duration,
}

impl Scenario {
    /// A burst over all five vendors with kills spread over purchase, provisioning and
    /// callbacks (the bench scales it with `CRASH_*` variables).
    pub fn spread(name: &'static str, orders: usize, replicas: usize, kills: usize) -> Self {
        // Kills during the burst (purchases in flight), then, given three or more, one while
        // orders wait for their profiles and one while callbacks arrive.
        let late = if kills >= 3 { 2 } else { 0 };
        let during = kills - late;
        let mut plan: Vec<Kill> = (0..during)
            .map(|j| Kill {
                at: KillAt::Sent((j + 1) * orders / (during + 1)),
                restart: true,
            })
            .collect();
        if late > 0 {
            plan.push(Kill {
                at: KillAt::Provisioning,
                restart: true,
            });
            plan.push(Kill {
                at: KillAt::Callbacks,
                restart: true,
            });
        }
        Scenario {
            name,
            orders,
            replicas,
            kills: plan,
            concurrency: 8,
            slow_answer: Duration::from_millis(1500),
            slow_orders_per_vendor: (orders / 5 / 2).max(1) as u32,
            provisioning_delay: Duration::from_millis(1500),
            callback_delay: Duration::from_millis(300),
            order_lease: None,
            attention_after: Duration::from_secs(20),
            settle_within: Duration::from_secs(45),
        }
    }
}

/// What the storefront and the vendors saw.
#[derive(Debug, Default)]
pub struct Report {
    pub orders: usize,
    pub replicas: usize,
    pub kills: Vec<String>,
    pub vendor_orders: usize,
    /// Gateway orders with more than one vendor order.
    pub doubled: Vec<String>,
    /// Vendor orders no live gateway order accounts for (paid, never delivered).
    pub lost: Vec<String>,
    /// Vendor orders no gateway order could claim for certain, each matching an order
    /// flagged for attention with an unresolved attempt for that bundle at that vendor (eSIM
    /// Go orders carry no client reference: when a kill lands between its order and our
    /// tagging, reconciliation may find several candidates and must not guess). An operator
    /// is told; not a silent loss.
    pub parked: Vec<String>,
    /// Orders neither terminal nor flagged for attention when time was up.
    pub stuck: Vec<String>,
    /// Completed orders without a vendor order behind them.
    pub unbacked: Vec<String>,
    /// One vendor order or eSIM claimed by several gateway orders (two customers, one eSIM).
    pub shared: Vec<String>,
    /// Requests that never got a final answer, or got different orders for one key.
    pub unanswered: Vec<String>,
    pub split: Vec<String>,
    /// From the last kill until every order was terminal or flagged.
    pub recovery: Option<Duration>,
    /// From the last kill until every order that ended terminal was (the others wait for
    /// an operator); measured from the end of the burst at the earliest.
    pub resolved: Option<Duration>,
    /// The bound on `recovery` and on any request's wait for its final answer.
    pub bound: Duration,
    /// Longest wait of one storefront request for its final answer (all retries).
    pub longest_answer: Duration,
    /// Answers the storefront got while retrying, by status.
    pub responses: BTreeMap<String, usize>,
    /// Vendor callback deliveries, and those that failed (a replica died under them or
    /// none was up): the vendor retries those.
    pub callbacks: usize,
    pub callbacks_failed: usize,
    pub flagged: usize,
    pub by_status: BTreeMap<String, usize>,
    pub panics: usize,
    pub logs: PathBuf,
    /// Details of every order named above, for the failure message.
    pub details: Vec<String>,
}

impl Report {
    pub fn clean(&self) -> bool {
        self.doubled.is_empty()
            && self.lost.is_empty()
            && self.stuck.is_empty()
            && self.unbacked.is_empty()
            && self.shared.is_empty()
            && self.unanswered.is_empty()
            && self.split.is_empty()
            && self.panics == 0
            && self.recovery.is_some_and(|r| r <= self.bound)
            && self.longest_answer <= self.bound
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = |d: Option<Duration>| {
            d.map(|d| format!("{:.1}s", d.as_secs_f64()))
                .unwrap_or_else(|| "never".into())
        };
        let recovery = secs(self.recovery);
        writeln!(
            f,
            "orders={} replicas={} kills={} vendor_orders={} doubled={} lost={} stuck={} \
             unbacked={} shared={} unanswered={} split={} panics={} flagged={} parked={} \
             recovery={} resolved={} longest_answer={:.1}s bound={}s",
            self.orders,
            self.replicas,
            self.kills.len(),
            self.vendor_orders,
            self.doubled.len(),
            self.lost.len(),
            self.stuck.len(),
            self.unbacked.len(),
            self.shared.len(),
            self.unanswered.len(),
            self.split.len(),
            self.panics,
            self.flagged,
            self.parked.len(),
            recovery,
            secs(self.resolved),
            self.longest_answer.as_secs_f64(),
            self.bound.as_secs(),
        )?;
        writeln!(f, "kills: {}", self.kills.join("; "))?;
        writeln!(f, "final statuses: {:?}", self.by_status)?;
        writeln!(f, "storefront saw: {:?}", self.responses)?;
        writeln!(
            f,
            "callbacks: {} delivered, {} failed",
            self.callbacks, self.callbacks_failed
        )?;
        for (what, list) in [
            ("doubled", &self.doubled),
            ("lost", &self.lost),
            ("parked", &self.parked),
            ("stuck", &self.stuck),
            ("unbacked", &self.unbacked),
            ("shared", &self.shared),
            ("unanswered", &self.unanswered),
            ("split", &self.split),
        ] {
            if !list.is_empty() {
                writeln!(f, "{what}: {}", list.join(", "))?;
            }
        }
        for d in self.details.iter().take(20) {
            writeln!(f, "  {d}")?;
        }
        write!(f, "logs: {}", self.logs.display())
    }
}

/// One order a simulator accepted, from its `/_sandbox/orders`.
#[derive(Debug, Clone, Deserialize)]
struct SimOrder {
    vendor_reference: String,
    sku: String,
    created_at: chrono::DateTime<chrono::Utc>,
    client_reference: Option<String>,
    #[serde(default)]
    iccids: Vec<String>,
    topup: bool,
    cancelled: bool,
}

/// The simulators' process.
struct VendorsProcess {
    child: Child,
    file: VendorsFile,
}

impl Drop for VendorsProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl VendorsProcess {
    async fn start(dir: &Path, callback_base: &str) -> VendorsProcess {
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("vendors.log"))
            .unwrap();
        let child = clean_command()
            .args([
                "sandbox",
                "--vendors-only",
                "--callback-base",
                callback_base,
            ])
            .arg("--state-dir")
            .arg(dir)
            .env("RUST_LOG", "warn")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let file = loop {
            if let Ok(f) = VendorsFile::read_from(dir) {
                break f;
            }
            assert!(Instant::now() < deadline, "the simulators never started");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        VendorsProcess { child, file }
    }

    fn control(&self, vendor: VendorId) -> String {
        let url = &self.file.endpoint(vendor).unwrap().control_url;
        url.trim_end_matches('/').to_string()
    }

    /// `path` of every simulator's control API, with the vendor it came from.
    async fn list_every_sim<T: serde::de::DeserializeOwned>(
        &self,
        http: &reqwest::Client,
        path: &str,
    ) -> Vec<(VendorId, T)> {
        let mut all = Vec::new();
        for v in VendorId::ALL {
            let list: Vec<T> = http
                .get(format!("{}{path}", self.control(v)))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            all.extend(list.into_iter().map(|item| (v, item)));
        }
        all
    }

    async fn orders(&self, http: &reqwest::Client) -> Vec<(VendorId, SimOrder)> {
        self.list_every_sim(http, "/_sandbox/orders").await
    }

    async fn deliveries(&self, http: &reqwest::Client) -> usize {
        self.callbacks(http).await.len()
    }

    /// Every callback delivery attempt of every simulator.
    async fn callbacks(&self, http: &reqwest::Client) -> Vec<Value> {
        let all: Vec<(VendorId, Value)> = self.list_every_sim(http, "/_sandbox/callbacks").await;
        all.into_iter().map(|(_, delivery)| delivery).collect()
    }
}

/// A clean environment: nothing of the developer's leaks into the child.
fn clean_command() -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    cmd
}

/// One gateway replica: always the same port and database, started again after a kill.
struct Replica {
    index: usize,
    port: u16,
    /// The port held (bound, not listening) until this replica's first start, so that no
    /// simulator of the vendors process started meanwhile can be given it.
    reserved: Option<tokio::net::TcpSocket>,
    child: Option<Child>,
    env: Vec<(String, String)>,
    log: PathBuf,
    starts: u32,
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

impl Replica {
    fn spawn(&mut self) {
        drop(self.reserved.take());
        self.starts += 1;
        let mut log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        use std::io::Write as _;
        let _ = writeln!(log, "=== start {} of replica {}", self.starts, self.index);
        let child = clean_command()
            .arg("serve")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .env("BIND_ADDR", format!("127.0.0.1:{}", self.port))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
    }

    /// SIGKILL: no shutdown hook runs, in-flight work stops where it is.
    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    async fn wait_ready(&self, http: &reqwest::Client) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = format!("http://127.0.0.1:{}/readyz", self.port);
        loop {
            if http
                .get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "replica {} never became ready (log {})",
                self.index,
                self.log.display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A free port, held by a bound socket that does not listen: a connection to it is refused
/// (the front skips it) and no other bind can take it until the socket is dropped.
fn reserve_port() -> (tokio::net::TcpSocket, u16) {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = socket.local_addr().unwrap().port();
    (socket, port)
}

/// The storefront's record of one order request and its retries.
#[derive(Debug, Default)]
struct Placement {
    key: String,
    plan: String,
    vendor: Option<VendorId>,
    ids: BTreeSet<String>,
    final_status: Option<u16>,
    final_body: Option<Value>,
    waited: Duration,
}

#[derive(Default)]
struct Shared {
    sent: AtomicUsize,
    answered: AtomicUsize,
    responses: Mutex<BTreeMap<String, usize>>,
}

impl Shared {
    fn saw(&self, what: String) {
        *self.responses.lock().unwrap().entry(what).or_default() += 1;
    }
}

/// Sends one order until a final answer: 2xx, or a 4xx other than "still in flight"; a
/// dropped connection, 5xx, 502 from the front or 409 `idempotency_key_in_use` is retried
/// with the same key, the way a storefront does.
async fn place(
    http: reqwest::Client,
    base: String,
    api_key: String,
    mut p: Placement,
    shared: Arc<Shared>,
    give_up: Instant,
) -> Placement {
    let started = Instant::now();
    shared.sent.fetch_add(1, Ordering::SeqCst);
    loop {
        let resp = http
            .post(format!("{base}/v1/orders"))
            .bearer_auth(&api_key)
            .header("Idempotency-Key", &p.key)
            .json(&json!({"plan_id": p.plan}))
            .send()
            .await;
        let mut pause = Duration::from_millis(250);
        match resp {
            Err(e) => shared.saw(if e.is_timeout() {
                "timeout".into()
            } else {
                "connection error".into()
            }),
            Ok(r) => {
                let status = r.status().as_u16();
                let retry_after = r
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok());
                let body: Value = r.json().await.unwrap_or(Value::Null);
                let code = body["error"]["code"].as_str().unwrap_or("").to_string();
                shared.saw(if code.is_empty() {
                    status.to_string()
                } else {
                    format!("{status} {code}")
                });
                if let Some(id) = body["id"].as_str() {
                    p.ids.insert(id.to_string());
                }
                let retry = status >= 500 || code == "idempotency_key_in_use" || status == 429;
                if !retry {
                    p.final_status = Some(status);
                    p.final_body = Some(body);
                    break;
                }
                if let Some(s) = retry_after {
                    pause = Duration::from_secs(s).min(Duration::from_secs(1));
                }
            }
        }
        if Instant::now() > give_up {
            break;
        }
        tokio::time::sleep(pause).await;
    }
    p.waited = started.elapsed();
    shared.answered.fetch_add(1, Ordering::SeqCst);
    p
}

async fn admin_get(http: &reqwest::Client, url: String) -> Value {
    let r = http.get(url).bearer_auth(ADMIN).send().await.unwrap();
    let status = r.status();
    let body = r.text().await.unwrap();
    assert!(status.is_success(), "{status}: {body}");
    serde_json::from_str(&body).unwrap()
}

/// Every order in the gateway, through the admin API (with vendor, reference and attempts).
async fn admin_orders(http: &reqwest::Client, base: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = format!("{base}/admin/orders?limit=200");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page = admin_get(http, url).await;
        all.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return all,
        }
    }
}

fn terminal(o: &Value) -> bool {
    matches!(
        o["status"].as_str(),
        Some("completed" | "failed" | "cancelled")
    )
}

/// Flagged for an operator: the admin view carries the attention flag (`attention` true
/// or an object with its reason) once the order's deadline has passed.
fn flagged(o: &Value) -> bool {
    !matches!(&o["attention"], Value::Null | Value::Bool(false))
}

/// Plans whose cheapest offer is each vendor's, a few per vendor.
async fn plans_per_vendor(
    http: &reqwest::Client,
    base: &str,
    api_key: &str,
) -> BTreeMap<VendorId, Vec<String>> {
    let mut by_vendor: BTreeMap<VendorId, Vec<String>> = BTreeMap::new();
    let mut cursor: Option<String> = None;
    'pages: loop {
        let mut url = format!("{base}/v1/plans?limit=100");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: Value = http
            .get(url)
            .bearer_auth(api_key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for plan in page["data"].as_array().unwrap() {
            let id = plan["id"].as_str().unwrap();
            let offers = admin_get(http, format!("{base}/admin/plans/{id}/offers")).await;
            let Some(v) = offers["data"][0]["vendor"].as_str() else {
                continue;
            };
            let v: VendorId = v.parse().unwrap();
            let list = by_vendor.entry(v).or_default();
            if list.len() < 3 {
                list.push(id.to_string());
            }
            if by_vendor.len() == 5 && by_vendor.values().all(|l| l.len() >= 3) {
                break 'pages;
            }
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(
        by_vendor.len(),
        5,
        "every vendor is the cheapest for some plan: {by_vendor:?}"
    );
    by_vendor
}

fn log_dir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("crash")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the scenario and audits it; the caller asserts on the report.
pub async fn run(s: &Scenario) -> Report {
    let dir = log_dir(s.name);
    let db = TestDb::new().await;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(45))
        .build()
        .unwrap();
    let (mut reserved, ports): (Vec<_>, Vec<u16>) = (0..s.replicas).map(|_| reserve_port()).unzip();
    let front = Front::start(ports.clone()).await;
    let vendors = VendorsProcess::start(&dir, &front.url).await;
    for v in VendorId::ALL {
        let r = http
            .put(format!("{}/_sandbox/settings", vendors.control(v)))
            .json(&json!({
                "provisioning_delay": s.provisioning_delay.as_millis() as u64,
                "callback_delay": s.callback_delay.as_millis() as u64,
                "callbacks_enabled": true,
            }))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }

    let mut env: Vec<(String, String)> = vendors.file.env.clone().into_iter().collect();
    env.extend(
        [
            ("DATABASE_URL", db.url()),
            ("PUBLIC_BASE_URL", front.url.clone()),
            ("ADMIN_TOKEN", ADMIN.into()),
            ("PROVISION_RETRY_BASE", "300ms".into()),
            ("CATALOG_SYNC_INTERVAL", "1h".into()),
            // An unknown outcome may take a vendor's settle time to resolve (eSIM Go: its
            // timeout plus a minute); the bound on "terminal or flagged" stands on the flag.
            (
                "ORDER_ATTENTION_AFTER",
                format!("{}ms", s.attention_after.as_millis()),
            ),
            ("LOG_FORMAT", "json".into()),
            ("RUST_LOG", "info,esim_gateway=debug,tower_http=warn".into()),
        ]
        .map(|(k, v)| (k.to_string(), v)),
    );
    if let Some(lease) = s.order_lease {
        env.push(("ORDER_LEASE".into(), format!("{}ms", lease.as_millis())));
    }
    let mut replicas: Vec<Replica> = ports
        .iter()
        .enumerate()
        .map(|(index, &port)| Replica {
            index,
            port,
            reserved: Some(reserved.remove(0)),
            child: None,
            env: env.clone(),
            log: dir.join(format!("gateway-{index}.log")),
            starts: 0,
        })
        .collect();
    // The first replica migrates and syncs the catalogues; the others join it.
    replicas[0].spawn();
    replicas[0].wait_ready(&http).await;
    let base = front.url.clone();
    let synced = Instant::now() + Duration::from_secs(30);
    loop {
        let v = admin_get(&http, format!("{base}/admin/vendors")).await;
        let all = v["data"].as_array().unwrap();
        if all.len() == 5 && all.iter().all(|v| v["last_sync_at"].is_string()) {
            break;
        }
        assert!(Instant::now() < synced, "catalogues never synced: {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for r in replicas.iter_mut().skip(1) {
        r.spawn();
    }
    for r in &replicas {
        r.wait_ready(&http).await;
    }
    let sf: Value = http
        .post(format!("{base}/admin/storefronts"))
        .bearer_auth(ADMIN)
        .json(&json!({"name": "Crash shop"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let api_key = sf["api_key"].as_str().unwrap().to_string();
    let plans = plans_per_vendor(&http, &base, &api_key).await;

    // Slow answers at every vendor, so kills land while the vendor has acted and the
    // gateway is still waiting to hear what it bought.
    for v in VendorId::ALL {
        let r = http
            .post(format!("{}/_sandbox/faults", vendors.control(v)))
            .json(&json!({
                "operation": "order",
                "fault": {"kind": "delay", "millis": s.slow_answer.as_millis() as u64},
                "times": s.slow_orders_per_vendor,
            }))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }

    let shared = Arc::new(Shared::default());
    let give_up = Instant::now() + s.settle_within + Duration::from_secs(60);
    let burst = {
        let (http, base, key, shared) =
            (http.clone(), base.clone(), api_key.clone(), shared.clone());
        let (n, concurrency) = (s.orders, s.concurrency);
        tokio::spawn(async move {
            let sem = Arc::new(tokio::sync::Semaphore::new(concurrency));
            let mut tasks = Vec::new();
            for i in 0..n {
                let vendor = VendorId::ALL[i % 5];
                let list = &plans[&vendor];
                let p = Placement {
                    key: format!("crash-{i}"),
                    plan: list[(i / 5) % list.len()].clone(),
                    vendor: Some(vendor),
                    ..Placement::default()
                };
                let permit = sem.clone().acquire_owned().await.unwrap();
                let (http, base, key, shared) =
                    (http.clone(), base.clone(), key.clone(), shared.clone());
                tasks.push(tokio::spawn(async move {
                    let p = place(http, base, key, p, shared, give_up).await;
                    drop(permit);
                    p
                }));
            }
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.unwrap());
            }
            out
        })
    };

    let mut report = Report {
        orders: s.orders,
        replicas: s.replicas,
        logs: dir.clone(),
        bound: s.settle_within,
        ..Report::default()
    };
    let mut last_kill = Instant::now();
    for (j, kill) in s.kills.iter().enumerate() {
        let target = j % s.replicas;
        let reached = wait_for(kill.at, s.orders, &shared, &http, &base, &vendors).await;
        replicas[target].kill();
        last_kill = Instant::now();
        let sent = shared.sent.load(Ordering::SeqCst);
        let answered = shared.answered.load(Ordering::SeqCst);
        report.kills.push(format!(
            "#{} replica {target} at {:?}{}: {sent} sent, {} awaiting an answer{}",
            j + 1,
            kill.at,
            if reached {
                ""
            } else {
                " (not reached: killed anyway)"
            },
            sent - answered,
            if kill.restart { ", restarted" } else { "" },
        ));
        if kill.restart {
            tokio::time::sleep(Duration::from_millis(200)).await;
            replicas[target].spawn();
            replicas[target].wait_ready(&http).await;
        }
    }
    let placements = burst.await.unwrap();
    let burst_done = Instant::now();

    // Settle: every order terminal or flagged, within the bound of the last kill (or of
    // the burst's end, when a storefront was still waiting then: that wait is reported).
    let deadline = (last_kill + s.settle_within).max(burst_done + Duration::from_secs(5));
    let mut orders;
    // Which orders were still open at each look, to tell afterwards when everything that
    // was going to finish had finished.
    let mut looks: Vec<(Duration, BTreeSet<String>)> = Vec::new();
    loop {
        orders = admin_orders(&http, &base).await;
        let open = orders
            .iter()
            .filter(|o| !terminal(o))
            .filter_map(|o| o["id"].as_str().map(String::from))
            .collect();
        looks.push((last_kill.elapsed(), open));
        if orders.iter().all(|o| terminal(o) || flagged(o)) {
            report.recovery = Some(last_kill.elapsed());
            break;
        }
        if Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // A purchase still running somewhere would show up in the vendors' records by now.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let orders = admin_orders(&http, &base).await;
    let left_open: BTreeSet<String> = orders
        .iter()
        .filter(|o| !terminal(o))
        .filter_map(|o| o["id"].as_str().map(String::from))
        .collect();
    report.resolved = looks
        .iter()
        .find(|(_, open)| open.is_subset(&left_open))
        .map(|(at, _)| *at);
    let sims = vendors.orders(&http).await;
    audit(&mut report, &placements, &orders, &sims);
    report.responses = shared.responses.lock().unwrap().clone();
    let callbacks = vendors.callbacks(&http).await;
    report.callbacks = callbacks.len();
    report.callbacks_failed = callbacks
        .iter()
        .filter(|c| {
            !c["status"]
                .as_u64()
                .is_some_and(|s| (200..300).contains(&s))
        })
        .count();
    report.panics = count_in_logs(&dir, "panicked");
    drop(replicas);
    drop(vendors);
    if !report.clean() && std::env::var_os("CRASH_KEEP_DB").is_some() {
        report.details.push(format!("database kept: {}", db.url()));
        std::mem::forget(db);
    }
    report
}

/// Waits until the kill point is reached; false when it was not within 30 s.
async fn wait_for(
    at: KillAt,
    total: usize,
    shared: &Shared,
    http: &reqwest::Client,
    base: &str,
    vendors: &VendorsProcess,
) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    let delivered_before = vendors.deliveries(http).await;
    while Instant::now() < deadline {
        let sent = shared.sent.load(Ordering::SeqCst);
        let reached = match at {
            KillAt::Sent(n) => sent >= n,
            KillAt::Provisioning => {
                sent >= total && open_orders(http, base).await.is_some_and(|open| open > 0)
            }
            KillAt::Callbacks => vendors.deliveries(http).await > delivered_before,
        };
        if reached {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// Orders not yet terminal, or `None` when no replica answered.
async fn open_orders(http: &reqwest::Client, base: &str) -> Option<usize> {
    let r = http
        .get(format!("{base}/admin/orders?limit=200"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .ok()?;
    let page: Value = r.json().await.ok()?;
    Some(
        page["data"]
            .as_array()?
            .iter()
            .filter(|o| !terminal(o))
            .count(),
    )
}

fn count_in_logs(dir: &Path, needle: &str) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path()).ok())
        .map(|text| text.matches(needle).count())
        .sum()
}

/// The `ord_…` id inside a vendor's client reference (quantity suffixes dropped).
fn order_id_of(client_reference: &str) -> Option<String> {
    let id: String = client_reference.chars().take(4 + 26).collect();
    (id.starts_with("ord_") && id.len() == 30).then_some(id)
}

/// Compares the vendors' records with the gateway's orders and the storefront's answers.
fn audit(
    report: &mut Report,
    placements: &[Placement],
    orders: &[Value],
    sims: &[(VendorId, SimOrder)],
) {
    let by_id: BTreeMap<&str, &Value> = orders
        .iter()
        .map(|o| (o["id"].as_str().unwrap(), o))
        .collect();
    report.vendor_orders = sims.len();
    for o in orders {
        *report
            .by_status
            .entry(o["status"].as_str().unwrap_or("?").to_string())
            .or_default() += 1;
        if flagged(o) {
            report.flagged += 1;
        }
        if !terminal(o) && !flagged(o) {
            report.stuck.push(o["id"].as_str().unwrap().to_string());
        }
    }
    // Which gateway order each vendor order belongs to: the vendor's own client reference
    // (our order id), else the reference or ICCIDs the gateway recorded.
    let mut owned: BTreeMap<String, Vec<&(VendorId, SimOrder)>> = BTreeMap::new();
    for rec @ (v, r) in sims {
        let knows = |o: &&Value| {
            o["vendor"].as_str() == Some(v.as_str())
                && (o["vendor_reference"].as_str() == Some(r.vendor_reference.as_str())
                    || o["attempts"].as_array().is_some_and(|a| {
                        a.iter().any(|a| {
                            a["vendor_reference"].as_str() == Some(r.vendor_reference.as_str())
                        })
                    })
                    || o["esims"].as_array().is_some_and(|e| {
                        e.iter().any(|e| {
                            e["iccid"]
                                .as_str()
                                .is_some_and(|i| r.iccids.iter().any(|x| x == i))
                        })
                    }))
        };
        let owner = r
            .client_reference
            .as_deref()
            .and_then(order_id_of)
            .or_else(|| {
                orders
                    .iter()
                    .find(knows)
                    .and_then(|o| o["id"].as_str().map(String::from))
            });
        // An order an operator was told about, with an attempt at this vendor for this
        // bundle whose outcome is still open, started before the vendor order was made.
        let parked_with = |o: &&Value| {
            flagged(o)
                && !terminal(o)
                && o["attempts"].as_array().is_some_and(|a| {
                    a.iter().any(|a| {
                        a["vendor"].as_str() == Some(v.as_str())
                            && a["sku"].as_str() == Some(r.sku.as_str())
                            && a["finished_at"].is_null()
                            && a["started_at"]
                                .as_str()
                                .and_then(|t| t.parse::<chrono::DateTime<chrono::Utc>>().ok())
                                .is_some_and(|t| t <= r.created_at + chrono::Duration::seconds(1))
                    })
                })
        };
        match owner {
            Some(id) => owned.entry(id).or_default().push(rec),
            None => {
                let candidates: Vec<&str> = orders
                    .iter()
                    .filter(parked_with)
                    .filter_map(|o| o["id"].as_str())
                    .collect();
                let what = format!("{v}:{} {}", r.vendor_reference, r.sku);
                if candidates.is_empty() {
                    report.lost.push(format!("{what} (no order)"));
                } else {
                    report
                        .parked
                        .push(format!("{what} (flagged: {candidates:?})"));
                }
            }
        }
        if r.topup || r.cancelled {
            report
                .details
                .push(format!("unexpected {v} record {:?}", r.vendor_reference));
        }
    }
    for (id, recs) in &owned {
        let Some(o) = by_id.get(id.as_str()) else {
            for (v, r) in recs {
                report
                    .lost
                    .push(format!("{v}:{} (unknown order {id})", r.vendor_reference));
            }
            continue;
        };
        if recs.len() > 1 {
            report.doubled.push(id.clone());
        }
        for (v, r) in recs {
            let kept = o["vendor"].as_str() == Some(v.as_str()) && o["status"] != "failed";
            if !kept && recs.len() == 1 {
                report
                    .lost
                    .push(format!("{v}:{} ({id} {})", r.vendor_reference, o["status"]));
            }
        }
    }
    let mut holders: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    for o in orders {
        let id = o["id"].as_str().unwrap();
        if o["status"] == "completed" && !owned.contains_key(id) {
            report.unbacked.push(id.to_string());
        }
        let vendor = o["vendor"].as_str().unwrap_or("?");
        if let Some(r) = o["vendor_reference"].as_str() {
            holders
                .entry(format!("{vendor}:{r}"))
                .or_default()
                .insert(id);
        }
        for e in o["esims"].as_array().into_iter().flatten() {
            if let Some(iccid) = e["iccid"].as_str() {
                holders
                    .entry(format!("iccid {iccid}"))
                    .or_default()
                    .insert(id);
            }
        }
    }
    for (what, ids) in holders {
        if ids.len() > 1 {
            report.shared.push(format!("{what} held by {ids:?}"));
        }
    }
    let mut longest = Duration::ZERO;
    for p in placements {
        longest = longest.max(p.waited);
        if p.ids.len() > 1 {
            report.split.push(format!("{}: {:?}", p.key, p.ids));
        }
        match (p.final_status, &p.final_body) {
            (Some(s), Some(b)) if (200..300).contains(&s) => {
                let id = b["id"].as_str().unwrap_or("");
                if !by_id.contains_key(id) {
                    report
                        .unanswered
                        .push(format!("{}: answered with unknown order {id:?}", p.key));
                }
            }
            (Some(s), b) => report.unanswered.push(format!(
                "{} ({:?} {}): final {s} {}",
                p.key,
                p.vendor,
                p.plan,
                b.as_ref().map(|b| b.to_string()).unwrap_or_default()
            )),
            (None, _) => report
                .unanswered
                .push(format!("{}: no final answer after {:.0?}", p.key, p.waited)),
        }
    }
    report.longest_answer = longest;
    let mut named: BTreeSet<&str> = BTreeSet::new();
    for id in report
        .doubled
        .iter()
        .chain(&report.stuck)
        .chain(&report.unbacked)
    {
        named.insert(id.as_str());
    }
    for (id, _) in by_id
        .iter()
        .filter(|(id, _)| report.shared.iter().any(|s| s.contains(*id)))
    {
        named.insert(id);
    }
    for id in named {
        let o = by_id.get(id).copied().unwrap_or(&Value::Null);
        let attempts: Vec<String> = o["attempts"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|a| format!("{}:{}:{}", a["vendor"], a["outcome"], a["vendor_reference"]))
                    .collect()
            })
            .unwrap_or_default();
        let recs: Vec<String> = owned
            .get(id)
            .map(|r| {
                r.iter()
                    .map(|(v, r)| format!("{v}:{}", r.vendor_reference))
                    .collect()
            })
            .unwrap_or_default();
        report.details.push(format!(
            "{id} status={} vendor={} ref={} attempts={attempts:?} vendor_orders={recs:?}",
            o["status"], o["vendor"], o["vendor_reference"]
        ));
    }
}
