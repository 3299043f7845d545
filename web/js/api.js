// The Identity Layer's HTTP routes (nodes/routes.py), as promises. A refusal rejects with the server's sentence.
import { api } from "../../../scripts/api.js";

async function call(path, options = {}) {
  let response;
  try {
    response = await api.fetchApi(path, options);
  } catch (error) {
    throw new Error(`could not reach ComfyUI (${error.message}); is the server still running?`);
  }
  const body = await response.json().catch(() => null);
  if (!response.ok) throw new Error(body?.error ?? `the server answered ${response.status} ${response.statusText}`);
  return body;
}

/** The names the Python defines (GET /identity/constants), never repeated here: the training event, the job
 * statuses by name in lifecycle order, those that end a job, the profile kinds ({kind, label, note}) and the photo
 * verdicts. */
const constants = await call("/identity/constants");
export const { event: TRAINING_EVENT, statuses: STATUS, kinds: KINDS, verdicts: VERDICT } = constants;
export const FINISHED = new Set(constants.finished);
export const kindNote = (kind) => KINDS.find((entry) => entry.kind === kind)?.note ?? kind;

const profilePath = (id) => `/identity/profiles/${encodeURIComponent(id)}`;

export const listProfiles = () => call("/identity/profiles");
export const getProfile = (id) => call(profilePath(id));
export const getJob = (jobId) => call(`/identity/jobs/${encodeURIComponent(jobId)}`);
export const deleteProfile = (id) => call(profilePath(id), { method: "DELETE" });

const postJSON = (path, body) =>
  call(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });

export const renameProfile = (id, name) => postJSON(`${profilePath(id)}/rename`, { name });

/** The Phota profile a local profile is linked to, with Phota's training status (or why it cannot be had). */
export const getPhotaLink = (id) => call(`${profilePath(id)}/phota`);
export const unlinkPhota = (id) => call(`${profilePath(id)}/phota`, { method: "DELETE" });

/** Links once Phota knows the id on this account; resolves with its status. */
export const linkPhota = (id, photaId) => postJSON(`${profilePath(id)}/phota`, { phota_id: photaId });

/** Starts training from File objects; resolves with the job's first snapshot (status VALIDATING) and the files the
 * server refused ({index, name, reason}: the others are trained on). */
export async function createProfile(name, files, overwrite, kind) {
  const form = new FormData();
  form.append("name", name);
  form.append("overwrite", overwrite ? "true" : "false");
  form.append("kind", kind);
  for (const file of files) form.append("photos", file, file.name);
  return call("/identity/profiles", { method: "POST", body: form });
}

/** A route path (as the server lists them) as a URL the browser can load. */
export const imageURL = (path) => api.apiURL(path);

export function onTrainingEvent(callback) {
  api.addEventListener(TRAINING_EVENT, (event) => callback(event.detail));
}
