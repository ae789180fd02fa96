//! One contract for every adapter: the same cases run against all five vendors through a
//! small harness (start the simulator, build adapters for it, inject a fault, read the
//! simulator's own order records). The cases run over `VendorId::ALL`, and [`harness`] is an
//! exhaustive `match`: a sixth vendor in the table fails to compile here until its harness
//! exists, and then gets every case.
//!
//! The promise under test: nothing is bought twice and nothing is lost. A refusal is a
//! refusal only when the vendor said so in a way it documents; everything unclear is
//! `Unknown`, and reconciliation finds exactly the order the vendor recorded.

use std::{sync::Arc, time::Duration};

use chrono::Utc;
use esim_gateway::{
    domain::secret::{ExposeSecret, SecretString},
    sandbox::{self, Fault, RunningSim, SimCore, SimSettings},
    vendors::{
        AdapterOptions, OrderState, PlaceOrder, RejectKind, Vendor, VendorError, VendorId,
        VendorOrderRef, VendorOrderStatus, esimaccess::EsimAccess, esimfx::EsimFx, esimgo::EsimGo,
        microesim::MicroEsim, multiverse::Multiverse,
    },
};

/// Adapter timeout in these cases: short, so a "late answer" is quick to provoke.
const TIMEOUT: Duration = Duration::from_millis(400);
/// How late a "lost" answer comes: well beyond [`TIMEOUT`].
const LATE_BY: Duration = Duration::from_millis(900);
const LATE: Fault = Fault::Delay { millis: 900 };

/// What the contract needs from each vendor's simulator.
trait Harness: Send + Sync {
    fn id(&self) -> VendorId;
    fn core(&self) -> &SimCore;
    /// A fresh adapter for the simulator (a restarted process), with right or wrong
    /// credentials, or pointed at `base` instead.
    fn adapter(&self, wrong_credentials: bool, base: Option<url::Url>) -> Arc<dyn Vendor>;
    /// The vendor's own "sold out" refusal.
    fn sold_out(&self) -> Fault;
    /// An error code or status the vendor does not document, on an order.
    fn undocumented(&self) -> Fault;
    /// The simulator operation whose answer decides a reconciliation by our order id.
    fn lookup_op(&self) -> &'static str;
    /// Makes every issued token expire; `None` when the vendor has no tokens. Returns how
    /// many tokens the vendor issued so far.
    fn expire_tokens(&self) -> Option<u64>;
    fn token_count(&self) -> u64;
}

struct Running {
    harness: Box<dyn Harness>,
    server: RunningSim,
}

fn swap_base<T>(creds: &T, base: Option<url::Url>, set: impl Fn(&mut T, url::Url)) -> T
where
    T: Clone,
{
    let mut c = creds.clone();
    if let Some(b) = base {
        set(&mut c, b);
    }
    c
}

fn wrong(s: &SecretString) -> SecretString {
    SecretString::from(format!("{}-wrong", s.expose_secret()))
}

fn opts() -> AdapterOptions {
    AdapterOptions { timeout: TIMEOUT }
}

// ------------------------------------------------------------------------------------------
// The five harnesses

struct EsimAccessH {
    sim: esim_gateway::vendors::esimaccess::sim::EsimAccessSim,
    creds: esim_gateway::vendors::esimaccess::credentials::EsimAccessCredentials,
}

impl Harness for EsimAccessH {
    fn id(&self) -> VendorId {
        VendorId::EsimAccess
    }
    fn core(&self) -> &SimCore {
        self.sim.core()
    }
    fn adapter(&self, wrong_credentials: bool, base: Option<url::Url>) -> Arc<dyn Vendor> {
        let mut c = swap_base(&self.creds, base, |c, b| c.base_url = b);
        if wrong_credentials {
            c.secret_key = wrong(&c.secret_key);
        }
        Arc::new(EsimAccess::new(c, &opts()))
    }
    fn sold_out(&self) -> Fault {
        reject("200011")
    }
    fn undocumented(&self) -> Fault {
        reject("987654")
    }
    fn lookup_op(&self) -> &'static str {
        "query"
    }
    fn expire_tokens(&self) -> Option<u64> {
        None
    }
    fn token_count(&self) -> u64 {
        0
    }
}

async fn esimaccess() -> Running {
    let mut creds =
        esim_gateway::vendors::esimaccess::sim::EsimAccessSim::sandbox_credentials(placeholder());
    let sim =
        esim_gateway::vendors::esimaccess::sim::EsimAccessSim::new(&creds, SimSettings::fast());
    let server = sandbox::serve(sim.router()).await.unwrap();
    creds.base_url = server.base_url.clone();
    Running {
        harness: Box::new(EsimAccessH { sim, creds }),
        server,
    }
}

struct EsimGoH {
    sim: esim_gateway::vendors::esimgo::sim::EsimGoSim,
    creds: esim_gateway::vendors::esimgo::credentials::EsimGoCredentials,
}

impl Harness for EsimGoH {
    fn id(&self) -> VendorId {
        VendorId::EsimGo
    }
    fn core(&self) -> &SimCore {
        self.sim.core()
    }
    fn adapter(&self, wrong_credentials: bool, base: Option<url::Url>) -> Arc<dyn Vendor> {
        let mut c = swap_base(&self.creds, base, |c, b| {
            c.base_url =
                esim_gateway::vendors::esimgo::sim::EsimGoSim::sandbox_credentials(b).base_url
        });
        if wrong_credentials {
            c.api_key = wrong(&c.api_key);
        }
        Arc::new(EsimGo::new(c, &opts()))
    }
    fn sold_out(&self) -> Fault {
        reject("out_of_stock")
    }
    fn undocumented(&self) -> Fault {
        // eSIM Go documents 400/401/403/429/500/503 on orders; a 409 is nobody's word.
        reject("409")
    }
    fn lookup_op(&self) -> &'static str {
        "query"
    }
    fn expire_tokens(&self) -> Option<u64> {
        None
    }
    fn token_count(&self) -> u64 {
        0
    }
}

async fn esimgo() -> Running {
    let placeholder =
        esim_gateway::vendors::esimgo::sim::EsimGoSim::sandbox_credentials(placeholder());
    let sim = esim_gateway::vendors::esimgo::sim::EsimGoSim::new(&placeholder, SimSettings::fast());
    let server = sandbox::serve(sim.router()).await.unwrap();
    let creds = esim_gateway::vendors::esimgo::credentials::EsimGoCredentials {
        api_key: placeholder.api_key,
        base_url: esim_gateway::vendors::esimgo::sim::EsimGoSim::sandbox_credentials(
            server.base_url.clone(),
        )
        .base_url,
    };
    Running {
        harness: Box::new(EsimGoH { sim, creds }),
        server,
    }
}

struct EsimFxH {
    sim: esim_gateway::vendors::esimfx::sim::EsimFxSim,
    creds: esim_gateway::vendors::esimfx::credentials::EsimFxCredentials,
}

impl Harness for EsimFxH {
    fn id(&self) -> VendorId {
        VendorId::EsimFx
    }
    fn core(&self) -> &SimCore {
        self.sim.core()
    }
    fn adapter(&self, wrong_credentials: bool, base: Option<url::Url>) -> Arc<dyn Vendor> {
        let mut c = swap_base(&self.creds, base, |c, b| c.base_url = b);
        if wrong_credentials {
            c.client_key = wrong(&c.client_key);
        }
        Arc::new(EsimFx::new(c, &opts()))
    }
    fn sold_out(&self) -> Fault {
        reject("2002")
    }
    fn undocumented(&self) -> Fault {
        reject("4242")
    }
    fn lookup_op(&self) -> &'static str {
        "query"
    }
    fn expire_tokens(&self) -> Option<u64> {
        self.sim.revoke_tokens();
        Some(self.sim.auth_calls())
    }
    fn token_count(&self) -> u64 {
        self.sim.auth_calls()
    }
}

async fn esimfx() -> Running {
    let sim_creds =
        esim_gateway::vendors::esimfx::sim::EsimFxSim::sandbox_credentials(placeholder());
    let sim = esim_gateway::vendors::esimfx::sim::EsimFxSim::new(&sim_creds, SimSettings::fast());
    let server = sandbox::serve(sim.router()).await.unwrap();
    let creds = esim_gateway::vendors::esimfx::credentials::EsimFxCredentials {
        base_url: server.base_url.clone(),
        ..sim_creds
    };
    Running {
        harness: Box::new(EsimFxH { sim, creds }),
        server,
    }
}

struct MicroEsimH {
    sim: esim_gateway::vendors::microesim::sim::MicroEsimSim,
    creds: esim_gateway::vendors::microesim::credentials::MicroEsimCredentials,
}

impl Harness for MicroEsimH {
    fn id(&self) -> VendorId {
        VendorId::MicroEsim
    }
    fn core(&self) -> &SimCore {
        self.sim.core()
    }
    fn adapter(&self, wrong_credentials: bool, base: Option<url::Url>) -> Arc<dyn Vendor> {
        let mut c = swap_base(&self.creds, base, |c, b| c.base_url = b);
        if wrong_credentials {
            c.secret = wrong(&c.secret);
        }
        Arc::new(MicroEsim::new(c, &opts()))
    }
    fn sold_out(&self) -> Fault {
        reject("1008")
    }
    fn undocumented(&self) -> Fault {
        reject("4242")
    }
    fn lookup_op(&self) -> &'static str {
        "lookup"
    }
    fn expire_tokens(&self) -> Option<u64> {
        None
    }
    fn token_count(&self) -> u64 {
        0
    }
}

async fn microesim() -> Running {
    let (listener, base) = sandbox::bind_loopback().await.unwrap();
    let creds = esim_gateway::vendors::microesim::sim::MicroEsimSim::sandbox_credentials(base);
    let sim = esim_gateway::vendors::microesim::sim::MicroEsimSim::new(&creds, SimSettings::fast());
    let server = sandbox::serve_on(listener, sim.router()).unwrap();
    Running {
        harness: Box::new(MicroEsimH { sim, creds }),
        server,
    }
}

struct MultiverseH {
    sim: esim_gateway::vendors::multiverse::sim::MultiverseSim,
    creds: esim_gateway::vendors::multiverse::credentials::MultiverseCredentials,
}

impl Harness for MultiverseH {
    fn id(&self) -> VendorId {
        VendorId::Multiverse
    }
    fn core(&self) -> &SimCore {
        self.sim.core()
    }
    fn adapter(&self, wrong_credentials: bool, base: Option<url::Url>) -> Arc<dyn Vendor> {
        let mut c = swap_base(&self.creds, base, |c, b| c.base_url = b);
        if wrong_credentials {
            c.client_secret = wrong(&c.client_secret);
        }
        // `/purchase/sync` waits a minute in production; here the same short timeout.
        Arc::new(Multiverse::new(c, &opts()).with_sync_purchase_timeout(TIMEOUT))
    }
    fn sold_out(&self) -> Fault {
        reject("500002")
    }
    fn undocumented(&self) -> Fault {
        reject("409009")
    }
    fn lookup_op(&self) -> &'static str {
        "query"
    }
    fn expire_tokens(&self) -> Option<u64> {
        self.sim.expire_tokens();
        Some(u64::from(self.sim.token_requests()))
    }
    fn token_count(&self) -> u64 {
        u64::from(self.sim.token_requests())
    }
}

async fn multiverse() -> Running {
    let sim_creds =
        esim_gateway::vendors::multiverse::sim::MultiverseSim::sandbox_credentials(placeholder());
    let sim =
        esim_gateway::vendors::multiverse::sim::MultiverseSim::new(&sim_creds, SimSettings::fast());
    let server = sandbox::serve(sim.router()).await.unwrap();
    let creds = esim_gateway::vendors::multiverse::credentials::MultiverseCredentials {
        base_url: server.base_url.clone(),
        ..sim_creds
    };
    Running {
        harness: Box::new(MultiverseH { sim, creds }),
        server,
    }
}

/// The harness of `vendor`. Exhaustive on purpose: a new line in the vendor table does not
/// compile until its harness exists, and then every case below runs against it.
async fn harness(vendor: VendorId) -> Running {
    match vendor {
        VendorId::EsimAccess => esimaccess().await,
        VendorId::EsimGo => esimgo().await,
        VendorId::EsimFx => esimfx().await,
        VendorId::MicroEsim => microesim().await,
        VendorId::Multiverse => multiverse().await,
    }
}

/// Every vendor of the table, each with its simulator running.
async fn all() -> Vec<Running> {
    let mut running = Vec::new();
    for vendor in VendorId::ALL {
        running.push(harness(vendor).await);
    }
    running
}

#[tokio::test]
async fn every_vendor_of_the_table_has_its_own_harness() {
    for vendor in VendorId::ALL {
        let r = harness(vendor).await;
        assert_eq!(r.harness.id(), vendor, "harness for {vendor}");
        assert_eq!(r.harness.core().vendor, vendor, "simulator for {vendor}");
        assert_eq!(
            r.harness.adapter(false, None).id(),
            vendor,
            "adapter for {vendor}"
        );
    }
}

// ------------------------------------------------------------------------------------------
// Helpers

fn placeholder() -> url::Url {
    "http://127.0.0.1:9".parse().unwrap()
}

fn reject(code: &str) -> Fault {
    Fault::Reject {
        code: code.into(),
        message: None,
    }
}

fn new_order(sku: &str) -> PlaceOrder {
    PlaceOrder {
        order_id: format!("ord_{}", ulid::Ulid::new()),
        sku: sku.to_string(),
        quantity: 1,
        expected_unit_cost: None,
        price_tolerance_percent: rust_decimal::Decimal::ZERO,
        placed_at: Utc::now(),
    }
}

/// What the ordering layer reads from the attempt row.
fn attempt_ref(req: &PlaceOrder) -> VendorOrderRef {
    VendorOrderRef::new(req.order_id.clone(), req.placed_at).with_attempt(&req.sku, req.quantity)
}

/// A plain orderable SKU of the vendor.
async fn any_sku(v: &dyn Vendor) -> String {
    v.list_offers()
        .await
        .unwrap()
        .into_iter()
        .find(|o| o.active && !o.is_topup && o.flags.is_empty() && o.data.is_some())
        .expect("an orderable offer")
        .sku
}

fn assert_unknown<T: std::fmt::Debug>(vendor: VendorId, case: &str, r: Result<T, VendorError>) {
    assert!(
        matches!(r, Err(VendorError::Unknown(_))),
        "{vendor} {case}: expected Unknown, got {r:?}"
    );
}

/// Resolves an attempt whose answer was lost, the way the ordering layer does: the same
/// request again where the vendor deduplicates, a lookup otherwise; then polls by the
/// vendor's reference until the eSIMs are there.
async fn reconcile(v: &dyn Vendor, req: &PlaceOrder) -> Result<OrderState, VendorError> {
    let mut state = if v.place_is_idempotent() {
        v.place_order(req).await?
    } else {
        v.fetch_order(&attempt_ref(req)).await?
    };
    for _ in 0..100 {
        if state.status == VendorOrderStatus::Completed {
            return Ok(state);
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
        let r = attempt_ref(req).with_vendor_reference(state.vendor_reference.clone());
        state = v.fetch_order(&r).await?;
    }
    Ok(state)
}

// ------------------------------------------------------------------------------------------
// The cases

#[tokio::test]
async fn sold_out_is_a_refusal_and_buys_nothing() {
    for r in all().await {
        let h = &*r.harness;
        let v = h.adapter(false, None);
        let sku = any_sku(&*v).await;
        h.core().faults.inject("order", h.sold_out());
        let err = v.place_order(&new_order(&sku)).await.unwrap_err();
        assert_eq!(
            err.reject_kind(),
            Some(RejectKind::SoldOut),
            "{}: {err:?}",
            h.id()
        );
        assert!(err.nothing_bought());
        assert!(h.core().orders().is_empty(), "{}", h.id());
    }
}

#[tokio::test]
async fn an_undocumented_error_on_an_order_is_unknown() {
    for r in all().await {
        let h = &*r.harness;
        let v = h.adapter(false, None);
        let sku = any_sku(&*v).await;
        h.core().faults.inject("order", h.undocumented());
        assert_unknown(
            h.id(),
            "undocumented code",
            v.place_order(&new_order(&sku)).await,
        );
    }
}

#[tokio::test]
async fn server_errors_resets_and_garbled_answers_are_unknown() {
    for r in all().await {
        let h = &*r.harness;
        let v = h.adapter(false, None);
        let sku = any_sku(&*v).await;
        for (case, fault) in [
            ("5xx", Fault::ServerError { status: 502 }),
            (
                "reset before",
                Fault::Reset {
                    after_processing: false,
                },
            ),
            (
                "reset after",
                Fault::Reset {
                    after_processing: true,
                },
            ),
            ("garbled 2xx", Fault::Garbled),
        ] {
            h.core().faults.inject("order", fault);
            assert_unknown(h.id(), case, v.place_order(&new_order(&sku)).await);
        }
    }
}

#[tokio::test]
async fn a_closed_port_is_unreachable_and_buys_nothing() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        drop(l);
        url::Url::parse(&format!("http://127.0.0.1:{port}")).unwrap()
    };
    for r in all().await {
        let h = &*r.harness;
        let v = h.adapter(false, Some(closed.clone()));
        let err = v.place_order(&new_order("any")).await.unwrap_err();
        assert!(
            matches!(err, VendorError::Unreachable(_)),
            "{}: {err:?}",
            h.id()
        );
        assert!(err.nothing_bought());
    }
}

#[tokio::test]
async fn a_lost_answer_is_reconciled_to_exactly_the_recorded_order_even_after_a_restart() {
    // The vendors run side by side: each waits out a late answer twice.
    let mut tasks = tokio::task::JoinSet::new();
    for r in all().await {
        tasks.spawn(lost_answer_case(r));
    }
    while let Some(done) = tasks.join_next().await {
        done.unwrap();
    }
}

async fn lost_answer_case(r: Running) {
    {
        let h = &*r.harness;
        for restart in [false, true] {
            let before = h.core().orders().len();
            let v = h.adapter(false, None);
            let sku = any_sku(&*v).await;
            let req = new_order(&sku);
            h.core().faults.inject("order", LATE);
            assert_unknown(h.id(), "late answer", v.place_order(&req).await);
            // The vendor did record the order.
            tokio::time::sleep(LATE_BY + Duration::from_millis(100)).await;
            assert_eq!(h.core().orders().len(), before + 1, "{}", h.id());
            let v = if restart { h.adapter(false, None) } else { v };
            let state = reconcile(&*v, &req)
                .await
                .unwrap_or_else(|e| panic!("{} (restart {restart}): {e:?}", h.id()));
            assert_eq!(state.status, VendorOrderStatus::Completed, "{}", h.id());
            // Exactly that order: the vendor still has one new order, and its eSIM is ours.
            let orders = h.core().orders();
            assert_eq!(orders.len(), before + 1, "{} bought twice", h.id());
            let recorded = &orders[before];
            assert_eq!(state.esims.len(), 1, "{}", h.id());
            let esim = &state.esims[0];
            assert_eq!(recorded.iccids, vec![esim.iccid.clone()], "{}", h.id());
            assert!(
                esim.activation.lpa.starts_with("LPA:1$")
                    && esim.activation.lpa.ends_with(&esim.activation.matching_id),
                "{}: {esim:?}",
                h.id()
            );
        }
    }
}

#[tokio::test]
async fn an_unreadable_lookup_is_unknown_never_not_found() {
    for r in all().await {
        let h = &*r.harness;
        let v = h.adapter(false, None);
        let sku = any_sku(&*v).await;
        // Placed long ago: an honest "none" could be believed, an unclear one never.
        let mut req = new_order(&sku);
        req.placed_at = Utc::now() - chrono::Duration::minutes(30);
        for (case, fault) in [
            ("garbled", Fault::Garbled),
            ("path 404", Fault::PathNotFound),
            ("5xx", Fault::ServerError { status: 503 }),
        ] {
            h.core().faults.inject_times(h.lookup_op(), fault, None);
            let r = v.fetch_order(&attempt_ref(&req)).await;
            h.core().faults.clear();
            assert_unknown(h.id(), case, r);
        }
    }
}

/// Where the documents are silent the simulators behave like any HTTP API: a path they do
/// not serve is a 404 (Multiverse's documented `404001`), never a made-up business answer.
#[tokio::test]
async fn simulators_answer_paths_they_do_not_serve_with_404() {
    let client = reqwest::Client::new();
    for r in all().await {
        let url = r.server.base_url.join("/no/such/path").unwrap();
        let resp = client.post(url).body("{}").send().await.unwrap();
        assert_eq!(resp.status(), 404, "{}", r.harness.id());
        let body: serde_json::Value = resp.json().await.unwrap();
        if r.harness.id() == VendorId::Multiverse {
            assert_eq!(body["code"], "404001");
        } else {
            assert_eq!(body["message"], "Not Found", "{}", r.harness.id());
        }
    }
}

#[tokio::test]
async fn wrong_credentials_are_refused_as_auth() {
    for r in all().await {
        let h = &*r.harness;
        let v = h.adapter(true, None);
        let err = v.list_offers().await.unwrap_err();
        assert_eq!(
            err.reject_kind(),
            Some(RejectKind::Auth),
            "{}: {err:?}",
            h.id()
        );
        let err = v.place_order(&new_order("any")).await.unwrap_err();
        assert_eq!(err.reject_kind(), Some(RejectKind::Auth), "{}", h.id());
        assert!(h.core().orders().is_empty());
    }
}

#[tokio::test]
async fn an_expired_token_is_refreshed_once() {
    for r in all().await {
        let h = &*r.harness;
        let v = h.adapter(false, None);
        v.list_offers().await.unwrap();
        let Some(issued) = h.expire_tokens() else {
            continue;
        };
        v.list_offers().await.unwrap();
        assert_eq!(h.token_count(), issued + 1, "{}", h.id());
    }
}

// ------------------------------------------------------------------------------------------
// Listings with several candidates: only vendors whose lookup is a listing can have them.

/// eSIM Go: two untagged orders of the same bundle in the window are ambiguous; once the
/// other one's ICCID is known to belong to another of our orders, exactly one remains.
#[tokio::test]
async fn esimgo_two_candidates_are_unknown_until_ours_are_excluded() {
    let r = esimgo().await;
    let h = &*r.harness;
    let v = h.adapter(false, None);
    let sku = any_sku(&*v).await;
    // Another order of ours for the same bundle whose tagging failed.
    h.core()
        .faults
        .inject_times("tag", Fault::ServerError { status: 500 }, None);
    let other = v.place_order(&new_order(&sku)).await.unwrap();
    let req = new_order(&sku);
    h.core().faults.inject("order", LATE);
    assert_unknown(VendorId::EsimGo, "late", v.place_order(&req).await);
    tokio::time::sleep(LATE_BY + Duration::from_millis(100)).await;
    h.core().faults.clear();
    assert_unknown(
        VendorId::EsimGo,
        "two candidates",
        v.fetch_order(&attempt_ref(&req)).await,
    );
    let mut r2 = attempt_ref(&req);
    r2.owned_iccids = other.esims.iter().map(|e| e.iccid.clone()).collect();
    let state = v.fetch_order(&r2).await.unwrap();
    assert_eq!(state.status, VendorOrderStatus::Completed);
    assert_ne!(state.esims[0].iccid, other.esims[0].iccid);
    assert_eq!(h.core().orders().len(), 2);
}

/// Multiverse: two vendor orders under one `customer_order_id` for one eSIM are ambiguous.
#[tokio::test]
async fn multiverse_two_orders_for_one_reference_are_unknown() {
    let r = multiverse().await;
    let h = &*r.harness;
    let v = h.adapter(false, None);
    let sku = any_sku(&*v).await;
    let req = new_order(&sku);
    v.place_order(&req).await.unwrap();
    v.place_order(&req).await.unwrap();
    let mut r2 = attempt_ref(&req);
    r2.placed_at = Utc::now() - chrono::Duration::minutes(30);
    assert_unknown(VendorId::Multiverse, "two orders", v.fetch_order(&r2).await);
}
