//! A hostile guest, for the sandbox tests only. Each fetch misbehaves in
//! the way the request URL names, `hostile://MODE[/HOST:PORT[/PATH]]`:
//!
//! | mode | what it does |
//! |---|---|
//! | `loop` | spins forever without calling the host |
//! | `membomb` | allocates 1 MiB blocks forever |
//! | `flood/H:P` | opens connections to H:P forever, keeping them all |
//! | `connect/H:P` | opens one connection; Ok (status 200) when allowed |
//! | `bigwrite/H:P` | writes 1 MiB blocks to H:P forever, never draining |
//! | `readall/H:P` | reads from H:P until EOF in 64 KiB pieces, discarding |
//! | `read-to-eof/H:P` | one `read(-1)` on H:P |
//! | `readexactly/H:P` | one `readexactly` of 1 GiB on H:P |
//! | `trap-mid-body/H:P/PATH` | GETs PATH, hands a first body piece to the sink, then traps |
//! | `sinkflood` | writes 64 KiB pieces to the sink forever |
//! | `never-returns` | sleeps on a WASI clock forever (uses no fuel) |
//! | `exit` | calls WASI exit |
//! | `escape/H:P` | tries WASI's own ways out: TCP to H:P, a DNS lookup, a file, the environment |
//! | `remember` | reports what an earlier fetch left in its memory (a static counter, a byte 2 MiB deep in a static buffer, the memory size), then leaves its own marks there and grows memory |
//! | `keep/H:P` | opens a connection to H:P and hands it to the host's keep-alive pool |
//! | `ok` | returns a 200 at once |

wit_bindgen::generate!({
    world: "fetch-guest",
    path: "../../wit",
});

use std::hint::black_box;

use exports::wfetch::fetch::fetcher::{FetchError, FetchResponse, Guest, HeadParse, RequestError};
use wfetch::fetch::sink::BodySink;
use wfetch::fetch::streams::{open_connection, OpenOptions, StreamReader, StreamWriter};
use wfetch::fetch::types::{Request, ResponseHead};

struct Component;

/// `remember`'s marks: a counter, and a buffer whose far end lies deep in
/// linear memory (zero-initialised, so in the image's bss).
static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
static DEEP: [std::sync::atomic::AtomicU8; 3 << 20] = [const { std::sync::atomic::AtomicU8::new(0) }; 3 << 20];
const DEEP_MARK: usize = (2 << 20) + 4321;

fn response(url: &str, reason: &str, body_bytes: u64) -> FetchResponse {
    FetchResponse {
        head: ResponseHead {
            version: "HTTP/1.1".into(),
            status: 200,
            reason: reason.into(),
            headers: Vec::new(),
        },
        url: url.into(),
        hops: Vec::new(),
        body_bytes,
    }
}

/// `H:P` into host and port.
fn target(arg: Option<&str>) -> Result<(String, u16), FetchError> {
    let bad = || FetchError::Request(RequestError::InvalidUrl(format!("expected HOST:PORT, got {arg:?}")));
    let (h, p) = arg.and_then(|a| a.rsplit_once(':')).ok_or_else(bad)?;
    Ok((h.to_string(), p.parse().map_err(|_| bad())?))
}

fn open(arg: Option<&str>) -> Result<(StreamReader, StreamWriter), FetchError> {
    let (host, port) = target(arg)?;
    let options = OpenOptions {
        tls: None,
        limit: None,
        high_water: None,
    };
    open_connection(&host, port, &options).map_err(FetchError::Transport)
}

impl Guest for Component {
    fn build_request(req: Request) -> Result<Vec<u8>, RequestError> {
        Ok(req.url.into_bytes())
    }

    fn parse_response_head(_data: Vec<u8>) -> Result<HeadParse, String> {
        Err("the hostile guest does not parse heads".into())
    }

    fn fetch(req: Request, sink: &BodySink) -> Result<FetchResponse, FetchError> {
        let rest = req
            .url
            .strip_prefix("hostile://")
            .ok_or_else(|| FetchError::Request(RequestError::UnsupportedScheme(req.url.clone())))?;
        let mut parts = rest.splitn(3, '/');
        let mode = parts.next().unwrap_or("");
        let arg = parts.next();
        let path = parts.next();
        match mode {
            "loop" => {
                let mut x = 0u64;
                loop {
                    x = black_box(x.wrapping_add(1));
                }
            }
            "membomb" => {
                let mut held: Vec<Vec<u8>> = Vec::new();
                loop {
                    let mut block = vec![0u8; 1 << 20];
                    block[0] = held.len() as u8;
                    held.push(black_box(block));
                }
            }
            "flood" => {
                let mut held = Vec::new();
                loop {
                    held.push(open(arg)?);
                }
            }
            "connect" => {
                let (_r, w) = open(arg)?;
                w.close();
                Ok(response(&req.url, "connected", 0))
            }
            "bigwrite" => {
                let (_r, w) = open(arg)?;
                let block = vec![b'x'; 1 << 20];
                loop {
                    w.write(&block).map_err(FetchError::Transport)?;
                }
            }
            "readall" => {
                let (r, _w) = open(arg)?;
                let mut total = 0u64;
                loop {
                    let got = r.read(64 * 1024).map_err(FetchError::Receive)?;
                    if got.is_empty() {
                        return Ok(response(&req.url, "read all", total));
                    }
                    total += got.len() as u64;
                }
            }
            "read-to-eof" => {
                let (r, _w) = open(arg)?;
                let all = r.read(-1).map_err(FetchError::Receive)?;
                Ok(response(&req.url, "read to eof", all.len() as u64))
            }
            "readexactly" => {
                let (r, _w) = open(arg)?;
                let all = r.readexactly(1 << 30).map_err(FetchError::Receive)?;
                Ok(response(&req.url, "read exactly", all.len() as u64))
            }
            "trap-mid-body" => {
                let (r, w) = open(arg)?;
                let (host, _) = target(arg)?;
                let request = format!(
                    "GET /{} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n",
                    path.unwrap_or("")
                );
                w.write(request.as_bytes()).map_err(FetchError::Transport)?;
                w.drain().map_err(FetchError::Transport)?;
                let head = r.readuntil(&[b"\r\n\r\n".to_vec()]).map_err(FetchError::Receive)?;
                let piece = r.read(1000).map_err(FetchError::Receive)?;
                sink.write(&piece).map_err(FetchError::Sink)?;
                black_box(head);
                // In the middle of the body: trap.
                core::arch::wasm32::unreachable()
            }
            "sinkflood" => {
                let block = vec![b'y'; 64 * 1024];
                loop {
                    sink.write(&block).map_err(FetchError::Sink)?;
                }
            }
            "never-returns" => loop {
                std::thread::sleep(std::time::Duration::from_secs(3600));
            },
            "exit" => std::process::exit(3),
            "escape" => {
                let (host, port) = target(arg)?;
                let tcp = std::net::TcpStream::connect((host.as_str(), port)).is_ok();
                let dns = std::net::ToSocketAddrs::to_socket_addrs(&("localhost", port)).is_ok();
                let file = std::fs::read("/etc/passwd").is_ok() || std::fs::read_dir("/").is_ok();
                let env = std::env::vars_os().count();
                let args = std::env::args_os().count();
                let report = format!("tcp={tcp} dns={dns} file={file} env={env} args={args}");
                Ok(response(&req.url, &report, 0))
            }
            "remember" => {
                use std::sync::atomic::Ordering::Relaxed;
                let report = format!(
                    "calls={} deep={} pages={}",
                    CALLS.fetch_add(1, Relaxed),
                    DEEP[DEEP_MARK].swap(0xAA, Relaxed),
                    core::arch::wasm32::memory_size(0)
                );
                // Grow the heap (and so the memory) by 4 MiB, and keep it.
                let block = vec![0x55u8; 4 << 20];
                black_box(Box::leak(block.into_boxed_slice()));
                Ok(response(&req.url, &report, 0))
            }
            "keep" => {
                let (reader, writer) = open(arg)?;
                let kept = wfetch::fetch::streams::release_connection(reader, writer);
                Ok(response(&req.url, if kept { "kept" } else { "not kept" }, 0))
            }
            "ok" => Ok(response(&req.url, "ok", 0)),
            other => Err(FetchError::Request(RequestError::InvalidUrl(format!(
                "unknown mode {other:?}"
            )))),
        }
    }
}

export!(Component);
