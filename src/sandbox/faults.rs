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
struct Armed {
    fault: Fault,
    /// `None` = until cleared.
    remaining: Option<u32>,
}

/// The faults armed per operation name (each simulator documents its operation names).
#[derive(Debug, Clone, Default)]
pub struct Faults {
    armed: Arc<Mutex<HashMap<String, VecDeque<Armed>>>>,
}

impl Faults {
    /// The next call of `operation` fails with `fault`.
    pub fn inject(&self, operation: &str, fault: Fault) {
        self.inject_times(operation, fault, Some(1));
    }

    /// The next `times` calls fail (`None`: every call until [`Faults::clear`]).
    pub fn inject_times(&self, operation: &str, fault: Fault, times: Option<u32>) {
        let mut armed = self.armed.lock().expect("faults lock");
        armed
            .entry(operation.to_string())
            .or_default()
            .push_back(Armed {
                fault,
                remaining: times,
            });
    }

    pub fn clear(&self) {
        self.armed.lock().expect("faults lock").clear();
    }

    /// Takes the fault for this call of `operation`, if one is armed.
    pub fn take(&self, operation: &str) -> Option<Fault> {
        let mut armed = self.armed.lock().expect("faults lock");
        let queue = armed.get_mut(operation)?;
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
pub fn before(
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
pub fn garble(fault: &Option<Fault>, response: Response) -> Response {
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
pub async fn after(fault: &Option<Fault>) {
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
