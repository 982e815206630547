//! Lingering close, as nginx does it: when the server ends a connection (an
//! answer sent before the request body was read, such as a 413 after the
//! first MiB of a compressed bomb), the client may still be sending. Closing
//! a socket with unread data makes the kernel reset the connection, and a
//! client still writing then sees the reset instead of the answer it was sent.
//! So the closing side first sends its FIN, then reads and discards what
//! still arrives until the client closes too, for at most [`LINGER_TIME`] and
//! [`LINGER_BYTES`].
//!
//! hyper has no such setting; it calls `poll_shutdown` on its I/O when a
//! connection ends, which is where this stream lingers.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;

/// How long a closing connection waits for its client to stop sending.
const LINGER_TIME: Duration = Duration::from_secs(2);

/// How much a closing connection reads and discards at most.
const LINGER_BYTES: usize = 4 * 1024 * 1024;

/// A TCP stream whose shutdown lingers (see the module's header).
pub(super) struct LingeringStream {
    stream: TcpStream,
    state: Closing,
}

enum Closing {
    Open,
    /// The FIN is sent; what arrives is discarded. The timer is set up only if
    /// the client has not closed at once (the usual case is no timer at all).
    Lingering {
        discarded: usize,
        deadline: Option<Pin<Box<Sleep>>>,
    },
    Closed,
}

impl LingeringStream {
    pub(super) fn new(stream: TcpStream) -> Self {
        Self { stream, state: Closing::Open }
    }
}

impl AsyncRead for LingeringStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for LingeringStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            match &mut this.state {
                Closing::Open => {
                    ready!(Pin::new(&mut this.stream).poll_shutdown(cx))?;
                    this.state = Closing::Lingering { discarded: 0, deadline: None };
                }
                Closing::Lingering { discarded, deadline } => {
                    let mut scratch = [0u8; 8192];
                    let mut buf = ReadBuf::new(&mut scratch);
                    match Pin::new(&mut this.stream).poll_read(cx, &mut buf) {
                        Poll::Ready(Ok(())) if !buf.filled().is_empty() => {
                            *discarded += buf.filled().len();
                            if *discarded < LINGER_BYTES {
                                continue;
                            }
                        }
                        // The client closed too (or reset): done.
                        Poll::Ready(_) => {}
                        Poll::Pending => {
                            let deadline = deadline
                                .get_or_insert_with(|| Box::pin(tokio::time::sleep(LINGER_TIME)));
                            if deadline.as_mut().poll(cx).is_pending() {
                                return Poll::Pending;
                            }
                        }
                    }
                    this.state = Closing::Closed;
                }
                Closing::Closed => return Poll::Ready(Ok(())),
            }
        }
    }
}
