// Deploy: try a model on a dropped image or a URL, copy-paste snippets, and the
// server's keys, webhooks and prediction log where it has routes for them.

import { UI_API, api, getKey, projectPath } from "../api.js";
import { fillPath, findRoute } from "../routes.js";
import { bar, busy, clearErrors, field, fill, h, percent, select, showError, table, unavailable } from "../ui.js";

export async function render(container, { slug, project, params }) {
  const models = await api(projectPath(slug, "/models"), { base: UI_API });
  container.append(h("h1", {}, `Deploy ${project.name}`));
  if (!models.length) {
    container.append(h("p", { class: "unavailable" }, "No models yet: train one on the ",
      h("a", { href: `#/p/${encodeURIComponent(slug)}/train` }, "Train"), " page."));
    return;
  }
  const wanted = params.get("model") || String(models[0].number);
  const chooser = select(models.map((model) => [String(model.number), `${model.model_id} (${model.mode}, ${model.backbone})`]), wanted, { name: "model" });
  const modelId = () => models.find((model) => String(model.number) === chooser.value).model_id;
  const infer = await findRoute("post", /^\/infer\/classification$/);

  const result = h("div", { id: "prediction", "aria-live": "polite" });
  const preview = h("img", { alt: "", class: "visually-hidden", style: "max-width: 240px; max-height: 240px" });
  const fileInput = h("input", { type: "file", accept: "image/*", id: "predict-file", class: "visually-hidden" });
  const url = h("input", { type: "url", name: "image-url", placeholder: "https://example.com/photo.jpg" });
  const confidence = h("input", { type: "number", name: "confidence", min: 0, max: 1, step: 0.01, placeholder: "model default" });
  const urlButton = h("button", { type: "submit" }, "Predict URL");
  const zone = h("div", { class: "dropzone", id: "predict-drop" },
    h("p", {}, h("strong", {}, "Drop an image here")),
    h("p", {}, "or ", h("label", { for: fileInput.id, class: "button" }, "choose an image"), fileInput));

  async function predict(image) {
    clearErrors();
    fill(result, h("p", { class: "muted" }, "Predicting…"));
    const body = { model_id: modelId(), api_key: getKey(), image };
    if (confidence.value !== "") body.confidence = Number(confidence.value);
    try {
      const answer = await api("/infer/classification", { method: "POST", json: body, base: "" });
      drawAnswer(answer);
    } catch (error) {
      fill(result);
      showError(error);
    }
  }

  function drawAnswer(answer) {
    const multi = !Array.isArray(answer.predictions);
    const time = `${Math.round(answer.time * 1000)} ms`;
    if (multi) {
      const entries = Object.entries(answer.predictions).sort((a, b) => b[1].confidence - a[1].confidence);
      fill(result, h("h2", {}, "Prediction"),
        h("p", { class: "top-answer" }, answer.predicted_classes.length ? `Predicted: ${answer.predicted_classes.join(", ")}` : "No result: no class reached its threshold."),
        entries.map(([name, score]) => bar(name, score.confidence, percent(score.confidence), { class: answer.predicted_classes.includes(name) ? "best" : "" })),
        h("p", { class: "muted" }, time));
      return;
    }
    fill(result, h("h2", {}, "Prediction"),
      answer.predictions.length
        ? [h("p", { class: "top-answer" }, `Top: ${answer.top} (${percent(answer.confidence)})`),
          answer.predictions.map((item, index) => bar(item.class, item.confidence, percent(item.confidence), { class: index === 0 ? "best" : "" }))]
        : h("p", { class: "top-answer warn" }, "No result: no class reached the confidence threshold."),
      h("p", { class: "muted" }, time));
  }

  function readFile(file) {
    if (!file) return;
    const reader = new FileReader();
    reader.onload = () => {
      preview.src = reader.result;
      preview.alt = `The image sent: ${file.name}`;
      preview.classList.remove("visually-hidden");
      predict({ type: "base64", value: String(reader.result).split(",")[1] });
    };
    reader.readAsDataURL(file);
  }

  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    readFile(event.dataTransfer.files[0]);
  });
  fileInput.addEventListener("change", () => { readFile(fileInput.files[0]); fileInput.value = ""; });
  const urlForm = h("form", { class: "row", onsubmit: (event) => {
    event.preventDefault();
    busy(urlButton, () => predict({ type: "url", value: url.value }));
  } }, field("Image URL", url), urlButton);

  const snippets = h("div", {});
  const drawSnippets = () => fill(snippets, snippetsFor(modelId()));
  chooser.addEventListener("change", drawSnippets);
  drawSnippets();

  container.append(
    h("section", {}, h("div", { class: "row" }, field("Model", chooser),
      field("Confidence threshold", confidence, "0 to 1; empty uses the model's own."))),
    h("section", { "aria-labelledby": "try-heading" }, h("h2", { id: "try-heading" }, "Try it"),
      infer ? [zone, urlForm, h("div", { class: "row", style: "align-items: flex-start; margin-top: 12px" }, preview, result)]
        : unavailable("Prediction")),
    h("section", { "aria-labelledby": "snippet-heading" }, h("h2", { id: "snippet-heading" }, "Use it from code"), snippets),
    await keysSection(),
    await webhooksSection(slug),
    await logSection(slug));
}

function snippetsFor(modelId) {
  const origin = location.origin;
  const [projectSlug, number] = modelId.split("/");
  const code = (title, text) => [h("h3", {}, title),
    h("pre", { class: "snippet", tabindex: "0", "aria-label": `${title} snippet` }, text),
    h("button", { type: "button", class: "secondary", onclick: (event) => copy(text, event.target) }, `Copy ${title}`)];
  return [
    h("p", {}, "Set ", h("code", {}, "PIGEONHOLE_KEY"), " to an API key first (", h("code", {}, "pigeonhole keys create NAME"), ")."),
    code("curl", `base64 -w0 photo.jpg | curl -s -X POST "${origin}/${projectSlug}/${number}?api_key=$PIGEONHOLE_KEY" \\\n  -H "Content-Type: application/x-www-form-urlencoded" --data-binary @-`),
    code("Python", `import base64, os, requests\n\nwith open("photo.jpg", "rb") as file:\n    image = base64.b64encode(file.read()).decode()\nanswer = requests.post(\n    "${origin}/infer/classification",\n    json={"model_id": "${modelId}", "api_key": os.environ["PIGEONHOLE_KEY"],\n          "image": {"type": "base64", "value": image}},\n).json()\nprint(answer["top"], answer["confidence"])`),
    code("inference-sdk", `import os\nfrom inference_sdk import InferenceHTTPClient\n\nclient = InferenceHTTPClient(api_url="${origin}", api_key=os.environ["PIGEONHOLE_KEY"])\nprint(client.infer("photo.jpg", model_id="${modelId}"))`),
  ];
}

async function copy(text, button) {
  try {
    await navigator.clipboard.writeText(text);
    button.textContent = "Copied";
  } catch {
    button.textContent = "Select the text and copy it";
  }
}

async function keysSection() {
  const list = await findRoute("get", /^\/api\/v1\/keys$/);
  const section = h("section", { "aria-labelledby": "keys-heading" }, h("h2", { id: "keys-heading" }, "API keys"));
  if (!list) {
    section.append(h("p", {}, "Create and revoke keys on the server machine: ",
      h("code", {}, "pigeonhole keys create NAME"), ", ", h("code", {}, "pigeonhole keys list"), ", ",
      h("code", {}, "pigeonhole keys revoke PREFIX"), "."));
    return section;
  }
  const keys = await api(list.replace(/^\/api\/v1/, "")).catch((error) => { showError(error); return []; });
  section.append(table(["Name", "Prefix", "Access", "State"], keys.map((key) =>
    [key.name, `${key.prefix}…`, key.read_only ? "read-only" : "read-write", key.revoked_at ? "revoked" : "active"]), { "aria-label": "API keys" }));
  return section;
}

async function webhooksSection(slug) {
  const section = h("section", { "aria-labelledby": "hooks-heading" }, h("h2", { id: "hooks-heading" }, "Webhooks"));
  const route = await findRoute("get", /^\/api\/v1\/projects\/\{[^}]+\}\/webhooks$/);
  if (!route) {
    section.append(unavailable("Webhook management"));
    return section;
  }
  const path = fillPath(route, slug).replace(/^\/api\/v1/, "");
  const listBox = h("div", {});
  const draw = async () => {
    const hooks = await api(path);
    fill(listBox, hooks.length ? table(["URL", "Events", ""], hooks.map((hook) => [hook.url,
      (hook.events || []).join(", ") || "all",
      h("button", { type: "button", class: "secondary", onclick: (event) => busy(event.target, async () => {
        await api(`${path}/${hook.id}`, { method: "DELETE" });
        await draw();
      }) }, `Delete ${hook.url}`)]), { "aria-label": "Webhooks" }) : h("p", { class: "muted" }, "No webhooks yet."));
  };
  const url = h("input", { type: "url", name: "webhook-url", required: true, placeholder: "https://example.com/hook" });
  const add = h("button", { type: "submit" }, "Add webhook");
  const form = h("form", { class: "row", onsubmit: (event) => {
    event.preventDefault();
    busy(add, async () => {
      await api(path, { method: "POST", json: { url: url.value } });
      url.value = "";
      await draw();
    });
  } }, field("Webhook URL", url, "Receives a JSON event per prediction and when a run ends."), add);
  await draw().catch(showError);
  section.append(form, listBox);
  return section;
}

async function logSection(slug) {
  const section = h("section", { "aria-labelledby": "log-heading" }, h("h2", { id: "log-heading" }, "Prediction log"));
  const counts = await findRoute("get", /^\/api\/v1\/projects\/\{[^}]+\}\/predictions\/counts$/);
  const list = await findRoute("get", /^\/api\/v1\/projects\/\{[^}]+\}\/predictions$/);
  if (!counts && !list) {
    section.append(unavailable("The prediction log"));
    return section;
  }
  if (counts) {
    const data = await api(fillPath(counts, slug).replace(/^\/api\/v1/, "")).catch((error) => { showError(error); return null; });
    if (data) section.append(countsChart(data));
  }
  if (list) {
    const data = await api(fillPath(list, slug).replace(/^\/api\/v1/, "") + "?limit=20").catch((error) => { showError(error); return null; });
    const rows = data ? (Array.isArray(data) ? data : data.predictions || data.items || []) : [];
    section.append(h("h3", {}, "Latest predictions"), rows.length
      ? table(["Time", "Model", "Top class", "Confidence"], rows.map((row) => [new Date(row.time || row.created_at).toLocaleString(), row.model_id || "", row.top || "no result", percent(row.confidence)]), { "aria-label": "Latest predictions" })
      : h("p", { class: "muted" }, "No predictions recorded yet."));
  }
  return section;
}

// Counts per class per hour as stacked bars in SVG, with a table for screen readers.
function countsChart(data) {
  const rows = Array.isArray(data) ? data : data.counts || data.rows || [];
  if (!rows.length) return h("p", { class: "muted" }, "No predictions recorded yet.");
  const hours = [...new Set(rows.map((row) => row.hour))].sort();
  const classes = [...new Set(rows.map((row) => row.top || row.class || "no result"))];
  const value = (hour, name) => rows.filter((row) => row.hour === hour && (row.top || row.class || "no result") === name).reduce((sum, row) => sum + row.count, 0);
  const most = Math.max(...hours.map((hour) => classes.reduce((sum, name) => sum + value(hour, name), 0)), 1);
  const colours = ["#0b5cad", "#1f7a3a", "#b3261e", "#8a5a00", "#6a3fb0", "#00838f", "#5d4037"];
  const ns = "http://www.w3.org/2000/svg";
  const width = Math.max(300, hours.length * 36 + 40);
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} 180`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", "Predictions per class per hour");
  hours.forEach((hour, x) => {
    let y = 160;
    classes.forEach((name, c) => {
      const height = (value(hour, name) / most) * 150;
      const rect = document.createElementNS(ns, "rect");
      Object.entries({ x: 30 + x * 36, y: y - height, width: 28, height, fill: colours[c % colours.length] }).forEach(([k, v]) => rect.setAttribute(k, v));
      svg.append(rect);
      y -= height;
    });
  });
  return h("div", { class: "chart" }, svg,
    h("p", {}, classes.map((name, c) => h("span", { class: "chip", style: `background: ${colours[c % colours.length]}; color: #fff` }, name))),
    h("details", {}, h("summary", {}, "As a table"),
      table(["Hour", ...classes], hours.map((hour) => [new Date(hour).toLocaleString(), ...classes.map((name) => value(hour, name))]))));
}
