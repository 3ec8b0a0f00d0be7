//! A second protocol on the unchanged host: the Gopher guest (RFC 1436)
//! against a small Gopher server on 127.0.0.1.

use std::sync::OnceLock;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::util::{code, ok, wfetch};

const GOPHER: &str = env!("WFETCH_GUEST_GOPHER");

fn menu(port: u16) -> String {
    format!(
        "iWelcome to the wfetch test hole\tfake\t(NULL)\t0\r\n\
         0Hello text\t/hello.txt\t127.0.0.1\t{port}\r\n\
         7Search\t/search\t127.0.0.1\t{port}\r\n\
         .\r\n"
    )
}

const HELLO: &str = "Hello from gopher.\r\nSecond line.\r\n.\r\n";

/// The reply for a request line (selector, optional TAB and words).
fn reply(line: &str, port: u16) -> Vec<u8> {
    match line.split_once('\t') {
        Some(("/search", words)) => format!("iresults for {words}\tfake\t(NULL)\t0\r\n.\r\n").into_bytes(),
        _ => match line {
            "" | "/" => menu(port).into_bytes(),
            "/hello.txt" => HELLO.as_bytes().to_vec(),
            "/a b.txt" => b"spaced\r\n.\r\n".to_vec(),
            "/binary" => (0..=255u8).cycle().take(70_000).collect(),
            _ => format!("3'{line}' does not exist\terror.host\t1\r\n.\r\n").into_bytes(),
        },
    }
}

/// Start the server once; returns its port.
fn server() -> u16 {
    static PORT: OnceLock<u16> = OnceLock::new();
    *PORT.get_or_init(|| {
        crate::util::spawn_server(|sock, port| async move {
            let (r, mut w) = sock.into_split();
            let mut line = String::new();
            if BufReader::new(r).read_line(&mut line).await.is_err() {
                return;
            }
            let line = line.trim_end_matches(['\r', '\n']);
            let _ = w.write_all(&reply(line, port)).await;
            let _ = w.shutdown().await;
        })
    })
}

#[test]
fn menu_text_search_and_binary_items_are_fetched() {
    let port = server();
    let cases: Vec<(String, Vec<u8>)> = vec![
        (format!("gopher://127.0.0.1:{port}/1/"), menu(port).into_bytes()),
        (format!("gopher://127.0.0.1:{port}/"), menu(port).into_bytes()),
        (
            format!("gopher://127.0.0.1:{port}/0/hello.txt"),
            HELLO.as_bytes().to_vec(),
        ),
        (
            format!("gopher://127.0.0.1:{port}/0/a%20b.txt"),
            b"spaced\r\n.\r\n".to_vec(),
        ),
        (
            format!("gopher://127.0.0.1:{port}/7/search?two%20words"),
            reply("/search\ttwo words", port),
        ),
        (format!("gopher://127.0.0.1:{port}/9/binary"), reply("/binary", port)),
    ];
    for (url, want) in cases {
        let out = wfetch(&["-s", "--guest", GOPHER, &url]);
        ok(&out);
        assert!(
            out.stdout == want,
            "{url}: got {:?}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

#[test]
fn gopher_output_goes_to_a_file_like_http() {
    let port = server();
    let dir = crate::util::tempdir();
    let file = dir.path().join("menu.txt");
    let url = format!("gopher://127.0.0.1:{port}/1/");
    ok(&wfetch(&["-s", "--guest", GOPHER, "-o", file.to_str().unwrap(), &url]));
    assert_eq!(std::fs::read(&file).unwrap(), menu(port).into_bytes());
}

#[test]
fn gopher_errors_use_the_same_exit_codes() {
    let refused = format!("gopher://127.0.0.1:{}/1/", crate::util::closed_port());
    let out = wfetch(&["-s", "--guest", GOPHER, &refused]);
    assert_eq!(code(&out), 7);
    for bad in ["gopher://127.0.0.1:0/", "gopher://127.0.0.1/0/a%0d%0ab"] {
        let out = wfetch(&["-s", "--guest", GOPHER, bad]);
        assert_eq!(code(&out), 3, "{bad}");
    }
    // The HTTP guest does not speak gopher; the gopher guest does not speak HTTP.
    let out = wfetch(&["-s", &format!("gopher://127.0.0.1:{}/", server())]);
    assert_eq!(code(&out), 1);
    let out = wfetch(&["-s", "--guest", GOPHER, "http://127.0.0.1:9/"]);
    assert_eq!(code(&out), 1);
}
