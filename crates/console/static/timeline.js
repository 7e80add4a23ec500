// meshtrace trace timeline: a waterfall that draws only the rows in view, so a trace of
// 100,000 spans opens and scrolls like one of 100. The data comes in tree order with each
// subtree's extent (see timeline.rs); collapsing a span skips its subtree.
"use strict";

(() => {
  const ROW = 24;
  const app = document.getElementById("timeline");
  if (!app) return;
  const waterfall = document.getElementById("waterfall");
  const inner = document.getElementById("waterfall-inner");
  const minimap = document.getElementById("minimap");
  const ruler = document.getElementById("ruler");
  const panel = document.getElementById("span-panel");
  const search = document.getElementById("trace-search");
  const searchCount = document.getElementById("search-count");
  const ERROR = 1, CRITICAL = 2, SERVER = 4, CLIENT = 8;
  const PALETTE = ["#2b7bd1", "#3e8635", "#8476d1", "#c58c00", "#009596", "#c9190b", "#6753ac", "#4cb140", "#f4c145", "#005f60", "#ec7a08", "#7d1007"];

  let data = null;         // {spans, services, operations, duration}
  let collapsed = null;    // Uint8Array
  let visible = [];        // indices of the rows shown, in order
  let rowOf = null;        // Int32Array: span index -> position in `visible`, or -1
  let matches = [];
  let matchAt = -1;
  let selected = -1;
  let focused = 0;

  const fmt = (us) => us < 1000 ? us + "µs" : us < 1e6 ? (us / 1000).toFixed(2) + "ms" : (us / 1e6).toFixed(2) + "s";

  function rebuild() {
    const spans = data.spans;
    visible = [];
    rowOf = new Int32Array(spans.length).fill(-1);
    for (let i = 0; i < spans.length;) {
      rowOf[i] = visible.length;
      visible.push(i);
      i = collapsed[i] ? spans[i][3] : i + 1;
    }
    inner.style.height = visible.length * ROW + "px";
    draw();
    drawMinimap();
  }

  function rowElement(i, pos) {
    const s = data.spans[i];
    const row = document.createElement("div");
    row.className = "wf-row";
    if (s[8] & ERROR) row.classList.add("error");
    if (s[8] & CRITICAL) row.classList.add("critical");
    if (i === selected) row.classList.add("selected");
    if (matches.length && matches[matchAt] === i) row.classList.add("match");
    row.style.top = pos * ROW + "px";
    row.dataset.index = i;
    row.dataset.spanId = s[0];
    row.setAttribute("role", "treeitem");
    row.setAttribute("aria-level", s[2] + 1);
    const label = document.createElement("div");
    label.className = "wf-label";
    label.style.paddingLeft = (s[2] * 14 + 4) + "px";
    const hasChildren = s[3] > i + 1;
    const toggle = document.createElement("button");
    toggle.type = "button";
    toggle.className = "wf-toggle";
    toggle.tabIndex = -1;
    toggle.textContent = hasChildren ? (collapsed[i] ? "▸" : "▾") : "";
    toggle.disabled = !hasChildren;
    toggle.setAttribute("aria-label", collapsed[i] ? "expand" : "collapse");
    if (hasChildren) row.setAttribute("aria-expanded", collapsed[i] ? "false" : "true");
    const chip = document.createElement("span");
    chip.className = "wf-chip";
    chip.style.background = PALETTE[s[6] % PALETTE.length];
    const name = document.createElement("span");
    name.className = "wf-name";
    const kind = s[8] & SERVER ? "⇤ " : s[8] & CLIENT ? "⇥ " : "";
    name.textContent = kind + data.services[s[6]] + "  " + data.operations[s[7]];
    label.append(toggle, chip, name);
    const track = document.createElement("div");
    track.className = "wf-track";
    const bar = document.createElement("div");
    bar.className = "wf-bar";
    bar.style.left = (s[4] / data.duration * 100) + "%";
    bar.style.width = Math.max(s[5] / data.duration * 100, 0.1) + "%";
    bar.style.background = s[8] & ERROR ? "#c9190b" : PALETTE[s[6] % PALETTE.length];
    bar.dataset.offset = s[4];
    bar.dataset.duration = s[5];
    const text = document.createElement("span");
    text.className = "wf-time";
    text.textContent = fmt(s[5]);
    track.append(bar, text);
    row.append(label, track);
    return row;
  }

  function draw() {
    const top = waterfall.scrollTop;
    const first = Math.max(0, Math.floor(top / ROW) - 10);
    const last = Math.min(visible.length, Math.ceil((top + waterfall.clientHeight) / ROW) + 10);
    const rows = [];
    for (let pos = first; pos < last; pos++) rows.push(rowElement(visible[pos], pos));
    inner.replaceChildren(...rows);
    drawViewport();
  }

  function drawMinimap() {
    const ctx = minimap.getContext("2d");
    minimap.width = minimap.clientWidth;
    const w = minimap.width, h = minimap.height;
    ctx.clearRect(0, 0, w, h);
    const n = visible.length;
    for (let pos = 0; pos < n; pos++) {
      const s = data.spans[visible[pos]];
      ctx.fillStyle = s[8] & ERROR ? "#c9190b" : PALETTE[s[6] % PALETTE.length];
      ctx.fillRect(s[4] / data.duration * w, pos / n * h, Math.max(1, s[5] / data.duration * w), Math.max(1, h / n));
    }
    drawViewport();
  }

  function drawViewport() {
    const box = document.getElementById("minimap-view") || (() => {
      const b = document.createElement("div");
      b.id = "minimap-view";
      b.className = "minimap-view";
      minimap.after(b);
      return b;
    })();
    const n = Math.max(1, visible.length);
    const from = waterfall.scrollTop / ROW / n, span = waterfall.clientHeight / ROW / n;
    box.style.top = (minimap.offsetTop + from * minimap.height) + "px";
    box.style.height = Math.max(2, Math.min(1, span) * minimap.height) + "px";
    box.style.left = minimap.offsetLeft + "px";
    box.style.width = minimap.clientWidth + "px";
  }

  function drawRuler() {
    const ticks = [];
    for (let k = 0; k <= 4; k++) {
      const t = document.createElement("span");
      t.className = "tick";
      t.style.left = (k * 25) + "%";
      t.textContent = fmt(Math.round(data.duration * k / 4));
      ticks.push(t);
    }
    ruler.replaceChildren(...ticks);
  }

  function reveal(i) {
    for (let p = data.spans[i][1]; p >= 0; p = data.spans[p][1]) collapsed[p] = 0;
    rebuild();
    const pos = rowOf[i];
    if (pos * ROW < waterfall.scrollTop || (pos + 1) * ROW > waterfall.scrollTop + waterfall.clientHeight) {
      waterfall.scrollTop = Math.max(0, pos * ROW - waterfall.clientHeight / 3);
    }
    draw();
  }

  function toggle(i) {
    if (data.spans[i][3] <= i + 1) return;
    collapsed[i] = collapsed[i] ? 0 : 1;
    rebuild();
  }

  async function open(i) {
    selected = i;
    focused = rowOf[i];
    draw();
    const s = data.spans[i];
    panel.hidden = false;
    panel.replaceChildren(heading("h2", data.operations[s[7]]), para(data.services[s[6]] + " · starts at " + fmt(s[4]) + " · lasts " + fmt(s[5])));
    const response = await fetch(app.dataset.spanSrc.replace("SPAN", s[0]));
    if (!response.ok) { panel.append(para("The span's details could not be read (HTTP " + response.status + ").")); return; }
    const d = await response.json();
    panel.dataset.spanId = d.spanID;
    const facts = [["Span ID", d.spanID], ["Direction", d.mesh.direction], ["Peer", d.mesh.peer], ["Workload", d.mesh.workload], ["Pod", d.mesh.pod], ["Status", d.mesh.statusCode], ["Response flags", d.mesh.responseFlags ? d.mesh.responseFlags + ": " + d.mesh.responseFlagsMeaning : ""]];
    panel.append(table("Facts", facts.filter((f) => f[1])), table("Tags", d.tags), table("Process", d.process));
    if (d.logs.length) panel.append(table("Logs", d.logs.map((l) => [fmt(l.offset), l.fields.map((f) => f[0] + "=" + f[1]).join(" ")])));
    const close = document.createElement("button");
    close.type = "button";
    close.textContent = "Close";
    close.addEventListener("click", () => { panel.hidden = true; selected = -1; draw(); waterfall.focus(); });
    panel.append(close);
  }

  function heading(tag, text) { const h = document.createElement(tag); h.textContent = text; return h; }
  function para(text) { const p = document.createElement("p"); p.textContent = text; return p; }
  function table(caption, rows) {
    const t = document.createElement("table");
    t.className = "tags";
    const c = document.createElement("caption");
    c.textContent = caption;
    t.append(c);
    for (const [k, v] of rows) {
      const tr = document.createElement("tr");
      const th = document.createElement("th");
      th.textContent = k;
      const td = document.createElement("td");
      td.textContent = v;
      tr.append(th, td);
      t.append(tr);
    }
    return t;
  }

  function find() {
    const q = search.value.trim().toLowerCase();
    matches = [];
    matchAt = -1;
    if (q) {
      const ops = data.operations.map((o) => o.toLowerCase().includes(q));
      const svcs = data.services.map((o) => o.toLowerCase().includes(q));
      data.spans.forEach((s, i) => { if (ops[s[7]] || svcs[s[6]] || s[0] === q) matches.push(i); });
    }
    searchCount.textContent = q ? matches.length + " matching spans" : "";
    if (matches.length) { matchAt = 0; reveal(matches[0]); } else draw();
  }

  function init(json) {
    data = json;
    collapsed = new Uint8Array(data.spans.length);
    // Big traces open with the levels below the third collapsed.
    if (data.spans.length > 5000) data.spans.forEach((s, i) => { if (s[2] >= 2 && s[3] > i + 1) collapsed[i] = 1; });
    drawRuler();
    rebuild();
    waterfall.addEventListener("scroll", () => requestAnimationFrame(draw), { passive: true });
    inner.addEventListener("click", (e) => {
      const row = e.target.closest(".wf-row");
      if (!row) return;
      const i = Number(row.dataset.index);
      if (e.target.closest(".wf-toggle")) toggle(i); else open(i);
    });
    waterfall.addEventListener("keydown", (e) => {
      const i = visible[focused];
      if (e.key === "ArrowDown") focused = Math.min(visible.length - 1, focused + 1);
      else if (e.key === "ArrowUp") focused = Math.max(0, focused - 1);
      else if (e.key === "ArrowRight") { collapsed[i] = 0; rebuild(); }
      else if (e.key === "ArrowLeft") { if (data.spans[i][3] > i + 1) { collapsed[i] = 1; rebuild(); } }
      else if (e.key === "Enter") { open(i); return; }
      else return;
      e.preventDefault();
      selected = visible[focused];
      reveal(visible[focused]);
    });
    minimap.addEventListener("click", (e) => {
      const pos = Math.floor(e.offsetY / minimap.height * visible.length);
      waterfall.scrollTop = Math.max(0, pos * ROW - waterfall.clientHeight / 2);
    });
    search.addEventListener("input", find);
    search.addEventListener("keydown", (e) => { if (e.key === "Enter") { e.preventDefault(); next(); } });
    document.getElementById("search-next").addEventListener("click", next);
    document.getElementById("collapse-all").addEventListener("click", () => { data.spans.forEach((s, i) => { collapsed[i] = s[3] > i + 1 && s[1] >= 0 ? 1 : 0; }); rebuild(); });
    document.getElementById("expand-all").addEventListener("click", () => { collapsed.fill(0); rebuild(); });
    document.getElementById("critical-only").addEventListener("change", (e) => app.classList.toggle("critical-on", e.target.checked));
    window.addEventListener("resize", () => { drawMinimap(); draw(); });
    const find0 = app.dataset.uiFind;
    if (find0) {
      const i = data.spans.findIndex((s) => s[0] === find0);
      if (i >= 0) { reveal(i); open(i); }
    }
    app.dataset.ready = "true";
  }

  function next() {
    if (!matches.length) return;
    matchAt = (matchAt + 1) % matches.length;
    reveal(matches[matchAt]);
  }

  fetch(app.dataset.src).then((r) => {
    if (!r.ok) throw new Error("HTTP " + r.status);
    return r.json();
  }).then(init).catch((e) => {
    inner.replaceChildren(para("The trace could not be loaded: " + e.message));
    app.dataset.ready = "error";
  });
})();
