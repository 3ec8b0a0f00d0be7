//! Record and replay: a recording made against a real server replays with
//! no network, byte for byte; a guest that writes something else stops at
//! the first differing byte, which the message names.

use std::io::{Read, Write};
use std::net::TcpListener;

use crate::util::nginx::nginx;
use crate::util::{certs::certs, closed_port, code, ok, tempdir, wfetch};

/// A server on 127.0.0.1:0 that answers `n` connections, then is gone.
fn one_shot_server(n: usize, body: &'static [u8]) -> (u16, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        for _ in 0..n {
            let (mut sock, _) = listener.accept().unwrap();
            let mut buf = Vec::new();
            let mut tmp = [0u8; 1024];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                let k = sock.read(&mut tmp).unwrap();
                if k == 0 {
                    break;
                }
                buf.extend_from_slice(&tmp[..k]);
            }
            let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
            sock.write_all(head).unwrap();
            for piece in body.chunks(7) {
                sock.write_all(format!("{:x}\r\n", piece.len()).as_bytes()).unwrap();
                sock.write_all(piece).unwrap();
                sock.write_all(b"\r\n").unwrap();
            }
            sock.write_all(b"0\r\nX-Trailer: yes\r\n\r\n").unwrap();
        }
    });
    (port, handle)
}

#[test]
fn a_recording_replays_without_the_server() {
    let dir = tempdir();
    let tape = dir.path().join("tape.jsonl");
    let body: &'static [u8] = b"a body in many small chunks, recorded once and replayed offline";
    let (port, server) = one_shot_server(1, body);
    let url = format!("http://127.0.0.1:{port}/page");
    let live = wfetch(&["-s", "--record", tape.to_str().unwrap(), &url]);
    ok(&live);
    assert_eq!(live.stdout, body);
    server.join().unwrap(); // the server is gone: nothing listens on `port`

    let replay = wfetch(&["-s", "--replay", tape.to_str().unwrap(), &url]);
    ok(&replay);
    assert_eq!(replay.stdout, live.stdout);
    // And again: a replay is deterministic.
    let again = wfetch(&["-s", "-i", "--replay", tape.to_str().unwrap(), &url]);
    ok(&again);
    assert!(String::from_utf8_lossy(&again.stdout).starts_with("HTTP/1.1 200 OK\r\n"));

    // The file is the documented JSON Lines format.
    let text = std::fs::read_to_string(&tape).unwrap();
    let kinds: Vec<String> = text
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("each line is JSON");
            v["event"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(kinds.first().map(String::as_str), Some("open"));
    assert!(
        kinds.contains(&"write".to_string()) && kinds.contains(&"read".to_string()),
        "{kinds:?}"
    );
    // (eof and shutdown appear when they happen before the process ends:
    // a complete chunked body needs neither.)
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["host"], "127.0.0.1");
    assert_eq!(first["port"], port);
    assert!(first["result"]["ok"]["peer"]
        .as_str()
        .unwrap()
        .ends_with(&format!(":{port}")));
}

#[test]
fn a_tls_fetch_replays_with_its_certificate_facts_and_no_network() {
    let n = nginx();
    let dir = tempdir();
    let tape = dir.path().join("tls.jsonl");
    let ca = certs().ca_pem.to_str().unwrap();
    let url = n.https("/chunked/text.txt");
    let live = wfetch(&["-s", "--cacert", ca, "--record", tape.to_str().unwrap(), &url]);
    ok(&live);
    assert!(live.stdout == n.file("chunked/text.txt"));
    let text = std::fs::read_to_string(&tape).unwrap();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["tls"]["server_name"], "localhost");
    assert!(first["result"]["ok"]["tls"]["peer_cert"]
        .as_str()
        .is_some_and(|c| !c.is_empty()));
    // The recording holds the plaintext; no TLS handshake happens on replay.
    let replay = wfetch(&["-s", "--replay", tape.to_str().unwrap(), &url]);
    ok(&replay);
    assert!(replay.stdout == live.stdout);
}

#[test]
fn a_guest_that_writes_other_bytes_stops_where_it_diverges() {
    let dir = tempdir();
    let tape = dir.path().join("tape.jsonl");
    let (port, server) = one_shot_server(1, b"original");
    let url = format!("http://127.0.0.1:{port}/page");
    ok(&wfetch(&["-s", "--record", tape.to_str().unwrap(), &url]));
    server.join().unwrap();

    // The same URL with an extra header: the request differs after
    // "GET /page HTTP/1.1\r\nHost: 127.0.0.1:PORT\r\nUser-Agent: ...\r\nAccept: */*\r\n".
    let out = wfetch(&["-s", "-S", "--replay", tape.to_str().unwrap(), "-H", "X-Extra: 1", &url]);
    assert_eq!(code(&out), 112, "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    let offset = format!(
        "GET /page HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: wfetch/{}\r\nAccept: */*\r\n",
        env!("CARGO_PKG_VERSION")
    )
    .len();
    let line = err.lines().last().unwrap();
    assert!(
        line.starts_with(&format!(
            "wfetch: (112) replay diverged from the recording at connection 0 (127.0.0.1:{port}), byte {offset} of the bytes written"
        )),
        "{err}"
    );
    assert!(line.contains("X-Extra: 1"), "{line}");
    assert!(out.stdout.is_empty(), "nothing is output from a diverged replay");

    // Another target: the open itself diverges.
    let other = format!("http://127.0.0.1:{}/page", closed_port());
    let out = wfetch(&["-s", "--replay", tape.to_str().unwrap(), &other]);
    assert_eq!(code(&out), 112);
    assert!(String::from_utf8_lossy(&out.stderr).contains("at open #1: the guest opened 127.0.0.1:"));
}

#[test]
fn errors_are_recorded_and_replayed() {
    let dir = tempdir();
    let tape = dir.path().join("refused.jsonl");
    let url = format!("http://127.0.0.1:{}/", closed_port());
    let live = wfetch(&["-s", "--record", tape.to_str().unwrap(), &url]);
    assert_eq!(code(&live), 7);
    let replay = wfetch(&["-sS", "--replay", tape.to_str().unwrap(), &url]);
    assert_eq!(code(&replay), 7);
    assert!(String::from_utf8_lossy(&replay.stderr).contains("Connection refused"));
}

#[test]
fn a_bad_recording_is_a_clear_error() {
    let dir = tempdir();
    let tape = dir.path().join("bad.jsonl");
    std::fs::write(&tape, "{\"event\":\"open\",\"conn\":0}\nnot json\n").unwrap();
    let out = wfetch(&["-s", "-S", "--replay", tape.to_str().unwrap(), "http://127.0.0.1:9/"]);
    assert_eq!(code(&out), 26);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("line 1"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = wfetch(&[
        "-s",
        "--record",
        "/nonexistent/dir/x.jsonl",
        "--replay",
        "y",
        "http://127.0.0.1:9/",
    ]);
    assert_eq!(code(&out), 2, "--record and --replay conflict");
}

/// `-Z` with several URLs records and replays: with a tape the transfers
/// run one at a time, so the connections are opened and reused in the
/// same order both times and a replay gives every file again (without
/// that, a replay diverged at its first or fourth connection).
#[test]
fn parallel_transfers_record_and_replay() {
    let n = nginx();
    let dir = tempdir();
    let tape = dir.path().join("tape.jsonl");
    let paths = [
        "/index.html",
        "/chunked/text.txt",
        "/big.bin",
        "/index.html",
        "/conn",
        "/chunked/text.txt",
    ];
    let run = |mode: &str, out: &str| {
        let mut args: Vec<String> = ["-s", "-Z", "--parallel-max", "3", mode, tape.to_str().unwrap()]
            .map(String::from)
            .to_vec();
        for (i, p) in paths.iter().enumerate() {
            args.push("-o".into());
            args.push(dir.path().join(format!("{out}{i}")).to_str().unwrap().into());
            args.push(n.http(p));
        }
        let r = wfetch(&args.iter().map(String::as_str).collect::<Vec<_>>());
        ok(&r);
        (0..paths.len())
            .map(|i| std::fs::read(dir.path().join(format!("{out}{i}"))).unwrap())
            .collect::<Vec<_>>()
    };
    let live = run("--record", "live");
    assert!(live[2] == n.file("big.bin"));
    for k in 0..3 {
        let replayed = run("--replay", &format!("replay{k}-"));
        assert!(replayed == live, "replay {k} differs from the recording");
    }
}
