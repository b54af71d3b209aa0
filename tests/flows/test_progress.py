"""Progress of a refresh on the command line: real flow runs under a real Prefect API."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from flows import progress
from flows.cli import app
from quality.synth import sample_path

STEPS = ["quality gate", "entities (ner)", "entity linking", "knowledge graph", "text embeddings",
         "training + scoring", "explanations", "publication"]


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple] = []

    def begin(self, step, total):
        self.events.append(("begin", step, total))

    def advance(self, step, units):
        self.events.append(("advance", step, units))

    def end(self, step, ok):
        self.events.append(("end", step, ok))


def test_a_failing_step_is_reported_failed_and_still_raises():
    rec = Recorder()
    previous = progress.install(rec)
    try:
        with pytest.raises(ZeroDivisionError), progress.step("broken", total=2):
            progress.advance("broken")
            1 / 0
    finally:
        progress.install(previous)
    assert rec.events == [("begin", "broken", 2), ("advance", "broken", 1), ("end", "broken", False)]
    # without a reporter nothing is recorded and nothing fails
    with progress.step("silent"):
        progress.advance("silent")
    assert len(rec.events) == 3


def test_refresh_reports_every_step_in_order(prefect_api, shared_cache, tmp_path):
    from flows.refresh import RefreshParams, refresh_domain

    rec = Recorder()
    previous = progress.install(rec)
    try:
        refresh_domain(RefreshParams(dataset_dir=str(sample_path("content")), out=str(tmp_path / "out"),
                                     cache_dir=str(shared_cache), evaluate=False, epochs=8, batch_items=150))
    finally:
        progress.install(previous)
    begun = [step for kind, step, _ in rec.events if kind == "begin"]
    assert begun == STEPS
    assert all(ok for kind, _, ok in rec.events if kind == "end")
    # 400 items in batches of 150: three extraction batches, each counted once
    assert ("begin", "entities (ner)", 3) in rec.events
    assert sum(n for kind, step, n in rec.events if kind == "advance" and step == "entities (ner)") == 3


def test_cli_draws_progress_bars_only_when_asked_or_on_a_terminal(prefect_api, shared_cache, tmp_path):
    runner = CliRunner()
    args = ["refresh", str(sample_path("content")), "--out", str(tmp_path / "out"), "--cache-dir",
            str(shared_cache), "--no-evaluate", "--epochs", "8"]
    shown = runner.invoke(app, [*args, "--progress"])
    assert shown.exit_code == 0, shown.output
    for step in STEPS:
        assert step in shown.stderr, (step, shown.stderr)
    assert "evaluation vs baselines" not in shown.stderr  # --no-evaluate: no such step
    assert "1/1" in shown.stderr  # bars end complete
    assert "[content] run " in shown.stdout  # the summary stays on stdout
    quiet = runner.invoke(app, args)  # stderr is not a terminal here: no bars by default
    assert quiet.exit_code == 0, quiet.output
    assert "━" not in quiet.stderr and "✓" not in quiet.stderr
