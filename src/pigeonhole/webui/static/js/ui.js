// Small DOM helpers shared by the pages.

// h("button", {type: "button", onclick: f}, "Save") builds an element.
// Attributes starting with "on" become listeners; false and null are skipped.
export function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes || {})) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on")) element.addEventListener(name.slice(2), value);
    else if (name === "class") element.className = value;
    else if (name === "dataset") Object.assign(element.dataset, value);
    else if (value === true) element.setAttribute(name, "");
    else element.setAttribute(name, String(value));
  }
  append(element, children);
  return element;
}

function append(element, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

// Replaces the element's children; skips null and false as h() does.
export function fill(element, ...children) {
  element.replaceChildren();
  append(element, children);
  return element;
}

let fieldCounter = 0;

// A labelled field: <div class="field"><label for=id>text</label>control hint</div>.
export function field(text, control, hint) {
  if (!control.id) control.id = `field-${++fieldCounter}`;
  const parts = [h("label", { for: control.id }, text), control];
  if (hint) {
    const hintId = `${control.id}-hint`;
    control.setAttribute("aria-describedby", hintId);
    parts.push(h("small", { id: hintId }, hint));
  }
  return h("div", { class: "field" }, parts);
}

export function select(options, value, attributes = {}) {
  const element = h("select", attributes);
  for (const option of options) {
    const [optionValue, text] = Array.isArray(option) ? option : [option, option];
    element.append(h("option", { value: optionValue, selected: optionValue === value }, text));
  }
  return element;
}

export function showError(error) {
  if (error && error.name === "AbortError") return;
  const box = document.getElementById("messages");
  const text = error && error.message ? error.message : String(error);
  const message = h("div", { class: "error" }, h("strong", {}, "Error: "), text,
    h("button", { type: "button", class: "secondary", onclick: () => message.remove() }, "Dismiss"));
  box.replaceChildren(message);
  if (!(error && error.status !== undefined)) console.error(error);
}

export function clearErrors() {
  document.getElementById("messages").replaceChildren();
}

// Announces text to screen readers without moving focus.
export function announce(text) {
  const status = document.getElementById("status");
  status.textContent = "";
  requestAnimationFrame(() => { status.textContent = text; });
}

// Runs an async action from a button: disables it meanwhile and shows errors.
export async function busy(button, action) {
  button.disabled = true;
  clearErrors();
  try {
    return await action();
  } catch (error) {
    showError(error);
    return undefined;
  } finally {
    button.disabled = false;
  }
}

export function percent(value, digits = 1) {
  return value === null || value === undefined ? "–" : `${(value * 100).toFixed(digits)}%`;
}

export function number(value, digits = 3) {
  if (value === null || value === undefined) return "–";
  return typeof value === "number" && !Number.isInteger(value) ? value.toFixed(digits) : String(value);
}

export function table(headers, rows, attributes = {}) {
  return h("div", { class: "table-wrap" },
    h("table", attributes,
      h("thead", {}, h("tr", {}, headers.map((text) => h("th", { scope: "col" }, text)))),
      h("tbody", {}, rows.map((cells) =>
        h("tr", {}, cells.map((cell, index) =>
          index === 0 ? h("th", { scope: "row" }, cell)
            : h("td", { class: typeof cell === "number" ? "num" : "" }, cell)))))));
}

export function unavailable(what) {
  return h("p", { class: "unavailable" },
    `${what} is not available yet: this server does not have the API route it needs.`);
}

// A horizontal bar with its label and value, for confidences and counts.
export function bar(label, fraction, text, attributes = {}) {
  const width = Math.max(0, Math.min(1, fraction)) * 100;
  return h("div", { class: `bar ${attributes.class || ""}` },
    h("span", {}, label),
    h("div", { class: "track", role: "img", "aria-label": `${label}: ${text}` },
      h("div", { class: "fill", style: `width: ${width}%` })),
    h("span", { class: "num" }, text));
}
