//! A test guest for the WIT mapping of the host's streams.
//!
//! `fetch` reads `req.url` as `probe://HOST:PORT/SCENARIO`, runs the
//! scenario against the host's `streams` imports, and writes one line per
//! call to the sink: what was called and what came back, errors with their
//! variant and fields. tests/probe.rs drives a peer for each scenario and
//! compares the lines exactly, so every import, every record field and
//! every error variant used here is checked through the component
//! boundary, not only as Rust types in the host.

wit_bindgen::generate!({
    world: "fetch-guest",
    path: "../../wit",
});

use exports::wfetch::fetch::fetcher::{FetchError, FetchResponse, Guest, HeadParse, RequestError};
use wfetch::fetch::sink::{BodySink, SpliceError};
use wfetch::fetch::streams::{self, ExtraInfo, OpenOptions, StreamError, StreamReader, StreamWriter, TlsOptions};
use wfetch::fetch::types::{Request, ResponseHead};

struct Component;

impl Guest for Component {
    fn build_request(_req: Request) -> Result<Vec<u8>, RequestError> {
        Err(RequestError::UnsupportedScheme("probe".into()))
    }

    fn parse_response_head(_data: Vec<u8>) -> Result<HeadParse, String> {
        Ok(HeadParse::NeedMore)
    }

    fn fetch(req: Request, sink: &BodySink) -> Result<FetchResponse, FetchError> {
        let (host, port, scenario) =
            parse_url(&req.url).ok_or_else(|| FetchError::Request(RequestError::InvalidUrl(req.url.clone())))?;
        let mut out = Report { sink, lines: 0 };
        match scenario.as_str() {
            "tcp" => tcp(&mut out, &host, port),
            "tls" => tls(&mut out, &host, port),
            "errors" => errors(&mut out, &host, port),
            "timeout" => timeout(&mut out, &host, port),
            "splice" => splice(&mut out, &host, port),
            other => return Err(FetchError::Protocol(format!("unknown probe scenario {other:?}"))),
        }
        Ok(FetchResponse {
            head: ResponseHead {
                version: "PROBE".into(),
                status: 200,
                reason: scenario,
                headers: Vec::new(),
            },
            url: req.url,
            hops: Vec::new(),
            body_bytes: out.lines,
        })
    }
}

/// `probe://HOST:PORT/SCENARIO`, by hand.
fn parse_url(url: &str) -> Option<(String, u16, String)> {
    let rest = url.strip_prefix("probe://")?;
    let (authority, scenario) = rest.split_once('/')?;
    let (host, port) = authority.rsplit_once(':')?;
    Some((host.to_string(), port.parse().ok()?, scenario.to_string()))
}

/// The report: one line per call, to the sink.
struct Report<'a> {
    sink: &'a BodySink,
    lines: u64,
}

impl Report<'_> {
    fn line(&mut self, text: String) {
        let mut line = text.into_bytes();
        line.push(b'\n');
        let _ = self.sink.write(&line);
        self.lines += 1;
    }

    fn unit(&mut self, call: &str, r: Result<(), StreamError>) {
        match r {
            Ok(()) => self.line(format!("{call} -> ok")),
            Err(e) => self.line(format!("{call} -> err {}", error(&e))),
        }
    }

    fn bytes(&mut self, call: &str, r: Result<Vec<u8>, StreamError>) {
        match r {
            Ok(data) => self.line(format!("{call} -> ok {}", quote(&data))),
            Err(e) => self.line(format!("{call} -> err {}", error(&e))),
        }
    }

    fn flag(&mut self, call: &str, b: bool) {
        self.line(format!("{call} -> {b}"));
    }

    fn info(&mut self, writer: &StreamWriter, key: &str) {
        let text = match writer.get_extra_info(key) {
            None => "none".to_string(),
            Some(ExtraInfo::Address(a)) => format!("address {}:{}", a.address, a.port),
            Some(ExtraInfo::Certificate(c)) => format!(
                "certificate subject={} issuer={} not-before={} not-after={} der={} bytes fnv={:016x}",
                quote(c.subject.as_bytes()),
                quote(c.issuer.as_bytes()),
                c.not_before,
                c.not_after,
                c.der.len(),
                fnv1a(&c.der)
            ),
            Some(ExtraInfo::Cipher(c)) => format!("cipher suite={} protocol={}", c.suite, c.protocol),
            Some(ExtraInfo::Text(t)) => format!("text {}", quote(t.as_bytes())),
        };
        self.line(format!("get-extra-info {} -> {text}", quote(key.as_bytes())));
    }

    fn open(
        &mut self,
        call: &str,
        host: &str,
        port: u16,
        options: &OpenOptions,
    ) -> Option<(StreamReader, StreamWriter)> {
        match streams::open_connection(host, port, options) {
            Ok(pair) => {
                self.line(format!("{call} -> ok"));
                Some(pair)
            }
            Err(e) => {
                self.line(format!("{call} -> err {}", error(&e)));
                None
            }
        }
    }
}

/// Bytes as a quoted, escaped string.
fn quote(data: &[u8]) -> String {
    format!("\"{}\"", data.escape_ascii())
}

fn quote_list(items: &[Vec<u8>]) -> String {
    let parts: Vec<String> = items.iter().map(|i| quote(i)).collect();
    format!("[{}]", parts.join(", "))
}

/// Every variant with every field.
fn error(e: &StreamError) -> String {
    match e {
        StreamError::IncompleteRead(i) => format!(
            "incomplete-read partial={} expected={}",
            quote(&i.partial),
            i.expected.map_or("none".to_string(), |n| n.to_string())
        ),
        StreamError::LimitOverrun(l) => format!(
            "limit-overrun consumed={} message={}",
            l.consumed,
            quote(l.message.as_bytes())
        ),
        StreamError::ConnectionRefused(m) => format!("connection-refused {}", quote(m.as_bytes())),
        StreamError::ConnectionReset(m) => format!("connection-reset {}", quote(m.as_bytes())),
        StreamError::TimedOut(m) => format!("timed-out {}", quote(m.as_bytes())),
        StreamError::Dns(m) => format!("dns {}", quote(m.as_bytes())),
        StreamError::Tls(t) => format!(
            "tls certificate={} message={}",
            t.certificate,
            quote(t.message.as_bytes())
        ),
        StreamError::Denied(m) => format!("denied {}", quote(m.as_bytes())),
        StreamError::Closed => "closed".to_string(),
        StreamError::InvalidArgument(m) => format!("invalid-argument {}", quote(m.as_bytes())),
        StreamError::Other(m) => format!("other {}", quote(m.as_bytes())),
    }
}

/// FNV-1a, 64 bits: a fingerprint of the certificate's DER for the report.
fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

fn seps(list: &[&[u8]]) -> Vec<Vec<u8>> {
    list.iter().map(|s| s.to_vec()).collect()
}

fn readuntil(out: &mut Report, reader: &StreamReader, list: &[&[u8]]) {
    let s = seps(list);
    out.bytes(&format!("readuntil {}", quote_list(&s)), reader.readuntil(&s));
}

/// Plain TCP with a small limit: every reader and writer call, the error
/// variants of reads, half-close and close.
///
/// The peer reads "hello\nabc\n", sends SCRIPT in one write, reads to our
/// EOF, then sends "after-eof\nTAIL-DATA" and closes.
fn tcp(out: &mut Report, host: &str, port: u16) {
    let options = OpenOptions {
        tls: None,
        limit: Some(32),
        high_water: Some(1024),
    };
    let Some((reader, writer)) = out.open("open-connection tcp limit=32 high-water=1024", host, port, &options) else {
        return;
    };
    for key in [
        "peername",
        "sockname",
        "peercert",
        "cipher",
        "alpn",
        "server-hostname",
        "no-such-key",
    ] {
        out.info(&writer, key);
    }
    out.flag("can-write-eof", writer.can_write_eof());
    out.flag("is-closing", writer.is_closing());
    out.unit("write \"hello\\n\"", writer.write(b"hello\n"));
    let lines = seps(&[b"a", b"b", b"c\n"]);
    out.unit(&format!("writelines {}", quote_list(&lines)), writer.writelines(&lines));
    out.unit("drain", writer.drain());

    out.bytes("read(0)", reader.read(0));
    out.bytes("read(5)", reader.read(5));
    out.bytes("readline", reader.readline());
    readuntil(out, &reader, &[b"--"]);
    readuntil(out, &reader, &[b"\r\n", b"|"]);
    readuntil(out, &reader, &[b"\r\n", b"|"]);
    out.bytes("readexactly(5)", reader.readexactly(5));
    // 40 bytes before the separator, limit 32: overrun, data kept.
    readuntil(out, &reader, &[b"#"]);
    out.bytes("readexactly(40)", reader.readexactly(40));
    readuntil(out, &reader, &[b"#"]);
    // The same for readline: the long line is discarded.
    out.bytes("readline", reader.readline());
    out.bytes("readline", reader.readline());
    out.flag("at-eof", reader.at_eof());
    out.bytes("read(-2)", reader.read(-2));
    readuntil(out, &reader, &[]);
    readuntil(out, &reader, &[b""]);

    out.unit("write-eof", writer.write_eof());
    out.unit("write \"x\"", writer.write(b"x"));
    out.flag("is-closing", writer.is_closing());

    out.bytes("readline", reader.readline());
    out.bytes("readexactly(4)", reader.readexactly(4));
    out.flag("at-eof", reader.at_eof());
    out.bytes("readexactly(100)", reader.readexactly(100));
    out.flag("at-eof", reader.at_eof());
    out.bytes("read(-1)", reader.read(-1));
    out.bytes("read(10)", reader.read(10));
    out.bytes("readline", reader.readline());
    readuntil(out, &reader, &[b"#"]);

    out.unit("wait-closed", writer.wait_closed());
    writer.close();
    out.line("close".into());
    out.flag("is-closing", writer.is_closing());
    out.unit("write \"late\"", writer.write(b"late"));
    out.unit("writelines [\"late\"]", writer.writelines(&seps(&[b"late"])));
    out.unit("drain", writer.drain());
    out.unit("write-eof", writer.write_eof());
    out.unit("wait-closed", writer.wait_closed());
    writer.close();
    out.line("close".into());
    out.unit("wait-closed", writer.wait_closed());
}

/// TLS: the certificate, cipher and ALPN facts; write-eof refused.
///
/// The peer reads "ping\n", answers "pong\nthe rest" and closes.
fn tls(out: &mut Report, host: &str, port: u16) {
    let options = OpenOptions {
        tls: Some(TlsOptions {
            server_name: "localhost".into(),
            alpn: vec!["h2".into(), "http/1.1".into()],
        }),
        limit: None,
        high_water: None,
    };
    let Some((reader, writer)) = out.open(
        "open-connection tls server-name=localhost alpn=[h2, http/1.1]",
        host,
        port,
        &options,
    ) else {
        return;
    };
    for key in [
        "peername",
        "peercert",
        "cipher",
        "alpn",
        "server-hostname",
        "no-such-key",
    ] {
        out.info(&writer, key);
    }
    out.flag("can-write-eof", writer.can_write_eof());
    out.unit("write-eof", writer.write_eof());
    out.flag("is-closing", writer.is_closing());
    out.unit("write \"ping\\n\"", writer.write(b"ping\n"));
    out.unit("drain", writer.drain());
    out.bytes("readline", reader.readline());
    out.bytes("read(-1)", reader.read(-1));
    out.flag("at-eof", reader.at_eof());
    writer.close();
    out.line("close".into());
    out.unit("wait-closed", writer.wait_closed());
}

/// Failures of open-connection. PORT is a port nothing listens on.
fn errors(out: &mut Report, host: &str, port: u16) {
    let plain = OpenOptions {
        tls: None,
        limit: None,
        high_water: None,
    };
    out.open("open-connection tcp", host, port, &plain);
    out.open("open-connection \"\"", "", port, &plain);
}

/// A plain TCP connection with the host's default options, reported.
fn open_plain(out: &mut Report, host: &str, port: u16) -> Option<(StreamReader, StreamWriter)> {
    let plain = OpenOptions {
        tls: None,
        limit: None,
        high_water: None,
    };
    out.open("open-connection tcp", host, port, &plain)
}

/// A peer that accepts and never sends: the host's idle timeout.
fn timeout(out: &mut Report, host: &str, port: u16) {
    let Some((reader, writer)) = open_plain(out, host, port) else {
        return;
    };
    out.bytes("read(10)", reader.read(10));
    out.bytes("readexactly(1)", reader.readexactly(1));
    writer.close();
    out.line("close".into());
    out.unit("wait-closed", writer.wait_closed());
}

/// The sink's write-from: the peer sends two lines and closes. Each
/// call's bytes go to the sink (the report) inside the host, so a whole
/// line moved shows as a report line of its own before the call's line.
fn splice(out: &mut Report, host: &str, port: u16) {
    let Some((reader, writer)) = open_plain(out, host, port) else {
        return;
    };
    for n in [15, 100, 100] {
        match out.sink.write_from(&reader, n) {
            Ok(moved) => {
                // Whole lines moved (the peer's lines are 15 bytes).
                out.lines += moved / 15;
                out.line(format!("write-from({n}) -> ok {moved}"));
            }
            Err(SpliceError::Read(e)) => out.line(format!("write-from({n}) -> err read {}", error(&e))),
            Err(SpliceError::Write(e)) => out.line(format!("write-from({n}) -> err write {}", quote(e.as_bytes()))),
        }
    }
    writer.close();
    out.line("close".into());
    out.unit("wait-closed", writer.wait_closed());
}

export!(Component);
