// On the canvas: Profile Load shows the chosen profile's thumbnail, ArcFace Score shows its per-subject scores
// after a run, and the profile pickers refresh after any training (panel or Profile Train node).
import { app } from "../../../scripts/app.js";
import { imageURL } from "./api.js";
import { h, loadStyles, plural, render } from "./dom.js";
import { profileFor, refreshProfiles, state, subscribe } from "./store.js";

const THUMB_HEIGHT = 150;
const ROW_HEIGHT = 22;
const PROFILES_WAIT_MS = 10000;

app.registerExtension({
  name: "identity-layer.nodes",
  async setup() {
    loadStyles();
    // The list before any node exists: ComfyUI restores the workflow after every extension's setup, and 1.32's
    // Nodes 2.0 picker works its label out once, when it is drawn. Bounded, so that a slow answer never holds the app.
    await Promise.race([refreshProfiles(), new Promise((done) => setTimeout(done, PROFILES_WAIT_MS))]);
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

/** The element a node widget's view is drawn in. */
function viewElement(className) {
  const element = document.createElement("div");
  element.className = className;
  return element;
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

// ----- Profile Load: the picker shows names for the ids it saves, and the chosen profile's thumbnail ---------

/** The picker's values are ids; it shows each as its label. A value saved as a name (older workflows) becomes the
 * id of the profile that has, or had, that name, so that the workflow is saved with the id next time.
 * The canvas and 1.58's Nodes 2.0 select read `getOptionLabel`; 1.32's Nodes 2.0 draws a PrimeVue Select given the
 * widget's options as its props, and that Select reads `optionLabel` (a field name, or a function of the value). */
function showNames(combo) {
  const label = (value) => profileFor(value)?.label ?? value ?? "";
  Object.assign(combo.options, { getOptionLabel: label, optionLabel: label }); // before Nodes 2.0 copies options
}

function saveIds(node, combo) {
  const profile = profileFor(combo?.value);
  // setValue, not an assignment: Nodes 2.0 redraws the widget on its change events
  if (profile && combo.value !== profile.id) combo.setValue(profile.id, { node, canvas: app.canvas });
}

function addThumbnail(nodeType) {
  chain(nodeType.prototype, "onNodeCreated", function () {
    const view = viewElement("identity-node-thumb");
    addView(this, "identity_thumbnail", view, () => THUMB_HEIGHT);
    const combo = this.widgets.find((widget) => widget.name === "profile");
    if (combo) showNames(combo);
    const show = () => {
      saveIds(this, combo);
      render(thumbnailView(combo?.value), view);
      this.setDirtyCanvas(true, true); // the picker draws the (maybe new) name
    };
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

function thumbnailView(value) {
  const profile = profileFor(value);
  const caption = profile ? `${profile.kind} · ${plural(profile.photos_accepted, "photo")} · threshold ${profile.threshold?.toFixed(2)} · ${profile.engine}`
    : !state.loaded ? "" : value ? `No profile "${value}": pick another, or train it in the Identity panel.`
      : "No profiles yet: train one in the Identity panel (sidebar).";
  return [profile ? h("img", { src: imageURL(profile.thumbnail), alt: profile.name }) : null, h("div.identity-node-caption", {}, caption)];
}

// ----- ArcFace Score: per image, each subject's similarity (0 means not found) and the next known person -----

function addScoreTable(nodeType) {
  chain(nodeType.prototype, "onNodeCreated", function () {
    this.identityScores = viewElement("identity-node-scores");
    render(h("div.identity-node-caption", {}, "Scores appear here after a run."), this.identityScores);
    this.identityRows = 1;
    addView(this, "identity_scores", this.identityScores, () => 12 + ROW_HEIGHT * this.identityRows);
  });
  chain(nodeType.prototype, "onExecuted", function (output) {
    const images = output?.identity_scores;
    if (!images || !this.identityScores) return;
    const names = [...new Set(images.flatMap((image) => Object.keys(image.subjects)))];
    this.identityRows = images.length + 1;
    render(h("table", {},
      h("thead", {}, h("tr", {}, h("th", {}, "image"), names.map((name) => h("th", { title: name }, name)), h("th", {}, "weakest"))),
      h("tbody", {}, images.map((image) => h("tr", {},
        h("td", {}, `#${image.index + 1}`),
        names.map((name) => scoreCell(image.subjects[name], image.next?.[name])),
        scoreCell(image.score))))), this.identityScores);
    fitNode(this);
  });
}

function scoreCell(score, next) {
  const found = typeof score === "number" && score > 0;
  const title = found ? "similarity to the profile" : "not found in this image";
  return h(`td.identity-score.${found ? "found" : "missing"}`, { title: next ? `${title}; ${next}` : title },
    found ? score.toFixed(2) : "—", next ? h("span.identity-score-next", {}, ` · ${next}`) : null);
}
