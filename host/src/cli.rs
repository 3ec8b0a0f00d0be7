//! The curl-like command line: flags parsed by clap, turned into requests
//! and host settings, run through the guest, reported with curl's exit
//! codes and messages.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Parser;

use crate::engine::{Guest, Runtime, DEFAULT_GUEST};
use crate::net::NetConfig;
use crate::policy::Policy;
use crate::sink::{Sink, WriteFuture};
use crate::streams::Timeouts;
use crate::tls::TlsSettings;
use crate::{Error, Header, Request, RequestHeader, RequestOptions, ResponseHead};

/// Fetch URLs like curl, with the HTTP logic in a sandboxed WebAssembly guest.
#[derive(Debug, Parser)]
#[command(name = "wfetch", version = version_text(), about, long_about = None)]
pub struct Args {
    /// The URLs to fetch (http:// is assumed when no scheme is given).
    #[arg(required = true, value_name = "URL")]
    pub urls: Vec<String>,

    /// Write the body to FILE instead of stdout ("-" for stdout).
    #[arg(short = 'o', long = "output", value_name = "FILE", help_heading = "Output")]
    pub output: Option<PathBuf>,
    /// Include the response head in the output.
    #[arg(short = 'i', long = "include", help_heading = "Output")]
    pub include: bool,
    /// Show the request and response heads on stderr.
    #[arg(short = 'v', long = "verbose", help_heading = "Output")]
    pub verbose: bool,
    /// Silent mode: no error messages.
    #[arg(short = 's', long = "silent", help_heading = "Output")]
    pub silent: bool,
    /// With -s, still show error messages.
    #[arg(short = 'S', long = "show-error", help_heading = "Output")]
    pub show_error: bool,
    /// Fail with exit code 22 on an HTTP status of 400 or more, writing no body.
    #[arg(short = 'f', long = "fail", help_heading = "Output")]
    pub fail: bool,

    /// Fetch the head only (HEAD request); the head is written to the output.
    #[arg(short = 'I', long = "head", help_heading = "Request")]
    pub head: bool,
    /// The request method.
    #[arg(short = 'X', long = "request", value_name = "METHOD", help_heading = "Request")]
    pub method: Option<String>,
    /// An extra header, "Name: value"; "Name:" removes a default header.
    #[arg(short = 'H', long = "header", value_name = "HEADER", help_heading = "Request")]
    pub headers: Vec<String>,
    /// Send DATA as a POST body (application/x-www-form-urlencoded); @FILE reads it from a file.
    #[arg(short = 'd', long = "data", value_name = "DATA", help_heading = "Request")]
    pub data: Vec<String>,
    /// Follow redirects.
    #[arg(short = 'L', long = "location", help_heading = "Request")]
    pub location: bool,
    /// The most redirects to follow with -L.
    #[arg(
        long = "max-redirs",
        value_name = "N",
        default_value_t = 50,
        help_heading = "Request"
    )]
    pub max_redirs: u32,
    /// Ask for a compressed body and decode it (gzip, deflate, br).
    #[arg(long = "compressed", help_heading = "Request")]
    pub compressed: bool,
    /// Speak HTTP/1.0.
    #[arg(long = "http1.0", help_heading = "Request")]
    pub http10: bool,

    /// Trust only the CA certificates in this PEM file.
    #[arg(long = "cacert", value_name = "FILE", help_heading = "TLS")]
    pub cacert: Option<PathBuf>,
    /// Do not verify the server's certificate.
    #[arg(short = 'k', long = "insecure", help_heading = "TLS")]
    pub insecure: bool,

    /// The longest the whole operation may take, in seconds.
    #[arg(short = 'm', long = "max-time", value_name = "SECONDS", help_heading = "Connection")]
    pub max_time: Option<f64>,
    /// The longest connecting may take, in seconds.
    #[arg(long = "connect-timeout", value_name = "SECONDS", help_heading = "Connection")]
    pub connect_timeout: Option<f64>,

    /// Run this guest component instead of the embedded one.
    #[arg(long = "guest", value_name = "FILE.wasm", help_heading = "Sandbox")]
    pub guest: Option<PathBuf>,
}

fn version_text() -> &'static str {
    concat!(
        env!("CARGO_PKG_VERSION"),
        "\nguest: wfetch-guest-http ",
        env!("CARGO_PKG_VERSION"),
        " (embedded)\nwasmtime: 48"
    )
}

/// Run the command; every failure becomes curl's exit code and message.
pub fn run(args: Args) -> ExitCode {
    if std::env::var_os("WFETCH_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_env("WFETCH_LOG"))
            .with_writer(std::io::stderr)
            .try_init();
    }
    let show_errors = !args.silent || args.show_error;
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wfetch: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(run_async(&args, show_errors));
    ExitCode::from(code)
}

async fn run_async(args: &Args, show_errors: bool) -> u8 {
    let report = |e: &Error| {
        if show_errors {
            eprintln!("wfetch: ({}) {e}", e.exit_code());
        }
        e.exit_code()
    };
    let setup = match Setup::new(args) {
        Ok(s) => s,
        Err(e) => return report(&e),
    };
    let mut last = 0;
    for url in &args.urls {
        let code = match fetch_one(args, &setup, url).await {
            Ok(code) => code,
            Err(e) => report(&e),
        };
        if code != 0 {
            last = code;
        }
    }
    last
}

/// What is built once per invocation: the guest, the network settings.
struct Setup {
    guest: Guest,
    net: Arc<NetConfig>,
    body: Option<Vec<u8>>,
    deadline: Option<tokio::time::Instant>,
}

impl Setup {
    fn new(args: &Args) -> Result<Setup, Error> {
        let runtime = Arc::new(Runtime::new()?);
        let guest = match &args.guest {
            None => runtime.load("embedded wfetch-guest-http", DEFAULT_GUEST)?,
            Some(path) => {
                let wasm = std::fs::read(path).map_err(|e| Error::Guest {
                    name: path.display().to_string(),
                    why: format!("cannot read: {e}"),
                })?;
                runtime.load(&path.display().to_string(), &wasm)?
            }
        };
        let tls = crate::tls::client_config(&TlsSettings {
            cacert: args.cacert.clone(),
            insecure: args.insecure,
        })?;
        let seconds = |flag: &str, v: f64| {
            if v.is_finite() && v > 0.0 {
                Ok(Duration::from_secs_f64(v))
            } else {
                Err(Error::Usage(format!(
                    "{flag}: expected a positive number of seconds, got {v}"
                )))
            }
        };
        let deadline = match args.max_time {
            Some(v) => Some(tokio::time::Instant::now() + seconds("--max-time", v)?),
            None => None,
        };
        let mut timeouts = Timeouts {
            deadline,
            ..Timeouts::default()
        };
        if let Some(v) = args.connect_timeout {
            timeouts.connect = seconds("--connect-timeout", v)?;
        }
        let net = Arc::new(NetConfig {
            tls,
            policy: Policy::allow_all(),
            resolve: Default::default(),
            timeouts,
        });
        let body = if args.data.is_empty() {
            None
        } else {
            let mut parts = Vec::new();
            for d in &args.data {
                parts.push(read_data(d)?);
            }
            Some(parts.join(&b'&'))
        };
        Ok(Setup {
            guest,
            net,
            body,
            deadline,
        })
    }
}

/// curl's -d: literal data, or @FILE with CR and LF removed.
fn read_data(d: &str) -> Result<Vec<u8>, Error> {
    match d.strip_prefix('@') {
        None => Ok(d.as_bytes().to_vec()),
        Some(path) => {
            let data = if path == "-" {
                let mut v = Vec::new();
                std::io::Read::read_to_end(&mut std::io::stdin(), &mut v).map(|_| v)
            } else {
                std::fs::read(path)
            }
            .map_err(|e| {
                Error::Input(format!(
                    "Failed to open/read local data from file/application: {path}: {e}"
                ))
            })?;
            Ok(data.into_iter().filter(|b| *b != b'\r' && *b != b'\n').collect())
        }
    }
}

/// Parse "Name: value" / "Name:" into a request header.
fn parse_header(h: &str) -> Result<RequestHeader, Error> {
    let Some((name, value)) = h.split_once(':') else {
        return Err(Error::Usage(format!("-H {h:?}: expected \"Name: value\"")));
    };
    let name = name.trim();
    let value = value.trim_start_matches([' ', '\t']);
    Ok(RequestHeader {
        name: name.to_string(),
        value: value.to_string(),
        remove: value.trim().is_empty(),
    })
}

fn build_request(args: &Args, setup: &Setup, url: &str) -> Result<Request, Error> {
    let url = if url.contains("://") {
        url.to_string()
    } else {
        format!("http://{url}")
    };
    let mut headers = Vec::new();
    let has = |hs: &[RequestHeader], n: &str| hs.iter().any(|h| h.name.eq_ignore_ascii_case(n));
    for h in &args.headers {
        headers.push(parse_header(h)?);
    }
    if setup.body.is_some() && !has(&headers, "content-type") {
        headers.push(RequestHeader {
            name: "Content-Type".into(),
            value: "application/x-www-form-urlencoded".into(),
            remove: false,
        });
    }
    let method = match (&args.method, args.head, setup.body.is_some()) {
        (Some(m), _, _) => m.clone(),
        (None, true, _) => "HEAD".into(),
        (None, false, true) => "POST".into(),
        (None, false, false) => "GET".into(),
    };
    Ok(Request {
        method,
        url,
        headers,
        body: setup.body.clone(),
        options: RequestOptions {
            follow_redirects: args.location,
            max_redirects: args.max_redirs,
            http10: args.http10,
            compressed: args.compressed,
        },
    })
}

async fn fetch_one(args: &Args, setup: &Setup, url: &str) -> Result<u8, Error> {
    let req = build_request(args, setup, url)?;
    let state = Arc::new(Mutex::new(OutputState::new(args)));
    let sink = Box::new(CliSink {
        state: state.clone(),
        include: args.include || args.head,
        verbose: args.verbose,
        fail: args.fail,
    });
    let run = setup.guest.fetch(setup.net.clone(), &req, sink);
    let result = match setup.deadline {
        Some(d) => match tokio::time::timeout_at(d, run).await {
            Ok(r) => r,
            Err(_) => {
                let ms = args.max_time.map(|s| (s * 1000.0) as u64).unwrap_or(0);
                return Err(Error::Fetch(crate::FetchError::Transport(
                    crate::engine::bindings::wfetch::fetch::streams::StreamError::TimedOut(format!(
                        "Operation timed out after {ms} milliseconds"
                    )),
                )));
            }
        },
        None => run.await,
    };
    let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
    match result {
        Ok(resp) => {
            st.finish()?;
            if args.fail && resp.head.status >= 400 {
                let e = format!("The requested URL returned error: {}", resp.head.status);
                if !args.silent || args.show_error {
                    eprintln!("wfetch: (22) {e}");
                }
                return Ok(22);
            }
            Ok(0)
        }
        Err(Error::Fetch(crate::FetchError::Sink(_))) if st.broken_pipe => Ok(0),
        Err(Error::Fetch(crate::FetchError::Sink(m))) => {
            let _ = st.finish();
            Err(Error::Output(st.error.clone().unwrap_or(m)))
        }
        Err(e) => {
            // What arrived is kept (as curl does) but the exit code says
            // the transfer failed.
            let _ = st.finish();
            Err(e)
        }
    }
}

/// Where the CLI writes: stdout or a file created on first use.
struct OutputState {
    target: Option<PathBuf>,
    file: Option<BufWriter<File>>,
    stdout: Option<BufWriter<std::io::Stdout>>,
    /// The last head was a final >= 400 with --fail: discard its body.
    discard: bool,
    broken_pipe: bool,
    error: Option<String>,
}

impl OutputState {
    fn new(args: &Args) -> Self {
        let target = args.output.clone().filter(|p| p.as_os_str() != "-");
        OutputState {
            target,
            file: None,
            stdout: None,
            discard: false,
            broken_pipe: false,
            error: None,
        }
    }

    fn out(&mut self) -> Result<&mut dyn Write, String> {
        match &self.target {
            None => Ok(self
                .stdout
                .get_or_insert_with(|| BufWriter::with_capacity(256 * 1024, std::io::stdout()))),
            Some(path) => {
                if self.file.is_none() {
                    let f = File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
                    self.file = Some(BufWriter::with_capacity(256 * 1024, f));
                }
                Ok(self.file.as_mut().expect("just set"))
            }
        }
    }

    fn write(&mut self, data: &[u8]) -> Result<(), String> {
        let r = self.out().and_then(|o| o.write_all(data).map_err(|e| e.to_string()));
        if let Err(e) = &r {
            if e.contains("Broken pipe") {
                self.broken_pipe = true;
            }
            self.error = Some(e.clone());
        }
        r
    }

    /// Flush, creating an empty output file when nothing was written.
    fn finish(&mut self) -> Result<(), Error> {
        let r = match self.out() {
            Ok(o) => o.flush().map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        match r {
            Err(e) if e.contains("Broken pipe") => Ok(()),
            Err(e) => Err(Error::Output(e)),
            Ok(()) => Ok(()),
        }
    }
}

struct CliSink {
    state: Arc<Mutex<OutputState>>,
    include: bool,
    verbose: bool,
    fail: bool,
}

impl CliSink {
    fn state(&self) -> std::sync::MutexGuard<'_, OutputState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn verbose_lines(prefix: &str, raw: &[u8]) {
    let text = String::from_utf8_lossy(raw);
    let mut err = std::io::stderr().lock();
    for line in text.split_inclusive('\n') {
        let _ = write!(err, "{prefix}{}", line.trim_end_matches(['\r', '\n']));
        let _ = writeln!(err);
    }
}

impl Sink for CliSink {
    fn request_sent(&mut self, head: &[u8]) {
        if self.verbose {
            verbose_lines("> ", head);
        }
    }

    fn response_head(&mut self, head: &ResponseHead, raw: &[u8]) {
        if self.verbose {
            verbose_lines("< ", raw);
        }
        let mut st = self.state();
        st.discard = self.fail && head.status >= 400;
        if self.include && !st.discard {
            let _ = st.write(raw);
        }
    }

    fn write(&mut self, data: Vec<u8>) -> WriteFuture<'_> {
        let mut st = self.state();
        let r = if st.discard { Ok(()) } else { st.write(&data) };
        drop(st);
        Box::pin(async move { r })
    }

    fn trailers(&mut self, trailers: &[Header]) {
        if self.verbose {
            for t in trailers {
                eprintln!("< {}: {}", t.name, String::from_utf8_lossy(&t.value));
            }
        }
    }
}
