//! A scriptable HTTP/1.1 test server on 127.0.0.1:0 for what nginx cannot
//! produce: trailers, 1xx, truncation, close-delimited bodies, resets,
//! malformed heads. One connection, one canned reply, then close.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What to do after writing the reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// Close normally (FIN).
    Close,
    /// Abort with a TCP RST.
    Reset,
    /// Keep the connection open without sending more, for this long.
    Hang(Duration),
}

/// A canned reply.
pub struct Reply {
    pub bytes: Vec<u8>,
    pub after: After,
}

impl Reply {
    fn close(bytes: impl Into<Vec<u8>>) -> Reply {
        Reply {
            bytes: bytes.into(),
            after: After::Close,
        }
    }
}

pub struct TestServer {
    pub port: u16,
    /// Every request head received, in order.
    pub requests: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

/// The body that several routes send: recognisable and long enough.
pub fn sample_body() -> Vec<u8> {
    (0..3000).map(|i| format!("{i:05} ")).collect::<String>().into_bytes()
}

/// The reply for a request path.
pub fn route(path: &str, request: &[u8]) -> Reply {
    let body = sample_body();
    let head = |extra: &str| format!("HTTP/1.1 200 OK\r\nServer: wfetch-test\r\n{extra}\r\n").into_bytes();
    let with_len = |b: &[u8]| {
        let mut v = head(&format!("Content-Length: {}\r\n", b.len()));
        v.extend_from_slice(b);
        v
    };
    let chunked = |b: &[u8], piece: usize, trailer: &str| {
        let mut v = head("Transfer-Encoding: chunked\r\n");
        for c in b.chunks(piece) {
            v.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
            v.extend_from_slice(c);
            v.extend_from_slice(b"\r\n");
        }
        v.extend_from_slice(format!("0\r\n{trailer}\r\n").as_bytes());
        v
    };
    match path {
        "/ok" => Reply::close(with_len(&body)),
        "/echo" => Reply::close(with_len(request)),
        "/trailers" => Reply::close(chunked(&body, 1000, "X-Checksum: abc123\r\nX-Other: two\r\n")),
        "/chunked-ext" => {
            let mut v = head("Transfer-Encoding: chunked\r\n");
            v.extend_from_slice(
                b"5;name=value;x=\"q\"\r\nhello\r\n6 ; ext\r\n world\r\nA\r\n0123456789\r\n0;last\r\n\r\n",
            );
            Reply::close(v)
        }
        "/interim" => {
            let mut v =
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
                    .to_vec();
            v.extend_from_slice(&with_len(b"final body\n"));
            Reply::close(v)
        }
        "/close-delimited" => {
            let mut v = head("");
            v.extend_from_slice(&body);
            Reply::close(v)
        }
        "/truncated" => {
            let mut v = head(&format!("Content-Length: {}\r\n", body.len()));
            v.extend_from_slice(&body[..1000]);
            Reply::close(v)
        }
        "/truncated-chunked" => {
            let mut v = chunked(&body, 1000, "");
            v.truncate(v.len() - 200);
            Reply::close(v)
        }
        "/mid-head" => Reply::close(b"HTTP/1.1 200 OK\r\nContent-Le".to_vec()),
        "/empty" => Reply::close(Vec::new()),
        "/bad-status" => Reply::close(b"HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n".to_vec()),
        "/not-http" => Reply::close(b"SSH-2.0-OpenSSH_9.2\r\n\r\n".to_vec()),
        "/cl-conflict" => {
            Reply::close(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!".to_vec())
        }
        "/cl-te" => Reply::close(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
                .to_vec(),
        ),
        "/bad-chunk" => {
            Reply::close(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n".to_vec())
        }
        "/chunk-overflow" => Reply::close(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nhello\r\n0\r\n\r\n".to_vec(),
        ),
        "/bare-lf" => Reply::close(b"HTTP/1.1 200 OK\nContent-Length: 6\nX-A: b\n\nbare!\n".to_vec()),
        "/no-content" => Reply::close(b"HTTP/1.1 204 No Content\r\nContent-Length: 10\r\n\r\n".to_vec()),
        "/reset" => {
            let mut v = head(&format!("Content-Length: {}\r\n", body.len()));
            v.extend_from_slice(&body[..2000]);
            Reply {
                bytes: v,
                after: After::Reset,
            }
        }
        "/big-head" => {
            let mut v = b"HTTP/1.1 200 OK\r\n".to_vec();
            for i in 0..5000 {
                v.extend_from_slice(format!("X-Filler-{i}: {}\r\n", "y".repeat(40)).as_bytes());
            }
            v.extend_from_slice(b"Content-Length: 0\r\n\r\n");
            Reply::close(v)
        }
        "/404" => Reply::close(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot here\n".to_vec()),
        "/hang" => Reply {
            bytes: head("Content-Length: 100\r\n"),
            after: After::Hang(Duration::from_secs(30)),
        },
        p if p.starts_with("/redir/") => redirect(p, request),
        p if p.starts_with("/flaky/") => {
            if first_time(p) {
                Reply::close(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 5\r\n\r\nbusy\n".to_vec())
            } else {
                Reply::close(with_len(b"fine\n"))
            }
        }
        p if p.starts_with("/flaky-reset/") => {
            if first_time(p) {
                Reply {
                    bytes: Vec::new(),
                    after: After::Reset,
                }
            } else {
                Reply::close(with_len(b"fine\n"))
            }
        }
        "/gzip" | "/deflate" | "/br" => {
            let coding = &path[1..];
            let encoded = encode(coding, &body);
            let mut v = head(&format!(
                "Content-Encoding: {coding}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n",
                encoded.len()
            ));
            v.extend_from_slice(&encoded);
            Reply::close(v)
        }
        "/br-big" => {
            let mut v = head(&format!(
                "Content-Encoding: br\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n",
                big_br().len()
            ));
            v.extend_from_slice(big_br());
            Reply::close(v)
        }
        "/gzip-chunked" => {
            let mut v = chunked(&encode("gzip", &body), 777, "");
            let at = v.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
            v.splice(at..at, b"Content-Encoding: gzip\r\n".iter().copied());
            Reply::close(v)
        }
        "/bad-length" => Reply::close(b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\nhello".to_vec()),
        "/bad-gzip" => Reply::close(
            b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 20\r\n\r\nthis is not gzip!!!\n".to_vec(),
        ),
        _ => Reply::close(b"HTTP/1.1 404 Not Found\r\nContent-Length: 10\r\n\r\nno route!\n".to_vec()),
    }
}

/// 2 MiB of numbered lines: [`big_br`] decoded.
pub fn big_body() -> Vec<u8> {
    (0..200_000u32)
        .map(|i| format!("{:09}\n", i.wrapping_mul(2_654_435_761)))
        .collect::<String>()
        .into_bytes()
}

/// [`big_body`] as brotli with a 16 MiB window: decoding it takes a ring
/// buffer of the window's size, far beyond the default guest's initial
/// heap.
pub fn big_br() -> &'static [u8] {
    static BR: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BR.get_or_init(|| {
        use std::io::Write;
        let mut out = Vec::new();
        let mut w = brotli::CompressorWriter::new(&mut out, 4096, 1, 24);
        w.write_all(&big_body()).unwrap();
        drop(w);
        out
    })
}

/// True the first time `key` is asked for in this test run (per-route state
/// for the flaky routes: use a fresh key per client).
fn first_time(key: &str) -> bool {
    static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut seen = SEEN.lock().unwrap();
    if seen.iter().any(|k| k == key) {
        return false;
    }
    seen.push(key.to_string());
    true
}

/// `body` compressed with a content coding: gzip, deflate (zlib) or br.
pub fn encode(coding: &str, body: &[u8]) -> Vec<u8> {
    use std::io::Write;
    match coding {
        "gzip" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(body).unwrap();
            e.finish().unwrap()
        }
        "deflate" => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(body).unwrap();
            e.finish().unwrap()
        }
        "br" => {
            let mut out = Vec::new();
            let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
            w.write_all(body).unwrap();
            drop(w);
            out
        }
        other => panic!("no coding {other}"),
    }
}

/// `/redir/CODE/KIND`: a CODE redirect to /echo. KIND: `abs` (an absolute
/// URL to this server), `rel` ("/echo"), `relpath` ("../../echo"), `cross`
/// (the same server as `localhost`: another origin).
fn redirect(path: &str, request: &[u8]) -> Reply {
    let mut parts = path.trim_start_matches("/redir/").split('/');
    let (code, kind) = (parts.next().unwrap_or("302"), parts.next().unwrap_or("rel"));
    let head = String::from_utf8_lossy(request);
    let port = head
        .lines()
        .find_map(|l| l.strip_prefix("Host: ").or_else(|| l.strip_prefix("host: ")))
        .and_then(|h| h.trim().rsplit(':').next().map(str::to_string))
        .unwrap_or_default();
    let location = match kind {
        "abs" => format!("http://127.0.0.1:{port}/echo"),
        "cross" => format!("http://localhost:{port}/echo"),
        "relpath" => "../../echo".to_string(),
        _ => "/echo".to_string(),
    };
    let body = format!("redirecting to {location}\n");
    Reply::close(
        format!(
            "HTTP/1.1 {code} Moved\r\nLocation: {location}\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

/// The server for this test run, started on first use in its own thread.
pub fn server() -> &'static TestServer {
    static SERVER: OnceLock<TestServer> = OnceLock::new();
    SERVER.get_or_init(|| {
        let requests = Arc::new(Mutex::new(Vec::new()));
        let reqs = requests.clone();
        let port = super::spawn_server(move |sock, _| {
            let reqs = reqs.clone();
            async move {
                let _ = serve(sock, reqs).await;
            }
        });
        TestServer { port, requests }
    })
}

async fn serve(mut sock: TcpStream, reqs: Arc<Mutex<Vec<Vec<u8>>>>) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = sock.read(&mut tmp).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&tmp[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    if head.starts_with("POST /reset-upload ") {
        // Refuse the body: reset before reading it (the client's send fails).
        #[allow(deprecated)] // zero linger does not block: it sends RST at once
        sock.set_linger(Some(Duration::ZERO))?;
        return Ok(());
    }
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + len {
        let n = sock.read(&mut tmp).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&tmp[..n]);
    }
    reqs.lock().unwrap().push(buf.clone());
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let reply = route(&path, &buf);
    sock.write_all(&reply.bytes).await?;
    match reply.after {
        After::Close => {
            sock.shutdown().await?;
            // Let the client read everything before the socket goes away.
            let _ = tokio::time::timeout(Duration::from_secs(5), sock.read(&mut tmp)).await;
        }
        After::Reset => {
            #[allow(deprecated)] // zero linger does not block: it sends RST at once
            sock.set_linger(Some(Duration::ZERO))?;
            drop(sock);
        }
        After::Hang(d) => tokio::time::sleep(d).await,
    }
    Ok(())
}
