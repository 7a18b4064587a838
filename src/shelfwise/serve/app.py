"""The app factory of the online role, and `run_server` for `shelfwise serve`.

`create_app` builds the settings (through the config loader, from the environment,
unless given), a metrics registry of its own, the error handlers and the routes. The
bundle loads in the lifespan, off the event loop; tests pass a ready `engine` instead.
Until an engine is installed, `/readyz` and the model routes answer 503 `not-ready`.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import anyio.to_thread
from fastapi import FastAPI

from shelfwise._version import __version__
from shelfwise.config import ShelfwiseConfig, load_config
from shelfwise.errors import EXIT_CONFIG, ConfigError, ShelfwiseError
from shelfwise.privacy import UserPrivacy
from shelfwise.runtime.engine import Engine
from shelfwise.serve.console import install_console
from shelfwise.serve.drift_monitor import DriftMonitor
from shelfwise.serve.errors import install_error_handlers
from shelfwise.serve.experiments import ExperimentBook
from shelfwise.serve.holder import CHALLENGER, CHAMPION, ModelHolder, Role
from shelfwise.serve.lifecycle import freeze_heap, load_for_serving, serve_engine
from shelfwise.serve.loader import BundleLoader
from shelfwise.serve.metrics import ServeMetrics
from shelfwise.serve.middleware import RequestContextMiddleware
from shelfwise.serve.openapi import install_contract
from shelfwise.serve.privacy import PseudonymizeMiddleware, install_access_log_filter
from shelfwise.serve.routes import ROUTERS
from shelfwise.serve.routes.catalog import LiveCatalogService, open_live_catalog
from shelfwise.serve.rules_book import RulesBook
from shelfwise.serve.settings import ServeSettings
from shelfwise.serve.traffic import TrafficWatch
from shelfwise.serve.watcher import RegistryWatcher
from shelfwise.stores import EventLog, open_store
from shelfwise.stores.catalog_log import catalog_log_dir
from shelfwise.stores.event_log import event_log_dir
from shelfwise.stores.rules_log import RulesLog, rules_bus, rules_log_dir

logger = logging.getLogger("shelfwise.serve")

_DESCRIPTION = """\
Search and recommendations from a shelfwise model bundle.

* Every response carries `model_version` and `request_id` (also the `X-Request-ID`
  header; send your own to correlate logs).
* Every error is `{"code": ..., "message": ...}` with a stable code: `invalid-request`
  (422), `unknown-item` (404), `model-not-available` (404), `not-found` (404),
  `method-not-allowed` (405), `payload-too-large` (413), `not-ready` (503),
  `event-log-unavailable` (503, nothing of the batch was kept: send it again),
  `internal` (500); admin routes add `unauthorized` (401), `bundle-not-found`,
  `not-configured` and `experiment-not-found` (404), `reload-in-progress` and
  `experiment-conflict` (409).
* The limits are in this schema and enforced as written: `k` at most the server's
  `max_k`, a search query at most 256 characters, strict JSON types (`0` is not
  `false`, `"5"` is not `5`).
* When the personalised model cannot answer, responses say `"fallback": "popular"`.
"""

_TAGS = [
    {"name": "recommend", "description": "Personalised recommendations."},
    {"name": "search", "description": "Text search over the catalog."},
    {"name": "items", "description": "Item-to-item similarity."},
    {"name": "predict", "description": "Click probabilities from the click model."},
    {"name": "events", "description": "Shopper events: logged durably, used at once."},
    {"name": "operations", "description": "Health, readiness and metrics."},
    {
        "name": "catalog",
        "description": "Item updates online (admin token): new products, prices, stock, "
        "hiding; durable, replicated, served from the next request without retraining.",
    },
]


def create_app(
    settings: ServeSettings | None = None,
    *,
    engine: Engine | None = None,
    config: ShelfwiseConfig | None = None,
) -> FastAPI:
    """Build the FastAPI app.

    Args:
        settings: process settings; default the `serve:` section as `load_config` reads
            it from the environment (`SHELFWISE_SERVE_<KEY>`, `SHELFWISE_HOME`).
        engine: a loaded engine to serve at once (tests); otherwise the lifespan loads
            `settings.bundle_path`, or the app starts not ready when that is unset.
        config: the whole config (`shelfwise serve` passes it): its `privacy:` section
            and state folder; `settings`, when given, replace its `serve:` section.

    Returns:
        The app, with its own metrics registry in `app.state.metrics`.

    Raises:
        SystemExit: (settings=None) a `SHELFWISE_*` variable is unknown or invalid; the
            reason is printed as one line on stderr (exit code 3, as the CLI's).
    """
    # Given settings stand for a config with nothing else set: the event log is then
    # theirs, or $SHELFWISE_HOME's, as for any config without `home`.
    config = _whole_config(settings, config)
    resolved = config.serve
    _log_like_uvicorn(resolved.log_level)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        holder: ModelHolder = app.state.holder
        loader: BundleLoader = app.state.loader
        live: LiveCatalogService = app.state.live_catalog
        # catalog updates made online: replayed before anything is answered
        await anyio.to_thread.run_sync(live.start)
        if not holder.ready and resolved.bundle_path is not None:
            load = partial(load_for_serving, resolved.bundle_path, resolved)
            try:
                loaded = await anyio.to_thread.run_sync(load)
            except ShelfwiseError as exc:
                logger.error("cannot load bundle %s: %s", resolved.bundle_path, exc.message)
                raise
            install_engine(app, loaded)
            logger.info("serving bundle %s (version %s)", loaded.path, loaded.version)
            # this frame lives as long as the server: only the holder may keep the engine,
            # or a swap could never release it
            del loaded
        challenger_path = resolved.challenger_path
        if holder.models.challenger is None and challenger_path is not None:
            await anyio.to_thread.run_sync(
                partial(loader.load, lambda: challenger_path, CHALLENGER, source="startup")
            )
        watcher = None
        if resolved.registry_uri is not None:
            watcher = app.state.watcher = RegistryWatcher(loader)
            try:  # the first poll before serving, so the champion is there at once
                await anyio.to_thread.run_sync(watcher.poll_once)
            except ShelfwiseError as exc:
                logger.warning("registry watch: %s", exc.message)
            watcher.start()
        if resolved.freeze_heap:
            freeze_heap()
        drift = None
        if resolved.drift_interval_s > 0:
            drift = DriftMonitor(holder, app.state.metrics, resolved, app.state.event_log.root)
            drift.start()
        try:
            yield
        finally:
            if watcher is not None:
                watcher.stop()
            if drift is not None:
                drift.stop()
            loader.close()
            app.state.event_log.close()
            app.state.store.close()
            app.state.rules.close()
            live.close()

    app = FastAPI(
        title="shelfwise",
        version=__version__,
        description=_DESCRIPTION,
        openapi_tags=_TAGS,
        lifespan=lifespan,
    )
    app.state.settings = resolved
    # user ids hashed at the edge (privacy.pseudonymize_users): refused without a key
    app.state.privacy = UserPrivacy.open(config.privacy, config.state_dir())
    install_access_log_filter()
    app.state.metrics = ServeMetrics()
    app.state.store = open_store(
        resolved.online_store_url,
        timeout=resolved.online_store_timeout_s,
        observer=app.state.metrics,
    )
    app.state.event_log = EventLog(event_log_dir(config))
    app.state.traffic_watch = TrafficWatch(config.data.fake_traffic)  # fake-traffic counters
    # merchandising rules: the rules log next to the event log, plus serve.rules_file
    app.state.rules = RulesBook.open(
        RulesLog(rules_log_dir(config)),
        resolved.rules_file,
        rules_bus(resolved.online_store_url, timeout=resolved.online_store_timeout_s),
    )
    app.state.live_catalog = open_live_catalog(
        catalog_log_dir(config),
        resolved.online_store_url,
        resolved.online_store_timeout_s,
        hide_out_of_stock=resolved.hide_out_of_stock,
    )
    app.state.holder = ModelHolder(
        canary_fraction=resolved.canary_fraction,
        shadow_fraction=resolved.shadow_fraction,
        live=app.state.live_catalog.live,
    )
    app.state.loader = BundleLoader(app.state.holder, app.state.metrics, resolved)
    app.state.experiments = ExperimentBook(app.state.store, app.state.metrics)
    app.state.watcher = None
    if engine is not None:
        install_engine(app, engine)
    install_error_handlers(app)
    app.add_middleware(PseudonymizeMiddleware, privacy=app.state.privacy)  # inside the next
    app.add_middleware(
        RequestContextMiddleware,
        metrics=app.state.metrics,
        max_body_bytes=resolved.max_body_bytes,
    )
    for router in ROUTERS:
        app.include_router(router)
    if resolved.admin_enabled:
        from shelfwise.serve.routes import admin, catalog, experiments, rules

        app.include_router(admin.router)
        app.include_router(catalog.router)
        app.include_router(rules.router)
        from shelfwise.serve.routes import users

        app.include_router(users.router)  # DELETE /v1/users/{id}: forget a user
        app.include_router(experiments.router)
    install_console(app, resolved, config.state_dir())  # /console, when someone can log in
    install_contract(app, resolved)
    return app


def _whole_config(
    settings: ServeSettings | None, config: ShelfwiseConfig | None
) -> ShelfwiseConfig:
    """The CLI's config with `settings` as its serve section; given settings alone stand
    for a config with nothing else set; neither: the config from the environment."""
    if config is not None:
        return config if settings is None else config.model_copy(update={"serve": settings})
    return ShelfwiseConfig(serve=settings) if settings is not None else _config_or_exit()


def _config_or_exit() -> ShelfwiseConfig:
    """The config from the environment; a config error ends the process with one line.

    `uvicorn --factory` calls `create_app()`: a raised ConfigError would print a
    40-line traceback around the one line that matters (issue 14).
    """
    try:
        config = load_config()
        UserPrivacy.open(config.privacy, config.state_dir())  # a missing privacy key too
        return config
    except ConfigError as exc:
        message = " ".join(line.strip() for line in exc.message.splitlines())
        print(f"error[{exc.code}]: {message}", file=sys.stderr)  # noqa: T201 - before logging
        raise SystemExit(EXIT_CONFIG) from None


def _log_like_uvicorn(level: str) -> None:
    """Show the service's own log lines (loads, swaps, precomputing) next to uvicorn's.

    uvicorn configures only its own loggers; without a handler the `shelfwise` logger's
    INFO lines would be dropped. Added once per process; records still propagate.
    """
    package = logging.getLogger("shelfwise")
    if not any(getattr(h, "_shelfwise_serve", False) for h in package.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
        handler._shelfwise_serve = True  # type: ignore[attr-defined]
        package.addHandler(handler)
    package.setLevel(level.upper())


def install_engine(app: FastAPI, engine: Engine, role: Role = CHAMPION) -> None:
    """Serve `engine` as `role` from now on (one reference swap; requests in flight finish)."""
    serve_engine(app.state.holder, app.state.metrics, engine, role)


def run_server(settings: ServeSettings, *, config: ShelfwiseConfig | None = None) -> None:
    """Load the bundle, then run the service with uvicorn until interrupted.

    Raises:
        BundleNotFoundError, IntegrityError, ManifestError, ArtifactError: the bundle
            at `settings.bundle_path` cannot be served.
    """
    import uvicorn  # the serve extra; imported here so `import shelfwise.serve` stays light

    _log_like_uvicorn(settings.log_level)
    # Load before listening, so a bad bundle fails the command with its own message.
    engine = (
        load_for_serving(settings.bundle_path, settings)
        if settings.bundle_path is not None
        else None
    )
    app = create_app(settings, engine=engine, config=config)
    del engine  # the holder's reference only: a swap can then release it
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_keep_alive=settings.keep_alive_s,
    )
