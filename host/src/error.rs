//! The host crate's one error enum, and curl's exit codes for each case.

use std::path::PathBuf;

use crate::engine::bindings::exports::wfetch::fetch::fetcher::{FetchError, RequestError};
use crate::engine::bindings::wfetch::fetch::streams::StreamError as WitStreamError;

/// Everything that can go wrong in the host, with a message a user can act on.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The guest component could not be read, compiled or linked.
    #[error("guest {name}: {why}")]
    Guest {
        /// The guest's name (its file or the built-in guest).
        name: String,
        /// What went wrong.
        why: String,
    },
    /// The guest trapped, ran out of a limit, or broke the contract.
    #[error("guest failed: {0}")]
    Trap(String),
    /// The guest reported a failed fetch.
    #[error("{}", fetch_error_message(.0))]
    Fetch(FetchError),
    /// The --cacert file is unusable.
    #[error("cannot use CA file {}: {why}", path.display())]
    CaCert {
        /// The CA file given.
        path: PathBuf,
        /// Why it cannot be used.
        why: String,
    },
    /// Other TLS setup failure.
    #[error("{0}")]
    Tls(String),
    /// A command-line value is invalid.
    #[error("{0}")]
    Usage(String),
    /// The URL is malformed.
    #[error("{0}")]
    BadUrl(String),
    /// Writing the output failed.
    #[error("failed writing output: {0}")]
    Output(String),
    /// Reading an input file failed.
    #[error("{0}")]
    Input(String),
    /// The engine could not be set up.
    #[error("engine: {0}")]
    Engine(String),
    /// The guest went over one of its sandbox limits and was stopped.
    #[error("sandbox limit exceeded: {0}")]
    Limit(crate::limits::LimitExceeded),
}

/// wfetch's own exit code (outside curl's range): the policy denied a
/// connection the guest tried to open.
pub const EXIT_DENIED: u8 = 110;
/// wfetch's own exit code (outside curl's range): the guest went over a
/// sandbox limit (memory, CPU, wall-clock time, connections, bytes).
pub const EXIT_LIMIT: u8 = 111;
/// wfetch's own exit code: a `--replay` run wrote something the recording
/// does not have.
pub const EXIT_REPLAY_DIVERGED: u8 = 112;

impl Error {
    /// curl's exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Guest { .. } | Error::Trap(_) | Error::Engine(_) => 1,
            Error::Usage(_) => 2,
            Error::BadUrl(_) => 3,
            Error::Output(_) => 23,
            Error::Input(_) => 26,
            Error::CaCert { .. } => 77,
            Error::Tls(_) => 35,
            Error::Fetch(e) => fetch_exit_code(e),
            Error::Limit(_) => EXIT_LIMIT,
        }
    }
}

fn stream_exit_code(e: &WitStreamError, receiving: bool) -> u8 {
    match e {
        WitStreamError::Dns(_) => 6,
        WitStreamError::ConnectionRefused(_) => 7,
        WitStreamError::TimedOut(_) => 28,
        WitStreamError::Tls(t) if t.certificate => 60,
        WitStreamError::Tls(_) => 35,
        WitStreamError::Denied(_) => EXIT_DENIED,
        WitStreamError::IncompleteRead(_) => 18,
        WitStreamError::LimitOverrun(_) => 8,
        WitStreamError::ConnectionReset(_) if receiving => 56,
        WitStreamError::ConnectionReset(_) => 55,
        WitStreamError::Closed | WitStreamError::InvalidArgument(_) | WitStreamError::Other(_) => {
            if receiving {
                56
            } else {
                55
            }
        }
    }
}

fn fetch_exit_code(e: &FetchError) -> u8 {
    match e {
        FetchError::Request(RequestError::InvalidUrl(_)) => 3,
        FetchError::Request(RequestError::UnsupportedScheme(_)) => 1,
        FetchError::Request(_) => 2,
        FetchError::Transport(s) => stream_exit_code(s, false),
        FetchError::Receive(s) => stream_exit_code(s, true),
        FetchError::Protocol(_) => 8,
        FetchError::HeadTooLarge(_) => 8,
        FetchError::EmptyReply => 52,
        FetchError::Partial(_) => 18,
        FetchError::TooManyRedirects(_) => 47,
        FetchError::Sink(_) => 23,
        FetchError::Decoding(_) => 61,
    }
}

/// The text of a stream error, as a user reads it.
pub fn stream_error_message(e: &WitStreamError) -> String {
    match e {
        WitStreamError::IncompleteRead(i) => match i.expected {
            Some(n) => format!("connection closed after {} of {n} bytes", i.partial.len()),
            None => format!("connection closed after {} bytes", i.partial.len()),
        },
        WitStreamError::LimitOverrun(l) => format!("{} ({} bytes)", l.message, l.consumed),
        WitStreamError::ConnectionRefused(m)
        | WitStreamError::Dns(m)
        | WitStreamError::TimedOut(m)
        | WitStreamError::Other(m) => m.clone(),
        WitStreamError::ConnectionReset(m) => format!("Connection reset: {m}"),
        WitStreamError::Tls(t) if t.certificate => format!("SSL certificate problem: {}", t.message),
        WitStreamError::Tls(t) => format!("TLS connect error: {}", t.message),
        WitStreamError::Denied(m) => format!("Denied by policy: {m}"),
        WitStreamError::Closed => "stream is closed".into(),
        WitStreamError::InvalidArgument(m) => format!("invalid stream call: {m}"),
    }
}

fn fetch_error_message(e: &FetchError) -> String {
    match e {
        FetchError::Request(r) => match r {
            RequestError::InvalidUrl(m) => format!("URL rejected: {m}"),
            RequestError::UnsupportedScheme(m) => format!("Protocol \"{m}\" not supported"),
            RequestError::InvalidHeader(m) => format!("invalid header: {m}"),
            RequestError::InvalidMethod(m) => format!("invalid method: {m}"),
        },
        FetchError::Transport(
            s @ (WitStreamError::ConnectionReset(_)
            | WitStreamError::Closed
            | WitStreamError::IncompleteRead(_)
            | WitStreamError::LimitOverrun(_)),
        ) => format!("Failed sending data to the peer: {}", stream_error_message(s)),
        FetchError::Transport(s) => stream_error_message(s),
        FetchError::Receive(s) => format!("Failure when receiving data from the peer: {}", stream_error_message(s)),
        FetchError::Protocol(m) => format!("Weird server reply: {m}"),
        FetchError::EmptyReply => "Empty reply from server".into(),
        FetchError::HeadTooLarge(m) => format!("Weird server reply: response head too large: {m}"),
        FetchError::Partial(m) => format!("Transferred a partial file: {m}"),
        FetchError::TooManyRedirects(n) => format!("Maximum ({n}) redirects followed"),
        FetchError::Sink(m) => format!("Failure writing output: {m}"),
        FetchError::Decoding(m) => format!("Unrecognized content encoding or bad data: {m}"),
    }
}
