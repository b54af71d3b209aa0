"""Atomic publication: a run becomes `latest` only once complete; failures leave the last one."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from pathlib import Path

import pandas as pd
import pytest

from flows.publishing import (
    PublicationError,
    check_people,
    check_recommendations,
    clean_staging,
    latest_publication,
    new_run_id,
    publish,
)


def recs(run_id: str, users=("u1", "u2"), k=2, domain="content") -> pd.DataFrame:
    rows = []
    for u in users:
        for r in range(1, k + 1):
            rows.append({"domain": domain, "user_id": u, "rank": r, "item_id": f"i{r}",
                         "score": 1.0 / r, "reason": "gnn", "run_id": run_id})
    return pd.DataFrame(rows)


def test_publish_then_latest_points_to_it(tmp_path: Path):
    a = new_run_id()
    pub = publish(tmp_path, "content", a, recs(a), extra_files={"metrics.csv": pd.DataFrame({"m": [1]})})
    assert pub.recommendations.exists()
    assert latest_publication(tmp_path, "content").run_id == a
    b = new_run_id()
    publish(tmp_path, "content", b, recs(b))
    assert latest_publication(tmp_path, "content").run_id == b
    assert (tmp_path / "content" / a / "recommendations.parquet").exists()  # history kept
    back = pd.read_parquet(tmp_path / "content" / "latest" / "recommendations.parquet")
    assert list(back.columns) == ["domain", "user_id", "rank", "item_id", "score", "reason", "run_id"]


def test_other_domains_are_untouched(tmp_path: Path):
    a, b = new_run_id(), new_run_id()
    publish(tmp_path, "content", a, recs(a))
    publish(tmp_path, "travel", b, recs(b, domain="travel"))
    assert latest_publication(tmp_path, "content").run_id == a
    assert latest_publication(tmp_path, "travel").run_id == b


def test_check_refuses_seen_items_and_missing_users():
    r = new_run_id()
    seen = pd.DataFrame({"user_id": ["u1"], "item_id": ["i2"]})
    with pytest.raises(PublicationError, match="never_seen_item"):
        check_recommendations(recs(r), "content", r, pd.Series(["u1", "u2"]), 2, seen)
    with pytest.raises(PublicationError, match="every_user"):
        check_recommendations(recs(r), "content", r, pd.Series(["u1", "u2", "u3"]), 2)
    check_recommendations(recs(r), "content", r, pd.Series(["u1", "u2"]), 2)


def test_check_refuses_people_suggested_to_themselves_or_already_linked():
    r = new_run_id()
    users = pd.Series(["u1", "u2", "u3"])
    ok = pd.DataFrame({"domain": "social", "user_id": ["u1", "u2"], "rank": [1, 1],
                       "suggested_user_id": ["u3", "u3"], "score": [1.0, 0.5], "reason": ["friends", "gnn"],
                       "run_id": r})
    links = pd.DataFrame({"src_user_id": ["u2"], "dst_user_id": ["u1"]})
    check_people(ok, "social", r, users, 20, links)
    with pytest.raises(PublicationError, match=r"not_self.*'u2'"):
        check_people(ok.assign(suggested_user_id=["u3", "u2"]), "social", r, users, 20, links)
    # a link counts in both directions: u2 follows u1, so u1 is not offered u2
    with pytest.raises(PublicationError, match=r"not_already_linked.*'u1'"):
        check_people(ok.assign(suggested_user_id=["u2", "u3"]), "social", r, users, 20, links)
    with pytest.raises(PublicationError, match=r"known_users.*'ghost'"):
        check_people(ok.assign(suggested_user_id=["ghost", "u3"]), "social", r, users, 20, links)
    with pytest.raises(PublicationError, match="rank_range"):
        check_people(ok.assign(rank=[1, 21]), "social", r, users, 20, links)


def _slow_publish(out: str, run_id: str) -> None:
    import flows.publishing as p

    real = p._fsync_dir

    def stall(folder):
        real(folder)
        time.sleep(30)  # killed here: files written, not yet renamed into place

    p._fsync_dir = stall
    p.publish(out, "content", run_id, recs(run_id))


def test_killed_publish_never_becomes_latest(tmp_path: Path):
    good = new_run_id()
    publish(tmp_path, "content", good, recs(good))
    doomed = new_run_id()
    proc = mp.get_context("spawn").Process(target=_slow_publish, args=(str(tmp_path), doomed))
    proc.start()
    staging = tmp_path / "content" / f".staging-{doomed}"
    deadline = time.time() + 60
    while not (staging / "recommendations.parquet").exists() and time.time() < deadline:
        time.sleep(0.2)
    assert staging.exists()
    os.kill(proc.pid, signal.SIGKILL)
    proc.join()
    assert latest_publication(tmp_path, "content").run_id == good
    assert not (tmp_path / "content" / doomed).exists()
    assert clean_staging(tmp_path, "content") == [staging]
    assert pd.read_parquet(tmp_path / "content" / "latest" / "recommendations.parquet")["run_id"].eq(good).all()
