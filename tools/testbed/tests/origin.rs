//! The HLS origin for real: live HLS from a looped clip, served from one host of a bed and played
//! or fetched from another, over HTTP and HTTPS, as MPEG-TS and fMP4, one variant or two under a
//! master playlist, with injected faults (truncation, a 404 segment, a slow segment).
//!
//! Every test needs root (network namespaces), ffmpeg, python3 and curl, and skips, saying why,
//! without them; the CA test needs only openssl. Clips are cached in cargo's target directory,
//! so only the first run encodes them. Run one at a time, since each plays live media in real
//! time on a 2-core machine: `cargo test -p shoal-testbed --test origin -- --test-threads=1`.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::thread;
use std::time::{Duration, Instant};

use shoal_testbed::{
    make_test_ca, skip_reason, Bed, ClipSpec, Fault, Origin, OriginOptions, Truncation, ORIGIN_DNS_NAME,
};

/// Returns from the test, saying why, when this machine cannot run an origin in a bed.
macro_rules! require_bed {
    () => {
        if let Some(reason) = skip_reason().or_else(|| missing(&["ffmpeg", "python3", "curl", "openssl"])) {
            eprintln!("skipped: {reason}");
            return;
        }
    };
}

/// Which of `tools` is not installed, as a skip message.
fn missing(tools: &[&str]) -> Option<String> {
    let absent: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|tool| {
            Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .map_or(true, |o| !o.status.success())
        })
        .collect();
    (!absent.is_empty()).then(|| format!("not installed: {}", absent.join(", ")))
}

/// Where clips are kept between tests and runs.
fn clips() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("origin-clips")
}

/// A fresh directory for one test's files, removed when dropped (after the bed, which is declared
/// later and so dropped first).
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("shoal-testbed-origin-{}-{test}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn options() -> OriginOptions {
    OriginOptions { clip_dir: Some(clips()), ..OriginOptions::default() }
}

/// Plays `url` from `host` as a player would, for `seconds` of media: ffmpeg decoding everything
/// to nothing, at error log level. Returns its stderr, which must be empty for a clean stream.
fn play(bed: &Bed, host: usize, url: &str, seconds: u32, extra: &[&str]) -> String {
    let seconds = seconds.to_string();
    let mut command = vec!["ffmpeg", "-nostdin", "-hide_banner", "-v", "error"];
    command.extend(extra);
    command.extend(["-i", url, "-t", &seconds, "-f", "null", "-"]);
    let output = bed.exec(host, &command, Duration::from_secs(40)).unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "ffmpeg failed on {url}: {stderr}");
    stderr
}

/// `curl -sS --max-time 10 --noproxy '*' ARGS...` inside `host`.
fn curl(bed: &Bed, host: usize, args: &[&str]) -> Output {
    let mut command = vec!["curl", "-sS", "--max-time", "10", "--noproxy", "*"];
    command.extend(args);
    bed.exec(host, &command, Duration::from_secs(15)).unwrap()
}

/// The value of header `name` in curl's `-D -`/`-I` output (the last answer's).
fn header<'a>(headers: &'a str, name: &str) -> Option<&'a str> {
    headers.lines().rev().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn live_ts_plays_over_http_and_every_request_is_logged() {
    require_bed!();
    let scratch = Scratch::new("http");
    let mut bed = Bed::new(2).unwrap();
    let started = Instant::now();
    let mut origin = Origin::start(&mut bed, 0, &scratch.0, options()).unwrap();
    eprintln!("origin started in {:?}", started.elapsed());
    assert_eq!(origin.playlist_url(), "http://10.99.0.1:8080/live/index.m3u8");
    origin.wait_for_segments(3, Duration::from_secs(20)).unwrap();
    eprintln!("3 segments after {:?}", started.elapsed());

    let playlist = fs::read_to_string(origin.root().join("live/index.m3u8")).unwrap();
    assert!(playlist.contains("#EXT-X-TARGETDURATION:2\n"), "{playlist}");
    assert!(playlist.contains("#EXT-X-INDEPENDENT-SEGMENTS\n"), "{playlist}");
    assert!(playlist.contains("#EXTINF:2.000000,\nseg0.ts\n"), "{playlist}");

    let stderr = play(&bed, 1, &origin.playlist_url(), 8, &[]);
    assert_eq!(stderr, "", "a clean live stream plays without a message");
    eprintln!("8 s played by {:?}", started.elapsed());
    let log = origin.fetch_log();
    let playlists = log.iter().filter(|e| e.path == "/live/index.m3u8").count();
    assert!(playlists >= 2, "a live player reloads the playlist: {log:#?}");
    let segments: Vec<_> = log.iter().filter(|e| e.is_media_segment()).collect();
    assert!(segments.len() >= 4, "8 s of 2 s segments: {log:#?}");
    for entry in &log {
        assert_eq!((entry.method.as_str(), entry.status), ("GET", 200), "{entry:?}");
        assert_eq!(entry.client.to_string(), "10.99.0.2");
        assert_eq!(entry.length, Some(entry.sent), "{entry:?}");
        assert_eq!(entry.truncated, None);
    }
    let first = segments[0];
    let on_disk = fs::metadata(origin.root().join(first.path.trim_start_matches('/'))).map(|m| m.len());
    if let Ok(size) = on_disk {
        assert_eq!(first.sent, size, "{first:?}");
    }
    assert_eq!(origin.fetches_per_segment(), Some(1.0), "{:?}", origin.segment_fetches());

    // Headers, 404s, no listings, and keep-alive: two URLs on one curl share one connection.
    let segment_url = origin.url(&segments.last().unwrap().path);
    let head = text(&curl(&bed, 1, &["-I", &segment_url]));
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(header(&head, "content-type"), Some("video/mp2t"), "{head}");
    let head = text(&curl(&bed, 1, &["-I", &origin.playlist_url()]));
    assert_eq!(header(&head, "content-type"), Some("application/vnd.apple.mpegurl"), "{head}");
    for path in [
        "live/seg999999.ts",
        "live/",
        "live",
        "",
        "../origin-access.log",
        "live/%2e%2e/%2e%2e/origin-control",
    ] {
        let url = origin.url(path);
        let status = text(&curl(&bed, 1, &["-o", "/dev/null", "-w", "%{http_code}", "--path-as-is", &url]));
        assert_eq!(status, "404", "{url}");
    }
    let both = [origin.playlist_url(), origin.url("live/nothing.ts")];
    let reuse =
        curl(&bed, 1, &["-o", "/dev/null", "-o", "/dev/null", "-w", "%{num_connects} ", &both[0], &both[1]]);
    assert_eq!(text(&reuse), "1 0 ", "the second request reuses the connection, even after a 200");
    let log = origin.wait_for_requests(log.len() + 10, Duration::from_secs(5)).unwrap();
    assert!(log.iter().any(|e| e.method == "HEAD" && e.status == 200), "{log:#?}");
    assert!(log.iter().any(|e| e.path == "/live/nothing.ts" && e.status == 404), "{log:#?}");

    // The server goes down while ffmpeg goes on, and comes back.
    origin.stop_server(&mut bed).unwrap();
    assert!(!origin.server_running());
    let refused = curl(&bed, 1, &["-o", "/dev/null", &origin.playlist_url()]);
    assert_eq!(refused.status.code(), Some(7), "connection refused: {refused:?}");
    let newest = origin.segments("live").last().cloned().unwrap();
    thread::sleep(Duration::from_millis(2500));
    assert_ne!(origin.segments("live").last(), Some(&newest), "ffmpeg stopped with the server");
    origin.start_server(&mut bed).unwrap();
    let playlist = bed.http_get(1, &origin.playlist_url()).unwrap();
    assert!(playlist.contains(origin.segments("live").last().unwrap()), "{playlist}");
    let before = log.len();
    let log = origin.wait_for_requests(before + 1, Duration::from_secs(5)).unwrap();
    assert_eq!(log.len(), before + 1, "the log goes on across restarts");
    eprintln!("test done after {:?}", started.elapsed());
}

#[test]
fn test_ca_certificate_verifies_for_the_address_and_the_name() {
    if let Some(reason) = missing(&["openssl"]) {
        eprintln!("skipped: {reason}");
        return;
    }
    let scratch = Scratch::new("ca");
    let ca = make_test_ca(&scratch.0, "10.99.0.7".parse().unwrap()).unwrap();
    let verify = Command::new("openssl")
        .args(["verify", "-purpose", "sslserver", "-CAfile"])
        .arg(&ca.ca_pem)
        .arg(&ca.cert_pem)
        .output()
        .unwrap();
    assert!(verify.status.success(), "{verify:?}");
    let dump =
        Command::new("openssl").args(["x509", "-noout", "-text", "-in"]).arg(&ca.cert_pem).output().unwrap();
    let dump = String::from_utf8_lossy(&dump.stdout);
    for wanted in ["IP Address:10.99.0.7", "DNS:origin.test", "CA:FALSE", "TLS Web Server Authentication"] {
        assert!(dump.contains(wanted), "{wanted} missing: {dump}");
    }
    for check in ["10.99.0.7", "origin.test"] {
        let flag = if check.starts_with("10.") { "-verify_ip" } else { "-verify_hostname" };
        let verify = Command::new("openssl")
            .args(["verify", flag, check, "-CAfile"])
            .arg(&ca.ca_pem)
            .arg(&ca.cert_pem)
            .output()
            .unwrap();
        assert!(verify.status.success(), "{check}: {verify:?}");
    }
}

#[test]
fn https_with_the_test_ca() {
    require_bed!();
    let scratch = Scratch::new("https");
    let mut bed = Bed::new(2).unwrap();
    let ca = make_test_ca(&scratch.0, bed.ip(0)).unwrap();
    let cacert = ca.ca_pem.to_str().unwrap().to_owned();
    let options = OriginOptions { tls: Some(ca), port: 8443, ..options() };
    let origin = Origin::start(&mut bed, 0, &scratch.0, options).unwrap();
    let url = origin.playlist_url();
    assert_eq!(url, "https://10.99.0.1:8443/live/index.m3u8");
    origin.wait_for_segments(2, Duration::from_secs(20)).unwrap();

    let fetched = curl(&bed, 1, &["--cacert", &cacert, &url]);
    assert!(fetched.status.success(), "{fetched:?}");
    assert!(text(&fetched).starts_with("#EXTM3U"), "{fetched:?}");
    let by_name = format!("https://{ORIGIN_DNS_NAME}:8443/live/index.m3u8");
    let resolve = format!("{ORIGIN_DNS_NAME}:8443:10.99.0.1");
    let fetched = curl(&bed, 1, &["--cacert", &cacert, "--resolve", &resolve, &by_name]);
    assert!(fetched.status.success(), "by name: {fetched:?}");
    let untrusted = curl(&bed, 1, &["-o", "/dev/null", &url]);
    assert_eq!(untrusted.status.code(), Some(60), "no trust without the CA: {untrusted:?}");

    // ffmpeg (GnuTLS) verifies too, given the CA.
    let stderr = play(&bed, 1, &url, 3, &["-tls_verify", "1", "-ca_file", &cacert]);
    assert_eq!(stderr, "");
    let log = origin.fetch_log();
    assert!(log.iter().filter(|e| e.is_media_segment() && e.status == 200).count() >= 2, "{log:#?}");
    let rejected = bed
        .exec(
            1,
            &["ffmpeg", "-nostdin", "-v", "error", "-tls_verify", "1", "-i", &url, "-f", "null", "-"],
            Duration::from_secs(20),
        )
        .unwrap();
    assert!(!rejected.status.success(), "ffmpeg trusted an unknown CA");
}

#[test]
fn master_playlist_with_two_variants_plays() {
    require_bed!();
    let scratch = Scratch::new("master");
    let mut bed = Bed::new(2).unwrap();
    let variants = vec![("low".to_owned(), ClipSpec::SMALL), ("high".to_owned(), ClipSpec::MEDIUM)];
    let origin = Origin::start(&mut bed, 0, &scratch.0, OriginOptions { variants, ..options() }).unwrap();
    assert_eq!(origin.variants(), ["low", "high"]);
    assert_eq!(origin.playlist_url(), "http://10.99.0.1:8080/master.m3u8");

    let master = bed.http_get(1, &origin.playlist_url()).unwrap();
    eprintln!("{master}");
    let entries: Vec<(&str, &str)> = master
        .lines()
        .zip(master.lines().skip(1))
        .filter_map(|(info, uri)| Some((info.strip_prefix("#EXT-X-STREAM-INF:")?, uri)))
        .collect();
    assert_eq!(entries.len(), 2, "{master}");
    assert_eq!(entries[0].1, "low/index.m3u8");
    assert_eq!(entries[1].1, "high/index.m3u8");
    assert!(entries[0].0.contains("RESOLUTION=320x180,") && entries[1].0.contains("RESOLUTION=640x360,"));
    for (info, _) in &entries {
        assert!(info.contains("CODECS=\"avc1.42c0") && info.contains(",mp4a.40.2\""), "{info}");
    }
    let bandwidth = |info: &str| -> u64 {
        let value = info.split("BANDWIDTH=").nth(1).unwrap();
        value.split(',').next().unwrap().parse().unwrap()
    };
    assert!(bandwidth(entries[1].0) > bandwidth(entries[0].0), "{master}");

    origin.wait_for_segments(2, Duration::from_secs(20)).unwrap();
    for (index, variant) in origin.variants().iter().enumerate() {
        // Each segment's rate is within what the master playlist announces.
        for segment in origin.segments(variant) {
            let Ok(meta) = fs::metadata(origin.root().join(variant).join(&segment)) else { continue };
            let rate = meta.len() * 8 / 2;
            assert!(rate <= bandwidth(entries[index].0), "{variant}/{segment}: {rate} bit/s; {master}");
        }
    }
    let stderr = play(&bed, 1, &origin.playlist_url(), 3, &[]);
    assert_eq!(stderr, "");
    let log = origin.fetch_log();
    assert!(log.iter().any(|e| e.path == "/master.m3u8"));
    assert!(log.iter().any(|e| e.path.starts_with("/high/") && e.is_media_segment()), "{log:#?}");
}

#[test]
fn fmp4_variant_plays() {
    require_bed!();
    let scratch = Scratch::new("fmp4");
    let mut bed = Bed::new(2).unwrap();
    let origin = Origin::start(&mut bed, 0, &scratch.0, OriginOptions { fmp4: true, ..options() }).unwrap();
    origin.wait_for_segments(2, Duration::from_secs(20)).unwrap();
    let playlist = bed.http_get(1, &origin.playlist_url()).unwrap();
    assert!(playlist.contains("#EXT-X-MAP:URI=\"init.mp4\"\n"), "{playlist}");
    assert!(playlist.contains("#EXTINF:2.000000,\nseg0.m4s\n"), "{playlist}");
    let head = text(&curl(&bed, 1, &["-I", &origin.url("live/init.mp4")]));
    assert_eq!(header(&head, "content-type"), Some("video/mp4"), "{head}");
    let head = text(&curl(&bed, 1, &["-I", &origin.url("live/seg0.m4s")]));
    assert_eq!(header(&head, "content-type"), Some("video/mp4"), "{head}");

    let stderr = play(&bed, 1, &origin.playlist_url(), 3, &[]);
    assert_eq!(stderr, "");
    let log = origin.fetch_log();
    assert!(log.iter().any(|e| e.path == "/live/init.mp4" && e.method == "GET"), "{log:#?}");
    assert!(log.iter().filter(|e| e.is_media_segment()).count() >= 2, "{log:#?}");
    assert_eq!(origin.fetches_per_segment(), Some(1.0), "{:?}", origin.segment_fetches());
}

#[test]
fn segments_are_truncated_on_demand() {
    require_bed!();
    let scratch = Scratch::new("truncate");
    let mut bed = Bed::new(2).unwrap();
    let origin = Origin::start(&mut bed, 0, &scratch.0, options()).unwrap();
    origin.wait_for_segments(2, Duration::from_secs(20)).unwrap();
    let size = |segment: &str| fs::metadata(origin.root().join("live").join(segment)).unwrap().len();
    let (seg0, seg1) = (size("seg0.ts"), size("seg1.ts"));
    let get = |segment: &str| {
        let url = origin.url(&format!("live/{segment}"));
        curl(&bed, 1, &["-o", "/dev/null", "-D", "-", "-w", "size=%{size_download}\n", &url])
    };
    let downloaded = |output: &Output| -> u64 {
        text(output).lines().find_map(|l| l.strip_prefix("size=")).unwrap().parse().unwrap()
    };

    // Short: the full length announced, half of it sent, the connection closed.
    origin.set_fault(Fault::Short { every: 2 }).unwrap();
    let short = get("seg0.ts");
    assert_eq!(short.status.code(), Some(18), "curl: partial file: {short:?}");
    assert_eq!(header(&text(&short), "content-length"), Some(seg0.to_string().as_str()));
    assert_eq!(downloaded(&short), seg0 / 2);
    let whole = get("seg1.ts"); // odd: untouched
    assert!(whole.status.success(), "{whole:?}");
    assert_eq!(downloaded(&whole), seg1);
    let head = text(&curl(&bed, 1, &["-I", &origin.url("live/seg0.ts")]));
    assert_eq!(header(&head, "content-length"), Some(seg0.to_string().as_str()), "HEAD is never cut");

    // Cut: a shorter body with a matching length, odd and not whole TS packets.
    origin.set_fault(Fault::Cut { every: 1 }).unwrap();
    let cut = get("seg1.ts");
    assert!(cut.status.success(), "a cut answer is well-formed: {cut:?}");
    let length: u64 = header(&text(&cut), "content-length").unwrap().parse().unwrap();
    assert_eq!(downloaded(&cut), length);
    assert!(length < seg1 && length % 2 == 1 && length % 188 != 0, "{length} of {seg1}");

    origin.set_fault(Fault::None).unwrap();
    let whole = get("seg0.ts");
    assert!(whole.status.success(), "{whole:?}");
    assert_eq!(downloaded(&whole), seg0);
    assert!(origin.set_fault(Fault::Cut { every: 0 }).is_err());

    // Missing: one segment answers 404 though its file is there; the others are whole.
    origin.set_fault(Fault::Missing { seq: 1 }).unwrap();
    let missing = text(&get("seg1.ts"));
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    assert_eq!(downloaded(&get("seg0.ts")), seg0);

    // Slow: one segment is answered after the delay, whole.
    origin.set_fault(Fault::Slow { seq: 0, delay: Duration::from_millis(1500) }).unwrap();
    let asked = Instant::now();
    let slow = get("seg0.ts");
    let waited = asked.elapsed();
    assert!(slow.status.success() && downloaded(&slow) == seg0, "{slow:?}");
    assert!(waited >= Duration::from_millis(1500), "answered after {waited:?}");
    origin.set_fault(Fault::None).unwrap();

    let log = origin.wait_for_requests(8, Duration::from_secs(5)).unwrap();
    assert_eq!(origin.truncated_segments(), ["/live/seg0.ts", "/live/seg1.ts"], "{log:#?}");
    let kinds: Vec<_> = log.iter().filter_map(|e| e.truncated.map(|t| (t, e.length, e.sent))).collect();
    assert_eq!(kinds, [(Truncation::Short, Some(seg0), seg0 / 2), (Truncation::Cut, Some(length), length)]);
}

/// The test CA files in `dir` are what `Origin` serves with; a certificate for another host is
/// refused up front.
#[test]
fn a_certificate_for_another_host_is_refused() {
    require_bed!();
    let scratch = Scratch::new("wrong-host");
    let mut bed = Bed::new(2).unwrap();
    let ca = make_test_ca(&scratch.0, bed.ip(1)).unwrap();
    let error =
        Origin::start(&mut bed, 0, Path::new(&scratch.0), OriginOptions { tls: Some(ca), ..options() })
            .unwrap_err();
    eprintln!("{error}");
    assert!(error.to_string().contains("10.99.0.2"), "{error}");
}
