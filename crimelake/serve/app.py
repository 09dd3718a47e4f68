"""The crime map: a FastAPI app serving the map page and its GeoJSON/JSON API over the lake.

Every request is checked against the caller's role (crimelake.serve.access) and the rate limits
(crimelake.serve.guards); refused requests are written to the audit log in batches off the request path, as are
views of record-level incidents and prediction traces. The page and everything it loads
(Leaflet, Swagger UI for /docs) are served from installed packages: the map works with no internet.
"""

import contextlib
import logging
from pathlib import Path
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

from crimelake import audit
from crimelake.config import Settings
from crimelake.serve.access import PUBLIC, AccessError, KeyRing, Principal
from crimelake.serve.geography import geography_router
from crimelake.serve.guards import AuditBuffer, Limits, TooManyRequests
from crimelake.serve.interventions import interventions_router
from crimelake.serve.layers import (
    DETAIL_BBOX_MAX_KM2,
    DETAIL_H3_RESOLUTION,
    GROUPS,
    INCIDENTS_PAGE_MAX,
    PAGE_MAX,
    BBox,
    Forbidden,
    Layers,
    NotFound,
    RequestError,
)
from crimelake.serve.store import LakeView
from crimelake.serve.tiles import TileServer, tile_server

log = logging.getLogger("crimelake.serve")
STATIC = Path(__file__).parent / "static"

Group = Literal["all_crime", "asb", "violence", "theft", "weapons"]
Month = Annotated[str | None, Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$", description="YYYY-MM; default the latest",
                                     examples=["2025-12"])]
ForceQ = Annotated[str | None, Query(description="data.police.uk force slug, e.g. bedfordshire; default all")]
BBoxQ = Annotated[str | None, Query(description="min_lon,min_lat,max_lon,max_lat (WGS84)",
                                    examples=["-0.6,51.9,-0.3,52.2"])]
Limit = Annotated[int, Query(ge=1, le=PAGE_MAX, description=f"page size, at most {PAGE_MAX}")]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
Resolution = Annotated[int | None, Query(
    description="H3 resolution: 7 (public grid, ~5 km²) or 9 (street level, ~0.1 km²); default the finest the "
                "caller may see")]


def _errors(*statuses: int) -> dict:
    """The error answers an endpoint can give, for the OpenAPI document (each is `{"detail": message}`)."""
    meaning = {400: "a value outside the data (a month out of range, a bbox outside England and Wales)",
               401: "an unknown or revoked API key", 403: "more detail than the caller's role allows",
               404: "an unknown force, cell or prediction, or nothing published yet",
               413: "a street-level area larger than the limit",
               422: "a malformed parameter (the message names it and the value)"}
    return {s: {"description": meaning[s], "content": {"application/json": {"example": {"detail": "..."}}}}
            for s in statuses}


GEOJSON = {200: {"description": "a GeoJSON FeatureCollection of H3 cell polygons, with `numberMatched`, "
                                "`numberReturned`, `limit`, `offset` and `next` (the next page's URL or null)",
                 "content": {"application/geo+json": {}}}}


# Reference geography is large, repetitive GeoJSON: the force areas are 432 KB, 117 KB gzipped. Level 6 gives within 1%
# of level 9's size at a third of its time (50 ms against 171 ms for the force areas). Below about one TCP segment
# compressing saves no round trip and only costs CPU, so small answers go as they are.
GZIP_PREFIX = "/api/geography/"
GZIP_MIN_BYTES = 1400
GZIP_LEVEL = 6


class GZipUnder:
    """Starlette's GZipMiddleware for requests under one path prefix only, the rest passed through untouched."""

    def __init__(self, app: ASGIApp, prefix: str, **options) -> None:
        self.app, self.prefix = app, prefix
        self.gzip = GZipMiddleware(app, **options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(self.prefix):
            await self.gzip(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def create_app(settings: Settings, *, refresh_seconds: float | None = None) -> FastAPI:
    """The map app over one crimelake home."""
    view = LakeView(settings, refresh_seconds)
    layers = Layers(view)
    keys = KeyRing(settings)
    tiles: TileServer | None = tile_server()
    audits = AuditBuffer(settings)
    limits = Limits.from_env()

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        audits.close()  # what is queued reaches the log before the server stops

    app = FastAPI(
        lifespan=lifespan,
        title="crimelake map API",
        version="1",
        summary="Where recorded crime concentrates, how it moves and where it is forecast next, by role.",
        description=(
            "GeoJSON layers over H3 cells and JSON lookups. Without a key the caller is `public`: aggregates "
            "on the H3 resolution 7 grid with counts below 5 suppressed and the rest rounded to 5. Send "
            "`Authorization: Bearer <key>` (or `X-API-Key`) for analyst, auditor or admin access. Layers are "
            "paged (`limit`, `offset`, and a `next` link); street-level requests need a force or a small bbox."),
        docs_url=None, redoc_url=None,
    )

    app.state.audits = audits
    app.state.limits = limits
    # Added before the header middleware below, so it sits inside it and sees each answer whole: outside it, every
    # body arrives as a stream and would be compressed whatever its size.
    app.add_middleware(GZipUnder, prefix=GZIP_PREFIX, minimum_size=GZIP_MIN_BYTES, compresslevel=GZIP_LEVEL)

    def record(who: Principal, action: str, target: str, detail: dict) -> None:
        # Queued and written in batches off the request path (crimelake.serve.guards.AuditBuffer).
        audits.add(action, target, detail, who=who.name or "public")

    def address(request: Request) -> str:
        return request.client.host if request.client else "unknown"

    # Declared as security schemes so /docs offers an Authorize button; neither refuses a missing key itself.
    bearer = HTTPBearer(auto_error=False, description="an API key from `crimelake access add`")
    api_key_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="the same key, as a header")

    def principal(request: Request,
                  credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)] = None,
                  header_key: Annotated[str | None, Depends(api_key_header)] = None) -> Principal:
        key = credentials.credentials.strip() if credentials else header_key
        if not key and request.headers.get("authorization"):
            raise RequestError("the Authorization header must be `Bearer <key>`", 401)
        if not key:
            return PUBLIC
        wait = limits.refusals.peek(f"refused:{address(request)}")
        if wait is not None:
            raise TooManyRequests("too many refused requests from this address: keys are not checked for now",
                                  wait)
        try:
            who = keys.resolve(key)
        except AccessError as e:
            log.error("%s", e)
            raise RequestError(f"the server's key list cannot be read: {e}", 500) from None
        if who is None:
            raise RequestError("unknown or revoked API key; send no key for the public view", 401)
        request.state.principal = who
        wait = limits.requests.take(f"key:{who.name}")
        if wait is not None:
            raise TooManyRequests(f"too many requests with the key {who.name}", wait)
        return who

    Who = Annotated[Principal, Depends(principal)]

    @app.exception_handler(RequestError)
    async def _request_error(request: Request, exc: RequestError):
        if exc.status in (401, 403):
            _log_refusal(request, exc.status, str(exc))
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else {}
        if isinstance(exc, TooManyRequests):
            headers["Retry-After"] = str(exc.retry_after)
        return JSONResponse({"detail": str(exc)}, status_code=exc.status, headers=headers or None)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        problems = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p not in ("query", "path"))
            problems.append(f"{where}: {err.get('msg')}" + (f" (got {err['input']!r})" if "input" in err else ""))
        return JSONResponse({"detail": "; ".join(problems), "errors": [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg")} for e in exc.errors()]}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)

    def _log_refusal(request: Request, status: int, reason: str) -> None:
        if status == 401:  # an unknown key: what guessing keys looks like (a 403 is a known key asking too much)
            limits.refusals.take(f"refused:{address(request)}")
        who = getattr(request.state, "principal", PUBLIC)
        log.warning("refused %s %s for %s: %s", request.method, request.url.path, who.describe(), reason)
        record(who, "refused", request.url.path, {
            "status": status, "reason": reason, "role": who.role, "query": str(request.url.query),
            "client": request.client.host if request.client else None})

    @app.middleware("http")
    async def _headers(request: Request, call_next):
        if request.url.path.startswith("/api/"):
            wait = limits.requests.take(f"address:{address(request)}")
            if wait is not None:
                limited = TooManyRequests("too many requests from this address", wait)
                return JSONResponse({"detail": str(limited)}, status_code=429,
                                    headers={"Retry-After": str(limited.retry_after), "Cache-Control": "no-store"})
        response = await call_next(request)
        img = "'self' data:" + (f" {tiles.origin}" if tiles else "")
        script = "'self' 'unsafe-inline'" if request.url.path == "/docs" else "'self'"
        response.headers["Content-Security-Policy"] = (
            f"default-src 'self'; script-src {script}; style-src 'self' 'unsafe-inline'; img-src {img}; "
            "connect-src 'self'; frame-ancestors 'none'")
        response.headers["X-Content-Type-Options"] = "nosniff"
        # Layers change with every release: never cached. Reference geography is fixed: its own cache headers.
        if request.url.path.startswith("/api/") and not request.url.path.startswith("/api/geography/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    def paged(request: Request, body: dict, limit: int, offset: int) -> JSONResponse:
        more = offset + body["numberReturned"] < body["numberMatched"]
        body["limit"], body["offset"] = limit, offset
        body["next"] = str(request.url.include_query_params(offset=offset + limit)) if more else None
        # The body is plain JSON types already; skipping FastAPI's encoder walk halves a large layer's time.
        return JSONResponse(body)

    # ----- pages ---------------------------------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    def index():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="crimelake map API",
                                   swagger_js_url="/static/vendor/swagger/swagger-ui-bundle.js",
                                   swagger_css_url="/static/vendor/swagger/swagger-ui.css",
                                   swagger_favicon_url="/static/vendor/swagger/favicon-32x32.png")

    app.mount("/static/app", StaticFiles(directory=STATIC), name="app")
    app.mount("/static/vendor/leaflet", StaticFiles(packages=[("js_lib_leaflet", "static/js_lib_leaflet")]),
              name="leaflet")
    app.mount("/static/vendor/swagger",
              StaticFiles(packages=[("swagger_ui", "static")]), name="swagger")
    app.include_router(geography_router(settings))
    app.include_router(interventions_router(settings, principal, record))

    # ----- API -----------------------------------------------------------------------------------------------
    @app.get("/api/meta", responses=_errors(401),
             tags=["map"], summary="What there is to see, for this caller, and how fresh it is")
    def meta(who: Who) -> dict:
        months = layers.months()
        forces = layers.forces()
        tables = [view.info(t) for t in ("gold/fct_cell_month_counts", "gold/coverage", "public/cell_month_counts",
                                         "public/cell_month_counts_all_forces",
                                         "ml/predictions", "ml/emerging_hotspots")]
        landed = view.landed_at()
        refreshed = max((t.updated_at for t in tables if t.updated_at), default=None)
        detail_forces = [f["slug"] for f in forces if who.may_see_detail(f["slug"])]
        gaps_from, gaps = layers.no_data()
        return {
            "role": who.role, "principal": who.name, "analyst_force": who.force if who.role == "analyst" else None,
            "groups": [{"slug": k, "name": v} for k, v in GROUPS.items()], "default_group": "all_crime",
            "months": months, "latest_month": months[-1] if months else None,
            "forces": forces, "detail_forces": detail_forces,
            # Which forces have no data (or only part of it) in which month: not sensitive, shown to everyone.
            "no_data_forces": {m: gaps[m] for m in months if m in gaps}, "no_data_from": gaps_from,
            "resolutions": {"public": 7, "detail": DETAIL_H3_RESOLUTION},
            "can_trace": who.can_trace, "can_audit": who.can_audit,
            "can_see_emerging": bool(detail_forces), "can_see_incidents": bool(detail_forces),
            "freshness": {"latest_month": months[-1] if months else None,
                          "landed_at": landed.isoformat() if landed else None,
                          "refreshed_at": refreshed.isoformat() if refreshed else None,
                          "tables": [{"table": t.table, "version": t.version,
                                      "updated_at": t.updated_at.isoformat() if t.updated_at else None}
                                     for t in tables]},
            "forecast": layers.forecast_summary(),
            "tiles": tiles.public() if tiles else None,
            # The page asks for /api/meta this often to notice new table versions (never more than every 5 s).
            "poll_seconds": max(5.0, view.refresh_seconds),
            "limits": {"page_max": PAGE_MAX, "incidents_page_max": INCIDENTS_PAGE_MAX,
                       "detail_bbox_km2": DETAIL_BBOX_MAX_KM2},
        }

    @app.get("/api/layers/counts", responses={**GEOJSON, **_errors(400, 401, 403, 404, 413, 422)},
             tags=["layers"], summary="Recorded offences per H3 cell for one month (GeoJSON)")
    def counts(request: Request, who: Who, month: Month = None, group: Group = "all_crime", force: ForceQ = None,
               measure: Literal["count", "per_km2"] = "count", resolution: Resolution = None, bbox: BBoxQ = None,
               limit: Limit = PAGE_MAX, offset: Offset = 0) -> JSONResponse:
        box = BBox.parse(bbox) if bbox else None
        body = layers.counts(who, month=month, group=group, force=force, measure=measure, resolution=resolution,
                             bbox=box, limit=limit, offset=offset)
        return paged(request, body, limit, offset)

    @app.get("/api/layers/forecast", responses={**GEOJSON, **_errors(400, 401, 403, 404, 413, 422)},
             tags=["layers"],
             summary="Next month's forecast per cell with the top 1% and 5% hot spots flagged (GeoJSON)")
    def forecast(request: Request, who: Who, group: Group = "all_crime", force: ForceQ = None,
                 resolution: Resolution = None,
                 hotspots: Annotated[Literal["1", "5", "all"], Query(
                     description="only the top 1% or 5% of cells, or all")] = "5",
                 bbox: BBoxQ = None, limit: Limit = PAGE_MAX, offset: Offset = 0) -> JSONResponse:
        box = BBox.parse(bbox) if bbox else None
        body = layers.forecast(who, group=group, force=force, resolution=resolution, hotspots=hotspots, bbox=box,
                               limit=limit, offset=offset)
        return paged(request, body, limit, offset)

    @app.get("/api/layers/emerging", responses={**GEOJSON, **_errors(400, 401, 403, 404, 413, 422)},
             tags=["layers"],
             summary="Emerging hot spot classes of street-level cells (GeoJSON; analyst, auditor, admin)")
    def emerging(request: Request, who: Who, group: Group = "all_crime", force: ForceQ = None,
                 category: Annotated[str | None, Query(description="e.g. New Hot Spot")] = None,
                 bbox: BBoxQ = None, limit: Limit = PAGE_MAX, offset: Offset = 0) -> JSONResponse:
        box = BBox.parse(bbox) if bbox else None
        body = layers.emerging(who, group=group, force=force, category=category, bbox=box, limit=limit,
                               offset=offset)
        return paged(request, body, limit, offset)

    @app.get("/api/cells/{h3_cell}", responses=_errors(401, 403, 404, 422),
             tags=["cells"], summary="One cell: monthly history, forecast, emerging class")
    def cell(h3_cell: str, who: Who, group: Group = "all_crime", force: ForceQ = None) -> dict:
        return layers.cell(who, h3_cell, group=group, force=force)

    @app.get("/api/cells/{h3_cell}/incidents", responses=_errors(400, 401, 403, 404, 422), tags=["cells"],
             summary="Record-level incidents of one street-level cell and month (analyst, auditor, admin)")
    def incidents(request: Request, h3_cell: str, who: Who, month: Month = None,
                  group: Annotated[Literal["all_crime", "asb", "violence", "theft", "weapons", "any"], Query(
                      description="the incidents a group's count is made of, or any")] = "all_crime",
                  limit: Annotated[int, Query(ge=1, le=INCIDENTS_PAGE_MAX)] = 50,
                  offset: Offset = 0,
                  format: Annotated[Literal["json", "csv"], Query(
                      description="csv: every incident of the cell and month the caller may see, as a file")]
                  = "json") -> Response:
        if format == "csv":
            body = layers.incidents(who, h3_cell, month=month, group=group, limit=INCIDENTS_EXPORT_MAX, offset=0)
            record(who, "export", h3_cell, {"what": "incidents", "month": body["month"], "group": group,
                                            "rows": body["numberReturned"], "role": who.role})
            return _csv(body["items"], f"incidents-{h3_cell}-{body['month']}-{group}.csv")
        body = layers.incidents(who, h3_cell, month=month, group=group, limit=limit, offset=offset)
        record(who, "view", h3_cell, {"what": "incidents", "month": body["month"], "group": group,
                                      "rows": body["numberReturned"],
                                      "role": who.role})
        return paged(request, body, limit, offset)

    @app.get("/api/forces/totals", responses=_errors(401, 404, 422),
             tags=["forces"], summary="Monthly totals per force (public, protected)")
    def force_totals(who: Who, group: Group = "all_crime", force: ForceQ = None) -> dict:
        return layers.force_totals(group=group, force=force)

    @app.get("/api/trace/{prediction_id}", responses=_errors(401, 403, 404, 422), tags=["audit"],
             summary="Trace one prediction back to its model, tables, rows and files (auditor, admin)")
    def trace(prediction_id: Annotated[str, PathParam(pattern=r"^[0-9a-f]{32}$")], who: Who,
              rehash: Annotated[bool, Query(description="read every extract file again rather than trust a digest "
                                                        "taken when its size and modification time were as now")]
              = False) -> dict:
        import json

        from crimelake.trace import trace as run_trace

        if not who.can_trace:
            raise Forbidden(f"tracing predictions needs an auditor or admin key (caller: {who.describe()})")
        try:
            result = run_trace(settings, prediction_id, rehash=rehash)
        except LookupError as e:
            raise NotFound(str(e)) from None
        record(who, "view", prediction_id, {"what": "trace", "verified": result.ok, "role": who.role,
                                            "rehash": rehash})
        return json.loads(result.to_json())

    @app.get("/api/audit", responses=_errors(401, 403, 422),
             tags=["audit"], summary="The audit log, newest first (auditor, admin)")
    def audit_log(request: Request, who: Who,
                  action: Annotated[str | None, Query(description=f"one of {', '.join(sorted(audit.ACTIONS))}")]
                  = None, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                  offset: Offset = 0) -> JSONResponse:
        if not who.can_audit:
            raise Forbidden(f"the audit log needs an auditor or admin key (caller: {who.describe()})")
        if action is not None and action not in audit.ACTIONS:
            raise RequestError(f"action {action!r}: one of {', '.join(sorted(audit.ACTIONS))}", 422)
        audits.flush()  # entries still queued belong in the answer
        rows = [r for r in reversed(audit.entries(settings)) if action is None or r["action"] == action]
        items = [{**r, "at": r["at"].isoformat()} for r in rows[offset:offset + limit]]
        return paged(request, {"items": items, "numberMatched": len(rows), "numberReturned": len(items)},
                     limit, offset)

    @app.get("/api/access", responses=_errors(401, 403),
             tags=["admin"], summary="The API keys in use (names and roles, never keys)")
    def access(who: Who) -> dict:
        if who.role != "admin":
            raise Forbidden(f"the key list needs an admin key (caller: {who.describe()})")
        return {"keys": [{"name": e.name, "role": e.role, "force": e.force, "created_at": e.created_at,
                          "origin": e.origin} for e in keys.entries()]}

    if _missing_assets():
        raise RuntimeError(f"the map page is missing from the install: {', '.join(_missing_assets())}")
    return app


INCIDENTS_EXPORT_MAX = 10_000  # rows in one cell-month export (a street-level cell holds far fewer)
INCIDENT_CSV_COLUMNS = ["incident_id", "force", "recorded_month", "occurred_date", "category_name", "outcome",
                        "outcome_month", "longitude", "latitude", "source", "knife_enabled", "police_discovered"]


def _csv(items: list[dict], filename: str) -> Response:
    import csv
    import io

    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=INCIDENT_CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(items)
    return Response(out.getvalue(), media_type="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _missing_assets() -> list[str]:
    return [name for name in ("index.html", "app.js", "app.css", "geography.js") if not (STATIC / name).is_file()]


@contextlib.contextmanager
def serving(settings: Settings, refresh_seconds: float = 0):
    """The map app over `settings`' lake, served by uvicorn in a thread on a free loopback port (for tests and
    benchmarks); yields its base URL and stops the server on exit."""
    import socket
    import threading
    import time

    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(create_app(settings, refresh_seconds=refresh_seconds), host="127.0.0.1",
                                           port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the map server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def serve(settings: Settings, host: str = "127.0.0.1", port: int = 8080) -> None:
    import uvicorn

    uvicorn.run(create_app(settings), host=host, port=port, log_level="info")

