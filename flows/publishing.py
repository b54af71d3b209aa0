"""The output folder layout and atomic publication of recommendations.

Layout per domain::

    <out>/<domain>/<run_id>/recommendations.parquet   (+ explanations.parquet, metrics.csv, run.json, ...)
    <out>/<domain>/latest        -> <run_id>           (a symlink, plus LATEST with the run id)

A run writes into ``<out>/<domain>/.staging-<run_id>/`` and renames it to ``<run_id>`` only
when every file is complete; ``latest`` is switched last, with an atomic rename of a fresh
symlink. A crash at any point leaves the previous ``latest`` untouched and readable.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

REC_COLUMNS = ("domain", "user_id", "rank", "item_id", "score", "reason", "run_id")
REASONS = ("gnn", "text", "friends", "nearby", "popular", "history")
PEOPLE_COLUMNS = ("domain", "user_id", "rank", "suggested_user_id", "score", "reason", "run_id")
"""``people.parquet``: people to follow, published beside the lists where the domain has user links."""
PEOPLE_REASONS = ("friends", "gnn")


class PublicationError(ValueError):
    """Recommendations that break the output contract; nothing was published."""


@dataclass(frozen=True)
class Publication:
    """A published run: where it is and what it holds."""

    domain: str
    run_id: str
    path: Path
    n_users: int
    k: int

    @property
    def recommendations(self) -> Path:
        return self.path / "recommendations.parquet"


def new_run_id(now: datetime | None = None) -> str:
    """Sortable, filesystem-safe run id: UTC time plus a short random suffix."""
    now = now or datetime.now(timezone.utc)
    return now.strftime("%Y%m%dT%H%M%S") + "-" + os.urandom(3).hex()


def _refuser(what: str, domain: str):
    """A function that raises :class:`PublicationError` naming ``what``, the rule and up to five rows."""

    def refuse(rule: str, rows: pd.DataFrame | list) -> None:
        sample = rows.head(5).to_dict("records") if isinstance(rows, pd.DataFrame) else rows[:5]
        raise PublicationError(f"{what} for {domain} break rule '{rule}': e.g. {sample}")

    return refuse


def _check_frame(frame: pd.DataFrame, columns: tuple[str, ...], domain: str, run_id: str, refuse) -> None:
    """The rules every published table shares: its columns, one domain and one run."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        refuse("columns", [f"missing {missing}"])
    if (frame["domain"] != domain).any() or (frame["run_id"] != run_id).any():
        refuse("one_domain_one_run", frame[(frame["domain"] != domain) | (frame["run_id"] != run_id)])


def check_recommendations(
    recs: pd.DataFrame, domain: str, run_id: str, user_ids: pd.Series, k: int,
    seen: pd.DataFrame | None = None,
) -> None:
    """Refuse recommendations that break the contract in DESIGN.md.

    Every user gets ``min(k, catalogue size minus what they have seen)`` rows ranked 1..n, no
    item they interacted with, one run id and domain, finite scores.

    Raises:
        PublicationError: naming the rule and up to five offending rows.
    """
    refuse = _refuser("recommendations", domain)
    _check_frame(recs, REC_COLUMNS, domain, run_id, refuse)
    users = set(user_ids.astype(str))
    have = set(recs["user_id"].astype(str))
    if users - have:
        refuse("every_user", sorted(users - have))
    if have - users:
        refuse("known_users", sorted(have - users))
    if not pd.api.types.is_numeric_dtype(recs["score"]) or not recs["score"].notna().all():
        refuse("finite_score", recs[recs["score"].isna()])
    if recs["rank"].min() < 1 or recs["rank"].max() > k:
        refuse("rank_range", recs[(recs["rank"] < 1) | (recs["rank"] > k)])
    dup = recs.duplicated(["user_id", "item_id"], keep=False)
    if dup.any():
        refuse("no_repeat", recs[dup])
    if seen is not None and len(seen):
        clash = recs.merge(seen[["user_id", "item_id"]].drop_duplicates(), on=["user_id", "item_id"])
        if len(clash):
            refuse("never_seen_item", clash)


def check_people(people: pd.DataFrame, domain: str, run_id: str, user_ids: pd.Series, k: int,
                 links: pd.DataFrame | None = None) -> None:
    """Refuse people-to-follow rows that would embarrass: a user suggested to themselves or to
    someone who already links to them, unknown users, repeats, ranks outside 1..k.

    Raises:
        PublicationError: naming the rule and up to five offending rows.
    """
    refuse = _refuser("people to follow", domain)
    _check_frame(people, PEOPLE_COLUMNS, domain, run_id, refuse)
    users = set(user_ids.astype(str))
    unknown = ~people["user_id"].astype(str).isin(users) | ~people["suggested_user_id"].astype(str).isin(users)
    if unknown.any():
        refuse("known_users", people[unknown])
    self_ = people["user_id"].astype(str) == people["suggested_user_id"].astype(str)
    if self_.any():
        refuse("not_self", people[self_])
    if not pd.api.types.is_numeric_dtype(people["score"]) or not people["score"].notna().all():
        refuse("finite_score", people[people["score"].isna()])
    if len(people) and (people["rank"].min() < 1 or people["rank"].max() > k):
        refuse("rank_range", people[(people["rank"] < 1) | (people["rank"] > k)])
    dup = people.duplicated(["user_id", "suggested_user_id"], keep=False)
    if dup.any():
        refuse("no_repeat", people[dup])
    if not people["reason"].isin(PEOPLE_REASONS).all():
        refuse("reason", people[~people["reason"].isin(PEOPLE_REASONS)])
    if links is not None and len(links):
        a, b = links["src_user_id"].astype(str), links["dst_user_id"].astype(str)
        known = pd.DataFrame({"user_id": pd.concat([a, b]), "suggested_user_id": pd.concat([b, a])})
        clash = people.astype({"user_id": str, "suggested_user_id": str}).merge(known.drop_duplicates())
        if len(clash):
            refuse("not_already_linked", clash)


def _write_atomic_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def publish(
    out: str | Path,
    domain: str,
    run_id: str,
    recommendations: pd.DataFrame,
    extra_files: dict[str, Any] | None = None,
    run_info: dict[str, Any] | None = None,
) -> Publication:
    """Write a run's files under ``<out>/<domain>/<run_id>/`` and switch ``latest`` to it.

    Args:
        out: the output root.
        domain: the domain being published.
        run_id: the run's id (also the folder name).
        recommendations: rows with :data:`REC_COLUMNS`; check them first with
            :func:`check_recommendations`.
        extra_files: name → DataFrame (written as CSV), str (text), dict (JSON) or a Path
            (a file or folder copied in).
        run_info: metadata written to ``run.json``.

    Returns:
        The publication now pointed to by ``latest``.
    """
    base = Path(out) / domain
    base.mkdir(parents=True, exist_ok=True)
    final = base / run_id
    if final.exists():
        raise PublicationError(f"{final} already exists: run ids are never reused")
    staging = base / f".staging-{run_id}"
    if staging.exists():
        shutil.rmtree(staging)
    staging.mkdir()
    recs = recommendations.loc[:, list(REC_COLUMNS)].reset_index(drop=True)
    recs.to_parquet(staging / "recommendations.parquet", index=False)
    for name, content in (extra_files or {}).items():
        target = staging / name
        if isinstance(content, Path):
            if content.is_dir():
                shutil.copytree(content, target)
            else:
                shutil.copy2(content, target)
        elif isinstance(content, pd.DataFrame):
            if name.endswith(".parquet"):
                content.to_parquet(target, index=False)
            else:
                content.to_csv(target, index=False)
        elif isinstance(content, (dict, list)):
            target.write_text(json.dumps(content, indent=2, default=str), encoding="utf-8")
        else:
            target.write_text(str(content), encoding="utf-8")
    info = {
        "domain": domain,
        "run_id": run_id,
        "published_at": datetime.now(timezone.utc).isoformat(),
        "n_users": int(recs["user_id"].nunique()),
        "n_rows": int(len(recs)),
        "k": int(recs["rank"].max()) if len(recs) else 0,
        **(run_info or {}),
    }
    (staging / "run.json").write_text(json.dumps(info, indent=2, default=str), encoding="utf-8")
    _fsync_dir(staging)
    os.replace(staging, final)
    switch_latest(base, run_id)
    return Publication(domain, run_id, final, info["n_users"], info["k"])


def _fsync_dir(folder: Path) -> None:
    for p in folder.iterdir():
        if p.is_dir():
            continue
        with open(p, "rb") as fh:
            os.fsync(fh.fileno())


def switch_latest(base: Path, run_id: str) -> None:
    """Point ``<base>/latest`` at ``run_id`` atomically (symlink renamed over the old one)."""
    if not (base / run_id / "recommendations.parquet").exists():
        raise PublicationError(f"{base / run_id} is not a complete publication")
    tmp = base / f".latest-{os.getpid()}-{os.urandom(2).hex()}"
    os.symlink(run_id, tmp)
    os.replace(tmp, base / "latest")
    _write_atomic_text(base / "LATEST", run_id + "\n")


def latest_publication(out: str | Path, domain: str) -> Publication | None:
    """The publication ``latest`` points to, or ``None`` if the domain was never published."""
    base = Path(out) / domain
    link = base / "latest"
    run_id = None
    if link.is_symlink() or link.exists():
        run_id = os.readlink(link) if link.is_symlink() else None
    if run_id is None and (base / "LATEST").exists():
        run_id = (base / "LATEST").read_text(encoding="utf-8").strip()
    if not run_id:
        return None
    path = base / run_id
    info_path = path / "run.json"
    if not info_path.exists():
        return None
    info = json.loads(info_path.read_text(encoding="utf-8"))
    return Publication(domain, run_id, path, int(info.get("n_users", 0)), int(info.get("k", 0)))


def clean_staging(out: str | Path, domain: str) -> list[Path]:
    """Remove staging folders that crashed runs left behind; never touches published runs."""
    base = Path(out) / domain
    removed = []
    if base.exists():
        for p in base.glob(".staging-*"):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(p)
    return removed
