//! The embeddable library: `wfetch::Host` from another tokio program,
//! against nginx and the test server.

use std::sync::Arc;

use crate::util::nginx::nginx;
use crate::util::server::{sample_body, server};
use wfetch::{Error, Host, Request};

fn host_for(port: u16) -> Host {
    Host::builder()
        .allow(&format!("127.0.0.1:{port}"))
        .unwrap()
        .build()
        .expect("host builds")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_big_body_streams_in_pieces_and_is_byte_identical() {
    let n = nginx();
    let host = host_for(n.http_port);
    let mut resp = host.fetch(Request::get(&n.http("/big.bin"))).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.header("content-length"),
        Some(n.file("big.bin").len().to_string().as_bytes())
    );
    let mut pieces = 0;
    let mut body = Vec::new();
    while let Some(p) = resp.chunk().await.unwrap() {
        pieces += 1;
        body.extend_from_slice(&p);
    }
    assert!(pieces > 1, "the body arrives as a stream, not in one piece");
    assert!(body == n.file("big.bin"));
    let (url, hops, bytes) = resp.summary().unwrap();
    assert_eq!(
        (url, hops.len(), bytes),
        (n.http("/big.bin").as_str(), 0, body.len() as u64)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_are_followed_and_interim_heads_skipped() {
    let n = nginx();
    let host = host_for(n.http_port);
    let mut resp = host
        .fetch(Request::get(&n.http("/redirect")).follow_redirects(3))
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().await.unwrap(), n.file("index.html"));
    assert_eq!(resp.summary().unwrap().1.len(), 1);

    let s = server();
    let host = host_for(s.port);
    let mut resp = host.fetch(Request::get(&s.url("/interim"))).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.bytes().await.unwrap(), b"final body\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_body_and_a_404_are_responses_not_errors() {
    let n = nginx();
    let host = host_for(n.http_port);
    let mut empty = host.fetch(Request::get(&n.http("/empty.bin"))).await.unwrap();
    assert_eq!(empty.status(), 200);
    assert!(empty.bytes().await.unwrap().is_empty());
    let mut missing = host.fetch(Request::get(&n.http("/missing"))).await.unwrap();
    assert_eq!(missing.status(), 404);
    assert!(!missing.bytes().await.unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_body_is_an_error_after_its_pieces() {
    let s = server();
    let host = host_for(s.port);
    let mut resp = host.fetch(Request::get(&s.url("/truncated"))).await.unwrap();
    let mut got = Vec::new();
    let err = loop {
        match resp.chunk().await {
            Ok(Some(p)) => got.extend_from_slice(&p),
            Ok(None) => panic!("a truncated body must not end cleanly"),
            Err(e) => break e,
        }
    };
    assert_eq!(got, &sample_body()[..1000]);
    assert_eq!(err.exit_code(), 18, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_policy_allows_nothing() {
    let s = server();
    let host = Host::builder().build().unwrap();
    let err = host.fetch(Request::get(&s.url("/ok"))).await.err().expect("denied");
    assert!(matches!(err, Error::Fetch(_)), "{err}");
    assert_eq!(err.exit_code(), wfetch::error::EXIT_DENIED, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetches_run_concurrently_from_one_host() {
    let s = server();
    let host = Arc::new(host_for(s.port));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let host = host.clone();
        let url = s.url("/ok");
        tasks.push(tokio::spawn(async move {
            host.fetch(Request::get(&url)).await?.bytes().await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), sample_body());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_with_headers_sends_exact_bytes() {
    let s = server();
    let host = host_for(s.port);
    let req = Request::new("POST", &s.url("/echo")).header("X-Lib", "yes").body("k=v");
    let body = host.fetch(req).await.unwrap().bytes().await.unwrap();
    let text = String::from_utf8_lossy(&body);
    assert!(text.starts_with("POST /echo HTTP/1.1\r\n"), "{text}");
    assert!(text.contains("\r\nX-Lib: yes\r\n"), "{text}");
    assert!(text.ends_with("Content-Length: 3\r\n\r\nk=v"), "{text}");
}

#[test]
fn a_guest_that_does_not_fit_is_refused_by_the_builder() {
    let err = Host::builder()
        .guest_bytes("junk", b"\0asm junk".to_vec())
        .build()
        .err()
        .unwrap();
    assert!(err.to_string().contains("not a valid component"), "{err}");
    let err = Host::builder().guest_path("/nonexistent.wasm").build().err().unwrap();
    assert!(err.to_string().contains("cannot read"), "{err}");
}

/// The CLI reads a fetch's result through `Guest::fetch_summary_with_stats`,
/// which leaves the final head in the guest's memory: its status, URL,
/// redirects and body size are the full response's, through a redirect too.
#[tokio::test(flavor = "current_thread")]
async fn a_fetch_summary_says_what_the_full_response_says() {
    use wfetch::net::NetConfig;
    use wfetch::{Policy, Runtime, DEFAULT_GUEST};
    let s = server();
    let runtime = Arc::new(Runtime::new().expect("the engine"));
    let guest = runtime.load("the default guest", DEFAULT_GUEST).expect("it loads");
    let net = Arc::new(NetConfig {
        tls: wfetch::tls::client_config(&Default::default()).expect("TLS config"),
        policy: Policy::parse(&[format!("127.0.0.1:{}", s.port)]).expect("a policy"),
        resolve: Default::default(),
        timeouts: Default::default(),
        tape: None,
    });
    for path in ["/ok", "/redir/302/abs", "/redir/301/rel", "/missing"] {
        let mut req = Request::get(&s.url(path));
        req.options.follow_redirects = true;
        let sink = || Box::new(crate::util::SharedSink::default());
        let full = guest
            .fetch_with_stats(net.clone(), &req, sink(), Arc::default())
            .await
            .expect("a response");
        let summary = guest
            .fetch_summary_with_stats(net.clone(), &req, sink(), Arc::default())
            .await
            .expect("a response");
        assert_eq!(summary.status, full.head.status, "{path}");
        assert_eq!(summary.url, full.url, "{path}");
        assert_eq!(summary.body_bytes, full.body_bytes, "{path}");
        let hops = |h: &[wfetch::Hop]| h.iter().map(|h| (h.url.clone(), h.status)).collect::<Vec<_>>();
        assert_eq!(hops(&summary.hops), hops(&full.hops), "{path}");
        if path.starts_with("/redir/") {
            assert_eq!(summary.hops.len(), 1, "{path}: one redirect followed");
            assert!(summary.url.ends_with("/echo"), "{path}: {}", summary.url);
        }
    }
}
