//! Sans-IO HTTP/1.1 client core (RFC 9112) of wfetch's default guest.
//!
//! # Scope
//! In scope: encoding requests, parsing response heads, deciding body
//! framing (Content-Length, chunked with trailers, close-delimited, none),
//! decoding chunked bodies step by step, redirects, content decoding
//! (gzip, deflate, br) with an expansion cap.
//! Out of scope: sockets, TLS, time. Everything here is bytes in, values or
//! errors out; the only I/O loop lives in the guest glue (`guest/http`),
//! which drives [`body::BodyDecoder`] over the host's asyncio-like streams.
//!
//! # Layout
//! - [`request`]: URL to [`request::Target`], request bytes.
//! - [`head`]: status line and header parsing.
//! - [`body`]: framing decision and the chunked state machine.
//! - [`redirect`]: the next request after a 3xx.
//! - [`keepalive`]: whether a connection may carry the next request.
//! - [`decode`]: streaming content decoding.
//! - [`error`]: the crate's one error enum.

pub mod body;
pub mod decode;
pub mod error;
pub mod head;
pub mod keepalive;
pub mod redirect;
pub mod request;

pub use error::Error;

/// A header as received: the name as written, the raw value bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub name: String,
    pub value: Vec<u8>,
}

/// The protocol version of a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

impl Version {
    /// "HTTP/1.0" or "HTTP/1.1".
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// A parsed response head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseHead {
    pub version: Version,
    pub status: u16,
    pub reason: String,
    /// In order, repeats kept.
    pub headers: Vec<Header>,
}

impl ResponseHead {
    /// The first value of a header, case-insensitively.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_slice())
    }

    /// Every value of a header, in order, case-insensitively.
    pub fn headers_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_slice())
    }
}
