/* lstmlm view, part 6: minimal pairs side by side (Linzen et al. 2016; BLiMP, Warstadt et al. 2020):
 * each sentence's tokens coloured by log-probability, the per-position difference good - bad, the
 * totals and which sentence the model prefers. Server: POST /api/score; static: the bootstrap's pairs. */
(() => {
  "use strict";
  const V = window.lstmlmView;

  /** "good sentence  (vs bad word)": the words where the two sentences differ. */
  const pairLabel = (good, bad) => {
    const g = good.split(/\s+/);
    const b = bad.split(/\s+/);
    const differ = b.filter((word, k) => g[k] !== word);
    return `${good}  (vs ${differ.join(" ") || bad})`;
  };

  const cell = (token, lp, scale, differs) => {
    const colour = V.cssColour(scale, lp);
    return V.el(
      "td",
      {
        class: differs ? "differs" : "",
        style: `background:${colour.background};${colour.dark ? "color:#fff" : ""}`,
        title: `ln p = ${V.fmt(lp, 3)}`,
      },
      V.showToken(token),
      V.el("span", { class: "lp", style: colour.dark ? "color:#eee" : "", text: V.fmt(lp, 2) })
    );
  };

  V.renderPair = (result) => {
    const box = V.$("pair-result");
    const { good, bad } = result;
    const n = Math.max(good.tokens.length, bad.tokens.length);
    const all = good.logprobs.concat(bad.logprobs);
    const lpScale = { kind: "sequential", lo: Math.min(-1e-3, ...all), hi: 0 };
    const diffs = [];
    for (let k = 0; k < Math.min(good.tokens.length, bad.tokens.length); k++) diffs.push(good.logprobs[k] - bad.logprobs[k]);
    const m = Math.max(1e-3, ...diffs.map(Math.abs));
    const diffScale = { kind: "diverging", lo: -m, hi: m };
    const row = (name, sentence, other) => {
      const cells = [];
      for (let k = 0; k < n; k++) {
        cells.push(
          k < sentence.tokens.length
            ? cell(sentence.tokens[k], sentence.logprobs[k], lpScale, other.tokens[k] !== sentence.tokens[k])
            : V.el("td")
        );
      }
      return V.el("tr", { class: name }, V.el("th", { text: name }), ...cells);
    };
    const diffRow = V.el(
      "tr",
      { class: "diff" },
      V.el("th", { text: "good − bad" }),
      ...diffs.map((d) => {
        const colour = V.cssColour(diffScale, d);
        return V.el("td", {
          class: "pair-diff",
          style: `background:${colour.background};${colour.dark ? "color:#fff" : ""}`,
          text: Math.abs(d) < 5e-4 ? "0" : (d > 0 ? "+" : "") + V.fmt(d, 3),
        });
      })
    );
    const d = result.difference;
    const preference = d > 0 ? "the model prefers the good sentence" : d < 0 ? "the model prefers the bad sentence" : "no preference";
    const verdict = V.el("p", {
      id: "pair-difference",
      class: d > 0 ? "good" : d < 0 ? "bad" : "",
      dataset: { value: String(d) },
      text: `difference (good − bad) = ${V.fmt(d, 3)} nats: ${preference}`,
    });
    box.replaceChildren(
      result.what ? V.el("p", { class: "muted", text: result.what }) : "",
      V.el("table", { class: "pair-table" }, row("good", good, bad), row("bad", bad, good), diffRow),
      V.el("p", {
        class: "muted",
        text:
          `totals: good ${V.fmt(good.total, 3)}, bad ${V.fmt(bad.total, 3)} ` +
          "(ln p, the final <eos> included); colour: ln p of each token",
      }),
      verdict
    );
  };

  V.comparePair = async (good, bad, what = "") => {
    V.$("pair-good").value = good;
    V.$("pair-bad").value = bad;
    const button = V.$("pair-compare");
    V.clearError();
    button.disabled = true;
    V.$("pair-result").replaceChildren(V.el("p", { class: "muted", text: "scoring…" }));
    try {
      const result = await V.api("/api/score", what ? { good, bad, what } : { good, bad });
      V.renderPair(result);
    } catch (err) {
      V.showError(err.message);
      V.$("pair-result").replaceChildren();
    } finally {
      button.disabled = false;
    }
  };

  const wire = () => {
    const st = V.state;
    const server = st.mode === "server";
    const demos = V.$("demo-pairs");
    if (server) {
      const pairs = st.info.demo_pairs || [];
      demos.replaceChildren(
        ...pairs.map((p) =>
          V.el("button", {
            type: "button",
            class: "demo-pair",
            title: p.what || "",
            text: pairLabel(p.good, p.bad),
            onclick: () => V.comparePair(p.good, p.bad, p.what),
          })
        )
      );
      V.$("pair-compare").addEventListener("click", () => {
        const good = V.$("pair-good").value.trim();
        const bad = V.$("pair-bad").value.trim();
        if (good && bad) V.comparePair(good, bad);
        else V.showError("type a good and a bad sentence");
      });
      return;
    }
    // static: the pairs scored when the page was written
    for (const id of ["pair-good", "pair-bad", "pair-compare"]) V.$(id).disabled = true;
    demos.replaceChildren(
      ...st.pairs.map((p) =>
        V.el("button", {
          type: "button",
          class: "demo-pair",
          title: p.what || "",
          text: pairLabel(p.good.text, p.bad.text),
          onclick: () => showScored(p),
        })
      )
    );
    if (st.pairs.length) showScored(st.pairs[0]);
    V.$("pair-summary").replaceChildren(summary(st.pairs));
  };

  /** A pair scored when the page was written: its sentences in the boxes, its rows below. */
  const showScored = (p) => {
    V.$("pair-good").value = p.good.text;
    V.$("pair-bad").value = p.bad.text;
    V.renderPair(p);
  };

  /** Static page: every embedded pair in one table (what, the two words, the difference). */
  const summary = (pairs) => {
    if (!pairs.length) return "";
    const rows = pairs.map((p) => {
      const g = p.good.text.split(/\s+/);
      const b = p.bad.text.split(/\s+/);
      const k = g.findIndex((word, j) => word !== b[j]);
      return V.el(
        "tr",
        { class: "pair-row", onclick: () => showScored(p) },
        V.el("td", { text: p.prefers_good ? "✓" : "✗", class: p.prefers_good ? "good" : "bad" }),
        V.el("td", { text: p.what || "" }),
        V.el("td", { text: k < 0 ? "" : `${g[k]} vs ${b[k]}` }),
        V.el("td", { class: "num", text: V.fmt(p.difference, 3) })
      );
    });
    const correct = pairs.filter((p) => p.prefers_good).length;
    return V.el(
      "div",
      {},
      V.el("p", { class: "muted", text: `${correct}/${pairs.length} pairs prefer the good sentence (click a row)` }),
      V.el(
        "table",
        { class: "summary-table" },
        V.el("tr", {}, ...["", "what", "words", "good − bad"].map((h) => V.el("th", { text: h }))),
        ...rows
      )
    );
  };

  V.on("init", wire);
})();
