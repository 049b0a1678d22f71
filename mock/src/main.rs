//! `sequin-mock [--listen 127.0.0.1:0] [--port-file PATH]`

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use sequin_mock::App;
use sequin_serve::{write_port_file, Flags, ShutdownSignals};

// See Cargo.toml.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Args {
    listen: SocketAddr,
    port_file: Option<PathBuf>,
}

const USAGE: &str = "usage: sequin-mock [--listen 127.0.0.1:0] [--port-file PATH]";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        listen: "127.0.0.1:0".parse().expect("valid default address"),
        port_file: None,
    };
    let mut flags = Flags::new(std::env::args().skip(1), USAGE);
    while let Some(name) = flags.next_flag() {
        match name.as_str() {
            "--listen" => {
                let v = flags.value(&name)?;
                args.listen = v
                    .parse()
                    .map_err(|_| format!("--listen: not an address like 127.0.0.1:0: {v}"))?;
            }
            "--port-file" => args.port_file = Some(PathBuf::from(flags.value(&name)?)),
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument: {other}\n{USAGE}")),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("{msg}");
            return ExitCode::from(2);
        }
    };
    let mut signals = match ShutdownSignals::install() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("sequin-mock: cannot install signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match sequin_mock::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("sequin-mock: cannot listen on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    let addr = listener.local_addr().expect("bound socket has an address");
    let url = format!("http://{addr}");
    if let Some(path) = &args.port_file {
        if let Err(e) = write_port_file(path, &url) {
            eprintln!("sequin-mock: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    println!("sequin-mock listening on {url}");

    let log_requests = std::env::var("SEQUIN_MOCK_LOG").is_ok_and(|v| v == "1");
    let app = Arc::new(App::new(log_requests));
    tokio::select! {
        _ = sequin_mock::serve(listener, app) => {}
        _ = signals.received() => {}
    }
    ExitCode::SUCCESS
}
