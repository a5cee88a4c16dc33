// Placeholder until its API routes exist.

import { h, unavailable } from "../ui.js";

export async function render(container, { project }) {
  container.append(h("h1", {}, `Train ${project.name}`), unavailable("This page"));
}
