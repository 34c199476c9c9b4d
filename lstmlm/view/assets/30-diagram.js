/* lstmlm view, part 4: the cell diagram for the selected token and unit, drawn as inline SVG with
 * the step's real numbers (Colah, "Understanding LSTM Networks", 2015): the conveyor belt
 * C_{t-1} -x f-> (+ i*C~) -> C_t, the gates, tanh and h_t; the sLSTM's normalizer (Beck et al.
 * 2024, h = o*c/n); the GRU (Cho et al. 2014, PyTorch's form h = (1-z)*h~ + z*h_prev); otherwise a
 * table of the step's quantities. Every number carries data-name so tests can read it. */
(() => {
  "use strict";
  const V = window.lstmlmView;
  const NS = "http://www.w3.org/2000/svg";
  const GATE_SCALE = { kind: "sequential", lo: 0, hi: 1 };

  const svg = (tag, attrs = {}, text) => {
    const node = document.createElementNS(NS, tag);
    for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
    if (text !== undefined) node.textContent = text;
    return node;
  };
  const line = (points, cls = "wire", arrow = true) =>
    svg("polyline", {
      points: points.map((p) => p.join(",")).join(" "),
      class: cls,
      ...(arrow ? { "marker-end": "url(#arrow)" } : {}),
    });
  const value = (name, x, y, v, anchor = "middle") =>
    svg("text", { class: "diagram-value", "data-name": name, x, y, "text-anchor": anchor }, V.fmt(v, 3));
  const label = (x, y, text, anchor = "start", cls = "label") =>
    svg("text", { x, y, "text-anchor": anchor, class: cls }, text);
  const op = (x, y, symbol, wide = false) => {
    const g = svg("g");
    g.append(
      wide ? svg("ellipse", { cx: x, cy: y, rx: 20, ry: 11, class: "op" }) : svg("circle", { cx: x, cy: y, r: 10, class: "op" }),
      svg("text", { x, y, class: "sym" }, symbol)
    );
    return g;
  };
  /** A gate box coloured by its value (0..1), its symbol inside and its name beside it. */
  const gate = (x, y, symbol, name, v, gateScaled = true) => {
    const g = svg("g");
    const colour = gateScaled ? V.cssColour(GATE_SCALE, v) : { background: "#fbe38e", dark: false };
    g.append(
      svg("rect", { x: x - 17, y: y - 11, width: 34, height: 22, rx: 4, class: "gate", style: `fill:${colour.background}` }),
      svg("text", { x, y, class: "sym", style: colour.dark ? "fill:#fff" : "" }, symbol),
      label(x - 20, y + 4, name, "end", "label")
    );
    return g;
  };
  const frame = () => {
    const root = svg("svg", { viewBox: "0 0 400 270", role: "img" });
    const defs = svg("defs");
    const marker = svg("marker", {
      id: "arrow",
      viewBox: "0 0 8 8",
      refX: 7,
      refY: 4,
      markerWidth: 6,
      markerHeight: 6,
      orient: "auto",
    });
    marker.append(svg("path", { d: "M0,0 L8,4 L0,8 z", fill: "#555" }));
    defs.append(marker);
    root.append(defs);
    return root;
  };

  /** The step's numbers for an LSTM-like cell, or null when a quantity is missing. */
  const lstmStep = (layer, t, u) => {
    const get = (name) => V.value(layer, name, t, u);
    const s = {
      f: get("forget_gate"),
      i: get("input_gate"),
      candidate: get("candidate"),
      o: get("output_gate"),
      c: get("cell"),
      h: get("hidden"),
      c_prev: V.previous(layer, "cell", t, u),
      n: get("normalizer"),
      // the depth-gated LSTM (Yao et al. 2015) adds d * (the cell of the layer below) above layer 0
      d: get("depth_gate"),
      c_below: layer > 0 ? V.value(layer - 1, "cell", t, u) : undefined,
    };
    return ["f", "i", "candidate", "o", "c", "h", "c_prev"].every((k) => s[k] !== undefined) ? s : null;
  };

  const drawLstm = (s, token, slstm) => {
    const root = frame();
    const belt = 40;
    const bus = 235;
    const gy = 170;
    root.append(
      line([[30, belt], [100, belt]], "belt"), line([[120, belt], [195, belt]], "belt"), line([[215, belt], [385, belt]], "belt"),
      // the input bus: h_{t-1} from the left, x_t from below
      line([[10, bus], [290, bus]], "wire", false), line([[60, 262], [60, bus]], "wire", false),
      ...[110, 175, 235, 290].map((x) => line([[x, bus], [x, gy + 11]])), // the bus up into each gate
      // f onto the belt; i * C~ up to the +
      line([[110, gy - 11], [110, belt + 10]]),
      line([[175, gy - 11], [175, 105], [195, 105]]), line([[235, gy - 11], [235, 105], [215, 105]]),
      line([[205, 95], [205, belt + 10]]),
      // the output: tanh(C) (sLSTM: C / n) times o
      line([[330, belt], [330, 77]]), line([[330, 99], [330, 130]]), line([[290, gy - 11], [290, 140], [320, 140]]),
      line([[340, 140], [390, 140]])
    );
    root.append(
      op(110, belt, "×"), op(205, belt, "+"), op(205, 105, "×"), op(330, 88, slstm ? "÷n" : "tanh", true), op(330, 140, "×"),
      gate(110, gy, "σ", "f", s.f, !slstm), gate(175, gy, slstm ? "exp" : "σ", "i", s.i, !slstm),
      gate(235, gy, "tanh", "C̃", s.candidate, false), gate(290, gy, "σ", "o", s.o)
    );
    const fc = s.f * s.c_prev;
    const ic = s.i * s.candidate;
    const squash = slstm ? s.c / s.n : Math.tanh(s.c);
    // the sLSTM's own h = o*c/n; its layer's "hidden" is the block's output (norm, residual) after it
    const h = slstm ? s.o * squash : s.h;
    root.append(
      label(4, 30, "Cₜ₋₁", "start", "sym-label"), value("c_prev", 4, 60, s.c_prev, "start"),
      label(150, 30, "f·Cₜ₋₁", "middle"), value("f_c_prev", 150, 58, fc),
      label(210, 70, "i·C̃", "start"), value("i_candidate", 210, 84, ic, "start"),
      label(392, 30, "Cₜ", "end", "sym-label"), value("c", 392, 58, s.c, "end"),
      value("squash", 354, 92, squash, "start"), label(392, 132, "hₜ", "end", "sym-label"), value("h", 392, 158, h, "end"),
      value("f", 110, 200, s.f), value("i", 175, 200, s.i), value("candidate", 235, 200, s.candidate), value("o", 290, 200, s.o),
      label(4, bus - 6, "hₜ₋₁"), label(66, 260, `xₜ = ${V.showToken(token)}`)
    );
    if (slstm) root.append(label(354, 106, `n = ${V.fmt(s.n, 3)}`));
    return root;
  };

  const lstmIdentities = (s, slstm) => {
    const depth = s.d !== undefined && s.c_below !== undefined;
    const c = s.f * s.c_prev + s.i * s.candidate + (depth ? s.d * s.c_below : 0);
    const h = slstm ? (s.o * s.c) / s.n : s.o * Math.tanh(s.c);
    const terms = `${V.fmt(s.f)}×${V.fmt(s.c_prev)} + ${V.fmt(s.i)}×${V.fmt(s.candidate)}`;
    const lines = [
      depth
        ? `C = f·Cₜ₋₁ + i·C̃ + d·C(below) = ${terms} + ${V.fmt(s.d)}×${V.fmt(s.c_below)} = ${V.fmt(c)}`
        : `C = f·Cₜ₋₁ + i·C̃ = ${terms} = ${V.fmt(c)}`,
      slstm
        ? `h = o·C/n = ${V.fmt(s.o)}×${V.fmt(s.c)}/${V.fmt(s.n)} = ${V.fmt(h)}`
        : `h = o·tanh(C) = ${V.fmt(s.o)}×tanh(${V.fmt(s.c)}) = ${V.fmt(h)}`,
    ];
    if (slstm) {
      lines.push(`the block's output (after its norm and residual): hidden = ${V.fmt(s.h)}`);
      return withChecks(lines, [[c, s.c, "C"]]);
    }
    return withChecks(lines, [
      [c, s.c, "C"],
      [h, s.h, "h"],
    ]);
  };

  /** The identities, and a note where the stored value differs (a cell with more terms, e.g. depth-gated). */
  const withChecks = (lines, checks) => {
    const nodes = lines.map((text, k) => V.el("div", { dataset: { identity: String(k) }, text }));
    for (const [computed, stored, name] of checks) {
      // 1e-3: the numbers are float32 and shown to 3 decimals; a larger gap is a real extra term
      if (Math.abs(computed - stored) > 1e-3 * Math.max(1, Math.abs(stored))) {
        nodes.push(V.el("div", { class: "warn", text: `this cell adds more terms: the model's ${name} is ${V.fmt(stored)}` }));
      }
    }
    return nodes;
  };

  const gruStep = (layer, t, u) => {
    const get = (name) => V.value(layer, name, t, u);
    const s = {
      r: get("reset_gate"),
      z: get("update_gate"),
      candidate: get("candidate"),
      h: get("hidden"),
      h_prev: V.previous(layer, "hidden", t, u),
    };
    return Object.values(s).every((v) => v !== undefined) ? s : null;
  };

  const drawGru = (s, token) => {
    const root = frame();
    const top = 40;
    const bus = 235;
    const gy = 170;
    root.append(
      line([[30, top], [160, top]], "belt"), line([[180, top], [280, top]], "belt"), line([[300, top], [385, top]], "belt"),
      line([[10, bus], [300, bus]], "wire", false), line([[60, 262], [60, bus]], "wire", false),
      line([[90, bus], [90, gy + 11]]), line([[170, bus], [170, gy + 11]]), line([[300, bus], [300, gy + 11]]),
      // r * h_{t-1} into the candidate
      line([[50, top], [50, 105], [80, 105]]), line([[90, gy - 11], [90, 115]]),
      line([[100, 105], [130, 105], [130, 215], [280, 215], [280, gy + 11]]),
      // z keeps the old state; 1 - z lets the candidate in
      line([[170, gy - 11], [170, top + 10]]), line([[170, 105], [210, 105]]), line([[230, 105], [280, 105]]),
      line([[290, gy - 11], [290, 115]]), line([[290, 95], [290, top + 10]])
    );
    root.append(
      op(170, top, "×"), op(290, top, "+"), op(90, 105, "×"), op(220, 105, "1−"), op(290, 105, "×"),
      gate(90, gy, "σ", "r", s.r), gate(170, gy, "σ", "z", s.z), gate(290, gy, "tanh", "h̃", s.candidate, false)
    );
    root.append(
      label(4, 30, "hₜ₋₁", "start", "sym-label"), value("h_prev", 4, 60, s.h_prev, "start"),
      label(230, 30, "z·hₜ₋₁", "middle"), value("z_h_prev", 230, 58, s.z * s.h_prev),
      label(300, 84, "(1−z)·h̃", "start"), value("one_minus_z_candidate", 300, 98, (1 - s.z) * s.candidate, "start"),
      label(392, 30, "hₜ", "end", "sym-label"), value("h", 392, 58, s.h, "end"),
      value("r", 90, 200, s.r), value("z", 170, 200, s.z), value("candidate", 300, 200, s.candidate),
      label(4, bus - 6, "hₜ₋₁"), label(66, 260, `xₜ = ${V.showToken(token)}`)
    );
    return root;
  };

  const gruIdentities = (s) => {
    const h = (1 - s.z) * s.candidate + s.z * s.h_prev;
    return withChecks(
      [
        `h = (1−z)·h̃ + z·hₜ₋₁ = ${V.fmt(1 - s.z)}×${V.fmt(s.candidate)} + ${V.fmt(s.z)}×${V.fmt(s.h_prev)} = ${V.fmt(h)}`,
        "(PyTorch's GRU: z keeps the old state, 1−z lets the candidate in)",
      ],
      [[h, s.h, "h"]]
    );
  };

  /** No picture for this cell: the step's quantities for the unit, as a table. */
  const table = (layer, t, u) => {
    const rows = V.quantityNames(layer).map((name) => {
      const v = V.value(layer, name, t, u);
      return V.el(
        "tr",
        {},
        V.el("td", { text: name }),
        V.el("td", { class: "diagram-value", dataset: { name }, text: v === undefined ? "—" : V.fmt(v, 3) })
      );
    });
    return V.el("table", { class: "step-table" }, ...rows);
  };

  V.renderDiagram = () => {
    const st = V.state;
    const box = V.$("diagram");
    const identities = V.$("identities");
    const title = V.$("diagram-title");
    const T = V.tokenCount();
    if (!T) {
      title.textContent = "Cell";
      box.replaceChildren(V.el("p", { class: "muted", text: "Trace a text, then click a token or a heatmap cell." }));
      identities.replaceChildren();
      return;
    }
    const t = Math.min(st.selected, T - 1);
    const u = st.unit;
    const token = st.trace.tokens[t];
    title.textContent = `Cell · ${V.showToken(token)} (token ${t}) · unit ${u} · layer ${st.layer}`;
    box.dataset.token = String(t);
    box.dataset.unit = String(u);
    const kind = st.info.diagram;
    const lstm = kind === "lstm" || kind === "slstm" ? lstmStep(st.layer, t, u) : null;
    const gru = kind === "gru" ? gruStep(st.layer, t, u) : null;
    if (lstm && (kind === "lstm" || lstm.n !== undefined)) {
      box.replaceChildren(drawLstm(lstm, token, kind === "slstm"));
      identities.replaceChildren(...lstmIdentities(lstm, kind === "slstm"));
    } else if (gru) {
      box.replaceChildren(drawGru(gru, token));
      identities.replaceChildren(...gruIdentities(gru));
    } else {
      box.replaceChildren(table(st.layer, t, u));
      identities.replaceChildren();
    }
    box.dataset.kind = box.firstChild && box.firstChild.tagName === "svg" ? kind : "table";
  };

  V.on("trace", V.renderDiagram);
  V.on("view", V.renderDiagram);
  V.on("select", V.renderDiagram);
})();
