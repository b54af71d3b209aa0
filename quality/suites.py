"""Great Expectations 1.x suites built in code from the contract, and the runner the gate uses.

One function per contract file returns an ``ExpectationSuite``; every expectation carries a
``notes`` string saying why the rule exists and a ``meta`` naming the contract file, column and
rule, so a failure can be reported in the contract's words (``rating``, not ``rating__number``).
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import pandas as pd

from quality.contract import EVENTS, LINK_KINDS, DatasetManifest, file_spec, required_columns
from quality.errors import RuleFailure

log = logging.getLogger("kgrec.quality")

NUM, UNIX, KNOWN, SELF, BADTIME = "__number", "__unix", "__known", "__self_link", "__unparsed"

#: Columns parsed as numbers / as timestamps, per contract file.
NUMBER_COLUMNS: dict[str, tuple[str, ...]] = {
    "users": ("lat", "lon"),
    "items": ("lat", "lon"),
    "interactions": ("rating", "weight"),
    "user_links": (),
}
TIME_COLUMNS: dict[str, tuple[str, ...]] = {
    "users": (),
    "items": (),
    "interactions": ("timestamp",),
    "user_links": ("timestamp",),
}
TEXT_COLUMNS: dict[str, tuple[str, ...]] = {
    "users": ("profile_text",),
    "items": ("title", "description", "category"),
    "interactions": ("review_text",),
    "user_links": (),
}
NUMBER_REGEX = r"^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$"


def _gx():
    import great_expectations as gx
    import great_expectations.expectations as gxe

    return gx, gxe


def _meta(file: str, column: str, rule: str) -> dict[str, str]:
    return {"file": file, "column": column, "rule": rule}


def build_suite(
    stem: str,
    frame: pd.DataFrame,
    filename: str,
    manifest: DatasetManifest,
    config: Any,
):
    """The suite for one contract file, given the columns actually present in ``frame``.

    Args:
        stem: contract file stem (``users``, ``items``, ``interactions``, ``user_links``).
        frame: the file's raw text frame with the gate's derived helper columns.
        filename: the file name to report (``items.csv`` or ``items.parquet``).
        manifest: the parsed ``dataset.yaml`` (domain, declared rating range).
        config: the gate's ``GateConfig``.
    """
    gx, gxe = _gx()
    suite = gx.ExpectationSuite(name=f"kgrec_{manifest.domain}_{stem}")
    spec = file_spec(stem)
    present = set(frame.columns)
    domain = manifest.domain

    def add(exp, column: str, rule: str) -> None:
        exp.meta = _meta(filename, column, rule)
        suite.add_expectation(exp)

    for col in required_columns(stem, domain):
        why = f"the contract requires '{col}' in {stem}"
        if col in ("lat", "lon") and domain == "travel":
            why = "travel items are places: recommendations by location need coordinates"
        add(gxe.ExpectColumnToExist(column=col, notes=why), col, "column_exists")

    for col in spec.required_columns + tuple(required_columns(stem, domain)):
        if col in present:
            add(gxe.ExpectColumnValuesToNotBeNull(
                column=col, notes=f"'{col}' is required on every row of {stem}"), col, "not_null")
    for col in spec.key:
        if col in present:
            add(gxe.ExpectColumnValuesToBeUnique(
                column=col, notes="ids join users, items and interactions; a repeated id is ambiguous"),
                col, "unique")

    for col in NUMBER_COLUMNS[stem]:
        if col not in present:
            continue
        add(gxe.ExpectColumnValuesToMatchRegex(
            column=col, regex=NUMBER_REGEX,
            notes=f"'{col}' is a finite number; text, NaN and infinity cannot be scored"),
            col, "finite_number")
    if stem in ("users", "items"):
        for col, lim in (("lat", 90.0), ("lon", 180.0)):
            if col in present:
                add(gxe.ExpectColumnValuesToBeBetween(
                    column=col + NUM, min_value=-lim, max_value=lim,
                    notes=f"{'latitude' if col == 'lat' else 'longitude'} lies within ±{lim:g} degrees"),
                    col, "coordinate_range")
    if stem == "interactions" and "rating" in present and manifest.rating_range:
        lo, hi = manifest.rating_range
        add(gxe.ExpectColumnValuesToBeBetween(
            column="rating" + NUM, min_value=lo, max_value=hi,
            notes=f"dataset.yaml declares ratings on [{lo:g}, {hi:g}]"), "rating", "rating_range")

    for col in TIME_COLUMNS[stem]:
        if col not in present:
            continue
        add(gxe.ExpectColumnValuesToBeInSet(
            column=col + BADTIME, value_set=[False],
            notes="timestamps are ISO-8601 text or unix seconds; the temporal split needs them"),
            col, "parseable_timestamp")
        add(gxe.ExpectColumnValuesToBeBetween(
            column=col + UNIX,
            min_value=config.earliest.timestamp(),
            max_value=config.latest_unix(),
            notes=(f"timestamps after {config.earliest.date()} and not in the future "
                   f"(tolerance {config.future_tolerance_s:g}s): anything else is a clock or unit error")),
            col, "timestamp_window")

    for col in TEXT_COLUMNS[stem]:
        if col not in present:
            continue
        add(gxe.ExpectColumnValueLengthsToBeBetween(
            column=col, min_value=0, max_value=config.max_text_chars,
            notes=f"text cells are capped at {config.max_text_chars} characters: longer ones are "
                  "pasted files, not descriptions, and would stall the encoders"),
            col, "text_length")
    if stem == "items" and "title" in present:
        add(gxe.ExpectColumnValuesToMatchRegex(
            column="title", regex=r"\S",
            notes="an item without a title cannot be shown to a person or embedded"),
            "title", "non_empty_title")

    if stem == "interactions":
        if "event" in present:
            add(gxe.ExpectColumnValuesToBeInSet(
                column="event", value_set=list(EVENTS),
                notes="events map to interaction weights; unknown kinds would be silently ignored"),
                "event", "event_in_set")
        for col, what in (("user_id", "users"), ("item_id", "items")):
            if col + KNOWN in present:
                add(gxe.ExpectColumnValuesToBeInSet(
                    column=col + KNOWN, value_set=[True],
                    notes=f"every interaction's {col} must exist in {what} (referential integrity)"),
                    col, f"known_{what[:-1]}")
        key = [c for c in ("user_id", "item_id", "timestamp") if c in present]
        if len(key) == 3:
            add(gxe.ExpectCompoundColumnsToBeUnique(
                column_list=key, mostly=1.0 - config.duplicate_fail_share,
                notes=(f"repeated (user, item, timestamp) rows double-count an interaction; "
                       f"up to {config.duplicate_fail_share:.1%} are dropped with a warning, more "
                       "means a broken export")),
                "user_id,item_id,timestamp", "duplicate_rows")

    if stem == "user_links":
        if "kind" in present:
            add(gxe.ExpectColumnValuesToBeInSet(
                column="kind", value_set=list(LINK_KINDS),
                notes="link kinds are friend, follow or trust"), "kind", "kind_in_set")
        for col in ("src_user_id", "dst_user_id"):
            if col + KNOWN in present:
                add(gxe.ExpectColumnValuesToBeInSet(
                    column=col + KNOWN, value_set=[True],
                    notes=f"both ends of a link must exist in users ({col})"), col, "known_user")
        if "src_user_id" + SELF in present:
            add(gxe.ExpectColumnValuesToBeInSet(
                column="src_user_id" + SELF, value_set=[False],
                notes="a user following themself carries no signal and breaks friend-based cold start"),
                "src_user_id,dst_user_id", "no_self_link")
    return suite


def _context(docs_dir: str | Path | None):
    gx, _ = _gx()
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    cfg = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        progress_bars=ProgressBarsConfig(globally=False),
    )
    context = gx.get_context(mode="ephemeral", project_config=cfg)
    if docs_dir is not None:
        Path(docs_dir).mkdir(parents=True, exist_ok=True)
        context.add_data_docs_site(
            site_name="kgrec",
            site_config={
                "class_name": "SiteBuilder",
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(Path(docs_dir).resolve()),
                },
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            },
        )
    return context


def _examples(frame: pd.DataFrame, result: dict, columns: list[str], n: int) -> tuple[dict, ...]:
    idx = result.get("partial_unexpected_index_list") or result.get("unexpected_index_list") or []
    rows = []
    for entry in idx[:n]:
        i = entry.get("index") if isinstance(entry, dict) else entry
        if i is None or i not in frame.index:
            continue
        row: dict[str, Any] = {"row": int(i) + 1}
        for c in columns:
            if c in frame.columns:
                v = frame.at[i, c]
                row[c] = None if pd.isna(v) else v
        rows.append(row)
    if not rows:
        for v in (result.get("partial_unexpected_list") or [])[:n]:
            rows.append({"value": v})
    return tuple(rows)


def run_suites(
    frames: dict[str, pd.DataFrame],
    names: dict[str, str],
    manifest: DatasetManifest,
    config: Any,
    docs_dir: str | Path | None,
) -> tuple[list[RuleFailure], int, bool, str | None]:
    """Validate every frame with its suite; write Data Docs for passed and failed runs alike.

    Returns:
        ``(failures, number of expectations, duplicates present below the threshold, docs index)``.
    """
    gx, _ = _gx()
    from great_expectations.checkpoint import UpdateDataDocsAction

    context = _context(docs_dir)
    source = context.data_sources.add_pandas("kgrec")
    failures: list[RuleFailure] = []
    n_exp = 0
    dup_below = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for stem, frame in frames.items():
            filename = names[stem]
            suite = context.suites.add(build_suite(stem, frame, filename, manifest, config))
            n_exp += len(suite.expectations)
            asset = source.add_dataframe_asset(name=stem)
            batch_def = asset.add_batch_definition_whole_dataframe(f"{stem}_all")
            vd = context.validation_definitions.add(
                gx.ValidationDefinition(name=f"validate_{stem}", data=batch_def, suite=suite)
            )
            actions = [UpdateDataDocsAction(name="docs")] if docs_dir is not None else []
            checkpoint = context.checkpoints.add(
                gx.Checkpoint(
                    name=f"gate_{stem}",
                    validation_definitions=[vd],
                    actions=actions,
                    result_format={"result_format": "SUMMARY",
                                   "partial_unexpected_count": config.max_examples},
                )
            )
            run = checkpoint.run(batch_parameters={"dataframe": frame})
            for vres in run.run_results.values():
                for er in vres.results:
                    meta = er.expectation_config.meta or {}
                    res = er.result or {}
                    if er.exception_info and er.exception_info.get("raised_exception"):
                        failures.append(RuleFailure(
                            filename, meta.get("column", "?"), meta.get("rule", "?"), 0, len(frame),
                            ({"error": str(er.exception_info.get("exception_message"))[:160]},),
                            "the rule could not be evaluated"))
                        continue
                    unexpected = int(res.get("unexpected_count") or 0)
                    if meta.get("rule") == "duplicate_rows" and er.success and unexpected:
                        dup_below = True
                    if er.success:
                        continue
                    column = meta.get("column", "?")
                    cols = [c for c in column.split(",") if c in frame.columns]
                    show = list(dict.fromkeys(cols + [c for c in frame.columns
                                                      if c.endswith("_id") and "__" not in c]))
                    failures.append(RuleFailure(
                        file=filename,
                        column=column,
                        rule=meta.get("rule", er.expectation_config.type),
                        failing=unexpected if meta.get("rule") != "column_exists" else 1,
                        total=int(res.get("element_count") or len(frame)),
                        examples=_examples(frame, res, show, config.max_examples)
                        if meta.get("rule") != "column_exists" else
                        ({"columns_found": [c for c in frame.columns if "__" not in c]},),
                        why=er.expectation_config.notes or "",
                    ))
    docs_path = None
    if docs_dir is not None:
        index = Path(docs_dir).resolve() / "index.html"
        if index.exists():
            docs_path = str(index)
    return failures, n_exp, dup_below, docs_path
