//! Requests: the URL turned into a connection [`Target`], and the exact
//! bytes of the request head and body.

use std::borrow::Cow;

use url::{Host, Position, Url};

use crate::Error;

/// The User-Agent we send by default: `wfetch/VERSION`.
pub const USER_AGENT: &str = concat!("wfetch/", env!("CARGO_PKG_VERSION"));

/// A user header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserHeader {
    pub name: String,
    pub value: String,
    /// Remove the default header of this name instead of adding one (curl's `-H 'Name:'`).
    pub remove: bool,
}

/// A request to encode.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Request {
    pub method: String,
    /// An absolute http:// or https:// URL.
    pub url: String,
    pub headers: Vec<UserHeader>,
    pub body: Option<Vec<u8>>,
    /// Send `HTTP/1.0` in the request line.
    pub http10: bool,
    /// Add `Accept-Encoding: gzip, deflate, br`.
    pub compressed: bool,
}

/// The scheme of a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

/// Where to connect and what to ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub scheme: Scheme,
    /// The host to connect to: a name, an IPv4 literal, or an IPv6 literal
    /// without brackets.
    pub host: String,
    pub port: u16,
    /// The request-target: path and query, never empty (at least "/").
    pub path_and_query: String,
    /// The Host header value: host (IPv6 in brackets) plus `:port` when
    /// the port is not the scheme's default.
    pub authority: String,
}

impl Target {
    /// The origin (scheme, host, port), for same-origin checks.
    pub fn origin(&self) -> (Scheme, &str, u16) {
        (self.scheme, &self.host, self.port)
    }
}

/// Parse an absolute http/https URL into a target. The fragment is dropped.
/// Errors: [`Error::InvalidUrl`] (including a missing host or port 0),
/// [`Error::UnsupportedScheme`].
///
/// ```text
/// http-URI  = "http"  "://" authority path-abempty [ "?" query ]   ; RFC 9110 4.2.1
/// https-URI = "https" "://" authority path-abempty [ "?" query ]   ; RFC 9110 4.2.2
/// origin-form = absolute-path [ "?" query ]                        ; RFC 9112 3.2.1
/// ```
pub fn parse_target(url: &str) -> Result<Target, Error> {
    target_of(&parse_url(url)?)
}

/// Parse an absolute URL as typed. The WHATWG parser silently drops tabs
/// and newlines and encodes spaces; a URL typed with them is a mistake (or
/// an injection attempt), so it is refused, as curl does.
fn parse_url(url: &str) -> Result<Url, Error> {
    if let Some(c) = url.chars().find(|c| c.is_control() || c.is_whitespace()) {
        return Err(Error::InvalidUrl(format!(
            "{url:?} contains {c:?}: control characters and spaces must be percent-encoded"
        )));
    }
    Url::parse(url).map_err(|e| Error::InvalidUrl(format!("{e}: {url:?}")))
}

/// [`parse_target`] for an already parsed URL.
pub(crate) fn target_of(url: &Url) -> Result<Target, Error> {
    let (scheme, default_port) = match url.scheme() {
        "http" => (Scheme::Http, 80),
        "https" => (Scheme::Https, 443),
        other => return Err(Error::UnsupportedScheme(other.to_string())),
    };
    // Taken from the URL's serialization (no formatting of addresses):
    // the host as serialized (IPv6 in brackets), then `:port` unless it is
    // the scheme's default, which the url crate drops.
    let host = match (url.host(), url.host_str()) {
        (Some(Host::Ipv6(_)), Some(h)) => h.trim_start_matches('[').trim_end_matches(']').to_string(),
        (Some(Host::Ipv4(_)), Some(h)) => h.to_string(),
        (Some(Host::Domain(d)), _) if !d.is_empty() => d.to_string(),
        _ => return Err(Error::InvalidUrl(format!("missing host: {:?}", url.as_str()))),
    };
    let port = url.port().unwrap_or(default_port);
    if port == 0 {
        return Err(Error::InvalidUrl(format!("port 0: {:?}", url.as_str())));
    }
    let authority = url[Position::BeforeHost..Position::AfterPort].to_string();
    let path_and_query = match &url[Position::BeforePath..Position::AfterQuery] {
        "" => "/".to_string(),
        pq if pq.starts_with('?') => format!("/{pq}"),
        pq => pq.to_string(),
    };
    Ok(Target {
        scheme,
        host,
        port,
        path_and_query,
        authority,
    })
}

/// The exact bytes of the request: request line, headers, blank line, body.
///
/// Header order: `Host`, `User-Agent`, `Accept`, (`Accept-Encoding` when
/// compressed), then the user headers in order, then `Content-Length` when
/// there is a body and the user did not give one. A user header whose name
/// matches a default (case-insensitively) replaces that default (it is
/// then sent at the user's position); `remove` drops the default.
/// Credentials in the URL (`user:pass@`) become `Authorization: Basic`
/// unless the user gave an Authorization header; it is a default too,
/// sent right after `Host` as curl does.
///
/// ```text
/// request-line = method SP request-target SP HTTP-version CRLF   ; RFC 9112 3
/// field-line   = field-name ":" OWS field-value OWS               ; RFC 9112 5
/// method       = token                                            ; RFC 9110 9.1
/// field-name   = token                                            ; RFC 9110 5.1
/// ```
pub fn build_request(req: &Request) -> Result<(Target, Vec<u8>), Error> {
    build_request_and_url(req).map(|(target, bytes, _)| (target, bytes))
}

/// [`build_request`], also returning the request's URL as
/// [`effective_url`] gives it, from the same parse.
pub fn build_request_and_url(req: &Request) -> Result<(Target, Vec<u8>, String), Error> {
    if let Some(target) = canonical_target(&req.url) {
        let bytes = encode(req, &target, None)?;
        return Ok((target, bytes, req.url.clone()));
    }
    let url = parse_url(&req.url)?;
    let target = target_of(&url)?;
    let bytes = encode(req, &target, Some(&url))?;
    Ok((target, bytes, url.into()))
}

/// The target of `url` without the url crate, when `url` is already in the
/// form the url crate would give it back (as URLs are usually typed, and as
/// the redirect code writes them): `http://` or `https://`, a lower-case
/// ASCII name or a dotted-quad IPv4 address, a port only when not the
/// scheme's default, a path starting with `/`, an optional query, and
/// nothing that parser would change or check further (user info, `[IPv6]`,
/// `xn--` labels, dot segments, fragments, characters it percent-encodes).
/// Then `Url::parse(url)` would succeed, serialize to `url` unchanged, and
/// give this same target (a differential test and the `request` fuzz
/// target hold it to that). None means: ask the url crate.
///
/// A small fetch's URL parse was about 5 % of the CPU of fetching 1,000
/// small files (the parser's host serialization and IDNA pass, in the
/// sandboxed guest); this check is a single pass over the bytes.
pub fn canonical_target(url: &str) -> Option<Target> {
    let (scheme, default_port, rest) = if let Some(rest) = url.strip_prefix("http://") {
        (Scheme::Http, 80, rest)
    } else if let Some(rest) = url.strip_prefix("https://") {
        (Scheme::Https, 443, rest)
    } else {
        return None;
    };
    let slash = rest.find('/')?;
    let (authority, path_and_query) = rest.split_at(slash);
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, digits)) => (host, canonical_port(digits, default_port)?),
        None => (authority, default_port),
    };
    if !canonical_host(host) || !canonical_path_and_query(path_and_query) {
        return None;
    }
    Some(Target {
        scheme,
        host: host.to_string(),
        port,
        path_and_query: path_and_query.to_string(),
        authority: authority.to_string(),
    })
}

/// A port as the url crate writes it: 1-65535 in decimal without leading
/// zeros, never the scheme's default (which it drops).
fn canonical_port(digits: &str, default_port: u16) -> Option<u16> {
    if digits.is_empty() || digits.len() > 5 || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let port: u16 = digits.parse().ok()?;
    (port != default_port).then_some(port)
}

/// A host the url crate keeps as written: labels of `a-z`, `0-9` and `-`,
/// none empty and none an IDNA `xn--` label, and either a last label that
/// is not a number (a domain) or four decimal numbers 0-255 without
/// leading zeros (an IPv4 address as it is serialized). Any other host
/// ending in a number (`1.2.3`, `0x7f.1`, `010.0.0.1`) is an address the
/// parser rewrites.
fn canonical_host(host: &str) -> bool {
    let label_ok = |l: &str| {
        !l.is_empty() && !l.starts_with("xn--") && l.bytes().all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-'))
    };
    if !host.split('.').all(label_ok) {
        return false;
    }
    let last = host.rsplit('.').next().unwrap_or_default();
    let numeric = last.bytes().all(|b| b.is_ascii_digit())
        || last
            .strip_prefix("0x")
            .is_some_and(|h| h.bytes().all(|b| b.is_ascii_hexdigit()));
    if !numeric {
        return true;
    }
    let mut parts = 0;
    for part in host.split('.') {
        parts += 1;
        let decimal = part.bytes().all(|b| b.is_ascii_digit()) && (part == "0" || !part.starts_with('0'));
        if !decimal || part.len() > 3 || part.parse::<u16>().map_or(true, |n| n > 255) {
            return false;
        }
    }
    parts == 4
}

/// A path (starting with `/`) and optional query that the url crate
/// leaves as they are: only unreserved characters, sub-delimiters, `:`,
/// `@`, `/` (and `?` in the query), and `%XX` escapes; no `.` or `..`
/// segment (nor `%2e` anywhere), which it would resolve; no `'` in the
/// query, which it would encode; no fragment.
fn canonical_path_and_query(pq: &str) -> bool {
    let (path, query) = match pq.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (pq, None),
    };
    let allowed = |bytes: &[u8], in_query: bool| {
        bytes.iter().enumerate().all(|(i, &b)| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' => true,
            b'-' | b'.' | b'_' | b'~' | b'!' | b'$' | b'&' | b'(' | b')' | b'*' | b'+' | b',' | b';' | b'=' => true,
            b':' | b'@' | b'/' => true,
            b'\'' => !in_query,
            b'?' => in_query,
            b'%' => {
                let hex = |j: usize| bytes.get(j).is_some_and(u8::is_ascii_hexdigit);
                let dot = bytes.get(i + 1) == Some(&b'2') && matches!(bytes.get(i + 2), Some(b'e' | b'E'));
                hex(i + 1) && hex(i + 2) && !dot
            }
            _ => false,
        })
    };
    allowed(path.as_bytes(), false)
        && path.split('/').all(|segment| segment != "." && segment != "..")
        && query.is_none_or(|q| allowed(q.as_bytes(), true))
}

/// The request head and body for `target`; `url` (the parsed URL, when it
/// was parsed) for its credentials.
fn encode(req: &Request, target: &Target, url: Option<&Url>) -> Result<Vec<u8>, Error> {
    if !is_token(&req.method) {
        return Err(Error::InvalidMethod(req.method.clone()));
    }
    for h in &req.headers {
        if !is_token(&h.name) {
            return Err(Error::InvalidHeader(format!("name {:?} is not a token", h.name)));
        }
        if h.value.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
            return Err(Error::InvalidHeader(format!(
                "value of {:?} contains cr, lf or nul: {:?}",
                h.name, h.value
            )));
        }
    }

    let mut defaults: Vec<(&str, Cow<'_, str>)> = Vec::with_capacity(5);
    defaults.push(("Host", Cow::Borrowed(&target.authority)));
    if let Some(url) = url.filter(|url| !url.username().is_empty() || url.password().is_some()) {
        let mut cred = percent_decode(url.username());
        cred.push(b':');
        cred.extend(percent_decode(url.password().unwrap_or("")));
        defaults.push(("Authorization", Cow::Owned(format!("Basic {}", base64(&cred)))));
    }
    defaults.push(("User-Agent", Cow::Borrowed(USER_AGENT)));
    defaults.push(("Accept", Cow::Borrowed("*/*")));
    if req.compressed {
        defaults.push(("Accept-Encoding", Cow::Borrowed("gzip, deflate, br")));
    }
    let user_has = |name: &str| req.headers.iter().any(|h| h.name.eq_ignore_ascii_case(name));

    let version = if req.http10 { "HTTP/1.0" } else { "HTTP/1.1" };
    // Sized for the whole head at once: it is written piece by piece.
    let fields: usize = req.headers.iter().map(|h| h.name.len() + h.value.len() + 4).sum();
    let mut out =
        String::with_capacity(256 + req.method.len() + target.path_and_query.len() + target.authority.len() + fields);
    for piece in [&req.method, " ", &target.path_and_query, " ", version, "\r\n"] {
        out.push_str(piece);
    }
    let mut field = |name: &str, value: &str| {
        out.push_str(name);
        out.push(':');
        if !value.is_empty() {
            out.push(' ');
            out.push_str(value);
        }
        out.push_str("\r\n");
    };
    for (name, value) in &defaults {
        if !user_has(name) {
            field(name, value);
        }
    }
    for h in req.headers.iter().filter(|h| !h.remove) {
        field(&h.name, &h.value);
    }
    if let Some(body) = &req.body {
        if !user_has("Content-Length") {
            field("Content-Length", &body.len().to_string());
        }
    }
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    if let Some(body) = &req.body {
        bytes.reserve_exact(body.len());
        bytes.extend_from_slice(body);
    }
    Ok(bytes)
}

/// `tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." /
/// "^" / "_" / "`" / "|" / "~" / DIGIT / ALPHA` (RFC 9110 5.6.2).
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// `token = 1*tchar` (RFC 9110 5.6.2).
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// `pct-encoded = "%" HEXDIG HEXDIG` (RFC 3986 2.1) decoded; anything else kept.
fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        let hex = |j: usize| b.get(j).and_then(|&h| (h as char).to_digit(16));
        match (c, hex(i + 1), hex(i + 2)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// Standard base64 with padding (RFC 4648 4).
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The URL as it is reported after a fetch (curl's `url_effective`): parsed
/// and serialized again (scheme and host in lower case, an empty path as
/// "/"). A URL that does not parse is returned unchanged (building the
/// request reports it).
pub fn effective_url(url: &str) -> String {
    // A URL that `build_request` refuses is left as typed, so the refusal
    // sees (and names) what the user wrote.
    parse_url(url).map_or_else(|_| url.to_string(), String::from)
}
