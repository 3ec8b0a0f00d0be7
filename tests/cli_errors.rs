//! Failures before any response: bad URLs, unreachable hosts, bad flags,
//! bad guests. Each with curl's exit code and a message.

use crate::util::{closed_port, code, curl, tempdir, wfetch};

#[test]
fn connection_refused_exits_7_with_curls_message() {
    let port = closed_port();
    let url = format!("http://127.0.0.1:{port}/");
    let out = wfetch(&[&url]);
    assert_eq!(code(&out), 7);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim_end(),
        format!("wfetch: (7) Failed to connect to 127.0.0.1 port {port}: Connection refused")
    );
    assert_eq!(code(&curl(&["-s", &url])), 7);
}

#[test]
fn unresolvable_host_exits_6() {
    let out = wfetch(&["http://no-such-host.invalid/"]);
    assert_eq!(code(&out), 6, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Could not resolve host: no-such-host.invalid"));
}

#[test]
fn malformed_urls_exit_3() {
    for url in [
        "http://[::1",
        "http://exa mple.com/",
        "http://127.0.0.1:99999/",
        "http://127.0.0.1:0/",
    ] {
        let out = wfetch(&[url]);
        assert_eq!(code(&out), 3, "{url}: {}", String::from_utf8_lossy(&out.stderr));
    }
}

#[test]
fn unsupported_scheme_exits_1() {
    let out = wfetch(&["ftp://127.0.0.1/"]);
    assert_eq!(code(&out), 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("ftp"));
}

#[test]
fn crlf_in_a_header_is_refused_before_sending() {
    let out = wfetch(&["-H", "X-A: b\r\nX-Injected: 1", "http://127.0.0.1:9/"]);
    assert_eq!(code(&out), 2, "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("header"));
}

#[test]
fn a_file_that_is_not_a_component_is_refused() {
    let dir = tempdir();
    let bad = dir.path().join("bad.wasm");
    std::fs::write(&bad, b"not wasm at all").unwrap();
    let out = wfetch(&["--guest", bad.to_str().unwrap(), "http://127.0.0.1:9/"]);
    assert_eq!(code(&out), 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a valid component"));
}

#[test]
fn a_missing_guest_file_is_a_clear_error() {
    let out = wfetch(&["--guest", "/nonexistent/guest.wasm", "http://127.0.0.1:9/"]);
    assert_eq!(code(&out), 1);
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read"));
}

#[test]
fn unknown_flag_exits_2() {
    let out = wfetch(&["--no-such-flag", "http://127.0.0.1:9/"]);
    assert_eq!(code(&out), 2);
}

#[test]
fn version_names_the_guest_and_wasmtime() {
    let out = wfetch(&["--version"]);
    assert_eq!(code(&out), 0);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("wfetch-guest-http"));
    assert!(text.contains("wasmtime"));
}
