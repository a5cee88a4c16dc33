// Label: a paged grid of thumbnails with filters, multi-select and keyboard
// labelling. Number keys assign (or, multi-label, toggle) the class with that
// number, arrows move, S skips, 0 clears, Space selects, A accepts the suggested
// labels (a model's prediction, sent back from the prediction log).

import { api, fileUrl, projectPath } from "../api.js";
import { announce, busy, field, fill, h, select, showError } from "../ui.js";

const PAGE = 60;

export async function render(container, { slug, project, params }) {
  const multi = project.type === "multi-label";
  let classes = [...project.classes];
  const state = {
    label: params.get("label") || "",
    split: params.get("split") || "",
    unlabelled: params.get("unlabelled") === "1",
    suggested: params.get("suggested") === "1",
    offset: Number(params.get("offset") || 0),
    total: 0,
    images: [],
    selected: new Set(),
    focus: 0,
  };

  const classFilter = select([], "", { name: "label-filter" });
  const splitFilter = select([["", "Any split"], "train", "valid", "test"], state.split, { name: "split-filter" });
  const unlabelledBox = h("input", { type: "checkbox", id: "unlabelled-filter", checked: state.unlabelled });
  const suggestedBox = h("input", { type: "checkbox", id: "suggested-filter", checked: state.suggested });
  const assignClass = select([], "", { name: "assign-class" });
  const assignButton = h("button", { type: "button" }, multi ? "Add to selected" : "Assign to selected");
  const removeButton = multi ? h("button", { type: "button", class: "secondary" }, "Remove from selected") : null;
  const acceptButton = h("button", { type: "button", class: "secondary" }, "Accept suggestions");
  const newClass = h("input", { name: "new-class", autocomplete: "off" });
  const addClassButton = h("button", { type: "submit", class: "secondary" }, "Add class");
  const legend = h("p", { class: "keys", id: "label-keys" });
  const grid = h("ul", { class: "grid", role: "listbox", "aria-multiselectable": "true", "aria-label": "Images", "aria-describedby": "label-keys", tabindex: "-1" });
  const pager = h("p", { class: "muted", id: "pager-text" });
  const previous = h("button", { type: "button", class: "secondary" }, "← Previous page");
  const next = h("button", { type: "button", class: "secondary" }, "Next page →");
  const selection = h("span", { class: "muted" });

  function drawClassControls() {
    const filterValue = classFilter.value || state.label;
    classFilter.replaceChildren(h("option", { value: "" }, "Any class"),
      ...classes.map((name) => h("option", { value: name, selected: name === filterValue }, name)));
    const assignValue = assignClass.value;
    assignClass.replaceChildren(...classes.map((name) => h("option", { value: name, selected: name === assignValue }, name)));
    legend.replaceChildren("Keys: ",
      ...classes.slice(0, 9).flatMap((name, index) => [h("kbd", {}, String(index + 1)), ` ${name}  `]),
      h("kbd", {}, "0"), multi ? " clear  " : " unlabel  ",
      h("kbd", {}, "←↑↓→"), " move  ", h("kbd", {}, "S"), " skip  ", h("kbd", {}, "Space"), " select  ",
      h("kbd", {}, "A"), " accept suggestion");
  }

  function saveFilters() {
    const query = new URLSearchParams();
    if (state.label) query.set("label", state.label);
    if (state.split) query.set("split", state.split);
    if (state.unlabelled) query.set("unlabelled", "1");
    if (state.suggested) query.set("suggested", "1");
    if (state.offset) query.set("offset", String(state.offset));
    const text = query.toString();
    history.replaceState(null, "", `#/p/${encodeURIComponent(slug)}/label${text ? `?${text}` : ""}`);
  }

  async function load(focusIndex = 0) {
    const query = new URLSearchParams({ offset: String(state.offset), limit: String(PAGE) });
    if (state.label) query.set("label", state.label);
    if (state.split) query.set("split", state.split);
    if (state.unlabelled) query.set("unlabelled", "true");
    if (state.suggested) query.set("suggested", "true");
    const page = await api(projectPath(slug, `/images?${query}`));
    state.total = page.total;
    state.images = page.images;
    state.selected.clear();
    state.focus = Math.max(0, Math.min(focusIndex, state.images.length - 1));
    saveFilters();
    drawGrid();
  }

  function suggestionText(suggestion) {
    const labels = suggestion.labels.length ? suggestion.labels.join(", ") : "no class";
    return `Suggested: ${labels} (${Math.round(suggestion.confidence * 100)}%)`;
  }

  function tileLabel(image) {
    const labels = image.labels.length ? image.labels.join(", ") : "unlabelled";
    const suggested = image.suggestion ? `, ${suggestionText(image.suggestion)}` : "";
    return `${image.filename}: ${labels}${image.split ? `, ${image.split}` : ""}${suggested}`;
  }

  function drawTile(image, index) {
    const tile = h("li", {
      class: "tile", role: "option", id: `image-${image.id}`, "aria-selected": state.selected.has(image.id) ? "true" : "false",
      tabindex: index === state.focus ? "0" : "-1", dataset: { index: String(index), id: String(image.id) },
    });
    fillTile(tile, image);
    tile.addEventListener("click", () => {
      toggle(image.id);
      moveFocus(index);
    });
    return tile;
  }

  // Redraws a tile's contents in place, so that it keeps the keyboard focus.
  function fillTile(tile, image) {
    const suggestion = image.suggestion || null;
    tile.setAttribute("aria-label", tileLabel(image));
    fill(tile, [
      h("img", { src: fileUrl(projectPath(slug, `/images/${image.id}/thumbnail`), { size: 160 }), alt: "", loading: "lazy", width: 160, height: 160 }),
      image.split ? h("span", { class: "split" }, image.split) : null,
      h("div", { class: "labels" }, image.labels.length ? image.labels.map((name) => h("span", { class: "chip" }, name)) : h("span", { class: "muted" }, "unlabelled")),
      suggestion ? h("div", { class: "suggestion" }, suggestionText(suggestion)) : null,
    ]);
  }

  function drawGrid() {
    grid.replaceChildren(...state.images.map(drawTile));
    const end = Math.min(state.offset + state.images.length, state.total);
    pager.textContent = state.total ? `Images ${state.offset + 1}–${end} of ${state.total}` : "No images match these filters.";
    previous.disabled = state.offset === 0;
    next.disabled = end >= state.total;
    drawSelection();
  }

  function drawSelection() {
    selection.textContent = `${state.selected.size} selected`;
    assignButton.disabled = state.selected.size === 0;
    acceptButton.disabled = state.selected.size === 0;
    if (removeButton) removeButton.disabled = state.selected.size === 0;
  }

  function toggle(id) {
    if (state.selected.has(id)) state.selected.delete(id);
    else state.selected.add(id);
    const tile = grid.querySelector(`[data-id="${id}"]`);
    if (tile) tile.setAttribute("aria-selected", state.selected.has(id) ? "true" : "false");
    drawSelection();
  }

  function moveFocus(index) {
    const tiles = grid.children;
    if (!tiles.length) return;
    index = Math.max(0, Math.min(index, tiles.length - 1));
    tiles[state.focus]?.setAttribute("tabindex", "-1");
    state.focus = index;
    tiles[index].setAttribute("tabindex", "0");
    tiles[index].focus();
  }

  function columns() {
    const tiles = [...grid.children];
    if (!tiles.length) return 1;
    const top = tiles[0].offsetTop;
    return Math.max(1, tiles.filter((tile) => tile.offsetTop === top).length);
  }

  function replaceImage(image) {
    const index = state.images.findIndex((item) => item.id === image.id);
    if (index < 0) return;
    state.images[index] = image;
    fillTile(grid.children[index], image);
  }

  // The images an action applies to: the selection, else the focused image.
  function chosenImages() {
    if (state.selected.size) return state.images.filter((image) => state.selected.has(image.id));
    return [state.images[state.focus]].filter(Boolean);
  }

  // Clears the selection; says whether there was one.
  function deselectAll() {
    const had = state.selected.size > 0;
    state.selected.clear();
    for (const tile of grid.children) tile.setAttribute("aria-selected", "false");
    drawSelection();
    return had;
  }

  // Labels the selection, or the focused image when nothing is selected.
  async function applyClass(name, action) {
    const ids = chosenImages().map((image) => image.id);
    if (!ids.length) return;
    const focused = state.images[state.focus];
    if (action === "toggle") action = focused && focused.labels.includes(name) ? "remove" : "add";
    const labels = name === null ? [] : [name];
    const body = { image_ids: ids, action, labels };
    await api(projectPath(slug, "/labels"), { method: "POST", json: body });
    for (const id of ids) {
      const image = state.images.find((item) => item.id === id);
      if (!image) continue;
      let next = image.labels;
      if (action === "set") next = labels;
      else if (action === "add") next = [...new Set([...image.labels, name])];
      else next = image.labels.filter((item) => item !== name);
      // Any label a person gives clears a suggestion; unlabelling keeps it.
      replaceImage({ ...image, labels: next, suggestion: labels.length && action !== "remove" ? null : image.suggestion });
    }
    const wasSelection = deselectAll();
    announce(`${name === null ? "Cleared labels of" : `${action === "remove" ? "Removed" : "Labelled"} ${name}:`} ${ids.length} image(s)`);
    if (!wasSelection && !multi) await step(1);
    else moveFocus(state.focus);
  }

  async function step(delta) {
    const target = state.focus + delta;
    if (target >= state.images.length && state.offset + PAGE < state.total) {
      state.offset += PAGE;
      await load(0);
      moveFocus(0);
    } else if (target < 0 && state.offset > 0) {
      state.offset = Math.max(0, state.offset - PAGE);
      await load(PAGE - 1);
      moveFocus(state.images.length - 1);
    } else {
      moveFocus(target);
    }
  }

  async function onKey(event) {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    const key = event.key;
    const actions = {
      ArrowRight: () => step(1),
      ArrowLeft: () => step(-1),
      ArrowDown: () => step(columns()),
      ArrowUp: () => step(-columns()),
      Home: () => moveFocus(0),
      End: () => moveFocus(state.images.length - 1),
      s: () => step(1),
      S: () => step(1),
      " ": () => toggle(state.images[state.focus]?.id),
      0: () => applyClass(null, "set"),
      a: () => acceptSuggestion(),
      A: () => acceptSuggestion(),
    };
    let action = actions[key];
    if (!action && /^[1-9]$/.test(key) && classes[Number(key) - 1]) {
      const name = classes[Number(key) - 1];
      action = () => applyClass(name, multi ? "toggle" : "set");
    }
    if (!action) return;
    event.preventDefault();
    // One key at a time: a key pressed while a label is being saved waits for it.
    queue = queue.then(action).catch(showError);
    await queue;
  }

  let queue = Promise.resolve();

  // Accepts the suggestions of the selection, or of the focused image.
  async function acceptSuggestion() {
    const chosen = chosenImages();
    const ids = chosen.filter((image) => image.suggestion).map((image) => image.id);
    if (!ids.length) {
      announce(chosen.length > 1 ? "None of these images has a suggested label" : "This image has no suggested label");
      return;
    }
    const result = await api(projectPath(slug, "/suggestions/accept"), { method: "POST", json: { image_ids: ids } });
    for (const id of ids) {
      const image = state.images.find((item) => item.id === id);
      replaceImage({ ...image, labels: [...image.suggestion.labels], suggestion: null });
    }
    const wasSelection = deselectAll();
    announce(`Accepted the suggestions of ${result.changed} image(s)`);
    if (!wasSelection) await step(1);
    else moveFocus(state.focus);
  }

  grid.addEventListener("keydown", onKey);
  classFilter.addEventListener("change", () => { state.label = classFilter.value; state.offset = 0; load().catch(showError); });
  splitFilter.addEventListener("change", () => { state.split = splitFilter.value; state.offset = 0; load().catch(showError); });
  unlabelledBox.addEventListener("change", () => { state.unlabelled = unlabelledBox.checked; state.offset = 0; load().catch(showError); });
  suggestedBox.addEventListener("change", () => { state.suggested = suggestedBox.checked; state.offset = 0; load().catch(showError); });
  previous.addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE); load().catch(showError); });
  next.addEventListener("click", () => { state.offset += PAGE; load().catch(showError); });
  assignButton.addEventListener("click", () => busy(assignButton, () => applyClass(assignClass.value, multi ? "add" : "set")));
  acceptButton.addEventListener("click", () => busy(acceptButton, acceptSuggestion));
  if (removeButton) removeButton.addEventListener("click", () => busy(removeButton, () => applyClass(assignClass.value, "remove")));
  const selectAll = h("button", { type: "button", class: "secondary", onclick: () => {
    for (const image of state.images) state.selected.add(image.id);
    for (const tile of grid.children) tile.setAttribute("aria-selected", "true");
    drawSelection();
  } }, "Select page");
  const clearSelection = h("button", { type: "button", class: "secondary", onclick: deselectAll }, "Clear selection");
  const classForm = h("form", { class: "row", onsubmit: (event) => {
    event.preventDefault();
    busy(addClassButton, async () => {
      const names = newClass.value.split(",").map((text) => text.trim()).filter(Boolean);
      if (!names.length) return;
      const result = await api(projectPath(slug, "/classes"), { method: "POST", json: { names } });
      classes = result.classes;
      newClass.value = "";
      drawClassControls();
      announce(`Classes: ${classes.join(", ")}`);
    });
  } }, field("New class", newClass), addClassButton);

  drawClassControls();
  await load(0);

  container.append(
    h("h1", {}, `Label ${project.name}`),
    h("section", { "aria-label": "Filters" },
      h("div", { class: "toolbar" },
        field("Class", classFilter), field("Split", splitFilter),
        h("div", { class: "field" }, h("label", { for: unlabelledBox.id }, unlabelledBox, " Unlabelled only")),
        h("div", { class: "field" }, h("label", { for: suggestedBox.id }, suggestedBox, " With a suggestion only")))),
    h("section", { "aria-label": "Assign" },
      h("div", { class: "toolbar" },
        field(multi ? "Class to add or remove" : "Class to assign", assignClass), assignButton, removeButton,
        acceptButton, selectAll, clearSelection, selection),
      classForm),
    legend,
    h("div", { class: "toolbar" }, previous, next, pager),
    grid);
}
