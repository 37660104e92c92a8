// Shoal dashboard: keeps the page that the box rendered current.
//
// Every 2 s it fetches /api/status (this box) and /api/swarm (every box this one could reach)
// and rebuilds the same tables the server rendered (http/dashboard.rs: keep the two in step),
// adds a point to the traffic chart (bytes per second from the origin and between boxes,
// computed from the growth of the swarm's totals between polls, last five minutes), plays a
// channel with the browser's native HLS, and asks the box to identify itself.
//
// Text from the network only ever becomes text nodes or attribute values, never markup; links
// to boxes are made only for addresses that are IP:port. No library, no inline handlers: the
// page runs under `Content-Security-Policy: default-src 'self'`.
'use strict';

(() => {
  const POLL_MS = 2000;
  // Five minutes of points at one per poll.
  const WINDOW_MS = 5 * 60 * 1000;
  const SHORT_ID = 8;
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const CHART_W = 600;
  const CHART_H = 160;

  const $ = (id) => document.getElementById(id);

  // ---- reading JSON that may lack any field ---------------------------------------------

  const text = (v) => (typeof v === 'string' && v !== '' ? v : null);
  const count = (v) => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.floor(v) : null);
  const number = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  const list = (v) => (Array.isArray(v) ? v : []);
  const obj = (v) => (v && typeof v === 'object' && !Array.isArray(v) ? v : {});
  const short = (id) => id.slice(0, SHORT_ID);

  const bytes = (n) => {
    if (n === null) return '—';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
    let scaled = n;
    let unit = 0;
    while (scaled >= 1024 && unit + 1 < units.length) {
      scaled /= 1024;
      unit += 1;
    }
    if (unit === 0) return `${n} B`;
    const places = scaled < 10 ? 2 : scaled < 100 ? 1 : 0;
    return `${scaled.toFixed(places)} ${units[unit]}`;
  };
  const duration = (s) => {
    const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
    if (d > 0) return `${d} d ${h} h`;
    if (h > 0) return `${h} h ${m} min`;
    if (m > 0) return `${m} min ${s % 60} s`;
    return `${s} s`;
  };
  const fetches = (v) => (number(v) === null ? '—' : number(v).toFixed(2));
  const percent = (v) => (number(v) === null ? '—' : `${(number(v) * 100).toFixed(0)} %`);
  const orDash = (v) => (v === null ? '—' : String(v));
  const isSocketAddress = (s) => /^(\d{1,3}(\.\d{1,3}){3}|\[[0-9a-fA-F:.]+\]):\d{1,5}$/.test(s);

  // An element with attributes and children (strings become text nodes).
  const el = (tag, attrs, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v !== null && v !== undefined) node.setAttribute(k, v);
    }
    node.append(...children.filter((c) => c !== null && c !== undefined));
    return node;
  };
  const td = (content, cls) => el('td', { class: cls || null }, content);
  const num = (content) => td(content, 'num');

  // ---- the model: the same merge as dashboard.rs -----------------------------------------

  const traffic = (v) => ({
    origin: count(v.bytes_from_origin),
    peers: count(v.bytes_from_peers),
    tvs: count(v.bytes_to_tvs),
  });
  const addTraffic = (a, b) => {
    const add = (x, y) => (x === null && y === null ? null : (x || 0) + (y || 0));
    return { origin: add(a.origin, b.origin), peers: add(a.peers, b.peers), tvs: add(a.tvs, b.tvs) };
  };
  const NO_TRAFFIC = { origin: null, peers: null, tvs: null };

  function thisBox(status) {
    const box = obj(status.box);
    return { id: text(box.node_id) || text(status.node_id), board: text(box.board) };
  }

  function boxesOf(status, swarm, me) {
    const rows = list(swarm.boxes).map(obj).map((b) => ({
      id: text(b.node_id),
      board: text(b.board),
      http: text(b.http),
      reachable: typeof b.reachable === 'boolean' ? b.reachable : null,
      uptime: count(b.uptime_s),
      viewers: count(b.viewers),
      ingesting: list(b.ingesting).map(text).filter((c) => c !== null),
      traffic: traffic(b),
      me: text(b.node_id) !== null && text(b.node_id) === me.id,
    }));
    for (const p of list(status.peers).map(obj)) {
      const id = text(p.node_id);
      if (id !== null && (rows.some((r) => r.id === id) || id === me.id)) continue;
      rows.push({
        id, board: text(p.board), http: text(p.http), reachable: null, uptime: null, viewers: null,
        ingesting: [], traffic: NO_TRAFFIC, me: false,
      });
    }
    if (me.id !== null && !rows.some((r) => r.me)) {
      const box = obj(status.box);
      const channels = list(status.channels).map(obj);
      const address = list(box.addresses).map(text).find((a) => a !== null);
      const port = count(box.http_port);
      rows.unshift({
        id: me.id,
        board: me.board,
        http: address && port !== null ? `${address}:${port}` : null,
        reachable: true,
        uptime: count(box.uptime_s) ?? count(status.uptime_s),
        viewers: channels.reduce((sum, c) => sum + (count(c.viewers) || 0), 0),
        ingesting: channels.filter((c) => c.ingesting === true).map((c) => text(c.id)).filter((c) => c),
        traffic: channels.map(traffic).reduce(addTraffic, NO_TRAFFIC),
        me: true,
      });
    }
    return rows;
  }

  function channelsOf(status, swarm) {
    const local = list(status.channels).map(obj);
    const localOf = (id) => local.find((c) => id !== null && text(c.id) === id) || {};
    const rows = list(swarm.channels).map(obj).map((c) => ({ id: text(c.id), swarm: c, local: localOf(text(c.id)) }));
    for (const c of local) {
      const id = text(c.id);
      if (id === null || !rows.some((r) => r.id === id)) rows.push({ id, swarm: null, local: c });
    }
    for (const r of rows) r.field = (key) => (r.swarm && r.swarm[key] != null ? r.swarm[key] : r.local[key]);
    return rows;
  }

  // ---- rendering ------------------------------------------------------------------------

  function boxName(id, board, me) {
    const cell = [el('span', { class: 'node', title: id }, id === null ? 'unknown' : short(id))];
    if (board) cell.push(' ', el('span', { class: 'board' }, board));
    if (me) cell.push(' ', el('span', { class: 'tag' }, 'this box'));
    return cell;
  }
  const nameOf = (boxes) => (id) => {
    if (id === null) return ['—'];
    const b = boxes.find((r) => r.id === id);
    return boxName(id, b ? b.board : null, false);
  };

  function fill(tbodyId, rows, columns, empty) {
    const tbody = $(tbodyId);
    if (!tbody) return;
    if (rows.length === 0) {
      tbody.replaceChildren(el('tr', {}, el('td', { colspan: String(columns), class: 'empty' }, empty)));
    } else {
      tbody.replaceChildren(...rows);
    }
  }

  function renderHeader(status, me) {
    const box = obj(status.box);
    const name = $('box-name');
    if (name && me.id) {
      name.setAttribute('title', me.id);
      name.replaceChildren(short(me.id), ...(me.board ? [' ', el('span', { class: 'board' }, me.board)] : []));
      document.title = `Shoal box ${short(me.id)}`;
    }
    const facts = [];
    if (text(box.version)) facts.push(`version ${box.version}`);
    const up = count(box.uptime_s) ?? count(status.uptime_s);
    if (up !== null) facts.push(`up ${duration(up)}`);
    const addresses = list(box.addresses).map(text).filter((a) => a);
    if (addresses.length) facts.push(addresses.join(', '));
    const store = obj(status.store);
    if (count(store.used_bytes) !== null && count(store.budget_bytes) !== null) {
      facts.push(`store ${bytes(count(store.used_bytes))} of ${bytes(count(store.budget_bytes))}`);
    }
    const parts = [facts.join(' · ')];
    if (box.identifying === true) parts.push(facts.length ? ' · ' : '', el('strong', {}, 'identifying'));
    $('box-facts').replaceChildren(...parts);
  }

  function renderFigures(swarm) {
    const totals = obj(swarm.totals);
    for (const node of document.querySelectorAll('[data-figure]')) {
      const key = node.getAttribute('data-figure');
      node.textContent = key === 'origin_fetches_per_segment' ? fetches(totals[key]) : percent(totals[key]);
    }
    const t = traffic(totals);
    $('totals').textContent = `Origin ${bytes(t.origin)} · between boxes ${bytes(t.peers)} · to TVs ${bytes(t.tvs)}`;
  }

  function renderBoxes(boxes) {
    const rows = boxes.map((b) => {
      const address = b.http === null ? '—'
        : isSocketAddress(b.http) ? el('a', { href: `http://${b.http}/` }, b.http) : b.http;
      const reachable = b.reachable === null ? td('—') : b.reachable ? td('yes', 'ok') : td('no', 'bad');
      return el('tr', { class: b.me ? 'this' : null },
        el('td', {}, ...boxName(b.id, b.board, b.me)), td(address), reachable,
        td(b.uptime === null ? '—' : duration(b.uptime)), num(orDash(b.viewers)),
        td(b.ingesting.length ? b.ingesting.join(', ') : '—'),
        num(bytes(b.traffic.origin)), num(bytes(b.traffic.peers)), num(bytes(b.traffic.tvs)));
    });
    fill('boxes-body', rows, 9, 'No boxes known yet.');
  }

  function renderChannels(channels, name) {
    const rows = channels.map((c) => {
      const origin = obj(c.field('origin'));
      const health = origin.healthy === true ? td('healthy', 'ok')
        : origin.healthy === false ? td(text(origin.last_error) || 'failing', 'bad') : td('—');
      const state = text(c.field('state')) || 'unknown';
      const t = traffic(c.swarm || c.local);
      const sw = c.swarm || {};
      const play = c.id === null ? '—' : el('a', { href: `/hls/${encodeURIComponent(c.id)}/index.m3u8` }, 'HLS');
      return el('tr', {},
        el('td', {}, el('span', { class: 'channel-name' }, text(c.field('name')) || c.id || 'unnamed'),
          ...(c.id ? [' ', el('code', {}, c.id)] : [])),
        el('td', {}, el('span', { class: 'state', 'data-state': state }, state)), health,
        el('td', {}, ...name(text(c.field('ingester')))), num(orDash(count(c.field('viewers')))),
        num(fetches(sw.origin_fetches_per_segment)), num(percent(sw.peer_efficiency)),
        num(percent(sw.uplink_savings)), num(bytes(t.origin)), num(bytes(t.peers)), num(bytes(t.tvs)),
        td(play));
    });
    fill('channels-body', rows, 12, 'No channels configured.');
  }

  function renderPeers(status, name) {
    const rows = list(status.peers).map(obj).map((p) => {
      const alive = p.banned === true ? td('banned', 'bad') : p.alive === true ? td('yes', 'ok')
        : p.alive === false ? td('no', 'bad') : td('—');
      const rtt = number(p.rtt_ms);
      const seen = count(p.last_seen_ms_ago);
      return el('tr', {}, el('td', {}, ...name(text(p.node_id))), td(text(p.address) || '—'), alive,
        num(rtt === null ? '—' : `${rtt.toFixed(1)} ms`), num(seen === null ? '—' : `${(seen / 1000).toFixed(1)} s ago`));
    });
    fill('peers-body', rows, 5, 'No peers heard yet.');
  }

  function renderCache(status) {
    const cache = obj(status.cache);
    const disk = obj(cache.disk);
    const note = $('cache-disk');
    if (note) note.textContent = `${bytes(count(disk.used_bytes))} of ${bytes(count(disk.cap_bytes))} on this box's disk`;
    const rows = list(cache.assets).map(obj).map((a) => {
      const total = count(a.segments_total);
      const state = text(obj(a.prefill).state);
      const prefill = state === null ? '—' : a.whole_copy === true ? `${state} (whole copy)` : state;
      return el('tr', {}, td(text(a.name) || '—'),
        num(`${orDash(count(a.segments_known))} of ${total === null ? '?' : total}`),
        num(orDash(count(a.segments_on_disk))), num(bytes(count(a.bytes))), td(prefill));
    });
    fill('cache-body', rows, 5, 'No on-demand asset yet.');
  }

  // Keeps the picker's choice while the lineup changes under it.
  function renderPicker(channels) {
    const picker = $('channel-picker');
    const ids = channels.filter((c) => c.id !== null);
    const current = Array.from(picker.options).map((o) => `${o.value}\n${o.textContent}`).join('\n');
    const wanted = ids.map((c) => `${c.id}\n${text(c.field('name')) || c.id}`).join('\n');
    if (current === wanted) return;
    const chosen = picker.value;
    picker.replaceChildren(...ids.map((c) => el('option', { value: c.id }, text(c.field('name')) || c.id)));
    if (ids.some((c) => c.id === chosen)) picker.value = chosen;
  }

  // ---- traffic chart --------------------------------------------------------------------

  const samples = []; // { t, origin, peers } in bytes per second
  let previous = null; // { t, origin, peers } cumulative bytes at the last poll

  function sampleTraffic(swarm, boxes) {
    let t = traffic(obj(swarm.totals));
    if (t.origin === null && t.peers === null) t = boxes.map((b) => b.traffic).reduce(addTraffic, NO_TRAFFIC);
    const now = Date.now();
    if (t.origin === null && t.peers === null) return drawChart(now);
    const current = { t: now, origin: t.origin || 0, peers: t.peers || 0 };
    // A box that restarted makes the totals shrink: start again from the new values.
    if (previous && current.origin >= previous.origin && current.peers >= previous.peers && now > previous.t) {
      const seconds = (now - previous.t) / 1000;
      samples.push({
        t: now,
        origin: (current.origin - previous.origin) / seconds,
        peers: (current.peers - previous.peers) / seconds,
      });
    }
    previous = current;
    while (samples.length && samples[0].t < now - WINDOW_MS) samples.shift();
    drawChart(now);
  }

  function svg(tag, attrs) {
    const node = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    return node;
  }

  function drawChart(now) {
    const chart = $('chart');
    if (!chart) return;
    const peak = Math.max(1, ...samples.map((s) => Math.max(s.origin, s.peers)));
    const x = (t) => (CHART_W * (1 - (now - t) / WINDOW_MS)).toFixed(1);
    const y = (v) => (CHART_H - 4 - (CHART_H - 8) * (v / peak)).toFixed(1);
    const nodes = [];
    for (let i = 1; i < 4; i += 1) {
      const gy = (CHART_H * i / 4).toFixed(1);
      nodes.push(svg('line', { x1: 0, x2: CHART_W, y1: gy, y2: gy, class: 'grid' }));
    }
    for (const series of ['origin', 'peers']) {
      const points = samples.map((s) => `${x(s.t)},${y(s[series])}`).join(' ');
      if (points) nodes.push(svg('polyline', { points, class: `line ${series}` }));
    }
    chart.replaceChildren(...nodes);
    const last = samples[samples.length - 1];
    const quiet = samples.every((s) => s.origin === 0 && s.peers === 0);
    $('chart-scale').textContent = !last ? '· no figures yet' : quiet ? '· no traffic in the last five minutes'
      : `· top ${bytes(Math.round(peak))}/s · now ${bytes(Math.round(last.origin))}/s from the origin, `
        + `${bytes(Math.round(last.peers))}/s between boxes`;
  }

  // ---- polling --------------------------------------------------------------------------

  async function json(url) {
    const response = await fetch(url, { cache: 'no-store' });
    if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
    return response.json();
  }

  let polls = 0;

  async function poll() {
    const [status, swarm] = await Promise.allSettled([json('/api/status'), json('/api/swarm')]);
    const s = status.status === 'fulfilled' ? obj(status.value) : {};
    const w = swarm.status === 'fulfilled' ? obj(swarm.value) : {};
    const problems = [status, swarm].filter((r) => r.status === 'rejected').map((r) => String(r.reason.message || r.reason));
    const banner = $('connection');
    banner.textContent = problems.length ? `Not current: ${problems.join('; ')}` : '';
    banner.hidden = problems.length === 0;
    if (problems.length < 2) {
      try {
        const me = thisBox(s);
        const boxes = boxesOf(s, w, me);
        const channels = channelsOf(s, w);
        const name = nameOf(boxes);
        renderHeader(s, me);
        renderFigures(w);
        renderBoxes(boxes);
        renderChannels(channels, name);
        renderPeers(s, name);
        renderCache(s);
        renderPicker(channels);
        sampleTraffic(w, boxes);
      } catch (e) {
        banner.textContent = `Cannot show the box's answer: ${e.message}`;
        banner.hidden = false;
      }
    }
    polls += 1;
    document.body.setAttribute('data-polls', String(polls));
    setTimeout(poll, POLL_MS);
  }

  // ---- player ---------------------------------------------------------------------------

  function setupPlayer() {
    const video = $('player');
    const state = $('player-state');
    const say = (message, bad) => {
      state.textContent = message;
      state.className = bad ? 'bad' : '';
    };
    $('player-box').hidden = false;
    if (video.canPlayType('application/vnd.apple.mpegurl') === '') {
      say('This browser may not play HLS itself; the HLS links in the channels table open in VLC.', true);
    }
    $('player-form').addEventListener('submit', (event) => {
      event.preventDefault();
      const id = $('channel-picker').value;
      if (!id) return say('No channel to play.', true);
      video.src = `/hls/${encodeURIComponent(id)}/index.m3u8`;
      video.setAttribute('data-channel', id);
      say(`Loading ${id}…`);
      video.play().catch((e) => say(`Cannot play: ${e.message}`, true));
    });
    $('stop').addEventListener('click', () => {
      video.pause();
      video.removeAttribute('src');
      video.removeAttribute('data-channel');
      video.load();
      say('Stopped.');
    });
    video.addEventListener('playing', () => say(`Playing ${video.getAttribute('data-channel') || ''}`));
    video.addEventListener('waiting', () => say('Buffering…'));
    video.addEventListener('error', () => {
      if (!video.getAttribute('src')) return;
      const error = video.error;
      say(`Playback failed: ${error ? `${error.code} ${error.message || ''}` : 'unknown error'}`, true);
    });
  }

  // ---- identify -------------------------------------------------------------------------

  function setupIdentify() {
    const form = $('identify');
    const result = $('identify-result');
    const button = form.querySelector('button');
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      button.disabled = true;
      result.className = '';
      result.textContent = 'Asking…';
      try {
        const response = await fetch('/api/identify', { method: 'POST', cache: 'no-store' });
        const body = await response.text();
        let detail = body.trim();
        try {
          const parsed = obj(JSON.parse(body));
          const seconds = count(parsed.for_s);
          detail = text(parsed.error) || text(parsed.message)
            || (parsed.identifying === true ? (seconds === null ? '' : `For ${seconds} s.`) : detail);
        } catch (_) {
          // Not JSON: show the text as it came.
        }
        if (response.status === 403) {
          result.className = 'bad';
          result.textContent = `Refused (403): this computer is not on one of the box's admin networks. ${detail}`;
        } else if (!response.ok) {
          result.className = 'bad';
          result.textContent = `Failed (HTTP ${response.status}): ${detail}`;
        } else {
          result.className = 'ok';
          result.textContent = `The box is identifying itself (look for its LED). ${detail}`.trim();
        }
      } catch (e) {
        result.className = 'bad';
        result.textContent = `No answer from the box: ${e.message}`;
      } finally {
        button.disabled = false;
      }
    });
  }

  setupPlayer();
  setupIdentify();
  poll();
})();
