"""The bounding-box widget of a ``boxes`` project: draw, move, resize, relabel and delete boxes on an image, then submit.

A Streamlit components v2 component (no iframe; :func:`box_input` mounts it). The browser keeps the boxes while the
labeller works, so drawing costs no script run; only a submit does (a trigger value: it reaches Python in exactly one
run, the one it started, and inside a fragment it reruns only the fragment). Boxes travel in image pixels; the page
scales them to the displayed image and rounds each finished box to whole pixels, so what is shown is what is stored.

In the page:

* drag on the image outside every box: a new box, labelled with the label used last (the first option at the start);
* click a box: select it; drag inside it: move it; drag a corner handle: resize it (a box never leaves the image);
* a number key (1..9 then 0, or the ``shortcuts`` given) or a click on a label chip: the selected box takes that
  label, and so do the boxes drawn next (also on the next items); Delete or Backspace removes the selected box; the
  arrow keys move it by a pixel (with Shift by ten); Escape unselects;
* Enter or "Submit": the boxes are submitted; "Nothing to mark" submits ``[]``.

Labels are shown as text (``textContent``), never as HTML: they are user data.

Mount it with a key per item (``key=f"label-boxes-{item_id}"``): the next item then starts from its own ``value``;
the same key with the same data keeps the labeller's boxes across reruns (e.g. after a submit the queue refused).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import streamlit as st

from superintendent import images, marks
from superintendent.app import render
from superintendent.app.keys import number_keys
from superintendent.labels import NO_MATCH, match_option
from superintendent.validation import ValidationError

__all__ = ["box_input"]

MIN_DISPLAY_PIXELS = 500  # a small image's long side is shown at least this big (if the page is that wide)

_CSS = """
:host { display: block; }
.bx-root { font-family: var(--st-font, "Source Sans Pro", sans-serif); color: var(--st-text-color, #31333f);
           font-size: 0.95rem; user-select: none; -webkit-user-select: none; }
.bx-stage { position: relative; overflow: hidden; touch-action: none; cursor: crosshair; outline: none;
            border: 1px solid var(--st-border-color, rgba(49, 51, 63, 0.2)); box-sizing: content-box; }
.bx-stage:focus-visible { outline: 2px solid var(--st-primary-color, #ff4b4b); outline-offset: 2px; }
.bx-img { position: absolute; left: 0; top: 0; pointer-events: none; display: block; max-width: none; }
.bx-img.crisp { image-rendering: pixelated; }
.bx-box { position: absolute; box-sizing: border-box; border: 2px solid var(--c); background: color-mix(in srgb, var(--c) 12%, transparent);
          cursor: move; }
.bx-box.selected { border-width: 3px; background: color-mix(in srgb, var(--c) 22%, transparent);
                   box-shadow: 0 0 0 1px rgba(255, 255, 255, 0.9); }
.bx-tag { position: absolute; left: -2px; bottom: 100%; max-width: 16em; overflow: hidden; text-overflow: ellipsis;
          white-space: nowrap; background: var(--c); color: #fff; font-size: 0.8rem; line-height: 1.3; padding: 0 0.35em;
          border-radius: 3px 3px 0 0; text-shadow: 0 0 2px rgba(0, 0, 0, 0.6); }
.bx-box.low .bx-tag { bottom: auto; top: 0; border-radius: 0 0 3px 0; left: 0; }
.bx-handle { position: absolute; width: 11px; height: 11px; background: #fff; border: 2px solid var(--c);
             box-sizing: border-box; display: none; }
.bx-box.selected .bx-handle, .bx-box:hover .bx-handle { display: block; }
.bx-handle[data-corner="nw"] { left: -6px; top: -6px; cursor: nwse-resize; }
.bx-handle[data-corner="ne"] { right: -6px; top: -6px; cursor: nesw-resize; }
.bx-handle[data-corner="sw"] { left: -6px; bottom: -6px; cursor: nesw-resize; }
.bx-handle[data-corner="se"] { right: -6px; bottom: -6px; cursor: nwse-resize; }
.bx-draft { position: absolute; box-sizing: border-box; border: 2px dashed var(--c); pointer-events: none; }
.bx-bar { display: flex; flex-wrap: wrap; align-items: center; justify-content: space-between; gap: 0.4rem 1rem;
          margin-bottom: 0.5rem; }
.bx-labels { display: flex; flex-wrap: wrap; gap: 0.35rem; }
.bx-chip { border: 1px solid var(--c); border-radius: 1rem; padding: 0.1rem 0.6rem; background: transparent;
           color: inherit; font: inherit; cursor: pointer; }
.bx-chip.current { background: var(--c); color: #fff; }
.bx-chip kbd { font-family: inherit; font-weight: 600; opacity: 0.8; }
.bx-actions { display: flex; flex-wrap: wrap; align-items: center; gap: 0.5rem; }
.bx-btn { font: inherit; padding: 0.3rem 0.8rem; border-radius: 0.5rem; cursor: pointer;
          border: 1px solid var(--st-border-color, rgba(49, 51, 63, 0.2)); background: var(--st-background-color, #fff);
          color: inherit; }
.bx-btn.primary { background: var(--st-primary-color, #ff4b4b); border-color: var(--st-primary-color, #ff4b4b); color: #fff; }
.bx-btn:disabled { opacity: 0.5; cursor: default; }
.bx-status { opacity: 0.75; font-size: 0.85rem; }
.bx-status:empty { display: none; }
.bx-help { opacity: 0.65; font-size: 0.8rem; margin-top: 0.25rem; }
"""

_JS = r"""
const MIN_DRAG = 4;  // display pixels: a shorter drag on empty image is a click (unselects)
const MIN_SHOWN = %(min_shown)d;
const RESUBMIT_MS = 700;  // a second submit this soon after one (from any box widget of the page) is a double press
const REGISTRY = (window.__superintendentBoxes = window.__superintendentBoxes || { active: null, byRoot: new WeakMap(), lastLabel: {} });

function el(tag, cls, parent) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (parent) parent.appendChild(node);
  return node;
}
const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));

function signature(data) {  // what makes a new starting point: another image or another pre-filled value
  const src = data.src || "";
  return [src.length, src.slice(0, 64), src.slice(-64), data.width, data.height, JSON.stringify(data.value || [])].join("|");
}

let PALETTE = ["#e6194b"];  // the options' colours, from Python (render.BOX_COLOURS: the same on the Review page)
const colour = (i) => PALETTE[((i %% PALETTE.length) + PALETTE.length) %% PALETTE.length];

class BoxInput {
  constructor(root, setTriggerValue) {
    this.setTriggerValue = setTriggerValue;
    this.boxes = [];        // {x0, y0, x1, y1, label}: image pixels, label = option index
    this.selected = -1;
    this.current = 0;       // label of the next box drawn
    this.scale = 1;
    this.drag = null;
    this.sig = null;
    this.root = el("div", "bx-root", root);
    const bar = el("div", "bx-bar", this.root);  // above the image: on a short screen it stays in view
    this.labels = el("div", "bx-labels", bar);
    const actions = el("div", "bx-actions", bar);
    this.stage = el("div", "bx-stage", this.root);
    this.stage.tabIndex = 0;
    this.stage.setAttribute("role", "application");
    this.stage.setAttribute("aria-label", "Image: drag to draw a box");
    this.stage.dataset.testid = "box-stage";
    this.img = el("img", "bx-img", this.stage);
    this.img.alt = "";
    this.img.draggable = false;
    this.layer = el("div", "bx-layer", this.stage);
    this.submitBtn = el("button", "bx-btn primary", actions);
    this.submitBtn.type = "button";
    this.submitBtn.textContent = "Submit boxes (Enter)";
    this.nothingBtn = el("button", "bx-btn", actions);
    this.nothingBtn.type = "button";
    this.nothingBtn.textContent = "Nothing to mark";
    this.status = el("span", "bx-status", actions);
    this.status.setAttribute("aria-live", "polite");
    const help = el("div", "bx-help", this.root);
    help.textContent = "Drag on the image to draw a box · drag a box to move it, a corner to resize it · " +
      "arrow keys nudge the selected box · a number key or a label above sets its label · Delete removes it · Enter submits";

    this.submitBtn.addEventListener("click", () => this.submit(false));
    this.nothingBtn.addEventListener("click", () => this.submit(true));
    this.stage.addEventListener("pointerdown", (e) => this.down(e));
    this.stage.addEventListener("pointermove", (e) => this.move(e));
    this.stage.addEventListener("pointerup", (e) => this.up(e));
    this.stage.addEventListener("pointercancel", (e) => this.up(e));
    this.onKey = (e) => this.key(e);
    document.addEventListener("keydown", this.onKey);
    this.resizer = new ResizeObserver(() => this.layout());
    this.resizer.observe(this.root);
  }

  update(data, setTriggerValue) {
    this.setTriggerValue = setTriggerValue;
    this.data = data;
    this.options = (data.options || []).map(String);
    if (Array.isArray(data.colours) && data.colours.length) PALETTE = data.colours.map(String);
    this.keys = (data.keys || []).map((k) => (k == null ? null : String(k).toUpperCase()));
    const sig = signature(data);
    if (sig !== this.sig) {
      this.sig = sig;
      this.W = Math.max(1, Number(data.width) || 1);
      this.H = Math.max(1, Number(data.height) || 1);
      if (this.img.getAttribute("src") !== data.src) this.img.src = data.src || "";
      this.img.classList.toggle("crisp", !!data.crisp);
      this.boxes = (data.value || []).map((b) => this.fromImage(b)).filter(Boolean);
      this.selected = -1;
      this.drag = null;
      const used = REGISTRY.lastLabel[JSON.stringify(this.options)];  // the label used last, also on earlier items
      this.current = used ?? (this.boxes.length ? this.boxes[this.boxes.length - 1].label : 0);
      this.setStatus("");
    }
    this.current = clamp(this.current, 0, Math.max(0, this.options.length - 1));
    REGISTRY.active = this;
    this.drawLabels();
    this.layout();
  }

  fromImage(b) {  // a pre-filled box (image pixels), clipped to the image; null when nothing of it is inside
    const x0 = clamp(Number(b.x), 0, this.W), y0 = clamp(Number(b.y), 0, this.H);
    const x1 = clamp(Number(b.x) + Number(b.width), 0, this.W), y1 = clamp(Number(b.y) + Number(b.height), 0, this.H);
    if (!(x1 > x0 && y1 > y0)) return null;
    return { x0, y0, x1, y1, label: Number.isInteger(b.label) ? b.label : 0 };
  }

  layout() {
    const avail = this.root.clientWidth - 2;  // the stage's border
    if (!(avail > 0) || !this.W) return;
    const tall = Math.max(MIN_SHOWN, Math.round(window.innerHeight * 0.7));
    let scale = Math.min(avail / this.W, tall / this.H);
    scale = Math.min(Math.max(scale, MIN_SHOWN / Math.max(this.W, this.H)), avail / this.W);  // small images: big enough
    this.scale = scale;
    const w = this.W * scale, h = this.H * scale;
    Object.assign(this.stage.style, { width: w + "px", height: h + "px" });
    Object.assign(this.img.style, { width: w + "px", height: h + "px" });
    this.stage.dataset.scale = String(scale);
    this.render();
  }

  drawLabels() {
    this.labels.replaceChildren();
    this.options.forEach((name, i) => {
      const chip = el("button", "bx-chip" + (i === this.current ? " current" : ""), this.labels);
      chip.type = "button";
      chip.style.setProperty("--c", colour(i));
      chip.dataset.index = String(i);
      if (this.keys[i]) { const k = el("kbd", "", chip); k.textContent = this.keys[i]; }
      chip.appendChild(document.createTextNode((this.keys[i] ? " " : "") + name));  // a label is text, never HTML
      chip.title = "Label for the selected box and the next boxes";
      chip.addEventListener("click", () => this.relabel(i));
    });
  }

  render() {
    const s = this.scale;
    this.layer.replaceChildren();
    this.boxes.forEach((b, i) => {
      const node = el("div", "bx-box" + (i === this.selected ? " selected" : ""), this.layer);
      node.dataset.index = String(i);
      node.style.setProperty("--c", colour(b.label));
      Object.assign(node.style, { left: b.x0 * s + "px", top: b.y0 * s + "px",
                                  width: (b.x1 - b.x0) * s + "px", height: (b.y1 - b.y0) * s + "px" });
      if (b.y0 * s < 18) node.classList.add("low");  // no room above: the tag goes inside
      const tag = el("div", "bx-tag", node);
      tag.textContent = tag.title = this.options[b.label] ?? "?";
      for (const corner of ["nw", "ne", "sw", "se"]) el("div", "bx-handle", node).dataset.corner = corner;
    });
    if (this.drag && this.drag.mode === "draw" && this.drag.moved) {
      const d = this.drag, node = el("div", "bx-draft", this.layer);
      node.style.setProperty("--c", colour(this.current));
      const x0 = Math.min(d.ax, d.px), x1 = Math.max(d.ax, d.px), y0 = Math.min(d.ay, d.py), y1 = Math.max(d.ay, d.py);
      Object.assign(node.style, { left: x0 * s + "px", top: y0 * s + "px", width: (x1 - x0) * s + "px", height: (y1 - y0) * s + "px" });
    }
    for (const chip of this.labels.children) chip.classList.toggle("current", Number(chip.dataset.index) === this.current);
    const n = this.boxes.length;
    this.submitBtn.textContent = n ? `Submit ${n} box${n === 1 ? "" : "es"} (Enter)` : "Submit: no boxes (Enter)";
  }

  point(e) {  // the pointer in image pixels, clamped to the image
    const r = this.stage.getBoundingClientRect();
    return [clamp((e.clientX - r.left - this.stage.clientLeft) / this.scale, 0, this.W),
            clamp((e.clientY - r.top - this.stage.clientTop) / this.scale, 0, this.H)];
  }

  down(e) {
    if (e.button !== 0 || !this.W) return;
    REGISTRY.active = this;
    this.stage.focus({ preventScroll: true });
    e.preventDefault();
    const [px, py] = this.point(e);
    const handle = e.target.closest && e.target.closest(".bx-handle");
    const boxNode = e.target.closest && e.target.closest(".bx-box");
    if (boxNode) {
      const i = Number(boxNode.dataset.index), b = this.boxes[i];
      this.selected = i;
      if (handle) {  // the opposite corner stays put
        const c = handle.dataset.corner;
        this.drag = { mode: "resize", i, ax: c.includes("w") ? b.x1 : b.x0, ay: c.includes("n") ? b.y1 : b.y0 };
      } else {
        this.drag = { mode: "move", i, sx: px, sy: py, b0: { ...b } };
      }
    } else {
      this.drag = { mode: "draw", ax: px, ay: py, px, py, cx: e.clientX, cy: e.clientY, moved: false };
    }
    this.stage.setPointerCapture(e.pointerId);
    this.render();
  }

  move(e) {
    const d = this.drag;
    if (!d) return;
    const [px, py] = this.point(e);
    if (d.mode === "draw") {
      d.px = px; d.py = py;
      d.moved = d.moved || Math.abs(e.clientX - d.cx) >= MIN_DRAG || Math.abs(e.clientY - d.cy) >= MIN_DRAG;
    } else if (d.mode === "resize") {
      const b = this.boxes[d.i];
      Object.assign(b, { x0: Math.min(d.ax, px), x1: Math.max(d.ax, px), y0: Math.min(d.ay, py), y1: Math.max(d.ay, py) });
    } else {
      const b = this.boxes[d.i], w = d.b0.x1 - d.b0.x0, h = d.b0.y1 - d.b0.y0;
      const x0 = clamp(d.b0.x0 + px - d.sx, 0, this.W - w), y0 = clamp(d.b0.y0 + py - d.sy, 0, this.H - h);
      Object.assign(b, { x0, y0, x1: x0 + w, y1: y0 + h });
    }
    this.render();
  }

  up(e) {
    const d = this.drag;
    if (!d) return;
    this.drag = null;
    if (this.stage.hasPointerCapture(e.pointerId)) this.stage.releasePointerCapture(e.pointerId);
    if (d.mode === "draw") {
      if (d.moved) {
        const box = this.whole({ x0: Math.min(d.ax, d.px), y0: Math.min(d.ay, d.py), x1: Math.max(d.ax, d.px),
                                 y1: Math.max(d.ay, d.py), label: this.current });
        if (box) { this.boxes.push(box); this.selected = this.boxes.length - 1; }
      } else {
        this.selected = -1;  // a click on the image outside the boxes
      }
    } else {
      const box = this.whole(this.boxes[d.i]);
      if (box) this.boxes[d.i] = box;
      else { this.boxes.splice(d.i, 1); this.selected = -1; }  // resized to nothing
    }
    this.setStatus("");
    this.render();
  }

  whole(b) {  // a finished box in whole image pixels (what is stored), or null when less than a pixel is left
    let x0 = clamp(Math.round(b.x0), 0, this.W), y0 = clamp(Math.round(b.y0), 0, this.H);
    let x1 = clamp(Math.round(b.x1), 0, this.W), y1 = clamp(Math.round(b.y1), 0, this.H);
    if (x1 <= x0 || y1 <= y0) return null;
    return { x0, y0, x1, y1, label: b.label };
  }

  relabel(i) {
    if (i < 0 || i >= this.options.length) return;
    this.current = i;
    REGISTRY.lastLabel[JSON.stringify(this.options)] = i;
    if (this.selected >= 0 && this.boxes[this.selected]) this.boxes[this.selected].label = i;
    this.render();
  }

  key(e) {
    if (REGISTRY.active !== this || !this.root.isConnected || e.defaultPrevented) return;
    if (e.ctrlKey || e.metaKey || e.altKey || e.isComposing) return;
    const t = e.composedPath ? e.composedPath()[0] : e.target;
    if (t && (t.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(t.tagName || ""))) return;
    if (t && t.tagName === "BUTTON" && (e.key === "Enter" || e.key === " ") && !this.root.contains(t)) return;  // another button
    const k = e.key.length === 1 ? e.key.toUpperCase() : e.key;
    let handled = true;
    if (k === "Enter") { if (!e.repeat) this.submit(false); }
    else if (k === "Delete" || k === "Backspace") {
      if (this.selected >= 0) { this.boxes.splice(this.selected, 1); this.selected = -1; this.render(); }
    } else if (k === "Escape") { this.selected = -1; this.render(); }
    else if (k.startsWith("Arrow") && this.selected >= 0) this.nudge(k, e.shiftKey ? 10 : 1);
    else if (this.keys.includes(k)) this.relabel(this.keys.indexOf(k));
    else handled = false;
    if (handled) { e.preventDefault(); e.stopPropagation(); }
  }

  nudge(arrow, step) {  // the selected box by whole pixels, kept inside the image
    const b = this.boxes[this.selected], w = b.x1 - b.x0, h = b.y1 - b.y0;
    const dx = arrow === "ArrowLeft" ? -step : arrow === "ArrowRight" ? step : 0;
    const dy = arrow === "ArrowUp" ? -step : arrow === "ArrowDown" ? step : 0;
    const x0 = clamp(b.x0 + dx, 0, this.W - w), y0 = clamp(b.y0 + dy, 0, this.H - h);
    Object.assign(b, { x0, y0, x1: x0 + w, y1: y0 + h });
    this.render();
  }

  submit(nothing) {
    // A double press sends once, also when the first one has already brought the next item's widget up.
    const now = Date.now();
    if (now - (REGISTRY.sentAt || 0) < RESUBMIT_MS) return;
    REGISTRY.sentAt = now;
    const boxes = nothing ? [] : this.boxes.map((b) => ({ x: b.x0, y: b.y0, width: b.x1 - b.x0, height: b.y1 - b.y0, label: b.label }));
    this.setStatus(nothing ? "Sent: nothing to mark." : `Sent ${boxes.length} box${boxes.length === 1 ? "" : "es"}.`);
    this.setTriggerValue("submit", { boxes, at: now });
  }

  setStatus(text) { this.status.textContent = text; }

  destroy() {
    document.removeEventListener("keydown", this.onKey);
    this.resizer.disconnect();
    if (REGISTRY.active === this) REGISTRY.active = null;
  }
}

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  let widget = REGISTRY.byRoot.get(parentElement);
  if (!widget) {
    widget = new BoxInput(parentElement, setTriggerValue);
    REGISTRY.byRoot.set(parentElement, widget);
  }
  widget.update(data || {}, setTriggerValue);
  return () => { widget.destroy(); REGISTRY.byRoot.delete(parentElement); };
}
""" % {"min_shown": MIN_DISPLAY_PIXELS}


@functools.cache
def _component():  # noqa: ANN202 - Streamlit's mount callable
    return st.components.v2.component("superintendent_box_input", css=_CSS, js=_JS)


def _option_index(label: Any, options: Sequence[Any]) -> int | None:
    matched = match_option(label, options, by_text=False)
    if matched is NO_MATCH:
        return None
    return next(i for i, option in enumerate(options) if option is matched or option == matched)


def _prefill(value: Sequence[Mapping[str, Any]] | None, options: Sequence[Any]) -> list[dict[str, Any]]:
    """``value``'s boxes for the page, each label as its option's index; boxes with a label that is no option are left out
    (a model may suggest a class the project does not have)."""
    boxes = []
    for mark in value or []:
        index = _option_index(mark.get("label"), options) if isinstance(mark, Mapping) else None
        if index is None:
            continue
        try:
            boxes.append({"x": float(mark["x"]), "y": float(mark["y"]), "width": float(mark["width"]),
                          "height": float(mark["height"]), "label": index})
        except (KeyError, TypeError, ValueError):
            continue
    return boxes


def _submitted(payload: Any, width: int, height: int, options: Sequence[Any]) -> list[dict[str, Any]]:
    """The boxes the page sent, in whole image pixels with their options, checked by :func:`marks.check_boxes`."""
    if not isinstance(payload, Mapping) or not isinstance(payload.get("boxes"), list):
        raise ValidationError("the page sent no list of boxes")
    boxes = []
    for i, mark in enumerate(payload["boxes"]):
        try:
            x0, y0 = round(float(mark["x"])), round(float(mark["y"]))
            x1, y1 = round(float(mark["x"]) + float(mark["width"])), round(float(mark["y"]) + float(mark["height"]))
            label = mark["label"]
        except (KeyError, TypeError, ValueError, OverflowError):
            raise ValidationError(f"box {i + 1} is not a box with x, y, width, height and label") from None
        if isinstance(label, bool) or not isinstance(label, int) or not 0 <= label < len(options):
            raise ValidationError(f"box {i + 1} has no option's label")
        boxes.append({"x": x0, "y": y0, "width": x1 - x0, "height": y1 - y0, "label": options[label]})
    return marks.check_boxes(boxes, width, height, options)


def _on_submit(key: str, width: int, height: int, options: list, on_submit: Callable[[list[dict]], None] | None) -> None:
    """The component's callback (before the script runs again): hand readable boxes to ``on_submit``. Boxes that
    cannot be read are not handed on; :func:`box_input` says so in the run that follows."""
    if on_submit is None:
        return
    try:
        boxes = _submitted((st.session_state.get(key) or {}).get("submit"), width, height, options)
    except ValidationError:
        return
    on_submit(boxes)


def box_input(image_src: str, width: int, height: int, options: list, *, value: list[dict] | None = None, key: str,
              shortcuts: list[str] | None = None,
              on_submit: Callable[[list[dict]], None] | None = None) -> list[dict] | None:
    """Draw boxes on an image; the submitted boxes in the run where the labeller submitted, else None.

    ``image_src`` is the image as a data URL at its natural size, ``width`` x ``height`` its pixels. The image is shown
    fitted to the page's width (a small one enlarged to about 500 px on its long side, crisp for pixel art), the boxes
    over it. ``options`` are the labels; ``shortcuts`` one key per option (default 1..9 then 0). ``value`` pre-fills
    boxes (an existing annotation or a model's suggestion; boxes whose label is no option are left out). Returns a list
    of ``{"x", "y", "width", "height", "label"}`` in whole image pixels, clipped to the image (``[]``: nothing to mark).
    Key it per item (see the module's docstring). ``on_submit(boxes)``, if given, is called with the same boxes in the
    widget's callback, before the script runs again (like a button's ``on_click``): a page that stores the boxes there
    draws the next item in that same run, with no second rerun.
    """
    if not options:
        raise ValueError("box_input needs the labels a box can have (options); got none")
    keys = list(shortcuts) if shortcuts is not None else number_keys(len(options))
    if len(keys) < len(options):
        keys += [None] * (len(options) - len(keys))
    data = {"src": image_src, "width": int(width), "height": int(height), "options": [str(o) for o in options],
            "keys": [str(k).upper() if k else None for k in keys[:len(options)]], "value": _prefill(value, options),
            "crisp": max(int(width), int(height)) <= images._PIXEL_ART, "colours": list(render.BOX_COLOURS)}
    callback = functools.partial(_on_submit, key, int(width), int(height), list(options), on_submit)
    result = _component()(key=key, data=data, on_submit_change=callback, width="stretch", height="content")
    payload = result.submit
    if payload is None:
        return None
    try:
        return _submitted(payload, int(width), int(height), options)
    except ValidationError as exc:
        st.warning(render.text(f"These boxes could not be read ({exc}): draw them again, then submit."))
        return None
