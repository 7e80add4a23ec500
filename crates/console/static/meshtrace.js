// meshtrace console: progressive enhancement only. Every page works without this file;
// it adds auto-refresh, instant filters and hover tooltips on the scatter chart.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // Auto-refresh, as chosen in the toolbar (kept in the URL).
  const refresh = Number(document.body.dataset.refresh || 0);
  if (refresh > 0) {
    setTimeout(() => window.location.reload(), refresh * 1000);
  }

  // Choices apply at once; the Apply buttons remain for keyboards and no-JS.
  for (const form of document.querySelectorAll("form.toolbar, form.options")) {
    for (const field of form.querySelectorAll("select:not([multiple]), input[type=checkbox], input[type=radio]")) {
      field.addEventListener("change", () => form.requestSubmit());
    }
  }

  // Copy buttons for the YAML blocks of the configuration tester.
  for (const block of document.querySelectorAll("pre.copyable")) {
    const button = document.createElement("button");
    button.type = "button";
    button.className = "copy-button";
    button.textContent = "Copy";
    button.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(block.textContent);
        button.textContent = "Copied";
      } catch (e) {
        button.textContent = "Select the text to copy it";
      }
    });
    block.before(button);
  }

  // Tooltips on the scatter's points (the SVG <title> is the fallback).
  const scatter = document.getElementById("scatter");
  if (scatter && scatter.dataset.tooltipBase) {
    traceTooltips(scatter, scatter.dataset.tooltipBase);
  } else if (scatter) {
    labelTooltips(scatter);
  }
});

// The search page's points: their label, at once.
function labelTooltips(scatter) {
  const tip = document.createElement("div");
  tip.className = "tooltip";
  tip.hidden = true;
  document.body.appendChild(tip);
  for (const link of scatter.querySelectorAll("a.point-link")) {
    link.addEventListener("mouseenter", () => {
      tip.textContent = link.getAttribute("aria-label");
      tip.hidden = false;
    });
    link.addEventListener("mousemove", (e) => {
      tip.style.left = e.clientX + 12 + "px";
      tip.style.top = e.clientY + 12 + "px";
    });
    link.addEventListener("mouseleave", () => { tip.hidden = true; });
  }
}

// The Traces tab's points, as Kiali's: 400 ms on a point (or keyboard focus) asks the server
// for the trace's tooltip (`<base><traceID>/tooltip`: the compact metrics map, duration, spans)
// and shows it, with a loading state meanwhile; leaving first cancels it. The fragments read
// are kept for the page's life (a few dozen at most), the request in flight is aborted when
// the pointer moves on. The server escapes every name; the fragment is parsed, not run.
function traceTooltips(scatter, base) {
  const HOVER_MS = 400;
  const KEEP = 50;
  const tip = document.createElement("div");
  tip.className = "tooltip trace-tip";
  tip.id = "trace-tooltip";
  tip.setAttribute("role", "tooltip");
  tip.hidden = true;
  document.body.appendChild(tip);
  const loaded = new Map();
  let timer;
  let controller = null;
  let current = null;
  let at = { x: 0, y: 0 };

  const place = () => {
    const margin = 12;
    const box = tip.getBoundingClientRect();
    let x = at.x + margin;
    let y = at.y + margin;
    if (x + box.width > window.innerWidth) x = Math.max(0, at.x - margin - box.width);
    if (y + box.height > window.innerHeight) y = Math.max(0, at.y - margin - box.height);
    tip.style.left = x + "px";
    tip.style.top = y + "px";
  };
  const show = (nodes) => {
    tip.replaceChildren(...nodes);
    tip.hidden = false;
    place();
  };
  const hide = (link) => {
    if (link && current !== link) return;
    clearTimeout(timer);
    timer = undefined;
    if (controller) controller.abort();
    controller = null;
    if (current) current.removeAttribute("aria-describedby");
    current = null;
    tip.hidden = true;
    tip.replaceChildren();
    tip.removeAttribute("aria-busy");
  };
  const message = (link, text) => {
    const line = document.createElement("div");
    line.className = "tt-title";
    line.textContent = link.getAttribute("aria-label");
    const note = document.createElement("div");
    note.className = "tt-note";
    note.textContent = text;
    return [line, note];
  };

  const load = async (link, id) => {
    current = link;
    link.setAttribute("aria-describedby", tip.id);
    if (loaded.has(id)) {
      show([document.importNode(loaded.get(id), true)]);
      return;
    }
    const spinner = document.createElement("span");
    spinner.className = "spinner";
    const [title, note] = message(link, "Loading statistics…");
    note.prepend(spinner);
    tip.setAttribute("aria-busy", "true");
    show([title, note]);
    controller = new AbortController();
    try {
      const response = await fetch(base + encodeURIComponent(id) + "/tooltip", {
        signal: controller.signal,
        credentials: "same-origin",
        headers: { Accept: "text/html" },
      });
      const type = response.headers.get("content-type") || "";
      if (!response.ok || response.redirected || !type.startsWith("text/html")) {
        throw new Error("status " + response.status);
      }
      const doc = new DOMParser().parseFromString(await response.text(), "text/html");
      const fragment = doc.querySelector(".trace-tooltip");
      if (!fragment) throw new Error("no tooltip in the answer");
      if (loaded.size >= KEEP) loaded.delete(loaded.keys().next().value);
      loaded.set(id, fragment);
      if (current === link) {
        tip.removeAttribute("aria-busy");
        show([document.importNode(fragment, true)]);
      }
    } catch (e) {
      if (e.name === "AbortError" || current !== link) return;
      tip.removeAttribute("aria-busy");
      show(message(link, "The statistics could not be loaded (" + e.message + ")."));
    } finally {
      if (current === link) controller = null;
    }
  };
  const start = (link) => {
    const circle = link.querySelector("circle");
    const id = circle && circle.dataset.traceId;
    if (!id) return;
    hide();
    current = link;
    timer = setTimeout(() => load(link, id), HOVER_MS);
  };

  for (const link of scatter.querySelectorAll("a.point-link")) {
    // The tooltip replaces the browser's own: the label stays in aria-label.
    for (const title of link.querySelectorAll("title")) title.remove();
    link.addEventListener("mouseenter", (e) => {
      at = { x: e.clientX, y: e.clientY };
      start(link);
    });
    link.addEventListener("mousemove", (e) => {
      at = { x: e.clientX, y: e.clientY };
      if (current === link && !tip.hidden) place();
    });
    link.addEventListener("mouseleave", () => hide(link));
    link.addEventListener("focus", () => {
      const box = link.getBoundingClientRect();
      at = { x: box.right, y: box.bottom };
      start(link);
    });
    link.addEventListener("blur", () => hide(link));
  }
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape") hide();
  });
}
