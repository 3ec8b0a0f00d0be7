//! Soak: many fetches through one `wfetch::Host` in one process against a
//! local keep-alive server, checking every body, open file descriptors
//! before and after, and RSS along the way. Not a timed test: it prints
//! figures and fails only on a wrong body, a failed fetch or a leak.
//!
//! cargo run --release --example soak -- [SEQUENTIAL] [CONCURRENT]
//! (defaults 10000 and 1000; CI runs a small version.)

use std::sync::Arc;
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The body the server sends for request number `i`.
fn body_for(i: usize) -> Vec<u8> {
    format!("soak body {i} ").repeat(1 + i % 50).into_bytes()
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

fn rss_mib() -> f64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: f64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0.0);
    pages * 4096.0 / (1024.0 * 1024.0)
}

/// A keep-alive HTTP/1.1 server: GET /N answers body_for(N).
async fn serve(listener: TcpListener) {
    loop {
        let Ok((mut sock, _)) = listener.accept().await else {
            continue;
        };
        let _ = sock.set_nodelay(true);
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut tmp = [0u8; 4096];
            loop {
                let end = loop {
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    match sock.read(&mut tmp).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&tmp[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                buf.drain(..end);
                let n: usize = head
                    .split_whitespace()
                    .nth(1)
                    .and_then(|p| p.trim_start_matches('/').parse().ok())
                    .unwrap_or(0);
                let body = body_for(n);
                let reply = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len());
                if sock.write_all(reply.as_bytes()).await.is_err() || sock.write_all(&body).await.is_err() {
                    return;
                }
            }
        });
    }
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let sequential: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let concurrent: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(1_000);

    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(serve(listener));

    let host = Arc::new(
        wfetch::Host::builder()
            .allow(&format!("127.0.0.1:{port}"))
            .expect("rule")
            .build()
            .expect("host"),
    );
    let fetch = |host: Arc<wfetch::Host>, i: usize| async move {
        let url = format!("http://127.0.0.1:{port}/{i}");
        let body = host.fetch(wfetch::Request::get(&url)).await?.bytes().await?;
        Ok::<bool, wfetch::Error>(body == body_for(i))
    };

    // Warm up (engine, first instance, pool), then measure.
    assert!(fetch(host.clone(), 0).await.expect("warm-up fetch"));
    let fds_before = open_fds();
    let rss_start = rss_mib();
    let mut failures = 0usize;

    let t = Instant::now();
    let mut rss_mid = 0.0;
    for i in 0..sequential {
        match fetch(host.clone(), i).await {
            Ok(true) => {}
            Ok(false) => failures += 1,
            Err(e) => {
                failures += 1;
                eprintln!("fetch {i}: {e}");
            }
        }
        if i == sequential / 2 {
            rss_mid = rss_mib();
        }
    }
    let seq_time = t.elapsed();
    let rss_after_seq = rss_mib();

    let t = Instant::now();
    let tasks: Vec<_> = (0..concurrent).map(|i| tokio::spawn(fetch(host.clone(), i))).collect();
    for (i, task) in tasks.into_iter().enumerate() {
        match task.await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => failures += 1,
            Ok(Err(e)) => {
                failures += 1;
                eprintln!("concurrent fetch {i}: {e}");
            }
            Err(e) => {
                failures += 1;
                eprintln!("concurrent task {i}: {e}");
            }
        }
    }
    let conc_time = t.elapsed();
    // Idle kept-alive connections stay open while the host lives (both
    // ends are in this process): count them, then drop the host, which
    // must close every socket it opened.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let fds_with_pool = open_fds();
    drop(host);
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let fds_after = open_fds();
    let rss_end = rss_mib();

    println!(
        "sequential fetches   {sequential:>8}  {:>8.0} req/s",
        sequential as f64 / seq_time.as_secs_f64()
    );
    println!(
        "concurrent fetches   {concurrent:>8}  {:>8.0} req/s",
        concurrent as f64 / conc_time.as_secs_f64()
    );
    println!("RSS MiB              start {rss_start:.1}  mid-sequential {rss_mid:.1}  after sequential {rss_after_seq:.1}  end {rss_end:.1}");
    println!(
        "open fds             before {fds_before}  with idle pool {fds_with_pool}  after dropping the host {fds_after}"
    );
    println!("wrong or failed      {failures}");
    let leak = fds_after > fds_before;
    if failures > 0 || leak {
        eprintln!("soak FAILED: {failures} bad fetches, fds {fds_before} -> {fds_after}");
        std::process::exit(1);
    }
    println!("soak ok");
}
