//! Name resolution for storefront webhooks in live mode. A `webhook_url` is checked when it
//! is registered, but its host may later resolve elsewhere (DNS rebinding): every address
//! the connection would use is checked here, when the event is sent, and a host resolving to
//! a loopback, private, link-local or metadata address is not called at all.

use std::{net::SocketAddr, sync::Arc};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::domain::webhook_url::is_internal_addr;

/// The system resolver (getaddrinfo on a blocking thread, as reqwest's default).
pub struct SystemDns;

impl Resolve for SystemDns {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((name.as_str(), 0)).await?.collect();
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Refusal of a host that resolves to an internal address.
#[derive(Debug, thiserror::Error)]
#[error("webhook host resolves to a loopback, private, link-local or metadata address")]
pub struct InternalAddress;

/// Resolves webhook hosts with `inner`; in live mode (`refuse_internal`) a name is refused
/// when any of its addresses is internal (a host with one public and one private address
/// could be steered to the private one).
pub struct WebhookDns {
    pub inner: Arc<dyn Resolve>,
    pub refuse_internal: bool,
}

impl Resolve for WebhookDns {
    fn resolve(&self, name: Name) -> Resolving {
        let lookup = self.inner.resolve(name);
        let refuse_internal = self.refuse_internal;
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = lookup.await?.collect();
            if refuse_internal && addrs.iter().any(|a| is_internal_addr(a.ip())) {
                return Err(Box::new(InternalAddress) as _);
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Whether a request failed because of `PublicOnly`.
pub fn refused_internal(e: &reqwest::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        if err.is::<InternalAddress>() {
            return true;
        }
        source = err.source();
    }
    false
}
