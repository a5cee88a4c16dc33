// Health: counts, warnings, plots, and duplicate and leakage groups as images.

import { api, fileUrl, projectPath } from "../api.js";
import { h, number, table } from "../ui.js";

export async function render(container, { slug, project }) {
  const report = await api(projectPath(slug, "/health"));
  const plot = (name, alt) => h("figure", {},
    h("img", { src: fileUrl(projectPath(slug, `/health/plots/${name}.png`)), alt, loading: "lazy" }));
  const member = (item) => h("figure", {},
    h("img", { src: fileUrl(projectPath(slug, `/images/${item.image_id}/thumbnail`), { size: 160 }), alt: item.filename, loading: "lazy" }),
    h("figcaption", {}, item.filename, h("br"), `${item.split || "no split"} · ${item.labels && item.labels.length ? item.labels.join(", ") : "unlabelled"}`));
  const groups = (title, list, empty) => h("section", {},
    h("h2", {}, `${title} (${list.length})`),
    list.length ? list.slice(0, 50).map((group, index) =>
      h("div", { class: "group", role: "group", "aria-label": `${title} group ${index + 1}` }, group.members.map(member)))
      : h("p", { class: "muted" }, empty));

  const split = report.class_split;
  const imbalance = report.imbalance || {};
  container.append(
    h("h1", {}, `Health of ${project.name}`),
    h("section", {},
      h("p", {}, `${report.image_count} images, ${report.unlabelled_count} unlabelled. `,
        imbalance.ratio ? `Largest class ${imbalance.largest} (${imbalance.largest_count}) over smallest ${imbalance.smallest} (${imbalance.smallest_count}): ${number(imbalance.ratio, 1)}×.` : ""),
      report.warnings.length
        ? h("ul", { class: "warn", "aria-label": "Warnings" }, report.warnings.map((text) => h("li", {}, text)))
        : h("p", { class: "ok" }, "No problems found.")),
    h("section", {}, h("h2", {}, "Images per class and split"),
      table(["Class", ...split.columns, "Total"], [
        ...Object.entries(split.rows).map(([name, row]) => [name, ...split.columns.map((column) => row[column]), split.class_totals[name]]),
        ["All", ...split.columns.map((column) => split.split_totals[column]), report.image_count],
      ])),
    h("section", { class: "plots" }, h("h2", {}, "Charts"),
      report.image_count ? plot("class_balance", "Bar chart of images per class and split") : null,
      report.sizes ? plot("image_sizes", "Scatter plot of image widths and heights") : null,
      report.cooccurrence ? plot("label_cooccurrence", "Heat map of labels that appear together") : null),
    groups("Leakage: near-duplicates in different splits", report.leaking_groups, "No near-duplicates straddle splits."),
    groups("Near-duplicates with different labels", report.mislabelled_groups, "No near-duplicates disagree."),
    groups("All near-duplicate groups", report.near_duplicates, "No near-duplicates."),
    h("section", {}, h("h2", {}, `Exact duplicates (${report.exact_duplicates.length})`),
      report.exact_duplicates.length
        ? h("ul", {}, report.exact_duplicates.slice(0, 100).map((item) => h("li", {}, `${item.filename}: also ${item.sources.join(", ")}`)))
        : h("p", { class: "muted" }, "No file was imported twice.")));
}
