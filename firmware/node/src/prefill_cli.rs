//! `shoal prefill <channel> [--full]`: asks a box to bring an on-demand asset onto the LAN
//! (`POST /api/prefill/<channel>[?full]`), then follows its progress in `/api/status` (the
//! `cache.assets` entry of the channel) until the box says it is done, it failed, or the
//! timeout passes.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::lineup::OriginUrl;
use crate::model::status::{AssetStatus, Status};
use crate::origin::{FetchError, Fetcher};
use crate::status_cli::{self, StatusError};

/// How often the status is read.
const POLL: Duration = Duration::from_millis(500);
/// Status requests that may fail in a row before the prefill is given up.
const MAX_STATUS_FAILURES: u32 = 10;
/// Deadline of one request to the box.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a prefill did not finish.
#[derive(Debug, thiserror::Error)]
pub enum PrefillError {
    #[error(transparent)]
    Status(#[from] StatusError),
    #[error("{url} refused the prefill: {why}")]
    Refused { url: String, why: String },
    #[error("the box could not prefill {channel}: {why}")]
    Failed { channel: String, why: String },
    #[error("{channel} was not done after {} s: {progress}", .after.as_secs())]
    Timeout { channel: String, after: Duration, progress: String },
    #[error(transparent)]
    Trust(#[from] crate::origin::TrustError),
}

/// Runs a prefill of `channel` on the box at `base`, printing progress lines to `out`.
pub fn run(
    channel: &str,
    full: bool,
    base: &OriginUrl,
    timeout: Duration,
    out: &mut impl Write,
) -> Result<(), PrefillError> {
    let fetcher = Fetcher::new(None, REQUEST_TIMEOUT)?;
    smol::block_on(async {
        let mut session = fetcher.session();
        let path = format!("/api/prefill/{channel}{}", if full { "?full" } else { "" });
        let url =
            base.join(&path).map_err(|e| PrefillError::Refused { url: path.clone(), why: e.to_string() })?;
        if let Err(e) = session.post(&url, 64 * 1024).await {
            let why = match e {
                FetchError::Status(403) => "this client is not in the box's http.admin_networks".to_owned(),
                FetchError::Status(503) => {
                    "the box has no disk cache, the channel is not an HLS channel, or it is not in the lineup"
                        .to_owned()
                }
                other => other.to_string(),
            };
            return Err(PrefillError::Refused { url: url.to_string(), why });
        }
        let started = Instant::now();
        let mut last = String::new();
        let mut failures = 0;
        loop {
            // A box busy writing its disk may miss a status deadline: only a run of failures
            // ends the wait.
            let status = match status_cli::fetch_status(&mut session, base).await {
                Ok(status) => {
                    failures = 0;
                    status
                }
                Err(e) if failures < MAX_STATUS_FAILURES => {
                    failures += 1;
                    log::debug!("status: {e}; asking again");
                    session = fetcher.session();
                    smol::Timer::after(POLL).await;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            let asset = find_asset(&status, channel);
            let line = progress(channel, asset, full);
            if line != last {
                let _ = writeln!(out, "{line}");
                last = line;
            }
            let prefill = asset.and_then(|a| a.prefill.as_ref());
            match prefill.map(|p| p.state.as_str()) {
                Some("done") => return Ok(()),
                Some("failed") => {
                    let why =
                        prefill.and_then(|p| p.error.as_deref()).unwrap_or("no reason given").to_owned();
                    return Err(PrefillError::Failed { channel: channel.to_owned(), why });
                }
                _ => {}
            }
            if started.elapsed() >= timeout {
                return Err(PrefillError::Timeout {
                    channel: channel.to_owned(),
                    after: timeout,
                    progress: last,
                });
            }
            smol::Timer::after(POLL).await;
        }
    })
}

/// The `cache.assets` entry of `channel` in a status report.
fn find_asset<'a>(status: &'a Status, channel: &str) -> Option<&'a AssetStatus> {
    status.cache.as_ref()?.assets.iter().find(|a| a.name.as_deref() == Some(channel))
}

/// One progress line: `films: 120 of 600 segments on the LAN, 60 on this box (12.3 MiB)`.
fn progress(channel: &str, asset: Option<&AssetStatus>, full: bool) -> String {
    let Some(asset) = asset else {
        return format!("{channel}: waiting for the first segment");
    };
    let (known, on_disk) = (asset.segments_known, asset.segments_on_disk);
    let total = asset.segments_total.map_or_else(|| "?".to_owned(), |t| t.to_string());
    let mib = asset.bytes as f64 / f64::from(1 << 20);
    let state =
        asset.prefill.as_ref().map(|p| p.state.as_str()).filter(|s| !s.is_empty()).unwrap_or("starting");
    let mode = if full { "whole copy" } else { "LAN share" };
    format!("{channel}: {known} of {total} segments on the LAN ({mib:.1} MiB), {on_disk} on this box; {mode}: {state}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn progress_reads_the_status_and_survives_odd_values() {
        let status: Status = serde_json::from_value(json!({ "cache": { "assets": [
            { "name": "films", "segments_known": 120, "segments_total": null, "segments_on_disk": 60,
              "bytes": 3 << 20, "prefill": { "state": "running" } }
        ]}}))
        .expect("a status");
        let line = progress("films", find_asset(&status, "films"), true);
        assert_eq!(
            line,
            "films: 120 of ? segments on the LAN (3.0 MiB), 60 on this box; whole copy: running"
        );
        assert!(find_asset(&status, "news").is_none());
        assert!(find_asset(&Status::default(), "films").is_none(), "no cache");
        assert!(
            serde_json::from_value::<Status>(json!({ "cache": 3 })).is_err(),
            "not a status: asked again"
        );
        assert_eq!(
            progress("x", Some(&AssetStatus::default()), false),
            "x: 0 of ? segments on the LAN (0.0 MiB), 0 on this box; LAN share: starting"
        );
    }
}
