//! wfetch's default guest: the one I/O loop that drives the sans-IO
//! HTTP/1.1 core (`wfetch-http-core`) over the host's asyncio-like streams.
//!
//! Everything protocol-shaped is decided in the core; this file only moves
//! bytes between the host's reader/writer, the core and the host's sink.

#[cfg(target_os = "unknown")]
mod heap;

wit_bindgen::generate!({
    world: "fetch-guest",
    path: "../../wit",
    // Import parameters borrow (the response head handed to the sink is
    // the parsed head's strings, not copies of them).
    ownership: Borrowing { duplicate_if_necessary: true },
});

use exports::wfetch::fetch::fetcher::{FetchError, FetchResponse, Guest, HeadParse, Hop, RequestError};
use wfetch::fetch::sink::{BodySink, SpliceError};
use wfetch::fetch::streams::{self as streams, OpenOptions, StreamError, StreamReader, StreamWriter, TlsOptions};
use wfetch::fetch::types::{
    HeaderParam, HeaderResult as Header, Request, ResponseHeadParam, ResponseHeadResult as ResponseHead,
};

use wfetch_http_core as core;
use wfetch_http_core::body::{BodyDecoder, Framing, Step};
use wfetch_http_core::decode::{Coding, Decoder};
use wfetch_http_core::request::Scheme;

/// The most body bytes asked of the host in one call: large enough that a
/// bulk body costs few boundary crossings, small enough to stay cheap in
/// guest memory.
const MAX_PIECE: u64 = 256 * 1024;

/// The most body bytes asked of the host in one `write-from`: they go from
/// the socket to the sink without entering guest memory, and the host
/// reads up to a megabyte in one system call (streams::DIRECT_READ_MAX).
const SPLICE_PIECE: u64 = 1024 * 1024;

/// The most interim (1xx) responses accepted before the final one: a
/// server has no reason to send more than a few, and a flood would keep
/// the guest busy forever.
const MAX_INTERIM: u32 = 32;

/// Separators that end a response head: CRLF CRLF, and the bare-LF forms
/// that lenient servers send.
const HEAD_SEPARATORS: &[&[u8]] = &[b"\r\n\r\n", b"\n\n", b"\n\r\n"];

/// The separator that ends a chunk-size line or a trailer line.
const LINE: &[&[u8]] = &[b"\n"];

struct Component;

impl Guest for Component {
    fn build_request(req: Request) -> Result<Vec<u8>, RequestError> {
        core::request::build_request(&into_core(req))
            .map(|(_, bytes)| bytes)
            .map_err(request_error)
    }

    fn parse_response_head(data: Vec<u8>) -> Result<HeadParse, String> {
        match core::head::parse_response_head(&data) {
            Ok(Some((head, used))) => Ok(HeadParse::Complete((into_wit_head(head), used as u64))),
            Ok(None) => Ok(HeadParse::NeedMore),
            Err(e) => Err(e.to_string()),
        }
    }

    fn fetch(req: Request, sink: &BodySink) -> Result<FetchResponse, FetchError> {
        let opts = req.options;
        let mut current = into_core(req);
        let mut hops = Vec::new();
        loop {
            let (target, bytes, url) =
                core::request::build_request_and_url(&current).map_err(|e| FetchError::Request(request_error(e)))?;
            current.url = url;
            let (conn, head) = exchange(&target, &bytes, sink)?;
            if opts.follow_redirects && core::redirect::is_redirect(head.status) {
                if let Some(location) = head.header("location") {
                    if hops.len() as u32 >= opts.max_redirects {
                        return Err(FetchError::TooManyRedirects(opts.max_redirects));
                    }
                    hops.push(Hop {
                        url: current.url.clone(),
                        status: head.status,
                    });
                    let next = core::redirect::next_request(&current, head.status, location).map_err(protocol_error)?;
                    conn.skip_body(&current, &head);
                    current = next;
                    continue;
                }
            }
            let framing = core::body::framing(&current.method, &head).map_err(protocol_error)?;
            let body_bytes = read_body(&conn.reader, framing, &head, opts.compressed, sink)?;
            conn.finish(core::keepalive::reusable(&current, &head, framing));
            return Ok(FetchResponse {
                head: into_wit_head(head),
                url: current.url,
                hops,
                body_bytes,
            });
        }
    }
}

/// How many times a request whose reply never started on a reused
/// (kept-alive) connection is sent again: the peer may have closed the
/// idle connection just before we used it.
const MAX_STALE_RETRIES: usize = 8;

/// Send the request and read the final response head. On a reused
/// connection that fails before any reply, send it again on the next one
/// (fresh or reused); a fresh connection's failure is final.
fn exchange(
    target: &core::request::Target,
    bytes: &[u8],
    sink: &BodySink,
) -> Result<(Conn, core::ResponseHead), FetchError> {
    let mut tries = 0;
    loop {
        let conn = Conn::open(target)?;
        // Asked of the host only when it matters: after a failure.
        let may_retry = tries < MAX_STALE_RETRIES;
        let retry = |conn: &Conn| may_retry && conn.reused();
        tries += 1;
        sink.request_sent(head_part(bytes));
        // drain() returns at once while the writer holds no more than its
        // high-water mark (the host's default, asked for by `high_water:
        // None`), so after a request that fits it could only report an
        // error, and the read that follows reports that one too.
        let sent = match conn.writer.write(bytes) {
            Ok(()) if bytes.len() <= DRAIN_FREE => Ok(()),
            Ok(()) => conn.writer.drain(),
            Err(e) => Err(e),
        };
        if let Err(e) = sent {
            if retry(&conn) {
                continue;
            }
            return Err(FetchError::Transport(e));
        }
        match read_final_head(&conn.reader, sink) {
            Ok(head) => return Ok((conn, head)),
            Err(FetchError::EmptyReply | FetchError::Receive(StreamError::ConnectionReset(_))) if retry(&conn) => {
                continue
            }
            Err(e) => return Err(e),
        }
    }
}

/// One connection's two halves.
struct Conn {
    reader: StreamReader,
    writer: StreamWriter,
}

/// The most request bytes written without a drain() after them: well
/// under the host's default high-water mark (64 KiB).
const DRAIN_FREE: usize = 16 * 1024;

/// The largest redirect body read (and dropped) so that its connection can
/// carry the next request; a larger one closes the connection instead.
const MAX_SKIPPED_BODY: u64 = 1 << 20;

impl Conn {
    fn open(target: &core::request::Target) -> Result<Conn, FetchError> {
        let tls = match target.scheme {
            Scheme::Http => None,
            Scheme::Https => Some(TlsOptions {
                server_name: &target.host,
                alpn: &["http/1.1"],
            }),
        };
        let options = OpenOptions {
            tls,
            limit: None,
            high_water: None,
        };
        let (reader, writer) =
            streams::open_connection(&target.host, target.port, options).map_err(FetchError::Transport)?;
        Ok(Conn { reader, writer })
    }

    /// The host handed out a kept-alive connection.
    fn reused(&self) -> bool {
        matches!(self.writer.get_extra_info("reused"), Some(streams::ExtraInfo::Text(t)) if t == "true")
    }

    /// The exchange is over: hand the connection back for reuse when the
    /// protocol allows it, close it otherwise.
    fn finish(self, reusable: bool) {
        if reusable {
            streams::release_connection(self.reader, self.writer);
        } else {
            self.writer.close();
        }
    }

    /// Read and drop the body of a redirect that is followed, when it is
    /// small and delimited, so that the connection can be reused.
    fn skip_body(self, req: &core::request::Request, head: &core::ResponseHead) {
        let Ok(framing) = core::body::framing(&req.method, head) else {
            return self.writer.close();
        };
        let small = match framing {
            Framing::None | Framing::Chunked => true,
            Framing::Length(n) => n <= MAX_SKIPPED_BODY,
            Framing::CloseDelimited => false,
        };
        if !small || !core::keepalive::reusable(req, head, framing) {
            return self.writer.close();
        }
        let mut decoder = BodyDecoder::new(framing, MAX_PIECE);
        loop {
            let ok = match decoder.next_step() {
                Step::Done => break,
                _ if decoder.received() > MAX_SKIPPED_BODY => false,
                Step::ReadLine => match self.reader.readuntil(LINE) {
                    Ok(line) => decoder.on_line(&line).is_ok(),
                    Err(_) => false,
                },
                Step::ReadExact(n) => match self.reader.readexactly(n) {
                    Ok(data) => {
                        decoder.on_data(data.len() as u64);
                        true
                    }
                    Err(_) => false,
                },
                Step::ReadToEof(_) => false,
            };
            if !ok {
                return self.writer.close();
            }
        }
        self.finish(true);
    }
}

/// The request head without its body, for the sink's request-sent.
fn head_part(bytes: &[u8]) -> &[u8] {
    match bytes.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => &bytes[..i + 4],
        None => bytes,
    }
}

/// Read heads until a final (non-1xx) one, reporting each to the sink.
fn read_final_head(reader: &StreamReader, sink: &BodySink) -> Result<core::ResponseHead, FetchError> {
    let mut first = true;
    let mut interim = 0u32;
    loop {
        let raw = match reader.readuntil(HEAD_SEPARATORS) {
            Ok(raw) => raw,
            Err(StreamError::IncompleteRead(i)) if i.partial.is_empty() && first => return Err(FetchError::EmptyReply),
            Err(StreamError::IncompleteRead(i)) => {
                return Err(FetchError::Protocol(format!(
                    "connection closed in the middle of the response head after {} bytes",
                    i.partial.len()
                )))
            }
            Err(StreamError::LimitOverrun(l)) => {
                return Err(FetchError::HeadTooLarge(format!(
                    "no end of head within {} bytes",
                    l.consumed
                )))
            }
            Err(e) => return Err(FetchError::Receive(e)),
        };
        first = false;
        let head = match core::head::parse_response_head(&raw) {
            Ok(Some((head, _))) => head,
            Ok(None) => return Err(FetchError::Protocol("incomplete response head".into())),
            Err(e) => return Err(protocol_error(e)),
        };
        let headers: Vec<HeaderParam> = head.headers.iter().map(header_param).collect();
        sink.response_head(
            ResponseHeadParam {
                version: head.version.as_str(),
                status: head.status,
                reason: &head.reason,
                headers: &headers,
            },
            &raw,
        );
        // 1xx responses are interim (101 is not: we never ask to upgrade,
        // so a 101 is treated as final and has no body).
        if (100..200).contains(&head.status) && head.status != 101 {
            interim += 1;
            if interim > MAX_INTERIM {
                return Err(FetchError::Protocol(format!(
                    "more than {MAX_INTERIM} interim (1xx) responses before the final one"
                )));
            }
            continue;
        }
        return Ok(head);
    }
}

/// Read the body as the core's decoder directs, delivering it to the sink.
fn read_body(
    reader: &StreamReader,
    framing: Framing,
    head: &core::ResponseHead,
    compressed: bool,
    sink: &BodySink,
) -> Result<u64, FetchError> {
    let mut out = Output::new(
        sink,
        compressed
            .then(|| head.header("content-encoding").and_then(Coding::from_header))
            .flatten(),
    );
    let piece = if out.direct() { SPLICE_PIECE } else { MAX_PIECE };
    let mut decoder = BodyDecoder::new(framing, piece);
    loop {
        let step = decoder.next_step();
        match step {
            Step::Done => break,
            Step::ReadLine => {
                let line = match reader.readuntil(LINE) {
                    Ok(line) => line,
                    Err(StreamError::IncompleteRead(_)) => return Err(truncated(&decoder, framing)),
                    Err(StreamError::LimitOverrun(l)) => {
                        return Err(FetchError::Protocol(format!(
                            "chunk line longer than {} bytes",
                            l.consumed
                        )))
                    }
                    Err(e) => return Err(FetchError::Receive(e)),
                };
                decoder.on_line(&line).map_err(protocol_error)?;
            }
            // Up to n bytes as they come (not readexactly): what arrived
            // before a reset is still delivered, as curl does. A body that
            // needs no decoding goes from the reader to the sink inside the
            // host (write-from), as read(n) then write would move it.
            Step::ReadExact(n) | Step::ReadToEof(n) => {
                let (moved, data) = if out.direct() {
                    match sink.write_from(reader, n) {
                        Ok(moved) => (moved, None),
                        Err(SpliceError::Read(e)) => return Err(FetchError::Receive(e)),
                        Err(SpliceError::Write(e)) => return Err(FetchError::Sink(e)),
                    }
                } else {
                    let data = reader.read(n as i64).map_err(FetchError::Receive)?;
                    (data.len() as u64, Some(data))
                };
                if moved == 0 {
                    match step {
                        Step::ReadToEof(_) => decoder.on_eof().map_err(protocol_error)?,
                        _ => return Err(truncated(&decoder, framing)),
                    }
                    continue;
                }
                decoder.on_data(moved);
                sink.progress(decoder.received(), decoder.expected());
                match data {
                    Some(data) => out.write(data)?,
                    None => out.delivered += moved,
                }
            }
        }
    }
    out.finish()?;
    let trailers = decoder.trailers();
    if !trailers.is_empty() {
        sink.trailers(&trailers.iter().map(header_param).collect::<Vec<_>>());
    }
    Ok(out.delivered)
}

fn truncated(decoder: &BodyDecoder, framing: Framing) -> FetchError {
    let received = decoder.received();
    match (framing, decoder.expected()) {
        (_, Some(expected)) => FetchError::Partial(format!(
            "transfer closed with {} bytes remaining to read",
            expected.saturating_sub(received)
        )),
        _ => FetchError::Partial(format!(
            "transfer closed with outstanding read data remaining ({received} body bytes received)"
        )),
    }
}

/// How much compressed input the content decoder gets at a time.
const DECODE_SLICE: usize = 16 * 1024;

/// The body's way to the sink, through a content decoder when asked.
struct Output<'a> {
    sink: &'a BodySink,
    decoder: Option<Decoder>,
    buf: Vec<u8>,
    delivered: u64,
}

impl<'a> Output<'a> {
    fn new(sink: &'a BodySink, coding: Option<Coding>) -> Self {
        Output {
            sink,
            decoder: coding.map(Decoder::new),
            buf: Vec::new(),
            delivered: 0,
        }
    }

    /// No content decoding: the body goes to the sink as it comes.
    fn direct(&self) -> bool {
        self.decoder.is_none()
    }

    fn write(&mut self, data: Vec<u8>) -> Result<(), FetchError> {
        let Some(mut d) = self.decoder.take() else {
            return self.deliver(data);
        };
        // Fed in small slices: the expansion cap is measured against the
        // input fed so far, so a bomb stops (and the output held in memory
        // stays) within the cap of one slice, however large the piece the
        // host handed over.
        let mut buf = std::mem::take(&mut self.buf);
        let mut r = Ok(());
        for slice in data.chunks(DECODE_SLICE) {
            buf.clear();
            r = match d.feed(slice, &mut buf) {
                Err(e) => Err(FetchError::Decoding(e.to_string())),
                Ok(_) if buf.is_empty() => Ok(()),
                Ok(_) => self.sink_write(&buf),
            };
            if r.is_err() {
                break;
            }
        }
        self.buf = buf;
        self.decoder = Some(d);
        r
    }

    fn finish(&mut self) -> Result<(), FetchError> {
        if let Some(d) = &mut self.decoder {
            let mut buf = Vec::new();
            d.finish(&mut buf).map_err(|e| FetchError::Decoding(e.to_string()))?;
            if !buf.is_empty() {
                self.sink_write(&buf)?;
            }
        }
        Ok(())
    }

    fn deliver(&mut self, data: Vec<u8>) -> Result<(), FetchError> {
        if data.is_empty() {
            return Ok(());
        }
        self.sink_write(&data)
    }

    fn sink_write(&mut self, data: &[u8]) -> Result<(), FetchError> {
        self.sink.write(data).map_err(FetchError::Sink)?;
        self.delivered += data.len() as u64;
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Conversions between the WIT types and the core's.

/// The core's request, taking the strings over rather than copying them.
fn into_core(req: Request) -> core::request::Request {
    core::request::Request {
        method: req.method,
        url: req.url,
        headers: req
            .headers
            .into_iter()
            .map(|h| core::request::UserHeader {
                name: h.name,
                value: h.value,
                remove: h.remove,
            })
            .collect(),
        body: req.body,
        http10: req.options.http10,
        compressed: req.options.compressed,
    }
}

/// A header as handed to the sink: the parsed header's strings, borrowed.
fn header_param(h: &core::Header) -> HeaderParam<'_> {
    HeaderParam {
        name: &h.name,
        value: &h.value,
    }
}

/// The head for the fetch's result: the parsed head's strings, moved.
fn into_wit_head(head: core::ResponseHead) -> ResponseHead {
    ResponseHead {
        version: head.version.as_str().to_string(),
        status: head.status,
        reason: head.reason,
        headers: head
            .headers
            .into_iter()
            .map(|h| Header {
                name: h.name,
                value: h.value,
            })
            .collect(),
    }
}

fn request_error(e: core::Error) -> RequestError {
    match e {
        core::Error::InvalidUrl(m) => RequestError::InvalidUrl(m),
        core::Error::UnsupportedScheme(m) => RequestError::UnsupportedScheme(m),
        core::Error::InvalidMethod(m) => RequestError::InvalidMethod(m),
        other => RequestError::InvalidHeader(other.to_string()),
    }
}

fn protocol_error(e: core::Error) -> FetchError {
    match e {
        core::Error::Truncated { .. } => FetchError::Partial(e.to_string()),
        // curl: "(1) Protocol "ftp" not supported" for a redirect elsewhere.
        core::Error::RedirectScheme(scheme) => FetchError::Request(RequestError::UnsupportedScheme(scheme)),
        core::Error::Decode(_) | core::Error::DecodeRatio { .. } => FetchError::Decoding(e.to_string()),
        other => FetchError::Protocol(other.to_string()),
    }
}

export!(Component);
