"""Server-rendered pages: one Jinja2 environment (autoescaped) for the dashboard and sign-in."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from agent.web.access import PRINCIPAL, Principal

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"

_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES),
    autoescape=jinja2.select_autoescape(default=True, default_for_string=True),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def environment() -> jinja2.Environment:
    return _env


def render(
    request: web.Request, template: str, *, status: int = 200, **context: Any
) -> web.Response:
    """Renders a page; every page knows who is signed in and the CSRF token to echo."""
    who = request.get(PRINCIPAL)
    context.setdefault("principal", who if isinstance(who, Principal) else None)
    context.setdefault("csrf_token", who.csrf_token if isinstance(who, Principal) else "")
    context.setdefault("path", request.path)
    body = _env.get_template(template).render(**context)
    response = web.Response(text=body, status=status, content_type="text/html", charset="utf-8")
    response.headers["Cache-Control"] = "no-store"
    return response
