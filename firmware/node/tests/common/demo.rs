//! A running `shoal demo` (three boxes on 127.0.0.1, no mDNS), as a newcomer starts it: every
//! line it prints arrives on a channel, and it is stopped when dropped, also when a test panics.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long the demo may take to print its `Try:` line (its boxes up, the channel ready).
const START_LIMIT: Duration = Duration::from_secs(30);

/// A running `shoal demo`; see the [module documentation](self).
pub(crate) struct Demo {
    /// `timeout`, which runs the demo (through the command prefix, if any).
    child: Child,
    lines: mpsc::Receiver<String>,
    /// Every line read so far.
    pub(crate) seen: Vec<String>,
}

impl Demo {
    /// Starts the demo after `prefix` (empty, or e.g. `ip netns exec <ns>`) with HTTP ports
    /// from `port`, for at most `seconds` (and `timeout` 10 s later).
    pub(crate) fn start(prefix: &[&str], port: u16, seconds: u32) -> Demo {
        let mut child = Command::new("timeout")
            .args(["-k", "5", &(seconds + 10).to_string()])
            .args(prefix)
            .arg(env!("CARGO_BIN_EXE_shoal"))
            .args(["demo", "--seconds", &seconds.to_string(), "--port", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("demo starts");
        let stdout = child.stdout.take().expect("piped");
        let (tx, lines) = mpsc::channel();
        // Ends when the demo closes its stdout.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Demo { child, lines, seen: Vec::new() }
    }

    /// Reads lines until one satisfies `done`; panics after `within`. Returns that line's index
    /// in [`Demo::seen`].
    pub(crate) fn wait_for(&mut self, what: &str, within: Duration, done: impl Fn(&str) -> bool) -> usize {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let hit = done(&line);
                    self.seen.push(line);
                    if hit {
                        return self.seen.len() - 1;
                    }
                }
                Err(_) => {
                    panic!("{what}: not within {within:?}; the demo printed:\n{}", self.seen.join("\n"))
                }
            }
        }
    }

    /// Waits up to `within` for the `Try:` line and returns its index in [`Demo::seen`].
    pub(crate) fn wait_for_try(&mut self, within: Duration) -> usize {
        self.wait_for("the Try: line", within, |l| l.starts_with("Try:"))
    }

    /// The playlist URL of each box, as the demo printed them before its `Try:` line (the
    /// fourth word of its `box N: play <url>` lines, which tools/bench reads too).
    pub(crate) fn urls(&mut self) -> Vec<String> {
        let try_line = self.wait_for_try(START_LIMIT);
        self.seen[..try_line]
            .iter()
            .filter_map(|l| l.split_whitespace().nth(3))
            .filter(|w| w.ends_with("index.m3u8"))
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        super::stop_gracefully(&mut self.child);
    }
}
