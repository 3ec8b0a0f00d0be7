//! Record and replay of a guest's network traffic (`--record FILE`,
//! `--replay FILE`), so a guest can be tested offline and deterministically.
//!
//! Recording wraps every connection the guest opens: the open (target, TLS
//! request, and what the host answered: addresses and TLS facts, or the
//! error), every byte the guest's writer sent, every byte the socket gave
//! the reader, EOF, read errors and half-closes. The reader and writer
//! semantics (readuntil, drain, ...) run above this layer, so on replay the
//! guest gets exactly the bytes, in the same pieces, that it got live.
//!
//! # Format
//! JSON Lines, one event per line, in the order they happened:
//!
//! ```text
//! {"event":"open","conn":0,"host":"127.0.0.1","port":8080,"tls":null,
//!  "result":{"ok":{"peer":"127.0.0.1:8080","local":"127.0.0.1:40000","tls":null}}}
//! {"event":"open","conn":1,"host":"h","port":443,"tls":{"server_name":"h","alpn":["http/1.1"]},
//!  "result":{"err":{"kind":"connection-refused","message":"..."}}}
//! {"event":"write","conn":0,"data":"R0VUIC8gSFRUUC8xLjENCg=="}     base64 of the bytes sent
//! {"event":"read","conn":0,"data":"SFRUUC8xLjEgMjAw..."}           base64 of the bytes received
//! {"event":"eof","conn":0}                                          the peer closed its side
//! {"event":"read-error","conn":0,"kind":"connection-reset","message":"..."}
//! {"event":"shutdown","conn":0}                                     our side half-closed
//! ```
//!
//! `kind` is one of the `stream-error` cases of wit/fetch.wit. `tls` in an
//! `ok` result carries `server_name`, `suite`, `protocol`, `alpn` and the
//! peer certificate (`peer_cert`, base64 DER).
//!
//! # Replay
//! Opens must come in the recorded order with the same target; the bytes a
//! guest writes on a connection must equal the recorded ones. The first
//! difference stops the replay with [`Divergence`], which says where: the
//! event, the connection, the byte offset, and both versions.

use std::collections::VecDeque;
use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::net::TlsRequest;
use crate::streams::{ConnInfo, Connection, StreamError, TlsInfo};

fn b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

fn unb64(s: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| format!("bad base64: {e}"))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One recorded event (a line of the file).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// The guest opened a connection.
    Open {
        /// The connection, numbered from 0 in order of opening.
        conn: u32,
        /// The host asked for.
        host: String,
        /// The port asked for.
        port: u16,
        /// The TLS asked for; none for plain TCP.
        tls: Option<TlsAsked>,
        /// What the host answered.
        result: OpenResult,
    },
    /// The guest's writer sent bytes.
    Write {
        /// The connection, numbered from 0 in order of opening.
        conn: u32,
        /// The bytes sent, base64.
        data: String,
    },
    /// The socket gave the reader bytes.
    Read {
        /// The connection, numbered from 0 in order of opening.
        conn: u32,
        /// The bytes received, base64.
        data: String,
    },
    /// The peer closed its side.
    Eof {
        /// The connection, numbered from 0 in order of opening.
        conn: u32,
    },
    /// Reading failed.
    ReadError {
        /// The connection, numbered from 0 in order of opening.
        conn: u32,
        /// The `stream-error` case, e.g. "connection-reset".
        kind: String,
        /// The error message.
        message: String,
    },
    /// Our side half-closed.
    Shutdown {
        /// The connection, numbered from 0 in order of opening.
        conn: u32,
    },
}

/// The TLS a guest asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TlsAsked {
    /// The name for SNI and certificate verification.
    pub server_name: String,
    /// ALPN protocols offered.
    pub alpn: Vec<String>,
}

/// What an open gave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OpenResult {
    /// The connection was established.
    Ok {
        /// The peer's address.
        peer: String,
        /// Our local address.
        local: String,
        /// The TLS facts; none on plain TCP.
        tls: Option<TlsFacts>,
    },
    /// The open failed.
    Err {
        /// The `stream-error` case, e.g. "connection-refused".
        kind: String,
        /// The error message.
        message: String,
    },
}

/// The TLS facts of a recorded connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TlsFacts {
    /// The server name used.
    pub server_name: String,
    /// The cipher suite.
    pub suite: String,
    /// The protocol version.
    pub protocol: String,
    /// The negotiated ALPN protocol, if any.
    pub alpn: Option<String>,
    /// The peer's leaf certificate, base64 DER.
    pub peer_cert: Option<String>,
}

/// A stream error as (kind, message) and back.
fn error_parts(e: &StreamError) -> (String, String) {
    let kind = match e {
        StreamError::IncompleteRead { .. } => "incomplete-read",
        StreamError::LimitOverrun { .. } => "limit-overrun",
        StreamError::ConnectionRefused(_) => "connection-refused",
        StreamError::ConnectionReset(_) => "connection-reset",
        StreamError::TimedOut(_) => "timed-out",
        StreamError::Dns(_) => "dns",
        StreamError::Tls { certificate: true, .. } => "tls-certificate",
        StreamError::Tls { .. } => "tls",
        StreamError::Denied(_) => "denied",
        StreamError::Closed => "closed",
        StreamError::InvalidArgument(_) => "invalid-argument",
        StreamError::Other(_) => "other",
    };
    let message = match e {
        StreamError::ConnectionRefused(m)
        | StreamError::ConnectionReset(m)
        | StreamError::TimedOut(m)
        | StreamError::Dns(m)
        | StreamError::Denied(m)
        | StreamError::InvalidArgument(m)
        | StreamError::Other(m) => m.clone(),
        StreamError::Tls { message, .. } => message.clone(),
        other => other.to_string(),
    };
    (kind.to_string(), message)
}

fn error_from(kind: &str, message: &str) -> StreamError {
    let m = message.to_string();
    match kind {
        "connection-refused" => StreamError::ConnectionRefused(m),
        "connection-reset" => StreamError::ConnectionReset(m),
        "timed-out" => StreamError::TimedOut(m),
        "dns" => StreamError::Dns(m),
        "tls-certificate" => StreamError::Tls {
            certificate: true,
            message: m,
        },
        "tls" => StreamError::Tls {
            certificate: false,
            message: m,
        },
        "denied" => StreamError::Denied(m),
        "closed" => StreamError::Closed,
        "invalid-argument" => StreamError::InvalidArgument(m),
        _ => StreamError::Other(m),
    }
}

fn io_kind_for(kind: &str) -> std::io::ErrorKind {
    match kind {
        "connection-reset" => std::io::ErrorKind::ConnectionReset,
        "timed-out" => std::io::ErrorKind::TimedOut,
        "connection-refused" => std::io::ErrorKind::ConnectionRefused,
        _ => std::io::ErrorKind::Other,
    }
}

/// Record or replay, for one process.
pub enum Tape {
    /// Recording to a file (`--record`).
    Record(Recorder),
    /// Replaying a recording (`--replay`).
    Replay(Replayer),
}

impl Tape {
    /// Open a connection through the tape: `live` dials for real (record).
    pub async fn open<F>(
        &self,
        host: &str,
        port: u16,
        tls: Option<&TlsRequest>,
        live: F,
    ) -> Result<Connection, StreamError>
    where
        F: std::future::Future<Output = Result<Connection, StreamError>>,
    {
        match self {
            Tape::Record(r) => r.open(host, port, tls, live.await),
            Tape::Replay(r) => r.open(host, port, tls),
        }
    }
}

// ---------------------------------------------------------------------------
// Recording

/// Writes events to a file as they happen.
pub struct Recorder {
    out: Arc<Mutex<std::io::BufWriter<std::fs::File>>>,
    next_conn: Mutex<u32>,
}

impl Recorder {
    /// Create (truncate) the recording file.
    pub fn create(path: &Path) -> std::io::Result<Recorder> {
        let file = std::fs::File::create(path)?;
        Ok(Recorder {
            out: Arc::new(Mutex::new(std::io::BufWriter::new(file))),
            next_conn: Mutex::new(0),
        })
    }

    fn emit(out: &Mutex<std::io::BufWriter<std::fs::File>>, event: &Event) {
        let mut w = lock(out);
        if let Ok(line) = serde_json::to_string(event) {
            let _ = writeln!(w, "{line}");
        }
        let _ = w.flush();
    }

    fn open(
        &self,
        host: &str,
        port: u16,
        tls: Option<&TlsRequest>,
        result: Result<Connection, StreamError>,
    ) -> Result<Connection, StreamError> {
        let conn = {
            let mut n = lock(&self.next_conn);
            *n += 1;
            *n - 1
        };
        let asked = tls.map(|t| TlsAsked {
            server_name: t.server_name.clone(),
            alpn: t.alpn.clone(),
        });
        let recorded = match &result {
            Ok(c) => OpenResult::Ok {
                peer: c.info.peer.to_string(),
                local: c.info.local.to_string(),
                tls: c.info.tls.as_ref().map(|t| TlsFacts {
                    server_name: t.server_name.clone(),
                    suite: t.suite.clone(),
                    protocol: t.protocol.clone(),
                    alpn: t.alpn.clone(),
                    peer_cert: t.peer_cert.as_deref().map(b64),
                }),
            },
            Err(e) => {
                let (kind, message) = error_parts(e);
                OpenResult::Err { kind, message }
            }
        };
        Self::emit(
            &self.out,
            &Event::Open {
                conn,
                host: host.to_string(),
                port,
                tls: asked,
                result: recorded,
            },
        );
        let c = result?;
        Ok(Connection {
            read: Box::new(RecordRead {
                inner: c.read,
                out: self.out.clone(),
                conn,
            }),
            write: Box::new(RecordWrite {
                inner: c.write,
                out: self.out.clone(),
                conn,
            }),
            info: c.info,
            can_write_eof: c.can_write_eof,
            socket: c.socket,
        })
    }
}

struct RecordRead {
    inner: Box<dyn AsyncRead + Send + Unpin>,
    out: Arc<Mutex<std::io::BufWriter<std::fs::File>>>,
    conn: u32,
}

impl AsyncRead for RecordRead {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let conn = self.conn;
        match &r {
            Poll::Ready(Ok(())) => {
                let got = &buf.filled()[before..];
                let event = if got.is_empty() {
                    Event::Eof { conn }
                } else {
                    Event::Read { conn, data: b64(got) }
                };
                Recorder::emit(&self.out, &event);
            }
            Poll::Ready(Err(e)) => {
                let (kind, message) = error_parts(&StreamError::from_io(e));
                Recorder::emit(&self.out, &Event::ReadError { conn, kind, message });
            }
            Poll::Pending => {}
        }
        r
    }
}

struct RecordWrite {
    inner: Box<dyn AsyncWrite + Send + Unpin>,
    out: Arc<Mutex<std::io::BufWriter<std::fs::File>>>,
    conn: u32,
}

impl AsyncWrite for RecordWrite {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, data);
        if let Poll::Ready(Ok(n)) = &r {
            if *n > 0 {
                Recorder::emit(
                    &self.out,
                    &Event::Write {
                        conn: self.conn,
                        data: b64(&data[..*n]),
                    },
                );
            }
        }
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_shutdown(cx);
        if let Poll::Ready(Ok(())) = &r {
            Recorder::emit(&self.out, &Event::Shutdown { conn: self.conn });
        }
        r
    }
}

// ---------------------------------------------------------------------------
// Replay

/// Where a replay first differed from its recording.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("replay diverged from the recording at {at}: {what}")]
pub struct Divergence {
    /// "open #2" or "connection 0 (127.0.0.1:8080), byte 17 of the bytes written".
    pub at: String,
    /// What the guest did and what the recording has.
    pub what: String,
}

/// How a recorded read side ended: EOF, or an error (kind, message).
type ReadEnd = Result<(), (String, String)>;

/// What one recorded connection carries, for replay.
#[derive(Default)]
struct ConnTape {
    /// Pieces the reader gets, in order, each with how many bytes the
    /// guest had written before it arrived (the peer answered what it had
    /// received: a piece is not delivered before those bytes are matched).
    reads: VecDeque<(Vec<u8>, usize)>,
    /// Then EOF or an error, after so many written bytes.
    end: Option<(ReadEnd, usize)>,
    /// Everything the guest wrote, and how much of it has been matched.
    written: Vec<u8>,
    matched: usize,
    /// Set when this connection's writes diverged: reads fail too.
    diverged: Option<String>,
    /// The reader waiting for writes to catch up.
    waiting: Option<std::task::Waker>,
    label: String,
}

/// A recorded open: connection number, host, port, TLS asked, result.
type RecordedOpen = (u32, String, u16, Option<TlsAsked>, OpenResult);

/// Serves opens and bytes from a recording; no network.
pub struct Replayer {
    opens: Mutex<VecDeque<RecordedOpen>>,
    conns: Arc<Mutex<Vec<ConnTape>>>,
    opened: Mutex<u32>,
    divergence: Arc<Mutex<Option<Divergence>>>,
}

impl Replayer {
    /// Load a recording. Errors say which line is bad.
    pub fn load(path: &Path) -> Result<Replayer, String> {
        let file = std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let mut opens = VecDeque::new();
        let mut conns: Vec<ConnTape> = Vec::new();
        for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|e| format!("{}: {e}", path.display()))?;
            if line.trim().is_empty() {
                continue;
            }
            let bad = |why: String| format!("{} line {}: {why}", path.display(), i + 1);
            let event: Event = serde_json::from_str(&line).map_err(|e| bad(e.to_string()))?;
            let conn_of = |c: u32, conns: &mut Vec<ConnTape>| -> Result<usize, String> {
                let c = c as usize;
                if c >= conns.len() {
                    return Err(bad(format!("connection {c} used before it was opened")));
                }
                Ok(c)
            };
            match event {
                Event::Open {
                    conn,
                    host,
                    port,
                    tls,
                    result,
                } => {
                    if conn as usize != conns.len() {
                        return Err(bad(format!("connection {conn} opened out of order")));
                    }
                    conns.push(ConnTape {
                        label: format!("connection {conn} ({host}:{port})"),
                        ..ConnTape::default()
                    });
                    opens.push_back((conn, host, port, tls, result));
                }
                Event::Write { conn, data } => {
                    let c = conn_of(conn, &mut conns)?;
                    conns[c].written.extend_from_slice(&unb64(&data).map_err(bad)?);
                }
                Event::Read { conn, data } => {
                    let c = conn_of(conn, &mut conns)?;
                    let before = conns[c].written.len();
                    conns[c].reads.push_back((unb64(&data).map_err(bad)?, before));
                }
                Event::Eof { conn } => {
                    let c = conn_of(conn, &mut conns)?;
                    let before = conns[c].written.len();
                    conns[c].end.get_or_insert((Ok(()), before));
                }
                Event::ReadError { conn, kind, message } => {
                    let c = conn_of(conn, &mut conns)?;
                    let before = conns[c].written.len();
                    conns[c].end.get_or_insert((Err((kind, message)), before));
                }
                Event::Shutdown { .. } => {}
            }
        }
        Ok(Replayer {
            opens: Mutex::new(opens),
            conns: Arc::new(Mutex::new(conns)),
            opened: Mutex::new(0),
            divergence: Arc::new(Mutex::new(None)),
        })
    }

    /// The first divergence, if the replay diverged.
    pub fn divergence(&self) -> Option<Divergence> {
        lock(&self.divergence).clone()
    }

    fn diverge(&self, at: String, what: String) -> StreamError {
        let d = Divergence { at, what };
        let msg = d.to_string();
        lock(&self.divergence).get_or_insert(d);
        StreamError::Other(msg)
    }

    fn open(&self, host: &str, port: u16, tls: Option<&TlsRequest>) -> Result<Connection, StreamError> {
        let n = {
            let mut o = lock(&self.opened);
            *o += 1;
            *o
        };
        let Some((conn, rhost, rport, rtls, result)) = lock(&self.opens).pop_front() else {
            return Err(self.diverge(
                format!("open #{n}"),
                format!("the guest opened {host}:{port}, but the recording has no more connections"),
            ));
        };
        let asked = tls.map(|t| TlsAsked {
            server_name: t.server_name.clone(),
            alpn: t.alpn.clone(),
        });
        if !rhost.eq_ignore_ascii_case(host) || rport != port || rtls != asked {
            return Err(self.diverge(
                format!("open #{n}"),
                format!(
                    "the guest opened {host}:{port} (tls: {asked:?}), the recording opened {rhost}:{rport} (tls: {rtls:?})"
                ),
            ));
        }
        match result {
            OpenResult::Err { kind, message } => Err(error_from(&kind, &message)),
            OpenResult::Ok { peer, local, tls } => {
                let parse = |s: &str| {
                    s.parse::<SocketAddr>()
                        .map_err(|e| StreamError::Other(format!("recording: bad address {s:?}: {e}")))
                };
                let tls_info = match tls {
                    None => None,
                    Some(t) => Some(TlsInfo {
                        server_name: t.server_name,
                        peer_cert: t
                            .peer_cert
                            .as_deref()
                            .map(unb64)
                            .transpose()
                            .map_err(StreamError::Other)?,
                        suite: t.suite,
                        protocol: t.protocol,
                        alpn: t.alpn,
                    }),
                };
                let can_write_eof = tls_info.is_none();
                Ok(Connection {
                    read: Box::new(ReplayRead {
                        conns: self.conns.clone(),
                        conn: conn as usize,
                        current: Vec::new(),
                        pos: 0,
                    }),
                    write: Box::new(ReplayWrite {
                        conns: self.conns.clone(),
                        conn: conn as usize,
                        divergence: self.divergence.clone(),
                    }),
                    info: Arc::new(ConnInfo {
                        peer: parse(&peer)?,
                        local: parse(&local)?,
                        tls: tls_info,
                    }),
                    can_write_eof,
                    socket: None,
                })
            }
        }
    }
}

struct ReplayRead {
    conns: Arc<Mutex<Vec<ConnTape>>>,
    conn: usize,
    current: Vec<u8>,
    pos: usize,
}

impl AsyncRead for ReplayRead {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        if self.pos >= self.current.len() {
            let next = {
                let mut conns = lock(&self.conns);
                let tape = &mut conns[self.conn];
                if let Some(msg) = &tape.diverged {
                    return Poll::Ready(Err(std::io::Error::other(msg.clone())));
                }
                let needed = match (tape.reads.front(), &tape.end) {
                    (Some((_, before)), _) => *before,
                    (None, Some((_, before))) => *before,
                    (None, None) => 0,
                };
                if tape.matched < needed {
                    // The peer had not answered yet: wait for the guest's writes.
                    tape.waiting = Some(cx.waker().clone());
                    return Poll::Pending;
                }
                match tape.reads.pop_front() {
                    Some((piece, _)) => Ok(Some(piece)),
                    None => match &tape.end {
                        Some((Err((kind, message)), _)) => Err(std::io::Error::new(io_kind_for(kind), message.clone())),
                        // EOF recorded, or the recording ends here: EOF.
                        _ => Ok(None),
                    },
                }
            };
            match next {
                Ok(Some(piece)) => {
                    self.current = piece;
                    self.pos = 0;
                }
                Ok(None) => return Poll::Ready(Ok(())),
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        let n = buf.remaining().min(self.current.len() - self.pos);
        let start = self.pos;
        buf.put_slice(&self.current[start..start + n]);
        self.pos += n;
        Poll::Ready(Ok(()))
    }
}

struct ReplayWrite {
    conns: Arc<Mutex<Vec<ConnTape>>>,
    conn: usize,
    divergence: Arc<Mutex<Option<Divergence>>>,
}

/// A short printable excerpt of bytes.
fn excerpt(b: &[u8]) -> String {
    let shown = &b[..b.len().min(40)];
    let mut s = String::from_utf8_lossy(shown).escape_debug().to_string();
    if b.len() > shown.len() {
        s.push('…');
    }
    format!("\"{s}\"")
}

impl AsyncWrite for ReplayWrite {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, data: &[u8]) -> Poll<std::io::Result<usize>> {
        let mut conns = lock(&self.conns);
        let tape = &mut conns[self.conn];
        let expected = &tape.written[tape.matched.min(tape.written.len())..];
        let same = data.iter().zip(expected).take_while(|(a, b)| a == b).count();
        if same < data.len() {
            let at = format!("{}, byte {} of the bytes written", tape.label, tape.matched + same);
            let what = if same >= expected.len() {
                format!(
                    "the guest wrote {} more, the recording has nothing more",
                    excerpt(&data[same..])
                )
            } else {
                format!(
                    "the guest wrote {}, the recording has {}",
                    excerpt(&data[same..]),
                    excerpt(&expected[same..])
                )
            };
            let d = Divergence { at, what };
            let msg = d.to_string();
            lock(&self.divergence).get_or_insert(d);
            tape.diverged = Some(msg.clone());
            if let Some(w) = tape.waiting.take() {
                w.wake();
            }
            return Poll::Ready(Err(std::io::Error::other(msg)));
        }
        tape.matched += data.len();
        if let Some(w) = tape.waiting.take() {
            w.wake();
        }
        Poll::Ready(Ok(data.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}
