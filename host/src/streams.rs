//! The asyncio-like stream reader and writer that the host lends to guests,
//! over tokio TCP and TLS connections.
//!
//! Semantics follow CPython's `asyncio.StreamReader` / `StreamWriter`:
//! - [`StreamWriter::write`] never blocks and never loses data: bytes go to
//!   a buffer that a background task moves to the socket as fast as the
//!   socket takes them; [`StreamWriter::drain`] returns at once while the
//!   buffer is at or under the high-water mark, and otherwise waits until
//!   it falls to the low-water mark (a quarter of the high one).
//! - `close` flushes, then closes the socket (both halves); `wait_closed`
//!   reports an error of the flush; `write_eof` half-closes plain TCP.
//! - [`StreamReader`] keeps a buffer with a limit; `readuntil` stops at the
//!   limit with [`StreamError::LimitOverrun`] and leaves the data buffered;
//!   incomplete reads carry their partial bytes; `readline` returns a
//!   partial last line and discards an overlong one, as CPython does.
//!
//! Every wait is bounded by the connection's [`Timeouts`], so a peer that
//! stops reading or writing stalls only the one call that waits on it (and
//! the writer's background task gives up after the same idle timeout).

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::sync::Notify;
use tokio::time::Instant;

/// asyncio's default StreamReader limit: 64 KiB.
pub const DEFAULT_LIMIT: usize = 64 * 1024;
/// asyncio's default transport high-water mark: 64 KiB (low is a quarter).
pub const DEFAULT_HIGH_WATER: usize = 64 * 1024;
/// How much the reader asks the socket for at a time when it has no better
/// idea. Large enough that a bulk body takes few syscalls.
const READ_CHUNK: usize = 64 * 1024;
/// The smallest `read(n)` that, with nothing buffered, reads the socket
/// straight into its result instead of through the buffer.
const DIRECT_READ_MIN: usize = READ_CHUNK;
/// The most such a read takes from the socket (and allocates) at once.
pub const DIRECT_READ_MAX: usize = 1024 * 1024;
/// The receive low-water mark (`SO_RCVLOWAT`) of a direct read while a
/// bulk body streams in: the kernel wakes the reader once this much has
/// arrived instead of at every packet (every TLS record), unless
/// [`LOWAT_WAIT`] passes first. Fewer wake-ups for the server to send
/// and for us to take: see bench/RESULTS.md, session 12. Never set
/// above what the read asked for (less one partial record over TLS), so a
/// body's tail asked for exactly wakes the reader once it is all there.
pub const BULK_LOWAT: usize = 128 * 1024;
/// The longest a raised low-water mark holds back bytes that arrived:
/// then the mark goes back to one byte and the read returns what came.
pub const LOWAT_WAIT: Duration = Duration::from_millis(1);
/// No mark below this: too few wake-ups saved for the system call.
const LOWAT_MIN: usize = 32 * 1024;
/// The most of a body that can sit in a TLS session's buffers, outside
/// the socket, when the reader waits on it: one partial record (rustls's
/// receive buffer holds at most 16 KiB + 2 KiB + 5 bytes; the read-ahead
/// buffer is empty whenever the socket is read).
const TLS_HELD_MAX: usize = 20 * 1024;

/// Set a socket's receive low-water mark; false if the kernel refused.
fn set_lowat(fd: std::os::fd::RawFd, bytes: usize) -> bool {
    let v = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    // SAFETY: `fd` is the socket of a read half the caller holds, so it
    // is open; the option value is a c_int that outlives the call.
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVLOWAT,
            (&v as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        ) == 0
    }
}

/// Wait for a timer if there is one.
async fn maybe_sleep(timer: &mut Option<&mut Pin<Box<tokio::time::Sleep>>>) {
    match timer {
        Some(t) => t.as_mut().await,
        None => std::future::pending().await,
    }
}

/// Why a stream operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// EOF before the requested data was complete.
    #[error("incomplete read: {} bytes read, {} expected", partial.len(), expected.map_or("more".to_string(), |n| n.to_string()))]
    IncompleteRead {
        /// The bytes read before EOF.
        partial: Vec<u8>,
        /// How many bytes were expected, when known.
        expected: Option<u64>,
    },
    /// The separator was not found within the reader's limit.
    #[error("{message} ({consumed} bytes examined)")]
    LimitOverrun {
        /// How many bytes were examined.
        consumed: u64,
        /// What overran.
        message: String,
    },
    /// The peer refused the connection.
    #[error("connection refused: {0}")]
    ConnectionRefused(String),
    /// The connection was reset, aborted or closed unexpectedly.
    #[error("connection reset: {0}")]
    ConnectionReset(String),
    /// A connect, idle or total timeout expired.
    #[error("timed out: {0}")]
    TimedOut(String),
    /// Name resolution failed.
    #[error("could not resolve host: {0}")]
    Dns(String),
    /// The TLS handshake failed.
    #[error("tls: {message}")]
    Tls {
        /// Whether the peer's certificate was the problem (curl's 60,
        /// else 35).
        certificate: bool,
        /// What went wrong.
        message: String,
    },
    /// The policy does not allow the target.
    #[error("denied by policy: {0}")]
    Denied(String),
    /// The stream was already closed.
    #[error("stream is closed")]
    Closed,
    /// The guest passed an invalid argument.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// Any other failure.
    #[error("{0}")]
    Other(String),
}

impl StreamError {
    /// Map an I/O error from the socket.
    pub fn from_io(err: &std::io::Error) -> StreamError {
        use std::io::ErrorKind::*;
        match err.kind() {
            ConnectionRefused => StreamError::ConnectionRefused(err.to_string()),
            ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof | NotConnected => {
                StreamError::ConnectionReset(err.to_string())
            }
            TimedOut => StreamError::TimedOut(err.to_string()),
            _ => {
                // rustls reports alerts and certificate failures as
                // InvalidData wrapping a rustls::Error.
                if let Some(tls) = err
                    .get_ref()
                    .and_then(|e| e.downcast_ref::<tokio_rustls::rustls::Error>())
                {
                    return crate::tls::classify(tls);
                }
                StreamError::Other(err.to_string())
            }
        }
    }
}

/// The timeouts that bound every wait on a connection.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// For the TCP connect plus the TLS handshake.
    pub connect: Duration,
    /// For any single read or drain making no progress.
    pub idle: Duration,
    /// An absolute deadline for everything on this connection.
    pub deadline: Option<Instant>,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(30),
            idle: Duration::from_secs(120),
            deadline: None,
        }
    }
}

impl Timeouts {
    /// The instant an idle wait starting now must end, and what to call it
    /// when it does.
    fn idle_deadline(&self) -> (Instant, Expiry) {
        let idle = Instant::now() + self.idle;
        match self.deadline {
            Some(d) if d < idle => (d, Expiry::Total),
            _ => (idle, Expiry::Idle(self.idle)),
        }
    }
}

/// Which bound ends a wait (formatted only if it does: every wait has one).
#[derive(Debug, Clone, Copy)]
enum Expiry {
    Total,
    Idle(Duration),
}

impl std::fmt::Display for Expiry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Expiry::Total => f.write_str("total time limit reached"),
            Expiry::Idle(d) => write!(f, "nothing moved for the idle timeout of {} ms", d.as_millis()),
        }
    }
}

/// Facts about a connection, for `get-extra-info`.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// The peer's address.
    pub peer: SocketAddr,
    /// Our local address.
    pub local: SocketAddr,
    /// The TLS facts; none on plain TCP.
    pub tls: Option<TlsInfo>,
}

/// The TLS facts of a connection.
#[derive(Debug, Clone)]
pub struct TlsInfo {
    /// The server name used for SNI and verification.
    pub server_name: String,
    /// The peer's leaf certificate in DER.
    pub peer_cert: Option<Vec<u8>>,
    /// e.g. "TLS13_AES_256_GCM_SHA384".
    pub suite: String,
    /// e.g. "TLSv1.3".
    pub protocol: String,
    /// The negotiated ALPN protocol, if any.
    pub alpn: Option<String>,
}

/// A value of `get-extra-info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtraInfo {
    /// `peername` or `sockname`.
    Address(SocketAddr),
    /// `peercert`.
    Certificate(PeerCertificate),
    /// `cipher`.
    Cipher {
        /// The cipher suite, e.g. "TLS13_AES_256_GCM_SHA384".
        suite: String,
        /// The protocol version, e.g. "TLSv1.3".
        protocol: String,
    },
    /// `alpn` or `server_hostname`.
    Text(String),
}

/// The peer's leaf certificate, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificate {
    /// The subject's distinguished name.
    pub subject: String,
    /// The issuer's distinguished name.
    pub issuer: String,
    /// Start of the validity period.
    pub not_before: String,
    /// End of the validity period.
    pub not_after: String,
    /// The certificate in DER.
    pub der: Vec<u8>,
}

impl ConnInfo {
    /// asyncio's `get_extra_info(name)`; None for unknown names.
    pub fn get(&self, name: &str) -> Option<ExtraInfo> {
        match name {
            "peername" => Some(ExtraInfo::Address(self.peer)),
            "sockname" => Some(ExtraInfo::Address(self.local)),
            "peercert" => {
                let der = self.tls.as_ref()?.peer_cert.as_ref()?;
                crate::tls::describe_certificate(der).map(ExtraInfo::Certificate)
            }
            "cipher" => self.tls.as_ref().map(|t| ExtraInfo::Cipher {
                suite: t.suite.clone(),
                protocol: t.protocol.clone(),
            }),
            "alpn" => self.tls.as_ref()?.alpn.clone().map(ExtraInfo::Text),
            "server-hostname" | "server_hostname" => self.tls.as_ref().map(|t| ExtraInfo::Text(t.server_name.clone())),
            _ => None,
        }
    }
}

/// Byte counters shared by every stream of one guest instance.
#[derive(Debug, Default)]
pub struct Counters {
    /// Bytes handed to the guest by its readers.
    pub read: std::sync::atomic::AtomicU64,
    /// Bytes the guest handed to its writers.
    pub written: std::sync::atomic::AtomicU64,
}

/// The halves of an established connection, ready to become a reader and
/// a writer.
pub struct Connection {
    /// The read half.
    pub read: Box<dyn AsyncRead + Send + Unpin>,
    /// The write half.
    pub write: Box<dyn AsyncWrite + Send + Unpin>,
    /// Facts about the connection.
    pub info: Arc<ConnInfo>,
    /// False on TLS: a TCP half-close would break the TLS session.
    pub can_write_eof: bool,
    /// The TCP socket under the halves, for the receive low-water mark
    /// of bulk reads ([`StreamReader`]); None where there is no socket
    /// (a replayed tape).
    pub socket: Option<std::os::fd::RawFd>,
}

/// Per-connection settings from `open-connection`'s options.
#[derive(Debug, Clone, Copy)]
pub struct StreamOptions {
    /// The reader's limit (asyncio's `limit`).
    pub limit: usize,
    /// The writer's high-water mark (asyncio's transport write buffer).
    pub high_water: usize,
    /// The connection's timeouts.
    pub timeouts: Timeouts,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            limit: DEFAULT_LIMIT,
            high_water: DEFAULT_HIGH_WATER,
            timeouts: Timeouts::default(),
        }
    }
}

/// Split a connection into an asyncio-style (reader, writer) pair. Must be
/// called inside a tokio runtime: the writer's flushing task is spawned.
pub fn open(conn: Connection, opts: StreamOptions, counters: Arc<Counters>) -> (StreamReader, StreamWriter) {
    let link = Arc::new(Link {
        closed: AtomicBool::new(false),
        notify: Notify::new(),
        read_io: Mutex::new(Some(conn.read)),
    });
    let reader = StreamReader {
        link: link.clone(),
        buf: BytesMut::new(),
        limit: opts.limit.max(1),
        eof: false,
        error: None,
        timeouts: opts.timeouts,
        idle_timer: None,
        socket: conn.socket,
        lowat: 1,
        lowat_timer: None,
        bulk: false,
        info: conn.info.clone(),
        counters: counters.clone(),
    };
    let writer = StreamWriter::spawn(conn.write, conn.info, conn.can_write_eof, opts, link, counters);
    (reader, writer)
}

type ReadIo = Box<dyn AsyncRead + Send + Unpin>;
type WriteIo = Box<dyn AsyncWrite + Send + Unpin>;

/// What the two halves of one connection share: the read half of the
/// socket, and whether the writer has closed the connection.
///
/// The read half lives here rather than in the reader so that close() can
/// really close the socket (drop both halves) even while the guest holds
/// on to an idle reader. A reader in the middle of a read takes the half
/// out for the duration and gives it back, or drops it when it learns of
/// the close. After close the reader sees EOF after its buffered data, as
/// asyncio's reader does on connection_lost.
struct Link {
    closed: AtomicBool,
    /// Wakes a reader waiting on the socket when the writer closes.
    notify: Notify,
    read_io: Mutex<Option<ReadIo>>,
}

impl Link {
    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }

    /// Mark the connection closed, wake a waiting reader and drop the read
    /// half (if a read holds it, that read drops it when it wakes).
    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.notify.notify_waiters();
        let io = lock(&self.read_io).take();
        if let Some(io) = io {
            discard_and_drop(io);
        }
    }

    /// Take the read half for one read; None once closed.
    fn take_read(&self) -> Option<ReadIo> {
        lock(&self.read_io).take()
    }

    /// Give the read half back after a read, or drop it if the connection
    /// was closed meanwhile. Checked under the lock: close() sets the flag
    /// before it takes the lock, so the half is never kept after close.
    fn put_read(&self, io: ReadIo) {
        let mut slot = lock(&self.read_io);
        if !self.is_closed() {
            *slot = Some(io);
            return;
        }
        drop(slot);
        discard_and_drop(io);
    }
}

/// Close the read half of a closed connection. What has already arrived
/// and was never read is consumed first (without waiting): closing a
/// socket with unread received data makes the kernel send RST instead of
/// a normal close, and a RST can destroy data we sent that the peer has
/// not read yet. On TLS this is typically the session tickets the server
/// sends after the handshake. Data arriving later still gets the RST, as
/// with asyncio or any socket closed with data pending.
fn discard_and_drop(mut io: ReadIo) {
    let mut cx = Context::from_waker(Waker::noop());
    let mut scratch = [0u8; 16 * 1024];
    // Bounded, so that a peer sending at full speed cannot keep us here.
    for _ in 0..256 {
        let mut rb = ReadBuf::new(&mut scratch);
        match Pin::new(&mut io).poll_read(&mut cx, &mut rb) {
            Poll::Ready(Ok(())) if !rb.filled().is_empty() => continue,
            _ => break,
        }
    }
    drop(io);
}

/// Lock a mutex whose data stays consistent across a panic (plain values).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Run one socket operation under the connection's idle timeout and total
/// deadline.
async fn bounded<T>(timeouts: &Timeouts, what: &str, fut: impl Future<Output = T>) -> Result<T, StreamError> {
    let (deadline, why) = timeouts.idle_deadline();
    tokio::time::timeout_at(deadline, fut)
        .await
        .map_err(|_| StreamError::TimedOut(format!("{what}: {why}")))
}

// ---------------------------------------------------------------------------
// Reader

/// asyncio.StreamReader over a socket: a buffer, a limit, EOF state.
///
/// asyncio's reader is fed by the event loop whenever data arrives (until
/// the buffer exceeds twice the limit); this one pulls from the socket.
/// To see the same buffer contents, every operation first takes whatever
/// the socket already holds without waiting (`StreamReader::pull_ready`),
/// and waits for more only when asyncio's reader would wait.
pub struct StreamReader {
    link: Arc<Link>,
    buf: BytesMut,
    limit: usize,
    eof: bool,
    /// A socket error is sticky: once reading failed, it keeps failing
    /// (after the data buffered before it).
    error: Option<StreamError>,
    timeouts: Timeouts,
    /// The idle timer of `fill`, kept from one wait to the next.
    idle_timer: Option<Pin<Box<tokio::time::Sleep>>>,
    /// The socket, for its receive low-water mark (`SO_RCVLOWAT`).
    socket: Option<std::os::fd::RawFd>,
    /// The socket's receive low-water mark now (1: the kernel's default).
    lowat: usize,
    /// How long a raised mark may hold back what has arrived.
    lowat_timer: Option<Pin<Box<tokio::time::Sleep>>>,
    /// The last direct read took at least [`BULK_LOWAT`] bytes: the
    /// stream is a bulk body arriving faster than it is read, and the
    /// next direct read raises the mark.
    bulk: bool,
    info: Arc<ConnInfo>,
    counters: Arc<Counters>,
}

impl StreamReader {
    /// The connection's facts.
    pub fn info(&self) -> &Arc<ConnInfo> {
        &self.info
    }

    /// The buffer limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    /// How many bytes sit in the buffer now.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// How many bytes the buffer can hold before it must grow: the memory
    /// the reader keeps for its connection.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Put the socket's receive low-water mark back to one byte (a
    /// connection going idle in the pool: bytes a server sends then are
    /// seen by the pool's checks at once).
    pub(crate) fn reset_lowat(&mut self) {
        let (Some(fd), true) = (self.socket, self.lowat > 1) else {
            return;
        };
        // The read half holds the socket open while the mark is set.
        if let Some(io) = self.link.take_read() {
            if set_lowat(fd, 1) {
                self.lowat = 1;
            }
            self.link.put_read(io);
        }
    }

    /// The writer closed the connection: EOF after the buffered data.
    fn closed_eof(&mut self) {
        self.eof = true;
        if let Some(io) = self.link.take_read() {
            discard_and_drop(io);
        }
    }

    /// Account for the result of one socket read.
    fn on_read(&mut self, result: std::io::Result<usize>) -> Result<(), StreamError> {
        match result {
            Ok(0) => {
                self.eof = true;
                Ok(())
            }
            Ok(n) => {
                self.counters.read.fetch_add(n as u64, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                let e = StreamError::from_io(&e);
                // A peer closing a TLS session without close_notify is
                // reported by rustls as UnexpectedEof; asyncio reports the
                // same situation as EOF. The caller's framing decides
                // whether the data is complete.
                if matches!(&e, StreamError::ConnectionReset(m) if m.contains("close_notify")) {
                    self.eof = true;
                    return Ok(());
                }
                self.error = Some(e.clone());
                Err(e)
            }
        }
    }

    /// Take what the socket holds right now, without waiting, while the
    /// buffer is at most twice the limit (where asyncio pauses reading).
    /// Errors are kept for the next read that has to wait.
    fn pull_ready(&mut self) {
        if self.eof || self.error.is_some() {
            return;
        }
        if self.link.is_closed() {
            self.closed_eof();
            return;
        }
        let Some(mut io) = self.link.take_read() else {
            self.closed_eof();
            return;
        };
        let mut cx = Context::from_waker(Waker::noop());
        while !self.eof && self.error.is_none() && self.buf.len() <= 2 * self.limit {
            // Grown only when little room is left: reserving a whole chunk
            // on top of unread data reallocated (and copied) a
            // connection's buffer on its first reply, to twice its size.
            if self.buf.capacity() - self.buf.len() < READ_CHUNK / 4 {
                self.buf.reserve(READ_CHUNK);
            }
            let poll = {
                let fut = io.read_buf(&mut self.buf);
                tokio::pin!(fut);
                fut.poll(&mut cx)
            };
            match poll {
                Poll::Ready(r) => {
                    let _ = self.on_read(r);
                }
                Poll::Pending => break,
            }
        }
        self.link.put_read(io);
    }

    /// Wait for more data from the socket (at least `want` bytes of room),
    /// under the idle timeout and total deadline. Sets `eof` at end of
    /// stream or when the writer closes the connection.
    async fn fill(&mut self, want: usize) -> Result<(), StreamError> {
        self.fill_into(None, want).await
    }

    /// [`fill`](Self::fill), but into `direct` (up to its spare capacity)
    /// instead of the buffer when given; `want` is the room to reserve in
    /// the buffer, unused for `direct`.
    async fn fill_into(&mut self, direct: Option<&mut Vec<u8>>, want: usize) -> Result<(), StreamError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        if self.eof {
            return Ok(());
        }
        let link = self.link.clone();
        // Registered before the flag is checked, so a close in between
        // still wakes this read.
        let closed = link.notify.notified();
        tokio::pin!(closed);
        closed.as_mut().enable();
        if link.is_closed() {
            self.closed_eof();
            return Ok(());
        }
        let Some(mut io) = link.take_read() else {
            self.closed_eof();
            return Ok(());
        };
        // A direct read of a bulk body raises the socket's low-water
        // mark; any other read (a head, a chunk line) puts it back first.
        let is_direct = direct.is_some();
        if let Some(fd) = self.socket {
            let mark = match &direct {
                Some(v) if self.bulk => {
                    // No more than the socket is sure to get if the peer
                    // sends what was asked (a body's tail is not held
                    // back): all of it over TCP, since the buffer is
                    // empty; over TLS, less a partial record.
                    let asked = v.capacity() - v.len();
                    let sure = if self.info.tls.is_some() {
                        asked.saturating_sub(TLS_HELD_MAX)
                    } else {
                        asked
                    };
                    match sure.min(BULK_LOWAT) {
                        m if m >= LOWAT_MIN => m,
                        _ => 1,
                    }
                }
                _ => 1,
            };
            if mark != self.lowat && set_lowat(fd, mark) {
                self.lowat = mark;
            }
        }
        let dst: &mut (dyn bytes::BufMut + Send) = match direct {
            Some(v) => v,
            None => {
                self.buf.reserve(want.max(READ_CHUNK));
                &mut self.buf
            }
        };
        let (deadline, why) = self.timeouts.idle_deadline();
        // One timer per reader, moved only when it would fire too late: a
        // new timer per wait made tokio wake its own driver (an eventfd
        // write) whenever it was the earliest, about once per fetch. A
        // timer left from an earlier wait fires early and is moved on.
        let timer = match &mut self.idle_timer {
            Some(timer) => {
                if timer.deadline() > deadline {
                    timer.as_mut().reset(deadline);
                }
                timer
            }
            None => self.idle_timer.insert(Box::pin(tokio::time::sleep_until(deadline))),
        };
        // A raised mark holds back what arrived for at most LOWAT_WAIT.
        let mut lowat_timer = if self.lowat > 1 {
            let t = self
                .lowat_timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(LOWAT_WAIT)));
            t.as_mut().reset(Instant::now() + LOWAT_WAIT);
            Some(t)
        } else {
            None
        };
        let mut held = lowat_timer.is_some();
        let mut lowered = false;
        let socket = self.socket;
        let read = io.read_buf(dst);
        tokio::pin!(read);
        let result = loop {
            tokio::select! {
                biased;
                r = &mut read => break Some(r),
                _ = &mut closed => break Some(Ok(0)),
                () = maybe_sleep(&mut lowat_timer), if held => {
                    // Back to one byte: the kernel wakes us now if
                    // anything is there.
                    held = false;
                    if let Some(fd) = socket {
                        lowered = set_lowat(fd, 1);
                    }
                }
                () = timer.as_mut() => {
                    if Instant::now() >= deadline {
                        break None;
                    }
                    timer.as_mut().reset(deadline);
                }
            }
        };
        if lowered {
            self.lowat = 1;
        }
        if is_direct {
            // Bulk while each direct read takes a mark's worth or more.
            self.bulk = matches!(result, Some(Ok(n)) if n >= BULK_LOWAT);
        }
        link.put_read(io);
        match result {
            // Not sticky: the stream is intact and the caller may retry
            // (the total deadline, once passed, fails every retry at once).
            None => Err(StreamError::TimedOut(format!("read: {why}"))),
            Some(r) => {
                if link.is_closed() {
                    self.eof = true;
                }
                self.on_read(r)
            }
        }
    }

    fn take(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.buf.len());
        // Copy out and advance, rather than split_to: a split makes the
        // buffer shared, and the next reserve would then allocate anew.
        let out = self.buf[..n].to_vec();
        self.buf.advance(n);
        out
    }

    /// `read(n)`: up to n bytes, at least one unless at EOF; n = -1 reads
    /// to EOF; n = 0 returns empty at once.
    pub async fn read(&mut self, n: i64) -> Result<Vec<u8>, StreamError> {
        if n == 0 {
            return Ok(Vec::new());
        }
        if n < -1 {
            return Err(StreamError::InvalidArgument(format!(
                "read({n}): n must be -1 or at least 0"
            )));
        }
        if n == -1 {
            self.pull_ready();
            while !self.eof {
                self.fill(self.limit).await?;
            }
            let all = self.buf.len();
            return Ok(self.take(all));
        }
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        if n >= DIRECT_READ_MIN && self.buf.is_empty() && !self.eof {
            // A large read with nothing buffered: the socket's bytes go
            // straight into the result (up to DIRECT_READ_MAX in one
            // system call), sparing a copy through the buffer. Loopback
            // reads of 64-128 KiB ran at a third of the speed of 1 MiB
            // ones (bench/RESULTS.md, session 10).
            let mut out = Vec::with_capacity(n.min(DIRECT_READ_MAX));
            self.fill_into(Some(&mut out), 0).await?;
            return Ok(out);
        }
        self.pull_ready();
        if self.buf.is_empty() && !self.eof {
            self.fill(n.min(READ_CHUNK)).await?;
        }
        Ok(self.take(n))
    }

    /// `readexactly(n)`: exactly n bytes, or IncompleteRead with what came.
    pub async fn readexactly(&mut self, n: u64) -> Result<Vec<u8>, StreamError> {
        let n_usize =
            usize::try_from(n).map_err(|_| StreamError::InvalidArgument(format!("readexactly({n}): too large")))?;
        if n_usize == 0 {
            return Ok(Vec::new());
        }
        self.pull_ready();
        while self.buf.len() < n_usize {
            if self.eof {
                let all = self.buf.len();
                return Err(StreamError::IncompleteRead {
                    partial: self.take(all),
                    expected: Some(n),
                });
            }
            let missing = n_usize - self.buf.len();
            self.fill(missing).await?;
        }
        Ok(self.take(n_usize))
    }

    /// `readuntil(separators)`: data through the match that ends first;
    /// on a tie the shortest separator wins (CPython 3.13, which sorts the
    /// separators by length). Not found within the limit: LimitOverrun,
    /// and the data stays buffered. EOF first: IncompleteRead with all the
    /// buffered data.
    pub async fn readuntil(&mut self, separators: &[Vec<u8>]) -> Result<Vec<u8>, StreamError> {
        let mut seps: Vec<&[u8]> = separators.iter().map(Vec::as_slice).collect();
        seps.sort_by_key(|s| s.len());
        let (min_len, max_len) = match (seps.first(), seps.last()) {
            (Some(min), Some(max)) if !min.is_empty() => (min.len(), max.len()),
            (None, _) => {
                return Err(StreamError::InvalidArgument(
                    "readuntil needs at least one separator".into(),
                ))
            }
            _ => {
                return Err(StreamError::InvalidArgument(
                    "separator must be at least one byte".into(),
                ))
            }
        };
        self.pull_ready();
        let mut offset = 0usize;
        let (start, end) = loop {
            let buflen = self.buf.len();
            if buflen.saturating_sub(offset) >= min_len {
                let mut best: Option<(usize, usize)> = None;
                for sep in &seps {
                    // Only a match ending before the best one so far can
                    // win, so the search stops there (a body behind the
                    // head is not scanned for the other separators).
                    let upto = best.map_or(buflen, |(_, be)| be - 1);
                    if let Some(i) = find(&self.buf[offset..upto.max(offset)], sep) {
                        let (s, e) = (offset + i, offset + i + sep.len());
                        if best.is_none_or(|(_, be)| e < be) {
                            best = Some((s, e));
                        }
                    }
                }
                if let Some(found) = best {
                    break found;
                }
                offset = (buflen + 1).saturating_sub(max_len);
                if offset > self.limit {
                    return Err(StreamError::LimitOverrun {
                        consumed: offset as u64,
                        message: "Separator is not found, and chunk exceed the limit".into(),
                    });
                }
            }
            if self.eof {
                let all = self.buf.len();
                return Err(StreamError::IncompleteRead {
                    partial: self.take(all),
                    expected: None,
                });
            }
            self.fill(READ_CHUNK).await?;
        };
        if start > self.limit {
            return Err(StreamError::LimitOverrun {
                consumed: start as u64,
                message: "Separator is found, but chunk is longer than limit".into(),
            });
        }
        Ok(self.take(end))
    }

    /// `readline()`: readuntil("\n"), but EOF returns the partial line, and
    /// a limit overrun discards what was examined (and the separator, when
    /// it is next) before reporting.
    pub async fn readline(&mut self) -> Result<Vec<u8>, StreamError> {
        match self.readuntil(&[b"\n".to_vec()]).await {
            Ok(line) => Ok(line),
            Err(StreamError::IncompleteRead { partial, .. }) => Ok(partial),
            Err(StreamError::LimitOverrun { consumed, message }) => {
                let c = usize::try_from(consumed).unwrap_or(usize::MAX);
                if self.buf.get(c) == Some(&b'\n') {
                    self.buf.advance(c + 1);
                } else {
                    self.buf.clear();
                }
                Err(StreamError::LimitOverrun { consumed, message })
            }
            Err(e) => Err(e),
        }
    }

    /// True once the buffer is empty and EOF was received. Looks at the
    /// socket without waiting, so an EOF that has arrived counts, as it
    /// does for asyncio's reader.
    pub fn at_eof(&mut self) -> bool {
        if self.buf.is_empty() {
            self.pull_ready();
        }
        self.eof && self.buf.is_empty()
    }
}

/// Where `needle` first occurs in `hay`, without building a searcher for
/// short needles (`readuntil`'s separators, the CLI's scheme check).
pub(crate) fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    match needle {
        [b] => memchr::memchr(*b, hay),
        // A short separator (a head's "\r\n\r\n"): its first byte by
        // memchr, then the rest compared in place. `memmem::find` builds a
        // searcher on every call, which cost more than the search in a
        // small reply. At most 8 bytes compared per candidate, so the
        // worst case stays linear; longer ones (a guest may pass any)
        // go to memmem.
        [first, rest @ ..] if rest.len() < 8 => {
            let mut from = 0;
            while let Some(i) = memchr::memchr(*first, &hay[from..]) {
                let at = from + i;
                if hay[at + 1..].starts_with(rest) {
                    return Some(at);
                }
                from = at + 1;
            }
            None
        }
        _ => memchr::memmem::find(hay, needle),
    }
}

// ---------------------------------------------------------------------------
// Writer

/// asyncio.StreamWriter over a socket: a buffer flushed by a background
/// task, water marks, half-close and close. As asyncio's transport does,
/// a write to an idle plain-TCP writer first tries the socket at once and
/// buffers only what it does not take.
pub struct StreamWriter {
    shared: Arc<WriterShared>,
    link: Arc<Link>,
    info: Arc<ConnInfo>,
    counters: Arc<Counters>,
    can_write_eof: bool,
    high_water: usize,
    low_water: usize,
    timeouts: Timeouts,
}

#[derive(Default)]
struct WriterShared {
    state: Mutex<WriterState>,
    /// Wakes the flushing task: new data, eof or close requested.
    wake_task: Notify,
    /// Wakes waiters: bytes were written, or the task finished.
    progress: Notify,
}

#[derive(Default)]
struct WriterState {
    /// The write half of the socket while the task is idle; the task takes
    /// it out while it writes or closes.
    io: Option<WriteIo>,
    /// Bytes accepted by write() and not yet taken by the task.
    queue: BytesMut,
    /// Bytes accepted and not yet written to the socket (queue + in flight).
    pending: usize,
    eof_requested: bool,
    closing: bool,
    /// The task has finished (socket closed, or the connection failed).
    done: bool,
    error: Option<StreamError>,
}

impl WriterShared {
    fn lock(&self) -> MutexGuard<'_, WriterState> {
        lock(&self.state)
    }
}

impl StreamWriter {
    fn spawn(
        io: WriteIo,
        info: Arc<ConnInfo>,
        can_write_eof: bool,
        opts: StreamOptions,
        link: Arc<Link>,
        counters: Arc<Counters>,
    ) -> StreamWriter {
        let shared = Arc::new(WriterShared::default());
        shared.lock().io = Some(io);
        tokio::spawn(flush_task(
            shared.clone(),
            link.clone(),
            counters.clone(),
            opts.timeouts,
        ));
        StreamWriter {
            shared,
            link,
            info,
            counters,
            can_write_eof,
            high_water: opts.high_water,
            low_water: opts.high_water / 4,
            timeouts: opts.timeouts,
        }
    }

    /// The connection's facts.
    pub fn info(&self) -> &Arc<ConnInfo> {
        &self.info
    }

    /// Bytes accepted and not yet on the socket.
    pub fn buffered(&self) -> usize {
        self.shared.lock().pending
    }

    /// The high-water mark: drain waits while the buffer is above it.
    pub fn high_water(&self) -> usize {
        self.high_water
    }

    /// The low-water mark: a waiting drain returns once the buffer is at
    /// or under it (a quarter of the high-water mark).
    pub fn low_water(&self) -> usize {
        self.low_water
    }

    /// Queue bytes; never blocks.
    pub fn write(&self, data: &[u8]) -> Result<(), StreamError> {
        self.writelines(std::iter::once(data))
    }

    /// write() of each piece, in order, as one atomic append.
    pub fn writelines<'a>(&self, pieces: impl IntoIterator<Item = &'a [u8]>) -> Result<(), StreamError> {
        let mut st = self.shared.lock();
        if st.closing {
            return Err(StreamError::Closed);
        }
        if let Some(e) = &st.error {
            return Err(e.clone());
        }
        if st.eof_requested {
            return Err(StreamError::InvalidArgument("write after write-eof".into()));
        }
        // Nothing buffered or in flight: the socket may take the bytes now
        // (plain TCP only: a TLS write may leave records to flush).
        let mut direct = self.can_write_eof && st.queue.is_empty() && st.pending == 0 && st.io.is_some();
        let before = st.queue.len();
        let mut failed = None;
        for p in pieces {
            let mut p = p;
            while direct && !p.is_empty() {
                let io = st.io.as_mut().expect("checked above");
                match Pin::new(io).poll_write(&mut Context::from_waker(Waker::noop()), p) {
                    Poll::Ready(Ok(n)) if n > 0 => {
                        self.counters.written.fetch_add(n as u64, Ordering::Relaxed);
                        p = &p[n..];
                    }
                    // Would block, or a zero write for the task to judge.
                    Poll::Ready(Ok(_)) | Poll::Pending => direct = false,
                    Poll::Ready(Err(e)) => {
                        failed = Some(StreamError::from_io(&e));
                        direct = false;
                    }
                }
            }
            if failed.is_none() {
                st.queue.extend_from_slice(p);
            }
        }
        if let Some(e) = failed {
            // As when the task fails: the error is sticky, the write half
            // goes, and the task ends (asyncio reports it on the next call).
            drop(st);
            fail(&self.shared, &self.link, e);
            self.shared.wake_task.notify_one();
            return Ok(());
        }
        let added = st.queue.len() - before;
        st.pending += added;
        drop(st);
        if added > 0 {
            self.shared.wake_task.notify_one();
        }
        Ok(())
    }

    /// Return at once while the buffer is at or under the high-water mark;
    /// otherwise wait until it falls to the low-water mark. Reports an
    /// error of the connection. Waits at most the idle timeout without
    /// progress, and never past the total deadline.
    pub async fn drain(&self) -> Result<(), StreamError> {
        {
            // The look at call time (asyncio's rule is about the high
            // mark), without a waiter or a clock read: the common case
            // returns here.
            let st = self.shared.lock();
            if let Some(e) = &st.error {
                return Err(e.clone());
            }
            if st.closing {
                return Err(StreamError::Closed);
            }
            if st.pending <= self.high_water {
                return Ok(());
            }
        }
        let mut last_pending = usize::MAX;
        let mut limit = None;
        loop {
            let progress = self.shared.progress.notified();
            tokio::pin!(progress);
            progress.as_mut().enable();
            {
                let st = self.shared.lock();
                if let Some(e) = &st.error {
                    return Err(e.clone());
                }
                if st.pending <= self.low_water || st.done {
                    return Ok(());
                }
                if st.pending < last_pending {
                    // Progress: the idle timeout starts again.
                    limit = None;
                }
                last_pending = st.pending;
            }
            let (deadline, why) = *limit.get_or_insert_with(|| self.timeouts.idle_deadline());
            tokio::select! {
                _ = progress => {}
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(StreamError::TimedOut(format!("drain: the peer is not reading ({why})")));
                }
            }
        }
    }

    /// True on plain TCP.
    pub fn can_write_eof(&self) -> bool {
        self.can_write_eof
    }

    /// Flush, then half-close (TCP FIN); returns at once. An error on TLS.
    pub fn write_eof(&self) -> Result<(), StreamError> {
        if !self.can_write_eof {
            return Err(StreamError::InvalidArgument(
                "write-eof is not possible on a TLS stream (can-write-eof is false)".into(),
            ));
        }
        let mut st = self.shared.lock();
        if st.closing {
            return Err(StreamError::Closed);
        }
        if let Some(e) = &st.error {
            return Err(e.clone());
        }
        st.eof_requested = true;
        drop(st);
        self.shared.wake_task.notify_one();
        Ok(())
    }

    /// Start closing: flush, then close. Harmless twice.
    pub fn close(&self) {
        let mut st = self.shared.lock();
        st.closing = true;
        let done = st.done;
        drop(st);
        if done {
            // The connection already failed: nothing to flush, but the
            // socket must still be closed and the reader told.
            self.link.close();
        }
        self.shared.wake_task.notify_one();
    }

    /// True from close() on.
    pub fn is_closing(&self) -> bool {
        self.shared.lock().closing
    }

    /// Wait until close() has flushed and closed the socket; report an
    /// error of the connection. The flush is bounded by the connection's
    /// timeouts. Called before close() it could never return (the caller
    /// is the one who must close), so it is an error, unless the
    /// connection has already failed, which it reports.
    pub async fn wait_closed(&self) -> Result<(), StreamError> {
        loop {
            let progress = self.shared.progress.notified();
            tokio::pin!(progress);
            progress.as_mut().enable();
            {
                let st = self.shared.lock();
                if st.done {
                    return match &st.error {
                        Some(e) => Err(e.clone()),
                        None => Ok(()),
                    };
                }
                if !st.closing {
                    return Err(StreamError::InvalidArgument(
                        "wait-closed before close: call close first".into(),
                    ));
                }
            }
            progress.await;
        }
    }
}

impl Drop for StreamWriter {
    fn drop(&mut self) {
        // Dropping the writer is close(): what is buffered is still
        // flushed, within the connection's timeouts.
        self.close();
    }
}

/// Marks the writer done however the flushing task ends (finished, failed,
/// panicked, or dropped with its runtime), so wait-closed and drain never
/// wait on a task that is gone.
struct DoneGuard(Arc<WriterShared>);

impl Drop for DoneGuard {
    fn drop(&mut self) {
        let mut st = self.0.lock();
        if !st.done {
            st.done = true;
            if st.error.is_none() && (st.pending > 0 || !st.closing) {
                st.error = Some(StreamError::Other("the connection's writer stopped".into()));
            }
        }
        drop(st);
        self.0.progress.notify_waiters();
    }
}

/// The background half of a writer: moves queued bytes to the socket,
/// then performs a requested half-close or close. Every socket operation
/// is bounded by the idle timeout and the total deadline, so a peer that
/// never reads cannot keep this task (and the socket) alive forever.
async fn flush_task(shared: Arc<WriterShared>, link: Arc<Link>, counters: Arc<Counters>, timeouts: Timeouts) {
    let _done = DoneGuard(shared.clone());
    let mut eof_sent = false;
    loop {
        let wake = shared.wake_task.notified();
        tokio::pin!(wake);
        wake.as_mut().enable();
        let (chunk, eof, closing, io) = {
            let mut st = shared.lock();
            let chunk = st.queue.split().freeze();
            let (eof, closing) = (st.eof_requested, st.closing);
            let work = !chunk.is_empty() || closing || (eof && !eof_sent);
            (chunk, eof, closing, if work { st.io.take() } else { None })
        };
        let mut io = match io {
            Some(io) => io,
            // A direct write failed (fail() dropped the half): done.
            None if shared.lock().done => return,
            None => {
                wake.await;
                continue;
            }
        };
        if !chunk.is_empty() {
            let mut pos = 0;
            while pos < chunk.len() {
                match bounded(&timeouts, "write", io.write(&chunk[pos..])).await {
                    Ok(Ok(0)) => {
                        return fail(
                            &shared,
                            &link,
                            StreamError::ConnectionReset("socket accepts no more data".into()),
                        );
                    }
                    Ok(Ok(n)) => {
                        pos += n;
                        counters.written.fetch_add(n as u64, Ordering::Relaxed);
                        shared.lock().pending -= n;
                        shared.progress.notify_waiters();
                    }
                    Ok(Err(e)) => return fail(&shared, &link, StreamError::from_io(&e)),
                    Err(timeout) => return fail(&shared, &link, timeout),
                }
            }
            match bounded(&timeouts, "write", io.flush()).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => return fail(&shared, &link, StreamError::from_io(&e)),
                Err(timeout) => return fail(&shared, &link, timeout),
            }
            shared.lock().io = Some(io);
            continue; // more may have been queued meanwhile
        }
        if (eof || closing) && !eof_sent {
            eof_sent = true;
            // For TCP, shutdown() is shutdown(SHUT_WR); for TLS it sends
            // close_notify first.
            let r = match bounded(&timeouts, "shutdown", io.shutdown()).await {
                Ok(r) => r.map_err(|e| StreamError::from_io(&e)),
                Err(timeout) => Err(timeout),
            };
            if let Err(e) = r {
                if !closing {
                    return fail(&shared, &link, e);
                }
            }
        }
        if closing {
            drop(io);
            link.close();
            shared.lock().done = true;
            shared.progress.notify_waiters();
            return;
        }
        shared.lock().io = Some(io);
        wake.await;
    }
}

/// The connection failed while writing: the error is sticky, the buffer
/// is dropped (it can never be sent), and the write half is closed (here
/// if the task was idle, else when the task returns). The reader keeps its
/// own state: data already received can still be read. A close()
/// requested earlier closes the read half too.
fn fail(shared: &WriterShared, link: &Link, err: StreamError) {
    let mut st = shared.lock();
    st.error = Some(err);
    st.done = true;
    let io = st.io.take();
    st.queue.clear();
    st.pending = 0;
    let closing = st.closing;
    drop(st);
    drop(io);
    if closing {
        link.close();
    }
    shared.progress.notify_waiters();
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// The kernel's receive low-water mark of a socket.
    fn lowat_of(fd: std::os::fd::RawFd) -> libc::c_int {
        let mut v: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `fd` is open for the duration of the test; v and len
        // are valid for writes of their sizes.
        let r = unsafe {
            libc::getsockopt(
                fd,
                libc::SOL_SOCKET,
                libc::SO_RCVLOWAT,
                (&mut v as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        assert_eq!(r, 0, "getsockopt");
        v
    }

    /// Bulk reads raise the mark to BULK_LOWAT; a read asking for less
    /// (a body's tail) sets no more than it asks; a head read and the
    /// pool's reset put it back to one byte.
    #[tokio::test]
    async fn the_low_water_mark_follows_the_reads() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (client, accepted) = tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
        let (client, mut peer) = (client.expect("connect"), accepted.expect("accept").0);
        let fd = std::os::fd::AsRawFd::as_raw_fd(&client);
        let info = Arc::new(ConnInfo {
            peer: addr,
            local: client.local_addr().expect("local"),
            tls: None,
        });
        let (r, w) = client.into_split();
        let conn = Connection {
            read: Box::new(r),
            write: Box::new(w),
            info,
            can_write_eof: true,
            socket: Some(fd),
        };
        let (mut reader, _writer) = open(conn, StreamOptions::default(), Arc::new(Counters::default()));
        assert_eq!(lowat_of(fd), 1);
        // 4 MiB, written while we read.
        let sender = tokio::spawn(async move {
            peer.write_all(&vec![b'x'; 4 << 20]).await.expect("write");
            peer
        });
        let mut got = 0;
        let mut raised = false;
        while got < 4 << 20 {
            let n = reader
                .read(((4 << 20) - got).min(1 << 20) as i64)
                .await
                .expect("read")
                .len();
            got += n;
            let mark = lowat_of(fd);
            assert!(mark == 1 || mark as usize <= BULK_LOWAT, "mark {mark}");
            raised |= mark as usize == BULK_LOWAT;
        }
        assert!(raised, "4 MiB of bulk reads never raised the mark");
        // A head that has to be waited for: the mark goes back first.
        let mut peer = sender.await.expect("sender");
        let newline = [b"\n".to_vec()];
        let (line, mut peer) = tokio::join!(reader.readuntil(&newline), async move {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            peer.write_all(b"next\n").await.expect("write");
            peer
        });
        assert_eq!(line.expect("line"), b"next\n");
        assert_eq!(lowat_of(fd), 1, "a head read puts the mark back");
        // A body's tail of 100 KiB, asked for exactly: the mark is what
        // is asked, not BULK_LOWAT, so the tail is not held back.
        reader.bulk = true;
        let tail = tokio::spawn(async move {
            peer.write_all(&vec![b'y'; 100 * 1024]).await.expect("write");
            peer
        });
        let first = reader.read(100 * 1024).await.expect("read").len();
        assert_eq!(lowat_of(fd), 100 * 1024);
        let mut got = first;
        while got < 100 * 1024 {
            got += reader.read((100 * 1024 - got) as i64).await.expect("read").len();
        }
        let _peer = tail.await.expect("tail");
        // The pool's reset.
        assert!(set_lowat(fd, BULK_LOWAT));
        reader.lowat = BULK_LOWAT;
        reader.reset_lowat();
        assert_eq!(lowat_of(fd), 1);
    }

    #[test]
    fn find_agrees_with_a_plain_search() {
        let plain = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
        let hays: [&[u8]; 6] = [
            b"HTTP/1.1 200 OK\r\nA: b\r\n\r\nbody",
            b"\r\n\r\r\n\r\n",
            b"\r\n\r",
            b"",
            b"abcabcabd",
            b"\n\n",
        ];
        let needles: [&[u8]; 7] = [
            b"\r\n\r\n",
            b"\n\n",
            b"\r\n",
            b"\n",
            b"abd",
            b"abcabcabd",
            b"abcabcabdx",
        ];
        for hay in hays {
            for needle in needles {
                assert_eq!(find(hay, needle), plain(hay, needle), "{hay:?} {needle:?}");
            }
        }
    }
}
