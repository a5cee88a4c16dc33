// Split & versions: ratios with a preview of the counts per class, the split
// itself, then a dataset version from a preprocessing and augmentation recipe.

import { api, projectPath } from "../api.js";
import { announce, busy, field, h, select, table } from "../ui.js";

const SPLITS = ["train", "valid", "test"];

export async function render(container, { slug, project }) {
  const [counts, versions] = await Promise.all([
    api(projectPath(slug, "/split")),
    api(projectPath(slug, "/versions")),
  ]);
  const ratio = (name, value) => h("input", { type: "number", min: 0, max: 100, step: 1, value, name: `ratio-${name}`, required: true });
  const ratios = { train: ratio("train", 70), valid: ratio("valid", 20), test: ratio("test", 10) };
  const reassign = h("input", { type: "checkbox", id: "split-reassign" });
  const preview = h("div", { id: "split-preview" });
  const current = h("div", {});
  const splitButton = h("button", { type: "submit" }, "Apply split");

  function shares() {
    const values = SPLITS.map((name) => Math.max(0, Number(ratios[name].value) || 0));
    const sum = values.reduce((a, b) => a + b, 0) || 1;
    return values.map((value) => value / sum);
  }

  function drawCurrent(table_) {
    current.replaceChildren(h("h2", {}, "Now"),
      table(["Class", ...table_.columns, "Total"], Object.entries(table_.rows).map(([name, row]) =>
        [name, ...table_.columns.map((column) => row[column]), table_.class_totals[name]])));
  }

  // Expected counts: each class shared out by the ratios (the split itself also
  // keeps near-duplicates together, so it can differ by a few images).
  function drawPreview() {
    const parts = shares();
    const rows = Object.entries(counts.class_totals).map(([name, total]) => {
      const train = Math.round(total * parts[0]);
      const valid = Math.round(total * parts[1]);
      return [name, train, valid, Math.max(0, total - train - valid), total];
    });
    preview.replaceChildren(h("h2", {}, "Preview (expected)"), table(["Class", ...SPLITS, "Total"], rows));
  }

  for (const input of Object.values(ratios)) input.addEventListener("input", drawPreview);
  const preset = h("button", { type: "button", class: "secondary", onclick: () => {
    ratios.train.value = 70; ratios.valid.value = 20; ratios.test.value = 10;
    drawPreview();
  } }, "70 / 20 / 10");
  const splitForm = h("form", { onsubmit: (event) => {
    event.preventDefault();
    busy(splitButton, async () => {
      const summary = await api(projectPath(slug, "/split"), { method: "POST", json: {
        ratios: SPLITS.map((name) => Number(ratios[name].value) / 100), reassign: reassign.checked } });
      announce(`Split: ${summary.assigned} images assigned, ${summary.moved} moved`);
      splitResult.textContent = `Assigned ${summary.assigned} images, moved ${summary.moved}: train ${summary.counts.train}, valid ${summary.counts.valid}, test ${summary.counts.test}.`;
      Object.assign(counts, await api(projectPath(slug, "/split")));
      drawCurrent(counts);
    });
  } },
  h("div", { class: "row" },
    field("Train %", ratios.train), field("Valid %", ratios.valid), field("Test %", ratios.test), preset),
  h("p", {}, h("label", { for: reassign.id }, reassign, " Also move images that already have a split")),
  splitButton);
  const splitResult = h("p", { class: "ok", id: "split-result", "aria-live": "polite" });

  // The version recipe.
  const size = h("input", { name: "resize", value: "224", placeholder: "224 or 320x240" });
  const mode = select([["stretch", "Stretch"], ["fit", "Fit (letterbox)"], ["center-crop", "Centre crop"]], "stretch", { name: "resize-mode" });
  const grayscale = h("input", { type: "checkbox", id: "version-grayscale" });
  const check = (id, text) => { const box = h("input", { type: "checkbox", id }); return [box, h("label", { for: id }, box, ` ${text}`)]; };
  const [flipH, flipHLabel] = check("aug-flip-h", "Flip horizontally");
  const [flipV, flipVLabel] = check("aug-flip-v", "Flip vertically");
  const [rot90, rot90Label] = check("aug-rot90", "Quarter turns");
  const amount = (name, max, step) => h("input", { type: "number", min: 0, max, step, value: 0, name });
  const rotation = amount("rotation", 45, 1);
  const brightness = amount("brightness", 1, 0.05);
  const blur = amount("blur", 5, 0.5);
  const noise = amount("noise", 1, 0.01);
  const multiplier = h("input", { type: "number", min: 1, max: 50, step: 1, value: 1, name: "multiplier" });
  const versionButton = h("button", { type: "submit" }, "Generate version");
  const versionList = h("div", { id: "version-list" });

  function drawVersions(list) {
    versionList.replaceChildren(list.length
      ? table(["Version", "Created", "Train files", "Valid files", "Test files", "Recipe"], list.map((version) => [
        `v${version.number}`, new Date(version.created_at).toLocaleString(),
        version.counts.files.train, version.counts.files.valid, version.counts.files.test,
        recipeText(version.recipe)]), { "aria-label": "Versions" })
      : h("p", { class: "muted" }, "No versions yet."));
  }

  const versionForm = h("form", { onsubmit: (event) => {
    event.preventDefault();
    busy(versionButton, async () => {
      const [width, height] = size.value.trim() ? size.value.toLowerCase().split("x").map(Number) : [];
      const preprocessing = { resize: width ? [width, height || width] : null, resize_mode: mode.value, grayscale: grayscale.checked };
      const augmentation = {
        flip_horizontal: flipH.checked, flip_vertical: flipV.checked, rotate90: rot90.checked,
        rotation: Number(rotation.value), brightness: Number(brightness.value), blur: Number(blur.value),
        noise: Number(noise.value), multiplier: Number(multiplier.value),
      };
      const version = await api(projectPath(slug, "/versions"), { method: "POST", json: { preprocessing, augmentation } });
      announce(`Version ${version.number} generated`);
      drawVersions(await api(projectPath(slug, "/versions")));
    });
  } },
  h("fieldset", {}, h("legend", {}, "Preprocessing"),
    h("div", { class: "row" }, field("Resize to", size, "Pixels; empty keeps the size."), field("Resize mode", mode),
      h("label", { for: grayscale.id }, grayscale, " Greyscale"))),
  h("fieldset", {}, h("legend", {}, "Augmentation (training images only)"),
    h("div", { class: "row" }, flipHLabel, flipVLabel, rot90Label),
    h("div", { class: "row" }, field("Rotation (°)", rotation), field("Brightness", brightness), field("Blur (px)", blur), field("Noise", noise),
      field("Output multiplier", multiplier, "Copies of each training image, 1 to 50."))),
  versionButton);

  drawCurrent(counts);
  drawPreview();
  drawVersions(versions);
  container.append(
    h("h1", {}, `Split & versions of ${project.name}`),
    h("section", { "aria-labelledby": "split-heading" }, h("h2", { id: "split-heading" }, "Split"), splitForm, splitResult),
    h("div", { class: "row", style: "align-items: flex-start" }, h("section", {}, preview), h("section", {}, current)),
    h("section", { "aria-labelledby": "version-heading" }, h("h2", { id: "version-heading" }, "New version"), versionForm),
    h("section", {}, h("h2", {}, "Versions"), versionList));
}

function recipeText(recipe) {
  const pre = recipe.preprocessing || {};
  const aug = recipe.augmentation || {};
  const parts = [pre.resize ? `${pre.resize.join("×")} ${pre.resize_mode}` : "original size"];
  if (pre.grayscale) parts.push("greyscale");
  const enabled = Object.entries(aug).filter(([name, value]) => name !== "multiplier" && value).map(([name]) => name);
  if (enabled.length) parts.push(enabled.join(", "));
  if (aug.multiplier > 1) parts.push(`×${aug.multiplier}`);
  return parts.join(" · ");
}
