//! The contract is language-neutral: a guest written in C
//! (guest/c-template, built by `make c-guest`) runs on the same host.

use std::path::PathBuf;

use crate::util::server::{sample_body, server};
use crate::util::{code, ok, wfetch};

/// The C guest component: $WFETCH_C_GUEST, or where build.sh puts it.
/// Missing is a failure, not a skip: CI builds it first.
fn c_guest() -> String {
    let path = std::env::var_os("WFETCH_C_GUEST")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../target/c-guest/wfetch_guest_c.wasm"
            ))
        });
    assert!(
        path.is_file(),
        "the C guest {} does not exist: run `make c-guest` first (guest/c-template/build.sh)",
        path.display()
    );
    path.to_str().expect("a UTF-8 path").to_string()
}

#[test]
fn inspect_says_the_c_guest_runs_on_this_host() {
    let guest = c_guest();
    let out = wfetch(&["inspect", &guest]);
    ok(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("runs on this host: yes"), "{text}");
    assert!(text.contains("wfetch:fetch/fetcher@0.1.0: "), "{text}");
    assert!(!text.contains("wasi:"), "a freestanding guest imports no WASI: {text}");
}

#[test]
fn the_c_guest_fetches_the_raw_response() {
    let guest = c_guest();
    let out = wfetch(&["--no-cache", "--guest", &guest, &server().url("/ok")]);
    ok(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(out.stdout.ends_with(&sample_body()), "{text}");
    let port = server().url("").rsplit(':').next().unwrap().to_string();
    let sent = server()
        .requests
        .lock()
        .unwrap()
        .iter()
        .any(|r| r.starts_with(b"GET /ok HTTP/1.0\r\n") && r.windows(port.len()).any(|w| w == port.as_bytes()));
    assert!(sent, "the C guest sends HTTP/1.0 with Host: 127.0.0.1:{port}");
}

#[test]
fn the_c_guest_reports_errors_through_the_contract() {
    let guest = c_guest();
    // A scheme it does not speak: request(unsupported-scheme).
    let out = wfetch(&["--no-cache", "--guest", &guest, "ftp://127.0.0.1/"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(code(&out), 1, "{err}");
    assert!(err.contains("ftp"), "{err}");
    // Nothing listens: transport(connection-refused).
    let port = crate::util::closed_port();
    let out = wfetch(&["--no-cache", "--guest", &guest, &format!("http://127.0.0.1:{port}/")]);
    assert_eq!(
        code(&out),
        7,
        "curl's 7 for a refused connection: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
