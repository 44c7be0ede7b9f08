// The operator's console. Plain JavaScript, no framework, no build step.
// Everything that comes from agents (ids, bodies, status lines, paths) is
// put on the page with textContent, never parsed as HTML.
"use strict";

const API = "/console/api/";
const PAGE = 200;          // messages per page
const KEEP = 2000;         // most messages kept on screen
const S = {
  csrf: "", peers: new Map(), holds: [], released: [], holdError: "", loops: [], unreadAlertS: 600,
  holdGen: 0, // counts holds and releases seen, so a state fetched before one does not undo it
  msgs: new Map(),         // id → {m, el}
  filter: {peer: "", with: "", thread: "", q: ""},
  more: false, live: false, lost: false,
  arrived: null, // live messages while a page loads
  found: 0, foundMore: false, // search results: how many, and whether older ones exist
};
window.consoleMetrics = {firstRender: 0, lastApply: 0, applied: 0};

const $ = id => document.getElementById(id);
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}
function fmtTime(t) {
  if (!t) return "";
  const d = new Date(t);
  return d.toLocaleTimeString([], {hour: "2-digit", minute: "2-digit", second: "2-digit"});
}
function ago(t) {
  if (!t) return "";
  let s = Math.max(0, (Date.now() - new Date(t).getTime()) / 1000);
  if (s < 60) return Math.round(s) + " s";
  s /= 60; if (s < 60) return Math.round(s) + " min";
  s /= 60; if (s < 48) return Math.round(s) + " h";
  return Math.round(s / 24) + " d";
}
async function getJSON(path) {
  const r = await fetch(API + path, {credentials: "same-origin"});
  if (r.status === 401) { location.reload(); throw new Error("logged out"); }
  if (!r.ok) throw new Error(await r.text());
  return r.json();
}
async function postJSON(path, body) {
  const r = await fetch(API + path, {method: "POST", credentials: "same-origin",
    headers: {"Content-Type": "application/json", "X-Console-CSRF": S.csrf}, body: JSON.stringify(body)});
  let data = null;
  try { data = await r.json(); } catch (e) { data = {error: "HTTP " + r.status}; }
  if (!r.ok && !data.error) data.error = "HTTP " + r.status;
  return data;
}

// ---- throttles: an event asks for a refresh, at most one runs at a time
function throttle(fn, ms) {
  let timer = null, running = false, again = false;
  const run = async () => {
    timer = null;
    if (running) { again = true; return; }
    running = true;
    try { await fn(); } catch (e) { console.warn(e); }
    running = false;
    if (again) { again = false; timer = setTimeout(run, ms); }
  };
  return () => { if (!timer) timer = setTimeout(run, ms); };
}

// ---- state and peers
async function loadState() {
  const gen = S.holdGen;
  const st = await getJSON("state");
  S.csrf = st.csrf;
  S.unreadAlertS = st.unread_alert_s;
  if (gen === S.holdGen) {
    S.holds = st.holds || [];       // {pair, by, at}
    S.released = st.released || []; // and released_by, released_at
  } else {
    refreshState(); // a hold or release came while this state was on its way: it is older than the screen
  }
  S.loops = st.loops || [];
  const online = new Map();
  for (const [id, p] of S.peers) online.set(id, p);
  S.peers = new Map((st.peers || []).map(p => [p.id, p]));
  renderPeers();
  renderAlerts();
  renderPickers();
}
const refreshState = throttle(loadState, 300);

function renderPeers() {
  const tb = document.querySelector("#peers tbody");
  const rows = [];
  let on = 0;
  for (const p of S.peers.values()) {
    if (p.online) on++;
    const tr = el("tr", p.online ? "online" : "offline");
    tr.dataset.peer = p.id;
    const idc = el("td");
    const b = el("button", "link", p.id);
    b.type = "button";
    b.title = "show " + p.id + "'s conversations";
    b.addEventListener("click", () => setFilter({peer: p.id, with: "", thread: ""}));
    idc.append(el("span", "dot"), b);
    if (p.person) idc.append(" ", el("span", "badge person", "person"));
    tr.append(idc);
    tr.append(el("td", "state", p.online ? "online" : "offline · " + ago(p.last_seen)));
    tr.append(el("td", "", [p.host, p.agent].filter(Boolean).join(" · ")));
    tr.append(el("td", "cwd", p.cwd || ""));
    tr.append(el("td", "status", p.status || ""));
    const old = p.oldest_unread && (Date.now() - new Date(p.oldest_unread).getTime()) / 1000 > S.unreadAlertS;
    tr.append(el("td", "unread" + (old ? " old" : ""), p.unread || 0));
    tr.append(el("td", "oldest" + (old ? " unread old" : ""), p.oldest_unread ? ago(p.oldest_unread) : ""));
    tr.append(el("td", "lastread", p.last_read ? ago(p.last_read) + " ago" : "never"));
    rows.push(tr);
  }
  tb.replaceChildren(...rows);
  $("counts").textContent = on + " online · " + S.peers.size + " known";
}

function renderPickers() {
  const ids = [...S.peers.keys()];
  for (const [sel, first] of [[$("f-peer"), "everyone"], [$("f-with"), "anyone"]]) {
    const keep = sel.value;
    sel.replaceChildren(new Option(first, ""), ...ids.map(id => new Option(id, id)));
    sel.value = keep;
  }
  const to = $("c-to"), keep = to.value;
  to.replaceChildren(new Option("everyone online", "*"), new Option("the thread's participants", "thread"),
    ...ids.filter(id => !S.peers.get(id).person).map(id => new Option(id, id)));
  to.value = keep || "*";
}

function pairKey(p) { return p[0] + "\u0000" + p[1]; }
function isHeld(p) { return S.holds.some(h => pairKey(h.pair) === pairKey(p)); }

function renderAlerts() {
  const box = $("alerts");
  const items = [];
  for (const h of S.holds) {
    const a = el("div", "alert held");
    a.dataset.kind = "held";
    a.dataset.pair = h.pair.join(",");
    a.append(el("strong", "", "held"), el("span", "", h.pair[0] + " ↔ " + h.pair[1] +
      ": the relay refuses their messages to each other"), el("span", "who", "held by " + h.by + " since " + fmtTime(h.at) + " (" + ago(h.at) + ")"));
    const b = el("button", "release", "Release");
    b.type = "button";
    b.addEventListener("click", () => hold(h.pair, false));
    a.append(b);
    items.push(a);
  }
  if (S.holdError) {
    const a = el("div", "alert loop");
    a.dataset.kind = "hold-error";
    a.append(el("strong", "", "not kept"), el("span", "", S.holdError));
    items.push(a);
  }
  for (const h of S.released) {
    if (isHeld(h.pair) || (Date.now() - new Date(h.released_at).getTime()) > 3600e3) continue;
    const a = el("div", "alert released");
    a.dataset.kind = "released";
    a.dataset.pair = h.pair.join(",");
    a.append(el("strong", "", "released"), el("span", "", h.pair[0] + " ↔ " + h.pair[1] + " released by " + h.released_by + " " +
      ago(h.released_at) + " ago"), el("span", "who", "held by " + h.by + " at " + fmtTime(h.at)));
    items.push(a);
  }
  const seen = new Set();
  for (let i = S.loops.length - 1; i >= 0; i--) {
    const l = S.loops[i];
    if (seen.has(pairKey(l.pair)) || isHeld(l.pair)) continue;
    seen.add(pairKey(l.pair));
    if ((Date.now() - new Date(l.at).getTime()) > 3600e3) continue;
    const a = el("div", "alert loop");
    a.dataset.kind = "loop";
    a.dataset.pair = l.pair.join(",");
    a.append(el("strong", "", "loop?"), el("span", "", l.warning + " (" + ago(l.at) + " ago)"));
    const b = el("button", "hold", "Hold " + l.pair[0] + " ↔ " + l.pair[1]);
    b.type = "button";
    b.addEventListener("click", () => hold(l.pair, true));
    a.append(b);
    items.push(a);
  }
  for (const p of S.peers.values()) {
    if (!p.oldest_unread || p.person) continue; // an operator reads replies here, not through a mailbox
    const age = (Date.now() - new Date(p.oldest_unread).getTime()) / 1000;
    if (age <= S.unreadAlertS) continue;
    const a = el("div", "alert unread");
    a.dataset.kind = "unread";
    a.append(el("strong", "", "unread"), el("span", "", p.id + " has " + p.unread + " unread, the oldest for " + ago(p.oldest_unread) +
      (p.online ? "" : " (offline)")));
    items.push(a);
  }
  box.replaceChildren(...items);
}

async function hold(pair, on) {
  const r = await postJSON(on ? "hold" : "release", {pair, as: $("c-as").value.trim()});
  S.holdError = r.error || "";
  S.holdGen++;
  if (r.holds) S.holds = r.holds;
  if (r.released) S.released = r.released;
  renderAlerts();
}

// ---- timeline
function recipientsOf(m) { return (m.stages || []).map(s => s.to); }
// Search words as the store takes them (store.searchWords): lower case,
// letters and digits, at most 16; here also without accents, as the
// SQLite store's index folds them.
function fold(s) { return s.normalize("NFD").replace(/\p{M}+/gu, "").toLowerCase(); }
function searchWords(q) { return fold(q).split(/[^\p{L}\p{N}]+/u).filter(Boolean).slice(0, 16); }
// A live message joins the results of a search when each word begins a
// word of its body, as on the SQLite store's index ("migrat" finds
// "Migration", not "immigration"). docs/console.md says where the two may
// differ.
function searchMatches(m, words) {
  const body = fold(m.body || "").split(/[^\p{L}\p{N}]+/u);
  return words.length > 0 && words.every(w => body.some(b => b.startsWith(w)));
}
function matches(m) {
  const f = S.filter;
  if (f.q) return searchMatches(m, searchWords(f.q));
  if (f.thread && m.thread !== f.thread) return false;
  const rc = recipientsOf(m);
  if (f.peer && f.with) {
    return (m.from === f.peer && rc.includes(f.with)) || (m.from === f.with && rc.includes(f.peer));
  }
  if (f.peer) return m.from === f.peer || rc.includes(f.peer);
  return true;
}

const STAGES = ["stored", "delivered", "read"];
function renderStages(ul, m) {
  const items = [];
  for (const s of m.stages || []) {
    const li = el("li", "rcpt");
    li.dataset.to = s.to;
    li.dataset.state = s.state;
    li.append(el("span", "to", s.to + ":"));
    if (!STAGES.includes(s.state)) {
      li.append(el("span", "stage failed", s.state));
    } else {
      const at = {stored: s.stored, delivered: s.delivered, read: s.read};
      const reached = STAGES.indexOf(s.state);
      STAGES.forEach((name, i) => {
        const done = i <= reached;
        const sp = el("span", "stage " + name + (done ? " done" : ""), name + (done && at[name] ? " " + fmtTime(at[name]) : ""));
        li.append(sp);
      });
    }
    items.push(li);
  }
  if (items.length === 0) items.push(el("li", "rcpt none", "no recipient held it"));
  ul.replaceChildren(...items);
}

function renderMessage(m) {
  const li = el("li", "msg" + (m.person ? " person" : ""));
  li.dataset.id = m.id;
  li.tabIndex = 0;
  const head = el("div", "head");
  const from = el("button", "link from", m.from);
  from.type = "button";
  from.addEventListener("click", () => setFilter({peer: m.from, with: "", thread: ""}));
  head.append(from);
  if (m.person) head.append(el("span", "badge person", "person"));
  const to = (m.to || []).join(", ");
  head.append(el("span", "to", "→ " + (to === "*" ? "everyone" : to)));
  head.append(el("time", "ts", fmtTime(m.ts)));
  if (m.thread) {
    const t = el("button", "link badge thread", "#" + m.thread);
    t.type = "button";
    t.addEventListener("click", () => setFilter({peer: "", with: "", thread: m.thread}));
    head.append(t);
  }
  if (m.reply_to) head.append(el("span", "badge", "reply"));
  li.append(head);
  li.append(el("pre", "body", m.body));
  const ul = el("ul", "stages");
  renderStages(ul, m);
  li.append(ul);
  return li;
}

function clearTimeline() {
  S.msgs.clear();
  $("timeline").replaceChildren();
}

function stickToBottom(fn) {
  const tl = $("timeline");
  const atBottom = tl.scrollHeight - tl.scrollTop - tl.clientHeight < 40;
  fn();
  if (atBottom) tl.scrollTop = tl.scrollHeight;
}

function showFound(more) {
  if (more !== undefined) S.foundMore = more;
  $("found").textContent = S.filter.q ? S.found + (S.foundMore ? "+" : "") + " found for “" + S.filter.q + "”" : "";
}

function addLive(m) {
  if (S.arrived) S.arrived.push(m);
  if (S.msgs.has(m.id) || !matches(m)) return;
  if (S.filter.q) { S.found++; showFound(); } // the results stay live
  const li = renderMessage(m);
  li.classList.add("fresh");
  setTimeout(() => li.classList.remove("fresh"), 3000);
  stickToBottom(() => $("timeline").append(li));
  S.msgs.set(m.id, {m, el: li});
  li.dataset.shownAt = Date.now();
  while (S.msgs.size > KEEP) {
    const first = S.msgs.keys().next().value;
    S.msgs.get(first).el.remove();
    S.msgs.delete(first);
    S.more = true;
    $("older").hidden = false;
  }
}

function query(extra) {
  const p = new URLSearchParams();
  const f = S.filter;
  if (f.peer) p.set("peer", f.peer);
  if (f.peer && f.with) p.set("with", f.with);
  if (f.thread) p.set("thread", f.thread);
  for (const [k, v] of Object.entries(extra || {})) p.set(k, v);
  return p.toString();
}

// pageURL is the API request for a page of the timeline: search results
// when a search is on, else the filtered timeline.
function pageURL(extra) {
  if (S.filter.q) return "search?" + new URLSearchParams({q: S.filter.q, ...extra});
  return "messages?" + query(extra);
}

let loadGen = 0; // the newest load wins: a filter changed twice answers out of order
async function loadMessages() {
  const t0 = performance.now();
  const gen = ++loadGen;
  S.arrived = []; // live messages that come while the page loads
  const data = await getJSON(pageURL({limit: PAGE}));
  if (gen !== loadGen) return 0;
  const arrived = S.arrived;
  S.arrived = null;
  S.found = (data.messages || []).length;
  showFound(!!data.more);
  clearTimeline();
  const frag = document.createDocumentFragment();
  for (const m of data.messages || []) {
    const li = renderMessage(m);
    S.msgs.set(m.id, {m, el: li});
    frag.append(li);
  }
  $("timeline").append(frag);
  const tl = $("timeline");
  tl.scrollTop = tl.scrollHeight;
  S.more = !!data.more;
  $("older").hidden = !S.more;
  // Those the answer missed (stored after the relay read its page) join.
  for (const m of arrived) addLive(m);
  return performance.now() - t0;
}

async function loadOlder() {
  const first = S.msgs.keys().next().value;
  if (!first) return;
  const gen = loadGen;
  const data = await getJSON(pageURL({limit: PAGE, before: first}));
  if (gen !== loadGen) return;
  const tl = $("timeline");
  const h = tl.scrollHeight;
  const frag = document.createDocumentFragment();
  const entries = [];
  for (const m of data.messages || []) {
    if (S.msgs.has(m.id)) continue;
    const li = renderMessage(m);
    entries.push([m.id, {m, el: li}]);
    frag.append(li);
  }
  tl.prepend(frag);
  S.msgs = new Map([...entries, ...S.msgs]);
  tl.scrollTop += tl.scrollHeight - h;
  S.more = !!data.more;
  $("older").hidden = !S.more;
}

function setFilter(f) {
  Object.assign(S.filter, {q: ""}, f);
  $("f-peer").value = S.filter.peer;
  $("f-with").value = S.filter.with;
  $("f-thread").value = S.filter.thread;
  $("f-search").value = S.filter.q;
  if (S.filter.thread) $("c-thread").value = S.filter.thread;
  loadMessages().catch(e => console.warn(e));
}

// Stages: an ack or read of a client moves the stages of the messages on
// screen addressed to it; they are fetched once the burst is over.
const stageWanted = new Set();
const fetchStages = throttle(async () => {
  const ids = [...stageWanted].slice(0, 500);
  stageWanted.clear();
  if (ids.length === 0) return;
  const data = await getJSON("stages?ids=" + encodeURIComponent(ids.join(",")));
  for (const [id, stages] of Object.entries(data.stages || {})) {
    const x = S.msgs.get(id);
    if (!x) continue;
    x.m.stages = stages;
    renderStages(x.el.querySelector(".stages"), x.m);
  }
  markApplied();
}, 150);

function onStage(client) {
  // The newest messages first: those are the ones whose stages move.
  const all = [...S.msgs.values()];
  for (let i = all.length - 1, n = 0; i >= 0 && n < 300; i--, n++) {
    const x = all[i];
    if (recipientsOf(x.m).includes(client) && !(x.m.stages || []).every(s => s.state === "read")) stageWanted.add(x.m.id);
  }
  if (stageWanted.size) fetchStages();
}

function markApplied() {
  window.consoleMetrics.lastApply = performance.now();
  window.consoleMetrics.applied++;
}

// ---- live feed
let es = null;
function connect() {
  if (es) es.close();
  es = new EventSource(API + "events");
  es.addEventListener("hello", () => {
    setLive(true);
    if (S.lost) { S.lost = false; resync(); }
  });
  es.addEventListener("resync", () => resync());
  es.onmessage = ev => {
    let e;
    try { e = JSON.parse(ev.data); } catch (x) { return; }
    window.consoleMetrics.lastEventAt = Date.now();
    apply(e);
  };
  es.onerror = () => {
    setLive(false);
    S.lost = true;
    if (es.readyState === EventSource.CLOSED) setTimeout(connect, 2000);
  };
}

function setLive(on) {
  S.live = on;
  const c = $("conn");
  c.textContent = on ? "live" : "offline";
  c.className = "conn " + (on ? "on" : "off");
  const b = $("banner");
  if (on) { b.hidden = true; b.textContent = ""; }
  else { b.hidden = false; b.textContent = "Lost the relay — reconnecting… (what you see may be out of date)"; }
}

function resync() {
  loadState().catch(e => console.warn(e));
  loadMessages().catch(e => console.warn(e));
}

function apply(e) {
  switch (e.type) {
  case "joined": case "left": case "status": {
    const p = S.peers.get(e.peer.id) || {id: e.peer.id, unread: 0};
    Object.assign(p, {host: e.peer.host, agent: e.peer.agent, cwd: e.peer.cwd, label: e.peer.label,
      status: e.peer.status || "", online: e.type !== "left", last_seen: e.peer.last_seen});
    S.peers.set(p.id, p);
    renderPeers();
    if (e.type === "joined") { renderPickers(); refreshState(); }
    break;
  }
  case "message":
    addLive(e.message);
    refreshState();
    break;
  case "stage":
    onStage(e.client);
    refreshState();
    break;
  case "loop":
    S.loops.push({pair: e.pair, warning: e.warning, at: e.at});
    renderAlerts();
    break;
  case "hold":
    S.holdGen++;
    if (!isHeld(e.pair)) S.holds.push({pair: e.pair, by: e.by, at: e.at});
    renderAlerts();
    break;
  case "release":
    S.holdGen++;
    S.holds = S.holds.filter(h => pairKey(h.pair) !== pairKey(e.pair));
    renderAlerts();
    refreshState(); // the release as the store recorded it
    break;
  }
  markApplied();
}

// ---- composer
async function send(ev) {
  ev.preventDefault();
  const to = $("c-to").value, thread = $("c-thread").value.trim(), body = $("c-body").value;
  const res = $("c-result");
  if (!body.trim()) return;
  const req = {as: $("c-as").value.trim(), body, thread};
  if (to === "thread") {
    if (!thread) { res.textContent = "name the thread first"; return; }
  } else {
    req.to = [to];
  }
  $("c-send").disabled = true;
  try {
    const r = await postJSON("post", req);
    if (r.error) {
      res.textContent = "not sent: " + r.error;
    } else {
      res.textContent = "sent to " + ((r.recipients || []).map(o => o.id + " (" + o.status + ")").join(", ") || "nobody online");
      $("c-body").value = "";
    }
  } finally {
    $("c-send").disabled = false;
    // A disabled button loses the focus: give a keyboard user their place
    // back, in the text, ready for the next message.
    if (document.activeElement === document.body) $("c-body").focus();
  }
}

// ---- start
document.addEventListener("DOMContentLoaded", async () => {
  // Enter in a filter field applies it (a change event does too, when the
  // field loses focus with a new value).
  $("filters").addEventListener("submit", ev => {
    ev.preventDefault();
    const q = $("f-search").value.trim();
    if (q !== S.filter.q || q) setFilter({peer: "", with: "", thread: "", q});
    else setFilter({thread: $("f-thread").value.trim()});
  });
  $("f-peer").addEventListener("change", () => setFilter({peer: $("f-peer").value, with: $("f-with").value}));
  $("f-with").addEventListener("change", () => setFilter({peer: $("f-peer").value, with: $("f-with").value}));
  $("f-thread").addEventListener("change", () => setFilter({thread: $("f-thread").value.trim()}));
  $("f-search").addEventListener("change", () => setFilter({peer: "", with: "", thread: "", q: $("f-search").value.trim()}));
  $("f-clear").addEventListener("click", () => setFilter({peer: "", with: "", thread: "", q: ""}));
  $("older").addEventListener("click", () => loadOlder().catch(e => console.warn(e)));
  $("compose").addEventListener("submit", send);
  $("c-body").addEventListener("keydown", ev => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) $("compose").requestSubmit();
  });
  connect();
  const t0 = performance.now();
  try {
    await Promise.all([loadState(), loadMessages()]);
  } catch (e) {
    console.warn(e);
  }
  window.consoleMetrics.firstRender = performance.now() - t0;
  document.body.dataset.ready = "1";
  setInterval(() => { renderPeers(); renderAlerts(); }, 30000); // ages only: no request
});
