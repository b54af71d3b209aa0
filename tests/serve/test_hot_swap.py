"""A new publication is served without a restart, and requests in flight during the swap succeed."""

from __future__ import annotations

import threading
import time

import pandas as pd
from fastapi.testclient import TestClient

from flows.publishing import latest_publication, new_run_id, publish
from serve.app import create_app
from serve.config import ServeConfig


def republish(src_out, dst_out, domain="ecommerce") -> str:
    """Publish the files of ``src_out``'s latest run again under ``dst_out`` as a new run."""
    pub = latest_publication(src_out, domain)
    recs = pd.read_parquet(pub.recommendations)
    run_id = new_run_id()
    recs["run_id"] = run_id
    extra = {name: pd.read_parquet(pub.path / name)
             for name in ("items.parquet", "interactions.parquet", "user_links.parquet")}
    extra["model"] = pub.path / "model"
    publish(dst_out, domain, run_id, recs, extra_files=extra)
    return run_id


def test_new_publication_is_picked_up_without_restart(served_out, tmp_path):
    out = tmp_path / "out"
    first = republish(served_out, out)
    app = create_app(ServeConfig(out=out, check_interval_s=0))
    url = "/v1/ecommerce/users/u0001/recommendations?k=5&explain=false"
    with TestClient(app) as c:
        assert c.get(url).json()["run_id"] == first
        second = republish(served_out, out)
        assert second != first
        assert c.get(url).json()["run_id"] == second  # the very next request
        assert c.get("/readyz").json()["domains"]["ecommerce"] == second


def test_requests_in_flight_during_a_swap_all_succeed(served_out, tmp_path):
    out = tmp_path / "out"
    first = republish(served_out, out)
    app = create_app(ServeConfig(out=out, check_interval_s=0))
    url = "/v1/ecommerce/users/u0001/recommendations?k=5&explain=false"
    with TestClient(app) as c:
        assert c.get(url).json()["run_id"] == first
        answers: list[tuple[int, str, float, float]] = []  # status, run, sent, answered
        stop = threading.Event()

        def hammer():
            while not stop.is_set():
                sent = time.monotonic()
                r = c.get(url)
                answers.append((r.status_code, r.json().get("run_id", ""), sent, time.monotonic()))

        workers = [threading.Thread(target=hammer) for _ in range(2)]
        for w in workers:
            w.start()
        second = republish(served_out, out)
        deadline = time.monotonic() + 60
        # while one request loads the new run, the others keep answering from the old one
        while time.monotonic() < deadline and sum(run == second for _, run, _, _ in answers) < 5:
            stop.wait(0.05)
        stop.set()
        for w in workers:
            w.join()
        assert {status for status, *_ in answers} == {200}
        runs = {run for _, run, _, _ in answers}
        assert second in runs and runs <= {first, second}
        # once one answer came from the new run, every request sent after it gets the new run too
        # (a request already in flight may still finish on the old one: that is the point)
        swapped = min(answered for _, run, _, answered in answers if run == second)
        assert {run for _, run, sent, _ in answers if sent > swapped} == {second}
