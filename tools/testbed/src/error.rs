//! The one error type of the test bed: every variant says what to fix or where to look.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use crate::ProcessId;

/// Why a bed operation failed.
///
/// Messages are meant to be read in a failing test's output, so each names the command, the
/// host or the tool involved.
#[derive(Debug)]
#[non_exhaustive]
pub enum BedError {
    /// This machine cannot run a bed at all: not root, no `ip`, or namespaces are not permitted.
    /// The same text is what [`skip_reason`](crate::skip_reason) returns.
    Unsupported(String),
    /// A tool the bed runs is not installed (nor found in `PATH`, `/usr/sbin` or `/sbin`).
    MissingTool {
        /// The executable's name, such as `nft`.
        tool: &'static str,
        /// The Debian package that provides it, such as `nftables`.
        package: &'static str,
    },
    /// The program given to [`Bed::spawn`](crate::Bed::spawn) does not exist or is not executable.
    MissingProgram(PathBuf),
    /// A host index past the bed's last host.
    NoSuchHost {
        /// The index asked for.
        host: usize,
        /// How many hosts the bed has.
        hosts: usize,
    },
    /// A [`ProcessId`] that this bed did not hand out.
    NoSuchProcess(ProcessId),
    /// [`Bed::signal`](crate::Bed::signal) on a process that has already exited.
    NotRunning {
        /// The process.
        process: ProcessId,
        /// How it ended.
        status: ExitStatus,
    },
    /// An argument outside what the bed supports (a loss above 100 %, too many hosts, an empty
    /// command).
    InvalidArgument(String),
    /// A command the bed ran exited unsuccessfully.
    CommandFailed {
        /// The command line, for the reader (not for a shell: arguments are passed separately).
        command: String,
        /// Its exit status.
        status: ExitStatus,
        /// What it wrote to stderr.
        stderr: String,
    },
    /// A command did not finish within its time limit and was killed.
    TimedOut {
        /// The command line.
        command: String,
        /// The limit it exceeded.
        after: Duration,
        /// The end of whatever it wrote to stdout and stderr before it was killed.
        output: String,
    },
    /// A command exited, but a process it left running in the background still holds its stdout
    /// or stderr open, so its output cannot be collected. Redirect that process's output (for
    /// example to `/dev/null` or a log file), or start it with [`Bed::spawn`](crate::Bed::spawn).
    OutputHeld {
        /// The command line.
        command: String,
    },
    /// [`Bed::http_get`](crate::Bed::http_get) got an answer whose status is not 2xx.
    Http {
        /// The URL asked for.
        url: String,
        /// The HTTP status of the answer.
        status: u16,
        /// The answer's body (lossily decoded as UTF-8).
        body: String,
    },
    /// An operating-system error: starting a process, opening a log, reading a pid file.
    Io {
        /// What the bed was doing.
        context: String,
        /// The error.
        source: io::Error,
    },
}

impl BedError {
    pub(crate) fn io(context: impl Into<String>, source: io::Error) -> Self {
        BedError::Io { context: context.into(), source }
    }
}

impl fmt::Display for BedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BedError::Unsupported(reason) => write!(f, "test bed unsupported here: {reason}"),
            BedError::MissingTool { tool, package } => {
                write!(f, "`{tool}` is not installed: `apt-get install {package}` (as root)")
            }
            BedError::MissingProgram(path) => {
                write!(f, "program `{}` not found or not executable (build it first?)", path.display())
            }
            BedError::NoSuchHost { host, hosts } => {
                write!(f, "no host {host}: the bed has {hosts} host(s), 0..{hosts}")
            }
            BedError::NoSuchProcess(process) => {
                write!(f, "{process:?} was not spawned by this bed")
            }
            BedError::NotRunning { process, status } => {
                write!(f, "{process:?} is no longer running ({status})")
            }
            BedError::InvalidArgument(message) => f.write_str(message),
            BedError::CommandFailed { command, status, stderr } => {
                write!(f, "`{command}` failed ({status}): {}", stderr.trim_end())
            }
            BedError::TimedOut { command, after, output } => {
                write!(f, "`{command}` did not finish within {after:?} and was killed")?;
                if !output.trim().is_empty() {
                    write!(f, "; its output ended with: {}", output.trim_end())?;
                }
                Ok(())
            }
            BedError::OutputHeld { command } => write!(
                f,
                "`{command}` exited, but a background process it started still holds its \
                 stdout/stderr: redirect that process's output or use Bed::spawn"
            ),
            BedError::Http { url, status, body } => {
                let body = tail(body, 300);
                write!(f, "GET {url} answered HTTP {status}: {body}")
            }
            BedError::Io { context, source } => write!(f, "{context}: {source}"),
        }
    }
}

impl std::error::Error for BedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            BedError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// The last `max` bytes of `text` (at a character boundary): the end of an output is where the
/// error usually is.
pub(crate) fn tail(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut start = text.len() - max;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}
