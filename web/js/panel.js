// The "Identity" sidebar tab: the new-profile form and the gallery of profiles, with their training status,
// details (report, calibration, reference portraits, the Phota link), rename and delete (each confirmed in place).
import { app } from "../../../scripts/app.js";
import { deleteProfile, getPhotaLink, getProfile, imageURL, kindNote, linkPhota, onTrainingEvent, renameProfile, STATUS,
  unlinkPhota } from "./api.js";
import { formatDate, h, loadStyles, plural, render } from "./dom.js";
import { changed, refreshProfiles, runningJobs, state, subscribe, updateJob } from "./store.js";
import { uploadForm, verdictMark } from "./upload.js";

const modes = new Map(); // profile id → { mode: "rename" | "delete", draft, error }
const open = new Set(); // profile ids whose details are shown
const details = new Map(); // profile id → details from the server (or { error })
const phota = new Map(); // profile id → { phota_id, status, message, error, draft, busy } (the Phota link)
let root = null; // the sidebar element the panel is drawn in
let unmount = null;

app.registerExtension({
  name: "identity-layer.panel",
  setup() {
    loadStyles();
    onTrainingEvent(updateJob);
    app.extensionManager.registerSidebarTab({
      id: "identity-profiles",
      icon: "pi pi-id-card",
      title: "Identity",
      tooltip: "Identity profiles: train from photos, rename, delete",
      type: "custom",
      render: mount,
      destroy: () => {
        unmount?.();
        root = null;
      },
    });
  },
});

function mount(element) {
  root = element;
  unmount?.();
  unmount = subscribe(renderAll);
  renderAll();
  refreshProfiles();
}

/** Draws the whole panel from the state: on store changes, and on the panel's own (a mode, an opened card). */
function renderAll() {
  if (!root) return;
  render(h("div.identity-panel", {},
    h("header.identity-header", {}, h("h3", {}, "Identity profiles"),
      h("button.identity-icon-button", { type: "button", title: "Reload the profile list", "aria-label": "Reload the profile list", onclick: refreshProfiles },
        h("i.pi.pi-refresh"))),
    uploadForm(),
    h("h4", {}, "Profiles"),
    h("ul.identity-gallery", {}, galleryItems())), root);
}

/** The cards, each keyed by its profile id: a card is the same element from its first progress tick to its deletion. */
function galleryItems() {
  const jobs = runningJobs();
  const known = new Set(state.profiles.map((p) => p.id));
  const empty = state.loaded && !state.profiles.length && !jobs.length;
  return [
    state.error ? h("li.identity-message.error", {}, state.error) : null,
    state.loaded ? null : h("li.identity-empty", {}, "Loading…"),
    empty ? h("li.identity-empty", {}, "No profiles yet: train one above.") : null,
    jobs.filter((job) => !known.has(job.profile_id)).map(jobCard),
    state.profiles.map((profile) => profileCard(profile, jobs.find((job) => job.profile_id === profile.id))),
  ];
}

const percent = (job) => `${Math.round(job.progress * 100)}%`;

function jobCard(job) {
  return h("li.identity-card.training", { key: job.profile_id, "data-profile-id": job.profile_id },
    h("div.identity-thumb.placeholder", {}, h("i.pi.pi-spin.pi-spinner")),
    h("div.identity-card-body", {},
      h("div.identity-card-name", {}, job.name),
      h("small.identity-card-id", {}, job.profile_id),
      h("span.identity-badge.training", {}, `${job.status.replace("_", " ")} ${percent(job)}`),
      h("div.identity-card-meta", {}, job.message)));
}

function profileCard(profile, job) {
  const mode = modes.get(profile.id);
  const rejected = profile.photos_rejected ? ` · ${profile.photos_rejected} rejected` : "";
  return h("li.identity-card", { key: profile.id, "data-profile-id": profile.id, "data-created": profile.created },
    h("img.identity-thumb", { src: imageURL(profile.thumbnail), alt: `${profile.name}`, loading: "lazy",
      onclick: () => toggleDetails(profile) }),
    h("div.identity-card-body", {},
      mode?.mode === "rename" ? renameEditor(profile, mode) : h("div.identity-card-name", { title: profile.name }, profile.name),
      h("small.identity-card-id", {}, profile.id),
      job ? h("span.identity-badge.training", {}, `${job.status.replace("_", " ")} ${percent(job)}`)
        : h("span.identity-badge.ready", {}, STATUS.READY),
      h(`span.identity-badge.kind.${profile.kind}`, { title: kindNote(profile.kind) }, profile.kind),
      h("div.identity-card-meta", {}, `${plural(profile.photos_accepted, "photo")}${rejected} · threshold ${profile.threshold?.toFixed(2)}`
        + (profile.confidence === "low" ? " · low confidence" : "")),
      h("div.identity-card-meta", {}, `${profile.engine} · ${formatDate(profile.created)}`),
      mode?.mode === "delete" ? deleteConfirm(profile) : actions(profile, Boolean(job)),
      mode?.error ? h("div.identity-message.error", { role: "alert" }, mode.error) : null,
      open.has(profile.id) ? detailsView(profile) : null));
}

function actions(profile, training) {
  const button = (label, onclick, extra = "") => h(`button.identity-link-button${extra}`, { type: "button", onclick, disabled: training }, label);
  return h("div.identity-card-actions", {},
    h("button.identity-link-button", { type: "button", onclick: () => toggleDetails(profile) }, open.has(profile.id) ? "Hide details" : "Details"),
    button("Rename", () => setMode(profile.id, { mode: "rename", draft: profile.name }), ".rename"),
    button("Delete", () => setMode(profile.id, { mode: "delete" }), ".delete"));
}

function setMode(id, mode) {
  if (mode) modes.set(id, mode);
  else modes.delete(id);
  changed();
  if (mode?.mode === "rename") root?.querySelector(`[data-profile-id="${CSS.escape(id)}"] .identity-rename-input`)?.focus();
}

function renameEditor(profile, mode) {
  const save = async () => {
    try {
      await renameProfile(profile.id, modes.get(profile.id).draft);
      modes.delete(profile.id);
      await app.refreshComboInNodes(); // the pickers (they save ids and show the new name), and this gallery
    } catch (error) {
      modes.set(profile.id, { ...modes.get(profile.id), error: error.message });
    }
    changed();
  };
  const input = h("input.identity-rename-input", { type: "text", value: mode.draft, maxLength: 100, "aria-label": "New name",
    oninput: (event) => (mode.draft = event.target.value),
    onkeydown: (event) => (event.key === "Enter" ? save() : event.key === "Escape" && setMode(profile.id, null)) });
  return h("div.identity-rename", {}, input,
    h("button.identity-link-button.save", { type: "button", onclick: save }, "Save"),
    h("button.identity-link-button", { type: "button", onclick: () => setMode(profile.id, null) }, "Cancel"));
}

function deleteConfirm(profile) {
  const confirm = async () => {
    try {
      await deleteProfile(profile.id);
      modes.delete(profile.id);
      open.delete(profile.id);
      details.delete(profile.id);
      await app.refreshComboInNodes();
    } catch (error) {
      modes.set(profile.id, { ...modes.get(profile.id), error: error.message });
    }
    changed();
  };
  return h("div.identity-confirm", { role: "alertdialog" },
    h("span", {}, `Delete "${profile.name}" for good? Workflows that load it will stop working.`),
    h("button.identity-link-button.danger.confirm-delete", { type: "button", onclick: confirm }, "Delete"),
    h("button.identity-link-button", { type: "button", onclick: () => setMode(profile.id, null) }, "Cancel"));
}

async function toggleDetails(profile) {
  if (open.delete(profile.id)) return changed();
  open.add(profile.id);
  changed();
  const key = `${profile.id}@${profile.created}`;
  refreshPhota(profile.id);
  if (details.get(profile.id)?.key === key) return;
  try {
    details.set(profile.id, { key, ...(await getProfile(profile.id)) });
  } catch (error) {
    details.set(profile.id, { key, error: error.message });
  }
  changed();
}

function detailsView(profile) {
  const data = details.get(profile.id);
  if (!data) return h("div.identity-details", {}, "Loading…");
  if (data.error) return h("div.identity-details.identity-message.error", {}, data.error);
  const calibration = data.calibration ?? {};
  const loo = calibration.leave_one_out ?? {};
  return h("div.identity-details", {},
    h("div.identity-portraits", {}, data.portraits.map((portrait) =>
      h("img", { key: portrait.url, src: imageURL(portrait.url), alt: "", title: portrait.photo ? `from ${portrait.photo}` : "" }))),
    h("dl", {},
      h("dt", {}, "Threshold"), h("dd", {}, `${calibration.threshold} (engine ${calibration.engine_threshold}, ${calibration.confidence} confidence)`),
      loo.n ? [h("dt", {}, "Self-similarity"), h("dd", {}, `${loo.mean} ± ${loo.std} over ${loo.n} photos`)] : null,
      h("dt", {}, "Engine"), h("dd", {}, data.engine_info?.name ?? data.engine),
      h("dt", {}, "Kind"), h("dd", {}, data.report?.measures ? `${data.kind} (scores measure ${data.report.measures})` : data.kind)),
    h("ul.identity-verdicts.compact", {}, (data.report?.photos ?? []).map((photo) =>
      h(`li.identity-verdict.${photo.verdict}`, {},
        h("span.identity-verdict-mark", { title: photo.verdict }, verdictMark(photo.verdict)),
        h("span.identity-verdict-text", {}, h("strong", {}, photo.path), h("span", {}, photo.reason))))),
    (data.report?.warnings ?? []).map((warning) => h("div.identity-warning", {}, warning)),
    photaView(profile));
}

async function refreshPhota(id, change = () => getPhotaLink(id)) {
  phota.set(id, { ...phota.get(id), busy: true });
  changed();
  try {
    const answer = await change();
    phota.set(id, { draft: phota.get(id)?.draft ?? "", ...answer }); // what was typed meanwhile stays
  } catch (error) {
    phota.set(id, { ...phota.get(id), busy: false, failed: error.message });
  }
  changed();
}

/** Phota knows people by its own profiles: link this profile to the Phota profile of the same person. */
function photaView(profile) {
  const link = phota.get(profile.id);
  const section = (...children) => h("section.identity-phota", { "aria-label": "Phota link" }, h("strong", {}, "Phota"), ...children);
  if (!link || (link.busy && link.phota_id === undefined)) return section(h("span", {}, "Checking…"));
  const failed = link.failed ? h("div.identity-message.error", { role: "alert" }, link.failed) : null;
  if (link.phota_id) {
    const state = link.error ? `status unknown: ${link.error}` : `${link.status}${link.message ? ` (${link.message})` : ""}`;
    return section(h("span.identity-phota-state", {}, `Phota profile ${link.phota_id}: ${state}`),
      h("button.identity-link-button", { type: "button", disabled: link.busy,
        onclick: () => refreshPhota(profile.id, () => unlinkPhota(profile.id).then(() => ({ phota_id: null }))) }, "Unlink"),
      failed);
  }
  const submit = () => refreshPhota(profile.id, () => linkPhota(profile.id, (phota.get(profile.id).draft ?? "").trim()));
  const input = h("input.identity-phota-input", { type: "text", value: link.draft ?? "", maxLength: 128,
    placeholder: "Phota profile id", "aria-label": "Phota profile id", oninput: (event) => (phota.get(profile.id).draft = event.target.value),
    onkeydown: (event) => event.key === "Enter" && submit() });
  return section(h("div.identity-rename", {}, input,
    h("button.identity-link-button", { type: "button", disabled: link.busy, onclick: submit }, "Link")),
    h("small", {}, "For phota/… base models; the id is what Phota's POST /v1/phota/profiles/add returned."),
    failed);
}
