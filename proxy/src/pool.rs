//! One connection pool per database named in a URL, created on first use and
//! kept: a request must not pay for a Postgres connection (fork, auth) each
//! time, and the number of databases is bounded so that random names cannot
//! exhaust memory or Postgres' connection slots.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::Duration;

use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime, TimeoutType,
};
use tokio_postgres::config::Host;
use tokio_postgres::{Config, NoTls};

use crate::errors::{self, ProxyError};

#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub pool_size: usize,
    pub queue_timeout: Duration,
    pub max_databases: usize,
}

pub struct Pools {
    base: Config,
    settings: PoolSettings,
    pools: Mutex<HashMap<String, Pool>>,
}

/// Connecting to a local Postgres takes milliseconds; a host that does not
/// answer at all should not hold a request for the OS' TCP timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The connection settings shared by every database: `--conninfo`, then the
/// libpq environment variables for what it leaves out (tokio-postgres reads
/// no environment itself, but operators expect PGHOST and friends to work).
pub fn base_config(conninfo: &str, env: impl Fn(&str) -> Option<String>) -> Result<Config, String> {
    let mut config = if conninfo.trim().is_empty() {
        Config::new()
    } else {
        Config::from_str(conninfo).map_err(|e| format!("--conninfo: {e}"))?
    };
    if config.get_hosts().is_empty() {
        match env("PGHOST").filter(|h| !h.is_empty()) {
            Some(hosts) => {
                for h in hosts.split(',') {
                    // Config::host treats a value starting with '/' as a
                    // Unix-socket directory, as libpq does.
                    config.host(h);
                }
            }
            // libpq's default on Debian-built servers is the socket in
            // /var/run/postgresql; elsewhere TCP on localhost.
            None if Path::new("/var/run/postgresql").is_dir() => {
                config.host("/var/run/postgresql");
            }
            None => {
                config.host("localhost");
            }
        }
    }
    if config.get_ports().is_empty() {
        if let Some(port) = env("PGPORT").filter(|p| !p.is_empty()) {
            for p in port.split(',') {
                let p: u16 = p
                    .trim()
                    .parse()
                    .map_err(|_| format!("PGPORT: not a port: {p}"))?;
                config.port(p);
            }
        }
    }
    if config.get_user().is_none() {
        if let Some(user) = env("PGUSER").filter(|u| !u.is_empty()) {
            config.user(user);
        }
    }
    if config.get_password().is_none() {
        if let Some(password) = env("PGPASSWORD") {
            config.password(password);
        }
    }
    if config.get_application_name().is_none() {
        config.application_name("sequin-proxy");
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    Ok(config)
}

/// For the startup line: where the proxy connects, without user or password.
pub fn describe(config: &Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .map(|h| match h {
            Host::Tcp(name) => name.clone(),
            #[cfg(unix)]
            Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    let ports: Vec<String> = config.get_ports().iter().map(u16::to_string).collect();
    format!(
        "host={} port={}",
        hosts.join(","),
        if ports.is_empty() {
            "5432".to_string()
        } else {
            ports.join(",")
        }
    )
}

impl Pools {
    pub fn new(base: Config, settings: PoolSettings) -> Pools {
        Pools {
            base,
            settings,
            pools: Mutex::new(HashMap::new()),
        }
    }

    fn pool_for(&self, database: &str) -> Result<Pool, ProxyError> {
        // A poisoned lock only means another request panicked while holding
        // it; the map itself is still consistent.
        let mut pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(pool) = pools.get(database) {
            return Ok(pool.clone());
        }
        if pools.len() >= self.settings.max_databases {
            return Err(ProxyError::busy(format!(
                "the proxy already serves {} databases (--max-databases)",
                self.settings.max_databases
            )));
        }
        let mut config = self.base.clone();
        config.dbname(database);
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                // A broken connection shows up as a closed client; checking
                // each one with a query would double the round trips.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(self.settings.pool_size)
            .wait_timeout(Some(self.settings.queue_timeout))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(Duration::from_secs(5)))
            .runtime(Runtime::Tokio1)
            .build()
            .map_err(|e| {
                eprintln!("sequin-proxy: cannot build a pool for \"{database}\": {e}");
                ProxyError::bad_gateway("the proxy could not connect to the database")
            })?;
        pools.insert(database.to_string(), pool.clone());
        Ok(pool)
    }

    /// Forgets a database that turned out not to exist, so that names
    /// clients make up do not use up --max-databases.
    fn forget(&self, database: &str) {
        let mut pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(pool) = pools.get(database) {
            if pool.status().size == 0 {
                pool.close();
                pools.remove(database);
            }
        }
    }

    /// A connection to `database`, waiting at most --queue-timeout for one
    /// to come free.
    pub async fn get(&self, database: &str) -> Result<Object, ProxyError> {
        let pool = self.pool_for(database)?;
        match pool.get().await {
            Ok(client) => Ok(client),
            Err(PoolError::Timeout(TimeoutType::Wait)) => Err(ProxyError::busy(
                "no database connection came free in time (--queue-timeout)",
            )),
            Err(PoolError::Timeout(_)) => {
                eprintln!("sequin-proxy: connecting to database \"{database}\" timed out");
                Err(ProxyError::bad_gateway(
                    "the proxy could not connect to the database",
                ))
            }
            Err(PoolError::Backend(e)) => {
                let error = errors::from_connect_error(database, &e);
                if error.status == hyper::StatusCode::NOT_FOUND {
                    self.forget(database);
                }
                Err(error)
            }
            Err(e) => {
                eprintln!("sequin-proxy: no connection to database \"{database}\": {e}");
                Err(ProxyError::bad_gateway(
                    "the proxy could not connect to the database",
                ))
            }
        }
    }

    pub fn close_all(&self) {
        let pools = self.pools.lock().unwrap_or_else(|p| p.into_inner());
        for pool in pools.values() {
            pool.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn conninfo_wins_over_environment() {
        let c = base_config(
            "host=/tmp/sock port=5433 user=alice password=pw",
            env_of(&[
                ("PGHOST", "elsewhere"),
                ("PGPORT", "1"),
                ("PGUSER", "bob"),
                ("PGPASSWORD", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(c.get_hosts(), &[Host::Unix("/tmp/sock".into())]);
        assert_eq!(c.get_ports(), &[5433]);
        assert_eq!(c.get_user(), Some("alice"));
        assert_eq!(c.get_password(), Some(&b"pw"[..]));
        assert_eq!(c.get_application_name(), Some("sequin-proxy"));
        assert_eq!(describe(&c), "host=/tmp/sock port=5433");
    }

    #[test]
    fn environment_fills_gaps() {
        let c = base_config(
            "",
            env_of(&[
                ("PGHOST", "/run/pg"),
                ("PGPORT", "6000"),
                ("PGUSER", "bob"),
                ("PGPASSWORD", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(c.get_hosts(), &[Host::Unix("/run/pg".into())]);
        assert_eq!(c.get_ports(), &[6000]);
        assert_eq!(c.get_user(), Some("bob"));
        assert_eq!(c.get_password(), Some(&b"x"[..]));
        let c = base_config("host=127.0.0.1 application_name=other", env_of(&[])).unwrap();
        assert_eq!(c.get_hosts(), &[Host::Tcp("127.0.0.1".into())]);
        assert_eq!(c.get_application_name(), Some("other"));
    }

    #[test]
    fn bad_settings() {
        assert!(base_config("nonsense", env_of(&[])).is_err());
        assert!(base_config("host=x", env_of(&[("PGPORT", "abc")])).is_err());
    }

    #[tokio::test]
    async fn max_databases() {
        let pools = Pools::new(
            base_config("host=127.0.0.1 port=1", env_of(&[])).unwrap(),
            PoolSettings {
                pool_size: 2,
                queue_timeout: Duration::from_secs(1),
                max_databases: 2,
            },
        );
        assert!(pools.pool_for("a").is_ok());
        assert!(pools.pool_for("b").is_ok());
        assert!(pools.pool_for("a").is_ok());
        let e = pools.pool_for("c").unwrap_err();
        assert_eq!(e.status, 503);
        assert!(e.retry_after);
        // Nothing listens on port 1: a 502 that does not say why.
        let e = pools.get("a").await.unwrap_err();
        assert_eq!(e.status, 502);
        assert_eq!(e.message, "the proxy could not connect to the database");
    }
}
