// report.html's behaviour (frozen_glue/report/report_html.py inlines this file): every table sorts by a click on its
// header, and each example browser filters its examples by outcome, slice and free text and sorts by any column.
// No library and no network: the data is the page's one JSON block (id "report-data").
"use strict";
(function () {
  const SHOWN = 300; // rows drawn at once: filtering 40 000 rows is cheap, drawing them is not

  function escapeHtml(value) {
    return String(value).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;",
                                                     "'": "&#39;"}[c]));
  }

  function compare(x, y) { // numbers as numbers, empty cells last, text by locale
    const ex = x === null || x === "" || x === undefined, ey = y === null || y === "" || y === undefined;
    if (ex || ey) return ex === ey ? 0 : (ex ? 1 : -1);
    if (typeof x === "number" && typeof y === "number") return x - y;
    const nx = Number(x), ny = Number(y);
    if (!Number.isNaN(nx) && !Number.isNaN(ny) && String(x).trim() !== "" && String(y).trim() !== "") return nx - ny;
    return String(x).localeCompare(String(y));
  }

  // one header rule for every table: a click sorts by that column, ascending first, a second click descending;
  // the header shows the order (data-order) and sort(col, descending) reorders the rows
  function sortableHeader(headRow, sort) {
    Array.from(headRow.cells).forEach((th, col) => {
      th.classList.add("sortable");
      th.addEventListener("click", () => {
        const descending = th.dataset.order === "asc";
        Array.from(headRow.cells).forEach((c) => { delete c.dataset.order; });
        th.dataset.order = descending ? "desc" : "asc";
        sort(col, descending);
      });
    });
  }

  // the report's own tables (rendered from report.md)
  function sortableTables() {
    document.querySelectorAll("table.md").forEach((table) => {
      const head = table.tHead, body = table.tBodies[0];
      if (!head || !body) return;
      sortableHeader(head.rows[0], (col, descending) => {
        const rows = Array.from(body.rows);
        rows.sort((a, b) => compare(a.cells[col].textContent, b.cells[col].textContent) * (descending ? -1 : 1));
        rows.forEach((r) => body.appendChild(r));
      });
    });
  }

  function format(value) {
    if (value === null || value === undefined) return "";
    if (typeof value === "number" && !Number.isInteger(value)) return value.toFixed(3);
    if (Array.isArray(value)) return value.join(", ");
    return String(value);
  }

  function browser(root, spec) {
    const cols = spec.columns, rows = spec.rows;
    const at = Object.fromEntries(cols.map((c, i) => [c, i]));
    const lower = rows.map((r) => String(r[at.text]).toLowerCase());
    const state = {outcome: "all", slice: "", text: ""};
    const outcome = root.querySelector("select.outcome"), slice = root.querySelector("select.slice");
    const search = root.querySelector("input.search"), count = root.querySelector(".count");
    const table = root.querySelector("table.examples"), body = table.tBodies[0];
    let order = rows.map((_, i) => i);

    function matches(i) {
      const r = rows[i];
      if (state.outcome !== "all" && r[at.outcome] !== state.outcome) return false;
      if (state.slice && !r[at.slices].includes(state.slice)) return false;
      return !state.text || lower[i].includes(state.text);
    }

    function draw() {
      const shown = order.filter(matches);
      count.textContent = String(shown.length);
      const html = [];
      for (const i of shown.slice(0, SHOWN)) {
        html.push("<tr>" + rows[i].map((v) => "<td>" + escapeHtml(format(v)) + "</td>").join("") + "</tr>");
      }
      body.innerHTML = html.join("");
      root.querySelector(".more").textContent = shown.length > SHOWN ?
        `showing the first ${SHOWN} of ${shown.length}` : "";
    }

    sortableHeader(table.tHead.rows[0], (col, descending) => {
      order = rows.map((_, i) => i);
      order.sort((a, b) => compare(rows[a][col], rows[b][col]) * (descending ? -1 : 1) || a - b);
      draw();
    });
    outcome.addEventListener("change", () => { state.outcome = outcome.value; draw(); });
    slice.addEventListener("change", () => { state.slice = slice.value; draw(); });
    search.addEventListener("input", () => { state.text = search.value.trim().toLowerCase(); draw(); });
    draw();
  }

  document.addEventListener("DOMContentLoaded", () => {
    sortableTables();
    const data = JSON.parse(document.getElementById("report-data").textContent);
    document.querySelectorAll(".browser").forEach((root) => browser(root, data.browsers[Number(root.dataset.index)]));
    document.body.dataset.ready = "1"; // the tests wait for it
  });
})();
