//! Fault injection: each simulator operation can be told to misbehave the way real vendors
//! do, once, a number of times, or until cleared.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::response::Response;
use serde::{Deserialize, Serialize};

/// One way for a simulated call to go wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// Refuse with the vendor's own error code, in the vendor's own envelope and status.
    Reject {
        code: String,
        #[serde(default)]
        message: Option<String>,
    },
    /// Drop the connection without an answer. With `after_processing` the simulator has
    /// already acted (e.g. created the order) when it hangs up.
    Reset {
        #[serde(default)]
        after_processing: bool,
    },
    /// Act on the request, then hold the answer this long (beyond the client's timeout).
    Delay { millis: u64 },
    /// Answer a bare 5xx without acting.
    ServerError {
        #[serde(default = "default_5xx")]
        status: u16,
    },
    /// Answer `404 {"message":"Not Found"}` without acting: what any HTTP API answers for a
    /// path it does not serve at that moment (a routing change, a version prefix, an outage
    /// page). Says nothing about the order.
    PathNotFound,
    /// Act, then answer 200 with a body that is not the vendor's JSON.
    Garbled,
    /// A listing answer that holds one entry the client cannot read (next to the real ones).
    /// Only the listings that document it react (eSIM Go's `GET /orders`); elsewhere no-op.
    UnreadableEntry,
}

fn default_5xx() -> u16 {
    500
}

#[derive(Debug)]
struct Queued {
    fault: Fault,
    /// `None` = until cleared.
    remaining: Option<u32>,
}

type Queues = HashMap<String, VecDeque<Queued>>;

/// The faults armed per operation name (each simulator documents its operation names):
/// for every call, or scoped to one client reference (our order id), so that one order can
/// meet a scenario without touching anyone else's calls.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    armed: Arc<Mutex<Queues>>,
    /// By scope (a client reference): when it was armed, and its faults by operation.
    scoped: Arc<Mutex<HashMap<String, (std::time::Instant, Queues)>>>,
}

/// How long a scope's faults stay armed: longer than the slowest test scenario
/// (`TEST_SCENARIO_DELAY` is at most an hour, then the gateway polls), so a scenario always
/// plays out, and then gone, so the scopes a long-running test mode arms do not pile up.
pub const SCOPE_LIFETIME: std::time::Duration = std::time::Duration::from_secs(3 * 3600);

/// At most this many scopes are armed at once (the oldest give way): every simulator request
/// is matched against them, so their number bounds that cost whatever storefronts do.
pub const MAX_SCOPES: usize = 1000;

tokio::task_local! {
    /// The scope of the request being served, set by [`crate::sandbox::scope_faults`].
    pub static CURRENT_SCOPE: Option<String>;
}

fn push(queues: &mut Queues, operation: &str, fault: Fault, times: Option<u32>) {
    queues
        .entry(operation.to_string())
        .or_default()
        .push_back(Queued {
            fault,
            remaining: times,
        });
}

fn take_from(queues: &mut Queues, operation: &str) -> Option<Fault> {
    let queue = queues.get_mut(operation)?;
    let front = queue.front_mut()?;
    let fault = front.fault.clone();
    match &mut front.remaining {
        Some(n) if *n <= 1 => {
            queue.pop_front();
        }
        Some(n) => *n -= 1,
        None => {}
    }
    Some(fault)
}

impl Faults {
    /// The next call of `operation` fails with `fault`.
    pub fn inject(&self, operation: &str, fault: Fault) {
        self.inject_times(operation, fault, Some(1));
    }

    /// The next `times` calls fail (`None`: every call until [`Faults::clear`]).
    pub fn inject_times(&self, operation: &str, fault: Fault, times: Option<u32>) {
        push(
            &mut self.armed.lock().expect("faults lock"),
            operation,
            fault,
            times,
        );
    }

    /// Arms `fault` for calls of `operation` that carry `scope` (a client reference, or a
    /// vendor reference or ICCID of the order placed with it) only.
    pub fn inject_for(&self, scope: &str, operation: &str, fault: Fault, times: Option<u32>) {
        let mut scoped = self.scoped.lock().expect("faults lock");
        scoped.retain(|_, (armed, _)| armed.elapsed() < SCOPE_LIFETIME);
        while scoped.len() >= MAX_SCOPES && !scoped.contains_key(scope) {
            let oldest = scoped
                .iter()
                .min_by_key(|(_, (armed, _))| *armed)
                .map(|(s, _)| s.clone());
            match oldest {
                Some(s) => scoped.remove(&s),
                None => break,
            };
        }
        let (_, queues) = scoped
            .entry(scope.to_string())
            .or_insert_with(|| (std::time::Instant::now(), Queues::default()));
        push(queues, operation, fault, times);
    }

    /// The scopes that have faults armed (used up and expired ones are dropped).
    pub fn scopes(&self) -> Vec<String> {
        let mut scoped = self.scoped.lock().expect("faults lock");
        scoped.retain(|_, (armed, q)| {
            armed.elapsed() < SCOPE_LIFETIME && q.values().any(|q| !q.is_empty())
        });
        scoped.keys().cloned().collect()
    }

    pub fn clear(&self) {
        self.armed.lock().expect("faults lock").clear();
        self.scoped.lock().expect("faults lock").clear();
    }

    /// Takes the fault for this call of `operation`, if one is armed: one scoped to the
    /// current request's scope first, else one for every call.
    pub fn take(&self, operation: &str) -> Option<Fault> {
        let scope = CURRENT_SCOPE.try_with(Clone::clone).ok().flatten();
        if let Some(scope) = scope {
            if let Some(f) = self.take_scoped(&scope, operation) {
                return Some(f);
            }
        }
        take_from(&mut self.armed.lock().expect("faults lock"), operation)
    }

    /// Takes a fault armed for `scope` and `operation` only.
    pub fn take_scoped(&self, scope: &str, operation: &str) -> Option<Fault> {
        let mut scoped = self.scoped.lock().expect("faults lock");
        take_from(&mut scoped.get_mut(scope)?.1, operation)
    }
}

/// The fault armed for one simulated call, taken when the call arrives. Every simulator
/// handler has the same shape: [`Faults::begin`] (refuse, fail or hang up instead of acting),
/// act, then [`Armed::finish`] (delay, hang up after acting, or garble the answer).
#[derive(Debug)]
#[must_use = "the late part of the fault applies only through `finish` or `pass`"]
pub struct Armed(Option<Fault>);

impl Faults {
    /// Takes the fault for this call of `operation` and applies its early part: `Err` is the
    /// answer to send instead of acting (`reject` renders the vendor's error envelope), boxed
    /// only to keep the `Result` small.
    pub fn begin(
        &self,
        operation: &str,
        reject: impl FnOnce(&str, Option<&str>) -> Response,
    ) -> Result<Armed, Box<Response>> {
        self.begin_first(&[operation], reject)
    }

    /// [`Faults::begin`] with the fault of the first of `operations` that has one armed (a
    /// fault armed for a family of routes applies to whichever route the client uses).
    pub fn begin_first(
        &self,
        operations: &[&str],
        reject: impl FnOnce(&str, Option<&str>) -> Response,
    ) -> Result<Armed, Box<Response>> {
        let fault = operations.iter().find_map(|op| self.take(op));
        match before(&fault, reject) {
            Some(response) => Err(Box::new(response)),
            None => Ok(Armed(fault)),
        }
    }
}

impl Armed {
    /// The fault, for a simulator that shapes its answer by it ([`Fault::UnreadableEntry`]).
    pub fn fault(&self) -> Option<&Fault> {
        self.0.as_ref()
    }

    /// Applies the late part of the fault to the answer the simulator gave after acting.
    pub async fn finish(self, response: Response) -> Response {
        after(&self.0).await;
        garble(&self.0, response)
    }

    /// Applies only the delay or hang-up, for a check that lets the call go on (an auth gate
    /// in front of the operation) and so has no answer to garble.
    pub async fn pass(self) {
        after(&self.0).await;
    }
}

/// Marker payload for a deliberate connection drop, so it is not mistaken for a bug.
struct DropConnection;

/// Ends the current request without an answer: the connection task unwinds and hyper closes
/// the socket. `resume_unwind` skips the panic hook, so nothing is printed.
pub fn drop_connection() -> ! {
    std::panic::resume_unwind(Box::new(DropConnection))
}

/// Applies the part of a fault that happens before the simulator acts. Returns the response
/// to send instead of acting, if any; `reject` renders the vendor's error envelope.
fn before(
    fault: &Option<Fault>,
    reject: impl FnOnce(&str, Option<&str>) -> Response,
) -> Option<Response> {
    match fault {
        Some(Fault::Reject { code, message }) => Some(reject(code, message.as_deref())),
        Some(Fault::ServerError { status }) => {
            let status = axum::http::StatusCode::from_u16(*status)
                .ok()
                .filter(|s| s.is_server_error())
                .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
            Some(server_error_page(status))
        }
        Some(Fault::Reset {
            after_processing: false,
        }) => drop_connection(),
        Some(Fault::PathNotFound) => Some(path_not_found()),
        _ => None,
    }
}

/// `404 {"message":"Not Found"}`, as a web framework answers a path it does not route.
pub fn path_not_found() -> Response {
    use axum::response::IntoResponse;
    (
        axum::http::StatusCode::NOT_FOUND,
        axum::Json(serde_json::json!({"message": "Not Found"})),
    )
        .into_response()
}

/// Replaces the answer when the fault garbles it (the simulator has acted already).
fn garble(fault: &Option<Fault>, response: Response) -> Response {
    use axum::response::IntoResponse;
    match fault {
        Some(Fault::Garbled) => (
            axum::http::StatusCode::OK,
            [(axum::http::header::CONTENT_TYPE, "application/json")],
            "{\"ok\": tru",
        )
            .into_response(),
        _ => response,
    }
}

/// Applies the part of a fault that happens after the simulator has acted.
async fn after(fault: &Option<Fault>) {
    match fault {
        Some(Fault::Delay { millis }) => tokio::time::sleep(Duration::from_millis(*millis)).await,
        Some(Fault::Reset {
            after_processing: true,
        }) => drop_connection(),
        _ => {}
    }
}

/// What a load balancer in front of a vendor sends when the backend falls over.
fn server_error_page(status: axum::http::StatusCode) -> Response {
    use axum::response::IntoResponse;
    let body = format!(
        "<html><head><title>{status}</title></head><body><center><h1>{status}</h1></center><hr><center>nginx</center></body></html>"
    );
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "text/html")],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_fire_the_given_number_of_times_in_order() {
        let f = Faults::default();
        f.inject_times("order", Fault::ServerError { status: 503 }, Some(2));
        f.inject("order", Fault::Delay { millis: 5 });
        assert_eq!(f.take("order"), Some(Fault::ServerError { status: 503 }));
        assert_eq!(f.take("order"), Some(Fault::ServerError { status: 503 }));
        assert_eq!(f.take("order"), Some(Fault::Delay { millis: 5 }));
        assert_eq!(f.take("order"), None);
        assert_eq!(f.take("query"), None);
    }

    /// A fault scoped to one order is taken only by a call in that scope; calls outside it
    /// (another order, no scope) never see it.
    #[tokio::test]
    async fn scoped_faults_are_taken_only_in_their_scope() {
        let f = Faults::default();
        let sold_out = Fault::Reject {
            code: "1008".into(),
            message: None,
        };
        f.inject_for("ord_a", "order", sold_out.clone(), Some(1));
        assert_eq!(f.scopes(), vec!["ord_a".to_string()]);
        assert_eq!(f.take("order"), None, "no scope");
        let other = CURRENT_SCOPE.scope(Some("ord_b".into()), async { f.take("order") });
        assert_eq!(other.await, None, "another order");
        let mine = CURRENT_SCOPE.scope(Some("ord_a".into()), async { f.take("order") });
        assert_eq!(mine.await, Some(sold_out));
        assert!(f.scopes().is_empty(), "taken once");
    }

    /// However many orders meet a scenario, at most [`MAX_SCOPES`] scopes are armed: the
    /// oldest give way to new ones.
    #[test]
    fn armed_scopes_are_bounded_and_the_oldest_give_way() {
        let f = Faults::default();
        for i in 0..MAX_SCOPES + 5 {
            f.inject_for(&format!("ord_{i:06}"), "order", Fault::Garbled, None);
        }
        let scopes = f.scopes();
        assert_eq!(scopes.len(), MAX_SCOPES);
        assert!(
            !scopes.contains(&"ord_000000".to_string()),
            "the oldest gave way"
        );
        assert!(scopes.contains(&format!("ord_{:06}", MAX_SCOPES + 4)));
        // More faults for an armed scope do not push another one out.
        f.inject_for(
            &format!("ord_{:06}", MAX_SCOPES + 4),
            "query",
            Fault::Garbled,
            None,
        );
        assert_eq!(f.scopes().len(), MAX_SCOPES);
    }

    #[test]
    fn sticky_faults_last_until_cleared() {
        let f = Faults::default();
        f.inject_times(
            "list",
            Fault::Reset {
                after_processing: false,
            },
            None,
        );
        for _ in 0..5 {
            assert!(f.take("list").is_some());
        }
        f.clear();
        assert_eq!(f.take("list"), None);
    }

    fn reject(code: &str, _message: Option<&str>) -> Response {
        use axum::response::IntoResponse;
        (axum::http::StatusCode::BAD_REQUEST, code.to_string()).into_response()
    }

    fn answer() -> Response {
        use axum::response::IntoResponse;
        "acted".into_response()
    }

    async fn body(r: Response) -> String {
        let bytes = axum::body::to_bytes(r.into_body(), 1 << 16).await.unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn a_call_runs_under_its_fault_early_part_then_late_part() {
        let f = Faults::default();
        // No fault: the simulator's own answer.
        let armed = f.begin("order", reject).unwrap();
        assert_eq!(armed.fault(), None);
        assert_eq!(body(armed.finish(answer()).await).await, "acted");
        // A refusal replaces acting, in the vendor's envelope.
        f.inject(
            "order",
            Fault::Reject {
                code: "200011".into(),
                message: None,
            },
        );
        let refused = *f.begin("order", reject).unwrap_err();
        assert_eq!(refused.status(), axum::http::StatusCode::BAD_REQUEST);
        assert_eq!(body(refused).await, "200011");
        // A garbled answer: the simulator acted, the client cannot read what it says.
        f.inject("order", Fault::Garbled);
        let armed = f.begin("order", reject).unwrap();
        assert_eq!(armed.fault(), Some(&Fault::Garbled));
        assert_eq!(body(armed.finish(answer()).await).await, "{\"ok\": tru");
        // A bare 5xx, whatever status was asked for outside the 5xx range.
        f.inject("order", Fault::ServerError { status: 200 });
        let failed = *f.begin("order", reject).unwrap_err();
        assert_eq!(
            failed.status(),
            axum::http::StatusCode::INTERNAL_SERVER_ERROR
        );
    }

    #[tokio::test]
    async fn the_first_armed_operation_of_a_family_applies() {
        let f = Faults::default();
        f.inject("order", Fault::PathNotFound);
        let r = *f.begin_first(&["order_sync", "order"], reject).unwrap_err();
        assert_eq!(r.status(), axum::http::StatusCode::NOT_FOUND);
        f.inject("order_sync", Fault::Delay { millis: 1 });
        f.inject("order", Fault::PathNotFound);
        let armed = f.begin_first(&["order_sync", "order"], reject).unwrap();
        assert_eq!(armed.fault(), Some(&Fault::Delay { millis: 1 }));
        armed.pass().await;
        assert_eq!(f.take("order"), Some(Fault::PathNotFound));
    }

    #[test]
    fn faults_deserialize_from_the_control_api_shape() {
        let f: Fault = serde_json::from_str(r#"{"kind":"reject","code":"200011"}"#).unwrap();
        assert_eq!(
            f,
            Fault::Reject {
                code: "200011".into(),
                message: None
            }
        );
        let f: Fault = serde_json::from_str(r#"{"kind":"server_error"}"#).unwrap();
        assert_eq!(f, Fault::ServerError { status: 500 });
    }
}
