// The live view's page: renders what `events` streams (a snapshot, then
// updates). Store data only ever reaches the page through textContent (and
// CSSOM for sizes and colours), never as markup. No polling: a one-second
// timer only re-renders ages and running durations.
'use strict';

/** The viewer's clock (see the messages' `now`), advanced by this page's monotonic clock. */
let clock = { now: 0, perf: 0 };
const viewerNow = () => clock.now + (performance.now() - clock.perf);

/** name -> { view, entries: Map<id, entry>, ui } */
const elections = new Map();
/** Paths shown, in Doozer's walk order, and their rows. */
let paths = [];
const rows = new Map();

const $ = (id) => document.getElementById(id);

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined) e.textContent = text;
  return e;
}

const ESCAPES = { 0x09: '\\t', 0x0a: '\\n', 0x0d: '\\r' };

/**
 * Text split into plain runs and escapes (`\n`, `\x07`, `\u202e`) for the
 * control characters and bidirectional overrides, so text shows as it is.
 */
function parts(s) {
  const out = [];
  let plain = '';
  for (const ch of s) {
    const c = ch.codePointAt(0);
    const bidi = (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
    if (c >= 0x20 && c !== 0x7f && !bidi) {
      plain += ch;
      continue;
    }
    if (plain) out.push({ text: plain });
    plain = '';
    const hex = c.toString(16).padStart(bidi ? 4 : 2, '0');
    out.push({ text: ESCAPES[c] ?? (bidi ? `\\u${hex}` : `\\x${hex}`), escape: true });
  }
  if (plain) out.push({ text: plain });
  return out;
}

/** `s` with its control characters escaped, as one string. */
const visible = (s) =>
  parts(s)
    .map((p) => p.text)
    .join('');

/** `s` as nodes: escapes in a marked span (a newline also breaks the line). */
function visibleNodes(s) {
  return parts(s).flatMap((p) => {
    if (!p.escape) return [document.createTextNode(p.text)];
    const mark = el('span', 'escape', p.text);
    return p.text === '\\n' ? [mark, document.createTextNode('\n')] : [mark];
  });
}

function comparePaths(a, b) {
  const x = a.split('/');
  const y = b.split('/');
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    if (x[i] !== y[i]) return x[i] < y[i] ? -1 : 1;
  }
  return x.length - y.length;
}

function duration(ms) {
  if (ms < 1000) return `${Math.max(0, Math.round(ms))} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
}

function time(t) {
  const d = new Date(t);
  return `${d.toTimeString().slice(0, 8)}.${String(d.getMilliseconds()).padStart(3, '0')}`;
}

/** A stable colour per master address (FNV-1a, mixed, so close addresses differ). */
function hue(s) {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  h = Math.imul(h ^ (h >>> 16), 0x45d9f3b);
  return ((h ^ (h >>> 16)) >>> 0) % 360;
}

const REASONS = {
  released: ['released', 'the master gave its lease back (resign, close, or forced on the master)'],
  forced: ['forced', 'the election file was deleted while the master held its lease'],
  deposed: ['deposed', 'the lease was not renewed; another participant replaced the master'],
  deleted: ['deleted', 'the election file was deleted; there was no lease (a Go client?)'],
  replaced: ['replaced', 'the election file was overwritten by a new master'],
  unobserved: ['unobserved', 'ended while the viewer was out of touch with the store'],
  pending: ['ended', 'the election file was deleted while its lease was still held'],
};

// ------------------------------------------------------------------ store tree

function fillRow(tr, file) {
  const [pathCell, revCell, valueCell] = tr.children;
  const cut = file.path.lastIndexOf('/') + 1;
  pathCell.replaceChildren(el('span', 'dir', file.path.slice(0, cut)), file.path.slice(cut));
  revCell.textContent = String(file.rev);
  valueCell.className = 'value';
  if (file.text === undefined) {
    valueCell.classList.add('omitted');
    valueCell.textContent = `(${file.size} bytes)`;
  } else if (file.text === '') {
    valueCell.classList.add('omitted');
    valueCell.textContent = '(empty)';
  } else {
    valueCell.replaceChildren(...visibleNodes(file.text));
    if (file.binary) valueCell.append(el('span', 'badge', 'not UTF-8'));
  }
}

function newRow(file) {
  const tr = el('tr');
  tr.append(el('td', 'path'), el('td', 'rev'), el('td', 'value'));
  fillRow(tr, file);
  return tr;
}

function flash(tr) {
  tr.classList.remove('changed');
  void tr.offsetWidth; // restart the animation
  tr.classList.add('changed');
}

function setFile(path, file) {
  const body = $('tree').tBodies[0];
  const tr = rows.get(path);
  if (file === null) {
    if (!tr) return;
    tr.remove();
    rows.delete(path);
    paths.splice(paths.indexOf(path), 1);
  } else if (tr) {
    fillRow(tr, file);
    flash(tr);
  } else {
    let lo = 0;
    let hi = paths.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (comparePaths(paths[mid], path) < 0) lo = mid + 1;
      else hi = mid;
    }
    const row = newRow(file);
    body.insertBefore(row, rows.get(paths[lo]) ?? null);
    paths.splice(lo, 0, path);
    rows.set(path, row);
    flash(row);
  }
}

function renderTree(tree) {
  rows.clear();
  paths = tree.files.map((f) => f.path);
  const body = $('tree').tBodies[0];
  body.replaceChildren(
    ...tree.files.map((f) => {
      const tr = newRow(f);
      rows.set(f.path, tr);
      return tr;
    }),
  );
  $('tree-truncated').hidden = !tree.truncated;
}

// ------------------------------------------------------------------ elections

function newCard(name) {
  const node = el('article', 'election');
  node.dataset.election = name;
  const dl = el('dl');
  const field = (label, className) => {
    const dd = el('dd', className);
    dl.append(el('dt', '', label), dd);
    return dd;
  };
  const ui = {
    node,
    master: field('master', 'master'),
    term: field('term / fencing token', 'term'),
    lease: field('lease', 'lease'),
    age: field('lease age', 'lease-age'),
    bar: el('div', 'bar'),
    list: el('ol', 'timeline'),
  };
  ui.bar.setAttribute('aria-hidden', 'true');
  node.append(el('h3', '', visible(name)), dl, ui.bar, ui.list);
  return ui;
}

function leaseText(v) {
  const l = v.lease;
  if (!l) return 'none (no lease file: a Go client’s election?)';
  if (!l.valid) return `not a lease record (rev ${l.rev})`;
  let s = `${l.state} by ${visible(l.holder)} for term ${l.term}, renewal ${l.seq}`;
  if (v.master && l.term !== v.master.token) s += ' (not the current term)';
  return s;
}

function entryText(t, now) {
  const end = t.end ?? now;
  const from = `${time(t.start)}${t.startSeen ? '' : ' or earlier'}`;
  const to = t.end === undefined ? 'now' : time(t.end);
  return `${from} → ${to} (${duration(end - t.start)})`;
}

function renderEntry(t, now) {
  const li = el('li', t.kind);
  li.dataset.kind = t.kind;
  const swatch = el('span', 'swatch');
  li.append(swatch);
  if (t.kind === 'term') {
    li.dataset.token = String(t.token);
    swatch.style.background = `hsl(${hue(t.master)} 55% 55%)`;
    li.append(el('b', '', `term ${t.token}`), ' ', el('span', 'addr', visible(t.master)));
  } else {
    li.append(el('b', '', 'no master'));
  }
  li.append(` · ${entryText(t, now)}`);
  if (t.reason) {
    li.dataset.reason = t.reason;
    const [label, title] = REASONS[t.reason] ?? [t.reason, ''];
    const badge = el('span', `reason ${t.reason}`, label);
    badge.title = title;
    li.append(badge);
    if ((t.reason === 'deposed' || t.reason === 'pending') && t.renewedAt !== undefined) {
      li.append(` lease silent for ${duration(t.end - t.renewedAt)}`);
    }
  }
  return li;
}

function renderBar(bar, entries, now) {
  bar.replaceChildren(
    ...entries.map((t) => {
      const end = t.end ?? now;
      const seg = el('div', `seg ${t.kind}`);
      seg.style.flexGrow = String(Math.max(end - t.start, 1));
      if (t.kind === 'term') {
        seg.style.background = `hsl(${hue(t.master)} 55% 55%)`;
        seg.title = `term ${t.token}: ${visible(t.master)}`;
        const silent = t.reason === 'deposed' || t.reason === 'pending';
        if (silent && t.renewedAt !== undefined && end > t.start) {
          const part = el('div', 'silent');
          part.style.width = `${(100 * (end - t.renewedAt)) / (end - t.start)}%`;
          seg.append(part);
        }
      } else seg.title = 'no master';
      return seg;
    }),
  );
}

function renderElection(e) {
  const v = e.view;
  const ui = (e.ui ??= newCard(v.name));
  const now = viewerNow();
  if (v.master) ui.master.replaceChildren(...visibleNodes(v.master.address));
  else ui.master.textContent = 'none';
  ui.master.classList.toggle('none', !v.master);
  ui.term.textContent = v.master ? String(v.master.token) : '–';
  ui.lease.textContent = leaseText(v);
  if (v.leaseChangedAt === null) ui.age.textContent = '–';
  else {
    const age = now - v.leaseChangedAt;
    const every = v.leaseIntervalMs;
    ui.age.textContent = duration(age) + (every ? ` (it changed every ~${duration(every)})` : '');
    ui.age.classList.toggle('stale', !!v.master && !!every && age > 3 * every);
  }
  const entries = [...e.entries.values()].sort((a, b) => a.id - b.id);
  renderBar(ui.bar, entries, now);
  ui.list.replaceChildren(...entries.reverse().map((t) => renderEntry(t, now)));
}

function mergeElection(view) {
  const e = elections.get(view.name) ?? { entries: new Map() };
  e.view = view;
  for (const t of view.timeline) e.entries.set(t.id, t);
  for (const id of e.entries.keys()) if (id < view.firstId) e.entries.delete(id);
  if (!elections.has(view.name)) {
    elections.set(view.name, e);
    renderElection(e);
    const list = $('elections');
    const after = [...elections.keys()].sort().find((n) => n > view.name);
    list.insertBefore(e.ui.node, after ? elections.get(after).ui.node : null);
  } else renderElection(e);
  $('no-elections').hidden = elections.size > 0;
}

// ------------------------------------------------------------------ stream

function setStatus(text, className) {
  const s = $('status');
  s.textContent = text;
  s.className = `status ${className}`;
}

function received(m) {
  clock = { now: m.now, perf: performance.now() };
  if (m.rev !== undefined) $('rev').textContent = String(m.rev);
}

function onSnapshot(m) {
  received(m);
  renderTree(m.tree);
  elections.clear();
  $('elections').replaceChildren();
  for (const v of m.elections) mergeElection(v);
  $('no-elections').hidden = elections.size > 0;
  $('elections-truncated').hidden = !m.electionsTruncated;
  $('tree-count').textContent = `(${m.tree.files.length} files shown)`;
  if (m.connected) setStatus('live', 'live');
  else setStatus('store connection lost', 'down');
}

function onUpdate(m) {
  received(m);
  for (const { path, file } of m.files) setFile(path, file);
  for (const v of m.elections) mergeElection(v);
  $('tree-truncated').hidden = !m.treeTruncated;
  $('tree-count').textContent = `(${paths.length} files shown)`;
}

function onStatus(m) {
  received(m);
  setStatus(`store connection lost: ${visible(m.message)}`, 'down');
}

const stream = new EventSource('events');
const handle = (fn) => (ev) => fn(JSON.parse(ev.data));
stream.addEventListener('snapshot', handle(onSnapshot));
stream.addEventListener('update', handle(onUpdate));
stream.addEventListener('status', handle(onStatus));
stream.addEventListener('error', () => setStatus('live view unreachable; reconnecting…', 'down'));

setInterval(() => {
  for (const e of elections.values()) renderElection(e);
}, 1000);
