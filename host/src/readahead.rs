//! The read-ahead buffer under a TLS session: once a connection streams
//! a bulk body, rustls's record-sized reads are served from one large
//! socket read instead of one system call per record.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// The size of the buffer, once a connection has shown it streams.
/// 256 KiB: loopback reads of this size cost a seventh of the system
/// time of record-sized ones (bench/RESULTS.md, session 12), and the
/// buffer still fits in the L2 cache with rustls's own.
pub const AHEAD: usize = 256 * 1024;

/// Reads that filled the caller's buffer, in a row, before the buffer is
/// made: a small response (a few records at most) never allocates it.
const STREAK: u8 = 4;

/// An `AsyncRead + AsyncWrite` transport that reads ahead once its reads
/// keep coming back full (see the module's doc). Writes pass through.
///
/// Nothing is held back: a read returns what the buffer holds, or reads
/// the transport once (into the buffer, or straight into the caller's
/// room when that is at least as large), and never waits for more than
/// the transport has.
#[derive(Debug)]
pub struct ReadAhead<T> {
    inner: T,
    /// Empty until reading ahead starts; then `AHEAD` bytes.
    buf: Box<[u8]>,
    /// The unread bytes are `buf[pos..end]`.
    pos: usize,
    end: usize,
    /// Reads in a row that filled the caller's room.
    full: u8,
}

impl<T> ReadAhead<T> {
    /// Wrap a transport; no buffer is allocated yet.
    pub fn new(inner: T) -> Self {
        Self {
            inner,
            buf: Box::default(),
            pos: 0,
            end: 0,
            full: 0,
        }
    }

    /// Whether the buffer has been made (the connection streams).
    pub fn is_reading_ahead(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Bytes read from the transport and not yet handed on.
    pub fn buffered(&self) -> usize {
        self.end - self.pos
    }

    /// Hand on what the buffer holds (some, if there is room).
    fn serve(&mut self, out: &mut ReadBuf<'_>) {
        let n = out.remaining().min(self.end - self.pos);
        out.put_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ReadAhead<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, out: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if out.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        if this.pos < this.end {
            this.serve(out);
            return Poll::Ready(Ok(()));
        }
        if this.buf.is_empty() || out.remaining() >= this.buf.len() {
            // Straight into the caller's room; counted towards reading ahead.
            let before = out.filled().len();
            ready!(Pin::new(&mut this.inner).poll_read(cx, out))?;
            let got = out.filled().len() - before;
            if got > 0 && out.remaining() == 0 {
                this.full = this.full.saturating_add(1);
                if this.full >= STREAK && this.buf.is_empty() {
                    this.buf = vec![0u8; AHEAD].into_boxed_slice();
                }
            } else {
                this.full = 0;
            }
            return Poll::Ready(Ok(()));
        }
        let mut rb = ReadBuf::new(&mut this.buf);
        ready!(Pin::new(&mut this.inner).poll_read(cx, &mut rb))?;
        this.pos = 0;
        this.end = rb.filled().len();
        // Zero bytes: end of stream, passed on as such.
        this.serve(out);
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ReadAhead<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// Read with a room of `room` bytes per call until EOF.
    async fn drain(r: &mut ReadAhead<tokio::net::TcpStream>, room: usize) -> Vec<u8> {
        let mut all = Vec::new();
        let mut chunk = vec![0u8; room];
        loop {
            let n = r.read(&mut chunk).await.expect("read");
            if n == 0 {
                return all;
            }
            assert!(n <= room);
            all.extend_from_slice(&chunk[..n]);
        }
    }

    async fn pair() -> (tokio::net::TcpStream, tokio::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (client, accepted) = tokio::join!(tokio::net::TcpStream::connect(addr), listener.accept());
        (client.expect("connect"), accepted.expect("accept").0)
    }

    #[tokio::test]
    async fn a_bulk_stream_is_read_ahead_and_arrives_whole() {
        let (client, mut server) = pair().await;
        let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let sent = body.clone();
        let writer = tokio::spawn(async move {
            server.write_all(&sent).await.expect("write");
        });
        let mut r = ReadAhead::new(client);
        // Record-sized reads, as rustls asks.
        let got = drain(&mut r, 16 * 1024 + 5).await;
        writer.await.expect("writer");
        assert!(got == body, "the bytes arrive whole and in order");
        assert!(r.is_reading_ahead(), "a 3 MB stream starts reading ahead");
    }

    #[tokio::test]
    async fn a_small_response_never_makes_the_buffer() {
        let (client, mut server) = pair().await;
        let writer = tokio::spawn(async move {
            server.write_all(&[7u8; 3000]).await.expect("write");
        });
        let mut r = ReadAhead::new(client);
        let got = drain(&mut r, 4096).await;
        writer.await.expect("writer");
        assert_eq!(got, vec![7u8; 3000]);
        assert!(!r.is_reading_ahead());
    }

    #[tokio::test]
    async fn a_read_returns_what_is_there_without_waiting_for_more() {
        let (client, mut server) = pair().await;
        let mut r = ReadAhead::new(client);
        // Start reading ahead: four full reads.
        server.write_all(&[1u8; 4 * 100]).await.expect("write");
        let mut room = [0u8; 100];
        for _ in 0..4 {
            r.read_exact(&mut room).await.expect("full read");
        }
        assert!(r.is_reading_ahead());
        // A few bytes while the peer stays open: returned at once.
        server.write_all(b"abc").await.expect("write");
        let mut room = [0u8; 100];
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), r.read(&mut room))
            .await
            .expect("no wait for a full buffer")
            .expect("read");
        assert_eq!(&room[..n], b"abc");
        assert_eq!(r.buffered(), 0);
        // Writes pass through.
        r.write_all(b"ping").await.expect("write");
        let mut back = [0u8; 4];
        server.read_exact(&mut back).await.expect("server read");
        assert_eq!(&back, b"ping");
    }
}
