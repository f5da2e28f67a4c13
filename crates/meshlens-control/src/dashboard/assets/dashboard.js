// meshlens dashboard: live updates of the server-rendered page, the window selector, log events and a
// live tap on workload pages. No dependencies; every request is a same-origin GET with the session cookie.
"use strict";

const REFRESH_MS = 5000;

// The window (and comparison) selectors: reload the page with the chosen values.
function windowSelector() {
  for (const select of document.querySelectorAll("form.window select")) {
    select.addEventListener("change", () => {
      const url = new URL(location.href);
      if (select.value) url.searchParams.set(select.name, select.value);
      else url.searchParams.delete(select.name);
      location.href = url.toString();
    });
  }
}

// Live update: fetch this page again and swap every [data-live] element, paused while the tab is hidden.
async function refresh() {
  const live = document.getElementById("live");
  try {
    const rsp = await fetch(location.href, { credentials: "same-origin", headers: { accept: "text/html" } });
    if (!rsp.ok) throw new Error("HTTP " + rsp.status);
    const doc = new DOMParser().parseFromString(await rsp.text(), "text/html");
    for (const el of document.querySelectorAll("[data-live]")) {
      const next = doc.querySelector('[data-live="' + el.dataset.live + '"]');
      if (next) el.replaceWith(document.importNode(next, true));
    }
    if (live) { live.textContent = "live · " + new Date().toLocaleTimeString(); live.className = "live"; }
  } catch (e) {
    if (live) { live.textContent = "update failed: " + e.message; live.className = "live stale"; }
  }
}

function startRefresh() {
  if (!document.querySelector("[data-live]")) return;
  setInterval(() => { if (!document.hidden) refresh(); }, REFRESH_MS);
}

function cell(row, text) {
  const td = document.createElement("td");
  td.textContent = text == null ? "-" : String(text);
  row.appendChild(td);
}

// Recent WARN/ERROR proxy log events of the workload (GET /api/v1/logs).
async function logs() {
  const box = document.getElementById("logs");
  if (!box) return;
  const q = new URLSearchParams({ resource: box.dataset.logs, namespace: box.dataset.namespace, since: "1h" });
  try {
    const rsp = await fetch("/api/v1/logs?" + q, { credentials: "same-origin" });
    const body = await rsp.json();
    if (!rsp.ok) throw new Error(body.error || "HTTP " + rsp.status);
    const events = (body.events || []).slice(-20).reverse();
    box.textContent = "";
    if (events.length === 0) {
      box.textContent = "No WARN or ERROR event in the last hour.";
      return;
    }
    const list = document.createElement("ul");
    list.className = "logs";
    for (const ev of events) {
      const li = document.createElement("li");
      const fields = Object.entries(ev.fields || {}).map(([k, v]) => k + "=" + v).join(" ");
      const pod = ev.source ? ev.source.pod : "";
      li.textContent = ev.timestamp + " " + ev.level + " " + pod + " " + ev.message + " " + fields;
      li.className = (ev.level || "").toLowerCase();
      list.appendChild(li);
    }
    box.appendChild(list);
  } catch (e) {
    box.textContent = "cannot read the log events: " + e.message;
  }
}

// Live tap (GET /api/v1/tap, NDJSON read as a stream): at most 40 rows, drawn every 500 ms.
function tap() {
  const button = document.getElementById("tap-toggle");
  const tbody = document.querySelector("#tap tbody");
  if (!button || !tbody) return;
  let abort = null;
  let pending = [];
  setInterval(() => {
    if (pending.length === 0) return;
    for (const ev of pending.splice(0)) tbody.prepend(tapRow(ev));
    while (tbody.rows.length > 40) tbody.deleteRow(-1);
  }, 500);
  button.addEventListener("click", async () => {
    if (abort) { abort.abort(); abort = null; button.textContent = "start"; return; }
    abort = new AbortController();
    button.textContent = "stop";
    const q = new URLSearchParams({ resource: button.dataset.tap, namespace: button.dataset.namespace, maxRps: "50" });
    const form = document.getElementById("tap-filter");
    const flags = [];
    if (form) {
      for (const [name, value] of new FormData(form)) {
        if (!value) continue;
        q.set(name, value);
        flags.push(name === "failed" ? "--failed" : "--" + name + " " + value);
      }
    }
    const command = document.getElementById("tap-command");
    if (command) command.textContent = ["meshlens tap", button.dataset.tap, "-n", button.dataset.namespace].concat(flags).join(" ");
    try {
      const rsp = await fetch("/api/v1/tap?" + q, { credentials: "same-origin", signal: abort.signal });
      if (!rsp.ok) throw new Error((await rsp.json()).error || "HTTP " + rsp.status);
      const reader = rsp.body.getReader();
      const decoder = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += decoder.decode(value, { stream: true });
        let nl;
        while ((nl = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, nl).trim();
          buf = buf.slice(nl + 1);
          if (line) pending.push(JSON.parse(line));
        }
        if (pending.length > 200) pending = pending.slice(-40);
      }
    } catch (e) {
      if (e.name !== "AbortError") button.title = "tap failed: " + e.message;
    }
    abort = null;
    button.textContent = "start";
  });
}

function tapRow(ev) {
  const row = document.createElement("tr");
  const req = ev.requestInitEvent, rsp = ev.responseInitEvent, end = ev.responseEndEvent;
  const kind = req ? "req" : rsp ? "rsp" : "end";
  const dur = end ? end.sinceRequestInit : rsp ? rsp.sinceRequestInit : null;
  cell(row, new Date().toLocaleTimeString() + " " + kind);
  cell(row, ev.proxyDirection);
  cell(row, req ? req.method : "");
  cell(row, req ? req.authority : "");
  cell(row, req ? req.path : "");
  cell(row, rsp ? rsp.httpStatus : "");
  cell(row, dur ? Math.round(dur.seconds * 1000 + dur.nanos / 1e6) + "ms" : "");
  const notes = [];
  if (ev.proxyError) notes.push("proxy: " + ev.proxyError);
  if (ev.attempt && ev.attempt > 1) notes.push("retry #" + (ev.attempt - 1));
  cell(row, notes.join(", "));
  row.dataset.tapEvent = kind;
  if (ev.proxyError) row.className = "proxy-made";
  return row;
}

windowSelector();
startRefresh();
logs();
tap();
