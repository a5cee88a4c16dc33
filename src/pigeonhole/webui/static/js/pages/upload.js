// Upload: drop images or .zip files; each batch goes up with a progress bar and
// comes back as a report of added, duplicate and refused files.

import { projectPath, upload } from "../api.js";
import { announce, field, fill, h, select } from "../ui.js";

// Images per request: keeps each request well under the server's body limit and
// lets a refused batch leave the others standing.
const BATCH = 40;

export async function render(container, { slug, project }) {
  const input = h("input", { type: "file", multiple: true, accept: "image/*,.zip", id: "upload-files" });
  const labelAll = select([["", "Unlabelled"], ...project.classes.map((name) => [name, name])], "", { name: "label" });
  const split = select([["", "Not yet (split later)"], "train", "valid", "test"], "", { name: "split" });
  const progress = h("progress", { max: 1, value: 0, "aria-label": "Upload progress" });
  const progressText = h("p", { class: "muted" }, "Nothing uploaded yet.");
  const summary = h("div", { id: "upload-summary", "aria-live": "polite" });
  const zone = h("div", { class: "dropzone", id: "dropzone" },
    h("p", {}, h("strong", {}, "Drop images or a .zip here")),
    h("p", {}, "or ", h("label", { for: input.id, class: "button" }, "choose files"), input));
  input.classList.add("visually-hidden");

  zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    send([...event.dataTransfer.files]);
  });
  input.addEventListener("change", () => { send([...input.files]); input.value = ""; });

  async function send(files) {
    if (!files.length) return;
    const zips = files.filter((file) => file.name.toLowerCase().endsWith(".zip"));
    const images = files.filter((file) => !zips.includes(file));
    const batches = [];
    for (let start = 0; start < images.length; start += BATCH) batches.push(images.slice(start, start + BATCH));
    const total = files.reduce((sum, file) => sum + file.size, 0) || 1;
    const totals = { added: 0, duplicates: [], errors: [], labelled: 0, found: 0 };
    let done = 0;
    const post = async (path, form, size) => {
      try {
        const report = await upload(path, form, (loaded) => {
          progress.value = (done + loaded) / total;
          progressText.textContent = `Uploading… ${Math.round(progress.value * 100)}%`;
        });
        totals.added += report.added;
        totals.labelled += report.labelled;
        totals.found += report.found;
        totals.duplicates.push(...report.duplicates);
        totals.errors.push(...report.errors);
      } catch (error) {
        // A batch the server refused whole still names its files in the message.
        totals.errors.push({ name: form.getAll("files").map((file) => file.name).join(", ") || form.get("file").name, reason: error.message });
      }
      done += size;
    };
    progress.value = 0;
    for (const batch of batches) {
      const form = new FormData();
      for (const file of batch) form.append("files", file, file.name);
      if (labelAll.value) form.append("labels", labelAll.value);
      if (split.value) form.append("split", split.value);
      await post(projectPath(slug, "/images"), form, batch.reduce((sum, file) => sum + file.size, 0));
    }
    for (const zip of zips) {
      const form = new FormData();
      form.append("file", zip, zip.name);
      await post(projectPath(slug, "/imports"), form, zip.size);
    }
    progress.value = 1;
    progressText.textContent = `Done: ${files.length} file(s) sent.`;
    drawSummary(totals);
  }

  function drawSummary(totals) {
    const text = `${totals.added} imported, ${totals.duplicates.length} duplicate(s) skipped, ${totals.errors.length} refused.`;
    announce(text);
    fill(summary,
      h("h2", {}, "Summary"),
      h("p", { class: totals.errors.length ? "warn" : "ok" }, text),
      totals.duplicates.length ? h("details", {}, h("summary", {}, `Duplicates (${totals.duplicates.length})`),
        h("ul", {}, totals.duplicates.map((item) => h("li", {}, `${item.name}: same as ${item.duplicate_of}`)))) : null,
      totals.errors.length ? h("div", {}, h("h3", {}, "Refused files"),
        h("ul", { class: "refused" }, totals.errors.map((item) => h("li", {}, h("strong", {}, item.name), `: ${item.reason}`)))) : null,
      h("p", {}, h("a", { href: `#/p/${encodeURIComponent(slug)}/label` }, "Go on to labelling →")));
  }

  container.append(
    h("h1", {}, `Upload to ${project.name}`),
    h("section", {},
      h("div", { class: "row" },
        field("Label every file as", labelAll, "For folders of one class; leave unlabelled to label later."),
        field("Split", split)),
      zone,
      h("div", { style: "margin-top: 12px" }, progress, progressText)),
    summary);
}
