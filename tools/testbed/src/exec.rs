//! Short commands inside a host: [`Bed::exec`] and [`Bed::http_get`].

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::command::{self, CURL, IP, TIMEOUT};
use crate::error::tail;
use crate::{Bed, BedError};

impl Bed {
    /// Runs `command` (program and arguments) in `host`'s namespace and returns its output,
    /// whatever its exit status: `timeout -k 2 <secs> ip netns exec <ns> command...`.
    ///
    /// When `timeout` runs out the command, and anything it started in its process group, gets
    /// SIGTERM, then SIGKILL 2 s later, and the result is [`BedError::TimedOut`] with the end of
    /// its output. A background process it leaves running must not keep its stdout or stderr
    /// open ([`BedError::OutputHeld`]); such leftovers are killed when the bed is dropped.
    pub fn exec(&self, host: usize, command: &[&str], timeout: Duration) -> Result<Output, BedError> {
        let namespace = &self.host(host)?.namespace;
        if command.is_empty() {
            return Err(BedError::InvalidArgument("exec: empty command".to_owned()));
        }
        let mut wrapped = Command::new(command::find(TIMEOUT)?);
        wrapped
            .args(["-k", "2"])
            .arg(command::seconds_for_timeout(timeout))
            .arg(command::find(IP)?)
            .args(["netns", "exec", namespace])
            .args(command);
        let line = command::describe(&wrapped);
        let started = Instant::now();
        // The outer limit is a backstop, should `timeout` itself hang.
        let output = command::run(wrapped, timeout + Duration::from_secs(5))?;
        let killed = output.status.code() == Some(124) || output.status.code().is_none();
        if killed && started.elapsed() >= timeout {
            let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&output.stderr));
            return Err(BedError::TimedOut {
                command: line,
                after: timeout,
                output: tail(&text, 2000).to_owned(),
            });
        }
        Ok(output)
    }

    /// Fetches `url` from inside `host`'s namespace with curl (at most 5 s, no proxy) and
    /// returns the body, lossily decoded as UTF-8.
    ///
    /// A connection failure is [`BedError::CommandFailed`] with curl's message; an answer whose
    /// status is not 2xx is [`BedError::Http`].
    pub fn http_get(&self, host: usize, url: &str) -> Result<String, BedError> {
        let curl = command::find(CURL)?;
        let curl = curl.to_string_lossy();
        // The status goes after the body, on a line of its own, so one call gives both.
        let command = [
            &*curl,
            "-sS",
            "--max-time",
            "5",
            "--noproxy",
            "*",
            "--globoff",
            "-o",
            "-",
            "-w",
            "\n%{http_code}",
            "--url",
            url,
        ];
        let output = self.exec(host, &command, Duration::from_secs(10))?;
        let output = command::check(format!("curl {url} (in host {host})"), output)?;
        let text = String::from_utf8_lossy(&output.stdout);
        let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
        let status: u16 = status.trim().parse().map_err(|_| BedError::CommandFailed {
            command: format!("curl {url} (in host {host})"),
            status: output.status,
            stderr: format!("no HTTP status in curl's output: {status:?}"),
        })?;
        if (200..300).contains(&status) {
            Ok(body.to_owned())
        } else {
            Err(BedError::Http { url: url.to_owned(), status, body: body.to_owned() })
        }
    }
}
