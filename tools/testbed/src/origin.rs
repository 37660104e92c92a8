//! A live HLS origin inside a bed host: ffmpeg replays a clip encoded once (see
//! [`encode_clip`](crate::encode_clip)) in a loop as live HLS, and `origin.py` (next to this
//! crate's `Cargo.toml`) serves it over HTTP or HTTPS with an access log and injectable faults.
//!
//! An origin started in directory `dir` owns these paths there:
//!
//! | path | what |
//! |------|------|
//! | `www/<variant>/index.m3u8` | a variant's live media playlist (6 segments, [`SEGMENT_SECONDS`] each) |
//! | `www/<variant>/seg<N>.ts` | its MPEG-TS segments, `N` counting up from 0 |
//! | `www/<variant>/init.mp4`, `seg<N>.m4s` | instead, with [`OriginOptions::fmp4`]: init segment, fMP4 segments |
//! | `www/master.m3u8` | the master playlist, when [`OriginOptions::variants`] is set |
//! | `origin-access.log` | the server's access log: [`Origin::fetch_log`] |
//! | `origin-control` | the fault the server injects: [`Origin::set_fault`] |
//! | `origin-ffmpeg-<variant>.log` | each ffmpeg's warnings and errors |
//! | `origin-server-<n>.log` | the server's output, one file per start |
//!
//! plus the cached clips (`clip-<w>x<h>-<kbps>k.ts`) unless [`OriginOptions::clip_dir`] puts
//! them elsewhere. ffmpeg writes each segment under a temporary name and renames it when it is
//! complete, then lists it in the playlist, which it also replaces by renaming; it deletes a
//! segment once it is one segment past the playlist's window. `seg<N>` numbers are the
//! playlist's media sequence numbers.
//!
//! [`Origin::start_static`] runs the same server over fixed files (an on-demand asset from
//! [`encode_vod_asset`](crate::encode_vod_asset)), with no ffmpeg.
//!
//! A minimal test:
//!
//! ```no_run
//! use std::time::Duration;
//! use shoal_testbed::{skip_reason, Bed, Origin, OriginOptions};
//!
//! if let Some(reason) = skip_reason() {
//!     eprintln!("skipped: {reason}");
//!     return;
//! }
//! let dir = std::env::temp_dir().join(format!("origin-example-{}", std::process::id()));
//! let mut bed = Bed::new(2).unwrap();
//! let origin = Origin::start(&mut bed, 0, &dir, OriginOptions::default()).unwrap();
//! origin.wait_for_segments(3, Duration::from_secs(15)).unwrap();
//! let url = origin.playlist_url(); // http://10.99.0.1:8080/live/index.m3u8
//! let playlist = bed.http_get(1, &url).unwrap();
//! assert!(playlist.contains("#EXT-X-MEDIA-SEQUENCE"));
//! let log = origin.wait_for_requests(1, Duration::from_secs(1)).unwrap();
//! assert_eq!((log[0].path.as_str(), log[0].status), ("/live/index.m3u8", 200));
//! ```

use std::collections::BTreeMap;
use std::fs;
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::ca::TestCa;
use crate::command::{self, FFMPEG, PYTHON3};
use crate::error::tail;
use crate::media::{self, ClipSpec, AUDIO_KBPS, FRAME_RATE, GOP_SECONDS};
use crate::{Bed, BedError, ProcessId, Signal};

/// The target duration of the origin's segments (`-hls_time`), equal to the clips' GOP.
pub const SEGMENT_SECONDS: u32 = GOP_SECONDS;
/// How many segments a live media playlist lists (`-hls_list_size`).
pub const PLAYLIST_SEGMENTS: u32 = 6;
/// The variant an origin serves when [`OriginOptions::variants`] is empty.
pub const DEFAULT_VARIANT: &str = "live";
/// The port an origin listens on unless [`OriginOptions::port`] says otherwise.
pub const DEFAULT_PORT: u16 = 8080;

/// The server script, found through this crate's source directory at compile time.
const ORIGIN_PY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/origin.py");
/// How long the server may take to listen: python starts in about 50 ms.
const SERVER_START_LIMIT: Duration = Duration::from_secs(10);
/// How long the server may take to exit after SIGTERM before it gets SIGKILL.
const SERVER_STOP_LIMIT: Duration = Duration::from_secs(5);
/// The line `origin.py` prints once it listens.
const SERVING: &str = "origin.py: serving";

/// How to run an [`Origin`]. `OriginOptions::default()`: one MPEG-TS variant `live` of
/// [`ClipSpec::SMALL`], plain HTTP on port [`DEFAULT_PORT`], clips cached in the origin's
/// directory.
#[derive(Clone, Debug, Default)]
pub struct OriginOptions {
    /// The port to listen on (all of the host's addresses); 0 means [`DEFAULT_PORT`].
    pub port: u16,
    /// Serve HTTPS with this CA's server certificate, which must be for the origin host's
    /// address.
    pub tls: Option<TestCa>,
    /// fMP4 segments (`init.mp4` + `seg<N>.m4s`) instead of MPEG-TS. The video is copied from
    /// the clip but the audio is re-encoded live (AAC, a few % of one core): ffmpeg 5.1 cannot
    /// loop a clip through the `aac_adtstoasc` filter that copying ADTS audio into MP4 needs
    /// (after the first loop the filter rejects every packet and the audio stops).
    pub fmp4: bool,
    /// The variants, by name (a plain path segment such as `low`) and clip, one ffmpeg each,
    /// listed in this order in a static `master.m3u8`. Empty: the one variant
    /// [`DEFAULT_VARIANT`] of [`ClipSpec::SMALL`], and no master playlist.
    pub variants: Vec<(String, ClipSpec)>,
    /// Where to find or make the clips ([`encode_clip`](crate::encode_clip) with the name
    /// `clip`); `None`: the origin's directory. A directory shared between tests and runs, such
    /// as `env!("CARGO_TARGET_TMPDIR")`, saves a second or so of encoding per clip.
    pub clip_dir: Option<PathBuf>,
}

/// The fault the origin's server injects into media segment answers, from the next request on
/// ([`Origin::set_fault`]).
///
/// A media segment is a `.ts` or `.m4s` file; its number is the last run of digits in its name
/// before the extension (`seg12.ts` and `seg12.m4s` are 12). Playlists, the init segment and
/// HEAD requests are never touched.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Fault {
    /// Every answer whole.
    #[default]
    None,
    /// For segments whose number `n` has `n % every == 0`: the full `Content-Length` is
    /// announced, half the body is sent, then the connection is closed, as when an origin dies
    /// mid-answer. Clients see a body shorter than announced (curl: error 18).
    Short {
        /// Which segments: every `every`-th (1: all of them). Must not be 0.
        every: u64,
    },
    /// For segments whose number `n` has `n % every == 0`: a well-formed answer whose body,
    /// and `Content-Length`, are cut to an odd length about half the file's (so not a whole
    /// number of 188-byte TS packets), as when an origin publishes a segment too early.
    Cut {
        /// Which segments: every `every`-th (1: all of them). Must not be 0.
        every: u64,
    },
    /// Segment `seq` answers 404 although the playlist lists it (a packager that lost it).
    Missing {
        /// The segment's number.
        seq: u64,
    },
    /// Segment `seq` is answered only after `delay` (an overloaded origin or CDN miss).
    Slow {
        /// The segment's number.
        seq: u64,
        /// How long the answer waits, at most an hour.
        delay: Duration,
    },
}

/// How an answer was truncated, in an [`AccessEntry`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Truncation {
    /// [`Fault::Short`]: full length announced, half sent, connection closed.
    Short,
    /// [`Fault::Cut`]: cut body, matching `Content-Length`.
    Cut,
}

/// One request the origin's server answered: a line of its access log.
#[derive(Clone, Debug, PartialEq)]
pub struct AccessEntry {
    /// When the answer was finished.
    pub time: SystemTime,
    /// The client's address.
    pub client: IpAddr,
    /// `GET` or `HEAD`.
    pub method: String,
    /// The request target exactly as received, query string included.
    pub path: String,
    /// The answer's status: 200, or 404 for anything the origin does not have.
    pub status: u16,
    /// The `Content-Length` announced, if any.
    pub length: Option<u64>,
    /// The body bytes sent (handed to the kernel): less than `length` when the answer was
    /// [`Truncation::Short`] or the client went away.
    pub sent: u64,
    /// Whether, and how, a fault cut the answer.
    pub truncated: Option<Truncation>,
}

impl AccessEntry {
    /// The last segment of the path, without the query string: `seg3.ts`.
    pub fn file_name(&self) -> &str {
        let path = self.path.split(['?', '#']).next().unwrap_or_default();
        path.rsplit('/').next().unwrap_or_default()
    }

    /// Whether the request was for a media segment (`.ts` or `.m4s`, not the init segment).
    pub fn is_media_segment(&self) -> bool {
        let name = self.file_name();
        name.ends_with(".ts") || name.ends_with(".m4s")
    }

    /// The number of the media segment requested (`seg12.ts` is 12), `None` for other files.
    pub fn segment_number(&self) -> Option<u64> {
        if !self.is_media_segment() {
            return None;
        }
        segment_number(self.file_name())
    }

    /// Parses one line of `origin.py`'s access log (its format is described there).
    fn parse(line: &str) -> Option<AccessEntry> {
        let (fields, path) = line.split_once(" path=")?;
        let mut entry = AccessEntry {
            time: UNIX_EPOCH,
            client: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            method: String::new(),
            path: path.to_owned(),
            status: 0,
            length: None,
            sent: 0,
            truncated: None,
        };
        for field in fields.split(' ') {
            let (key, value) = field.split_once('=')?;
            match key {
                "time" => entry.time = UNIX_EPOCH + Duration::try_from_secs_f64(value.parse().ok()?).ok()?,
                "client" => entry.client = value.parse().ok()?,
                "method" => entry.method = value.to_owned(),
                "status" => entry.status = value.parse().ok()?,
                "length" => entry.length = if value == "-" { None } else { Some(value.parse().ok()?) },
                "sent" => entry.sent = value.parse().ok()?,
                "truncated" => {
                    entry.truncated = match value {
                        "-" => None,
                        "short" => Some(Truncation::Short),
                        "cut" => Some(Truncation::Cut),
                        _ => return None,
                    }
                }
                _ => {} // A field added later: not needed here.
            }
        }
        (!entry.method.is_empty() && entry.status != 0).then_some(entry)
    }
}

/// The number in a media segment's file name: the last run of digits before the extension
/// (`seg12.ts` is 12), as `origin.py` reads it.
fn segment_number(file_name: &str) -> Option<u64> {
    let name = file_name.rsplit_once('.').map_or(file_name, |(stem, _extension)| stem);
    let end = name.rfind(|c: char| c.is_ascii_digit())? + 1;
    let start = name[..end].rfind(|c: char| !c.is_ascii_digit()).map_or(0, |i| i + 1);
    name[start..end].parse().ok()
}

/// A live HLS origin on one host of a [`Bed`]; see the [module documentation](self).
///
/// Its processes belong to the bed: dropping the `Origin` leaves them running until
/// [`Origin::stop`] or the bed's own drop ends them.
#[derive(Debug)]
pub struct Origin {
    host: usize,
    ip: Ipv4Addr,
    port: u16,
    tls: Option<TestCa>,
    dir: PathBuf,
    www: PathBuf,
    access_log: PathBuf,
    control: PathBuf,
    variants: Vec<String>,
    master: bool,
    encoders: Vec<ProcessId>,
    server: Option<ProcessId>,
    /// How many times the server was started: numbers its log files.
    server_starts: usize,
}

impl Origin {
    /// Starts an origin on `host`, with its files in `dir` (created if missing; its `www`
    /// directory, access log and control file are reset): encodes or finds the clips, writes
    /// the master playlist if there is one, starts one ffmpeg per variant and the server, and
    /// returns once the server listens.
    ///
    /// The first segment appears [`SEGMENT_SECONDS`] later and a new one every
    /// [`SEGMENT_SECONDS`] after that: [`Origin::wait_for_segments`] waits for them. Needs
    /// ffmpeg (with ffprobe) and python3; HTTPS also needs a [`TestCa`] made for `host`'s
    /// address.
    pub fn start(bed: &mut Bed, host: usize, dir: &Path, options: OriginOptions) -> Result<Origin, BedError> {
        let ip = bed.host(host)?.ip;
        let OriginOptions { port, tls, fmp4, variants, clip_dir } = options;
        let port = if port == 0 { DEFAULT_PORT } else { port };
        if let Some(ca) = &tls {
            if ca.server_ip != ip {
                return Err(BedError::InvalidArgument(format!(
                    "the TLS certificate is for {}, but host {host} is {ip}",
                    ca.server_ip
                )));
            }
        }
        let master = !variants.is_empty();
        let variants =
            if master { variants } else { vec![(DEFAULT_VARIANT.to_owned(), ClipSpec::default())] };
        check_variant_names(&variants)?;
        command::find(FFMPEG)?;
        let python = command::find(PYTHON3)?;
        if !Path::new(ORIGIN_PY).is_file() {
            return Err(BedError::MissingProgram(PathBuf::from(ORIGIN_PY)));
        }

        fs::create_dir_all(dir).map_err(|e| BedError::io(format!("cannot create {}", dir.display()), e))?;
        let dir =
            dir.canonicalize().map_err(|e| BedError::io(format!("cannot resolve {}", dir.display()), e))?;
        let www = dir.join("www");
        let access_log = dir.join("origin-access.log");
        let control = dir.join("origin-control");
        for stale in [&www, &access_log, &control] {
            remove_if_present(stale)?;
        }
        let clip_dir = clip_dir.unwrap_or_else(|| dir.clone());

        let mut clips = Vec::with_capacity(variants.len());
        for (name, spec) in &variants {
            let clip = media::encode_clip(&clip_dir, "clip", *spec)?;
            let variant_dir = www.join(name);
            fs::create_dir_all(&variant_dir)
                .map_err(|e| BedError::io(format!("cannot create {}", variant_dir.display()), e))?;
            clips.push(clip);
        }
        if master {
            write_master_playlist(&www, &variants, &clips, fmp4)?;
        }

        let mut origin = Origin {
            host,
            ip,
            port,
            tls,
            dir,
            www,
            access_log,
            control,
            variants: variants.into_iter().map(|(name, _)| name).collect(),
            master,
            encoders: Vec::new(),
            server: None,
            server_starts: 0,
        };
        match origin.launch(bed, &clips, fmp4, &python) {
            Ok(()) => Ok(origin),
            Err(error) => {
                // Ignoring errors: the first one is the one to report.
                let _ = origin.stop(bed);
                Err(error)
            }
        }
    }

    /// Starts an origin on `host` that serves fixed files, with no encoder: the regular files
    /// of `content` (not its subdirectories), linked into `<dir>/www/<name>/`, so that
    /// `origin.url("<name>/index.m3u8")` serves `content/index.m3u8`. Everything else is as for
    /// [`Origin::start`]: `dir` is created if missing and its `www` directory, access log and
    /// control file are reset; the server logs every request ([`Origin::segment_fetches`]),
    /// takes faults ([`Origin::set_fault`]), and listens on `port` (0: [`DEFAULT_PORT`])
    /// over plain HTTP when this returns. [`Origin::variants`] is `[name]`, so
    /// [`Origin::playlist_url`] is `<name>/index.m3u8`.
    ///
    /// Files are hard-linked when `content` is on the same file system as `dir` (no copy of a
    /// large asset), copied otherwise. Meant for an on-demand asset from
    /// [`encode_vod_asset`](crate::encode_vod_asset): `Origin::start_static(bed, 0, dir, "vod",
    /// &asset.dir, 0)`. Needs python3.
    pub fn start_static(
        bed: &mut Bed,
        host: usize,
        dir: &Path,
        name: &str,
        content: &Path,
        port: u16,
    ) -> Result<Origin, BedError> {
        let ip = bed.host(host)?.ip;
        let port = if port == 0 { DEFAULT_PORT } else { port };
        check_variant_name(name)?;
        let python = command::find(PYTHON3)?;
        if !Path::new(ORIGIN_PY).is_file() {
            return Err(BedError::MissingProgram(PathBuf::from(ORIGIN_PY)));
        }
        let files = fs::read_dir(content)
            .map_err(|e| BedError::io(format!("cannot list {}", content.display()), e))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| BedError::io(format!("cannot list {}", content.display()), e))?;

        fs::create_dir_all(dir).map_err(|e| BedError::io(format!("cannot create {}", dir.display()), e))?;
        let dir =
            dir.canonicalize().map_err(|e| BedError::io(format!("cannot resolve {}", dir.display()), e))?;
        let www = dir.join("www");
        let access_log = dir.join("origin-access.log");
        let control = dir.join("origin-control");
        for stale in [&www, &access_log, &control] {
            remove_if_present(stale)?;
        }
        let served = www.join(name);
        fs::create_dir_all(&served)
            .map_err(|e| BedError::io(format!("cannot create {}", served.display()), e))?;
        for file in files {
            let is_file = file.file_type().is_ok_and(|t| t.is_file());
            if is_file {
                link_or_copy(&file.path(), &served.join(file.file_name()))?;
            }
        }

        let mut origin = Origin {
            host,
            ip,
            port,
            tls: None,
            dir,
            www,
            access_log,
            control,
            variants: vec![name.to_owned()],
            master: false,
            encoders: Vec::new(),
            server: None,
            server_starts: 0,
        };
        origin.spawn_server(bed, &python)?;
        Ok(origin)
    }

    /// Starts the ffmpegs and the server, for [`Origin::start`].
    fn launch(
        &mut self,
        bed: &mut Bed,
        clips: &[PathBuf],
        fmp4: bool,
        python: &Path,
    ) -> Result<(), BedError> {
        for (variant, clip) in self.variants.iter().zip(clips) {
            let encoder = self.spawn_encoder(bed, variant, clip, fmp4)?;
            self.encoders.push(encoder);
        }
        self.spawn_server(bed, python)?;
        // An ffmpeg that dislikes its arguments has exited by now: say so at once rather than
        // time out waiting for segments.
        for (variant, &encoder) in self.variants.iter().zip(&self.encoders) {
            if let Some(status) = bed.wait(encoder, Duration::ZERO)? {
                let log = self.encoder_log(variant);
                return Err(BedError::CommandFailed {
                    command: format!("ffmpeg for variant {variant} (log: {})", log.display()),
                    status,
                    stderr: read_tail(&log),
                });
            }
        }
        Ok(())
    }

    /// `http://<ip>:<port>/<path>` (or `https://`) for a path relative to the served root, with
    /// or without its leading `/`: `origin.url("live/seg3.ts")`.
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        format!("{scheme}://{}:{}/{}", self.ip, self.port, path.trim_start_matches('/'))
    }

    /// What a player opens: the master playlist when there is one, else the one variant's media
    /// playlist (`http://10.99.0.1:8080/live/index.m3u8`).
    pub fn playlist_url(&self) -> String {
        if self.master {
            self.url("master.m3u8")
        } else {
            self.media_playlist_url(&self.variants[0])
        }
    }

    /// The URL of `variant`'s media playlist: `<variant>/index.m3u8`.
    pub fn media_playlist_url(&self, variant: &str) -> String {
        self.url(&format!("{variant}/index.m3u8"))
    }

    /// The variants' names, in the master playlist's order (`["live"]` by default).
    pub fn variants(&self) -> &[String] {
        &self.variants
    }

    /// The bed host the origin runs on.
    pub fn host(&self) -> usize {
        self.host
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The directory the server serves (`<dir>/www`), to compare what a client got with the
    /// origin's own bytes. Segments disappear from it soon after leaving the playlist.
    pub fn root(&self) -> &Path {
        &self.www
    }

    /// The segment URIs (`seg7.ts`...) that `variant`'s media playlist lists right now, oldest
    /// first, read from disk; empty until ffmpeg writes the first playlist.
    ///
    /// # Panics
    ///
    /// If `variant` is not one of [`Origin::variants`]: that is a bug in the test.
    pub fn segments(&self, variant: &str) -> Vec<String> {
        assert!(self.variants.iter().any(|v| v == variant), "no variant {variant:?} in {:?}", self.variants);
        let playlist = fs::read_to_string(self.www.join(variant).join("index.m3u8")).unwrap_or_default();
        playlist
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .map(str::to_owned)
            .collect()
    }

    /// The numbers of the segments `variant`'s media playlist lists right now, oldest first
    /// ([`Origin::segments`], by number).
    ///
    /// # Panics
    ///
    /// As [`Origin::segments`].
    pub fn listed_segments(&self, variant: &str) -> Vec<u64> {
        self.segments(variant).iter().filter_map(|uri| segment_number(uri.rsplit('/').next()?)).collect()
    }

    /// Waits until every variant's playlist lists at least `count` segments (at most
    /// [`PLAYLIST_SEGMENTS`]); they come one per [`SEGMENT_SECONDS`] from the start.
    ///
    /// On timeout the error holds the end of the ffmpeg logs.
    pub fn wait_for_segments(&self, count: usize, timeout: Duration) -> Result<(), BedError> {
        let deadline = Instant::now() + timeout;
        loop {
            let short: Vec<&String> =
                self.variants.iter().filter(|v| self.segments(v).len() < count).collect();
            if short.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                let logs: Vec<String> = short
                    .iter()
                    .map(|v| format!("{v}: {:?} {}", self.segments(v), read_tail(&self.encoder_log(v))))
                    .collect();
                return Err(BedError::TimedOut {
                    command: format!("waiting for {count} segments in the origin's playlists"),
                    after: timeout,
                    output: logs.join("; "),
                });
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    /// Every request the server has answered so far, in order, across server restarts.
    ///
    /// A request's line is written just after the last byte of its answer is sent, so a client
    /// may be done a moment before its line appears: [`Origin::wait_for_requests`] waits for it.
    ///
    /// # Panics
    ///
    /// If the access log exists but cannot be read, or holds a line that does not parse: the
    /// test's directory was tampered with, or `origin.py` and this crate disagree.
    pub fn fetch_log(&self) -> Vec<AccessEntry> {
        let text = match fs::read_to_string(&self.access_log) {
            Ok(text) => text,
            Err(e) if e.kind() == ErrorKind::NotFound => return Vec::new(),
            Err(e) => panic!("cannot read the origin's access log {}: {e}", self.access_log.display()),
        };
        // A line without its newline is still being written: leave it for the next call.
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        complete
            .lines()
            .filter(|line| !line.is_empty())
            .map(|line| {
                AccessEntry::parse(line)
                    .unwrap_or_else(|| panic!("unparseable line in {}: {line:?}", self.access_log.display()))
            })
            .collect()
    }

    /// Waits until the access log holds at least `count` requests (for at most `timeout`), and
    /// returns them all.
    ///
    /// # Panics
    ///
    /// As [`Origin::fetch_log`].
    pub fn wait_for_requests(&self, count: usize, timeout: Duration) -> Result<Vec<AccessEntry>, BedError> {
        let deadline = Instant::now() + timeout;
        loop {
            let log = self.fetch_log();
            if log.len() >= count {
                return Ok(log);
            }
            if Instant::now() >= deadline {
                let last: Vec<String> =
                    log.iter().rev().take(5).map(|e| format!("{} {}", e.method, e.path)).collect();
                return Err(BedError::TimedOut {
                    command: format!("waiting for {count} requests in {}", self.access_log.display()),
                    after: timeout,
                    output: format!("{} requests, the last: {}", log.len(), last.join(", ")),
                });
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// How many GET requests each media segment got, by path, whatever the answer.
    pub fn segment_fetches(&self) -> BTreeMap<String, usize> {
        let mut fetches = BTreeMap::new();
        for entry in self.fetch_log() {
            if entry.method == "GET" && entry.is_media_segment() {
                let path = entry.path.split(['?', '#']).next().unwrap_or_default().to_owned();
                *fetches.entry(path).or_insert(0) += 1;
            }
        }
        fetches
    }

    /// Origin fetches per segment: GET requests for media segments divided by the number of
    /// distinct segments requested (1.0 when each segment was fetched once); `None` before the
    /// first segment request.
    pub fn fetches_per_segment(&self) -> Option<f64> {
        let fetches = self.segment_fetches();
        let requests: usize = fetches.values().sum();
        (!fetches.is_empty()).then(|| requests as f64 / fetches.len() as f64)
    }

    /// The paths of the answers a fault truncated, in order (a path appears once per truncated
    /// answer).
    pub fn truncated_segments(&self) -> Vec<String> {
        self.fetch_log().into_iter().filter(|e| e.truncated.is_some()).map(|e| e.path).collect()
    }

    /// Sets the fault the server injects, from its next request on (it reads the control file
    /// on every request; the file is replaced by a rename, so it never sees half of it).
    pub fn set_fault(&self, mode: Fault) -> Result<(), BedError> {
        let line = match mode {
            Fault::None => "none".to_owned(),
            Fault::Short { every: 0 } | Fault::Cut { every: 0 } => {
                return Err(BedError::InvalidArgument(format!("{mode:?}: `every` must be at least 1")))
            }
            Fault::Short { every } => format!("short {every}"),
            Fault::Cut { every } => format!("cut {every}"),
            Fault::Missing { seq } => format!("missing {seq}"),
            Fault::Slow { delay, .. } if delay > Duration::from_secs(3600) => {
                return Err(BedError::InvalidArgument(format!("{mode:?}: at most an hour")))
            }
            Fault::Slow { seq, delay } => format!("slow {seq} {}", delay.as_millis()),
        };
        write_atomically(&self.control, &(line + "\n"))
    }

    /// Whether the server is up, as far as [`Origin::stop_server`] and
    /// [`Origin::start_server`] know.
    pub fn server_running(&self) -> bool {
        self.server.is_some()
    }

    /// Takes the server down (SIGTERM; SIGKILL after 5 s), while ffmpeg goes on making segments:
    /// clients then get "connection refused". Nothing to do if it is already down.
    pub fn stop_server(&mut self, bed: &mut Bed) -> Result<(), BedError> {
        let Some(server) = self.server.take() else {
            return Ok(());
        };
        stop_process(bed, server, SERVER_STOP_LIMIT)
    }

    /// Brings the server back after [`Origin::stop_server`] (same port, log and faults), and
    /// returns once it listens. Nothing to do if it is already up.
    pub fn start_server(&mut self, bed: &mut Bed) -> Result<(), BedError> {
        if self.server.is_some() {
            return Ok(());
        }
        let python = command::find(PYTHON3)?;
        self.spawn_server(bed, &python)
    }

    /// Stops everything: ffmpeg (which ends each playlist with `#EXT-X-ENDLIST`) and the
    /// server. The files stay.
    pub fn stop(&mut self, bed: &mut Bed) -> Result<(), BedError> {
        let mut result = self.stop_server(bed);
        for encoder in self.encoders.drain(..) {
            let stopped = stop_process(bed, encoder, SERVER_STOP_LIMIT);
            result = result.and(stopped);
        }
        result
    }

    fn encoder_log(&self, variant: &str) -> PathBuf {
        self.dir.join(format!("origin-ffmpeg-{variant}.log"))
    }

    /// One ffmpeg replaying `clip` in real time, forever, as live HLS into `www/<variant>`.
    fn spawn_encoder(
        &self,
        bed: &mut Bed,
        variant: &str,
        clip: &Path,
        fmp4: bool,
    ) -> Result<ProcessId, BedError> {
        let args = encoder_args(clip, &self.www.join(variant), fmp4, None);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        bed.spawn(self.host, &command::find(FFMPEG)?, &args, &[], &self.encoder_log(variant))
    }

    /// Starts `origin.py` and waits until it listens.
    fn spawn_server(&mut self, bed: &mut Bed, python: &Path) -> Result<(), BedError> {
        self.server_starts += 1;
        let log = self.dir.join(format!("origin-server-{}.log", self.server_starts));
        let text = |path: &Path| path.to_string_lossy().into_owned();
        let (root, access_log, control) = (text(&self.www), text(&self.access_log), text(&self.control));
        let port = self.port.to_string();
        let mut args = vec!["-B", ORIGIN_PY, "--root", &root, "--port", &port];
        args.extend(["--log", &access_log, "--control", &control]);
        let tls = self.tls.as_ref().map(|ca| (text(&ca.cert_pem), text(&ca.key_pem)));
        if let Some((cert, key)) = &tls {
            args.extend(["--cert", cert, "--key", key]);
        }
        let env = [("PYTHONUNBUFFERED", "1"), ("PYTHONDONTWRITEBYTECODE", "1")];
        let server = bed.spawn(self.host, python, &args, &env, &log)?;

        let deadline = Instant::now() + SERVER_START_LIMIT;
        loop {
            if fs::read_to_string(&log).is_ok_and(|text| text.contains(SERVING)) {
                self.server = Some(server);
                return Ok(());
            }
            let exited = bed.wait(server, Duration::ZERO)?;
            if exited.is_some() || Instant::now() >= deadline {
                let command = format!("origin.py on port {} (log: {})", self.port, log.display());
                let stderr = read_tail(&log);
                let _ = stop_process(bed, server, Duration::from_secs(1));
                return Err(match exited {
                    Some(status) => BedError::CommandFailed { command, status, stderr },
                    None => BedError::TimedOut { command, after: SERVER_START_LIMIT, output: stderr },
                });
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

/// ffmpeg's arguments to replay `clip` as HLS into `out`: forever and in real time (`-re`) when
/// `rounds` is `None`, else `rounds` times as fast as it can (to check the output's timestamps).
fn encoder_args(clip: &Path, out: &Path, fmp4: bool, rounds: Option<u32>) -> Vec<String> {
    let text = |path: &Path| path.to_string_lossy().into_owned();
    let segments = out.join(if fmp4 { "seg%d.m4s" } else { "seg%d.ts" });
    let mut args: Vec<String> =
        ["-nostdin", "-hide_banner", "-nostats", "-loglevel", "warning"].map(String::from).into();
    match rounds {
        None => args.extend(["-re", "-stream_loop", "-1"].map(String::from)),
        Some(rounds) => args.extend(["-stream_loop".to_owned(), rounds.saturating_sub(1).to_string()]),
    }
    args.extend(["-i".to_owned(), text(clip)]);
    let audio_rate = format!("{AUDIO_KBPS}k");
    if fmp4 {
        args.extend(["-c:v", "copy", "-c:a", "aac", "-b:a", &audio_rate].map(String::from));
    } else {
        args.extend(["-c", "copy"].map(String::from));
    }
    let (time, size) = (SEGMENT_SECONDS.to_string(), PLAYLIST_SEGMENTS.to_string());
    let list_size = if rounds.is_some() { "0" } else { &size }; // a check keeps every segment
    args.extend(["-f", "hls", "-hls_time", &time, "-hls_list_size", list_size].map(String::from));
    let flags = if rounds.is_some() {
        "independent_segments"
    } else {
        "delete_segments+independent_segments+temp_file"
    };
    args.extend(["-hls_flags".to_owned(), flags.to_owned()]);
    if fmp4 {
        args.extend(["-hls_segment_type", "fmp4", "-hls_fmp4_init_filename", "init.mp4"].map(String::from));
    }
    args.extend(["-hls_segment_filename".to_owned(), text(&segments), text(&out.join("index.m3u8"))]);
    args
}

/// Variant names become directory names and URL segments: keep them plain.
fn check_variant_names(variants: &[(String, ClipSpec)]) -> Result<(), BedError> {
    for (index, (name, _)) in variants.iter().enumerate() {
        check_variant_name(name)?;
        if variants[..index].iter().any(|(other, _)| other == name) {
            return Err(BedError::InvalidArgument(format!("variant name {name:?} appears twice")));
        }
    }
    Ok(())
}

/// One variant's name: a plain path segment.
fn check_variant_name(name: &str) -> Result<(), BedError> {
    let plain = !name.is_empty()
        && name != "."
        && name != ".."
        && name.chars().all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
    if plain {
        Ok(())
    } else {
        Err(BedError::InvalidArgument(format!(
            "variant name {name:?}: use letters, digits, '-', '_' and '.'"
        )))
    }
}

/// Hard-links `from` as `to`, or copies it when a link is impossible (another file system).
fn link_or_copy(from: &Path, to: &Path) -> Result<(), BedError> {
    if fs::hard_link(from, to).is_ok() {
        return Ok(());
    }
    fs::copy(from, to)
        .map(drop)
        .map_err(|e| BedError::io(format!("cannot copy {} to {}", from.display(), to.display()), e))
}

/// `www/master.m3u8`: one `#EXT-X-STREAM-INF` per variant, with the clip's measured peak and
/// average rates, its picture size, frame rate and codecs.
fn write_master_playlist(
    www: &Path,
    variants: &[(String, ClipSpec)],
    clips: &[PathBuf],
    fmp4: bool,
) -> Result<(), BedError> {
    // The versions ffmpeg writes in the media playlists: 7 for fMP4, 6 for MPEG-TS.
    let version = if fmp4 { 7 } else { 6 };
    let mut text = format!("#EXTM3U\n#EXT-X-VERSION:{version}\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    for ((name, spec), clip) in variants.iter().zip(clips) {
        let info = media::probe_clip(clip)?;
        text.push_str(&format!(
            "#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},RESOLUTION={}x{},\
             FRAME-RATE={FRAME_RATE}.000,CODECS=\"{}\"\n{name}/index.m3u8\n",
            info.peak_bandwidth, info.average_bandwidth, spec.width, spec.height, info.codecs
        ));
    }
    write_atomically(&www.join("master.m3u8"), &text)
}

/// Writes `text` to a temporary file next to `path`, then renames it over `path`.
fn write_atomically(path: &Path, text: &str) -> Result<(), BedError> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".tmp");
    let temporary = PathBuf::from(temporary);
    fs::write(&temporary, text)
        .map_err(|e| BedError::io(format!("cannot write {}", temporary.display()), e))?;
    fs::rename(&temporary, path)
        .map_err(|e| BedError::io(format!("cannot rename {}", temporary.display()), e))
}

/// Removes the file or directory tree at `path`, if there is one.
fn remove_if_present(path: &Path) -> Result<(), BedError> {
    let removed = if path.is_dir() { fs::remove_dir_all(path) } else { fs::remove_file(path) };
    match removed {
        Err(e) if e.kind() != ErrorKind::NotFound => {
            Err(BedError::io(format!("cannot remove {}", path.display()), e))
        }
        _ => Ok(()),
    }
}

/// SIGTERM, then SIGKILL if `process` has not exited within `grace`; a process that already
/// exited is fine.
fn stop_process(bed: &mut Bed, process: ProcessId, grace: Duration) -> Result<(), BedError> {
    match bed.signal(process, Signal::Term) {
        Ok(()) | Err(BedError::NotRunning { .. }) => {}
        Err(e) => return Err(e),
    }
    if bed.wait(process, grace)?.is_some() {
        return Ok(());
    }
    match bed.signal(process, Signal::Kill) {
        Ok(()) | Err(BedError::NotRunning { .. }) => {}
        Err(e) => return Err(e),
    }
    match bed.wait(process, Duration::from_secs(2))? {
        Some(_) => Ok(()),
        None => Err(BedError::TimedOut {
            command: format!("stopping {process:?}"),
            after: grace,
            output: "it survived SIGTERM and SIGKILL".to_owned(),
        }),
    }
}

/// The end of a log file, for error messages.
fn read_tail(path: &Path) -> String {
    let text = fs::read_to_string(path).unwrap_or_default();
    tail(&text, 1500).to_owned()
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;
    use crate::command::FFPROBE;

    fn entry(path: &str) -> AccessEntry {
        AccessEntry::parse(&format!(
            "time=1700000000.250 client=10.99.0.2 method=GET status=200 length=10 sent=5 truncated=short path={path}"
        ))
        .unwrap()
    }

    #[test]
    fn log_lines_parse() {
        let e = entry("/live/seg12.ts?x=1 2");
        assert_eq!(e.time, UNIX_EPOCH + Duration::from_millis(1_700_000_000_250));
        assert_eq!(e.client, IpAddr::V4(Ipv4Addr::new(10, 99, 0, 2)));
        assert_eq!((e.method.as_str(), e.status, e.length, e.sent), ("GET", 200, Some(10), 5));
        assert_eq!(e.truncated, Some(Truncation::Short));
        assert_eq!(e.path, "/live/seg12.ts?x=1 2");
        assert_eq!(e.file_name(), "seg12.ts");
        assert_eq!(e.segment_number(), Some(12));

        let line = "time=1.5 client=10.99.0.3 method=HEAD status=404 length=- sent=0 truncated=- path=/a/b";
        let e = AccessEntry::parse(line).unwrap();
        assert_eq!((e.status, e.length, e.truncated), (404, None, None));
        assert!(!e.is_media_segment());
        assert_eq!(e.segment_number(), None);

        assert_eq!(AccessEntry::parse("time=1 client=x method=GET path=/"), None);
        assert_eq!(AccessEntry::parse("no fields at all"), None);
    }

    #[test]
    fn segments_are_recognised_by_extension_and_numbered_by_their_last_digits() {
        assert_eq!(entry("/v1/seg7.m4s").segment_number(), Some(7));
        assert_eq!(entry("/v1/init.mp4").segment_number(), None);
        assert_eq!(entry("/v1/index.m3u8").segment_number(), None);
        assert_eq!(entry("/v1/7.ts").segment_number(), Some(7));
        assert_eq!(entry("/v1/seg.ts").segment_number(), None);
        assert!(entry("/v1/seg.ts").is_media_segment());
    }

    /// The DTS of every packet of each stream (by index) of a media file, from ffprobe.
    fn packet_dts(file: &Path) -> BTreeMap<u32, Vec<i64>> {
        let mut ffprobe = Command::new(command::find(FFPROBE).unwrap());
        ffprobe.args(["-v", "error", "-show_entries", "packet=stream_index,dts", "-of", "csv=p=0"]).arg(file);
        let output = command::run_ok(ffprobe, Duration::from_secs(30)).unwrap();
        let mut streams: BTreeMap<u32, Vec<i64>> = BTreeMap::new();
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            let mut fields = line.split(',');
            let (Some(Ok(stream)), Some(Ok(dts))) =
                (fields.next().map(str::parse), fields.next().map(str::parse))
            else {
                continue;
            };
            streams.entry(stream).or_default().push(dts);
        }
        streams
    }

    /// The point of the 16 s clip: looping it, as the origin does, makes HLS whose timestamps
    /// step evenly through the loop points, in MPEG-TS (stream copy) and fMP4 (audio
    /// re-encoded) alike. Without root; skipped without ffmpeg.
    #[test]
    fn looped_clip_makes_hls_without_timestamp_jumps() {
        if command::find(FFMPEG).is_err() || command::find(FFPROBE).is_err() {
            eprintln!("skipped: ffmpeg or ffprobe is not installed");
            return;
        }
        let dir = std::env::temp_dir().join(format!("shoal-testbed-loop-{}", std::process::id()));
        let clip = media::encode_clip(&dir, "clip", ClipSpec::SMALL).unwrap();
        for fmp4 in [false, true] {
            let out = dir.join(if fmp4 { "fmp4" } else { "ts" });
            fs::create_dir_all(&out).unwrap();
            let mut ffmpeg = Command::new(command::find(FFMPEG).unwrap());
            ffmpeg.args(encoder_args(&clip, &out, fmp4, Some(3)));
            command::run_ok(ffmpeg, Duration::from_secs(60)).unwrap();

            let playlist = fs::read_to_string(out.join("index.m3u8")).unwrap();
            let durations: Vec<&str> = playlist.lines().filter_map(|l| l.strip_prefix("#EXTINF:")).collect();
            assert_eq!(durations.len(), 24, "3 rounds of 16 s in 2 s segments: {playlist}");
            assert!(durations.iter().all(|d| *d == "2.000000,"), "fmp4 {fmp4}: {playlist}");

            // The whole stream in one file: init segment (fMP4), then every segment in order.
            let mut whole = if fmp4 { fs::read(out.join("init.mp4")).unwrap() } else { Vec::new() };
            for segment in playlist.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
                whole.extend(fs::read(out.join(segment)).unwrap());
            }
            let joined = out.join(if fmp4 { "whole.mp4" } else { "whole.ts" });
            fs::write(&joined, whole).unwrap();
            let streams = packet_dts(&joined);
            assert_eq!(streams.len(), 2, "video and audio");
            for (stream, dts) in streams {
                let steps: Vec<i64> = dts.windows(2).map(|w| w[1] - w[0]).collect();
                let odd: Vec<(usize, i64)> =
                    steps.iter().copied().enumerate().filter(|&(_, step)| step != steps[0]).collect();
                assert!(odd.is_empty(), "fmp4 {fmp4}, stream {stream}: step {} but {odd:?}", steps[0]);
                eprintln!("fmp4 {fmp4}, stream {stream}: {} packets, DTS step {}", dts.len(), steps[0]);
            }
        }
        let _ = fs::remove_dir_all(dir);
    }

    #[test]
    fn variant_names_must_be_plain_and_unique() {
        let named = |names: &[&str]| -> Vec<(String, ClipSpec)> {
            names.iter().map(|n| (n.to_string(), ClipSpec::SMALL)).collect()
        };
        assert!(check_variant_names(&named(&["low", "high-1", "v_2.0"])).is_ok());
        for bad in [&["a/b"][..], &[""], &[".."], &["x y"], &["low", "low"]] {
            assert!(check_variant_names(&named(bad)).is_err(), "{bad:?}");
        }
    }
}
