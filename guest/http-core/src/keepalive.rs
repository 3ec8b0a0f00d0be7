//! Persistent connections (RFC 9112 9.3): may the connection carry another
//! request once this exchange is complete?

use crate::body::Framing;
use crate::request::Request;
use crate::{head, ResponseHead, Version};

/// True when, after the whole response to `req` was read with `framing`,
/// the connection may be kept for the next request.
///
/// Not reusable: a close-delimited body (the close ends it); a request
/// sent as HTTP/1.0 or with a user `Connection: close` (we asked to close,
/// and we never send `Connection: keep-alive`); an HTTP/1.0 response
/// without `Connection: keep-alive`; a `Connection: close` in the response;
/// a 101 (the connection changed protocol).
///
/// ```text
/// Connection        = #connection-option     ; RFC 9110 7.6.1
/// connection-option = token
/// ```
pub fn reusable(req: &Request, head: &ResponseHead, framing: Framing) -> bool {
    if framing == Framing::CloseDelimited || head.status == 101 || req.http10 {
        return false;
    }
    let user_close = req
        .headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case("connection") && !h.remove)
        .any(|h| h.value.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")));
    if user_close {
        return false;
    }
    let has = |token: &[u8]| {
        head.headers_named("connection")
            .flat_map(|v| v.split(|&b| b == b','))
            .any(|t| head::trim_ows(t).eq_ignore_ascii_case(token))
    };
    match head.version {
        Version::Http11 => !has(b"close"),
        Version::Http10 => has(b"keep-alive") && !has(b"close"),
    }
}
