"""Published runs held in memory, and the registry that swaps in a new one without a restart.

A request takes one :class:`LoadedPublication` reference and uses only it, so a swap never
changes what a request in flight reads. The registry re-reads each domain's ``latest`` pointer at
most every ``check_interval_s``; when it moved, the new run is loaded completely and then the
reference is replaced (a single assignment). While one request loads, the others keep answering
from the previous publication.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from serve.errors import NotFoundError, UnavailableError

log = logging.getLogger(__name__)

#: What a domain name may look like (it becomes a folder name under ``out``).
DOMAIN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


@dataclass(frozen=True)
class PublishedExplanations:
    """The explanation paths a refresh published for every item of every published list
    (``explanations.parquet``), held as the API's response rows.

    Attributes:
        paths: how many paths per item were published (the best first).
        history: the history cap they were read with (None: the whole history).
        by_user: user id → item id → paths, each the JSON of a path dict (``kind``,
            ``sentence``, ``node_ids``, ``labels``) as an ``orjson.Fragment``; every item of
            the user's published list is there, with an empty list when the graph had no path.
    """

    paths: int
    history: int | None
    by_user: dict[str, dict[str, list[Any]]]

    def get(self, user_id: str, item_ids: list[str], k: int, history: int | None) -> dict[str, list[Any]]:
        """The first ``k`` published paths of each of ``item_ids`` that the user's published
        list holds; empty when they were published with another history cap or fewer paths
        (a read of ``k`` paths gives the first ``k`` of a read of more, so a prefix is exact)."""
        mine = self.by_user.get(user_id)
        if mine is None or k > self.paths or history != self.history:
            return {}
        return {i: p[:k] for i in item_ids if (p := mine.get(i)) is not None}


def _load_explanations(path: Path, lists: dict[str, UserList], item_ids: np.ndarray) -> PublishedExplanations | None:
    """``explanations.parquet`` of a publication (None when it has none)."""
    import orjson
    import pyarrow.parquet as pq

    from kg.explain import read_explanations_meta

    if not path.exists():
        return None
    meta = read_explanations_meta(path)
    table = pq.read_table(path)
    by_user: dict[str, dict[str, list[Any]]] = {
        u: {str(i): [] for i in item_ids[lst.items]} for u, lst in lists.items()}
    cols = [table.column(c).to_pylist() for c in ("user_id", "item_id", "kind", "sentence", "node_ids", "labels")]
    for user_id, item_id, kind, sentence, node_ids, labels in zip(*cols):
        paths = by_user.get(str(user_id), {}).get(str(item_id))
        if paths is not None:   # rows are in path order
            # Held as its JSON, which a response embeds without encoding it again: 324 bytes per
            # path on ml-latest-small, against 743 as a dict. The copy drops the spare capacity
            # orjson's output keeps (4,141 bytes per path without it).
            paths.append(orjson.Fragment(bytes(memoryview(orjson.dumps(
                {"kind": kind, "sentence": sentence, "node_ids": node_ids, "labels": labels})))))
    return PublishedExplanations(int(meta["paths"]), meta["history"], by_user)


@dataclass(frozen=True)
class UserList:
    """One user's published list, best first (indices into the item vocabulary)."""

    items: np.ndarray
    scores: np.ndarray
    reasons: np.ndarray


@dataclass(frozen=True)
class PeopleToFollow:
    """One user's published people to follow, best first (user ids)."""

    user_ids: np.ndarray
    scores: np.ndarray
    reasons: np.ndarray


class _Titles(Mapping):
    """Item id → title (or None), a view over the publication's arrays."""

    def __init__(self, index: dict[str, int], titles: np.ndarray):
        self.index, self.titles = index, titles

    def __getitem__(self, item_id: str) -> str | None:
        t = self.titles[self.index[item_id]]
        return None if t is None else str(t)

    def __iter__(self):
        return iter(self.index)

    def __len__(self) -> int:
        return len(self.index)


@dataclass(eq=False)
class LoadedPublication:
    """Everything one published run needs to answer requests, aligned with the item vocabulary.

    Attributes:
        domain / run_id / path: which publication.
        item_ids / user_ids: the model's vocabularies (index order).
        titles / categories: per item.
        z_item / z_user: final GNN states; dot product = score.
        x_item / has_text_item: L2-normalised item text embeddings.
        item_ok / user_ok: nodes the model can place.
        popularity: interaction count per item.
        item_pos: ``[n_items, 2]`` lat/lon (NaN unknown), or None for domains without places.
        lists: published list per user id.
        seen: item indices each user index interacted with (never recommended back).
        also_buy: complements per item index, where the data has ``also_buy``.
        model: the trained network (places new users from text and friends).
        store: the graph store explanations read (None when the graph is unavailable).
        explanations: the paths published with the lists (None when the refresh published
            none): a list's explanations come from there, the graph is read only for others.
        names: display names for explanations (a :class:`kg.explain.NameCache`): item titles
            come from ``titles``; entity and category names read from the graph are kept with
            the publication, so a request reads only names no earlier request quoted.
    """

    domain: str
    run_id: str
    path: Path
    item_ids: np.ndarray
    user_ids: np.ndarray
    item_index: dict[str, int]
    user_index: dict[str, int]
    titles: np.ndarray
    categories: list[tuple[str, ...]]
    category_index: dict[str, np.ndarray]
    z_item: np.ndarray
    z_user: np.ndarray
    x_item: np.ndarray
    has_text_item: np.ndarray
    item_ok: np.ndarray
    user_ok: np.ndarray
    popularity: np.ndarray
    item_pos: np.ndarray | None
    lists: dict[str, UserList]
    seen: dict[int, np.ndarray]
    also_buy: dict[int, np.ndarray]
    model: Any
    store: Any = None
    explanations: PublishedExplanations | None = None
    #: people to follow per user id, best first (None: the domain publishes none)
    people: dict[str, PeopleToFollow] | None = None
    names: dict = field(init=False, repr=False)
    loaded_at: float = field(default_factory=time.time)
    #: ``x_item`` transposed (``[dim, n_items]``, contiguous): one query against every item is
    #: a row-vector product that streams it about twice as fast as ``x_item @ q``.
    x_item_t: np.ndarray = field(init=False, repr=False)
    #: Items with a finite popularity, most popular first, ties by index: what
    #: :func:`serve.ranking.popular` takes its head from instead of sorting on every request.
    popular_order: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        from kg.explain import NameCache

        # The publication holds every item's title: explanations read only entity and category
        # names from the graph (an extra round trip per request while the cache was cold).
        self.names = NameCache(_Titles(self.item_index, self.titles))
        self.x_item_t = np.ascontiguousarray(self.x_item.T)
        s = np.log1p(np.asarray(self.popularity, dtype=np.float64))
        finite = np.flatnonzero(np.isfinite(s))
        self.popular_order = finite[np.lexsort((finite, -s[finite]))]

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def item(self, item_id: str) -> int:
        """Index of an item id, or :class:`NotFoundError` naming it."""
        i = self.item_index.get(item_id)
        if i is None:
            raise NotFoundError(f"item {item_id!r} is not in domain {self.domain!r} "
                                f"(publication {self.run_id})")
        return i

    def user(self, user_id: str) -> int:
        """Index of a user id, or :class:`NotFoundError` naming it."""
        u = self.user_index.get(user_id)
        if u is None:
            raise NotFoundError(f"user {user_id!r} is not in domain {self.domain!r} "
                                f"(publication {self.run_id})")
        return u

    def items_of(self, ids: list[str], what: str) -> np.ndarray:
        """Indices of item ids; :class:`NotFoundError` naming up to five unknown ones."""
        missing = [i for i in ids if i not in self.item_index]
        if missing:
            raise NotFoundError(f"{len(missing)} {what} item id(s) not in domain {self.domain!r}: "
                                f"{missing[:5]}")
        return np.array([self.item_index[i] for i in dict.fromkeys(ids)], dtype=np.int64)

    def users_of(self, ids: list[str], what: str) -> list[int]:
        """Indices of user ids; :class:`NotFoundError` naming up to five unknown ones."""
        missing = [u for u in ids if u not in self.user_index]
        if missing:
            raise NotFoundError(f"{len(missing)} {what} user id(s) not in domain {self.domain!r}: "
                                f"{missing[:5]}")
        return [self.user_index[u] for u in dict.fromkeys(ids)]


def _np(v) -> np.ndarray | None:
    if v is None:
        return None
    return v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v)


def _split_ids(v) -> tuple[str, ...]:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ()
    return tuple(p.strip() for p in str(v).split("|") if p.strip())


def _freeze_model(model) -> None:
    """Compute what the frozen network derives from the whole graph once: its layer states, the
    final states and node degrees. Every new-user call would otherwise redo them (propagation
    over the whole graph, a stack and mean over all nodes, a bincount over every edge: tens of
    ms per request on ml-latest-small, where the request's own work is under one)."""
    states = model.layer_states()
    model.layer_states = lambda: states  # instance attributes shadow the methods
    final = model.embeddings()
    model.embeddings = lambda: final
    graph = getattr(model, "graph", None)
    if graph is not None and hasattr(graph, "degree"):
        degrees: dict[tuple, Any] = {}
        degree = graph.degree

        def cached_degree(node_type: str, relation=None):
            key = (node_type, relation)
            if key not in degrees:
                degrees[key] = degree(node_type, relation)
            return degrees[key]

        graph.degree = cached_degree


def load_publication(path: Path, domain: str, run_id: str, store: Any = None) -> LoadedPublication:
    """Read one publication folder into memory.

    Raises:
        UnavailableError: a file the API needs is missing or unreadable.
    """
    import torch

    try:
        # The model folder is the project's own output (pickles run code from the file; never
        # point ``out`` at files from elsewhere).
        serving = torch.load(path / "model" / "serving.pt", weights_only=False)
        model = torch.load(path / "model" / "kgrec_model.pt", weights_only=False)
        recs = pd.read_parquet(path / "recommendations.parquet")
        items = pd.read_parquet(path / "items.parquet")
        inter_path = path / "interactions.parquet"
        inter = pd.read_parquet(inter_path, columns=["user_id", "item_id"]) if inter_path.exists() \
            else pd.DataFrame({"user_id": [], "item_id": []})
    except (OSError, RuntimeError, ValueError, KeyError, EOFError) as e:
        raise UnavailableError(f"publication {path} cannot be read: {type(e).__name__}: {e}") from e
    _freeze_model(model)

    item_ids = np.asarray(serving["vocab"]["item"], dtype=object)
    user_ids = np.asarray(serving["vocab"]["user"], dtype=object)
    item_index = {str(i): n for n, i in enumerate(item_ids)}
    user_index = {str(u): n for n, u in enumerate(user_ids)}
    meta = items.astype({"item_id": str}).set_index("item_id").reindex(item_ids)
    titles = meta["title"].astype(object).where(meta["title"].notna(), None).to_numpy() \
        if "title" in meta else np.full(len(item_ids), None, dtype=object)
    categories = [_split_ids(c) for c in meta["category"]] if "category" in meta \
        else [()] * len(item_ids)
    by_cat: dict[str, list[int]] = {}
    for n, cats in enumerate(categories):
        for c in {c.lower() for c in cats} | ({"|".join(cats).lower()} if cats else set()):
            by_cat.setdefault(c, []).append(n)
    category_index = {c: np.asarray(v, dtype=np.int64) for c, v in by_cat.items()}
    also_buy: dict[int, np.ndarray] = {}
    if "also_buy" in meta:
        for n, v in enumerate(meta["also_buy"]):
            known = [item_index[i] for i in _split_ids(v) if i in item_index and item_index[i] != n]
            if known:
                also_buy[n] = np.asarray(list(dict.fromkeys(known)), dtype=np.int64)

    recs = recs.sort_values(["user_id", "rank"], kind="stable")
    ridx = recs["item_id"].astype(str).map(item_index)
    recs = recs[ridx.notna()].assign(_i=ridx[ridx.notna()].astype(np.int64))
    lists = {}
    for uid, g in recs.groupby("user_id", sort=False):
        lists[str(uid)] = UserList(g["_i"].to_numpy(), g["score"].to_numpy(np.float64),
                                   g["reason"].astype(str).to_numpy(dtype=object))
    try:
        explanations = _load_explanations(path / "explanations.parquet", lists, item_ids)
    except (OSError, ValueError, KeyError) as e:
        raise UnavailableError(f"publication {path} has unreadable explanations: {type(e).__name__}: {e}") from e
    people = None
    if (path / "people.parquet").exists():
        try:
            frame = pd.read_parquet(path / "people.parquet").sort_values(["user_id", "rank"], kind="stable")
        except (OSError, ValueError) as e:
            raise UnavailableError(f"publication {path} has unreadable people.parquet: {type(e).__name__}: {e}") from e
        people = {str(u): PeopleToFollow(g["suggested_user_id"].astype(str).to_numpy(dtype=object),
                                         g["score"].to_numpy(np.float64),
                                         g["reason"].astype(str).to_numpy(dtype=object))
                  for u, g in frame.groupby("user_id", sort=False)}
    iu = inter["user_id"].astype(str).map(user_index)
    ii = inter["item_id"].astype(str).map(item_index)
    ok = iu.notna() & ii.notna()
    pairs = pd.DataFrame({"u": iu[ok].astype(np.int64), "i": ii[ok].astype(np.int64)})
    seen = {int(u): np.unique(g.to_numpy()) for u, g in pairs.groupby("u")["i"]}

    x_item = _np(serving.get("x_item"))
    has_text = _np(serving.get("has_text_item"))
    n = len(item_ids)
    if x_item is None:
        x_item = np.zeros((n, 1), dtype=np.float32)
        has_text = np.zeros(n, dtype=bool)
    x_item = np.ascontiguousarray(x_item, dtype=np.float32)
    has_text = np.ones(n, dtype=bool) if has_text is None else has_text.astype(bool)
    pos = _np(serving.get("item_pos"))
    if pos is not None:
        pos = np.asarray(pos, dtype=np.float64).reshape(-1, 2)
        if not np.isfinite(pos).any():
            pos = None
    return LoadedPublication(
        domain=domain, run_id=run_id, path=path, item_ids=item_ids, user_ids=user_ids,
        item_index=item_index, user_index=user_index, titles=titles, categories=categories,
        category_index=category_index,
        z_item=np.ascontiguousarray(_np(serving["z_item"]), dtype=np.float32),
        z_user=np.ascontiguousarray(_np(serving["z_user"]), dtype=np.float32),
        x_item=x_item, has_text_item=has_text,
        item_ok=_np(serving["item_ok"]).astype(bool), user_ok=_np(serving["user_ok"]).astype(bool),
        popularity=np.asarray(_np(serving["popularity"]), dtype=np.float64),
        item_pos=pos, lists=lists, seen=seen, also_buy=also_buy, model=model, store=store,
        explanations=explanations, people=people)


def read_latest_target(out: Path, domain: str) -> str | None:
    """The run id ``<out>/<domain>/latest`` points to (or ``LATEST`` names), without loading it."""
    base = out / domain
    try:
        return os.readlink(base / "latest")
    except OSError:
        pass
    try:
        return (base / "LATEST").read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


class PublicationRegistry:
    """The publication served for each domain, swapped when ``latest`` moves.

    Args:
        out: the output root.
        check_interval_s: least time between two reads of a domain's ``latest`` pointer.
        open_store: ``(domain) -> GraphStore | None`` for a newly loaded publication's
            explanations (called after the files loaded; None when explanations are off).
    """

    def __init__(self, out: Path, check_interval_s: float = 2.0, open_store=None) -> None:
        self.out = Path(out)
        self.check_interval_s = check_interval_s
        self.open_store = open_store
        self._current: dict[str, LoadedPublication] = {}
        self._checked: dict[str, float] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def domains(self) -> list[str]:
        """Domains with a publication under ``out`` (whether loaded yet or not)."""
        try:
            names = os.listdir(self.out)
        except OSError:
            return []
        return sorted(d for d in names if DOMAIN_PATTERN.match(d)
                      and read_latest_target(self.out, d) is not None)

    def loaded(self) -> dict[str, str]:
        """Domain → run id of what is in memory now."""
        return {d: p.run_id for d, p in sorted(self._current.items())}

    def load_all(self) -> dict[str, str]:
        """Load (or refresh) every domain found; a domain that fails to load is logged and skipped."""
        for d in self.domains():
            try:
                self.get(d)
            except (NotFoundError, UnavailableError) as e:
                log.warning("domain %s not served: %s", d, e)
        return self.loaded()

    def _lock(self, domain: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(domain, threading.Lock())

    def current(self, domain: str) -> LoadedPublication | None:
        """The loaded publication when ``latest`` was checked less than ``check_interval_s``
        ago, else None (then :meth:`get`, which may read files, decides). Never blocks, so
        async handlers call it on the event loop."""
        cur = self._current.get(domain)
        if cur is not None and time.monotonic() - self._checked.get(domain, 0.0) < self.check_interval_s:
            return cur
        return None

    def get(self, domain: str) -> LoadedPublication:
        """The publication to answer with for ``domain``.

        Raises:
            NotFoundError: the domain has never been published under ``out``.
            UnavailableError: its publication exists but cannot be read (and none is loaded).
        """
        cur = self._current.get(domain)
        now = time.monotonic()
        if cur is not None and now - self._checked.get(domain, 0.0) < self.check_interval_s:
            return cur
        if not DOMAIN_PATTERN.match(domain):
            raise NotFoundError(f"domain {domain[:80]!r} is not served (known: {self.domains()})")
        self._checked[domain] = now
        target = read_latest_target(self.out, domain)
        if target is None:
            if cur is not None:  # the pointer vanished: keep answering with what we have
                return cur
            raise NotFoundError(f"domain {domain!r} is not served (known: {self.domains()})")
        if cur is not None and cur.run_id == target:
            return cur
        lock = self._lock(domain)
        if not lock.acquire(blocking=cur is None):
            return cur  # another request is loading the new run; answer from the current one
        try:
            cur = self._current.get(domain)
            if cur is not None and cur.run_id == target:
                return cur
            path = self.out / domain / target
            try:
                loaded = load_publication(path, domain, target)
                if self.open_store is not None:
                    loaded.store = self.open_store(domain)
            except UnavailableError:
                if cur is not None:
                    log.exception("keeping %s/%s: the new publication %s failed to load",
                                  domain, cur.run_id, target)
                    return cur
                raise
            self._current[domain] = loaded
            log.info("serving %s publication %s", domain, target)
            return loaded
        finally:
            lock.release()
