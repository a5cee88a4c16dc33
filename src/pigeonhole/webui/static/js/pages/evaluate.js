// Evaluate: a model's test metrics, confusion matrix (a cell opens its images),
// reliability diagram, worst mistakes and thresholds.

import { UI_API, api, fileUrl, projectPath } from "../api.js";
import { fill, field, h, number, percent, select, table } from "../ui.js";

export async function render(container, { slug, project, params }) {
  const models = await uiApi(projectPath(slug, "/models"));
  container.append(h("h1", {}, `Evaluate ${project.name}`));
  if (!models.length) {
    container.append(h("p", { class: "unavailable" }, "No models yet: train one on the ",
      h("a", { href: `#/p/${encodeURIComponent(slug)}/train` }, "Train"), " page."));
    return;
  }
  const wanted = Number(params.get("model")) || models[0].number;
  const chooser = select(models.map((model) => [String(model.number), `Model ${model.number} (${model.mode}, ${model.backbone}, version ${model.version})`]), String(wanted), { name: "model" });
  chooser.addEventListener("change", () => { location.hash = `#/p/${encodeURIComponent(slug)}/evaluate?model=${chooser.value}`; });
  const body = h("div", {}, h("p", { class: "muted" }, "Predicting the test images…"));
  container.append(h("section", {}, field("Model", chooser)), body);
  const evaluation = await uiApi(projectPath(slug, `/models/${wanted}/evaluation`));
  fill(body, drawEvaluation(slug, wanted, evaluation));
}

function uiApi(path) {
  return api(path, { base: UI_API });
}

function drawEvaluation(slug, modelNumber, evaluation) {
  const report = evaluation.report || {};
  const metrics = report.metrics || {};
  const multi = evaluation.project_type === "multi-label";
  const cellImages = h("section", { id: "cell-images", "aria-live": "polite" });
  const thumb = (row) => h("figure", {},
    h("img", { src: fileUrl(projectPath(slug, `/images/${row.image_id}/thumbnail`), { size: 160 }), alt: row.name, loading: "lazy" }),
    h("figcaption", {}, `true: ${row.labels.join(", ")}`, h("br"),
      `predicted: ${multi ? row.predicted_classes.join(", ") || "none" : row.best} (${percent(row.confidence)})`));
  const showCell = (truth, predicted) => {
    const rows = evaluation.images.filter((row) => row.labels[0] === truth && row.best === predicted);
    fill(cellImages, h("h2", {}, `True ${truth}, predicted ${predicted}: ${rows.length} image(s)`),
      rows.length ? h("div", { class: "group" }, rows.map(thumb)) : h("p", { class: "muted" }, "No images."));
    cellImages.querySelector("h2").setAttribute("tabindex", "-1");
    cellImages.querySelector("h2").focus();
  };

  const summary = report.summary || evaluation.metrics || {};
  const parts = [
    h("section", {}, h("h2", {}, "Test metrics"),
      h("p", { class: "muted" }, `${summary.images ?? evaluation.images.length} test images of version ${evaluation.version}.`),
      table(["Metric", "Value"], Object.entries(summary).filter(([name]) => name !== "images")
        .map(([name, value]) => [name.replaceAll("_", " "), number(value)]), { "aria-label": "Test metrics" })),
  ];
  if (metrics.per_class) {
    parts.push(h("section", {}, h("h2", {}, "Per class"),
      table(["Class", "Precision", "Recall", "F1", "Support"], Object.entries(metrics.per_class).map(([name, scores]) =>
        [name, number(scores.precision), number(scores.recall), number(scores.f1), scores.support]))));
  }
  if (!multi && metrics.confusion_matrix) {
    const names = metrics.class_names || evaluation.class_names;
    parts.push(h("section", {}, h("h2", {}, "Confusion matrix"),
      h("p", { class: "hint" }, "Rows are the true class, columns the predicted one; choose a cell to see its images."),
      h("div", { class: "table-wrap" }, h("table", { class: "confusion", "aria-label": "Confusion matrix" },
        h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "true \\ predicted"), names.map((name) => h("th", { scope: "col" }, name)))),
        h("tbody", {}, metrics.confusion_matrix.map((row, i) => h("tr", {}, h("th", { scope: "row" }, names[i]),
          row.map((count, j) => h("td", { style: cellStyle(count, row, i === j) },
            h("button", { type: "button", "aria-label": `${count} images of ${names[i]} predicted ${names[j]}`, onclick: () => showCell(names[i], names[j]) }, String(count)))))))))),
    cellImages);
  }
  if ((report.plots || []).includes("plots/reliability.png")) {
    parts.push(h("section", { class: "plots" }, h("h2", {}, "Reliability diagram"),
      h("img", { src: fileUrl(projectPath(slug, `/models/${modelNumber}/plots/reliability.png`), {}, UI_API), alt: "Reliability diagram: confidence against accuracy, before and after calibration", loading: "lazy" })));
  }
  const mistakes = evaluation.images
    .filter((row) => (multi ? row.predicted_classes.slice().sort().join() !== row.labels.slice().sort().join() : row.best !== row.labels[0]))
    .sort((a, b) => b.confidence - a.confidence).slice(0, 12);
  parts.push(h("section", {}, h("h2", {}, "Worst mistakes"),
    mistakes.length ? h("div", { class: "group", role: "group", "aria-label": "Worst mistakes" }, mistakes.map(thumb)) : h("p", { class: "ok" }, "No mistakes on the test images.")));
  const thresholds = [];
  if (evaluation.rejection_threshold !== null && evaluation.rejection_threshold !== undefined && !multi) {
    thresholds.push(h("p", {}, `No answer below a confidence of ${percent(evaluation.rejection_threshold)}`,
      report.rejection ? `: the model answers ${percent(report.rejection.coverage)} of the test images, ${percent(report.rejection.accuracy)} of them right.` : "."));
  }
  if (evaluation.class_thresholds) {
    const entries = Array.isArray(evaluation.class_thresholds)
      ? evaluation.class_thresholds.map((value, index) => [evaluation.class_names[index], value])
      : Object.entries(evaluation.class_thresholds);
    thresholds.push(table(["Class", "Threshold"], entries.map(([name, value]) => [name, number(value)]), { "aria-label": "Class thresholds" }));
  }
  parts.push(h("section", {}, h("h2", {}, "Thresholds"), thresholds.length ? thresholds : h("p", { class: "muted" }, "None recorded.")));
  if (evaluation.truncated) parts.push(h("p", { class: "warn" }, "Only the first test images were predicted again."));
  return parts;
}

function cellStyle(count, row, diagonal) {
  const total = row.reduce((a, b) => a + b, 0) || 1;
  const strength = count / total;
  const colour = diagonal ? `rgba(31, 122, 58, ${0.1 + 0.6 * strength})` : `rgba(179, 38, 30, ${count ? 0.1 + 0.6 * strength : 0})`;
  return `background: ${colour}`;
}
