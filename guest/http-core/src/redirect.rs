//! Redirects: which statuses are followed, and the next request (RFC 9110 15.4).

use url::Url;

use crate::request::{target_of, Request, UserHeader};
use crate::Error;

/// True for the statuses that are followed: 301, 302, 303, 307, 308.
pub fn is_redirect(status: u16) -> bool {
    matches!(status, 301 | 302 | 303 | 307 | 308)
}

/// The request to send after `status` with `location`, from `req`.
///
/// 301, 302 and 303 turn a POST into a GET without a body (303: every
/// method but HEAD becomes GET), dropping Content-Type and Content-Length
/// user headers; 307 and 308 keep the method and body. A relative
/// Location is resolved against `req.url`. On a cross-origin hop (scheme,
/// host or port differ) Authorization and Cookie user headers, and
/// credentials in the URL, are dropped. Errors: [`Error::BadLocation`],
/// [`Error::RedirectScheme`].
///
/// ```text
/// Location = URI-reference      ; RFC 9110 10.2.2
/// ```
pub fn next_request(req: &Request, status: u16, location: &[u8]) -> Result<Request, Error> {
    let location = std::str::from_utf8(location)
        .map_err(|_| Error::BadLocation(format!("not utf-8: {:?}", String::from_utf8_lossy(location))))?
        .trim_matches([' ', '\t']);
    if location.is_empty() {
        return Err(Error::BadLocation("empty location".to_string()));
    }
    let base = Url::parse(&req.url).map_err(|e| Error::InvalidUrl(format!("{e}: {:?}", req.url)))?;
    let mut url = base
        .join(location)
        .map_err(|e| Error::BadLocation(format!("{e}: {location:?}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(Error::RedirectScheme(url.scheme().to_string()));
    }
    let to = target_of(&url).map_err(|e| Error::BadLocation(format!("{e}")))?;
    let cross_origin = target_of(&base).map_or(true, |from| from.origin() != to.origin());

    let becomes_get = match status {
        301 | 302 => req.method == "POST",
        303 => req.method != "HEAD",
        _ => false,
    };
    let mut next = req.clone();
    if becomes_get {
        next.method = "GET".to_string();
        next.body = None;
        next.headers
            .retain(|h| !is_named(h, &["Content-Type", "Content-Length"]));
    }
    if cross_origin {
        next.headers.retain(|h| !is_named(h, &["Authorization", "Cookie"]));
        // Both always succeed on an http(s) URL, which has a host.
        let _ = url.set_username("");
        let _ = url.set_password(None);
    }
    next.url = url.into();
    Ok(next)
}

fn is_named(h: &UserHeader, names: &[&str]) -> bool {
    names.iter().any(|n| h.name.eq_ignore_ascii_case(n))
}
