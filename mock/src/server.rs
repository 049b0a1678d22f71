//! TCP accept loop and per-connection handling. The connection task owns the
//! socket, so it is the one that can carry out the "hang" and "reset" faults:
//! a handler asks for them through a channel and the task takes the socket back
//! from hyper.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::TokioIo;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::http::{self, Outcome};
use crate::state::App;
use crate::target_limit::LimitedTargets;

/// What a handler asks the connection task to do instead of answering.
#[derive(Debug, Clone, Copy)]
enum Takeover {
    /// Keep the socket open, read and discard until the client closes it.
    Hang,
    /// Close the socket with RST (SO_LINGER 0), without any response.
    Reset,
}

pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves until the future is dropped.
pub async fn serve(listener: TcpListener, app: Arc<App>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(connection(stream, app.clone()));
            }
            // Typically EMFILE: back off briefly instead of spinning.
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
        }
    }
}

async fn connection(stream: TcpStream, app: Arc<App>) {
    let _ = stream.set_nodelay(true);
    let (takeover_tx, mut takeover_rx) = mpsc::unbounded_channel::<Takeover>();
    let service = service_fn(move |req: Request<Incoming>| {
        let app = app.clone();
        let takeover_tx = takeover_tx.clone();
        async move {
            let takeover = match http::dispatch(&app, req).await {
                Outcome::Reply(reply) => return Ok::<_, Infallible>(reply.into_response()),
                Outcome::Hang => Takeover::Hang,
                Outcome::Reset => Takeover::Reset,
            };
            let _ = takeover_tx.send(takeover);
            // The connection task drops this future when it takes the socket back.
            std::future::pending().await
        }
    });
    let mut conn = http1::Builder::new()
        .header_read_timeout(None)
        .serve_connection(TokioIo::new(LimitedTargets::new(stream)), service);
    tokio::select! {
        _ = &mut conn => {}
        Some(takeover) = takeover_rx.recv() => {
            let stream = conn.into_parts().io.into_inner().into_inner();
            match takeover {
                Takeover::Reset => {
                    let _ = stream.set_zero_linger();
                    drop(stream);
                }
                Takeover::Hang => hold_until_closed(stream).await,
            }
        }
    }
}

async fn hold_until_closed(mut stream: TcpStream) {
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            break;
        }
    }
}
