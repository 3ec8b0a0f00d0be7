//! The embeddable library: [`Host`] (one engine, one loaded guest, a
//! policy, limits, TLS roots) and its builder, with an async
//! [`Host::fetch`] whose body arrives as a stream.
//!
//! ```no_run
//! # async fn demo() -> Result<(), wfetch::Error> {
//! let host = wfetch::Host::builder().allow("127.0.0.1:8080")?.build()?;
//! let mut resp = host.fetch(wfetch::Request::get("http://127.0.0.1:8080/")).await?;
//! println!("{}", resp.status());
//! while let Some(piece) = resp.chunk().await? {
//!     println!("{} bytes", piece.len());
//! }
//! # Ok(()) }
//! ```

use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use crate::engine::{Guest, Runtime, DEFAULT_GUEST};
use crate::limits::Limits;
use crate::net::NetConfig;
use crate::policy::{Policy, Rule};
use crate::sink::{Sink, WriteFuture};
use crate::streams::Timeouts;
use crate::tls::TlsSettings;
use crate::{Error, FetchResponse, Header, Hop, Request, RequestHeader, RequestOptions, ResponseHead};

/// How many body pieces may wait in a response's channel before the guest
/// is made to wait (back-pressure from a slow reader of the body).
const BODY_CHANNEL_PIECES: usize = 8;

/// Where the guest comes from.
#[derive(Debug, Clone)]
enum GuestSource {
    Embedded,
    Bytes(String, Vec<u8>),
    Path(PathBuf),
}

/// Builds a [`Host`]. Every setting has a safe default: the embedded
/// guest, a policy that allows nothing, the default [`Limits`], the
/// system's and webpki's TLS roots, no precompiled cache.
#[derive(Debug, Clone)]
pub struct HostBuilder {
    guest: GuestSource,
    rules: Vec<Rule>,
    allow_all: bool,
    limits: Limits,
    tls: TlsSettings,
    cache_dir: Option<PathBuf>,
    timeouts: Timeouts,
    resolve: std::collections::HashMap<(String, u16), Vec<std::net::IpAddr>>,
}

impl Default for HostBuilder {
    fn default() -> Self {
        HostBuilder {
            guest: GuestSource::Embedded,
            rules: Vec::new(),
            allow_all: false,
            limits: Limits::default(),
            tls: TlsSettings::default(),
            cache_dir: None,
            timeouts: Timeouts::default(),
            resolve: Default::default(),
        }
    }
}

impl HostBuilder {
    /// Run this guest component (its bytes) instead of the embedded one.
    pub fn guest_bytes(mut self, name: &str, wasm: Vec<u8>) -> Self {
        self.guest = GuestSource::Bytes(name.to_string(), wasm);
        self
    }

    /// Run the guest component in this file instead of the embedded one.
    pub fn guest_path(mut self, path: impl AsRef<Path>) -> Self {
        self.guest = GuestSource::Path(path.as_ref().to_path_buf());
        self
    }

    /// Allow connections to targets matching `pattern` (`host[:port]`:
    /// exact host, `*.example.com`, IP, CIDR, port or range, `*`). See
    /// SECURITY.md for how patterns meet private addresses.
    pub fn allow(mut self, pattern: &str) -> Result<Self, Error> {
        self.rules
            .push(Rule::parse(pattern).map_err(|e| Error::Usage(e.to_string()))?);
        Ok(self)
    }

    /// Allow every target, private addresses included (tests, trusted guests).
    pub fn allow_everything(mut self) -> Self {
        self.allow_all = true;
        self
    }

    /// Resource limits for each fetch's guest instance.
    pub fn limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// Trust only the CA certificates in this PEM file.
    pub fn cacert(mut self, path: impl AsRef<Path>) -> Self {
        self.tls.cacert = Some(path.as_ref().to_path_buf());
        self
    }

    /// Skip certificate verification (curl's `-k`).
    pub fn insecure(mut self, yes: bool) -> Self {
        self.tls.insecure = yes;
        self
    }

    /// Cache compiled guests in this directory (see [`crate::cache`]).
    pub fn cache_dir(mut self, dir: impl AsRef<Path>) -> Self {
        self.cache_dir = Some(dir.as_ref().to_path_buf());
        self
    }

    /// The connect timeout (TCP plus TLS handshake).
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.timeouts.connect = d;
        self
    }

    /// The longest a read or drain may wait without progress.
    pub fn idle_timeout(mut self, d: Duration) -> Self {
        self.timeouts.idle = d;
        self
    }

    /// Resolve `host:port` to these addresses instead of asking DNS
    /// (curl's `--resolve`). The policy still checks them.
    pub fn resolve(mut self, host: &str, port: u16, addrs: Vec<std::net::IpAddr>) -> Self {
        self.resolve.insert((host.to_ascii_lowercase(), port), addrs);
        self
    }

    /// Set up the engine, load (compile or fetch from cache) the guest.
    pub fn build(self) -> Result<Host, Error> {
        let runtime = Arc::new(Runtime::new()?);
        let (name, wasm) = match self.guest {
            GuestSource::Embedded => ("embedded wfetch-guest-http".to_string(), Cow::Borrowed(DEFAULT_GUEST)),
            GuestSource::Bytes(name, wasm) => (name, Cow::Owned(wasm)),
            GuestSource::Path(path) => {
                let name = path.display().to_string();
                let wasm = std::fs::read(&path).map_err(|e| Error::Guest {
                    name: name.clone(),
                    why: format!("cannot read: {e}"),
                })?;
                (name, Cow::Owned(wasm))
            }
        };
        let guest = match &self.cache_dir {
            Some(dir) => runtime.load_cached(&name, &wasm, dir)?.0,
            None => runtime.load(&name, &wasm)?,
        };
        let policy = if self.allow_all {
            Policy::allow_all()
        } else {
            Policy::new(self.rules)
        };
        let net = Arc::new(NetConfig {
            tls: crate::tls::client_config(&self.tls)?,
            policy,
            resolve: self.resolve,
            timeouts: self.timeouts,
            tape: None,
        });
        Ok(Host {
            guest: guest.with_limits(self.limits),
            net,
        })
    }
}

/// An embeddable fetcher: the guest runs each fetch in a fresh sandboxed
/// instance; connections go through the host's policy. Cheap to share
/// (`Arc`) across tasks; fetches run concurrently.
pub struct Host {
    guest: Guest,
    net: Arc<NetConfig>,
}

impl Host {
    /// A builder with safe defaults.
    pub fn builder() -> HostBuilder {
        HostBuilder::default()
    }

    /// Start a fetch. Returns once the final response head has arrived
    /// (interim and followed-redirect heads are skipped); the body then
    /// streams through [`Response::chunk`]. Must be called inside a tokio
    /// runtime.
    pub async fn fetch(&self, req: Request) -> Result<Response, Error> {
        let (tx, mut rx) = mpsc::channel(BODY_CHANNEL_PIECES);
        let sink = Box::new(ChannelSink {
            tx: tx.clone(),
            pending_head: None,
        });
        let guest = self.guest.clone();
        let net = self.net.clone();
        let task = tokio::spawn(async move {
            let result = guest.fetch(net, &req, sink).await;
            let _ = tx.send(Event::End(Box::new(result))).await;
        });
        // Wait for the first body piece (the head before it is final) or
        // the end (the result names the final head).
        let mut last_head = None;
        loop {
            match rx.recv().await {
                Some(Event::Head(h)) => last_head = Some(h),
                Some(Event::Data(d)) => {
                    let head = last_head.ok_or_else(|| Error::Trap("guest sent a body before a head".into()))?;
                    return Ok(Response {
                        head,
                        first: Some(d),
                        rx,
                        done: None,
                        _task: AbortOnDrop(task),
                    });
                }
                Some(Event::End(result)) => {
                    let resp = (*result)?;
                    return Ok(Response {
                        head: resp.head.clone(),
                        first: None,
                        rx,
                        done: Some(resp),
                        _task: AbortOnDrop(task),
                    });
                }
                None => return Err(Error::Trap("the fetch task ended without a result".into())),
            }
        }
    }
}

enum Event {
    Head(ResponseHead),
    Data(Vec<u8>),
    End(Box<Result<FetchResponse, Error>>),
}

/// Aborts the fetch when the response is dropped unread.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A response whose body is still arriving.
pub struct Response {
    head: ResponseHead,
    first: Option<Vec<u8>>,
    rx: mpsc::Receiver<Event>,
    done: Option<FetchResponse>,
    _task: AbortOnDrop,
}

impl Response {
    /// The status code.
    pub fn status(&self) -> u16 {
        self.head.status
    }

    /// The final response head.
    pub fn head(&self) -> &ResponseHead {
        &self.head
    }

    /// The first value of a header, case-insensitively.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.head
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_slice())
    }

    /// The next piece of the body; `None` once it is complete. A transfer
    /// that fails part-way (truncation, reset, limit) is an error here.
    pub async fn chunk(&mut self) -> Result<Option<Vec<u8>>, Error> {
        if let Some(first) = self.first.take() {
            return Ok(Some(first));
        }
        if self.done.is_some() {
            return Ok(None);
        }
        loop {
            match self.rx.recv().await {
                Some(Event::Data(d)) => return Ok(Some(d)),
                Some(Event::Head(_)) => continue,
                Some(Event::End(result)) => {
                    self.done = Some((*result)?);
                    return Ok(None);
                }
                None => return Err(Error::Trap("the fetch task ended without a result".into())),
            }
        }
    }

    /// The whole body.
    pub async fn bytes(&mut self) -> Result<Vec<u8>, Error> {
        let mut all = Vec::new();
        while let Some(piece) = self.chunk().await? {
            all.extend_from_slice(&piece);
        }
        Ok(all)
    }

    /// After the body is complete: the final URL, redirects followed, and
    /// body size as the guest reported them.
    pub fn summary(&self) -> Option<(&str, &[Hop], u64)> {
        self.done
            .as_ref()
            .map(|d| (d.url.as_str(), d.hops.as_slice(), d.body_bytes))
    }
}

struct ChannelSink {
    tx: mpsc::Sender<Event>,
    pending_head: Option<ResponseHead>,
}

impl Sink for ChannelSink {
    fn response_head(&mut self, head: ResponseHead, _raw: &[u8]) {
        self.pending_head = Some(head);
    }

    fn write(&mut self, data: Vec<u8>) -> WriteFuture<'_> {
        Box::pin(async move {
            if let Some(h) = self.pending_head.take() {
                self.tx
                    .send(Event::Head(h))
                    .await
                    .map_err(|_| "response dropped".to_string())?;
            }
            self.tx
                .send(Event::Data(data))
                .await
                .map_err(|_| "response dropped".to_string())
        })
    }

    fn trailers(&mut self, _trailers: &[Header]) {}
}

impl Request {
    /// A GET of `url` with default options.
    pub fn get(url: &str) -> Request {
        Request::new("GET", url)
    }

    /// A request with this method and URL, no headers, no body.
    pub fn new(method: &str, url: &str) -> Request {
        Request {
            method: method.to_string(),
            url: url.to_string(),
            headers: Vec::new(),
            body: None,
            options: RequestOptions {
                follow_redirects: false,
                max_redirects: 50,
                http10: false,
                compressed: false,
            },
        }
    }

    /// Add a header.
    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push(RequestHeader {
            name: name.to_string(),
            value: value.to_string(),
            remove: false,
        });
        self
    }

    /// Set the body (sent with Content-Length).
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = Some(body.into());
        self
    }

    /// Follow up to `max` redirects.
    pub fn follow_redirects(mut self, max: u32) -> Request {
        self.options.follow_redirects = true;
        self.options.max_redirects = max;
        self
    }

    /// Ask for a compressed body and decode it.
    pub fn compressed(mut self) -> Request {
        self.options.compressed = true;
        self
    }
}
