//! The harness the HTTP integration tests share: starts the real
//! `sequin-mock` binary on 127.0.0.1:0 and talks HTTP/1.1 to it over plain
//! TCP, the way the extension does. Each test file says `mod common;` and adds
//! its provider's own calls in an `impl Mock` block of its own.

// Every test file is its own crate and compiles this module on its own, so a
// helper that some file does not call would warn there as dead code.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;

pub struct Mock {
    pub child: Child,
    pub addr: String,
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The URL of one `rel` in the Link header.
    pub fn link(&self, rel: &str) -> Option<String> {
        self.header("link")?.split(", ").find_map(|part| {
            let (url, r) = part.split_once("; ")?;
            (r == format!("rel=\"{rel}\"")).then(|| url.trim_matches(['<', '>']).to_string())
        })
    }
}

/// A JSON request body: nothing for `Value::Null`.
pub fn body_text(body: &Value) -> String {
    if body.is_null() {
        String::new()
    } else {
        body.to_string()
    }
}

static STARTED: AtomicUsize = AtomicUsize::new(0);

impl Mock {
    pub fn start() -> Mock {
        Mock::spawn(&[]).0
    }

    /// Like `start`, but also has the binary write its URL to a
    /// `--port-file` and checks that the file agrees with stdout.
    pub fn start_with_port_file() -> Mock {
        let n = STARTED.fetch_add(1, Ordering::SeqCst);
        let port_file =
            std::env::temp_dir().join(format!("sequin-mock-test-{}-{n}.url", std::process::id()));
        let _ = std::fs::remove_file(&port_file);
        let (mock, url) = Mock::spawn(&[OsStr::new("--port-file"), port_file.as_os_str()]);
        assert!(url.starts_with("http://127.0.0.1:"), "{url}");
        assert_eq!(std::fs::read_to_string(&port_file).unwrap(), url);
        let _ = std::fs::remove_file(&port_file);
        mock
    }

    /// Runs the binary with `args` and reads the URL from its
    /// "listening on" line.
    fn spawn(args: &[&OsStr]) -> (Mock, String) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sequin-mock"))
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start sequin-mock");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .trim()
            .strip_prefix("sequin-mock listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_string();
        let mock = Mock {
            child,
            addr: url.trim_start_matches("http://").to_string(),
        };
        (mock, url)
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// One request on a fresh connection, waiting at most `timeout` for
    /// each read of the reply.
    pub fn raw(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &str,
        timeout: Duration,
    ) -> std::io::Result<Resp> {
        let mut stream = TcpStream::connect(&self.addr)?;
        stream.set_read_timeout(Some(timeout))?;
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.addr,
            body.len()
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        request.push_str(body);
        stream.write_all(request.as_bytes())?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        let text = String::from_utf8_lossy(&raw).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("no response: {text:?}"),
            )
        })?;
        let mut lines = head.lines();
        let status = lines.next().unwrap()[9..12].parse().unwrap();
        let headers = lines
            .filter_map(|l| l.split_once(": "))
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect();
        Ok(Resp {
            status,
            headers,
            body: body.to_string(),
        })
    }

    pub fn request(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Resp {
        self.raw(method, path, headers, body, Duration::from_secs(30))
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    /// A call on the admin interface with a JSON body.
    pub fn admin(&self, method: &str, path: &str, body: Value) -> Resp {
        self.request(
            method,
            path,
            &[("Content-Type", "application/json")],
            &body_text(&body),
        )
    }
}
