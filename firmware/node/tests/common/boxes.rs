//! A set of real `shoal` boxes on a test bed: each runs `shoal run` in its own namespace with a
//! config the test writes, and the test reads their `/api/status`, waits on it, fetches from
//! them with curl from inside their hosts, and kills them.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use shoal_testbed::{Bed, ProcessId, Signal};

/// The ports every box uses (each box has its own namespace).
pub(crate) const UDP_PORT: u16 = 7470;
pub(crate) const HTTP_PORT: u16 = 7471;

/// The `shoal` binary under test.
pub(crate) fn shoal() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_shoal"))
}

/// Boxes on hosts `0..n` of a bed.
pub(crate) struct Boxes {
    pub(crate) dir: PathBuf,
    processes: Vec<Option<ProcessId>>,
    configs: Vec<PathBuf>,
}

impl Boxes {
    /// Starts `configs.len()` boxes on hosts `0..`, box `i` with the common settings (state
    /// directory, network key, ports, `eth0`, debug logs) plus `configs[i]`.
    pub(crate) fn start(bed: &mut Bed, dir: &Path, configs: &[String]) -> Boxes {
        let key = dir.join("net.key");
        if !key.exists() {
            let status =
                Command::new(shoal()).args(["keygen", "--out"]).arg(&key).status().expect("keygen runs");
            assert!(status.success(), "shoal keygen failed");
        }
        let mut boxes = Boxes { dir: dir.to_owned(), processes: Vec::new(), configs: Vec::new() };
        for (i, extra) in configs.iter().enumerate() {
            let config = format!(
                "state_dir = \"{dir}/state{i}\"\nnetwork_key_file = \"{key}\"\n\
                 [net]\nudp_port = {UDP_PORT}\nhttp_port = {HTTP_PORT}\ninterfaces = [\"eth0\"]\n\
                 [log]\nlevel = \"debug\"\n{extra}",
                dir = dir.display(),
                key = key.display()
            );
            let path = dir.join(format!("box{i}.toml"));
            std::fs::write(&path, config).expect("config written");
            boxes.configs.push(path);
            boxes.processes.push(None);
            boxes.restart(bed, i);
        }
        boxes
    }

    /// Starts box `i` (again), with the config it was given.
    pub(crate) fn restart(&mut self, bed: &mut Bed, i: usize) {
        let log = self.dir.join(format!("box{i}.log"));
        let config = self.configs[i].to_string_lossy().into_owned();
        let process = bed.spawn(i, shoal(), &["run", "--config", &config], &[], &log).expect("shoal starts");
        self.processes[i] = Some(process);
    }

    /// Kills box `i` with SIGKILL: a crash or a power cut.
    pub(crate) fn kill(&mut self, bed: &mut Bed, i: usize) {
        if let Some(p) = self.processes[i].take() {
            bed.signal(p, Signal::Kill).expect("kill");
            let _ = bed.wait(p, Duration::from_secs(5));
        }
    }

    /// Whether box `i`'s process still runs.
    pub(crate) fn alive(&self, bed: &mut Bed, i: usize) -> bool {
        self.processes[i].is_some_and(|p| matches!(bed.wait(p, Duration::ZERO), Ok(None)))
    }

    /// The boxes not killed.
    pub(crate) fn running(&self) -> Vec<usize> {
        (0..self.processes.len()).filter(|&i| self.processes[i].is_some()).collect()
    }

    /// `http://<box i>:7471<path>`.
    pub(crate) fn url(&self, bed: &Bed, i: usize, path: &str) -> String {
        format!("http://{}:{HTTP_PORT}{path}", bed.ip(i))
    }

    /// Box `i`'s `/api/status`, if it answers.
    pub(crate) fn status(&self, bed: &Bed, i: usize) -> Option<Value> {
        let body = bed.http_get(i, &self.url(bed, i, "/api/status")).ok()?;
        serde_json::from_str(&body).ok()
    }

    /// Waits until `check` holds for every running box's status.
    pub(crate) fn wait_all(&self, bed: &Bed, limit: Duration, check: impl Fn(&Value) -> bool) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if self.running().iter().all(|&i| self.status(bed, i).is_some_and(|s| check(&s))) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        false
    }

    /// Waits until every box sees the others alive.
    pub(crate) fn wait_for_peers(&self, bed: &Bed, limit: Duration) {
        let n = self.running().len();
        let found = self.wait_all(bed, limit, |s| alive_peers(s) + 1 >= n);
        assert!(found, "the boxes did not find each other:\n{}", self.logs());
    }

    /// The channel `name` (its id, or its swarm id) in a status.
    pub(crate) fn channel<'a>(status: &'a Value, name: &str) -> Option<&'a Value> {
        status["channels"]
            .as_array()?
            .iter()
            .find(|c| c["id"] == name || c["name"] == name || c["swarm_id"] == name)
    }

    /// The running boxes that ingest channel `name` now.
    pub(crate) fn ingesters(&self, bed: &Bed, name: &str) -> Vec<usize> {
        self.running()
            .into_iter()
            .filter(|&i| {
                self.status(bed, i)
                    .is_some_and(|s| Boxes::channel(&s, name).is_some_and(|c| c["ingesting"] == true))
            })
            .collect()
    }

    /// The box that ingests channel `name`, once one does.
    pub(crate) fn ingester(&self, bed: &Bed, name: &str, limit: Duration) -> usize {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(&i) = self.ingesters(bed, name).first() {
                return i;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        panic!("no box ingests {name}:\n{}", self.logs());
    }

    /// `curl` from inside box `i`'s host: (status code, body).
    pub(crate) fn get(&self, bed: &Bed, i: usize, path: &str) -> (u16, Vec<u8>) {
        curl(bed, i, &self.url(bed, i, path))
    }

    /// The last lines of every box's log, for failure messages.
    pub(crate) fn logs(&self) -> String {
        log_tails(&self.dir, self.processes.len(), 15)
    }
}

/// `curl` of `url` from inside host `i`: (status code, body); 0 when nothing answered.
pub(crate) fn curl(bed: &Bed, i: usize, url: &str) -> (u16, Vec<u8>) {
    let out = bed
        .exec(i, &["curl", "-s", "--max-time", "12", "-w", "\n%{http_code}", url], Duration::from_secs(15))
        .expect("curl runs");
    let mut body = out.stdout;
    let split = body.iter().rposition(|&b| b == b'\n').unwrap_or(0);
    let code = String::from_utf8_lossy(&body[split + 1..]).trim().parse().unwrap_or(0);
    body.truncate(split);
    (code, body)
}

/// The last `lines` lines of `box0.log` .. `box<n-1>.log` in `dir`, for failure messages.
pub(crate) fn log_tails(dir: &Path, boxes: usize, lines: usize) -> String {
    (0..boxes)
        .map(|i| {
            let log = std::fs::read_to_string(dir.join(format!("box{i}.log"))).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(lines).collect();
            format!("--- box {i}\n{}", tail.into_iter().rev().collect::<Vec<_>>().join("\n"))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Peers a status sees alive.
pub(crate) fn alive_peers(status: &Value) -> usize {
    status["peers"].as_array().map_or(0, |p| p.iter().filter(|p| p["alive"] == true).count())
}
