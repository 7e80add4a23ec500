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
  const tip = document.createElement("div");
  tip.className = "tooltip";
  tip.hidden = true;
  document.body.appendChild(tip);
  for (const link of document.querySelectorAll("#scatter a.point-link")) {
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
});
