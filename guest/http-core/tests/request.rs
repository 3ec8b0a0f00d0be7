//! Request encoding: the exact bytes for each feature, and every rejection.

use wfetch_http_core::request::{
    build_request, build_request_and_url, canonical_target, effective_url, parse_target, Request, Scheme, UserHeader,
    USER_AGENT,
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

/// The url crate's answer for `url`, to hold [`canonical_target`] to it:
/// whenever the fast path takes a URL, the url crate must parse it, give
/// it back unchanged, and agree on the target; and the request built
/// either way must be the same.
fn check_canonical(url: &str) -> bool {
    let Some(fast) = canonical_target(url) else {
        return false;
    };
    let slow = parse_target(url).unwrap_or_else(|e| panic!("fast path took {url:?}, the url crate refuses it: {e}"));
    assert_eq!(fast, slow, "{url:?}");
    assert_eq!(effective_url(url), url, "the url crate rewrites {url:?}");
    let (_, bytes, effective) = build_request_and_url(&get(url)).unwrap();
    assert_eq!(effective, url);
    let head = String::from_utf8(bytes).unwrap();
    assert!(head.starts_with(&format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\n",
        slow.path_and_query, slow.authority
    )));
    true
}

#[test]
fn canonical_urls_skip_the_url_parser_and_agree_with_it() {
    // Typical URLs, as the host hands them over: all take the fast path.
    for url in [
        "http://127.0.0.1:8080/small/7.txt",
        "https://example.com/",
        "https://www.example.co.uk/a/b/c.html?x=1&y=%20z",
        "http://10.0.0.255:65535/~user/file.tar.gz",
        "http://a-b.c-d.example/path;p=1/@x:y/!$&()*+,=",
        "https://h:8443/?q?r/s",
        "http://1.2.3.com/x",
        "http://0xg/",
        "http://h/a'b",
        "http://h//double//slashes/",
    ] {
        assert!(check_canonical(url), "{url:?} should take the fast path");
    }
    // What the url crate would rewrite, check or refuse: never the fast path.
    for url in [
        "HTTP://h/",
        "http://H/",
        "http://h",
        "http://h?q",
        "http://h:80/",
        "https://h:443/",
        "http://h:080/",
        "http://h:0/",
        "http://h:/",
        "http://h:65536/",
        "http://u@h/",
        "http://u:p@h/",
        "http://[::1]/",
        "http://1.2.3/",
        "http://1.2.3.4.5/",
        "http://01.2.3.4/",
        "http://256.0.0.1/",
        "http://0x7f.0.0.1/",
        "http://a.0x1f/",
        "http://a.09/",
        "http://4294967295/",
        "http://xn--bcher-kva.example/",
        "http://a..b/",
        "http://a./",
        "http://.a/",
        "http://exa_mple.com/",
        "http://b\u{fc}cher.example/",
        "http://h/a/./b",
        "http://h/a/../b",
        "http://h/..",
        "http://h/%2e/x",
        "http://h/%2E%2e/x",
        "http://h/a%zz",
        "http://h/a b",
        "http://h/a\tb",
        "http://h/a\\b",
        "http://h/a|b",
        "http://h/a{b}",
        "http://h/\u{fc}",
        "http://h/?a'b",
        "http://h/?a b",
        "http://h/#f",
        "http://h/?q#f",
        "ftp://h/",
    ] {
        assert!(!check_canonical(url), "{url:?} must be left to the url crate");
    }
}

#[test]
fn canonical_target_agrees_with_the_url_crate_on_generated_urls() {
    let schemes = ["http://", "https://", "HTTP://", "http:/", "ftp://", ""];
    let userinfo = ["", "u@", "u:p@"];
    let hosts = [
        "example.com",
        "a",
        "127.0.0.1",
        "0.0.0.0",
        "255.255.255.255",
        "256.1.1.1",
        "1.2.3",
        "1.2.3.4.5",
        "01.2.3.4",
        "0x7f.0.0.1",
        "0x7f",
        "0x",
        "0xg",
        "1.2.3.com",
        "a-.b",
        "-a",
        "ab--cd",
        "xn--abc",
        "xn--bcher-kva",
        "Example.com",
        "exa_mple.com",
        "a..b",
        ".a",
        "a.",
        "[::1]",
        "ex%41mple.com",
        "a b",
        "\u{fc}mlaut.de",
        "1e2.com",
        "a.0x",
        "a.09",
        "a.1",
        "0",
        "4294967295",
        "",
    ];
    let ports = [
        "", ":80", ":443", ":8080", ":0", ":080", ":65535", ":65536", ":", ":99999", ":1a",
    ];
    let paths = [
        "",
        "/",
        "/a/b",
        "/a/./b",
        "/a/../b",
        "/.",
        "/..",
        "/%2e/",
        "/%2E%2e",
        "/a%20b",
        "/a b",
        "/a%zz",
        "/a%2",
        "/a'b",
        "/~user/x.txt",
        "//x",
        "/a\\b",
        "/a|b",
        "/a{b}",
        "/\u{fc}",
        "/a\tb",
        "/@:!$&()*+,;=",
        "/.a/b.",
    ];
    let tails = ["", "?", "?a=b", "?a'b", "?a b", "?x?y", "?%2e", "?a#f", "#", "#frag"];
    let mut taken = 0;
    let mut n = 0usize;
    for scheme in schemes {
        for host in hosts {
            for port in ports {
                for path in paths {
                    n += 1;
                    let url = format!(
                        "{scheme}{}{host}{port}{path}{}",
                        userinfo[n % 3],
                        tails[n % tails.len()]
                    );
                    taken += usize::from(check_canonical(&url));
                }
            }
        }
    }
    // Single-byte changes of canonical URLs: every printable ASCII byte
    // at every position.
    for base in ["http://127.0.0.1:8080/a/b.txt?x=1", "https://a.example/p"] {
        for i in 0..base.len() {
            for c in 0x20u8..0x7f {
                let mut url = base.as_bytes().to_vec();
                url[i] = c;
                taken += usize::from(check_canonical(std::str::from_utf8(&url).unwrap()));
            }
        }
    }
    assert!(taken > 1000, "the fast path took only {taken} URLs");
}
