//! What the project's own servers (`sequin-mock`, `sequin-proxy`) do alike
//! as processes: read their flags, tell a test where they listen, and stop
//! on a signal.

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

/// Command-line flags as `--name value` or `--name=value`.
pub struct Flags<I: Iterator<Item = String>> {
    args: I,
    /// The value given with `=` to the flag just read.
    inline: Option<String>,
    usage: &'static str,
}

impl<I: Iterator<Item = String>> Flags<I> {
    pub fn new(args: I, usage: &'static str) -> Flags<I> {
        Flags { args, inline: None, usage }
    }

    /// The next flag's name.
    pub fn next_flag(&mut self) -> Option<String> {
        let arg = self.args.next()?;
        match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => {
                self.inline = Some(value.to_string());
                Some(name.to_string())
            }
            _ => {
                self.inline = None;
                Some(arg)
            }
        }
    }

    /// The value of the flag just read: after its `=`, else the next
    /// argument.
    pub fn value(&mut self, name: &str) -> Result<String, String> {
        self.inline.take().or_else(|| self.args.next()).ok_or_else(|| format!("{name} needs a value\n{}", self.usage))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn flags_take_their_values_either_way() {
        let args = ["--a=1", "--b", "2", "--c"].map(String::from);
        let mut flags = super::Flags::new(args.into_iter(), "usage");
        assert_eq!(flags.next_flag().as_deref(), Some("--a"));
        assert_eq!(flags.value("--a").unwrap(), "1");
        assert_eq!(flags.next_flag().as_deref(), Some("--b"));
        assert_eq!(flags.value("--b").unwrap(), "2");
        assert_eq!(flags.next_flag().as_deref(), Some("--c"));
        assert_eq!(flags.value("--c").unwrap_err(), "--c needs a value\nusage");
        assert_eq!(flags.next_flag(), None);
    }

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
