"""The FastAPI app: routes, API key, CORS and the mapping of errors to HTTP statuses.

Build it with :func:`create_app`; ``kgrec serve`` runs it under uvicorn. Handlers are plain
functions (FastAPI runs them in its thread pool), so loading a new publication or waiting on
the graph store never blocks the event loop.
"""

from __future__ import annotations

import logging
import math
import secrets
import threading
from contextlib import asynccontextmanager
from typing import Annotated, Any

import numpy as np
import orjson
from fastapi import Depends, FastAPI, HTTPException, Path as PathParam, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from fastapi.security import APIKeyHeader

from serve.config import ServeConfig
from serve.errors import InvalidRequestError, NotFoundError, UnavailableError
from serve.publication import LoadedPublication, PublicationRegistry
from serve.ranking import Ranked, new_user, parse_near, published, similar_items
from serve.schemas import (MAX_K, ExplanationList, Health, NewUserRequest, PeopleList, RecommendationList,
                           SimilarItems)

log = logging.getLogger(__name__)

API_KEY_HEADER = "X-API-Key"
_api_key_header = APIKeyHeader(name=API_KEY_HEADER, auto_error=False,
                               description="needed when the server was started with an API key")

DomainParam = Annotated[str, PathParam(min_length=1, max_length=64, description="ecommerce, content, ...")]
IdParam = Annotated[str, PathParam(min_length=1, max_length=256)]


class _Encoder:
    """The query text encoder, loaded once per process on first use.

    A :class:`~text.encoders.QueryEncoder`: the same vector as ``encode_queries([text])`` (to
    float noise), from ONNX Runtime or a traced graph that releases the GIL, so ``parallel``
    passes run at once, one core each; queries that arrive while all are busy share the next.
    """

    def __init__(self, parallel: int = 1) -> None:
        self.parallel = parallel
        self._enc = None
        self._lock = threading.Lock()

    def encode(self, text: str) -> np.ndarray | None:
        if self._enc is None:
            with self._lock:
                if self._enc is None:
                    from text.encoders import EncoderConfig, QueryEncoder, TextEncoder

                    self._enc = QueryEncoder(TextEncoder(EncoderConfig(device="cpu")), parallel=self.parallel)
        vector, has_text = self._enc.encode(text)
        return vector[None, :] if has_text else None


def _store_opener(config: ServeConfig):
    """``domain -> GraphStore | None`` for explanations; a store that fails to open is logged."""
    if config.graph == "embedded":
        def open_embedded(domain: str):
            from kg.errors import GraphStoreError
            from kg.networkx_store import NetworkXStore

            path = config.out / domain / "graph" / "graph.pkl"
            if not path.exists():
                log.warning("no embedded graph at %s: %s is served without explanations", path, domain)
                return None
            try:
                return NetworkXStore(path)
            except GraphStoreError as e:
                log.warning("%s is served without explanations: %s", domain, e)
                return None
        return open_embedded

    shared: dict[str, Any] = {}
    lock = threading.Lock()

    def open_bolt(domain: str):
        from kg.errors import GraphStoreError
        from kg.neo4j_store import Neo4jStore
        from kg.server import Neo4jSettings

        with lock:
            if "store" not in shared:
                try:
                    settings = Neo4jSettings.from_env().model_copy(update={"uri": config.graph})
                    shared["store"] = Neo4jStore(settings)
                except (GraphStoreError, ValueError) as e:
                    log.warning("Neo4j at %s unavailable; serving without explanations: %s", config.graph, e)
                    return None
            return shared["store"]
    return open_bolt


def _explain_many(pub: LoadedPublication, user_id: str, item_ids: list[str], k: int,
                  history: int | None = None) -> dict[str, list[dict]] | None:
    """Explanations of several items for one user, one graph read for them all, through the
    items of the user's ``history`` latest interactions (None when no graph store is open)."""
    from kg.errors import GraphStoreError
    from kg.explain import explain_many

    if pub.store is None:
        return None
    try:
        found = explain_many(pub.store, pub.domain, user_id, item_ids, k=k, names=pub.names, history=history)
    except GraphStoreError as e:
        raise UnavailableError(f"the graph store cannot explain right now: {e}") from e
    return {item: [{"kind": str(p.kind), "sentence": p.sentence, "node_ids": list(p.node_ids),
                    "labels": [str(x) for x in p.labels]} for p in paths]
            for item, paths in found.items()}


def _items(pub: LoadedPublication, r: Ranked, explanations: dict[str, list[dict]] | None = None) -> list[dict]:
    """Response rows (:class:`RecommendedItem` as plain dicts, ready for JSON)."""
    out = []
    ids = pub.item_ids[r.items].tolist()
    dist = None if r.distance_km is None else r.distance_km.tolist()
    for n, (i, item_id, s, reason) in enumerate(zip(r.items.tolist(), ids, r.scores.tolist(), r.reasons.tolist())):
        d = None if dist is None else dist[n]
        out.append({
            "item_id": str(item_id), "rank": n + 1, "score": float(s) if math.isfinite(s) else 0.0,
            "reason": reason, "title": pub.titles[i], "categories": list(pub.categories[i]),
            "distance_km": d if d is not None and math.isfinite(d) else None,
            "explanations": None if explanations is None else explanations.get(str(item_id))})
    return out


def _json(payload: dict) -> Response:
    # The handlers build plain dicts shaped like their response_model (which documents them);
    # returning bytes skips FastAPI's second validation and its slower encoder.
    return Response(orjson.dumps(payload), media_type="application/json")


def create_app(config: ServeConfig | None = None) -> FastAPI:
    """The API over every publication under ``config.out``.

    Args:
        config: what to serve and how (defaults: ``out/``, embedded graph, no key, no CORS).
    """
    config = config or ServeConfig()
    registry = PublicationRegistry(config.out, config.check_interval_s, _store_opener(config))
    encoder = _Encoder(config.text_parallel)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        loaded = await run_in_threadpool(registry.load_all)
        if loaded:  # the first text query would otherwise pay for loading the model (seconds)
            await run_in_threadpool(encoder.encode, "warm up")
        log.info("kgrec API serving %s from %s", loaded or "nothing yet", config.out)
        yield

    app = FastAPI(title="kgrec", version="1", lifespan=lifespan,
                  summary="Recommendations from published runs, and for people the model has never seen.")
    app.state.registry = registry
    app.state.config = config

    if config.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=list(config.cors_origins),
                           allow_methods=["GET", "POST"], allow_headers=[API_KEY_HEADER, "Content-Type"])

    async def require_key(key: str | None = Security(_api_key_header)) -> None:  # async: no thread hop
        if config.api_key is None:
            return
        if key is None:
            raise HTTPException(401, f"missing {API_KEY_HEADER} header")
        if not secrets.compare_digest(key.encode(), config.api_key.get_secret_value().encode()):
            raise HTTPException(403, f"wrong {API_KEY_HEADER}")

    @app.exception_handler(NotFoundError)
    async def not_found(request: Request, e: NotFoundError):
        return JSONResponse({"detail": str(e)}, status_code=404)

    @app.exception_handler(InvalidRequestError)
    async def invalid(request: Request, e: InvalidRequestError):
        return JSONResponse({"detail": [{"loc": [e.where, e.field], "msg": str(e), "type": "value_error"}]},
                            status_code=422)

    @app.exception_handler(UnavailableError)
    async def unavailable(request: Request, e: UnavailableError):
        return JSONResponse({"detail": str(e)}, status_code=503)

    @app.exception_handler(RequestValidationError)
    async def bad_request(request: Request, e: RequestValidationError):
        # FastAPI's default echoes the input back: a 1 MB body would come back whole.
        errors = [{"loc": list(err.get("loc", ())), "msg": str(err.get("msg", ""))[:300],
                   "type": err.get("type", "value_error")} for err in e.errors()[:20]]
        return JSONResponse({"detail": errors}, status_code=422)

    @app.get("/healthz", response_model=Health, tags=["health"])
    def healthz() -> Health:
        """Always 200 while the process runs."""
        return Health(status="ok", domains=registry.loaded())

    @app.get("/readyz", response_model=Health, tags=["health"],
             responses={503: {"description": "no publication loaded yet"}})
    def readyz():
        """200 once at least one publication is loaded, 503 before."""
        loaded = registry.loaded() or registry.load_all()
        if not loaded:
            return JSONResponse({"status": "not ready", "domains": {}}, status_code=503)
        return Health(status="ready", domains=loaded)

    secured = [Depends(require_key)]
    errors = {401: {"description": "API key missing"}, 403: {"description": "API key wrong"},
              404: {"description": "unknown domain, user or item (the message says which)"},
              503: {"description": "publication or graph store unavailable"}}

    @app.get("/v1/{domain}/users/{user_id}/recommendations", response_model=RecommendationList,
             dependencies=secured, responses=errors, tags=["recommendations"])
    async def user_recommendations(
        domain: DomainParam,
        user_id: IdParam,
        k: Annotated[int, Query(ge=1, le=MAX_K)] = 20,
        diversity: Annotated[float, Query(ge=0, le=1, description="0 keeps the ranking, 1 maximises variety")] = 0.0,
        category: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
        near: Annotated[str | None, Query(max_length=100, description="lat,lon in degrees",
                                          examples=["48.8566,2.3522"])] = None,
        radius_km: Annotated[float | None, Query(gt=0, le=20_100)] = None,
        explain: bool = True,
    ) -> RecommendationList:
        """A known user's published recommendations, filtered and re-ranked on request."""
        # In memory: answered on the event loop (a thread hop would cost more than the work);
        # only a due check of `latest` (file reads, maybe a load) and the graph go to threads.
        pub = registry.current(domain) or await run_in_threadpool(registry.get, domain)
        point = parse_near(near)
        if radius_km is not None and point is None:
            raise InvalidRequestError("radius_km needs near", "radius_km")
        r = published(pub, user_id, k, diversity, category, point, radius_km)
        paths = None
        if explain and len(r):
            ids = [str(i) for i in pub.item_ids[r.items]]
            # The published list's paths come from the publication; the graph is read only for
            # items a filter or diversity brought in from beyond it.
            paths = {} if pub.explanations is None else \
                pub.explanations.get(user_id, ids, config.explain_paths, config.explain_history)
            if missing := [i for i in ids if i not in paths]:
                live = await run_in_threadpool(_explain_many, pub, user_id, missing, config.explain_paths,
                                               config.explain_history)
                paths = None if live is None and not paths else {**paths, **(live or {})}
        return _json({"domain": domain, "run_id": pub.run_id, "user_id": user_id,
                      "items": _items(pub, r, paths)})

    @app.post("/v1/{domain}/recommendations", response_model=RecommendationList, dependencies=secured,
              responses=errors, tags=["recommendations"])
    def new_user_recommendations(domain: DomainParam, body: NewUserRequest) -> RecommendationList:
        """Recommendations computed now for someone the model has never seen."""
        pub = registry.get(domain)
        if body.text is not None and len(body.text) > config.max_text_chars:
            raise InvalidRequestError(f"text has {len(body.text)} characters, at most "
                                      f"{config.max_text_chars} are read", "text", "body")
        history = pub.items_of(body.history, "history")
        friends = pub.users_of(body.friends, "friends")
        x = encoder.encode(body.text) if body.text and body.text.strip() else None
        point = (body.location.lat, body.location.lon) if body.location else None
        r = new_user(pub, x, history, friends, point, body.k, body.diversity, body.category, body.radius_km)
        return _json({"domain": domain, "run_id": pub.run_id, "user_id": None, "items": _items(pub, r)})

    @app.get("/v1/{domain}/items/{item_id}/similar", response_model=SimilarItems, dependencies=secured,
             responses=errors, tags=["items"])
    async def similar(domain: DomainParam, item_id: IdParam,
                      k: Annotated[int, Query(ge=1, le=MAX_K)] = 10) -> SimilarItems:
        """Related items: also-bought complements first (where the data has them), then similar ones."""
        pub = registry.current(domain) or await run_in_threadpool(registry.get, domain)
        r = similar_items(pub, item_id, k)
        return _json({"domain": domain, "run_id": pub.run_id, "item_id": item_id, "items": _items(pub, r)})

    @app.get("/v1/{domain}/users/{user_id}/people", response_model=PeopleList, dependencies=secured,
             responses=errors, tags=["people"])
    async def people_to_follow(domain: DomainParam, user_id: IdParam,
                               k: Annotated[int, Query(ge=1, le=MAX_K)] = 20) -> PeopleList:
        """People a known user may want to follow (domains with user links: social)."""
        pub = registry.current(domain) or await run_in_threadpool(registry.get, domain)
        if pub.people is None:
            raise NotFoundError(f"domain {domain!r} publishes no people to follow (its data has no user links)")
        pub.user(user_id)
        got = pub.people.get(user_id)
        rows = [] if got is None else [
            {"user_id": str(u), "rank": n + 1, "score": float(sc), "reason": str(r)}
            for n, (u, sc, r) in enumerate(zip(got.user_ids[:k], got.scores[:k], got.reasons[:k]))]
        return _json({"domain": domain, "run_id": pub.run_id, "user_id": user_id, "people": rows})

    @app.get("/v1/{domain}/users/{user_id}/items/{item_id}/explanation", response_model=ExplanationList,
             dependencies=secured, responses=errors, tags=["recommendations"])
    def explanation(domain: DomainParam, user_id: IdParam, item_id: IdParam,
                    k: Annotated[int, Query(ge=1, le=10)] = 4) -> ExplanationList:
        """Why an item may suit a user: paths from the knowledge graph, as sentences and node ids."""
        pub = registry.get(domain)
        pub.user(user_id)
        pub.item(item_id)
        paths = {} if pub.explanations is None else \
            pub.explanations.get(user_id, [item_id], k, config.explain_history)
        if item_id not in paths:
            if pub.store is None:
                raise UnavailableError(f"no graph store is open for domain {domain!r}")
            paths = _explain_many(pub, user_id, [item_id], k, config.explain_history) or {}
        return _json({"domain": domain, "run_id": pub.run_id, "user_id": user_id, "item_id": item_id,
                      "explanations": paths.get(item_id, [])})

    return app
