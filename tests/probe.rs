//! The streams imports through the component boundary: the probe guest
//! (guest/probe) calls each import of `wfetch:fetch/streams` and reports,
//! one line per call, what it got back; the test drives the peer and
//! compares the report line by line. This checks the WIT mapping (records,
//! variants, options, lists, resources) and not only the host's Rust types.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use wfetch::net::NetConfig;
use wfetch::streams::Timeouts;
use wfetch::tls::TlsSettings;
use wfetch::{FetchResponse, Guest, Request, Runtime};

use crate::util::certs::certs;
use crate::util::{closed_port, SharedSink};

/// The probe guest, compiled and loaded once per test run.
fn probe() -> &'static Guest {
    static GUEST: OnceLock<Guest> = OnceLock::new();
    GUEST.get_or_init(|| {
        let runtime = Arc::new(Runtime::new().expect("runtime"));
        let wasm = std::fs::read(env!("WFETCH_GUEST_PROBE")).expect("read the probe guest");
        runtime.load("probe", &wasm).expect("load the probe guest")
    })
}

fn net(idle: Duration) -> Arc<NetConfig> {
    let tls = wfetch::tls::client_config(&TlsSettings {
        cacert: Some(certs().ca_pem.clone()),
        insecure: false,
    })
    .expect("client TLS config");
    Arc::new(NetConfig {
        tls,
        policy: wfetch::Policy::allow_all(),
        resolve: HashMap::new(),
        timeouts: Timeouts {
            connect: Duration::from_secs(5),
            idle,
            deadline: None,
        },
        tape: None,
    })
}

/// Run one scenario; the guest's response and its report lines.
async fn run(port: u16, scenario: &str, idle: Duration) -> (FetchResponse, Vec<String>) {
    let request = Request::new("PROBE", &format!("probe://127.0.0.1:{port}/{scenario}"));
    let sink = SharedSink::default();
    let fetch = probe().fetch(net(idle), &request, Box::new(sink.clone()));
    let response = tokio::time::timeout(Duration::from_secs(60), fetch)
        .await
        .expect("the probe finished within 60 s")
        .expect("the probe ran");
    let text = String::from_utf8(sink.0.lock().unwrap().clone()).expect("the report is text");
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    assert_eq!(response.body_bytes, lines.len() as u64, "the guest counts its lines");
    (response, lines)
}

/// How a report line is checked.
enum Want {
    /// Exactly this line.
    Line(String),
    /// A line starting with this (for messages written by code outside
    /// the streams module, e.g. connect errors).
    Prefix(String),
}

fn line(s: impl Into<String>) -> Want {
    Want::Line(s.into())
}

fn prefix(s: impl Into<String>) -> Want {
    Want::Prefix(s.into())
}

#[track_caller]
fn check(got: &[String], want: &[Want]) {
    for (i, w) in want.iter().enumerate() {
        let g = got.get(i).map(String::as_str).unwrap_or("<missing>");
        match w {
            Want::Line(l) => assert_eq!(g, l, "report line {}\nfull report:\n{}", i + 1, got.join("\n")),
            Want::Prefix(p) => assert!(
                g.starts_with(p.as_str()),
                "report line {}: {g:?} does not start with {p:?}\nfull report:\n{}",
                i + 1,
                got.join("\n")
            ),
        }
    }
    assert_eq!(
        got.len(),
        want.len(),
        "extra report lines:\n{}",
        got[want.len().min(got.len())..].join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_tcp_every_call_and_error_variant() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (client_tx, client_rx) = tokio::sync::oneshot::channel::<SocketAddr>();
    let script: Vec<u8> = [
        &b"12345"[..],
        b"line one\n",
        b"part--",
        b"x|y\r\n",
        b"EXACT",
        &[b'A'; 40],
        b"#",
        &[b'B'; 40],
        b"\n",
        b"after\n",
    ]
    .concat();
    let peer = tokio::spawn(async move {
        let (mut sock, client) = listener.accept().await.unwrap();
        client_tx.send(client).unwrap();
        let mut hello = [0u8; 10];
        sock.read_exact(&mut hello).await.unwrap();
        sock.write_all(&script).await.unwrap();
        // Until the guest's write-eof: nothing more may come.
        let mut rest = Vec::new();
        sock.read_to_end(&mut rest).await.unwrap();
        sock.write_all(b"after-eof\nTAIL-DATA").await.unwrap();
        sock.shutdown().await.unwrap();
        // Until the guest closes.
        let mut tail = Vec::new();
        let _ = sock.read_to_end(&mut tail).await;
        (hello, rest, tail)
    });
    let (response, got) = run(port, "tcp", Duration::from_secs(5)).await;
    let client = client_rx.await.unwrap();
    let (hello, rest, tail) = peer.await.unwrap();
    assert_eq!(&hello, b"hello\nabc\n", "write and writelines, in order");
    assert!(
        rest.is_empty() && tail.is_empty(),
        "write after write-eof or close reached the peer"
    );
    assert_eq!(response.head.status, 200);
    assert_eq!(response.head.reason, "tcp");

    let a40 = "A".repeat(40);
    let want = [
        line("open-connection tcp limit=32 high-water=1024 -> ok"),
        line(format!("get-extra-info \"peername\" -> address 127.0.0.1:{port}")),
        line(format!(
            "get-extra-info \"sockname\" -> address {}:{}",
            client.ip(),
            client.port()
        )),
        line("get-extra-info \"peercert\" -> none"),
        line("get-extra-info \"cipher\" -> none"),
        line("get-extra-info \"alpn\" -> none"),
        line("get-extra-info \"server-hostname\" -> none"),
        line("get-extra-info \"no-such-key\" -> none"),
        line("can-write-eof -> true"),
        line("is-closing -> false"),
        line("write \"hello\\n\" -> ok"),
        line("writelines [\"a\", \"b\", \"c\\n\"] -> ok"),
        line("drain -> ok"),
        line("read(0) -> ok \"\""),
        line("read(5) -> ok \"12345\""),
        line("readline -> ok \"line one\\n\""),
        line("readuntil [\"--\"] -> ok \"part--\""),
        line("readuntil [\"\\r\\n\", \"|\"] -> ok \"x|\""),
        line("readuntil [\"\\r\\n\", \"|\"] -> ok \"y\\r\\n\""),
        line("readexactly(5) -> ok \"EXACT\""),
        line(
            "readuntil [\"#\"] -> err limit-overrun consumed=40 \
             message=\"Separator is found, but chunk is longer than limit\"",
        ),
        line(format!("readexactly(40) -> ok \"{a40}\"")),
        line("readuntil [\"#\"] -> ok \"#\""),
        line(
            "readline -> err limit-overrun consumed=40 message=\"Separator is found, but chunk is longer than limit\"",
        ),
        line("readline -> ok \"after\\n\""),
        line("at-eof -> false"),
        line("read(-2) -> err invalid-argument \"read(-2): n must be -1 or at least 0\""),
        line("readuntil [] -> err invalid-argument \"readuntil needs at least one separator\""),
        line("readuntil [\"\"] -> err invalid-argument \"separator must be at least one byte\""),
        line("write-eof -> ok"),
        line("write \"x\" -> err invalid-argument \"write after write-eof\""),
        line("is-closing -> false"),
        line("readline -> ok \"after-eof\\n\""),
        line("readexactly(4) -> ok \"TAIL\""),
        line("at-eof -> false"),
        line("readexactly(100) -> err incomplete-read partial=\"-DATA\" expected=100"),
        line("at-eof -> true"),
        line("read(-1) -> ok \"\""),
        line("read(10) -> ok \"\""),
        line("readline -> ok \"\""),
        line("readuntil [\"#\"] -> err incomplete-read partial=\"\" expected=none"),
        line("wait-closed -> err invalid-argument \"wait-closed before close: call close first\""),
        line("close"),
        line("is-closing -> true"),
        line("write \"late\" -> err closed"),
        line("writelines [\"late\"] -> err closed"),
        line("drain -> err closed"),
        line("write-eof -> err closed"),
        line("wait-closed -> ok"),
        line("close"),
        line("wait-closed -> ok"),
    ];
    check(&got, &want);
}

fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_tls_certificate_cipher_alpn_and_write_eof() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = TlsAcceptor::from(certs().server_config(&["http/1.1"]));
    let peer = tokio::spawn(async move {
        let (sock, _) = listener.accept().await.unwrap();
        let mut tls = acceptor.accept(sock).await.expect("server handshake");
        let suite = format!("{:?}", tls.get_ref().1.negotiated_cipher_suite().unwrap().suite());
        let mut ping = [0u8; 5];
        tls.read_exact(&mut ping).await.unwrap();
        tls.write_all(b"pong\nthe rest").await.unwrap();
        tls.shutdown().await.unwrap();
        (ping, suite)
    });
    let (_, got) = run(port, "tls", Duration::from_secs(5)).await;
    let (ping, suite) = peer.await.unwrap();
    assert_eq!(&ping, b"ping\n");

    let cert = wfetch::tls::describe_certificate(&certs().cert_der).expect("the test certificate parses");
    assert_eq!(cert.subject, "CN=localhost");
    assert_eq!(cert.issuer, "CN=wfetch test CA");
    let want = [
        line("open-connection tls server-name=localhost alpn=[h2, http/1.1] -> ok"),
        line(format!("get-extra-info \"peername\" -> address 127.0.0.1:{port}")),
        line(format!(
            "get-extra-info \"peercert\" -> certificate subject=\"CN=localhost\" issuer=\"CN=wfetch test CA\" \
             not-before={} not-after={} der={} bytes fnv={:016x}",
            cert.not_before,
            cert.not_after,
            certs().cert_der.len(),
            fnv1a(&certs().cert_der)
        )),
        line(format!(
            "get-extra-info \"cipher\" -> cipher suite={suite} protocol=TLSv1.3"
        )),
        line("get-extra-info \"alpn\" -> text \"http/1.1\""),
        line("get-extra-info \"server-hostname\" -> text \"localhost\""),
        line("get-extra-info \"no-such-key\" -> none"),
        line("can-write-eof -> false"),
        line(
            "write-eof -> err invalid-argument \
             \"write-eof is not possible on a TLS stream (can-write-eof is false)\"",
        ),
        line("is-closing -> false"),
        line("write \"ping\\n\" -> ok"),
        line("drain -> ok"),
        line("readline -> ok \"pong\\n\""),
        line("read(-1) -> ok \"the rest\""),
        line("at-eof -> true"),
        line("close"),
        line("wait-closed -> ok"),
    ];
    check(&got, &want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_open_connection_errors() {
    let port = closed_port();
    let (_, got) = run(port, "errors", Duration::from_secs(5)).await;
    let want = [
        prefix("open-connection tcp -> err connection-refused \""),
        prefix("open-connection \"\" -> err invalid-argument \""),
    ];
    check(&got, &want);
    assert!(
        got[0].contains(&port.to_string()),
        "the message names the port: {}",
        got[0]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_idle_timeout_is_timed_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let peer = tokio::spawn(async move {
        let (mut sock, _): (TcpStream, _) = listener.accept().await.unwrap();
        // Silent until the guest closes.
        let mut rest = Vec::new();
        let _ = sock.read_to_end(&mut rest).await;
        rest
    });
    let started = std::time::Instant::now();
    let (_, got) = run(port, "timeout", Duration::from_millis(300)).await;
    assert!(
        started.elapsed() >= Duration::from_millis(600),
        "two reads, each waiting for the idle timeout"
    );
    let timed_out = "err timed-out \"read: nothing moved for the idle timeout of 300 ms\"";
    let want = [
        line("open-connection tcp -> ok"),
        line(format!("read(10) -> {timed_out}")),
        line(format!("readexactly(1) -> {timed_out}")),
        line("close"),
        line("wait-closed -> ok"),
    ];
    check(&got, &want);
    assert!(peer.await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probe_write_from_moves_reader_bytes_to_the_sink() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let peer = tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        sock.write_all(b"spliced line 1\nspliced line 2\n").await.unwrap();
        sock.shutdown().await.unwrap();
        let mut rest = Vec::new();
        let _ = sock.read_to_end(&mut rest).await;
    });
    let (_, lines) = run(port, "splice", Duration::from_secs(10)).await;
    peer.await.unwrap();
    // The first call moves exactly what it asked for, the second what was
    // left (up to n), the third finds the end of the stream.
    check(
        &lines,
        &[
            line("open-connection tcp -> ok"),
            line("spliced line 1"),
            line("write-from(15) -> ok 15"),
            line("spliced line 2"),
            line("write-from(100) -> ok 15"),
            line("write-from(100) -> ok 0"),
            line("close"),
            line("wait-closed -> ok"),
        ],
    );
}
