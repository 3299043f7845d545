// A tiny element builder: h("div.card", {onclick, title}, child, ...). Text always goes in as text, never HTML.
export function h(tag, props = {}, ...children) {
  const [name, ...classes] = tag.split(".");
  const element = document.createElement(name || "div");
  if (classes.length) element.className = classes.join(" ");
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) element.addEventListener(key.slice(2).toLowerCase(), value);
    else if (key === "dataset") Object.assign(element.dataset, value);
    else if (key in element) element[key] = value;
    else element.setAttribute(key, value === true ? "" : value);
  }
  element.append(...present(children));
  return element;
}

/** Replaces an element's children; nested arrays are flattened and null, undefined and false are skipped.
 * A child equal to one already shown keeps the one shown, in place, so a redraw (every training progress tick
 * redraws the gallery) keeps focus, typed text, scroll and loaded images where nothing changed. A kept child keeps
 * its listeners: they must find their data by identity (an id, the object), never by position. */
export function fill(element, ...children) {
  const shown = [...element.childNodes];
  const wanted = present(children).map((child) => {
    const node = child instanceof Node ? child : document.createTextNode(String(child));
    const same = shown.findIndex((old) => old && old.isEqualNode(node));
    return same < 0 ? node : shown.splice(same, 1, null)[0];
  });
  wanted.forEach((node, index) => element.childNodes[index] !== node && element.insertBefore(node, element.childNodes[index] ?? null));
  while (element.childNodes.length > wanted.length) element.lastChild.remove();
  return element;
}

const present = (children) => children.flat(Infinity).filter((child) => child !== null && child !== undefined && child !== false);

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
  document.head.append(h("link", { rel: "stylesheet", href: STYLES }));
}
