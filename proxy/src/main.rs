//! `sequin-proxy`: an HTTP proxy in front of sequin_fdw. An API client (Stripe's
//! SDK, simple-salesforce, Octokit) changes only its base URL to
//! `http(s)://<host>:<port>/<database>/<server>/` and keeps working: each
//! request becomes one call, on a pooled connection to `<database>`, of
//!
//! ```sql
//! SELECT status, headers, body, database_behind
//!   FROM sequin.proxy_request($1::text, $2::text, $3::text, $4::text, $5::jsonb, $6::bytea)
//! ```
//!
//! with the server name, the credential from `Authorization` (`Bearer X`,
//! `token X`, or `Basic` user — or password when the user is empty), the
//! method, the path after `/<database>/<server>` with its query string as
//! received (`/db/srv/` gives `/`), the request headers (less hop-by-hop
//! ones, Host, Authorization, Content-Length and Expect) as a jsonb array of
//! `[name, value]` pairs, and the body
//! (NULL when empty). The extension authenticates the credential, calls the
//! API and applies the reply's records before it returns; the row becomes the
//! response. `Sequin-Database-Behind: true` is added when `database_behind`
//! is not NULL.
//!
//! Errors of the proxy itself are JSON, `{"error":{"source":"proxy",
//! "message":…}}` plus `"sqlstate"` (and `"detail"`) when Postgres raised
//! them; see `errors::map_sqlstate` for the status of each SQLSTATE.
//!
//! Flags (durations in seconds, fractions allowed):
//!
//! | flag | default | meaning |
//! | --- | --- | --- |
//! | `--listen ADDR` | `127.0.0.1:8480` | address to listen on (port 0: any) |
//! | `--port-file PATH` | none | once listening, write `http(s)://127.0.0.1:PORT` there (atomically) |
//! | `--conninfo STR` | `""` | libpq `key=value` settings; PGHOST, PGPORT, PGUSER, PGPASSWORD fill in missing keys; `dbname` comes from the URL |
//! | `--pool-size N` | 16 | connections per database |
//! | `--max-connections N` | 1024 | client connections served at once; more wait in the accept queue |
//! | `--max-body-bytes N` | 1048576 | larger request bodies get 413 |
//! | `--header-timeout S` | 10 | request headers must arrive within this; also closes idle keep-alive connections |
//! | `--body-timeout S` | 30 | the request body must arrive within this, else 408 |
//! | `--queue-timeout S` | 30 | longest wait for a pooled connection, else 503 with `Retry-After: 1` |
//! | `--max-databases N` | 64 | databases with a pool; a request for another one gets 503 |
//! | `--tls-cert PEM --tls-key PEM` | none | serve HTTPS instead of HTTP |
//!
//! On stderr: one "listening on" line, then one line per request (method,
//! path without query string, status, milliseconds). The credential and the
//! bodies are never logged. SIGTERM or SIGINT: stop accepting, let requests in
//! flight finish (at most 30 s), exit 0.

mod errors;
mod forward;
mod pool;
mod route;
mod tls;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use sequin_serve::{write_port_file, Flags, ShutdownSignals};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_rustls::TlsAcceptor;

use crate::forward::Context;
use crate::pool::{PoolSettings, Pools};

const USAGE: &str = "usage: sequin-proxy [--listen 127.0.0.1:8480] [--port-file PATH] \
[--conninfo STR] [--pool-size 16] [--max-connections 1024] [--max-body-bytes 1048576] \
[--header-timeout 10] [--body-timeout 30] [--queue-timeout 30] [--max-databases 64] \
[--tls-cert PEM --tls-key PEM]";

/// How long shutdown waits for requests in flight.
const DRAIN: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, PartialEq)]
struct Args {
    listen: SocketAddr,
    port_file: Option<PathBuf>,
    conninfo: String,
    pool_size: usize,
    max_connections: usize,
    max_body_bytes: usize,
    header_timeout: Duration,
    body_timeout: Duration,
    queue_timeout: Duration,
    max_databases: usize,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
}

impl Default for Args {
    fn default() -> Args {
        Args {
            listen: SocketAddr::from(([127, 0, 0, 1], 8480)),
            port_file: None,
            conninfo: String::new(),
            pool_size: 16,
            max_connections: 1024,
            max_body_bytes: 1024 * 1024,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
            queue_timeout: Duration::from_secs(30),
            max_databases: 64,
            tls_cert: None,
            tls_key: None,
        }
    }
}

fn positive(name: &str, v: &str) -> Result<usize, String> {
    match v.parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("{name}: not a positive whole number: {v}")),
    }
}

fn seconds(name: &str, v: &str) -> Result<Duration, String> {
    v.parse::<f64>()
        .ok()
        .filter(|s| *s > 0.0)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| format!("{name}: not a positive number of seconds: {v}"))
}

fn parse_args(argv: impl IntoIterator<Item = String>) -> Result<Args, String> {
    let mut args = Args::default();
    let mut flags = Flags::new(argv.into_iter(), USAGE);
    while let Some(name) = flags.next_flag() {
        match name.as_str() {
            "--listen" => {
                let v = flags.value(&name)?;
                args.listen = v
                    .parse()
                    .map_err(|_| format!("--listen: not an address like 127.0.0.1:8480: {v}"))?;
            }
            "--port-file" => args.port_file = Some(PathBuf::from(flags.value(&name)?)),
            "--conninfo" => args.conninfo = flags.value(&name)?,
            "--pool-size" => args.pool_size = positive(&name, &flags.value(&name)?)?,
            "--max-connections" => {
                // The semaphore's limit.
                args.max_connections = positive(&name, &flags.value(&name)?)?.min(Semaphore::MAX_PERMITS);
            }
            "--max-body-bytes" => args.max_body_bytes = positive(&name, &flags.value(&name)?)?,
            "--header-timeout" => args.header_timeout = seconds(&name, &flags.value(&name)?)?,
            "--body-timeout" => args.body_timeout = seconds(&name, &flags.value(&name)?)?,
            "--queue-timeout" => args.queue_timeout = seconds(&name, &flags.value(&name)?)?,
            "--max-databases" => args.max_databases = positive(&name, &flags.value(&name)?)?,
            "--tls-cert" => args.tls_cert = Some(PathBuf::from(flags.value(&name)?)),
            "--tls-key" => args.tls_key = Some(PathBuf::from(flags.value(&name)?)),
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument: {other}\n{USAGE}")),
        }
    }
    if args.tls_cert.is_some() != args.tls_key.is_some() {
        return Err(format!("--tls-cert and --tls-key go together\n{USAGE}"));
    }
    Ok(args)
}

/// What every connection needs besides its socket.
struct Server {
    ctx: Arc<Context>,
    header_timeout: Duration,
    tls: Option<TlsAcceptor>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(msg) => {
            eprintln!("sequin-proxy: {msg}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let base = pool::base_config(&args.conninfo, |k| std::env::var(k).ok())?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(tls::acceptor(cert, key)?),
        _ => None,
    };
    let mut signals =
        ShutdownSignals::install().map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    let url = format!("{}://{addr}", if tls.is_some() { "https" } else { "http" });
    let database_at = pool::describe(&base);

    let (in_flight, mut drained) = mpsc::channel::<()>(1);
    let pools = Arc::new(Pools::new(
        base,
        PoolSettings {
            pool_size: args.pool_size,
            queue_timeout: args.queue_timeout,
            max_databases: args.max_databases,
        },
    ));
    let ctx = Arc::new(Context {
        pools: pools.clone(),
        max_body_bytes: args.max_body_bytes,
        body_timeout: args.body_timeout,
        in_flight: in_flight.clone(),
    });
    let server = Arc::new(Server {
        ctx: ctx.clone(),
        header_timeout: args.header_timeout,
        tls,
    });

    if let Some(path) = &args.port_file {
        write_port_file(path, &url).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    eprintln!("sequin-proxy listening on {url} (databases at {database_at})");

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let slots = Arc::new(Semaphore::new(args.max_connections));
    loop {
        // The permit comes first: past --max-connections, clients wait in
        // the kernel's accept queue instead of costing a task each.
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = signals.received() => break,
        };
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Typically EMFILE: back off instead of spinning.
                    eprintln!("sequin-proxy: accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = signals.received() => break,
        };
        let server = server.clone();
        let shutdown = shutdown_rx.clone();
        let guard = in_flight.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _guard = guard;
            let _ = stream.set_nodelay(true);
            match &server.tls {
                None => connection(stream, &server, shutdown).await,
                Some(acceptor) => {
                    // The handshake gets the header timeout too: a client that
                    // never finishes it must not hold a slot forever.
                    let handshake =
                        tokio::time::timeout(server.header_timeout, acceptor.accept(stream));
                    if let Ok(Ok(tls_stream)) = handshake.await {
                        connection(tls_stream, &server, shutdown).await;
                    }
                }
            }
        });
    }

    drop(listener);
    eprintln!("sequin-proxy: shutting down, waiting for requests in flight");
    let _ = shutdown_tx.send(true);
    // Connection tasks (through Server and Context) and SQL calls each hold a
    // sender; the channel closes when the last of them is done.
    drop(in_flight);
    drop(server);
    drop(ctx);
    if tokio::time::timeout(DRAIN, drained.recv()).await.is_err() {
        eprintln!(
            "sequin-proxy: requests still in flight after {}s; exiting",
            DRAIN.as_secs()
        );
    }
    pools.close_all();
    // Lets the dropped clients' connection tasks say goodbye to Postgres
    // (Terminate) instead of leaving "unexpected EOF" in its log.
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(())
}

async fn connection<I>(io: I, server: &Server, mut shutdown: watch::Receiver<bool>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let ctx = server.ctx.clone();
    let service = service_fn(move |req: Request<Incoming>| {
        let ctx = ctx.clone();
        async move { Ok::<_, Infallible>(forward::handle(ctx, req).await) }
    });
    let mut builder = http1::Builder::new();
    // hyper's header timer also runs while a keep-alive connection waits for
    // its next request, so it closes idle connections as well as slow ones.
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(server.header_timeout)
        .keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = shutdown.wait_for(|stop| *stop) => {}
    }
    // Finish the request in progress, if any, then close.
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: &[&str]) -> Result<Args, String> {
        parse_args(v.iter().map(|s| s.to_string()))
    }

    #[test]
    fn defaults() {
        assert_eq!(parse(&[]).unwrap(), Args::default());
    }

    #[test]
    fn flags() {
        let a = parse(&[
            "--listen",
            "127.0.0.1:0",
            "--port-file=/tmp/x",
            "--conninfo",
            "host=/tmp port=5",
            "--pool-size",
            "3",
            "--max-connections=7",
            "--max-body-bytes",
            "10",
            "--header-timeout",
            "0.5",
            "--body-timeout",
            "2",
            "--queue-timeout",
            "3",
            "--max-databases",
            "4",
            "--tls-cert",
            "c.pem",
            "--tls-key",
            "k.pem",
        ])
        .unwrap();
        assert_eq!(a.listen, "127.0.0.1:0".parse().unwrap());
        assert_eq!(a.port_file, Some(PathBuf::from("/tmp/x")));
        assert_eq!(a.conninfo, "host=/tmp port=5");
        assert_eq!(a.pool_size, 3);
        assert_eq!(a.max_connections, 7);
        assert_eq!(a.max_body_bytes, 10);
        assert_eq!(a.header_timeout, Duration::from_millis(500));
        assert_eq!(a.body_timeout, Duration::from_secs(2));
        assert_eq!(a.queue_timeout, Duration::from_secs(3));
        assert_eq!(a.max_databases, 4);
        assert_eq!(a.tls_cert, Some(PathBuf::from("c.pem")));
    }

    #[test]
    fn bad_flags() {
        for v in [
            &["--listen"][..],
            &["--listen", "nope"],
            &["--pool-size", "0"],
            &["--pool-size", "-1"],
            &["--header-timeout", "0"],
            &["--body-timeout", "NaN"],
            &["--queue-timeout", "inf"],
            &["--tls-cert", "c.pem"],
            &["--bogus"],
        ] {
            assert!(parse(v).is_err(), "{v:?}");
        }
    }
}
