// The "new profile" flow: name, photos by drag-and-drop (or a file picker), then the training job live:
// its status (VALIDATING → QUEUING → IN_PROGRESS → READY | ERROR), progress, and every photo's verdict and reason
// (files the server refused, such as one that is not an image, are listed with theirs; the others are trained on).
// The server decides what is acceptable; a refused upload shows its sentence here.
import { createProfile, FINISHED, getJob, KINDS, STATUS, VERDICT } from "./api.js";
import { createRef, formatBytes, h } from "./dom.js";
import { changed, state, updateJob } from "./store.js";

const STEPS = Object.values(STATUS).filter((status) => status !== STATUS.ERROR); // the lifecycle of a job that succeeds
const POLL_MS = 1000;
const MARKS = { [VERDICT.accepted]: "✓", [VERDICT.rejected]: "✗", [VERDICT.pending]: "…" };

/** A photo verdict as one mark, in the form's job report and in a profile's details. */
export const verdictMark = (verdict) => MARKS[verdict] ?? "?";

// Kept here, not in the elements, so that a running job, the name and the chosen photos survive closing the panel.
const form = { name: "", kind: KINDS[0].kind, overwrite: false, files: [], sent: [], refused: [], jobId: null, message: "",
  sending: false, over: false };
const previews = new Map(); // File → object URL
const chooser = createRef(); // the hidden file input that the drop zone opens
const nameBox = createRef();

/** The form, drawn from its state. */
export function uploadForm() {
  const running = form.jobId && !FINISHED.has(state.jobs.get(form.jobId)?.status);
  const choose = () => chooser.current?.click();
  // stopPropagation: ComfyUI's own page-wide drop handler would try to open the photos as workflows
  const hover = (over) => (event) => {
    event.preventDefault();
    event.stopPropagation();
    if (form.over !== over) {
      form.over = over;
      changed();
    }
  };
  return h("section.identity-new", {},
    h("h4", {}, "New profile"),
    h("label.identity-field", {}, "Name", h("input.identity-name-input", { type: "text", ref: nameBox, value: form.name, maxLength: 100,
      placeholder: "Person's name, e.g. Alice Smith", oninput: (event) => (form.name = event.target.value) })),
    h("label.identity-field", {}, "Of a", h("select.identity-kind-input", { value: form.kind, onchange: (event) => (form.kind = event.target.value) },
      KINDS.map(({ kind, label }) => h("option", { value: kind }, label)))),
    h(form.over ? "div.identity-dropzone.over" : "div.identity-dropzone", { tabIndex: 0, role: "button", onclick: choose,
      onkeydown: (event) => (event.key === "Enter" || event.key === " ") && choose(),
      ondragover: hover(true),
      ondragleave: hover(false),
      ondrop: (event) => {
        hover(false)(event);
        addFiles(event.dataTransfer.files);
      } },
    h("i.pi.pi-images"), h("span", {}, "Drop 1–50 photos of the person here, or click to choose them"),
    h("small", {}, "Group photos are fine: the person seen most often is the subject.")),
    h("input.identity-file-input", { type: "file", multiple: true, hidden: true, ref: chooser, onchange: (event) => {
      addFiles(event.target.files);
      event.target.value = "";
    } }),
    h("ul.identity-files", {}, form.files.map(fileRow)),
    h("label.identity-check", {}, h("input.identity-overwrite", { type: "checkbox", checked: form.overwrite,
      onchange: (event) => (form.overwrite = event.target.checked) }), "Retrain the profile of that name if it exists (keeps its id)"),
    h("div.identity-actions", {},
      h("button.identity-train-button.p-button.p-button-sm", { type: "button", onclick: submit,
        disabled: form.sending || running || !form.files.length }, form.sending ? "Uploading…" : "Train profile"),
      h("button.identity-clear-button.p-button.p-button-sm.p-button-secondary", { type: "button", onclick: () => {
        release(form.files.splice(0));
        form.message = "";
        changed();
      } }, "Clear")),
    h(form.message ? "div.identity-message.error" : "div.identity-message", { role: "alert" }, form.message),
    h("div.identity-job", {}, jobView()));
}

function addFiles(list) {
  form.files.push(...Array.from(list ?? []));
  form.message = "";
  changed();
}

/** Frees the previews of files that are neither chosen nor shown with a job's verdicts. */
function release(files) {
  for (const file of files) {
    if (form.files.includes(file) || form.sent.includes(file) || form.refused.some((r) => r.file === file)) continue;
    URL.revokeObjectURL(previews.get(file));
    previews.delete(file);
  }
}

function preview(file) {
  if (!previews.has(file)) previews.set(file, URL.createObjectURL(file));
  return previews.get(file);
}

/** A small preview of a chosen file; a file the browser cannot show (not an image) leaves a blank. */
const thumbnail = (file) => h("img", { src: preview(file), alt: "", onerror: (event) => event.target.classList.add("broken") });

function fileRow(file) {
  return h("li.identity-file", { key: preview(file) }, // one per File, even where two share a name
    thumbnail(file),
    h("span.identity-file-name", { title: file.name }, file.name),
    h("small", {}, formatBytes(file.size)),
    h("button.identity-icon-button", { type: "button", title: `Remove ${file.name}`, "aria-label": `Remove ${file.name}`, onclick: () => {
      release(form.files.splice(form.files.indexOf(file), 1));
      changed();
    } }, "×"));
}

async function submit() {
  const name = form.name.trim();
  if (!name) {
    form.message = "Give the profile a name first.";
    changed();
    nameBox.current?.focus();
    return;
  }
  form.sending = true;
  form.message = "";
  changed();
  const files = [...form.files];
  try {
    const { job, refused } = await createProfile(name, files, form.overwrite, form.kind);
    const previous = [...form.sent, ...form.refused.map((r) => r.file)];
    const skipped = new Set(refused.map((r) => r.index));
    form.sent = files.filter((_, index) => !skipped.has(index)); // in the order of the job's photos
    form.refused = refused.map((r) => ({ ...r, file: files[r.index] }));
    form.files = [];
    release(previous);
    form.jobId = job.job_id;
    updateJob(job); // the websocket may have brought newer snapshots already; then this one is ignored
    poll(job.job_id);
  } catch (error) {
    form.message = `Upload refused: ${error.message}`;
  } finally {
    form.sending = false;
    changed();
  }
}

/** Polls while the job runs, in case a websocket message is missed (a reconnect, a closed laptop lid). */
async function poll(jobId) {
  while (!FINISHED.has(state.jobs.get(jobId)?.status)) {
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    try {
      await updateJob(await getJob(jobId));
    } catch (error) {
      form.message = `Lost track of the training: ${error.message}`;
      changed();
      return;
    }
  }
}

function jobView() {
  const job = form.jobId && state.jobs.get(form.jobId);
  if (!job) return null;
  const steps = job.status === STATUS.ERROR ? [...STEPS.slice(0, -1), STATUS.ERROR] : STEPS;
  const current = steps.indexOf(job.status);
  return [
    h("div.identity-job-title", {}, h("strong", {}, job.name), h("small", {}, job.profile_id),
      FINISHED.has(job.status) ? h("button.identity-icon-button.identity-dismiss", { type: "button", title: "Dismiss",
        onclick: dismiss }, "×") : null),
    h("ol.identity-steps", {}, steps.map((step, index) => h(`li.${index < current ? "done" : index === current ? "current" : "todo"}`,
      { "data-step": step }, step.replace("_", " ")))),
    h("progress.identity-progress", { max: 1, value: job.progress }),
    h(`div.identity-job-status.${job.status.toLowerCase()}`, { "data-status": job.status }, `${job.status}: ${job.message}`),
    job.warnings.map((warning) => h("div.identity-warning", {}, warning)),
    h("ul.identity-verdicts", {}, job.photos.map((photo, index) => verdictRow(photo, form.sent[index])),
      form.refused.map(({ name, reason, file }) => verdictRow({ verdict: VERDICT.rejected, code: "refused", path: name, reason }, file))),
  ];
}

function dismiss() {
  form.jobId = null;
  release([...form.sent.splice(0), ...form.refused.splice(0).map((r) => r.file)]);
  changed();
}

function verdictRow(photo, file) {
  return h(`li.identity-verdict.${photo.verdict}`, { "data-verdict": photo.verdict, "data-code": photo.code },
    file ? thumbnail(file) : h("span.identity-no-preview"),
    h("span.identity-verdict-mark", { title: photo.verdict }, verdictMark(photo.verdict)),
    h("span.identity-verdict-text", {}, h("strong", {}, photo.path), h("span", {}, photo.reason || "waiting to be checked")));
}
