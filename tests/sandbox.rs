//! The sandbox: hostile guests (guest/hostile) are stopped within their
//! limits with the right error while a well-behaved fetch runs in the same
//! process, on the same runtime and even the same thread; the network
//! policy for every pattern form, for names resolving to private
//! addresses, and for redirects to denied targets, through the CLI.
//!
//! Every connection here goes to 127.0.0.1: denials are checked before
//! anything is dialled, and "public" names are mapped to loopback with
//! --resolve, so no test reaches beyond this machine.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, TcpListener};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use wfetch::net::NetConfig;
use wfetch::streams::Timeouts;
use wfetch::{Error, FetchError, Guest, LimitKind, Limits, Policy, Request, Runtime, DEFAULT_GUEST};

use crate::util::server::{sample_body, server};
use crate::util::{code, ok, wfetch, SharedSink};

const HOSTILE: &str = env!("WFETCH_GUEST_HOSTILE");

// ---------------------------------------------------------------------------
// Harness

/// One runtime for the process; the hostile and the default guest loaded
/// from it once.
fn guests() -> &'static (Guest, Guest) {
    static GUESTS: OnceLock<(Guest, Guest)> = OnceLock::new();
    GUESTS.get_or_init(|| {
        let runtime = Arc::new(Runtime::new().expect("runtime"));
        let wasm = std::fs::read(HOSTILE).expect("read the hostile guest");
        let hostile = runtime.load("hostile", &wasm).expect("load the hostile guest");
        let http = runtime.load("http", DEFAULT_GUEST).expect("load the default guest");
        (hostile, http)
    })
}

/// Small limits, so that every test is short.
fn test_limits() -> Limits {
    Limits {
        memory: 64 << 20,
        fuel: 200_000_000,
        wall_time: Some(Duration::from_secs(10)),
        connections: 4,
        total_connections: 16,
        bytes_read: None,
        bytes_written: None,
        body_bytes: None,
        stream_buffer: 4 << 20,
    }
}

fn net(policy: Policy) -> Arc<NetConfig> {
    net_resolving(policy, HashMap::new())
}

fn net_resolving(policy: Policy, resolve: HashMap<(String, u16), Vec<IpAddr>>) -> Arc<NetConfig> {
    Arc::new(NetConfig {
        tls: wfetch::tls::client_config(&Default::default()).expect("TLS config"),
        policy,
        resolve,
        timeouts: Timeouts {
            connect: Duration::from_secs(5),
            idle: Duration::from_secs(30),
            deadline: None,
        },
        tape: None,
    })
}

fn request(url: &str) -> Request {
    Request::get(url)
}

/// Run the hostile guest on `url` under `limits` and `policy`: its result,
/// what reached its sink, and how long it ran.
async fn hostile(
    url: &str,
    limits: Limits,
    policy: Policy,
) -> (Result<wfetch::FetchResponse, Error>, Vec<u8>, Duration) {
    let guest = guests().0.clone().with_limits(limits);
    let sink = SharedSink::default();
    let start = Instant::now();
    let r = guest.fetch(net(policy), &request(url), Box::new(sink.clone())).await;
    let body = sink.0.lock().unwrap().clone();
    (r, body, start.elapsed())
}

/// A well-behaved fetch with the default guest from the test server.
async fn good_fetch() {
    let s = server();
    let sink = SharedSink::default();
    let policy = Policy::parse(&[format!("127.0.0.1:{}", s.port)]).unwrap();
    let r = guests()
        .1
        .fetch(net(policy), &request(&s.url("/ok")), Box::new(sink.clone()))
        .await;
    let resp = r.expect("the well-behaved fetch succeeds next to a hostile one");
    assert_eq!(resp.head.status, 200);
    assert_eq!(*sink.0.lock().unwrap(), sample_body());
}

/// Run a hostile fetch and a well-behaved one side by side on this
/// thread; the hostile one's result.
async fn side_by_side(url: &str, limits: Limits) -> (Result<wfetch::FetchResponse, Error>, Vec<u8>, Duration) {
    let (bad, ()) = tokio::join!(hostile(url, limits, Policy::allow_all()), good_fetch());
    bad
}

#[track_caller]
fn assert_limit(r: &Result<wfetch::FetchResponse, Error>, kind: LimitKind, words: &[&str]) {
    match r {
        Err(Error::Limit(l)) => {
            assert_eq!(l.kind, kind, "{l}");
            let text = Error::Limit(l.clone()).to_string();
            for w in words {
                assert!(text.contains(w), "{w:?} not in {text:?}");
            }
            assert!(text.contains(kind.flag()), "{text}");
            assert_eq!(Error::Limit(l.clone()).exit_code(), 111);
        }
        other => panic!("expected the {kind:?} limit, got {other:?}"),
    }
}

/// A peer on 127.0.0.1 that accepts connections and keeps them, reading
/// (and discarding) or not; the number accepted so far.
fn holding_peer(read: bool) -> (u16, Arc<Mutex<usize>>, tokio::sync::mpsc::UnboundedReceiver<u64>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = Arc::new(Mutex::new(0));
    let count = accepted.clone();
    // After the client goes away, each connection reports how many bytes
    // it had read in the end (when reading) so tests can see it closed.
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for sock in listener.incoming() {
            let Ok(mut sock) = sock else { return };
            *count.lock().unwrap() += 1;
            let tx = tx.clone();
            std::thread::spawn(move || {
                if !read {
                    // Hold 3 s without reading, then read to EOF.
                    std::thread::sleep(Duration::from_secs(3));
                }
                let mut buf = vec![0u8; 1 << 16];
                let mut total = 0u64;
                let _ = sock.set_read_timeout(Some(Duration::from_secs(30)));
                loop {
                    match sock.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => total += n as u64,
                    }
                }
                let _ = tx.send(total);
            });
        }
    });
    (port, accepted, rx)
}

/// A peer that sends bytes endlessly on every connection.
fn endless_peer() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for sock in listener.incoming() {
            let Ok(mut sock) = sock else { return };
            std::thread::spawn(move || {
                let block = vec![b'z'; 1 << 16];
                while sock.write_all(&block).is_ok() {}
            });
        }
    });
    port
}

// ---------------------------------------------------------------------------
// Hostile guests, each next to a well-behaved fetch on one thread

#[tokio::test(flavor = "current_thread")]
async fn an_infinite_loop_runs_out_of_fuel() {
    let (r, _, took) = side_by_side("hostile://loop", test_limits()).await;
    assert_limit(&r, LimitKind::Cpu, &["fuel", "200000000"]);
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn an_infinite_loop_without_a_fuel_limit_is_stopped_by_the_wall_clock() {
    let limits = Limits {
        fuel: u64::MAX,
        wall_time: Some(Duration::from_millis(500)),
        ..test_limits()
    };
    let (r, _, took) = side_by_side("hostile://loop", limits).await;
    assert_limit(&r, LimitKind::WallTime, &["500 ms"]);
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn a_memory_bomb_hits_the_memory_limit() {
    let (r, _, _) = side_by_side("hostile://membomb", test_limits()).await;
    assert_limit(&r, LimitKind::Memory, &["64 MiB"]);
}

#[tokio::test(flavor = "current_thread")]
async fn a_connection_flood_hits_the_open_connections_limit() {
    let (port, accepted, _rx) = holding_peer(true);
    let (r, _, _) = side_by_side(&format!("hostile://flood/127.0.0.1:{port}"), test_limits()).await;
    assert_limit(&r, LimitKind::Connections, &["more than 4 connections open"]);
    assert!(*accepted.lock().unwrap() <= 4);
}

#[tokio::test(flavor = "current_thread")]
async fn a_connection_flood_hits_the_total_connections_limit() {
    let (port, _accepted, _rx) = holding_peer(true);
    let limits = Limits {
        connections: 100,
        total_connections: 6,
        ..test_limits()
    };
    let (r, _, _) = side_by_side(&format!("hostile://flood/127.0.0.1:{port}"), limits).await;
    assert_limit(&r, LimitKind::TotalConnections, &["more than 6 connections"]);
}

#[tokio::test(flavor = "current_thread")]
async fn a_denied_host_is_a_denied_stream_error_naming_target_and_rule() {
    let other = crate::util::closed_port();
    let s = server();
    let policy = Policy::parse(&[format!("127.0.0.1:{}", s.port)]).unwrap();
    let url = format!("hostile://connect/127.0.0.1:{other}");
    let ((r, _, _), ()) = tokio::join!(hostile(&url, test_limits(), policy), good_fetch());
    let msg = match r {
        Err(Error::Fetch(FetchError::Transport(
            wfetch::engine::bindings::wfetch::fetch::streams::StreamError::Denied(m),
        ))) => m,
        other => panic!("expected denied, got {other:?}"),
    };
    assert!(msg.contains(&format!("127.0.0.1:{other}")), "{msg}");
    assert!(msg.contains(&format!("`127.0.0.1:{}`", s.port)), "{msg}");
    // The same guest, allowed, connects.
    let policy = Policy::parse(&[format!("127.0.0.1:{}", s.port)]).unwrap();
    let (r, _, _) = hostile(
        &format!("hostile://connect/127.0.0.1:{}", s.port),
        test_limits(),
        policy,
    )
    .await;
    assert_eq!(r.expect("allowed").head.reason, "connected");
}

#[tokio::test(flavor = "current_thread")]
async fn a_name_resolving_to_loopback_is_denied_under_a_wildcard() {
    let s = server();
    // `*` passes the name, but the address dialled is loopback.
    let (r, _, _) = hostile(
        &format!("hostile://connect/localhost:{}", s.port),
        test_limits(),
        Policy::parse(&["*"]).unwrap(),
    )
    .await;
    let e = r.unwrap_err().to_string();
    assert!(
        e.contains("Denied by policy") && e.contains("loopback") && e.contains("`*`"),
        "{e}"
    );
    // A public-looking name mapped to 127.0.0.1 (as a DNS answer could be).
    let resolve = HashMap::from([(
        ("www.example.com".to_string(), s.port),
        vec!["127.0.0.1".parse().unwrap()],
    )]);
    let guest = guests().0.clone().with_limits(test_limits());
    let url = format!("hostile://connect/www.example.com:{}", s.port);
    for (rules, allowed) in [
        (vec!["*.example.com"], false),
        (vec!["*"], false),
        (vec!["www.example.com"], true),
        (vec!["*", "127.0.0.0/8"], true),
        (vec!["*", "::ffff:127.0.0.1"], true),
    ] {
        let policy = Policy::parse(&rules).unwrap();
        let r = guest
            .fetch(
                net_resolving(policy, resolve.clone()),
                &request(&url),
                Box::new(SharedSink::default()),
            )
            .await;
        match (allowed, r) {
            (true, Ok(_)) => {}
            (false, Err(e)) => {
                let e = e.to_string();
                assert!(
                    e.contains("www.example.com") && e.contains("loopback"),
                    "{rules:?}: {e}"
                );
                assert!(e.contains("public addresses only"), "{rules:?}: {e}");
            }
            (want, got) => panic!("{rules:?}: allowed {want}, got {got:?}"),
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn huge_writes_without_drain_hit_the_stream_buffer_limit_and_the_peer_is_let_go() {
    let (port, _, mut closed) = holding_peer(false);
    let limits = Limits {
        stream_buffer: 16 << 20,
        ..test_limits()
    };
    let (r, _, _) = side_by_side(&format!("hostile://bigwrite/127.0.0.1:{port}"), limits).await;
    assert_limit(&r, LimitKind::StreamBuffer, &["16 MiB", "without draining"]);
    assert_queue_dropped(&mut closed).await;
}

/// A connection taken from the keep-alive pool belongs to the instance
/// that took it: when that instance is stopped, its queued writes are
/// dropped and the connection closed, as for one it opened itself (not
/// flushed once the peer reads).
#[tokio::test(flavor = "current_thread")]
async fn a_pooled_connection_is_stopped_with_the_instance_that_took_it() {
    let (port, accepted, mut closed) = holding_peer(false);
    let guest = guests().0.with_own_pool().with_limits(Limits {
        stream_buffer: 16 << 20,
        ..test_limits()
    });
    // Both fetches with the same network configuration, as the pool needs.
    let net = net(Policy::allow_all());
    let run = |mode: &str| {
        let req = request(&format!("hostile://{mode}/127.0.0.1:{port}"));
        let (guest, net) = (guest.clone(), net.clone());
        async move { guest.fetch(net, &req, Box::new(SharedSink::default())).await }
    };
    let keep = run("keep").await.expect("keep succeeds");
    assert_eq!(keep.head.reason, "kept");
    assert_eq!(guest.idle_connections(), 1);
    let r = run("bigwrite").await;
    assert_limit(&r, LimitKind::StreamBuffer, &["16 MiB", "without draining"]);
    assert_eq!(*accepted.lock().unwrap(), 1, "bigwrite reused the kept connection");
    assert_eq!(guest.idle_connections(), 0);
    assert_queue_dropped(&mut closed).await;
}

/// The stopped guest's connection was dropped, its 16 MiB queue with it
/// (not flushed once the `holding_peer` reads): the peer gets what the
/// kernel buffers held (a few MiB at most), then EOF.
async fn assert_queue_dropped(closed: &mut tokio::sync::mpsc::UnboundedReceiver<u64>) {
    let got = tokio::time::timeout(Duration::from_secs(20), closed.recv())
        .await
        .expect("the peer's connection ends")
        .unwrap();
    assert!(got < 10 << 20, "the peer got {got} bytes: the queue was flushed");
}

#[tokio::test(flavor = "current_thread")]
async fn writes_past_the_bytes_written_limit_stop_the_guest() {
    let (port, _, _rx) = holding_peer(true);
    let limits = Limits {
        bytes_written: Some(8 << 20),
        stream_buffer: 64 << 20,
        ..test_limits()
    };
    let (r, _, _) = side_by_side(&format!("hostile://bigwrite/127.0.0.1:{port}"), limits).await;
    assert_limit(&r, LimitKind::BytesWritten, &["8 MiB"]);
}

#[tokio::test(flavor = "current_thread")]
async fn reads_past_the_bytes_read_limit_stop_the_guest() {
    let port = endless_peer();
    let limits = Limits {
        bytes_read: Some(1 << 20),
        ..test_limits()
    };
    let (r, _, _) = side_by_side(&format!("hostile://readall/127.0.0.1:{port}"), limits).await;
    assert_limit(&r, LimitKind::BytesRead, &["1 MiB"]);
}

#[tokio::test(flavor = "current_thread")]
async fn host_buffering_is_bounded_for_read_to_eof_and_readexactly() {
    let port = endless_peer();
    let (r, _, _) = side_by_side(&format!("hostile://read-to-eof/127.0.0.1:{port}"), test_limits()).await;
    assert_limit(&r, LimitKind::StreamBuffer, &["read(-1)", "4 MiB"]);
    let (r, _, _) = side_by_side(&format!("hostile://readexactly/127.0.0.1:{port}"), test_limits()).await;
    assert_limit(&r, LimitKind::StreamBuffer, &["readexactly of 1073741824 bytes"]);
}

#[tokio::test(flavor = "current_thread")]
async fn a_sink_flood_hits_the_body_bytes_limit() {
    let limits = Limits {
        body_bytes: Some(1 << 20),
        ..test_limits()
    };
    let (r, body, _) = side_by_side("hostile://sinkflood", limits).await;
    assert_limit(&r, LimitKind::BodyBytes, &["1 MiB"]);
    assert!(body.len() <= 1 << 20, "{} bytes reached the sink", body.len());
}

#[tokio::test(flavor = "current_thread")]
async fn a_trap_in_the_middle_of_a_body_is_a_guest_failure_and_keeps_what_arrived() {
    let s = server();
    let (r, body, _) = side_by_side(
        &format!("hostile://trap-mid-body/127.0.0.1:{}/ok", s.port),
        test_limits(),
    )
    .await;
    match r {
        Err(Error::Trap(m)) => assert!(m.contains("hostile") && m.contains("unreachable"), "{m}"),
        other => panic!("expected a trap, got {other:?}"),
    }
    assert!(
        !body.is_empty() && sample_body().starts_with(&body),
        "{} bytes",
        body.len()
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_fetch_that_never_returns_is_stopped_by_the_wall_clock() {
    let limits = Limits {
        wall_time: Some(Duration::from_millis(800)),
        ..test_limits()
    };
    let (r, _, took) = side_by_side("hostile://never-returns", limits).await;
    assert_limit(&r, LimitKind::WallTime, &["800 ms"]);
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(5),
        "took {took:?}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn wasi_exit_is_a_guest_failure() {
    let (r, _, _) = side_by_side("hostile://exit", test_limits()).await;
    assert!(matches!(r, Err(Error::Trap(_))), "{r:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn wasi_offers_no_way_out() {
    // Even under a policy that allows everything, the guest's WASI has no
    // sockets, no name lookup, no files, no environment: its only way
    // out is the host's streams import.
    let (port, accepted, _rx) = holding_peer(true);
    let (r, _, _) = side_by_side(&format!("hostile://escape/127.0.0.1:{port}"), test_limits()).await;
    let resp = r.expect("the escape report");
    assert_eq!(resp.head.reason, "tcp=false dns=false file=false env=0 args=0");
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(*accepted.lock().unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_guest_at_once_while_good_fetches_go_on() {
    let (hold, _, _rx) = holding_peer(true);
    let (still, _, _rx2) = holding_peer(false);
    let endless = endless_peer();
    let limits = Limits {
        wall_time: Some(Duration::from_secs(2)),
        bytes_read: Some(1 << 20),
        body_bytes: Some(1 << 20),
        ..test_limits()
    };
    let urls = [
        "hostile://loop".to_string(),
        "hostile://membomb".to_string(),
        format!("hostile://flood/127.0.0.1:{hold}"),
        format!("hostile://bigwrite/127.0.0.1:{still}"),
        format!("hostile://readall/127.0.0.1:{endless}"),
        "hostile://sinkflood".to_string(),
        "hostile://never-returns".to_string(),
    ];
    let mut tasks = Vec::new();
    for url in urls {
        let limits = limits.clone();
        tasks.push(tokio::spawn(async move {
            let (r, _, _) = hostile(&url, limits, Policy::allow_all()).await;
            (url, r)
        }));
    }
    let start = Instant::now();
    for _ in 0..5 {
        good_fetch().await;
    }
    for t in tasks {
        let (url, r) = t.await.unwrap();
        assert!(matches!(r, Err(Error::Limit(_))), "{url}: {r:?}");
    }
    assert!(start.elapsed() < Duration::from_secs(20));
}

#[tokio::test(flavor = "current_thread")]
async fn a_well_behaved_guest_under_default_limits_is_not_affected() {
    // The default limits leave a normal fetch alone; the instance used a
    // bounded amount of memory.
    let s = server();
    let sink = SharedSink::default();
    let policy = Policy::parse(&[format!("127.0.0.1:{}", s.port)]).unwrap();
    let guest = guests().1.clone().with_limits(Limits::default());
    let r = guest
        .fetch(net(policy), &request(&s.url("/ok")), Box::new(sink.clone()))
        .await
        .unwrap();
    assert_eq!(r.body_bytes, sample_body().len() as u64);
}

// ---------------------------------------------------------------------------
// The CLI: default policy, --allow forms, --resolve to private addresses,
// redirects to denied targets, --policy files, limit flags

/// A server on 127.0.0.1 that answers every request with a 302 to
/// `location`.
fn redirect_to(location: String) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for sock in listener.incoming() {
            let Ok(mut sock) = sock else { return };
            let location = location.clone();
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let mut tmp = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut tmp) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&tmp[..n]),
                    }
                }
                let reply = format!(
                    "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let _ = sock.write_all(reply.as_bytes());
            });
        }
    });
    port
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_url_given_is_allowed_by_default_and_a_redirect_elsewhere_is_denied() {
    let s = server();
    let from = redirect_to(s.url("/ok"));
    let start = format!("http://127.0.0.1:{from}/");
    let out = wfetch(&["-sS", "-L", &start]);
    assert_eq!(code(&out), 110, "{}", stderr(&out));
    let e = stderr(&out);
    assert!(e.contains("(110) Denied by policy"), "{e}");
    assert!(
        e.contains(&format!("127.0.0.1:{}", s.port)) && e.contains("loopback") && e.contains("`*`"),
        "{e}"
    );
    // Without -L the redirect is not followed: nothing to deny.
    ok(&wfetch(&["-s", &start]));
}

#[test]
fn every_allow_form_lets_the_redirect_through() {
    let s = server();
    let from = redirect_to(s.url("/ok"));
    let start = format!("http://127.0.0.1:{from}/");
    let p = s.port;
    for allow in [
        format!("127.0.0.1:{p}"),
        "127.0.0.1".to_string(),
        "127.0.0.1:*".to_string(),
        format!("127.0.0.1:{}-{}", p - 1, p + 1),
        "127.0.0.0/8".to_string(),
        format!("127.0.0.0/8:{p}"),
        "::ffff:127.0.0.1".to_string(),
        format!("[::ffff:127.0.0.0/104]:{p}"),
    ] {
        let out = wfetch(&["-s", "-L", "--allow", &allow, &start]);
        assert_eq!(code(&out), 0, "--allow {allow}: {}", stderr(&out));
        assert_eq!(out.stdout, sample_body(), "--allow {allow}");
    }
    for allow in [
        format!("127.0.0.1:{}", p + 1),
        format!("127.0.0.1:{}-{}", p + 1, p + 2),
        "10.0.0.0/8".to_string(),
        "*".to_string(),
        "*:*".to_string(),
        "localhost".to_string(),
    ] {
        let out = wfetch(&["-s", "-L", "--allow", &allow, &start]);
        assert_eq!(code(&out), 110, "--allow {allow}: {}", stderr(&out));
    }
}

#[test]
fn names_resolving_to_private_addresses_need_an_explicit_rule() {
    let s = server();
    let p = s.port;
    // A redirect to a public-looking name that resolves to 127.0.0.1.
    let from = redirect_to(format!("http://files.example.net:{p}/ok"));
    let start = format!("http://127.0.0.1:{from}/");
    let resolve = format!("files.example.net:{p}:127.0.0.1");
    for (allow, want) in [
        (None, 110),
        (Some("*.example.net"), 110),
        (Some("*"), 110),
        (Some("files.example.net"), 0),
        (Some("files.example.net:1-65535"), 0),
        (Some("127.0.0.1"), 0),
    ] {
        let mut args = vec!["-sS", "-L", "--resolve", &resolve];
        if let Some(a) = allow {
            args.extend(["--allow", a]);
        }
        args.push(&start);
        let out = wfetch(&args);
        assert_eq!(code(&out), want, "--allow {allow:?}: {}", stderr(&out));
        if want == 110 {
            let e = stderr(&out);
            assert!(
                e.contains("files.example.net") && e.contains("resolved to 127.0.0.1"),
                "{e}"
            );
        }
    }
    // The URL itself names the host: its exact rule allows the private address.
    let direct = format!("http://files.example.net:{p}/ok");
    let out = wfetch(&["-s", "--resolve", &resolve, &direct]);
    ok(&out);
    assert_eq!(out.stdout, sample_body());
    // localhost is loopback too.
    let from = redirect_to(format!("http://localhost:{p}/ok"));
    let out = wfetch(&["-s", "-L", &format!("http://127.0.0.1:{from}/")]);
    assert_eq!(code(&out), 110, "{}", stderr(&out));
}

#[test]
fn a_policy_file_allows_and_limits() {
    let s = server();
    let dir = crate::util::tempdir();
    let from = redirect_to(s.url("/ok"));
    let start = format!("http://127.0.0.1:{from}/");
    let file = dir.path().join("policy.toml");
    std::fs::write(&file, format!("allow = [\"127.0.0.1:{}\"]\n", s.port)).unwrap();
    let out = wfetch(&["-s", "-L", "--policy", file.to_str().unwrap(), &start]);
    ok(&out);
    assert_eq!(out.stdout, sample_body());

    std::fs::write(&file, "[limits]\nmemory = \"256K\"\n").unwrap();
    let out = wfetch(&["-sS", "--policy", file.to_str().unwrap(), &s.url("/ok")]);
    assert_eq!(code(&out), 111, "{}", stderr(&out));
    assert!(stderr(&out).contains("sandbox limit exceeded") && stderr(&out).contains("memory"));
    // A flag overrides the file.
    let out = wfetch(&[
        "-s",
        "--policy",
        file.to_str().unwrap(),
        "--max-memory",
        "64M",
        &s.url("/ok"),
    ]);
    ok(&out);

    for bad in [
        "allow = [\"a b\"]",
        "alow = []",
        "[limits]\nmemory = \"lots\"",
        "not toml [",
    ] {
        std::fs::write(&file, bad).unwrap();
        let out = wfetch(&["-s", "-S", "--policy", file.to_str().unwrap(), &s.url("/ok")]);
        assert_eq!(code(&out), 2, "{bad}: {}", stderr(&out));
        assert!(stderr(&out).contains("policy.toml"), "{}", stderr(&out));
    }
    let out = wfetch(&["-sS", "--policy", "/nonexistent/policy.toml", &s.url("/ok")]);
    assert_eq!(code(&out), 2);
}

#[test]
fn bad_allow_patterns_show_the_valid_forms() {
    for bad in ["exa mple.com", "host:0", "10.0.0.0/40", "foo.*.com", "http://x/"] {
        let out = wfetch(&["-sS", "--allow", bad, "http://127.0.0.1:9/"]);
        assert_eq!(code(&out), 2, "{bad}");
        assert!(stderr(&out).contains("valid forms"), "{}", stderr(&out));
    }
    let out = wfetch(&["--max-memory", "lots", "http://127.0.0.1:9/"]);
    assert_eq!(code(&out), 2);
}

#[test]
fn limit_flags_stop_the_guest_with_exit_111() {
    let s = server();
    for (args, word) in [
        (vec!["--max-fuel", "1000"], "fuel"),
        (vec!["--max-body-bytes", "1000"], "--max-body-bytes"),
        (vec!["--max-bytes-read", "1K"], "--max-bytes-read"),
        (vec!["--max-memory", "300K"], "--max-memory"),
    ] {
        let mut a = vec!["-sS"];
        a.extend(&args);
        let url = s.url("/ok");
        a.push(&url);
        let out = wfetch(&a);
        assert_eq!(code(&out), 111, "{args:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(word), "{args:?}: {}", stderr(&out));
    }
    let start = Instant::now();
    let out = wfetch(&["-sS", "--max-wall-time", "0.5", &s.url("/hang")]);
    assert_eq!(code(&out), 111, "{}", stderr(&out));
    assert!(stderr(&out).contains("--max-wall-time"), "{}", stderr(&out));
    assert!(start.elapsed() < Duration::from_secs(10));
}

/// The default guest's heap starts small and grows with `memory.grow`
/// as a fetch needs it (guest/http/src/heap.rs): a brotli body with a
/// 16 MiB window decodes whole; under a memory limit the growth is
/// refused and the fetch stops with the limit's error.
#[test]
fn the_default_guest_grows_its_heap_up_to_the_memory_limit() {
    let s = server();
    let out = wfetch(&["-sS", "--compressed", &s.url("/br-big")]);
    ok(&out);
    assert!(
        out.stdout == crate::util::server::big_body(),
        "{} bytes",
        out.stdout.len()
    );
    let out = wfetch(&["-sS", "--compressed", "--max-memory", "4M", &s.url("/br-big")]);
    assert_eq!(code(&out), 111, "{}", stderr(&out));
    assert!(stderr(&out).contains("--max-memory"), "{}", stderr(&out));
}

#[test]
fn a_hostile_guest_through_the_cli() {
    let s = server();
    let out = wfetch(&["-sS", "--guest", HOSTILE, "--max-fuel", "50M", "hostile://loop"]);
    assert_eq!(code(&out), 111, "{}", stderr(&out));
    // The URL names host "connect": the guest's connection elsewhere is denied.
    let out = wfetch(&[
        "-sS",
        "--guest",
        HOSTILE,
        &format!("hostile://connect/127.0.0.1:{}", s.port),
    ]);
    assert_eq!(code(&out), 110, "{}", stderr(&out));
    let out = wfetch(&[
        "-sS",
        "--guest",
        HOSTILE,
        "--allow",
        &format!("127.0.0.1:{}", s.port),
        &format!("hostile://connect/127.0.0.1:{}", s.port),
    ]);
    ok(&out);
}

#[test]
fn help_lists_the_sandbox_flags() {
    let out = wfetch(&["--help"]);
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--allow",
        "--policy",
        "--max-memory",
        "--max-fuel",
        "--max-wall-time",
        "--max-connections",
    ] {
        assert!(text.contains(flag), "{flag} missing from --help");
    }
}

#[test]
fn a_connection_reused_from_the_pool_counts_against_the_limits() {
    // nginx's /redirect is a same-origin 302: the guest hands the
    // connection back and takes it again for the second request.
    let n = crate::util::nginx::nginx();
    let url = n.http("/redirect");
    let out = crate::util::wfetch(&["-sS", "-L", "--max-total-connections", "1", &url]);
    assert_eq!(
        out.status.code(),
        Some(111),
        "a reuse is a second connection of the fetch: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = crate::util::wfetch(&[
        "-sS",
        "-L",
        "-w",
        "%{num_connects}",
        "--max-total-connections",
        "2",
        &url,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.stdout.ends_with(b"1"),
        "one connection dialled, reused once: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// The `hostile://remember` reports of several fetches: the first from a
/// clean instance, and every other one the same.
fn assert_all_start_clean(reports: &[String]) {
    let first = &reports[0];
    assert!(
        first.starts_with("calls=0 deep=0 pages="),
        "a fresh instance starts clean: {first}"
    );
    for r in reports {
        assert_eq!(r, first, "every fetch starts from the same memory: {reports:?}");
    }
}

#[tokio::test(flavor = "current_thread")]
async fn instances_made_ahead_never_take_the_last_slots() {
    // Each guest (own spare slot) keeps one instance made ahead. With more
    // guests than instance slots, spares must still leave slots for
    // fetches: every fetch gets one, and at least SPARE_HEADROOM are never
    // held by spares (without that, spares filled all slots but the one
    // the fetches took turns on).
    // A runtime of its own: its instance slots are not shared with the
    // other tests.
    let runtime = Arc::new(Runtime::new().expect("runtime"));
    let wasm = std::fs::read(HOSTILE).expect("read the hostile guest");
    let hostile = runtime.load("hostile", &wasm).expect("load the hostile guest");
    let net = net(Policy::allow_all());
    let mut guests_with_spares = Vec::new();
    for i in 0..(wfetch::engine::MAX_INSTANCES + 8) {
        let guest = hostile.clone().with_limits(test_limits()).with_own_pool();
        let req = request("hostile://remember");
        let fetch = guest.fetch(net.clone(), &req, Box::new(SharedSink::default()));
        let r = tokio::time::timeout(Duration::from_secs(10), fetch)
            .await
            .unwrap_or_else(|_| panic!("fetch {i} waited for a slot that spares hold"));
        r.expect("remember succeeds");
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
        guests_with_spares.push(guest);
    }
    let spares = guests_with_spares.iter().filter(|g| g.spare_ready()).count();
    assert!(spares > 0, "no spares were made at all");
    let most = wfetch::engine::MAX_INSTANCES as usize - wfetch::engine::SPARE_HEADROOM;
    assert!(
        spares <= most,
        "{spares} spares hold instance slots (at most {most} may): fetches would run one at a time"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn the_instance_made_ahead_for_the_next_fetch_starts_clean() {
    // One guest (with its own spare slot) and one network configuration:
    // each fetch after the first runs in the instance made ahead while the
    // one before it finished. It must be as clean as any fresh instance.
    let guest = guests().0.clone().with_limits(test_limits()).with_own_pool();
    let net = net(Policy::allow_all());
    let mut reports = Vec::new();
    for i in 0..4 {
        let sink = SharedSink::default();
        let r = guest
            .fetch(net.clone(), &request("hostile://remember"), Box::new(sink))
            .await;
        reports.push(r.expect("remember succeeds").head.reason);
        for _ in 0..1000 {
            if guest.spare_ready() {
                break;
            }
            tokio::task::yield_now().await;
        }
        assert!(guest.spare_ready(), "no instance was made ahead after fetch {i}");
    }
    // Another configuration does not take it (a new one is made).
    let other = net_resolving(Policy::allow_all(), HashMap::new());
    let r = guest
        .fetch(other, &request("hostile://remember"), Box::new(SharedSink::default()))
        .await;
    reports.push(r.expect("remember succeeds").head.reason);
    assert_all_start_clean(&reports);
}

/// Every fetch runs in a fresh instance: nothing an earlier fetch wrote
/// (a static, a page 2 MiB deep in a static buffer, memory it grew) is
/// visible to the next, although instance slots and their memory pages
/// are reused (pooling allocator, pages reset after each fetch).
#[tokio::test(flavor = "current_thread")]
async fn no_fetch_sees_what_an_earlier_one_left_in_memory() {
    let mut reports = Vec::new();
    for _ in 0..4 {
        let (r, _, _) = hostile("hostile://remember", test_limits(), Policy::allow_all()).await;
        reports.push(r.expect("remember succeeds").head.reason);
    }
    // And two at once (two slots in use together).
    let ((a, _, _), (b, _, _)) = tokio::join!(
        hostile("hostile://remember", test_limits(), Policy::allow_all()),
        hostile("hostile://remember", test_limits(), Policy::allow_all())
    );
    reports.push(a.expect("remember succeeds").head.reason);
    reports.push(b.expect("remember succeeds").head.reason);
    assert_all_start_clean(&reports);
}
