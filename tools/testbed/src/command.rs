//! Running the bed's helper tools (`ip`, `nft`, `tc`, `kill`, `curl`, `timeout`; `ffmpeg`,
//! `ffprobe`, `openssl` and `python3` for the HLS origin): finding them, and running each one
//! bounded in time with its output collected.

use std::env;
use std::ffi::OsStr;
use std::fs;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::error::{tail, BedError};

/// An executable the bed needs, and the Debian package that ships it (for the error message).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tool {
    pub(crate) name: &'static str,
    pub(crate) package: &'static str,
}

pub(crate) const IP: Tool = Tool { name: "ip", package: "iproute2" };
pub(crate) const TC: Tool = Tool { name: "tc", package: "iproute2" };
pub(crate) const NFT: Tool = Tool { name: "nft", package: "nftables" };
pub(crate) const CURL: Tool = Tool { name: "curl", package: "curl" };
pub(crate) const SYSCTL: Tool = Tool { name: "sysctl", package: "procps" };
pub(crate) const KILL: Tool = Tool { name: "kill", package: "procps" };
pub(crate) const TIMEOUT: Tool = Tool { name: "timeout", package: "coreutils" };
pub(crate) const SH: Tool = Tool { name: "sh", package: "dash" };
pub(crate) const CAT: Tool = Tool { name: "cat", package: "coreutils" };
pub(crate) const FLOCK: Tool = Tool { name: "flock", package: "util-linux" };
pub(crate) const FFMPEG: Tool = Tool { name: "ffmpeg", package: "ffmpeg" };
pub(crate) const FFPROBE: Tool = Tool { name: "ffprobe", package: "ffmpeg" };
pub(crate) const OPENSSL: Tool = Tool { name: "openssl", package: "openssl" };
pub(crate) const PYTHON3: Tool = Tool { name: "python3", package: "python3" };

/// Where system tools live on Debian even when a non-login root shell's `PATH` lacks them.
const SYSTEM_DIRS: [&str; 4] = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"];

/// The absolute path of `tool`, from `PATH` or the usual system directories.
pub(crate) fn find(tool: Tool) -> Result<PathBuf, BedError> {
    find_program(tool.name).ok_or(BedError::MissingTool { tool: tool.name, package: tool.package })
}

/// Resolves `name` as a shell would: a name with a `/` is a path, others are looked up in `PATH`
/// (then the system directories).
pub(crate) fn find_program(name: impl AsRef<Path>) -> Option<PathBuf> {
    let name = name.as_ref();
    if name.as_os_str().is_empty() {
        return None;
    }
    if name.to_string_lossy().contains('/') {
        return is_executable(name).then(|| name.to_path_buf());
    }
    let path = env::var_os("PATH").unwrap_or_default();
    env::split_paths(&path)
        .chain(SYSTEM_DIRS.iter().map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    fs::metadata(path).is_ok_and(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
}

/// `command` as a person would type it, for error messages only (never given to a shell).
pub(crate) fn describe(command: &Command) -> String {
    let mut words = vec![command.get_program().to_string_lossy().into_owned()];
    words.extend(command.get_args().map(quote));
    words.join(" ")
}

fn quote(word: &OsStr) -> String {
    let word = word.to_string_lossy();
    let plain =
        !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c));
    if plain {
        word.into_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// How long a command's output may stay open after the command exited: longer means a process
/// it left in the background holds the pipe, and waiting for it could take forever.
const OUTPUT_GRACE: Duration = Duration::from_secs(2);

/// Runs `command` with stdin from `/dev/null`, collecting stdout and stderr, and kills it (by its
/// PID, SIGKILL) if it has not exited after `limit`. A non-zero exit is not an error here: see
/// [`check`].
pub(crate) fn run(mut command: Command, limit: Duration) -> Result<Output, BedError> {
    let line = describe(&command);
    command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().map_err(|e| BedError::io(format!("cannot start `{line}`"), e))?;
    let stdout = read_in_background(child.stdout.take());
    let stderr = read_in_background(child.stderr.take());
    let status = match wait_until(&mut child, Instant::now() + limit)
        .map_err(|e| BedError::io(format!("cannot wait for `{line}`"), e))?
    {
        Some(status) => status,
        None => {
            // Ignoring errors: the child may have exited between the last poll and now.
            let _ = child.kill();
            let _ = child.wait();
            let grace = Duration::from_millis(500);
            let mut output = stdout.recv_timeout(grace).unwrap_or_default();
            output.extend(stderr.recv_timeout(grace).unwrap_or_default());
            return Err(BedError::TimedOut {
                command: line,
                after: limit,
                output: tail(&String::from_utf8_lossy(&output), 2000).to_owned(),
            });
        }
    };
    let deadline = Instant::now() + OUTPUT_GRACE;
    let collect = |pipe: mpsc::Receiver<Vec<u8>>| {
        pipe.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .map_err(|_| BedError::OutputHeld { command: line.clone() })
    };
    let stdout = collect(stdout)?;
    let stderr = collect(stderr)?;
    Ok(Output { status, stdout, stderr })
}

/// [`run`], then an error unless the command exited with status 0.
pub(crate) fn run_ok(command: Command, limit: Duration) -> Result<Output, BedError> {
    let line = describe(&command);
    let output = run(command, limit)?;
    check(line, output)
}

/// `output` if its command succeeded, else [`BedError::CommandFailed`] with its stderr.
pub(crate) fn check(command: String, output: Output) -> Result<Output, BedError> {
    if output.status.success() {
        Ok(output)
    } else {
        Err(BedError::CommandFailed {
            command,
            status: output.status,
            stderr: tail(&String::from_utf8_lossy(&output.stderr), 2000).to_owned(),
        })
    }
}

/// Reads a pipe to its end on a thread of its own, so that a full stderr pipe cannot block the
/// child while we wait on stdout. The thread ends when every writer has closed the pipe.
fn read_in_background(pipe: Option<impl Read + Send + 'static>) -> mpsc::Receiver<Vec<u8>> {
    let (sender, receiver) = mpsc::channel();
    match pipe {
        Some(mut pipe) => {
            thread::spawn(move || {
                let mut bytes = Vec::new();
                // A read error ends the output early; what was read is still worth showing.
                let _ = pipe.read_to_end(&mut bytes);
                let _ = sender.send(bytes);
            });
        }
        None => {
            let _ = sender.send(Vec::new());
        }
    }
    receiver
}

/// Polls `child` until it exits or `deadline` passes (then `None`). Polling starts at 1 ms, as
/// most of the bed's commands take a few milliseconds, and backs off to 20 ms.
pub(crate) fn wait_until(child: &mut Child, deadline: Instant) -> std::io::Result<Option<ExitStatus>> {
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// `duration` in the form `timeout(1)` accepts: seconds with a fraction, never zero (which would
/// mean "no limit").
pub(crate) fn seconds_for_timeout(duration: Duration) -> String {
    format!("{:.3}", duration.as_secs_f64().max(0.001))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_tool_names_its_package() {
        let missing = Tool { name: "shoal-testbed-no-such-tool", package: "shoal-imaginary-package" };
        let error = find(missing).unwrap_err();
        assert_eq!(
            error.to_string(),
            "`shoal-testbed-no-such-tool` is not installed: \
             `apt-get install shoal-imaginary-package` (as root)"
        );
        assert!(find(SH).is_ok());
    }

    #[test]
    fn descriptions_quote_what_a_shell_would_split() {
        let mut command = Command::new("nft");
        command.args(["list", "table x", "it's"]);
        assert_eq!(describe(&command), r"nft list 'table x' 'it'\''s'");
    }
}
