//! The network policy: which targets a guest may connect to.
//!
//! A policy is an allow-list of [`Rule`]s, each a `host[:port]` pattern:
//!
//! | pattern | matches |
//! |---|---|
//! | `example.com` | exactly that name (any address it resolves to, private ones included) |
//! | `*.example.com` | names under example.com, not example.com itself (public addresses only) |
//! | `*` | any name (public addresses only) |
//! | `192.0.2.7`, `[2001:db8::1]`, `::1` | that address, as a literal or as what a name resolved to |
//! | `10.0.0.0/8`, `fc00::/7` | addresses in that range, literal or resolved |
//!
//! each optionally followed by `:PORT`, `:LOW-HIGH` or `:*` (no port means
//! any port; IPv6 takes brackets when a port follows: `[::1]:8080`,
//! `[fc00::/7]:443`).
//!
//! The check runs twice for every connection (see `net::connect`):
//! [`Policy::allows_name`] before the name is resolved (so a guest cannot
//! make the host look up arbitrary names: a DNS query can leak data), and
//! [`Policy::allows_addr`] for every address actually dialled (so what is
//! checked is what is connected to: no rebinding window).
//!
//! Non-public addresses ([`classify`]: loopback, private, link-local,
//! unique-local, and their IPv4-mapped and embedded forms) are reachable
//! only through a rule that names them explicitly: an IP or CIDR rule
//! containing the address, or an exact host name rule. The wildcards `*`
//! and `*.example.com` allow public addresses only, so that a name a
//! guest picks (or a DNS answer an attacker controls) cannot lead into
//! the host's own network.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Deserialize;

use crate::limits::LimitsSpec;

/// The forms an allow pattern can take, for error messages.
pub const VALID_FORMS: &str = "valid forms: `example.com`, `*.example.com`, `*`, an IP (`192.0.2.7`, `::1`) \
or a CIDR (`10.0.0.0/8`, `fc00::/7`), each optionally followed by `:PORT`, `:LOW-HIGH` or `:*` \
(IPv6 in brackets before a port: `[::1]:8080`, `[fc00::/7]:443`)";

/// The host part of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// `*`: any name; public addresses only.
    Any,
    /// An exact name, lower case, without a trailing dot.
    Exact(String),
    /// `*.suffix`: names ending in `.suffix` (the suffix itself is not
    /// matched); public addresses only. Holds the suffix, lower case.
    Subdomains(String),
    /// One address (IPv4-mapped IPv6 addresses are held as IPv4).
    Ip(IpAddr),
    /// An address range: network address and prefix length.
    Cidr(IpAddr, u8),
}

/// The port part of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortPattern {
    /// No port given, or `:*`.
    Any,
    /// An inclusive range; a single port is `Range(p, p)`.
    Range(u16, u16),
}

impl PortPattern {
    fn matches(self, port: u16) -> bool {
        match self {
            PortPattern::Any => true,
            PortPattern::Range(lo, hi) => (lo..=hi).contains(&port),
        }
    }
}

/// One allow rule, parsed from a `host[:port]` pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// The hosts the rule allows.
    pub host: HostPattern,
    /// The ports the rule allows.
    pub ports: PortPattern,
    /// The rule in its canonical text form, for messages.
    text: String,
}

/// A pattern that is not a valid rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid allow pattern {pattern:?}: {why}; {VALID_FORMS}")]
pub struct RuleError {
    /// The pattern as given.
    pub pattern: String,
    /// What is wrong with it.
    pub why: String,
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for Rule {
    type Err = RuleError;
    fn from_str(s: &str) -> Result<Rule, RuleError> {
        Rule::parse(s)
    }
}

impl Rule {
    /// Parse a `host[:port]` pattern (see the module documentation).
    pub fn parse(pattern: &str) -> Result<Rule, RuleError> {
        let err = |why: &str| RuleError {
            pattern: pattern.to_string(),
            why: why.to_string(),
        };
        let s = pattern.trim();
        if s.is_empty() {
            return Err(err("empty pattern"));
        }
        if s.contains("://") {
            return Err(err("a pattern is a host and port, not a URL"));
        }
        // Split host and port. Bare IPv6 (with or without a prefix length)
        // has colons and no port; bracketed IPv6 may have one.
        let (host, port) = if let Some(rest) = s.strip_prefix('[') {
            let Some((inside, after)) = rest.split_once(']') else {
                return Err(err("missing `]` after a bracketed IPv6 address"));
            };
            let port = match after {
                "" => None,
                p => Some(p.strip_prefix(':').ok_or_else(|| err("expected `:PORT` after `]`"))?),
            };
            if !inside.contains(':') {
                return Err(err("brackets are for IPv6 addresses only"));
            }
            (inside, port)
        } else if s.matches(':').count() > 1 {
            (s, None)
        } else {
            match s.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (s, None),
            }
        };
        let ports = match port {
            None | Some("*") => PortPattern::Any,
            Some(p) => parse_ports(p).map_err(|why| err(&why))?,
        };
        let host = parse_host(host).map_err(|why| err(&why))?;
        Ok(Rule::new(host, ports))
    }

    /// A rule from its parts.
    pub fn new(host: HostPattern, ports: PortPattern) -> Rule {
        let h = match &host {
            HostPattern::Any => "*".to_string(),
            HostPattern::Exact(name) => name.clone(),
            HostPattern::Subdomains(suffix) => format!("*.{suffix}"),
            HostPattern::Ip(ip) => ip.to_string(),
            HostPattern::Cidr(ip, len) => format!("{ip}/{len}"),
        };
        let v6 = matches!(
            host,
            HostPattern::Ip(IpAddr::V6(_)) | HostPattern::Cidr(IpAddr::V6(_), _)
        );
        let text = match ports {
            PortPattern::Any => h,
            PortPattern::Range(lo, hi) => {
                let p = if lo == hi { lo.to_string() } else { format!("{lo}-{hi}") };
                if v6 {
                    format!("[{h}]:{p}")
                } else {
                    format!("{h}:{p}")
                }
            }
        };
        Rule { host, ports, text }
    }

    /// Exactly `host:port`: the CLI's rule for a URL given on the command
    /// line. An IP literal becomes an IP rule, a name an exact-name rule.
    pub fn exact(host: &str, port: u16) -> Rule {
        let h = normalize_host(host);
        let pattern = match h.parse::<IpAddr>() {
            Ok(ip) => HostPattern::Ip(ip.to_canonical()),
            Err(_) => HostPattern::Exact(h),
        };
        Rule::new(pattern, PortPattern::Range(port, port))
    }

    /// Does this rule let the name (or literal) `host` be resolved and
    /// connected to on `port`? `host` is already normalised.
    fn matches_name(&self, host: &str, literal: Option<IpAddr>, port: u16) -> bool {
        if !self.ports.matches(port) {
            return false;
        }
        match (&self.host, literal) {
            (HostPattern::Any, _) => true,
            (HostPattern::Exact(name), None) => name == host,
            (HostPattern::Subdomains(suffix), None) => is_subdomain(host, suffix),
            (HostPattern::Ip(rule), Some(ip)) => *rule == ip,
            (HostPattern::Cidr(net, len), Some(ip)) => in_cidr(ip, *net, *len),
            _ => false,
        }
    }

    /// Does this rule let `host:port` connect to `ip`? `host` is already
    /// normalised, `ip` canonical. Wildcards allow public addresses only.
    fn matches_addr(&self, host: &str, port: u16, ip: IpAddr) -> bool {
        if !self.ports.matches(port) {
            return false;
        }
        match &self.host {
            HostPattern::Any => classify(ip).is_none(),
            HostPattern::Subdomains(suffix) => is_subdomain(host, suffix) && classify(ip).is_none(),
            HostPattern::Exact(name) => name == host,
            HostPattern::Ip(rule) => *rule == ip,
            HostPattern::Cidr(net, len) => in_cidr(ip, *net, *len),
        }
    }

    /// True for the wildcards (which never allow non-public addresses).
    fn is_wildcard(&self) -> bool {
        matches!(self.host, HostPattern::Any | HostPattern::Subdomains(_))
    }
}

fn parse_ports(p: &str) -> Result<PortPattern, String> {
    let one = |s: &str| -> Result<u16, String> {
        match s.parse::<u16>() {
            Ok(0) => Err("port 0 is not a valid port".into()),
            Ok(n) => Ok(n),
            Err(_) => Err(format!("{s:?} is not a port (1-65535)")),
        }
    };
    match p.split_once('-') {
        None => {
            let n = one(p)?;
            Ok(PortPattern::Range(n, n))
        }
        Some((lo, hi)) => {
            let (lo, hi) = (one(lo)?, one(hi)?);
            if lo > hi {
                return Err(format!("port range {lo}-{hi} is empty (low above high)"));
            }
            Ok(PortPattern::Range(lo, hi))
        }
    }
}

fn parse_host(h: &str) -> Result<HostPattern, String> {
    if h == "*" {
        return Ok(HostPattern::Any);
    }
    if let Some((addr, len)) = h.split_once('/') {
        let ip: IpAddr = addr
            .parse()
            .map_err(|_| format!("{addr:?} before `/` is not an IP address"))?;
        let ip = ip.to_canonical();
        let max = if ip.is_ipv4() { 32 } else { 128 };
        // An IPv4-mapped prefix (::ffff:10.0.0.0/104) becomes its IPv4 form.
        let len: u8 = len
            .parse()
            .ok()
            .filter(|l| *l <= if addr.contains(':') { 128 } else { 32 })
            .ok_or_else(|| format!("{len:?} is not a prefix length (0-{max})"))?;
        let len = if addr.contains(':') && ip.is_ipv4() {
            len.checked_sub(96)
                .ok_or_else(|| "an IPv4-mapped prefix must be at least /96".to_string())?
        } else {
            len
        };
        return Ok(HostPattern::Cidr(mask(ip, len), len));
    }
    if let Ok(ip) = h.parse::<IpAddr>() {
        return Ok(HostPattern::Ip(ip.to_canonical()));
    }
    if h.contains(':') {
        return Err(format!("{h:?} is not an IPv6 address"));
    }
    let name = normalize_host(h);
    let (wild, name) = match name.strip_prefix("*.") {
        Some(rest) => (true, rest.to_string()),
        None => (false, name),
    };
    validate_name(&name)?;
    if wild {
        Ok(HostPattern::Subdomains(name))
    } else {
        Ok(HostPattern::Exact(name))
    }
}

fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty host name".into());
    }
    if !name.is_ascii() {
        return Err(format!(
            "{name:?} is not ASCII: write internationalised names in their xn-- form"
        ));
    }
    if name.contains('*') {
        return Err("`*` may only stand alone or as the first label (`*.example.com`)".into());
    }
    if name.len() > 253 {
        return Err("host name longer than 253 characters".into());
    }
    for label in name.split('.') {
        if label.is_empty() {
            return Err(format!("{name:?} has an empty label"));
        }
        if label.len() > 63 {
            return Err(format!("label {label:?} is longer than 63 characters"));
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "label {label:?} has a character other than letters, digits, `-`, `_`"
            ));
        }
    }
    Ok(())
}

/// Lower case, without IPv6 brackets or a trailing dot.
fn normalize_host(host: &str) -> String {
    let h = host.trim();
    let h = h.strip_prefix('[').and_then(|x| x.strip_suffix(']')).unwrap_or(h);
    h.trim_end_matches('.').to_ascii_lowercase()
}

fn is_subdomain(host: &str, suffix: &str) -> bool {
    host.len() > suffix.len() + 1 && host.ends_with(suffix) && host.as_bytes()[host.len() - suffix.len() - 1] == b'.'
}

fn mask(ip: IpAddr, len: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => {
            let bits = u32::from(v4);
            let m = if len == 0 { 0 } else { u32::MAX << (32 - len) };
            IpAddr::V4(Ipv4Addr::from(bits & m))
        }
        IpAddr::V6(v6) => {
            let bits = u128::from(v6);
            let m = if len == 0 { 0 } else { u128::MAX << (128 - len) };
            IpAddr::V6(Ipv6Addr::from(bits & m))
        }
    }
}

fn in_cidr(ip: IpAddr, net: IpAddr, len: u8) -> bool {
    ip.is_ipv4() == net.is_ipv4() && mask(ip, len) == net
}

/// Why an address is not public: "loopback", "private", "link-local",
/// "unique-local", ... or None for a public (globally routable) address.
///
/// IPv6 forms that carry an IPv4 address (IPv4-mapped `::ffff:a.b.c.d`,
/// IPv4-compatible `::a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`)
/// are classified by the IPv4 address they carry.
pub fn classify(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    match (a, b, c) {
        (0, _, _) => Some("unspecified (0.0.0.0/8)"),
        (127, _, _) => Some("loopback"),
        (10, _, _) => Some("private"),
        (172, 16..=31, _) => Some("private"),
        (192, 168, _) => Some("private"),
        (169, 254, _) => Some("link-local"),
        (100, 64..=127, _) => Some("shared (carrier-grade NAT)"),
        (192, 0, 0) => Some("reserved (IETF protocol assignments)"),
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => Some("documentation"),
        (198, 18..=19, _) => Some("reserved (benchmarking)"),
        (224..=239, _, _) => Some("multicast"),
        (240..=255, _, _) => Some("reserved"),
        _ => None,
    }
}

fn classify_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    let seg = ip.segments();
    let bits = u128::from(ip);
    if bits == 0 {
        return Some("unspecified (::)");
    }
    if bits == 1 {
        return Some("loopback");
    }
    let embedded_v4 = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    if bits >> 32 == 0 {
        // IPv4-compatible (deprecated, ::a.b.c.d).
        return classify_v4(embedded_v4);
    }
    if bits >> 32 == 0x0064_ff9b_0000_0000_0000_0000 {
        // NAT64 well-known prefix 64:ff9b::/96.
        return classify_v4(embedded_v4);
    }
    match seg[0] {
        0x0064 if seg[1] == 0xff9b && seg[2] == 0x0001 => Some("private (local-use NAT64)"),
        0x0100 if seg[1] == 0 && seg[2] == 0 && seg[3] == 0 => Some("reserved (discard-only)"),
        0x2001 if seg[1] == 0x0db8 => Some("documentation"),
        0x2002 => classify_v4(Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32)),
        s if s & 0xfe00 == 0xfc00 => Some("unique-local"),
        s if s & 0xffc0 == 0xfe80 => Some("link-local"),
        s if s & 0xffc0 == 0xfec0 => Some("site-local"),
        s if s & 0xff00 == 0xff00 => Some("multicast"),
        _ => None,
    }
}

/// What a guest may reach: an allow-list of rules, first match wins.
/// The default policy allows nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    rules: Vec<Rule>,
}

impl Policy {
    /// A policy with these rules.
    pub fn new(rules: Vec<Rule>) -> Policy {
        Policy { rules }
    }

    /// Parse each pattern into a rule.
    pub fn parse<S: AsRef<str>>(patterns: &[S]) -> Result<Policy, RuleError> {
        let rules = patterns
            .iter()
            .map(|p| Rule::parse(p.as_ref()))
            .collect::<Result<_, _>>()?;
        Ok(Policy { rules })
    }

    /// Every target, non-public addresses included: `*`, `0.0.0.0/0` and
    /// `::/0`. For tests and trusted guests only.
    pub fn allow_all() -> Policy {
        Policy::parse(&["*", "0.0.0.0/0", "::/0"]).expect("valid rules")
    }

    /// Nothing at all (the same as `Policy::default()`).
    pub fn deny_all() -> Policy {
        Policy::default()
    }

    /// Add a rule (after the existing ones).
    pub fn push(&mut self, rule: Rule) {
        if !self.rules.contains(&rule) {
            self.rules.push(rule);
        }
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// May the guest resolve `host` and connect to it on `port`? `host` is
    /// a name or an IP literal (IPv6 with or without brackets). Returns
    /// the first matching rule, or a denial naming the target.
    pub fn allows_name(&self, host: &str, port: u16) -> Result<&Rule, String> {
        let h = normalize_host(host);
        let literal = h.parse::<IpAddr>().ok().map(|ip| ip.to_canonical());
        self.rules
            .iter()
            .find(|r| r.matches_name(&h, literal, port))
            .ok_or_else(|| format!("{} is not allowed: {}", target(&h, port), self.no_rule()))
    }

    /// May `host:port` connect to `ip` (an address `host` resolved to, or
    /// the literal itself)? Returns the first matching rule, or a denial
    /// naming the target, the address and, for a non-public address
    /// matched only by a wildcard, that rule.
    pub fn allows_addr(&self, host: &str, port: u16, ip: IpAddr) -> Result<&Rule, String> {
        let h = normalize_host(host);
        let ip = ip.to_canonical();
        if let Some(rule) = self.rules.iter().find(|r| r.matches_addr(&h, port, ip)) {
            return Ok(rule);
        }
        let t = target(&h, port);
        let via = if h.parse::<IpAddr>().is_ok() {
            String::new()
        } else {
            format!(" (resolved to {ip})")
        };
        match (
            classify(ip),
            self.rules
                .iter()
                .find(|r| r.is_wildcard() && r.matches_name(&h, None, port)),
        ) {
            (Some(class), Some(rule)) => Err(format!(
                "{t}{via} is a {class} address: rule `{rule}` allows public addresses only; \
                 allow it with a rule naming the host, the address or its range (e.g. `{ip}`)"
            )),
            (Some(class), None) => Err(format!("{t}{via} is a {class} address: {}", self.no_rule())),
            (None, _) => Err(format!("{t}{via} is not allowed: {}", self.no_rule())),
        }
    }

    /// `allows_name` without the rule.
    pub fn check_name(&self, host: &str, port: u16) -> Result<(), String> {
        self.allows_name(host, port).map(|_| ())
    }

    /// `allows_addr` without the rule.
    pub fn check_addr(&self, host: &str, port: u16, addr: IpAddr) -> Result<(), String> {
        self.allows_addr(host, port, addr).map(|_| ())
    }

    fn no_rule(&self) -> String {
        if self.rules.is_empty() {
            return "the allow-list is empty".into();
        }
        const SHOWN: usize = 6;
        let mut list: Vec<String> = self.rules.iter().take(SHOWN).map(|r| format!("`{r}`")).collect();
        if self.rules.len() > SHOWN {
            list.push(format!("and {} more", self.rules.len() - SHOWN));
        }
        format!("no rule matches (allowed: {})", list.join(", "))
    }
}

fn target(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// A plugin policy file (TOML):
///
/// ```toml
/// allow = ["api.example.com:443", "*.cdn.example.com", "10.1.2.0/24:8080"]
///
/// [limits]
/// memory = "64M"          # guest linear memory (bytes, or K/M/G suffix)
/// fuel = 2_000_000_000    # WebAssembly instructions
/// wall-time = 30          # seconds
/// connections = 4         # open at once
/// total-connections = 32  # opened over the whole fetch
/// bytes-read = "1G"
/// bytes-written = "16M"
/// body-bytes = "1G"
/// stream-buffer = "8M"
/// ```
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    /// Allow patterns, as for `--allow`.
    #[serde(default)]
    pub allow: Vec<String>,
    /// Limits; absent ones keep their defaults.
    #[serde(default)]
    pub limits: LimitsSpec,
}

impl PolicyFile {
    /// Parse the text of a policy file; `name` is for messages.
    pub fn parse(name: &str, text: &str) -> Result<PolicyFile, String> {
        let file: PolicyFile = toml::from_str(text).map_err(|e| format!("policy file {name}: {e}"))?;
        for p in &file.allow {
            Rule::parse(p).map_err(|e| format!("policy file {name}: {e}"))?;
        }
        Ok(file)
    }

    /// Read and parse a policy file.
    pub fn load(path: &std::path::Path) -> Result<PolicyFile, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("policy file {}: {e}", path.display()))?;
        PolicyFile::parse(&path.display().to_string(), &text)
    }

    /// The rules of `allow`.
    pub fn rules(&self) -> Vec<Rule> {
        self.allow.iter().filter_map(|p| Rule::parse(p).ok()).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn canonical_text() {
        for (input, text) in [
            ("Example.COM.", "example.com"),
            ("*.Example.com:443", "*.example.com:443"),
            ("*", "*"),
            ("*:*", "*"),
            ("10.1.2.3/8", "10.0.0.0/8"),
            ("[::1]:8080", "[::1]:8080"),
            ("::ffff:127.0.0.1", "127.0.0.1"),
            ("[fc00::/7]:1-1024", "[fc00::/7]:1-1024"),
            ("::ffff:10.0.0.0/104", "10.0.0.0/8"),
        ] {
            assert_eq!(Rule::parse(input).unwrap().to_string(), text, "{input}");
        }
    }

    #[test]
    fn invalid_patterns_show_the_valid_forms() {
        for bad in [
            "",
            "http://example.com/",
            "example.com:0",
            "example.com:70000",
            "example.com:9-1",
            "exa mple.com",
            "foo.*.com",
            "*.",
            "10.0.0.0/33",
            "[10.0.0.1]:80",
            "[::1",
            "bücher.de",
            "a..b",
        ] {
            let e = Rule::parse(bad).unwrap_err().to_string();
            assert!(e.contains("valid forms"), "{bad}: {e}");
        }
    }

    #[test]
    fn classification() {
        for (a, public) in [
            ("127.0.0.1", false),
            ("10.1.2.3", false),
            ("172.16.0.1", false),
            ("172.32.0.1", true),
            ("192.168.1.1", false),
            ("169.254.169.254", false),
            ("0.0.0.0", false),
            ("100.64.0.1", false),
            ("224.0.0.1", false),
            ("255.255.255.255", false),
            ("8.8.8.8", true),
            ("::1", false),
            ("::", false),
            ("fc00::1", false),
            ("fd12:3456::1", false),
            ("fe80::1", false),
            ("ff02::1", false),
            ("::ffff:127.0.0.1", false),
            ("::ffff:10.0.0.1", false),
            ("::ffff:8.8.8.8", true),
            ("::127.0.0.1", false),
            ("64:ff9b::7f00:1", false),
            ("64:ff9b::808:808", true),
            ("2002:7f00:1::", false),
            ("2002:808:808::", true),
            ("2606:4700::1111", true),
        ] {
            assert_eq!(classify(ip(a)).is_none(), public, "{a}: {:?}", classify(ip(a)));
        }
    }

    #[test]
    fn names_and_addresses() {
        let p = Policy::parse(&["example.com:443", "*.cdn.test", "10.0.0.0/8:8080", "[::1]:9000", "*:80"]).unwrap();
        assert_eq!(
            p.allows_name("EXAMPLE.com.", 443).unwrap().to_string(),
            "example.com:443"
        );
        assert!(p.allows_name("example.com", 444).is_err());
        assert!(p.allows_name("a.cdn.test", 1).is_ok());
        assert!(p.allows_name("cdn.test", 1).is_err());
        assert!(p.allows_name("10.9.9.9", 8080).is_ok());
        assert!(p.allows_name("10.9.9.9", 8081).is_err());
        assert!(p.allows_name("[::1]", 9000).is_ok());
        assert!(p.allows_name("anything.test", 80).is_ok());
        // Exact names may reach private addresses; wildcards may not.
        assert!(p.allows_addr("example.com", 443, ip("127.0.0.1")).is_ok());
        assert!(p.allows_addr("a.cdn.test", 443, ip("93.184.216.34")).is_ok());
        let e = p.allows_addr("a.cdn.test", 443, ip("192.168.0.1")).unwrap_err();
        assert!(
            e.contains("a.cdn.test:443") && e.contains("private") && e.contains("`*.cdn.test`"),
            "{e}"
        );
        let e = p.allows_addr("anything.test", 80, ip("::ffff:127.0.0.1")).unwrap_err();
        assert!(e.contains("loopback") && e.contains("`*:80`"), "{e}");
        // A CIDR rule allows names resolving into its range.
        assert!(p.allows_addr("anything.test", 8080, ip("10.1.1.1")).is_ok());
        let e = p.allows_name("other.test", 22).unwrap_err();
        assert!(e.contains("other.test:22") && e.contains("no rule matches"), "{e}");
    }

    #[test]
    fn allow_all_allows_private_addresses() {
        let p = Policy::allow_all();
        assert!(p.allows_name("localhost", 1).is_ok());
        assert!(p.allows_addr("localhost", 1, ip("127.0.0.1")).is_ok());
        assert!(p.allows_addr("localhost", 1, ip("::1")).is_ok());
        let d = Policy::default();
        assert!(d.allows_name("localhost", 1).unwrap_err().contains("empty"));
    }

    #[test]
    fn policy_file() {
        let f = PolicyFile::parse(
            "t.toml",
            "allow = [\"a.test:443\", \"*\"]\n[limits]\nmemory = \"64M\"\nfuel = 1000\nwall-time = 2.5\n",
        )
        .unwrap();
        assert_eq!(f.rules().len(), 2);
        assert_eq!(f.limits.memory, Some(64 << 20));
        let e = PolicyFile::parse("t.toml", "allow = [\"a b\"]").unwrap_err();
        assert!(e.contains("t.toml") && e.contains("valid forms"), "{e}");
        let e = PolicyFile::parse("t.toml", "alow = []").unwrap_err();
        assert!(e.contains("unknown field"), "{e}");
    }
}
