/* lstmlm view, part 2: the token strip (hover, click, shift+click or drag for a range) and the
 * predictions panel (the hovered or selected token's surprisal and the next-token predictions). */
(() => {
  "use strict";
  const V = window.lstmlmView;
  let spans = [];
  let drag = null; // {anchor, moved} while the mouse is down on a token

  V.renderTokens = () => {
    const box = V.$("tokens");
    const trace = V.state.trace;
    const fragment = document.createDocumentFragment();
    spans = (trace ? trace.tokens : []).map((token, t) => {
      const span = V.el("span", { class: "token", dataset: { index: t }, text: V.showToken(token) });
      fragment.append(span);
      return span;
    });
    box.replaceChildren(fragment);
    markTokens();
  };
  V.tokenSpans = () => spans;

  const markTokens = () => {
    const st = V.state;
    spans.forEach((span, t) => {
      span.classList.toggle("selected", t === st.selected);
      span.classList.toggle("hovered", t === st.hover);
      span.classList.toggle("in-range", !!st.range && t >= st.range[0] && t <= st.range[1]);
    });
  };

  const indexOf = (event) => {
    const span = event.target.closest(".token");
    return span ? Number(span.dataset.index) : null;
  };

  const wire = () => {
    const box = V.$("tokens");
    box.addEventListener("mouseover", (event) => {
      const t = indexOf(event);
      if (t === null) return;
      V.setHover(t);
      if (drag && t !== drag.anchor) {
        drag.moved = true;
        V.setRange([Math.min(drag.anchor, t), Math.max(drag.anchor, t)]);
      }
    });
    box.addEventListener("mouseleave", () => V.setHover(null));
    box.addEventListener("mousedown", (event) => {
      const t = indexOf(event);
      if (t === null || event.button !== 0) return;
      event.preventDefault();
      if (event.shiftKey) {
        const anchor = V.state.range ? V.state.range[0] : V.state.selected;
        V.setRange([Math.min(anchor, t), Math.max(anchor, t)]);
        return;
      }
      drag = { anchor: t, moved: false };
    });
    document.addEventListener("mouseup", () => {
      if (!drag) return;
      const { anchor, moved } = drag;
      drag = null;
      if (!moved) {
        V.setRange(null);
        V.select(anchor);
      }
    });
  };

  // ---------------------------------------------------------------- predictions

  const predictionItem = ([word, p], best) =>
    V.el(
      "li",
      { class: "prediction" },
      V.el("span", { class: "word", text: V.showToken(word) }),
      V.el("span", { class: "bar-box" }, V.el("div", { class: "bar", style: `width:${(100 * p) / best}%` })),
      V.el("span", { class: "prob", text: p.toFixed(3) })
    );

  V.renderPredictions = () => {
    const st = V.state;
    const head = V.$("prediction-head");
    const list = V.$("prediction-list");
    const trace = st.trace;
    const t = st.hover !== null ? st.hover : st.selected;
    if (!trace || !trace.tokens.length || t === null || t >= trace.tokens.length) {
      head.textContent = trace ? "Hover a token." : "Trace a text to see predictions.";
      list.replaceChildren();
      return;
    }
    const bits = trace.surprisal[t];
    head.replaceChildren(
      V.el("span", { class: "tok", text: V.showToken(trace.tokens[t]) }),
      ` (token ${t}) · surprisal ${V.fmt(bits, 2)} bits (p = ${V.fmt(2 ** -bits, 3)}) · next:`
    );
    head.dataset.index = t;
    const predictions = trace.predictions[t] || [];
    const best = predictions.length ? predictions[0][1] || 1 : 1;
    list.replaceChildren(...predictions.map((pair) => predictionItem(pair, best)));
  };

  V.on("trace", () => {
    V.renderTokens();
    V.renderPredictions();
  });
  V.on("hover", () => {
    markTokens();
    V.renderPredictions();
  });
  V.on("select", () => {
    markTokens();
    V.renderPredictions();
  });
  V.on("range", markTokens);
  V.on("init", wire);
})();
