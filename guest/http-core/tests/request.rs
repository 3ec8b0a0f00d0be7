//! Request encoding: the exact bytes for each feature, and every rejection.

use wfetch_http_core::request::{
    build_request, build_request_and_url, effective_url, parse_target, Request, Scheme, UserHeader, USER_AGENT,
};
use wfetch_http_core::Error;

fn get(url: &str) -> Request {
    Request {
        method: "GET".into(),
        url: url.into(),
        ..Default::default()
    }
}

fn with(method: &str, url: &str, headers: Vec<UserHeader>) -> Request {
    Request {
        method: method.into(),
        headers,
        ..get(url)
    }
}

fn hdr(name: &str, value: &str) -> UserHeader {
    UserHeader {
        name: name.into(),
        value: value.into(),
        remove: false,
    }
}

fn rm(name: &str) -> UserHeader {
    UserHeader {
        name: name.into(),
        value: String::new(),
        remove: true,
    }
}

/// Rows `name: request => [head lines] (+ body)?;`: the request must encode
/// to exactly those lines (CRLF-terminated), a blank line, and the body.
macro_rules! encodes {
    ($($name:literal: $req:expr => [$($line:expr),* $(,)?] $(+ $body:literal)?;)*) => {$({
        let mut want = String::new();
        $( want.push_str(&$line); want.push_str("\r\n"); )*
        want.push_str("\r\n");
        $( want.push_str($body); )?
        let (_, bytes) = build_request(&$req).unwrap_or_else(|e| panic!("{}: {e}", $name));
        assert_eq!(String::from_utf8_lossy(&bytes), want, "{}", $name);
    })*};
}

/// Rows `name: request => error pattern (if guard)?,`.
macro_rules! rejects {
    ($($name:literal: $req:expr => $err:pat $(if $guard:expr)?,)*) => {$(
        match build_request(&$req) {
            Err($err) $(if $guard)? => {}
            other => panic!("{}: got {other:?}", $name),
        }
    )*};
}

#[test]
fn request_bytes() {
    let ua = format!("User-Agent: {USER_AGENT}");
    let body = |method: &str, body: &[u8], headers| Request {
        body: Some(body.to_vec()),
        ..with(method, "http://h/p", headers)
    };
    encodes! {
        "plain get": get("http://example.com") => ["GET / HTTP/1.1", "Host: example.com", ua, "Accept: */*"];
        "method, query, fragment dropped": with("DELETE", "http://h/a/b?x=1&y=%20#frag", vec![])
            => ["DELETE /a/b?x=1&y=%20 HTTP/1.1", "Host: h", ua, "Accept: */*"];
        "percent-encoded by the url crate": get("http://h/a%20b?q=\u{fc}") => ["GET /a%20b?q=%C3%BC HTTP/1.1", "Host: h", ua, "Accept: */*"];
        "port in host": get("http://example.com:8080/") => ["GET / HTTP/1.1", "Host: example.com:8080", ua, "Accept: */*"];
        "default http port": get("http://example.com:80/") => ["GET / HTTP/1.1", "Host: example.com", ua, "Accept: */*"];
        "default https port": get("https://example.com:443/") => ["GET / HTTP/1.1", "Host: example.com", ua, "Accept: */*"];
        "port 80 on https": get("https://example.com:80/") => ["GET / HTTP/1.1", "Host: example.com:80", ua, "Accept: */*"];
        "ipv6": get("http://[::1]/x") => ["GET /x HTTP/1.1", "Host: [::1]", ua, "Accept: */*"];
        "ipv6 with port": get("http://[2001:db8::1]:8080/") => ["GET / HTTP/1.1", "Host: [2001:db8::1]:8080", ua, "Accept: */*"];
        "user headers replace defaults at their position":
            with("GET", "http://h/", vec![hdr("Accept", "text/html"), hdr("X-A", "1"), hdr("user-agent", "me/1")])
            => ["GET / HTTP/1.1", "Host: h", "Accept: text/html", "X-A: 1", "user-agent: me/1"];
        "replace host": with("GET", "http://h/", vec![hdr("host", "other")]) => ["GET / HTTP/1.1", ua, "Accept: */*", "host: other"];
        "remove defaults": with("GET", "http://h/", vec![rm("User-Agent"), rm("accept"), rm("Host"), rm("X-Not-A-Default")])
            => ["GET / HTTP/1.1"];
        "empty value": with("GET", "http://h/", vec![hdr("X-Empty", "")]) => ["GET / HTTP/1.1", "Host: h", ua, "Accept: */*", "X-Empty:"];
        "repeated user headers": with("GET", "http://h/", vec![hdr("X", "1"), hdr("X", "2")])
            => ["GET / HTTP/1.1", "Host: h", ua, "Accept: */*", "X: 1", "X: 2"];
        "body with content-length": body("POST", b"hello", vec![hdr("Content-Type", "text/plain")])
            => ["POST /p HTTP/1.1", "Host: h", ua, "Accept: */*", "Content-Type: text/plain", "Content-Length: 5"] + "hello";
        "empty body": body("PUT", b"", vec![]) => ["PUT /p HTTP/1.1", "Host: h", ua, "Accept: */*", "Content-Length: 0"];
        "user content-length kept": body("POST", b"ab", vec![hdr("content-length", "2"), hdr("X", "y")])
            => ["POST /p HTTP/1.1", "Host: h", ua, "Accept: */*", "content-length: 2", "X: y"] + "ab";
        "content-length removed": body("POST", b"ab", vec![rm("Content-Length")]) => ["POST /p HTTP/1.1", "Host: h", ua, "Accept: */*"] + "ab";
        "http/1.0": Request { http10: true, ..get("http://h/") } => ["GET / HTTP/1.0", "Host: h", ua, "Accept: */*"];
        "compressed": Request { compressed: true, ..get("http://h/") }
            => ["GET / HTTP/1.1", "Host: h", ua, "Accept: */*", "Accept-Encoding: gzip, deflate, br"];
        "compressed, encoding replaced": Request { compressed: true, ..with("GET", "http://h/", vec![hdr("Accept-Encoding", "gzip")]) }
            => ["GET / HTTP/1.1", "Host: h", ua, "Accept: */*", "Accept-Encoding: gzip"];
        "basic auth, percent-decoded": get("http://user:p%40ss@h/")
            => ["GET / HTTP/1.1", "Host: h", "Authorization: Basic dXNlcjpwQHNz", ua, "Accept: */*"];
        "user only": get("http://user@h/") => ["GET / HTTP/1.1", "Host: h", "Authorization: Basic dXNlcjo=", ua, "Accept: */*"];
        "password only": get("http://:secret@h/") => ["GET / HTTP/1.1", "Host: h", "Authorization: Basic OnNlY3JldA==", ua, "Accept: */*"];
        "utf-8 user": get("http://%C3%BC:x@h/") => ["GET / HTTP/1.1", "Host: h", "Authorization: Basic w7w6eA==", ua, "Accept: */*"];
        "user authorization wins": with("GET", "http://u:p@h/", vec![hdr("Authorization", "Bearer t")])
            => ["GET / HTTP/1.1", "Host: h", ua, "Accept: */*", "Authorization: Bearer t"];
        "url authorization removed": with("GET", "http://u:p@h/", vec![rm("authorization")]) => ["GET / HTTP/1.1", "Host: h", ua, "Accept: */*"];
        "token method": with("M-SEARCH", "http://h/", vec![]) => ["M-SEARCH / HTTP/1.1", "Host: h", ua, "Accept: */*"];
    }
}

#[test]
fn request_errors() {
    let one = |h| with("GET", "http://h/", vec![h]);
    rejects! {
        "space in method": with("GE T", "http://h/", vec![]) => Error::InvalidMethod(_),
        "empty method": with("", "http://h/", vec![]) => Error::InvalidMethod(_),
        "crlf in method": with("GET\r\n", "http://h/", vec![]) => Error::InvalidMethod(_),
        "colon in method": with("A:B", "http://h/", vec![]) => Error::InvalidMethod(_),
        "non-ascii method": with("G\u{e9}T", "http://h/", vec![]) => Error::InvalidMethod(_),
        "space in name": one(hdr("X Y", "v")) => Error::InvalidHeader(_),
        "colon in name": one(hdr("X:Y", "v")) => Error::InvalidHeader(_),
        "empty name": one(hdr("", "v")) => Error::InvalidHeader(_),
        "cr in name": one(hdr("X\r", "v")) => Error::InvalidHeader(_),
        "lf in name": one(hdr("X\nY", "v")) => Error::InvalidHeader(_),
        "nul in name": one(hdr("X\0", "v")) => Error::InvalidHeader(_),
        "bad name on remove": one(rm("X Y")) => Error::InvalidHeader(_),
        "cr in value": one(hdr("X", "a\rb")) => Error::InvalidHeader(_),
        "lf in value": one(hdr("X", "a\nInjected: 1")) => Error::InvalidHeader(_),
        "nul in value": one(hdr("X", "a\0b")) => Error::InvalidHeader(_),
        "not a url": get("not a url") => Error::InvalidUrl(_),
        "relative url": get("/path") => Error::InvalidUrl(_),
        "no host": get("http://") => Error::InvalidUrl(_),
        "port 0": get("http://h:0/") => Error::InvalidUrl(_),
        "port too large": get("http://h:65536/") => Error::InvalidUrl(_),
        "ftp": get("ftp://h/") => Error::UnsupportedScheme(s) if s == "ftp",
        "file": get("file:///etc/passwd") => Error::UnsupportedScheme(_),
    }
}

#[test]
fn targets() {
    let cases = [
        (
            "http://Example.COM/a?b#c",
            Scheme::Http,
            "example.com",
            80,
            "/a?b",
            "example.com",
        ),
        ("https://h", Scheme::Https, "h", 443, "/", "h"),
        ("https://h:8443?q", Scheme::Https, "h", 8443, "/?q", "h:8443"),
        ("http://[::1]:81/", Scheme::Http, "::1", 81, "/", "[::1]:81"),
        ("http://127.0.0.1/", Scheme::Http, "127.0.0.1", 80, "/", "127.0.0.1"),
        ("http://u:p@h/x", Scheme::Http, "h", 80, "/x", "h"),
    ];
    for (url, scheme, host, port, pq, authority) in cases {
        let t = parse_target(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        let got = (
            t.scheme,
            t.host.as_str(),
            t.port,
            t.path_and_query.as_str(),
            t.authority.as_str(),
        );
        assert_eq!(got, (scheme, host, port, pq, authority), "{url}");
        assert_eq!(t.origin(), (scheme, host, port));
    }
    let (t, _) = build_request(&get("https://h:444/p")).unwrap();
    assert_eq!(t.origin(), (Scheme::Https, "h", 444));
}

#[test]
fn control_characters_and_spaces_in_urls_are_refused() {
    for url in [
        "http://h/a\r\nX-Injected: 1",
        "http://h/a\nb",
        "http://h/a\tb",
        "http://h/a b",
        "http://h/\u{0}",
        "http://h/\u{7f}",
    ] {
        match wfetch_http_core::request::parse_target(url) {
            Err(wfetch_http_core::Error::InvalidUrl(m)) => assert!(m.contains("percent-encoded"), "{m}"),
            other => panic!("{url:?}: {other:?}"),
        }
    }
}

#[test]
fn the_url_from_building_a_request_is_the_effective_url() {
    for (url, effective) in [
        ("HTTP://Example.COM", "http://example.com/"),
        ("http://h:80/a/../b?q#frag", "http://h/b?q#frag"),
        ("https://h:443", "https://h/"),
        ("http://[::1]:8080/x", "http://[::1]:8080/x"),
        ("http://bücher.example/", "http://xn--bcher-kva.example/"),
    ] {
        let (_, bytes, got) = build_request_and_url(&get(url)).unwrap();
        assert_eq!(got, effective, "{url}");
        assert_eq!(got, effective_url(url), "{url}");
        assert_eq!(bytes, build_request(&get(url)).unwrap().1, "{url}");
    }
}
