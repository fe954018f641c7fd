// airlift status page: polls the appliance's JSON endpoints (the same
// ones `airlift-firstboot status` and the tests read) and renders them.
// No framework, no build step, nothing loaded from outside. Every value
// from the server goes into the DOM as text (textContent), never as HTML.
"use strict";

const API = {
  status: "/airlift/v1/status",
  nodes: "/airlift/v1/nodes",
  replicas: "/airlift/v1/replicas",
  releases: "/airlift/v1/releases",
  images: "/airlift/v1/images",
  mirror: "/airlift/v1/mirror-config",
};
const POLL_MS = 1500;
const MAX_BACKOFF_MS = 30000;
const IMAGES_EVERY_MS = 10000;
const MIRROR_EVERY_MS = 60000;

const state = {
  failures: 0,
  lastOk: 0,
  lastImages: 0,
  lastMirror: 0,
  loadState: null,
  images: null,
  imagesKey: "",
  nodesKey: "",
  replicasKey: "",
  releasesKey: "",
  mirror: null,
  mirrorTab: "podman",
};

// ---------- helpers ----------

const $ = (id) => document.getElementById(id);

function el(tag, props, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === undefined || v === null) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("data-") || k.startsWith("aria-") || k === "title" || k === "role" || k === "type") e.setAttribute(k, v);
    else e[k] = v;
  }
  for (const c of children) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function setText(id, text) {
  const e = $(id);
  if (e && e.textContent !== text) e.textContent = text;
}

/** Bytes in IEC units: 1.5 GiB, 312.4 MiB, 900 B. */
function humanBytes(n) {
  if (!Number.isFinite(n) || n < 0) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  let v = n;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return i === 0 ? `${v} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

/** Seconds as "1 h 04 min", "3 min 12 s", "42 s". */
function humanDuration(s) {
  if (!Number.isFinite(s) || s < 0) return "–";
  s = Math.round(s);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${String(s % 60).padStart(2, "0")} s`;
  return `${Math.floor(m / 60)} h ${String(m % 60).padStart(2, "0")} min`;
}

/** "12 s ago" from an RFC 3339 time. */
function ago(iso) {
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return iso || "–";
  const s = Math.max(0, (Date.now() - t) / 1000);
  if (s < 5) return "just now";
  return `${humanDuration(s).replace(/ \d+ s$/, "")} ago`;
}

function localTime(iso) {
  const t = Date.parse(iso);
  return Number.isFinite(t) ? new Date(t).toLocaleString() : (iso || "–");
}

function shortDigest(d) {
  const [alg, hex] = String(d).split(":");
  return hex ? `${alg}:${hex.slice(0, 12)}` : String(d);
}

async function getJSON(path) {
  const r = await fetch(path, { cache: "no-store", headers: { Accept: "application/json" } });
  if (r.status === 404) return { missing: true };
  if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
  return { data: await r.json() };
}

// ---------- copy (clipboard API on HTTPS, textarea fallback on plain HTTP) ----------

async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    try { await navigator.clipboard.writeText(text); return true; } catch (_) { /* fall back */ }
  }
  const ta = el("textarea", { class: "clip-helper", readOnly: true, value: text });
  document.body.append(ta);
  ta.select();
  ta.setSelectionRange(0, text.length);
  let ok = false;
  try { ok = document.execCommand("copy"); } catch (_) { ok = false; }
  ta.remove();
  return ok;
}

let toastTimer = 0;
function toast(msg) {
  const t = $("toast");
  t.textContent = msg;
  t.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { t.hidden = true; }, 1800);
}

async function copyWithToast(text, what) {
  toast((await copyText(text)) ? `Copied ${what}` : "Copy failed: select the text and copy it by hand");
}

// ---------- status ----------

const STATE_LABEL = {
  loading: ["Copying to disk", "chip-busy"],
  ready: ["Ready · on disk", "chip-ok"],
  "media-only": ["Serving from media", "chip-warn"],
  failed: ["Copy failed", "chip-bad"],
};

const SECURE_BOOT = {
  enabled: "Enabled (the firmware checked the boot chain)",
  disabled: "Off (UEFI without Secure Boot)",
  unsupported: "Not available (BIOS boot)",
  unknown: "Unknown (the firmware variable could not be read)",
};

const LOAD_HINT = {
  loading: "Nodes already pull from the media while the bundle is copied to the data disk and verified blob by blob. Keep the media attached.",
  ready: "Every blob is on the data disk and verified; the registry no longer reads the media, which can be ejected.",
  "media-only": "There is no data disk: the registry serves straight from the media, which must stay attached.",
  failed: "The copy stopped; the registry still serves from the media. The reason is below and in host0's log.",
};

function renderStatus(s) {
  setText("appliance-name", s.appliance.name);
  setText("appliance-version", s.appliance.version);
  document.title = `${s.appliance.name} ${s.appliance.version} · airlift`;
  setText("registry-address", s.registry);
  setText("ca-fingerprint", s["ca-fingerprint"] || "none (plain HTTP or a trusted certificate)");
  setText("serving-from", s["serving-from"] === "disk" ? "Data disk (the media can be ejected)" : "Boot media (keep it attached)");
  setText("started-at", localTime(s["started-at"]));
  setText("secure-boot", SECURE_BOOT[s["secure-boot"]] || "Not reported");
  renderDisk(s.disk);
  renderTrust(s.trust);
  renderBase(s.base);

  const [label, cls] = STATE_LABEL[s.state] || [s.state, ""];
  const chip = $("load-state");
  chip.textContent = label;
  chip.className = `chip chip-dot ${cls}`;
  chip.dataset.state = s.state;

  const total = s["bytes-total"];
  const done = s["bytes-done"];
  let pct = total > 0 ? Math.floor((done * 100) / total) : (s.state === "ready" ? 100 : 0);
  if (s.state === "ready") pct = 100;
  pct = Math.min(100, Math.max(0, pct));
  const bar = $("progress");
  bar.setAttribute("aria-valuenow", String(pct));
  bar.classList.toggle("done", pct === 100 && s.state !== "failed");
  bar.classList.toggle("failed", s.state === "failed");
  $("progress-fill").style.width = `${pct}%`;
  setText("progress-percent", `${pct} %`);
  setText("progress-bytes", total > 0 ? `${humanBytes(done)} of ${humanBytes(total)}` : "");
  setText("progress-blobs", s["blobs-total"] > 0 ? `${s["blobs-done"]} / ${s["blobs-total"]}` : "–");
  const loading = s.state === "loading";
  setText("progress-rate", loading && s.rate > 0 ? `${humanBytes(s.rate)}/s` : "–");
  setText("progress-eta", loading && s.rate > 0 ? humanDuration((total - done) / s.rate) : (pct === 100 ? "done" : "–"));
  setText("load-hint", LOAD_HINT[s.state] || "");
  const msg = $("load-message");
  msg.hidden = !s.message;
  msg.textContent = s.message || "";

  if (state.loadState !== s.state) {
    // The image list changes when the load registers the bundle.
    state.loadState = s.state;
    state.lastImages = 0;
  }
}

/** The data folder's disk use, and the warning past storage.warnPercent. */
function renderDisk(d) {
  setText("disk-use", d
    ? `${d["used-percent"]} % used · ${humanBytes(d.available)} free of ${humanBytes(d.total)} · ${humanBytes(d.reserve)} kept in reserve`
    : "Not reported");
  const warn = $("disk-warning");
  warn.hidden = !(d && d.warning);
  warn.textContent = (d && d.warning) || "";
}

/** The trusted keys and what enforces them (status `trust`). */
function renderTrust(t) {
  if (!t) { setText("trust", "No trusted keys: signatures are not checked"); return; }
  const keys = t.keys.map((k) => `${k.name} (${k.scopes.join(", ")})`).join("; ");
  const enforced = !t.enforce ? "Not enforced (keys written only)"
    : t["policy-json"] ? "Enforced by host0's registry and containers-policy.json"
    : `Enforced by host0's registry; containers-policy.json not written: ${t["policy-json-reason"]}`;
  setText("trust", `Keys: ${keys}. ${enforced}.`);
}

/** The base image the OS was built from (status `base`). */
function renderBase(b) {
  if (!b) { setText("base-image", "None: the OS came from host paths"); return; }
  const keys = [...new Set((b.signatures || []).map((sig) => sig.key))].sort();
  const signed = keys.length === 0 ? "no signature checked (no verify: key covers it)"
    : `signed by key${keys.length > 1 ? "s" : ""} ${keys.join(", ")}`;
  setText("base-image", `${b.reference}@${b.digest} · kernel ${b.kernelRelease} · ${signed}`);
}

// ---------- images ----------

function imageMatches(img, q) {
  if (!q) return true;
  const keys = (img.signatures || []).map((g) => g.key).join(" ");
  const hay = `${img.reference} ${img.digest} ${img.platforms.join(" ")} ${img.source} ${keys}`.toLowerCase();
  return q.split(/\s+/).every((w) => hay.includes(w));
}

function renderImages() {
  const report = state.images;
  if (!report) return;
  const q = $("images-filter").value.trim().toLowerCase();
  const shown = report.images.filter((i) => imageMatches(i, q));
  const key = `${q}\n${JSON.stringify(shown)}`;
  if (key === state.imagesKey) return;
  state.imagesKey = key;

  setText("images-count", shown.length === report.images.length
    ? `(${report.images.length})` : `(${shown.length} of ${report.images.length})`);
  const b = report.bundle;
  setText("bundle-summary", b
    ? `Bundle ${b.name} ${b.version}: ${b.images} images, ${b.blobs} blobs, ${humanBytes(b["unique-bytes"])} stored` +
      (b["referenced-bytes"] > b["unique-bytes"] ? ` (${humanBytes(b["referenced-bytes"] - b["unique-bytes"])} saved by shared layers)` : "")
    : "");

  const rows = shown.map((img) => el("tr", { "data-testid": "image-row", "data-reference": img.reference },
    el("td", { class: "ref", "data-testid": "image-reference" }, img.reference),
    el("td", { class: "nowrap" },
      el("button", {
        type: "button", class: "digest", title: `${img.digest} (click to copy)`,
        "data-testid": "image-digest", "data-digest": img.digest,
      }, shortDigest(img.digest))),
    el("td", { class: "num", "data-testid": "image-size", title: `${img.size} bytes` }, humanBytes(img.size)),
    el("td", { "data-testid": "image-platforms" },
      ...(img.platforms.length ? img.platforms.map((p) => el("span", { class: "tag" }, p)) : [el("span", { class: "muted" }, "–")])),
    el("td", { "data-testid": "image-signed", "data-keys": (img.signatures || []).map((g) => g.key).join(",") },
      ...((img.signatures || []).length
        ? img.signatures.map((g) => el("span", { class: "chip chip-ok", title: `signed as ${g.identity}` }, g.key))
        : [el("span", { class: "muted" }, "unsigned")])),
    el("td", { "data-testid": "image-source" },
      el("span", { class: img.source === "bundle" ? "chip" : "chip chip-busy" }, img.source === "bundle" ? "bundle" : "pushed"))));
  $("images-body").replaceChildren(...rows);

  const empty = $("images-empty");
  empty.hidden = shown.length > 0;
  empty.textContent = report.images.length === 0 ? "The registry holds no images." : `No image matches “${q}”.`;
}

// ---------- nodes ----------

const NODE_STATE = { dhcp: ["DHCP", ""], netbooted: ["Netbooted", "chip-busy"], joined: ["Joined", "chip-ok"] };

function renderNodes(res) {
  const empty = $("nodes-empty");
  if (res.missing) {
    if (state.nodesKey !== "missing") {
      state.nodesKey = "missing";
      $("nodes-body").replaceChildren();
      setText("nodes-count", "");
      empty.textContent = "This appliance keeps no node table: netboot did not start (see host0's log).";
      empty.hidden = false;
    }
    return;
  }
  const nodes = res.data;
  const key = JSON.stringify(nodes) + Math.floor(Date.now() / 5000); // refresh "ago"
  if (key === state.nodesKey) return;
  state.nodesKey = key;
  setText("nodes-count", `(${nodes.length})`);
  const rows = nodes.map((n) => {
    const [label, cls] = NODE_STATE[n.state] || [n.state, ""];
    return el("tr", { "data-testid": "node-row", "data-mac": n.mac, "data-state": n.state },
      el("td", { class: "ref", "data-testid": "node-mac" }, n.mac),
      el("td", { class: "mono", "data-testid": "node-ip" }, n.ip || "–"),
      el("td", { "data-testid": "node-profile" }, n.profile || "–"),
      el("td", { "data-testid": "node-role" }, n.role || "–"),
      el("td", { "data-testid": "node-state" }, el("span", { class: `chip chip-dot ${cls}` }, label)),
      el("td", { class: "nowrap", title: n["first-seen"] }, localTime(n["first-seen"])),
      el("td", { class: "nowrap", "data-testid": "node-last-seen", title: n["last-seen"] }, ago(n["last-seen"])));
  });
  $("nodes-body").replaceChildren(...rows);
  empty.hidden = nodes.length > 0;
  empty.textContent = "No machine has netbooted or joined yet.";
}

// ---------- replicas ----------

const REPLICA_STATE = {
  syncing: ["Syncing", "chip-busy"], "in-sync": ["In sync", "chip-ok"],
  behind: ["Behind", "chip-busy"], unreachable: ["Unreachable", "chip-bad"],
};

function renderReplicas(res) {
  const list = res.data || [];
  const key = JSON.stringify(list);
  if (key === state.replicasKey) return;
  state.replicasKey = key;
  const rows = list.map((r) => {
    const [label, cls] = REPLICA_STATE[r.state] || [r.state, ""];
    return el("tr", { "data-testid": "replica-row", "data-state": r.state },
      el("td", { class: "ref", "data-testid": "replica-name" }, r.name),
      el("td", { class: "mono", "data-testid": "replica-url" }, r.url),
      el("td", { "data-testid": "replica-state" }, el("span", { class: `chip chip-dot ${cls}` }, label)),
      el("td", { class: "num", "data-testid": "replica-lag", title: `generation ${r["applied-generation"]} of ${r["source-generation"]}` },
        r["lag-seconds"] > 0 ? humanDuration(r["lag-seconds"]) : "0 s"));
  });
  $("replicas-body").replaceChildren(...rows);
  $("replicas-empty").hidden = list.length > 0;
}

// ---------- releases ----------

function releasesLoading(l) {
  if (!l) return "";
  const what = l.release ? `release ${l.release.name} ${l.release.version}` : l.from;
  if (l.state === "failed") return `Loading ${what} failed: ${l.error || "unknown error"}`;
  const pct = l.bytesTotal > 0 ? Math.min(100, Math.floor((l.bytesDone * 100) / l.bytesTotal)) : 100;
  return `Loading ${what}: ${pct} % (${l.blobsDone}/${l.blobsTotal} blobs, ${humanBytes(l.bytesDone)} of ${humanBytes(l.bytesTotal)})`;
}

function renderReleases(res) {
  const v = res.data;
  const key = JSON.stringify(v || null);
  if (key === state.releasesKey) return;
  state.releasesKey = key;
  const list = (v && v.releases) || [];
  const rows = list.map((r) => el("tr", { "data-testid": "release-row", "data-current": String(r.current) },
    el("td", { "data-testid": "release-current" }, r.current ? el("span", { class: "chip chip-ok" }, "current") : ""),
    el("td", { class: "ref", "data-testid": "release-name" }, `${r.id.name} ${r.id.version}`),
    el("td", { class: "mono", title: r.id.bundle }, shortDigest(r.id.bundle)),
    el("td", { class: "num" }, String(r.images)),
    el("td", { class: "num" }, humanBytes(r.bytes)),
    el("td", { title: r.loadedAt }, localTime(r.loadedAt)),
    el("td", {}, r.source + (r.kept ? "" : " (to collect)"))));
  $("releases-body").replaceChildren(...rows);
  $("releases-empty").hidden = list.length > 0;
  const line = releasesLoading(v && v.loading);
  setText("releases-loading", line);
  $("releases-loading").hidden = !line;
}

// ---------- mirror config ----------

function renderMirror() {
  const m = state.mirror;
  if (!m) return;
  setText("mirror-summary",
    `What a joining node writes: registries ${m.registries.join(", ") || "–"}; mirrors ${m.upstreams.join(", ")}.`);
  const tabs = m.runtimes.map((r) => el("button", {
    type: "button", class: "tab", role: "tab", title: r.title,
    "aria-selected": String(r.runtime === state.mirrorTab), "data-runtime": r.runtime,
  }, r.runtime === "podman" ? "podman / CRI-O" : r.runtime));
  $("mirror-tabs").replaceChildren(...tabs);
  const current = m.runtimes.find((r) => r.runtime === state.mirrorTab) || m.runtimes[0];
  setText("mirror-text", current ? current.text : "");
}

// ---------- polling ----------

function setConnection(ok, detail) {
  const b = $("connection");
  if (ok) {
    b.textContent = "Live";
    b.className = "badge badge-live";
    setText("updated", `updated ${new Date().toLocaleTimeString()}`);
  } else {
    b.textContent = "Offline";
    b.className = "badge badge-offline";
    b.title = detail;
    setText("updated", detail);
  }
}

async function tick() {
  const now = Date.now();
  const [status, nodes, replicas, releases] = await Promise.all(
    [getJSON(API.status), getJSON(API.nodes), getJSON(API.replicas), getJSON(API.releases)]);
  if (status.missing) throw new Error("no /airlift/v1/status here: is this host0?");
  renderStatus(status.data);
  renderNodes(nodes);
  renderReplicas(replicas);
  renderReleases(releases);
  if (now - state.lastImages >= IMAGES_EVERY_MS) {
    const r = await getJSON(API.images);
    if (r.data) { state.images = r.data; state.imagesKey = ""; renderImages(); }
    state.lastImages = now;
  }
  if (now - state.lastMirror >= MIRROR_EVERY_MS) {
    const r = await getJSON(API.mirror);
    if (r.data) { state.mirror = r.data; renderMirror(); }
    state.lastMirror = now;
  }
}

async function loop() {
  let delay = POLL_MS;
  try {
    await tick();
    state.failures = 0;
    state.lastOk = Date.now();
    setConnection(true);
  } catch (e) {
    state.failures += 1;
    delay = Math.min(MAX_BACKOFF_MS, POLL_MS * 2 ** state.failures);
    const since = state.lastOk ? ` since ${new Date(state.lastOk).toLocaleTimeString()}` : "";
    setConnection(false, `No answer${since}: ${e.message || e}. Retrying in ${Math.round(delay / 1000)} s`);
  }
  setTimeout(loop, delay);
}

// ---------- wiring ----------

document.addEventListener("DOMContentLoaded", () => {
  // `?q=WORDS` pre-fills the filter, so a filtered view can be linked.
  const q = new URLSearchParams(window.location.search).get("q");
  if (q) $("images-filter").value = q;
  $("images-filter").addEventListener("input", renderImages);
  $("images-body").addEventListener("click", (ev) => {
    const d = ev.target.closest("[data-digest]");
    if (d) copyWithToast(d.dataset.digest, "digest");
  });
  $("mirror-tabs").addEventListener("click", (ev) => {
    const t = ev.target.closest("[data-runtime]");
    if (!t) return;
    state.mirrorTab = t.dataset.runtime;
    renderMirror();
  });
  $("mirror-copy").addEventListener("click", () => copyWithToast($("mirror-text").textContent, "the mirror config"));
  for (const b of document.querySelectorAll("[data-copy-from]")) {
    b.addEventListener("click", () => copyWithToast($(b.dataset.copyFrom).textContent, "to the clipboard"));
  }
  loop();
});
