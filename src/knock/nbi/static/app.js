// The Knock dashboard: a device list, a device page and a fleet view over the NBI on this port.
// The NBI's token, when it has one, is typed once and kept in sessionStorage (this tab only).
"use strict";

const TOKEN_KEY = "knock.nbiToken";
const API = "/dashboard/api";
const LIST_LIMIT = 200;
const SEARCH_FIELDS = [
  "_id", "_deviceId._SerialNumber", "_deviceId._ProductClass", "_deviceId._OUI",
  "_deviceId._Manufacturer",
];
const CR_METHODS = [["auto", "Auto"], ["http", "HTTP"], ["udp", "UDP"], ["xmpp", "XMPP"]];
const MANAGEMENT = ["Device.ManagementServer.", "InternetGatewayDevice.ManagementServer."];
const FIRMWARE = "1 Firmware Upgrade Image";
const WINDOWS = [[900, "15 min"], [3600, "1 h"], [86400, "24 h"], [7 * 86400, "7 days"]];

let refreshTimer = null;
// Bumped by every route(): what a view began for an earlier one (a slow fetch, a timer) is
// dropped instead of drawn over the page the user has gone to.
let generation = 0;

// --- DOM ------------------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "text") node.textContent = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

function table(id, headings, rows, empty) {
  if (rows.length === 0) return el("p", { id, class: "muted empty", text: empty });
  return el("table", { id },
    el("thead", {}, el("tr", {}, ...headings.map((h) => el("th", { text: h })))),
    el("tbody", {}, ...rows));
}

function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return d.toLocaleString([], { dateStyle: "short", timeStyle: "medium" });
}

function ago(iso) {
  if (!iso) return "never";
  const s = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  if (s < 60) return `${Math.round(s)} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

function ms(value) {
  if (value === null || value === undefined) return "—";
  return value >= 1000 ? `${(value / 1000).toFixed(2)} s` : `${Math.round(value)} ms`;
}

function badge(text, kind) {
  return el("span", { class: `badge ${kind}`, text });
}

// A session's or an attempt's outcome; none yet means it is still going on.
function outcomeBadge(outcome) {
  if (!outcome) return badge("under way", "wait");
  return badge(outcome, outcome === "delivered" || outcome === "ok" ? "good" : "bad");
}

function current(mine) {
  return mine === generation;
}

function show(mine, ...nodes) {
  if (!current(mine)) return;
  document.getElementById("view").replaceChildren(...nodes.filter((node) => node !== null));
}

// Run `work` every `ms` while the view that asked is the one shown.
function repeat(mine, ms, work) {
  refreshTimer = setTimeout(async () => {
    if (!current(mine)) return;
    try {
      await work();
    } catch (error) {
      if (current(mine)) failed(error);
      return;
    }
    repeat(mine, ms, work);
  }, ms);
}

// What a view shows at once while its data is on the way: the page's first paint (and a
// screenshot taken at the load event) has the view's heading and controls, not a bare wait.
function pending(mine, text, ...shell) {
  show(mine, ...shell, el("p", { id: "pending", class: "muted", text }));
}

function notice(text) {
  const p = document.getElementById("notice");
  p.textContent = text || "";
  p.hidden = !text;
}

// --- the NBI ----------------------------------------------------------------------------------

class Unauthorized extends Error {}

async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) headers.set("Authorization", `Bearer ${token}`);
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401) {
    askForToken(token ? "That token was refused; type the NBI's token again." : null);
    throw new Unauthorized();
  }
  const body = await response.json().catch(() => null);
  return { status: response.status, ok: response.ok, body, headers: response.headers };
}

async function getJson(path) {
  const answer = await api(path);
  if (!answer.ok) throw new Error(answer.body?.error || `HTTP ${answer.status} from ${path}`);
  return answer.body;
}

function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== null && value !== undefined) {
      search.set(name, typeof value === "string" ? value : JSON.stringify(value));
    }
  }
  return search.toString();
}

function askForToken(message) {
  document.getElementById("login").hidden = false;
  document.getElementById("logout").hidden = true;
  show(generation, el("section", { class: "card" },
    el("h1", { text: "This NBI asks for its token" }),
    el("p", { text: message || "Knock was started with an NBI token (--nbi-token or "
      + "KNOCK_NBI_TOKEN). Type it above; this browser tab keeps it until you close it." })));
  document.getElementById("token").focus();
}

function setUpLogin() {
  const form = document.getElementById("login");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, document.getElementById("token").value);
    document.getElementById("token").value = "";
    form.hidden = true;
    route();
  });
  document.getElementById("logout").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    route();
  });
}

// --- device list ------------------------------------------------------------------------------

// Free text searches by prefix across the identity fields, in the NBI's own query language;
// text starting with "{" is taken as a GenieACS query as it stands.
function searchQuery(text) {
  const wanted = text.trim();
  if (!wanted) return null;
  if (wanted.startsWith("{")) return JSON.parse(wanted);
  const prefix = { $gte: wanted, $lt: `${wanted}\uffff` };
  return { $or: SEARCH_FIELDS.map((field) => ({ [field]: prefix })) };
}

function methodsOf(doc) {
  return managementValue(doc, "SupportedConnReqMethods");
}

function managementValue(doc, name) {
  for (const root of ["Device", "InternetGatewayDevice"]) {
    const value = doc[root]?.ManagementServer?.[name]?._value;
    if (value !== undefined) return String(value);
  }
  return "";
}

// The device's ConnectionRequestURL as a link when it is a URL: an IPv6 host must be in
// brackets (RFC 3986 §3.2.2), and one that is not cannot be followed, so it is shown as text.
function crUrl(doc) {
  const text = managementValue(doc, "ConnectionRequestURL");
  if (!text) return "—";
  let url = null;
  try { url = new URL(text); } catch { url = null; }
  if (!url || !["http:", "https:"].includes(url.protocol)) {
    return el("span", { class: "bad-url", text: `${text} (not a URL: an IPv6 host goes in [brackets])` });
  }
  return el("a", { id: "cr-url", href: url.href, rel: "noreferrer", text: url.href });
}

async function deviceList(params) {
  const mine = generation;
  const text = params.get("q") || "";
  const input = el("input", {
    id: "search", type: "search", value: text, autocomplete: "off",
    placeholder: "Device id, serial number, product class, OUI or manufacturer (prefix), or a {query}",
  });
  const form = el("form", { id: "search-form", class: "search" }, input,
    el("button", { type: "submit", text: "Search" }));
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const q = input.value.trim();
    location.hash = q ? `#/devices?${new URLSearchParams({ q })}` : "#/";
  });
  let where;
  try {
    where = searchQuery(text);
  } catch (error) {
    show(mine, el("h1", { text: "Devices" }), form, el("p", { class: "error", text: `Not a JSON query: ${error.message}` }));
    return;
  }
  const page = Math.max(1, Math.floor(Number(params.get("page"))) || 1);
  pending(mine, "Asking the NBI for the devices…", el("h1", { text: "Devices" }), form);
  const answer = await api(`/devices/?${query({
    query: where, sort: { _lastInform: -1 }, limit: String(LIST_LIMIT),
    skip: String((page - 1) * LIST_LIMIT),
    projection: ["_id", "_deviceId", "_lastInform", ...MANAGEMENT.map((m) => `${m}SupportedConnReqMethods`)].join(","),
  })}`);
  if (!answer.ok) {
    show(mine, el("h1", { text: "Devices" }), form, el("p", { class: "error", text: answer.body?.error || `HTTP ${answer.status}` }));
    return;
  }
  const devices = answer.body;
  const rows = devices.map((doc) => el("tr", { "data-device": doc._id },
    el("td", {}, el("a", { class: "device-link", href: `#/device/${encodeURIComponent(doc._id)}`, text: doc._id })),
    el("td", { text: doc._deviceId?._Manufacturer || "" }),
    el("td", { text: doc._deviceId?._ProductClass || "" }),
    el("td", { text: doc._deviceId?._SerialNumber || "" }),
    el("td", { text: methodsOf(doc) || "—" }),
    el("td", { title: when(doc._lastInform), text: ago(doc._lastInform) })));
  // The NBI's total header counts every match, whatever page this is.
  const total = Number(answer.headers.get("total") ?? devices.length);
  const first = (page - 1) * LIST_LIMIT + 1;
  const shown = total > LIST_LIMIT || page > 1
    ? `${first}–${first + devices.length - 1} of ${total}` : `${total}`;
  const pageLink = (n, label, id) => el("a", {
    id, href: `#/devices?${new URLSearchParams({ ...(text ? { q: text } : {}), page: String(n) })}`, text: label,
  });
  const pages = Math.max(1, Math.ceil(total / LIST_LIMIT));
  const pager = pages > 1 ? el("nav", { id: "device-pages", class: "windows" },
    page > 1 ? pageLink(page - 1, "← Newer", "page-newer") : null,
    el("span", { class: "muted", text: ` page ${page} of ${pages} ` }),
    page < pages ? pageLink(page + 1, "Older →", "page-older") : null) : null;
  show(mine, el("h1", { text: "Devices" }), form,
    el("p", { id: "device-count", class: "muted", text: `${shown} device${total === 1 ? "" : "s"}${text ? ` matching “${text}”` : ""}, latest inform first` }),
    pager,
    table("device-table", ["Device", "Manufacturer", "Product class", "Serial number", "CR methods", "Last inform"],
      rows, text ? "No device matches." : "No device has informed yet: point a CPE (or knock sim) at the ACS."));
  input.focus();
}

// --- device page ------------------------------------------------------------------------------

// Access as the device reported it in GetParameterNames; a parameter it was never asked about
// (read by value only) is not guessed.
const ACCESS = new Map([[true, ["rw", "writable, as the device reported it"]],
  [false, ["r", "read-only, as the device reported it"]],
  [null, ["?", "not reported yet: a refreshObject or getParameterNames task asks the device"]]]);

function parameterRows(parameters, filter) {
  const wanted = filter.toLowerCase();
  return parameters
    .filter((p) => !p.path.endsWith("."))
    .filter((p) => !wanted || p.path.toLowerCase().includes(wanted)
      || String(p.value ?? "").toLowerCase().includes(wanted))
    .map((p) => {
      const [access, meaning] = ACCESS.get(p.writable);
      return el("tr", { "data-path": p.path },
        el("td", { class: "path", text: p.path }),
        el("td", { class: "value", text: p.value ?? "" }),
        el("td", { class: "muted", text: p.type || "" }),
        el("td", { class: "muted access", title: meaning, text: access }));
    });
}

function attemptRows(attempts) {
  return attempts.map((a) => el("tr", { "data-attempt": a.id, "data-outcome": a.outcome || "" },
    el("td", { title: a.started, text: when(a.started) }),
    el("td", { text: a.method.toUpperCase() }),
    el("td", {}, outcomeBadge(a.outcome)),
    el("td", { class: "num", text: ms(a.latencyMs) }),
    el("td", { class: "detail", text: a.detail || "" })));
}

function sessionRows(sessions) {
  return sessions.map((s) => el("tr", { "data-session": s.id },
    el("td", { title: s.started, text: when(s.started) }),
    el("td", { class: "num", text: s.ended ? ms(new Date(s.ended) - new Date(s.started)) : "—" }),
    el("td", { text: s.events.join(", ") }),
    el("td", {}, outcomeBadge(s.outcome)),
    el("td", { class: "muted", text: s.cwmpVersion.replace(/^urn:dslforum-org:/, "") })));
}

function taskRows(tasks) {
  return tasks.map((t) => el("tr", { "data-task": t._id },
    el("td", { text: t._id }),
    el("td", { text: t.name }),
    el("td", {}, badge(t.status, { done: "good", faulted: "bad", unknown: "bad" }[t.status] || "wait")),
    el("td", { title: t.timestamp, text: when(t.timestamp) }),
    el("td", { class: "detail", text: t.fault ? `${t.fault.code || ""} ${t.fault.message || ""}` : "" })));
}

async function deviceHistory(id) {
  const encoded = encodeURIComponent(id);
  const [sessions, attempts, tasks, parameters] = await Promise.all([
    getJson(`${API}/devices/${encoded}/sessions`),
    getJson(`${API}/devices/${encoded}/cr-attempts`),
    getJson(`/tasks/?history&${query({ query: { device: id } })}`),
    getJson(`${API}/devices/${encoded}/parameters`),
  ]);
  return { sessions, attempts, tasks, parameters };
}

function crPanel(id, onDone) {
  const outcome = el("div", { id: "cr-outcome", class: "cr-outcome muted", "aria-live": "polite",
    text: "Ask the device to open a session now: Auto tries its methods in the ACS's order." });
  const buttons = CR_METHODS.map(([via, label]) => el("button", {
    type: "button", class: "cr", "data-via": via, text: label,
  }));
  for (const button of buttons) {
    button.addEventListener("click", async () => {
      const via = button.dataset.via;
      buttons.forEach((b) => { b.disabled = true; });
      const started = performance.now();
      outcome.className = "cr-outcome pending";
      outcome.dataset.outcome = "pending";
      const tick = () => { outcome.textContent = `${via.toUpperCase()}: waiting for the device's Inform… ${((performance.now() - started) / 1000).toFixed(1)} s`; };
      tick();
      const timer = setInterval(tick, 100);
      try {
        const path = `/devices/${encodeURIComponent(id)}/connection-request${via === "auto" ? "" : `?via=${via}`}`;
        const answer = await api(path, { method: "POST" });
        const result = answer.body || {};
        clearInterval(timer);
        if (!result.outcome) throw new Error(result.error || `HTTP ${answer.status}`);
        outcome.dataset.outcome = result.outcome;
        outcome.dataset.method = result.method || "";
        outcome.className = `cr-outcome ${result.outcome === "delivered" ? "good" : "bad"}`;
        outcome.replaceChildren(
          el("strong", { text: `${(result.method || via).toUpperCase()} ${result.outcome}` }),
          document.createTextNode(result.latencyMs !== null ? ` in ${ms(result.latencyMs)}` : ""),
          el("div", { class: "detail", text: result.detail || "" }),
          ...(result.attempts.length > 1 ? [el("ol", {}, ...result.attempts.map((a) => el("li", {
            text: `${a.method.toUpperCase()} ${a.outcome} after ${ms(a.ms)}: ${a.detail}`,
          })))] : []));
      } catch (error) {
        clearInterval(timer);
        if (error instanceof Unauthorized) return;
        outcome.dataset.outcome = "error";
        outcome.className = "cr-outcome bad";
        outcome.textContent = `The request failed: ${error.message}`;
      } finally {
        buttons.forEach((b) => { b.disabled = false; });
      }
      onDone();
    });
  }
  return el("section", { class: "card" }, el("h2", { text: "Connection request" }),
    el("div", { class: "buttons" }, ...buttons), outcome);
}

// How the STUN server last answered the device's signed Binding Requests (TR-111).
function stunOutcome(stun) {
  if (!stun) return "—";
  return `${stun.outcome} from ${stun.source} since ${when(stun.since)}`;
}

// How Knock's provisioning of XMPP connection requests last ended, and why when it failed.
function xmppSetup(setup) {
  if (!setup) return "—";
  const why = setup.detail ? `: ${setup.detail}` : "";
  return `${setup.outcome}${why} (${when(setup.time)})`;
}

// The built-in XMPP server's word on the device's last login; a refusal says what to do.
function xmppLogin(login) {
  if (!login) return "—";
  const since = `since ${when(login.since)} from ${login.source}`;
  if (login.outcome === "tls-refused") {
    return `refused the server's certificate (TLS alert ${login.detail}) ${since}: install the CA (GET /ca.pem) on the device`;
  }
  return `${login.outcome} ${since}`;
}

// The stored firmware images made for the device (no OUI or product class, or the device's),
// and a download of the chosen one, run now.
function firmwarePanel(doc, onDone) {
  const ident = doc._deviceId || {};
  const choice = el("select", { id: "fw-file", "aria-label": "Firmware image" });
  const button = el("button", { type: "button", id: "fw-upgrade", text: "Upgrade firmware", disabled: true });
  const outcome = el("div", { id: "fw-outcome", class: "cr-outcome muted", "aria-live": "polite",
    text: "Looking for stored firmware images…" });
  const fits = (file) => {
    const meta = file.metadata || {};
    return (!meta.oui || meta.oui === ident._OUI) && (!meta.productClass || meta.productClass === ident._ProductClass);
  };
  getJson(`/files/?${query({ query: { "metadata.fileType": FIRMWARE } })}`).then((files) => {
    const usable = files.filter(fits);
    choice.replaceChildren(...usable.map((file) => el("option", {
      value: file._id, text: file.metadata?.version ? `${file._id} (version ${file.metadata.version})` : file._id,
    })));
    button.disabled = usable.length === 0;
    outcome.textContent = usable.length
      ? "The device fetches the image from Knock's file server, then reports the transfer in a later session (Tasks)."
      : `No firmware image for this device is stored: upload one with \`knock files put\` (fileType "${FIRMWARE}").`;
  }).catch((error) => { if (!(error instanceof Unauthorized)) outcome.textContent = error.message; });
  button.addEventListener("click", async () => {
    const file = choice.value;
    button.disabled = true;
    outcome.className = "cr-outcome pending";
    outcome.dataset.outcome = "pending";
    outcome.textContent = `Asking the device to download ${file}…`;
    try {
      const path = `/devices/${encodeURIComponent(doc._id)}/tasks?connection_request&timeout=30000`;
      const answer = await api(path, {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ name: "download", file }),
      });
      const body = answer.body || {};
      const task = body.task || body;
      if (answer.status !== 200 && answer.status !== 202) throw new Error(body.error || `HTTP ${answer.status}`);
      const accepted = answer.status === 200;
      outcome.dataset.outcome = accepted ? "accepted" : (task.fault ? "faulted" : "queued");
      outcome.dataset.task = task._id || "";
      outcome.className = `cr-outcome ${accepted ? "good" : "bad"}`;
      outcome.textContent = accepted
        ? `The device accepted the download of ${file} (task ${task._id}); it reports the transfer in a later session.`
        : task.fault ? `The device refused: ${task.fault.code} ${task.fault.message}`
          : `Task ${task._id} is queued: ${body.connectionRequestError || "the device did not connect in time"}; it runs at the device's next session.`;
    } catch (error) {
      if (error instanceof Unauthorized) return;
      outcome.dataset.outcome = "error";
      outcome.className = "cr-outcome bad";
      outcome.textContent = `The request failed: ${error.message}`;
    } finally {
      button.disabled = false;
    }
    onDone();
  });
  return el("section", { class: "card" }, el("h2", { text: "Firmware" }),
    el("div", { class: "buttons" }, choice, button), outcome);
}

async function devicePage(id) {
  const mine = generation;
  pending(mine, "Reading the device's parameters, sessions, tasks and connection requests…",
    el("p", {}, el("a", { href: "#/", text: "← Devices" })), el("h1", { text: id }));
  const [devices, history] = await Promise.all([
    getJson(`/devices/?${query({ query: { _id: id } })}`),
    deviceHistory(id).catch((error) => error),
  ]);
  if (devices.length === 0) {
    show(mine, el("h1", { text: "No such device" }),
      el("p", { class: "error", text: `The ACS knows no device ${id}.` }),
      el("p", {}, el("a", { href: "#/", text: "All devices" })));
    return;
  }
  if (history instanceof Error) throw history;
  let doc = devices[0];
  const facts = el("dl", { class: "facts" });
  const fillFacts = () => {
    const ident = doc._deviceId || {};
    facts.replaceChildren(
      ...[["Manufacturer", ident._Manufacturer], ["Product class", ident._ProductClass],
        ["Serial number", ident._SerialNumber], ["OUI", ident._OUI],
        ["CR methods", methodsOf(doc) || "—"],
        ["Connection request URL", crUrl(doc)],
        ["UDP connection request address", managementValue(doc, "UDPConnectionRequestAddress") || "—"],
        ["Last STUN outcome", stunOutcome(doc._stun)],
        ["XMPP set-up", xmppSetup(doc._xmppSetup)],
        ["Last inform", `${when(doc._lastInform)} (${ago(doc._lastInform)})`],
        ["Last XMPP login", xmppLogin(doc._xmppLogin)],
        ["Last boot", when(doc._lastBoot)], ["Registered", when(doc._registered)]]
        .flatMap(([k, v]) => [el("dt", { text: k }),
          typeof v === "string" || !v ? el("dd", { text: v || "" }) : el("dd", {}, v)]));
  };
  const histories = el("div", { id: "histories" });
  const fillHistories = ({ sessions, attempts, tasks }) => histories.replaceChildren(
    el("section", { class: "card" }, el("h2", { text: "Connection requests" }),
      table("cr-history", ["Sent", "Method", "Outcome", "Latency", "Detail"], attemptRows(attempts), "No connection request yet.")),
    el("section", { class: "card" }, el("h2", { text: "Sessions" }),
      table("sessions", ["Started", "Duration", "Events", "Outcome", "CWMP"], sessionRows(sessions), "No session yet.")),
    el("section", { class: "card" }, el("h2", { text: "Tasks" }),
      table("tasks", ["Id", "Task", "Status", "Queued", "Fault"], taskRows(tasks), "No task queued through the NBI.")));
  const filter = el("input", { id: "param-filter", type: "search", placeholder: "Filter by path or value" });
  const params = el("div", { id: "parameters" });
  let parameters = history.parameters;
  const fillParams = () => params.replaceChildren(table("parameter-table", ["Parameter", "Value", "Type", "Access"],
    parameterRows(parameters, filter.value), "No parameter matches."));
  filter.addEventListener("input", fillParams);
  // The header, the parameters and the histories come from one moment: a session that a
  // request started moves all three (Last inform stayed where the page was opened).
  const refresh = async () => {
    const [fresh, later] = await Promise.all([
      getJson(`/devices/?${query({ query: { _id: id } })}`), deviceHistory(id)]);
    if (fresh.length > 0) doc = fresh[0];
    parameters = later.parameters;
    fillFacts();
    fillParams();
    fillHistories(later);
  };
  const refreshNow = () => refresh().catch((error) => current(mine) && failed(error));
  fillFacts();
  fillParams();
  fillHistories(history);
  show(mine,
    el("p", {}, el("a", { href: "#/", text: "← Devices" })),
    el("h1", { id: "device-id", text: doc._id }),
    facts,
    crPanel(doc._id, refreshNow),
    firmwarePanel(doc, refreshNow),
    histories,
    el("section", { class: "card" }, el("h2", { text: "Parameters" }), filter, params));
  repeat(mine, 3000, refresh);  // sessions and tasks go on after a request is delivered
}

// --- fleet view -------------------------------------------------------------------------------

async function fleet(params) {
  const mine = generation;
  const windowS = Number(params.get("window")) || 3600;
  const heading = el("h1", { text: "Fleet: connection requests" });
  const choices = el("nav", { class: "windows" }, ...WINDOWS.map(([s, label]) => el("a", {
    href: `#/fleet?window=${s}`, class: s === windowS ? "chosen" : null, text: label,
  })));
  pending(mine, "Counting the connection requests of the window…", heading, choices);
  const stats = await getJson(`${API}/cr-stats?${query({ window: String(windowS), slices: "30" })}`);
  const names = Object.keys(stats.methods);
  // The ACS draws the slices from the first one that holds a request when that is not the
  // window's first (every request is recent): say so, the window's buttons stay as they are.
  const fitted = (new Date(stats.until) - new Date(stats.since)) / 1000 < windowS - 1;
  const totals = names.map((m) => {
    const s = stats.methods[m];
    const finished = s.attempts - s.pending;
    return el("tr", { "data-method": m },
      el("td", {}, el("span", { class: `swatch ${m}` }), document.createTextNode(m.toUpperCase())),
      el("td", { class: "num", text: s.attempts }),
      el("td", { class: "num", text: s.delivered }),
      el("td", { class: "num", text: finished ? `${Math.round((100 * s.delivered) / finished)} %` : "—" }),
      el("td", { class: "num", text: ms(s.medianMs) }),
      el("td", { class: "num", text: s.pending }),
      el("td", { class: "failed", text: Object.entries(s.failed).map(([o, n]) => `${o} ${n}`).join(", ") || "—" }));
  });
  show(mine,
    heading,
    choices,
    el("section", { class: "card" }, el("h2", { text: "By method" }),
      table("cr-totals", ["Method", "Attempts", "Delivered", "Success", "Median latency", "Under way", "Not delivered, by outcome"], totals, "")),
    el("section", { class: "card" }, el("h2", { text: "Latency of delivered requests" }),
      KnockCharts.histogram(stats.latencyEdgesMs, stats.methods)),
    el("section", { class: "card" }, el("h2", { id: "share-heading", text: `Delivered share over time (slices of ${Math.round(stats.sliceSeconds)} s${fitted ? ", from the first request in the window to now" : ""})` }),
      KnockCharts.successRate(stats)));
  if (current(mine)) refreshTimer = setTimeout(route, 10_000);
}

// --- routing ----------------------------------------------------------------------------------

function failed(error) {
  if (error instanceof Unauthorized) return;
  show(generation, el("h1", { text: "Something went wrong" }), el("p", { class: "error", text: error.message }));
}

async function route() {
  generation += 1;
  clearTimeout(refreshTimer);
  notice(null);
  document.getElementById("logout").hidden = !sessionStorage.getItem(TOKEN_KEY);
  const hash = location.hash.replace(/^#/, "") || "/";
  const [path, search] = hash.split("?", 2);
  const params = new URLSearchParams(search || "");
  document.getElementById("nav-fleet").classList.toggle("chosen", path === "/fleet");
  document.getElementById("nav-devices").classList.toggle("chosen", path !== "/fleet");
  try {
    if (path.startsWith("/device/")) await devicePage(decodeURIComponent(path.slice("/device/".length)));
    else if (path === "/fleet") await fleet(params);
    else await deviceList(params);
    document.body.dataset.view = path.split("/")[1] || "devices";
  } catch (error) {
    failed(error);
  }
}

setUpLogin();
window.addEventListener("hashchange", route);
route();
