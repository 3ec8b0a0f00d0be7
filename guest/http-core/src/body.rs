//! Body framing (RFC 9112 6.3) and the body decoder that tells the I/O
//! loop what to read next.
//!
//! ```text
//!  Length(n) ──ReadExact(≤max)──▶ … ──▶ Done
//!  Close     ──ReadToEof──▶ … (eof) ──▶ Done
//!  Chunked:
//!   Size ──ReadLine──▶ Data(n) ──ReadExact(≤max)──▶ DataEnd ──ReadLine(CRLF)──▶ Size
//!   Size(0) ──▶ Trailers ──ReadLine──▶ … (blank line) ──▶ Done
//! ```

use crate::{head, Error, Header, ResponseHead};

/// How a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (HEAD, 1xx, 204, 304).
    None,
    /// Exactly this many bytes.
    Length(u64),
    /// Chunked transfer coding.
    Chunked,
    /// Until the server closes the connection.
    CloseDelimited,
}

/// Decide the framing of a response to a request with `method`.
///
/// HEAD, 1xx, 204 and 304 have no body. A Transfer-Encoding whose final
/// coding is chunked is [`Framing::Chunked`]; any other Transfer-Encoding
/// is [`Error::UnsupportedTransferEncoding`]; Transfer-Encoding together
/// with Content-Length is [`Error::ContentLengthWithTransferEncoding`].
/// Content-Length (repeated headers or a comma list) must be one valid
/// decimal value. Otherwise the body is close-delimited.
///
/// ```text
/// Transfer-Encoding = #transfer-coding        ; RFC 9112 6.1
/// Content-Length    = 1*DIGIT                 ; RFC 9110 8.6
/// #element          = [ element ] *( OWS "," OWS [ element ] )
/// ```
pub fn framing(method: &str, head: &ResponseHead) -> Result<Framing, Error> {
    if method == "HEAD" || matches!(head.status, 100..=199 | 204 | 304) {
        return Ok(Framing::None);
    }
    let has_te = head.headers_named("Transfer-Encoding").next().is_some();
    let has_cl = head.headers_named("Content-Length").next().is_some();
    if has_te && has_cl {
        return Err(Error::ContentLengthWithTransferEncoding);
    }
    if has_te {
        let codings = list_elements(head.headers_named("Transfer-Encoding"));
        return match codings.last() {
            Some(last) if last.eq_ignore_ascii_case(b"chunked") => Ok(Framing::Chunked),
            _ => Err(Error::UnsupportedTransferEncoding(lossy_list(&codings))),
        };
    }
    if has_cl {
        let values = list_elements(head.headers_named("Content-Length"));
        let mut length = None;
        for v in &values {
            let n = parse_decimal(v)
                .ok_or_else(|| Error::InvalidContentLength(format!("not a number: {}", lossy_list(&values))))?;
            if length.is_some_and(|l| l != n) {
                return Err(Error::InvalidContentLength(format!(
                    "differing values: {}",
                    lossy_list(&values)
                )));
            }
            length = Some(n);
        }
        return length
            .map(Framing::Length)
            .ok_or_else(|| Error::InvalidContentLength("empty".to_string()));
    }
    Ok(Framing::CloseDelimited)
}

/// The elements of comma lists spread over several field values, OWS
/// trimmed; empty elements are kept (they make Content-Length invalid).
fn list_elements<'a>(values: impl Iterator<Item = &'a [u8]>) -> Vec<&'a [u8]> {
    values
        .flat_map(|v| v.split(|&b| b == b','))
        .map(head::trim_ows)
        .collect()
}

fn lossy_list(elements: &[&[u8]]) -> String {
    elements
        .iter()
        .map(|e| String::from_utf8_lossy(e))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `1*DIGIT` as a u64; None when empty, not digits or too large.
fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |n, &b| match b {
        b'0'..=b'9' => n.checked_mul(10)?.checked_add(u64::from(b - b'0')),
        _ => None,
    })
}

/// What the I/O loop must do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Read one line (through "\n", inclusive) and pass it to [`BodyDecoder::on_line`].
    ReadLine,
    /// Read exactly this many body bytes (never more than the decoder's
    /// `max_piece`), deliver them, then call [`BodyDecoder::on_data`].
    ReadExact(u64),
    /// Read up to `max_piece` body bytes, deliver them and call
    /// [`BodyDecoder::on_data`]; at EOF call [`BodyDecoder::on_eof`].
    ReadToEof(u64),
    /// The body is complete.
    Done,
}

/// Where the decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Content-Length: this many bytes still to read.
    Length(u64),
    /// Close-delimited: read until EOF.
    UntilEof,
    /// Chunked: expecting a chunk-size line.
    ChunkSize,
    /// Chunked: this many bytes of chunk data still to read.
    ChunkData(u64),
    /// Chunked: expecting the CRLF after chunk data.
    ChunkDataEnd,
    /// Chunked: after the last chunk, expecting trailer lines or the blank line.
    Trailers,
    Done,
}

/// The body state machine. Plain data: no I/O, no allocation per piece.
#[derive(Debug, Clone)]
pub struct BodyDecoder {
    state: State,
    max_piece: u64,
    received: u64,
    expected: Option<u64>,
    trailers: Vec<Header>,
}

/// The largest chunk size accepted: 63 bits, like hyper's ChunkedState.
const MAX_CHUNK_SIZE: u64 = i64::MAX as u64;

impl BodyDecoder {
    /// A decoder for `framing` that asks for at most `max_piece` bytes per step
    /// (a `max_piece` of 0 is taken as 1).
    pub fn new(framing: Framing, max_piece: u64) -> Self {
        let (state, expected) = match framing {
            Framing::None => (State::Done, None),
            Framing::Length(0) => (State::Done, Some(0)),
            Framing::Length(n) => (State::Length(n), Some(n)),
            Framing::Chunked => (State::ChunkSize, None),
            Framing::CloseDelimited => (State::UntilEof, None),
        };
        BodyDecoder {
            state,
            max_piece: max_piece.max(1),
            received: 0,
            expected,
            trailers: Vec::new(),
        }
    }

    /// The next thing to read.
    pub fn next_step(&self) -> Step {
        match self.state {
            State::Length(n) | State::ChunkData(n) => Step::ReadExact(n.min(self.max_piece)),
            State::UntilEof => Step::ReadToEof(self.max_piece),
            State::ChunkSize | State::ChunkDataEnd | State::Trailers => Step::ReadLine,
            State::Done => Step::Done,
        }
    }

    /// A line read for a [`Step::ReadLine`] (including its "\n"; a bare LF
    /// is accepted in place of CRLF). Errors: invalid or overflowing chunk
    /// size, missing CRLF after chunk data, bad trailer. A line without its
    /// "\n" (the stream ended inside it) is [`Error::Truncated`]. Ignored
    /// when the step is not ReadLine.
    ///
    /// ```text
    /// chunked-body   = *chunk last-chunk trailer-section CRLF
    /// chunk          = chunk-size [ chunk-ext ] CRLF chunk-data CRLF
    /// chunk-size     = 1*HEXDIG
    /// last-chunk     = 1*("0") [ chunk-ext ] CRLF
    /// chunk-ext      = *( BWS ";" BWS chunk-ext-name [ BWS "=" BWS chunk-ext-val ] )
    /// trailer-section = *( field-line CRLF )
    /// ```
    pub fn on_line(&mut self, line: &[u8]) -> Result<(), Error> {
        if !matches!(self.state, State::ChunkSize | State::ChunkDataEnd | State::Trailers) {
            return Ok(());
        }
        if line.last() != Some(&b'\n') {
            return Err(self.truncated());
        }
        match self.state {
            State::ChunkSize => {
                self.state = match parse_chunk_size(line)? {
                    0 => State::Trailers,
                    n => State::ChunkData(n),
                };
            }
            State::ChunkDataEnd => {
                if line != b"\r\n" && line != b"\n" {
                    return Err(Error::MissingChunkTerminator);
                }
                self.state = State::ChunkSize;
            }
            _ => {
                let bad = |e| match e {
                    Error::BadHeader(m) => Error::BadTrailer(m),
                    e => e,
                };
                let content = head::strip_eol(line);
                if content.is_empty() {
                    self.state = State::Done;
                } else if let (Some(b' ' | b'\t'), Some(last)) = (content.first(), self.trailers.last_mut()) {
                    head::unfold(&mut last.value, content).map_err(bad)?;
                } else if self.trailers.len() >= head::MAX_HEADERS {
                    return Err(Error::TooManyHeaders(self.trailers.len() + 1));
                } else {
                    self.trailers.push(head::parse_header_line(content).map_err(bad)?);
                }
            }
        }
        Ok(())
    }

    /// `n` body bytes were read and delivered for a ReadExact/ReadToEof step.
    pub fn on_data(&mut self, n: u64) {
        self.received = self.received.saturating_add(n);
        self.state = match self.state {
            State::Length(left) if left <= n => State::Done,
            State::Length(left) => State::Length(left - n),
            State::ChunkData(left) if left <= n => State::ChunkDataEnd,
            State::ChunkData(left) => State::ChunkData(left - n),
            other => other,
        };
    }

    /// The connection reached EOF. Fine for close-delimited bodies (then
    /// Done); for anything else [`Error::Truncated`].
    pub fn on_eof(&mut self) -> Result<(), Error> {
        match self.state {
            State::UntilEof | State::Done => {
                self.state = State::Done;
                Ok(())
            }
            _ => Err(self.truncated()),
        }
    }

    /// Body bytes received so far.
    pub fn received(&self) -> u64 {
        self.received
    }

    /// The expected total, when the framing says it (Content-Length).
    pub fn expected(&self) -> Option<u64> {
        self.expected
    }

    /// Trailers parsed after the last chunk.
    pub fn trailers(&self) -> &[Header] {
        &self.trailers
    }

    fn truncated(&self) -> Error {
        Error::Truncated {
            expected: self.expected,
            received: self.received,
        }
    }
}

/// The size of a `chunk-size [ chunk-ext ] CRLF` line; extensions are ignored.
fn parse_chunk_size(line: &[u8]) -> Result<u64, Error> {
    let content = head::strip_eol(line);
    let invalid = || Error::InvalidChunkSize(String::from_utf8_lossy(content).into_owned());
    let digits = content.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(invalid());
    }
    let mut size: u64 = 0;
    for &b in content.get(..digits).unwrap_or_default() {
        let d = (b as char).to_digit(16).map_or(0, u64::from);
        size = size
            .checked_mul(16)
            .and_then(|s| s.checked_add(d))
            .filter(|&s| s <= MAX_CHUNK_SIZE)
            .ok_or(Error::ChunkSizeOverflow)?;
    }
    match head::trim_ows(content.get(digits..).unwrap_or_default()) {
        [] | [b';', ..] => Ok(size),
        _ => Err(invalid()),
    }
}

/// Decode a whole body held in memory with the same steps the guest's I/O
/// loop takes (for tests and fuzzing). Returns the body, the trailers and
/// the number of input bytes used. A framing that needs more input than
/// given ends in [`Error::Truncated`]; close-delimited takes all input.
pub fn decode_in_memory(
    framing: Framing,
    input: &[u8],
    max_piece: u64,
) -> Result<(Vec<u8>, Vec<Header>, usize), Error> {
    let mut dec = BodyDecoder::new(framing, max_piece);
    let mut body = Vec::new();
    let mut pos = 0;
    loop {
        let rest = input.get(pos..).unwrap_or_default();
        let want = match dec.next_step() {
            Step::Done => break,
            Step::ReadLine => {
                // Like readline(): through "\n", or what is left at EOF.
                let len = rest.iter().position(|&b| b == b'\n').map_or(rest.len(), |i| i + 1);
                if len == 0 {
                    dec.on_eof()?;
                } else {
                    pos += len;
                    dec.on_line(rest.get(..len).unwrap_or_default())?;
                }
                continue;
            }
            Step::ReadExact(n) | Step::ReadToEof(n) => usize::try_from(n).unwrap_or(usize::MAX),
        };
        let piece = rest.get(..want.min(rest.len())).unwrap_or_default();
        body.extend_from_slice(piece);
        pos += piece.len();
        if !piece.is_empty() {
            dec.on_data(piece.len() as u64);
        }
        if piece.len() < want {
            // EOF before the read was satisfied (readexactly's incomplete-read).
            dec.on_eof()?;
        }
    }
    Ok((body, dec.trailers, pos))
}
