//! The client's address behind reverse proxies (`CONFAB_TRUSTED_PROXIES`).
//!
//! A proxy appends the address it was called from to `X-Forwarded-For`, so the header reads
//! `client, proxy1, proxy2` and the TCP peer is the last proxy. Only what trusted proxies
//! wrote can be believed: walking from the right, every trusted hop is skipped and the first
//! address that is not a trusted proxy is the client. Anything left of it was written by the
//! client and is ignored, so a client cannot choose its own address (and, with it, its own
//! sign-in throttle). Without trusted proxies the header is never read.

use std::net::{IpAddr, SocketAddr};

use actix_web::HttpRequest;
use actix_web::http::header::HeaderName;
use ipnet::IpNet;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");

/// One entry of `CONFAB_TRUSTED_PROXIES`: an address (`10.0.0.5`, `::1`) or a CIDR block
/// (`172.30.0.0/24`).
///
/// # Errors
/// A sentence naming the entry when it is neither.
pub fn parse_proxy(entry: &str) -> Result<IpNet, String> {
    entry
        .parse::<IpNet>()
        .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
        .map_err(|_| {
            format!("`{entry}` is neither an IP address nor a CIDR block (e.g. 10.0.0.0/8)")
        })
}

/// The address `req` came from: its TCP peer, or, when the peer is a trusted proxy, the
/// client its proxies name (see the module's docs). `None` when the peer is unknown.
#[must_use]
pub fn of(req: &HttpRequest, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let forwarded = req
        .headers()
        .get_all(X_FORWARDED_FOR)
        .filter_map(|value| value.to_str().ok());
    Some(resolve(peer, forwarded, trusted))
}

/// The client among `peer` and the `X-Forwarded-For` header lines (in the order received).
fn resolve<'a>(peer: IpAddr, lines: impl Iterator<Item = &'a str>, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(&canonical(*ip)));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops: Vec<&str> = lines
        .flat_map(|line| line.split(','))
        .map(str::trim)
        .collect();
    let mut client = peer;
    for hop in hops.iter().rev() {
        // A hop that does not parse was not written by a proxy we trust to write well: the
        // last trusted hop is as far as the header can be believed.
        let Some(ip) = parse_hop(hop) else {
            return client;
        };
        client = ip;
        if !is_trusted(&ip) {
            return ip;
        }
    }
    client
}

/// An address as proxies write them: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`, `[2001:db8::1]:80`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .map(canonical)
}

/// An IPv4 address seen through an IPv6 socket (`::ffff:10.0.0.5`) as the IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 @ IpAddr::V4(_) => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|s| parse_proxy(s).unwrap()).collect()
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let client = resolve(ip("203.0.113.9"), ["198.51.100.1"].into_iter(), &[]);
        assert_eq!(client, ip("203.0.113.9"));
    }

    #[test]
    fn a_peer_that_is_not_trusted_is_the_client_whatever_it_forwards() {
        let trusted = nets(&["10.0.0.0/8"]);
        let client = resolve(ip("203.0.113.9"), ["10.1.1.1"].into_iter(), &trusted);
        assert_eq!(client, ip("203.0.113.9"));
    }

    #[test]
    fn behind_a_trusted_proxy_the_rightmost_untrusted_hop_is_the_client() {
        let trusted = nets(&["10.0.0.0/8", "172.30.0.2"]);
        // The client claims 1.1.1.1; its real address 198.51.100.7 was appended by the proxies.
        let client = resolve(
            ip("172.30.0.2"),
            ["1.1.1.1, 198.51.100.7", "10.0.0.3"].into_iter(),
            &trusted,
        );
        assert_eq!(client, ip("198.51.100.7"));
    }

    #[test]
    fn ports_brackets_and_mapped_addresses_are_understood() {
        let trusted = nets(&["10.0.0.5", "::1"]);
        assert_eq!(
            resolve(
                ip("::ffff:10.0.0.5"),
                ["198.51.100.7:4711"].into_iter(),
                &trusted
            ),
            ip("198.51.100.7")
        );
        assert_eq!(
            resolve(ip("::1"), ["[2001:db8::7]:443"].into_iter(), &trusted),
            ip("2001:db8::7")
        );
    }

    #[test]
    fn garbage_or_only_trusted_hops_stop_at_the_last_believable_address() {
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(
            resolve(
                ip("10.0.0.1"),
                ["198.51.100.7, nonsense"].into_iter(),
                &trusted
            ),
            ip("10.0.0.1")
        );
        assert_eq!(
            resolve(ip("10.0.0.1"), ["10.0.0.9, 10.0.0.8"].into_iter(), &trusted),
            ip("10.0.0.9")
        );
        assert_eq!(
            resolve(ip("10.0.0.1"), std::iter::empty(), &trusted),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn entries_are_addresses_or_blocks_and_anything_else_is_named() {
        assert_eq!(
            parse_proxy("10.0.0.5").unwrap(),
            "10.0.0.5/32".parse::<IpNet>().unwrap()
        );
        assert_eq!(
            parse_proxy("fd00::/8").unwrap(),
            "fd00::/8".parse::<IpNet>().unwrap()
        );
        let error = parse_proxy("proxy.internal").unwrap_err();
        assert!(error.contains("`proxy.internal`"), "{error}");
    }
}
