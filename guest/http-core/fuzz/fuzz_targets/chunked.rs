//! Chunked bodies (and content decoding of what they carry): never a panic,
//! and the result does not depend on the piece size.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wfetch_http_core::body::{decode_in_memory, Framing};
use wfetch_http_core::decode::{Coding, Decoder};

fuzz_target!(|data: &[u8]| {
    let Some((&first, input)) = data.split_first() else {
        return;
    };
    let max_piece = u64::from(first % 16) + 1;
    let small = decode_in_memory(Framing::Chunked, input, max_piece);
    let large = decode_in_memory(Framing::Chunked, input, 1 << 16);
    assert_eq!(small, large);
    let Ok((body, _, used)) = small else { return };
    assert!(used <= input.len());
    let coding = [Coding::Gzip, Coding::Deflate, Coding::Brotli][usize::from(first >> 6) % 3];
    let mut decoder = Decoder::new(coding);
    let mut out = Vec::new();
    for piece in body.chunks(usize::from(first).max(1)) {
        if decoder.feed(piece, &mut out).is_err() {
            return;
        }
    }
    let _ = decoder.finish(&mut out);
});
