"""The HTTP API (the seed's paths and the dashboard's) and the dashboard's static files.

Every route reads and writes the custom resources with the caller's own Kubernetes
identity (web/identity.py), so RBAC decides: a 403 from the API server is the answer's
403. The operations are the service layer's (alecton/service/); the answers are made by
the pure functions of web/views.py; the routes are in web/routes/, one router per area.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from alecton import __version__, gc_tuning
from alecton.service.server_settings import handed_settings
from alecton.web.caller_views import ViewPool
from alecton.web.errors import JSONLines, install_error_handlers
from alecton.web.routes import (
    applications,
    dashboard,
    deployments,
    diff,
    dora,
    events,
    freezes,
    images,
    promotions,
)
from alecton.web.security import BodyLimit, Guard, SecurityHeaders
from alecton.web.settings import WebSettings

__all__ = ["WebSettings", "app_from_handed_settings", "asgi", "create_app"]


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    gc_tuning.tune()  # started: what exists now lives as long as the process
    yield
    # Stopping: end the callers' watches and close their connections.
    await app.state.views.close()
    await app.state.settings.identity.close()


def create_app(settings: WebSettings) -> FastAPI:
    app = FastAPI(
        lifespan=_lifespan,
        title="alecton",
        version=__version__,
        summary="Deploy CI-recorded container images through Helm charts. Every request acts with the "
        "caller's own Kubernetes identity.",
        docs_url=None,
        redoc_url=None,
        default_response_class=JSONLines,
    )
    app.state.settings = settings
    app.state.diff_slots = diff.diff_slots()
    app.state.views = ViewPool()  # each caller's cached overview (web/caller_views.py)
    install_error_handlers(app)
    # Outermost last: the limit applies to the guard's own answers too. SecurityHeaders
    # wraps everything in `asgi()`, error pages included.
    app.add_middleware(Guard, session=settings.session)
    app.add_middleware(BodyLimit)
    # The seed's operations first, then what the dashboard needs.
    for area in (images, applications, deployments, promotions, freezes, diff, events, dora, dashboard):
        app.include_router(area.router)
    app.mount("/static", StaticFiles(directory=str(dashboard.STATIC)), name="static")
    return app


def asgi(settings: WebSettings) -> Any:
    """The app as served: security headers on every answer, error pages included."""
    return SecurityHeaders(create_app(settings))


def app_from_handed_settings() -> Any:
    """uvicorn's app factory for `alecton dashboard` and `alecton web`
    (service.server_settings.SERVER_APP_FACTORY)."""
    return asgi(WebSettings.of(handed_settings()))
