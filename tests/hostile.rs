//! A hostile HTTP server on 127.0.0.1, one path per hostile response, and
//! the table of what wfetch must do with each: accept (and print what) or
//! reject (with which exit code). Nothing may panic, hang past its
//! timeout, or report partial output as success.

use std::io::Write;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::util::{code, wfetch};

/// What the server does on a path.
enum Act {
    /// Send these bytes, then close.
    Send(Vec<u8>),
    /// Send these bytes, then reset the connection (RST).
    SendReset(Vec<u8>),
    /// Send these bytes one byte per `Duration`.
    Drip(Vec<u8>, Duration),
    /// Accept and never answer (until the client gives up).
    Silent,
}

fn send(b: impl AsRef<[u8]>) -> Act {
    Act::Send(b.as_ref().to_vec())
}

fn gzip_bomb() -> Vec<u8> {
    static BOMB: OnceLock<Vec<u8>> = OnceLock::new();
    BOMB.get_or_init(|| {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..256 {
            enc.write_all(&zeros).unwrap();
        }
        enc.finish().unwrap()
    })
    .clone()
}

fn act(path: &str) -> Act {
    let ok =
        |extra: &str, body: &str| format!("HTTP/1.1 200 OK\r\n{extra}Content-Length: {}\r\n\r\n{body}", body.len());
    match path {
        // --- status lines
        "/status-garbage" => send("FOO BAR BAZ\r\n\r\n"),
        "/status-no-version" => send("200 OK\r\nContent-Length: 0\r\n\r\n"),
        "/status-http2" => send("HTTP/2 200\r\ncontent-length: 0\r\n\r\n"),
        "/status-http09" => send("just a body, no head at all\n"),
        "/status-short-code" => send("HTTP/1.1 20 OK\r\nContent-Length: 0\r\n\r\n"),
        "/status-long-code" => send("HTTP/1.1 2000 OK\r\nContent-Length: 0\r\n\r\n"),
        "/status-negative" => send("HTTP/1.1 -200 OK\r\nContent-Length: 0\r\n\r\n"),
        "/status-lowercase" => send("http/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        "/status-only" => send("HTTP/1.1 200 OK\r\n\r\n"),
        "/http10-close" => send("HTTP/1.0 200 OK\r\n\r\nuntil close"),
        // --- header lines
        "/obs-fold" => send("HTTP/1.1 200 OK\r\nX-Folded: a\r\n  b\r\nContent-Length: 4\r\n\r\nfold"),
        "/bare-lf" => send("HTTP/1.1 200 OK\nContent-Length: 4\n\nbare"),
        "/nul-value" => send(ok("X-A: a\0b\r\n", "nul")),
        "/nul-name" => send(ok("X\0A: b\r\n", "nul")),
        "/space-before-colon" => send(ok("X-A : b\r\n", "sp")),
        "/no-colon" => send(ok("X-A b\r\n", "nc")),
        "/leading-fold" => send("HTTP/1.1 200 OK\r\n X-A: b\r\nContent-Length: 0\r\n\r\n"),
        "/header-count-bomb" => {
            let mut v = b"HTTP/1.1 200 OK\r\n".to_vec();
            for _ in 0..5000 {
                v.extend_from_slice(b"a:b\r\n");
            }
            v.extend_from_slice(b"Content-Length: 0\r\n\r\n");
            Act::Send(v)
        }
        "/header-size-bomb" => send(format!("HTTP/1.1 200 OK\r\nX-Big: {}\r\n\r\n", "x".repeat(200_000))),
        "/head-never-ends" => send("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"),
        "/mid-head" => send("HTTP/1.1 200 OK\r\nContent-Le"),
        "/empty-reply" => send(""),
        // --- Content-Length
        "/cl-duplicate-same" => send("HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\nsame"),
        "/cl-conflict" => send("HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nconfl"),
        "/cl-list-conflict" => send("HTTP/1.1 200 OK\r\nContent-Length: 4, 5\r\n\r\nconfl"),
        "/cl-negative" => send("HTTP/1.1 200 OK\r\nContent-Length: -4\r\n\r\nneg!"),
        "/cl-plus" => send("HTTP/1.1 200 OK\r\nContent-Length: +4\r\n\r\nplus"),
        "/cl-not-number" => send("HTTP/1.1 200 OK\r\nContent-Length: four\r\n\r\nfour"),
        "/cl-overflow" => send("HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999999\r\n\r\nx"),
        "/cl-truncated" => send("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly this"),
        // --- Transfer-Encoding
        "/cl-and-te" => {
            send("HTTP/1.1 200 OK\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nsmug\r\n0\r\n\r\n")
        }
        "/te-gzip" => send("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nnot really gzip"),
        "/te-chunked-not-last" => {
            send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n4\r\nsmug\r\n0\r\n\r\n")
        }
        "/chunk-overflow" => {
            send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\nx\r\n0\r\n\r\n")
        }
        "/chunk-negative" => send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n-5\r\nhello\r\n0\r\n\r\n"),
        "/chunk-not-hex" => send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\nhello\r\n0\r\n\r\n"),
        "/chunk-ext-odd" => {
            send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;;;=\"odd;\r\nhello\r\n0;x\r\n\r\n")
        }
        "/chunk-missing-crlf" => send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX0\r\n\r\n"),
        "/chunk-missing-last" => send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"),
        "/chunk-bad-trailer" => {
            send("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nno colon here\r\n\r\n")
        }
        // --- bodies that must not be read
        "/head-with-body" => send("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
        "/204-with-body" => send("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\nhello"),
        "/304-with-body" => send("HTTP/1.1 304 Not Modified\r\nContent-Length: 5\r\n\r\nhello"),
        // --- interim responses
        "/1xx-few" => send(format!(
            "{}{}",
            "HTTP/1.1 100 Continue\r\n\r\n".repeat(3),
            ok("", "after 1xx")
        )),
        "/1xx-flood" => send(format!(
            "{}{}",
            "HTTP/1.1 100 Continue\r\n\r\n".repeat(5000),
            ok("", "flooded")
        )),
        // --- time
        "/slowloris" => Act::Drip(ok("", "slow").into_bytes(), Duration::from_millis(500)),
        "/never-answers" => Act::Silent,
        "/reset-mid-body" => {
            Act::SendReset(format!("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{}", "r".repeat(300)).into_bytes())
        }
        // --- redirects
        "/redirect-loop" => send("HTTP/1.1 302 Found\r\nLocation: /redirect-loop\r\nContent-Length: 0\r\n\r\n"),
        "/redirect-ftp" => send("HTTP/1.1 302 Found\r\nLocation: ftp://127.0.0.1/file\r\nContent-Length: 0\r\n\r\n"),
        "/redirect-no-location" => send("HTTP/1.1 302 Found\r\nContent-Length: 4\r\n\r\nnone"),
        // localhost is loopback, and this port is not the one the command
        // line named: the default policy must deny it (were it not denied,
        // the connection would be refused: 7, not 110).
        "/redirect-private" => send(format!(
            "HTTP/1.1 302 Found\r\nLocation: http://localhost:{}/status-only\r\nContent-Length: 0\r\n\r\n",
            crate::util::closed_port()
        )),
        // --- decoding
        "/gzip-bomb" => {
            let bomb = gzip_bomb();
            let mut v = format!(
                "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\n\r\n",
                bomb.len()
            )
            .into_bytes();
            v.extend_from_slice(&bomb);
            Act::Send(v)
        }
        "/gzip-garbage" => send("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 9\r\n\r\nnot gzip!"),
        _ => send("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
    }
}

fn port() -> u16 {
    static PORT: OnceLock<u16> = OnceLock::new();
    *PORT.get_or_init(|| crate::util::spawn_server(|sock, _| serve(sock)))
}

async fn serve(mut sock: TcpStream) {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match sock.read(&mut tmp).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&tmp[..n]),
        }
    }
    let head = String::from_utf8_lossy(&buf).into_owned();
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    match act(&path) {
        Act::Send(bytes) => {
            let _ = sock.write_all(&bytes).await;
            let _ = sock.shutdown().await;
            let _ = tokio::time::timeout(Duration::from_secs(5), sock.read(&mut tmp)).await;
        }
        Act::SendReset(bytes) => {
            let _ = sock.write_all(&bytes).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            #[allow(deprecated)] // zero linger sends RST at once; it does not block
            let _ = sock.set_linger(Some(Duration::ZERO));
        }
        Act::Drip(bytes, every) => {
            for b in bytes {
                if sock.write_all(&[b]).await.is_err() {
                    return;
                }
                tokio::time::sleep(every).await;
            }
        }
        Act::Silent => tokio::time::sleep(Duration::from_secs(30)).await,
    }
}

/// What wfetch must do.
#[derive(Debug, Clone, Copy)]
enum Want {
    /// Exit 0 with exactly this output.
    Accept(&'static str),
    /// Exit with this code (never 0).
    Reject(i32),
}
use Want::{Accept, Reject};

/// (path, extra flags, what wfetch must do).
/// Exit codes: 8 weird reply, 18 partial, 28 timeout, 47 redirects, 52
/// empty reply, 56 receive failure, 61 bad content encoding, 1 protocol not
/// supported, 110 denied by policy.
const CASES: &[(&str, &[&str], Want)] = &[
    ("/status-garbage", &[], Reject(8)),
    ("/status-no-version", &[], Reject(8)),
    ("/status-http2", &[], Reject(8)),
    ("/status-http09", &[], Reject(8)),
    ("/status-short-code", &[], Reject(8)),
    ("/status-long-code", &[], Reject(8)),
    ("/status-negative", &[], Reject(8)),
    ("/status-lowercase", &[], Reject(8)),
    ("/status-only", &[], Accept("")),
    ("/http10-close", &[], Accept("until close")),
    ("/obs-fold", &[], Accept("fold")),
    ("/bare-lf", &[], Accept("bare")),
    ("/nul-value", &[], Reject(8)),
    ("/nul-name", &[], Reject(8)),
    ("/space-before-colon", &[], Reject(8)),
    ("/no-colon", &[], Reject(8)),
    ("/leading-fold", &[], Reject(8)),
    ("/header-count-bomb", &[], Reject(8)),
    ("/header-size-bomb", &[], Reject(8)),
    ("/head-never-ends", &[], Reject(8)),
    ("/mid-head", &[], Reject(8)),
    ("/empty-reply", &[], Reject(52)),
    ("/cl-duplicate-same", &[], Accept("same")),
    ("/cl-conflict", &[], Reject(8)),
    ("/cl-list-conflict", &[], Reject(8)),
    ("/cl-negative", &[], Reject(8)),
    ("/cl-plus", &[], Reject(8)),
    ("/cl-not-number", &[], Reject(8)),
    ("/cl-overflow", &[], Reject(8)),
    ("/cl-truncated", &[], Reject(18)),
    ("/cl-and-te", &[], Reject(8)),
    ("/te-gzip", &[], Reject(8)),
    ("/te-chunked-not-last", &[], Reject(8)),
    ("/chunk-overflow", &[], Reject(8)),
    ("/chunk-negative", &[], Reject(8)),
    ("/chunk-not-hex", &[], Reject(8)),
    ("/chunk-ext-odd", &[], Accept("hello")),
    ("/chunk-missing-crlf", &[], Reject(8)),
    ("/chunk-missing-last", &[], Reject(18)),
    ("/chunk-bad-trailer", &[], Reject(8)),
    ("/head-with-body", &["-I", "-o", "/dev/null"], Accept("")),
    ("/204-with-body", &[], Accept("")),
    ("/304-with-body", &[], Accept("")),
    ("/1xx-few", &[], Accept("after 1xx")),
    ("/1xx-flood", &[], Reject(8)),
    ("/slowloris", &["-m", "2"], Reject(28)),
    ("/never-answers", &["-m", "1"], Reject(28)),
    ("/reset-mid-body", &[], Reject(56)),
    ("/redirect-loop", &["-L", "--max-redirs", "5"], Reject(47)),
    ("/redirect-ftp", &["-L"], Reject(1)),
    ("/redirect-no-location", &["-L"], Accept("none")),
    ("/redirect-private", &["-L"], Reject(110)),
    ("/gzip-bomb", &["--compressed"], Reject(61)),
    ("/gzip-garbage", &["--compressed"], Reject(61)),
];

#[test]
fn every_hostile_response_gets_its_expected_outcome() {
    let port = port();
    let mut failures = Vec::new();
    for (path, flags, want) in CASES {
        let url = format!("http://127.0.0.1:{port}{path}");
        let mut args: Vec<&str> = vec!["-sS", "--connect-timeout", "5", "-m", "20"];
        args.extend_from_slice(flags);
        args.push(&url);
        let start = Instant::now();
        let out = wfetch(&args);
        let took = start.elapsed();
        let got = code(&out);
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        if err.contains("panicked") {
            failures.push(format!("{path}: panicked: {err}"));
        }
        if took > Duration::from_secs(15) {
            failures.push(format!("{path}: took {took:?}"));
        }
        match want {
            Accept(body) => {
                if got != 0 || out.stdout != body.as_bytes() {
                    failures.push(format!(
                        "{path}: want exit 0 and {body:?}, got exit {got} and {:?} ({err})",
                        String::from_utf8_lossy(&out.stdout)
                    ));
                }
            }
            Reject(c) => {
                if got != *c {
                    failures.push(format!("{path}: want exit {c}, got {got} ({err})"));
                } else if !err.starts_with(&format!("wfetch: ({c}) ")) {
                    failures.push(format!("{path}: message not in curl's form: {err:?}"));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases wrong:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn the_table_has_at_least_forty_cases() {
    assert!(CASES.len() >= 40, "{}", CASES.len());
}

/// A TLS server on 127.0.0.1:0 presenting `cert` (DER) with `key` (PKCS#8
/// DER) that answers every request with a small 200.
fn tls_server(cert: Vec<u8>, key: Vec<u8>) -> u16 {
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    use tokio_rustls::rustls::{self, ServerConfig};
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let cfg = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert)],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
        )
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(cfg));
    crate::util::spawn_server(move |sock, _| {
        let acceptor = acceptor.clone();
        async move {
            if let Ok(mut tls) = acceptor.accept(sock).await {
                let mut buf = [0u8; 4096];
                let _ = tls.read(&mut buf).await;
                let _ = tls.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n").await;
                let _ = tls.shutdown().await;
            }
        }
    })
}

/// Certificates that must be refused: (name, cert DER, key DER).
fn bad_certificates() -> Vec<(&'static str, Vec<u8>, Vec<u8>)> {
    use rcgen::{CertificateParams, DnType, KeyPair};
    let ca = crate::util::certs::certs();
    let (ca_cert, ca_key) = (&ca.ca_cert, &ca.ca_key);
    let leaf = |names: Vec<String>, past: bool, self_signed: bool| {
        let key = KeyPair::generate().unwrap();
        let mut p = CertificateParams::new(names).unwrap();
        p.distinguished_name.push(DnType::CommonName, "hostile");
        if past {
            p.not_before = rcgen::date_time_ymd(2001, 1, 1);
            p.not_after = rcgen::date_time_ymd(2002, 1, 1);
        }
        let cert = if self_signed {
            p.self_signed(&key).unwrap()
        } else {
            p.signed_by(&key, ca_cert, ca_key).unwrap()
        };
        (cert.der().to_vec(), key.serialize_der())
    };
    let (expired, k1) = leaf(vec!["localhost".into()], true, false);
    let (wrong, k2) = leaf(vec!["other.invalid".into()], false, false);
    let (selfsigned, k3) = leaf(vec!["localhost".into()], false, true);
    vec![
        ("expired", expired, k1),
        ("wrong-host", wrong, k2),
        ("self-signed", selfsigned, k3),
    ]
}

#[test]
fn bad_certificates_are_refused_with_60_and_accepted_with_k() {
    let ca = crate::util::certs::certs().ca_pem.to_str().unwrap().to_string();
    for (name, cert, key) in bad_certificates() {
        let port = tls_server(cert, key);
        let url = format!("https://localhost:{port}/");
        let out = wfetch(&["-sS", "--cacert", &ca, "-m", "10", &url]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(code(&out), 60, "{name}: {err}");
        assert!(err.starts_with("wfetch: (60) SSL certificate problem"), "{name}: {err}");
        assert!(
            out.stdout.is_empty(),
            "{name}: nothing is written from an untrusted server"
        );
        let insecure = wfetch(&["-s", "-k", "-m", "10", &url]);
        assert_eq!(
            code(&insecure),
            0,
            "{name} with -k: {}",
            String::from_utf8_lossy(&insecure.stderr)
        );
        assert_eq!(insecure.stdout, b"ok\n");
    }
}
