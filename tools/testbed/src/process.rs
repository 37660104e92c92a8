//! Programs running inside a bed's hosts: starting them with a pid file, signalling them, waiting
//! for them, and killing everything at teardown.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::command::{self, wait_until, IP, KILL, SH, TIMEOUT};
use crate::system;
use crate::{Bed, BedError};

/// A program started by [`Bed::spawn`]: an index into that bed's process table.
///
/// It is only meaningful to the bed that returned it; another bed answers
/// [`BedError::NoSuchProcess`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProcessId {
    bed: u32,
    index: usize,
}

/// The signals a test sends to a program (through `kill -<NAME> <pid>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Signal {
    /// SIGTERM: the polite stop a service manager sends.
    Term,
    /// SIGKILL: cannot be caught; simulates a crash or a power cut.
    Kill,
    /// SIGHUP: conventionally "reload the configuration".
    Hup,
    /// SIGINT: Ctrl-C.
    Int,
}

impl Signal {
    /// The name `kill(1)` takes.
    fn name(self) -> &'static str {
        match self {
            Signal::Term => "TERM",
            Signal::Kill => "KILL",
            Signal::Hup => "HUP",
            Signal::Int => "INT",
        }
    }
}

/// How long a spawned program may run at most, unless [`Bed::set_process_lifetime`] says
/// otherwise. It bounds what survives a test process killed before its bed is dropped; ten
/// minutes is far more than a test needs and far less than a CI run lasts.
pub const DEFAULT_PROCESS_LIFETIME: Duration = Duration::from_secs(600);

/// How long [`Bed::spawn`] waits for the program's pid file: the time for `ip netns exec`,
/// `timeout` and `sh` to start, normally a few milliseconds.
const PID_FILE_WAIT: Duration = Duration::from_secs(5);

/// How long teardown lets programs handle SIGTERM before sending SIGKILL.
const TERM_GRACE: Duration = Duration::from_secs(2);

/// One spawned program.
#[derive(Debug)]
pub(crate) struct Spawned {
    /// `ip netns exec` → `timeout` (each `exec`s into the next, so this is the `timeout`
    /// process): it exits when the program exits, with the program's status.
    wrapper: Child,
    /// The real program's PID, written by `sh` just before it `exec`s the program.
    pid: u32,
    /// The exit status once reaped, kept so that later calls still see it.
    status: Option<ExitStatus>,
}

impl Spawned {
    /// The exit status if the program has exited (reaping the wrapper).
    fn poll(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.wrapper.try_wait().ok().flatten();
        }
        self.status
    }
}

/// The shell script that runs between `timeout` and the program: it records its own PID (which
/// `exec` hands to the program) in the pid file `$0`, then becomes the program, `"$@"`. Paths and
/// arguments travel as separate arguments, never inside the script text.
const RECORD_PID_AND_EXEC: &str = r#"echo $$ > "$0" && exec "$@""#;

impl Bed {
    /// Starts `program args` in `host`'s namespace, with the test's environment plus `env`, its
    /// stdin from `/dev/null` and its stdout and stderr appended to `log` (created if missing).
    ///
    /// The command line is `ip netns exec <ns> timeout --foreground -k 2 <lifetime> sh -c
    /// 'echo $$ > <pidfile> && exec "$@"' <pidfile> program args...`: every step `exec`s into
    /// the next, the `timeout` bounds the program's life (see [`Bed::set_process_lifetime`]) and
    /// passes its exit status through, and the pid file gives the real program's PID, which
    /// [`Bed::signal`] and teardown use. Returns once the program has its PID, before it has
    /// necessarily done anything: wait for a line in its log or a port to answer.
    ///
    /// `program` is looked up in `PATH` when it has no `/`.
    pub fn spawn(
        &mut self,
        host: usize,
        program: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        log: &Path,
    ) -> Result<ProcessId, BedError> {
        let namespace = self.host(host)?.namespace.clone();
        let ip = command::find(IP)?;
        let timeout = command::find(TIMEOUT)?;
        let sh = command::find(SH)?;
        if command::find_program(program).is_none() {
            return Err(BedError::MissingProgram(program.to_path_buf()));
        }
        let stdout = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| BedError::io(format!("cannot open log {}", log.display()), e))?;
        let stderr =
            stdout.try_clone().map_err(|e| BedError::io(format!("cannot share log {}", log.display()), e))?;
        let index = self.processes.len();
        let pid_file = self.scratch_file("pid");

        let mut command = Command::new(ip);
        command
            .args(["netns", "exec", &namespace])
            .arg(timeout)
            .args(["--foreground", "-k", "2"])
            .arg(command::seconds_for_timeout(self.lifetime))
            .arg(sh)
            .args(["-c", RECORD_PID_AND_EXEC])
            .arg(&pid_file)
            .arg(program)
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr);
        let line = command::describe(&command);
        let mut wrapper = command.spawn().map_err(|e| BedError::io(format!("cannot start `{line}`"), e))?;
        match read_pid_file(&pid_file, &mut wrapper) {
            Ok(pid) => {
                self.processes.push(Spawned { wrapper, pid, status: None });
                Ok(ProcessId { bed: self.number, index })
            }
            Err(error) => {
                // Ignoring errors: the wrapper may already have exited, which is why we are here.
                let _ = wrapper.kill();
                let _ = wrapper.wait();
                Err(error.with_command(&line, log))
            }
        }
    }

    /// Sends `signal` to the program (its real PID, not a wrapper's), with `kill -<SIG> <pid>`.
    ///
    /// Fails with [`BedError::NotRunning`] when the program has already exited, rather than risk
    /// signalling an unrelated process that reused its PID.
    pub fn signal(&mut self, process: ProcessId, signal: Signal) -> Result<(), BedError> {
        let spawned = self.process(process)?;
        if let Some(status) = spawned.poll() {
            return Err(BedError::NotRunning { process, status });
        }
        let pid = spawned.pid;
        let mut kill = Command::new(command::find(KILL)?);
        kill.arg(format!("-{}", signal.name())).arg("--").arg(pid.to_string());
        command::run_ok(kill, Duration::from_secs(5)).map(drop)
    }

    /// Waits up to `timeout` for the program to exit: `Ok(Some(status))` once it has (again on
    /// later calls), `Ok(None)` if it is still running.
    ///
    /// The status is the program's own: its exit code, or the signal that killed it. Exit code
    /// 124 (or SIGKILL) after [`Bed::set_process_lifetime`]'s limit means the lifetime ran out.
    pub fn wait(&mut self, process: ProcessId, timeout: Duration) -> Result<Option<ExitStatus>, BedError> {
        let spawned = self.process(process)?;
        if spawned.status.is_none() {
            spawned.status = wait_until(&mut spawned.wrapper, Instant::now() + timeout)
                .map_err(|e| BedError::io(format!("cannot wait for {process:?}"), e))?;
        }
        Ok(spawned.status)
    }

    /// Stops the program politely: SIGTERM, up to `grace` to exit, then SIGKILL (and up to 2 s
    /// more). Returns its exit status, or `None` if even SIGKILL did not end it in time. A
    /// program that had already exited just gives its status.
    pub fn stop(&mut self, process: ProcessId, grace: Duration) -> Result<Option<ExitStatus>, BedError> {
        match self.signal(process, Signal::Term) {
            Ok(()) | Err(BedError::NotRunning { .. }) => {}
            Err(error) => return Err(error),
        }
        if let Some(status) = self.wait(process, grace)? {
            return Ok(Some(status));
        }
        match self.signal(process, Signal::Kill) {
            Ok(()) | Err(BedError::NotRunning { .. }) => {}
            Err(error) => return Err(error),
        }
        self.wait(process, TERM_GRACE)
    }

    /// The real program's PID (inside the namespace, PIDs are the same as outside: the bed does
    /// not make PID namespaces). Useful to inspect `/proc/<pid>` from a test.
    pub fn pid(&self, process: ProcessId) -> Result<u32, BedError> {
        self.check_process(process).map(|index| self.processes[index].pid)
    }

    /// How long programs spawned from now on may run before `timeout` sends them SIGTERM (then
    /// SIGKILL 2 s later). Default: [`DEFAULT_PROCESS_LIFETIME`]. A zero duration is raised to
    /// 1 ms (`timeout` would read zero as "no limit").
    pub fn set_process_lifetime(&mut self, lifetime: Duration) {
        self.lifetime = lifetime;
    }

    fn check_process(&self, process: ProcessId) -> Result<usize, BedError> {
        if process.bed == self.number && process.index < self.processes.len() {
            Ok(process.index)
        } else {
            Err(BedError::NoSuchProcess(process))
        }
    }

    fn process(&mut self, process: ProcessId) -> Result<&mut Spawned, BedError> {
        let index = self.check_process(process)?;
        Ok(&mut self.processes[index])
    }

    /// Ends every process of the bed: the spawned programs and anything else found running in
    /// its namespaces (children they forked, leftovers of [`Bed::exec`]). SIGTERM first, except
    /// to the `timeout` wrappers, which would pass a second SIGTERM on; SIGKILL to whatever is
    /// left after [`TERM_GRACE`]; then the wrappers are reaped. Everything goes by PID.
    pub(crate) fn kill_everything(&mut self) {
        let wrappers: Vec<u32> = self.processes.iter().map(|p| p.wrapper.id()).collect();
        let mut targets: Vec<u32> =
            self.processes.iter_mut().filter_map(|p| p.poll().is_none().then_some(p.pid)).collect();
        targets
            .extend(system::pids_in_namespaces(&self.made).into_iter().filter(|pid| !wrappers.contains(pid)));
        targets.sort_unstable();
        targets.dedup();
        if targets.is_empty() {
            return;
        }
        system::signal_all(&targets, "TERM");

        let deadline = Instant::now() + TERM_GRACE;
        let mut pause = Duration::from_millis(1);
        loop {
            let programs_done = self.processes.iter_mut().all(|p| p.poll().is_some());
            if programs_done && system::pids_in_namespaces(&self.made).is_empty() {
                return;
            }
            if Instant::now() >= deadline {
                break;
            }
            thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(20));
        }

        let mut survivors = system::pids_in_namespaces(&self.made);
        for spawned in &mut self.processes {
            if spawned.poll().is_none() {
                survivors.extend([spawned.pid, spawned.wrapper.id()]);
            }
        }
        survivors.sort_unstable();
        survivors.dedup();
        system::signal_all(&survivors, "KILL");
        let deadline = Instant::now() + TERM_GRACE;
        for spawned in &mut self.processes {
            if spawned.status.is_none() {
                spawned.status = wait_until(&mut spawned.wrapper, deadline).ok().flatten();
            }
        }
    }
}

/// Waits for `sh` to write the program's PID, watching the wrapper in case it fails first
/// (a namespace gone, `timeout` missing...).
fn read_pid_file(path: &Path, wrapper: &mut Child) -> Result<u32, SpawnError> {
    let deadline = Instant::now() + PID_FILE_WAIT;
    let mut pause = Duration::from_millis(1);
    loop {
        // `echo` writes the number and its newline in one write: a line without its newline is
        // still being written.
        if let Ok(text) = fs::read_to_string(path) {
            if let Some(pid) = text.strip_suffix('\n').and_then(|n| n.trim().parse().ok()) {
                return Ok(pid);
            }
        }
        match wrapper.try_wait() {
            Ok(Some(status)) => return Err(SpawnError::Exited(status)),
            Ok(None) => {}
            Err(e) => return Err(SpawnError::Io(e)),
        }
        if Instant::now() >= deadline {
            return Err(SpawnError::NoPidFile(path.to_path_buf()));
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Why a spawn produced no PID, before the command line is known to the message.
enum SpawnError {
    Exited(ExitStatus),
    NoPidFile(PathBuf),
    Io(std::io::Error),
}

impl SpawnError {
    fn with_command(self, line: &str, log: &Path) -> BedError {
        match self {
            SpawnError::Exited(status) => BedError::CommandFailed {
                command: line.to_owned(),
                status,
                stderr: format!("exited before starting the program: see {}", log.display()),
            },
            SpawnError::NoPidFile(path) => BedError::TimedOut {
                command: line.to_owned(),
                after: PID_FILE_WAIT,
                output: format!("no pid in {} (log: {})", path.display(), log.display()),
            },
            SpawnError::Io(e) => BedError::io(format!("cannot wait for `{line}`"), e),
        }
    }
}
