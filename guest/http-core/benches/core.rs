//! The HTTP core natively: head parsing and chunked decoding throughput.
//! `cargo bench -p wfetch-http-core` (figures in bench/RESULTS.md).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use wfetch_http_core::body::{decode_in_memory, Framing};
use wfetch_http_core::head::parse_response_head;

fn head() -> Vec<u8> {
    let mut h = b"HTTP/1.1 200 OK\r\n".to_vec();
    for (n, v) in [
        ("Server", "nginx/1.22.1"),
        ("Date", "Fri, 27 Nov 2026 02:00:00 GMT"),
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Length", "123456"),
        ("Last-Modified", "Thu, 26 Nov 2026 10:00:00 GMT"),
        ("Connection", "keep-alive"),
        ("ETag", "\"6565a1b0-1e240\""),
        ("Cache-Control", "public, max-age=3600"),
        ("Accept-Ranges", "bytes"),
        ("Vary", "Accept-Encoding"),
    ] {
        h.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
    }
    h.extend_from_slice(b"\r\n");
    h
}

fn chunked(total: usize, piece: usize) -> Vec<u8> {
    let body: Vec<u8> = (0..total).map(|i| (i % 251) as u8).collect();
    let mut out = Vec::with_capacity(total + total / piece * 12 + 16);
    for c in body.chunks(piece) {
        out.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
        out.extend_from_slice(c);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

fn bench(c: &mut Criterion) {
    let h = head();
    let mut g = c.benchmark_group("head");
    g.throughput(Throughput::Bytes(h.len() as u64));
    g.bench_function("parse 10 headers", |b| {
        b.iter(|| parse_response_head(std::hint::black_box(&h)))
    });
    g.finish();

    let mut g = c.benchmark_group("chunked");
    for piece in [512usize, 16 * 1024] {
        let input = chunked(4 << 20, piece);
        g.throughput(Throughput::Bytes(input.len() as u64));
        g.bench_with_input(BenchmarkId::new("decode 4 MiB, chunk", piece), &input, |b, input| {
            b.iter(|| decode_in_memory(Framing::Chunked, std::hint::black_box(input), 256 * 1024))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
