//! Requests: whatever the fields, either an error or a head whose every
//! line ends in CRLF with no bare CR, LF or NUL (no header injection); and
//! a URL that the fast path (`canonical_target`) takes is one the url
//! crate parses to the same target and gives back unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wfetch_http_core::redirect::next_request;
use wfetch_http_core::request::{build_request, canonical_target, effective_url, parse_target, Request, UserHeader};

fuzz_target!(|data: &[u8]| {
    // Fields separated by 0x01: method, url, header name, header value, body.
    let text = String::from_utf8_lossy(data);
    let mut fields = text.split('\u{1}');
    let mut next = || fields.next().unwrap_or_default().to_string();
    let (method, url, name, value, body) = (next(), next(), next(), next(), next());
    let flags = data.first().copied().unwrap_or_default();
    if let Some(target) = canonical_target(&url) {
        assert_eq!(parse_target(&url).ok(), Some(target), "{url:?}");
        assert_eq!(effective_url(&url), url);
    }
    let req = Request {
        method,
        url,
        headers: vec![UserHeader {
            name,
            value,
            remove: flags & 1 != 0,
        }],
        body: (flags & 2 != 0).then(|| body.into_bytes()),
        http10: flags & 4 != 0,
        compressed: flags & 8 != 0,
    };
    if let Ok((target, bytes)) = build_request(&req) {
        assert!(target.path_and_query.starts_with('/'));
        let end = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("blank line");
        let head = &bytes[..end + 2];
        assert!(!head.contains(&0));
        for (i, &b) in head.iter().enumerate() {
            match b {
                b'\r' => assert_eq!(head.get(i + 1), Some(&b'\n')),
                b'\n' => assert_eq!(head.get(i.wrapping_sub(1)), Some(&b'\r')),
                _ => {}
            }
        }
        assert_eq!(&bytes[end + 4..], req.body.as_deref().unwrap_or_default());
        let _ = next_request(&req, 302, data);
    }
});
