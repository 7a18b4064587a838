// shelfwise operator console: charts (uPlot) from JSON embedded in the page, and the
// playground's calls to /v1/recommend and /v1/search. No build step; DOM text only
// (textContent), so nothing an API returns is ever parsed as HTML.
"use strict";

const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#9333ea"];

function drawCharts(root) {
  for (const box of root.querySelectorAll("[data-chart]")) {
    const source = document.getElementById(box.dataset.chart);
    if (!source || box.dataset.drawn) continue;
    const chart = JSON.parse(source.textContent);
    if (!chart.labels || chart.labels.length === 0 || chart.series.length === 0) {
      box.textContent = "Nothing to chart yet.";
      continue;
    }
    const xs = chart.labels.map((_, i) => i);
    const data = [xs, ...chart.series.map((s) => s.values)];
    const series = [{ label: box.dataset.x || "x", value: (u, i) => (i == null ? "" : chart.labels[i]) }];
    chart.series.forEach((s, i) => series.push({ label: s.name, stroke: PALETTE[i % PALETTE.length], width: 2, spanGaps: true, points: { size: 7 } }));
    new uPlot({
      width: Math.max(320, box.clientWidth || 600),
      height: 240,
      scales: { x: { time: false } },
      axes: [{ splits: () => xs, values: (u, ticks) => ticks.map((t) => (Number.isInteger(t) && chart.labels[t] !== undefined ? chart.labels[t] : "")) }, {}],
      series,
    }, data, box);
    box.dataset.drawn = "1";
  }
}

function cell(row, text, className) {
  const td = document.createElement("td");
  td.textContent = text;
  if (className) td.className = className;
  row.appendChild(td);
  return td;
}

function describe(reason) {
  switch (reason.kind) {
    case "similar_to_history": return `similar to history: ${reason.items.join(", ")}`;
    case "similar_to_recent": return `similar to recent: ${reason.items.join(", ")}`;
    case "popular_in": return `popular${reason.category ? " in " + reason.category : ""}`;
    case "matched_terms": return `matched ${reason.terms.join(", ")} in ${reason.field} (${reason.score.toFixed(2)})`;
    case "dense_similarity": return `semantic similarity ${reason.score.toFixed(3)}`;
    case "rule": return `rule ${reason.rule_id}: ${reason.action}`;
    case "click_model":
    case "ranking_features":
      return `${reason.kind.replace("_", " ")}: ` + reason.top_features.map((f) => `${f.feature} ${f.contribution >= 0 ? "+" : ""}${f.contribution.toFixed(3)}`).join(", ");
    default: return reason.kind;
  }
}

async function runPlayground(event) {
  event.preventDefault();
  const form = event.target;
  const endpoint = form.endpoint.value;
  const body = { explain: true };
  const k = parseInt(form.k.value, 10);
  if (!Number.isNaN(k)) body.k = k;
  if (form.user_id.value.trim()) body.user_id = form.user_id.value.trim();
  if (endpoint === "search") body.query = form.query.value;
  const meta = document.getElementById("pg-meta");
  const tbody = document.querySelector("#pg-results tbody");
  tbody.replaceChildren();
  meta.textContent = "Asking /v1/" + endpoint + " …";
  const response = await fetch("/v1/" + endpoint, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const answer = await response.json();
  if (!response.ok) {
    meta.textContent = `${response.status} ${answer.code}: ${answer.message}`;
    meta.className = "error";
    return;
  }
  meta.className = "muted";
  const extras = ["fallback", "personalisation", "hint"].filter((key) => answer[key]).map((key) => `${key}: ${answer[key]}`);
  meta.textContent = `${answer.items.length} items from model v${answer.model_version} · request ${answer.request_id}` + (extras.length ? " · " + extras.join(" · ") : "");
  answer.items.forEach((item, i) => {
    const row = document.createElement("tr");
    row.className = "pg-item";
    cell(row, String(i + 1), "num");
    cell(row, item.item_id);
    cell(row, item.title || "");
    cell(row, item.score.toFixed(4), "num");
    const why = cell(row, item.explanation ? item.explanation.text : "");
    if (item.explanation && item.explanation.reasons.length) {
      const list = document.createElement("ul");
      list.className = "reasons";
      for (const reason of item.explanation.reasons) {
        const li = document.createElement("li");
        li.textContent = describe(reason);
        list.appendChild(li);
      }
      why.appendChild(list);
    }
    tbody.appendChild(row);
  });
}

document.addEventListener("DOMContentLoaded", () => {
  drawCharts(document);
  const form = document.getElementById("playground-form");
  if (form) form.addEventListener("submit", (event) => runPlayground(event).catch((error) => {
    document.getElementById("pg-meta").textContent = String(error);
  }));
});
document.addEventListener("htmx:afterSettle", (event) => drawCharts(event.target));
