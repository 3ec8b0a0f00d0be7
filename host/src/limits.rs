//! Resource limits per guest instance, and the accounting that enforces
//! them.
//!
//! Every fetch runs in a fresh store with its own [`Limits`]. What the
//! guest consumes is counted in its [`Usage`]; the first limit it
//! exceeds stops it (the host call or the memory growth traps) and the
//! fetch fails with [`crate::Error::Limit`] naming the limit. The host's
//! own memory is bounded too: what the guest can make the host buffer
//! (write queues, read results, reader limits) is capped by
//! [`Limits::stream_buffer`], and connections by
//! [`Limits::connections`].

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use wasmtime::{ResourceLimiter, StoreLimits, StoreLimitsBuilder};

use crate::streams::Connection;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;
const GIB: u64 = 1024 * MIB;

/// Guest linear memory: 256 MiB. Measured: the default guest holds
/// 1.6 MiB for a 200 MB plain body, but with --compressed it decodes a
/// whole 256 KiB input piece at once and grew to about 130 MiB on a
/// 200 MB gzip text body (ratio about 170). 256 MiB fits that, leaves
/// room for heavier plugins, and keeps a runaway guest far from the
/// machine's memory.
pub const DEFAULT_MAX_MEMORY: u64 = 256 * MIB;
/// CPU: 10^12 units of fuel (one per WebAssembly instruction, roughly).
/// Measured here: a tight loop burns about 1.6 * 10^10 units per second
/// of CPU, so a spinning guest is stopped within about a minute; the
/// default guest spends about 0.4 * 10^6 units on a 200 MB plain body
/// (the host copies the bytes) and about 28 units per byte it gunzips,
/// so 10^12 leaves room for tens of gigabytes of decoding.
pub const DEFAULT_MAX_FUEL: u64 = 1_000_000_000_000;
/// Wall-clock time of one fetch: one hour. Longer than any interactive
/// fetch; stops a guest that waits forever without spending fuel (on a
/// WASI clock, a peer that trickles, a loop of cheap host calls).
pub const DEFAULT_MAX_WALL_TIME: Duration = Duration::from_secs(3600);
/// Connections open at once: 8. The default guest uses one at a time,
/// but a connection it closed lingers until the host has flushed it.
pub const DEFAULT_MAX_CONNECTIONS: u32 = 8;
/// Connections opened (attempted) over one fetch: 256. Above curl's
/// default of 50 redirects; stops a guest from turning one fetch into a
/// connection flood against an allowed target.
pub const DEFAULT_MAX_TOTAL_CONNECTIONS: u32 = 256;
/// Bytes the guest may send: 1 GiB. The default guest sends one request
/// head (and the -d body) per hop; a guest that uploads more is either
/// misbehaving or needs the limit raised explicitly.
pub const DEFAULT_MAX_BYTES_WRITTEN: u64 = GIB;
/// What the host buffers for one stream on the guest's behalf: 16 MiB.
/// Bounds a writer's queue (writes without drain), a reader's limit (the
/// reader buffers up to about twice it), a readexactly and a read-to-EOF.
/// With at most 8 connections the host holds well under 1 GiB for a
/// guest, whatever it does.
pub const DEFAULT_MAX_STREAM_BUFFER: u64 = 16 * MIB;

/// How often (in fuel) a running guest yields to the async runtime: 10^7
/// units, a millisecond or less of CPU. Keeps a spinning guest from holding a
/// runtime thread, so wall-clock limits and other fetches go on.
pub const FUEL_YIELD_INTERVAL: u64 = 10_000_000;
/// Entries in the host's resource table (streams, WASI handles): 10,000.
/// A fetch needs a handful; this bounds host memory a guest can pin by
/// creating handles (e.g. WASI pollables) without dropping them.
pub const MAX_TABLE_ENTRIES: usize = 10_000;
/// Core instances, tables and memories a component may create, and table
/// elements: generous for any guest built by the usual toolchains, small
/// enough that instantiation cannot be used to allocate without bound.
const MAX_INSTANCES: usize = 64;
const MAX_TABLES: usize = 64;
const MAX_MEMORIES: usize = 16;
const MAX_TABLE_ELEMENTS: usize = 1_000_000;

/// The limits of one guest instance (one fetch).
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Linear memory, summed over the instance's memories, in bytes.
    pub memory: u64,
    /// Fuel: WebAssembly instructions the guest may execute.
    pub fuel: u64,
    /// Wall-clock time of the whole fetch; None for no limit.
    pub wall_time: Option<Duration>,
    /// Connections open at once.
    pub connections: u32,
    /// Connections opened (attempted) over the fetch.
    pub total_connections: u32,
    /// Bytes handed to the guest by its readers; None for no limit.
    pub bytes_read: Option<u64>,
    /// Bytes the guest hands to writers; None for no limit.
    pub bytes_written: Option<u64>,
    /// Bytes delivered to the sink (bodies, plus raw heads and trailers);
    /// None for no limit.
    pub body_bytes: Option<u64>,
    /// The most the host buffers for one stream: a writer's queue, a
    /// reader's limit and high-water mark, one readexactly or read(-1).
    pub stream_buffer: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory: DEFAULT_MAX_MEMORY,
            fuel: DEFAULT_MAX_FUEL,
            wall_time: Some(DEFAULT_MAX_WALL_TIME),
            connections: DEFAULT_MAX_CONNECTIONS,
            total_connections: DEFAULT_MAX_TOTAL_CONNECTIONS,
            bytes_read: None,
            bytes_written: Some(DEFAULT_MAX_BYTES_WRITTEN),
            body_bytes: None,
            stream_buffer: DEFAULT_MAX_STREAM_BUFFER,
        }
    }
}

/// Limits as written in a policy file's `[limits]` table or given as CLI
/// flags: each one optional, applied over the defaults.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct LimitsSpec {
    /// Linear memory in bytes; see [`Limits::memory`].
    #[serde(default, deserialize_with = "de_size")]
    pub memory: Option<u64>,
    /// Fuel; see [`Limits::fuel`].
    #[serde(default, deserialize_with = "de_size")]
    pub fuel: Option<u64>,
    /// Seconds.
    pub wall_time: Option<f64>,
    /// Connections open at once; see [`Limits::connections`].
    pub connections: Option<u32>,
    /// Connections opened over the fetch; see [`Limits::total_connections`].
    pub total_connections: Option<u32>,
    /// Bytes handed to the guest by its readers; see [`Limits::bytes_read`].
    #[serde(default, deserialize_with = "de_size")]
    pub bytes_read: Option<u64>,
    /// Bytes the guest hands to writers; see [`Limits::bytes_written`].
    #[serde(default, deserialize_with = "de_size")]
    pub bytes_written: Option<u64>,
    /// Bytes delivered to the sink; see [`Limits::body_bytes`].
    #[serde(default, deserialize_with = "de_size")]
    pub body_bytes: Option<u64>,
    /// The most buffered for one stream; see [`Limits::stream_buffer`].
    #[serde(default, deserialize_with = "de_size")]
    pub stream_buffer: Option<u64>,
}

impl LimitsSpec {
    /// `other`'s values where it has them, else ours.
    pub fn overridden_by(&self, other: &LimitsSpec) -> LimitsSpec {
        LimitsSpec {
            memory: other.memory.or(self.memory),
            fuel: other.fuel.or(self.fuel),
            wall_time: other.wall_time.or(self.wall_time),
            connections: other.connections.or(self.connections),
            total_connections: other.total_connections.or(self.total_connections),
            bytes_read: other.bytes_read.or(self.bytes_read),
            bytes_written: other.bytes_written.or(self.bytes_written),
            body_bytes: other.body_bytes.or(self.body_bytes),
            stream_buffer: other.stream_buffer.or(self.stream_buffer),
        }
    }

    /// These values over `base`. A wall time of 0 means no limit.
    pub fn apply(&self, base: Limits) -> Result<Limits, String> {
        let mut l = base;
        if let Some(v) = self.memory {
            l.memory = v;
        }
        if let Some(v) = self.fuel {
            l.fuel = v;
        }
        if let Some(v) = self.wall_time {
            if !v.is_finite() || v < 0.0 {
                return Err(format!("wall time: expected seconds (0 for no limit), got {v}"));
            }
            l.wall_time = (v > 0.0).then(|| Duration::from_secs_f64(v));
        }
        if let Some(v) = self.connections {
            l.connections = v;
        }
        if let Some(v) = self.total_connections {
            l.total_connections = v;
        }
        if self.bytes_read.is_some() {
            l.bytes_read = self.bytes_read;
        }
        if self.bytes_written.is_some() {
            l.bytes_written = self.bytes_written;
        }
        if self.body_bytes.is_some() {
            l.body_bytes = self.body_bytes;
        }
        if let Some(v) = self.stream_buffer {
            l.stream_buffer = v;
        }
        Ok(l)
    }
}

/// Parse a size: a number of bytes, optionally with a binary suffix
/// (`K`, `M`, `G`, `T`, also `KiB`, `MB`...; all powers of 1024) and
/// `_` separators.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim().replace('_', "");
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (a number, optionally with K, M, G or T)"))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => KIB,
        "m" | "mb" | "mib" => MIB,
        "g" | "gb" | "gib" => GIB,
        "t" | "tb" | "tib" => 1024 * GIB,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use K, M, G or T)")),
    };
    n.checked_mul(mult).ok_or_else(|| format!("{s:?} is too large"))
}

fn de_size<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Size {
        Int(u64),
        Text(String),
    }
    match Size::deserialize(d)? {
        Size::Int(n) => Ok(Some(n)),
        Size::Text(s) => parse_size(&s).map(Some).map_err(serde::de::Error::custom),
    }
}

/// Show a byte count the way a person reads it.
pub fn show_size(n: u64) -> String {
    for (unit, size) in [("GiB", GIB), ("MiB", MIB), ("KiB", KIB)] {
        if n >= size && n.is_multiple_of(size) {
            return format!("{} {unit}", n / size);
        }
    }
    format!("{n} bytes")
}

/// Which limit was exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    /// Linear memory ([`Limits::memory`]).
    Memory,
    /// Fuel, i.e. CPU ([`Limits::fuel`]).
    Cpu,
    /// Wall-clock time ([`Limits::wall_time`]).
    WallTime,
    /// Connections open at once ([`Limits::connections`]).
    Connections,
    /// Connections opened over the fetch ([`Limits::total_connections`]).
    TotalConnections,
    /// Bytes read by the guest ([`Limits::bytes_read`]).
    BytesRead,
    /// Bytes written by the guest ([`Limits::bytes_written`]).
    BytesWritten,
    /// Bytes delivered to the sink ([`Limits::body_bytes`]).
    BodyBytes,
    /// Bytes buffered for one stream ([`Limits::stream_buffer`]).
    StreamBuffer,
}

impl LimitKind {
    /// The CLI flag (and, without the `--max-`, the policy file key) that
    /// raises this limit.
    pub fn flag(self) -> &'static str {
        match self {
            LimitKind::Memory => "--max-memory",
            LimitKind::Cpu => "--max-fuel",
            LimitKind::WallTime => "--max-wall-time",
            LimitKind::Connections => "--max-connections",
            LimitKind::TotalConnections => "--max-total-connections",
            LimitKind::BytesRead => "--max-bytes-read",
            LimitKind::BytesWritten => "--max-bytes-written",
            LimitKind::BodyBytes => "--max-body-bytes",
            LimitKind::StreamBuffer => "--max-stream-buffer",
        }
    }
}

/// A guest went over one of its limits and was stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (raise with {})", kind.flag())]
pub struct LimitExceeded {
    /// Which limit.
    pub kind: LimitKind,
    /// What happened, with the limit's value.
    pub message: String,
}

/// What one guest instance has consumed, shared with its connections.
#[derive(Debug, Default)]
pub struct Usage {
    open: AtomicU32,
    opened: AtomicU32,
    read: AtomicU64,
    written: AtomicU64,
    delivered: AtomicU64,
    memory: AtomicUsize,
    exceeded: Mutex<Option<LimitExceeded>>,
    kill: KillSwitch,
}

impl Usage {
    /// Record that `kind` was exceeded (the first record wins) and return
    /// the record.
    pub fn exceed(&self, kind: LimitKind, message: String) -> LimitExceeded {
        let mut slot = self.exceeded.lock().unwrap_or_else(|p| p.into_inner());
        slot.get_or_insert(LimitExceeded { kind, message }).clone()
    }

    /// The first limit exceeded, if any.
    pub fn exceeded(&self) -> Option<LimitExceeded> {
        self.exceeded.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Connections open now.
    pub fn open_connections(&self) -> u32 {
        self.open.load(Ordering::Acquire)
    }

    /// Bytes handed to the guest by readers so far.
    pub fn bytes_read(&self) -> u64 {
        self.read.load(Ordering::Acquire)
    }

    /// Bytes accepted from the guest by writers so far.
    pub fn bytes_written(&self) -> u64 {
        self.written.load(Ordering::Acquire)
    }

    /// Bytes delivered to the sink so far.
    pub fn bytes_delivered(&self) -> u64 {
        self.delivered.load(Ordering::Acquire)
    }

    /// Linear memory the instance holds, in bytes.
    pub fn memory(&self) -> usize {
        self.memory.load(Ordering::Acquire)
    }

    /// Count a connection attempt; Err when it would go over a limit.
    /// The ticket keeps the connection counted as open until dropped.
    pub fn begin_connection(self: &Arc<Self>, limits: &Limits) -> Result<ConnTicket, LimitExceeded> {
        let opened = self.opened.fetch_add(1, Ordering::AcqRel) + 1;
        if opened > limits.total_connections {
            return Err(self.exceed(
                LimitKind::TotalConnections,
                format!(
                    "the guest tried to open more than {} connections in one fetch",
                    limits.total_connections
                ),
            ));
        }
        let open = self.open.fetch_add(1, Ordering::AcqRel) + 1;
        let ticket = ConnTicket(self.clone());
        if open > limits.connections {
            return Err(self.exceed(
                LimitKind::Connections,
                format!(
                    "the guest tried to have more than {} connections open at once",
                    limits.connections
                ),
            ));
        }
        Ok(ticket)
    }

    /// Count bytes the guest hands to a writer.
    pub fn add_written(&self, n: usize, limits: &Limits) -> Result<(), LimitExceeded> {
        let total = self.written.fetch_add(n as u64, Ordering::AcqRel) + n as u64;
        match limits.bytes_written {
            Some(max) if total > max => Err(self.exceed(
                LimitKind::BytesWritten,
                format!("the guest tried to send more than {}", show_size(max)),
            )),
            _ => Ok(()),
        }
    }

    /// Count bytes handed to the guest by readers.
    pub fn add_read(&self, n: usize, limits: &Limits) -> Result<(), LimitExceeded> {
        let total = self.read.fetch_add(n as u64, Ordering::AcqRel) + n as u64;
        match limits.bytes_read {
            Some(max) if total > max => Err(self.exceed(
                LimitKind::BytesRead,
                format!("the guest received more than {}", show_size(max)),
            )),
            _ => Ok(()),
        }
    }

    /// Count bytes delivered to the sink.
    pub fn add_delivered(&self, n: usize, limits: &Limits) -> Result<(), LimitExceeded> {
        let total = self.delivered.fetch_add(n as u64, Ordering::AcqRel) + n as u64;
        match limits.body_bytes {
            Some(max) if total > max => Err(self.exceed(
                LimitKind::BodyBytes,
                format!("the guest delivered more than {} to the sink", show_size(max)),
            )),
            _ => Ok(()),
        }
    }

    /// Stop every connection of this instance at once: pending writes are
    /// dropped instead of flushed, so a stopped guest leaves nothing
    /// behind that waits on a peer.
    pub fn kill(&self) {
        self.kill.kill();
    }
}

/// Holds one open connection in the count until dropped.
#[derive(Debug)]
pub struct ConnTicket(Arc<Usage>);

impl Drop for ConnTicket {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Stops the connections of a guest that was stopped: their pending
/// writes fail at once (waking a write that waits on a full socket).
#[derive(Debug, Default)]
struct KillSwitch {
    killed: AtomicBool,
    next_id: AtomicUsize,
    /// The waker of each waiting operation, by id: the few operations of
    /// one instance's connections, so a list searched in place.
    wakers: Mutex<Vec<(usize, Waker)>>,
}

impl KillSwitch {
    fn kill(&self) {
        self.killed.store(true, Ordering::Release);
        let wakers = std::mem::take(&mut *self.wakers.lock().unwrap_or_else(|p| p.into_inner()));
        for (_, w) in wakers {
            w.wake();
        }
    }

    fn is_killed(&self) -> bool {
        self.killed.load(Ordering::Acquire)
    }

    fn register(&self, id: usize, waker: &Waker) {
        let mut wakers = self.wakers.lock().unwrap_or_else(|p| p.into_inner());
        match wakers.iter_mut().find(|(i, _)| *i == id) {
            Some((_, w)) if w.will_wake(waker) => {}
            Some((_, w)) => w.clone_from(waker),
            None => wakers.push((id, waker.clone())),
        }
    }

    fn forget(&self, id: usize) {
        let mut wakers = self.wakers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = wakers.iter().position(|(i, _)| *i == id) {
            wakers.swap_remove(i);
        }
    }
}

/// Who a connection counts against: the instance that opened it, until
/// the connection is handed to the host's keep-alive pool (then nobody:
/// the pool bounds what it keeps), then the instance that takes it from
/// the pool.
#[derive(Debug)]
pub struct ConnSlot {
    owner: Mutex<Option<Owner>>,
}

#[derive(Debug)]
struct Owner {
    ticket: ConnTicket,
    /// This connection's key in the owner's kill switch.
    id: usize,
}

impl Owner {
    fn new(ticket: ConnTicket) -> Owner {
        let id = ticket.0.kill.next_id.fetch_add(1, Ordering::Relaxed);
        Owner { ticket, id }
    }
}

impl ConnSlot {
    /// The connection no longer counts against its instance (it went to
    /// the pool), and that instance's kill no longer reaches it.
    pub fn disown(&self) {
        let owner = self.owner.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(o) = owner {
            o.ticket.0.kill.forget(o.id);
        }
    }

    /// A kept-alive connection taken from the pool: it counts against the
    /// instance holding `ticket`, and that instance's kill stops it, as
    /// for a connection the instance opened itself.
    pub fn adopt(&self, ticket: ConnTicket) {
        let previous = self
            .owner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .replace(Owner::new(ticket));
        if let Some(o) = previous {
            o.ticket.0.kill.forget(o.id);
        }
    }

    /// The owning instance's usage and this connection's key in its kill
    /// switch.
    fn owner(&self) -> Option<(Arc<Usage>, usize)> {
        let owner = self.owner.lock().unwrap_or_else(|p| p.into_inner());
        owner.as_ref().map(|o| (o.ticket.0.clone(), o.id))
    }
}

/// Wrap a connection's halves so that the connection counts as open
/// against the instance holding `ticket` while either half lives (also
/// while a closed writer still flushes), and so that the instance's kill
/// fails its pending writes at once.
pub fn track(mut conn: Connection, ticket: ConnTicket) -> (Connection, Arc<ConnSlot>) {
    let slot = Arc::new(ConnSlot {
        owner: Mutex::new(Some(Owner::new(ticket))),
    });
    conn.read = Box::new(TrackedRead {
        inner: conn.read,
        _slot: slot.clone(),
    });
    conn.write = Box::new(TrackedWrite {
        inner: conn.write,
        slot: slot.clone(),
    });
    (conn, slot)
}

struct TrackedRead {
    inner: Box<dyn AsyncRead + Send + Unpin>,
    _slot: Arc<ConnSlot>,
}

impl AsyncRead for TrackedRead {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

struct TrackedWrite {
    inner: Box<dyn AsyncWrite + Send + Unpin>,
    slot: Arc<ConnSlot>,
}

impl Drop for TrackedWrite {
    fn drop(&mut self) {
        if let Some((u, id)) = self.slot.owner() {
            u.kill.forget(id);
        }
    }
}

/// Fail at once when the owning instance was stopped; remember the waker
/// of a pending operation so that a later kill wakes it.
fn guard<T>(
    slot: &ConnSlot,
    cx: &mut Context<'_>,
    poll: impl FnOnce(&mut Context<'_>) -> Poll<io::Result<T>>,
) -> Poll<io::Result<T>> {
    let stopped = || {
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "the guest was stopped",
        )))
    };
    let owner = slot.owner();
    if owner.as_ref().is_some_and(|(u, _)| u.kill.is_killed()) {
        return stopped();
    }
    let r = poll(cx);
    if let (true, Some((u, id))) = (r.is_pending(), owner) {
        u.kill.register(id, cx.waker());
        if u.kill.is_killed() {
            return stopped();
        }
    }
    r
}

impl AsyncWrite for TrackedWrite {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        guard(&this.slot, cx, |cx| Pin::new(&mut this.inner).poll_write(cx, buf))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        guard(&this.slot, cx, |cx| Pin::new(&mut this.inner).poll_flush(cx))
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        guard(&this.slot, cx, |cx| Pin::new(&mut this.inner).poll_shutdown(cx))
    }
}

/// The store's resource limiter: linear memory summed over the
/// instance's memories (a component may have several), with wasmtime's
/// [`StoreLimits`] for instances, tables and memories counts.
pub struct GuestLimiter {
    max_memory: usize,
    usage: Arc<Usage>,
    inner: StoreLimits,
}

impl GuestLimiter {
    /// A limiter enforcing `limits.memory`, recording into `usage`.
    pub fn new(limits: &Limits, usage: Arc<Usage>) -> GuestLimiter {
        GuestLimiter {
            max_memory: usize::try_from(limits.memory).unwrap_or(usize::MAX),
            usage,
            inner: StoreLimitsBuilder::new()
                .instances(MAX_INSTANCES)
                .tables(MAX_TABLES)
                .memories(MAX_MEMORIES)
                .table_elements(MAX_TABLE_ELEMENTS)
                .build(),
        }
    }
}

impl ResourceLimiter for GuestLimiter {
    fn memory_growing(&mut self, current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        let held = self.usage.memory.load(Ordering::Acquire);
        let total = held.saturating_sub(current).saturating_add(desired);
        if total > self.max_memory {
            let e = self.usage.exceed(
                LimitKind::Memory,
                format!(
                    "the guest tried to grow its memory to {} (limit {})",
                    show_size(total as u64),
                    show_size(self.max_memory as u64)
                ),
            );
            return Err(wasmtime::Error::new(e));
        }
        self.usage.memory.store(total, Ordering::Release);
        Ok(true)
    }

    fn table_growing(&mut self, current: usize, desired: usize, maximum: Option<usize>) -> wasmtime::Result<bool> {
        self.inner.table_growing(current, desired, maximum)
    }

    fn instances(&self) -> usize {
        self.inner.instances()
    }

    fn tables(&self) -> usize {
        self.inner.tables()
    }

    fn memories(&self) -> usize {
        self.inner.memories()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1000"), Ok(1000));
        assert_eq!(parse_size("64M"), Ok(64 << 20));
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("2g"), Ok(2 << 30));
        assert_eq!(parse_size("1_000_000"), Ok(1_000_000));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("5 parsecs").is_err());
        assert!(parse_size("99999999999T").is_err());
        assert_eq!(show_size(64 << 20), "64 MiB");
        assert_eq!(show_size(1000), "1000 bytes");
    }

    #[test]
    fn spec_over_defaults() {
        let file = LimitsSpec {
            memory: Some(1 << 20),
            wall_time: Some(5.0),
            ..Default::default()
        };
        let cli = LimitsSpec {
            memory: Some(2 << 20),
            wall_time: Some(0.0),
            ..Default::default()
        };
        let l = file.overridden_by(&cli).apply(Limits::default()).unwrap();
        assert_eq!(l.memory, 2 << 20);
        assert_eq!(l.wall_time, None);
        assert_eq!(l.fuel, DEFAULT_MAX_FUEL);
        assert!(LimitsSpec {
            wall_time: Some(-1.0),
            ..Default::default()
        }
        .apply(Limits::default())
        .is_err());
    }

    #[test]
    fn connection_counting() {
        let usage = Arc::new(Usage::default());
        let limits = Limits {
            connections: 2,
            total_connections: 3,
            ..Limits::default()
        };
        let a = usage.begin_connection(&limits).unwrap();
        let b = usage.begin_connection(&limits).unwrap();
        assert_eq!(usage.open_connections(), 2);
        drop(a);
        let _c = usage.begin_connection(&limits).unwrap();
        drop(b);
        let e = usage.begin_connection(&limits).unwrap_err();
        assert_eq!(e.kind, LimitKind::TotalConnections);
        assert_eq!(usage.open_connections(), 1);
    }
}
