// Spur's dashboard. Plain JavaScript, no framework, no build step: it polls the JSON API
// and redraws.
//
// Polling: /api/status and /api/workers every POLL_MS while the tab is visible, every
// HIDDEN_MS while it is hidden, doubling up to MAX_BACKOFF_MS after errors; the longer lists
// (scheduled jobs, schedules, dead letters) only when the counts in /api/status that they
// depend on change, after an action, or every LISTS_MS. /api/me (who the viewer is, what
// they may do) once a minute.
//
// Rendering: every table is one string built from the data and set with one innerHTML, and
// only when it differs from the last one; rows carry data-key and buttons data-act, and one
// listener on the document handles every click (no per-row listeners). Long tables stop at
// a cap with a "show more" button. While a pointer is pressed nothing is redrawn, so that a
// click never lands on a row replaced between press and release.
//
// Charts: completed/s and failed/s over the last HISTORY_S seconds, from the differences
// between samples of the counters in /api/status (over 5 s), drawn as SVG paths.
//
// Cluster: when /api/status names peers, /api/cluster/status?functions=false is polled
// beside it (every POLL_MS, never two at once, and not waited for by the main poll: a
// slow peer delays only this panel), one row per node, up or down with why, and the sum;
// each node's Done/s from its completed counter over RATE_WINDOW_S, as the chart's.
//
// window.spurStats exposes counts and timings (performance.now() around each render, and
// the time from navigation to the first full render) for the tests.
'use strict';
(function () {
  const POLL_MS = 1000, HIDDEN_MS = 15000, MAX_BACKOFF_MS = 30000, LISTS_MS = 10000;
  const HISTORY_S = 300, RATE_WINDOW_S = 5, CAP = 200, ME_MS = 60000, ARM_MS = 4000;

  const stats = window.spurStats = {
    polls: 0, renders: 0, lastRenderMs: 0, maxRenderMs: 0, loadMs: null, errors: 0, lastError: '',
    listFetches: 0, recentMs: [], // the last 20 renders
  };

  const state = {
    me: null, meAt: 0,
    status: null, workers: [], scheduled: [], schedules: [], dead: [],
    cluster: null, clusterInflight: false, clusterHist: {}, // addr -> [{t, c}]
    listErr: {}, // section -> error text of its last fetch
    listKey: '', listsAt: 0, listsDirty: true,
    history: [], // {t (s), c (completed), f (failed)}
    startedAt: '',
    filter: {}, shown: {},
    sort: { key: 'name', desc: false },
    failures: 0, timer: 0, inflight: false, again: false,
    pressed: false, renderPending: false,
    armed: null, // {key, until}: a destructive button clicked once, waiting for the second
    token: sessionStorage.getItem('spur-token') || '',
  };

  const $ = (id) => document.getElementById(id);
  const ENT = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
  const esc = (s) => String(s == null ? '' : s).replace(/[&<>"']/g, (c) => ENT[c]);
  // num prints an integer with thousands separators: "1,234". By hand, because
  // toLocaleString builds a formatter per call, which costs a 1,000-row table 100 ms.
  function num(n) {
    if (n == null) return '';
    const s = String(n);
    if (s.length < 4 || !/^-?\d+$/.test(s)) return s;
    let out = '', i = s.length;
    while (i > 3 && s[i - 4] !== '-') { out = ',' + s.slice(i - 3, i) + out; i -= 3; }
    return s.slice(0, i) + out;
  }
  const can = (word) => !!(state.me && state.me.may && state.me.may[word]);

  // ---- formatting -------------------------------------------------------------------

  function dur(s) {
    if (s == null || !isFinite(s)) return '';
    if (s < 10) return s.toFixed(1) + 's';
    if (s < 60) return Math.floor(s) + 's';
    const m = Math.floor(s / 60), h = Math.floor(m / 60), d = Math.floor(h / 24);
    if (m < 60) return m + 'm ' + String(Math.floor(s % 60)).padStart(2, '0') + 's';
    if (h < 24) return h + 'h ' + String(m % 60).padStart(2, '0') + 'm';
    return d + 'd ' + (h % 24) + 'h';
  }

  // when renders an RFC 3339 time as "in 4m 05s" / "12s ago", the time itself as its title.
  function when(t) {
    if (!t) return '<span class="muted">—</span>';
    const ms = Date.parse(t);
    if (isNaN(ms)) return esc(t);
    const d = (ms - Date.now()) / 1000;
    const rel = Math.abs(d) < 1 ? 'now' : d > 0 ? 'in ' + dur(d) : dur(-d) + ' ago';
    return '<time datetime="' + esc(t) + '" title="' + esc(t) + '">' + rel + '</time>';
  }

  function payload(o) {
    if (o.data != null) return o.data;
    if (o.data_base64 != null) return 'base64:' + o.data_base64;
    return '';
  }

  function clip(s, n) {
    s = String(s == null ? '' : s);
    return s.length > n ? s.slice(0, n) + '…' : s;
  }

  // btn is an action button; destructive ones (confirm) take a second click within ARM_MS.
  function btn(act, arg, label, confirm) {
    const key = act + '\0' + arg;
    const armed = confirm && state.armed && state.armed.key === key && state.armed.until > Date.now();
    return '<button data-act="' + act + '" data-arg="' + esc(arg) + '"' +
      (confirm ? ' data-confirm="1"' : '') + (armed ? ' class="armed">Sure? ' : '>') + label + '</button>';
  }

  // ---- the API ----------------------------------------------------------------------

  async function api(method, path, body) {
    const headers = { Accept: 'application/json' };
    if (state.token) headers.Authorization = 'Bearer ' + state.token;
    const init = { method, headers, credentials: 'same-origin', cache: 'no-store' };
    if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    const res = await fetch(path, init);
    let j = null;
    try { j = await res.json(); } catch (e) { /* not JSON: described below */ }
    if (!res.ok) {
      const err = new Error(j && j.error ? j.error.message || j.error.code : res.status + ' ' + res.statusText);
      err.status = res.status;
      err.code = j && j.error ? j.error.code : '';
      throw err;
    }
    return j || {};
  }

  const enc = encodeURIComponent;

  // settle runs a request and returns [value, error] instead of throwing.
  async function settle(p) {
    try { return [await p, null]; } catch (e) { return [null, e]; }
  }

  // ---- polling ----------------------------------------------------------------------

  // listKey changes whenever one of the lists may have changed in a way the counts show.
  function listKey(s) {
    let sched = 0;
    for (const f of s.functions || []) sched += f.scheduled || 0;
    const t = s.totals || {};
    return [s.dead_letters, s.schedules, sched, t.dead_lettered, t.retried].join('|');
  }

  async function poll() {
    clearTimeout(state.timer);
    state.timer = 0;
    if (state.inflight) { state.again = true; return; }
    state.inflight = true;
    stats.polls++;
    try {
      const needMe = !state.me || Date.now() - state.meAt > ME_MS;
      const [status, workers, me] = await Promise.all([
        api('GET', '/api/status'),
        settle(api('GET', '/api/workers')),
        needMe ? settle(api('GET', '/api/me')) : [null, null],
      ]);
      if (me[0]) { state.me = me[0]; state.meAt = Date.now(); }
      state.status = status;
      state.workers = workers[0] ? workers[0].workers || [] : [];
      state.listErr.workers = workers[1] ? workers[1].message : '';
      sample(status);
      if ((status.peers || []).length) pollCluster();
      const key = listKey(status);
      if (state.listsDirty || key !== state.listKey || Date.now() - state.listsAt >= LISTS_MS) {
        state.listsDirty = false;
        stats.listFetches++;
        const [sj, sc, dl] = await Promise.all([
          settle(api('GET', '/api/scheduled')),
          settle(api('GET', '/api/schedules')),
          settle(api('GET', '/api/dead')),
        ]);
        if (sj[0]) state.scheduled = sj[0].jobs || [];
        if (sc[0]) state.schedules = sc[0].schedules || [];
        if (dl[0]) state.dead = dl[0].dead || [];
        state.listErr.scheduled = sj[1] ? sj[1].message : '';
        state.listErr.schedules = sc[1] ? sc[1].message : '';
        state.listErr.dead = dl[1] ? dl[1].message : '';
        state.listKey = key;
        state.listsAt = Date.now();
      }
      state.failures = 0;
      setConn('live', 'ok');
      if (state.pressed) state.renderPending = true; else render();
    } catch (e) {
      state.failures++;
      stats.errors++;
      stats.lastError = e.message;
      setConn('error: ' + e.message + ' — retrying in ' + Math.round(delay() / 1000) + 's', 'bad');
    } finally {
      state.inflight = false;
    }
    if (state.again) { state.again = false; poll(); return; }
    state.timer = setTimeout(poll, delay());
  }

  // pollCluster reads the cluster view; its own request, so that the rest never waits for it.
  async function pollCluster() {
    if (state.clusterInflight) return;
    state.clusterInflight = true;
    stats.clusterPolls = (stats.clusterPolls || 0) + 1;
    try {
      const [c, err] = await settle(api('GET', '/api/cluster/status?functions=false'));
      if (c) {
        state.cluster = c;
        state.listErr.cluster = '';
        sampleCluster(c);
      } else {
        state.listErr.cluster = err.message;
      }
      if (state.pressed) state.renderPending = true; else render();
    } finally {
      state.clusterInflight = false;
    }
  }

  function sampleCluster(c) {
    const now = Date.now() / 1000;
    for (const n of c.nodes || []) {
      if (!n.up) continue;
      const h = state.clusterHist[n.addr] || (state.clusterHist[n.addr] = []);
      const t = n.totals || {};
      if (h.length && h[h.length - 1].s !== n.started_at) h.length = 0; // restarted
      h.push({ t: now, c: t.completed || 0, s: n.started_at });
      while (h.length > 2 && h[1].t < now - RATE_WINDOW_S) h.shift();
    }
  }

  // nodeRate is a node's completed jobs per second over its samples (null: not yet known).
  function nodeRate(n) {
    const h = state.clusterHist[n.addr];
    if (!n.up || !h || h.length < 2) return null;
    const a = h[0], b = h[h.length - 1];
    return b.t > a.t ? Math.max(0, (b.c - a.c) / (b.t - a.t)) : null;
  }

  function delay() {
    let ms = document.hidden ? HIDDEN_MS : POLL_MS;
    if (state.failures) ms = Math.max(ms, Math.min(MAX_BACKOFF_MS, POLL_MS * 2 ** state.failures));
    return ms;
  }

  // refresh polls now, lists included (after an action).
  function refresh() {
    state.listsDirty = true;
    poll();
  }

  function setConn(text, cls) {
    const el = $('conn');
    el.textContent = text;
    el.className = 'badge ' + cls;
  }

  // sample records the counters for the charts; a restarted server starts the history anew.
  function sample(s) {
    const t = s.totals || {};
    const h = state.history;
    if (s.started_at !== state.startedAt) { h.length = 0; state.startedAt = s.started_at; }
    const now = Date.now() / 1000;
    h.push({ t: now, c: t.completed || 0, f: t.failed || 0 });
    while (h.length > 2 && h[1].t < now - HISTORY_S) h.shift();
  }

  // ---- rendering --------------------------------------------------------------------

  function setHTML(el, html) {
    if (el.spurHTML !== html) {
      el.innerHTML = html;
      el.spurHTML = html;
    }
  }

  function render() {
    state.renderPending = false;
    if (!state.status) return;
    const t0 = performance.now();
    renderHeader();
    renderSummary();
    renderCharts();
    $('cluster').hidden = !(state.status.peers || []).length;
    for (const tb of TABLES) renderTable(tb);
    const ms = performance.now() - t0;
    stats.renders++;
    stats.lastRenderMs = ms;
    stats.recentMs.push(Math.round(ms * 10) / 10);
    if (stats.recentMs.length > 20) stats.recentMs.shift();
    if (ms > stats.maxRenderMs) stats.maxRenderMs = ms;
    if (stats.loadMs == null) stats.loadMs = performance.now();
  }

  function renderHeader() {
    const s = state.status;
    $('version').textContent = 'v' + s.version + ' · up ' + dur(s.uptime_s);
    $('draining').hidden = !s.draining;
    const me = state.me && state.me.identity;
    if (me) {
      const who = [me.name || me.ip, me.loopback ? 'loopback' : '', me.token ? 'token ' + me.token : '']
        .filter(Boolean).join(', ');
      $('identity').textContent = 'viewing as ' + who;
    }
  }

  function renderSummary() {
    const s = state.status, t = s.totals || {};
    const cards = [
      ['queued', t.queued], ['running', t.running], ['workers', t.workers],
      ['connections', s.connections], ['functions', (s.functions || []).length],
      ['submitted', t.submitted], ['completed', t.completed], ['failed', t.failed],
      ['retried', t.retried], ['dead-lettered', t.dead_lettered],
      ['results stored', s.results_stored], ['dead letters', s.dead_letters], ['schedules', s.schedules],
    ];
    let html = '';
    for (const [k, v] of cards) {
      html += '<div class="card" data-key="' + k + '"><span class="v">' + num(v) + '</span><span class="k">' + k + '</span></div>';
    }
    setHTML($('summary'), html);
  }

  // rates turns the counter samples into per-second rates at each sample's time, each over
  // the RATE_WINDOW_S before it (or the gap since the sample before, when longer), so that
  // the jitter of one-second polls does not draw noise.
  function rates(field) {
    const h = state.history, out = [];
    let j = 0;
    for (let i = 1; i < h.length; i++) {
      while (j + 1 < i && h[i].t - h[j + 1].t >= RATE_WINDOW_S) j++;
      const dt = h[i].t - h[j].t;
      if (dt > 0) out.push({ t: h[i].t, v: Math.max(0, (h[i][field] - h[j][field]) / dt) });
    }
    return out;
  }

  function niceCeil(v) {
    if (!(v > 0)) return 1;
    const p = 10 ** Math.floor(Math.log10(v));
    for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
    return 10 * p;
  }

  function fmtRate(v) {
    return v >= 100 ? num(Math.round(v)) : v >= 10 ? v.toFixed(1) : v.toFixed(2);
  }

  function renderCharts() {
    const now = Date.now() / 1000;
    for (const [field, id, label] of [['c', 'completed', 'completed'], ['f', 'failed', 'failed']]) {
      const pts = rates(field);
      setHTML($('chart-' + id), chartSVG(pts, now));
      const cur = pts.length ? pts[pts.length - 1].v : 0;
      $('rate-' + id).textContent = fmtRate(cur) + '/s';
      $('rate-' + id).title = label + ' per second over the last poll';
    }
  }

  // chartSVG draws points {t, v} in a 600×130 viewBox over the history there is, at least
  // 30 s and at most HISTORY_S: a line, the area under it, three grid lines labelled with
  // their value, and the time axis.
  function chartSVG(pts, now) {
    const W = 600, H = 130, L = 44, R = 6, T = 8, B = 18;
    const h = state.history;
    const span = Math.min(HISTORY_S, Math.max(30, h.length ? now - h[0].t : 0));
    let max = 0;
    for (const p of pts) if (p.v > max) max = p.v;
    const top = niceCeil(max);
    const x = (t) => (L + (W - L - R) * (1 - (now - t) / span)).toFixed(1);
    const y = (v) => (T + (H - T - B) * (1 - v / top)).toFixed(1);
    let svg = '';
    for (const g of [0, 0.5, 1]) {
      const gy = y(top * g);
      svg += '<line class="grid" x1="' + L + '" x2="' + (W - R) + '" y1="' + gy + '" y2="' + gy + '"/>' +
        '<text class="axis" x="' + (L - 4) + '" y="' + gy + '" dy="4" text-anchor="end">' + fmtRate(top * g) + '</text>';
    }
    const step = span > 120 ? 60 : span > 60 ? 20 : 10;
    for (let a = 0; a <= span + 0.001; a += step) {
      svg += '<text class="axis" x="' + x(now - a) + '" y="' + (H - 4) + '" text-anchor="' + (a === 0 ? 'end' : 'middle') + '">' +
        (a === 0 ? 'now' : '-' + (step === 60 ? a / 60 + 'm' : a + 's')) + '</text>';
    }
    const vis = pts.filter((p) => p.t >= now - span);
    if (vis.length) {
      let d = '';
      for (const p of vis) d += (d ? 'L' : 'M') + x(p.t) + ' ' + y(p.v);
      const base = y(0);
      svg += '<path class="area" d="' + d + 'L' + x(vis[vis.length - 1].t) + ' ' + base + 'L' + x(vis[0].t) + ' ' + base + 'Z"/>' +
        '<path class="line" d="' + d + '"/>';
    }
    return svg;
  }

  // Each table: rows() the data, key(row), text(row) what the filter box matches, html(row)
  // one <tr>; cols for the "nothing here" row.
  const TABLES = [
    {
      name: 'cluster', cols: 9,
      rows: clusterRows,
      text: (n) => n.name + ' ' + n.addr,
      html: clusterRow,
      empty: 'reading the peers…',
    },
    {
      name: 'fn', cols: 14,
      rows: () => sortFunctions((state.status.functions || []).slice()),
      text: (f) => f.name,
      html: fnRow,
      empty: 'no functions yet',
    },
    {
      name: 'workers', cols: 8,
      rows: () => state.workers,
      text: (w) => [w.id, w.ip, w.client_id, w.identity, (w.functions || []).join(' ')].join(' '),
      html: workerRow,
      empty: 'no workers connected',
    },
    {
      name: 'scheduled', cols: 7,
      rows: () => state.scheduled,
      text: (j) => [j.handle, j.function, j.unique, j.schedule].join(' '),
      html: scheduledRow,
      empty: 'no scheduled jobs',
    },
    {
      name: 'schedules', cols: 10,
      rows: () => state.schedules,
      text: (s) => [s.handle, s.function, s.spec, s.unique].join(' '),
      html: scheduleRow,
      empty: 'no schedules',
    },
    {
      name: 'deadfn', cols: 3, errorOf: 'dead',
      rows: deadByFunction,
      text: (g) => g.function,
      html: deadFnRow,
      empty: 'no dead letters',
    },
    {
      name: 'dead', cols: 9,
      rows: () => state.dead,
      text: (d) => [d.handle, d.function, d.unique, d.outcome, d.error].join(' '),
      html: deadRow,
      empty: 'no dead letters',
    },
  ];

  const BODIES = {};

  function renderTable(tb) {
    const body = BODIES[tb.name] || (BODIES[tb.name] = document.querySelector('[data-body="' + tb.name + '"]'));
    const all = tb.rows();
    const f = (state.filter[tb.name] || '').toLowerCase();
    const rows = f ? all.filter((r) => tb.text(r).toLowerCase().includes(f)) : all;
    const cap = state.shown[tb.name] || CAP;
    let html = '';
    const err = state.listErr[tb.errorOf || tb.name];
    if (err) html += '<tr class="err"><td colspan="' + tb.cols + '">' + esc(err) + '</td></tr>';
    const n = Math.min(rows.length, cap);
    for (let i = 0; i < n; i++) html += tb.html(rows[i]);
    if (!rows.length && !err) html += '<tr class="empty"><td colspan="' + tb.cols + '">' + (f ? 'nothing matches' : tb.empty) + '</td></tr>';
    setHTML(body, html);
    const count = document.querySelector('[data-count="' + tb.name + '"]');
    if (count) count.textContent = f ? num(rows.length) + ' of ' + num(all.length) : num(all.length);
    const more = document.querySelector('[data-more="' + tb.name + '"]');
    if (more) {
      setHTML(more, rows.length > n
        ? 'showing ' + num(n) + ' of ' + num(rows.length) + ' <button data-act="more" data-arg="' + tb.name + '">show ' + num(Math.min(CAP * 5, rows.length - n)) + ' more</button>'
        : '');
    }
  }

  const SORTS = {
    name: null,
    high: (f) => f.queued.high, normal: (f) => f.queued.normal, low: (f) => f.queued.low,
    scheduled: (f) => f.scheduled, oldest: (f) => f.oldest_queued_age_s || 0,
    running: (f) => f.running, workers: (f) => f.workers, limit: (f) => f.limit,
    completed: (f) => f.completed, failed: (f) => f.failed, dead: (f) => f.dead_lettered,
  };

  function sortFunctions(fns) {
    const s = state.sort, by = SORTS[s.key];
    if (by) fns.sort((a, b) => (by(a) - by(b)) || (a.name < b.name ? -1 : 1));
    if (s.desc) fns.reverse();
    return fns;
  }

  function fnRow(f) {
    const q = f.queued || {};
    const act = f.paused ? (can('resume') ? btn('resume', f.name, 'Resume') : '') : (can('pause') ? btn('pause', f.name, 'Pause') : '');
    return '<tr data-key="' + esc(f.name) + '"' + (f.paused ? ' class="paused"' : '') + '>' +
      '<td class="name">' + esc(f.name) + '</td>' +
      '<td class="num high">' + num(q.high) + '</td>' +
      '<td class="num normal">' + num(q.normal) + '</td>' +
      '<td class="num low">' + num(q.low) + '</td>' +
      '<td class="num scheduled">' + num(f.scheduled) + '</td>' +
      '<td class="num oldest">' + dur(f.oldest_queued_age_s) + '</td>' +
      '<td class="num running">' + num(f.running) + '</td>' +
      '<td class="num workers">' + num(f.workers) + '</td>' +
      '<td class="num limit">' + (f.limit ? num(f.limit) : '<span class="muted">—</span>') + '</td>' +
      '<td class="state">' + (f.paused ? '<span class="badge warn">paused</span>' : 'active') + '</td>' +
      '<td class="num completed">' + num(f.completed) + '</td>' +
      '<td class="num failed">' + num(f.failed) + '</td>' +
      '<td class="num dead">' + num(f.dead_lettered) + '</td>' +
      '<td class="act">' + act + '</td></tr>';
  }

  // clusterRows are the nodes, then their sum (key "sum"), while the panel is shown.
  function clusterRows() {
    const c = state.cluster;
    if (!c || !(state.status.peers || []).length) return [];
    const s = c.sum || {}, t = s.totals || {};
    let rate = 0;
    for (const n of c.nodes || []) rate += nodeRate(n) || 0;
    return (c.nodes || []).concat([{ sum: true, name: 'all', addr: '', up: true, summary: s.up + ' of ' + s.nodes + ' up', totals: t, rate }]);
  }

  function clusterRow(n) {
    const t = n.totals || {};
    const cell = (cls, v) => '<td class="num ' + cls + '">' + (n.up ? num(v) : '<span class="muted">—</span>') + '</td>';
    const rate = n.sum ? n.rate : nodeRate(n);
    const st = n.sum ? esc(n.summary) : n.up ? '<span class="badge ok">up</span>' : '<span class="badge bad">down</span>';
    return '<tr data-key="' + esc(n.sum ? 'sum' : n.addr) + '" class="' + (n.sum ? 'sum' : n.up ? 'up' : 'down') + '">' +
      '<td class="name">' + esc(n.name || '—') + (n.self ? ' <span class="muted">(this node)</span>' : '') + '</td>' +
      '<td class="addr">' + esc(n.addr) + '</td><td class="state">' + st + '</td>' +
      cell('queued', t.queued) + cell('running', t.running) + cell('workers', t.workers) +
      '<td class="num rate">' + (rate == null ? '<span class="muted">—</span>' : fmtRate(rate)) + '</td>' +
      '<td class="num uptime">' + (n.up && !n.sum ? dur(n.uptime_s) : '') + '</td>' +
      '<td class="error" title="' + esc(n.error) + '">' + esc(clip(n.error, 120)) + '</td></tr>';
  }

  function workerRow(w) {
    const fns = w.functions || [];
    const shown = fns.slice(0, 4).map(esc).join(', ') + (fns.length > 4 ? ' <span class="muted">+' + (fns.length - 4) + ' more</span>' : '');
    const st = w.draining ? '<span class="badge warn">draining</span>' : (w.running && w.running.length) ? 'busy' : w.sleeping ? 'sleeping' : 'idle';
    let run = '';
    for (const r of w.running || []) {
      run += '<div class="job" data-handle="' + esc(r.handle) + '"><code>' + esc(r.handle) + '</code> ' + esc(r.function) +
        ' <span class="muted">for</span> <span class="for">' + dur(r.running_s) + '</span></div>';
    }
    return '<tr data-key="' + esc(w.id) + '">' +
      '<td class="id">' + esc(w.id) + '</td><td>' + esc(w.ip) + '</td><td>' + esc(w.client_id || '') + '</td>' +
      '<td>' + esc(w.identity || '') + '</td><td class="fns" title="' + esc(fns.join(', ')) + '">' + shown + '</td>' +
      '<td class="state">' + st + '</td><td class="running">' + (run || '<span class="muted">—</span>') + '</td>' +
      '<td class="act">' + (can('drain') && !w.draining ? btn('drain', w.id, 'Drain', true) : '') + '</td></tr>';
  }

  function scheduledRow(j) {
    return '<tr data-key="' + esc(j.handle) + '">' +
      '<td><code>' + esc(j.handle) + '</code></td><td class="fn">' + esc(j.function) + '</td><td>' + esc(j.unique) + '</td>' +
      '<td>' + esc(j.priority) + '</td><td class="at">' + when(j.run_at) + '</td><td>' + esc(j.schedule || '') + '</td>' +
      '<td class="act">' + (can('cancel') ? btn('cancel', j.handle, 'Cancel', true) : '') + '</td></tr>';
  }

  function scheduleRow(s) {
    let act = '';
    if (can('schedule')) {
      act = (s.paused ? btn('sched-resume', s.handle, 'Resume') : btn('sched-pause', s.handle, 'Pause')) +
        btn('sched-run', s.handle, 'Run now') + btn('sched-delete', s.handle, 'Delete', true);
    }
    return '<tr data-key="' + esc(s.handle) + '"' + (s.paused ? ' class="paused"' : '') + '>' +
      '<td><code>' + esc(s.handle) + '</code></td><td class="fn">' + esc(s.function) + '</td><td><code>' + esc(s.spec) + '</code></td>' +
      '<td>' + esc(s.tz || 'server') + '</td><td>' + esc(s.unique) + '</td><td>' + esc(s.priority) + '</td>' +
      '<td class="state">' + (s.paused ? '<span class="badge warn">paused</span>' : 'active') + '</td>' +
      '<td class="next">' + when(s.next_run) + '</td><td class="last">' + when(s.last_run) + '</td>' +
      '<td class="act">' + act + '</td></tr>';
  }

  function deadByFunction() {
    const by = new Map();
    for (const d of state.dead) by.set(d.function, (by.get(d.function) || 0) + 1);
    return [...by].sort((a, b) => (a[0] < b[0] ? -1 : 1)).map(([fn, n]) => ({ function: fn, n }));
  }

  function deadFnRow(g) {
    return '<tr data-key="' + esc(g.function) + '"><td class="fn">' + esc(g.function) + '</td><td class="num n">' + num(g.n) + '</td>' +
      '<td class="act">' + (can('retry') ? btn('retry-fn', g.function, 'Retry all') : '') +
      (can('purge') ? btn('purge-fn', g.function, 'Purge', true) : '') + '</td></tr>';
  }

  function deadRow(d) {
    return '<tr data-key="' + esc(d.handle) + '">' +
      '<td><code>' + esc(d.handle) + '</code></td><td class="fn">' + esc(d.function) + '</td><td>' + esc(d.unique) + '</td>' +
      '<td class="num attempts">' + num(d.attempts) + '</td><td>' + when(d.first_failed_at) + '</td><td>' + when(d.last_failed_at) + '</td>' +
      '<td>' + esc(d.outcome) + '</td><td class="error" title="' + esc(d.error) + '">' + esc(clip(d.error, 120)) + '</td>' +
      '<td class="act">' + (can('retry') ? btn('retry', d.handle, 'Retry') : '') + '</td></tr>';
  }

  // ---- actions ----------------------------------------------------------------------

  const ACTIONS = {
    pause: (fn) => api('POST', '/api/functions/' + enc(fn) + '/pause').then(() => 'paused ' + fn),
    resume: (fn) => api('POST', '/api/functions/' + enc(fn) + '/resume').then(() => 'resumed ' + fn),
    drain: (id) => api('POST', '/api/workers/' + enc(id) + '/drain').then(() => 'draining worker ' + id),
    cancel: (h) => api('DELETE', '/api/jobs/' + enc(h)).then(() => 'cancelled ' + h),
    'sched-pause': (h) => api('POST', '/api/schedules/' + enc(h) + '/pause').then(() => 'paused schedule ' + h),
    'sched-resume': (h) => api('POST', '/api/schedules/' + enc(h) + '/resume').then(() => 'resumed schedule ' + h),
    'sched-run': (h) => api('POST', '/api/schedules/' + enc(h) + '/run').then(() => 'ran schedule ' + h),
    'sched-delete': (h) => api('DELETE', '/api/schedules/' + enc(h)).then(() => 'deleted schedule ' + h),
    retry: (h) => api('POST', '/api/dead/' + enc(h) + '/retry').then(() => 'queued ' + h + ' again'),
    'retry-fn': (fn) => api('POST', '/api/dead/retry', { function: fn }).then((r) => 'queued ' + num(r.retried) + ' of ' + fn + ' again'),
    'purge-fn': (fn) => api('DELETE', '/api/dead?function=' + enc(fn)).then((r) => 'purged ' + num(r.purged) + ' of ' + fn),
  };

  let toastTimer = 0;
  function toast(text, bad) {
    const el = $('toast');
    el.textContent = text;
    el.className = 'show' + (bad ? ' bad' : '');
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { el.className = ''; }, bad ? 8000 : 3000);
  }

  document.addEventListener('click', (ev) => {
    const th = ev.target.closest('th[data-sort]');
    if (th) {
      const k = th.dataset.sort;
      state.sort = { key: k, desc: state.sort.key === k ? !state.sort.desc : k !== 'name' };
      render();
      return;
    }
    const b = ev.target.closest('button[data-act]');
    if (!b) return;
    const act = b.dataset.act, arg = b.dataset.arg;
    if (act === 'more') {
      state.shown[arg] = (state.shown[arg] || CAP) + CAP * 5;
      render();
      return;
    }
    const run = ACTIONS[act];
    if (!run) return;
    if (b.dataset.confirm) {
      const key = act + '\0' + arg;
      if (!state.armed || state.armed.key !== key || state.armed.until < Date.now()) {
        state.armed = { key, until: Date.now() + ARM_MS };
        render();
        setTimeout(() => { if (state.armed && state.armed.key === key) { state.armed = null; render(); } }, ARM_MS + 50);
        return;
      }
      state.armed = null;
    }
    b.disabled = true;
    run(arg).then((msg) => toast(msg), (e) => toast(act + ' ' + arg + ': ' + e.message, true)).finally(refresh);
  });

  document.addEventListener('input', (ev) => {
    const name = ev.target.dataset && ev.target.dataset.filter;
    if (!name) return;
    state.filter[name] = ev.target.value.trim();
    state.shown[name] = CAP;
    render();
  });

  // Hold redraws while a pointer is down (see the top of the file).
  document.addEventListener('pointerdown', () => { state.pressed = true; }, true);
  const release = () => {
    state.pressed = false;
    if (state.renderPending) setTimeout(render, 0); // after this press's click is dispatched
  };
  document.addEventListener('pointerup', release, true);
  document.addEventListener('pointercancel', release, true);

  document.addEventListener('visibilitychange', () => {
    if (!document.hidden) poll();
  });

  $('token-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    state.token = $('token').value.trim();
    if (state.token) sessionStorage.setItem('spur-token', state.token); else sessionStorage.removeItem('spur-token');
    state.me = null;
    refresh();
  });
  $('token').value = state.token;

  $('result-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    lookup();
  });

  async function lookup() {
    const h = $('result-handle').value.trim(), fn = $('result-function').value.trim(), u = $('result-unique').value.trim();
    const out = $('result-out');
    if (!h && !(fn && u)) { out.innerHTML = '<p class="muted">give a handle, or a function and a unique</p>'; return; }
    const path = h ? '/api/results/' + enc(h) : '/api/results?function=' + enc(fn) + '&unique=' + enc(u);
    const [r, err] = await settle(api('GET', path));
    if (r) { out.innerHTML = resultHTML(r); return; }
    if (err.status !== 404) { out.innerHTML = '<p class="bad-text">' + esc(err.message) + '</p>'; return; }
    // No result: say whether the job is still alive.
    const [j] = await settle(api('GET', h ? '/api/jobs/' + enc(h) : '/api/jobs?unique=' + enc(u)));
    if (j && j.known) {
      out.innerHTML = '<p class="result-state">' + esc(j.handle) + ' (' + esc(j.function || fn) + ') is ' +
        (j.running ? 'running' : 'queued') + (j.denominator ? ', ' + num(j.numerator) + '/' + num(j.denominator) : '') + '; no result yet</p>';
    } else {
      out.innerHTML = '<p class="result-state muted">no result: never existed, or expired</p>';
    }
  }

  function resultHTML(r) {
    const rows = [['handle', '<code>' + esc(r.handle) + '</code>'], ['function', esc(r.function)], ['unique', esc(r.unique)],
      ['outcome', '<span class="outcome ' + esc(r.outcome) + '">' + esc(r.outcome) + '</span>'], ['attempts', num(r.attempts)],
      ['started', when(r.started_at)], ['finished', when(r.finished_at)], ['data', '<pre>' + esc(clip(payload(r), 4000)) + '</pre>']];
    return '<dl class="result">' + rows.map(([k, v]) => '<dt>' + k + '</dt><dd class="' + k + '">' + v + '</dd>').join('') + '</dl>';
  }

  poll();
})();
