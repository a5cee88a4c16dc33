// Projects: the list, and a form to create one.

import { api } from "../api.js";
import { busy, field, h, select } from "../ui.js";

export async function render(container) {
  const projects = await api("/projects");
  const name = h("input", { name: "name", required: true, autocomplete: "off" });
  const type = select([["single-label", "Single-label: one class per image"],
    ["multi-label", "Multi-label: any number of classes per image"]], "single-label", { name: "type" });
  const classes = h("input", { name: "classes", autocomplete: "off", placeholder: "cat, dog" });
  const create = h("button", { type: "submit" }, "Create project");
  const form = h("form", { onsubmit: (event) => {
    event.preventDefault();
    busy(create, async () => {
      const names = classes.value.split(",").map((text) => text.trim()).filter(Boolean);
      const project = await api("/projects", { method: "POST", json: { name: name.value, type: type.value, classes: names } });
      location.hash = `#/p/${encodeURIComponent(project.slug)}/upload`;
    });
  } },
  h("div", { class: "row" },
    field("Name", name),
    field("Type", type),
    field("Classes", classes, "Comma-separated; more can be added while labelling."),
    create));

  const list = projects.length
    ? h("ul", { class: "project-list", "aria-label": "Projects" }, projects.map((project) =>
      h("li", {},
        h("h3", {}, h("a", { href: `#/p/${encodeURIComponent(project.slug)}/label` }, project.name)),
        h("p", { class: "muted" }, `${project.type} · ${project.images} images · ${project.unlabelled} unlabelled · `,
          `${project.versions.length} versions`),
        h("p", {}, project.classes.length ? project.classes.map((text) => h("span", { class: "chip" }, text)) : h("span", { class: "muted" }, "no classes yet")))))
    : h("p", { class: "muted" }, "No projects yet: create the first one above.");

  container.append(
    h("h1", {}, "Projects"),
    h("section", { "aria-labelledby": "new-project" }, h("h2", { id: "new-project" }, "New project"), form),
    h("h2", {}, "All projects"),
    list);
}
