"""The quality gate against real Great Expectations: one passing folder, one folder per broken rule."""

from __future__ import annotations

import shutil
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from quality import DataQualityError, DataWarning
from quality.gate import GateConfig, content_hash, open_dataset

GOOD = Path(__file__).resolve().parents[1] / "data" / "quality" / "good"
# A fixed clock keeps the future-timestamp rule deterministic.
CFG = GateConfig(now=datetime(2026, 1, 1, tzinfo=timezone.utc))


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    dest = tmp_path / "ds"
    shutil.copytree(GOOD, dest)
    return dest


def edit(folder: Path, name: str, fn) -> None:
    path = folder / name
    path.write_text(fn(path.read_text(encoding="utf-8")), encoding="utf-8")


def refused(folder: Path, config: GateConfig = CFG, docs: Path | None = None) -> DataQualityError:
    with pytest.raises(DataQualityError) as info:
        open_dataset(folder, config, docs)
    return info.value


def only_failure(err: DataQualityError, file: str, column: str, rule: str):
    hits = [f for f in err.failures if (f.file, f.column, f.rule) == (file, column, rule)]
    assert hits, f"expected {file}/{column}/{rule} among:\n{err}"
    return hits[0]


# --------------------------------------------------------------------------- the good folder


def test_good_folder_passes_and_is_typed(folder: Path, tmp_path: Path):
    docs = tmp_path / "docs"
    ds = open_dataset(folder, CFG, docs)
    assert (ds.domain, ds.name) == ("social", "gate-good")
    assert len(ds.users) == 4 and len(ds.items) == 4 and len(ds.interactions) == 6
    assert len(ds.user_links) == 3
    inter = ds.interactions
    assert str(inter["timestamp"].dtype) == "datetime64[ns, UTC]"
    # ISO with offset, date-only and unix seconds all land on the same UTC axis.
    assert inter.loc[inter.item_id.eq("a2"), "timestamp"].iloc[0] == pd.Timestamp(1615000000, unit="s", tz="UTC")
    assert inter.loc[(inter.user_id == "u3") & (inter.item_id == "a4"), "timestamp"].iloc[0] == pd.Timestamp(
        "2022-01-06T07:00:00Z")
    assert inter["rating"].dtype == np.float64 and inter["rating"].isna().sum() == 1
    assert inter["weight"].tolist()[-1] == 1.0  # absent weight defaults to 1
    assert ds.items.loc[ds.items.item_id == "a3", "title"].iloc[0] == "Marigold Fields, Live"
    assert ds.user_links["kind"].tolist() == ["friend", "friend", "follow"]
    # Data Docs are written for a passing validation too.
    assert (docs / "index.html").exists()


def test_dataset_is_immutable_and_hash_tracks_content(folder: Path):
    ds = open_dataset(folder, CFG)
    with pytest.raises((ValueError, TypeError)):
        ds.interactions["weight"].values[0] = 99.0
    with pytest.raises(AttributeError):
        ds.domain = "content"  # type: ignore[misc]
    h = ds.content_hash
    assert h == content_hash(folder)
    edit(folder, "items.csv", lambda t: t.replace("Glass Tides", "Glass Tide"))
    assert content_hash(folder) != h


def test_parquet_folder_passes_like_csv(folder: Path, tmp_path: Path):
    pq = tmp_path / "pq"
    pq.mkdir()
    shutil.copy(folder / "dataset.yaml", pq / "dataset.yaml")
    for stem in ("users", "items", "interactions", "user_links"):
        frame = pd.read_csv(folder / f"{stem}.csv", dtype=str, keep_default_na=False, na_values=[""])
        if stem == "interactions":
            frame["rating"] = pd.to_numeric(frame["rating"])
        frame.to_parquet(pq / f"{stem}.parquet", index=False)
    a = open_dataset(folder, CFG)
    b = open_dataset(pq, CFG)
    assert a.interactions["rating"].equals(b.interactions["rating"])
    assert a.items["item_id"].tolist() == b.items["item_id"].tolist()


def test_travel_domain_needs_coordinates_and_has_them(folder: Path):
    edit(folder, "dataset.yaml", lambda t: t.replace("domain: social", "domain: travel"))
    ds = open_dataset(folder, CFG)
    assert ds.items["lat"].between(-90, 90).all()


# --------------------------------------------------------------------------- bad input catalogue


def test_missing_file(folder: Path):
    (folder / "items.csv").unlink()
    err = refused(folder)
    only_failure(err, "items.csv", "*", "file_exists")
    assert "items.csv" in str(err) and "file_exists" in str(err)


def test_missing_dataset_yaml(folder: Path):
    (folder / "dataset.yaml").unlink()
    err = refused(folder)
    only_failure(err, "dataset.yaml", "*", "file_exists")


def test_unknown_domain(folder: Path):
    edit(folder, "dataset.yaml", lambda t: t.replace("domain: social", "domain: groceries"))
    err = refused(folder)
    f = only_failure(err, "dataset.yaml", "domain", "in_set")
    assert f.examples[0]["found"] == "groceries"


def test_missing_column(folder: Path):
    edit(folder, "items.csv", lambda t: t.replace("item_id,title,", "item_id,name,"))
    err = refused(folder)
    f = only_failure(err, "items.csv", "title", "column_exists")
    assert "name" in f.examples[0]["columns_found"]


def test_text_in_numeric_column(folder: Path):
    edit(folder, "interactions.csv", lambda t: t.replace("u1,a4,2021-03-02T11:30:00Z,4,", "u1,a4,2021-03-02T11:30:00Z,four,"))
    err = refused(folder)
    f = only_failure(err, "interactions.csv", "rating", "finite_number")
    assert f.failing == 1
    assert f.examples[0]["rating"] == "four" and f.examples[0]["user_id"] == "u1"
    assert "interactions.csv column 'rating' breaks rule 'finite_number'" in str(err)


@pytest.mark.parametrize("bad", ["NaN", "inf", "-Infinity"])
def test_nan_or_infinite_rating(folder: Path, bad: str):
    edit(folder, "interactions.csv", lambda t: t.replace(",1615100000,2,", f",1615100000,{bad},"))
    f = only_failure(refused(folder), "interactions.csv", "rating", "finite_number")
    assert f.examples[0]["rating"] == bad


def test_rating_out_of_declared_range(folder: Path):
    edit(folder, "interactions.csv", lambda t: t.replace(",1615100000,2,", ",1615100000,7,"))
    f = only_failure(refused(folder), "interactions.csv", "rating", "rating_range")
    assert f.failing == 1 and f.examples[0]["item_id"] == "a3"


def test_duplicate_ids(folder: Path):
    edit(folder, "users.csv", lambda t: t + "u2,another u2,35-44\n")
    f = only_failure(refused(folder), "users.csv", "user_id", "unique")
    assert f.failing == 2 and all(e["user_id"] == "u2" for e in f.examples)


def test_interaction_with_unknown_user_and_item(folder: Path):
    edit(folder, "interactions.csv", lambda t: t + "ghost,a1,2021-05-01,3,listen,1,\nu1,zz9,2021-05-01,3,listen,1,\n")
    err = refused(folder)
    fu = only_failure(err, "interactions.csv", "user_id", "known_user")
    fi = only_failure(err, "interactions.csv", "item_id", "known_item")
    assert fu.examples[0]["user_id"] == "ghost" and fi.examples[0]["item_id"] == "zz9"


def test_empty_title(folder: Path):
    edit(folder, "items.csv", lambda t: t.replace("a4,Glass Tides,", "a4,,"))
    f = only_failure(refused(folder), "items.csv", "title", "not_null")
    assert f.examples[0]["item_id"] == "a4"


def test_blank_title(folder: Path):
    edit(folder, "items.csv", lambda t: t.replace("a4,Glass Tides,", "a4,   ,"))
    f = only_failure(refused(folder), "items.csv", "title", "non_empty_title")
    assert f.examples[0]["item_id"] == "a4"


def test_unparseable_timestamp(folder: Path):
    edit(folder, "interactions.csv", lambda t: t.replace("2022-01-05", "yesterday"))
    f = only_failure(refused(folder), "interactions.csv", "timestamp", "parseable_timestamp")
    assert f.examples[0]["timestamp"] == "yesterday"


def test_future_timestamp(folder: Path):
    edit(folder, "interactions.csv", lambda t: t.replace("2022-01-05", "2031-07-01"))
    f = only_failure(refused(folder), "interactions.csv", "timestamp", "timestamp_window")
    assert f.examples[0]["timestamp"] == "2031-07-01"


def test_impossible_early_timestamp(folder: Path):
    edit(folder, "interactions.csv", lambda t: t.replace("2022-01-05", "1901-01-01"))
    only_failure(refused(folder), "interactions.csv", "timestamp", "timestamp_window")


def test_invalid_utf8(folder: Path):
    path = folder / "items.csv"
    path.write_bytes(path.read_bytes().replace(b"Glass Tides", b"Glass Tid\xe9s"))
    f = only_failure(refused(folder), "items.csv", "*", "utf8")
    assert f.examples[0]["line"] == 5


def test_row_with_shifted_column(folder: Path):
    edit(folder, "interactions.csv", lambda t: t.replace("u1,a4,2021-03-02T11:30:00Z,4,listen,7,", "u1,a4,2021-03-02T11:30:00Z,4,listen,7,,extra"))
    f = only_failure(refused(folder), "interactions.csv", "*", "row_shape")
    assert f.failing == 1 and f.examples[0]["row"] == 2 and f.examples[0]["fields"] == 8


def test_row_with_missing_field(folder: Path):
    edit(folder, "users.csv", lambda t: t.replace("u3,,18-24", "u3,18-24"))
    f = only_failure(refused(folder), "users.csv", "*", "row_shape")
    assert f.examples[0]["fields"] == 2


@pytest.mark.parametrize("content", ["", "user_id,item_id,timestamp\n"])
def test_empty_file(folder: Path, content: str):
    (folder / "interactions.csv").write_text(content)
    only_failure(refused(folder), "interactions.csv", "*", "not_empty")


def test_travel_item_without_coordinates(folder: Path):
    edit(folder, "dataset.yaml", lambda t: t.replace("domain: social", "domain: travel"))
    edit(folder, "items.csv", lambda t: t.replace("indie folk,51.5,-0.12", "indie folk,,"))
    err = refused(folder)
    f = only_failure(err, "items.csv", "lat", "not_null")
    assert f.examples[0]["item_id"] == "a3"
    only_failure(err, "items.csv", "lon", "not_null")


def test_travel_items_without_coordinate_columns(folder: Path):
    edit(folder, "dataset.yaml", lambda t: t.replace("domain: social", "domain: travel"))
    frame = pd.read_csv(folder / "items.csv").drop(columns=["lat", "lon"])
    frame.to_csv(folder / "items.csv", index=False)
    err = refused(folder)
    only_failure(err, "items.csv", "lat", "column_exists")
    assert "travel items are places" in str(err)


def test_coordinates_out_of_range(folder: Path):
    edit(folder, "items.csv", lambda t: t.replace("48.85,2.35", "148.85,2.35"))
    f = only_failure(refused(folder), "items.csv", "lat", "coordinate_range")
    assert f.examples[0]["item_id"] == "a4"


def test_self_link(folder: Path):
    edit(folder, "user_links.csv", lambda t: t + "u2,u2,follow,\n")
    f = only_failure(refused(folder), "user_links.csv", "src_user_id,dst_user_id", "no_self_link")
    assert f.examples[0]["src_user_id"] == "u2"


def test_link_to_unknown_user(folder: Path):
    edit(folder, "user_links.csv", lambda t: t + "u2,nobody,follow,\n")
    f = only_failure(refused(folder), "user_links.csv", "dst_user_id", "known_user")
    assert f.examples[0]["dst_user_id"] == "nobody"


def test_ten_megabyte_text_cell(folder: Path):
    big = "x" * (10 * 1024 * 1024)
    edit(folder, "items.csv", lambda t: t.replace("Dream pop with reverb-soaked guitars", big))
    err = refused(folder)
    f = only_failure(err, "items.csv", "description", "text_length")
    assert f.examples[0]["item_id"] == "a4"
    assert len(str(err)) < 5_000  # the message quotes the row, not the 10 MB


def test_unknown_event(folder: Path):
    edit(folder, "interactions.csv", lambda t: t.replace(",view,", ",stare,"))
    only_failure(refused(folder), "interactions.csv", "event", "event_in_set")


def test_duplicates_above_threshold_are_refused(folder: Path):
    edit(folder, "interactions.csv", lambda t: t + "u1,a1,2021-03-01T10:00:00Z,5,listen,12,Perfect for night drives\n")
    f = only_failure(refused(folder), "interactions.csv", "user_id,item_id,timestamp", "duplicate_rows")
    assert f.failing == 2 and f.examples[0]["item_id"] == "a1"


def test_duplicates_below_threshold_warn_and_are_dropped(folder: Path):
    edit(folder, "interactions.csv", lambda t: t + "u1,a1,2021-03-01T10:00:00Z,5,listen,12,Perfect for night drives\n")
    lenient = CFG.model_copy(update={"duplicate_fail_share": 0.5})
    with pytest.warns(DataWarning, match="1 duplicate"):
        ds = open_dataset(folder, lenient)
    assert len(ds.interactions) == 6


def test_refusal_writes_only_data_docs(folder: Path, tmp_path: Path):
    out = tmp_path / "out"
    edit(folder, "interactions.csv", lambda t: t.replace(",1615100000,2,", ",1615100000,7,"))
    err = refused(folder, docs=out / "docs")
    assert err.docs_path and Path(err.docs_path).exists()
    assert [p.name for p in out.iterdir()] == ["docs"]
    assert "Data Docs:" in str(err)


def test_many_failures_are_all_reported_with_at_most_five_examples(folder: Path):
    rows = "".join(f"ghost{i},a1,2021-05-0{1 + i % 9},3,listen,1,\n" for i in range(12))
    edit(folder, "interactions.csv", lambda t: t + rows)
    f = only_failure(refused(folder), "interactions.csv", "user_id", "known_user")
    assert f.failing == 12 and len(f.examples) == 5


def test_snapshot_round_trip_keeps_types_and_hash(folder: Path, tmp_path: Path):
    from quality.gate import load_snapshot, save_snapshot

    ds = open_dataset(folder, CFG)
    back = load_snapshot(save_snapshot(ds, tmp_path / "snap"))
    assert back.content_hash == ds.content_hash and back.domain == ds.domain
    for name in ("users", "items", "interactions", "user_links"):
        pd.testing.assert_frame_equal(getattr(back, name), getattr(ds, name), check_dtype=False)
    assert str(back.interactions["timestamp"].dtype) == "datetime64[ns, UTC]"
