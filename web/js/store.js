// What the panel and the node widgets share: the profile list and the training jobs, with change listeners.
// Jobs arrive over the websocket and from polling; a job's end is handled once, whichever brings it first.
import { app } from "../../../scripts/app.js";
import { FINISHED, listProfiles, STATUS } from "./api.js";

export const state = { profiles: [], jobs: new Map(), loaded: false, error: "" };
const listeners = new Set();
const ended = new Set();

export function subscribe(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** Tells every view to redraw: after a store change, and after a view's own (a chosen photo, an opened card). */
export function changed() {
  for (const listener of listeners) listener(state);
}

export async function refreshProfiles() {
  try {
    const { profiles, jobs } = await listProfiles();
    state.profiles = profiles;
    for (const job of jobs) rememberJob(job);
    state.error = "";
  } catch (error) {
    state.error = error.message;
  }
  state.loaded = true;
  changed();
}

function rememberJob(snapshot) {
  const known = state.jobs.get(snapshot.job_id);
  if (known && known.updated > snapshot.updated) return false; // an older poll answer arriving late
  state.jobs.set(snapshot.job_id, snapshot);
  return true;
}

/** A job snapshot from the websocket or a poll. When it ends: reload the list, and the node pickers on READY. */
export async function updateJob(snapshot) {
  if (!rememberJob(snapshot)) return;
  changed();
  if (!FINISHED.has(snapshot.status) || ended.has(snapshot.job_id)) return;
  ended.add(snapshot.job_id);
  toast(snapshot);
  if (snapshot.status === STATUS.READY) await app.refreshComboInNodes(); // its extension hook reloads the list
  else await refreshProfiles();
}

/** The name form the server compares (NFKC, case-folded; near enough in the browser). */
const nameKey = (name) => String(name).normalize("NFKC").toLowerCase().normalize("NFKC");

/** The profile a saved picker value means: its id, or (workflows saved before ids) its label, name or a former name. */
export function profileFor(value) {
  if (value == null) return undefined;
  const key = nameKey(value);
  return state.profiles.find((p) => p.id === value) ?? state.profiles.find((p) => p.label === value)
    ?? state.profiles.find((p) => nameKey(p.name) === key) ?? state.profiles.find((p) => p.former_names?.includes(key));
}
export const runningJobs = () => [...state.jobs.values()].filter((job) => !FINISHED.has(job.status));

function toast(job) {
  const ready = job.status === STATUS.READY;
  app.extensionManager?.toast?.add({
    severity: ready ? "success" : "error",
    summary: ready ? `Profile "${job.name}" is ready` : `Training "${job.name}" failed`,
    detail: job.message,
    life: ready ? 4000 : 8000,
  });
}
