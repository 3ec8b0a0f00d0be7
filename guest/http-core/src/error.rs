//! The crate's one error enum: everything that can be wrong with a request
//! we build or a response we receive.

/// What went wrong. Messages are lower-case and say what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    // --- building requests ---
    /// The URL does not parse as an absolute URL.
    #[error("invalid url: {0}")]
    InvalidUrl(String),
    /// The scheme is not http or https.
    #[error("unsupported scheme {0:?} (only http and https)")]
    UnsupportedScheme(String),
    /// A method that is not an RFC 9110 token.
    #[error("invalid method {0:?} (not a token)")]
    InvalidMethod(String),
    /// A header name that is not a token, or a value with CR, LF or NUL.
    #[error("invalid header: {0}")]
    InvalidHeader(String),

    // --- response heads ---
    /// The status line is not `HTTP/1.x NNN reason`.
    #[error("bad status line: {0}")]
    BadStatusLine(String),
    /// The version is not HTTP/1.0 or HTTP/1.1.
    #[error("unsupported http version {0:?}")]
    UnsupportedVersion(String),
    /// A header line is malformed (no colon, bad name, NUL, ...).
    #[error("bad header line: {0}")]
    BadHeader(String),
    /// More header lines than [`head::MAX_HEADERS`](crate::head::MAX_HEADERS).
    #[error("too many header lines: {0} (at most {max})", max = crate::head::MAX_HEADERS)]
    TooManyHeaders(usize),

    // --- framing ---
    /// Content-Length values that differ, or one that is not a number.
    #[error("invalid content-length: {0}")]
    InvalidContentLength(String),
    /// Both Content-Length and Transfer-Encoding (RFC 9112 6.3: a smuggling vector).
    #[error("response has both content-length and transfer-encoding")]
    ContentLengthWithTransferEncoding,
    /// A Transfer-Encoding whose final coding is not chunked.
    #[error("unsupported transfer-encoding {0:?} (final coding must be chunked)")]
    UnsupportedTransferEncoding(String),
    /// A chunk-size line that is not hex digits (plus extensions).
    #[error("invalid chunk size line {0:?}")]
    InvalidChunkSize(String),
    /// A chunk size that does not fit in 63 bits.
    #[error("chunk size overflows 63 bits")]
    ChunkSizeOverflow,
    /// Chunk data not followed by CRLF.
    #[error("chunk data not followed by crlf")]
    MissingChunkTerminator,
    /// A malformed trailer line.
    #[error("bad trailer line: {0}")]
    BadTrailer(String),
    /// The connection ended before the body did.
    #[error("body truncated: received {received} of {} bytes", expected.map_or_else(|| "more".to_string(), |n| n.to_string()))]
    Truncated { expected: Option<u64>, received: u64 },

    // --- redirects ---
    /// A 3xx that must be followed has no usable Location.
    #[error("bad redirect location: {0}")]
    BadLocation(String),
    /// The redirect target's scheme is not http or https.
    #[error("redirect to unsupported scheme {0:?}")]
    RedirectScheme(String),

    // --- content decoding ---
    /// A compressed body that does not decode.
    #[error("cannot decode body: {0}")]
    Decode(String),
    /// The decoded body outgrew the expansion cap.
    #[error("decoded body too large: {output} bytes from {input} compressed bytes (ratio cap {ratio})", ratio = crate::decode::MAX_RATIO)]
    DecodeRatio { input: u64, output: u64 },
}
