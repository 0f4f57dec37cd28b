"""Mark spans of a text with labels: a Streamlit v2 component written here (no iframe), used by the Label and Review pages.

The labeller selects characters with the mouse (drag, or double-click a word) or with the keyboard (click or Tab into
the text, move the caret with the arrow keys (up and down by line), extend with Shift+arrows, Ctrl+Shift+arrows by
word) and presses an option's key (1..9, 0) to mark the selection. A click on a mark selects it: Delete or Backspace
removes it, a number key relabels it. A selection that overlaps a mark is refused with a message in the widget and
changes nothing. Enter (or the Submit button) hands the marks to Python.

Offsets are in characters of the Python string (code points, as ``text[start:end]``), not the UTF-16 units of the
browser: the page works on ``Array.from(text)``, and the caret steps over whole graphemes (an emoji with its skin
tone, a letter with its combining accent) so a mark never splits one. The text and the labels are drawn as text
(``textContent``, a label's tag through CSS ``attr()``), never as HTML: they are user data.

The marks being edited live in the page (per widget, per item and value), so a rerun of the page for another reason
keeps them; Python hears of them once, when the labeller submits.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any

import streamlit as st

from superintendent.app.keys import number_keys

__all__ = ["PALETTE", "span_input", "spans_from_payload"]

# Light backgrounds with dark text (readable, distinct); option i gets PALETTE[i % len(PALETTE)].
PALETTE = ("#ffd8a8", "#b2f2bb", "#a5d8ff", "#fcc2d7", "#d0bfff", "#ffec99", "#99e9f2", "#ffc9c9", "#c0eb75", "#e9ecef")

_HTML = """
<div class="si-root">
  <div class="si-banner" hidden></div>
  <div class="si-text" tabindex="0" role="textbox" aria-readonly="true" aria-multiline="true"></div>
  <div class="si-message" role="status" aria-live="polite"></div>
  <div class="si-legend"></div>
  <div class="si-bar">
    <button type="button" class="si-submit"></button>
    <span class="si-help"></span>
  </div>
</div>
"""

_CSS = """
.si-root { font-family: var(--st-font, sans-serif); color: var(--st-text-color, #31333f); }
.si-text { white-space: pre-wrap; overflow-wrap: anywhere; line-height: 2.1; font-size: 1.05rem; padding: 0.6rem 0.8rem;
  border: 1px solid var(--st-border-color, rgba(49, 51, 63, 0.2)); border-radius: 0.5rem; outline: none; cursor: text;
  user-select: text; }
.si-text:focus { border-color: var(--st-primary-color, #ff4b4b); box-shadow: 0 0 0 1px var(--st-primary-color, #ff4b4b); }
.si-readonly .si-text { cursor: default; }
.si-mark { border-radius: 0.25rem; padding: 0.12em 0; color: #1e1e1e; }
.si-mark-end::after { content: attr(data-label); font-size: 0.68rem; font-weight: 600; margin-left: 0.2em;
  padding: 0 0.3em; border-radius: 0.2rem; background: rgba(0, 0, 0, 0.62); color: #fff; vertical-align: 0.12em;
  user-select: none; }
.si-suggested .si-mark { outline: 2px dashed rgba(0, 0, 0, 0.45); outline-offset: -1px; }
.si-picked { outline: 2px solid #1c7ed6 !important; outline-offset: 1px; }
.si-sel { background: #74c0fc; color: #000; }
.si-mark.si-sel { background: #74c0fc; }
.si-caret { display: none; width: 0; height: 1.25em; margin: 0 -1px; border-left: 2px solid #1c7ed6;
  vertical-align: text-bottom; animation: si-blink 1.1s steps(1) infinite; }
.si-focused .si-caret { display: inline-block; }
.si-focused .si-caret-pick { outline: 2px solid #1c7ed6; outline-offset: 1px; }
@keyframes si-blink { 50% { border-color: transparent; } }
.si-message { min-height: 1.4em; margin: 0.35rem 0 0.2rem; font-size: 0.9rem; }
.si-message.si-warn { color: #c92a2a; font-weight: 600; }
.si-banner { margin-bottom: 0.4rem; padding: 0.35rem 0.6rem; border-radius: 0.4rem; background: #fff3bf; color: #5c3c00;
  font-size: 0.9rem; }
.si-legend { display: flex; flex-wrap: wrap; gap: 0.4rem; margin: 0.2rem 0 0.5rem; }
.si-option { border: 1px solid rgba(0, 0, 0, 0.18); border-radius: 0.4rem; padding: 0.15rem 0.55rem; font-size: 0.9rem;
  color: #1e1e1e; cursor: pointer; font-family: inherit; }
.si-option:disabled { cursor: default; }
.si-key { display: inline-block; min-width: 1.1em; margin-right: 0.35em; padding: 0 0.25em; border-radius: 0.2rem;
  background: rgba(0, 0, 0, 0.62); color: #fff; font-size: 0.75rem; font-weight: 700; text-align: center; }
.si-bar { display: flex; align-items: center; gap: 0.8rem; flex-wrap: wrap; }
.si-submit { background: var(--st-primary-color, #ff4b4b); color: #fff; border: none; border-radius: 0.5rem;
  padding: 0.4rem 1rem; font-size: 0.95rem; cursor: pointer; font-family: inherit; }
.si-submit:disabled { opacity: 0.55; cursor: default; }
.si-help { font-size: 0.8rem; opacity: 0.75; }
.si-readonly .si-bar, .si-readonly .si-message, .si-readonly .si-legend { display: none; }
"""

_JS = r"""
const SPACE = /\s/u;

function graphemeStarts(chars) {
  // code-point offsets where a grapheme starts, plus the end: the caret and selections snap to these
  const out = [0];
  if (typeof Intl !== "undefined" && Intl.Segmenter) {
    let at = 0;
    for (const seg of new Intl.Segmenter(undefined, { granularity: "grapheme" }).segment(chars.join(""))) {
      if (at > 0) out.push(at);
      at += Array.from(seg.segment).length;
    }
  } else {
    for (let i = 1; i < chars.length; i++) out.push(i);
  }
  out.push(chars.length);
  return [...new Set(out)];
}

function wordStarts(chars) {
  const out = new Set([0, chars.length]);
  if (typeof Intl !== "undefined" && Intl.Segmenter) {
    let at = 0;
    for (const seg of new Intl.Segmenter(undefined, { granularity: "word" }).segment(chars.join(""))) {
      const n = Array.from(seg.segment).length;
      if (seg.isWordLike) { out.add(at); out.add(at + n); }
      at += n;
    }
  }
  return [...out].sort((a, b) => a - b);
}

function snap(bounds, p, up) {
  // the nearest grapheme boundary at or below p (or at or above, when up)
  if (up) { for (const b of bounds) if (b >= p) return b; return bounds[bounds.length - 1]; }
  let best = 0;
  for (const b of bounds) { if (b <= p) best = b; else break; }
  return best;
}

function step(bounds, p, dir) {
  if (dir > 0) { for (const b of bounds) if (b > p) return b; return p; }
  let best = p;
  for (const b of bounds) { if (b < p) best = b; else break; }
  return best;
}

function setup(root) {
  const el = (cls) => root.querySelector("." + cls);
  const ui = { box: el("si-root"), banner: el("si-banner"), text: el("si-text"), message: el("si-message"),
               legend: el("si-legend"), submit: el("si-submit"), help: el("si-help") };
  const s = { ui, spans: [], anchor: 0, focus: 0, picked: -1, version: null, locked: null, suggested: false,
              message: "", warn: false };
  const draw = () => render(s);

  const offsetOf = (node, offset) => {
    // a DOM point (text node or element, offset) -> a code-point offset into the text (0 or n when outside it)
    const n = s.chars.length;
    if (!ui.text.contains(node)) {
      return ui.text.compareDocumentPosition(node) & Node.DOCUMENT_POSITION_FOLLOWING ? n : 0;
    }
    if (node === ui.text) {
      const kids = [...ui.text.childNodes];
      for (let i = offset; i < kids.length; i++) if (kids[i].dataset && kids[i].dataset.s !== undefined) return +kids[i].dataset.s;
      return n;
    }
    const seg = (node.nodeType === 3 ? node.parentElement : node).closest(".si-seg");
    if (!seg) return null;
    const start = +seg.dataset.s;
    if (node.nodeType === 3) return start + Array.from(node.data.slice(0, offset)).length;
    return offset === 0 ? start : +seg.dataset.e;
  };

  const selection = () => [Math.min(s.anchor, s.focus), Math.max(s.anchor, s.focus)];
  const spanAt = (p) => s.spans.findIndex((m) => m.start <= p && p < m.end);
  const current = () => {
    // the mark a number key relabels and Delete removes: the one clicked, else the one under a collapsed caret
    if (s.picked >= 0) return s.picked;
    return s.anchor === s.focus ? spanAt(s.focus) : -1;
  };
  s.current = current;
  const say = (text, warn) => { s.message = text; s.warn = !!warn; };
  const quote = (a, b) => "\u201c" + s.chars.slice(a, b).join("") + "\u201d";
  const changed = () => { s.suggested = false; s.picked = -1; };

  const mark = (option) => {
    let [a, b] = selection();
    while (a < b && SPACE.test(s.chars[a])) a++;
    while (b > a && SPACE.test(s.chars[b - 1])) b--;
    if (a === b) { say("Only spaces are selected: select some words, then press a label's key.", true); return; }
    const clash = s.spans.find((m) => m.start < b && a < m.end);
    if (clash) {
      say(quote(a, b) + " overlaps " + quote(clash.start, clash.end) + " (" + s.data.options[clash.label] +
          "): marks may not overlap. Click that mark and press Delete first, or select other text.", true);
      return;
    }
    s.spans.push({ start: a, end: b, label: option });
    s.spans.sort((x, y) => x.start - y.start);
    changed();
    s.anchor = s.focus = b;
    say("Marked " + quote(a, b) + " as " + s.data.options[option] + ".");
  };

  const relabel = (k, option) => {
    const m = s.spans[k];
    m.label = option;
    changed();
    s.picked = k;
    say(quote(m.start, m.end) + " is now " + s.data.options[option] + ".");
  };

  const remove = (k) => {
    const m = s.spans[k];
    s.spans.splice(k, 1);
    changed();
    s.anchor = s.focus = m.start;
    say("Removed the mark on " + quote(m.start, m.end) + ".");
  };

  s.choose = (option) => {
    if (s.data.readonly || s.locked !== null) return;
    const [a, b] = selection();
    const k = current();
    if (a < b) mark(option);
    else if (k >= 0) relabel(k, option);
    else say("Select some text first (drag with the mouse, or Shift+arrows), then press a label's key.", true);
    draw();
  };

  const submit = () => {
    if (s.data.readonly || s.locked !== null) return;
    s.locked = s.data.submits;
    say("Submitting\u2026");
    draw();
    s.setTrigger("submit", { version: s.version, spans: s.spans.map((m) => ({ start: m.start, end: m.end, label: m.label })) });
  };

  // Focus only toggles a class: redrawing the text on mousedown would cut the selection the drag is starting.
  ui.text.addEventListener("focus", () => ui.box.classList.add("si-focused"));
  ui.text.addEventListener("blur", () => ui.box.classList.remove("si-focused"));
  let pressed = false;
  ui.text.addEventListener("mousedown", () => { pressed = true; });
  s.onMouseUp = (event) => {  // on the document: a drag may end outside the text
    if (!pressed) return;
    pressed = false;
    if (s.data.readonly || s.locked !== null) return;
    const sel = window.getSelection();
    if (!sel || sel.rangeCount === 0) return;
    const a = offsetOf(sel.anchorNode, sel.anchorOffset), f = offsetOf(sel.focusNode, sel.focusOffset);
    if (a === null || f === null) return;
    if (a === f) {
      const hit = event.target.closest && event.target.closest(".si-mark");
      s.picked = hit && ui.text.contains(hit) ? +hit.dataset.k : -1;
      s.anchor = s.focus = snap(s.bounds, a, false);
      if (s.picked >= 0) {
        const m = s.spans[s.picked];
        say("Selected " + quote(m.start, m.end) + " (" + s.data.options[m.label] + "): a label's key relabels it, Delete removes it.");
      } else say("");
    } else {
      s.anchor = snap(s.bounds, Math.min(a, f), false);
      s.focus = snap(s.bounds, Math.max(a, f), true);
      s.picked = -1;
      say("");
    }
    sel.removeAllRanges();
    ui.text.focus({ preventScroll: true });
    draw();
  };
  document.addEventListener("mouseup", s.onMouseUp);

  const lineStep = (dir) => {
    // the caret one line up or down: the point of the text below (above) the caret, else the text's end (start)
    const caret = ui.text.querySelector(".si-caret");
    if (!caret) return s.focus;
    const r = caret.getBoundingClientRect();
    const line = parseFloat(getComputedStyle(ui.text).lineHeight) || r.height * 1.6;
    const y = dir < 0 ? r.top + r.height / 2 - line : r.top + r.height / 2 + line;
    const fallback = dir < 0 ? 0 : s.chars.length;
    let node = null, offset = 0;
    if (document.caretPositionFromPoint) {
      const pos = document.caretPositionFromPoint(r.left, y);
      if (pos) { node = pos.offsetNode; offset = pos.offset; }
    } else if (document.caretRangeFromPoint) {
      const range = document.caretRangeFromPoint(r.left, y);
      if (range) { node = range.startContainer; offset = range.startOffset; }
    }
    if (!node || !ui.text.contains(node)) return fallback;
    const to = offsetOf(node, offset);
    return to === null ? fallback : snap(s.bounds, to, false);
  };

  ui.text.addEventListener("keydown", (event) => {
    if (s.data.readonly) return;
    const key = event.key;
    const n = s.chars.length;
    let handled = true;
    if (key === "ArrowLeft" || key === "ArrowRight" || key === "Home" || key === "End") {
      const dir = key === "ArrowRight" || key === "End" ? 1 : -1;
      const [a, b] = selection();
      let to;
      if (key === "Home" || key === "End") to = dir > 0 ? n : 0;
      else if (!event.shiftKey && a < b) to = dir > 0 ? b : a;  // collapse, as an editor does
      else to = step(event.ctrlKey || event.altKey || event.metaKey ? s.words : s.bounds, s.focus, dir);
      s.focus = to;
      if (!event.shiftKey) s.anchor = to;
      s.picked = -1;
      say("");
    } else if (key === "ArrowUp" || key === "ArrowDown") {
      s.focus = lineStep(key === "ArrowUp" ? -1 : 1);
      if (!event.shiftKey) s.anchor = s.focus;
      s.picked = -1;
      say("");
    } else if (key === "Enter") {
      prevent(event);
      submit();
      return;
    } else if (key === "Escape") {
      s.anchor = s.focus; s.picked = -1; say("");
    } else if (key === "Delete" || key === "Backspace") {
      const k = current();
      if (s.locked === null) {
        if (k >= 0) remove(k);
        else say("Click a mark (or move the caret into it) first; then Delete removes it.", true);
      }
    } else if (!event.ctrlKey && !event.altKey && !event.metaKey && key.length === 1 && s.data.keys.indexOf(key.toUpperCase()) >= 0) {
      prevent(event);
      s.choose(s.data.keys.indexOf(key.toUpperCase()));
      return;
    } else {
      handled = false;  // other keys (S skips, U undoes on the Label page) go on to the page
    }
    if (handled) { prevent(event); draw(); }
  });

  ui.submit.addEventListener("click", () => submit());
  return s;
}

function prevent(event) { event.preventDefault(); event.stopPropagation(); }

function render(s) {
  const { ui, data } = s;
  const n = s.chars.length;
  ui.box.classList.toggle("si-readonly", !!data.readonly);
  ui.box.classList.toggle("si-suggested", s.suggested);
  ui.banner.hidden = !s.suggested;
  ui.banner.textContent = s.suggested ? data.suggestion_text : "";
  const [a, b] = [Math.min(s.anchor, s.focus), Math.max(s.anchor, s.focus)];
  const picked = data.readonly ? -1 : s.current();
  const cuts = new Set([0, n, a, b]);
  for (const m of s.spans) { cuts.add(m.start); cuts.add(m.end); }
  const points = [...cuts].filter((p) => p >= 0 && p <= n).sort((x, y) => x - y);
  const frag = document.createDocumentFragment();
  const showCaret = !data.readonly && s.locked === null;
  const caret = () => { const c = document.createElement("span"); c.className = "si-caret"; return c; };
  for (let i = 0; i + 1 < points.length; i++) {
    const lo = points[i], hi = points[i + 1];
    if (showCaret && lo === s.focus) frag.appendChild(caret());
    const seg = document.createElement("span");
    seg.className = "si-seg";
    seg.dataset.s = lo;
    seg.dataset.e = hi;
    seg.textContent = s.chars.slice(lo, hi).join("");
    const k = s.spans.findIndex((m) => m.start <= lo && hi <= m.end);
    if (k >= 0) {
      const m = s.spans[k];
      seg.classList.add("si-mark");
      seg.dataset.k = k;
      seg.style.background = data.colours[m.label];
      seg.title = data.options[m.label];
      if (hi === m.end) { seg.classList.add("si-mark-end"); seg.dataset.label = data.options[m.label]; }
      if (k === picked) seg.classList.add(s.picked >= 0 ? "si-picked" : "si-caret-pick");
    }
    if (a < b && a <= lo && hi <= b) seg.classList.add("si-sel");
    frag.appendChild(seg);
  }
  if (showCaret && s.focus === n) frag.appendChild(caret());
  ui.text.replaceChildren(frag);
  ui.text.setAttribute("aria-label", data.aria_label);
  ui.message.textContent = s.message;
  ui.message.classList.toggle("si-warn", s.warn);
  if (ui.legend.dataset.built !== data.legend_id) {
    ui.legend.replaceChildren();
    data.options.forEach((option, i) => {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "si-option";
      b.style.background = data.colours[i];
      b.disabled = !!data.readonly;
      if (data.keys[i] && !data.readonly) {
        const k = document.createElement("span");
        k.className = "si-key";
        k.textContent = data.keys[i];
        b.appendChild(k);
      }
      b.appendChild(document.createTextNode(option));
      b.addEventListener("mousedown", (event) => event.preventDefault());  // keep the text's focus and selection
      b.addEventListener("click", () => s.choose(i));
      ui.legend.appendChild(b);
    });
    ui.legend.dataset.built = data.legend_id;
  }
  const count = s.spans.length;
  ui.submit.textContent = count ? data.submit_label + " (" + count + (count === 1 ? " mark)" : " marks)")
                                : data.submit_label + ": nothing to mark";
  ui.submit.disabled = s.locked !== null;
  ui.help.textContent = data.help;
}

export default function (component) {
  const { data, parentElement, setTriggerValue } = component;
  const root = parentElement;
  if (!root.__siState) root.__siState = setup(root);
  const s = root.__siState;
  s.data = data;
  s.setTrigger = setTriggerValue;
  if (s.version !== data.version) {  // a new item, or a new value for it: start from what Python gave
    s.version = data.version;
    s.chars = Array.from(data.text);
    s.bounds = graphemeStarts(s.chars);
    s.words = wordStarts(s.chars);
    s.spans = data.spans.map((m) => ({ ...m }));
    s.anchor = s.focus = 0;
    s.picked = -1;
    s.locked = null;
    s.suggested = !!data.suggested && s.spans.length > 0;
    s.message = "";
    s.warn = false;
    if (data.autofocus && !data.readonly) setTimeout(() => s.ui.text.focus({ preventScroll: true }), 0);
  } else if (s.locked !== null && data.submits !== s.locked) {
    s.locked = null;  // Python has answered this submit and kept the item (its message is shown above the widget)
    s.message = "";
  }
  render(s);
  return () => document.removeEventListener("mouseup", s.onMouseUp);
}
"""


@functools.cache
def _component():  # noqa: ANN202 - Streamlit's mount callable
    # isolate_styles=False: the selection API (window.getSelection) cannot see into a shadow root; every class is si-*
    return st.components.v2.component("superintendent_span_input", html=_HTML, css=_CSS, js=_JS, isolate_styles=False)


def _version(text: str, spans: list[dict[str, Any]], suggested: bool) -> str:
    blob = json.dumps([text, spans, suggested], sort_keys=True, ensure_ascii=True)
    return hashlib.sha256(blob.encode("ascii")).hexdigest()[:20]


def _indexed(value: Sequence[Any] | None, text: str, options: Sequence[Any]) -> list[dict[str, int]]:
    """``value``'s spans with the option's index as label; spans that do not fit the text or the options are left out
    (a model's hint made for another version of the text, a label since removed from the project)."""
    out = []
    for mark in value or []:
        if not isinstance(mark, dict):
            continue
        start, end, label = mark.get("start"), mark.get("end"), mark.get("label")
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text)):
            continue
        index = next((i for i, o in enumerate(options) if o == label or str(o) == str(label)), None)
        if index is not None:
            out.append({"start": start, "end": end, "label": index})
    out.sort(key=lambda m: (m["start"], m["end"]))
    kept: list[dict[str, int]] = []
    for mark in out:  # overlapping spans cannot be drawn: the first wins
        if not kept or mark["start"] >= kept[-1]["end"]:
            kept.append(mark)
    return kept


def spans_from_payload(payload: Any, text: str, options: Sequence[Any]) -> list[dict[str, Any]] | None:
    """The page's submit (``{"version", "spans": [{start, end, label index}]}``) as spans with the options themselves
    as labels, sorted; None for anything else (the queue checks the spans again before storing them)."""
    if not isinstance(payload, dict) or not isinstance(payload.get("spans"), list):
        return None
    spans = []
    for mark in payload["spans"]:
        if not isinstance(mark, dict):
            return None
        start, end, label = mark.get("start"), mark.get("end"), mark.get("label")
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (start, end, label)) or not 0 <= label < len(options):
            return None
        spans.append({"start": start, "end": end, "label": options[label]})
    spans.sort(key=lambda m: (m["start"], m["end"]))
    return spans


def _counter_key(key: str) -> str:
    return f"{key}--submits"


def _submitted(key: str, text: str, options: Sequence[Any], version: str,
               on_submit: Callable[[list[dict[str, Any]]], None] | None) -> None:
    """The component's callback (before the script runs again): count the submit, hand the spans to ``on_submit``."""
    st.session_state[_counter_key(key)] = st.session_state.get(_counter_key(key), 0) + 1
    if on_submit is None:
        return
    payload = (st.session_state.get(key) or {}).get("submit")
    if isinstance(payload, dict) and payload.get("version") == version:
        spans = spans_from_payload(payload, text, options)
        if spans is not None:
            on_submit(spans)


HELP = ("Select text (drag, double-click a word, or Shift+arrow keys), then press a label's key · "
        "click a mark: its key relabels it, Delete removes it · Enter submits")
SUGGESTION = ("The model's suggestion: check every mark. Enter accepts them as they are; "
              "change them as on any item (click a mark, then Delete or another key).")


def span_input(text: str, options: list, *, value: list[dict] | None = None, key: str, shortcuts: list[str] | None = None,
               readonly: bool = False, suggested: bool = False, submit_label: str = "Submit",
               on_submit: Callable[[list[dict[str, Any]]], None] | None = None,
               autofocus: bool = False) -> list[dict] | None:
    """Draw ``text`` to mark spans of it with ``options``; the submitted spans in the run where the user submitted.

    ``value``: spans to start from (``{start, end, label}``: an earlier answer, a correction, or the model's hint with
    ``suggested=True``, which shows them as a suggestion until the user changes or submits them). ``shortcuts``: a
    key per option (default 1..9, 0). ``readonly``: only show the marks. ``on_submit(spans)``: called in the widget's
    callback (before the script runs again, like a button's ``on_click``); the spans are also returned in that run.
    Returns a list of ``{"start", "end", "label"}`` (code-point offsets into ``text``, end exclusive, the option
    itself as label; ``[]`` is "nothing to mark"), or None when the user did not submit in this run.
    """
    if not isinstance(text, str):
        raise TypeError(f"span_input marks a text; got {type(text).__name__}")
    options = list(options)
    keys = ["" if k is None else str(k).upper() for k in (shortcuts if shortcuts is not None else number_keys(len(options)))]
    keys = (keys + [""] * len(options))[:len(options)]
    spans = _indexed(value, text, options)
    version = _version(text, spans, suggested)
    labels = [str(o) for o in options]
    data = {
        "text": text, "options": labels, "keys": keys, "colours": [PALETTE[i % len(PALETTE)] for i in range(len(options))],
        "spans": spans, "version": version, "suggested": bool(suggested), "readonly": bool(readonly),
        "submits": st.session_state.get(_counter_key(key), 0), "submit_label": submit_label, "autofocus": bool(autofocus),
        "legend_id": hashlib.sha256(json.dumps([labels, keys, bool(readonly)]).encode()).hexdigest()[:12],
        "help": HELP, "suggestion_text": SUGGESTION, "aria_label": "Text to mark" if not readonly else "Marked text",
    }
    if readonly:
        _component()(key=key, data=data)
        return None
    result = _component()(key=key, data=data, on_submit_change=functools.partial(_submitted, key, text, options, version, on_submit))
    payload = result.submit
    if isinstance(payload, dict) and payload.get("version") == version:
        return spans_from_payload(payload, text, options)
    return None
