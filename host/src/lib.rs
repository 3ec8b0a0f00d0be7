//! wfetch: a sandboxed HTTP fetcher. The protocol runs in a WebAssembly
//! guest component; this crate is the native host that lends it streams.
//!
//! # Layout
//! - [`engine`]: wasmtime engine, linker, guest loading, one store per
//!   fetch, and the host side of the WIT imports.
//! - [`streams`]: asyncio-like StreamReader / StreamWriter over tokio.
//! - [`net`]: opening connections (policy, resolution, TCP, TLS).
//! - [`tls`]: rustls configuration, certificate facts; [`readahead`]: the
//!   read-ahead buffer under a TLS session.
//! - [`policy`]: what a guest may connect to.
//! - [`limits`]: what a guest instance may consume, and the accounting.
//! - [`pool`]: kept-alive connections, per-fetch connection statistics.
//! - [`sink`]: where response heads and bodies go.
//! - [`host`]: the embeddable library: [`Host`], its builder, streamed responses.
//! - [`cache`]: precompiled guests on disk; [`inspect`]: a component's world.
//! - [`cli`]: the curl-like command line.
//! - [`error`]: the crate's error enum and curl's exit codes.

#![warn(missing_docs)]

pub mod cache;
pub mod cli;
pub mod engine;
pub mod error;
pub mod host;
pub mod inspect;
pub mod limits;
pub mod net;
pub mod policy;
pub mod pool;
pub mod readahead;
pub mod sink;
pub mod streams;
pub mod tape;
pub mod tls;

pub use engine::bindings::exports::wfetch::fetch::fetcher::{FetchError, FetchResponse, Hop, RequestError};
pub use engine::bindings::wfetch::fetch::types::{Header, Request, RequestHeader, RequestOptions, ResponseHead};
pub use engine::{Guest, Runtime, DEFAULT_GUEST};
pub use error::Error;
pub use host::{Host, HostBuilder, Response};
pub use limits::{LimitExceeded, LimitKind, Limits};
pub use policy::{Policy, Rule};
