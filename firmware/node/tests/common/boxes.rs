//! Real `shoal` boxes on a test bed: each runs `shoal run` in its own host of a [`Bed`] with a
//! config the test writes, and the test reads their `/api/status`, waits on it, fetches from
//! them with curl from inside their hosts, signals, kills and restarts them.
//!
//! [`Boxes`] owns the bed (its field `bed`, for whatever else the test runs there: an origin, a
//! headend, Avahi) and a scratch directory holding every config, key and log. Box `i` runs on
//! host `i`; hosts past the last box are the test's. Every status read goes through
//! [`Boxes::status`], which reads it as the daemon's own [`Status`] type (and fails the test
//! when the JSON served is not exactly what that type reads and writes back, [`read_json`]), and
//! the tests read it by field, with the readers below ([`alive_peers`], [`channel`], [`window`],
//! [`ingesting`], [`newest`]) where they read better.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use shoal::model::status::{ChannelStatus, Status};
use shoal_testbed::{Bed, ProcessId, Signal};

use super::{wait_until, Scratch};

/// The ports every box uses (each box has its own namespace).
pub(crate) const UDP_PORT: u16 = 7470;
pub(crate) const HTTP_PORT: u16 = 7471;

/// The key name of a [`BoxConfig`] that names none.
const DEFAULT_KEY: &str = "net";

/// How many lines of each log [`Boxes::logs`] shows.
const LOG_TAIL: usize = 15;

/// The `shoal` binary under test.
pub(crate) fn shoal() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_shoal"))
}

/// What one box gets besides the settings every box has (state directory, network key, ports,
/// `eth0`, debug logs): its key's name (boxes with the same name share a key), top-level keys
/// (before the first table), tables (after the common ones) and environment variables.
#[derive(Clone, Debug, Default)]
pub(crate) struct BoxConfig {
    key: Option<String>,
    top: String,
    tables: String,
    env: Vec<(String, String)>,
}

impl BoxConfig {
    /// A box with `tables` (TOML tables such as `[[channel]]`) after the common settings.
    pub(crate) fn new(tables: impl Into<String>) -> BoxConfig {
        BoxConfig { tables: tables.into(), ..BoxConfig::default() }
    }

    /// Uses the key `name` (made on first use as `<name>.key` in the scratch directory).
    pub(crate) fn key(mut self, name: &str) -> BoxConfig {
        self.key = Some(name.to_owned());
        self
    }

    /// Adds top-level settings (such as `board = "..."`), written before the first table.
    pub(crate) fn top(mut self, text: &str) -> BoxConfig {
        self.top.push_str(text);
        self
    }

    /// Runs the box with `name=value` in its environment.
    pub(crate) fn env(mut self, name: &str, value: &str) -> BoxConfig {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }
}

impl From<String> for BoxConfig {
    fn from(tables: String) -> BoxConfig {
        BoxConfig::new(tables)
    }
}

impl From<&str> for BoxConfig {
    fn from(tables: &str) -> BoxConfig {
        BoxConfig::new(tables)
    }
}

/// One box: its config file, environment and process (`None` once stopped or killed).
struct BoxSlot {
    config: PathBuf,
    env: Vec<(String, String)>,
    process: Option<ProcessId>,
}

/// One bed per test binary at a time, for [`Boxes::one_at_a_time`].
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Boxes on hosts `0..` of a bed; see the [module documentation](self).
pub(crate) struct Boxes {
    // Fields drop in order: the bed (every process) first, then the scratch directory, then
    // the turn, so that the next test's bed finds this one gone.
    /// The bed; box `i` runs on host `i`.
    pub(crate) bed: Bed,
    /// The scratch directory: configs, keys, logs, state; kept when a test fails.
    pub(crate) dir: PathBuf,
    boxes: Vec<BoxSlot>,
    _scratch: Scratch,
    _turn: Option<MutexGuard<'static, ()>>,
}

impl Boxes {
    /// A bed of `hosts` hosts and a fresh scratch directory named after `name`, with no box yet.
    pub(crate) fn new(name: &str, hosts: usize) -> Boxes {
        Boxes::build(name, hosts, None)
    }

    /// Like [`Boxes::new`], once no other test of this binary holds a bed made this way: boxes,
    /// an origin and players fill two cores, and the real-time judges must measure the boxes,
    /// not a second test competing with them.
    pub(crate) fn one_at_a_time(name: &str, hosts: usize) -> Boxes {
        // A test that failed while holding the turn poisons it; the next one may still run.
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        Boxes::build(name, hosts, Some(turn))
    }

    fn build(name: &str, hosts: usize, turn: Option<MutexGuard<'static, ()>>) -> Boxes {
        let bed = Bed::new(hosts).expect("test bed");
        let scratch = Scratch::new(name);
        Boxes { bed, dir: scratch.path().to_owned(), boxes: Vec::new(), _scratch: scratch, _turn: turn }
    }

    /// Starts one box per config, on the next free hosts.
    pub(crate) fn start<C: Into<BoxConfig>>(&mut self, configs: impl IntoIterator<Item = C>) -> &mut Boxes {
        for config in configs {
            self.add(config.into());
        }
        self
    }

    /// Starts one more box, on the next free host, and returns its index.
    pub(crate) fn add(&mut self, config: BoxConfig) -> usize {
        let i = self.boxes.len();
        let key = self.key_file(config.key.as_deref().unwrap_or(DEFAULT_KEY));
        let text = format!(
            "{top}state_dir = \"{dir}/state{i}\"\nnetwork_key_file = \"{key}\"\n\
             [net]\nudp_port = {UDP_PORT}\nhttp_port = {HTTP_PORT}\ninterfaces = [\"eth0\"]\n\
             [log]\nlevel = \"debug\"\n{tables}",
            top = config.top,
            dir = self.dir.display(),
            key = key.display(),
            tables = config.tables,
        );
        let path = self.config_file(i);
        std::fs::write(&path, text).expect("config written");
        self.boxes.push(BoxSlot { config: path, env: config.env, process: None });
        self.restart(i);
        i
    }

    /// The key file `<name>.key` in the scratch directory, made with `shoal keygen` if missing.
    pub(crate) fn key_file(&self, name: &str) -> PathBuf {
        let key = self.dir.join(format!("{name}.key"));
        if !key.exists() {
            let status = Command::new(shoal())
                .args(["keygen", "--out"])
                .arg(&key)
                .stdout(Stdio::null())
                .status()
                .expect("keygen runs");
            assert!(status.success(), "shoal keygen failed");
        }
        key
    }

    /// Box `i`'s config file, `box<i>.toml` (a test may rewrite it, then send SIGHUP).
    pub(crate) fn config_file(&self, i: usize) -> PathBuf {
        self.dir.join(format!("box{i}.toml"))
    }

    /// Box `i`'s log file, `box<i>.log`.
    pub(crate) fn log_file(&self, i: usize) -> PathBuf {
        self.dir.join(format!("box{i}.log"))
    }

    /// How many boxes were started, running or not.
    pub(crate) fn len(&self) -> usize {
        self.boxes.len()
    }

    /// Starts box `i` (again), with the config and environment it was given.
    pub(crate) fn restart(&mut self, i: usize) {
        let config = self.boxes[i].config.to_string_lossy().into_owned();
        let env: Vec<(&str, &str)> =
            self.boxes[i].env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let log = self.log_file(i);
        let process =
            self.bed.spawn(i, shoal(), &["run", "--config", &config], &env, &log).expect("shoal starts");
        self.boxes[i].process = Some(process);
    }

    /// Box `i`'s process, while it runs.
    fn process(&self, i: usize) -> ProcessId {
        self.boxes[i].process.unwrap_or_else(|| panic!("box {i} is not running"))
    }

    /// Kills box `i` with SIGKILL (a crash or a power cut) and reaps it; a box that already
    /// died (killed from outside, say) is only reaped.
    pub(crate) fn kill(&mut self, i: usize) {
        if let Some(p) = self.boxes[i].process.take() {
            let _ = self.bed.signal(p, Signal::Kill);
            let _ = self.bed.wait(p, Duration::from_secs(5));
        }
    }

    /// Stops box `i` politely (SIGTERM, SIGKILL after `grace`); how it exited.
    pub(crate) fn stop(&mut self, i: usize, grace: Duration) -> Option<ExitStatus> {
        let p = self.process(i);
        let status = self.bed.stop(p, grace).expect("stop");
        self.boxes[i].process = None;
        status
    }

    /// Sends `signal` to box `i`.
    pub(crate) fn signal(&mut self, i: usize, signal: Signal) {
        let p = self.process(i);
        self.bed.signal(p, signal).unwrap_or_else(|e| panic!("{signal:?} to box {i}: {e}"));
    }

    /// Box `i`'s PID.
    pub(crate) fn pid(&self, i: usize) -> u32 {
        self.bed.pid(self.process(i)).expect("pid")
    }

    /// How box `i`'s process ended, or `None` while it runs.
    pub(crate) fn exited(&mut self, i: usize) -> Option<ExitStatus> {
        let p = self.process(i);
        self.bed.wait(p, Duration::ZERO).expect("box process known")
    }

    /// Whether box `i`'s process still runs.
    pub(crate) fn alive(&mut self, i: usize) -> bool {
        self.boxes[i].process.is_some() && self.exited(i).is_none()
    }

    /// The boxes not stopped or killed.
    pub(crate) fn running(&self) -> Vec<usize> {
        (0..self.boxes.len()).filter(|&i| self.boxes[i].process.is_some()).collect()
    }

    /// `http://<box i>:7471<path>`.
    pub(crate) fn url(&self, i: usize, path: &str) -> String {
        format!("http://{}:{HTTP_PORT}{path}", self.bed.ip(i))
    }

    /// The command prefix that runs a program (a player) on host `i`.
    pub(crate) fn prefix(&self, i: usize) -> [&str; 4] {
        ["ip", "netns", "exec", self.bed.namespace(i)]
    }

    /// Box `i`'s `/api/status`, if it answers (`None`: no answer, or not a 2xx one). An answer
    /// that is not a [`Status`] fails the test ([`read_json`]).
    pub(crate) fn status(&self, i: usize) -> Option<Status> {
        self.status_from(i, &self.url(i, "/api/status"))
    }

    /// Box `i`'s `/api/status`, asked over its host's loopback (for when its LAN address
    /// changes), if it answers.
    pub(crate) fn status_over_loopback(&self, i: usize) -> Option<Status> {
        self.status_from(i, &format!("http://127.0.0.1:{HTTP_PORT}/api/status"))
    }

    fn status_from(&self, i: usize, url: &str) -> Option<Status> {
        let body = self.bed.http_get(i, url).ok()?;
        Some(read_json(&format!("box {i}'s {url}"), &body))
    }

    /// Waits until `check` holds for every running box's status (or `limit` passes); whether
    /// it held. Looks at least once.
    pub(crate) fn wait_all(&self, limit: Duration, check: impl Fn(&Status) -> bool) -> bool {
        wait_until(limit, || self.running().iter().all(|&i| self.status(i).is_some_and(|s| check(&s))))
    }

    /// Waits until every running box sees the others alive.
    pub(crate) fn wait_for_peers(&self, limit: Duration) {
        let n = self.running().len();
        let found = self.wait_all(limit, |s| alive_peers(s) + 1 >= n);
        assert!(found, "the boxes did not find each other:\n{}", self.logs());
    }

    /// The running boxes that ingest channel `name` now.
    pub(crate) fn ingesters(&self, name: &str) -> Vec<usize> {
        self.running().into_iter().filter(|&i| self.status(i).is_some_and(|s| ingesting(&s, name))).collect()
    }

    /// The box that ingests channel `name`, once one does.
    pub(crate) fn ingester(&self, name: &str, limit: Duration) -> usize {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(&i) = self.ingesters(name).first() {
                return i;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!("no box ingests {name}:\n{}", self.logs());
    }

    /// `curl` of `path` on box `i`, from inside its host: (status code, body); 0 when nothing
    /// answered.
    pub(crate) fn get(&self, i: usize, path: &str) -> (u16, Vec<u8>) {
        let url = self.url(i, path);
        let out = self
            .bed
            .exec(
                i,
                &["curl", "-s", "--max-time", "12", "-w", "\n%{http_code}", &url],
                Duration::from_secs(15),
            )
            .expect("curl runs");
        let mut body = out.stdout;
        let split = body.iter().rposition(|&b| b == b'\n').unwrap_or(0);
        let code = String::from_utf8_lossy(&body[split + 1..]).trim().parse().unwrap_or(0);
        body.truncate(split);
        (code, body)
    }

    /// Box `i`'s whole log.
    pub(crate) fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.log_file(i)).unwrap_or_default()
    }

    /// The last lines of every box's log, then of every other log in the scratch directory
    /// (an origin's, a headend's, Avahi's), for failure messages.
    pub(crate) fn logs(&self) -> String {
        let boxes: Vec<PathBuf> = (0..self.boxes.len()).map(|i| self.log_file(i)).collect();
        let mut others: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|entries| entries.filter_map(|e| Some(e.ok()?.path())).collect())
            .unwrap_or_default();
        others.retain(|p| p.extension().is_some_and(|e| e == "log") && !boxes.contains(p));
        others.sort();
        let mut text = String::new();
        for path in boxes.iter().chain(&others) {
            let log = std::fs::read_to_string(path).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(LOG_TAIL).collect();
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            text.push_str(&format!("--- {name}\n"));
            for line in tail.into_iter().rev() {
                text.push_str(line);
                text.push('\n');
            }
        }
        text.push_str(&format!("(all logs in {})", self.dir.display()));
        text
    }
}

// ---------------------------------------------------------------------------------------------
// Reading a status

/// `body`, a JSON document a box served (`what` names it in messages), read as `T` (a
/// [`Status`], a [`SwarmReport`](shoal::model::status::SwarmReport)). Fails the test, with the
/// body, when it does not read as `T`, and when `T` does not write back exactly the JSON served:
/// every struct of the status reads with `#[serde(default)]`, so a key the type lacks would
/// otherwise be dropped, and a key the box left out read as 0, `false` or empty, unseen.
pub(crate) fn read_json<T: DeserializeOwned + Serialize>(what: &str, body: &str) -> T {
    let typed: T = serde_json::from_str(body).unwrap_or_else(|e| {
        panic!("{what} does not read as a {} ({e}):\n{body}", std::any::type_name::<T>())
    });
    let served: Value = serde_json::from_str(body).expect("what read as a type reads as JSON");
    let again = serde_json::to_value(&typed).expect("a status writes as JSON");
    let mut differences = Vec::new();
    differ("", &served, &again, &mut differences);
    assert!(
        differences.is_empty(),
        "{what} is not what {} reads and writes back: {}\n{body}",
        std::any::type_name::<T>(),
        differences.join("; ")
    );
    typed
}

/// Where `served` and `typed` differ, as `<path>: served <a>, typed <b>` lines.
fn differ(path: &str, served: &Value, typed: &Value, out: &mut Vec<String>) {
    match (served, typed) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                match b.get(key) {
                    Some(other) => differ(&format!("{path}/{key}"), value, other, out),
                    None => out.push(format!("{path}/{key}: served {value}, not in the type")),
                }
            }
            for key in b.keys().filter(|k| !a.contains_key(*k)) {
                out.push(format!("{path}/{key}: in the type, not served"));
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (k, (x, y)) in a.iter().zip(b).enumerate() {
                differ(&format!("{path}/{k}"), x, y, out);
            }
        }
        (a, b) if a == b => {}
        (a, b) => out.push(format!("{path}: served {a}, typed {b}")),
    }
}

/// A status (or any part of one) as JSON, for failure messages.
pub(crate) fn json(value: &impl Serialize) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| format!("(not JSON: {e})"))
}

/// Peers a status sees alive.
pub(crate) fn alive_peers(status: &Status) -> usize {
    status.alive_peers().count()
}

/// The channel `name` (its id, its name, or its swarm id) in a status.
pub(crate) fn channel<'a>(status: &'a Status, name: &str) -> Option<&'a ChannelStatus> {
    status.channels.iter().find(|c| c.id == name || c.name == name || c.swarm_id == name)
}

/// Whether the box of this status ingests channel `name`.
pub(crate) fn ingesting(status: &Status, name: &str) -> bool {
    channel(status, name).is_some_and(|c| c.ingesting)
}

/// (seq, content digest) of the complete segments in a box's window of channel `name`.
pub(crate) fn window(status: &Status, name: &str) -> Vec<(u64, String)> {
    channel(status, name)
        .map(|c| c.window.iter().filter_map(|s| Some((s.seq, s.content.clone()?))).collect())
        .unwrap_or_default()
}

/// The newest segment number in a box's window of channel `name`, if it holds any.
pub(crate) fn newest(status: &Status, name: &str) -> Option<u64> {
    window(status, name).last().map(|w| w.0)
}
