//! Response head parsing: valid heads (and all their prefixes), every
//! malformed case, and single header lines.

use wfetch_http_core::head::{parse_header_line, parse_response_head, MAX_HEADERS};
use wfetch_http_core::{Error, Header, Version};

fn h(name: &str, value: &[u8]) -> Header {
    Header {
        name: name.into(),
        value: value.to_vec(),
    }
}

/// (head, version, status, reason, headers)
type Case = (&'static [u8], Version, u16, &'static str, Vec<Header>);

/// Rows `head => version status reason [name: value, ...];`.
macro_rules! heads {
    ($($input:literal => $version:ident $status:literal $reason:literal [$($n:literal: $v:literal),*];)*) => {
        vec![$(($input as &[u8], Version::$version, $status, $reason, vec![$(h($n, $v)),*])),*]
    };
}

fn valid_cases() -> Vec<Case> {
    heads! {
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX: y\r\n\r\n" => Http11 200 "OK" ["Content-Type": b"text/plain", "X": b"y"];
        b"HTTP/1.0 404 Not Found\nA: b\n\n" => Http10 404 "Not Found" ["A": b"b"];
        b"HTTP/1.1 204\r\n\r\n" => Http11 204 "" [];
        b"HTTP/1.1 204 \r\n\r\n" => Http11 204 "" [];
        b"HTTP/1.1 999 Odd  Reason\t\r\n\r\n" => Http11 999 "Odd  Reason\t" [];
        b"HTTP/1.1 100 Continue\r\n\r\n" => Http11 100 "Continue" [];
        b"HTTP/1.1 200 OK\r\nX: a\r\n  b\r\n\tc \r\nY: d\r\n\r\n" => Http11 200 "OK" ["X": b"a b c", "Y": b"d"];
        b"HTTP/1.1 200 OK\r\nX:\r\n more\r\n\r\n" => Http11 200 "OK" ["X": b"more"];
        b"HTTP/1.1 200 OK\r\nX:   v  \t\r\nEmpty:\r\nTight:v\r\n\r\n" => Http11 200 "OK" ["X": b"v", "Empty": b"", "Tight": b"v"];
        b"HTTP/1.1 200 OK\r\nSet-Cookie: a=1\r\nset-cookie: b=2\r\n\r\n" => Http11 200 "OK" ["Set-Cookie": b"a=1", "set-cookie": b"b=2"];
        b"HTTP/1.1 200 OK\r\nX: caf\xe9 \x7f\x01\r\n\r\n" => Http11 200 "OK" ["X": b"caf\xe9 \x7f\x01"];
        b"HTTP/1.1 200 OK\nX: y\r\n\n" => Http11 200 "OK" ["X": b"y"];
        b"HTTP/1.1 302 Found\r\nLocation: /x\r\n\r\n" => Http11 302 "Found" ["Location": b"/x"];
        b"HTTP/1.1 200 Tr\xe8s bien\r\n\r\n" => Http11 200 "Tr\u{fffd}s bien" [];
        b"HTTP/1.1 200 Tr\xc3\xa8s bien\r\n\r\n" => Http11 200 "Tr\u{e8}s bien" [];
    }
}

#[test]
fn valid_heads() {
    for (head, version, status, reason, headers) in valid_cases() {
        let shown = String::from_utf8_lossy(head);
        // Whatever follows the head (a body, the next response) is not used.
        for rest in [&b""[..], b"BODY\0\r\n\r\n", b"HTTP/1.1 200 OK\r\n\r\n"] {
            let input = [head, rest].concat();
            let (got, used) = parse_response_head(&input)
                .unwrap_or_else(|e| panic!("{shown:?}: {e}"))
                .unwrap_or_else(|| panic!("{shown:?}: incomplete"));
            let got = (got.version, got.status, got.reason.as_str(), &got.headers, used);
            assert_eq!(got, (version, status, reason, &headers, head.len()), "{shown:?}");
        }
    }
}

#[test]
fn every_prefix_needs_more() {
    for (head, ..) in valid_cases() {
        for end in 0..head.len() {
            let prefix = &head[..end];
            assert_eq!(
                parse_response_head(prefix),
                Ok(None),
                "{:?}",
                String::from_utf8_lossy(prefix)
            );
        }
    }
}

#[test]
fn header_lookup() {
    let input = b"HTTP/1.1 200 OK\r\nA: 1\r\nb: 2\r\na: 3\r\n\r\n";
    let (head, _) = parse_response_head(input).unwrap().unwrap();
    assert_eq!(head.header("a"), Some(&b"1"[..]));
    assert_eq!(head.header("B"), Some(&b"2"[..]));
    assert_eq!(head.header("c"), None);
    assert_eq!(head.headers_named("A").collect::<Vec<_>>(), [&b"1"[..], b"3"]);
    assert_eq!(head.version.as_str(), "HTTP/1.1");
}

/// Rows `input => error pattern (if guard)?,`.
macro_rules! rejects {
    ($($input:literal => $err:pat $(if $guard:expr)?,)*) => {$(
        match parse_response_head($input) {
            Err($err) $(if $guard)? => {}
            other => panic!("{:?}: got {other:?}", String::from_utf8_lossy($input)),
        }
    )*};
}

#[test]
fn malformed_heads() {
    rejects! {
        b"HTTP/2 200 OK\r\n\r\n" => Error::UnsupportedVersion(v) if v == "HTTP/2",
        b"HTTP/1.2 200 OK\r\n\r\n" => Error::UnsupportedVersion(_),
        b"HTTP/0.9 200 OK\r\n\r\n" => Error::UnsupportedVersion(_),
        b"ICY 200 OK\r\n\r\n" => Error::BadStatusLine(_),
        b"http/1.1 200 OK\r\n\r\n" => Error::BadStatusLine(_),
        b"\r\nHTTP/1.1 200 OK\r\n\r\n" => Error::BadStatusLine(_),
        b"HTTP/1.1\r\n\r\n" => Error::BadStatusLine(_),
        b"HTTP/1.1 \r\n\r\n" => Error::BadStatusLine(_),
        b"HTTP/1.1 20 OK\r\n\r\n" => Error::BadStatusLine(_),
        b"HTTP/1.1 099 OK\r\n\r\n" => Error::BadStatusLine(_),
        b"HTTP/1.1 2000 OK\r\n\r\n" => Error::BadStatusLine(_),
        b"HTTP/1.1  200 OK\r\n\r\n" => Error::BadStatusLine(_),
        b"HTTP/1.1 2x0 OK\r\n\r\n" => Error::BadStatusLine(_),
        b"HTTP/1.1 200OK\r\n\r\n" => Error::BadStatusLine(_),
        b"HTTP/1.1\t200 OK\r\n\r\n" => Error::BadStatusLine(_),
        b"HTTP/1.1 200 O\rK\r\n\r\n" => Error::BadStatusLine(_),
        b"HTTP/1.1 200 O\0K\r\n\r\n" => Error::BadStatusLine(_),
        b"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n" => Error::BadHeader(_),
        b"HTTP/1.1 200 OK\r\nName : v\r\n\r\n" => Error::BadHeader(_),
        b"HTTP/1.1 200 OK\r\nName\t: v\r\n\r\n" => Error::BadHeader(_),
        b"HTTP/1.1 200 OK\r\nNa me: v\r\n\r\n" => Error::BadHeader(_),
        b"HTTP/1.1 200 OK\r\n: v\r\n\r\n" => Error::BadHeader(_),
        b"HTTP/1.1 200 OK\r\nN\xe9: v\r\n\r\n" => Error::BadHeader(_),
        b"HTTP/1.1 200 OK\r\n X: folded onto nothing\r\n\r\n" => Error::BadHeader(_),
        b"HTTP/1.1 200 OK\r\nX: a\0b\r\n\r\n" => Error::BadHeader(_),
        b"HTTP/1.1 200 OK\r\nX\0: ab\r\n\r\n" => Error::BadHeader(_),
        b"HTTP/1.1 200 OK\r\nX: a\r\n b\0\r\n\r\n" => Error::BadHeader(_),
        b"HTTP/1.1 200 OK\r\nX: a\rb\r\n\r\n" => Error::BadHeader(_),
        b"HTTP/1.1 200 OK\r\nX: a\r\r\n\r\n" => Error::BadHeader(_),
        b"HTTP/1.1 200 OK\r\n\r\r\n\r\n" => Error::BadHeader(_),
        // A NUL fails at once, even before the head is complete.
        b"HTTP/1.1 200 OK\r\nX: a\0" => Error::BadHeader(_),
        b"HTTP/1.\0" => Error::BadStatusLine(_),
        // So does a bad complete line.
        b"HTTP/1.1 200 OK\r\nbad line\r\n" => Error::BadHeader(_),
        b"SSH-2.0-OpenSSH\r\n" => Error::BadStatusLine(_),
    }
}

#[test]
fn header_count_limit() {
    let head = |n: usize| {
        let mut s = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..n {
            s.extend_from_slice(format!("X-{i}: {i}\r\n").as_bytes());
        }
        s.extend_from_slice(b"\r\n");
        s
    };
    let (ok, _) = parse_response_head(&head(MAX_HEADERS)).unwrap().unwrap();
    assert_eq!(ok.headers.len(), MAX_HEADERS);
    let too_many = Err(Error::TooManyHeaders(MAX_HEADERS + 1));
    assert_eq!(parse_response_head(&head(MAX_HEADERS + 1)), too_many);
    // Reported before the head ends.
    let mut partial = head(MAX_HEADERS + 1);
    partial.truncate(partial.len() - 2);
    assert_eq!(parse_response_head(&partial), too_many);
}

#[test]
fn header_lines() {
    let ok: &[(&[u8], &str, &[u8])] = &[
        (b"Name: value\r\n", "Name", b"value"),
        (b"Name: value\n", "Name", b"value"),
        (b"Name:value", "Name", b"value"),
        (b"Name: a: b ", "Name", b"a: b"),
        (b"X-Checksum: \t \r\n", "X-Checksum", b""),
        (b"!#$%&'*+-.^_`|~09az: v", "!#$%&'*+-.^_`|~09az", b"v"),
    ];
    for &(line, name, value) in ok {
        assert_eq!(
            parse_header_line(line),
            Ok(h(name, value)),
            "{:?}",
            String::from_utf8_lossy(line)
        );
    }
    let bad: &[&[u8]] = &[
        b"",
        b"\r\n",
        b"no colon\r\n",
        b"Name : v",
        b" Name: v",
        b"N(ame): v",
        b"Name: a\rb",
        b"Name: a\r",
        b"Name: a\0b",
        b"Name: a\nb",
    ];
    for &line in bad {
        let got = parse_header_line(line);
        assert!(
            matches!(got, Err(Error::BadHeader(_))),
            "{:?}: {got:?}",
            String::from_utf8_lossy(line)
        );
    }
}
