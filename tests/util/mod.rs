//! Test harness: certificates made at test time, a real nginx with a
//! generated config, a scriptable tokio HTTP server, and helpers to run
//! the wfetch and curl binaries.

#![allow(dead_code)]

pub mod certs;
pub mod nginx;
pub mod server;

/// Start a TCP server on 127.0.0.1:0 in a thread of its own (with its
/// own tokio runtime, so that it outlives any test's runtime): every
/// accepted connection is handed to `handle` with the server's port, in a
/// task of its own. Returns the port once the server listens.
pub fn spawn_server<F, Fut>(handle: F) -> u16
where
    F: Fn(tokio::net::TcpStream, u16) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            tx.send(port).unwrap();
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(handle(sock, port));
            }
        });
    });
    rx.recv().unwrap()
}

/// A sink (for the library's `Guest::fetch`) whose body the test can read
/// after the guest took the sink.
#[derive(Clone, Default)]
pub struct SharedSink(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl wfetch::sink::Sink for SharedSink {
    fn write(&mut self, data: Vec<u8>) -> wfetch::sink::WriteFuture<'_> {
        self.0.lock().unwrap().extend_from_slice(&data);
        Box::pin(async { Ok(()) })
    }
}

use std::path::Path;
use std::process::{Command, Output, Stdio};

/// The wfetch binary built for these tests.
pub const WFETCH: &str = env!("CARGO_BIN_EXE_wfetch");

/// Run wfetch with args; no stdin.
pub fn wfetch(args: &[&str]) -> Output {
    Command::new(WFETCH)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run wfetch")
}

/// Run curl with args; no stdin.
pub fn curl(args: &[&str]) -> Output {
    Command::new("curl")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run curl (is it installed?)")
}

/// The exit code, or a panic naming the signal.
pub fn code(out: &Output) -> i32 {
    out.status
        .code()
        .unwrap_or_else(|| panic!("killed by a signal: {:?}", out.status))
}

/// Assert a zero exit, showing stderr otherwise.
#[track_caller]
pub fn ok(out: &Output) {
    assert_eq!(code(out), 0, "stderr: {}", String::from_utf8_lossy(&out.stderr));
}

/// A fresh temporary directory.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// Read a file, panicking with its name.
pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Deterministic pseudo-random bytes (xorshift), so big bodies are not
/// trivially compressible and any reordering shows.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A port that was free a moment ago (for servers that cannot bind port 0
/// and tell us, like nginx).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind 127.0.0.1:0")
        .local_addr()
        .unwrap()
        .port()
}

/// A port on which nothing listens (connect is refused).
pub fn closed_port() -> u16 {
    free_port()
}
