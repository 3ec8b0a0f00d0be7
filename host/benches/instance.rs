//! What a fresh sandboxed instance costs: take a slot, make a store,
//! instantiate the default guest, make one call (`build-request`) and tear
//! the instance down. Every fetch pays this once (bench/RESULTS.md).
//! `cargo bench -p wfetch --bench instance`; WFETCH_BENCH_GUEST=path.wasm
//! measures another build of the guest instead (one that has the same
//! `build-request` export).

use criterion::{criterion_group, criterion_main, Criterion};
use std::sync::Arc;
use wfetch::{Request, Runtime, DEFAULT_GUEST};

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let runtime = Arc::new(Runtime::new().expect("the engine"));
    let other = std::env::var_os("WFETCH_BENCH_GUEST").map(|p| std::fs::read(p).expect("the guest file"));
    let guest = runtime
        .load("the guest", other.as_deref().unwrap_or(DEFAULT_GUEST))
        .expect("the guest compiles");
    let req = Request::get("http://127.0.0.1:8080/small/1.txt");
    // The request the guest builds proves the instance really ran.
    let bytes = rt
        .block_on(guest.build_request(&req))
        .expect("no trap")
        .expect("a request");
    assert!(bytes.starts_with(b"GET /small/1.txt HTTP/1.1\r\n"));
    c.bench_function("fresh instance + build-request + teardown", |b| {
        b.iter(|| rt.block_on(guest.build_request(&req)).expect("no trap"))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
