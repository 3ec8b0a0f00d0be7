//! Use wfetch as a library from a tokio program: build a `Host` that may
//! reach only the URL's own host and port, fetch, stream the body.
//!
//! cargo run --example fetch -- http://127.0.0.1:8080/

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args().nth(1).ok_or("usage: fetch URL")?;
    let parsed = url::Url::parse(&url)?;
    let target = format!(
        "{}:{}",
        parsed.host_str().ok_or("URL has no host")?,
        parsed.port_or_known_default().ok_or("URL has no port")?
    );
    let host = wfetch::Host::builder().allow(&target)?.build()?;
    let mut resp = host.fetch(wfetch::Request::get(&url).follow_redirects(5)).await?;
    eprintln!("status {}", resp.status());
    let mut total = 0usize;
    while let Some(piece) = resp.chunk().await? {
        total += piece.len();
    }
    eprintln!("{total} body bytes");
    Ok(())
}
