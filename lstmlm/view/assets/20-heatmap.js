/* lstmlm view, part 3: the heatmap. One column per token, one row per unit of the chosen quantity,
 * drawn into ImageData (one 32-bit write per pixel); an overlay canvas for hover and selection; a
 * gutter marking the units `inspect` found; the colour legend. */
(() => {
  "use strict";
  const V = window.lstmlmView;
  const GUTTER = 14;
  const MARK = { number: "#b7410e", gender: "#6b46c1" };
  // diverging (signed quantities: cell, hidden, candidate) and sequential (gates, 0..1) stops
  const DIVERGING = ["#2166ac", "#67a9cf", "#f7f7f7", "#ef8a62", "#b2182b"];
  const SEQUENTIAL = ["#440154", "#3b528b", "#21918c", "#5ec962", "#fde725"];
  const LUT_SIZE = 256;
  let geometry = { colW: 1, rowH: 1, columns: 0, rows: 0 };

  const rgb = (hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16));
  const lut = (stops) => {
    const colours = stops.map(rgb);
    const table = new Uint32Array(LUT_SIZE);
    const rgba = new Uint8Array(table.buffer);
    for (let k = 0; k < LUT_SIZE; k++) {
      const x = (k / (LUT_SIZE - 1)) * (colours.length - 1);
      const j = Math.min(colours.length - 2, Math.floor(x));
      const f = x - j;
      for (let c = 0; c < 3; c++) rgba[4 * k + c] = Math.round(colours[j][c] * (1 - f) + colours[j + 1][c] * f);
      rgba[4 * k + 3] = 255;
    }
    return table;
  };
  const TABLES = { diverging: lut(DIVERGING), sequential: lut(SEQUENTIAL) };
  V.colourTables = TABLES;

  /** The 99th percentile of |x| over at most ~50k evenly spaced values: one outlier must not wash out
   * the picture (cell states are unbounded), and sorting a million values would cost ~100 ms. */
  const robustMax = (data, absolute) => {
    const step = Math.max(1, Math.floor(data.length / 50000));
    const sample = [];
    for (let k = 0; k < data.length; k += step) sample.push(absolute ? Math.abs(data[k]) : data[k]);
    sample.sort((a, b) => a - b);
    return sample.length ? Math.max(1e-6, sample[Math.floor(0.99 * (sample.length - 1))]) : 1;
  };

  /** How a quantity is coloured: {kind, lo, hi}; gates 0..1, signed symmetric, non-negative 0..p99. */
  V.scaleOf = (name, data) => {
    if (V.isGate(name)) return { kind: "sequential", lo: 0, hi: 1 };
    let min = Infinity;
    for (let k = 0; k < data.length; k++) if (data[k] < min) min = data[k];
    if (min >= 0) return { kind: "sequential", lo: 0, hi: robustMax(data, false) };
    const m = robustMax(data, true);
    return { kind: "diverging", lo: -m, hi: m };
  };
  /** The LUT index of a value under a scale. */
  V.colourIndex = (scale, x) => {
    const f = (x - scale.lo) / (scale.hi - scale.lo);
    return Math.max(0, Math.min(LUT_SIZE - 1, Math.round(f * (LUT_SIZE - 1)))) | 0;
  };
  /** A CSS colour for a value, and whether text on it should be white. */
  V.cssColour = (scale, x) => {
    const k = V.colourIndex(scale, x);
    const rgba = new Uint8Array(TABLES[scale.kind].buffer, 4 * k, 4);
    const light = 0.299 * rgba[0] + 0.587 * rgba[1] + 0.114 * rgba[2] > 140;
    return { background: `rgb(${rgba[0]},${rgba[1]},${rgba[2]})`, dark: !light };
  };

  V.drawHeatmap = () => {
    const st = V.state;
    const canvas = V.$("heatmap");
    const m = V.matrix(st.layer, st.quantity);
    const T = V.tokenCount();
    const rows = m ? m.width : 0;
    const avail = Math.max(200, V.$("heatmap-scroll").clientWidth - GUTTER - 16);
    const colW = Math.max(2, Math.min(64, Math.floor(avail / Math.max(1, T))));
    const rowH = Math.max(1, Math.min(12, Math.floor(400 / Math.max(1, rows))));
    geometry = { colW, rowH, columns: T, rows };
    const W = Math.max(1, T * colW);
    const H = Math.max(1, rows * rowH);
    for (const c of [canvas, V.$("heatmap-overlay")]) {
      c.width = W;
      c.height = H;
    }
    canvas.dataset.columns = String(T);
    canvas.dataset.rows = String(rows);
    canvas.dataset.quantity = st.quantity;
    canvas.dataset.layer = String(st.layer);
    const ctx = canvas.getContext("2d");
    if (!m || !T) {
      ctx.clearRect(0, 0, W, H);
      st.scale = null;
      drawAxis();
      drawLegend(null);
      drawGutter();
      drawOverlay();
      return;
    }
    const scale = V.scaleOf(st.quantity, m.data);
    st.scale = scale;
    const table = TABLES[scale.kind];
    const image = ctx.createImageData(W, H);
    const pixels = new Uint32Array(image.data.buffer);
    const k = (LUT_SIZE - 1) / (scale.hi - scale.lo);
    for (let t = 0; t < T; t++) {
      const base = t * rows;
      for (let u = 0; u < rows; u++) {
        let index = ((m.data[base + u] - scale.lo) * k + 0.5) | 0;
        index = index < 0 ? 0 : index >= LUT_SIZE ? LUT_SIZE - 1 : index;
        const colour = table[index];
        for (let y = u * rowH, yEnd = y + rowH; y < yEnd; y++) {
          const row = y * W + t * colW;
          for (let x = 0; x < colW; x++) pixels[row + x] = colour;
        }
      }
    }
    ctx.putImageData(image, 0, 0);
    drawAxis();
    drawLegend(scale);
    drawGutter();
    drawOverlay();
  };

  /** The units of this layer `inspect` found, with their kind: [{unit, kind, accuracy}]. */
  V.foundUnits = (layer = V.state.layer) => {
    const out = [];
    for (const [kind, units] of Object.entries(V.state.info.units || {})) {
      for (const u of units || []) if (u.layer === layer) out.push({ ...u, kind });
    }
    return out;
  };

  /** The tokens under their columns, where a column is wide enough to label (>= 10 px). */
  const drawAxis = () => {
    const axis = V.$("heatmap-axis");
    const { colW, columns } = geometry;
    const show = columns > 0 && colW >= 10;
    axis.hidden = !show;
    if (!show) return;
    const tokens = V.state.trace.tokens.map(V.showToken);
    const longest = Math.min(12, Math.max(...tokens.map((w) => w.length)));
    axis.width = columns * colW;
    axis.height = 10 + 7 * longest;
    const ctx = axis.getContext("2d");
    ctx.font = "11px ui-monospace, 'DejaVu Sans Mono', monospace";
    ctx.fillStyle = "#1d2330";
    ctx.textBaseline = "middle";
    tokens.forEach((word, t) => {
      ctx.save();
      ctx.translate(t * colW + colW / 2, 3);
      ctx.rotate(Math.PI / 2);
      ctx.fillText(word.length > 12 ? word.slice(0, 11) + "…" : word, 0, 0);
      ctx.restore();
    });
  };

  const drawGutter = () => {
    const gutter = V.$("heatmap-gutter");
    const { rowH, rows } = geometry;
    gutter.width = GUTTER;
    gutter.height = Math.max(1, rows * rowH);
    const ctx = gutter.getContext("2d");
    ctx.clearRect(0, 0, gutter.width, gutter.height);
    const karpathy = V.state.karpathy;
    for (const u of V.foundUnits()) {
      if (u.unit >= rows) continue;
      const y = u.unit * rowH + rowH / 2;
      ctx.fillStyle = MARK[u.kind] || "#6b7280";
      ctx.fillRect(2, y - Math.max(1.5, rowH / 2), GUTTER - 4, Math.max(3, rowH));
    }
    if (karpathy && karpathy.layer === V.state.layer && karpathy.unit < rows) {
      const y = karpathy.unit * rowH + rowH / 2;
      ctx.strokeStyle = "#1d2330";
      ctx.lineWidth = 1.5;
      ctx.strokeRect(1, y - Math.max(2.5, rowH / 2 + 1), GUTTER - 2, Math.max(5, rowH + 2));
    }
  };

  const drawOverlay = () => {
    const st = V.state;
    const overlay = V.$("heatmap-overlay");
    const ctx = overlay.getContext("2d");
    const { colW, rowH, columns, rows } = geometry;
    ctx.clearRect(0, 0, overlay.width, overlay.height);
    if (!columns || !rows) return;
    const H = rows * rowH;
    if (st.range) {
      ctx.fillStyle = "rgba(255, 214, 0, 0.22)";
      ctx.fillRect(st.range[0] * colW, 0, (st.range[1] - st.range[0] + 1) * colW, H);
    }
    if (st.unit < rows) {
      ctx.strokeStyle = "rgba(29, 35, 48, 0.7)";
      ctx.lineWidth = 1;
      ctx.strokeRect(0.5, st.unit * rowH - 0.5, columns * colW - 1, rowH + 1);
    }
    if (st.selected < columns) {
      ctx.strokeStyle = "#2b6cb0";
      ctx.lineWidth = 2;
      ctx.strokeRect(st.selected * colW + 1, 1, Math.max(1, colW - 2), H - 2);
    }
    if (st.hover !== null && st.hover < columns) {
      ctx.strokeStyle = "rgba(0, 0, 0, 0.55)";
      ctx.lineWidth = 1;
      ctx.strokeRect(st.hover * colW + 0.5, 0.5, Math.max(1, colW - 1), H - 1);
    }
  };

  const drawLegend = (scale) => {
    const box = V.$("heatmap-legend");
    if (!scale) {
      box.replaceChildren();
      return;
    }
    box.replaceChildren(V.legend(scale, `${V.state.quantity}, layer ${V.state.layer}`));
  };

  /** A legend element: label, lo, a colour bar, hi. */
  V.legend = (scale, label) => {
    const bar = V.el("canvas", { width: 160, height: 10 });
    const ctx = bar.getContext("2d");
    const image = ctx.createImageData(160, 10);
    const pixels = new Uint32Array(image.data.buffer);
    const table = TABLES[scale.kind];
    for (let x = 0; x < 160; x++) {
      const colour = table[Math.round((x / 159) * (LUT_SIZE - 1))];
      for (let y = 0; y < 10; y++) pixels[y * 160 + x] = colour;
    }
    ctx.putImageData(image, 0, 0);
    return V.el(
      "span",
      { class: "legend-row" },
      V.el("span", { text: label }),
      V.el("span", { class: "swatch-label", text: V.fmt(scale.lo, 2) }),
      bar,
      V.el("span", { class: "swatch-label", text: V.fmt(scale.hi, 2) })
    );
  };

  // ---------------------------------------------------------------- mouse

  const cellAt = (event) => {
    const { colW, rowH, columns, rows } = geometry;
    const t = Math.floor(event.offsetX / colW);
    const u = Math.floor(event.offsetY / rowH);
    return t >= 0 && t < columns && u >= 0 && u < rows ? { t, u } : null;
  };

  const showTooltip = (event, cell) => {
    const tip = V.$("heatmap-tooltip");
    if (!cell) {
      tip.hidden = true;
      return;
    }
    const st = V.state;
    const value = V.value(st.layer, st.quantity, cell.t, cell.u);
    const token = V.showToken(st.trace.tokens[cell.t]);
    tip.textContent = `${token} (token ${cell.t}) · unit ${cell.u} · ${st.quantity} = ${V.fmt(value, 3)}`;
    const box = tip.parentElement.getBoundingClientRect();
    tip.hidden = false;
    const x = Math.min(event.clientX - box.left + 12, box.width - tip.offsetWidth - 4);
    tip.style.left = `${Math.max(0, x)}px`;
    tip.style.top = `${event.clientY - box.top + 14}px`;
  };

  const gutterUnit = (event) => {
    const { rowH, rows } = geometry;
    let best = null;
    for (const u of V.foundUnits()) {
      const d = Math.abs(u.unit * rowH + rowH / 2 - event.offsetY);
      if (u.unit < rows && d <= Math.max(4, rowH) && (!best || d < best.d)) best = { ...u, d };
    }
    return best;
  };

  const scrollToSelected = () => {
    const scroller = V.$("heatmap-scroll");
    const x = GUTTER + V.state.selected * geometry.colW;
    if (x < scroller.scrollLeft || x > scroller.scrollLeft + scroller.clientWidth - 20) {
      scroller.scrollLeft = Math.max(0, x - scroller.clientWidth / 2);
    }
  };

  const wire = () => {
    const canvas = V.$("heatmap");
    canvas.addEventListener("mousemove", (event) => {
      const cell = cellAt(event);
      showTooltip(event, cell);
      V.setHover(cell ? cell.t : null);
    });
    canvas.addEventListener("mouseleave", () => {
      V.$("heatmap-tooltip").hidden = true;
      V.setHover(null);
    });
    canvas.addEventListener("click", (event) => {
      const cell = cellAt(event);
      if (cell) V.select(cell.t, cell.u);
    });
    const gutter = V.$("heatmap-gutter");
    gutter.addEventListener("mousemove", (event) => {
      const u = gutterUnit(event);
      gutter.title = u ? `${u.kind} unit ${u.unit} (accuracy ${V.fmt(u.accuracy, 2)}): click to colour the text` : "";
    });
    gutter.addEventListener("click", (event) => {
      const u = gutterUnit(event);
      if (u) V.toggleKarpathy(u.layer, u.unit);
    });
    window.addEventListener("resize", () => V.state.trace && V.drawHeatmap());
  };

  V.on("init", wire);
  V.on("trace", V.drawHeatmap);
  V.on("view", V.drawHeatmap);
  V.on("hover", drawOverlay);
  V.on("select", () => {
    drawOverlay();
    scrollToSelected();
  });
  V.on("range", drawOverlay);
  V.on("karpathy", drawGutter);
})();
