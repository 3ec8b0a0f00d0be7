//! Kept-alive connections and per-fetch connection statistics.
//!
//! A guest that finished an exchange on a connection may hand it back with
//! `release-connection`; the host keeps it idle in the [`Pool`] of the
//! loaded guest, and a later `open-connection` for the same host, port and
//! options, made with the same network configuration, gets it back instead
//! of dialling (the policy still checks the name). Connections are only
//! kept while they are clean: nothing buffered either way, no EOF, no error.
//!
//! [`FetchStats`] records, for one fetch, when the last connection was
//! resolved, connected and (for TLS) handshaken, and how many were opened,
//! for curl's `-w` variables.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use crate::limits::ConnSlot;
use crate::net::NetConfig;
use crate::streams::{StreamReader, StreamWriter};

/// The most idle connections kept per loaded guest: as many as guest
/// instances can run at once, so that every fetch of a full `-Z` batch
/// finds its connection again instead of dialling.
pub const MAX_IDLE: usize = crate::engine::MAX_INSTANCES as usize;
/// How long an idle connection is kept.
pub const MAX_IDLE_TIME: Duration = Duration::from_secs(60);

/// What a connection was opened for: host (lower case), port, TLS server
/// name and ALPN (none for plain TCP), reader limit and writer high-water
/// mark as asked by the guest.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PoolKey {
    /// The host, lower case.
    pub host: String,
    /// The port.
    pub port: u16,
    /// TLS server name and ALPN protocols; none for plain TCP.
    pub tls: Option<(String, Vec<String>)>,
    /// The reader limit the guest asked for, if any.
    pub limit: Option<u32>,
    /// The writer high-water mark the guest asked for, if any.
    pub high_water: Option<u32>,
}

struct Idle {
    key: PoolKey,
    /// The configuration the connection was opened with (held, so that
    /// pointer identity cannot be confused with a later allocation).
    net: Arc<NetConfig>,
    reader: StreamReader,
    writer: StreamWriter,
    /// Who the connection counts against (nobody while it is idle).
    slot: Arc<ConnSlot>,
    since: Instant,
}

/// Idle kept-alive connections, shared by every fetch of one loaded guest.
#[derive(Default)]
pub struct Pool {
    idle: Mutex<Vec<Idle>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Pool {
    /// Keep a connection if it is clean; false when it was dropped (closed).
    /// A kept connection no longer counts against the instance that
    /// released it (its `slot` is disowned).
    pub async fn put(
        &self,
        net: &Arc<NetConfig>,
        key: PoolKey,
        mut reader: StreamReader,
        writer: StreamWriter,
        slot: Arc<ConnSlot>,
    ) -> bool {
        let (closing, unsent, drained) = (writer.is_closing(), writer.buffered(), writer.drain().await);
        reader.reset_lowat();
        let (unread, eof) = (reader.buffered(), reader.at_eof());
        if closing || unsent > 0 || drained.is_err() || unread > 0 || eof {
            tracing::debug!(
                "pool: not keeping {}:{} (closing {closing}, unsent {unsent}, drain {drained:?}, unread {unread}, eof {eof})",
                key.host,
                key.port
            );
            return false;
        }
        tracing::debug!("pool: keeping {}:{}", key.host, key.port);
        let mut idle = lock(&self.idle);
        // Disowned under the lock, before any other fetch can take it.
        slot.disown();
        // One clock read for the whole list (it holds up to MAX_IDLE).
        let now = Instant::now();
        idle.retain(|i| now.saturating_duration_since(i.since) < MAX_IDLE_TIME);
        if idle.len() >= MAX_IDLE {
            idle.remove(0);
        }
        idle.push(Idle {
            key,
            net: net.clone(),
            reader,
            writer,
            slot,
            since: now,
        });
        true
    }

    /// An idle connection for `key` opened with `net`, still clean, most
    /// recently used first; the taker must [`ConnSlot::adopt`] its slot.
    pub fn take(&self, net: &Arc<NetConfig>, key: &PoolKey) -> Option<(StreamReader, StreamWriter, Arc<ConnSlot>)> {
        loop {
            let found = {
                let mut idle = lock(&self.idle);
                let i = idle.iter().rposition(|i| Arc::ptr_eq(&i.net, net) && &i.key == key)?;
                idle.remove(i)
            };
            let Idle {
                mut reader,
                writer,
                slot,
                since,
                ..
            } = found;
            if since.elapsed() < MAX_IDLE_TIME && !writer.is_closing() && reader.buffered() == 0 && !reader.at_eof() {
                tracing::debug!("pool: reusing {}:{}", key.host, key.port);
                return Some((reader, writer, slot));
            }
            tracing::debug!(
                "pool: dropping a stale {}:{} (idle {:?}, closing {}, buffered {}, eof {})",
                key.host,
                key.port,
                since.elapsed(),
                writer.is_closing(),
                reader.buffered(),
                reader.at_eof()
            );
            // Closed by the peer (or stale): dropping the writer closes it.
        }
    }

    /// How many connections are idle now.
    pub fn idle_count(&self) -> usize {
        lock(&self.idle).len()
    }
}

/// Connection facts of one fetch (the last connection used, and a count).
#[derive(Debug, Clone, Default)]
pub struct ConnStats {
    /// Connections dialled (not reused) during the fetch.
    pub connects: u32,
    /// Connections taken from the pool during the fetch.
    pub reused: u32,
    /// When name resolution of the last new connection ended.
    pub resolved: Option<Instant>,
    /// When the last connection's TCP connect ended (or it was reused).
    pub connected: Option<Instant>,
    /// When the last connection's TLS handshake ended (or it was reused);
    /// none on plain TCP.
    pub tls_done: Option<Instant>,
    /// The last connection's peer and local addresses.
    pub peer: Option<SocketAddr>,
    /// The last connection's local address.
    pub local: Option<SocketAddr>,
}

/// Shared between the store of a fetch and its caller.
#[derive(Debug, Default)]
pub struct FetchStats(Mutex<ConnStats>);

impl FetchStats {
    /// A copy of what was recorded.
    pub fn get(&self) -> ConnStats {
        lock(&self.0).clone()
    }

    pub(crate) fn update(&self, f: impl FnOnce(&mut ConnStats)) {
        f(&mut lock(&self.0));
    }
}

/// The connection state of one store: the guest's pool, every open
/// writer's pool key, accounting slot and origin, the fetch's stats.
pub struct ConnState {
    /// The loaded guest's pool of idle connections.
    pub pool: Arc<Pool>,
    /// The fetch's connection statistics.
    pub stats: Arc<FetchStats>,
    /// Each open writer (by rep). A fetch holds one or two at a time,
    /// never more than its connection limit: a short list, searched in
    /// place (hash maps cost an allocation and SipHash per fetch).
    writers: Vec<OpenWriter>,
}

/// What a store keeps of one open writer.
struct OpenWriter {
    rep: u32,
    key: PoolKey,
    /// Who the connection counts against: this instance, also for one
    /// taken from the pool.
    slot: Arc<ConnSlot>,
    /// Whether the connection came from the pool.
    reused: bool,
}

impl ConnState {
    /// A fresh state over `pool`, with no open writers and empty stats.
    pub fn new(pool: Arc<Pool>) -> ConnState {
        ConnState {
            pool,
            stats: Arc::default(),
            writers: Vec::new(),
        }
    }

    /// A writer resource was handed out for `key`, its connection counted
    /// against `slot`.
    pub fn opened(&mut self, writer_rep: u32, key: PoolKey, slot: Arc<ConnSlot>, reused: bool) {
        self.forget(writer_rep);
        self.writers.push(OpenWriter {
            rep: writer_rep,
            key,
            slot,
            reused,
        });
    }

    /// The writer resource is gone (its rep may be handed out again): its
    /// pool key and accounting slot.
    pub fn forget(&mut self, writer_rep: u32) -> Option<(PoolKey, Arc<ConnSlot>)> {
        let i = self.writers.iter().position(|w| w.rep == writer_rep)?;
        let w = self.writers.swap_remove(i);
        Some((w.key, w.slot))
    }

    /// Whether the writer's connection came from the pool.
    pub fn is_reused(&self, writer_rep: u32) -> bool {
        self.writers.iter().any(|w| w.rep == writer_rep && w.reused)
    }
}

tokio::task_local! {
    static CONNECT_TIMES: std::cell::Cell<(Option<Instant>, Option<Instant>)>;
}

/// Called by [`crate::net::connect`] when resolution ended.
pub(crate) fn note_resolved() {
    let _ = CONNECT_TIMES.try_with(|c| c.set((Some(Instant::now()), c.get().1)));
}

/// Called by [`crate::net::connect`] when the TCP connect ended.
pub(crate) fn note_tcp_connected() {
    let _ = CONNECT_TIMES.try_with(|c| c.set((c.get().0, Some(Instant::now()))));
}

/// Run a connect, returning what it reported: (resolved, tcp connected).
pub(crate) async fn timed<T>(fut: impl std::future::Future<Output = T>) -> (T, Option<Instant>, Option<Instant>) {
    CONNECT_TIMES
        .scope(std::cell::Cell::new((None, None)), async move {
            let r = fut.await;
            let (a, b) = CONNECT_TIMES.with(|c| c.get());
            (r, a, b)
        })
        .await
}
