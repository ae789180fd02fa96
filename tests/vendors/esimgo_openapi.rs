//! eSIM Go's published OpenAPI document (`src/vendors/esimgo/openapi-v2.4.yaml`) against the
//! adapter and its simulator: every request the adapter sends is one of the document's
//! operations (method, path template, documented query parameters), and every example the
//! document gives for the operations we use parses into our wire types with exact values.

use std::{
    collections::{BTreeSet, HashMap},
    sync::{Arc, Mutex},
};

use axum::{extract::Request, middleware::Next, response::Response};
use chrono::Utc;
use esim_gateway::{
    sandbox::{self, SimSettings},
    vendors::esimgo::credentials::EsimGoCredentials,
    vendors::esimgo::sim::EsimGoSim,
    vendors::{
        AdapterOptions, EsimRef, PlaceOrder, TopUp, Vendor, VendorOrderRef,
        esimgo::{EsimGo, wire},
    },
};
use rust_decimal::Decimal;
use serde_json::Value;

const SPEC: &str = include_str!("../../src/vendors/esimgo/openapi-v2.4.yaml");

fn spec() -> Value {
    serde_norway::from_str(SPEC).expect("the vendor's OpenAPI document is valid YAML")
}

/// One documented operation: method, path template, and its query parameter names.
struct Operation {
    method: String,
    template: Vec<String>,
    query: BTreeSet<String>,
}

fn operations(spec: &Value) -> Vec<Operation> {
    let mut out = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        let shared = params(&item["parameters"]);
        for (method, op) in item.as_object().unwrap() {
            if !["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                continue;
            }
            let mut query = shared.clone();
            query.extend(params(&op["parameters"]));
            out.push(Operation {
                method: method.to_ascii_uppercase(),
                template: path
                    .trim_matches('/')
                    .split('/')
                    .map(String::from)
                    .collect(),
                query,
            });
        }
    }
    out
}

fn params(list: &Value) -> BTreeSet<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["in"] == "query")
        .filter_map(|p| p["name"].as_str().map(String::from))
        .collect()
}

fn matches(template: &[String], path: &[&str]) -> bool {
    template.len() == path.len()
        && template
            .iter()
            .zip(path)
            .all(|(t, p)| (t.starts_with('{') && t.ends_with('}')) || t == p)
}

/// What the adapter sent: method, path below `/v2.4`, query parameter names.
type Seen = Arc<Mutex<Vec<(String, String, BTreeSet<String>)>>>;

async fn start_recording() -> (EsimGoSim, EsimGo, Seen, sandbox::RunningSim) {
    let placeholder = EsimGoSim::sandbox_credentials("http://127.0.0.1:9".parse().unwrap());
    let sim = EsimGoSim::new(&placeholder, SimSettings::fast());
    let seen: Seen = Arc::default();
    let log = seen.clone();
    let router = sim.router().layer(axum::middleware::from_fn(
        move |req: Request, next: Next| {
            let log = log.clone();
            async move {
                let names: BTreeSet<String> =
                    form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
                        .map(|(k, _)| k.into_owned())
                        .collect();
                let path = req.uri().path().to_string();
                if let Some(api) = path.strip_prefix("/v2.4") {
                    log.lock()
                        .unwrap()
                        .push((req.method().to_string(), api.to_string(), names));
                }
                let resp: Response = next.run(req).await;
                resp
            }
        },
    ));
    let running = sandbox::serve(router).await.unwrap();
    let creds = EsimGoCredentials {
        api_key: placeholder.api_key,
        base_url: EsimGoSim::sandbox_credentials(running.base_url.clone()).base_url,
    };
    let vendor = EsimGo::new(creds, &AdapterOptions::default());
    (sim, vendor, seen, running)
}

#[tokio::test]
async fn every_request_the_adapter_sends_is_a_documented_operation() {
    let (sim, vendor, seen, _running) = start_recording().await;
    let sku = sim
        .bundle_names()
        .into_iter()
        .find(|n| n.starts_with("esim_1GB_7D_"))
        .unwrap();
    // Every operation the adapter has: catalogue, balance, buy (and tag), poll, reconcile,
    // top-up, usage, cancel.
    vendor.list_offers().await.unwrap();
    vendor.balance().await.unwrap();
    let req = PlaceOrder {
        order_id: "ord_spec".into(),
        sku: sku.clone(),
        quantity: 1,
        expected_unit_cost: None,
        price_tolerance_percent: rust_decimal::Decimal::ZERO,
        placed_at: Utc::now(),
    };
    let placed = vendor.place_order(&req).await.unwrap();
    let by_ref = VendorOrderRef::new("ord_spec", req.placed_at)
        .with_vendor_reference(placed.vendor_reference.clone())
        .with_attempt(&sku, 1);
    vendor.fetch_order(&by_ref).await.unwrap();
    let lost = VendorOrderRef::new("ord_spec", req.placed_at).with_attempt(&sku, 1);
    vendor.fetch_order(&lost).await.unwrap();
    let esim = EsimRef {
        iccid: placed.esims[0].iccid.clone(),
        vendor_esim_ref: None,
        vendor_reference: placed.vendor_reference.clone(),
    };
    vendor
        .topup(&TopUp {
            order_id: "ord_spec_top".into(),
            esim: esim.clone(),
            sku: sku.clone(),
            placed_at: Utc::now(),
        })
        .await
        .unwrap();
    vendor.usage(&esim).await.unwrap();
    let _ = vendor.cancel(&by_ref, &[esim]).await;

    let ops = operations(&spec());
    let seen = seen.lock().unwrap().clone();
    let distinct: BTreeSet<(String, String)> = seen
        .iter()
        .map(|(m, p, _)| (m.clone(), p.clone()))
        .collect();
    assert!(
        distinct.len() >= 9,
        "the scenario covers the adapter: {distinct:?}"
    );
    for (method, path, query) in &seen {
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let op = ops
            .iter()
            .find(|o| o.method == *method && matches(&o.template, &segments))
            .unwrap_or_else(|| panic!("{method} {path} is not in the OpenAPI document"));
        let undocumented: Vec<&String> = query.difference(&op.query).collect();
        assert!(
            undocumented.is_empty(),
            "{method} {path}: query parameters {undocumented:?} are not documented ({:?})",
            op.query
        );
    }
}

/// Resolves `#/components/...` references.
fn resolve<'a>(spec: &'a Value, v: &'a Value) -> &'a Value {
    match v.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let mut node = spec;
            for part in r.trim_start_matches("#/").split('/') {
                node = &node[part];
            }
            resolve(spec, node)
        }
        None => v,
    }
}

/// An example body built from a schema's own property examples (the document gives most
/// examples per field, not per response).
fn example_of(spec: &Value, schema: &Value, depth: usize) -> Value {
    let schema = resolve(spec, schema);
    if depth > 12 {
        return Value::Null;
    }
    if let Some(e) = schema.get("example") {
        return resolve(spec, e).clone();
    }
    if let Some(props) = schema["properties"].as_object() {
        return Value::Object(
            props
                .iter()
                .map(|(k, v)| (k.clone(), example_of(spec, v, depth + 1)))
                .collect(),
        );
    }
    if schema["type"] == "array" {
        return Value::Array(vec![example_of(spec, &schema["items"], depth + 1)]);
    }
    Value::Null
}

/// Every example the document gives for a 200 answer of `method path`: the media examples,
/// and the one built from the schema's field examples.
fn examples(spec: &Value, method: &str, path: &str) -> Vec<Value> {
    let media = &spec["paths"][path][method]["responses"]["200"]["content"]["application/json"];
    let mut out = Vec::new();
    if let Some(e) = media.get("example") {
        out.push(resolve(spec, e).clone());
    }
    for e in media["examples"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(_, e)| e)
    {
        out.push(resolve(spec, &e["value"]).clone());
    }
    let schema = &media["schema"];
    let schema = schema["oneOf"].get(1).unwrap_or(schema);
    let built = example_of(spec, schema, 0);
    // A schema without field examples gives no example at all (only nulls).
    if has_values(&built) {
        out.push(built);
    }
    out
}

fn has_values(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Array(a) => a.iter().any(has_values),
        Value::Object(o) => o.values().any(has_values),
        _ => true,
    }
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

#[test]
fn every_documented_example_parses_to_exact_values() {
    let spec = spec();
    let mut parsed: HashMap<&str, usize> = HashMap::new();

    // Orders: the create, read and list answers are one order object in the document.
    for (method, path) in [
        ("post", "/orders"),
        ("get", "/orders/{orderReference}"),
        ("get", "/orders"),
    ] {
        for e in examples(&spec, method, path) {
            let o: wire::Order = serde_json::from_value(e.clone())
                .unwrap_or_else(|err| panic!("{method} {path}: {err}: {e}"));
            if o.order_reference.is_some() {
                assert_eq!(o.total, Some(dec("9.99")), "{method} {path}: {e}");
                let line = &o.order[0];
                assert_eq!(line.price_per_unit, Some(dec("9.99")));
                assert!(!o.profiles().is_empty(), "{method} {path}: {e}");
            }
            *parsed.entry(path).or_default() += 1;
        }
    }
    // The list is one order object in the document, a bare array or `{"orders": […]}` live:
    // the document's shape is not a listing we can trust, so reading it is unknown.
    let one = examples(&spec, "get", "/orders").remove(0);
    assert!(wire::parse_order_list(one.clone()).is_err());
    assert_eq!(
        wire::parse_order_list(Value::Array(vec![one]))
            .unwrap()
            .items
            .len(),
        1
    );

    for e in examples(&spec, "get", "/catalogue") {
        let page = wire::CataloguePage::parse(e.clone()).unwrap();
        for b in page.bundles {
            serde_json::from_value::<wire::CatalogueBundle>(b).unwrap();
        }
        *parsed.entry("/catalogue").or_default() += 1;
    }
    for e in examples(&spec, "get", "/organisation") {
        let org: wire::OrganisationResponse = serde_json::from_value(e.clone()).unwrap();
        let (currency, balance) = org.account().unwrap_or_else(|| panic!("{e}"));
        assert_eq!(currency.as_str(), "USD");
        assert_eq!(balance, Some(dec("10000")));
        *parsed.entry("/organisation").or_default() += 1;
    }
    for e in examples(&spec, "get", "/esims") {
        wire::parse_esim_list(e.clone()).unwrap_or_else(|err| panic!("{err}: {e}"));
        *parsed.entry("/esims").or_default() += 1;
    }
    for e in examples(&spec, "get", "/esims/assignments") {
        let list = wire::parse_assignments(e.clone()).unwrap();
        let p = list[0].to_profile().unwrap_or_else(|| panic!("{e}"));
        // The document writes the SM-DP+ address with a scheme; the LPA wants the host.
        assert_eq!(p.activation.smdp_address, "smdp.example.com");
        assert_eq!(
            p.activation.lpa,
            "LPA:1$smdp.example.com$A1B2-C3D4-E5F6-G7H8"
        );
        *parsed.entry("/esims/assignments").or_default() += 1;
    }
    for e in examples(&spec, "get", "/esims/{iccid}/bundles") {
        let b: wire::EsimBundles = serde_json::from_value(e.clone()).unwrap();
        if let Some(u) = b.to_usage() {
            assert_eq!(u.total_bytes, Some(1_000_000_000), "{e}");
        }
        *parsed.entry("/esims/{iccid}/bundles").or_default() += 1;
    }
    for e in examples(&spec, "delete", "/esims/{iccid}/bundles/{name}") {
        serde_json::from_value::<wire::RevokeResponse>(e).unwrap();
        *parsed.entry("revoke").or_default() += 1;
    }
    // Every operation we use that the document gives an example for (the catalogue and the
    // revoke answer have none).
    assert!(parsed.len() >= 6, "{parsed:?}");
}
