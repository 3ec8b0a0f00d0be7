//! The wasmtime side: one engine and linker per process, guest components
//! loaded and pre-instantiated once, and a fresh store per fetch whose
//! imports (`streams`, `sink`) are served by the host.

use std::sync::Arc;

use wasmtime::component::{Component, HasSelf, Linker, Resource, ResourceTable};
use wasmtime::{Config, Engine, Store};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use crate::net::{NetConfig, TlsRequest};
use crate::sink::Sink;
use crate::streams::{self, Counters, ExtraInfo, StreamOptions, StreamReader, StreamWriter};
use crate::Error;

/// Generated bindings for the `fetch-guest` world.
pub mod bindings {
    wasmtime::component::bindgen!({
        world: "fetch-guest",
        path: "../wit",
        imports: { default: async | trappable },
        exports: { default: async },
        with: {
            "wfetch:fetch/streams.stream-reader": crate::streams::StreamReader,
            "wfetch:fetch/streams.stream-writer": crate::streams::StreamWriter,
            "wfetch:fetch/sink.body-sink": crate::engine::SinkSlot,
        },
    });
}

use bindings::exports::wfetch::fetch::fetcher::FetchResponse;
use bindings::wfetch::fetch::streams as wit;
use bindings::wfetch::fetch::types::{Header, Request, ResponseHead};

/// The guest's view of the host's sink: the host's [`Sink`].
pub struct SinkSlot(Box<dyn Sink>);

/// The embedded default guest (guest/http), built by build.rs.
pub static DEFAULT_GUEST: &[u8] = include_bytes!(env!("WFETCH_DEFAULT_GUEST"));

/// One per process: the engine and the linker with WASI and our imports.
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
}

impl Runtime {
    /// Set up the engine and link the host's imports.
    pub fn new() -> Result<Runtime, Error> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        let engine = Engine::new(&config).map_err(|e| Error::Engine(e.to_string()))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| Error::Engine(e.to_string()))?;
        bindings::FetchGuest::add_to_linker::<HostState, HasSelf<HostState>>(&mut linker, |s| s)
            .map_err(|e| Error::Engine(e.to_string()))?;
        Ok(Runtime { engine, linker })
    }

    /// Compile and pre-instantiate a guest component. `name` is for messages.
    pub fn load(self: &Arc<Self>, name: &str, wasm: &[u8]) -> Result<Guest, Error> {
        let guest_err = |why: String| Error::Guest {
            name: name.to_string(),
            why,
        };
        let component =
            Component::new(&self.engine, wasm).map_err(|e| guest_err(format!("not a valid component: {e:#}")))?;
        let pre = self
            .linker
            .instantiate_pre(&component)
            .map_err(|e| guest_err(format!("cannot be linked with this host: {e:#}")))?;
        let pre = bindings::FetchGuestPre::new(pre)
            .map_err(|e| guest_err(format!("does not implement the wfetch:fetch/fetch-guest world: {e:#}")))?;
        Ok(Guest {
            runtime: self.clone(),
            pre,
            name: name.to_string(),
        })
    }
}

/// A loaded guest, ready to run fetches (each in its own store).
pub struct Guest {
    runtime: Arc<Runtime>,
    pre: bindings::FetchGuestPre<HostState>,
    name: String,
}

impl Guest {
    /// Run one fetch in a fresh instance of the guest.
    pub async fn fetch(&self, net: Arc<NetConfig>, req: &Request, sink: Box<dyn Sink>) -> Result<FetchResponse, Error> {
        let mut store = self.store(net);
        let instance = self.instantiate(&mut store).await?;
        let slot = store
            .data_mut()
            .table
            .push(SinkSlot(sink))
            .map_err(|e| Error::Trap(e.to_string()))?;
        let result = instance
            .wfetch_fetch_fetcher()
            .call_fetch(&mut store, req, Resource::new_borrow(slot.rep()))
            .await
            .map_err(|e| self.trap(e))?;
        result.map_err(Error::Fetch)
    }

    /// The guest's `build-request`.
    pub async fn build_request(
        &self,
        req: &Request,
    ) -> Result<Result<Vec<u8>, bindings::exports::wfetch::fetch::fetcher::RequestError>, Error> {
        let mut store = self.store(Arc::new(offline_net()));
        let instance = self.instantiate(&mut store).await?;
        instance
            .wfetch_fetch_fetcher()
            .call_build_request(&mut store, req)
            .await
            .map_err(|e| self.trap(e))
    }

    fn store(&self, net: Arc<NetConfig>) -> Store<HostState> {
        let state = HostState {
            table: ResourceTable::new(),
            wasi: WasiCtx::builder().build(),
            net,
            counters: Arc::new(Counters::default()),
        };
        Store::new(&self.runtime.engine, state)
    }

    async fn instantiate(&self, store: &mut Store<HostState>) -> Result<bindings::FetchGuest, Error> {
        self.pre.instantiate_async(store).await.map_err(|e| self.trap(e))
    }

    fn trap(&self, e: wasmtime::Error) -> Error {
        Error::Trap(format!("{}: {e:#}", self.name))
    }
}

/// A network configuration that refuses everything (for pure calls).
fn offline_net() -> NetConfig {
    NetConfig {
        tls: crate::tls::client_config(&Default::default()).expect("default TLS config builds"),
        policy: crate::policy::Policy::default(),
        resolve: Default::default(),
        timeouts: Default::default(),
    }
}

/// The data of one store: the guest's resources, WASI, and the network.
pub struct HostState {
    table: ResourceTable,
    wasi: WasiCtx,
    net: Arc<NetConfig>,
    counters: Arc<Counters>,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
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
}

impl wit::Host for HostState {
    async fn open_connection(
        &mut self,
        host: String,
        port: u16,
        options: wit::OpenOptions,
    ) -> WResult<Result<(Resource<StreamReader>, Resource<StreamWriter>), wit::StreamError>> {
        let tls = options.tls.map(|t| TlsRequest {
            server_name: t.server_name,
            alpn: t.alpn,
        });
        let conn = match crate::net::connect(&self.net, &host, port, tls).await {
            Ok(c) => c,
            Err(e) => return Ok(Err(to_wit(e))),
        };
        let opts = StreamOptions {
            limit: options.limit.map_or(streams::DEFAULT_LIMIT, |l| l as usize),
            high_water: options.high_water.map_or(streams::DEFAULT_HIGH_WATER, |h| h as usize),
            timeouts: self.net.timeouts,
        };
        let (reader, writer) = streams::open(conn, opts, self.counters.clone());
        let r = self.table.push(reader)?;
        let w = self.table.push(writer)?;
        Ok(Ok((r, w)))
    }
}

impl wit::HostStreamReader for HostState {
    async fn read(&mut self, r: Resource<StreamReader>, n: i64) -> WResult<Result<Vec<u8>, wit::StreamError>> {
        Ok(self.reader(&r)?.read(n).await.map_err(to_wit))
    }
    async fn readline(&mut self, r: Resource<StreamReader>) -> WResult<Result<Vec<u8>, wit::StreamError>> {
        Ok(self.reader(&r)?.readline().await.map_err(to_wit))
    }
    async fn readuntil(
        &mut self,
        r: Resource<StreamReader>,
        separators: Vec<Vec<u8>>,
    ) -> WResult<Result<Vec<u8>, wit::StreamError>> {
        Ok(self.reader(&r)?.readuntil(&separators).await.map_err(to_wit))
    }
    async fn readexactly(&mut self, r: Resource<StreamReader>, n: u64) -> WResult<Result<Vec<u8>, wit::StreamError>> {
        Ok(self.reader(&r)?.readexactly(n).await.map_err(to_wit))
    }
    async fn at_eof(&mut self, r: Resource<StreamReader>) -> WResult<bool> {
        Ok(self.reader(&r)?.at_eof())
    }
    async fn drop(&mut self, r: Resource<StreamReader>) -> WResult<()> {
        self.table.delete(r)?;
        Ok(())
    }
}

impl wit::HostStreamWriter for HostState {
    async fn write(&mut self, w: Resource<StreamWriter>, data: Vec<u8>) -> WResult<Result<(), wit::StreamError>> {
        Ok(self.writer(&w)?.write(&data).map_err(to_wit))
    }
    async fn writelines(
        &mut self,
        w: Resource<StreamWriter>,
        data: Vec<Vec<u8>>,
    ) -> WResult<Result<(), wit::StreamError>> {
        Ok(self
            .writer(&w)?
            .writelines(data.iter().map(Vec::as_slice))
            .map_err(to_wit))
    }
    async fn drain(&mut self, w: Resource<StreamWriter>) -> WResult<Result<(), wit::StreamError>> {
        Ok(self.writer(&w)?.drain().await.map_err(to_wit))
    }
    async fn can_write_eof(&mut self, w: Resource<StreamWriter>) -> WResult<bool> {
        Ok(self.writer(&w)?.can_write_eof())
    }
    async fn write_eof(&mut self, w: Resource<StreamWriter>) -> WResult<Result<(), wit::StreamError>> {
        Ok(self.writer(&w)?.write_eof().map_err(to_wit))
    }
    async fn close(&mut self, w: Resource<StreamWriter>) -> WResult<()> {
        self.writer(&w)?.close();
        Ok(())
    }
    async fn is_closing(&mut self, w: Resource<StreamWriter>) -> WResult<bool> {
        Ok(self.writer(&w)?.is_closing())
    }
    async fn wait_closed(&mut self, w: Resource<StreamWriter>) -> WResult<Result<(), wit::StreamError>> {
        Ok(self.writer(&w)?.wait_closed().await.map_err(to_wit))
    }
    async fn get_extra_info(&mut self, w: Resource<StreamWriter>, name: String) -> WResult<Option<wit::ExtraInfo>> {
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
    async fn drop(&mut self, w: Resource<StreamWriter>) -> WResult<()> {
        self.table.delete(w)?;
        Ok(())
    }
}

impl bindings::wfetch::fetch::types::Host for HostState {}

impl bindings::wfetch::fetch::sink::Host for HostState {}

impl bindings::wfetch::fetch::sink::HostBodySink for HostState {
    async fn request_sent(&mut self, s: Resource<SinkSlot>, head: Vec<u8>) -> WResult<()> {
        self.table.get_mut(&s)?.0.request_sent(&head);
        Ok(())
    }
    async fn response_head(&mut self, s: Resource<SinkSlot>, head: ResponseHead, raw: Vec<u8>) -> WResult<()> {
        self.table.get_mut(&s)?.0.response_head(&head, &raw);
        Ok(())
    }
    async fn write(&mut self, s: Resource<SinkSlot>, data: Vec<u8>) -> WResult<Result<(), String>> {
        Ok(self.table.get_mut(&s)?.0.write(data).await)
    }
    async fn trailers(&mut self, s: Resource<SinkSlot>, trailers: Vec<Header>) -> WResult<()> {
        self.table.get_mut(&s)?.0.trailers(&trailers);
        Ok(())
    }
    async fn drop(&mut self, s: Resource<SinkSlot>) -> WResult<()> {
        self.table.delete(s)?;
        Ok(())
    }
}
