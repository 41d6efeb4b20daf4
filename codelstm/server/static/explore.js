// The neuron explorer page: colours text by one LSTM unit's activation, byte by byte.
// No framework, no build step, no network beyond this service (works offline).
"use strict";

const $ = (sel) => document.querySelector(sel);
const NUL_GLYPH = "\u2400"; // ␀ stands for a NUL byte (document separator) in the text box
const QUANTITY_NAMES = { h: "hidden state h", c: "cell state c", i: "input gate i", f: "forget gate f",
                         o: "output gate o", g: "candidate g" };
const GRID_PAGE = 32;

const PYTHON_SAMPLE = `import os


class Cache:
    """A tiny cache of file contents."""

    def __init__(self, root, limit=16):
        self.root = root
        self.limit = limit
        self.items = {}  # path -> text

    def read(self, name):
        path = os.path.join(self.root, name)
        if path in self.items:
            return self.items[path]
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if len(self.items) >= self.limit:
            oldest = next(iter(self.items))
            del self.items[oldest]
        self.items[path] = text
        return text


def count_words(cache, names):
    # how many words each file has, e.g. {"a.txt": 3}
    counts = {}
    for name in names:
        words = cache.read(name).split()
        counts[name] = len([w for w in words if w.strip(".,;")])
    return counts
`;

const state = {
  models: [],
  acts: null,        // {model, text, layer, neuron, values: {q: [..per byte..]}} for the selected neuron
  grid: null,        // {text, layer, q, start, values: [[..per byte..] per neuron]}
  gridStart: 0,
  feature: null,     // {name, values} while the view shows a feature instead of a neuron
  seq: 0,            // request sequence: late answers to superseded requests are dropped
  busy: 0,
};

// ---- colours ------------------------------------------------------------------------------------

// Dark red (-1) -> white (0) -> dark blue (+1), as in "Exploring LSTMs".
function colour(v, scale) {
  const t = Math.max(-1, Math.min(1, v / scale));
  const a = Math.abs(t);
  const target = t < 0 ? [139, 0, 0] : [0, 0, 139];
  return target.map((c) => Math.round(255 + (c - 255) * a));
}

function scaleFor(values, quantity) {
  const mode = $("#scale").value;
  const maxAbs = values.reduce((m, v) => Math.max(m, Math.abs(v ?? 0)), 0) || 1;
  if (mode === "1") return 1;
  if (mode === "max") return maxAbs;
  return quantity === "c" ? Math.max(1, maxAbs) : 1;
}

// ---- text <-> bytes -----------------------------------------------------------------------------

function utf8Length(cp) {
  if (cp < 0x80) return 1;
  if (cp < 0x800) return 2;
  if (cp < 0x10000) return 3; // lone surrogates too: the server encodes them in 3 bytes
  return 4;
}

// One entry per character: its text, its last byte (where its value is read), its line and column.
function characters(text) {
  const out = [];
  let byte = 0, row = 0, col = 0;
  for (const ch of text) {
    byte += utf8Length(ch.codePointAt(0));
    out.push({ ch, last: byte - 1, row, col });
    if (ch === "\n") { row += 1; col = 0; } else { col += 1; }
  }
  return out;
}

function currentText() {
  return $("#text").value.replaceAll(NUL_GLYPH, "\0");
}

function shownText(text) {
  return text.replaceAll("\0", NUL_GLYPH);
}

// ---- requests -----------------------------------------------------------------------------------

function setStatus(message, isError = false) {
  const el = $("#status");
  el.textContent = message;
  el.classList.toggle("error", isError);
}

async function api(method, path, body) {
  const headers = { "content-type": "application/json" };
  const key = $("#apikey").value.trim();
  if (key) headers.authorization = `Bearer ${key}`;
  state.busy += 1;
  document.body.dataset.busy = "1";
  try {
    const r = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    const data = await r.json().catch(() => ({}));
    if (!r.ok) {
      const err = data.error || {};
      const hint = r.status === 401 ? " (enter the API key at the top right)" : "";
      throw new Error(`${r.status} ${err.type || ""}: ${err.message || r.statusText}${hint}`);
    }
    return data;
  } finally {
    state.busy -= 1;
    document.body.dataset.busy = state.busy ? "1" : "0";
  }
}

function selectedModel() {
  return state.models.find((m) => m.id === $("#model").value) || state.models[0];
}

function modelField() {
  const m = selectedModel();
  return m && m.id !== "served" ? m.id : null;
}

// ---- models -------------------------------------------------------------------------------------

async function loadModels(keepSelection = true) {
  state.models = await api("GET", "/v1/explore/models");
  const previous = $("#model").value; // read once the list arrives: a choice made while it loaded is kept
  const select = $("#model");
  select.innerHTML = "";
  for (const m of state.models) {
    const opt = document.createElement("option");
    opt.value = m.id;
    const label = m.id === "served" ? `${m.name} (served${m.task ? `, task ${m.task}` : ""})`
      : `task: ${m.name}${m.trained ? ` (${Math.round(m.exact_match * 100)}% exact, ${m.train_seconds}s)` : " (not trained)"}`;
    opt.textContent = label;
    select.appendChild(opt);
  }
  if (keepSelection && state.models.some((m) => m.id === previous)) select.value = previous;
  modelChanged(false);
}

function modelChanged(loadSample = true) {
  const m = selectedModel();
  if (!m) return;
  $("#train").hidden = m.id === "served";
  $("#train").textContent = m.trained ? "Retrain" : "Train";
  const layer = $("#layer");
  const keep = layer.value;
  layer.innerHTML = "";
  for (let k = 0; k < (m.num_layers || 1); k++) layer.add(new Option(String(k), String(k)));
  if (keep && Number(keep) < (m.num_layers || 1)) layer.value = keep;
  $("#neuron").max = String((m.hidden_size || 1) - 1);
  if (Number($("#neuron").value) >= (m.hidden_size || 1)) $("#neuron").value = "0";
  for (const opt of $("#quantity").options) opt.disabled = !(m.quantities || []).includes(opt.value);
  if ($("#quantity").selectedOptions[0]?.disabled) $("#quantity").value = "h";
  state.gridStart = 0;
  if (loadSample) $("#text").value = shownText(m.sample || PYTHON_SAMPLE);
}

async function train() {
  const m = selectedModel();
  if (!m || m.id === "served") return;
  $("#train").disabled = true;
  setStatus(`training task ${m.name}: a few seconds to half a minute…`);
  try {
    const t = await api("POST", `/v1/explore/tasks/${m.name}/train`, {});
    await loadModels();
    $("#text").value = shownText(t.sample);
    await run();
    setStatus(`task ${t.name}: trained ${t.steps} steps in ${t.train_seconds} s, ${Math.round(t.exact_match * 100)}% `
              + "of fresh prompts completed exactly");
  } catch (e) {
    setStatus(e.message, true);
  } finally {
    $("#train").disabled = false;
  }
}

// ---- the main view ------------------------------------------------------------------------------

function viewKey() {
  return `${$("#model").value}|${$("#layer").value}|${$("#quantity").value}|${$("#neuron").value}`;
}

function render() {
  const view = $("#view");
  const acts = state.acts;
  if (!acts) return;
  const q = $("#quantity").value;
  const feature = state.feature;
  const values = feature ? feature.values : acts.values[q];
  if (!values) return;
  const scale = feature ? (values.reduce((m, v) => Math.max(m, Math.abs(v ?? 0)), 0) || 1) : scaleFor(values, q);
  const label = feature ? `feature ${feature.name}` : `${QUANTITY_NAMES[q]}`;
  const frag = document.createDocumentFragment();
  for (const c of characters(acts.text)) {
    const span = document.createElement("span");
    const v = values[c.last];
    span.className = "ch";
    span.dataset.i = String(c.last);
    if (v === null || v === undefined) {
      span.dataset.v = "";
      span.title = `byte ${c.last}: undefined`;
    } else {
      const [r, g, b] = colour(v, scale);
      span.style.backgroundColor = `rgb(${r}, ${g}, ${b})`;
      if (Math.abs(v / scale) > 0.55) span.classList.add("dark");
      span.dataset.v = String(v);
      span.title = `${label} = ${v}   (byte ${c.last}, ${JSON.stringify(c.ch)})`;
    }
    if (c.ch === "\n") {
      span.textContent = "↵";
      span.classList.add("nl");
      frag.appendChild(span);
      frag.appendChild(document.createTextNode("\n"));
      continue;
    }
    if (c.ch === "\0") {
      span.textContent = NUL_GLYPH;
      span.classList.add("nul");
    } else {
      span.textContent = c.ch;
    }
    frag.appendChild(span);
  }
  view.replaceChildren(frag);
  view.dataset.scale = String(scale);
  view.dataset.key = feature ? `feature|${feature.name}` : `${acts.model}|${acts.layer}|${q}|${acts.neuron}`;
  const m = selectedModel();
  $("#caption").textContent = feature
    ? `feature ${feature.name}: ${feature.description} (scaled by max |value| = ${scale})`
    : `${m ? m.name : ""} · layer ${acts.layer} · neuron ${acts.neuron} · ${QUANTITY_NAMES[q]} · scale ±${+scale.toFixed(3)}`;
  highlightGrid();
}

async function run() {
  const text = currentText();
  if (!text) { setStatus("type or paste some code first", true); return; }
  const layer = Number($("#layer").value);
  const neuron = Number($("#neuron").value);
  const seq = ++state.seq;
  state.feature = null;
  setStatus("reading the text…");
  try {
    const r = await api("POST", "/v1/activations", { text, model: modelField(), layer, neurons: [neuron] });
    if (seq !== state.seq) return;
    const values = Object.fromEntries(Object.entries(r.values).map(([q, rows]) => [q, rows[0]]));
    state.acts = { model: $("#model").value, text, layer, neuron, values };
    render();
    setStatus(`${r.bytes} bytes · ${r.model} · ${r.cell.toUpperCase()} ${r.num_layers}×${r.hidden_size} · ${r.timing_ms} ms`
              + (r.cell === "lstm" ? ` · gates verified (max error ${r.max_gate_error.toExponential(1)})` : ""));
    await loadGrid(text, seq);
  } catch (e) {
    if (seq === state.seq) setStatus(e.message, true);
  }
}

// ---- the overview grid: small multiples of neurons ----------------------------------------------

async function loadGrid(text, seq) {
  const m = selectedModel();
  const hidden = m?.hidden_size || 1;
  const layer = Number($("#layer").value);
  const q = $("#quantity").value;
  const start = Math.min(state.gridStart, Math.max(0, hidden - 1));
  const end = Math.min(hidden, start + GRID_PAGE);
  const neurons = Array.from({ length: end - start }, (_, j) => start + j);
  const r = await api("POST", "/v1/activations", { text, model: modelField(), layer, neurons, quantities: [q] });
  if (seq !== state.seq) return;
  state.grid = { text, layer, q, start, values: r.values[q] };
  drawGrid();
}

function drawGrid() {
  const grid = state.grid;
  const box = $("#grid");
  box.replaceChildren();
  if (!grid) return;
  const chars = characters(grid.text);
  const rows = Math.min(80, (chars.at(-1)?.row ?? 0) + 1);
  const cols = Math.min(90, Math.max(1, ...chars.map((c) => c.col + 1)));
  const small = chars.length <= 600 && cols <= 48;
  const cw = small ? 7 : 2, chh = small ? 12 : 3;
  grid.values.forEach((values, j) => {
    const neuron = grid.start + j;
    const cell = document.createElement("div");
    cell.className = "cell";
    cell.dataset.neuron = String(neuron);
    const title = document.createElement("div");
    title.textContent = `#${neuron}`;
    const canvas = document.createElement("canvas");
    canvas.width = cols * cw;
    canvas.height = rows * chh;
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "#fff";
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    const scale = scaleFor(values, grid.q);
    ctx.font = `${chh - 2}px monospace`;
    ctx.textBaseline = "top";
    for (const c of chars) {
      if (c.row >= rows || c.col >= cols) continue;
      const [r, g, b] = colour(values[c.last], scale);
      ctx.fillStyle = `rgb(${r},${g},${b})`;
      ctx.fillRect(c.col * cw, c.row * chh, cw, chh);
      if (small && c.ch.trim()) {
        ctx.fillStyle = Math.abs(values[c.last] / scale) > 0.55 ? "#fff" : "#333";
        ctx.fillText(c.ch === "\0" ? NUL_GLYPH : c.ch, c.col * cw, c.row * chh + 1);
      }
    }
    canvas.title = `neuron ${neuron}: click to view`;
    cell.append(title, canvas);
    cell.addEventListener("click", () => { $("#neuron").value = String(neuron); run(); });
    box.appendChild(cell);
  });
  const m = selectedModel();
  $("#grid-caption").textContent = `Overview: ${QUANTITY_NAMES[grid.q]} of neurons ${grid.start}–`
    + `${grid.start + grid.values.length - 1} of ${m?.hidden_size ?? "?"} in layer ${grid.layer}`;
  highlightGrid();
}

function highlightGrid() {
  for (const cell of document.querySelectorAll("#grid .cell")) {
    cell.classList.toggle("selected", cell.dataset.neuron === $("#neuron").value && !state.feature);
  }
}

function pageGrid(delta) {
  const hidden = selectedModel()?.hidden_size || 1;
  const next = state.gridStart + delta * GRID_PAGE;
  if (next < 0 || next >= hidden) return;
  state.gridStart = next;
  const seq = ++state.seq;
  loadGrid(currentText(), seq).catch((e) => setStatus(e.message, true));
}

// ---- find neurons -------------------------------------------------------------------------------

function viewNeuron(layer, quantity, neuron) {
  $("#layer").value = String(layer);
  $("#quantity").value = quantity;
  $("#neuron").value = String(neuron);
  state.gridStart = Math.floor(neuron / GRID_PAGE) * GRID_PAGE;
  run();
  $("#view").scrollIntoView({ behavior: "smooth", block: "nearest" });
}

async function findNeurons() {
  const text = currentText();
  if (!text) { setStatus("type or paste some code first", true); return; }
  const button = $("#find");
  button.disabled = true;
  setStatus("finding neurons: correlating every unit of every layer with each feature…");
  try {
    const r = await api("POST", "/v1/neurons", { text, model: modelField(), top: 5 });
    const table = $("#neurons-table");
    const body = table.querySelector("tbody");
    body.replaceChildren();
    for (const f of r.features) {
      const tr = document.createElement("tr");
      const best = f.best[0];
      tr.dataset.feature = f.name;
      const name = document.createElement("td");
      name.innerHTML = `<b></b><div class="desc"></div>`;
      name.querySelector("b").textContent = f.name;
      name.querySelector(".desc").textContent = f.description;
      const where = document.createElement("td");
      const rr = document.createElement("td");
      rr.className = "r";
      const alts = document.createElement("td");
      const act = document.createElement("td");
      if (best) {
        Object.assign(tr.dataset, { layer: best.layer, quantity: best.quantity, neuron: best.neuron, r: best.r });
        where.textContent = `layer ${best.layer} · ${best.quantity} · #${best.neuron}`;
        rr.textContent = best.r.toFixed(3);
        for (const s of f.best.slice(1)) {
          const a = document.createElement("span");
          a.className = "alt";
          a.textContent = `L${s.layer} ${s.quantity}#${s.neuron} ${s.r.toFixed(2)}`;
          a.addEventListener("click", () => viewNeuron(s.layer, s.quantity, s.neuron));
          alts.appendChild(a);
        }
        const view = document.createElement("button");
        view.className = "view-neuron";
        view.textContent = "view";
        view.addEventListener("click", () => viewNeuron(best.layer, best.quantity, best.neuron));
        act.appendChild(view);
      } else {
        where.textContent = f.constant ? "constant over this text" : "—";
      }
      const show = document.createElement("button");
      show.className = "view-feature";
      show.textContent = "feature";
      show.title = "colour the text by the feature itself";
      show.addEventListener("click", () => {
        if (!state.acts || state.acts.text !== text) state.acts = { model: $("#model").value, text, layer: 0, neuron: 0, values: {} };
        state.feature = { name: f.name, description: f.description, values: f.values };
        render();
      });
      act.appendChild(show);
      tr.append(name, where, rr, alts, act);
      body.appendChild(tr);
    }
    table.hidden = false;
    table.dataset.model = r.model;
    setStatus(`found neurons for ${r.features.length} features over ${r.bytes} bytes, layers ${r.layers.join(", ")}, `
              + `quantities ${r.quantities.join(", ")} · ${r.timing_ms} ms`);
  } catch (e) {
    setStatus(e.message, true);
  } finally {
    button.disabled = false;
  }
}

// ---- wiring -------------------------------------------------------------------------------------

function stepNeuron(delta) {
  const max = (selectedModel()?.hidden_size || 1) - 1;
  const n = Math.min(max, Math.max(0, Number($("#neuron").value) + delta));
  $("#neuron").value = String(n);
  state.gridStart = Math.floor(n / GRID_PAGE) * GRID_PAGE;
  run();
}

function init() {
  const key = $("#apikey");
  key.value = localStorage.getItem("codelstm.apiKey") || "";
  key.addEventListener("change", () => {
    localStorage.setItem("codelstm.apiKey", key.value.trim());
    loadModels().then(run).catch((e) => setStatus(e.message, true));
  });
  $("#model").addEventListener("change", () => { modelChanged(true); run(); });
  $("#train").addEventListener("click", train);
  $("#layer").addEventListener("change", () => { state.gridStart = 0; run(); });
  $("#quantity").addEventListener("change", () => {
    state.feature = null;
    render();
    const seq = ++state.seq;
    loadGrid(state.acts?.text ?? currentText(), seq).catch((e) => setStatus(e.message, true));
  });
  $("#scale").addEventListener("change", () => { render(); drawGrid(); });
  $("#neuron").addEventListener("change", () => stepNeuron(0));
  $("#prev").addEventListener("click", () => stepNeuron(-1));
  $("#next").addEventListener("click", () => stepNeuron(1));
  $("#run").addEventListener("click", run);
  $("#find").addEventListener("click", findNeurons);
  $("#grid-prev").addEventListener("click", () => pageGrid(-1));
  $("#grid-next").addEventListener("click", () => pageGrid(1));
  $("#sample").addEventListener("click", () => { $("#text").value = shownText(selectedModel()?.sample || PYTHON_SAMPLE); run(); });
  $("#text").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); run(); }
  });
  $("#text").value = PYTHON_SAMPLE;
  loadModels(false)
    .then(() => {
      const served = selectedModel();
      if (served?.sample) $("#text").value = shownText(served.sample);
      return run();
    })
    .catch((e) => setStatus(e.message, true));
}

init();
