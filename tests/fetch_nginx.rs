//! Fetches from a real nginx over HTTP and HTTPS: wfetch's output must be
//! byte-identical to the file served and to curl's output.

use crate::util::{certs::certs, code, curl, nginx::nginx, ok, read, tempdir, wfetch};

/// Fetch `url` with wfetch and with curl into files (extra args for both),
/// returning (wfetch bytes, curl bytes).
fn both(url: &str, extra: &[&str]) -> (Vec<u8>, Vec<u8>) {
    let dir = tempdir();
    let (w, c) = (dir.path().join("w"), dir.path().join("c"));
    let ca = certs().ca_pem.to_str().unwrap().to_string();
    let mut wargs = vec!["-s", "--cacert", &ca, "-o", w.to_str().unwrap()];
    wargs.extend_from_slice(extra);
    wargs.push(url);
    let mut cargs = vec!["-s", "--cacert", &ca, "-o", c.to_str().unwrap()];
    cargs.extend_from_slice(extra);
    cargs.push(url);
    let wout = wfetch(&wargs);
    ok(&wout);
    ok(&curl(&cargs));
    (read(&w), read(&c))
}

#[test]
fn big_file_over_http_is_byte_identical() {
    let n = nginx();
    let (w, c) = both(&n.http("/big.bin"), &[]);
    assert_eq!(w.len(), n.file("big.bin").len());
    assert!(w == n.file("big.bin"), "body differs from the file");
    assert!(w == c, "body differs from curl's");
}

#[test]
fn big_file_over_https_is_byte_identical() {
    let n = nginx();
    let (w, c) = both(&n.https("/big.bin"), &[]);
    assert!(w == n.file("big.bin"), "body differs from the file");
    assert!(w == c, "body differs from curl's");
}

#[test]
fn big_file_to_stdout_is_byte_identical() {
    let n = nginx();
    let out = wfetch(&[&n.http("/big.bin")]);
    ok(&out);
    assert!(out.stdout == n.file("big.bin"));
}

#[test]
fn empty_file_gives_empty_output_file() {
    let n = nginx();
    for url in [n.http("/empty.bin"), n.https("/empty.bin")] {
        let (w, c) = both(&url, &[]);
        assert!(w.is_empty());
        assert!(c.is_empty());
    }
}

#[test]
fn not_found_body_matches_curl_and_exits_zero() {
    let n = nginx();
    for url in [n.http("/missing"), n.https("/missing")] {
        let (w, c) = both(&url, &[]);
        assert!(String::from_utf8_lossy(&w).contains("404 Not Found"));
        assert_eq!(w, c);
    }
}

#[test]
fn not_found_with_fail_exits_22() {
    let n = nginx();
    let out = wfetch(&["-f", &n.http("/missing")]);
    assert_eq!(code(&out), 22);
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("404"));
    assert_eq!(code(&curl(&["-sf", &n.http("/missing")])), 22);
}

#[test]
fn chunked_body_from_nginx_is_decoded() {
    let n = nginx();
    // Check the response really is chunked, with curl as the witness.
    let head = curl(&["-s", "-D", "-", "-o", "/dev/null", &n.http("/chunked/text.txt")]);
    assert!(
        String::from_utf8_lossy(&head.stdout)
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked"),
        "nginx did not answer chunked: {}",
        String::from_utf8_lossy(&head.stdout)
    );
    for url in [n.http("/chunked/text.txt"), n.https("/chunked/text.txt")] {
        let (w, c) = both(&url, &[]);
        assert!(w == n.file("chunked/text.txt"));
        assert!(w == c);
    }
}

/// Heads differ between two requests only by Date (and nothing else).
fn without_date(head: &[u8]) -> String {
    String::from_utf8_lossy(head)
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("date:"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn head_request_prints_the_head_like_curl() {
    let n = nginx();
    let ca = certs().ca_pem.to_str().unwrap();
    for url in [n.http("/big.bin"), n.https("/big.bin")] {
        let w = wfetch(&["-s", "--cacert", ca, "-I", &url]);
        let c = curl(&["-s", "--cacert", ca, "-I", &url]);
        ok(&w);
        ok(&c);
        assert!(String::from_utf8_lossy(&w.stdout).starts_with("HTTP/1.1 200 OK\r\n"));
        assert!(String::from_utf8_lossy(&w.stdout).contains(&format!("Content-Length: {}", n.file("big.bin").len())));
        assert_eq!(without_date(&w.stdout), without_date(&c.stdout));
    }
}

#[test]
fn include_flag_prints_head_then_body_like_curl() {
    let n = nginx();
    let w = wfetch(&["-s", "-i", &n.http("/index.html")]);
    let c = curl(&["-s", "-i", &n.http("/index.html")]);
    ok(&w);
    assert_eq!(without_date(&w.stdout), without_date(&c.stdout));
    assert!(w.stdout.ends_with(&n.file("index.html")));
}

#[test]
fn untrusted_certificate_exits_60_like_curl() {
    let n = nginx();
    let w = wfetch(&["-s", &n.https("/index.html")]);
    let c = curl(&["-s", &n.https("/index.html")]);
    assert_eq!(code(&w), 60, "{}", String::from_utf8_lossy(&w.stderr));
    assert_eq!(code(&c), 60);
}

#[test]
fn insecure_flag_skips_verification() {
    let n = nginx();
    let w = wfetch(&["-s", "-k", &n.https("/index.html")]);
    ok(&w);
    assert_eq!(w.stdout, n.file("index.html"));
}

#[test]
fn tls_to_a_plain_http_port_exits_35_like_curl() {
    let n = nginx();
    let url = format!("https://127.0.0.1:{}/index.html", n.http_port);
    let w = wfetch(&["-s", "-k", &url]);
    let c = curl(&["-s", "-k", &url]);
    assert_eq!(code(&w), 35, "{}", String::from_utf8_lossy(&w.stderr));
    assert_eq!(code(&c), 35);
}

#[test]
fn redirect_is_followed_with_location_flag() {
    let n = nginx();
    let w = wfetch(&["-s", "-L", &n.http("/redirect")]);
    ok(&w);
    assert_eq!(w.stdout, n.file("index.html"));
    let plain = wfetch(&["-s", &n.http("/redirect")]);
    ok(&plain);
    assert!(String::from_utf8_lossy(&plain.stdout).contains("302"));
}

/// `-Z` over many URLs (run on several threads, each with its own
/// connections): every body lands intact in its own file, connections are
/// kept alive and reused (never more than --parallel-max of them), and the
/// exit code is the last URL's, as curl's.
#[test]
fn parallel_transfers_deliver_every_body_and_reuse_connections() {
    let n = nginx();
    let dir = tempdir();
    let paths = ["/index.html", "/chunked/text.txt", "/conn", "/big.bin"];
    let mut args: Vec<String> = ["-s", "-Z", "--parallel-max", "6", "-f"].map(String::from).to_vec();
    for i in 0..80 {
        args.push("-o".into());
        args.push(dir.path().join(i.to_string()).to_str().unwrap().into());
        args.push(n.http(paths[i % paths.len()]));
    }
    args.push("-o".into());
    args.push(dir.path().join("last").to_str().unwrap().into());
    args.push(n.http("/missing"));
    let out = wfetch(&args.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(
        code(&out),
        22,
        "the last URL's code: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut connections = std::collections::HashSet::new();
    let mut reused = 0;
    for i in 0..80 {
        let got = read(&dir.path().join(i.to_string()));
        match paths[i % paths.len()] {
            "/conn" => {
                let text = String::from_utf8(got).unwrap();
                let mut parts = text.split_whitespace();
                connections.insert(parts.next().unwrap().to_string());
                if parts.next().unwrap() != "1" {
                    reused += 1;
                }
            }
            path => assert!(got == n.file(&path[1..]), "transfer {i} ({path}) differs from the file"),
        }
    }
    assert!(
        connections.len() <= 6,
        "more connections than --parallel-max: {connections:?}"
    );
    assert!(reused > 0, "no connection was reused");
}
