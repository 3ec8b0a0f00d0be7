//! A Gopher (RFC 1436) guest: proof that the host's `streams` imports carry
//! any protocol. `wfetch --guest gopher.wasm gopher://HOST[:PORT]/TYPE[SELECTOR]`.
//!
//! The exchange: open a TCP connection (port 70 by default), send the
//! selector (plus TAB and the search words for type 7) and CRLF, then read
//! until the server closes. The response is reported to the sink as a
//! synthetic head (`gopher 200 OK`, `Gopher-Type: T`) and the body as sent.

wit_bindgen::generate!({
    world: "fetch-guest",
    path: "../../wit",
});

use exports::wfetch::fetch::fetcher::{FetchError, FetchResponse, Guest, HeadParse, RequestError};
use wfetch::fetch::sink::BodySink;
use wfetch::fetch::streams::{self as streams, OpenOptions};
use wfetch::fetch::types::{Header, Request, ResponseHead};

/// Body bytes asked of the host per call.
const PIECE: i64 = 64 * 1024;

/// A parsed gopher URL (RFC 4266).
#[derive(Debug, PartialEq, Eq)]
struct Target {
    host: String,
    port: u16,
    item_type: char,
    selector: Vec<u8>,
    search: Option<Vec<u8>>,
}

fn parse(url: &str) -> Result<Target, RequestError> {
    let invalid = |why: &str| RequestError::InvalidUrl(format!("{url}: {why}"));
    let (scheme, rest) = url.split_once("://").ok_or_else(|| invalid("not an absolute URL"))?;
    if !scheme.eq_ignore_ascii_case("gopher") {
        return Err(RequestError::UnsupportedScheme(scheme.to_string()));
    }
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (rest, ""),
    };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, after) = v6.split_once(']').ok_or_else(|| invalid("unclosed IPv6 bracket"))?;
        (h.to_string(), after.strip_prefix(':'))
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p)),
            None => (authority.to_string(), None),
        }
    };
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err(invalid("bad host"));
    }
    let port = match port {
        None | Some("") => 70,
        Some(p) => match p.parse::<u16>() {
            Ok(0) | Err(_) => return Err(invalid("bad port")),
            Ok(p) => p,
        },
    };
    let path = path.split('#').next().unwrap_or("");
    let (path, query) = match path.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (path, None),
    };
    let mut chars = path.chars();
    let item_type = chars.next().unwrap_or('1');
    let selector = percent_decode(chars.as_str()).ok_or_else(|| invalid("bad percent-encoding"))?;
    let search = match query {
        Some(q) => Some(percent_decode(q).ok_or_else(|| invalid("bad query"))?),
        None => None,
    };
    for part in [Some(&selector), search.as_ref()].into_iter().flatten() {
        if part.iter().any(|&b| b == b'\r' || b == b'\n' || b == b'\t') {
            return Err(invalid("CR, LF or TAB in the selector"));
        }
    }
    Ok(Target {
        host,
        port,
        item_type,
        selector,
        search,
    })
}

fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// The line sent to the server.
fn request_line(t: &Target) -> Vec<u8> {
    let mut line = t.selector.clone();
    if let Some(words) = &t.search {
        line.push(b'\t');
        line.extend_from_slice(words);
    }
    line.extend_from_slice(b"\r\n");
    line
}

struct Component;

impl Guest for Component {
    fn build_request(req: Request) -> Result<Vec<u8>, RequestError> {
        parse(&req.url).map(|t| request_line(&t))
    }

    fn parse_response_head(_data: Vec<u8>) -> Result<HeadParse, String> {
        Err("gopher responses have no head".into())
    }

    fn fetch(req: Request, sink: &BodySink) -> Result<FetchResponse, FetchError> {
        let target = parse(&req.url).map_err(FetchError::Request)?;
        let options = OpenOptions {
            tls: None,
            limit: None,
            high_water: None,
        };
        let (reader, writer) =
            streams::open_connection(&target.host, target.port, &options).map_err(FetchError::Transport)?;
        let line = request_line(&target);
        sink.request_sent(&line);
        writer.write(&line).map_err(FetchError::Transport)?;
        writer.drain().map_err(FetchError::Transport)?;
        let head = ResponseHead {
            version: "gopher".into(),
            status: 200,
            reason: "OK".into(),
            headers: vec![Header {
                name: "Gopher-Type".into(),
                value: target.item_type.to_string().into_bytes(),
            }],
        };
        let mut received = 0u64;
        let mut announced = false;
        loop {
            let data = reader.read(PIECE).map_err(FetchError::Receive)?;
            if !announced {
                if data.is_empty() {
                    return Err(FetchError::EmptyReply);
                }
                sink.response_head(&head, b"");
                announced = true;
            }
            if data.is_empty() {
                break;
            }
            received += data.len() as u64;
            sink.write(&data).map_err(FetchError::Sink)?;
        }
        writer.close();
        Ok(FetchResponse {
            head,
            url: req.url,
            hops: Vec::new(),
            body_bytes: received,
        })
    }
}

export!(Component);
