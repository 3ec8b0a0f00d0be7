//! One transfer per URL: where its body goes (stdout, -o, -O, resumed
//! files), the CLI's sink (-i, -v, -f, progress bar, statistics), retries,
//! `-w`, and running several URLs one after the other or with `-Z`.

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, IsTerminal, Seek, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::time::Instant;

use super::writeout::{self, Info};
use super::{Args, Setup};
use crate::engine::bindings::wfetch::fetch::streams::StreamError as WitStreamError;
use crate::pool::FetchStats;
use crate::sink::{Sink, WriteFuture};
use crate::{Error, FetchError, Header, ResponseHead};

/// What every transfer of one invocation shares.
pub(super) struct Ctx {
    pub args: Arc<Args>,
    pub setup: Arc<Setup>,
    pub show_errors: bool,
    /// Progress bars, when they are shown at all (stderr is a terminal,
    /// not -s, not --no-progress-meter).
    pub bars: Option<MultiProgress>,
}

/// Where one URL's body goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Target {
    Stdout,
    File(PathBuf),
}

/// Run every URL (in order, or with -Z at most --parallel-max at once);
/// the exit code is the last transfer's, as curl's.
pub(super) async fn run_all(args: Arc<Args>, setup: Arc<Setup>, show_errors: bool) -> u8 {
    let bars = (!args.silent && !args.no_progress_meter && std::io::stderr().is_terminal())
        .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
    let ctx = Arc::new(Ctx {
        args: args.clone(),
        setup,
        show_errors,
        bars,
    });
    let outputs = args.outputs();
    let jobs: Vec<(String, Result<Target, Error>)> = args
        .urls
        .iter()
        .enumerate()
        .map(|(i, url)| {
            let target = match outputs.get(i) {
                Some(Some(path)) if path.as_os_str() == "-" => Ok(Target::Stdout),
                Some(Some(path)) => Ok(Target::File(in_output_dir(&args, path.clone()))),
                Some(None) => remote_name(&args, url),
                None if args.remote_name_all => remote_name(&args, url),
                None => Ok(Target::Stdout),
            };
            (url.clone(), target)
        })
        .collect();
    // A recording is replayed connection by connection in the order the
    // connections were opened, and which transfer reuses which connection
    // depends on timing when they overlap: with --record or --replay, -Z
    // runs one transfer at a time so that a replay meets its recording.
    if !args.parallel || jobs.len() < 2 || ctx.setup.net.tape.is_some() {
        let mut last = 0;
        for (url, target) in jobs {
            last = transfer(&ctx, &url, target).await;
        }
        return last;
    }
    let n = jobs.len();
    let mut codes = vec![0u8; n];
    let shards = shard_count(n, args.parallel_max);
    let per_shard = (args.parallel_max.max(1) as usize).div_ceil(shards);
    // One queue for all shards: a shard takes the next URL whenever it has
    // a free place, so a shard that started late or drew slow URLs does
    // not leave the others idle at the end.
    let queue: Queue = Arc::new(Mutex::new(jobs.into_iter().enumerate()));
    // The other shards each run on a thread of their own, with their own
    // single-threaded runtime and their own connection pool: a fetch,
    // its connection and the connection's writer task stay on one thread.
    let mut others = Vec::new();
    for _ in 1..shards {
        let queue = queue.clone();
        let ctx = Arc::new(Ctx {
            setup: Arc::new(ctx.setup.with_own_pool()),
            args: ctx.args.clone(),
            show_errors: ctx.show_errors,
            bars: ctx.bars.clone(),
        });
        let (tx, rx) = tokio::sync::oneshot::channel();
        let spawned = super::spread::spawn("wfetch-shard", move || {
            // What the shard leaves (its runtime with the instances still
            // being torn down, its pool's kept-alive connections, each
            // closed with a `shutdown`) is dropped after the result is
            // sent, not before: the run's end need not wait for it.
            let keep = ctx.clone();
            let rt = runtime(true);
            let result = match &rt {
                Ok(rt) => rt.block_on(run_shard(ctx, queue, per_shard)),
                Err(e) => Err(format!("cannot start a runtime for parallel transfers: {e}")),
            };
            let _ = tx.send(result);
            drop((rt, keep));
        });
        match spawned {
            Ok(_) => others.push(rx),
            Err(e) => {
                eprintln!("wfetch: cannot start a thread for parallel transfers: {e}");
                return 1;
            }
        }
    }
    let mut results = vec![run_shard(ctx.clone(), queue, per_shard).await];
    for rx in others {
        results.push(
            rx.await
                .unwrap_or_else(|_| Err("a parallel transfer thread failed".into())),
        );
    }
    for r in results {
        match r {
            Ok(done) => {
                for (i, code) in done {
                    codes[i] = code;
                }
            }
            Err(e) => {
                eprintln!("wfetch: {e}");
                return 1;
            }
        }
    }
    codes.last().copied().unwrap_or(0)
}

/// The URLs of a `-Z` run not yet started, in order, shared by the
/// shards: each with its index, and where its body goes.
type Queue = Arc<Mutex<std::iter::Enumerate<std::vec::IntoIter<(String, Result<Target, Error>)>>>>;

/// How many threads a `-Z` run uses: one per core (at most 4), never more
/// than there are transfers to share or than --parallel-max allows.
fn shard_count(jobs: usize, parallel_max: u32) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    cores.min(4).min(jobs).min(parallel_max.max(1) as usize).max(1)
}

/// Run jobs from `queue` on this thread's runtime, at most `parallel` at
/// once; the exit code of each, by index; an error if a transfer task
/// panicked. A job is taken (and its task spawned) only when a place is
/// free: a transfer's future is large, and 1,000 of them waiting at once
/// cost memory and page faults for nothing.
///
/// How many run at once ramps up (see [`Window`]) unless
/// --parallel-immediate.
async fn run_shard(ctx: Arc<Ctx>, queue: Queue, parallel: usize) -> Result<Vec<(usize, u8)>, String> {
    let mut window = Window::new(parallel, ctx.args.parallel_immediate);
    let mut done = Vec::new();
    let mut set = tokio::task::JoinSet::new();
    let mut more = true;
    let mut period = idle::Period::start();
    let tick = tokio::time::sleep_until(period.end());
    tokio::pin!(tick);
    loop {
        while more && set.len() < window.size {
            let Some((i, (url, target))) = lock(&queue).next() else {
                more = false;
                break;
            };
            let ctx = ctx.clone();
            // Boxed: a transfer's future is kilobytes, and tokio moves a
            // task's future (and the slot it leaves) by value several times.
            set.spawn(Box::pin(async move { (i, transfer(&ctx, &url, target).await) }));
        }
        let may_grow = more && window.size < window.max;
        tokio::select! {
            biased;
            joined = set.join_next() => match joined {
                None => return Ok(done),
                Some(Ok(d)) => done.push(d),
                Some(Err(e)) => return Err(format!("a transfer task failed: {e}")),
            },
            () = &mut tick, if may_grow => {
                window.after(&period);
                period = idle::Period::start();
                tick.as_mut().reset(period.end());
            }
        }
    }
}

/// How many transfers a `-Z` shard runs at once: [`Window::FLOOR`] at
/// first, twice as many after every [`Window::PERIOD`] in which the
/// shard's thread was idle (parked: every transfer waiting for a server)
/// for more than half the time, up to the shard's share of
/// --parallel-max. Against distant or slow servers the shard reaches its
/// share within a few periods. Against a server that answers as fast as
/// the shard can go, it stays at or near the floor: more transfers in flight
/// would do the same work spread over more instance slots, fiber stacks
/// and connections, and their cache misses cost CPU (bench/RESULTS.md,
/// session 11). curl's `-Z` likewise prefers waiting for a connection to
/// opening new ones, unless --parallel-immediate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    size: usize,
    max: usize,
}

impl Window {
    const FLOOR: usize = 8;
    const PERIOD: Duration = Duration::from_millis(5);

    fn new(parallel: usize, immediate: bool) -> Window {
        let max = parallel.max(1);
        let size = if immediate { max } else { max.min(Self::FLOOR) };
        Window { size, max }
    }

    /// At the end of a period: grow if the thread was mostly idle.
    fn after(&mut self, period: &idle::Period) {
        let (parked, elapsed) = period.measure();
        self.grow_if(parked * 2 > elapsed);
    }

    fn grow_if(&mut self, mostly_idle: bool) {
        if mostly_idle && self.size < self.max {
            self.size = (self.size * 2).min(self.max);
            tracing::debug!(target: "wfetch::cli", "-Z thread: up to {} transfers at once", self.size);
        }
    }
}

/// A single-threaded runtime; with `parallel` (one that runs `-Z`
/// transfers), with the hooks that count its idle time ([`idle`]).
pub(super) fn runtime(parallel: bool) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_current_thread();
    builder.enable_all();
    if parallel {
        builder.on_thread_park(idle::parked).on_thread_unpark(idle::unparked);
    }
    builder.build()
}

/// How long this thread has been parked (idle), from the hooks that
/// [`runtime`] installs on a runtime that runs `-Z` transfers.
mod idle {
    use std::cell::Cell;
    use std::time::Duration;
    use tokio::time::Instant;

    thread_local! {
        static PARKED_AT: Cell<Option<Instant>> = const { Cell::new(None) };
        static PARKED: Cell<Duration> = const { Cell::new(Duration::ZERO) };
    }

    /// The park hook: the runtime has nothing to run and is about to wait.
    pub fn parked() {
        PARKED_AT.set(Some(Instant::now()));
    }

    /// The unpark hook: the thread runs again.
    pub fn unparked() {
        if let Some(t) = PARKED_AT.take() {
            PARKED.set(PARKED.get() + t.elapsed());
        }
    }

    /// A stretch of time on this thread, from when it started.
    pub(super) struct Period {
        start: Instant,
        parked: Duration,
    }

    impl Period {
        pub fn start() -> Period {
            Period {
                start: Instant::now(),
                parked: PARKED.get(),
            }
        }

        pub fn end(&self) -> Instant {
            self.start + super::Window::PERIOD
        }

        /// How long the thread was parked since the start, and how long ago that was.
        pub fn measure(&self) -> (Duration, Duration) {
            (PARKED.get().saturating_sub(self.parked), self.start.elapsed())
        }
    }
}

fn in_output_dir(args: &Args, path: PathBuf) -> PathBuf {
    match &args.output_dir {
        Some(dir) if path.is_relative() => dir.join(path),
        _ => path,
    }
}

/// -O: the last segment of the URL's path, in --output-dir.
fn remote_name(args: &Args, url: &str) -> Result<Target, Error> {
    let without_query = url.split(['?', '#']).next().unwrap_or(url);
    let path = match without_query.split_once("://") {
        Some((_, rest)) => rest.split_once('/').map_or("", |(_, p)| p),
        None => without_query.split_once('/').map_or("", |(_, p)| p),
    };
    let name = path.rsplit('/').next().unwrap_or("");
    if name.is_empty() {
        return Err(Error::Output("Remote file name has no length!".into()));
    }
    Ok(Target::File(in_output_dir(args, PathBuf::from(name))))
}

/// Why a failed attempt may be retried (curl's words in the warning).
fn retry_reason(args: &Args, code: u8, status: u16) -> Option<&'static str> {
    match code {
        28 | 6 => Some("timeout"),
        7 if args.retry_connrefused => Some("connection refused"),
        0 | 22 if matches!(status, 408 | 429 | 500 | 502 | 503 | 504) => Some("HTTP error"),
        0 => None,
        _ if args.retry_all_errors => Some("error"),
        _ => None,
    }
}

/// One URL, with its retries; prints the error and -w; returns the exit code.
async fn transfer(ctx: &Ctx, url: &str, target: Result<Target, Error>) -> u8 {
    let args = &ctx.args;
    let target = match target {
        Ok(t) => t,
        Err(e) => return give_up(ctx, &e.to_string(), e.exit_code(), Info::default()),
    };
    let resume = match resume_offset(args, &target) {
        Ok(r) => r,
        Err(e) => return give_up(ctx, &e.to_string(), e.exit_code(), Info::default()),
    };
    let first_start = Instant::now();
    let mut retries_left = args.retry;
    let mut backoff = Duration::from_secs(1);
    loop {
        let attempt = attempt(ctx, url, &target, resume).await;
        if retries_left > 0 {
            if let Some(reason) = retry_reason(args, attempt.code, attempt.info.http_code) {
                let delay = match (args.retry_delay, attempt.retry_after, reason) {
                    (Some(d), _, _) => Duration::from_secs(d),
                    (None, Some(ra), "HTTP error") if ra > 0 => Duration::from_secs(ra.min(600)),
                    _ => backoff,
                };
                let within = args
                    .retry_max_time
                    .is_none_or(|m| first_start.elapsed() + delay <= Duration::from_secs(m));
                if within {
                    if !args.silent {
                        eprintln!(
                            "Warning: Problem : {reason}. Will retry in {} seconds. {retries_left} retries left.",
                            delay.as_secs()
                        );
                    }
                    tokio::time::sleep(delay).await;
                    backoff = (backoff * 2).min(Duration::from_secs(600));
                    retries_left -= 1;
                    lock(&attempt.output).rewind_file();
                    continue;
                }
            }
        }
        if attempt.code != 0 && ctx.show_errors && !attempt.message.is_empty() {
            eprintln!("wfetch: ({}) {}", attempt.code, attempt.message);
        }
        if let Some(format) = &ctx.setup.write_out {
            writeout::write(format, &attempt.info);
        }
        return attempt.code;
    }
}

/// A transfer that fails before it starts: message, -w, code.
fn give_up(ctx: &Ctx, message: &str, code: u8, mut info: Info) -> u8 {
    if ctx.show_errors {
        eprintln!("wfetch: ({code}) {message}");
    }
    if let Some(format) = &ctx.setup.write_out {
        info.exitcode = code;
        info.errormsg = message.to_string();
        writeout::write(format, &info);
    }
    code
}

/// -C: the offset to resume at ("-": the output file's size).
fn resume_offset(args: &Args, target: &Target) -> Result<u64, Error> {
    match args.continue_at.as_deref() {
        None => Ok(0),
        Some("-") => Ok(match target {
            Target::File(path) => std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
            Target::Stdout => 0,
        }),
        Some(n) => n
            .parse()
            .map_err(|_| Error::Usage(format!("-C {n:?}: expected a number of bytes or \"-\""))),
    }
}

/// The outcome of one attempt.
struct Attempt {
    code: u8,
    message: String,
    info: Info,
    /// The final head's Retry-After in seconds.
    retry_after: Option<u64>,
    output: Arc<Mutex<Output>>,
}

async fn attempt(ctx: &Ctx, url: &str, target: &Target, resume: u64) -> Attempt {
    let (args, setup) = (&ctx.args, &ctx.setup);
    let start = Instant::now();
    let output = Arc::new(Mutex::new(Output::new(target.clone(), resume > 0, args.create_dirs)));
    // -w's facts are gathered only for -w: a transfer without it needs
    // only the status (for --retry).
    let write_out = setup.write_out.is_some();
    let mut info = Info::default();
    if write_out {
        info.url_effective = super::with_scheme(url);
        if let Target::File(p) = target {
            info.filename_effective = p.display().to_string();
        }
    }
    let req = match super::build_request(args, setup, url, resume) {
        Ok(r) => r,
        Err(e) => {
            return Attempt {
                code: e.exit_code(),
                message: e.to_string(),
                info,
                retry_after: None,
                output,
            }
        }
    };
    if write_out {
        info.method.clone_from(&req.method);
    }
    let body_len = req.body.as_ref().map_or(0, |b| b.len() as u64);
    let show_bar = ctx.bars.is_some() && (matches!(target, Target::File(_)) || !std::io::stdout().is_terminal());
    let state = Arc::new(Mutex::new(SinkState {
        output: output.clone(),
        bar: None,
        bars: if show_bar { ctx.bars.clone() } else { None },
        heads: 0,
        status: 0,
        version: String::new(),
        headers: Vec::new(),
        received: 0,
        size_header: 0,
        size_request: 0,
        requests: 0,
        redirects: 0,
        pretransfer: None,
        starttransfer: None,
        redirect_done: None,
        discard: false,
        range_error: false,
        failed: false,
    }));
    let sink = Box::new(CliSink {
        state: state.clone(),
        include: args.include || args.head,
        verbose: args.verbose,
        fail: args.fail,
        resume,
    });
    let stats = Arc::new(FetchStats::default());
    let run = setup
        .guest
        .fetch_summary_with_stats(setup.net.clone(), &req, sink, stats.clone());
    let result = match setup.max_time {
        Some(limit) => match tokio::time::timeout(limit, run).await {
            Ok(r) => r,
            Err(_) => {
                let got = lock(&state).received;
                Err(Error::Fetch(FetchError::Transport(WitStreamError::TimedOut(format!(
                    "Operation timed out after {} milliseconds with {got} bytes received",
                    limit.as_millis()
                )))))
            }
        },
        None => run.await,
    };
    let total = start.elapsed();
    let mut st = lock(&state);
    if let Some(bar) = &st.bar {
        bar.finish();
    }
    let mut out = lock(&st.output);
    let (code, message) = match &result {
        // -f: no body and no output file (as curl).
        Ok(resp) if args.fail && resp.status >= 400 => {
            let _ = out.finish(false);
            (22, format!("The requested URL returned error: {}", resp.status))
        }
        Ok(_) if st.range_error => {
            let _ = out.finish(false);
            (
                33,
                "HTTP server doesn't seem to support byte ranges. Cannot resume.".to_string(),
            )
        }
        Ok(_) => match out.finish(true) {
            Err(e) => (e.exit_code(), e.to_string()),
            Ok(()) => (0, String::new()),
        },
        Err(Error::Fetch(FetchError::Sink(_))) if out.broken_pipe => (0, String::new()),
        Err(Error::Fetch(FetchError::Sink(m))) => {
            let _ = out.finish(false);
            let e = Error::Output(out.error.clone().unwrap_or_else(|| m.clone()));
            (e.exit_code(), e.to_string())
        }
        Err(e) => {
            // What arrived is kept (as curl does); the exit code says the
            // transfer failed.
            let _ = out.finish(false);
            (e.exit_code(), e.to_string())
        }
    };
    drop(out);

    let header = |name: &str| {
        st.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(&h.value).trim().to_string())
    };
    let retry_after = header("retry-after").and_then(|v| v.parse().ok());
    info.http_code = st.status;
    if !write_out {
        drop(st);
        return Attempt {
            code,
            message,
            info,
            retry_after,
            output,
        };
    }
    let conn = stats.get();
    let since = |t: Option<Instant>| t.map_or(Duration::ZERO, |t| t.saturating_duration_since(start));
    info.http_version = match st.version.as_str() {
        "" => "0".into(),
        v => v.trim_start_matches("HTTP/").to_string(),
    };
    info.size_download = st.received;
    info.size_header = st.size_header;
    info.size_request = st.size_request + body_len * st.requests;
    info.size_upload = body_len * st.requests.min(1);
    info.num_redirects = st.redirects;
    info.num_connects = conn.connects;
    info.time_namelookup = since(conn.resolved.or(conn.connected));
    info.time_connect = since(conn.connected);
    info.time_appconnect = since(conn.tls_done);
    info.time_pretransfer = since(st.pretransfer);
    info.time_starttransfer = since(st.starttransfer);
    info.time_redirect = since(st.redirect_done);
    info.time_total = total;
    if let Some(peer) = conn.peer {
        info.remote_ip = peer.ip().to_string();
        info.remote_port = peer.port().to_string();
    }
    if let Some(local) = conn.local {
        info.local_ip = local.ip().to_string();
        info.local_port = local.port().to_string();
    }
    if let Ok(resp) = &result {
        info.url_effective.clone_from(&resp.url);
        info.num_redirects = resp.hops.len();
        if matches!(resp.status, 301 | 302 | 303 | 307 | 308) {
            if let Some(loc) = header("location") {
                info.redirect_url = url::Url::parse(&resp.url)
                    .and_then(|base| base.join(&loc))
                    .map(String::from)
                    .unwrap_or(loc);
            }
        }
    }
    // The state is done with: its headers move to -w's facts.
    info.headers = std::mem::take(&mut st.headers);
    info.exitcode = code;
    info.errormsg.clone_from(&message);
    drop(st);
    Attempt {
        code,
        message,
        info,
        retry_after,
        output,
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Where the CLI writes one transfer's output: stdout, or a file created
/// on first use (appended to when resuming).
/// The write buffer of an output file or stdout.
const OUTPUT_BUFFER: usize = 32 * 1024;

pub(super) struct Output {
    target: Target,
    append: bool,
    create_dirs: bool,
    file: Option<BufWriter<File>>,
    stdout: Option<BufWriter<std::io::Stdout>>,
    /// Bytes written by this attempt.
    written: u64,
    /// The file's length before this attempt (a retry cuts it back).
    initial_len: u64,
    broken_pipe: bool,
    error: Option<String>,
}

impl Output {
    fn new(target: Target, append: bool, create_dirs: bool) -> Output {
        Output {
            target,
            append,
            create_dirs,
            file: None,
            stdout: None,
            written: 0,
            initial_len: 0,
            broken_pipe: false,
            error: None,
        }
    }

    fn out(&mut self) -> Result<&mut dyn Write, String> {
        match &self.target {
            Target::Stdout => Ok(self
                .stdout
                .get_or_insert_with(|| BufWriter::with_capacity(OUTPUT_BUFFER, std::io::stdout()))),
            Target::File(path) => {
                if self.file.is_none() {
                    if self.create_dirs {
                        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                            std::fs::create_dir_all(parent)
                                .map_err(|e| format!("cannot create directory {}: {e}", parent.display()))?;
                        }
                    }
                    let f = OpenOptions::new()
                        .write(true)
                        .create(true)
                        .append(self.append)
                        .truncate(!self.append)
                        .open(path)
                        .map_err(|e| format!("Failed to create the file {}: {e}", path.display()))?;
                    // Truncated: it starts empty (no stat needed).
                    self.initial_len = if self.append {
                        f.metadata().map(|m| m.len()).unwrap_or(0)
                    } else {
                        0
                    };
                    // Pieces at least this large go straight to the file;
                    // a larger buffer would be allocated for every output
                    // file, which a run of many small files pays for.
                    self.file = Some(BufWriter::with_capacity(OUTPUT_BUFFER, f));
                }
                Ok(self.file.as_mut().expect("just set"))
            }
        }
    }

    fn write(&mut self, data: &[u8]) -> Result<(), String> {
        let r = self.out().and_then(|o| o.write_all(data).map_err(|e| e.to_string()));
        match &r {
            Ok(()) => self.written += data.len() as u64,
            Err(e) => {
                if e.contains("Broken pipe") {
                    self.broken_pipe = true;
                }
                self.error = Some(e.clone());
            }
        }
        r
    }

    /// Flush. `success`: create an empty output file when nothing was
    /// written (curl does; a failed transfer leaves no file behind).
    fn finish(&mut self, success: bool) -> Result<(), Error> {
        if self.file.is_none() && self.stdout.is_none() && !success {
            return Ok(());
        }
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

    /// Before a retry: cut the file back to what it held before the
    /// attempt (stdout cannot be taken back).
    fn rewind_file(&mut self) {
        if let Some(mut f) = self.file.take() {
            let _ = f.flush();
            if let Ok(mut f) = f.into_inner() {
                let _ = f.set_len(self.initial_len);
                let _ = f.seek(std::io::SeekFrom::End(0));
            }
        }
        self.written = 0;
    }
}

/// What the sink learns during one attempt.
struct SinkState {
    output: Arc<Mutex<Output>>,
    bar: Option<ProgressBar>,
    bars: Option<MultiProgress>,
    /// Response heads seen.
    heads: u32,
    /// The last head's status, version and headers.
    status: u16,
    version: String,
    headers: Vec<Header>,
    /// Body bytes of the last head, as received.
    received: u64,
    size_header: u64,
    size_request: u64,
    requests: u64,
    /// 3xx heads seen (redirects, followed or not).
    redirects: usize,
    pretransfer: Option<Instant>,
    starttransfer: Option<Instant>,
    redirect_done: Option<Instant>,
    /// Drop the body of the last head (-f on >= 400; a resume the server
    /// refused or had nothing for).
    discard: bool,
    /// The server answered a resume with a whole body.
    range_error: bool,
    /// -f and a status of 400 or more.
    failed: bool,
}

struct CliSink {
    state: Arc<Mutex<SinkState>>,
    include: bool,
    verbose: bool,
    fail: bool,
    resume: u64,
}

impl CliSink {
    fn state(&self) -> MutexGuard<'_, SinkState> {
        lock(&self.state)
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
        let mut st = self.state();
        st.size_request += head.len() as u64;
        st.requests += 1;
        if st.heads > 0 {
            st.redirect_done = Some(Instant::now());
        }
        st.pretransfer = Some(Instant::now());
    }

    fn response_head(&mut self, head: ResponseHead, raw: &[u8]) {
        if self.verbose {
            verbose_lines("< ", raw);
        }
        let mut st = self.state();
        if st.starttransfer.is_none() || st.redirect_done > st.starttransfer {
            st.starttransfer = Some(Instant::now());
        }
        st.heads += 1;
        st.size_header += raw.len() as u64;
        st.status = head.status;
        st.version = head.version;
        st.headers = head.headers;
        st.received = 0;
        if (300..400).contains(&head.status) {
            st.redirects += 1;
        }
        if let Some(bar) = st.bar.take() {
            bar.finish_and_clear();
        }
        let interim = (100..200).contains(&head.status);
        st.failed = self.fail && head.status >= 400;
        st.discard = st.failed;
        if self.resume > 0 && !interim {
            if head.status == 416 {
                // Nothing left to fetch: the file is complete (as curl).
                st.discard = true;
            } else if (200..300).contains(&head.status) && head.status != 206 {
                st.discard = true;
                st.range_error = true;
            }
        }
        if self.include && !st.discard {
            let out = st.output.clone();
            let _ = lock(&out).write(raw);
        }
    }

    fn write(&mut self, data: Vec<u8>) -> WriteFuture<'_> {
        let st = self.state();
        let r = if st.discard {
            Ok(())
        } else {
            let out = st.output.clone();
            drop(st);
            let r = lock(&out).write(&data);
            r
        };
        Box::pin(async move { r })
    }

    fn trailers(&mut self, trailers: &[Header]) {
        if self.verbose {
            for t in trailers {
                eprintln!("< {}: {}", t.name, String::from_utf8_lossy(&t.value));
            }
        }
    }

    fn progress(&mut self, received: u64, expected: Option<u64>) {
        let mut st = self.state();
        if st.failed {
            // curl stops at the head with -f: nothing counts as downloaded.
            return;
        }
        st.received = received;
        if st.discard {
            return;
        }
        if st.bar.is_none() {
            if let Some(bars) = &st.bars {
                let bar = bars.add(new_bar(expected));
                st.bar = Some(bar);
            }
        }
        if let Some(bar) = &st.bar {
            bar.set_position(received);
        }
    }
}

/// A bar with bytes, rate and ETA when the length is known; a spinner with
/// bytes and rate otherwise.
fn new_bar(expected: Option<u64>) -> ProgressBar {
    match expected {
        Some(len) => {
            let bar = ProgressBar::new(len);
            if let Ok(style) = ProgressStyle::with_template(
                "{bar:30} {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12}  ETA {eta}",
            ) {
                bar.set_style(style);
            }
            bar
        }
        None => {
            let bar = ProgressBar::new_spinner();
            if let Ok(style) =
                ProgressStyle::with_template("{spinner} {bytes:>10} {binary_bytes_per_sec:>12}  {elapsed}")
            {
                bar.set_style(style);
            }
            bar
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{idle, Window};
    use std::time::{Duration, Instant};

    #[test]
    fn window_starts_at_the_floor_or_at_once_with_parallel_immediate() {
        assert_eq!(
            Window::new(25, false),
            Window {
                size: Window::FLOOR,
                max: 25
            }
        );
        assert_eq!(Window::new(25, true), Window { size: 25, max: 25 });
        assert_eq!(Window::new(3, false), Window { size: 3, max: 3 });
        assert_eq!(Window::new(0, false), Window { size: 1, max: 1 });
    }

    #[test]
    fn window_doubles_only_when_idle_and_stops_at_its_share() {
        let mut w = Window::new(25, false);
        w.grow_if(false);
        assert_eq!(w.size, Window::FLOOR);
        w.grow_if(true);
        assert_eq!(w.size, 2 * Window::FLOOR);
        w.grow_if(true);
        assert_eq!(w.size, 25);
        w.grow_if(true);
        assert_eq!(w.size, 25);
    }

    /// A runtime built with the hooks counts the time its thread waits
    /// (parked in the timer here) and not the time it computes.
    fn measure<F: std::future::Future<Output = ()>>(work: impl FnOnce() -> F) -> (Duration, Duration) {
        let rt = super::runtime(true).unwrap();
        rt.block_on(async {
            let period = idle::Period::start();
            work().await;
            period.measure()
        })
    }

    #[test]
    fn idle_time_is_the_time_the_runtime_waited() {
        let (parked, elapsed) = measure(|| tokio::time::sleep(Duration::from_millis(50)));
        assert!(elapsed >= Duration::from_millis(50), "{elapsed:?}");
        assert!(parked * 2 > elapsed, "waited {elapsed:?} but parked only {parked:?}");
        let (parked, elapsed) = measure(|| async {
            let t = Instant::now();
            while t.elapsed() < Duration::from_millis(50) {
                std::hint::black_box(0u64);
            }
        });
        assert!(parked * 2 < elapsed, "busy {elapsed:?} but parked {parked:?}");
    }
}
