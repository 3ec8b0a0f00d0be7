//! The curl-like command line: flags parsed by clap, turned into requests
//! and host settings, run through the guest, reported with curl's exit
//! codes and messages.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;

use crate::engine::{Guest, Runtime, DEFAULT_GUEST};
use crate::net::NetConfig;
use crate::streams::Timeouts;
use crate::tls::TlsSettings;
use crate::{Error, Request, RequestHeader, RequestOptions};

mod sandbox;
mod spread;
#[cfg(test)]
mod tests;
mod transfer;
mod writeout;

pub use sandbox::SandboxArgs;

/// Fetch URLs like curl, with the HTTP logic in a sandboxed WebAssembly guest.
#[derive(Debug, Parser)]
// As in curl, a flag given twice takes its last value.
#[command(name = "wfetch", version = version_text(), about, long_about = None, args_override_self = true)]
pub struct Args {
    /// The URLs to fetch (http:// is assumed when no scheme is given).
    #[arg(required = true, value_name = "URL")]
    pub urls: Vec<String>,

    /// Write the body to FILE instead of stdout ("-" for stdout); once per
    /// URL, in order.
    #[arg(short = 'o', long = "output", value_name = "FILE", help_heading = "Output")]
    pub output: Vec<PathBuf>,
    /// Write the body to a file named like the URL's last path segment;
    /// once per URL, in order (mixed with -o as given).
    #[arg(
        short = 'O',
        long = "remote-name",
        action = clap::ArgAction::Append,
        num_args = 0,
        default_missing_value = "true",
        value_parser = clap::value_parser!(bool),
        help_heading = "Output"
    )]
    pub remote_name: Vec<bool>,
    /// -O for every URL.
    #[arg(long = "remote-name-all", help_heading = "Output")]
    pub remote_name_all: bool,
    /// The directory -o and -O files are written in.
    #[arg(long = "output-dir", value_name = "DIR", help_heading = "Output")]
    pub output_dir: Option<PathBuf>,
    /// Create the missing directories of -o and -O files.
    #[arg(long = "create-dirs", help_heading = "Output")]
    pub create_dirs: bool,
    /// Resume at OFFSET bytes, "-" for the size of the output file (sends a Range).
    #[arg(short = 'C', long = "continue-at", value_name = "OFFSET", help_heading = "Output")]
    pub continue_at: Option<String>,
    /// After each transfer, print FORMAT to stdout with %{variable}s
    /// replaced (http_code, size_download, time_total, url_effective, ...);
    /// @FILE reads it from a file, @- from stdin.
    #[arg(short = 'w', long = "write-out", value_name = "FORMAT", help_heading = "Output")]
    pub write_out: Option<String>,
    /// No progress bar, even on a terminal.
    #[arg(long = "no-progress-meter", help_heading = "Output")]
    pub no_progress_meter: bool,
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
    /// Send DATA as a POST body (application/x-www-form-urlencoded); @FILE
    /// reads it from a file (CR and LF removed), @- from stdin. Repeats are
    /// joined with "&".
    #[arg(
        short = 'd',
        long = "data",
        visible_alias = "data-ascii",
        value_name = "DATA",
        allow_hyphen_values = true,
        help_heading = "Request"
    )]
    pub data: Vec<String>,
    /// Like -d, but @FILE is sent exactly as it is.
    #[arg(
        long = "data-binary",
        value_name = "DATA",
        allow_hyphen_values = true,
        help_heading = "Request"
    )]
    pub data_binary: Vec<String>,
    /// Like -d, with no special meaning for @.
    #[arg(
        long = "data-raw",
        value_name = "DATA",
        allow_hyphen_values = true,
        help_heading = "Request"
    )]
    pub data_raw: Vec<String>,
    /// POST JSON: like --data-binary, with Content-Type and Accept set to
    /// application/json. Repeats are concatenated.
    #[arg(
        long = "json",
        value_name = "DATA",
        allow_hyphen_values = true,
        help_heading = "Request"
    )]
    pub json: Vec<String>,
    /// The User-Agent header ("" sends none).
    #[arg(short = 'A', long = "user-agent", value_name = "NAME", help_heading = "Request")]
    pub user_agent: Option<String>,
    /// The Referer header.
    #[arg(short = 'e', long = "referer", value_name = "URL", help_heading = "Request")]
    pub referer: Option<String>,
    /// Basic authentication, "user:password" (sent to the first origin only
    /// when redirects change it).
    #[arg(short = 'u', long = "user", value_name = "USER:PASSWORD", help_heading = "Request")]
    pub user: Option<String>,
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

    /// The longest each transfer (each try of it) may take, in seconds.
    #[arg(short = 'm', long = "max-time", value_name = "SECONDS", help_heading = "Connection")]
    pub max_time: Option<f64>,
    /// The longest connecting may take, in seconds.
    #[arg(long = "connect-timeout", value_name = "SECONDS", help_heading = "Connection")]
    pub connect_timeout: Option<f64>,
    /// Connect to ADDR for HOST:PORT instead of resolving it (`HOST:PORT:ADDR[,ADDR]...`).
    #[arg(long = "resolve", value_name = "HOST:PORT:ADDR", help_heading = "Connection")]
    pub resolve: Vec<String>,
    /// Retry a transfer up to N times on a transient error (a timeout, a
    /// failed name lookup, HTTP 408, 429, 500, 502, 503, 504).
    #[arg(long = "retry", value_name = "N", default_value_t = 0, help_heading = "Connection")]
    pub retry: u32,
    /// Seconds between retries (default: 1, doubling, or the server's Retry-After).
    #[arg(long = "retry-delay", value_name = "SECONDS", help_heading = "Connection")]
    pub retry_delay: Option<u64>,
    /// Give up retrying after this many seconds.
    #[arg(long = "retry-max-time", value_name = "SECONDS", help_heading = "Connection")]
    pub retry_max_time: Option<u64>,
    /// With --retry, also retry when the connection is refused.
    #[arg(long = "retry-connrefused", help_heading = "Connection")]
    pub retry_connrefused: bool,
    /// With --retry, retry on any error.
    #[arg(long = "retry-all-errors", help_heading = "Connection")]
    pub retry_all_errors: bool,
    /// Run the transfers of several URLs at the same time.
    #[arg(short = 'Z', long = "parallel", help_heading = "Connection")]
    pub parallel: bool,
    /// At most this many transfers at once with -Z.
    #[arg(
        long = "parallel-max",
        value_name = "N",
        default_value_t = 50,
        help_heading = "Connection"
    )]
    pub parallel_max: u32,
    /// With -Z, start up to --parallel-max transfers at once instead of
    /// ramping up: by default a -Z thread runs a few at a time, and more
    /// only while its transfers keep it waiting for servers.
    #[arg(long = "parallel-immediate", help_heading = "Connection")]
    pub parallel_immediate: bool,

    /// The order of -o/-O and of the data flags on the command line (see
    /// [`Args::parse_ordered`]); empty when parsed otherwise.
    #[arg(skip)]
    pub order: ArgOrder,

    /// Run this guest component instead of the embedded one.
    #[arg(long = "guest", value_name = "FILE.wasm", help_heading = "Sandbox")]
    pub guest: Option<PathBuf>,
    /// Compile the guest afresh; neither read nor write the precompiled cache.
    #[arg(long = "no-cache", help_heading = "Sandbox")]
    pub no_cache: bool,
    /// Where precompiled guests are cached (default: $WFETCH_CACHE_DIR,
    /// $XDG_CACHE_HOME/wfetch or ~/.cache/wfetch).
    #[arg(long = "cache-dir", value_name = "DIR", help_heading = "Sandbox")]
    pub cache_dir: Option<PathBuf>,
    /// Record every connection the guest opens, with the bytes both ways,
    /// to FILE (JSON Lines; see the tape module's docs).
    #[arg(
        long = "record",
        value_name = "FILE",
        help_heading = "Testing guests",
        conflicts_with = "replay"
    )]
    pub record: Option<PathBuf>,
    /// Run against a recording instead of the network; stop with exit 112
    /// at the first byte the guest writes differently.
    #[arg(long = "replay", value_name = "FILE", help_heading = "Testing guests")]
    pub replay: Option<PathBuf>,
    /// The network policy and the guest's limits.
    #[command(flatten)]
    pub sandbox: SandboxArgs,
}

/// Where the URLs' bodies go and the data flags, in command-line order.
#[derive(Debug, Clone, Default)]
pub struct ArgOrder {
    /// One per -o (the file) or -O (none: named from the URL), in order.
    pub outputs: Vec<Option<PathBuf>>,
    /// The data flags in order.
    pub data: Vec<(DataKind, String)>,
}

/// Which data flag gave a piece of the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataKind {
    /// -d, --data-ascii: @FILE with CR and LF removed.
    Ascii,
    /// --data-binary: @FILE as it is.
    Binary,
    /// --data-raw: no @.
    Raw,
    /// --json: like --data-binary, concatenated without "&".
    Json,
}

impl Args {
    /// Parse the arguments (the first is the program name), keeping the
    /// order of -o/-O and of the data flags (which clap's fields lose).
    /// Exits with clap's message and code on bad usage.
    pub fn parse_ordered<I, T>(argv: I) -> Args
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        use clap::{CommandFactory, FromArgMatches};
        let mut matches = Args::command().get_matches_from(argv);
        let indexed = |id: &str| -> Vec<usize> {
            // Defaults (-O's count of 0) have indices too: only what was typed counts.
            if matches.value_source(id) != Some(clap::parser::ValueSource::CommandLine) {
                return Vec::new();
            }
            matches.indices_of(id).map(Iterator::collect).unwrap_or_default()
        };
        // Read before the values are taken out of `matches`.
        let [at_output, at_remote, at_data, at_binary, at_raw, at_json] =
            ["output", "remote_name", "data", "data_binary", "data_raw", "json"].map(indexed);
        // Taken, not cloned: a batch of -Z transfers has thousands of values.
        let mut args = Args::from_arg_matches_mut(&mut matches).unwrap_or_else(|e| e.exit());
        let mut outputs: Vec<(usize, Option<PathBuf>)> = at_output
            .into_iter()
            .zip(args.output.iter().cloned().map(Some))
            .collect();
        outputs.extend(at_remote.into_iter().map(|i| (i, None)));
        outputs.sort_by_key(|(i, _)| *i);
        let mut data = Vec::new();
        for (indices, kind, values) in [
            (at_data, DataKind::Ascii, &args.data),
            (at_binary, DataKind::Binary, &args.data_binary),
            (at_raw, DataKind::Raw, &args.data_raw),
            (at_json, DataKind::Json, &args.json),
        ] {
            data.extend(indices.into_iter().zip(values.iter().map(|v| (kind, v.clone()))));
        }
        data.sort_by_key(|(i, _)| *i);
        args.order = ArgOrder {
            outputs: outputs.into_iter().map(|(_, o)| o).collect(),
            data: data.into_iter().map(|(_, d)| d).collect(),
        };
        args
    }

    /// -o/-O in order (from [`Args::parse_ordered`], else -o first).
    fn outputs(&self) -> Vec<Option<PathBuf>> {
        if !self.order.outputs.is_empty() {
            return self.order.outputs.clone();
        }
        let mut v: Vec<_> = self.output.iter().cloned().map(Some).collect();
        v.extend(self.remote_name.iter().map(|_| None));
        v
    }

    /// The data flags in order (from [`Args::parse_ordered`], else grouped).
    fn data_flags(&self) -> Vec<(DataKind, String)> {
        if !self.order.data.is_empty() {
            return self.order.data.clone();
        }
        let mut v = Vec::new();
        for (kind, values) in [
            (DataKind::Ascii, &self.data),
            (DataKind::Binary, &self.data_binary),
            (DataKind::Raw, &self.data_raw),
            (DataKind::Json, &self.json),
        ] {
            v.extend(values.iter().map(|d| (kind, d.clone())));
        }
        v
    }
}

fn version_text() -> &'static str {
    concat!(
        env!("CARGO_PKG_VERSION"),
        "\nguest: wfetch-guest-http ",
        env!("WFETCH_GUEST_VERSION"),
        " (embedded)\nwasmtime: ",
        env!("WFETCH_WASMTIME_VERSION")
    )
}

/// The engine and its instance pool, made on a thread of their own from
/// the first moment of a run, with the default guest from the default
/// cache when it is there whole: they depend on no argument, and making
/// them (about 1 ms) overlaps parsing the arguments, the policy and the
/// output setup instead of following them. Nothing is compiled or
/// written there: a miss is left to [`Setup`], which knows the flags.
pub struct EarlyRuntime(Option<std::thread::JoinHandle<Early>>);

type Early = Result<(Arc<Runtime>, Option<Guest>), Error>;

impl EarlyRuntime {
    /// Start making the runtime (on this thread later, if no thread can
    /// be started now).
    pub fn start(argv: &[std::ffi::OsString]) -> EarlyRuntime {
        // The default cache is not even looked at when a flag may choose
        // another guest or cache (or none).
        let default_guest = !argv.iter().skip(1).any(|a| {
            let a = a.to_string_lossy();
            a == "--no-cache" || a.starts_with("--cache-dir") || a.starts_with("--guest")
        });
        EarlyRuntime(
            spread::spawn("wfetch-engine", move || {
                let runtime = Arc::new(Runtime::new()?);
                let guest = crate::cache::default_dir()
                    .filter(|_| default_guest)
                    .and_then(|dir| runtime.load_cache_hit(DEFAULT_GUEST_NAME, DEFAULT_GUEST, &dir));
                Ok((runtime, guest))
            })
            .ok(),
        )
    }

    fn take(self) -> Early {
        match self.0 {
            Some(thread) => thread
                .join()
                .unwrap_or_else(|_| Err(Error::Engine("the engine's setup panicked".into()))),
            None => Ok((Arc::new(Runtime::new()?), None)),
        }
    }
}

/// The embedded guest's name in messages.
const DEFAULT_GUEST_NAME: &str = "embedded wfetch-guest-http";

/// Run the command with the engine `early` is making; every failure
/// becomes curl's exit code and message.
pub fn run(args: Args, early: EarlyRuntime) -> ExitCode {
    if std::env::var_os("WFETCH_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_env("WFETCH_LOG"))
            .with_writer(std::io::stderr)
            .try_init();
    }
    let show_errors = !args.silent || args.show_error;
    // One thread: a CLI run is mostly waiting, and cross-thread wake-ups
    // (the writer's flush task, the guest's fiber) cost more than a second
    // core gives back (bench/RESULTS.md).
    let runtime = match transfer::runtime(args.parallel) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("wfetch: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let (code, setup) = runtime.block_on(run_async(Arc::new(args), early, show_errors));
    // `setup` is only looked at, not dropped: it holds the engine, the
    // instance pool and the guests' spare instances, whose teardown is
    // what exiting here skips.
    if setup.as_ref().is_some_and(|s| s.net.tape.is_none()) {
        // Every transfer is over and its output closed. Tearing down what
        // is left (the last instances' memory resets, the instance pool's
        // mappings, the kept-alive connections, the runtime's tasks) would
        // only delay the exit: the kernel reclaims all of it at once. A
        // recording (--record) is closed properly instead.
        // `_exit`, not `exit`: the C library's exit handlers have nothing
        // of ours to write, and mimalloc's would return every free page to
        // the kernel first (a few dozen `madvise` calls) just before the
        // kernel drops the whole address space anyway.
        use std::io::Write;
        let _ = std::io::stdout().flush();
        let _ = std::io::stderr().flush();
        // SAFETY: `_exit` ends the process at once; every output file was
        // flushed and closed when its transfer ended, stdout and stderr
        // just above, and nothing else of this process buffers output.
        unsafe { libc::_exit(code.into()) }
    }
    ExitCode::from(code)
}

/// The exit code, and the setup when the transfers ran.
async fn run_async(args: Arc<Args>, early: EarlyRuntime, show_errors: bool) -> (u8, Option<Arc<Setup>>) {
    let setup = match Setup::new(&args, early) {
        Ok(s) => Arc::new(s),
        Err(e) => {
            if show_errors {
                eprintln!("wfetch: ({}) {e}", e.exit_code());
            }
            return (e.exit_code(), None);
        }
    };
    let code = transfer::run_all(args, setup.clone(), show_errors).await;
    if let Some(crate::tape::Tape::Replay(r)) = setup.net.tape.as_deref() {
        if let Some(d) = r.divergence() {
            eprintln!("wfetch: ({}) {d}", crate::error::EXIT_REPLAY_DIVERGED);
            return (crate::error::EXIT_REPLAY_DIVERGED, Some(setup));
        }
    }
    (code, Some(setup))
}

/// The --record or --replay tape, if asked for.
fn open_tape(args: &Args) -> Result<Option<Arc<crate::tape::Tape>>, Error> {
    if let Some(path) = &args.record {
        let rec = crate::tape::Recorder::create(path)
            .map_err(|e| Error::Output(format!("cannot create {}: {e}", path.display())))?;
        return Ok(Some(Arc::new(crate::tape::Tape::Record(rec))));
    }
    if let Some(path) = &args.replay {
        let rep = crate::tape::Replayer::load(path).map_err(Error::Input)?;
        return Ok(Some(Arc::new(crate::tape::Tape::Replay(rep))));
    }
    Ok(None)
}

/// What is built once per invocation: the guest, the network settings.
#[derive(Clone)]
struct Setup {
    guest: Guest,
    net: Arc<NetConfig>,
    body: Option<Vec<u8>>,
    /// -m: the longest one transfer (each attempt) may take.
    max_time: Option<Duration>,
    /// The request headers from -H, -A, -e, -u, --json and the data flags.
    headers: Vec<RequestHeader>,
    /// -w's format, read from its file for @FILE.
    write_out: Option<String>,
}

impl Setup {
    /// The same setup with an empty connection pool of its own, for
    /// transfers run on another thread's runtime (a connection belongs to
    /// the runtime it was opened on).
    fn with_own_pool(&self) -> Setup {
        Setup {
            guest: self.guest.with_own_pool(),
            ..self.clone()
        }
    }

    fn new(args: &Args, early: EarlyRuntime) -> Result<Setup, Error> {
        let cache_dir = match args.no_cache {
            true => None,
            false => args.cache_dir.clone().or_else(crate::cache::default_dir),
        };
        // --guest's name and bytes, read first: an unreadable file is refused
        // before anything else.
        let guest_file = args
            .guest
            .as_ref()
            .map(|path| {
                let name = path.display().to_string();
                match std::fs::read(path) {
                    Ok(wasm) => Ok((name, wasm)),
                    Err(e) => Err(Error::Guest {
                        name,
                        why: format!("cannot read: {e}"),
                    }),
                }
            })
            .transpose()?;
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
        // -m bounds each transfer (every retry anew), so it is applied per
        // transfer rather than as the connections' deadline.
        let max_time = args.max_time.map(|v| seconds("--max-time", v)).transpose()?;
        let mut timeouts = Timeouts::default();
        if let Some(v) = args.connect_timeout {
            timeouts.connect = seconds("--connect-timeout", v)?;
        }
        let body = request_body(&args.data_flags())?;
        let sends = if args.location {
            args.max_redirs.saturating_add(1)
        } else {
            1
        };
        let (policy, limits) =
            args.sandbox
                .build(&args.urls, args.location, body.as_ref().map_or(0, Vec::len), sends)?;
        let net = Arc::new(NetConfig {
            tls,
            policy,
            resolve: parse_resolve(&args.resolve)?,
            timeouts,
            tape: open_tape(args)?,
        });
        let headers = request_headers(args, body.is_some())?;
        let write_out = match args.write_out.as_deref() {
            Some(w) => Some(match w.strip_prefix('@') {
                Some(path) => String::from_utf8_lossy(&read_input(path)?).into_owned(),
                None => w.to_string(),
            }),
            None => None,
        };
        // Last: the engine has been made meanwhile (EarlyRuntime), and the
        // default guest loaded from the default cache if it was there.
        let (runtime, early_guest) = early.take()?;
        let load = |name: &str, wasm: &[u8]| match &cache_dir {
            Some(dir) => runtime.load_cached(name, wasm, dir).map(|(g, _)| g),
            None => runtime.load(name, wasm),
        };
        let guest = match (guest_file, early_guest) {
            (Some((name, wasm)), _) => load(&name, &wasm)?,
            (None, Some(g)) if !args.no_cache && args.cache_dir.is_none() => {
                tracing::debug!(target: "wfetch::engine", "guest {DEFAULT_GUEST_NAME}: cache Hit (early)");
                g
            }
            _ => load(DEFAULT_GUEST_NAME, DEFAULT_GUEST)?,
        }
        .with_limits(limits);
        Ok(Setup {
            guest,
            net,
            body,
            max_time,
            headers,
            write_out,
        })
    }
}

/// Read a local input: a file, or stdin for "-".
fn read_input(path: &str) -> Result<Vec<u8>, Error> {
    if path == "-" {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut v).map(|_| v)
    } else {
        std::fs::read(path)
    }
    .map_err(|e| {
        Error::Input(format!(
            "Failed to open/read local data from file/application: {path}: {e}"
        ))
    })
}

/// The request body from the data flags in order: -d's @FILE loses its CR
/// and LF, --data-binary's and --json's are sent as they are, --data-raw
/// has no @FILE. Pieces are joined with "&", --json pieces without.
fn request_body(flags: &[(DataKind, String)]) -> Result<Option<Vec<u8>>, Error> {
    if flags.is_empty() {
        return Ok(None);
    }
    let mut body = Vec::new();
    for (i, (kind, d)) in flags.iter().enumerate() {
        let piece = match (kind, d.strip_prefix('@')) {
            (DataKind::Raw, _) | (_, None) => d.as_bytes().to_vec(),
            (DataKind::Ascii, Some(path)) => read_input(path)?
                .into_iter()
                .filter(|b| *b != b'\r' && *b != b'\n')
                .collect(),
            (DataKind::Binary | DataKind::Json, Some(path)) => read_input(path)?,
        };
        if i > 0 && *kind != DataKind::Json {
            body.push(b'&');
        }
        body.extend_from_slice(&piece);
    }
    Ok(Some(body))
}

/// Parse "Name: value" / "Name:" (removes a default) / "Name;" (sends it
/// empty) into a request header.
fn parse_header(h: &str) -> Result<RequestHeader, Error> {
    if let Some(name) = h.strip_suffix(';').filter(|n| !n.contains(':')) {
        return Ok(RequestHeader {
            name: name.trim().to_string(),
            value: String::new(),
            remove: false,
        });
    }
    let Some((name, value)) = h.split_once(':') else {
        return Err(Error::Usage(format!("-H {h:?}: expected \"Name: value\"")));
    };
    // Blanks around the name are dropped; a CR or LF is refused by the
    // guest (never trimmed away, which would hide an injection attempt).
    let name = name.trim_matches([' ', '\t']);
    // The guest writes "Name: value": one separating blank is dropped,
    // the rest is sent as typed (as curl does).
    let value = value.strip_prefix([' ', '\t']).unwrap_or(value);
    Ok(RequestHeader {
        name: name.to_string(),
        value: value.to_string(),
        remove: value.trim().is_empty(),
    })
}

/// The headers every request of this invocation carries: -u, -A, -e, then
/// -H in order, then the Content-Type (and --json's Accept) of the data
/// flags; a -H header wins over the same one from another flag.
fn request_headers(args: &Args, has_body: bool) -> Result<Vec<RequestHeader>, Error> {
    let mut user = Vec::new();
    for h in &args.headers {
        user.push(parse_header(h)?);
    }
    let given = |n: &str| user.iter().any(|h: &RequestHeader| h.name.eq_ignore_ascii_case(n));
    let mut headers = Vec::new();
    let mut add = |name: &str, value: String| {
        if !given(name) {
            headers.push(RequestHeader {
                name: name.to_string(),
                remove: value.is_empty(),
                value,
            });
        }
    };
    if let Some(cred) = &args.user {
        let cred = if cred.contains(':') {
            cred.clone()
        } else {
            format!("{cred}:")
        };
        add("Authorization", format!("Basic {}", base64(cred.as_bytes())));
    }
    if let Some(ua) = &args.user_agent {
        add("User-Agent", ua.clone());
    }
    if let Some(referer) = &args.referer {
        let referer = referer.strip_suffix(";auto").unwrap_or(referer);
        if !referer.is_empty() {
            add("Referer", referer.to_string());
        }
    }
    let mut body_headers = Vec::new();
    if !args.json.is_empty() {
        body_headers.push(("Content-Type", "application/json"));
        body_headers.push(("Accept", "application/json"));
    } else if has_body {
        body_headers.push(("Content-Type", "application/x-www-form-urlencoded"));
    }
    let extra: Vec<RequestHeader> = body_headers
        .into_iter()
        .filter(|(n, _)| !given(n))
        .map(|(name, value)| RequestHeader {
            name: name.into(),
            value: value.into(),
            remove: false,
        })
        .collect();
    headers.extend(user);
    headers.extend(extra);
    Ok(headers)
}

/// Standard base64 with padding (RFC 4648 4), for -u.
fn base64(data: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// --resolve HOST:PORT:ADDR[,ADDR]... (an IPv6 ADDR may be in brackets).
fn parse_resolve(entries: &[String]) -> Result<HashMap<(String, u16), Vec<IpAddr>>, Error> {
    let mut map = HashMap::new();
    for entry in entries {
        let bad = |why: &str| Error::Usage(format!("--resolve {entry:?}: {why} (expected HOST:PORT:ADDR)"));
        let entry_body = entry.strip_prefix('+').unwrap_or(entry);
        let mut parts = entry_body.splitn(3, ':');
        let (Some(host), Some(port), Some(addrs)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("missing parts"));
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(bad("empty host"));
        }
        let port: u16 = port.parse().map_err(|_| bad("bad port"))?;
        let mut ips = Vec::new();
        for a in addrs.split(',') {
            let a = a.trim().trim_start_matches('[').trim_end_matches(']');
            ips.push(a.parse::<IpAddr>().map_err(|_| bad("bad address"))?);
        }
        map.insert((host.to_ascii_lowercase(), port), ips);
    }
    Ok(map)
}

/// The URL with http:// added when it has no scheme (as curl).
fn with_scheme(url: &str) -> String {
    // Not str::contains (nor memmem::find): each builds a searcher per
    // call, for every one of a -Z run's URLs.
    if crate::streams::find(url.as_bytes(), b"://").is_some() {
        url.to_string()
    } else {
        format!("http://{url}")
    }
}

/// The request for one URL; `resume` > 0 adds a Range from that offset.
fn build_request(args: &Args, setup: &Setup, url: &str, resume: u64) -> Result<Request, Error> {
    let mut headers = setup.headers.clone();
    if resume > 0 && !headers.iter().any(|h| h.name.eq_ignore_ascii_case("range")) {
        headers.push(RequestHeader {
            name: "Range".into(),
            value: format!("bytes={resume}-"),
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
        url: with_scheme(url),
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

/// `wfetch inspect FILE.wasm...`: print each component's world; exit 0
/// when every one can run on this host, 1 otherwise, 2 on bad usage.
pub fn inspect_command(files: Vec<std::ffi::OsString>) -> ExitCode {
    if files.is_empty() || files.iter().any(|f| f == "-h" || f == "--help") {
        eprintln!("usage: wfetch inspect FILE.wasm...");
        return ExitCode::from(2);
    }
    let runtime = match Runtime::new() {
        Ok(r) => Arc::new(r),
        Err(e) => {
            eprintln!("wfetch: ({}) {e}", e.exit_code());
            return ExitCode::from(e.exit_code());
        }
    };
    let mut code = 0;
    for file in files {
        let path = PathBuf::from(file);
        let name = path.display().to_string();
        let report = std::fs::read(&path)
            .map_err(|e| Error::Guest {
                name: name.clone(),
                why: format!("cannot read: {e}"),
            })
            .and_then(|wasm| crate::inspect::inspect(&runtime, &name, &wasm));
        match report {
            Ok(r) => {
                print!("{}", r.render(&name));
                if r.runnable.is_err() {
                    code = 1;
                }
            }
            Err(e) => {
                eprintln!("wfetch: ({}) {e}", e.exit_code());
                code = e.exit_code();
            }
        }
    }
    ExitCode::from(code)
}
