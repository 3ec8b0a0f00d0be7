//! Content decoding (gzip, deflate, br) as a stream, with a cap on the
//! expansion ratio so a small bomb cannot become gigabytes.

use brotli_decompressor::{BrotliDecompressStream, BrotliResult, BrotliState, StandardAlloc};
use flate2::{Crc, Decompress, FlushDecompress, Status};

use crate::Error;

/// The output may exceed the input by this factor (after [`FREE_OUTPUT`]).
pub const MAX_RATIO: u64 = 1000;
/// Output allowed regardless of the ratio.
pub const FREE_OUTPUT: u64 = 1 << 20;

/// A content coding we decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    Gzip,
    Deflate,
    Brotli,
}

impl Coding {
    /// The coding named by a Content-Encoding value ("gzip", "x-gzip",
    /// "deflate", "br"), case-insensitively; None for identity/unknown.
    pub fn from_header(value: &[u8]) -> Option<Coding> {
        let v = value.trim_ascii();
        [
            (&b"gzip"[..], Coding::Gzip),
            (b"x-gzip", Coding::Gzip),
            (b"deflate", Coding::Deflate),
            (b"br", Coding::Brotli),
        ]
        .into_iter()
        .find_map(|(name, c)| v.eq_ignore_ascii_case(name).then_some(c))
    }
}

/// Output produced per decompression step: the ratio is checked this often.
const STEP: usize = 32 * 1024;

type BrotliDecoder = BrotliState<StandardAlloc, StandardAlloc, StandardAlloc>;

/// A streaming decoder.
pub struct Decoder {
    kind: Kind,
    meter: Meter,
    /// Scratch output of one step.
    buf: Vec<u8>,
    /// Bytes given to [`Decoder::feed`], consumed or not.
    fed: u64,
}

enum Kind {
    Gzip {
        state: Gz,
        z: Decompress,
        crc: Crc,
    },
    /// `head` holds the first bytes until the zlib header can be checked.
    Deflate {
        head: Vec<u8>,
        z: Option<Decompress>,
        done: bool,
    },
    Brotli {
        state: Box<BrotliDecoder>,
        done: bool,
    },
}

/// Where a gzip stream is (RFC 1952 2.2: a series of members).
enum Gz {
    Header(Vec<u8>),
    Body,
    Trailer(Vec<u8>),
    /// A member ended: more input must be another member.
    Between,
    /// Bytes after the last member that are not a member: ignored, like gzip(1).
    Garbage,
}

/// Input consumed and output produced, for the ratio cap.
struct Meter {
    input: u64,
    output: u64,
}

impl Meter {
    fn add(&mut self, input: usize, output: usize) -> Result<(), Error> {
        self.input = self.input.saturating_add(input as u64);
        self.output = self.output.saturating_add(output as u64);
        if self.output > FREE_OUTPUT && self.output > self.input.saturating_mul(MAX_RATIO) {
            return Err(Error::DecodeRatio {
                input: self.input,
                output: self.output,
            });
        }
        Ok(())
    }
}

impl Decoder {
    pub fn new(coding: Coding) -> Self {
        let kind = match coding {
            Coding::Gzip => Kind::Gzip {
                state: Gz::Header(Vec::new()),
                z: Decompress::new(false),
                crc: Crc::new(),
            },
            Coding::Deflate => Kind::Deflate {
                head: Vec::new(),
                z: None,
                done: false,
            },
            Coding::Brotli => Kind::Brotli {
                state: Box::new(BrotliState::new(
                    StandardAlloc::default(),
                    StandardAlloc::default(),
                    StandardAlloc::default(),
                )),
                done: false,
            },
        };
        Decoder {
            kind,
            meter: Meter { input: 0, output: 0 },
            buf: vec![0; STEP],
            fed: 0,
        }
    }

    /// Feed compressed bytes; decoded bytes are appended to `out`.
    /// Errors: [`Error::Decode`], [`Error::DecodeRatio`].
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), Error> {
        self.fed = self.fed.saturating_add(input.len() as u64);
        let (meter, buf) = (&mut self.meter, &mut self.buf);
        match &mut self.kind {
            Kind::Gzip { state, z, crc } => gzip(state, z, crc, input, out, buf, meter),
            Kind::Deflate { head, z, done } => {
                if *done {
                    return Ok(());
                }
                let z = match z {
                    Some(z) => z,
                    None => {
                        head.extend_from_slice(input);
                        let [cmf, flg, ..] = head[..] else {
                            return Ok(());
                        };
                        z.insert(Decompress::new(is_zlib_header(cmf, flg)))
                    }
                };
                let data = if head.is_empty() { input } else { head.as_slice() };
                *done = inflate(z, data, out, buf, meter)?.1;
                head.clear();
                Ok(())
            }
            Kind::Brotli { state, done } => brotli(state, done, input, out, buf, meter),
        }
    }

    /// The compressed input ended: flush what is left into `out`. An
    /// unfinished stream is [`Error::Decode`]. An empty input (a body of no
    /// bytes at all) is accepted as an empty output, as curl does.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), Error> {
        if self.fed == 0 {
            return Ok(());
        }
        let (meter, buf) = (&mut self.meter, &mut self.buf);
        let (ended, what) = match &mut self.kind {
            Kind::Gzip { state, z, .. } => {
                if matches!(state, Gz::Body) {
                    inflate(z, &[], out, buf, meter)?;
                }
                (matches!(state, Gz::Between | Gz::Garbage), "gzip")
            }
            Kind::Deflate { z, done, .. } => {
                if let (Some(z), false) = (z, *done) {
                    *done = inflate(z, &[], out, buf, meter)?.1;
                }
                (*done, "deflate")
            }
            Kind::Brotli { state, done } => {
                brotli(state, done, &[], out, buf, meter)?;
                (*done, "brotli")
            }
        };
        if ended {
            Ok(())
        } else {
            Err(Error::Decode(format!("truncated {what} stream")))
        }
    }
}

/// RFC 1950 2.2: `CMF` = CM 8 (deflate) and CINFO <= 7; `CMF*256 + FLG` is a
/// multiple of 31; FDICT (a preset dictionary) is not set.
fn is_zlib_header(cmf: u8, flg: u8) -> bool {
    cmf & 0x0f == 8 && cmf >> 4 <= 7 && (u16::from(cmf) << 8 | u16::from(flg)) % 31 == 0 && flg & 0x20 == 0
}

/// Inflate `input` into `out` one [`STEP`] at a time. Returns the bytes used
/// and whether the deflate stream ended.
fn inflate(
    z: &mut Decompress,
    input: &[u8],
    out: &mut Vec<u8>,
    buf: &mut [u8],
    meter: &mut Meter,
) -> Result<(usize, bool), Error> {
    let mut used = 0;
    loop {
        let rest = input.get(used..).unwrap_or_default();
        let (in0, out0) = (z.total_in(), z.total_out());
        let status = z
            .decompress(rest, buf, FlushDecompress::None)
            .map_err(|e| Error::Decode(format!("corrupt deflate data: {e}")))?;
        let took = usize::try_from(z.total_in().saturating_sub(in0))
            .unwrap_or(usize::MAX)
            .min(rest.len());
        let made = usize::try_from(z.total_out().saturating_sub(out0))
            .unwrap_or(usize::MAX)
            .min(buf.len());
        used += took;
        out.extend_from_slice(buf.get(..made).unwrap_or_default());
        meter.add(took, made)?;
        if status == Status::StreamEnd {
            return Ok((used, true));
        }
        if took == 0 && made == 0 {
            return Ok((used, false));
        }
    }
}

/// Decode gzip members (RFC 1952):
///
/// ```text
/// member = ID1 ID2 CM FLG MTIME(4) XFL OS [XLEN extra] [name 0] [comment 0] [CRC16]
///          deflate-blocks CRC32 ISIZE
/// ```
fn gzip(
    state: &mut Gz,
    z: &mut Decompress,
    crc: &mut Crc,
    mut input: &[u8],
    out: &mut Vec<u8>,
    buf: &mut [u8],
    meter: &mut Meter,
) -> Result<(), Error> {
    while !input.is_empty() {
        match state {
            Gz::Header(head) => {
                let old = head.len();
                head.extend_from_slice(input);
                let Some(len) = gzip_header_len(head)? else {
                    if head.len() > MAX_GZIP_HEADER {
                        return Err(Error::Decode(format!(
                            "gzip header longer than {MAX_GZIP_HEADER} bytes"
                        )));
                    }
                    meter.add(input.len(), 0)?;
                    return Ok(());
                };
                let took = len.saturating_sub(old);
                meter.add(took, 0)?;
                input = input.get(took..).unwrap_or_default();
                z.reset(false);
                crc.reset();
                *state = Gz::Body;
            }
            Gz::Body => {
                let start = out.len();
                let (used, ended) = inflate(z, input, out, buf, meter)?;
                crc.update(out.get(start..).unwrap_or_default());
                input = input.get(used..).unwrap_or_default();
                if ended {
                    *state = Gz::Trailer(Vec::with_capacity(8));
                } else if used == 0 {
                    return Ok(());
                }
            }
            Gz::Trailer(t) => {
                let took = input.len().min(8 - t.len().min(8));
                t.extend_from_slice(input.get(..took).unwrap_or_default());
                meter.add(took, 0)?;
                input = input.get(took..).unwrap_or_default();
                if let [c0, c1, c2, c3, s0, s1, s2, s3] = t[..] {
                    if u32::from_le_bytes([c0, c1, c2, c3]) != crc.sum() {
                        return Err(Error::Decode("gzip crc32 mismatch".to_string()));
                    }
                    if u32::from_le_bytes([s0, s1, s2, s3]) != crc.amount() {
                        return Err(Error::Decode("gzip size mismatch".to_string()));
                    }
                    *state = Gz::Between;
                }
            }
            Gz::Between if input.first() == Some(&0x1f) => *state = Gz::Header(Vec::new()),
            Gz::Between | Gz::Garbage => {
                *state = Gz::Garbage;
                return Ok(());
            }
        }
    }
    Ok(())
}

/// A gzip header longer than this (a name or comment that never ends) is an error.
const MAX_GZIP_HEADER: usize = 64 * 1024 + 1024;

/// The length of the gzip member header at the start of `h`, None when `h`
/// ends inside it.
fn gzip_header_len(h: &[u8]) -> Result<Option<usize>, Error> {
    const FHCRC: u8 = 2;
    const FEXTRA: u8 = 4;
    const FNAME: u8 = 8;
    const FCOMMENT: u8 = 16;
    let bad = |what: &str| Err(Error::Decode(format!("bad gzip header: {what}")));
    if h.first().is_some_and(|&b| b != 0x1f) || h.get(1).is_some_and(|&b| b != 0x8b) {
        return bad("not gzip (bad magic)");
    }
    if h.get(2).is_some_and(|&b| b != 8) {
        return bad("compression method is not deflate");
    }
    let Some(&flg) = h.get(3) else {
        return Ok(None);
    };
    if flg & 0xe0 != 0 {
        return bad("reserved flags set");
    }
    let mut pos = 10;
    if flg & FEXTRA != 0 {
        let Some(&[lo, hi]) = h.get(10..12) else {
            return Ok(None);
        };
        pos += 2 + usize::from(u16::from_le_bytes([lo, hi]));
    }
    for flag in [FNAME, FCOMMENT] {
        if flg & flag != 0 {
            let Some(nul) = h.get(pos..).and_then(|r| r.iter().position(|&b| b == 0)) else {
                return Ok(None);
            };
            pos += nul + 1;
        }
    }
    if flg & FHCRC != 0 {
        pos += 2;
    }
    Ok((h.len() >= pos).then_some(pos))
}

/// Decode brotli (RFC 7932) one [`STEP`] of output at a time.
fn brotli(
    state: &mut BrotliDecoder,
    done: &mut bool,
    input: &[u8],
    out: &mut Vec<u8>,
    buf: &mut [u8],
    meter: &mut Meter,
) -> Result<(), Error> {
    if *done {
        return Ok(());
    }
    let (mut avail_in, mut in_off) = (input.len(), 0);
    loop {
        let (in0, mut avail_out, mut out_off, mut total) = (in_off, buf.len(), 0, 0);
        let result = BrotliDecompressStream(
            &mut avail_in,
            &mut in_off,
            input,
            &mut avail_out,
            &mut out_off,
            buf,
            &mut total,
            state,
        );
        out.extend_from_slice(buf.get(..out_off).unwrap_or_default());
        meter.add(in_off.saturating_sub(in0), out_off)?;
        match result {
            BrotliResult::ResultSuccess => {
                *done = true;
                return Ok(());
            }
            BrotliResult::NeedsMoreInput => return Ok(()),
            BrotliResult::NeedsMoreOutput => {}
            BrotliResult::ResultFailure => return Err(Error::Decode("corrupt brotli data".to_string())),
        }
    }
}
