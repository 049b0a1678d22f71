//! What the project's own servers (`sequin-mock`, `sequin-proxy`) do alike
//! as processes: tell a test where they listen, and stop on a signal.

use std::path::Path;

use tokio::signal::unix::{signal, Signal, SignalKind};

/// Writes the file in one step (rename), so a reader polling for it never
/// sees half a URL.
pub fn write_port_file(path: &Path, url: &str) -> std::io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, url)?;
    std::fs::rename(&tmp, path)
}

/// SIGTERM and SIGINT. Installed before the "listening" line, so a SIGTERM
/// sent as soon as that line appears already finds the handler.
pub struct ShutdownSignals {
    term: Signal,
    int: Signal,
}

impl ShutdownSignals {
    pub fn install() -> std::io::Result<ShutdownSignals> {
        Ok(ShutdownSignals { term: signal(SignalKind::terminate())?, int: signal(SignalKind::interrupt())? })
    }

    /// Waits for either signal.
    pub async fn received(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_port_file_appears_whole() {
        let dir = std::env::temp_dir().join(format!("sequin-serve-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("url");
        super::write_port_file(&path, "http://127.0.0.1:1").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "http://127.0.0.1:1");
        assert!(!dir.join("url.tmp").exists());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
