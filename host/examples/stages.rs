//! scratch: per-stage cost of a small fetch
use std::sync::Arc;
use std::time::Instant;
use wfetch::{Request, Runtime, DEFAULT_GUEST};

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let port: u16 = std::env::args().nth(1).unwrap().parse().unwrap();
    let n: usize = std::env::args().nth(2).map(|a| a.parse().unwrap()).unwrap_or(2000);
    let rt = Arc::new(Runtime::new().unwrap());
    let (guest, _) = rt
        .load_cached("g", DEFAULT_GUEST, std::path::Path::new("/tmp/pb/cache"))
        .unwrap();
    let req = Request::get(&format!("http://127.0.0.1:{port}/small/1.txt"));
    for _ in 0..200 {
        guest.build_request(&req).await.unwrap().unwrap();
    }
    let t = Instant::now();
    for _ in 0..n {
        guest.build_request(&req).await.unwrap().unwrap();
    }
    println!("build_request: {:.1} us", t.elapsed().as_secs_f64() * 1e6 / n as f64);
    let host = wfetch::Host::builder()
        .allow_everything()
        .cache_dir("/tmp/pb/cache")
        .build()
        .unwrap();
    for _ in 0..200 {
        host.fetch(req.clone()).await.unwrap().bytes().await.unwrap();
    }
    let t = Instant::now();
    for _ in 0..n {
        host.fetch(req.clone()).await.unwrap().bytes().await.unwrap();
    }
    println!("host fetch: {:.1} us", t.elapsed().as_secs_f64() * 1e6 / n as f64);
}
