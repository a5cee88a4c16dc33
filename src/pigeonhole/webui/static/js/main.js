// The router: reads the hash (#/projects, #/p/<slug>/<page>), draws the navigation
// and hands the <main> element to the page module.

import { ApiError, api, getKey, projectPath, setKey, takeKeyFromUrl } from "./api.js";
import { clearErrors, field, h, showError } from "./ui.js";
import * as projects from "./pages/projects.js";
import * as upload from "./pages/upload.js";
import * as label from "./pages/label.js";
import * as health from "./pages/health.js";
import * as versions from "./pages/versions.js";
import * as train from "./pages/train.js";
import * as evaluate from "./pages/evaluate.js";
import * as deploy from "./pages/deploy.js";

const PROJECT_PAGES = [
  ["upload", "Upload", upload],
  ["label", "Label", label],
  ["health", "Health", health],
  ["versions", "Split & versions", versions],
  ["train", "Train", train],
  ["evaluate", "Evaluate", evaluate],
  ["deploy", "Deploy", deploy],
];

let cleanup = null;
let generation = 0;

function parseHash() {
  const [path, query = ""] = location.hash.replace(/^#/, "").split("?");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  const params = new URLSearchParams(query);
  if (parts[0] === "p" && parts[1]) {
    return { slug: parts[1], page: parts[2] || "label", params };
  }
  return { slug: null, page: "projects", params };
}

function drawNav(slug, page, project) {
  const nav = document.getElementById("nav");
  const link = (href, text, current) =>
    h("a", { href, "aria-current": current ? "page" : false }, text);
  const items = [link("#/projects", "Projects", page === "projects")];
  if (slug) {
    items.push(h("span", { class: "project-name" }, `· ${project ? project.name : slug}:`));
    for (const [name, text] of PROJECT_PAGES) {
      items.push(link(`#/p/${encodeURIComponent(slug)}/${name}`, text, page === name));
    }
  }
  nav.replaceChildren(...items);
}

function keyForm(main, reason) {
  const input = h("input", { type: "password", name: "api_key", autocomplete: "off", required: true, value: getKey() });
  const form = h("form", { class: "card", onsubmit: (event) => {
    event.preventDefault();
    setKey(input.value);
    route();
  } },
  h("h1", { tabindex: "-1" }, "API key"),
  reason ? h("p", { class: "warn" }, reason) : null,
  h("p", {}, "Every call to the server needs an API key. `pigeonhole serve` prints a link with one; ",
    "or create one with ", h("code", {}, "pigeonhole keys create NAME"), " and paste it here."),
  field("API key", input, "Kept in this browser only (localStorage)."),
  h("button", { type: "submit" }, "Use this key"));
  main.replaceChildren(form);
  input.focus();
}

async function route() {
  const ticket = ++generation;
  if (cleanup) {
    try { cleanup(); } catch (error) { console.error(error); }
    cleanup = null;
  }
  clearErrors();
  const main = document.getElementById("main");
  const { slug, page, params } = parseHash();
  drawNav(slug, page, null);
  if (!getKey()) {
    keyForm(main, "");
    return;
  }
  main.replaceChildren(h("p", { class: "muted" }, "Loading…"));
  try {
    let module = projects;
    let project = null;
    if (slug) {
      const entry = PROJECT_PAGES.find(([name]) => name === page);
      if (!entry) throw new ApiError(404, `there is no page "${page}"; pick one from the menu`);
      module = entry[2];
      project = await api(projectPath(slug));
      if (ticket !== generation) return;
      drawNav(slug, page, project);
    }
    const container = h("div", {});
    const result = await module.render(container, { slug, project, params, refresh: route });
    if (ticket !== generation) {
      if (typeof result === "function") result();
      return;
    }
    cleanup = typeof result === "function" ? result : null;
    main.replaceChildren(container);
    const heading = main.querySelector("h1");
    if (heading) {
      heading.setAttribute("tabindex", "-1");
      if (document.activeElement === document.body || !main.contains(document.activeElement)) heading.focus();
    }
  } catch (error) {
    if (ticket !== generation) return;
    if (error instanceof ApiError && error.status === 401) {
      keyForm(main, error.message);
      return;
    }
    main.replaceChildren(h("h1", {}, "Could not open this page"));
    showError(error);
  }
}

takeKeyFromUrl();
document.getElementById("change-key").addEventListener("click", () => keyForm(document.getElementById("main"), ""));
window.addEventListener("hashchange", route);
if (!location.hash) history.replaceState(null, "", "#/projects");
route();
