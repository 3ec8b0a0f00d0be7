//! The sandbox flags: the network policy (`--allow`, `--policy`) and the
//! guest's limits, and the CLI's default policy (the URLs given, plus
//! public addresses with -L).

use std::path::PathBuf;

use crate::limits::{parse_size, Limits, LimitsSpec};
use crate::policy::{HostPattern, PolicyFile, PortPattern, Rule};
use crate::{Error, Policy};

/// Room for the request head next to a request body, when the CLI fits
/// the limits to the body.
const HEAD_ROOM: u64 = 64 * 1024;

/// The Sandbox flags, flattened into [`super::Args`].
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SandboxArgs {
    /// Let the guest connect to PATTERN (repeatable): `example.com`, `*.example.com`, `*`,
    /// an IP (`10.0.0.7`, `[::1]`) or CIDR (`10.0.0.0/8`), each optionally with `:PORT`,
    /// `:LOW-HIGH` or `:*`. The URLs given are always allowed, and with -L any public
    /// address. Wildcards never allow loopback/private/link-local addresses.
    #[arg(long = "allow", value_name = "PATTERN", help_heading = "Sandbox")]
    pub allow: Vec<String>,
    /// A plugin policy file (TOML): `allow = ["PATTERN", ...]` and a `[limits]` table
    /// (memory, fuel, wall-time, connections, total-connections, bytes-read,
    /// bytes-written, body-bytes, stream-buffer). Flags override its limits.
    #[arg(long = "policy", value_name = "FILE", help_heading = "Sandbox")]
    pub policy: Option<PathBuf>,
    /// The guest's linear memory (K, M, G: powers of 1024) [default: 256M].
    #[arg(long = "max-memory", value_name = "SIZE", value_parser = parse_size, help_heading = "Sandbox")]
    pub max_memory: Option<u64>,
    /// The guest's CPU, in fuel: about one unit per WebAssembly instruction [default: 10^12].
    #[arg(long = "max-fuel", value_name = "N", value_parser = parse_size, help_heading = "Sandbox")]
    pub max_fuel: Option<u64>,
    /// Wall-clock time of one fetch, 0 for none [default: 3600].
    #[arg(long = "max-wall-time", value_name = "SECONDS", help_heading = "Sandbox")]
    pub max_wall_time: Option<f64>,
    /// Connections the guest may have open at once [default: 8].
    #[arg(long = "max-connections", value_name = "N", help_heading = "Sandbox")]
    pub max_connections: Option<u32>,
    /// Connections the guest may open over one fetch [default: 256].
    #[arg(long = "max-total-connections", value_name = "N", help_heading = "Sandbox")]
    pub max_total_connections: Option<u32>,
    /// Bytes the guest may receive [default: no limit].
    #[arg(long = "max-bytes-read", value_name = "SIZE", value_parser = parse_size, help_heading = "Sandbox")]
    pub max_bytes_read: Option<u64>,
    /// Bytes the guest may send [default: 1G, or enough for the request body].
    #[arg(long = "max-bytes-written", value_name = "SIZE", value_parser = parse_size, help_heading = "Sandbox")]
    pub max_bytes_written: Option<u64>,
    /// Bytes the guest may deliver as output (bodies, heads, trailers) [default: no limit].
    #[arg(long = "max-body-bytes", value_name = "SIZE", value_parser = parse_size, help_heading = "Sandbox")]
    pub max_body_bytes: Option<u64>,
    /// What the host buffers for one stream: a write queue, a read [default: 16M, or enough
    /// for the request body].
    #[arg(long = "max-stream-buffer", value_name = "SIZE", value_parser = parse_size, help_heading = "Sandbox")]
    pub max_stream_buffer: Option<u64>,
}

impl SandboxArgs {
    /// The limits given as flags.
    fn spec(&self) -> LimitsSpec {
        LimitsSpec {
            memory: self.max_memory,
            fuel: self.max_fuel,
            wall_time: self.max_wall_time,
            connections: self.max_connections,
            total_connections: self.max_total_connections,
            bytes_read: self.max_bytes_read,
            bytes_written: self.max_bytes_written,
            body_bytes: self.max_body_bytes,
            stream_buffer: self.max_stream_buffer,
        }
    }

    /// The policy and limits of this invocation: exactly the host and port
    /// of each URL given, any public address with -L (`follow`), the
    /// `--allow` rules and the policy file's; the file's limits, then the
    /// flags', over the defaults. The limits are then fitted to a request
    /// body of `body_len` bytes sent up to `sends` times (unless set
    /// explicitly).
    pub fn build(&self, urls: &[String], follow: bool, body_len: usize, sends: u32) -> Result<(Policy, Limits), Error> {
        let mut policy = Policy::default();
        // Many URLs of one origin (a batch of files from one server) make
        // one rule: a URL whose origin is the previous one's is not parsed
        // again (its rule would be the same).
        let mut last_origin = None;
        for url in urls {
            let origin = origin_of(url);
            if last_origin == Some(origin) {
                continue;
            }
            last_origin = Some(origin);
            if let Some(rule) = url_rule(url) {
                policy.push(rule);
            }
        }
        if follow {
            policy.push(Rule::new(HostPattern::Any, PortPattern::Any));
        }
        for p in &self.allow {
            policy.push(Rule::parse(p).map_err(|e| Error::Usage(format!("--allow: {e}")))?);
        }
        let mut spec = self.spec();
        if let Some(path) = &self.policy {
            let file = PolicyFile::load(path).map_err(Error::Usage)?;
            for rule in file.rules() {
                policy.push(rule);
            }
            spec = file.limits.overridden_by(&spec);
        }
        let mut limits = spec
            .apply(Limits::default())
            .map_err(|e| Error::Usage(format!("--max-wall-time: {e}")))?;
        if body_len > 0 {
            let need = body_len as u64 + HEAD_ROOM;
            if spec.stream_buffer.is_none() {
                limits.stream_buffer = limits.stream_buffer.max(need);
            }
            if spec.bytes_written.is_none() {
                limits.bytes_written = limits.bytes_written.map(|w| w.max(need.saturating_mul(sends.into())));
            }
        }
        tracing::debug!(
            "sandbox: allow {:?}; limits {limits:?}",
            policy.rules().iter().map(ToString::to_string).collect::<Vec<_>>()
        );
        Ok((policy, limits))
    }
}

/// The URL up to the end of its authority (scheme, user, host, port):
/// all that [`url_rule`] depends on.
fn origin_of(url: &str) -> &str {
    let start = url.find("://").map_or(0, |i| i + 3);
    let end = url[start..]
        .find(['/', '?', '#', '\\'])
        .map_or(url.len(), |i| start + i);
    &url[..end]
}

/// The rule for a URL given on the command line: exactly its host and
/// port (the scheme's default port when none is written; any port for a
/// scheme without a known default). None for a URL that does not parse
/// (the guest reports it).
pub fn url_rule(url: &str) -> Option<Rule> {
    let full = if url.contains("://") {
        url.to_string()
    } else {
        format!("http://{url}")
    };
    let parsed = url::Url::parse(&full).ok()?;
    let host = match parsed.host()? {
        url::Host::Domain(d) => d.to_string(),
        url::Host::Ipv4(ip) => ip.to_string(),
        url::Host::Ipv6(ip) => ip.to_string(),
    };
    if host.is_empty() {
        return None;
    }
    let port = parsed.port().or_else(|| match parsed.scheme() {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        "gopher" => Some(70),
        "ftp" => Some(21),
        _ => None,
    });
    Some(match port {
        Some(p) => Rule::exact(&host, p),
        None => {
            let exact = Rule::exact(&host, 1);
            Rule::new(exact.host, PortPattern::Any)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_of_one_origin_make_one_rule() {
        assert_eq!(origin_of("http://127.0.0.1:8080/a/b?q#f"), "http://127.0.0.1:8080");
        assert_eq!(origin_of("https://u:p@h.example?x"), "https://u:p@h.example");
        assert_eq!(origin_of("h.example:81\\x"), "h.example:81");
        assert_eq!(origin_of("h.example"), "h.example");
        let urls: Vec<String> = [
            "http://a.example/1",
            "http://a.example/2",
            "http://b.example:81/",
            "http://a.example/3",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let (policy, _) = SandboxArgs::default().build(&urls, false, 0, 1).unwrap();
        let rules: Vec<String> = policy.rules().iter().map(ToString::to_string).collect();
        assert_eq!(rules, ["a.example:80", "b.example:81"]);
    }

    #[test]
    fn url_rules() {
        let r = |u: &str| url_rule(u).map(|r| r.to_string());
        assert_eq!(r("http://127.0.0.1:8080/x").as_deref(), Some("127.0.0.1:8080"));
        assert_eq!(r("example.com/x").as_deref(), Some("example.com:80"));
        assert_eq!(r("https://Example.COM/").as_deref(), Some("example.com:443"));
        assert_eq!(r("http://[::1]:81/").as_deref(), Some("[::1]:81"));
        assert_eq!(r("gopher://h.test/").as_deref(), Some("h.test:70"));
        assert_eq!(r("weird://h.test/").as_deref(), Some("h.test"));
        assert_eq!(r("http://[::1"), None);
    }

    #[test]
    fn default_policy_and_body_fit() {
        let args = SandboxArgs::default();
        let (p, l) = args.build(&["http://127.0.0.1:1/".into()], false, 0, 1).unwrap();
        assert_eq!(p.rules().len(), 1);
        assert_eq!(l, Limits::default());
        let (p, l) = args.build(&["http://127.0.0.1:1/".into()], true, 40 << 20, 2).unwrap();
        assert_eq!(p.rules().len(), 2);
        assert!(l.stream_buffer > 40 << 20);
        assert!(l.bytes_written.unwrap() >= 80 << 20);
        let bad = SandboxArgs {
            allow: vec!["a b".into()],
            ..Default::default()
        };
        assert!(matches!(bad.build(&[], false, 0, 1), Err(Error::Usage(_))));
    }
}
