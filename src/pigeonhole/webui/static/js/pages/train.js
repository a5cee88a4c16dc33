// Train: choose a version, backbone and mode, start a run, and follow its
// progress (phase, epoch, loss, valid metric) by polling until it ends.

import { UI_API, api, projectPath } from "../api.js";
import { fillPath, findRoute } from "../routes.js";
import { announce, busy, field, fill, h, number, select, showError, table, unavailable } from "../ui.js";

const POLL_MS = 1000;

export async function render(container, { slug, project }) {
  container.append(h("h1", {}, `Train ${project.name}`));
  const [startRoute, listRoute, oneRoute, cancelRoute] = await Promise.all([
    findRoute("post", /^\/api\/v1\/projects\/\{[^}]+\}\/runs$/),
    findRoute("get", /^\/api\/v1\/projects\/\{[^}]+\}\/runs$/),
    findRoute("get", /^\/api\/v1\/(projects\/\{[^}]+\}\/)?runs\/\{[^}]+\}$/),
    findRoute("post", /^\/api\/v1\/(projects\/\{[^}]+\}\/)?runs\/\{[^}]+\}\/cancel$/),
  ]);
  if (!startRoute || !oneRoute) {
    container.append(unavailable("Training from the browser"),
      h("p", {}, "Train from the command line meanwhile: ", h("code", {}, `pigeonhole train ${slug}`), "."));
    return;
  }
  const local = (template, ...values) => fillPath(template, ...values).replace(/^\/api\/v1/, "");
  const runPath = (template, id) => (template.match(/\{/g).length > 1 ? local(template, slug, id) : local(template, id));

  const [versions, backbones] = await Promise.all([
    api(projectPath(slug, "/versions")),
    api("/backbones", { base: UI_API }),
  ]);
  if (!versions.length) {
    container.append(h("p", { class: "unavailable" }, "No dataset version yet: generate one on the ",
      h("a", { href: `#/p/${encodeURIComponent(slug)}/versions` }, "Split & versions"), " page first."));
    return;
  }
  const version = select(versions.slice().reverse().map((item) => [String(item.number), `Version ${item.number} (${item.counts.files.train} train files)`]), String(versions.at(-1).number), { name: "version" });
  const backbone = select(backbones, backbones[0], { name: "backbone" });
  const mode = select([["fast", "Fast: a new head on cached embeddings (seconds to minutes)"], ["fine-tune", "Fine-tune: the whole network (slower, often better)"]], "fast", { name: "mode" });
  const start = h("button", { type: "submit" }, "Start training");
  const live = h("section", { id: "run-progress", "aria-live": "polite", "aria-busy": "false" });
  const history = h("div", {});
  let timer = null;
  let stopped = false;

  async function follow(run) {
    clearTimeout(timer);
    drawRun(run);
    if (stopped || ["succeeded", "failed", "cancelled"].includes(run.status)) {
      live.setAttribute("aria-busy", "false");
      if (run.status) announce(`Run ${run.id} ${run.status}`);
      if (listRoute) drawHistory().catch(showError);
      return;
    }
    live.setAttribute("aria-busy", "true");
    timer = setTimeout(async () => {
      try {
        await follow(await api(runPath(oneRoute, run.id)));
      } catch (error) {
        showError(error);
      }
    }, POLL_MS);
  }

  function drawRun(run) {
    const finished = ["succeeded", "failed", "cancelled"].includes(run.status);
    const last = (run.history || []).at(-1) || {};
    const cancel = cancelRoute && !finished
      ? h("button", { type: "button", class: "danger", onclick: (event) => busy(event.target, async () => {
        await api(runPath(cancelRoute, run.id), { method: "POST" });
        announce("Cancel requested");
      }) }, "Cancel run") : null;
    fill(live, h("h2", {}, `Run ${run.id}: `, h("span", { class: `run-status ${run.status === "succeeded" ? "ok" : run.status === "failed" ? "warn" : ""}` }, run.status)),
      h("p", {}, `Phase: ${run.phase || "waiting"}`, run.total ? ` · ${run.done} of ${run.total}` : ""),
      h("progress", { max: run.total || 1, value: finished ? run.total || 1 : run.done || 0, "aria-label": "Run progress" }),
      last.epoch !== undefined || last.valid_metric !== undefined
        ? h("p", {}, [last.epoch !== undefined ? `Epoch ${last.epoch}` : null, last.train_loss !== undefined ? `loss ${number(last.train_loss)}` : null,
          last.valid_loss !== undefined ? `valid loss ${number(last.valid_loss)}` : null, last.valid_metric !== undefined ? `valid metric ${number(last.valid_metric)}` : null].filter(Boolean).join(" · "))
        : null,
      run.message ? h("p", { class: run.status === "failed" ? "warn" : "" }, run.message) : null,
      run.status === "succeeded" && run.model_number
        ? h("p", {}, `Model ${run.model_number} is ready: `,
          h("a", { href: `#/p/${encodeURIComponent(slug)}/evaluate?model=${run.model_number}` }, "evaluate it"), " or ",
          h("a", { href: `#/p/${encodeURIComponent(slug)}/deploy?model=${run.model_number}` }, "try it"), ".")
        : null,
      cancel);
  }

  async function drawHistory() {
    const runs = await api(local(listRoute, slug));
    fill(history, runs.length ? table(["Run", "Status", "Version", "Mode", "Backbone", "Model"], runs.map((run) =>
      [`Run ${run.id}`, run.status, run.version, run.mode, run.backbone, run.model_number ?? "–"]), { "aria-label": "Runs" })
      : h("p", { class: "muted" }, "No runs yet."));
    return runs;
  }

  const form = h("form", { onsubmit: (event) => {
    event.preventDefault();
    busy(start, async () => {
      const run = await api(local(startRoute, slug), { method: "POST", json: { version: Number(version.value), mode: mode.value, backbone: backbone.value } });
      announce(`Run ${run.id} started`);
      await follow(run);
    });
  } }, h("div", { class: "row" }, field("Dataset version", version), field("Backbone", backbone), field("Mode", mode), start));

  container.append(h("section", {}, form), live, h("section", {}, h("h2", {}, "Runs"), history));
  if (listRoute) {
    const runs = await drawHistory();
    const active = runs.find((run) => !["succeeded", "failed", "cancelled"].includes(run.status));
    if (active) follow(active);
  }
  return () => { stopped = true; clearTimeout(timer); };
}
