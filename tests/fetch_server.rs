//! Responses nginx cannot produce, from the scriptable test server:
//! trailers, interim responses, truncation, close-delimited bodies,
//! malformed heads, resets. Each with its curl exit code.

use crate::util::server::{sample_body, server};
use crate::util::{code, curl, ok, wfetch};

#[test]
fn chunked_with_trailers_delivers_the_body() {
    let s = server();
    let out = wfetch(&["-s", &s.url("/trailers")]);
    ok(&out);
    assert_eq!(out.stdout, sample_body());
}

#[test]
fn trailers_are_reported_in_verbose_mode() {
    let s = server();
    let out = wfetch(&["-v", &s.url("/trailers")]);
    ok(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("< X-Checksum: abc123"), "{err}");
    assert!(err.contains("< X-Other: two"), "{err}");
    assert!(err.contains("> GET /trailers HTTP/1.1"), "{err}");
}

#[test]
fn chunk_extensions_are_ignored() {
    let out = wfetch(&["-s", &server().url("/chunked-ext")]);
    ok(&out);
    assert_eq!(out.stdout, b"hello world0123456789");
}

#[test]
fn interim_responses_are_skipped() {
    let s = server();
    let out = wfetch(&["-s", &s.url("/interim")]);
    ok(&out);
    assert_eq!(out.stdout, b"final body\n");
    let inc = wfetch(&["-s", "-i", &s.url("/interim")]);
    let c = curl(&["-s", "-i", &s.url("/interim")]);
    ok(&inc);
    assert_eq!(inc.stdout, c.stdout, "-i output differs from curl's");
}

#[test]
fn close_delimited_body_is_read_to_eof() {
    let s = server();
    let out = wfetch(&["-s", &s.url("/close-delimited")]);
    ok(&out);
    assert_eq!(out.stdout, sample_body());
    assert_eq!(out.stdout, curl(&["-s", &s.url("/close-delimited")]).stdout);
}

#[test]
fn bare_lf_head_is_accepted() {
    let out = wfetch(&["-s", &server().url("/bare-lf")]);
    ok(&out);
    assert_eq!(out.stdout, b"bare!\n");
}

#[test]
fn no_content_has_no_body_whatever_content_length_says() {
    let out = wfetch(&["-s", "-m", "10", &server().url("/no-content")]);
    ok(&out);
    assert!(out.stdout.is_empty());
}

#[test]
fn request_bytes_are_exact() {
    let s = server();
    let out = wfetch(&["-s", "-H", "X-Test: 1", "-d", "a=b", &s.url("/echo")]);
    ok(&out);
    let expected = format!(
        "POST /echo HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nUser-Agent: wfetch/{}\r\nAccept: */*\r\nX-Test: 1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\n\r\na=b",
        s.port,
        env!("CARGO_PKG_VERSION")
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), expected);
}

/// (path, wfetch's exit code, curl 7.88's exit code, a word the message
/// must contain). Where curl accepts garbage (a truncated head, conflicting
/// Content-Length, Content-Length with chunked) we reject it: curl is the
/// reference where it is sound, not an oracle.
const FAILURES: &[(&str, i32, i32, &str)] = &[
    ("/truncated", 18, 18, "remaining"),
    ("/truncated-chunked", 18, 18, "partial"),
    ("/mid-head", 8, 0, "head"),
    ("/empty", 52, 52, "Empty reply"),
    ("/bad-status", 8, 1, "status"),
    ("/not-http", 8, 1, "status"),
    ("/cl-conflict", 8, 0, "content-length"),
    ("/cl-te", 8, 0, "transfer-encoding"),
    ("/bad-chunk", 8, 56, "chunk"),
    ("/chunk-overflow", 8, 56, "chunk"),
    ("/reset", 56, 56, "receiving"),
    ("/big-head", 8, 0, "head"),
];

#[test]
fn broken_responses_fail_with_curls_exit_codes() {
    let s = server();
    for (path, want, curl_code, word) in FAILURES {
        let out = wfetch(&["-sS", "-m", "20", &s.url(path)]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(code(&out), *want, "{path}: stderr {err}");
        assert!(
            err.to_lowercase().contains(&word.to_lowercase()),
            "{path}: message {err:?} lacks {word:?}"
        );
        assert!(err.starts_with(&format!("wfetch: ({want}) ")), "{path}: {err}");
        if *curl_code == *want {
            let c = curl(&["-s", "-m", "20", &s.url(path)]);
            assert_eq!(code(&c), *curl_code, "{path}: curl's exit code");
        }
    }
}

#[test]
fn truncated_body_keeps_what_arrived() {
    let out = wfetch(&["-s", &server().url("/truncated")]);
    assert_eq!(code(&out), 18);
    assert_eq!(out.stdout, &sample_body()[..1000]);
}

#[test]
fn max_time_stops_a_hanging_server_with_28() {
    let start = std::time::Instant::now();
    let out = wfetch(&["-s", "-m", "1", &server().url("/hang")]);
    assert_eq!(code(&out), 28);
    assert!(start.elapsed() < std::time::Duration::from_secs(10));
}

/// A server that holds every response until `want` requests wait at once
/// (or 10 s pass), then answers everything at once; it records the most
/// requests it saw waiting at the same time.
fn barrier_server(want: usize) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let waiting = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let open = Arc::new(tokio::sync::Notify::new());
    let seen = peak.clone();
    let port = crate::util::spawn_server(move |sock, _| {
        let (waiting, peak, open) = (waiting.clone(), peak.clone(), open.clone());
        async move {
            let (r, mut w) = sock.into_split();
            let mut r = BufReader::new(r);
            loop {
                let mut line = String::new();
                // The request head, up to its empty line.
                loop {
                    line.clear();
                    match r.read_line(&mut line).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) if line == "\r\n" => break,
                        Ok(_) => {}
                    }
                }
                let now = waiting.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                if now >= want {
                    open.notify_waiters();
                } else {
                    let opened = open.notified();
                    tokio::pin!(opened);
                    opened.as_mut().enable();
                    if peak.load(Ordering::SeqCst) < want {
                        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), opened).await;
                    }
                }
                waiting.fetch_sub(1, Ordering::SeqCst);
                if w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n")
                    .await
                    .is_err()
                {
                    return;
                }
            }
        }
    });
    (port, seen)
}

/// `-Z` starts a few transfers per thread at first, and more while the
/// servers keep it waiting: against a server that answers nothing until
/// 40 requests wait at once, `--parallel-max 40` gets there (without the
/// ramp-up, each thread would stay at its first few and the server would
/// give up after 10 s), and never goes beyond. --parallel-immediate
/// starts them all at once.
#[test]
fn parallel_transfers_ramp_up_to_parallel_max_when_servers_are_slow() {
    for extra in [None, Some("--parallel-immediate")] {
        let (port, peak) = barrier_server(40);
        let mut args: Vec<String> = ["-s", "-Z", "--parallel-max", "40"].map(String::from).to_vec();
        args.extend(extra.map(String::from));
        for i in 0..100 {
            args.push(format!("http://127.0.0.1:{port}/{i}"));
        }
        let started = std::time::Instant::now();
        let out = wfetch(&args.iter().map(String::as_str).collect::<Vec<_>>());
        ok(&out);
        assert_eq!(out.stdout, b"ok\n".repeat(100), "{extra:?}");
        assert_eq!(
            peak.load(std::sync::atomic::Ordering::SeqCst),
            40,
            "{extra:?}: the most requests waiting at once (after {:?})",
            started.elapsed()
        );
    }
}
