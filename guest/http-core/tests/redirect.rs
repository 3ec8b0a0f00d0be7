//! Redirects: which statuses, method and body rewriting, Location
//! resolution, and what a cross-origin hop drops.

use wfetch_http_core::redirect::{is_redirect, next_request};
use wfetch_http_core::request::{Request, UserHeader};
use wfetch_http_core::Error;

/// Whether an error is the expected one.
type Check = fn(&Error) -> bool;

fn hdr(name: &str, value: &str) -> UserHeader {
    UserHeader {
        name: name.into(),
        value: value.into(),
        remove: false,
    }
}

fn names(r: &Request) -> Vec<&str> {
    r.headers.iter().map(|h| h.name.as_str()).collect()
}

fn post() -> Request {
    Request {
        method: "POST".into(),
        url: "http://a.example/form".into(),
        headers: vec![
            hdr("Content-Type", "text/plain"),
            hdr("X-Keep", "1"),
            hdr("content-length", "4"),
        ],
        body: Some(b"data".to_vec()),
        http10: true,
        compressed: true,
    }
}

#[test]
fn statuses() {
    for s in [301, 302, 303, 307, 308] {
        assert!(is_redirect(s), "{s}");
    }
    for s in [200, 300, 304, 305, 306, 309, 399, 404] {
        assert!(!is_redirect(s), "{s}");
    }
}

#[test]
fn method_and_body() {
    let all = ["Content-Type", "X-Keep", "content-length"];
    // (status, method, new method, body kept)
    let cases = [
        (301, "POST", "GET", false),
        (302, "POST", "GET", false),
        (303, "POST", "GET", false),
        (307, "POST", "POST", true),
        (308, "POST", "POST", true),
        (301, "PUT", "PUT", true),
        (302, "DELETE", "DELETE", true),
        (303, "PUT", "GET", false),
        (303, "DELETE", "GET", false),
        (303, "HEAD", "HEAD", true),
        (307, "PUT", "PUT", true),
    ];
    for (status, method, want_method, body_kept) in cases {
        let req = Request {
            method: method.into(),
            ..post()
        };
        let next = next_request(&req, status, b"/next").unwrap();
        assert_eq!(next.method, want_method, "{status} {method}");
        assert_eq!(next.body.is_some(), body_kept, "{status} {method}");
        let want_headers: &[&str] = if body_kept { &all } else { &["X-Keep"] };
        assert_eq!(names(&next), want_headers, "{status} {method}");
        assert_eq!((next.http10, next.compressed), (true, true), "flags kept");
        assert_eq!(next.url, "http://a.example/next");
    }
}

#[test]
fn locations() {
    let base = Request {
        method: "GET".into(),
        url: "http://a.example/dir/page?q=1#frag".into(),
        ..Default::default()
    };
    let cases: &[(&[u8], &str)] = &[
        (b"/abs", "http://a.example/abs"),
        (b"rel", "http://a.example/dir/rel"),
        (b"../up", "http://a.example/up"),
        (b"?x=2", "http://a.example/dir/page?x=2"),
        (b"  /trimmed  ", "http://a.example/trimmed"),
        (b"//b.example/p", "http://b.example/p"),
        (b"https://b.example:8443/x#f", "https://b.example:8443/x#f"),
        (b"HTTP://B.EXAMPLE", "http://b.example/"),
        (b"/sp ace", "http://a.example/sp%20ace"),
    ];
    for &(location, want) in cases {
        let next = next_request(&base, 302, location).unwrap_or_else(|e| panic!("{location:?}: {e}"));
        assert_eq!(next.url, want, "{:?}", String::from_utf8_lossy(location));
    }
}

#[test]
fn credentials_across_origins() {
    let base = Request {
        method: "GET".into(),
        url: "http://user:pw@a.example/".into(),
        headers: vec![
            hdr("Authorization", "Bearer t"),
            hdr("cookie", "c=1"),
            hdr("X-Other", "1"),
        ],
        ..Default::default()
    };
    // (location, cross-origin, new url)
    let cases: &[(&[u8], bool, &str)] = &[
        (b"/same", false, "http://user:pw@a.example/same"),
        (b"http://a.example:80/same-port", false, "http://a.example/same-port"),
        (b"http://b.example/", true, "http://b.example/"),
        (b"https://a.example/", true, "https://a.example/"),
        (b"http://a.example:8080/", true, "http://a.example:8080/"),
        (b"http://u2:p2@b.example/", true, "http://b.example/"),
    ];
    for &(location, cross, want) in cases {
        let next = next_request(&base, 301, location).unwrap();
        let want_headers: &[&str] = if cross {
            &["X-Other"]
        } else {
            &["Authorization", "cookie", "X-Other"]
        };
        assert_eq!(names(&next), want_headers, "{:?}", String::from_utf8_lossy(location));
        assert_eq!(next.url, want, "{:?}", String::from_utf8_lossy(location));
    }
}

#[test]
fn bad_locations() {
    let base = Request {
        method: "GET".into(),
        url: "http://a.example/".into(),
        ..Default::default()
    };
    let cases: &[(&[u8], Check)] = &[
        (b"", |e| matches!(e, Error::BadLocation(_))),
        (b"  ", |e| matches!(e, Error::BadLocation(_))),
        (b"/caf\xe9", |e| matches!(e, Error::BadLocation(_))),
        (b"http://[::1", |e| matches!(e, Error::BadLocation(_))),
        (b"http://b.example:0/", |e| matches!(e, Error::BadLocation(_))),
        (b"http://b.example:99999/", |e| matches!(e, Error::BadLocation(_))),
        (
            b"ftp://b.example/",
            |e| matches!(e, Error::RedirectScheme(s) if s == "ftp"),
        ),
        (b"file:///etc/passwd", |e| matches!(e, Error::RedirectScheme(_))),
        (b"javascript:alert(1)", |e| matches!(e, Error::RedirectScheme(_))),
    ];
    for &(location, check) in cases {
        match next_request(&base, 302, location) {
            Err(e) => assert!(check(&e), "{:?}: unexpected {e:?}", String::from_utf8_lossy(location)),
            Ok(r) => panic!("{:?}: accepted as {}", String::from_utf8_lossy(location), r.url),
        }
    }
}
