/* lstmlm view, last part: start-up. Read the bootstrap, fill the header and the pickers, wire the
 * text box and the tabs, show the embedded trace. */
(() => {
  "use strict";
  const V = window.lstmlmView;

  const fillHeader = () => {
    const { info, mode } = V.state;
    V.$("run-name").textContent = info.run;
    V.$("cell-name").textContent = info.cell;
    const sizes = info.layers.map((l) => l.units).join("×");
    const layers = `${info.layers.length} layer${info.layers.length > 1 ? "s" : ""} (${sizes})`;
    V.$("run-facts").textContent = `${layers} · ${info.tokenizer} tokenizer · vocabulary ${info.vocab} · ${mode} page`;
    document.title = `lstmlm view · ${info.run}`;
  };

  const fillLayers = () => {
    V.$("layer-select").replaceChildren(
      ...V.state.info.layers.map((l) => V.el("option", { value: l.index, text: `${l.index} (${l.units} units)` }))
    );
    V.$("layer-select").value = String(V.state.layer);
  };
  const fillQuantities = () => {
    const select = V.$("quantity-select");
    select.replaceChildren(
      ...V.layerInfo().quantities.map((q) => V.el("option", { value: q.name, text: `${q.name} (${q.width})` }))
    );
    select.value = V.state.quantity;
  };

  /** Time the page's own work on a render (read by scripts/bench: window.lstmlmView.timings). */
  const timedRender = (fn) => {
    const t0 = performance.now();
    const decoded = V.timings.decode_ms;
    fn();
    V.timings = { ...V.timings, render_ms: performance.now() - t0 - (V.timings.decode_ms - decoded) };
  };

  V.show = (trace) => {
    // setTrace emits "trace"; each part renders in its handler, decoding what it reads (decode_ms)
    const t0 = performance.now();
    V.setTrace(trace);
    const total = performance.now() - t0;
    V.timings = { ...V.timings, render_ms: total - V.timings.decode_ms };
    const server = trace.elapsed_ms !== undefined ? ` · model ${V.fmt(trace.elapsed_ms, 0)} ms` : "";
    const { decode_ms: decode, render_ms: render } = V.timings;
    V.$("trace-status").textContent =
      `${trace.tokens.length} tokens${server} · decode ${V.fmt(decode, 0)} ms · render ${V.fmt(render, 0)} ms`;
    document.body.dataset.traced = String(trace.tokens.length);
  };

  V.trace = async () => {
    const text = V.$("text-input").value;
    if (!text.trim()) {
      V.showError("type some text to trace");
      return;
    }
    const button = V.$("trace-button");
    V.clearError();
    button.disabled = true;
    V.busy(true, "tracing…");
    try {
      const limits = V.state.info.limits || {};
      const trace = await V.api("/api/trace", { text, top: limits.top_k || 10 });
      V.show(trace);
    } catch (err) {
      V.showError(err.message);
      V.$("trace-status").textContent = "";
    } finally {
      V.busy(false);
      button.disabled = false;
    }
  };

  const showTab = (name) => {
    for (const [tab, view] of [["trace-tab", "trace-view"], ["pairs-tab", "pair-view"], ["generate-tab", "generate-view"]]) {
      const on = tab === name;
      V.$(tab).classList.toggle("active", on);
      V.$(tab).setAttribute("aria-selected", String(on));
      V.$(view).hidden = !on;
    }
    if (name === "trace-tab" && V.state.trace) V.drawHeatmap();
  };

  const wire = () => {
    const input = V.$("text-input");
    V.$("trace-button").addEventListener("click", V.trace);
    input.addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        V.trace();
      }
    });
    V.$("layer-select").addEventListener("change", (event) => {
      timedRender(() => {
        V.setView(Number(event.target.value), V.state.quantity);
        fillQuantities();
      });
    });
    V.$("quantity-select").addEventListener("change", (event) => {
      timedRender(() => V.setView(V.state.layer, event.target.value));
    });
    for (const tab of ["trace-tab", "pairs-tab", "generate-tab"]) V.$(tab).addEventListener("click", () => showTab(tab));
    if (V.state.mode !== "server") {
      input.readOnly = true;
      V.$("trace-button").disabled = true;
      V.$("static-note").hidden = false;
    }
  };

  const start = () => {
    let boot;
    try {
      boot = V.readBootstrap();
    } catch (err) {
      V.showError(`the page's data could not be read: ${err.message}`);
      return;
    }
    const st = V.state;
    st.mode = boot.mode === "server" ? "server" : "static";
    st.info = boot.info;
    st.pairs = boot.pairs || [];
    st.layer = 0;
    st.quantity = V.defaultQuantity(0);
    fillHeader();
    fillLayers();
    fillQuantities();
    V.$("text-input").value = boot.text || "";
    wire();
    V.emit("init");
    if (boot.trace) V.show(boot.trace);
    else {
      V.renderDiagram();
      V.renderPredictions();
    }
    document.body.dataset.ready = "true";
  };

  start();
})();
