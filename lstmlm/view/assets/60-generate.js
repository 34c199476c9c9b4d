/* lstmlm view, part 7: generation (server mode): POST /api/generate, the NDJSON pieces appended as
 * they arrive. */
(() => {
  "use strict";
  const V = window.lstmlmView;
  let running = false;

  V.generate = async () => {
    if (running) return;
    const prompt = V.$("generate-prompt").value;
    const out = V.$("generate-output");
    const button = V.$("generate-button");
    const limits = V.state.info.limits || {};
    const maxTokens = Math.max(1, Math.min(Number(V.$("generate-tokens").value) || 30, limits.max_generate || 300));
    const body = {
      prompt,
      max_tokens: maxTokens,
      temperature: Number(V.$("generate-temperature").value) || 0,
      seed: Number(V.$("generate-seed").value) || 0,
      top_k: 0,
      top_p: 1.0,
    };
    running = true;
    button.disabled = true;
    button.textContent = "Generating…";
    V.clearError();
    out.replaceChildren(V.el("span", { class: "prompt", text: prompt }));
    out.dataset.done = "false";
    try {
      await V.apiStream("/api/generate", body, (record) => {
        if (record.piece !== undefined) out.append(V.el("span", { class: "piece", text: record.piece }));
        if (record.done) {
          out.dataset.done = "true";
          out.dataset.text = record.text;
        }
      });
    } catch (err) {
      V.showError(err.message);
    } finally {
      running = false;
      button.disabled = false;
      button.textContent = "Continue";
    }
  };

  V.on("init", () => {
    if (V.state.mode !== "server") {
      for (const id of ["generate-prompt", "generate-button"]) V.$(id).disabled = true;
      V.$("generate-output").textContent = "static page: run `lstmlm view RUN` to generate text";
      return;
    }
    const limits = V.state.info.limits || {};
    if (limits.max_generate) V.$("generate-tokens").max = String(limits.max_generate);
    V.$("generate-button").addEventListener("click", V.generate);
    V.$("generate-prompt").addEventListener("keydown", (event) => {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) V.generate();
    });
  });
})();
