// The only script of the console, and nothing depends on it: it refreshes the provider's live
// chart and filters the catalog while you type. Every page works without it.
"use strict";
document.addEventListener("DOMContentLoaded", () => {
  for (const img of document.querySelectorAll("img[data-refresh]")) {
    const every = Number(img.dataset.refresh) || 2000;
    const base = img.src.split("?")[0];
    setInterval(() => { img.src = base + "?t=" + Date.now(); }, every);
  }
  for (const input of document.querySelectorAll("input[data-filter]")) {
    const rows = document.querySelectorAll("#" + input.dataset.filter + " tbody tr");
    input.addEventListener("input", () => {
      const needle = input.value.toLowerCase();
      for (const row of rows) row.hidden = !row.dataset.search.includes(needle);
    });
  }
});
