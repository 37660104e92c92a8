// Checks a Shoal box's dashboard in a real browser, as an operator would use it.
//
//   node tools/browser/dashboard.mjs URL SCREENSHOT [--boxes N] [--channel ID] [--refused URL]
//
// Launches Debian's headless Chromium (/usr/bin/chromium; playwright-core downloads no browser)
// with a fresh profile, opens URL, waits until the boxes table lists N boxes (default 3) after
// the page's script has polled the box at least once, plays channel ID (default "testcard") with
// the page's own player until the video has played 5 s with no error (time that moves with the
// clock; jumps, such as to the live edge, are reported apart), presses "Identify this
// box" and reads the answer, and saves a screenshot to SCREENSHOT. With --refused, it also
// opens that dashboard (a box that does not count this browser as an admin) and reads what the
// identify button says there. Prints one line of JSON (the last line of stdout) that
// firmware/node/tests/dashboard.rs asserts on; exits 0 when every step passed, 1 otherwise (the
// JSON then says which step failed and why), 2 on bad arguments.
//
// It talks only to URL's host; the Chromium flags below turn off Chromium's own traffic
// (updates, sync, QUIC, first-run pings). Run it bounded, e.g. under `timeout 90`, inside the
// test's network namespace.

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

function usage(problem) {
  console.error(`${problem}\nusage: node dashboard.mjs URL SCREENSHOT [--boxes N] [--channel ID] [--refused URL]`);
  process.exit(2);
}
const [url, screenshot, ...flags] = process.argv.slice(2);
if (!url || !screenshot) usage('URL and SCREENSHOT are required');
const options = { boxes: '3', channel: 'testcard', refused: null };
for (let i = 0; i < flags.length; i += 2) {
  const name = flags[i].replace(/^--/, '');
  if (!(name in options) || flags[i + 1] === undefined) usage(`unknown or incomplete option ${flags[i]}`);
  options[name] = flags[i + 1];
}
const expectedBoxes = Number(options.boxes);
const channel = options.channel;
// Seconds of playback that count as "plays": more than two 2 s segments of the test card.
const PLAY_SECONDS = 5;

const started = Date.now();
const result = {
  ok: false,
  step: 'launch',
  error: null,
  boxes: [],
  channels: [],
  start_time: null,
  current_time: null,
  played_s: 0,
  jumps: [],
  video_src: null,
  video_error: null,
  playback_quality: null,
  player_state: null,
  identify: null,
  identify_refused: null,
  console_errors: [],
  failed_requests: [],
  elapsed_ms: 0,
};

// Presses "Identify this box" on `page` and returns what the page then says.
async function identify(page) {
  await page.click('#identify button', { timeout: 5_000 });
  await page.waitForFunction(
    () => {
      const text = document.getElementById('identify-result').textContent;
      return text !== '' && text !== 'Asking…';
    },
    null,
    { timeout: 10_000, polling: 100 },
  );
  return page.textContent('#identify-result');
}

const profile = mkdtempSync(join(tmpdir(), 'shoal-chromium-'));
let context = null;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: '/usr/bin/chromium',
    headless: true,
    viewport: { width: 1280, height: 900 },
    timeout: 30_000,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--autoplay-policy=no-user-gesture-required',
    ],
  });
  const page = context.pages()[0] || (await context.newPage());
  page.on('console', (message) => {
    if (message.type() === 'error') result.console_errors.push(message.text());
  });
  page.on('pageerror', (error) => result.console_errors.push(`uncaught: ${error.message}`));
  page.on('requestfailed', (request) => {
    // The player aborts requests when it is stopped or seeks: only count what the page needed.
    if (request.resourceType() !== 'media') {
      result.failed_requests.push(`${request.url()}: ${request.failure()?.errorText}`);
    }
  });

  result.step = 'open';
  await page.goto(url, { waitUntil: 'load', timeout: 15_000 });

  // The page's script counts its polls on <body data-polls>: once it has polled, the boxes table
  // is the script's rendering, not only the server's.
  result.step = 'boxes';
  await page.waitForFunction(
    (n) => Number(document.body.getAttribute('data-polls')) >= 1
      && document.querySelectorAll('#boxes-body .node[title]').length >= n,
    expectedBoxes,
    { timeout: 30_000, polling: 250 },
  );
  result.boxes = await page.$$eval('#boxes-body .node[title]', (nodes) => nodes.map((n) => n.getAttribute('title')));
  result.channels = await page.$$eval('#channel-picker option', (options) => options.map((o) => o.value));

  result.step = 'play';
  if (!result.channels.includes(channel)) {
    throw new Error(`the channel picker has no ${channel}: ${JSON.stringify(result.channels)}`);
  }
  await page.selectOption('#channel-picker', channel, { timeout: 5_000 });
  await page.click('#play', { timeout: 5_000 });
  // Samples the player every 100 ms. Playback counts only where currentTime moves with the
  // clock: a live stream may start anywhere and the player may jump to the live edge, and such
  // a jump is reported, not counted as playing.
  await page.evaluate(() => {
    const video = document.getElementById('player');
    const samples = [];
    window.shoalPlayback = () => {
      let played = 0;
      const jumps = [];
      for (let i = 1; i < samples.length; i += 1) {
        const moved = samples[i].time - samples[i - 1].time;
        const wall = (samples[i].at - samples[i - 1].at) / 1000;
        if (moved > 0 && moved <= wall + 0.25) played += moved;
        else if (moved !== 0) jumps.push(Math.round(moved * 100) / 100);
      }
      const first = samples.find((s) => s.time > 0 || s.frames > 0) || samples[0];
      const last = samples[samples.length - 1];
      return {
        played,
        jumps,
        frames: last && first ? last.frames - first.frames : 0,
        dropped: last ? last.dropped : 0,
        start_time: first ? first.time : null,
        current_time: last ? last.time : null,
        error: video.error ? { code: video.error.code, message: video.error.message } : null,
      };
    };
    const timer = setInterval(() => {
      const q = video.getVideoPlaybackQuality();
      samples.push({ at: performance.now(), time: video.currentTime, frames: q.totalVideoFrames, dropped: q.droppedVideoFrames });
      if (samples.length >= 1000) clearInterval(timer);
    }, 100);
  });
  try {
    await page.waitForFunction(
      (seconds) => {
        const playback = window.shoalPlayback();
        return playback.error !== null || playback.played >= seconds;
      },
      PLAY_SECONDS,
      { timeout: 45_000, polling: 250 },
    );
  } finally {
    const playback = await page.evaluate(() => window.shoalPlayback());
    const video = await page.$eval('#player', (v) => ({ src: v.currentSrc, width: v.videoWidth, height: v.videoHeight }));
    result.start_time = playback.start_time;
    result.current_time = playback.current_time;
    result.played_s = Math.round(playback.played * 1000) / 1000;
    result.jumps = playback.jumps;
    result.video_error = playback.error;
    result.video_src = video.src;
    result.playback_quality = { frames: playback.frames, dropped_frames: playback.dropped, width: video.width, height: video.height };
    result.player_state = await page.textContent('#player-state');
  }
  if (result.video_error) throw new Error(`the video failed: ${JSON.stringify(result.video_error)}`);

  result.step = 'identify';
  result.identify = await identify(page);

  result.step = 'screenshot';
  await page.screenshot({ path: screenshot, fullPage: true, timeout: 10_000 });

  if (options.refused) {
    result.step = 'identify refused';
    const other = await context.newPage();
    await other.goto(options.refused, { waitUntil: 'load', timeout: 15_000 });
    result.identify_refused = await identify(other);
    await other.close();
  }
  result.step = 'done';
  result.ok = true;
} catch (error) {
  // Playwright colours its call logs for terminals; the JSON carries plain text.
  result.error = String(error && error.message ? error.message : error)
    .replace(/\u001b\[[0-9;]*m/g, '')
    .split('\n')
    .slice(0, 6)
    .join('\n');
  if (context) {
    // A picture of the failure helps more than none.
    const page = context.pages()[0];
    await page?.screenshot({ path: screenshot, fullPage: true, timeout: 5_000 }).catch(() => {});
  }
} finally {
  await context?.close().catch(() => {});
  rmSync(profile, { recursive: true, force: true });
  result.elapsed_ms = Date.now() - started;
  console.log(JSON.stringify(result));
}
process.exit(result.ok ? 0 : 1);
