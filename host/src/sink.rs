//! The host side of the guest's `body-sink`: where response heads, bodies
//! and trailers go (a file, stdout, a channel, a test buffer).

use std::future::Future;
use std::pin::Pin;

use crate::engine::bindings::wfetch::fetch::types::{Header, ResponseHead};

/// A boxed future returned by [`Sink::write`].
pub type WriteFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// The consumer of one fetch's output.
pub trait Sink: Send {
    /// The exact request bytes about to be sent.
    fn request_sent(&mut self, _head: &[u8]) {}
    /// A response head (interim, redirect or final); `raw` is as received.
    fn response_head(&mut self, _head: ResponseHead, _raw: &[u8]) {}
    /// A piece of the body of the last head. An error stops the fetch.
    fn write(&mut self, data: Vec<u8>) -> WriteFuture<'_>;
    /// Trailers after a chunked body.
    fn trailers(&mut self, _trailers: &[Header]) {}
    /// Body bytes of the last head received so far as they came over the
    /// wire (before content decoding), and the total when known.
    fn progress(&mut self, _received: u64, _expected: Option<u64>) {}
}

/// A sink that keeps everything in memory (tests, small fetches).
#[derive(Debug, Default)]
pub struct MemorySink {
    /// Every request head sent, as raw bytes.
    pub requests: Vec<Vec<u8>>,
    /// Every response head received (interim, redirect and final).
    pub heads: Vec<ResponseHead>,
    /// The body of the last head.
    pub body: Vec<u8>,
    /// Trailers after a chunked body.
    pub trailers: Vec<Header>,
}

impl Sink for MemorySink {
    fn request_sent(&mut self, head: &[u8]) {
        self.requests.push(head.to_vec());
    }
    fn response_head(&mut self, head: ResponseHead, _raw: &[u8]) {
        self.heads.push(head);
        self.body.clear();
    }
    fn write(&mut self, data: Vec<u8>) -> WriteFuture<'_> {
        self.body.extend_from_slice(&data);
        Box::pin(async { Ok(()) })
    }
    fn trailers(&mut self, trailers: &[Header]) {
        self.trailers = trailers.to_vec();
    }
}
