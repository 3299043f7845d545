// Rendering for the panel and the node widgets: a view is a function of the state, drawn with Preact (vendored in
// vendor/preact.js), which updates what is shown in place. An element stays the same element for as long as it is
// shown, so a redraw (every training progress tick, every list reload) keeps focus, typed text, scroll, open
// details and loaded images; listeners are the latest render's, so they always see the current data.
import { createElement, createRef, render } from "./vendor/preact.js";

export { createRef, render };

/** h("li.identity-card.ready", {key, onclick, title}, child, ...): Preact's element with classes in the tag.
 * Children may be nested arrays; null, undefined and false are skipped; text always goes in as text, never HTML.
 * Siblings that come and go (profile cards, files) carry a `key`, so each keeps its element wherever it moves. */
export function h(tag, props, ...children) {
  const [name, ...classes] = tag.split(".");
  return createElement(name || "div", classes.length ? { ...props, class: classes.join(" ") } : props, ...children);
}

export const plural = (count, word) => `${count} ${word}${count === 1 ? "" : "s"}`;

export function formatBytes(size) {
  if (size < 1024) return `${size} B`;
  if (size < 1024 * 1024) return `${(size / 1024).toFixed(0)} kB`;
  return `${(size / 1024 / 1024).toFixed(1)} MB`;
}

export function formatDate(iso) {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? "" : date.toLocaleDateString(undefined, { year: "numeric", month: "short", day: "numeric" });
}

const STYLES = new URL("../identity.css", import.meta.url).href;

/** Adds the pack's stylesheet once, whichever extension asks first. */
export function loadStyles() {
  if (document.querySelector(`link[href="${STYLES}"]`)) return;
  const link = document.createElement("link");
  link.rel = "stylesheet";
  link.href = STYLES;
  document.head.append(link);
}
