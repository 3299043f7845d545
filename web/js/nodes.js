// On the canvas: Profile Load shows the chosen profile's thumbnail, ArcFace Score shows its per-subject scores
// after a run, and the profile pickers refresh after any training (panel or Profile Train node).
import { app } from "../../../scripts/app.js";
import { imageURL } from "./api.js";
import { fill, h, loadStyles, plural } from "./dom.js";
import { profileByLabel, refreshProfiles, state, subscribe } from "./store.js";

const THUMB_HEIGHT = 150;
const ROW_HEIGHT = 22;

app.registerExtension({
  name: "identity-layer.nodes",
  setup() {
    loadStyles();
  },
  beforeRegisterNodeDef(nodeType, nodeData) {
    if (nodeData.name === "IdentityProfileLoad") addThumbnail(nodeType);
    if (nodeData.name === "IdentityArcFaceScore") addScoreTable(nodeType);
    if (nodeData.name === "IdentityProfileTrain") chain(nodeType.prototype, "onExecuted", () => app.refreshComboInNodes());
  },
  async refreshComboInNodes() {
    await refreshProfiles();
  },
});

function chain(target, method, after) {
  const before = target[method];
  target[method] = function (...args) {
    const result = before?.apply(this, args);
    after.apply(this, args);
    return result;
  };
}

/** A DOM widget that is only shown: kept out of saved workflows and out of the prompt. */
function addView(node, name, element, height) {
  const widget = node.addDOMWidget(name, name, element, { serialize: false, hideOnZoom: false, getMinHeight: height,
    getMaxHeight: height });
  widget.serialize = false;
  return widget;
}

function fitNode(node) {
  const [width, height] = node.computeSize();
  node.setSize([Math.max(node.size[0], width), Math.max(node.size[1], height)]);
  node.setDirtyCanvas(true, true);
}

// ----- Profile Load: the thumbnail of the chosen profile ---------------------------------------------------

function addThumbnail(nodeType) {
  chain(nodeType.prototype, "onNodeCreated", function () {
    const image = h("img", { alt: "" });
    const caption = h("div.identity-node-caption");
    const view = h("div.identity-node-thumb", {}, image, caption);
    addView(this, "identity_thumbnail", view, () => THUMB_HEIGHT);
    const combo = this.widgets.find((widget) => widget.name === "profile");
    const show = () => showThumbnail(combo?.value, image, caption);
    if (combo) chain(combo, "callback", show);
    const unsubscribe = subscribe(show);
    chain(this, "onRemoved", unsubscribe);
    chain(this, "onConfigure", () => {
      show();
      fitNode(this);
    });
    this.identityShowThumbnail = show;
    state.loaded ? show() : refreshProfiles();
    fitNode(this);
  });
}

function showThumbnail(label, image, caption) {
  const profile = profileByLabel(label);
  image.hidden = !profile;
  if (profile) {
    const src = imageURL(profile.thumbnail);
    if (image.getAttribute("src") !== src) image.src = src;
    image.alt = profile.name;
    caption.textContent = `${profile.kind} · ${plural(profile.photos_accepted, "photo")} · threshold ${profile.threshold?.toFixed(2)} · ${profile.engine}`;
  } else {
    caption.textContent = !state.loaded ? "" : label ? `No profile "${label}": pick another, or train it in the Identity panel.`
      : "No profiles yet: train one in the Identity panel (sidebar).";
  }
}

/** After a rename, Profile Load nodes that pointed at the old name point at the new one. */
export function retargetProfileLoads(oldLabel, newLabel) {
  if (!newLabel || oldLabel === newLabel) return;
  for (const node of app.graph?.nodes ?? []) {
    if (node.comfyClass !== "IdentityProfileLoad") continue;
    const combo = node.widgets?.find((widget) => widget.name === "profile");
    if (combo?.value !== oldLabel) continue;
    combo.value = newLabel;
    node.identityShowThumbnail?.();
  }
  app.graph?.setDirtyCanvas(true, true);
}

// ----- ArcFace Score: per image, each subject's similarity (0 means not found) -----------------------------

function addScoreTable(nodeType) {
  chain(nodeType.prototype, "onNodeCreated", function () {
    this.identityScores = h("div.identity-node-scores", {}, h("div.identity-node-caption", {}, "Scores appear here after a run."));
    this.identityRows = 1;
    addView(this, "identity_scores", this.identityScores, () => 12 + ROW_HEIGHT * this.identityRows);
  });
  chain(nodeType.prototype, "onExecuted", function (output) {
    const images = output?.identity_scores;
    if (!images || !this.identityScores) return;
    const names = [...new Set(images.flatMap((image) => Object.keys(image.subjects)))];
    this.identityRows = images.length + 1;
    fill(this.identityScores, h("table", {},
      h("thead", {}, h("tr", {}, h("th", {}, "image"), names.map((name) => h("th", { title: name }, name)), h("th", {}, "weakest"))),
      h("tbody", {}, images.map((image) => h("tr", {},
        h("td", {}, `#${image.index + 1}`),
        names.map((name) => scoreCell(image.subjects[name])),
        scoreCell(image.score))))));
    fitNode(this);
  });
}

function scoreCell(score) {
  const found = typeof score === "number" && score > 0;
  return h(`td.identity-score.${found ? "found" : "missing"}`, { title: found ? "similarity to the profile" : "not found in this image" },
    found ? score.toFixed(2) : "—");
}
