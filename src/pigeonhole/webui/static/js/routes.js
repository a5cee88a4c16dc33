// Which API routes this server has, read from its OpenAPI document, so that a
// page can say "not available yet" instead of failing when a route is missing.

let spec = null;

function load() {
  if (!spec) {
    spec = fetch("/openapi.json")
      .then((response) => (response.ok ? response.json() : { paths: {} }))
      .catch(() => ({ paths: {} }));
  }
  return spec;
}

// The first path (as the document writes it, e.g. "/api/v1/runs/{run_id}") that
// has this method and matches the pattern; null when there is none.
export async function findRoute(method, pattern) {
  const { paths = {} } = await load();
  for (const [path, operations] of Object.entries(paths)) {
    if (operations[method.toLowerCase()] && pattern.test(path)) return path;
  }
  return null;
}

// Fills the {placeholders} of a path, in order, with escaped values.
export function fillPath(template, ...values) {
  let index = 0;
  return template.replace(/\{[^}]+\}/g, () => encodeURIComponent(values[index++]));
}
