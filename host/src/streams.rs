//! The asyncio-like stream reader and writer that the host lends to guests,
//! over tokio TCP and TLS connections.
//!
//! Semantics follow CPython's `asyncio.StreamReader` / `StreamWriter`:
//! - [`StreamWriter::write`] never blocks: bytes go to a buffer that a
//!   background task flushes to the socket; [`StreamWriter::drain`] waits
//!   only while the buffer is above the high-water mark, until it falls to
//!   the low-water mark.
//! - [`StreamReader`] keeps a buffer with a limit; `readuntil` stops at the
//!   limit with [`StreamError::LimitOverrun`] and leaves the data buffered;
//!   incomplete reads carry their partial bytes.
//!
//! Every wait is bounded by the connection's [`Timeouts`], so a peer that
//! stops reading or writing stalls only the one call that waits on it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::Notify;
use tokio::time::Instant;

/// asyncio's default StreamReader limit: 64 KiB.
pub const DEFAULT_LIMIT: usize = 64 * 1024;
/// asyncio's default transport high-water mark: 64 KiB (low is a quarter).
pub const DEFAULT_HIGH_WATER: usize = 64 * 1024;
/// How much the reader asks the socket for at a time when it has no better
/// idea. Large enough that a bulk body takes few syscalls.
const READ_CHUNK: usize = 64 * 1024;

/// Why a stream operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StreamError {
    /// EOF before the requested data was complete.
    #[error("incomplete read: {} bytes read, {} expected", partial.len(), expected.map_or("more".to_string(), |n| n.to_string()))]
    IncompleteRead {
        partial: Vec<u8>,
        expected: Option<u64>,
    },
    /// The separator was not found within the reader's limit.
    #[error("{message} ({consumed} bytes examined)")]
    LimitOverrun { consumed: u64, message: String },
    #[error("connection refused: {0}")]
    ConnectionRefused(String),
    #[error("connection reset: {0}")]
    ConnectionReset(String),
    #[error("timed out: {0}")]
    TimedOut(String),
    #[error("could not resolve host: {0}")]
    Dns(String),
    #[error("tls: {message}")]
    Tls { certificate: bool, message: String },
    #[error("denied by policy: {0}")]
    Denied(String),
    #[error("stream is closed")]
    Closed,
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
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
                if let Some(tls) = err.get_ref().and_then(|e| e.downcast_ref::<tokio_rustls::rustls::Error>()) {
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
    /// The instant an idle wait starting now must end, and what to call it.
    fn idle_deadline(&self) -> (Instant, &'static str) {
        let idle = Instant::now() + self.idle;
        match self.deadline {
            Some(d) if d < idle => (d, "total time limit reached"),
            _ => (idle, "no data for the idle timeout"),
        }
    }
}

/// Facts about a connection, for `get-extra-info`.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    pub peer: SocketAddr,
    pub local: SocketAddr,
    pub tls: Option<TlsInfo>,
}

/// The TLS facts of a connection.
#[derive(Debug, Clone)]
pub struct TlsInfo {
    pub server_name: String,
    /// The peer's leaf certificate in DER.
    pub peer_cert: Option<Vec<u8>>,
    /// e.g. "TLS13_AES_256_GCM_SHA384".
    pub suite: String,
    /// e.g. "TLSv1.3".
    pub protocol: String,
    pub alpn: Option<String>,
}

/// A value of `get-extra-info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtraInfo {
    Address(SocketAddr),
    Certificate(PeerCertificate),
    Cipher { suite: String, protocol: String },
    Text(String),
}

/// The peer's leaf certificate, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerCertificate {
    pub subject: String,
    pub issuer: String,
    pub not_before: String,
    pub not_after: String,
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
    pub read: std::sync::atomic::AtomicU64,
    pub written: std::sync::atomic::AtomicU64,
}

/// The halves of an established connection, ready to become a reader and
/// a writer.
pub struct Connection {
    pub read: Box<dyn AsyncRead + Send + Unpin>,
    pub write: Box<dyn AsyncWrite + Send + Unpin>,
    pub info: Arc<ConnInfo>,
    /// False on TLS: a TCP half-close would break the TLS session.
    pub can_write_eof: bool,
}

/// Per-connection settings from `open-connection`'s options.
#[derive(Debug, Clone, Copy)]
pub struct StreamOptions {
    pub limit: usize,
    pub high_water: usize,
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
    let closed = Arc::new(CloseSignal::default());
    let reader = StreamReader {
        io: conn.read,
        buf: BytesMut::new(),
        limit: opts.limit.max(1),
        eof: false,
        error: None,
        timeouts: opts.timeouts,
        info: conn.info.clone(),
        writer_closed: closed.clone(),
        counters: counters.clone(),
    };
    let writer = StreamWriter::spawn(conn.write, conn.info, conn.can_write_eof, opts, closed, counters);
    (reader, writer)
}

/// Set once the writer has closed the connection; the reader then sees EOF
/// after its buffered data, as asyncio's reader does on connection_lost.
#[derive(Default)]
struct CloseSignal {
    closed: std::sync::atomic::AtomicBool,
    notify: Notify,
}

impl CloseSignal {
    fn is_set(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::Acquire)
    }
    fn set(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::Release);
        self.notify.notify_waiters();
    }
}

// ---------------------------------------------------------------------------
// Reader

/// asyncio.StreamReader over a socket: a buffer, a limit, EOF state.
pub struct StreamReader {
    io: Box<dyn AsyncRead + Send + Unpin>,
    buf: BytesMut,
    limit: usize,
    eof: bool,
    /// A socket error is sticky: once reading failed, it keeps failing.
    error: Option<StreamError>,
    timeouts: Timeouts,
    info: Arc<ConnInfo>,
    writer_closed: Arc<CloseSignal>,
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

    /// Pull more data from the socket into the buffer, at least `want`
    /// bytes of room. Sets `eof` at end of stream.
    async fn fill(&mut self, want: usize) -> Result<(), StreamError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        if self.eof {
            return Ok(());
        }
        if self.writer_closed.is_set() {
            self.eof = true;
            return Ok(());
        }
        self.buf.reserve(want.max(READ_CHUNK));
        let (deadline, why) = self.timeouts.idle_deadline();
        let closed = self.writer_closed.clone();
        let result = tokio::select! {
            r = self.io.read_buf(&mut self.buf) => r,
            _ = tokio::time::sleep_until(deadline) => {
                let e = StreamError::TimedOut(format!("read: {why}"));
                self.error = Some(e.clone());
                return Err(e);
            }
            _ = closed.notify.notified() => Ok(0),
        };
        match result {
            Ok(0) => {
                self.eof = true;
                Ok(())
            }
            Ok(n) => {
                self.counters.read.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
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

    fn take(&mut self, n: usize) -> Vec<u8> {
        let n = n.min(self.buf.len());
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
            return Err(StreamError::InvalidArgument(format!("read({n}): n must be -1 or at least 0")));
        }
        if n == -1 {
            while !self.eof {
                self.fill(self.limit).await?;
            }
            let all = self.buf.len();
            return Ok(self.take(all));
        }
        if self.buf.is_empty() && !self.eof {
            self.fill(n as usize).await?;
        }
        Ok(self.take(n as usize))
    }

    /// `readexactly(n)`: exactly n bytes, or IncompleteRead with what came.
    pub async fn readexactly(&mut self, n: u64) -> Result<Vec<u8>, StreamError> {
        let n_usize = usize::try_from(n).map_err(|_| StreamError::InvalidArgument(format!("readexactly({n}): too large")))?;
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

    /// `readuntil(separators)`: data through the match that ends first
    /// (CPython 3.13 semantics for several separators).
    pub async fn readuntil(&mut self, separators: &[Vec<u8>]) -> Result<Vec<u8>, StreamError> {
        let (min_len, max_len) = match (separators.iter().map(Vec::len).min(), separators.iter().map(Vec::len).max()) {
            (Some(min), Some(max)) if min > 0 => (min, max),
            _ => return Err(StreamError::InvalidArgument("separator must be at least one byte".into())),
        };
        let mut offset = 0usize;
        let (start, end) = loop {
            let buflen = self.buf.len();
            if buflen.saturating_sub(offset) >= min_len {
                let mut best: Option<(usize, usize)> = None;
                for sep in separators {
                    if let Some(i) = find(&self.buf[offset..], sep) {
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
                        message: "separator is not found, and chunk exceed the limit".into(),
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
                message: "separator is found, but chunk is longer than limit".into(),
            });
        }
        Ok(self.take(end))
    }

    /// `readline()`: readuntil("\n"), but EOF returns the partial line, and
    /// a limit overrun discards what was examined before reporting.
    pub async fn readline(&mut self) -> Result<Vec<u8>, StreamError> {
        match self.readuntil(&[b"\n".to_vec()]).await {
            Ok(line) => Ok(line),
            Err(StreamError::IncompleteRead { partial, .. }) => Ok(partial),
            Err(StreamError::LimitOverrun { consumed, message }) => {
                let c = consumed as usize;
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

    /// True once the buffer is empty and EOF was received.
    pub fn at_eof(&self) -> bool {
        self.eof && self.buf.is_empty()
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.len() == 1 {
        return hay.iter().position(|&b| b == needle[0]);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

// ---------------------------------------------------------------------------
// Writer

/// asyncio.StreamWriter over a socket: a buffer flushed by a background
/// task, water marks, half-close and close.
pub struct StreamWriter {
    shared: Arc<WriterShared>,
    info: Arc<ConnInfo>,
    can_write_eof: bool,
    high_water: usize,
    low_water: usize,
    timeouts: Timeouts,
    task: Option<tokio::task::JoinHandle<()>>,
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
    /// Bytes accepted by write() and not yet taken by the task.
    queue: BytesMut,
    /// Bytes accepted and not yet written to the socket (queue + in flight).
    pending: usize,
    eof_requested: bool,
    closing: bool,
    /// The task has finished (socket shut down or failed).
    done: bool,
    error: Option<StreamError>,
}

impl WriterShared {
    fn lock(&self) -> MutexGuard<'_, WriterState> {
        // A poisoned lock means a panic while holding it; the state is
        // plain data and still consistent enough to report errors.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl StreamWriter {
    fn spawn(
        io: Box<dyn AsyncWrite + Send + Unpin>,
        info: Arc<ConnInfo>,
        can_write_eof: bool,
        opts: StreamOptions,
        closed: Arc<CloseSignal>,
        counters: Arc<Counters>,
    ) -> StreamWriter {
        let shared = Arc::new(WriterShared::default());
        let task = tokio::spawn(flush_task(io, shared.clone(), closed, counters));
        let high_water = opts.high_water.max(1);
        StreamWriter {
            shared,
            info,
            can_write_eof,
            high_water,
            low_water: high_water / 4,
            timeouts: opts.timeouts,
            task: Some(task),
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
        if st.eof_requested {
            return Err(StreamError::InvalidArgument("write after write-eof".into()));
        }
        if let Some(e) = &st.error {
            return Err(e.clone());
        }
        let before = st.queue.len();
        for p in pieces {
            st.queue.extend_from_slice(p);
        }
        let added = st.queue.len() - before;
        st.pending += added;
        drop(st);
        if added > 0 {
            self.shared.wake_task.notify_one();
        }
        Ok(())
    }

    /// Wait for the buffer to fall to the low-water mark if it is above the
    /// high-water mark; report a flushing error.
    pub async fn drain(&self) -> Result<(), StreamError> {
        loop {
            let progress = self.shared.progress.notified();
            tokio::pin!(progress);
            progress.as_mut().enable();
            {
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
            // Above the high-water mark: wait until at most the low mark.
            let (deadline, why) = self.timeouts.idle_deadline();
            loop {
                {
                    let st = self.shared.lock();
                    if let Some(e) = &st.error {
                        return Err(e.clone());
                    }
                    if st.pending <= self.low_water || st.done {
                        return Ok(());
                    }
                }
                tokio::select! {
                    _ = progress.as_mut() => {}
                    _ = tokio::time::sleep_until(deadline) => {
                        return Err(StreamError::TimedOut(format!("drain: peer is not reading ({why})")));
                    }
                }
                progress.set(self.shared.progress.notified());
                progress.as_mut().enable();
            }
        }
    }

    /// True on plain TCP.
    pub fn can_write_eof(&self) -> bool {
        self.can_write_eof
    }

    /// Flush, then half-close (TCP FIN). An error on TLS.
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
        st.eof_requested = true;
        drop(st);
        self.shared.wake_task.notify_one();
        Ok(())
    }

    /// Start closing: flush, then close. Harmless twice.
    pub fn close(&self) {
        let mut st = self.shared.lock();
        st.closing = true;
        drop(st);
        self.shared.wake_task.notify_one();
    }

    /// True from close() on.
    pub fn is_closing(&self) -> bool {
        self.shared.lock().closing
    }

    /// Wait until close() has flushed and closed; report a flush error.
    pub async fn wait_closed(&self) -> Result<(), StreamError> {
        let (deadline, why) = self.timeouts.idle_deadline();
        loop {
            let progress = self.shared.progress.notified();
            tokio::pin!(progress);
            progress.as_mut().enable();
            {
                let st = self.shared.lock();
                if st.done {
                    return match &st.error {
                        Some(e) if st.closing => Err(e.clone()),
                        Some(e) => Err(e.clone()),
                        None => Ok(()),
                    };
                }
            }
            tokio::select! {
                _ = progress => {}
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(StreamError::TimedOut(format!("wait-closed ({why})")));
                }
            }
        }
    }
}

impl Drop for StreamWriter {
    fn drop(&mut self) {
        // Dropping the writer is close(): what is buffered is still flushed
        // (bounded by the socket; the task ends when the runtime does).
        let mut st = self.shared.lock();
        st.closing = true;
        drop(st);
        self.shared.wake_task.notify_one();
        drop(self.task.take());
    }
}

/// The background half of a writer: moves queued bytes to the socket,
/// then performs a requested half-close or close.
async fn flush_task(
    mut io: Box<dyn AsyncWrite + Send + Unpin>,
    shared: Arc<WriterShared>,
    closed: Arc<CloseSignal>,
    counters: Arc<Counters>,
) {
    let mut eof_sent = false;
    loop {
        let wake = shared.wake_task.notified();
        tokio::pin!(wake);
        wake.as_mut().enable();
        let (chunk, eof, closing) = {
            let mut st = shared.lock();
            (st.queue.split().freeze(), st.eof_requested, st.closing)
        };
        if !chunk.is_empty() {
            let mut pos = 0;
            while pos < chunk.len() {
                match io.write(&chunk[pos..]).await {
                    Ok(0) => {
                        fail(&shared, &closed, StreamError::ConnectionReset("socket accepts no more data".into()));
                        return;
                    }
                    Ok(n) => {
                        pos += n;
                        counters.written.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                        shared.lock().pending -= n;
                        shared.progress.notify_waiters();
                    }
                    Err(e) => {
                        fail(&shared, &closed, StreamError::from_io(&e));
                        return;
                    }
                }
            }
            if let Err(e) = io.flush().await {
                fail(&shared, &closed, StreamError::from_io(&e));
                return;
            }
            continue; // more may have been queued meanwhile
        }
        if (eof || closing) && !eof_sent {
            eof_sent = true;
            // For TCP, shutdown() is shutdown(SHUT_WR); for TLS it sends
            // close_notify first.
            if let Err(e) = io.shutdown().await {
                if !closing {
                    fail(&shared, &closed, StreamError::from_io(&e));
                    return;
                }
            }
        }
        if closing {
            drop(io);
            shared.lock().done = true;
            closed.set();
            shared.progress.notify_waiters();
            return;
        }
        wake.await;
    }
}

fn fail(shared: &WriterShared, closed: &CloseSignal, err: StreamError) {
    let mut st = shared.lock();
    st.error = Some(err);
    st.done = true;
    st.queue.clear();
    st.pending = 0;
    drop(st);
    let _ = closed; // the read side may still hold data; it sees its own errors
    shared.progress.notify_waiters();
}
