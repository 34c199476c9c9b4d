/* lstmlm view, part 1: the shared namespace, the bootstrap, decoding, state, events and the API.
 * Every asset file is one IIFE sharing `window.lstmlmView` (no modules: the page is one inline script). */
(() => {
  "use strict";
  const V = (window.lstmlmView = window.lstmlmView || {});

  V.timings = { decode_ms: 0, render_ms: 0 };

  // ---------------------------------------------------------------- small helpers

  /** An element: V.el("li", {class: "x", dataset: {i: 1}, text: "..."}, child, ...). */
  V.el = (tag, attrs = {}, ...children) => {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs)) {
      if (value === undefined || value === null || value === false) continue;
      if (key === "text") node.textContent = value;
      else if (key === "class") node.className = value;
      else if (key === "dataset") Object.assign(node.dataset, value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children) {
      if (child !== null && child !== undefined) node.append(child);
    }
    return node;
  };
  V.$ = (id) => document.getElementById(id);
  V.fmt = (x, digits = 3) => (Number.isFinite(x) ? x.toFixed(digits) : String(x));
  /** GPT-2's byte-level alphabet (the bpe tokenizer's pre-tokenizer): a character -> its byte. */
  const BYTE_OF = (() => {
    const printable = [];
    for (let b = 33; b <= 126; b++) printable.push(b);
    for (let b = 161; b <= 172; b++) printable.push(b);
    for (let b = 174; b <= 255; b++) printable.push(b);
    const map = new Map(printable.map((b) => [String.fromCharCode(b), b]));
    let extra = 0;
    for (let b = 0; b < 256; b++) if (!printable.includes(b)) map.set(String.fromCharCode(256 + extra++), b);
    return map;
  })();
  const utf8 = new TextDecoder("utf-8", { fatal: true });
  /** A bpe token's text ("Ġthe" -> " the"); bytes as \xHH where they are part of a UTF-8 character. */
  const byteLevelText = (token) => {
    const bytes = [];
    for (const ch of token) {
      if (!BYTE_OF.has(ch)) return token; // a special token such as <eos>
      bytes.push(BYTE_OF.get(ch));
    }
    try {
      return utf8.decode(new Uint8Array(bytes));
    } catch (err) {
      return bytes.map((b) => (b < 128 ? String.fromCharCode(b) : `\\x${b.toString(16)}`)).join("");
    }
  };
  /** A token as shown: bpe's byte-level form decoded, whitespace made visible. */
  V.showToken = (token) => {
    const info = V.state && V.state.info;
    const text = info && info.tokenizer === "bpe" ? byteLevelText(String(token)) : String(token);
    return text.replace(/ /g, "\u2423").replace(/\n/g, "\u21b5").replace(/\t/g, "\u21e5");
  };

  // ---------------------------------------------------------------- events

  const listeners = {};
  V.on = (name, fn) => (listeners[name] = listeners[name] || []).push(fn);
  V.emit = (name, ...args) => (listeners[name] || []).forEach((fn) => fn(...args));

  // ---------------------------------------------------------------- the bootstrap and the state

  V.readBootstrap = () => {
    const node = V.$("lstmlm-bootstrap");
    return JSON.parse(node.textContent);
  };

  /** One place for what the page shows; the parts read it and change it through the setters. */
  V.state = {
    mode: "static",
    info: null,
    trace: null, // the TRACE object of the contract
    layers: [], // decoded: [{name: {data: Float32Array, width}}], start: {...}
    layer: 0,
    quantity: "hidden",
    selected: 0, // the selected token
    unit: 0, // the selected unit (diagram)
    hover: null, // the hovered token or null
    range: null, // [first, last] token range, inclusive
    karpathy: null, // {layer, unit} colouring the tokens, or null
    threshold: 0.3,
  };

  /** base64 of float32 little-endian values to a Float32Array. */
  V.decode = (b64) => {
    // a plain loop: Uint8Array.from(atob(s), mapFn) is ~10x slower on megabytes (iterator protocol)
    const binary = atob(b64);
    const bytes = new Uint8Array(binary.length);
    for (let k = 0; k < binary.length; k++) bytes[k] = binary.charCodeAt(k);
    return new Float32Array(bytes.buffer);
  };

  /** Take a TRACE: its matrices are decoded when first read (a layer or quantity never shown costs
   * nothing), each once; the time spent decoding adds to timings.decode_ms. */
  V.setTrace = (trace) => {
    const st = V.state;
    const T = trace.tokens.length;
    st.trace = trace;
    st.layers = trace.layers.map((layer) => {
      const out = { values: {}, start: {} };
      for (const [name, b64] of Object.entries(layer.values)) out.values[name] = { b64, data: null, width: 0 };
      for (const [name, b64] of Object.entries(layer.start || {})) out.start[name] = V.decode(b64);
      return out;
    });
    st.tokens = T;
    st.selected = Math.min(st.selected, Math.max(0, T - 1));
    st.hover = null;
    st.range = null;
    V.timings = { ...V.timings, decode_ms: 0 };
    V.emit("trace");
  };

  /** The matrix of a quantity in a layer: {data, width} (a T x width row-major Float32Array) or null. */
  V.matrix = (layer, name) => {
    const decoded = V.state.layers[layer];
    const m = decoded && decoded.values[name];
    if (!m) return null;
    if (m.data === null) {
      const t0 = performance.now();
      m.data = V.decode(m.b64);
      m.width = V.state.tokens ? m.data.length / V.state.tokens : 0;
      m.b64 = null;
      V.timings = { ...V.timings, decode_ms: V.timings.decode_ms + performance.now() - t0 };
    }
    return m;
  };
  /** One value: quantity `name` of layer `layer` at token t, unit u (undefined outside). */
  V.value = (layer, name, t, u) => {
    const m = V.matrix(layer, name);
    if (!m || u >= m.width || t < 0 || t >= m.data.length / m.width) return undefined;
    return m.data[t * m.width + u];
  };
  /** The carried value before token t: the previous token's, or the start state at t = 0. */
  V.previous = (layer, name, t, u) => {
    if (t > 0) return V.value(layer, name, t - 1, u);
    const start = V.state.layers[layer] && V.state.layers[layer].start[name];
    return start && u < start.length ? start[u] : undefined;
  };
  V.tokenCount = () => (V.state.trace ? V.state.trace.tokens.length : 0);
  V.layerInfo = (layer = V.state.layer) => V.state.info.layers[layer];
  V.quantityNames = (layer = V.state.layer) => V.layerInfo(layer).quantities.map((q) => q.name);
  V.isGate = (name) => /_gate$/.test(name);

  V.setView = (layer, quantity) => {
    const st = V.state;
    st.layer = layer;
    const names = V.quantityNames(layer);
    st.quantity = names.includes(quantity) ? quantity : V.defaultQuantity(layer);
    const width = V.matrix(layer, st.quantity) ? V.matrix(layer, st.quantity).width : 0;
    if (st.unit >= width) st.unit = 0;
    V.emit("view");
  };
  V.defaultQuantity = (layer) => {
    const names = V.quantityNames(layer);
    if (names.includes("cell")) return "cell";
    if (names.includes("hidden")) return "hidden";
    return names[0];
  };
  V.select = (t, unit) => {
    V.state.selected = t;
    if (unit !== undefined) V.state.unit = unit;
    V.emit("select");
  };
  V.setHover = (t) => {
    if (V.state.hover === t) return;
    V.state.hover = t;
    V.emit("hover");
  };
  V.setRange = (range) => {
    V.state.range = range;
    V.emit("range");
  };
  V.setKarpathy = (target) => {
    V.state.karpathy = target;
    V.emit("karpathy");
  };

  // ---------------------------------------------------------------- errors and loading

  V.showError = (message) => {
    const box = V.$("error");
    box.textContent = message;
    box.hidden = !message;
  };
  V.clearError = () => V.showError("");
  V.busy = (on, what = "") => {
    document.body.classList.toggle("busy", on);
    const status = V.$("trace-status");
    if (status && what) status.textContent = what;
  };

  // ---------------------------------------------------------------- the API (server mode only)

  const errorLine = async (response) => {
    try {
      const body = await response.json();
      if (body && body.error) return body.error;
    } catch (err) {
      /* not JSON: fall through */
    }
    return `${response.status} ${response.statusText}`.trim();
  };

  /** POST JSON to the server; a 4xx/5xx throws its one-line error. */
  const post = async (path, body) => {
    if (V.state.mode !== "server") throw new Error("static page: run `lstmlm view RUN` to trace new text");
    const response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
    if (!response.ok) throw new Error(await errorLine(response));
    return response;
  };

  /** POST JSON, the JSON answer. */
  V.api = async (path, body) => (await post(path, body)).json();

  /** POST JSON and read an NDJSON stream, calling onRecord for each line's object. */
  V.apiStream = async (path, body, onRecord) => {
    const response = await post(path, body);
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let pending = "";
    const flush = (line) => {
      if (!line.trim()) return;
      const record = JSON.parse(line);
      if (record.error) throw new Error(record.error);
      onRecord(record);
    };
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      pending += decoder.decode(value, { stream: true });
      const lines = pending.split("\n");
      pending = lines.pop();
      lines.forEach(flush);
    }
    flush(pending + decoder.decode());
  };
})();
