"""``/api/v1/docs``: the OpenAPI description as one self-contained HTML page (no script, no CDN: the browsers of many
labelling teams have no internet, and FastAPI's default Swagger UI loads from one)."""

from __future__ import annotations

import json
import re
from html import escape
from typing import Any

STYLE = """
body{font:15px/1.5 system-ui,sans-serif;margin:0 auto;max-width:980px;padding:1.5rem;color:#222}
h1{margin-bottom:.2rem} h2{margin-top:2rem;border-bottom:1px solid #ddd} code,pre{font:13px ui-monospace,monospace}
.op{border:1px solid #ddd;border-radius:6px;margin:.8rem 0;padding:.6rem .9rem}
.m{display:inline-block;min-width:4.2rem;font-weight:600;border-radius:4px;padding:0 .4rem;color:#fff;text-align:center}
.get{background:#2b7bb9}.post{background:#2f9e44}.patch{background:#d9822b}.delete{background:#c92a2a}
table{border-collapse:collapse;margin:.3rem 0} td,th{border-bottom:1px solid #eee;padding:.15rem .6rem;text-align:left;vertical-align:top}
details{margin:.3rem 0} summary{cursor:pointer;color:#555} .muted{color:#666}
"""


def _text(text: str) -> str:
    """A description as HTML: escaped, with `code` and ``code`` as <code>."""
    return re.sub(r"``?([^`]+?)``?", r"<code>\1</code>", escape(text))


def _type(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " | ".join(_type(s) for s in schema["anyOf"])
    if schema.get("type") == "array":
        return f"list of {_type(schema.get('items', {}))}"
    if "enum" in schema:
        return " | ".join(json.dumps(v) for v in schema["enum"])
    if "const" in schema:
        return json.dumps(schema["const"])
    return schema.get("type", "any")


def _parameters(op: dict[str, Any]) -> str:
    params = op.get("parameters", [])
    if not params:
        return ""
    rows = "".join(f"<tr><td><code>{escape(p['name'])}</code></td><td>{escape(p['in'])}</td><td>{escape(_type(p.get('schema', {})))}</td>"
                   f"<td>{'required' if p.get('required') else ''}</td><td>{_text(p.get('description', ''))}</td></tr>" for p in params)
    return f"<table><tr><th>parameter</th><th>in</th><th>type</th><th></th><th></th></tr>{rows}</table>"


def _body(op: dict[str, Any]) -> str:
    content = op.get("requestBody", {}).get("content", {})
    def shape(schema: dict[str, Any]) -> str:
        name = _type(schema)
        return f"<a href='#{escape(name)}'><code>{escape(name)}</code></a>" if "$ref" in schema else f"<code>{escape(name)}</code>"

    return "".join(f"<div>Body (<code>{escape(kind)}</code>): {shape(c.get('schema', {}))}</div>" for kind, c in content.items())


def _responses(op: dict[str, Any]) -> str:
    items = []
    for code, r in op.get("responses", {}).items():
        schema = next(iter(r.get("content", {}).values()), {}).get("schema")
        shape = f" <code>{escape(_type(schema))}</code>" if schema else ""
        items.append(f"<li><b>{escape(code)}</b> {escape(r.get('description', ''))}{shape}</li>")
    return f"<ul>{''.join(items)}</ul>" if items else ""


def _schemas(spec: dict[str, Any]) -> str:
    out = []
    for name, schema in spec.get("components", {}).get("schemas", {}).items():
        props = schema.get("properties", {})
        required = set(schema.get("required", []))
        rows = "".join(f"<tr><td><code>{escape(p)}</code></td><td>{escape(_type(s))}</td><td>{'required' if p in required else ''}</td>"
                       f"<td>{_text(s.get('description', ''))}</td></tr>" for p, s in props.items())
        out.append(f"<details id='{escape(name)}'><summary><code>{escape(name)}</code> {escape(schema.get('description', ''))}</summary>"
                   f"<table>{rows}</table></details>")
    return "".join(out)


def docs_html(spec: dict[str, Any], openapi_url: str) -> str:
    """The page: every operation by tag with its parameters, body and answers, then every schema."""
    info = spec.get("info", {})
    by_tag: dict[str, list[str]] = {}
    for path, ops in spec.get("paths", {}).items():
        for method, op in ops.items():
            block = (f"<div class='op'><span class='m {escape(method)}'>{escape(method.upper())}</span> <code>{escape(path)}</code> "
                     f"<b>{escape(op.get('summary', ''))}</b><div class='muted'>{_text(op.get('description', ''))}</div>"
                     f"{_parameters(op)}{_body(op)}<details><summary>answers</summary>{_responses(op)}</details></div>")
            by_tag.setdefault((op.get("tags") or ["other"])[0], []).append(block)
    sections = "".join(f"<h2>{escape(tag)}</h2>{''.join(blocks)}" for tag, blocks in by_tag.items())
    return (f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{escape(info.get('title', 'API'))}</title>"
            f"<style>{STYLE}</style></head><body><h1>{escape(info.get('title', ''))} <small class='muted'>{escape(info.get('version', ''))}</small></h1>"
            f"<p>{_text(info.get('description', ''))}</p><p>The machine-readable description: <a href='{escape(openapi_url)}'>"
            f"{escape(openapi_url)}</a>.</p>{sections}<h2>Schemas</h2>{_schemas(spec)}</body></html>")
