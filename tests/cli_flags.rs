//! The curl-grade command line, flag by flag: each case runs wfetch and
//! curl with the same arguments against the same local servers (nginx and
//! the scriptable test server), each in a fresh working directory, and
//! compares exit codes, stdout (body and the deterministic -w values), the
//! files written, and whether stderr is empty.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use crate::util::certs::certs;
use crate::util::nginx::nginx;
use crate::util::server::{sample_body, server};
use crate::util::{closed_port, tempdir, WFETCH};

/// How stdout is compared.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Out {
    /// Byte for byte.
    Exact,
    /// The test server's /echo output: the request line, then the header
    /// lines sorted (curl and wfetch order a few differently), the default
    /// User-Agent masked, then the body.
    Request,
    /// nginx's /conn lines ("connection requests"): the connection numbers
    /// are masked (they differ between the two processes), the pattern of
    /// equal numbers and the request counts must match.
    Conn,
    /// Not compared.
    Ignore,
}

/// How stderr is compared.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Err {
    /// Both empty.
    Empty,
    /// Both non-empty.
    Some,
    Ignore,
}

struct Case {
    name: &'static str,
    /// The same for both tools; "{tool}" becomes "wfetch" or "curl" (for
    /// per-client state on the test server).
    args: Vec<String>,
    out: Out,
    err: Err,
    /// The exit code both must have.
    code: i32,
    /// Where curl differs on purpose: its exit code.
    curl_code: Option<i32>,
    stdin: Option<Vec<u8>>,
    /// Files to create in the working directory first.
    files: Vec<(&'static str, Vec<u8>)>,
}

fn case(name: &'static str, code: i32, out: Out, args: &[&str]) -> Case {
    Case {
        name,
        args: args.iter().map(|s| s.to_string()).collect(),
        out,
        err: Err::Ignore,
        code,
        curl_code: None,
        stdin: None,
        files: Vec::new(),
    }
}

impl Case {
    fn err(mut self, err: Err) -> Case {
        self.err = err;
        self
    }
    /// curl exits with `code` here (a documented difference).
    fn curl(mut self, code: i32) -> Case {
        self.curl_code = Some(code);
        self
    }
    fn stdin(mut self, data: &[u8]) -> Case {
        self.stdin = Some(data.to_vec());
        self
    }
    fn file(mut self, name: &'static str, data: Vec<u8>) -> Case {
        self.files.push((name, data));
        self
    }
}

struct Run {
    code: i32,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    files: BTreeMap<String, Vec<u8>>,
}

fn collect(dir: &Path, base: &Path, files: &mut BTreeMap<String, Vec<u8>>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(&path, base, files);
        } else {
            let name = path.strip_prefix(base).unwrap().display().to_string();
            files.insert(name, std::fs::read(&path).unwrap());
        }
    }
}

fn run(tool: &str, c: &Case) -> Run {
    let dir = tempdir();
    for (name, data) in &c.files {
        std::fs::write(dir.path().join(name), data).unwrap();
    }
    let program = if tool == "wfetch" { WFETCH } else { "curl" };
    let args: Vec<String> = c.args.iter().map(|a| a.replace("{tool}", tool)).collect();
    let mut child = Command::new(program)
        .args(&args)
        .current_dir(dir.path())
        .stdin(if c.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {program}: {e}"));
    if let Some(data) = &c.stdin {
        child.stdin.take().unwrap().write_all(data).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let mut files = BTreeMap::new();
    collect(dir.path(), dir.path(), &mut files);
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: out.stdout,
        stderr: out.stderr,
        files,
    }
}

/// The /echo output with header order and the default User-Agent masked.
fn normalize_request(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let first = lines.next().unwrap_or("").to_string();
    let mut rest: Vec<String> = lines
        .map(|l| {
            if l.starts_with("User-Agent: curl/") || l.starts_with("User-Agent: wfetch/") {
                "User-Agent: <default>".to_string()
            } else {
                l.to_string()
            }
        })
        .collect();
    rest.sort();
    format!("{first}\n{}\n\n{body}", rest.join("\n"))
}

/// /conn lines with the connection numbers replaced by their order of appearance.
fn normalize_conn(raw: &[u8]) -> String {
    let mut seen: Vec<String> = Vec::new();
    String::from_utf8_lossy(raw)
        .lines()
        .map(|l| match l.split_once(' ') {
            Some((conn, reqs)) if reqs.chars().all(|c| c.is_ascii_digit()) => {
                let i = seen.iter().position(|s| s == conn).unwrap_or_else(|| {
                    seen.push(conn.to_string());
                    seen.len() - 1
                });
                format!("c{i} {reqs}")
            }
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// How many cases of one table run at once: enough to hide the waits
/// (retry delays, timeouts), few enough not to starve the tests running
/// beside this one on a small machine.
const CASES_AT_ONCE: usize = 4;

/// Run every case (a few at a time) and report every mismatch at once.
fn check(cases: Vec<Case>) {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failures: Vec<String> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..CASES_AT_ONCE)
            .map(|_| {
                s.spawn(|| {
                    let mut failed = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(c) = cases.get(i) else { break };
                        failed.extend(compare(c).err());
                    }
                    failed
                })
            })
            .collect();
        workers.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

fn compare(c: &Case) -> Result<(), String> {
    let t0 = std::time::Instant::now();
    let w = run("wfetch", c);
    let t1 = std::time::Instant::now();
    let k = run("curl", c);
    // WFETCH_TEST_TIMES=1 (with --nocapture) shows what each case costs.
    if std::env::var_os("WFETCH_TEST_TIMES").is_some() {
        eprintln!(
            "{:>6.2}s {:>6.2}s {}",
            (t1 - t0).as_secs_f64(),
            t1.elapsed().as_secs_f64(),
            c.name
        );
    }
    let mut problems = Vec::new();
    let show = |r: &Run| {
        let cut = |b: &[u8]| {
            let text = String::from_utf8_lossy(b);
            match text.char_indices().nth(600) {
                None => format!("{text:?}"),
                Some(_) => {
                    let chars: Vec<char> = text.chars().collect();
                    let head: String = chars[..300].iter().collect();
                    let tail: String = chars[chars.len() - 300..].iter().collect();
                    format!("{head:?} ... {tail:?}")
                }
            }
        };
        format!("code {} stdout {} stderr {}", r.code, cut(&r.stdout), cut(&r.stderr))
    };
    if w.code != c.code {
        problems.push(format!("wfetch exit code {} (want {})", w.code, c.code));
    }
    if k.code != c.curl_code.unwrap_or(c.code) {
        problems.push(format!(
            "curl exit code {} (want {})",
            k.code,
            c.curl_code.unwrap_or(c.code)
        ));
    }
    let same = match c.out {
        Out::Exact => w.stdout == k.stdout,
        Out::Request => normalize_request(&w.stdout) == normalize_request(&k.stdout),
        Out::Conn => normalize_conn(&w.stdout) == normalize_conn(&k.stdout),
        Out::Ignore => true,
    };
    if !same {
        problems.push("stdout differs".into());
    }
    if w.files != k.files {
        let sizes = |r: &Run| r.files.iter().map(|(n, d)| (n.clone(), d.len())).collect::<Vec<_>>();
        problems.push(format!("files differ: wfetch {:?}, curl {:?}", sizes(&w), sizes(&k)));
    }
    match c.err {
        Err::Empty if !w.stderr.is_empty() || !k.stderr.is_empty() => problems.push("stderr not empty".into()),
        Err::Some if w.stderr.is_empty() || k.stderr.is_empty() => problems.push("stderr empty".into()),
        _ => {}
    }
    if problems.is_empty() {
        return Ok(());
    }
    Err(format!(
        "[{}] {:?}: {}\n  wfetch: {}\n  curl:   {}",
        c.name,
        c.args,
        problems.join("; "),
        show(&w),
        show(&k)
    ))
}

/// A port whose accept queue is full: a connect to it hangs (the kernel
/// drops the SYNs), for --connect-timeout.
fn full_backlog_port() -> u16 {
    static PORT: std::sync::OnceLock<u16> = std::sync::OnceLock::new();
    *PORT.get_or_init(|| {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let sock = tokio::net::TcpSocket::new_v4().unwrap();
                sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
                let listener = sock.listen(0).unwrap();
                let addr = listener.local_addr().unwrap();
                let fillers: Vec<_> = (0..3)
                    .filter_map(|_| {
                        std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_millis(200)).ok()
                    })
                    .collect();
                tx.send(addr.port()).unwrap();
                // Never accept; keep the listener and the queued connections.
                std::future::pending::<()>().await;
                drop((listener, fillers));
            });
        });
        rx.recv().unwrap()
    })
}

#[test]
fn output_flags_match_curl() {
    let n = nginx();
    let (index, big) = (n.http("/index.html"), n.http("/big.bin"));
    check(vec![
        case("-o", 0, Out::Exact, &["-s", "-o", "out.bin", &big]),
        case("-o -", 0, Out::Exact, &["-s", "-o", "-", &index]),
        case("-O", 0, Out::Exact, &["-s", "-O", &index]),
        case(
            "-O twice",
            0,
            Out::Exact,
            &["-s", "-O", "-O", &index, &n.http("/empty.bin")],
        ),
        case(
            "-o and -O mixed",
            0,
            Out::Exact,
            &["-s", "-O", &index, "-o", "x.bin", &big],
        ),
        case("-O without a name", 23, Out::Exact, &["-s", "-O", &n.http("/")]),
        case(
            "--create-dirs",
            0,
            Out::Exact,
            &["-s", "--create-dirs", "-o", "a/b/c.html", &index],
        ),
        case(
            "-o into a missing dir",
            23,
            Out::Exact,
            &["-s", "-o", "nodir/x.html", &index],
        ),
        case(
            "--output-dir",
            0,
            Out::Exact,
            &["-s", "--create-dirs", "--output-dir", "d", "-O", &index],
        ),
        case("-i", 0, Out::Exact, &["-s", "-i", &server().url("/ok")]),
        case("-I", 0, Out::Exact, &["-s", "-I", &server().url("/ok")]),
        case("-s on success", 0, Out::Exact, &["-s", &index]).err(Err::Empty),
        case(
            "-f writes no file",
            22,
            Out::Exact,
            &["-s", "-f", "-o", "f.html", &n.http("/nope")],
        ),
        case(
            "empty body file",
            0,
            Out::Exact,
            &["-s", "-o", "e.bin", &n.http("/empty.bin")],
        ),
    ]);
}

#[test]
fn request_flags_match_curl() {
    let echo = server().url("/echo");
    let e = echo.as_str();
    let dir = tempdir();
    let data = dir.path().join("data.txt");
    std::fs::write(&data, b"line one\r\nline two\n").unwrap();
    let at_data = format!("@{}", data.display());
    let at = at_data.as_str();
    check(vec![
        case("GET", 0, Out::Request, &["-s", e]),
        case("-X", 0, Out::Request, &["-s", "-X", "PUT", e]),
        case(
            "-H add",
            0,
            Out::Request,
            &["-s", "-H", "X-One: 1", "-H", "X-Two:  two words", e],
        ),
        case(
            "-H replace",
            0,
            Out::Request,
            &["-s", "-H", "Accept: text/plain", "-H", "Host: example.test", e],
        ),
        case(
            "-H remove",
            0,
            Out::Request,
            &["-s", "-H", "Accept:", "-H", "User-Agent:", e],
        ),
        case("-H empty value", 0, Out::Request, &["-s", "-H", "X-Empty;", e]),
        case("-A", 0, Out::Request, &["-s", "-A", "agent/1.0", e]),
        case("-A empty", 0, Out::Request, &["-s", "-A", "", e]),
        case("-e", 0, Out::Request, &["-s", "-e", "http://from.example/page", e]),
        case("-u", 0, Out::Request, &["-s", "-u", "user:p@ss:word", e]),
        case("-u without password", 0, Out::Request, &["-s", "-u", "user:", e]),
        case("-d", 0, Out::Request, &["-s", "-d", "a=1", "-d", "b=2", e]),
        case("-d @file", 0, Out::Request, &["-s", "-d", at, e]),
        case("--data-binary @file", 0, Out::Request, &["-s", "--data-binary", at, e]),
        case("--data-binary @-", 0, Out::Request, &["-s", "--data-binary", "@-", e]).stdin(b"from\r\nstdin\n"),
        case("-d @-", 0, Out::Request, &["-s", "-d", "@-", e]).stdin(b"from\r\nstdin\n"),
        case("--data-raw", 0, Out::Request, &["-s", "--data-raw", "@not-a-file", e]),
        case(
            "data flags mixed",
            0,
            Out::Request,
            &["-s", "-d", "a", "--data-binary", "b", "-d", "c", e],
        ),
        case("--json", 0, Out::Request, &["-s", "--json", "{\"a\":1}", e]),
        case(
            "--json twice",
            0,
            Out::Request,
            &["-s", "--json", "{\"a\":", "--json", "1}", e],
        ),
        case(
            "--json with -H",
            0,
            Out::Request,
            &["-s", "--json", "[]", "-H", "Accept: text/x", e],
        ),
        case(
            "-d with -H Content-Type",
            0,
            Out::Request,
            &["-s", "-d", "x", "-H", "Content-Type: text/y", e],
        ),
        case("-I", 0, Out::Exact, &["-s", "-A", "t", "-I", e]),
        case("--http1.0", 0, Out::Request, &["-s", "--http1.0", e]),
        case("-X with -d", 0, Out::Request, &["-s", "-X", "PATCH", "-d", "z", e]),
    ]);
}

#[test]
fn redirects_match_curl() {
    let s = server();
    let mut cases = Vec::new();
    let w = "%{http_code} %{num_redirects} %{url_effective}\\n";
    for code in ["301", "302", "303", "307", "308"] {
        for kind in ["abs", "rel", "relpath"] {
            let url = s.url(&format!("/redir/{code}/{kind}"));
            let mut c = case("-L -d", 0, Out::Request, &["-s", "-L", "-d", "x=1", "-w", w, &url]);
            c.name = "-L with a POST body";
            cases.push(c);
        }
        let url = s.url(&format!("/redir/{code}/rel"));
        cases.push(case("-L GET", 0, Out::Request, &["-s", "-L", "-w", w, &url]));
        cases.push(case("-L HEAD", 0, Out::Exact, &["-s", "-A", "t", "-L", "-I", "-w", w, &url]).err(Err::Empty));
        cases.push(case(
            "no -L",
            0,
            Out::Exact,
            &["-s", "-w", "%{http_code} %{redirect_url}", &url],
        ));
    }
    let cross = s.url("/redir/302/cross");
    cases.push(case(
        "cross-origin drops credentials",
        0,
        Out::Request,
        &[
            "-s",
            "-L",
            "-u",
            "a:b",
            "-H",
            "Cookie: c=1",
            "-H",
            "X-Keep: 1",
            "-w",
            w,
            &cross,
        ],
    ));
    let same = s.url("/redir/307/abs");
    cases.push(case(
        "same-origin keeps credentials",
        0,
        Out::Request,
        &[
            "-s",
            "-L",
            "-u",
            "a:b",
            "-H",
            "Cookie: c=1",
            "-d",
            "k=v",
            "-w",
            w,
            &same,
        ],
    ));
    let n = nginx();
    cases.push(case(
        "--max-redirs",
        47,
        Out::Exact,
        &["-s", "-L", "--max-redirs", "3", &n.http("/loop")],
    ));
    cases.push(case("-L -i", 0, Out::Ignore, &["-s", "-L", "-i", &n.http("/redirect")]));
    cases.push(case(
        "-L from nginx",
        0,
        Out::Exact,
        &["-s", "-L", "-w", w, &n.http("/redirect")],
    ));
    check(cases);
}

#[test]
fn encoding_tls_and_output_flags_match_curl() {
    let n = nginx();
    let s = server();
    let ca = certs().ca_pem.display().to_string();
    let resolve = format!("wfetch.test:{}:127.0.0.1", n.http_port);
    let resolved = format!("http://wfetch.test:{}/index.html", n.http_port);
    let sizes = "%{http_code} %{size_download}\\n";
    check(vec![
        case(
            "--compressed gzip",
            0,
            Out::Exact,
            &["-s", "--compressed", "-w", sizes, &s.url("/gzip")],
        ),
        case(
            "--compressed deflate",
            0,
            Out::Exact,
            &["-s", "--compressed", "-w", sizes, &s.url("/deflate")],
        ),
        case(
            "--compressed br",
            0,
            Out::Exact,
            &["-s", "--compressed", "-w", sizes, &s.url("/br")],
        ),
        case(
            "--compressed chunked",
            0,
            Out::Exact,
            &["-s", "--compressed", "-w", sizes, &s.url("/gzip-chunked")],
        ),
        case(
            "--compressed nginx",
            0,
            Out::Exact,
            &["-s", "--compressed", "-w", sizes, &n.http("/gz/chunked/text.txt")],
        ),
        case(
            "--compressed bad data",
            61,
            Out::Ignore,
            &["-s", &s.url("/bad-gzip"), "--compressed"],
        ),
        case("-f", 22, Out::Exact, &["-s", "-f", "-w", sizes, &s.url("/404")]),
        case("-f -S", 22, Out::Exact, &["-sS", "-f", &s.url("/404")]).err(Err::Some),
        case(
            "-s hides errors",
            7,
            Out::Exact,
            &["-s", &format!("http://127.0.0.1:{}/", closed_port())],
        )
        .err(Err::Empty),
        case(
            "-sS shows errors",
            7,
            Out::Exact,
            &["-sS", &format!("http://127.0.0.1:{}/", closed_port())],
        )
        .err(Err::Some),
        case("-v", 0, Out::Exact, &["-v", &s.url("/ok")]).err(Err::Some),
        case(
            "--cacert",
            0,
            Out::Exact,
            &["-s", "--cacert", &ca, &n.https("/index.html")],
        ),
        case("-k", 0, Out::Exact, &["-s", "-k", &n.https("/index.html")]),
        case("no -k", 60, Out::Exact, &["-s", &n.https("/index.html")]),
        case("--resolve", 0, Out::Exact, &["-s", "--resolve", &resolve, &resolved]),
    ]);
}

#[test]
fn connection_retry_and_resume_flags_match_curl() {
    let n = nginx();
    let s = server();
    let big = n.file("big.bin");
    let sizes = "%{http_code} %{size_download}\\n";
    let (big_url, index, text) = (n.http("/big.bin"), n.http("/index.html"), n.http("/chunked/text.txt"));
    // Three bodies into three files, for the -Z cases.
    let three_files = ["-o", "1", &big_url, "-o", "2", &index, "-o", "3", &text];
    check(vec![
        case(
            "several URLs reuse the connection",
            0,
            Out::Conn,
            &[
                "-s",
                "-w",
                "%{num_connects}\\n",
                &n.http("/conn"),
                &n.http("/conn"),
                &n.http("/conn"),
            ],
        ),
        case(
            "several URLs, other origin between",
            0,
            Out::Conn,
            &["-s", &n.http("/conn"), &s.url("/interim"), &n.http("/conn")],
        ),
        case(
            "-Z",
            0,
            Out::Exact,
            &[&["-s", "-Z", "--parallel-max", "2"][..], &three_files].concat(),
        ),
        case(
            "-Z --parallel-immediate",
            0,
            Out::Exact,
            &[&["-s", "-Z", "--parallel-immediate"][..], &three_files].concat(),
        ),
        case(
            "--retry on 503",
            0,
            Out::Exact,
            &[
                "-s",
                "--retry",
                "2",
                "--retry-delay",
                "1",
                "-w",
                sizes,
                &s.url("/flaky/{tool}-a"),
            ],
        ),
        case(
            "--retry on 503 with -f",
            0,
            Out::Exact,
            &[
                "-s",
                "-f",
                "--retry",
                "1",
                "--retry-delay",
                "1",
                &s.url("/flaky/{tool}-b"),
            ],
        ),
        case(
            "--retry into a file",
            0,
            Out::Exact,
            &[
                "-s",
                "--retry",
                "1",
                "--retry-delay",
                "1",
                "-o",
                "r.txt",
                &s.url("/flaky/{tool}-c"),
            ],
        ),
        case(
            "no --retry",
            0,
            Out::Exact,
            &["-s", "-w", sizes, &s.url("/flaky/{tool}-d")],
        ),
        case(
            "--retry-all-errors",
            0,
            Out::Exact,
            &[
                "-s",
                "--retry",
                "1",
                "--retry-all-errors",
                "--retry-delay",
                "1",
                &s.url("/flaky-reset/{tool}-e"),
            ],
        ),
        case(
            "reset without --retry-all-errors",
            56,
            Out::Exact,
            &["-s", "--retry", "1", &s.url("/flaky-reset/{tool}-f")],
        ),
        case(
            "-C -",
            0,
            Out::Exact,
            &["-s", "-C", "-", "-o", "big.bin", "-w", sizes, &n.http("/big.bin")],
        )
        .file("big.bin", big[..100_000].to_vec()),
        case(
            "-C - complete",
            0,
            Out::Exact,
            &["-s", "-C", "-", "-o", "big.bin", &n.http("/big.bin")],
        )
        .file("big.bin", big.clone()),
        case(
            "-C - no file",
            0,
            Out::Exact,
            &["-s", "-C", "-", "-o", "big.bin", &n.http("/big.bin")],
        ),
        case(
            "-C offset to stdout",
            0,
            Out::Exact,
            &["-s", "-C", "10", &n.http("/index.html")],
        ),
        case(
            "-C - without ranges",
            33,
            Out::Exact,
            &["-s", "-C", "-", "-o", "c.txt", &n.http("/conn")],
        )
        .file("c.txt", b"12".to_vec()),
        case("-m", 28, Out::Exact, &["-s", "-m", "1", &s.url("/hang")]),
        case(
            "--connect-timeout expires",
            28,
            Out::Exact,
            &[
                "-s",
                "--connect-timeout",
                "1",
                &format!("http://127.0.0.1:{}/", full_backlog_port()),
            ],
        ),
        case(
            "--connect-timeout",
            0,
            Out::Exact,
            &["-s", "--connect-timeout", "5", &s.url("/ok")],
        ),
    ]);
}

#[test]
fn exit_codes_match_curl() {
    let n = nginx();
    let s = server();
    let big = crate::util::pseudo_random(8 << 20, 7);
    let dir = tempdir();
    let upload = dir.path().join("upload.bin");
    std::fs::write(&upload, &big).unwrap();
    let at_upload = format!("@{}", upload.display());
    check(vec![
        case("1 unsupported protocol", 1, Out::Exact, &["-s", "foo://127.0.0.1/"]),
        case(
            "2 unknown flag",
            2,
            Out::Ignore,
            &["-s", "--no-such-flag", &n.http("/")],
        ),
        case("3 malformed URL", 3, Out::Exact, &["-s", "http://[::1"]),
        case(
            "6 unresolvable host",
            6,
            Out::Exact,
            &["-s", "http://no-such-host.invalid/"],
        ),
        case(
            "7 refused",
            7,
            Out::Exact,
            &["-s", &format!("http://127.0.0.1:{}/", closed_port())],
        ),
        case("8 weird reply", 8, Out::Exact, &["-s", &s.url("/bad-length")]),
        case("18 partial", 18, Out::Exact, &["-s", &s.url("/truncated")]),
        // curl only warns and sends an empty body.
        case(
            "26 unreadable data file",
            26,
            Out::Ignore,
            &["-s", "-d", "@/nonexistent/data", &s.url("/echo")],
        )
        .curl(0),
        case("22 -f", 22, Out::Exact, &["-s", "-f", &s.url("/404")]),
        case(
            "23 write error",
            23,
            Out::Exact,
            &["-s", "-o", "/proc/version/x", &s.url("/ok")],
        ),
        case("28 timeout", 28, Out::Exact, &["-s", "-m", "1", &s.url("/hang")]),
        case(
            "35 TLS to a plain port",
            35,
            Out::Exact,
            &["-s", &format!("https://127.0.0.1:{}/", n.http_port)],
        ),
        case(
            "47 redirects",
            47,
            Out::Exact,
            &["-s", "-L", "--max-redirs", "1", &n.http("/loop")],
        ),
        case("52 empty reply", 52, Out::Exact, &["-s", &s.url("/empty")]),
        case(
            "55 send failure",
            55,
            Out::Ignore,
            &["-s", "--data-binary", &at_upload, &s.url("/reset-upload")],
        )
        // curl notices the reset on its receiving side and says 56.
        .curl(56),
        case("56 receive failure", 56, Out::Exact, &["-s", &s.url("/reset")]),
        case("60 certificate", 60, Out::Exact, &["-s", &n.https("/index.html")]),
        case(
            "61 bad encoding",
            61,
            Out::Ignore,
            &["-s", "--compressed", &s.url("/bad-gzip")],
        ),
        case(
            "last transfer's code (fail first)",
            0,
            Out::Ignore,
            &[
                "-s",
                &format!("http://127.0.0.1:{}/", closed_port()),
                &n.http("/index.html"),
            ],
        ),
        case(
            "last transfer's code (fail last)",
            7,
            Out::Ignore,
            &[
                "-s",
                &n.http("/index.html"),
                &format!("http://127.0.0.1:{}/", closed_port()),
            ],
        ),
    ]);
}

#[test]
fn deterministic_write_out_values_match_curl() {
    let n = nginx();
    let s = server();
    let w = "%{http_code}|%{size_download}|%{size_header}|%{url_effective}|%{num_redirects}|%{content_type}|%{exitcode}|%{http_version}|%{method}|%{remote_ip}|%{remote_port}|%{scheme}|%%|\\t|\\n";
    let port = closed_port();
    check(vec![
        case(
            "-w nginx",
            0,
            Out::Exact,
            &["-s", "-o", "x", "-w", w, &n.http("/index.html")],
        ),
        case(
            "-w nginx chunked",
            0,
            Out::Exact,
            &["-s", "-o", "x", "-w", w, &n.http("/chunked/text.txt")],
        ),
        case(
            "-w nginx https",
            0,
            Out::Exact,
            &["-s", "-k", "-o", "x", "-w", w, &n.https("/index.html")],
        ),
        case(
            "-w redirect",
            0,
            Out::Exact,
            &["-s", "-L", "-o", "x", "-w", w, &n.http("/redirect")],
        ),
        case(
            "-w HEAD",
            0,
            Out::Exact,
            &["-s", "-I", "-o", "/dev/null", "-w", w, &n.http("/index.html")],
        ),
        case(
            "-w interim",
            0,
            Out::Exact,
            &["-s", "-o", "x", "-w", w, &s.url("/interim")],
        ),
        case("-w 404 -f", 22, Out::Exact, &["-s", "-f", "-w", w, &s.url("/404")]),
        case(
            "-w no scheme",
            0,
            Out::Exact,
            &["-s", "-o", "x", "-w", "%{url_effective}", &n.http("")[7..]],
        ),
        case(
            "-w refused",
            7,
            Out::Exact,
            &[
                "-s",
                "-w",
                "%{http_code}|%{exitcode}|%{url_effective}|%{size_download}",
                &format!("http://127.0.0.1:{port}/a"),
            ],
        ),
        case(
            "-w truncated",
            18,
            Out::Exact,
            &[
                "-s",
                "-o",
                "x",
                "-w",
                "%{http_code}|%{exitcode}|%{size_download}",
                &s.url("/truncated"),
            ],
        ),
        case(
            "-w @file",
            0,
            Out::Exact,
            &["-s", "-o", "x", "-w", "@fmt", &n.http("/index.html")],
        )
        .file("fmt", b"%{http_code} %{size_download}\\n".to_vec()),
        case(
            "-w %header",
            0,
            Out::Exact,
            &[
                "-s",
                "-o",
                "x",
                "-w",
                "%header{content-length} %header{server}",
                &n.http("/index.html"),
            ],
        ),
        case(
            "-w with several URLs",
            0,
            Out::Exact,
            &[
                "-s",
                "-w",
                "[%{url_effective} %{http_code}]\\n",
                &s.url("/ok"),
                &s.url("/404"),
            ],
        ),
    ]);
}

/// The timing variables are not deterministic: they must be numbers with
/// six decimals, in curl's order, within time_total.
#[test]
fn timing_write_out_values_are_ordered() {
    let n = nginx();
    let w =
        "%{time_namelookup} %{time_connect} %{time_appconnect} %{time_pretransfer} %{time_starttransfer} %{time_total}";
    let ca = certs().ca_pem.display().to_string();
    for (url, tls) in [(n.http("/big.bin"), false), (n.https("/big.bin"), true)] {
        let out = crate::util::wfetch(&["-s", "--cacert", &ca, "-o", "/dev/null", "-w", w, &url]);
        crate::util::ok(&out);
        let text = String::from_utf8(out.stdout).unwrap();
        let t: Vec<f64> = text.split(' ').map(|v| v.parse().unwrap()).collect();
        assert!(
            text.split(' ').all(|v| v.split_once('.').unwrap().1.len() == 6),
            "{text}"
        );
        let (lookup, connect, app, pre, start, total) = (t[0], t[1], t[2], t[3], t[4], t[5]);
        assert!(
            lookup <= connect && connect <= pre && pre <= start && start <= total,
            "{text}"
        );
        assert!(connect > 0.0 && total > 0.0, "{text}");
        if tls {
            assert!(connect <= app && app <= pre, "{text}");
        } else {
            assert_eq!(app, 0.0, "{text}");
        }
    }
}

/// A reused connection is told in -w's num_connects, and nginx sees one
/// connection carry the requests; a redirect to the same origin reuses it.
#[test]
fn several_urls_share_one_kept_alive_connection() {
    let n = nginx();
    // The server may close an idle connection whenever it likes (the host's
    // pool log then says "eof true"): only that is worth another try.
    for attempt in 1..=3 {
        let out = Command::new(WFETCH)
            .args([
                "-s",
                "-w",
                "%{num_connects}\\n",
                &n.http("/conn"),
                &n.http("/conn"),
                &n.https("/index.html"),
                "-k",
                &n.http("/conn"),
            ])
            .env("WFETCH_LOG", "wfetch::pool=debug")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        crate::util::ok(&out);
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        let text = String::from_utf8(out.stdout).unwrap();
        // "/conn" bodies and num_connects lines interleave: "C 1", "1",
        // "C 2", "0", the https body, "1", "C 3", "0".
        let lines: Vec<&str> = text.lines().collect();
        let first = lines[0].split(' ').next().unwrap_or("?");
        let want = [
            format!("{first} 1"),
            "1".into(),
            format!("{first} 2"),
            "0".into(),
            "<html><body>hello from nginx</body></html>".into(),
            "1".into(),
            format!("{first} 3"),
            "0".into(),
        ];
        if lines == want {
            break;
        }
        let server_closed = log.contains("eof true") && !log.contains("eof false)");
        assert!(server_closed && attempt < 3, "{text}\n{log}");
    }
    let out = crate::util::wfetch(&[
        "-s",
        "-L",
        "-w",
        "%{num_connects} %{num_redirects}",
        &n.http("/redirect"),
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).ends_with("1 1"), "{:?}", out);
}

#[test]
fn no_progress_output_when_stderr_is_not_a_terminal() {
    let n = nginx();
    let dir = tempdir();
    let file = dir.path().join("big.bin");
    let out = crate::util::wfetch(&["-o", file.to_str().unwrap(), &n.http("/big.bin")]);
    crate::util::ok(&out);
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(std::fs::read(&file).unwrap() == n.file("big.bin"));
}

/// On a real terminal (tmux), a download to a file draws a progress bar
/// with bytes, rate and ETA; -s draws nothing.
#[test]
fn progress_bar_on_a_terminal() {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("tmux is not installed: skipped");
        return;
    }
    let n = nginx();
    let dir = tempdir();
    let socket = dir.path().join("tmux.sock");
    let screen = |flags: &str, name: &str| -> String {
        let session = format!("wfetch-{name}-{}", std::process::id());
        let file = dir.path().join(name);
        let done = dir.path().join(format!("{name}.done"));
        let cmd = format!(
            "{WFETCH} {flags} -o {} {}; touch {}; sleep 30",
            file.display(),
            n.http("/big.bin"),
            done.display()
        );
        let tmux = |args: &[&str]| {
            Command::new("tmux")
                .arg("-S")
                .arg(&socket)
                .args(args)
                .output()
                .expect("tmux")
        };
        let started = tmux(&["new-session", "-d", "-s", &session, "-x", "150", "-y", "20", &cmd]);
        assert!(started.status.success(), "{started:?}");
        let t0 = std::time::Instant::now();
        while !done.exists() && t0.elapsed() < std::time::Duration::from_secs(20) {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let pane = tmux(&["capture-pane", "-p", "-t", &session]);
        tmux(&["kill-session", "-t", &session]);
        assert!(
            std::fs::read(&file).unwrap() == n.file("big.bin"),
            "{name}: file differs"
        );
        String::from_utf8_lossy(&pane.stdout).into_owned()
    };
    let shown = screen("", "bar");
    let total = format!("{:.2} MiB", n.file("big.bin").len() as f64 / (1 << 20) as f64);
    assert!(
        shown.contains(&format!("{total}/{total}")),
        "no finished bar on the screen:\n{shown}"
    );
    assert!(
        shown.contains("ETA") && shown.contains("/s"),
        "no rate or ETA:\n{shown}"
    );
    let silent = screen("-s", "silent");
    assert!(silent.trim().is_empty(), "-s drew something:\n{silent}");
    let _ = Command::new("tmux").arg("-S").arg(&socket).arg("kill-server").output();
}

#[test]
fn help_is_grouped_and_version_names_the_parts() {
    let out = crate::util::wfetch(&["--help"]);
    crate::util::ok(&out);
    let help = String::from_utf8_lossy(&out.stdout);
    for heading in ["Output:", "Request:", "TLS:", "Connection:", "Sandbox:"] {
        assert!(help.contains(heading), "--help lacks {heading}\n{help}");
    }
    for flag in [
        "--output",
        "--remote-name",
        "--create-dirs",
        "--include",
        "--head",
        "--request",
        "--header",
        "--user-agent",
        "--referer",
        "--user",
        "--data",
        "--data-binary",
        "--json",
        "--location",
        "--max-redirs",
        "--max-time",
        "--connect-timeout",
        "--fail",
        "--silent",
        "--show-error",
        "--verbose",
        "--write-out",
        "--compressed",
        "--insecure",
        "--cacert",
        "--resolve",
        "--parallel",
        "--parallel-max",
        "--retry",
        "--retry-delay",
        "--continue-at",
        "--http1.0",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}");
    }
    let out = crate::util::wfetch(&["--version"]);
    crate::util::ok(&out);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.starts_with(&format!("wfetch {}", env!("CARGO_PKG_VERSION"))),
        "{text}"
    );
    assert!(text.contains("guest: wfetch-guest-http 0."), "{text}");
    let wasmtime = text
        .lines()
        .find_map(|l| l.strip_prefix("wasmtime: "))
        .expect("a wasmtime line");
    assert!(wasmtime.starts_with("48."), "{text}");
}

/// Bodies the table does not show: the flaky route's retry really sends
/// twice, and the gzip route decodes to the sample body.
#[test]
fn retry_and_decoding_deliver_the_right_bytes() {
    let s = server();
    let out = crate::util::wfetch(&["-s", "--compressed", &s.url("/br")]);
    crate::util::ok(&out);
    assert!(out.stdout == sample_body());
    let t0 = std::time::Instant::now();
    let out = crate::util::wfetch(&["--retry", "3", "--retry-delay", "1", &s.url("/flaky/direct")]);
    crate::util::ok(&out);
    assert_eq!(out.stdout, b"busy\nfine\n");
    assert!(t0.elapsed() >= std::time::Duration::from_secs(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Will retry in 1 seconds. 3 retries left."), "{err}");
}

/// `-w '%{json}'` and `%{header_json}`: the same keys with the same JSON
/// types as curl 7.88's, and the same values for everything that does not
/// depend on timing or the local port.
#[test]
fn write_out_json_matches_curl() {
    let n = nginx();
    let url = n.http("/index.html");
    let run = |tool: &str| {
        let out = Command::new(tool)
            .args(["-s", "-o", "/dev/null", "-w", "%{json}\\n%{header_json}", &url])
            .output()
            .unwrap();
        assert!(out.status.success(), "{tool}: {}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).unwrap();
        let (json, headers) = text.split_once('\n').expect("two lines");
        let parse =
            |s: &str| -> serde_json::Value { serde_json::from_str(s).unwrap_or_else(|e| panic!("{tool}: {e}: {s}")) };
        (parse(json), parse(headers))
    };
    let (w, wh) = run(WFETCH);
    let (c, ch) = run("curl");
    let same = [
        "content_type",
        "errormsg",
        "exitcode",
        "filename_effective",
        "ftp_entry_path",
        "http_code",
        "http_connect",
        "http_version",
        "method",
        "num_connects",
        "num_headers",
        "num_redirects",
        "proxy_ssl_verify_result",
        "redirect_url",
        "remote_ip",
        "remote_port",
        "response_code",
        "scheme",
        "size_download",
        "size_upload",
        "ssl_verify_result",
        "url_effective",
    ];
    for key in same {
        assert_eq!(w[key], c[key], "{key}: wfetch {w} curl {c}");
    }
    // Timing, sizes of heads (the request's headers differ) and the local
    // port: the same JSON type.
    let kind = |v: &serde_json::Value| match v {
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Null => "null",
        _ => "other",
    };
    for key in [
        "local_port",
        "size_header",
        "size_request",
        "speed_download",
        "time_connect",
        "time_namelookup",
        "time_pretransfer",
        "time_starttransfer",
        "time_total",
    ] {
        assert_eq!(kind(&w[key]), kind(&c[key]), "{key}: wfetch {w} curl {c}");
    }
    // The headers nginx sends, by lower-case name, as lists.
    for key in ["content-type", "content-length", "etag", "last-modified", "server"] {
        assert_eq!(wh[key], ch[key], "{key}: wfetch {wh} curl {ch}");
    }
}
