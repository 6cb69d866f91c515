//! Server-side request forgery: a partner's URL must not make Hotline call
//! into its own network. Checked when an endpoint is registered and again on
//! every delivery, where the resolver itself drops the connection to a
//! refused address (so a name re-pointed after registration gains nothing).

use std::{
    net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr},
    sync::Arc,
};

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::Url;

#[derive(Clone, Debug, Default)]
pub struct Guard {
    allow_http: bool,
    /// Non-public networks configuration lets through.
    allow: Vec<IpNet>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refusal {
    #[error("is not an absolute URL")]
    Malformed,
    #[error("must use https")]
    NotHttps,
    #[error("must not carry a user name or password")]
    Credentials,
    #[error("has a host that does not resolve")]
    Unresolved,
    #[error("resolves to {0}, which is not a public address")]
    NotPublic(IpAddr),
}

impl Guard {
    pub fn new(allow_http: bool, allow: Vec<IpNet>) -> Self {
        Self { allow_http, allow }
    }

    /// The URL, if its form is acceptable (scheme, host, no credentials);
    /// an address written in it must be permitted.
    pub fn parse(&self, url: &str) -> Result<Url, Refusal> {
        let parsed = Url::parse(url).map_err(|_| Refusal::Malformed)?;
        match parsed.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            _ => return Err(Refusal::NotHttps),
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(Refusal::Credentials);
        }
        match parsed.host() {
            None => return Err(Refusal::Malformed),
            Some(url::Host::Ipv4(ip)) => self.check_ip(IpAddr::V4(ip))?,
            Some(url::Host::Ipv6(ip)) => self.check_ip(IpAddr::V6(ip))?,
            Some(url::Host::Domain(_)) => {}
        }
        Ok(parsed)
    }

    /// [`Self::parse`], then every address the host resolves to.
    pub async fn check(&self, url: &str) -> Result<Url, Refusal> {
        let parsed = self.parse(url)?;
        if let Some(url::Host::Domain(host)) = parsed.host() {
            self.resolve(host).await?;
        }
        Ok(parsed)
    }

    /// The resolver for a delivery client.
    pub fn resolver(&self) -> Arc<Self> {
        Arc::new(self.clone())
    }

    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Refusal> {
        if is_public(ip) || self.allow.iter().any(|net| net.contains(&ip)) {
            Ok(())
        } else {
            Err(Refusal::NotPublic(ip))
        }
    }

    async fn resolve(&self, host: &str) -> Result<Vec<SocketAddr>, Refusal> {
        let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
            .await
            .map_err(|_| Refusal::Unresolved)?
            .collect();
        if addresses.is_empty() {
            return Err(Refusal::Unresolved);
        }
        for address in &addresses {
            self.check_ip(address.ip())?;
        }
        Ok(addresses)
    }
}

/// The resolver deliveries connect through: a name with any refused address
/// is not connected to at all.
impl Resolve for Guard {
    fn resolve(&self, name: Name) -> Resolving {
        let guard = self.clone();
        Box::pin(async move {
            let addresses = Guard::resolve(&guard, name.as_str()).await?;
            Ok(Box::new(addresses.into_iter()) as Addrs)
        })
    }
}

/// Reachable across the internet: not loopback, private, link-local
/// (cloud metadata at 169.254.169.254 among them), shared (CGNAT),
/// unspecified, broadcast, multicast, documentation or reserved.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(ip) => is_public_v4(ip),
        IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(ip),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 198 && (18..20).contains(&b))
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || ip.is_unique_local()
        || ip.is_unicast_link_local()
        || first == 0x2001 && ip.segments()[1] == 0x0db8
        || first == 0x0064 && ip.segments()[1] == 0xff9b
        || first == 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict() -> Guard {
        Guard::new(false, Vec::new())
    }

    #[test]
    fn refuses_what_is_not_public() {
        for address in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            let ip: IpAddr = address.parse().unwrap();
            assert!(!is_public(ip), "{address} passed");
        }
        for address in ["8.8.8.8", "203.0.114.1", "2606:4700::1111"] {
            assert!(is_public(address.parse().unwrap()), "{address} refused");
        }
    }

    #[test]
    fn reads_addresses_however_they_are_written() {
        for url in [
            "https://127.0.0.1/hook",
            "https://0x7f000001/hook",
            "https://2130706433/hook",
            "https://[::1]/hook",
            "https://[::ffff:7f00:1]/hook",
            "https://169.254.169.254/latest/meta-data",
        ] {
            assert!(
                matches!(strict().parse(url), Err(Refusal::NotPublic(_))),
                "{url} passed"
            );
        }
    }

    #[test]
    fn wants_https_and_no_credentials() {
        assert_eq!(
            strict().parse("http://shop.example/hook"),
            Err(Refusal::NotHttps)
        );
        assert_eq!(
            strict().parse("ftp://shop.example/"),
            Err(Refusal::NotHttps)
        );
        assert_eq!(strict().parse("/hook"), Err(Refusal::Malformed));
        assert_eq!(
            strict().parse("https://user:pw@shop.example/hook"),
            Err(Refusal::Credentials)
        );
        assert!(strict().parse("https://shop.example/hook").is_ok());
    }

    #[test]
    fn lets_through_only_the_networks_configured() {
        let guard = Guard::new(true, vec!["127.0.0.1/32".parse().unwrap()]);
        assert!(guard.parse("http://127.0.0.1:8080/hook").is_ok());
        assert!(guard.parse("http://127.0.0.2/hook").is_err());
        assert!(guard.parse("http://10.0.0.1/hook").is_err());
    }

    #[tokio::test]
    async fn checks_what_a_name_resolves_to() {
        assert!(matches!(
            strict().check("https://localhost/hook").await,
            Err(Refusal::NotPublic(_))
        ));
        assert_eq!(
            strict().check("https://nowhere.invalid/hook").await,
            Err(Refusal::Unresolved)
        );
    }
}
