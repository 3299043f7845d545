// The "new profile" flow: name, photos by drag-and-drop (or a file picker), then the training job live:
// its status (VALIDATING → QUEUING → IN_PROGRESS → READY | ERROR), progress, and every photo's verdict and reason.
// The server decides what is acceptable; a refused upload shows its sentence here.
import { createProfile, FINISHED, getJob } from "./api.js";
import { fill, formatBytes, h } from "./dom.js";
import { state, subscribe, updateJob } from "./store.js";

const STEPS = ["VALIDATING", "QUEUING", "IN_PROGRESS", "READY"];
const POLL_MS = 1000;

const form = { files: [], sent: [], jobId: null, message: "", sending: false };
const previews = new Map(); // File → object URL
let view = null;

/** The form's element: made once, so that a running job and chosen photos survive closing the panel. */
export function uploadForm() {
  if (!view) {
    view = build();
    subscribe(renderJob);
  }
  return view.root;
}

function build() {
  const input = h("input.identity-file-input", { type: "file", multiple: true, hidden: true, onchange: () => {
    addFiles(input.files);
    input.value = "";
  } });
  const name = h("input.identity-name-input", { type: "text", placeholder: "Person's name, e.g. Alice Smith", maxLength: 100 });
  const overwrite = h("input.identity-overwrite", { type: "checkbox" });
  const kind = h("select.identity-kind-input", {},
    ...[["person", "Person"], ["pet", "Cat or dog (detect which)"], ["cat", "Cat"], ["dog", "Dog"]]
      .map(([value, label]) => h("option", { value }, label)));
  const drop = h("div.identity-dropzone", { tabIndex: 0, role: "button", onclick: () => input.click(),
    onkeydown: (event) => (event.key === "Enter" || event.key === " ") && input.click(),
    // stopPropagation: ComfyUI's own page-wide drop handler would try to open the photos as workflows
    ondragover: (event) => { event.preventDefault(); event.stopPropagation(); drop.classList.add("over"); },
    ondragleave: () => drop.classList.remove("over"),
    ondrop: (event) => {
      event.preventDefault();
      event.stopPropagation();
      drop.classList.remove("over");
      addFiles(event.dataTransfer.files);
    } },
  h("i.pi.pi-images"), h("span", {}, "Drop 1–50 photos of the person here, or click to choose them"),
  h("small", {}, "Group photos are fine: the person seen most often is the subject."));
  const files = h("ul.identity-files");
  const train = h("button.identity-train-button.p-button.p-button-sm", { type: "button", onclick: () => submit() }, "Train profile");
  const clear = h("button.identity-clear-button.p-button.p-button-sm.p-button-secondary", { type: "button", onclick: () => {
    release(form.files.splice(0));
    form.message = "";
    renderFiles();
  } }, "Clear");
  const message = h("div.identity-message", { role: "alert" });
  const job = h("div.identity-job");
  const root = h("section.identity-new", {},
    h("h4", {}, "New profile"),
    h("label.identity-field", {}, "Name", name),
    h("label.identity-field", {}, "Of a", kind),
    drop, input, files,
    h("label.identity-check", {}, overwrite, "Retrain the profile of that name if it exists (keeps its id)"),
    h("div.identity-actions", {}, train, clear),
    message, job);
  view = { root, name, kind, overwrite, files, train, message, job };
  renderFiles();
  return view;
}

function addFiles(list) {
  form.files.push(...Array.from(list ?? []));
  form.message = "";
  renderFiles();
}

/** Frees the previews of files that are neither chosen nor shown with a job's verdicts. */
function release(files) {
  for (const file of files) {
    if (form.files.includes(file) || form.sent.includes(file)) continue;
    URL.revokeObjectURL(previews.get(file));
    previews.delete(file);
  }
}

/** A small preview of a chosen file; a file the browser cannot show (not an image) leaves a blank. */
function thumbnail(file) {
  if (!previews.has(file)) previews.set(file, URL.createObjectURL(file));
  return h("img", { src: previews.get(file), alt: "", onerror: (event) => event.target.classList.add("broken") });
}

function renderFiles() {
  fill(view.files, form.files.map((file) => h("li.identity-file", {},
    thumbnail(file),
    h("span.identity-file-name", { title: file.name }, file.name),
    h("small", {}, formatBytes(file.size)),
    h("button.identity-icon-button", { type: "button", title: `Remove ${file.name}`, "aria-label": `Remove ${file.name}`, onclick: () => {
      release(form.files.splice(form.files.indexOf(file), 1));
      renderFiles();
    } }, "×"))));
  const running = form.jobId && !FINISHED.has(state.jobs.get(form.jobId)?.status);
  view.train.disabled = form.sending || running || !form.files.length;
  view.train.textContent = form.sending ? "Uploading…" : "Train profile";
  view.message.textContent = form.message;
  view.message.classList.toggle("error", Boolean(form.message));
}

async function submit() {
  const name = view.name.value.trim();
  if (!name) {
    form.message = "Give the profile a name first.";
    renderFiles();
    view.name.focus();
    return;
  }
  form.sending = true;
  form.message = "";
  renderFiles();
  const files = [...form.files];
  try {
    const job = await createProfile(name, files, view.overwrite.checked, view.kind.value);
    const previous = form.sent;
    form.sent = files;
    form.files = [];
    release(previous);
    form.jobId = job.job_id;
    updateJob(job); // the websocket may have brought newer snapshots already; then this one is ignored
    renderJob();
    poll(job.job_id);
  } catch (error) {
    form.message = `Upload refused: ${error.message}`;
  } finally {
    form.sending = false;
    renderFiles();
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
      renderFiles();
      return;
    }
  }
}

function renderJob() {
  const job = form.jobId && state.jobs.get(form.jobId);
  if (!job) {
    fill(view.job);
    return;
  }
  const steps = job.status === "ERROR" ? [...STEPS.slice(0, -1), "ERROR"] : STEPS;
  const current = steps.indexOf(job.status);
  fill(view.job,
    h("div.identity-job-title", {}, h("strong", {}, job.name), h("small", {}, job.profile_id),
      FINISHED.has(job.status) ? h("button.identity-icon-button.identity-dismiss", { type: "button", title: "Dismiss",
        onclick: dismiss }, "×") : null),
    h("ol.identity-steps", {}, steps.map((step, index) => h(`li.${index < current ? "done" : index === current ? "current" : "todo"}`,
      { dataset: { step } }, step.replace("_", " ")))),
    h("progress.identity-progress", { max: 1, value: job.progress }),
    h(`div.identity-job-status.${job.status.toLowerCase()}`, { dataset: { status: job.status } }, `${job.status}: ${job.message}`),
    job.warnings.map((warning) => h("div.identity-warning", {}, warning)),
    h("ul.identity-verdicts", {}, job.photos.map((photo, index) => verdictRow(photo, form.sent[index]))));
  renderFiles();
}

function dismiss() {
  form.jobId = null;
  release(form.sent.splice(0));
  renderJob();
}

function verdictRow(photo, file) {
  const mark = { accepted: "✓", rejected: "✗", pending: "…" }[photo.verdict] ?? "?";
  return h(`li.identity-verdict.${photo.verdict}`, { dataset: { verdict: photo.verdict, code: photo.code } },
    file ? thumbnail(file) : h("span.identity-no-preview"),
    h("span.identity-verdict-mark", { title: photo.verdict }, mark),
    h("span.identity-verdict-text", {}, h("strong", {}, photo.path), h("span", {}, photo.reason || "waiting to be checked")));
}
