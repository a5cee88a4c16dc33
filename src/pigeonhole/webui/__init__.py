"""The web UI: one HTML page, a style sheet and JavaScript modules, served with the API.

The browser does the rendering: every page is a hash route (``#/projects``,
``#/p/<slug>/label``, ...) drawn by :file:`static/js/main.js` from the JSON of the
``/api/v1`` routes, so the UI adds no server logic and needs no build step. The API
key comes from the ``?api_key=`` of the URL that ``pigeonhole serve`` prints, or from
a small form, and is kept in the browser's ``localStorage``.

Example:
    >>> app = create_app(workspace, settings=ServerSettings())  # doctest: +SKIP
    >>> mount_webui(app)  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

#: The folder of ``index.html``, ``app.css`` and ``js/``, shipped inside the package.
STATIC = Path(__file__).parent / "static"

#: Where the static files are served; ``/`` serves ``index.html``.
STATIC_PATH = "/ui"


def mount_webui(app: FastAPI) -> None:
    """Serves the UI at ``/`` and its files under :data:`STATIC_PATH`.

    The page and its files need no key: they hold no data, and the page asks for a
    key before it calls the API.
    """
    from pigeonhole.webui.evaluation import router

    # Before the static mount, which would otherwise answer every /ui path.
    app.include_router(router)
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC), name="webui")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        # no-cache: the browser revalidates, so an upgrade shows up on reload.
        headers = {"Cache-Control": "no-cache"}
        return FileResponse(STATIC / "index.html", headers=headers)
