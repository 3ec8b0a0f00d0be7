//! Bad and unusual input from the user: CRLF in URLs and headers, IPv6
//! literals, IDN hosts, ports out of range. Clear errors, curl's codes.

use std::io::{Read, Write};

use crate::util::server::server;
use crate::util::{code, ok, wfetch};

#[test]
fn crlf_and_spaces_in_urls_are_malformed_not_sent() {
    let s = server();
    let before = s.requests.lock().unwrap().len();
    for url in [
        format!("http://127.0.0.1:{}/a\r\nX-Injected: 1", s.port),
        format!("http://127.0.0.1:{}/a b", s.port),
        format!("http://127.0.0.1:{}/a\tb", s.port),
    ] {
        let out = wfetch(&["-sS", &url]);
        assert_eq!(code(&out), 3, "{url:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stderr).contains("percent-encoded"));
    }
    let injected = s.requests.lock().unwrap()[before..]
        .iter()
        .any(|r| String::from_utf8_lossy(r).contains("X-Injected"));
    assert!(!injected, "nothing with the injected header reached the server");
}

#[test]
fn crlf_nul_in_header_names_and_values_are_refused() {
    // (A NUL cannot be passed in an argument at all.)
    for h in ["X-A: b\r\nX-Injected: 1", "X-A: b\nc", "X-A\r\n: b", "Bad Name: v"] {
        let out = wfetch(&["-sS", "-H", h, &server().url("/echo")]);
        assert_eq!(code(&out), 2, "{h:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn ports_out_of_range_are_malformed() {
    for url in [
        "http://127.0.0.1:0/",
        "http://127.0.0.1:65536/",
        "http://127.0.0.1:99999/",
        "http://127.0.0.1:-1/",
    ] {
        let out = wfetch(&["-sS", url]);
        assert_eq!(code(&out), 3, "{url}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn an_ipv6_literal_is_fetched_over_loopback() {
    let listener = match std::net::TcpListener::bind("[::1]:0") {
        Ok(l) => l,
        Err(e) => panic!("this machine has no IPv6 loopback (::1): {e}"),
    };
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut sock, _) = listener.accept().unwrap();
        let mut buf = Vec::new();
        let mut tmp = [0u8; 1024];
        while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = sock.read(&mut tmp).unwrap();
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&tmp[..n]);
        }
        sock.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nv6\n")
            .unwrap();
        String::from_utf8_lossy(&buf).into_owned()
    });
    let out = wfetch(&["-sS", &format!("http://[::1]:{port}/six")]);
    ok(&out);
    assert_eq!(out.stdout, b"v6\n");
    let request = server.join().unwrap();
    assert!(request.starts_with("GET /six HTTP/1.1\r\n"), "{request}");
    assert!(request.contains(&format!("\r\nHost: [::1]:{port}\r\n")), "{request}");
}

#[test]
fn an_idn_host_is_sent_as_punycode() {
    let s = server();
    let resolve = format!("xn--bcher-kva.test:{}:127.0.0.1", s.port);
    let url = format!("http://bücher.test:{}/echo", s.port);
    let out = wfetch(&["-sS", "--resolve", &resolve, &url]);
    ok(&out);
    let echoed = String::from_utf8_lossy(&out.stdout);
    assert!(
        echoed.contains(&format!("\r\nHost: xn--bcher-kva.test:{}\r\n", s.port)),
        "{echoed}"
    );
    // A host that is not valid IDNA is malformed.
    let out = wfetch(&["-sS", "http://xn--a.test/"]);
    assert_eq!(code(&out), 3, "{}", String::from_utf8_lossy(&out.stderr));
}
