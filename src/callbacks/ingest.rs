//! One vendor callback, from its raw bytes to stored and applied events: authenticate it
//! the vendor's way, parse it, bound what it carries, keep a sample of what does not parse,
//! then [`super::receive`]. The HTTP layer does only what is HTTP (sender allowlist, rate
//! limit, body size) and answers with the acknowledgement returned here.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::{
    domain::ids::{check_text, printable},
    ordering::Ctx,
    store::{self, events::NewEvent},
    vendors::{CallbackHeaders, CallbackTrust, Vendor, VendorError, VendorEvent, VendorId},
};

/// Of a body that does not parse, only this much is kept for admins.
pub const UNPARSEABLE_SAMPLE_BYTES: usize = 4 * 1024;

/// Unparseable callbacks kept per vendor; beyond it they are counted, not stored, so
/// anonymous junk cannot grow the database (at most this × the sample size per vendor).
pub const MAX_UNPARSEABLE_PER_VENDOR: i64 = 500;

/// Longest id-like field (event id, order number, ICCID) taken from a callback.
pub const MAX_CALLBACK_FIELD_CHARS: usize = 256;

/// Headers kept with a stored event for every vendor; each vendor adds its own
/// ([`VendorId::kept_callback_headers`]). Never an authentication secret.
pub const COMMON_KEPT_HEADERS: &[&str] = &["content-type", "user-agent", "x-request-id"];

/// Why a callback was not taken.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("this vendor is not enabled")]
    VendorNotEnabled,
    /// Failed the vendor's own authentication: nothing was stored.
    #[error("callback verification failed")]
    Unauthenticated,
    /// Authenticated but not understood (a sample is kept for admins, within a cap); the
    /// text is printable and bounded.
    #[error("{0}")]
    Unparseable(String),
    #[error(transparent)]
    Store(#[from] sqlx::Error),
    /// Stored, but applying it failed; the callback worker applies it again.
    #[error(transparent)]
    Apply(#[from] super::CallbackError),
}

/// Verifies, parses, stores and applies one callback of `vendor`; returns the body the
/// vendor expects back.
pub async fn ingest(
    ctx: &Ctx,
    vendor: VendorId,
    headers: &CallbackHeaders,
    body: &[u8],
) -> Result<serde_json::Value, IngestError> {
    let (livemode, adapter, trust) = attribute(ctx, vendor, headers, body).await?;
    let kept = kept_headers(vendor, headers);
    let parsed = adapter
        .parse_callback(headers, body)
        .and_then(|events| check_event_fields(&events).map(|()| events));
    let events = match parsed {
        Ok(events) => events,
        Err(e) => {
            let message = printable_marked(
                &match e {
                    VendorError::InvalidCallback(m) => m,
                    other => other.to_string(),
                },
                500,
            );
            // Answered 400 (not 5xx) so a vendor that retries on 5xx does not hammer us with
            // a body that will never parse.
            store_unparseable(ctx, livemode, vendor, kept, body, trust, &message).await?;
            return Err(IngestError::Unparseable(message));
        }
    };
    // Stored raw first (own commit), then applied; see `callbacks::receive`.
    let results = super::receive(ctx, livemode, vendor, trust, kept, body, &events).await?;
    for result in results {
        count(vendor, result);
    }
    let trust_label = match trust {
        CallbackTrust::Verified => "verified",
        CallbackTrust::Hint => "hint",
    };
    tracing::info!(%vendor, livemode, events = events.len(), trust = trust_label, "vendor callback accepted");
    Ok(vendor.callback_acknowledgement())
}

/// Which mode a callback on the shared `/webhooks/<vendor>` route belongs to, the adapter
/// of that mode and how far it is trusted. Each mode's adapter verifies with its own
/// credentials (the simulators sign with their own throwaway ones), so a callback that
/// verifies as signed under one mode's credentials is that mode's. An unsigned callback (a
/// hint) verifies under both: it belongs to the mode of the order or eSIM it names, and to
/// live mode when it names nothing we know (a hint is only ever a reason to ask the vendor).
async fn attribute(
    ctx: &Ctx,
    vendor: VendorId,
    headers: &CallbackHeaders,
    body: &[u8],
) -> Result<(bool, Arc<dyn Vendor>, CallbackTrust), IngestError> {
    let mut hint = Vec::new();
    let mut failure = None;
    let mut enabled = false;
    for livemode in [true, false] {
        let Some(adapter) = ctx.vendors(livemode).adapter(vendor) else {
            continue;
        };
        enabled = true;
        match adapter.verify_callback(headers, body) {
            Ok(CallbackTrust::Verified) => return Ok((livemode, adapter, CallbackTrust::Verified)),
            Ok(CallbackTrust::Hint) => hint.push((livemode, adapter)),
            Err(e) => failure = Some(e),
        }
    }
    if !enabled {
        return Err(IngestError::VendorNotEnabled);
    }
    let mode = match hint.as_slice() {
        [] => {
            count(vendor, "unauthenticated");
            if let Some(e) = failure {
                tracing::warn!(%vendor, reason = %e, "callback failed verification");
            }
            return Err(IngestError::Unauthenticated);
        }
        [(livemode, _)] => *livemode,
        [(_, adapter), ..] => hinted_mode(ctx, vendor, adapter.as_ref(), headers, body)
            .await?
            .unwrap_or(true),
    };
    let (_, adapter) = hint
        .into_iter()
        .find(|(m, _)| *m == mode)
        .expect("the mode comes from the list");
    Ok((mode, adapter, CallbackTrust::Hint))
}

/// The mode of the first order or eSIM an unsigned callback names, if we know one.
async fn hinted_mode(
    ctx: &Ctx,
    vendor: VendorId,
    adapter: &dyn Vendor,
    headers: &CallbackHeaders,
    body: &[u8],
) -> sqlx::Result<Option<bool>> {
    let Ok(events) = adapter.parse_callback(headers, body) else {
        return Ok(None);
    };
    for ev in &events {
        if let Some(id) = &ev.order_id {
            if let Some(o) = store::orders::get(&ctx.pool, id).await? {
                return Ok(Some(o.livemode));
            }
        }
        if let Some(iccid) = &ev.iccid {
            if let Some(e) = store::esims::get(&ctx.pool, iccid).await? {
                return Ok(Some(e.livemode));
            }
        }
        if let Some(r) = &ev.vendor_reference {
            for livemode in [true, false] {
                if store::orders::by_vendor_reference(&ctx.pool, livemode, vendor, r)
                    .await?
                    .is_some()
                {
                    return Ok(Some(livemode));
                }
            }
        }
    }
    Ok(None)
}

/// `webhook_events_total{vendor, result}`.
pub fn count(vendor: VendorId, result: &'static str) {
    metrics::counter!("webhook_events_total", "vendor" => vendor.as_str(), "result" => result)
        .increment(1);
}

fn kept_headers(vendor: VendorId, headers: &CallbackHeaders) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for name in COMMON_KEPT_HEADERS
        .iter()
        .chain(vendor.kept_callback_headers())
    {
        if let Some(v) = headers.get(name) {
            m.insert((*name).to_string(), serde_json::Value::from(v));
        }
    }
    serde_json::Value::Object(m)
}

/// Whether any text in `v` holds a C0 control character (what JSON escapes): such text
/// would make Postgres refuse the row (a NUL) or mislead whoever reads it.
fn has_control_text(v: &serde_json::Value) -> bool {
    use serde_json::Value;
    let control = |s: &str| s.chars().any(|c| c < ' ');
    match v {
        Value::String(s) => control(s),
        Value::Array(items) => items.iter().any(has_control_text),
        Value::Object(m) => m.iter().any(|(k, v)| control(k) || has_control_text(v)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

/// What a parsed callback carries is stored and looked up: the id-like fields bounded and
/// printable, and no control character in any text at all (an LPA string or a status text
/// with a NUL would make Postgres refuse the row).
fn check_event_fields(events: &[VendorEvent]) -> Result<(), VendorError> {
    for ev in events {
        let any_control = serde_json::to_value(ev)
            .map(|v| has_control_text(&v))
            .unwrap_or(true);
        if any_control {
            return Err(VendorError::InvalidCallback(
                "a text field contains control characters".into(),
            ));
        }
        let fields = [
            ("event id", Some(ev.dedupe_key.as_str())),
            ("order id", ev.order_id.as_deref()),
            ("vendor reference", ev.vendor_reference.as_deref()),
            ("iccid", ev.iccid.as_deref()),
        ];
        for (name, value) in fields {
            if let Some(v) = value {
                check_text(v, MAX_CALLBACK_FIELD_CHARS).map_err(|e| {
                    VendorError::InvalidCallback(format!(
                        "{name} {e} (1–{MAX_CALLBACK_FIELD_CHARS})"
                    ))
                })?;
            }
        }
    }
    Ok(())
}

/// Text from outside that goes into an `error` column or a response: printable and short,
/// marked when cut.
fn printable_marked(s: &str, max_chars: usize) -> String {
    let mut out = printable(s, max_chars);
    if s.chars().count() > max_chars {
        out.push('…');
    }
    out
}

async fn store_unparseable(
    ctx: &Ctx,
    livemode: bool,
    vendor: VendorId,
    headers: serde_json::Value,
    body: &[u8],
    trust: CallbackTrust,
    message: &str,
) -> sqlx::Result<()> {
    let kept = store::events::unparseable_count(&ctx.pool, vendor.as_str()).await?;
    if kept >= MAX_UNPARSEABLE_PER_VENDOR {
        count(vendor, "unparseable_dropped");
        return Ok(());
    }
    let key = format!("unparseable:{}", hex::encode(Sha256::digest(body)));
    let sample = &body[..body.len().min(UNPARSEABLE_SAMPLE_BYTES)];
    let error = if sample.len() < body.len() {
        format!(
            "{message} (body of {} bytes, first {} kept)",
            body.len(),
            sample.len()
        )
    } else {
        message.to_string()
    };
    store::events::insert(
        &ctx.pool,
        &NewEvent {
            livemode,
            vendor: vendor.as_str(),
            dedupe_key: &key,
            kind: None,
            headers,
            body: sample,
            status: "unparseable",
            error: Some(&error),
            order_ref: None,
            iccid: None,
            trusted: trust == CallbackTrust::Verified,
        },
        None,
    )
    .await?;
    count(vendor, "unparseable");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_anywhere_in_an_event_are_found() {
        let v = serde_json::json!({"a": ["ok", {"b": "x\u{0}y"}]});
        assert!(has_control_text(&v));
        let v = serde_json::json!({"a": "tab\there"});
        assert!(has_control_text(&v));
        // Only what JSON escapes counts, as before (C1 controls pass).
        let v = serde_json::json!({"a": "caf\u{e9} \u{85}", "n": 1});
        assert!(!has_control_text(&v));
    }

    #[test]
    fn kept_headers_are_the_common_ones_and_the_vendors_own() {
        let h = CallbackHeaders::new()
            .with("Content-Type", "application/json")
            .with("X-Signature-SHA256", "abc")
            .with("token", "secret");
        let kept = kept_headers(VendorId::EsimGo, &h);
        assert_eq!(
            kept,
            serde_json::json!({"content-type": "application/json", "x-signature-sha256": "abc"})
        );
        let kept = kept_headers(VendorId::EsimFx, &h);
        assert_eq!(
            kept,
            serde_json::json!({"content-type": "application/json"})
        );
    }
}
