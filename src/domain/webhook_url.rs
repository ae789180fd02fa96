//! Where storefront events may be sent: checked when a `webhook_url` is registered and
//! again before every delivery (the outbox), and every address its host resolves to is
//! checked at send time ([`is_internal_addr`]).

use super::ids::has_control;

/// Why a `webhook_url` is refused; displays as the sentence the API answers with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("webhook_url {0}")]
pub struct InvalidWebhookUrl(pub &'static str);

/// Longest `webhook_url` accepted.
pub const MAX_WEBHOOK_URL: usize = 2048;

/// Where storefront events may be sent: https to a public host. In sandbox mode http is also
/// allowed to loopback (a shop developer's machine); in live mode no loopback, private,
/// link-local or cloud-metadata address may be named, so the gateway cannot be made to post
/// into its own network.
pub fn validate(raw: String, sandbox: bool) -> Result<String, InvalidWebhookUrl> {
    let invalid = |why: &'static str| InvalidWebhookUrl(why);
    if raw.len() > MAX_WEBHOOK_URL || has_control(&raw) {
        return Err(invalid(
            "must be at most 2048 characters, without control characters",
        ));
    }
    let u = url::Url::parse(&raw).map_err(|_| invalid("must be an absolute https URL"))?;
    let Some(host) = u.host() else {
        return Err(invalid("must be an absolute https URL"));
    };
    if !u.username().is_empty() || u.password().is_some() {
        return Err(invalid("must not carry credentials"));
    }
    let loopback = is_loopback_host(&host);
    match u.scheme() {
        "https" => {}
        "http" if sandbox && loopback => {}
        "http" if sandbox => {
            return Err(invalid(
                "must be https (http only to loopback in sandbox mode)",
            ));
        }
        _ => return Err(invalid("must be an absolute https URL")),
    }
    if !sandbox && (loopback || is_internal_host(&host)) {
        return Err(invalid(
            "must not point at a loopback, private, link-local or metadata address",
        ));
    }
    Ok(raw)
}

/// An address a live-mode webhook may not reach: loopback, private, link-local, metadata.
/// The outbox checks every address a webhook host resolves to with this at send time.
pub fn is_internal_addr(ip: std::net::IpAddr) -> bool {
    let host = match ip {
        std::net::IpAddr::V4(v4) => url::Host::Ipv4(v4),
        std::net::IpAddr::V6(v6) => url::Host::Ipv6(v6),
    };
    is_loopback_host(&host) || is_internal_host(&host)
}

fn is_loopback_host(host: &url::Host<&str>) -> bool {
    match host {
        url::Host::Domain(d) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost")
        }
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// Addresses inside the operator's network or the cloud's metadata service.
fn is_internal_host(host: &url::Host<&str>) -> bool {
    use std::net::Ipv4Addr;
    let v4_internal = |ip: Ipv4Addr| {
        ip.is_private()
            || ip.is_loopback()
            || ip.is_link_local()
            || ip.is_unspecified()
            || ip.is_broadcast()
            || ip.is_multicast()
            // 100.64.0.0/10: carrier-grade NAT, also used for internal cloud services.
            || (ip.octets()[0] == 100 && (ip.octets()[1] & 0xc0) == 64)
            || ip.octets()[0] == 0
    };
    match host {
        url::Host::Domain(d) => {
            let d = d.trim_end_matches('.').to_ascii_lowercase();
            d == "metadata"
                || d == "metadata.google.internal"
                || d.ends_with(".internal")
                || d.ends_with(".local")
        }
        url::Host::Ipv4(ip) => v4_internal(*ip),
        url::Host::Ipv6(ip) => {
            let seg = ip.segments();
            ip.is_loopback()
                || ip.is_unspecified()
                || ip.is_multicast()
                || (seg[0] & 0xfe00) == 0xfc00 // unique local
                || (seg[0] & 0xffc0) == 0xfe80 // link-local
                || ip.to_ipv4_mapped().is_some_and(v4_internal)
            // AWS's IPv6 metadata endpoint fd00:ec2::254 is covered by unique local.
        }
    }
}
