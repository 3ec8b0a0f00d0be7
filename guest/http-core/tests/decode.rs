//! Content decoding: round trips through real encoders, fed whole and in
//! small pieces, plus truncation, corruption and the expansion cap.

use std::io::Write;

use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
use flate2::{Compression, GzBuilder};
use wfetch_http_core::decode::{Coding, Decoder, FREE_OUTPUT, MAX_RATIO};
use wfetch_http_core::Error;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = GzEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn zlib(data: &[u8]) -> Vec<u8> {
    let mut e = ZlibEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn raw_deflate(data: &[u8]) -> Vec<u8> {
    let mut e = DeflateEncoder::new(Vec::new(), Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn brotli(data: &[u8]) -> Vec<u8> {
    let mut w = brotli::CompressorWriter::new(Vec::new(), 4096, 9, 22);
    w.write_all(data).unwrap();
    w.into_inner()
}

/// Feed `input` in pieces of `piece` bytes, then finish.
fn decode(coding: Coding, input: &[u8], piece: usize) -> Result<Vec<u8>, Error> {
    let mut d = Decoder::new(coding);
    let mut out = Vec::new();
    for p in input.chunks(piece) {
        d.feed(p, &mut out)?;
    }
    d.finish(&mut out)?;
    Ok(out)
}

fn sample() -> Vec<u8> {
    (0..20_000u32)
        .flat_map(|i| format!("line {i} of a body that compresses {}\n", i % 7).into_bytes())
        .collect()
}

#[test]
fn coding_names() {
    let cases: &[(&[u8], Option<Coding>)] = &[
        (b"gzip", Some(Coding::Gzip)),
        (b"GZip", Some(Coding::Gzip)),
        (b"x-gzip", Some(Coding::Gzip)),
        (b" gzip ", Some(Coding::Gzip)),
        (b"deflate", Some(Coding::Deflate)),
        (b"br", Some(Coding::Brotli)),
        (b"BR", Some(Coding::Brotli)),
        (b"identity", None),
        (b"compress", None),
        (b"zstd", None),
        (b"", None),
        (b"gzip, br", None),
    ];
    for &(value, want) in cases {
        assert_eq!(Coding::from_header(value), want, "{:?}", String::from_utf8_lossy(value));
    }
}

#[test]
fn round_trips() {
    let data = sample();
    let small = b"hello, world".to_vec();
    let multi = [gzip(b"first member, "), gzip(b"second member")].concat();
    let named = {
        let mut e = GzBuilder::new()
            .filename("f.txt")
            .comment("a comment")
            .extra(vec![1, 2, 3])
            .write(Vec::new(), Compression::best());
        e.write_all(&small).unwrap();
        e.finish().unwrap()
    };
    let cases: Vec<(&str, Coding, Vec<u8>, Vec<u8>)> = vec![
        ("gzip", Coding::Gzip, gzip(&data), data.clone()),
        ("gzip small", Coding::Gzip, gzip(&small), small.clone()),
        ("gzip empty content", Coding::Gzip, gzip(b""), vec![]),
        (
            "gzip multi-member",
            Coding::Gzip,
            multi,
            b"first member, second member".to_vec(),
        ),
        ("gzip name, comment, extra", Coding::Gzip, named, small.clone()),
        (
            "gzip trailing garbage ignored",
            Coding::Gzip,
            [gzip(&small), b"\0\0garbage".to_vec()].concat(),
            small.clone(),
        ),
        ("deflate zlib", Coding::Deflate, zlib(&data), data.clone()),
        ("deflate zlib small", Coding::Deflate, zlib(&small), small.clone()),
        ("deflate raw", Coding::Deflate, raw_deflate(&data), data.clone()),
        ("deflate raw small", Coding::Deflate, raw_deflate(&small), small.clone()),
        ("brotli", Coding::Brotli, brotli(&data), data.clone()),
        ("brotli small", Coding::Brotli, brotli(&small), small.clone()),
        ("brotli empty content", Coding::Brotli, brotli(b""), vec![]),
        ("empty body", Coding::Gzip, vec![], vec![]),
    ];
    for (name, coding, encoded, want) in cases {
        for piece in [1, 7, 4096, usize::MAX] {
            if piece == 1 && encoded.len() > 20_000 {
                continue;
            }
            let got = decode(coding, &encoded, piece).unwrap_or_else(|e| panic!("{name} piece={piece}: {e}"));
            assert!(
                got == want,
                "{name} piece={piece}: {} bytes, want {}",
                got.len(),
                want.len()
            );
        }
    }
}

#[test]
fn truncated_streams_fail_on_finish() {
    let data = sample();
    let cases = [
        ("gzip", Coding::Gzip, gzip(&data)),
        ("zlib", Coding::Deflate, zlib(&data)),
        ("raw", Coding::Deflate, raw_deflate(&data)),
        ("br", Coding::Brotli, brotli(&data)),
    ];
    for (name, coding, encoded) in cases {
        for cut in [1, 2, 4, 9, encoded.len() / 2, encoded.len() - 1] {
            let mut d = Decoder::new(coding);
            let mut out = Vec::new();
            d.feed(&encoded[..cut], &mut out)
                .unwrap_or_else(|e| panic!("{name} cut={cut}: feed failed: {e}"));
            assert!(matches!(d.finish(&mut out), Err(Error::Decode(_))), "{name} cut={cut}");
        }
    }
}

#[test]
fn corrupt_streams_fail() {
    let mut bad_crc = gzip(b"hello");
    let n = bad_crc.len();
    bad_crc[n - 8] ^= 1;
    let mut bad_size = gzip(b"hello");
    bad_size[n - 1] ^= 1;
    let cases: Vec<(&str, Coding, Vec<u8>)> = vec![
        ("gzip garbage", Coding::Gzip, b"this is not gzip at all".to_vec()),
        (
            "gzip bad method",
            Coding::Gzip,
            vec![0x1f, 0x8b, 7, 0, 0, 0, 0, 0, 0, 0],
        ),
        (
            "gzip reserved flag",
            Coding::Gzip,
            vec![0x1f, 0x8b, 8, 0x80, 0, 0, 0, 0, 0, 0],
        ),
        ("gzip crc", Coding::Gzip, bad_crc),
        ("gzip size", Coding::Gzip, bad_size),
        ("deflate garbage", Coding::Deflate, vec![0xff; 64]),
        (
            "brotli garbage",
            Coding::Brotli,
            b"\xff\xff\xff\xff not brotli, not at all".to_vec(),
        ),
    ];
    for (name, coding, input) in cases {
        assert!(
            matches!(decode(coding, &input, usize::MAX), Err(Error::Decode(_))),
            "{name}"
        );
    }
}

#[test]
fn ratio_cap_stops_a_bomb() {
    let zeros = vec![0u8; 50 << 20];
    let bombs = [
        ("gzip", Coding::Gzip, {
            let mut e = GzEncoder::new(Vec::new(), Compression::best());
            e.write_all(&zeros).unwrap();
            e.finish().unwrap()
        }),
        ("br", Coding::Brotli, brotli(&zeros)),
    ];
    for (name, coding, bomb) in bombs {
        let mut d = Decoder::new(coding);
        let mut out = Vec::new();
        let err = bomb
            .chunks(16 * 1024)
            .try_for_each(|p| d.feed(p, &mut out))
            .and_then(|()| d.finish(&mut out));
        match err {
            Err(Error::DecodeRatio { input, output }) => {
                assert!(
                    output > FREE_OUTPUT && output > MAX_RATIO * input,
                    "{name}: {input} -> {output}"
                );
                assert!(out.len() < zeros.len(), "{name}: stopped early");
            }
            other => panic!("{name}: {other:?} (compressed {} bytes)", bomb.len()),
        }
    }
    // Up to FREE_OUTPUT, any ratio is fine.
    let small = vec![0u8; FREE_OUTPUT as usize];
    assert_eq!(
        decode(Coding::Gzip, &gzip(&small), usize::MAX).unwrap().len(),
        small.len()
    );
    assert_eq!(
        decode(Coding::Brotli, &brotli(&small), usize::MAX).unwrap().len(),
        small.len()
    );
}
