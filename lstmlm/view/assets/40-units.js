/* lstmlm view, part 5: units. The number and gender units `inspect` found (Lakretz et al. 2019);
 * Karpathy's view (Karpathy et al. 2015: the text coloured by one unit's value); LSTMVis (Strobelt
 * et al. 2018): the units on (>= threshold) throughout a token range, and where else in the corpus
 * the same units fire together (POST /api/search, NDJSON progress). */
(() => {
  "use strict";
  const V = window.lstmlmView;
  let searching = false;

  // ---------------------------------------------------------------- the found units

  V.renderUnitList = () => {
    const st = V.state;
    const list = V.$("unit-list");
    const items = [];
    for (const [kind, units] of Object.entries(st.info.units || {})) {
      for (const u of units || []) {
        const active = st.karpathy && st.karpathy.layer === u.layer && st.karpathy.unit === u.unit;
        items.push(
          V.el(
            "li",
            {
              class: `unit-item${active ? " active" : ""}`,
              dataset: { layer: u.layer, unit: u.unit, kind },
              title: `effect size ${V.fmt(u.effect_size, 2)}; classes ${(u.classes || []).join("/")}; found on ${u.quantity}`,
              onclick: () => V.toggleKarpathy(u.layer, u.unit),
            },
            V.el("span", { class: `badge ${kind === "number" || kind === "gender" ? kind : "other"}`, text: kind }),
            V.el("span", { class: "unit-name", text: `${u.layer}:${u.unit}` }),
            V.el("span", { class: "unit-acc", text: `acc ${V.fmt(u.accuracy, 2)}` })
          )
        );
      }
    }
    list.replaceChildren(...items);
    V.$("units-note").textContent = items.length
      ? "Click a unit to colour the text by its value."
      : st.info.units_note || "No units found.";
  };

  // ---------------------------------------------------------------- Karpathy's view

  V.toggleKarpathy = (layer, unit) => {
    const k = V.state.karpathy;
    if (k && k.layer === layer && k.unit === unit) {
      V.setKarpathy(null);
      return;
    }
    if (layer !== V.state.layer) {
      V.$("layer-select").value = String(layer);
      V.setView(layer, V.state.quantity);
    }
    V.state.unit = unit;
    V.setKarpathy({ layer, unit });
    V.emit("select");
  };

  /** Karpathy's scale is the unit's own: gates 0..1, otherwise symmetric about 0 to its largest |value|
   * in this text (a unit near +-2 must not look pale beside the layer's largest cells). */
  const unitScale = (name, m, unit) => {
    if (V.isGate(name)) return { kind: "sequential", lo: 0, hi: 1 };
    let most = 1e-6;
    let min = Infinity;
    for (let k = unit; k < m.data.length; k += m.width) {
      most = Math.max(most, Math.abs(m.data[k]));
      min = Math.min(min, m.data[k]);
    }
    return min >= 0 ? { kind: "sequential", lo: 0, hi: most } : { kind: "diverging", lo: -most, hi: most };
  };

  /** Colour every token by the unit's value of the chosen quantity. */
  V.renderKarpathy = () => {
    const st = V.state;
    const k = st.karpathy;
    const spans = V.tokenSpans();
    const box = V.$("tokens");
    const legend = V.$("karpathy-legend");
    const m = k ? V.matrix(k.layer, st.quantity) : null;
    if (!k || !m || k.unit >= m.width) {
      box.classList.remove("karpathy");
      spans.forEach((span) => {
        span.style.background = "";
        span.style.color = "";
        delete span.dataset.value;
      });
      legend.hidden = true;
      return;
    }
    const scale = unitScale(st.quantity, m, k.unit);
    box.classList.add("karpathy");
    spans.forEach((span, t) => {
      const v = m.data[t * m.width + k.unit];
      const colour = V.cssColour(scale, v);
      span.style.background = colour.background;
      span.style.color = colour.dark ? "#fff" : "";
      span.dataset.value = V.fmt(v, 4);
    });
    legend.replaceChildren(
      V.legend(scale, `tokens coloured by unit ${k.layer}:${k.unit} (${st.quantity})`),
      V.el("button", { type: "button", text: "clear", onclick: () => V.setKarpathy(null) })
    );
    legend.hidden = false;
  };

  // ---------------------------------------------------------------- LSTMVis: range and threshold

  /** The threshold slider's range follows the quantity: gates 0..1, others their value range. */
  const fitThreshold = () => {
    const st = V.state;
    const slider = V.$("threshold");
    const m = V.matrix(st.layer, st.quantity);
    let lo = 0;
    let hi = 1;
    if (m && !V.isGate(st.quantity)) {
      lo = Infinity;
      hi = -Infinity;
      for (let k = 0; k < m.data.length; k++) {
        if (m.data[k] < lo) lo = m.data[k];
        if (m.data[k] > hi) hi = m.data[k];
      }
      if (!(hi > lo)) [lo, hi] = [-1, 1];
    }
    slider.min = String(Math.floor(lo * 100) / 100);
    slider.max = String(Math.ceil(hi * 100) / 100);
    st.threshold = Math.min(Math.max(st.threshold, Number(slider.min)), Number(slider.max));
    slider.value = String(st.threshold);
  };

  /** Units whose value is >= threshold at every token of the range. */
  V.onUnits = () => {
    const st = V.state;
    const m = V.matrix(st.layer, st.quantity);
    if (!st.range || !m) return [];
    const out = [];
    for (let u = 0; u < m.width; u++) {
      let on = true;
      for (let t = st.range[0]; t <= st.range[1] && on; t++) on = m.data[t * m.width + u] >= st.threshold;
      if (on) out.push(u);
    }
    return out;
  };

  V.renderRange = () => {
    const st = V.state;
    V.$("threshold-value").textContent = V.fmt(st.threshold, 2);
    const label = V.$("range-label");
    const list = V.$("on-units");
    if (!st.range || !st.trace) {
      label.textContent = "(shift+click or drag over tokens)";
      V.$("on-count").textContent = "0";
      list.replaceChildren();
      updateSearchButton([]);
      return;
    }
    const [a, b] = st.range;
    const words = st.trace.tokens.slice(a, b + 1).map(V.showToken).join(" ");
    label.textContent = `tokens ${a}–${b}: “${words.length > 60 ? words.slice(0, 57) + "…" : words}”`;
    const units = V.onUnits();
    V.$("on-count").textContent = String(units.length);
    const k = st.karpathy;
    list.replaceChildren(
      ...units.map((u) =>
        V.el("li", {
          class: k && k.layer === st.layer && k.unit === u ? "active" : "",
          dataset: { unit: u },
          text: String(u),
          onclick: () => V.toggleKarpathy(st.layer, u),
        })
      )
    );
    updateSearchButton(units);
  };

  // ---------------------------------------------------------------- LSTMVis: find in the corpus

  const updateSearchButton = (units) => {
    const server = V.state.mode === "server";
    const splits = V.state.info.splits || [];
    V.$("search-button").disabled = !server || searching || !units.length || !splits.length;
    V.$("search-button").title = !server
      ? "static page: run `lstmlm view RUN` to search the corpus"
      : !splits.length
        ? "this run has no corpus splits to search"
        : "";
  };

  const matchItem = (match) =>
    V.el(
      "li",
      { class: "search-match", dataset: { position: match.position } },
      `${match.before.map(V.showToken).join(" ")} `,
      V.el("mark", { text: match.match.map(V.showToken).join(" ") }),
      ` ${match.after.map(V.showToken).join(" ")} `,
      V.el("span", { class: "where", text: `@${match.position}, mean ${V.fmt(match.mean, 2)}` })
    );

  V.search = async () => {
    const st = V.state;
    const units = V.onUnits();
    if (!units.length || searching) return;
    const progress = V.$("search-progress");
    const results = V.$("search-results");
    const summary = V.$("search-summary");
    searching = true;
    updateSearchButton(units);
    V.clearError();
    progress.hidden = false;
    progress.value = 0;
    results.replaceChildren();
    summary.textContent = "searching…";
    const body = {
      layer: st.layer,
      quantity: st.quantity,
      units,
      threshold: st.threshold,
      min_length: st.range[1] - st.range[0] + 1,
      split: V.$("search-split").value,
      limit: 20,
    };
    try {
      await V.apiStream("/api/search", body, (record) => {
        if (record.progress !== undefined) {
          progress.value = record.progress;
          summary.textContent = `scanned ${record.scanned} of ${record.total} tokens…`;
        }
        if (record.matches) {
          progress.value = 1;
          results.replaceChildren(...record.matches.map(matchItem));
          const why = record.stopped === "time" ? " (stopped: time limit)" : record.stopped === "limit" ? " (first matches)" : "";
          const n = record.matches.length;
          summary.textContent = `${n} match${n === 1 ? "" : "es"} in ${record.scanned} of ${record.total} tokens${why}`;
        }
      });
    } catch (err) {
      V.showError(err.message);
      summary.textContent = "";
    } finally {
      searching = false;
      progress.hidden = true;
      updateSearchButton(V.onUnits());
    }
  };

  const wire = () => {
    const splits = V.state.info.splits || [];
    V.$("search-split").replaceChildren(...splits.map((s) => V.el("option", { value: s, text: s })));
    V.$("threshold").addEventListener("input", (event) => {
      V.state.threshold = Number(event.target.value);
      V.renderRange();
    });
    V.$("search-button").addEventListener("click", V.search);
    V.renderUnitList();
  };

  V.on("init", wire);
  V.on("trace", () => {
    fitThreshold();
    V.renderKarpathy();
    V.renderRange();
  });
  V.on("view", () => {
    fitThreshold();
    V.renderKarpathy();
    V.renderRange();
  });
  V.on("range", V.renderRange);
  V.on("karpathy", () => {
    V.renderUnitList();
    V.renderKarpathy();
    V.renderRange();
  });
})();
