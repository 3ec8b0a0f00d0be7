//! The wasmtime side: one engine and linker per process, guest components
//! loaded and pre-instantiated once, and a fresh store per fetch whose
//! imports (`streams`, `sink`) are served by the host.

use std::sync::Arc;

use wasmtime::component::{Component, ComponentExportIndex, HasSelf, Linker, Resource, ResourceTable, TypedFunc};
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::limits::{GuestLimiter, LimitExceeded, LimitKind, Limits, Usage};
use crate::net::{NetConfig, TlsRequest};
use crate::sink::Sink;
use crate::streams::{self, Counters, ExtraInfo, StreamOptions, StreamReader, StreamWriter};
use crate::Error;

/// Generated bindings for the `fetch-guest` world.
#[allow(missing_docs)]
pub mod bindings {
    wasmtime::component::bindgen!({
        world: "fetch-guest",
        path: "../wit",
        // Imports that never wait are plain (sync) host functions: no
        // future per call. The rest may wait for the network or the sink.
        imports: {
            "wfetch:fetch/streams.[method]stream-writer.write": trappable,
            "wfetch:fetch/streams.[method]stream-writer.writelines": trappable,
            "wfetch:fetch/streams.[method]stream-writer.can-write-eof": trappable,
            "wfetch:fetch/streams.[method]stream-writer.write-eof": trappable,
            "wfetch:fetch/streams.[method]stream-writer.close": trappable,
            "wfetch:fetch/streams.[method]stream-writer.is-closing": trappable,
            "wfetch:fetch/streams.[method]stream-writer.get-extra-info": trappable,
            "wfetch:fetch/streams.[drop]stream-writer": trappable,
            "wfetch:fetch/streams.[method]stream-reader.at-eof": trappable,
            "wfetch:fetch/streams.[drop]stream-reader": trappable,
            "wfetch:fetch/sink.[method]body-sink.request-sent": trappable,
            "wfetch:fetch/sink.[method]body-sink.response-head": trappable,
            "wfetch:fetch/sink.[method]body-sink.trailers": trappable,
            "wfetch:fetch/sink.[method]body-sink.progress": trappable,
            "wfetch:fetch/sink.[drop]body-sink": trappable,
            default: async | trappable,
        },
        exports: { default: async },
        with: {
            "wfetch:fetch/streams.stream-reader": crate::streams::StreamReader,
            "wfetch:fetch/streams.stream-writer": crate::streams::StreamWriter,
            "wfetch:fetch/sink.body-sink": crate::engine::SinkSlot,
        },
    });
}

use bindings::exports::wfetch::fetch::fetcher::{FetchError, FetchResponse, Hop};
use bindings::wfetch::fetch::streams as wit;
use bindings::wfetch::fetch::types::{Header, Request, ResponseHead};

/// The guest's view of the host's sink: the host's [`Sink`].
pub struct SinkSlot(Box<dyn Sink>);

/// The embedded default guest (guest/http), built by build.rs.
pub static DEFAULT_GUEST: &[u8] = include_bytes!(env!("WFETCH_DEFAULT_GUEST"));

/// Guest instances that may exist at once in one process. The pooling
/// allocator keeps a slot (linear memory, tables, fiber stack) ready for
/// each, so starting a fetch maps and faults in no new memory; fetches
/// beyond this number wait for a free slot rather than fail.
pub const MAX_INSTANCES: u32 = 64;

/// Instance slots a spare (an instance made ahead for a guest's next
/// fetch) never takes: each guest holds at most one spare, and these keep
/// fetches moving even when many guests each hold one.
pub const SPARE_HEADROOM: usize = (MAX_INSTANCES / 8) as usize;

/// How much of a slot's linear memory stays mapped between fetches, with
/// and without the `PAGEMAP_SCAN` ioctl (Linux 6.7+). With it, wasmtime
/// restores only the pages a fetch dirtied in that range, so the next
/// instance takes no page faults there (the default guest's 576 KiB of
/// initial memory and what a larger fetch grows). The scan walks the
/// page table over the memory's whole current size, which is why the
/// default guest's initial memory is kept small (guest/.cargo/config.toml).
/// Without it, the whole range is reset with `memset` after every fetch,
/// so it is kept small and the rest is returned to the kernel (page
/// faults on the next fetch instead).
const KEEP_RESIDENT_SCANNED: usize = 4 << 20;
const KEEP_RESIDENT_MEMSET: usize = 256 << 10;

/// One per process: the engine and the linkers of our imports.
pub struct Runtime {
    engine: Engine,
    /// Our imports only: what the default guest needs.
    linker: Linker<HostState>,
    /// Our imports and WASI's, made when the first guest that imports WASI
    /// is loaded (linking all of WASI is a tenth of a warm start).
    wasi_linker: std::sync::OnceLock<Linker<HostState>>,
    /// One permit per instance slot of the pooling allocator.
    slots: Arc<tokio::sync::Semaphore>,
}

impl Runtime {
    /// Set up the engine and link the host's imports.
    pub fn new() -> Result<Runtime, Error> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        // Fuel bounds the guest's CPU and, with a yield interval, makes a
        // spinning guest give its thread back to the async runtime.
        config.consume_fuel(true);
        // Reusing instance slots instead of mapping and unmapping memory and
        // stacks for every fetch: per-fetch page faults and munmap TLB
        // shootdowns were most of a small fetch's cost (perf, bench/RESULTS.md).
        let scan = PoolingAllocationConfig::is_pagemap_scan_available();
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(MAX_INSTANCES)
            .total_core_instances(MAX_INSTANCES * 8)
            .total_memories(MAX_INSTANCES * 2)
            .total_tables(MAX_INSTANCES * 8)
            .total_stacks(MAX_INSTANCES)
            .linear_memory_keep_resident(if scan {
                KEEP_RESIDENT_SCANNED
            } else {
                KEEP_RESIDENT_MEMSET
            })
            .pagemap_scan(if scan { Enabled::Yes } else { Enabled::No })
            .table_keep_resident(64 * 1024)
            .async_stack_keep_resident(128 * 1024);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        // For profiling: WFETCH_PERFMAP=1 writes /tmp/perf-PID.map so that
        // `perf report` names the guest's functions (bench/RESULTS.md).
        if std::env::var_os("WFETCH_PERFMAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&config).map_err(|e| Error::Engine(e.to_string()))?;
        let linker = Self::linker(&engine, false)?;
        Ok(Runtime {
            engine,
            linker,
            wasi_linker: std::sync::OnceLock::new(),
            slots: Arc::new(tokio::sync::Semaphore::new(MAX_INSTANCES as usize)),
        })
    }

    /// A linker with the host's imports, and WASI's too when `wasi`.
    fn linker(engine: &Engine, wasi: bool) -> Result<Linker<HostState>, Error> {
        let mut linker = Linker::new(engine);
        if wasi {
            wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| Error::Engine(e.to_string()))?;
        }
        bindings::FetchGuest::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(|e| Error::Engine(e.to_string()))?;
        Ok(linker)
    }

    /// The linker for `component`: with WASI only if it imports any.
    fn linker_for(&self, component: &Component) -> Result<&Linker<HostState>, Error> {
        let imports_wasi = component
            .component_type()
            .imports(&self.engine)
            .any(|(name, _)| name.starts_with("wasi:"));
        if !imports_wasi {
            return Ok(&self.linker);
        }
        if let Some(linker) = self.wasi_linker.get() {
            return Ok(linker);
        }
        let linker = Self::linker(&self.engine, true)?;
        Ok(self.wasi_linker.get_or_init(|| linker))
    }

    /// Compile and pre-instantiate a guest component. `name` is for messages.
    pub fn load(self: &Arc<Self>, name: &str, wasm: &[u8]) -> Result<Guest, Error> {
        let component = Component::new(&self.engine, wasm)
            .map_err(|e| guest_error(name, format!("not a valid component: {e:#}")))?;
        self.prepare(name, component)
    }

    /// [`Runtime::load`] through the precompiled cache in `dir`: a hit
    /// skips compilation; a miss compiles and stores; a corrupt entry is
    /// rebuilt.
    pub fn load_cached(
        self: &Arc<Self>,
        name: &str,
        wasm: &[u8],
        dir: &std::path::Path,
    ) -> Result<(Guest, crate::cache::Outcome), Error> {
        let (component, outcome) = crate::cache::load(&self.engine, dir, wasm)
            .map_err(|e| guest_error(name, format!("not a valid component: {e:#}")))?;
        tracing::debug!("guest {name}: cache {outcome:?}");
        Ok((self.prepare(name, component)?, outcome))
    }

    /// [`Runtime::load_cached`] when the cache holds the guest whole;
    /// None (having compiled and written nothing) otherwise.
    pub fn load_cache_hit(self: &Arc<Self>, name: &str, wasm: &[u8], dir: &std::path::Path) -> Option<Guest> {
        let component = crate::cache::load_hit(&self.engine, dir, wasm)?;
        self.prepare(name, component).ok()
    }

    /// The engine, for inspection and precompilation.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Link a compiled component against the host and check its world.
    fn prepare(self: &Arc<Self>, name: &str, component: Component) -> Result<Guest, Error> {
        let pre = self
            .linker_for(&component)?
            .instantiate_pre(&component)
            .map_err(|e| guest_error(name, format!("cannot be linked with this host: {e:#}")))?;
        let pre = bindings::FetchGuestPre::new(pre).map_err(|e| {
            guest_error(
                name,
                format!("does not implement the wfetch:fetch/fetch-guest world: {e:#}"),
            )
        })?;
        // FetchGuestPre::new has type-checked every export; keep the index
        // of `fetch` so that each fetch looks it up without checking again.
        let fetch_export = pre
            .instance_pre()
            .component()
            .get_export_index(None, "wfetch:fetch/fetcher@0.1.0")
            .and_then(|iface| pre.instance_pre().component().get_export_index(Some(&iface), "fetch"))
            .ok_or_else(|| guest_error(name, "exports no wfetch:fetch/fetcher@0.1.0#fetch".into()))?;
        Ok(Guest {
            runtime: self.clone(),
            pre,
            fetch_export,
            name: name.to_string(),
            pool: Arc::default(),
            spare: Arc::default(),
            limits: Limits::default(),
            summary_type: Arc::default(),
        })
    }
}

fn guest_error(name: &str, why: String) -> Error {
    Error::Guest {
        name: name.to_string(),
        why,
    }
}

/// A loaded guest, ready to run fetches (each in its own store). A clone
/// shares the compiled code and the keep-alive pool (give it other limits
/// with [`Guest::with_limits`]).
#[derive(Clone)]
pub struct Guest {
    runtime: Arc<Runtime>,
    pre: bindings::FetchGuestPre<HostState>,
    /// The guest's `fetch`, type-checked when the guest was loaded.
    fetch_export: ComponentExportIndex,
    name: String,
    /// Kept-alive connections released by this guest's fetches.
    pool: Arc<crate::pool::Pool>,
    /// A fresh instance made for the next fetch while this one waits on
    /// the network.
    spare: Arc<SpareSlot>,
    /// The sandbox limits of each fetch.
    limits: Limits,
    /// Whether the guest's `fetch` result lifts as [`SummaryRaw`]: checked
    /// on the first [`Guest::fetch_summary_with_stats`].
    summary_type: Arc<std::sync::OnceLock<bool>>,
}

impl Guest {
    /// Run one fetch in a fresh instance of the guest.
    pub async fn fetch(&self, net: Arc<NetConfig>, req: &Request, sink: Box<dyn Sink>) -> Result<FetchResponse, Error> {
        self.fetch_with_stats(net, req, sink, Arc::default()).await
    }

    /// [`Guest::fetch`], recording the connections' facts (timing,
    /// addresses, how many were opened or reused) in `stats` as they happen.
    pub async fn fetch_with_stats(
        &self,
        net: Arc<NetConfig>,
        req: &Request,
        sink: Box<dyn Sink>,
        stats: Arc<crate::pool::FetchStats>,
    ) -> Result<FetchResponse, Error> {
        // SAFETY: `func` is the `fetch` export of an instance of the
        // component behind `self.pre`, whose type FetchGuestPre::new
        // checked when the guest was loaded (see `instantiate_fetch`).
        self.fetch_as(net, req, sink, stats, |_, func| {
            Ok(unsafe { FetchFunc::new_unchecked(func) })
        })
        .await
    }

    /// [`Guest::fetch_with_stats`] for a caller that needs only the final
    /// status, URL, redirects and body size: the result's head (its
    /// strings and headers, which the sink was handed already) is left in
    /// the guest's memory instead of being copied out a second time.
    pub async fn fetch_summary_with_stats(
        &self,
        net: Arc<NetConfig>,
        req: &Request,
        sink: Box<dyn Sink>,
        stats: Arc<crate::pool::FetchStats>,
    ) -> Result<FetchSummary, Error> {
        let checked = self.summary_type.clone();
        let raw = self
            .fetch_as(net, req, sink, stats, move |store, func| {
                // Checked against the first instance, once per loaded
                // guest: every instance of a component has the same types.
                if *checked.get_or_init(|| {
                    func.typed::<FetchParams, (Result<SummaryRaw, FetchError>,)>(store)
                        .is_ok()
                }) {
                    // SAFETY: the check above passed for this component.
                    Ok(unsafe { SummaryFunc::new_unchecked(func) })
                } else {
                    Err(Error::Engine(
                        "the guest's fetch result does not have the WIT's type".into(),
                    ))
                }
            })
            .await?;
        Ok(FetchSummary {
            status: raw.head.status,
            url: raw.url,
            hops: raw.hops,
            body_bytes: raw.body_bytes,
        })
    }

    /// One fetch in a fresh instance, its result lifted as `R` (`typed`
    /// makes the typed `fetch` of an instance).
    async fn fetch_as<'r, R>(
        &self,
        net: Arc<NetConfig>,
        req: &'r Request,
        sink: Box<dyn Sink>,
        stats: Arc<crate::pool::FetchStats>,
        typed: impl FnOnce(&mut Store<HostState>, wasmtime::component::Func) -> Result<ResultFunc<'r, R>, Error>,
    ) -> Result<R, Error>
    where
        R: wasmtime::component::ComponentType + wasmtime::component::Lift + Send + Sync + 'static,
    {
        let (slot, mut store, ready) = match self.spare.take(&net, &self.limits) {
            Some(spare) => (spare.slot, spare.store, Some(spare.func)),
            None => (self.slot().await?, self.store(net.clone())?, None),
        };
        self.prepare_spare(net);
        store.data_mut().conns.stats = stats;
        let usage = store.data().usage.clone();
        let sink = store
            .data_mut()
            .table
            .push(SinkSlot(sink))
            .map_err(|e| Error::Trap(e.to_string()))?;
        let sink_rep = sink.rep();
        // Kills the instance's connections unless the fetch ends normally
        // (also when the caller drops this future).
        let mut kill = KillOnDrop(Some(usage.clone()));
        let work = async {
            let func = match ready {
                Some(func) => func,
                None => self.instantiate_fetch(&mut store).await?,
            };
            let fetch = typed(&mut store, func)?;
            fetch
                .call_async(&mut store, (req, Resource::new_borrow(sink_rep)))
                .await
                .map(|(r,)| r)
                .map_err(|e| self.trap(e))
        };
        // The guest yields every FUEL_YIELD_INTERVAL, so the timeout fires
        // even while it computes.
        let result = match self.limits.wall_time {
            Some(limit) => match tokio::time::timeout(limit, work).await {
                Ok(r) => r,
                Err(_) => Err(Error::Limit(usage.exceed(
                    LimitKind::WallTime,
                    format!("the fetch took longer than {}", show_duration(limit)),
                ))),
            },
            None => work.await,
        };
        if let Ok(left) = store.get_fuel() {
            tracing::debug!(
                "guest {}: used {} fuel, {} bytes of memory, {} connections open at the end",
                self.name,
                self.limits.fuel.saturating_sub(left),
                usage.memory(),
                usage.open_connections()
            );
        }
        // A limit the host recorded wins over how the guest reacted to it.
        let result = match (usage.exceeded(), result) {
            (Some(e), Err(_) | Ok(Err(_))) => Err(Error::Limit(e)),
            (_, Ok(Err(e))) => Err(Error::Fetch(e)),
            (_, Ok(Ok(r))) => Ok(r),
            (_, Err(e)) => Err(e),
        };
        if matches!(result, Ok(_) | Err(Error::Fetch(_))) {
            kill.0 = None;
        }
        drop(kill);
        // The sink goes now (it may hold the caller's output). Tearing the
        // instance down (resetting its memory) is left to a task: it runs
        // when the caller next waits, which for a caller fetching in a
        // loop is after its next request is on the wire (writes to an idle
        // connection go out at once), so the reset overlaps the server's
        // work instead of delaying the request. The slot is freed only once
        // the instance is gone, so no instance ever sees another's memory.
        drop(store.data_mut().table.delete(sink));
        tokio::spawn(async move {
            drop(store);
            drop(slot);
        });
        result
    }

    /// This guest with an empty keep-alive pool of its own (a clone shares
    /// the pool).
    pub fn with_own_pool(&self) -> Guest {
        Guest {
            pool: Arc::default(),
            spare: Arc::default(),
            ..self.clone()
        }
    }

    /// The limits each fetch of this guest runs under.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Set the limits for the fetches that follow.
    pub fn set_limits(&mut self, limits: Limits) {
        self.limits = limits;
    }

    /// This guest with other limits.
    pub fn with_limits(mut self, limits: Limits) -> Guest {
        self.limits = limits;
        self
    }

    /// The guest's `build-request`.
    pub async fn build_request(
        &self,
        req: &Request,
    ) -> Result<Result<Vec<u8>, bindings::exports::wfetch::fetch::fetcher::RequestError>, Error> {
        let _slot = self.slot().await?;
        let mut store = self.store(offline_net())?;
        let instance = self.instantiate(&mut store).await?;
        instance
            .wfetch_fetch_fetcher()
            .call_build_request(&mut store, req)
            .await
            .map_err(|e| self.trap(e))
    }

    fn store(&self, net: Arc<NetConfig>) -> Result<Store<HostState>, Error> {
        let usage = Arc::new(Usage::default());
        let mut table = ResourceTable::new();
        table.set_max_capacity(crate::limits::MAX_TABLE_ENTRIES);
        let state = HostState {
            table,
            wasi: None,
            net,
            counters: Arc::new(Counters::default()),
            conns: crate::pool::ConnState::new(self.pool.clone()),
            limiter: GuestLimiter::new(&self.limits, usage.clone()),
            limits: self.limits.clone(),
            usage,
        };
        let mut store = Store::new(&self.runtime.engine, state);
        store.limiter(|s| &mut s.limiter);
        let fuel = |e: wasmtime::Error| Error::Engine(format!("fuel: {e}"));
        store.set_fuel(self.limits.fuel).map_err(fuel)?;
        store
            .fuel_async_yield_interval(Some(crate::limits::FUEL_YIELD_INTERVAL))
            .map_err(fuel)?;
        Ok(store)
    }

    /// Wait for a free instance slot; held until the store is dropped.
    async fn slot(&self) -> Result<tokio::sync::OwnedSemaphorePermit, Error> {
        self.runtime
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| Error::Engine("instance slots closed".into()))
    }

    /// Make a fresh instance for the next fetch in a task, unless one is
    /// ready or being made. The task runs when the caller next waits (on
    /// the network, for a fetch), so the work is off the path between one
    /// response and the next request. It never waits for an instance slot:
    /// when few are free there is no spare (see [`SPARE_HEADROOM`]).
    fn prepare_spare(&self, net: Arc<NetConfig>) {
        if self.spare.making.swap(true, std::sync::atomic::Ordering::AcqRel) {
            return;
        }
        let guest = self.clone();
        tokio::spawn(async move {
            let made = async {
                if guest.runtime.slots.available_permits() <= SPARE_HEADROOM {
                    return None;
                }
                let slot = guest.runtime.slots.clone().try_acquire_owned().ok()?;
                let mut store = guest.store(net.clone()).ok()?;
                let func = guest.instantiate_fetch(&mut store).await.ok()?;
                Some(Spare {
                    net,
                    limits: guest.limits.clone(),
                    store,
                    func,
                    slot,
                })
            }
            .await;
            let mut ready = lock_spare(&guest.spare.ready);
            if ready.is_none() {
                *ready = made;
            }
            drop(ready);
            guest.spare.making.store(false, std::sync::atomic::Ordering::Release);
        });
    }

    /// A fresh instance's `fetch` export, without the per-instance type
    /// check of every export that [`bindings::FetchGuestPre::instantiate_async`]
    /// does: its type was checked when the guest was loaded
    /// (FetchGuestPre::new); the caller makes the typed function with
    /// [`FetchFunc::new_unchecked`].
    async fn instantiate_fetch(&self, store: &mut Store<HostState>) -> Result<wasmtime::component::Func, Error> {
        let instance = self
            .pre
            .instance_pre()
            .instantiate_async(&mut *store)
            .await
            .map_err(|e| self.trap(e))?;
        instance
            .get_func(&mut *store, self.fetch_export)
            .ok_or_else(|| Error::Trap(format!("{}: no fetch export", self.name)))
    }

    async fn instantiate(&self, store: &mut Store<HostState>) -> Result<bindings::FetchGuest, Error> {
        self.pre.instantiate_async(store).await.map_err(|e| self.trap(e))
    }

    /// Whether a fresh instance is ready for the next fetch (made in a task
    /// while the last fetch waited; used only by a fetch with the same
    /// network configuration and limits).
    pub fn spare_ready(&self) -> bool {
        lock_spare(&self.spare.ready).is_some()
    }

    /// How many kept-alive connections this guest's pool holds now.
    pub fn idle_connections(&self) -> usize {
        self.pool.idle_count()
    }

    fn trap(&self, e: wasmtime::Error) -> Error {
        if let Some(l) = e.downcast_ref::<LimitExceeded>() {
            return Error::Limit(l.clone());
        }
        if e.downcast_ref::<wasmtime::Trap>() == Some(&wasmtime::Trap::OutOfFuel) {
            return Error::Limit(LimitExceeded {
                kind: LimitKind::Cpu,
                message: format!(
                    "the guest ran out of fuel (executed more than {} WebAssembly instructions)",
                    self.limits.fuel
                ),
            });
        }
        Error::Trap(format!("{}: {e:#}", self.name))
    }
}

/// A fresh, never used instance, ready for a fetch with this network
/// configuration and these limits (see [`Guest::prepare_spare`]).
struct Spare {
    net: Arc<NetConfig>,
    limits: Limits,
    store: Store<HostState>,
    func: wasmtime::component::Func,
    slot: tokio::sync::OwnedSemaphorePermit,
}

/// Where a guest keeps its spare instance.
#[derive(Default)]
struct SpareSlot {
    ready: std::sync::Mutex<Option<Spare>>,
    /// A task is making one.
    making: std::sync::atomic::AtomicBool,
}

impl SpareSlot {
    /// The spare, if it was made for this configuration (else it is
    /// dropped: a configuration change is rare).
    fn take(&self, net: &Arc<NetConfig>, limits: &Limits) -> Option<Spare> {
        let spare = lock_spare(&self.ready).take()?;
        (Arc::ptr_eq(&spare.net, net) && spare.limits == *limits).then_some(spare)
    }
}

fn lock_spare(m: &std::sync::Mutex<Option<Spare>>) -> std::sync::MutexGuard<'_, Option<Spare>> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The guest's `fetch` export: `func(req: request, sink: borrow<body-sink>)
/// -> result<fetch-response, fetch-error>`, with the result lifted as `R`.
type ResultFunc<'a, R> = TypedFunc<FetchParams<'a>, (Result<R, FetchError>,)>;
type FetchParams<'a> = (&'a Request, Resource<SinkSlot>);
type FetchFunc<'a> = ResultFunc<'a, FetchResponse>;
type SummaryFunc<'a> = ResultFunc<'a, SummaryRaw>;

/// What [`Guest::fetch_summary_with_stats`] returns of a fetch.
#[derive(Debug, Clone)]
pub struct FetchSummary {
    /// The final status code.
    pub status: u16,
    /// The URL that gave it (after redirects).
    pub url: String,
    /// The redirects followed, in order.
    pub hops: Vec<Hop>,
    /// Body bytes delivered to the sink.
    pub body_bytes: u64,
}

/// `fetch-response` as the summary lifts it: the head's strings and
/// headers stay in the guest's memory (lifting still checks that they lie
/// within it) and are never read.
#[derive(wasmtime::component::ComponentType, wasmtime::component::Lift)]
#[component(record)]
struct SummaryRaw {
    head: HeadInPlace,
    url: String,
    hops: Vec<Hop>,
    #[component(name = "body-bytes")]
    body_bytes: u64,
}

/// `response-head`, left in place but for its status.
#[derive(wasmtime::component::ComponentType, wasmtime::component::Lift)]
#[component(record)]
#[allow(dead_code, reason = "the fields give the record its type; only the status is read")]
struct HeadInPlace {
    version: wasmtime::component::WasmStr,
    status: u16,
    reason: wasmtime::component::WasmStr,
    headers: wasmtime::component::WasmList<Header>,
}

/// Kills an instance's connections when dropped armed.
struct KillOnDrop(Option<Arc<Usage>>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(u) = self.0.take() {
            u.kill();
        }
    }
}

fn show_duration(d: std::time::Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// A network configuration that refuses everything (for pure calls).
fn offline_net() -> Arc<NetConfig> {
    static OFFLINE: std::sync::OnceLock<Arc<NetConfig>> = std::sync::OnceLock::new();
    OFFLINE
        .get_or_init(|| {
            Arc::new(NetConfig {
                tls: crate::tls::client_config(&Default::default()).expect("default TLS config builds"),
                policy: crate::policy::Policy::default(),
                resolve: Default::default(),
                timeouts: Default::default(),
                tape: None,
            })
        })
        .clone()
}

/// The data of one store: the guest's resources, WASI, and the network.
pub struct HostState {
    table: ResourceTable,
    /// WASI with nothing granted, made on the guest's first WASI call (a
    /// fetch of the default guest makes none: no per-fetch set-up cost).
    wasi: Option<WasiCtx>,
    net: Arc<NetConfig>,
    counters: Arc<Counters>,
    /// Kept-alive connections and this fetch's connection facts.
    conns: crate::pool::ConnState,
    /// The sandbox: this instance's limits, what it has used, the store's
    /// memory limiter (each open connection's accounting slot is kept with
    /// its writer in `conns`).
    limits: Limits,
    usage: Arc<Usage>,
    limiter: GuestLimiter,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: self.wasi.get_or_insert_with(|| WasiCtx::builder().build()),
            table: &mut self.table,
        }
    }
}

/// Host stream errors to their WIT form.
fn to_wit(e: streams::StreamError) -> wit::StreamError {
    use streams::StreamError as S;
    match e {
        S::IncompleteRead { partial, expected } => {
            wit::StreamError::IncompleteRead(wit::IncompleteRead { partial, expected })
        }
        S::LimitOverrun { consumed, message } => {
            wit::StreamError::LimitOverrun(wit::LimitOverrun { consumed, message })
        }
        S::ConnectionRefused(m) => wit::StreamError::ConnectionRefused(m),
        S::ConnectionReset(m) => wit::StreamError::ConnectionReset(m),
        S::TimedOut(m) => wit::StreamError::TimedOut(m),
        S::Dns(m) => wit::StreamError::Dns(m),
        S::Tls { certificate, message } => wit::StreamError::Tls(wit::TlsError { certificate, message }),
        S::Denied(m) => wit::StreamError::Denied(m),
        S::Closed => wit::StreamError::Closed,
        S::InvalidArgument(m) => wit::StreamError::InvalidArgument(m),
        S::Other(m) => wit::StreamError::Other(m),
    }
}

type WResult<T> = wasmtime::Result<T>;

impl HostState {
    fn reader(&mut self, r: &Resource<StreamReader>) -> WResult<&mut StreamReader> {
        Ok(self.table.get_mut(r)?)
    }
    fn writer(&mut self, w: &Resource<StreamWriter>) -> WResult<&mut StreamWriter> {
        Ok(self.table.get_mut(w)?)
    }

    /// Count what a read handed to the guest; trap over the limit.
    fn count_read(&self, r: Result<Vec<u8>, wit::StreamError>) -> WResult<Result<Vec<u8>, wit::StreamError>> {
        let n = match &r {
            Ok(data) => data.len(),
            Err(wit::StreamError::IncompleteRead(i)) => i.partial.len(),
            Err(_) => 0,
        };
        self.usage.add_read(n, &self.limits).map_err(wasmtime::Error::new)?;
        Ok(r)
    }

    /// Check a write of `n` more bytes against the limits: the writer's
    /// queue (the host's memory) and the bytes sent.
    fn check_write(&mut self, w: &Resource<StreamWriter>, n: usize) -> WResult<()> {
        let queued = self.writer(w)?.buffered() as u64;
        let max = self.limits.stream_buffer;
        if queued + n as u64 > max {
            let e = self.usage.exceed(
                LimitKind::StreamBuffer,
                format!(
                    "the guest queued more than {} on a writer without draining it",
                    crate::limits::show_size(max)
                ),
            );
            return Err(wasmtime::Error::new(e));
        }
        self.usage.add_written(n, &self.limits).map_err(wasmtime::Error::new)
    }

    /// Trap when a single read would make the host buffer more than the
    /// stream buffer limit.
    fn check_read_size(&self, what: &str, n: u64) -> WResult<()> {
        let max = self.limits.stream_buffer;
        if n > max {
            let e = self.usage.exceed(
                LimitKind::StreamBuffer,
                format!(
                    "{what} of {n} bytes is more than the host buffers for a stream ({})",
                    crate::limits::show_size(max)
                ),
            );
            return Err(wasmtime::Error::new(e));
        }
        Ok(())
    }
}

impl wit::Host for HostState {
    async fn open_connection(
        &mut self,
        host: String,
        port: u16,
        options: wit::OpenOptions,
    ) -> WResult<Result<(Resource<StreamReader>, Resource<StreamWriter>), wit::StreamError>> {
        let max_buffer = self.limits.stream_buffer;
        for (what, v) in [("limit", options.limit), ("high-water", options.high_water)] {
            if let Some(v) = v.filter(|v| u64::from(*v) > max_buffer) {
                return Ok(Err(wit::StreamError::InvalidArgument(format!(
                    "{what} {v} is above the host's stream buffer limit of {} bytes",
                    max_buffer
                ))));
            }
        }
        let key = crate::pool::PoolKey {
            host: host.to_ascii_lowercase(),
            port,
            tls: options.tls.as_ref().map(|t| (t.server_name.clone(), t.alpn.clone())),
            limit: options.limit,
            high_water: options.high_water,
        };
        // A kept-alive connection for the same target, after the policy's
        // check on the name (as for a new one).
        if self.net.policy.check_name(&host, port).is_ok() {
            if let Some((reader, writer, conn_slot)) = self.conns.pool.take(&self.net, &key) {
                // A reused connection counts against the limits like a new
                // one (over the limit, it is closed and the guest stopped),
                // and this instance's kill stops it.
                let ticket = self
                    .usage
                    .begin_connection(&self.limits)
                    .map_err(wasmtime::Error::new)?;
                conn_slot.adopt(ticket);
                let info = writer.info().clone();
                let is_tls = info.tls.is_some();
                self.conns.stats.update(|s| {
                    let now = tokio::time::Instant::now();
                    s.reused += 1;
                    s.connected = Some(now);
                    s.tls_done = is_tls.then_some(now);
                    (s.peer, s.local) = (Some(info.peer), Some(info.local));
                });
                let r = self.table.push(reader)?;
                let w = self.table.push(writer)?;
                self.conns.opened(w.rep(), key, conn_slot, true);
                return Ok(Ok((r, w)));
            }
        }
        let tls = options.tls.map(|t| TlsRequest {
            server_name: t.server_name,
            alpn: t.alpn,
        });
        let ticket = self
            .usage
            .begin_connection(&self.limits)
            .map_err(wasmtime::Error::new)?;
        // Boxed: the connect future (DNS, TCP, TLS handshake) is large, and
        // this call's future is moved into a box on every call, also for the
        // pooled connection above.
        let connect = Box::pin(crate::net::connect(&self.net, &host, port, tls));
        let (conn, resolved, connected) = crate::pool::timed(connect).await;
        let conn = match conn {
            Ok(c) => c,
            Err(e) => return Ok(Err(to_wit(e))),
        };
        let (conn, conn_slot) = crate::limits::track(conn, ticket);
        let is_tls = conn.info.tls.is_some();
        let (peer, local) = (conn.info.peer, conn.info.local);
        self.conns.stats.update(|s| {
            let now = tokio::time::Instant::now();
            s.connects += 1;
            (s.resolved, s.connected) = (resolved, connected);
            s.tls_done = is_tls.then_some(now);
            (s.peer, s.local) = (Some(peer), Some(local));
        });
        let opts = StreamOptions {
            limit: options.limit.map_or(streams::DEFAULT_LIMIT, |l| l as usize),
            high_water: options.high_water.map_or(streams::DEFAULT_HIGH_WATER, |h| h as usize),
            timeouts: self.net.timeouts,
        };
        let (reader, writer) = streams::open(conn, opts, self.counters.clone());
        let r = self.table.push(reader)?;
        let w = self.table.push(writer)?;
        self.conns.opened(w.rep(), key, conn_slot, false);
        Ok(Ok((r, w)))
    }

    async fn release_connection(&mut self, r: Resource<StreamReader>, w: Resource<StreamWriter>) -> WResult<bool> {
        let open = self.conns.forget(w.rep());
        let reader = self.table.delete(r)?;
        let writer = self.table.delete(w)?;
        match open {
            // Idle in the pool, it no longer counts as this instance's open
            // connection.
            Some((key, slot)) => Ok(self.conns.pool.put(&self.net, key, reader, writer, slot).await),
            None => Ok(false),
        }
    }
}

impl wit::HostStreamReader for HostState {
    async fn read(&mut self, r: Resource<StreamReader>, n: i64) -> WResult<Result<Vec<u8>, wit::StreamError>> {
        if n != -1 {
            let got = self.reader(&r)?.read(n).await.map_err(to_wit);
            return self.count_read(got);
        }
        // read(-1) as CPython does it: read(limit) until EOF. Done here so
        // that the result (held by the host until the guest takes it) is
        // bounded by the stream buffer limit.
        let mut all = Vec::new();
        loop {
            let reader = self.reader(&r)?;
            let step = reader.limit().max(1) as i64;
            let block = match reader.read(step).await {
                Ok(b) => b,
                Err(e) => return self.count_read(Err(to_wit(e))),
            };
            if block.is_empty() {
                return self.count_read(Ok(all));
            }
            all.extend_from_slice(&block);
            self.check_read_size("read(-1)", all.len() as u64)?;
        }
    }
    async fn readline(&mut self, r: Resource<StreamReader>) -> WResult<Result<Vec<u8>, wit::StreamError>> {
        let got = self.reader(&r)?.readline().await.map_err(to_wit);
        self.count_read(got)
    }
    async fn readuntil(
        &mut self,
        r: Resource<StreamReader>,
        separators: Vec<Vec<u8>>,
    ) -> WResult<Result<Vec<u8>, wit::StreamError>> {
        let got = self.reader(&r)?.readuntil(&separators).await.map_err(to_wit);
        self.count_read(got)
    }
    async fn readexactly(&mut self, r: Resource<StreamReader>, n: u64) -> WResult<Result<Vec<u8>, wit::StreamError>> {
        self.check_read_size("readexactly", n)?;
        let got = self.reader(&r)?.readexactly(n).await.map_err(to_wit);
        self.count_read(got)
    }
    fn at_eof(&mut self, r: Resource<StreamReader>) -> WResult<bool> {
        Ok(self.reader(&r)?.at_eof())
    }
    fn drop(&mut self, r: Resource<StreamReader>) -> WResult<()> {
        self.table.delete(r)?;
        Ok(())
    }
}

impl wit::HostStreamWriter for HostState {
    fn write(&mut self, w: Resource<StreamWriter>, data: Vec<u8>) -> WResult<Result<(), wit::StreamError>> {
        self.check_write(&w, data.len())?;
        Ok(self.writer(&w)?.write(&data).map_err(to_wit))
    }
    fn writelines(&mut self, w: Resource<StreamWriter>, data: Vec<Vec<u8>>) -> WResult<Result<(), wit::StreamError>> {
        self.check_write(&w, data.iter().map(Vec::len).sum())?;
        Ok(self
            .writer(&w)?
            .writelines(data.iter().map(Vec::as_slice))
            .map_err(to_wit))
    }
    async fn drain(&mut self, w: Resource<StreamWriter>) -> WResult<Result<(), wit::StreamError>> {
        Ok(self.writer(&w)?.drain().await.map_err(to_wit))
    }
    fn can_write_eof(&mut self, w: Resource<StreamWriter>) -> WResult<bool> {
        Ok(self.writer(&w)?.can_write_eof())
    }
    fn write_eof(&mut self, w: Resource<StreamWriter>) -> WResult<Result<(), wit::StreamError>> {
        Ok(self.writer(&w)?.write_eof().map_err(to_wit))
    }
    fn close(&mut self, w: Resource<StreamWriter>) -> WResult<()> {
        self.writer(&w)?.close();
        Ok(())
    }
    fn is_closing(&mut self, w: Resource<StreamWriter>) -> WResult<bool> {
        Ok(self.writer(&w)?.is_closing())
    }
    async fn wait_closed(&mut self, w: Resource<StreamWriter>) -> WResult<Result<(), wit::StreamError>> {
        Ok(self.writer(&w)?.wait_closed().await.map_err(to_wit))
    }
    fn get_extra_info(&mut self, w: Resource<StreamWriter>, name: String) -> WResult<Option<wit::ExtraInfo>> {
        if name == "reused" {
            self.writer(&w)?;
            return Ok(Some(wit::ExtraInfo::Text(self.conns.is_reused(w.rep()).to_string())));
        }
        let info = self.writer(&w)?.info().get(&name);
        Ok(info.map(|i| match i {
            ExtraInfo::Address(a) => wit::ExtraInfo::Address(wit::SocketAddress {
                address: a.ip().to_string(),
                port: a.port(),
            }),
            ExtraInfo::Certificate(c) => wit::ExtraInfo::Certificate(wit::PeerCertificate {
                subject: c.subject,
                issuer: c.issuer,
                not_before: c.not_before,
                not_after: c.not_after,
                der: c.der,
            }),
            ExtraInfo::Cipher { suite, protocol } => wit::ExtraInfo::Cipher(wit::CipherInfo { suite, protocol }),
            ExtraInfo::Text(t) => wit::ExtraInfo::Text(t),
        }))
    }
    fn drop(&mut self, w: Resource<StreamWriter>) -> WResult<()> {
        // The slot stays with the socket too: a closing connection still
        // counts as open until its flush is done.
        self.conns.forget(w.rep());
        self.table.delete(w)?;
        Ok(())
    }
}

impl bindings::wfetch::fetch::types::Host for HostState {}

impl bindings::wfetch::fetch::sink::Host for HostState {}

use bindings::wfetch::fetch::sink::SpliceError;

impl bindings::wfetch::fetch::sink::HostBodySink for HostState {
    fn request_sent(&mut self, s: Resource<SinkSlot>, head: Vec<u8>) -> WResult<()> {
        self.usage
            .add_delivered(head.len(), &self.limits)
            .map_err(wasmtime::Error::new)?;
        self.table.get_mut(&s)?.0.request_sent(&head);
        Ok(())
    }
    fn response_head(&mut self, s: Resource<SinkSlot>, head: ResponseHead, raw: Vec<u8>) -> WResult<()> {
        self.usage
            .add_delivered(raw.len(), &self.limits)
            .map_err(wasmtime::Error::new)?;
        self.table.get_mut(&s)?.0.response_head(head, &raw);
        Ok(())
    }
    async fn write(&mut self, s: Resource<SinkSlot>, data: Vec<u8>) -> WResult<Result<(), String>> {
        self.usage
            .add_delivered(data.len(), &self.limits)
            .map_err(wasmtime::Error::new)?;
        Ok(self.table.get_mut(&s)?.0.write(data).await)
    }
    async fn write_from(
        &mut self,
        s: Resource<SinkSlot>,
        source: Resource<StreamReader>,
        n: u64,
    ) -> WResult<Result<u64, SpliceError>> {
        // The guest's read(n) then write(data), under the same limits,
        // with one copy (out of the reader's buffer) instead of three.
        let n = i64::try_from(n).unwrap_or(i64::MAX);
        let data = match wit::HostStreamReader::read(self, source, n).await? {
            Ok(data) if data.is_empty() => return Ok(Ok(0)),
            Ok(data) => data,
            Err(e) => return Ok(Err(SpliceError::Read(e))),
        };
        let moved = data.len() as u64;
        match self.write(s, data).await? {
            Ok(()) => Ok(Ok(moved)),
            Err(e) => Ok(Err(SpliceError::Write(e))),
        }
    }
    fn trailers(&mut self, s: Resource<SinkSlot>, trailers: Vec<Header>) -> WResult<()> {
        let n = trailers.iter().map(|t| t.name.len() + t.value.len()).sum();
        self.usage
            .add_delivered(n, &self.limits)
            .map_err(wasmtime::Error::new)?;
        self.table.get_mut(&s)?.0.trailers(&trailers);
        Ok(())
    }
    fn progress(&mut self, s: Resource<SinkSlot>, received: u64, expected: Option<u64>) -> WResult<()> {
        self.table.get_mut(&s)?.0.progress(received, expected);
        Ok(())
    }
    fn drop(&mut self, s: Resource<SinkSlot>) -> WResult<()> {
        self.table.delete(s)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wasi_is_linked_only_for_a_guest_that_imports_it() {
        let runtime = Arc::new(Runtime::new().expect("the engine"));
        runtime.load("default", DEFAULT_GUEST).expect("the default guest loads");
        assert!(runtime.wasi_linker.get().is_none(), "the default guest imports no WASI");
        let template = std::fs::read(env!("WFETCH_GUEST_TEMPLATE")).expect("the template guest");
        runtime.load("template", &template).expect("a WASI guest loads");
        assert!(runtime.wasi_linker.get().is_some());
    }
}
