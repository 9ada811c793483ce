//! The server's connections: every one is closed after a bounded time without traffic (a
//! client that sends half a request, or half a body, or nothing, cannot hold it open), and
//! the few answers hyper writes itself, before a request reaches the router (a malformed
//! request line, a URI or header block beyond what it parses), get the documented JSON body
//! instead of an empty one. The clock does not run while the server itself works on one
//! of the connection's requests (parsing a hostile system can take seconds).

use super::error::ApiError;
use axum::http::StatusCode;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};

/// How many of a connection's requests the server is working on now (a handler past
/// reading its body); while any is, the connection is not idle.
#[derive(Clone, Default)]
pub struct ConnActivity(Arc<AtomicUsize>);

impl ConnActivity {
    fn busy(&self) -> bool {
        self.0.load(Ordering::SeqCst) > 0
    }
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, TimedListener>>
    for ConnActivity
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, TimedListener>) -> Self {
        stream.io().activity.clone()
    }
}

tokio::task_local! {
    /// The connection of the request the current task serves (set by the router's guard).
    pub static CONNECTION: ConnActivity;
}

/// Marks the current request's connection busy until dropped.
pub struct Working(Option<ConnActivity>);

impl Drop for Working {
    fn drop(&mut self) {
        if let Some(a) = &self.0 {
            a.0.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Call once the request has been read and the server starts on its work: the idle clock
/// of its connection stops until the returned guard is dropped.
pub fn working() -> Working {
    Working(
        CONNECTION
            .try_with(|a| {
                a.0.fetch_add(1, Ordering::SeqCst);
                a.clone()
            })
            .ok(),
    )
}

/// Accepts connections and wraps each in `TimedIo`.
pub struct TimedListener {
    pub listener: TcpListener,
    /// How long a connection may go without reading or writing a byte.
    pub idle: Duration,
}

impl axum::serve::Listener for TimedListener {
    type Io = TimedIo;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (TimedIo, std::net::SocketAddr) {
        loop {
            match self.listener.accept().await {
                Ok((stream, addr)) => {
                    let _ = stream.set_nodelay(true);
                    return (TimedIo::new(stream, self.idle), addr);
                }
                // Out of file descriptors and the like: wait a little rather than spin.
                Err(e) => {
                    log::warn!("accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<std::net::SocketAddr> {
        self.listener.local_addr()
    }
}

/// A connection that fails its pending read once `idle` has passed without traffic, which
/// makes hyper close it.
pub struct TimedIo {
    stream: TcpStream,
    idle: Duration,
    deadline: Pin<Box<Sleep>>,
    activity: ConnActivity,
    /// A replacement for an answer hyper wrote itself: the bytes, how many are sent, and
    /// the length of hyper's buffer to report once they are.
    rewrite: Option<(Vec<u8>, usize, usize)>,
}

impl TimedIo {
    fn new(stream: TcpStream, idle: Duration) -> TimedIo {
        TimedIo {
            stream,
            idle,
            deadline: Box::pin(tokio::time::sleep(idle)),
            activity: ConnActivity::default(),
            rewrite: None,
        }
    }

    fn touch(&mut self) {
        let at = Instant::now() + self.idle;
        self.deadline.as_mut().reset(at);
    }
}

impl AsyncRead for TimedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(r) => {
                this.touch();
                Poll::Ready(r)
            }
            // hyper also reads while a handler runs (to notice a closed connection).
            Poll::Pending if this.activity.busy() => {
                this.touch();
                Poll::Pending
            }
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no traffic within the idle timeout",
                ))),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

impl AsyncWrite for TimedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.rewrite.is_none()
            && let Some(json) = hyper_error_as_json(buf)
        {
            this.rewrite = Some((json, 0, buf.len()));
        }
        if let Some((bytes, sent, reported)) = &mut this.rewrite {
            while *sent < bytes.len() {
                match Pin::new(&mut this.stream).poll_write(cx, &bytes[*sent..]) {
                    Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                    Poll::Ready(Ok(n)) => *sent += n,
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => return Poll::Pending,
                }
            }
            let reported = *reported;
            this.rewrite = None;
            this.touch();
            return Poll::Ready(Ok(reported));
        }
        let written = Pin::new(&mut this.stream).poll_write(cx, buf);
        if written.is_ready() {
            this.touch();
        }
        written
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// hyper answers a request it cannot parse with a bodiless 4xx head; every answer of ours
/// has a JSON body. Such a head becomes the documented JSON error (the connection closes
/// after it, as hyper intends).
fn hyper_error_as_json(buf: &[u8]) -> Option<Vec<u8>> {
    let head = buf.strip_suffix(b"\r\n\r\n")?;
    let head = std::str::from_utf8(head).ok()?;
    let code: u16 = head.strip_prefix("HTTP/1.1 4")?.get(..2)?.parse().ok()?;
    let status = StatusCode::from_u16(400 + code).ok()?;
    let bodiless = head
        .lines()
        .any(|l| l.eq_ignore_ascii_case("content-length: 0"));
    if !bodiless || head.contains("\r\n\r\n") {
        return None;
    }
    let message = match status {
        StatusCode::URI_TOO_LONG => "the URI is longer than this server reads (64 KiB)",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => "the request's headers are too large",
        StatusCode::PAYLOAD_TOO_LARGE => "the request is too large",
        _ => "the request is not valid HTTP/1.1",
    };
    let body = ApiError::new(status, message).body().to_string();
    Some(
        format!(
            "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n{body}",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            body.len()
        )
        .into_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hyper_heads_become_json_and_ours_are_left_alone() {
        let hyper = b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let out = String::from_utf8(hyper_error_as_json(hyper).unwrap()).unwrap();
        assert!(out.starts_with("HTTP/1.1 414 URI Too Long\r\n"), "{out}");
        let body = out.split("\r\n\r\n").nth(1).unwrap();
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"]["status"], 414);
        let ours = b"HTTP/1.1 404 Not Found\r\ncontent-length: 20\r\n\r\n{\"error\": {}} ....";
        assert!(hyper_error_as_json(ours).is_none());
        let ok = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        assert!(hyper_error_as_json(ok).is_none());
    }
}
