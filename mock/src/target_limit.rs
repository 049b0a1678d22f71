//! Request-targets longer than Salesforce accepts (16,384 bytes) must get a
//! 431 with a body, whatever their length. hyper can't deliver that: it
//! refuses a URI over 64 KB with a bare 414 and a head over its buffer with a
//! bare 431, closing the connection while the client may still be sending.
//! So the socket is read through `LimitedTargets`, which cuts every
//! request-target to its first 16,384 bytes and marks the request with the
//! `x-sequin-mock-target-too-long: <length>` header; `http::dispatch` answers
//! such a request with 431. All bytes are read, so the client gets its answer.
//!
//! To find where the next request starts, bodies are skipped by their
//! Content-Length; after a chunked body the connection is passed through
//! unchanged (hyper's own limits apply to its later requests).

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub const MAX_TARGET: usize = 16_384;
pub const TOO_LONG_HEADER: &str = "x-sequin-mock-target-too-long";

/// Enough of a header line to read Content-Length and Transfer-Encoding.
const KEPT_LINE: usize = 256;

#[derive(Debug, PartialEq)]
enum State {
    /// The method (and any line breaks between requests).
    Method,
    /// In the request-target, this many bytes long so far.
    Target(usize),
    /// The rest of the request line and the headers.
    Head {
        first_line: bool,
        line: Vec<u8>,
        /// The request-target's length when it was cut.
        cut: Option<usize>,
        content_length: usize,
        chunked: bool,
    },
    Body(usize),
    Passthrough,
}

/// The byte-stream rewrite, apart from any I/O.
#[derive(Debug)]
pub struct TargetLimiter {
    state: State,
}

impl Default for TargetLimiter {
    fn default() -> TargetLimiter {
        TargetLimiter {
            state: State::Method,
        }
    }
}

fn head(cut: Option<usize>) -> State {
    State::Head {
        first_line: true,
        line: Vec::new(),
        cut,
        content_length: 0,
        chunked: false,
    }
}

impl TargetLimiter {
    /// Appends to `out` what hyper should read for `input`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let mut i = 0;
        while i < input.len() {
            match &mut self.state {
                State::Passthrough => {
                    out.extend_from_slice(&input[i..]);
                    return;
                }
                State::Body(remaining) => {
                    let n = (*remaining).min(input.len() - i);
                    out.extend_from_slice(&input[i..i + n]);
                    i += n;
                    *remaining -= n;
                    if *remaining == 0 {
                        self.state = State::Method;
                    }
                }
                State::Method => {
                    let b = input[i];
                    out.push(b);
                    i += 1;
                    if b == b' ' {
                        self.state = State::Target(0);
                    }
                }
                State::Target(len) => {
                    let b = input[i];
                    i += 1;
                    if matches!(b, b' ' | b'\r' | b'\n') {
                        let cut = (*len > MAX_TARGET).then_some(*len);
                        out.push(b);
                        self.state = head(cut);
                        if b == b'\n' {
                            self.end_line(out);
                        }
                    } else {
                        if *len < MAX_TARGET {
                            out.push(b);
                        }
                        *len += 1;
                    }
                }
                State::Head { line, .. } => {
                    let b = input[i];
                    out.push(b);
                    i += 1;
                    if b == b'\n' {
                        self.end_line(out);
                    } else if line.len() < KEPT_LINE {
                        line.push(b);
                    }
                }
            }
        }
    }

    /// A line of the head has ended: note what it says, mark a cut target
    /// after the request line, move on to the body after the blank line.
    fn end_line(&mut self, out: &mut Vec<u8>) {
        let State::Head {
            first_line,
            line,
            cut,
            content_length,
            chunked,
        } = &mut self.state
        else {
            return;
        };
        let text = String::from_utf8_lossy(line).trim().to_ascii_lowercase();
        line.clear();
        if *first_line {
            *first_line = false;
            if let Some(len) = cut {
                out.extend_from_slice(format!("{TOO_LONG_HEADER}: {len}\r\n").as_bytes());
            }
            return;
        }
        if text.is_empty() {
            self.state = if *chunked {
                State::Passthrough
            } else if *content_length > 0 {
                State::Body(*content_length)
            } else {
                State::Method
            };
            return;
        }
        if let Some((name, value)) = text.split_once(':') {
            match name.trim() {
                "content-length" => *content_length = value.trim().parse().unwrap_or(0),
                "transfer-encoding" => *chunked = value.contains("chunked"),
                _ => {}
            }
        }
    }
}

/// A stream read through a `TargetLimiter`; writes go straight through.
pub struct LimitedTargets<S> {
    inner: S,
    limiter: TargetLimiter,
    pending: Vec<u8>,
    at: usize,
}

impl<S> LimitedTargets<S> {
    pub fn new(inner: S) -> LimitedTargets<S> {
        LimitedTargets {
            inner,
            limiter: TargetLimiter::default(),
            pending: Vec::new(),
            at: 0,
        }
    }

    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for LimitedTargets<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.at < this.pending.len() {
                let n = buf.remaining().min(this.pending.len() - this.at);
                buf.put_slice(&this.pending[this.at..this.at + n]);
                this.at += n;
                if this.at == this.pending.len() {
                    this.pending.clear();
                    this.at = 0;
                }
                return Poll::Ready(Ok(()));
            }
            let mut raw = [0u8; 8192];
            let mut read = ReadBuf::new(&mut raw);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut read))?;
            if read.filled().is_empty() {
                return Poll::Ready(Ok(()));
            }
            // A cut target may leave nothing to hand on yet: read on.
            this.limiter.feed(read.filled(), &mut this.pending);
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for LimitedTargets<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rewrite(chunks: &[&[u8]]) -> String {
        let mut limiter = TargetLimiter::default();
        let mut out = Vec::new();
        for c in chunks {
            limiter.feed(c, &mut out);
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn short_requests_pass_unchanged_long_targets_are_cut_and_marked() {
        let short = "POST /a?q=1 HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET /b HTTP/1.1\r\n\r\n";
        assert_eq!(rewrite(&[short.as_bytes()]), short);
        let long_target = format!("/q?{}", "x".repeat(MAX_TARGET * 70));
        let request =
            format!("GET {long_target} HTTP/1.1\r\nHost: h\r\n\r\nGET /next HTTP/1.1\r\n\r\n");
        // Fed in small pieces, as a socket delivers it.
        let pieces: Vec<&[u8]> = request.as_bytes().chunks(1000).collect();
        let out = rewrite(&pieces);
        let expected = format!(
            "GET {} HTTP/1.1\r\n{TOO_LONG_HEADER}: {}\r\nHost: h\r\n\r\nGET /next HTTP/1.1\r\n\r\n",
            &long_target[..MAX_TARGET],
            long_target.len()
        );
        assert_eq!(out, expected);
        let exact = format!("GET /{} HTTP/1.1\r\n\r\n", "y".repeat(MAX_TARGET - 1));
        assert_eq!(rewrite(&[exact.as_bytes()]), exact);
        // After a chunked body nothing is touched.
        let chunked = format!(
            "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /{} HTTP/1.1\r\n\r\n",
            "z".repeat(MAX_TARGET + 1)
        );
        assert_eq!(rewrite(&[chunked.as_bytes()]), chunked);
    }
}
