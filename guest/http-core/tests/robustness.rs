//! A cheap, deterministic stand-in for the fuzz targets: mutated valid
//! inputs never panic, and chunked results do not depend on the piece size.

use std::io::Write;

use wfetch_http_core::body::{decode_in_memory, framing, Framing};
use wfetch_http_core::decode::{Coding, Decoder};
use wfetch_http_core::head::{parse_header_line, parse_response_head};
use wfetch_http_core::redirect::next_request;
use wfetch_http_core::request::{build_request, Request};

/// xorshift64: reproducible without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// Flip, insert, delete or truncate a few bytes of `seed`.
    fn mutate(&mut self, seed: &[u8]) -> Vec<u8> {
        const INTERESTING: &[u8] = b"\r\n\0 \t:;0fF9-,";
        let mut v = seed.to_vec();
        for _ in 0..=self.below(4) {
            let at = self.below(v.len() + 1);
            let byte = if self.next() & 1 == 0 {
                INTERESTING[self.below(INTERESTING.len())]
            } else {
                self.next() as u8
            };
            match self.below(4) {
                0 if at < v.len() => v[at] = byte,
                1 => v.insert(at, byte),
                2 if at < v.len() => drop(v.remove(at)),
                _ => v.truncate(at),
            }
        }
        v
    }
}

const ROUNDS: usize = 20_000;

#[test]
fn mutated_heads() {
    let seeds: &[&[u8]] = &[
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX: a\r\n b\r\n\r\nhello",
        b"HTTP/1.0 301 Moved\nLocation: /x\nTransfer-Encoding: gzip, chunked\n\n",
    ];
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for i in 0..ROUNDS {
        let input = rng.mutate(seeds[i % seeds.len()]);
        if let Ok(Some((head, used))) = parse_response_head(&input) {
            assert!(used <= input.len());
            let _ = framing("GET", &head);
        }
        let _ = parse_header_line(&input);
    }
}

#[test]
fn mutated_chunked_bodies() {
    let seed = b"5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nT: v\r\n\r\n";
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    for _ in 0..ROUNDS {
        let input = rng.mutate(seed);
        let small = decode_in_memory(Framing::Chunked, &input, 1 + rng.below(7) as u64);
        assert_eq!(small, decode_in_memory(Framing::Chunked, &input, 1 << 16), "{input:?}");
    }
}

#[test]
fn mutated_compressed_bodies() {
    let text = b"some text that is compressed, some text that is compressed".repeat(20);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&text).unwrap();
    let mut br = brotli::CompressorWriter::new(Vec::new(), 4096, 5, 22);
    br.write_all(&text).unwrap();
    let seeds = [(Coding::Gzip, gz.finish().unwrap()), (Coding::Brotli, br.into_inner())];
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for i in 0..ROUNDS / 4 {
        let (coding, seed) = &seeds[i % seeds.len()];
        for coding in [*coding, Coding::Deflate] {
            let input = rng.mutate(seed);
            let mut d = Decoder::new(coding);
            let mut out = Vec::new();
            let piece = 1 + rng.below(64);
            let _ = input
                .chunks(piece)
                .try_for_each(|p| d.feed(p, &mut out))
                .and_then(|()| d.finish(&mut out));
        }
    }
}

#[test]
fn mutated_requests_and_locations() {
    let mut rng = Rng(0x0dd_ba11_cafe_f00d);
    let base = Request {
        method: "POST".into(),
        url: "http://u:p@h:8080/a/b?c".into(),
        body: Some(b"x".to_vec()),
        ..Default::default()
    };
    for _ in 0..ROUNDS {
        let url = String::from_utf8_lossy(&rng.mutate(base.url.as_bytes())).into_owned();
        let method = String::from_utf8_lossy(&rng.mutate(b"GET")).into_owned();
        let req = Request {
            method,
            url,
            ..base.clone()
        };
        if let Ok((_, bytes)) = build_request(&req) {
            let end = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
            assert!(!bytes[..end].contains(&0), "{bytes:?}");
        }
        let location = rng.mutate(b"https://[::1]:99/x?y#z");
        let _ = next_request(&base, 303, &location);
    }
}
