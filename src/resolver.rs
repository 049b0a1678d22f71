//! Host names looked up for reqwest on a short-lived thread that blocks
//! every signal (`threads`). reqwest's own resolver runs getaddrinfo on
//! tokio's blocking threads, which a backend started with its own signal
//! mask: a signal to the backend could then run Postgres's handler on one
//! of them, beside the backend's thread.

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::ToSocketAddrs;

pub struct Resolver;

impl Resolve for Resolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        let (sender, receiver) = tokio::sync::oneshot::channel();
        // (A lookup nobody waits for any more still ends; its thread too.)
        let started = crate::threads::spawn("sequin lookup", move || {
            // The port is reqwest's to set.
            let _ = sender.send((host.as_str(), 0).to_socket_addrs());
        });
        Box::pin(async move {
            started?;
            let addresses = receiver.await.map_err(|_| "the host name lookup ended without an answer")??;
            Ok(Box::new(addresses) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn localhost_is_looked_up_and_an_unknown_name_is_an_error() {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let found: Vec<std::net::SocketAddr> =
            runtime.block_on(Resolver.resolve("localhost".parse().unwrap())).unwrap().collect();
        assert!(!found.is_empty() && found.iter().all(|a| a.ip().is_loopback()), "{found:?}");
        assert!(runtime.block_on(Resolver.resolve("no-such-host.invalid".parse().unwrap())).is_err());
    }
}
