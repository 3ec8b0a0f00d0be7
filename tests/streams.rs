//! The host's asyncio-like streams against real sockets on 127.0.0.1, with
//! a peer each test controls. The reader cases follow CPython's
//! Lib/test/test_asyncio/test_streams.py (test_read*, test_readline*,
//! test_readuntil*, test_readexactly*, test_at_eof), translated from
//! `feed_data` / `feed_eof` to a peer writing and shutting down a socket.
//!
//! Where CPython feeds several chunks before the call, the peer writes them
//! in one `write_all` (one loopback segment) and the test waits for them to
//! arrive ([`settle`]); where CPython feeds them after the call, the peer
//! writes them one by one while the reader waits.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio_rustls::TlsAcceptor;

use wfetch::net::{connect, NetConfig, TlsRequest};
use wfetch::policy::Policy;
use wfetch::streams::{self, Counters, ExtraInfo, StreamError, StreamOptions, StreamReader, StreamWriter, Timeouts};
use wfetch::tls::TlsSettings;

use crate::util::certs::certs;
use crate::util::{closed_port, pseudo_random};

// ---------------------------------------------------------------------------
// Harness

/// Bound on any single wait of the test itself, so a bug fails the test
/// instead of hanging it.
async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(30), fut)
        .await
        .unwrap_or_else(|_| panic!("{what}: no result within 30 s"))
}

/// Let bytes the peer just wrote on loopback arrive in our socket.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(50)).await;
}

fn timeouts(idle: Duration) -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(5),
        idle,
        deadline: None,
    }
}

fn options() -> StreamOptions {
    StreamOptions {
        timeouts: timeouts(Duration::from_secs(5)),
        ..StreamOptions::default()
    }
}

fn with_limit(limit: usize) -> StreamOptions {
    StreamOptions { limit, ..options() }
}

fn net(timeouts: Timeouts) -> NetConfig {
    let tls = wfetch::tls::client_config(&TlsSettings {
        cacert: Some(certs().ca_pem.clone()),
        insecure: false,
    })
    .expect("client TLS config");
    NetConfig {
        tls,
        policy: Policy::allow_all(),
        resolve: HashMap::new(),
        timeouts,
        tape: None,
    }
}

/// A connection from the host's streams to a peer socket of the test.
struct Tcp {
    reader: StreamReader,
    writer: StreamWriter,
    peer: TcpStream,
    counters: Arc<Counters>,
    listener_addr: SocketAddr,
}

/// A listener on 127.0.0.1:0, with a small receive buffer for accepted
/// sockets when asked (so a peer that stops reading fills up quickly).
fn listener(rcvbuf: Option<u32>) -> TcpListener {
    let socket = TcpSocket::new_v4().unwrap();
    if let Some(n) = rcvbuf {
        socket.set_recv_buffer_size(n).unwrap();
    }
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    socket.listen(64).unwrap()
}

async fn tcp_with(opts: StreamOptions, peer_rcvbuf: Option<u32>) -> Tcp {
    let listener = listener(peer_rcvbuf);
    let addr = listener.local_addr().unwrap();
    let conn = within("connect", connect(&net(opts.timeouts), "127.0.0.1", addr.port(), None))
        .await
        .expect("connect to the test peer");
    let (peer, _) = within("accept", listener.accept()).await.unwrap();
    let counters = Arc::new(Counters::default());
    let (reader, writer) = streams::open(conn, opts, counters.clone());
    Tcp {
        reader,
        writer,
        peer,
        counters,
        listener_addr: addr,
    }
}

async fn tcp(opts: StreamOptions) -> Tcp {
    tcp_with(opts, None).await
}

/// Write bytes from the peer.
async fn send(peer: &mut (impl AsyncWrite + Unpin), data: &[u8]) {
    within("peer write", peer.write_all(data)).await.expect("peer write");
    peer.flush().await.expect("peer flush");
}

/// Write all of `data` from the peer in a task while the test reads;
/// the task gives the peer back.
fn spawn_send<P: AsyncWrite + Unpin + Send + 'static>(mut peer: P, data: Vec<u8>) -> tokio::task::JoinHandle<P> {
    tokio::spawn(async move {
        peer.write_all(&data).await.unwrap();
        peer.flush().await.unwrap();
        peer
    })
}

/// Everything the peer receives until EOF.
async fn peer_read_to_end(peer: &mut (impl AsyncRead + Unpin)) -> Vec<u8> {
    let mut out = Vec::new();
    within("peer read to EOF", peer.read_to_end(&mut out))
        .await
        .expect("peer read");
    out
}

/// Exactly n bytes at the peer.
async fn peer_read_exact(peer: &mut (impl AsyncRead + Unpin), n: usize) -> Vec<u8> {
    let mut out = vec![0; n];
    within("peer read", peer.read_exact(&mut out)).await.expect("peer read");
    out
}

fn overrun(r: Result<Vec<u8>, StreamError>) -> (u64, String) {
    match r {
        Err(StreamError::LimitOverrun { consumed, message }) => (consumed, message),
        other => panic!("expected limit-overrun, got {other:?}"),
    }
}

fn incomplete(partial: &[u8], expected: Option<u64>) -> Result<Vec<u8>, StreamError> {
    Err(StreamError::IncompleteRead {
        partial: partial.to_vec(),
        expected,
    })
}

fn ok(data: &[u8]) -> Result<Vec<u8>, StreamError> {
    Ok(data.to_vec())
}

// ---------------------------------------------------------------------------
// Reader: read(n)

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_zero_returns_empty_at_once_and_keeps_the_buffer() {
    // test_read_zero
    let mut t = tcp(options()).await;
    // Nothing has been sent: read(0) must not wait for data.
    assert_eq!(within("read(0)", t.reader.read(0)).await, ok(b""));
    send(&mut t.peer, b"some data").await;
    settle().await;
    assert_eq!(t.reader.read(4).await, ok(b"some"));
    assert_eq!(t.reader.read(0).await, ok(b""));
    assert_eq!(t.reader.buffered(), 5, "read(0) consumed buffered data");
    assert_eq!(t.reader.read(100).await, ok(b" data"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_returns_what_arrived_without_waiting_for_n() {
    // test_read: fed after the call, read(30) returns the 5 bytes at once.
    let mut t = tcp(options()).await;
    let reader = &mut t.reader;
    let peer = &mut t.peer;
    let (got, ()) = tokio::join!(reader.read(30), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        send(peer, b"chunk").await;
    });
    assert_eq!(got, ok(b"chunk"));
    assert_eq!(t.reader.buffered(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_n_splits_at_n_across_line_breaks() {
    // test_read_line_breaks
    let mut t = tcp(options()).await;
    send(&mut t.peer, b"line1\nline2").await;
    settle().await;
    assert_eq!(t.reader.read(5).await, ok(b"line1"));
    assert_eq!(t.reader.read(5).await, ok(b"\nline"));
    assert_eq!(t.reader.read(5).await, ok(b"2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_waits_then_returns_empty_at_eof() {
    // test_read_eof
    let mut t = tcp(options()).await;
    let reader = &mut t.reader;
    let peer = &mut t.peer;
    let started = Instant::now();
    let (got, ()) = tokio::join!(reader.read(1024), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        peer.shutdown().await.unwrap();
    });
    assert_eq!(got, ok(b""));
    assert!(
        started.elapsed() >= Duration::from_millis(90),
        "read returned before EOF"
    );
    assert!(t.reader.at_eof());
    assert_eq!(t.reader.read(10).await, ok(b""), "EOF is sticky");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_minus_one_reads_everything_until_eof() {
    // test_read_until_eof, with the chunks spread out in time and a body
    // several times the limit.
    let mut t = tcp(with_limit(1000)).await;
    let mut expected = b"chunk1\nchunk2".to_vec();
    expected.extend_from_slice(&pseudo_random(10_000, 7));
    let payload = expected.clone();
    let mut peer = t.peer;
    let sender = tokio::spawn(async move {
        send(&mut peer, &payload[..7]).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        send(&mut peer, &payload[7..13]).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        send(&mut peer, &payload[13..]).await;
        peer.shutdown().await.unwrap();
        peer
    });
    assert_eq!(within("read(-1)", t.reader.read(-1)).await, Ok(expected));
    assert_eq!(t.reader.buffered(), 0);
    assert!(t.reader.at_eof());
    sender.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_rejects_negative_lengths_other_than_minus_one() {
    let mut t = tcp(options()).await;
    assert!(matches!(t.reader.read(-2).await, Err(StreamError::InvalidArgument(_))));
    send(&mut t.peer, b"x").await;
    assert_eq!(t.reader.read(1).await, ok(b"x"), "the stream still works");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_reports_a_reset_connection() {
    // test_read_exception, with a real RST.
    let mut t = tcp(options()).await;
    #[allow(deprecated)] // zero linger: close sends RST
    t.peer.set_linger(Some(Duration::ZERO)).unwrap();
    drop(t.peer);
    assert!(
        matches!(
            within("read", t.reader.read(10)).await,
            Err(StreamError::ConnectionReset(_))
        ),
        "a reset must be reported as connection-reset"
    );
    // Sticky.
    assert!(matches!(
        t.reader.readline().await,
        Err(StreamError::ConnectionReset(_))
    ));
}

// ---------------------------------------------------------------------------
// Reader: readline

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readline_waits_for_the_newline_across_chunks() {
    // test_readline
    let mut t = tcp(options()).await;
    let reader = &mut t.reader;
    let peer = &mut t.peer;
    let (line, ()) = tokio::join!(reader.readline(), async {
        for chunk in [&b"chunk1 "[..], b"chunk2 ", b"chunk3 \n chunk4"] {
            tokio::time::sleep(Duration::from_millis(30)).await;
            send(peer, chunk).await;
        }
    });
    assert_eq!(line, ok(b"chunk1 chunk2 chunk3 \n"));
    settle().await;
    assert_eq!(t.reader.read(100).await, ok(b" chunk4"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readline_then_read_byte_count() {
    // test_readline_read_byte_count and test_readline_nolimit_nowait
    let mut t = tcp(options()).await;
    send(&mut t.peer, b"line1\nline2\nline3\nline4\n").await;
    t.peer.shutdown().await.unwrap();
    settle().await;
    assert_eq!(t.reader.readline().await, ok(b"line1\n"));
    assert_eq!(t.reader.read(7).await, ok(b"line2\nl"));
    assert_eq!(t.reader.readline().await, ok(b"ine3\n"));
    assert_eq!(t.reader.read(-1).await, ok(b"line4\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readline_returns_the_partial_last_line_at_eof() {
    // test_readline_eof and test_readline_empty_eof
    let mut t = tcp(options()).await;
    send(&mut t.peer, b"some data").await;
    t.peer.shutdown().await.unwrap();
    assert_eq!(within("readline", t.reader.readline()).await, ok(b"some data"));
    assert_eq!(t.reader.readline().await, ok(b""));
    assert_eq!(t.reader.readline().await, ok(b""));
    assert!(t.reader.at_eof());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readline_overrun_discards_the_examined_data() {
    // test_readline_limit, all three parts, limit 7.
    let mut t = tcp(with_limit(7)).await;

    // Separator found past the limit: the whole line goes, the next stays.
    send(&mut t.peer, b"chunk1chunk2\nchunk3\n").await;
    settle().await;
    let (consumed, message) = overrun(t.reader.readline().await);
    assert_eq!(consumed, 12);
    assert!(message.contains("is found"), "{message}");
    assert_eq!(t.reader.buffered(), 7, "only \"chunk3\\n\" may remain");
    assert_eq!(t.reader.readline().await, ok(b"chunk3\n"));

    // The limit is strict: 7 bytes before the newline pass, 8 do not.
    send(&mut t.peer, b"1234567\n").await;
    settle().await;
    assert_eq!(t.reader.readline().await, ok(b"1234567\n"));
    assert_eq!(t.reader.buffered(), 0);
    send(&mut t.peer, b"12345678\n").await;
    settle().await;
    let (consumed, _) = overrun(t.reader.readline().await);
    assert_eq!(consumed, 8);
    assert_eq!(t.reader.buffered(), 0);

    // No separator at all: everything examined is discarded.
    send(&mut t.peer, b"12345678").await;
    settle().await;
    let (consumed, message) = overrun(t.reader.readline().await);
    assert_eq!(consumed, 8);
    assert!(message.contains("not found"), "{message}");
    assert_eq!(t.reader.buffered(), 0);

    // The stream goes on.
    send(&mut t.peer, b"ok\n").await;
    assert_eq!(t.reader.readline().await, ok(b"ok\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readline_overrun_with_existing_data() {
    // test_readline_limit_with_existing_data, limit 3.
    let mut t = tcp(with_limit(3)).await;
    send(&mut t.peer, b"line1\nline2\n").await;
    settle().await;
    let (consumed, _) = overrun(t.reader.readline().await);
    assert_eq!(consumed, 5);
    assert_eq!(t.reader.buffered(), 6);
    // "line2\n" is longer than the limit too (found at 5 > 3).
    let (consumed, _) = overrun(t.reader.readline().await);
    assert_eq!(consumed, 5);
    assert_eq!(t.reader.buffered(), 0);

    send(&mut t.peer, b"line1li").await;
    settle().await;
    let (consumed, message) = overrun(t.reader.readline().await);
    assert_eq!(consumed, 7);
    assert!(message.contains("not found"), "{message}");
    assert_eq!(t.reader.buffered(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_limit_is_64_kib() {
    assert_eq!(streams::DEFAULT_LIMIT, 64 * 1024);
    let mut t = tcp(options()).await;
    assert_eq!(t.reader.limit(), 64 * 1024);
    // 65536 bytes before the newline: exactly at the limit, accepted.
    let mut at_limit = vec![b'a'; 64 * 1024];
    at_limit.push(b'\n');
    // One more: the separator is found past the limit.
    let mut over = vec![b'b'; 64 * 1024 + 1];
    over.push(b'\n');
    let mut all = at_limit.clone();
    all.extend_from_slice(&over);
    all.extend_from_slice(b"next\n");
    send(&mut t.peer, &all).await;
    settle().await;
    assert_eq!(t.reader.readline().await, Ok(at_limit));
    let (consumed, message) = overrun(t.reader.readline().await);
    assert_eq!(
        (consumed, message.contains("is found")),
        (64 * 1024 + 1, true),
        "{message}"
    );
    assert_eq!(t.reader.readline().await, ok(b"next\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replies_read_in_pieces_keep_the_buffer_at_one_chunk() {
    // A head and its body arrive together; the head is taken with
    // readuntil, the body with read(n). Taking the body must not grow the
    // buffer (it used to double on each connection's first reply, copying
    // it: memory and page faults for every kept-alive connection).
    let mut t = tcp(options()).await;
    for i in 0..3 {
        let body = format!("reply {i}");
        let reply = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
        send(&mut t.peer, reply.as_bytes()).await;
        settle().await;
        let head = t.reader.readuntil(&[b"\r\n\r\n".to_vec()]).await.expect("the head");
        assert!(head.starts_with(b"HTTP/1.1 200 OK\r\n"));
        assert_eq!(t.reader.read(body.len() as i64).await, ok(body.as_bytes()));
        assert!(
            t.reader.capacity() <= 64 * 1024,
            "reply {i}: the buffer grew to {} bytes",
            t.reader.capacity()
        );
    }
}

// ---------------------------------------------------------------------------
// Reader: readuntil

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readuntil_rejects_empty_separators() {
    // test_readuntil_separator
    let mut t = tcp(options()).await;
    assert!(matches!(
        t.reader.readuntil(&[]).await,
        Err(StreamError::InvalidArgument(_))
    ));
    assert!(matches!(
        t.reader.readuntil(&[b"".to_vec()]).await,
        Err(StreamError::InvalidArgument(_))
    ));
    assert!(matches!(
        t.reader.readuntil(&[b"\n".to_vec(), b"".to_vec()]).await,
        Err(StreamError::InvalidArgument(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readuntil_includes_the_separator_and_keeps_the_rest() {
    // test_readuntil_multi_chunks
    let mut t = tcp(options()).await;
    let sep = [b"AAA".to_vec()];
    send(&mut t.peer, b"lineAAA").await;
    assert_eq!(within("readuntil", t.reader.readuntil(&sep)).await, ok(b"lineAAA"));
    assert_eq!(t.reader.buffered(), 0);
    send(&mut t.peer, b"lineAAAxxx").await;
    settle().await;
    assert_eq!(t.reader.readuntil(&sep).await, ok(b"lineAAA"));
    assert_eq!(t.reader.read(10).await, ok(b"xxx"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readuntil_finds_a_separator_split_across_chunks() {
    // test_readuntil_multi_chunks_1: QWEaa / XYaa / a
    let mut t = tcp(options()).await;
    let reader = &mut t.reader;
    let peer = &mut t.peer;
    let aaa = [b"aaa".to_vec()];
    let (got, ()) = tokio::join!(reader.readuntil(&aaa), async {
        for chunk in [&b"QWEaa"[..], b"XYaa", b"a"] {
            tokio::time::sleep(Duration::from_millis(30)).await;
            send(peer, chunk).await;
        }
    });
    assert_eq!(got, ok(b"QWEaaXYaaa"));

    // ... and with the separator split byte by byte.
    let reader = &mut t.reader;
    let peer = &mut t.peer;
    let crlfcrlf = [b"\r\n\r\n".to_vec()];
    let (got, ()) = tokio::join!(reader.readuntil(&crlfcrlf), async {
        for chunk in [&b"head\r"[..], b"\n", b"\r", b"\n", b"body"] {
            tokio::time::sleep(Duration::from_millis(30)).await;
            send(peer, chunk).await;
        }
    });
    assert_eq!(got, ok(b"head\r\n\r\n"));
    settle().await;
    assert_eq!(t.reader.read(10).await, ok(b"body"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readuntil_at_eof_is_an_incomplete_read_with_the_data() {
    // test_readuntil_eof
    let mut t = tcp(options()).await;
    send(&mut t.peer, b"some dataAA").await;
    t.peer.shutdown().await.unwrap();
    assert_eq!(
        within("readuntil", t.reader.readuntil(&[b"AAA".to_vec()])).await,
        incomplete(b"some dataAA", None)
    );
    assert_eq!(t.reader.buffered(), 0);
    assert!(t.reader.at_eof());
    assert_eq!(t.reader.readuntil(&[b"AAA".to_vec()]).await, incomplete(b"", None));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readuntil_overrun_keeps_the_data_for_recovery() {
    // test_readuntil_limit_found_sep. CPython uses limit 3 and feeds the
    // last "A" straight into the buffer; over a socket the reader (like
    // asyncio's transport) stops taking data once the buffer holds more
    // than twice the limit, so the limit here is 6: "some dataAA" (11
    // bytes) still lets the "A" in, and offset 9 is still past the limit.
    let mut t = tcp(with_limit(6)).await;
    let sep = [b"AAA".to_vec()];
    send(&mut t.peer, b"some dataAA").await;
    settle().await;
    let (consumed, message) = overrun(t.reader.readuntil(&sep).await);
    assert_eq!(consumed, 9);
    assert!(message.contains("not found"), "{message}");
    assert_eq!(t.reader.buffered(), 11, "the data stays in the buffer");

    send(&mut t.peer, b"A").await;
    settle().await;
    let (consumed, message) = overrun(t.reader.readuntil(&sep).await);
    assert_eq!(consumed, 9);
    assert!(message.contains("is found"), "{message}");
    assert_eq!(t.reader.buffered(), 12);

    // Recovery: the caller reads what was examined, then carries on.
    assert_eq!(t.reader.readexactly(consumed).await, ok(b"some data"));
    assert_eq!(t.reader.readuntil(&sep).await, ok(b"AAA"));
    send(&mut t.peer, b"xyAAA").await;
    assert_eq!(t.reader.readuntil(&sep).await, ok(b"xyAAA"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readuntil_overrun_while_waiting_for_more_data() {
    // The limit is checked as data arrives, not only on what was there.
    let mut t = tcp(with_limit(16)).await;
    let reader = &mut t.reader;
    let peer = &mut t.peer;
    let lf = [b"\n".to_vec()];
    let (got, ()) = tokio::join!(reader.readuntil(&lf), async {
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            send(peer, b"0123").await;
        }
    });
    let (consumed, message) = overrun(got);
    assert!(message.contains("not found"), "{message}");
    assert!((17..=20).contains(&consumed), "consumed {consumed}");
    assert_eq!(t.reader.buffered() as u64, consumed, "examined data stays buffered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readuntil_several_separators_the_first_to_end_wins() {
    // Python 3.13's tuple of separators.
    let mut t = tcp(options()).await;
    send(&mut t.peer, b"some data\r\nsome data\r\nanother line\n").await;
    settle().await;
    let crlf_lf = [b"\n".to_vec(), b"\r\n".to_vec()];
    assert_eq!(t.reader.readuntil(&crlf_lf).await, ok(b"some data\r\n"));
    let lf_crlf = [b"\r\n".to_vec(), b"\n".to_vec()];
    assert_eq!(t.reader.readuntil(&lf_crlf).await, ok(b"some data\r\n"));
    // "e" ends before any newline does.
    let with_e = [b"\r\n".to_vec(), b"\n".to_vec(), b"e".to_vec()];
    assert_eq!(t.reader.readuntil(&with_e).await, ok(b"anothe"));
    // A longer separator that ends first beats a shorter one ending later.
    assert_eq!(t.reader.readline().await, ok(b"r line\n"));
    send(&mut t.peer, b"abcXYZdef|").await;
    settle().await;
    assert_eq!(
        t.reader.readuntil(&[b"|".to_vec(), b"XYZ".to_vec()]).await,
        ok(b"abcXYZ")
    );
    assert_eq!(t.reader.readuntil(&[b"|".to_vec(), b"XYZ".to_vec()]).await, ok(b"def|"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readuntil_several_separators_tie_goes_to_the_shortest() {
    // CPython sorts the separators by length, so when two matches end at
    // the same byte the shorter one (which starts later) decides the limit
    // check. With limit 2, "ab\r\n" matched by "\r\n" starts at 2 (fine)
    // but matched by "\n" starts at 3 (past the limit).
    let mut t = tcp(with_limit(2)).await;
    send(&mut t.peer, b"ab\r\n").await;
    settle().await;
    let (consumed, message) = overrun(t.reader.readuntil(&[b"\r\n".to_vec(), b"\n".to_vec()]).await);
    assert_eq!(consumed, 3);
    assert!(message.contains("is found"), "{message}");
    assert_eq!(t.reader.readuntil(&[b"\r\n".to_vec()]).await, ok(b"ab\r\n"));
}

// ---------------------------------------------------------------------------
// Reader: readexactly and at_eof

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readexactly_waits_for_all_n_bytes() {
    // test_readexactly, and test_readexactly_limit (n beyond the limit).
    let mut t = tcp(with_limit(3)).await;
    let reader = &mut t.reader;
    let peer = &mut t.peer;
    let (got, ()) = tokio::join!(reader.readexactly(10), async {
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(30)).await;
            send(peer, b"chunk").await;
        }
    });
    assert_eq!(got, ok(b"chunkchunk"));
    assert_eq!(t.reader.readexactly(0).await, ok(b""));
    assert_eq!(within("readexactly", t.reader.readexactly(5)).await, ok(b"chunk"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readexactly_at_eof_carries_the_partial_bytes_and_n() {
    // test_readexactly_eof
    let mut t = tcp(options()).await;
    send(&mut t.peer, b"chunk").await;
    t.peer.shutdown().await.unwrap();
    assert_eq!(
        within("readexactly", t.reader.readexactly(10)).await,
        incomplete(b"chunk", Some(10))
    );
    assert_eq!(t.reader.buffered(), 0);
    assert_eq!(t.reader.readexactly(1).await, incomplete(b"", Some(1)));
    assert_eq!(t.reader.readexactly(0).await, ok(b""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_eof_once_the_buffer_is_empty_and_eof_arrived() {
    // test_at_eof
    let mut t = tcp(options()).await;
    assert!(!t.reader.at_eof());
    send(&mut t.peer, b"some data\n").await;
    settle().await;
    assert!(!t.reader.at_eof());
    assert_eq!(t.reader.readline().await, ok(b"some data\n"));
    assert!(!t.reader.at_eof(), "no EOF yet");
    send(&mut t.peer, b"some data\n").await;
    t.peer.shutdown().await.unwrap();
    settle().await;
    assert!(!t.reader.at_eof(), "data is still buffered or in flight");
    assert_eq!(t.reader.readline().await, ok(b"some data\n"));
    // EOF arrived with the data: no further read is needed to see it.
    assert!(t.reader.at_eof());
}

// ---------------------------------------------------------------------------
// Reader: bulk

/// Odd piece sizes, cycled.
const ODD: &[usize] = &[1, 3, 4093, 7, 65_537, 11, 100_003, 509, 262_147, 2, 31_337];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_mib_through_readexactly_in_odd_pieces() {
    let total = 10 * 1024 * 1024 + 17;
    let data = pseudo_random(total, 11);
    let mut t = tcp(options()).await;
    let payload = data.clone();
    let mut peer = t.peer;
    let sender = tokio::spawn(async move {
        let mut pos = 0;
        for (i, size) in ODD.iter().rev().cycle().enumerate() {
            if pos == payload.len() {
                break;
            }
            let end = (pos + size).min(payload.len());
            peer.write_all(&payload[pos..end]).await.unwrap();
            pos = end;
            if i % 50 == 0 {
                tokio::task::yield_now().await;
            }
        }
        peer.shutdown().await.unwrap();
        peer
    });
    let mut got = Vec::with_capacity(total);
    for size in ODD.iter().cycle() {
        let left = total - got.len();
        if left == 0 {
            break;
        }
        let piece = within("readexactly", t.reader.readexactly((*size).min(left) as u64))
            .await
            .expect("readexactly");
        assert_eq!(piece.len(), (*size).min(left));
        got.extend_from_slice(&piece);
    }
    assert!(got == data, "bytes were lost or reordered");
    assert_eq!(t.reader.readexactly(3).await, incomplete(b"", Some(3)));
    assert!(t.reader.at_eof());
    assert_eq!(t.counters.read.load(Ordering::Relaxed), total as u64);
    sender.await.unwrap();
}

/// Reads 12 MiB whose first `split` bytes are a "body" and the rest a
/// "next response", with large and small `read(n)` calls mixed (a large
/// read with nothing buffered goes from the socket straight into its
/// result): no read returns more than it asked for or more than
/// `DIRECT_READ_MAX`, none returns empty before EOF, and the bytes after
/// the body are still there, in order, for `readuntil`. (How much one
/// read takes depends on what the socket holds: bench/ measures that.)
async fn large_reads_stop_at_n(reader: &mut StreamReader, data: &[u8], split: usize) {
    let sizes = [2 * 1024 * 1024 + 5, 65_536, 1, 1_048_577, 70_001, 300, 4 * 1024 * 1024];
    let mut got = Vec::with_capacity(data.len());
    for size in sizes.iter().cycle() {
        let want = (*size).min(split - got.len());
        if want == 0 {
            break;
        }
        let piece = within("read(n)", reader.read(want as i64)).await.expect("read(n)");
        assert!(!piece.is_empty(), "an empty read before EOF");
        assert!(piece.len() <= want, "read({want}) returned {} bytes", piece.len());
        assert!(
            piece.len() <= streams::DIRECT_READ_MAX,
            "one read took {} bytes",
            piece.len()
        );
        got.extend_from_slice(&piece);
    }
    assert!(got == data[..split], "the body's bytes were lost or reordered");
    let rest = within("readuntil", reader.readuntil(&[b"END\n".to_vec()]))
        .await
        .expect("the bytes after the body");
    assert!(rest == data[split..], "the bytes after the body were lost");
}

/// 12 MiB ending in "END\n", the rest without it.
fn body_then_marker() -> Vec<u8> {
    let mut data: Vec<u8> = pseudo_random(12 * 1024 * 1024, 5)
        .into_iter()
        .map(|b| if b == b'\n' { b'.' } else { b })
        .collect();
    data.extend_from_slice(b"END\n");
    data
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_reads_go_straight_to_the_caller_and_stop_at_n() {
    let data = body_then_marker();
    let split = data.len() - 50_003;
    let mut t = tcp(options()).await;
    let sender = spawn_send(t.peer, data.clone());
    large_reads_stop_at_n(&mut t.reader, &data, split).await;
    assert_eq!(t.counters.read.load(Ordering::Relaxed), data.len() as u64);
    // The connection is intact: the peer is still there and answers.
    let mut peer = sender.await.unwrap();
    send(&mut peer, b"more").await;
    assert_eq!(within("read", t.reader.read(100_000)).await, ok(b"more"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_reads_over_tls_stop_at_n() {
    let data = body_then_marker();
    let split = data.len() - 40_001;
    let mut t = tls_with(options(), &[]).await;
    let sender = spawn_send(t.peer, data.clone());
    large_reads_stop_at_n(&mut t.reader, &data, split).await;
    let mut peer = sender.await.unwrap();
    peer.shutdown().await.unwrap();
    assert_eq!(within("read at EOF", t.reader.read(1 << 20)).await, ok(b""));
    assert!(t.reader.at_eof());
}

/// TLS decrypts one record (16 KiB) at a time; a large read takes every
/// record already received (tokio-rustls's read loop, through the
/// read-ahead buffer), not just the first, so that a bulk body crosses
/// to the sink in few pieces.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_tls_read_takes_every_record_already_received() {
    let mut t = tls_with(options(), &[]).await;
    let data = pseudo_random(200 * 1024, 11);
    let sender = spawn_send(t.peer, data.clone());
    // Let the records arrive: loopback's receive window takes 64 KiB or
    // more before the sender has to wait for us.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let first = within("read(n)", t.reader.read(1 << 20)).await.expect("read(n)");
    assert!(
        first.len() > 2 * 16 * 1024,
        "one large read took only {} bytes (one record is 16 KiB)",
        first.len()
    );
    let mut got = first;
    while got.len() < data.len() {
        let piece = within("read(n)", t.reader.read(1 << 20)).await.expect("read(n)");
        assert!(!piece.is_empty());
        got.extend_from_slice(&piece);
    }
    assert!(got == data, "the bytes were lost or reordered");
    within("the peer's write", sender).await.unwrap();
}

/// While a bulk body streams in, large reads raise the socket's receive
/// low-water mark (fewer wake-ups); bytes that arrive below the mark are
/// still returned after at most `LOWAT_WAIT`, not at the idle timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_bulk_body_a_small_tail_is_not_held_back() {
    for tls in [false, true] {
        // The writer is kept: dropping it would close the connection.
        let (mut reader, _writer, peer): (StreamReader, StreamWriter, Box<dyn AsyncWrite + Send + Unpin>) = if tls {
            let t = tls_with(options(), &[]).await;
            (t.reader, t.writer, Box::new(t.peer))
        } else {
            let t = tcp(options()).await;
            (t.reader, t.writer, Box::new(t.peer))
        };
        let bulk = pseudo_random(8 * 1024 * 1024, 3);
        let sender = spawn_send(peer, bulk.clone());
        let mut got = Vec::with_capacity(bulk.len());
        while got.len() < bulk.len() {
            let want = (bulk.len() - got.len()).min(1 << 20);
            let piece = within("read(n)", reader.read(want as i64)).await.expect("read(n)");
            assert!(!piece.is_empty());
            got.extend_from_slice(&piece);
        }
        assert!(got == bulk, "tls {tls}: the bulk bytes were lost or reordered");
        let mut peer = sender.await.unwrap();
        // The peer stays open and sends a few bytes: far below the mark.
        let (tail, ()) = tokio::join!(
            tokio::time::timeout(Duration::from_secs(2), reader.read(1 << 20)),
            async {
                tokio::time::sleep(Duration::from_millis(50)).await;
                send(&mut peer, b"tail").await;
            }
        );
        let tail = tail.unwrap_or_else(|_| panic!("tls {tls}: the tail was held back (the idle timeout is 5 s)"));
        assert_eq!(tail, ok(b"tail"), "tls {tls}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_read_returns_what_arrived_and_empty_only_at_eof() {
    let mut t = tcp(options()).await;
    let reader = &mut t.reader;
    let peer = &mut t.peer;
    // Nothing buffered, a large n: the read waits, then returns the few
    // bytes that came rather than waiting for n.
    let (got, ()) = tokio::join!(reader.read(4 << 20), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        send(peer, b"chunk").await;
    });
    assert_eq!(got, ok(b"chunk"));
    t.peer.shutdown().await.unwrap();
    assert_eq!(within("read at EOF", t.reader.read(4 << 20)).await, ok(b""));
    assert!(t.reader.at_eof());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_mib_through_readuntil_in_odd_pieces() {
    // Records of odd lengths (no NUL inside), each ended by one of two
    // separators; the stream is sent in odd-sized writes that cut through
    // records and separators alike.
    let seps: [&[u8]; 2] = [b"\0END", b"\0\0"];
    let noise = pseudo_random(64 * 1024, 5);
    let mut records: Vec<Vec<u8>> = Vec::new();
    let mut stream = Vec::new();
    let mut i = 0usize;
    while stream.len() < 10 * 1024 * 1024 {
        let len = [1usize, 61_000, 17, 4097, 999, 33_333, 3][i % 7] + i % 13;
        let start = (i * 7919) % (noise.len() - len);
        let mut rec: Vec<u8> = noise[start..start + len].iter().map(|&b| b.max(1)).collect();
        rec.extend_from_slice(seps[i % 2]);
        stream.extend_from_slice(&rec);
        records.push(rec);
        i += 1;
    }
    let mut t = tcp(options()).await;
    let payload = stream.clone();
    let mut peer = t.peer;
    let sender = tokio::spawn(async move {
        let mut pos = 0;
        for size in ODD.iter().cycle() {
            if pos == payload.len() {
                break;
            }
            let end = (pos + size).min(payload.len());
            peer.write_all(&payload[pos..end]).await.unwrap();
            pos = end;
        }
        peer.shutdown().await.unwrap();
        peer
    });
    let separators: Vec<Vec<u8>> = seps.iter().map(|s| s.to_vec()).collect();
    let mut got = Vec::with_capacity(stream.len());
    for (n, rec) in records.iter().enumerate() {
        let piece = within("readuntil", t.reader.readuntil(&separators))
            .await
            .unwrap_or_else(|e| panic!("record {n}: {e}"));
        assert!(
            piece == *rec,
            "record {n} differs ({} vs {} bytes)",
            piece.len(),
            rec.len()
        );
        got.extend_from_slice(&piece);
    }
    assert!(got == stream);
    assert_eq!(t.reader.readuntil(&separators).await, incomplete(b"", None));
    assert!(t.reader.at_eof());
    sender.await.unwrap();
}

// ---------------------------------------------------------------------------
// Writer: write, writelines, drain

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_and_writelines_deliver_in_order() {
    let mut t = tcp(options()).await;
    t.writer.write(b"one ").unwrap();
    t.writer.writelines([&b"two "[..], b"", b"three "]).unwrap();
    t.writer.writelines(std::iter::empty::<&[u8]>()).unwrap();
    t.writer.write(b"").unwrap();
    t.writer.write(b"four\n").unwrap();
    within("drain", t.writer.drain()).await.unwrap();
    assert_eq!(peer_read_exact(&mut t.peer, 19).await, b"one two three four\n");
}

// As asyncio's transport, a write to an idle plain-TCP writer tries the
// socket at once. On a current-thread runtime the flushing task cannot run
// before the test yields, so these see exactly what write() itself did.

#[tokio::test(flavor = "current_thread")]
async fn a_write_to_an_idle_writer_goes_to_the_socket_at_once() {
    let t = tcp(options()).await;
    t.writer.write(b"GET / HTTP/1.1\r\n").unwrap();
    t.writer.writelines([&b"Host: a\r\n"[..], b"\r\n"]).unwrap();
    assert_eq!(t.writer.buffered(), 0, "nothing buffered: the socket took it");
    assert_eq!(t.counters.written.load(Ordering::Relaxed), 27);
    // Received without the writer's task ever running (a blocking read:
    // this thread never yields to the runtime).
    let peer = t.peer.into_std().unwrap();
    peer.set_nonblocking(false).unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = [0u8; 27];
    std::io::Read::read_exact(&mut &peer, &mut got).unwrap();
    assert_eq!(&got, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n");
}

#[tokio::test(flavor = "current_thread")]
async fn a_write_the_socket_cannot_take_whole_is_buffered_in_order() {
    let t = tcp_with(options(), Some(16 * 1024)).await;
    let big: Vec<u8> = (0..4 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
    t.writer.write(&big).unwrap();
    let direct = t.counters.written.load(Ordering::Relaxed) as usize;
    let buffered = t.writer.buffered();
    assert!(direct > 0, "the socket took nothing at once");
    assert!(buffered > 0, "a peer that does not read took 4 MiB at once");
    assert_eq!(direct + buffered, big.len());
    // Buffered data exists: later writes queue behind it, never overtake.
    t.writer.write(b"tail").unwrap();
    assert_eq!(t.writer.buffered(), buffered + 4);
    let mut peer = t.peer;
    let receiver = tokio::spawn(async move { peer_read_to_end(&mut peer).await });
    t.writer.close();
    within("wait_closed", t.writer.wait_closed()).await.unwrap();
    let got = receiver.await.unwrap();
    assert_eq!(got.len(), big.len() + 4);
    assert!(got[..big.len()] == big[..], "bytes were lost or reordered");
    assert_eq!(&got[big.len()..], b"tail");
}

#[tokio::test(flavor = "current_thread")]
async fn a_failed_direct_write_is_reported_by_the_calls_after_it() {
    let t = tcp(options()).await;
    t.writer.write(b"first").unwrap();
    // The peer goes away with "first" unread: its kernel answers the next
    // segment (or at once) with RST.
    drop(t.peer);
    // write() itself does not fail on I/O (asyncio reports the error on
    // the next call): once the RST is in, one write meets it on the socket
    // and the next one reports it.
    let mut outcome = Ok(());
    for _ in 0..100 {
        outcome = t.writer.write(b"more");
        if outcome.is_err() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(matches!(outcome, Err(StreamError::ConnectionReset(_))), "{outcome:?}");
    let drained = within("drain", t.writer.drain()).await;
    assert!(matches!(drained, Err(StreamError::ConnectionReset(_))), "{drained:?}");
    t.writer.close();
    let closed = within("wait_closed", t.writer.wait_closed()).await;
    assert!(matches!(closed, Err(StreamError::ConnectionReset(_))), "{closed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_mib_written_in_odd_pieces_arrive_intact() {
    let total = 10 * 1024 * 1024 + 5;
    let data = pseudo_random(total, 23);
    let opts = StreamOptions {
        high_water: 100_000,
        ..options()
    };
    let t = tcp(opts).await;
    let mut peer = t.peer;
    let receiver = tokio::spawn(async move { peer_read_to_end(&mut peer).await });
    let mut pos = 0;
    let mut max_buffered = 0;
    for (i, size) in ODD.iter().cycle().enumerate() {
        if pos == total {
            break;
        }
        let end = (pos + size).min(total);
        let piece = &data[pos..end];
        if i % 2 == 0 {
            t.writer.write(piece).unwrap();
        } else {
            let (a, b) = piece.split_at(piece.len() / 2);
            let (b, c) = b.split_at(b.len() / 3);
            t.writer.writelines([a, b, c]).unwrap();
        }
        max_buffered = max_buffered.max(t.writer.buffered());
        pos = end;
        within("drain", t.writer.drain()).await.unwrap();
    }
    t.writer.close();
    within("wait_closed", t.writer.wait_closed()).await.unwrap();
    let got = receiver.await.unwrap();
    assert_eq!(got.len(), total);
    assert!(got == data, "bytes were lost or reordered");
    assert_eq!(t.counters.written.load(Ordering::Relaxed), total as u64);
    let biggest = ODD.iter().max().unwrap();
    assert!(max_buffered <= 100_000 + biggest, "buffer grew to {max_buffered}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_waits_above_high_water_until_low_water() {
    // The marks are far apart (6 MiB) compared with what one wake-up of
    // the flushing task can move (at most the socket's send buffer), so
    // the buffer is seen between them while the peer catches up.
    let high = 8 * 1024 * 1024;
    let low = high / 4;
    let opts = StreamOptions {
        high_water: high,
        ..options()
    };
    assert_eq!(streams::DEFAULT_HIGH_WATER, 64 * 1024);
    let mut t = tcp_with(opts, Some(16 * 1024)).await;
    assert_eq!((t.writer.high_water(), t.writer.low_water()), (high, low));
    // A writer that drains after each piece, to a peer that does not
    // read: the buffer ends up stuck above the high mark (so drain waits)
    // but never more than one piece above it.
    let piece = 1024 * 1024;
    let block = vec![b'x'; piece];
    let mut written = 0;
    let stuck = loop {
        t.writer.write(&block).unwrap();
        written += piece;
        if tokio::time::timeout(Duration::from_millis(300), t.writer.drain())
            .await
            .is_err()
        {
            let n = wait_until_stuck(&t.writer).await;
            if n > high {
                break n;
            }
        }
        assert!(written < 512 * 1024 * 1024, "drain never waited");
    };
    assert!(stuck <= high + piece, "buffered {stuck}, high {high}");
    assert!(
        tokio::time::timeout(Duration::from_millis(300), t.writer.drain())
            .await
            .is_err(),
        "drain returned above the high mark"
    );
    assert_eq!(t.writer.buffered(), stuck, "nothing moves while the peer does not read");

    // The peer reads. The drain must keep waiting while the buffer is
    // between the marks, and return once it is at most the low mark.
    let drain = t.writer.drain();
    tokio::pin!(drain);
    let mut seen_between = false;
    let mut buf = vec![0u8; 64 * 1024];
    let mut received = 0usize;
    let done = loop {
        let before = t.writer.buffered();
        if tokio::time::timeout(Duration::ZERO, &mut drain).await.is_ok() {
            break true;
        }
        if before > low && before <= high {
            seen_between = true;
        }
        if received >= written {
            break false;
        }
        let n = within("peer read", t.peer.read(&mut buf)).await.unwrap();
        assert!(n > 0);
        assert!(buf[..n].iter().all(|&b| b == b'x'));
        received += n;
    };
    assert!(done, "drain never returned");
    let after = t.writer.buffered();
    assert!(after <= low, "drain returned with {after} buffered (low {low})");
    assert!(
        seen_between,
        "never saw drain waiting with the buffer between the marks"
    );
    // Everything still arrives.
    t.writer.close();
    let rest = peer_read_to_end(&mut t.peer).await;
    assert_eq!(received + rest.len(), written);
    assert!(rest.iter().all(|&b| b == b'x'));
    within("wait_closed", t.writer.wait_closed()).await.unwrap();
}

/// Wait until the writer's buffer has stopped moving (the peer does not
/// read and the socket takes no more); returns its size.
async fn wait_until_stuck(writer: &StreamWriter) -> usize {
    let mut last = writer.buffered();
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = writer.buffered();
        if now == last {
            return now;
        }
        last = now;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_returns_at_once_at_high_water_and_waits_one_byte_above() {
    let high = 1024 * 1024;
    let opts = StreamOptions {
        high_water: high,
        ..options()
    };
    let t = tcp_with(opts, Some(16 * 1024)).await;
    // Fill the socket's buffers, a piece at a time, until bytes stay in
    // the writer's buffer: then nothing moves and the size is exact.
    let piece = vec![b'y'; 128 * 1024];
    let mut written = 0;
    let stuck = loop {
        t.writer.write(&piece).unwrap();
        written += piece.len();
        tokio::time::sleep(Duration::from_millis(30)).await;
        if t.writer.buffered() > 0 {
            let n = wait_until_stuck(&t.writer).await;
            if n > 0 {
                break n;
            }
        }
        assert!(written < 512 * 1024 * 1024, "the socket never filled up");
    };
    assert!(stuck <= piece.len());
    // Exactly at the high-water mark: drain returns at once.
    t.writer.write(&vec![b'y'; high - stuck]).unwrap();
    written += high - stuck;
    assert_eq!(t.writer.buffered(), high);
    assert!(
        tokio::time::timeout(Duration::from_millis(20), t.writer.drain())
            .await
            .is_ok(),
        "drain waited at the high-water mark"
    );
    // One byte above: drain waits.
    t.writer.write(b"y").unwrap();
    written += 1;
    let drain = t.writer.drain();
    tokio::pin!(drain);
    assert!(
        tokio::time::timeout(Duration::from_millis(300), &mut drain)
            .await
            .is_err(),
        "drain returned above the high-water mark"
    );
    // The peer reads; the drain completes; nothing was lost.
    let mut peer = t.peer;
    let reader = tokio::spawn(async move { peer_read_to_end(&mut peer).await });
    within("drain", &mut drain).await.unwrap();
    assert!(t.writer.buffered() <= high / 4);
    t.writer.close();
    within("wait_closed", t.writer.wait_closed()).await.unwrap();
    let got = reader.await.unwrap();
    assert_eq!(got.len(), written);
    assert!(got.iter().all(|&b| b == b'y'));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_never_reads_stalls_only_its_own_drain() {
    // Connection A: the peer never reads; drain times out after the idle
    // timeout. Meanwhile connection B does round trips undisturbed.
    let idle = Duration::from_millis(700);
    let opts = StreamOptions {
        high_water: 64 * 1024,
        timeouts: timeouts(idle),
        ..StreamOptions::default()
    };
    let a = tcp_with(opts, Some(16 * 1024)).await;
    let block = vec![0u8; 8 * 1024 * 1024];
    // Timed from before the write: the idle clock may start as soon as the
    // flush task moves the first bytes.
    let started = Instant::now();
    a.writer.write(&block).unwrap();
    let drain_a = async {
        let r = a.writer.drain().await;
        (r, started.elapsed())
    };
    let other = async {
        let mut b = tcp(options()).await;
        let mut times = Vec::new();
        for i in 0..10u8 {
            let t0 = Instant::now();
            b.writer.write(&[b'0' + i, b'\n']).unwrap();
            b.writer.drain().await.unwrap();
            let line = peer_read_exact(&mut b.peer, 2).await;
            send(&mut b.peer, &line).await;
            assert_eq!(b.reader.readline().await, Ok(line));
            times.push(t0.elapsed());
        }
        (times, started.elapsed())
    };
    let ((drained, drain_took), (times, other_took)) = within("both", async { tokio::join!(drain_a, other) }).await;
    assert!(matches!(drained, Err(StreamError::TimedOut(_))), "{drained:?}");
    assert!(drain_took >= idle, "drain gave up after {drain_took:?}");
    assert!(
        other_took < idle,
        "the other connection took {other_took:?}, as long as the stalled drain"
    );
    assert!(times.iter().all(|t| *t < Duration::from_millis(200)), "{times:?}");
    // The flushing task gives up too (by the same idle timeout), and the
    // connection stays failed.
    tokio::time::sleep(idle).await;
    let r = a.writer.write(b"more");
    assert!(matches!(r, Err(StreamError::TimedOut(_))), "{r:?}");
    a.writer.close();
    let r = within("wait_closed", a.writer.wait_closed()).await;
    assert!(matches!(r, Err(StreamError::TimedOut(_))), "{r:?}");
}

// ---------------------------------------------------------------------------
// Writer: close, wait_closed

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_flushes_then_closes_and_write_after_close_fails() {
    let t = tcp(options()).await;
    let data = pseudo_random(3 * 1024 * 1024, 3);
    t.writer.write(&data).unwrap();
    assert!(!t.writer.is_closing());
    t.writer.close();
    assert!(t.writer.is_closing());
    assert_eq!(t.writer.write(b"late"), Err(StreamError::Closed));
    assert_eq!(t.writer.writelines([&b"late"[..]]), Err(StreamError::Closed));
    assert_eq!(t.writer.drain().await, Err(StreamError::Closed));
    assert_eq!(t.writer.write_eof(), Err(StreamError::Closed));
    t.writer.close(); // harmless
    assert!(t.writer.is_closing());
    let mut peer = t.peer;
    let receiver = tokio::spawn(async move { peer_read_to_end(&mut peer).await });
    within("wait_closed", t.writer.wait_closed()).await.unwrap();
    assert_eq!(t.writer.buffered(), 0, "wait_closed returned before the flush");
    let got = receiver.await.unwrap();
    assert!(
        got == data,
        "close lost or reordered data ({} of {} bytes)",
        got.len(),
        data.len()
    );
    // Again, and after another close: still fine.
    t.writer.close();
    within("wait_closed again", t.writer.wait_closed()).await.unwrap();
    assert!(t.writer.is_closing());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_closes_the_socket_for_the_peer() {
    // After wait_closed the socket is closed, not only half-closed: data
    // the peer sends afterwards is refused with a reset.
    let mut t = tcp(options()).await;
    t.writer.write(b"bye").unwrap();
    t.writer.close();
    within("wait_closed", t.writer.wait_closed()).await.unwrap();
    assert_eq!(peer_read_to_end(&mut t.peer).await, b"bye");
    // Our socket is gone: the first write may still be accepted locally,
    // but the reset it provokes fails a later one.
    let mut failed = false;
    for _ in 0..50 {
        if t.peer.write_all(b"are you there?").await.is_err() {
            failed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(failed, "the peer could keep writing: the socket was not closed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wait_closed_before_close_is_an_error_not_a_hang() {
    let t = tcp(options()).await;
    let r = within("wait_closed", t.writer.wait_closed()).await;
    assert!(matches!(r, Err(StreamError::InvalidArgument(_))), "{r:?}");
    assert!(!t.writer.is_closing());
    t.writer.write(b"still usable").unwrap();
    t.writer.close();
    within("wait_closed", t.writer.wait_closed()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_during_the_flush_is_reported_by_wait_closed_and_drain() {
    let t = tcp_with(options(), Some(16 * 1024)).await;
    // More than the socket buffers can hold, to a peer that does not read.
    let block = vec![7u8; 16 * 1024 * 1024];
    t.writer.write(&block).unwrap();
    wait_until_stuck(&t.writer).await;
    // The peer goes away with unread data: its kernel answers with RST.
    drop(t.peer);
    let drained = within("drain", t.writer.drain()).await;
    assert!(matches!(drained, Err(StreamError::ConnectionReset(_))), "{drained:?}");
    t.writer.close();
    let closed = within("wait_closed", t.writer.wait_closed()).await;
    assert!(matches!(closed, Err(StreamError::ConnectionReset(_))), "{closed:?}");
    assert!(t.writer.is_closing());
    assert_eq!(t.writer.write(b"x"), Err(StreamError::Closed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_error_makes_later_writes_fail() {
    let t = tcp_with(options(), Some(16 * 1024)).await;
    t.writer.write(&vec![7u8; 16 * 1024 * 1024]).unwrap();
    wait_until_stuck(&t.writer).await;
    drop(t.peer);
    let _ = within("drain", t.writer.drain()).await;
    let r = t.writer.write(b"x");
    assert!(matches!(r, Err(StreamError::ConnectionReset(_))), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_writer_gives_up_on_a_peer_that_never_reads() {
    // Before the flushing task had an idle bound, it waited on the socket
    // forever, keeping the connection open after the guest let go; here
    // it gives up after the idle timeout and closes the socket.
    let idle = Duration::from_millis(300);
    let opts = StreamOptions {
        timeouts: timeouts(idle),
        ..StreamOptions::default()
    };
    let mut t = tcp_with(opts, Some(16 * 1024)).await;
    let total = 32 * 1024 * 1024;
    t.writer.write(&vec![1u8; total]).unwrap();
    drop(t.writer);
    drop(t.reader);
    tokio::time::sleep(idle * 4).await;
    let written = t.counters.written.load(Ordering::Relaxed);
    assert!(
        written < total as u64,
        "everything was written to a peer that never read"
    );
    tokio::time::sleep(idle).await;
    assert_eq!(
        t.counters.written.load(Ordering::Relaxed),
        written,
        "the task is still writing"
    );
    // The peer now reads: it gets what the kernel held, then EOF (or a
    // reset), not the rest of the 32 MiB, and not a hang.
    let mut got = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match within("peer read", t.peer.read(&mut buf)).await {
            Ok(0) | Err(_) => break,
            Ok(n) => got += n,
        }
    }
    assert!(got < total, "the peer got all {got} bytes: the task did not give up");
    assert_eq!(got as u64, written);
}

// ---------------------------------------------------------------------------
// Reader after the writer closes

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reader_sees_buffered_data_then_eof_after_close() {
    let mut t = tcp(options()).await;
    send(&mut t.peer, b"line1\nline2\n").await;
    settle().await;
    assert_eq!(t.reader.readline().await, ok(b"line1\n"));
    t.writer.close();
    within("wait_closed", t.writer.wait_closed()).await.unwrap();
    assert_eq!(within("readline", t.reader.readline()).await, ok(b"line2\n"));
    assert!(t.reader.at_eof());
    assert_eq!(within("read", t.reader.read(10)).await, ok(b""));
    assert_eq!(t.reader.readexactly(1).await, incomplete(b"", Some(1)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_wakes_a_reader_waiting_for_data() {
    // A peer that never sends: only the close can end the read.
    let t = tcp(options()).await;
    let mut reader = t.reader;
    let started = Instant::now();
    let read = tokio::spawn(async move { (reader.read(100).await, reader) });
    tokio::time::sleep(Duration::from_millis(100)).await;
    t.writer.close();
    let (got, mut reader) = within("read", read).await.unwrap();
    assert_eq!(got, ok(b""));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the read waited for its timeout"
    );
    assert!(reader.at_eof());
    drop(t.peer);
}

// ---------------------------------------------------------------------------
// Half-close

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_eof_half_closes_and_the_answer_still_arrives() {
    let mut t = tcp(options()).await;
    assert!(t.writer.can_write_eof());
    t.writer.write(b"request body").unwrap();
    t.writer.write_eof().unwrap();
    assert!(!t.writer.is_closing(), "write_eof is not close");
    assert_eq!(
        t.writer.write(b"more"),
        Err(StreamError::InvalidArgument("write after write-eof".into()))
    );
    t.writer.write_eof().unwrap(); // twice is harmless
                                   // The peer sees all the data, then EOF, and only then answers.
    assert_eq!(peer_read_to_end(&mut t.peer).await, b"request body");
    send(&mut t.peer, b"answer after EOF\n").await;
    t.peer.shutdown().await.unwrap();
    assert_eq!(within("readline", t.reader.readline()).await, ok(b"answer after EOF\n"));
    assert_eq!(t.reader.read(-1).await, ok(b""));
    assert!(t.reader.at_eof());
    t.writer.close();
    within("wait_closed", t.writer.wait_closed()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_eof_flushes_a_large_buffer_first() {
    let mut t = tcp(options()).await;
    let data = pseudo_random(4 * 1024 * 1024, 9);
    t.writer.write(&data).unwrap();
    t.writer.write_eof().unwrap();
    let got = peer_read_to_end(&mut t.peer).await;
    assert!(got == data, "write_eof cut the buffer short ({} bytes)", got.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peer_half_close_leaves_our_writer_working() {
    let mut t = tcp(options()).await;
    send(&mut t.peer, b"all I have").await;
    t.peer.shutdown().await.unwrap();
    assert_eq!(within("read(-1)", t.reader.read(-1)).await, ok(b"all I have"));
    assert!(t.reader.at_eof());
    t.writer.write(b"still listening").unwrap();
    within("drain", t.writer.drain()).await.unwrap();
    assert_eq!(peer_read_exact(&mut t.peer, 15).await, b"still listening");
}

// ---------------------------------------------------------------------------
// TLS

struct Tls {
    reader: StreamReader,
    writer: StreamWriter,
    peer: tokio_rustls::server::TlsStream<TcpStream>,
    port: u16,
}

async fn tls_with(opts: StreamOptions, alpn: &[&str]) -> Tls {
    let listener = listener(None);
    let port = listener.local_addr().unwrap().port();
    let acceptor = TlsAcceptor::from(certs().server_config(&["http/1.1"]));
    let server = tokio::spawn(async move {
        let (sock, _) = listener.accept().await.unwrap();
        acceptor.accept(sock).await.expect("server handshake")
    });
    let request = TlsRequest {
        server_name: "localhost".into(),
        alpn: alpn.iter().map(|s| s.to_string()).collect(),
    };
    let conn = within(
        "connect",
        connect(&net(opts.timeouts), "127.0.0.1", port, Some(request)),
    )
    .await
    .expect("TLS connect");
    let peer = within("accept", server).await.unwrap();
    let (reader, writer) = streams::open(conn, opts, Arc::new(Counters::default()));
    Tls {
        reader,
        writer,
        peer,
        port,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_eof_is_a_clear_error_on_tls_and_the_stream_survives() {
    let mut t = tls_with(options(), &["http/1.1"]).await;
    assert!(!t.writer.can_write_eof());
    let r = t.writer.write_eof();
    match &r {
        Err(StreamError::InvalidArgument(m)) => assert!(m.contains("TLS"), "{m}"),
        other => panic!("expected invalid-argument, got {other:?}"),
    }
    assert!(!t.writer.is_closing());
    t.writer.write(b"ping\n").unwrap();
    within("drain", t.writer.drain()).await.unwrap();
    assert_eq!(peer_read_exact(&mut t.peer, 5).await, b"ping\n");
    send(&mut t.peer, b"pong\nand the rest").await;
    t.peer.shutdown().await.unwrap(); // close_notify + FIN
    assert_eq!(within("readline", t.reader.readline()).await, ok(b"pong\n"));
    assert_eq!(within("read(-1)", t.reader.read(-1)).await, ok(b"and the rest"));
    assert!(t.reader.at_eof());
    t.writer.close();
    within("wait_closed", t.writer.wait_closed()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_close_sends_close_notify_after_the_data() {
    let t = tls_with(options(), &[]).await;
    let data = pseudo_random(2 * 1024 * 1024 + 3, 4);
    t.writer.write(&data).unwrap();
    t.writer.close();
    let mut peer = t.peer;
    let receiver = tokio::spawn(async move {
        let mut out = Vec::new();
        // A clean close_notify makes read_to_end succeed; a bare FIN
        // would be an UnexpectedEof error.
        let r = peer.read_to_end(&mut out).await;
        (r.map(|_| ()), out)
    });
    within("wait_closed", t.writer.wait_closed()).await.unwrap();
    let (r, got) = within("peer", receiver).await.unwrap();
    r.expect("the peer saw close_notify");
    assert!(got == data);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_peer_closing_without_close_notify_reads_as_eof() {
    let mut t = tls_with(options(), &[]).await;
    send(&mut t.peer, b"data then a bare FIN").await;
    let (tcp, _) = t.peer.get_mut();
    tcp.shutdown().await.unwrap();
    assert_eq!(within("read(-1)", t.reader.read(-1)).await, ok(b"data then a bare FIN"));
    assert!(t.reader.at_eof());
}

// ---------------------------------------------------------------------------
// get_extra_info

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extra_info_on_tcp() {
    let t = tcp(options()).await;
    let info = t.writer.info();
    assert_eq!(info.get("peername"), Some(ExtraInfo::Address(t.listener_addr)));
    assert_eq!(
        info.get("sockname"),
        Some(ExtraInfo::Address(t.peer.peer_addr().unwrap()))
    );
    for key in [
        "peercert",
        "cipher",
        "alpn",
        "server-hostname",
        "no-such-key",
        "",
        "PEERNAME",
    ] {
        assert_eq!(info.get(key), None, "{key}");
    }
    // The reader shares the same facts.
    assert_eq!(
        t.reader.info().get("peername"),
        Some(ExtraInfo::Address(t.listener_addr))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extra_info_on_tls() {
    let t = tls_with(options(), &["h2", "http/1.1"]).await;
    let info = t.writer.info();
    let peer_tcp = t.peer.get_ref().0;
    assert_eq!(
        info.get("peername"),
        Some(ExtraInfo::Address(SocketAddr::from(([127, 0, 0, 1], t.port))))
    );
    assert_eq!(
        info.get("sockname"),
        Some(ExtraInfo::Address(peer_tcp.peer_addr().unwrap()))
    );
    match info.get("peercert") {
        Some(ExtraInfo::Certificate(c)) => {
            assert!(c.subject.contains("CN=localhost"), "{}", c.subject);
            assert!(c.issuer.contains("CN=wfetch test CA"), "{}", c.issuer);
            assert_eq!(c.der, certs().cert_der);
            let rfc3339 = |s: &str| {
                s.len() == 20
                    && s.ends_with('Z')
                    && s.as_bytes()[10] == b'T'
                    && s[..4].bytes().all(|b| b.is_ascii_digit())
            };
            assert!(
                rfc3339(&c.not_before) && rfc3339(&c.not_after),
                "{} {}",
                c.not_before,
                c.not_after
            );
            assert!(c.not_before < c.not_after);
        }
        other => panic!("peercert: {other:?}"),
    }
    match info.get("cipher") {
        Some(ExtraInfo::Cipher { suite, protocol }) => {
            assert!(suite.starts_with("TLS13_"), "{suite}");
            assert_eq!(protocol, "TLSv1.3");
        }
        other => panic!("cipher: {other:?}"),
    }
    assert_eq!(info.get("alpn"), Some(ExtraInfo::Text("http/1.1".into())));
    assert_eq!(info.get("server-hostname"), Some(ExtraInfo::Text("localhost".into())));
    assert_eq!(info.get("no-such-key"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extra_info_alpn_is_none_when_nothing_was_agreed() {
    let t = tls_with(options(), &[]).await;
    assert_eq!(t.writer.info().get("alpn"), None);
    assert!(matches!(t.writer.info().get("cipher"), Some(ExtraInfo::Cipher { .. })));
}

// ---------------------------------------------------------------------------
// Connecting and timeouts

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_refused() {
    let r = connect(&net(timeouts(Duration::from_secs(5))), "127.0.0.1", closed_port(), None).await;
    assert!(matches!(r, Err(StreamError::ConnectionRefused(_))), "{:?}", r.err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_read_timeout() {
    let idle = Duration::from_millis(300);
    let opts = StreamOptions {
        timeouts: timeouts(idle),
        ..StreamOptions::default()
    };
    let mut t = tcp(opts).await;
    for call in ["read", "readline", "readexactly", "readuntil"] {
        let started = Instant::now();
        let r = within(call, async {
            match call {
                "read" => t.reader.read(10).await,
                "readline" => t.reader.readline().await,
                "readexactly" => t.reader.readexactly(4).await,
                _ => t.reader.readuntil(&[b"--".to_vec()]).await,
            }
        })
        .await;
        let took = started.elapsed();
        assert!(matches!(r, Err(StreamError::TimedOut(_))), "{call}: {r:?}");
        assert!(took >= idle && took < idle * 5, "{call} timed out after {took:?}");
    }
    // The idle timeout restarts with every piece of data: a peer that
    // trickles faster than it keeps the read alive past it.
    let reader = &mut t.reader;
    let peer = &mut t.peer;
    let (got, ()) = tokio::join!(reader.readexactly(8), async {
        for b in b"trickle!" {
            tokio::time::sleep(idle / 3).await;
            send(peer, &[*b]).await;
        }
    });
    assert_eq!(got, ok(b"trickle!"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn total_deadline_bounds_a_trickling_peer() {
    let opts = StreamOptions {
        timeouts: Timeouts {
            connect: Duration::from_secs(5),
            idle: Duration::from_secs(5),
            deadline: Some(tokio::time::Instant::now() + Duration::from_millis(600)),
        },
        ..StreamOptions::default()
    };
    let mut t = tcp(opts).await;
    let started = Instant::now();
    let reader = &mut t.reader;
    let peer = &mut t.peer;
    let read = async {
        let r = reader.readexactly(1000).await;
        (r, started.elapsed())
    };
    let ((got, took), ()) = tokio::join!(read, async {
        for _ in 0..30 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if peer.write_all(b"x").await.is_err() {
                break;
            }
        }
    });
    match got {
        Err(StreamError::TimedOut(m)) => assert!(m.contains("total"), "{m}"),
        other => panic!("expected timed-out, got {other:?}"),
    }
    assert!(
        took >= Duration::from_millis(500) && took < Duration::from_millis(1200),
        "took {took:?}"
    );
    // Past the deadline every wait fails at once, the writer's too.
    t.writer.write(&vec![0u8; 64 * 1024 * 1024]).unwrap();
    let r = within("drain", t.writer.drain()).await;
    assert!(matches!(r, Err(StreamError::TimedOut(_))), "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_timeout_on_a_full_backlog() {
    // A listener that never accepts, with a backlog of 1: once its queue
    // is full the kernel drops new SYNs and connect hangs.
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = socket.listen(1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut held = Vec::new();
    let mut hung = false;
    for _ in 0..64 {
        match tokio::time::timeout(Duration::from_millis(300), TcpStream::connect(addr)).await {
            Ok(Ok(s)) => held.push(s),
            Ok(Err(e)) => panic!("connect failed instead of hanging: {e}"),
            Err(_) => {
                hung = true;
                break;
            }
        }
    }
    assert!(hung, "the backlog never filled up after {} connections", held.len());
    let connect_timeout = Duration::from_millis(400);
    let cfg = net(Timeouts {
        connect: connect_timeout,
        ..timeouts(Duration::from_secs(5))
    });
    let started = Instant::now();
    let r = within("connect", connect(&cfg, "127.0.0.1", addr.port(), None)).await;
    let took = started.elapsed();
    match r {
        Err(StreamError::TimedOut(m)) => assert!(m.contains("timed out"), "{m}"),
        other => panic!("expected timed-out, got {:?}", other.err()),
    }
    assert!(took >= connect_timeout && took < connect_timeout * 4, "took {took:?}");
    drop(listener);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_timeout_covers_the_tls_handshake() {
    // The peer accepts the TCP connection and never speaks TLS.
    let listener = listener(None);
    let port = listener.local_addr().unwrap().port();
    let holder = tokio::spawn(async move {
        let (sock, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(sock);
    });
    let connect_timeout = Duration::from_millis(400);
    let cfg = net(Timeouts {
        connect: connect_timeout,
        ..timeouts(Duration::from_secs(5))
    });
    let started = Instant::now();
    let request = TlsRequest {
        server_name: "localhost".into(),
        alpn: vec![],
    };
    let r = within("connect", connect(&cfg, "127.0.0.1", port, Some(request))).await;
    let took = started.elapsed();
    assert!(matches!(r, Err(StreamError::TimedOut(_))), "{:?}", r.err());
    assert!(took >= connect_timeout && took < connect_timeout * 4, "took {took:?}");
    holder.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_certificate_name_is_a_certificate_error() {
    let listener = listener(None);
    let port = listener.local_addr().unwrap().port();
    let acceptor = TlsAcceptor::from(certs().server_config(&[]));
    let server = tokio::spawn(async move {
        let (sock, _) = listener.accept().await.unwrap();
        let _ = acceptor.accept(sock).await;
    });
    let request = TlsRequest {
        server_name: "not-localhost.example".into(),
        alpn: vec![],
    };
    let r = within(
        "connect",
        connect(&net(timeouts(Duration::from_secs(5))), "127.0.0.1", port, Some(request)),
    )
    .await;
    match r {
        Err(StreamError::Tls { certificate, .. }) => assert!(certificate),
        other => panic!("expected a TLS certificate error, got {:?}", other.err()),
    }
    let _ = server.await;
}
