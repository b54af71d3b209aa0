"""The quality gate: a raw dataset folder in, a typed ``Dataset`` (or a ``DataQualityError``) out.

Order of work: ``dataset.yaml`` → each file read as text (encoding, row shape, emptiness) →
Great Expectations suites from :mod:`quality.suites` on every file (Data Docs written whether
the validation passed or failed) → typed frames → :class:`~quality.dataset.Dataset`.
Nothing is written anywhere but the Data Docs folder, so a refused folder touches nothing
downstream.
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import math
import time
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from quality.contract import DOMAINS, FILES, DatasetManifest, find_file
from quality.dataset import Dataset
from quality.errors import DataQualityError, DataWarning, RuleFailure
from quality.suites import BADTIME, KNOWN, NUM, NUMBER_COLUMNS, SELF, TIME_COLUMNS, UNIX, run_suites

log = logging.getLogger("kgrec.quality")



class GateConfig(BaseModel):
    """Settings of the quality gate."""

    model_config = ConfigDict(extra="forbid")

    max_text_chars: int = Field(20_000, gt=0)
    """Longest accepted text cell (titles, descriptions, profiles, reviews), in characters."""
    earliest: datetime = datetime(1970, 1, 1, tzinfo=timezone.utc)
    """Timestamps before this are refused as impossible."""
    future_tolerance_s: float = Field(86_400.0, ge=0)
    """How far past the gate's clock a timestamp may lie (clock skew) before it is refused."""
    duplicate_fail_share: float = Field(0.01, ge=0, le=1)
    """Share of duplicated (user, item, timestamp) rows above which the gate refuses; below it
    duplicates are dropped with a ``DataWarning``."""
    max_examples: int = Field(5, ge=1, le=20)
    """Offending rows quoted per broken rule."""
    now: datetime | None = None
    """The clock used for the future-timestamp rule (``None``: the current time)."""

    @model_validator(mode="after")
    def _window(self) -> "GateConfig":
        if self.earliest.tzinfo is None:
            self.earliest = self.earliest.replace(tzinfo=timezone.utc)
        if self.now is not None and self.now.tzinfo is None:
            self.now = self.now.replace(tzinfo=timezone.utc)
        if self.now is not None and self.now < self.earliest:
            raise ValueError(f"now ({self.now}) is before earliest ({self.earliest})")
        return self

    def latest_unix(self) -> float:
        now = self.now or datetime.now(timezone.utc)
        return now.timestamp() + self.future_tolerance_s


@dataclass
class GateReport:
    """What the gate saw: per-file row counts, timings, warnings and the Data Docs location."""

    folder: str
    domain: str
    rows: dict[str, int]
    expectations: int
    seconds: float
    docs_path: str | None
    warnings: list[str]
    success: bool

    def summary(self) -> str:
        status = "passed" if self.success else "REFUSED"
        counts = ", ".join(f"{k}={v}" for k, v in self.rows.items())
        text = (
            f"quality gate {status}: {self.folder} (domain {self.domain}; {counts}; "
            f"{self.expectations} expectations in {self.seconds:.1f}s)"
        )
        for w in self.warnings:
            text += f"\n  warning: {w}"
        if self.docs_path:
            text += f"\n  Data Docs: {self.docs_path}"
        return text


# --------------------------------------------------------------------------- reading


def read_manifest(folder: Path) -> DatasetManifest:
    """Parse ``dataset.yaml``; raise ``DataQualityError`` naming the key that is wrong."""
    path = folder / "dataset.yaml"

    def refuse(column: str, rule: str, found: Any, why: str) -> DataQualityError:
        return DataQualityError(
            str(folder),
            [RuleFailure("dataset.yaml", column, rule, 1, 1, ({"found": found},), why)],
        )

    if not folder.is_dir():
        raise refuse("*", "folder_exists", str(folder), "the dataset folder does not exist")
    if not path.exists():
        raise refuse("*", "file_exists", "missing", "every dataset folder declares its domain")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise refuse("*", "valid_yaml", str(e).splitlines()[0], "dataset.yaml must parse") from e
    if not isinstance(doc, dict):
        raise refuse("*", "mapping", type(doc).__name__, "dataset.yaml must be a mapping")
    domain = str(doc.get("domain", "")).strip().lower()
    if domain not in DOMAINS:
        raise refuse("domain", "in_set", doc.get("domain"), f"domain must be one of {DOMAINS}")
    name = str(doc.get("name") or folder.name)
    rr = doc.get("rating_range")
    rating_range = None
    if rr is not None:
        try:
            lo, hi = (float(rr[0]), float(rr[1]))
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise ValueError
            rating_range = (lo, hi)
        except (TypeError, ValueError, IndexError, KeyError) as e:
            raise refuse("rating_range", "low_high", rr, "rating_range is [low, high]") from e
    return DatasetManifest(domain, name, str(doc.get("notes") or ""), rating_range)


def _read_csv_text(path: Path, failures: list[RuleFailure], max_examples: int) -> pd.DataFrame | None:
    raw = path.read_bytes()
    fname = path.name
    if not raw.strip():
        failures.append(RuleFailure(fname, "*", "not_empty", 1, 1, ({"bytes": len(raw)},),
                                    "an empty file has no header and no rows"))
        return None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        snippet = raw[max(0, e.start - 20): e.start + 20]
        failures.append(RuleFailure(
            fname, "*", "utf8", 1, 1, ({"line": line, "byte": e.start, "near": repr(snippet)},),
            "files must be UTF-8; re-encode the file (e.g. from latin-1) or use an importer"))
        return None
    # Row shape first: pandas pads short rows with NaN and refuses long ones without saying
    # which, so count fields per row ourselves and quote the bad lines.
    # Oversized cells must reach the text_length rule rather than crash the reader.
    csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader, None)
    if not header:
        failures.append(RuleFailure(fname, "*", "has_header", 1, 1, (), "the first line names the columns"))
        return None
    width = len(header)
    bad: list[dict[str, Any]] = []
    n_bad = 0
    n_rows = 0
    for row in reader:
        n_rows += 1
        if not row:  # a blank line
            continue
        if len(row) != width:
            n_bad += 1
            if len(bad) < max_examples:
                bad.append({"row": n_rows, "fields": len(row), "expected": width,
                            "values": ",".join(row)[:80]})
    if n_bad:
        failures.append(RuleFailure(fname, "*", "row_shape", n_bad, n_rows, tuple(bad),
                                    "each row must have as many fields as the header (a shifted or "
                                    "unquoted comma?)"))
        return None
    frame = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False, na_values=[""],
                        skip_blank_lines=True)
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def _read_parquet_text(path: Path, failures: list[RuleFailure]) -> pd.DataFrame | None:
    try:
        frame = pd.read_parquet(path)
    except Exception as e:  # pyarrow raises several types for a damaged file
        failures.append(RuleFailure(path.name, "*", "readable_parquet", 1, 1,
                                    ({"error": str(e)[:120]},), "the file must be valid Parquet"))
        return None
    out = pd.DataFrame(index=frame.index)
    for col in frame.columns:
        s = frame[col]
        if pd.api.types.is_datetime64_any_dtype(s):
            ts = pd.to_datetime(s, utc=True)
            out[col] = ts.map(lambda v: v.isoformat() if pd.notna(v) else None)
        elif pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            out[col] = s.map(lambda v: None if pd.isna(v) else repr(float(v)) if isinstance(v, float) else str(v))
        else:
            out[col] = s.map(lambda v: None if v is None or (isinstance(v, float) and math.isnan(v)) else str(v))
    out = out.astype(object).where(out.notna(), None)
    return out.astype("str").where(out.notna(), np.nan) if len(out) else out.astype(object)


def _read_file(path: Path, failures: list[RuleFailure], cfg: GateConfig) -> pd.DataFrame | None:
    if path.suffix == ".csv":
        frame = _read_csv_text(path, failures, cfg.max_examples)
    else:
        frame = _read_parquet_text(path, failures)
    if frame is not None:
        frame = frame.reset_index(drop=True)
    return frame


def content_hash(folder: Path) -> str:
    """sha256 over ``dataset.yaml`` and the contract files present, in a fixed order."""
    h = hashlib.sha256()
    paths = [folder / "dataset.yaml"] + [p for s in FILES if (p := find_file(folder, s.stem))]
    for p in paths:
        h.update(p.name.encode())
        with p.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------- derived columns


def _as_number(s: pd.Series) -> pd.Series:
    num = pd.to_numeric(s, errors="coerce").astype("float64")
    return num.where(np.isfinite(num))


def _as_unix(s: pd.Series) -> pd.Series:
    """Unix seconds from ISO-8601 text or numeric epoch seconds; NaN where unparseable."""
    num = pd.to_numeric(s, errors="coerce").astype("float64")
    out = num.where(np.isfinite(num))
    rest = s.notna() & out.isna()
    if rest.any():
        parsed = pd.to_datetime(s[rest], format="ISO8601", utc=True, errors="coerce")
        secs = (parsed - pd.Timestamp(0, tz="UTC")).dt.total_seconds()
        out.loc[rest] = secs.astype("float64")
    return out


def derive_columns(frames: dict[str, pd.DataFrame]) -> None:
    """Add the helper columns the suites check (numbers, unix times, id membership, self-links)."""
    for stem, frame in frames.items():
        for col in NUMBER_COLUMNS.get(stem, ()):
            if col in frame.columns:
                frame[col + NUM] = _as_number(frame[col])
        for col in TIME_COLUMNS.get(stem, ()):
            if col in frame.columns:
                frame[col + UNIX] = _as_unix(frame[col])
                frame[col + BADTIME] = frame[col].notna() & frame[col + UNIX].isna()
    users = frames.get("users")
    items = frames.get("items")
    user_ids = set(users["user_id"].dropna()) if users is not None and "user_id" in users else None
    item_ids = set(items["item_id"].dropna()) if items is not None and "item_id" in items else None
    inter = frames.get("interactions")
    if inter is not None:
        if user_ids is not None and "user_id" in inter:
            inter["user_id" + KNOWN] = inter["user_id"].isin(user_ids)
        if item_ids is not None and "item_id" in inter:
            inter["item_id" + KNOWN] = inter["item_id"].isin(item_ids)
    links = frames.get("user_links")
    if links is not None and user_ids is not None:
        for col in ("src_user_id", "dst_user_id"):
            if col in links:
                links[col + KNOWN] = links[col].isin(user_ids)
        if "src_user_id" in links and "dst_user_id" in links:
            links["src_user_id" + SELF] = links["src_user_id"] == links["dst_user_id"]


# --------------------------------------------------------------------------- typing


def _typed(frames: dict[str, pd.DataFrame], manifest: DatasetManifest) -> dict[str, pd.DataFrame]:
    out = {}
    for stem, frame in frames.items():
        keep = [c for c in frame.columns if "__" not in c]
        typed = frame[keep].copy()
        for col in NUMBER_COLUMNS.get(stem, ()):
            if col in typed:
                typed[col] = frame[col + NUM]
        for col in TIME_COLUMNS.get(stem, ()):
            if col in typed:
                typed[col] = pd.to_datetime(frame[col + UNIX], unit="s", utc=True).astype("datetime64[ns, UTC]")
        for col in typed.columns:
            if col not in NUMBER_COLUMNS.get(stem, ()) and col not in TIME_COLUMNS.get(stem, ()):
                typed[col] = typed[col].astype("str").where(typed[col].notna(), None)
        out[stem] = typed
    inter = out["interactions"]
    if "rating" not in inter:
        inter["rating"] = np.nan
    if "weight" not in inter:
        inter["weight"] = 1.0
    inter["weight"] = inter["weight"].fillna(1.0)
    if "event" not in inter:
        inter["event"] = "rate" if inter["rating"].notna().any() else "view"
    inter["event"] = inter["event"].fillna("rate").astype(str)
    if "review_text" not in inter:
        inter["review_text"] = ""
    inter["review_text"] = inter["review_text"].fillna("").astype(str)
    for stem in ("users", "items"):
        for col in ("profile_text", "description", "category"):
            if col in out[stem]:
                out[stem][col] = out[stem][col].fillna("").astype(str)
    links = out.get("user_links")
    if links is None:
        links = pd.DataFrame({"src_user_id": pd.Series(dtype=str), "dst_user_id": pd.Series(dtype=str)})
    if "kind" not in links:
        links["kind"] = "friend"
    links["kind"] = links["kind"].fillna("friend").astype(str)
    if "timestamp" not in links:
        links["timestamp"] = pd.Series(pd.NaT, index=links.index, dtype="datetime64[ns, UTC]")
    out["user_links"] = links
    return out


# --------------------------------------------------------------------------- the gate


def validate_folder(
    folder: str | Path,
    config: GateConfig | None = None,
    docs_dir: str | Path | None = None,
) -> tuple[Dataset | None, GateReport, list[RuleFailure]]:
    """Validate a dataset folder and build its ``Dataset``; never raise on bad data.

    Args:
        folder: the dataset folder (``dataset.yaml`` plus contract files).
        config: gate settings.
        docs_dir: where to write Data Docs HTML; ``None`` writes none.

    Returns:
        ``(dataset or None, report, failures)``.
    """
    cfg = config or GateConfig()
    folder = Path(folder)
    t0 = time.perf_counter()
    manifest = read_manifest(folder)
    failures: list[RuleFailure] = []
    frames: dict[str, pd.DataFrame] = {}
    names: dict[str, str] = {}
    for spec in FILES:
        path = find_file(folder, spec.stem)
        if path is None:
            if spec.required:
                failures.append(RuleFailure(
                    f"{spec.stem}.csv", "*", "file_exists", 1, 1, ({"folder": str(folder)},),
                    f"{spec.stem}.csv (or .parquet) is required by the contract"))
            continue
        names[spec.stem] = path.name
        frame = _read_file(path, failures, cfg)
        if frame is not None:
            if len(frame) == 0 and spec.required:
                failures.append(RuleFailure(path.name, "*", "not_empty", 1, 1, ({"rows": 0},),
                                            "a header with no rows gives nothing to recommend"))
                continue
            frames[spec.stem] = frame

    derive_columns(frames)
    gx_failures, n_expectations, dup_info, docs_path = run_suites(
        frames, names, manifest, cfg, docs_dir
    )
    failures.extend(gx_failures)

    warns: list[str] = []
    dataset = None
    if not failures:
        typed = _typed(frames, manifest)
        if dup_info:
            n_dup = int(typed["interactions"].duplicated(["user_id", "item_id", "timestamp"]).sum())
            msg = (f"{names['interactions']}: {n_dup} duplicate (user_id, item_id, timestamp) rows "
                   f"dropped; below the {cfg.duplicate_fail_share:.1%} refusal threshold, but they "
                   f"would double-count those interactions")
            warnings.warn(msg, DataWarning, stacklevel=2)
            warns.append(msg)
            typed["interactions"] = typed["interactions"].drop_duplicates(
                ["user_id", "item_id", "timestamp"]).reset_index(drop=True)
        dataset = Dataset(
            domain=manifest.domain,
            name=manifest.name,
            users=typed["users"],
            items=typed["items"],
            interactions=typed["interactions"],
            user_links=typed["user_links"],
            content_hash=content_hash(folder),
            source=folder.resolve(),
            notes=manifest.notes,
            rating_range=manifest.rating_range,
        )
    report = GateReport(
        folder=str(folder),
        domain=manifest.domain,
        rows={k: len(v) for k, v in frames.items()},
        expectations=n_expectations,
        seconds=time.perf_counter() - t0,
        docs_path=docs_path,
        warnings=warns,
        success=not failures,
    )
    log.info(report.summary())
    return dataset, report, failures


def open_dataset(
    folder: str | Path,
    config: GateConfig | None = None,
    docs_dir: str | Path | None = None,
) -> Dataset:
    """The only way to build a :class:`Dataset`: validate ``folder`` and type its frames.

    Raises:
        DataQualityError: the folder breaks the contract; the error names file, column, rule,
            failing count and up to five offending rows.
    """
    dataset, report, failures = validate_folder(folder, config, docs_dir)
    if failures:
        raise DataQualityError(str(folder), failures, report.docs_path)
    assert dataset is not None
    return dataset


# --------------------------------------------------------------------------- snapshots

_SNAPSHOT_FRAMES = ("users", "items", "interactions", "user_links")


def save_snapshot(dataset: Dataset, folder: str | Path) -> Path:
    """Write a gated ``Dataset`` as typed Parquet so later steps reload it without re-validating.

    The snapshot is written to a temporary sibling and renamed, so a reader never sees half of it.
    """
    import json
    import os
    import shutil
    import tempfile

    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        for name in _SNAPSHOT_FRAMES:
            getattr(dataset, name).to_parquet(tmp / f"{name}.parquet", index=False)
        meta = {
            "domain": dataset.domain,
            "name": dataset.name,
            "content_hash": dataset.content_hash,
            "source": str(dataset.source) if dataset.source else None,
            "notes": dataset.notes,
            "rating_range": list(dataset.rating_range) if dataset.rating_range else None,
        }
        (tmp / "dataset.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return folder


def load_snapshot(folder: str | Path) -> Dataset:
    """Reload a snapshot written by :func:`save_snapshot` (data that already passed the gate)."""
    import json

    folder = Path(folder)
    meta_path = folder / "dataset.json"
    if not meta_path.exists():
        raise FileNotFoundError(f"{meta_path} not found: not a kgrec dataset snapshot")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    frames = {name: pd.read_parquet(folder / f"{name}.parquet") for name in _SNAPSHOT_FRAMES}
    rr = meta.get("rating_range")
    return Dataset(
        domain=meta["domain"],
        name=meta["name"],
        content_hash=meta["content_hash"],
        source=Path(meta["source"]) if meta.get("source") else None,
        notes=meta.get("notes") or "",
        rating_range=(float(rr[0]), float(rr[1])) if rr else None,
        **frames,
    )
