//! A template guest for wfetch: the smallest useful fetcher. It sends an
//! HTTP/1.0 GET over the host's `streams` import and passes the whole
//! response (head and body, unparsed) to the host's sink.
//!
//! Start here for a new protocol: replace `fetch` with your exchange. The
//! host gives you `open-connection` (TCP or TLS), an asyncio-like reader
//! and writer, and a sink for what you receive. See wit/fetch.wit.

wit_bindgen::generate!({
    world: "fetch-guest",
    // Where wfetch's WIT package lives, relative to this Cargo.toml.
    path: "../../wit",
});

use exports::wfetch::fetch::fetcher::{FetchError, FetchResponse, Guest, HeadParse, RequestError};
use wfetch::fetch::sink::BodySink;
use wfetch::fetch::streams::{open_connection, OpenOptions, TlsOptions};
use wfetch::fetch::types::{Request, ResponseHead};

struct Component;

/// `http://host[:port]/path` or `https://...` split by hand.
fn split(url: &str) -> Result<(bool, String, u16, String), RequestError> {
    let bad = || RequestError::InvalidUrl(url.to_string());
    let (tls, rest) = if let Some(r) = url.strip_prefix("http://") {
        (false, r)
    } else if let Some(r) = url.strip_prefix("https://") {
        (true, r)
    } else {
        return Err(RequestError::UnsupportedScheme(
            url.split(':').next().unwrap_or("").to_string(),
        ));
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) => (h, p.parse().map_err(|_| bad())?),
        None => (authority, if tls { 443 } else { 80 }),
    };
    if host.is_empty() {
        return Err(bad());
    }
    let path = if path.is_empty() { "/" } else { path };
    Ok((tls, host.to_string(), port, path.to_string()))
}

fn request_bytes(host: &str, path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: wfetch-template\r\n\r\n").into_bytes()
}

impl Guest for Component {
    fn build_request(req: Request) -> Result<Vec<u8>, RequestError> {
        let (_, host, _, path) = split(&req.url)?;
        Ok(request_bytes(&host, &path))
    }

    fn parse_response_head(_data: Vec<u8>) -> Result<HeadParse, String> {
        Err("the template does not parse heads".into())
    }

    fn fetch(req: Request, sink: &BodySink) -> Result<FetchResponse, FetchError> {
        let (tls, host, port, path) = split(&req.url).map_err(FetchError::Request)?;
        let options = OpenOptions {
            tls: tls.then(|| TlsOptions {
                server_name: host.clone(),
                alpn: vec!["http/1.1".into()],
            }),
            limit: None,
            high_water: None,
        };
        let (reader, writer) = open_connection(&host, port, &options).map_err(FetchError::Transport)?;
        let request = request_bytes(&host, &path);
        sink.request_sent(&request);
        writer.write(&request).map_err(FetchError::Transport)?;
        writer.drain().map_err(FetchError::Transport)?;
        // HTTP/1.0 without keep-alive: the server closes when done.
        let head = ResponseHead {
            version: "raw".into(),
            status: 200,
            reason: "OK".into(),
            headers: Vec::new(),
        };
        sink.response_head(&head, b"");
        let mut total = 0u64;
        loop {
            let data = reader.read(64 * 1024).map_err(FetchError::Receive)?;
            if data.is_empty() {
                break;
            }
            total += data.len() as u64;
            sink.write(&data).map_err(FetchError::Sink)?;
        }
        writer.close();
        Ok(FetchResponse {
            head,
            url: req.url,
            hops: Vec::new(),
            body_bytes: total,
        })
    }
}

export!(Component);
