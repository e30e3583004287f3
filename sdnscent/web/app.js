// sdnscent web view: the topology with link load as colour; pick an application or a
// trail to highlight the links its trails use. Polls the REST API (no build step, no CDN).
"use strict";
const API = "/api/v1";
const POLL_MS = 2000;
const NS = "http://www.w3.org/2000/svg";
const state = { topo: null, trails: [], policy: null, layout: null, signature: "" };

async function getJson(path) {
  const resp = await fetch(API + path, { cache: "no-store" });
  if (!resp.ok) throw new Error(`${path}: ${resp.status}`);
  return resp.json();
}

function loadColour(u) {            // 0 -> green, 0.5 -> amber, 1 -> red
  const t = Math.max(0, Math.min(1, u));
  const mix = (a, b, f) => Math.round(a + (b - a) * f);
  const [g, y, r] = [[46, 125, 50], [249, 168, 37], [198, 40, 40]];
  const [from, to, f] = t < 0.5 ? [g, y, t * 2] : [y, r, (t - 0.5) * 2];
  return `rgb(${mix(from[0], to[0], f)},${mix(from[1], to[1], f)},${mix(from[2], to[2], f)})`;
}

// One entry per cable: both directions, keyed "dpid:port" of each end.
function cables(topo) {
  const out = new Map();
  for (const l of topo.links) {
    const a = `${l.src}:${l.src_port}`, b = `${l.dst}:${l.dst_port}`;
    const key = a < b ? `${a}-${b}` : `${b}-${a}`;
    const c = out.get(key) || { key, src: l.src, dst: l.dst, dirs: [], util: 0 };
    c.dirs.push(a);
    c.util = Math.max(c.util, l.utilization);
    out.set(key, c);
  }
  return [...out.values()];
}

// Layers by distance from the switches that have hosts (edge switches at the bottom).
function layout(topo, nfs, width, height) {
  const ids = topo.switches.map(s => s.dpid);
  const adj = new Map(ids.map(d => [d, new Set()]));
  for (const l of topo.links) if (adj.has(l.src) && adj.has(l.dst)) adj.get(l.src).add(l.dst);
  let frontier = [...new Set(topo.hosts.map(h => h.dpid))].filter(d => adj.has(d));
  if (!frontier.length && ids.length) frontier = [ids[0]];
  const depth = new Map(frontier.map(d => [d, 0]));
  while (frontier.length) {
    const next = [];
    for (const d of frontier) for (const n of adj.get(d)) if (!depth.has(n)) {
      depth.set(n, depth.get(d) + 1); next.push(n);
    }
    frontier = next;
  }
  for (const d of ids) if (!depth.has(d)) depth.set(d, 0);
  const top = Math.max(0, ...depth.values());
  const rows = new Map();
  for (const d of ids) {
    const r = top - depth.get(d);
    if (!rows.has(r)) rows.set(r, []);
    rows.get(r).push(d);
  }
  const pos = new Map();
  const rowH = (height - 120) / Math.max(1, top + 1);
  for (const [r, members] of rows) members.forEach((d, i) => pos.set(d, {
    x: (i + 1) * width / (members.length + 1), y: 40 + r * rowH }));
  const bySwitch = new Map();
  for (const h of topo.hosts) {
    if (!bySwitch.has(h.dpid)) bySwitch.set(h.dpid, []);
    bySwitch.get(h.dpid).push(h);
  }
  for (const [d, hosts] of bySwitch) {
    const p = pos.get(d) || { x: 20, y: height - 40 };
    hosts.forEach((h, i) => pos.set(h.mac, {
      x: p.x + (i - (hosts.length - 1) / 2) * 22, y: p.y + 60 }));
  }
  const names = new Map(topo.switches.map(s => [s.name, s.dpid]));
  nfs.forEach((nf, i) => {
    const d = names.get(nf.attach[0] && nf.attach[0].switch);
    const p = pos.get(d) || { x: 40 + i * 40, y: height - 20 };
    pos.set("nf:" + nf.name, { x: p.x + 34, y: p.y - 26, dpid: d });
  });
  return pos;
}

function el(name, attrs, parent) {
  const e = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}

function nfsOf(policy) {
  if (!policy) return [];
  return Object.values(policy.policy.nodes || {}).filter(n => n.kind === "nf");
}

function draw() {
  const svg = document.getElementById("map");
  const { topo } = state;
  const width = svg.clientWidth || 900, height = svg.clientHeight || 600;
  const nfs = nfsOf(state.policy);
  const pos = layout(topo, nfs, width, height);
  svg.replaceChildren();
  const links = el("g", { id: "links" }, svg);
  for (const c of cables(topo)) {
    const a = pos.get(c.src), b = pos.get(c.dst);
    if (!a || !b) continue;
    const line = el("line", { x1: a.x, y1: a.y, x2: b.x, y2: b.y, class: "link",
                              stroke: loadColour(c.util) }, links);
    line.dataset.cable = c.key;
    line.dataset.dirs = c.dirs.join(" ");
    el("title", {}, line).textContent = `${c.key}: ${(c.util * 100).toFixed(1)}%`;
  }
  for (const h of topo.hosts) {
    const p = pos.get(h.mac), s = pos.get(h.dpid);
    if (!p) continue;
    if (s) el("line", { x1: s.x, y1: s.y, x2: p.x, y2: p.y, class: "access" }, svg);
    el("rect", { x: p.x - 7, y: p.y - 7, width: 14, height: 14, class: "host" }, svg);
    const label = el("text", { x: p.x - 3, y: p.y + 14,
                               transform: `rotate(60 ${p.x - 3} ${p.y + 14})` }, svg);
    label.textContent = [h.ip, ...(h.ipv6 || []).filter(a => !a.startsWith("fe80:"))]
      .filter(Boolean).join(" ");
    el("title", {}, label).textContent = [h.mac, h.ip, ...(h.ipv6 || [])].filter(Boolean)
      .join("\n");
  }
  for (const nf of nfs) {
    const p = pos.get("nf:" + nf.name), s = pos.get(p && p.dpid);
    if (!p) continue;
    if (s) el("line", { x1: s.x, y1: s.y, x2: p.x, y2: p.y, class: "access" }, svg);
    el("polygon", { points: `${p.x},${p.y - 9} ${p.x + 9},${p.y} ${p.x},${p.y + 9} ` +
                    `${p.x - 9},${p.y}`, class: "nf" }, svg);
    el("text", { x: p.x + 11, y: p.y + 4 }, svg).textContent = `${nf.name} (${nf.role})`;
  }
  for (const s of topo.switches) {
    const p = pos.get(s.dpid);
    const c = el("circle", { cx: p.x, cy: p.y, r: 9, class: "switch" }, svg);
    c.dataset.dpid = s.dpid;
    el("text", { x: p.x + 11, y: p.y - 8 }, svg).textContent = s.name;
  }
  highlight();
}

// The trails to highlight: the chosen trail, else every trail of the chosen application.
function chosenTrails() {
  const app = document.getElementById("app").value;
  const id = document.getElementById("trail").value;
  if (id) return state.trails.filter(t => String(t.id) === id);
  return app ? state.trails.filter(t => t.app === app) : [];
}

function highlight() {
  const chosen = chosenTrails();
  const used = new Set();                       // link directions "dpid:out_port"
  for (const t of chosen) t.hops.slice(0, -1).forEach(h => used.add(`${h.dpid}:${h.out_port}`));
  const lit = [];
  for (const line of document.querySelectorAll("line.link")) {
    const on = line.dataset.dirs.split(" ").some(d => used.has(d));
    line.classList.toggle("hl", on);
    line.classList.toggle("dim", chosen.length > 0 && !on);
    if (on) lit.push(line.dataset.cable);
  }
  window.sdnscentHighlighted = lit.sort();
  const details = document.getElementById("details");
  details.textContent = chosen.length ? chosen.map(t =>
    `trail ${t.id} (${t.app}/${t["class"]}, ${t.state}) label ${t.label}\n` +
    `${t.src} -> ${t.dst}\nvia ${t.hops.map(h => h.switch || h.dpid).join(" > ")}\n` +
    `${t.packets} packets, ${t.bytes} bytes`).join("\n\n")
    : "Pick an application or a trail to see its path.";
}

function fillSelectors() {
  const appSel = document.getElementById("app"), trailSel = document.getElementById("trail");
  const apps = [...new Set(state.trails.map(t => t.app))].sort();
  const keepApp = appSel.value, keepTrail = trailSel.value;
  appSel.replaceChildren(new Option("(all)", ""), ...apps.map(a => new Option(a, a)));
  appSel.value = apps.includes(keepApp) ? keepApp : "";
  const shown = state.trails.filter(t => !appSel.value || t.app === appSel.value);
  trailSel.replaceChildren(new Option("(none)", ""), ...shown.map(t =>
    new Option(`${t.id}: ${t.src} -> ${t.dst} (${t.app})`, String(t.id))));
  trailSel.value = shown.some(t => String(t.id) === keepTrail) ? keepTrail : "";
}

async function refresh() {
  const [topo, trails, policy] = await Promise.all([
    getJson("/topology"), getJson("/trails?limit=10000"), getJson("/policy")]);
  state.topo = topo; state.trails = trails.trails; state.policy = policy;
  fillSelectors();
  draw();
  document.getElementById("status").textContent =
    `${topo.switches.length} switches, ${topo.hosts.length} hosts, ${trails.total} trails; ` +
    `updated ${new Date().toLocaleTimeString()}`;
  document.body.dataset.loaded = String((Number(document.body.dataset.loaded) || 0) + 1);
}

async function poll() {
  try {
    if (document.getElementById("live").checked || !state.topo) await refresh();
  } catch (err) {
    document.getElementById("status").textContent = `API unreachable: ${err.message}`;
  }
  setTimeout(poll, POLL_MS);
}

document.getElementById("app").addEventListener("change", () => {
  document.getElementById("trail").value = "";
  fillSelectors();
  highlight();
});
document.getElementById("trail").addEventListener("change", highlight);
window.addEventListener("resize", () => state.topo && draw());
poll();
