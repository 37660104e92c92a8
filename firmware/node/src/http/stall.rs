//! A client that stops reading is dropped: writes that make no progress for [`WRITE_STALL`]
//! fail the connection, so a stalled TV cannot hold a connection slot and its response's
//! buffers forever (DESIGN.md §5: slow clients are dropped, not buffered without bound).

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use smol::io::{AsyncRead, AsyncWrite};
use smol::Timer;

/// How long a write may wait for the client to take bytes. Longer than any player's pause
/// between reads while it plays; a paused player that stops reading is dropped and reconnects.
pub(crate) const WRITE_STALL: Duration = Duration::from_secs(30);

/// A connection whose writes time out when the peer stops reading.
pub(crate) struct StallGuard<T> {
    inner: T,
    limit: Duration,
    /// Armed when a write first returns `Pending`, disarmed by any progress.
    timer: Option<Timer>,
}

impl<T> StallGuard<T> {
    /// Guards `inner` with a `limit` on how long a write may make no progress.
    pub(crate) fn new(inner: T, limit: Duration) -> Self {
        StallGuard { inner, limit, timer: None }
    }

    fn check_stall(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let limit = self.limit;
        let timer = self.timer.get_or_insert_with(|| Timer::after(limit));
        match Pin::new(timer).poll(cx) {
            Poll::Ready(_) => {
                Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, "the client stopped reading")))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for StallGuard<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for StallGuard<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Ready(result) => {
                self.timer = None;
                Poll::Ready(result)
            }
            Poll::Pending => match self.check_stall(cx) {
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                _ => Poll::Pending,
            },
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Ready(result) => {
                self.timer = None;
                Poll::Ready(result)
            }
            Poll::Pending => self.check_stall(cx),
        }
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use smol::io::AsyncWriteExt;

    #[test]
    fn a_peer_that_stops_reading_fails_the_write() {
        smol::block_on(async {
            let listener = smol::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            let addr = listener.local_addr().expect("address");
            // The peer connects and never reads.
            let _peer = smol::net::TcpStream::connect(addr).await.expect("connect");
            let (stream, _) = listener.accept().await.expect("accept");
            let mut guarded = StallGuard::new(stream, Duration::from_millis(300));
            let chunk = vec![0u8; 1 << 20];
            let started = std::time::Instant::now();
            let mut result = Ok(());
            // Kernel buffers take a few MiB at most; then writes stall and must fail.
            for _ in 0..256 {
                result = guarded.write_all(&chunk).await;
                if result.is_err() {
                    break;
                }
            }
            let error = result.expect_err("the write must time out");
            assert_eq!(error.kind(), io::ErrorKind::TimedOut);
            assert!(started.elapsed() < Duration::from_secs(10));
        });
    }
}
