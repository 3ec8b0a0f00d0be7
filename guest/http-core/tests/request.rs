//! Request encoding: the exact bytes for each feature, and every rejection.

use wfetch_http_core::request::{
    build_request, parse_target, Request, Scheme, UserHeader, USER_AGENT,
};
use wfetch_http_core::Error;

/// Whether an error is the expected one.
type Check = fn(&Error) -> bool;

fn req(method: &str, url: &str) -> Request {
    Request {
        method: method.into(),
        url: url.into(),
        ..Default::default()
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

/// `head!(request-line, header lines...)`: a head with CRLF line endings.
macro_rules! head {
    ($($line:expr),* $(,)?) => {{
        let mut s = String::new();
        $( s.push_str(&$line); s.push_str("\r\n"); )*
        s.push_str("\r\n");
        s
    }};
}

#[test]
fn request_bytes() {
    let ua = format!("User-Agent: {USER_AGENT}");
    let cases: Vec<(&str, Request, String)> = vec![
        (
            "plain get",
            req("GET", "http://example.com"),
            head!("GET / HTTP/1.1", "Host: example.com", ua, "Accept: */*"),
        ),
        (
            "method, path, query, fragment dropped",
            req("DELETE", "http://example.com/a/b?x=1&y=%20#frag"),
            head!(
                "DELETE /a/b?x=1&y=%20 HTTP/1.1",
                "Host: example.com",
                ua,
                "Accept: */*"
            ),
        ),
        (
            "path and query percent-encoded by the url crate",
            req("GET", "http://example.com/a b?q=\u{fc}"),
            head!(
                "GET /a%20b?q=%C3%BC HTTP/1.1",
                "Host: example.com",
                ua,
                "Accept: */*"
            ),
        ),
        (
            "non-default port in host",
            req("GET", "http://example.com:8080/"),
            head!(
                "GET / HTTP/1.1",
                "Host: example.com:8080",
                ua,
                "Accept: */*"
            ),
        ),
        (
            "default http port",
            req("GET", "http://example.com:80/"),
            head!("GET / HTTP/1.1", "Host: example.com", ua, "Accept: */*"),
        ),
        (
            "default https port",
            req("GET", "https://example.com:443/"),
            head!("GET / HTTP/1.1", "Host: example.com", ua, "Accept: */*"),
        ),
        (
            "port 80 on https",
            req("GET", "https://example.com:80/"),
            head!("GET / HTTP/1.1", "Host: example.com:80", ua, "Accept: */*"),
        ),
        (
            "ipv6",
            req("GET", "http://[::1]/x"),
            head!("GET /x HTTP/1.1", "Host: [::1]", ua, "Accept: */*"),
        ),
        (
            "ipv6 with port",
            req("GET", "http://[2001:db8::1]:8080/"),
            head!(
                "GET / HTTP/1.1",
                "Host: [2001:db8::1]:8080",
                ua,
                "Accept: */*"
            ),
        ),
        (
            "user headers replace defaults at their position",
            Request {
                headers: vec![
                    hdr("Accept", "text/html"),
                    hdr("X-A", "1"),
                    hdr("user-agent", "me/1"),
                ],
                ..req("GET", "http://h/")
            },
            head!(
                "GET / HTTP/1.1",
                "Host: h",
                "Accept: text/html",
                "X-A: 1",
                "user-agent: me/1"
            ),
        ),
        (
            "replace host",
            Request {
                headers: vec![hdr("host", "other")],
                ..req("GET", "http://h/")
            },
            head!("GET / HTTP/1.1", ua, "Accept: */*", "host: other"),
        ),
        (
            "remove defaults",
            Request {
                headers: vec![
                    rm("User-Agent"),
                    rm("accept"),
                    rm("Host"),
                    rm("X-Not-A-Default"),
                ],
                ..req("GET", "http://h/")
            },
            head!("GET / HTTP/1.1"),
        ),
        (
            "empty value",
            Request {
                headers: vec![hdr("X-Empty", "")],
                ..req("GET", "http://h/")
            },
            head!("GET / HTTP/1.1", "Host: h", ua, "Accept: */*", "X-Empty:"),
        ),
        (
            "repeated user headers all sent",
            Request {
                headers: vec![hdr("X", "1"), hdr("X", "2")],
                ..req("GET", "http://h/")
            },
            head!(
                "GET / HTTP/1.1",
                "Host: h",
                ua,
                "Accept: */*",
                "X: 1",
                "X: 2"
            ),
        ),
        (
            "body with content-length",
            Request {
                body: Some(b"hello".to_vec()),
                headers: vec![hdr("Content-Type", "text/plain")],
                ..req("POST", "http://h/p")
            },
            head!(
                "POST /p HTTP/1.1",
                "Host: h",
                ua,
                "Accept: */*",
                "Content-Type: text/plain",
                "Content-Length: 5"
            ) + "hello",
        ),
        (
            "empty body",
            Request {
                body: Some(vec![]),
                ..req("PUT", "http://h/")
            },
            head!(
                "PUT / HTTP/1.1",
                "Host: h",
                ua,
                "Accept: */*",
                "Content-Length: 0"
            ),
        ),
        (
            "user content-length kept",
            Request {
                body: Some(b"ab".to_vec()),
                headers: vec![hdr("content-length", "2"), hdr("X", "y")],
                ..req("POST", "http://h/")
            },
            head!(
                "POST / HTTP/1.1",
                "Host: h",
                ua,
                "Accept: */*",
                "content-length: 2",
                "X: y"
            ) + "ab",
        ),
        (
            "http/1.0",
            Request {
                http10: true,
                ..req("GET", "http://h/")
            },
            head!("GET / HTTP/1.0", "Host: h", ua, "Accept: */*"),
        ),
        (
            "compressed",
            Request {
                compressed: true,
                ..req("GET", "http://h/")
            },
            head!(
                "GET / HTTP/1.1",
                "Host: h",
                ua,
                "Accept: */*",
                "Accept-Encoding: gzip, deflate, br"
            ),
        ),
        (
            "compressed, encoding replaced",
            Request {
                compressed: true,
                headers: vec![hdr("Accept-Encoding", "gzip")],
                ..req("GET", "http://h/")
            },
            head!(
                "GET / HTTP/1.1",
                "Host: h",
                ua,
                "Accept: */*",
                "Accept-Encoding: gzip"
            ),
        ),
        (
            "basic auth from url, percent-decoded",
            req("GET", "http://user:p%40ss@h/"),
            head!(
                "GET / HTTP/1.1",
                "Host: h",
                "Authorization: Basic dXNlcjpwQHNz",
                ua,
                "Accept: */*"
            ),
        ),
        (
            "user only",
            req("GET", "http://user@h/"),
            head!(
                "GET / HTTP/1.1",
                "Host: h",
                "Authorization: Basic dXNlcjo=",
                ua,
                "Accept: */*"
            ),
        ),
        (
            "password only",
            req("GET", "http://:secret@h/"),
            head!(
                "GET / HTTP/1.1",
                "Host: h",
                "Authorization: Basic OnNlY3JldA==",
                ua,
                "Accept: */*"
            ),
        ),
        (
            "utf-8 user",
            req("GET", "http://%C3%BC:x@h/"),
            head!(
                "GET / HTTP/1.1",
                "Host: h",
                "Authorization: Basic w7w6eA==",
                ua,
                "Accept: */*"
            ),
        ),
        (
            "user authorization wins over url",
            Request {
                headers: vec![hdr("Authorization", "Bearer t")],
                ..req("GET", "http://u:p@h/")
            },
            head!(
                "GET / HTTP/1.1",
                "Host: h",
                ua,
                "Accept: */*",
                "Authorization: Bearer t"
            ),
        ),
        (
            "url authorization removed",
            Request {
                headers: vec![rm("Authorization")],
                ..req("GET", "http://u:p@h/")
            },
            head!("GET / HTTP/1.1", "Host: h", ua, "Accept: */*"),
        ),
        (
            "token method",
            req("M-SEARCH", "http://h/"),
            head!("M-SEARCH / HTTP/1.1", "Host: h", ua, "Accept: */*"),
        ),
    ];
    for (name, request, want) in cases {
        let (_, bytes) = build_request(&request).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(String::from_utf8_lossy(&bytes), want, "{name}");
    }
}

#[test]
fn request_errors() {
    let with = |h: UserHeader| Request {
        headers: vec![h],
        ..req("GET", "http://h/")
    };
    let cases: Vec<(&str, Request, Check)> = vec![
        ("space in method", req("GE T", "http://h/"), |e| {
            matches!(e, Error::InvalidMethod(_))
        }),
        ("empty method", req("", "http://h/"), |e| {
            matches!(e, Error::InvalidMethod(_))
        }),
        ("crlf in method", req("GET\r\n", "http://h/"), |e| {
            matches!(e, Error::InvalidMethod(_))
        }),
        ("colon in method", req("A:B", "http://h/"), |e| {
            matches!(e, Error::InvalidMethod(_))
        }),
        ("non-ascii method", req("G\u{e9}T", "http://h/"), |e| {
            matches!(e, Error::InvalidMethod(_))
        }),
        ("space in name", with(hdr("X Y", "v")), |e| {
            matches!(e, Error::InvalidHeader(_))
        }),
        ("colon in name", with(hdr("X:Y", "v")), |e| {
            matches!(e, Error::InvalidHeader(_))
        }),
        ("empty name", with(hdr("", "v")), |e| {
            matches!(e, Error::InvalidHeader(_))
        }),
        ("cr in name", with(hdr("X\r", "v")), |e| {
            matches!(e, Error::InvalidHeader(_))
        }),
        ("lf in name", with(hdr("X\nY", "v")), |e| {
            matches!(e, Error::InvalidHeader(_))
        }),
        ("nul in name", with(hdr("X\0", "v")), |e| {
            matches!(e, Error::InvalidHeader(_))
        }),
        ("bad name on remove", with(rm("X Y")), |e| {
            matches!(e, Error::InvalidHeader(_))
        }),
        ("cr in value", with(hdr("X", "a\rb")), |e| {
            matches!(e, Error::InvalidHeader(_))
        }),
        ("lf in value", with(hdr("X", "a\nInjected: 1")), |e| {
            matches!(e, Error::InvalidHeader(_))
        }),
        ("nul in value", with(hdr("X", "a\0b")), |e| {
            matches!(e, Error::InvalidHeader(_))
        }),
        ("not a url", req("GET", "not a url"), |e| {
            matches!(e, Error::InvalidUrl(_))
        }),
        ("relative url", req("GET", "/path"), |e| {
            matches!(e, Error::InvalidUrl(_))
        }),
        ("no host", req("GET", "http://"), |e| {
            matches!(e, Error::InvalidUrl(_))
        }),
        ("port 0", req("GET", "http://h:0/"), |e| {
            matches!(e, Error::InvalidUrl(_))
        }),
        ("port too large", req("GET", "http://h:65536/"), |e| {
            matches!(e, Error::InvalidUrl(_))
        }),
        (
            "ftp",
            req("GET", "ftp://h/"),
            |e| matches!(e, Error::UnsupportedScheme(s) if s == "ftp"),
        ),
        ("file", req("GET", "file:///etc/passwd"), |e| {
            matches!(e, Error::UnsupportedScheme(_))
        }),
    ];
    for (name, request, check) in cases {
        match build_request(&request) {
            Err(e) => assert!(check(&e), "{name}: unexpected error {e:?}"),
            Ok((_, bytes)) => panic!("{name}: accepted as {:?}", String::from_utf8_lossy(&bytes)),
        }
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
        (
            "https://h:8443?q",
            Scheme::Https,
            "h",
            8443,
            "/?q",
            "h:8443",
        ),
        ("http://[::1]:81/", Scheme::Http, "::1", 81, "/", "[::1]:81"),
        (
            "http://127.0.0.1/",
            Scheme::Http,
            "127.0.0.1",
            80,
            "/",
            "127.0.0.1",
        ),
        ("http://u:p@h/x", Scheme::Http, "h", 80, "/x", "h"),
    ];
    for (url, scheme, host, port, pq, authority) in cases {
        let t = parse_target(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(
            (
                t.scheme,
                t.host.as_str(),
                t.port,
                t.path_and_query.as_str(),
                t.authority.as_str()
            ),
            (scheme, host, port, pq, authority),
            "{url}"
        );
        assert_eq!(t.origin(), (scheme, host, port));
    }
}

#[test]
fn build_returns_target() {
    let (t, _) = build_request(&req("GET", "https://h:444/p")).unwrap();
    assert_eq!(t.origin(), (Scheme::Https, "h", 444));
}
