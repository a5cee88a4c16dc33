// Placeholder until its API routes exist.

import { h, unavailable } from "../ui.js";

export async function render(container, { project }) {
  container.append(h("h1", {}, `Evaluate ${project.name}`), unavailable("This page"));
}
