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
