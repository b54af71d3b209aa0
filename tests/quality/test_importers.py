"""Importers of public formats: README row counts, every listed quirk cleaned, output gated.

The real datasets live beside the checkout in ``../shared/data`` (CI has them there); each
test that needs one skips with the reason when it is missing. Each dataset is imported and
gated once per module, so the whole file stays well under a minute on two cores.
"""

from __future__ import annotations

import gzip
import json
import math
import shutil
import warnings
from pathlib import Path

import pandas as pd
import pytest

from quality.contract import CATEGORY_SEPARATOR
from quality.errors import DataWarning
from quality.importers import FORMATS, MAX_TEXT_CHARS, ImportStats, import_dataset, strip_markup

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
ML100K = Path(__file__).resolve().parents[1] / "data" / "ml100k"

SOURCES = {
    "movielens": "movielens-latest-small",
    "lastfm": "lastfm-hetrec2011-2k",
    "amazon": "amazon2018-gift-cards",
    "yfcc": "flickr-yfcc100m-poi-visits",
}


def _source(name: str) -> Path:
    folder = DATA / name
    if not folder.is_dir():
        pytest.skip(f"real dataset {folder} not found (CI keeps shared/data beside the checkout)")
    return folder


def _gate(folder: Path):
    from quality.gate import open_dataset

    # Importers dedupe themselves: any DataWarning (duplicates dropped by the gate) is a bug.
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        return open_dataset(folder)


class Imported:
    def __init__(self, stats: ImportStats, dest: Path):
        self.stats, self.dest = stats, dest
        self._dataset = None

    @property
    def dataset(self):
        if self._dataset is None:
            self._dataset = _gate(self.dest)
        return self._dataset

    def read(self, stem: str) -> pd.DataFrame:
        return pd.read_csv(self.dest / f"{stem}.csv", dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    cache: dict[str, Imported] = {}

    def get(fmt: str, src: Path | None = None, key: str | None = None) -> Imported:
        key = key or fmt
        if key not in cache:
            src = src or _source(SOURCES[fmt])
            dest = tmp_path_factory.mktemp(key)
            stats = import_dataset(fmt, src, dest)
            print(stats.summary())  # shown with -s: the same text `kgrec import` prints
            cache[key] = Imported(stats, dest)
        return cache[key]

    return get


# --------------------------------------------------------------------------- arguments


def test_unknown_format_names_the_allowed_ones(tmp_path):
    with pytest.raises(ValueError, match="unknown dataset format 'netflix'") as e:
        import_dataset("netflix", ML100K, tmp_path / "out")
    for fmt in FORMATS:
        assert fmt in str(e.value)


def test_missing_source_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        import_dataset("movielens", tmp_path / "nowhere", tmp_path / "out")


def test_missing_source_file_is_named(tmp_path):
    src = tmp_path / "ml100k"
    shutil.copytree(ML100K, src)
    (src / "u.user").unlink()
    with pytest.raises(FileNotFoundError, match=r"u\.user"):
        import_dataset("movielens", src, tmp_path / "out")


@pytest.mark.parametrize("fmt,expected", [
    ("movielens", "ratings.csv"), ("lastfm", "user_artists.dat"),
    ("amazon", "_5.json.gz"), ("yfcc", "POI-"),
])
def test_empty_folder_names_the_files_each_format_needs(tmp_path, fmt, expected):
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=expected):
        import_dataset(fmt, tmp_path / "empty", tmp_path / "out")


def test_dest_may_not_be_the_source(tmp_path):
    src = tmp_path / "ml100k"
    shutil.copytree(ML100K, src)
    with pytest.raises(ValueError, match="source folder"):
        import_dataset("movielens", src, src)


def test_text_cap_matches_the_gate():
    from quality.gate import GateConfig

    assert MAX_TEXT_CHARS == GateConfig().max_text_chars


def test_strip_markup_keeps_plain_text_and_decodes_entities():
    assert strip_markup("a <3 b & c") == "a <3 b & c"  # no markup: untouched
    assert strip_markup(" Maggiano&#39;s Gift Card") == " Maggiano's Gift Card"
    assert strip_markup("<div>One<br/>Two</div>").split() == ["One", "Two"]
    assert strip_markup('<img src="x.png" alt="AMAZON FASHION"/>').strip() == "AMAZON FASHION"


# --------------------------------------------------------------------------- ml-100k fixture


def test_ml100k_fixture(imported):
    imp = imported("movielens", ML100K, key="ml100k")
    s = imp.stats
    assert s.layout == "ml-100k"
    assert s.source_rows == {"u.genre": 19, "u.data": 14, "u.item": 9, "u.user": 5}
    # u.item is latin-1, movie 5 repeats movie 4 (same title and IMDb link), user 1 rated both,
    # user 4 has one rating row twice, movie 6 is the 'unknown' placeholder of the real file.
    assert s.count("latin1_u.item") == 1
    assert s.count("duplicate_movies") == 1
    assert s.count("duplicate_ratings") == 2
    assert s.count("placeholder_titles") == 1
    assert s.count("title_articles") == 3
    assert s.rows == {"users": 5, "items": 8, "interactions": 12}

    items = imp.read("items").set_index("item_id")
    assert "5" not in items.index
    assert items.loc["2", "title"] == "The American President (1995)"
    assert items.loc["3", "title"] == "Les Misérables (1995)"
    assert items.loc["6", "title"] == "Untitled movie 6"
    assert items.loc["1", "category"] == "Animation|Children's|Comedy"
    assert items.loc["8", "release_date"] == "1997-01-29"
    users = imp.read("users").set_index("user_id")
    assert users.loc["4", "zip_code"] == "T8H1N"
    assert "Occupation: technician" in users.loc["1", "profile_text"]

    ds = imp.dataset
    assert ds.domain == "content" and ds.rating_range == (1.0, 5.0)
    inter = ds.interactions
    # user 1's rating of the duplicate movie 5 (the later one) now counts for movie 4
    assert inter[(inter.user_id == "1") & (inter.item_id == "4")]["rating"].tolist() == [5.0]
    assert not inter.duplicated(["user_id", "item_id"]).any()


def test_reimport_replaces_stale_files_and_is_deterministic(tmp_path):
    dest = tmp_path / "out"
    dest.mkdir()
    (dest / "user_links.csv").write_text("src_user_id,dst_user_id\n1,1\n")
    import_dataset("movielens", ML100K, dest)
    assert not (dest / "user_links.csv").exists()
    first = {p.name: p.read_bytes() for p in dest.iterdir()}
    import_dataset("movielens", ML100K, dest)
    assert {p.name: p.read_bytes() for p in dest.iterdir()} == first


# --------------------------------------------------------------------------- movielens


def test_movielens_latest_small(imported):
    imp = imported("movielens")
    s = imp.stats
    assert s.layout == "ml-latest-small"
    # row counts stated in the dataset README
    assert s.source_rows == {"ratings.csv": 100_836, "movies.csv": 9_742, "tags.csv": 3_683,
                             "links.csv": 9_742}
    assert s.rows == {"users": 610, "items": 9_742, "interactions": 100_836}
    # README quirks: CRLF line ends, '(no genres listed)' on 34 movies, 8 empty tmdbId
    assert s.count("crlf") == 100_837 + 9_743 + 3_684 + 9_743
    assert s.count("no_genres") == 34
    assert s.count("empty_tmdb") == 8
    assert s.count("padding_movies.csv") == 11  # titles with a trailing space
    assert s.count("titles_without_year") == 12
    assert s.count("duplicate_ratings") == 0

    items = imp.read("items").set_index("item_id")
    assert items.loc["1", "imdb_id"] == "tt0114709"  # zero padding survives
    assert items.loc["50", "title"] == "The Usual Suspects (1995)"
    assert "(no genres listed)" not in set(items["category"])
    assert "Pixar" in items.loc["1", "description"]  # most common user tag

    ds = imp.dataset
    assert ds.domain == "content" and ds.rating_range == (0.5, 5.0)
    assert ds.interactions["rating"].between(0.5, 5.0).all()
    assert (ds.interactions["event"] == "rate").all()
    assert (ds.users["profile_text"] != "").sum() == 58  # README: 58 users wrote tags
    assert ds.interactions["timestamp"].min() == pd.Timestamp("1996-03-29 18:36:55", tz="UTC")


# --------------------------------------------------------------------------- lastfm


def test_lastfm_hetrec(imported):
    imp = imported("lastfm")
    s = imp.stats
    assert s.source_rows == {"user_artists.dat": 92_834, "artists.dat": 17_632, "tags.dat": 11_946,
                             "user_taggedartists.dat": 186_479, "user_friends.dat": 25_434}
    assert s.rows == {"users": 1_892, "items": 17_632, "interactions": 92_834,
                      "user_links": 25_434}
    # README quirks: tags.dat is Latin-1; a few tag years are implausible (min 1956)
    assert s.count("latin1_tags.dat") == 1
    assert s.count("impossible_tag_dates") == 5
    assert s.count("mojibake_names") == 1
    assert s.count("self_links") == 0

    ds = imp.dataset
    assert ds.domain == "social"
    items = ds.items.set_index("item_id")
    assert items.loc["707", "title"] == "Metallica"
    assert "Ballaké Sissoko" in set(items["title"])
    assert any(t == "tropicália" for t in imp.read("users")["profile_text"].str.extractall(
        r"(tropic\w+)")[0])
    inter = ds.interactions
    assert (inter["event"] == "listen").all()
    plays = pd.to_numeric(imp.read("interactions")["plays"])
    assert (inter["weight"] - plays.map(math.log1p)).abs().max() < 1e-4
    assert inter["timestamp"].min() >= pd.Timestamp("2005-01-01", tz="UTC")
    assert inter["timestamp"].max() <= pd.Timestamp("2011-05-31", tz="UTC")
    links = ds.user_links
    pairs = set(zip(links.src_user_id, links.dst_user_id))
    assert all((b, a) in pairs for a, b in pairs)  # both directions kept, as documented
    assert (links["kind"] == "friend").all()


def test_lastfm_item_text_does_not_depend_on_plays(imported, tmp_path):
    """Item text is a model input; a count taken from the plays (e.g. listeners) would put an
    artist's held-out plays into the features a cold artist is scored by."""
    full = imported("lastfm")
    src = tmp_path / "lastfm"
    shutil.copytree(_source(SOURCES["lastfm"]), src)
    lines = (src / "user_artists.dat").read_text(encoding="utf-8").splitlines(keepends=True)
    (src / "user_artists.dat").write_text(lines[0] + "".join(lines[1::2]), encoding="utf-8")
    half = imported("lastfm", src, key="lastfm-half-plays")
    assert half.stats.rows["interactions"] < full.stats.rows["interactions"]
    a = full.read("items").set_index("item_id")["description"]
    b = half.read("items").set_index("item_id")["description"]
    assert a.equals(b.loc[a.index])
    assert a.loc["707"].startswith("Metallica, a music artist. Most used tags: ")


# --------------------------------------------------------------------------- amazon


def test_amazon_gift_cards(imported):
    imp = imported("amazon")
    s = imp.stats
    assert s.source_rows == {"Gift_Cards_5.json.gz": 2_972, "meta_Gift_Cards.json.gz": 1_547}
    assert s.rows == {"users": 458, "items": 1_547, "interactions": 2_969}
    assert s.count("same_day_reviews") == 3
    assert s.count("reviews_without_text") == 6
    assert s.count("html_titles") == 178
    assert s.count("category_sentences") == 511
    assert s.count("duplicate_metadata") == 0
    assert s.count("reviewed_without_metadata") == 0

    ds = imp.dataset
    assert ds.domain == "ecommerce" and ds.rating_range == (1.0, 5.0)
    items = ds.items.set_index("item_id")
    for col in ("title", "description", "category", "main_cat"):
        text = items[col].fillna("")
        assert not text.str.contains(r"<[a-zA-Z/]|&#\d+;|&amp;|&gt;", regex=True).any(), col
    assert items.loc["B002VFYGC0", "title"] == "Maggiano's Gift Card"
    cats = ds.item_categories()["category"]
    assert not cats.str.contains(r"\.$", regex=True).any()  # marketing sentences moved out
    assert "Gift Card Accessories" in set(cats)
    assert "Amazon Fashion" in set(items["main_cat"])
    assert items["also_buy"].fillna("").str.contains(CATEGORY_SEPARATOR, regex=False).any()
    assert ds.interactions["review_text"].str.len().max() <= MAX_TEXT_CHARS


def test_amazon_duplicate_metadata_and_missing_products(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    reviews = [
        {"reviewerID": "U1", "asin": "A1", "overall": 5.0, "unixReviewTime": 1500000000,
         "reviewText": "Great &amp; quick"},
        {"reviewerID": "U1", "asin": "A9", "overall": 4.0, "unixReviewTime": 1500086400,
         "reviewText": "No metadata for this one"},
    ]
    meta = [
        {"asin": "A1", "title": "Card"},
        {"asin": "A1", "title": "<b>Card</b> &amp; envelope", "brand": "Acme",
         "description": ["A card."], "category": ["Gift Cards", "Gift Cards"]},
    ]
    for name, rows in (("Toys_5.json.gz", reviews), ("meta_Toys.json.gz", meta)):
        with gzip.open(src / name, "wt", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in rows)
    stats = import_dataset("amazon", src, tmp_path / "out")
    assert stats.count("duplicate_metadata") == 1
    assert stats.count("reviewed_without_metadata") == 1
    items = pd.read_csv(tmp_path / "out" / "items.csv", dtype=str).set_index("item_id")
    assert items.loc["A1", "title"] == "Card & envelope"  # the fuller row wins
    assert items.loc["A1", "category"] == "Gift Cards"
    assert items.loc["A9", "title"] == "Amazon product A9"
    inter = pd.read_csv(tmp_path / "out" / "interactions.csv", dtype=str)
    assert inter["review_text"].tolist()[0] == "Great & quick"


def test_amazon_needs_the_metadata_file(tmp_path):
    with gzip.open(tmp_path / "Toys_5.json.gz", "wt") as fh:
        fh.write("{}\n")
    with pytest.raises(FileNotFoundError, match="meta_Toys.json.gz"):
        import_dataset("amazon", tmp_path, tmp_path / "out")


# --------------------------------------------------------------------------- yfcc


def test_yfcc_all_cities(imported):
    imp = imported("yfcc")
    s = imp.stats
    assert s.source_rows == {"POI-Melb.csv": 242, "userVisits-Melb-allPOI.csv": 17_087,
                             "POI-Toro.csv": 30, "userVisits-Toro.csv": 39_419}
    # README: camera-clock errors, 23 Melbourne and 234 Toronto rows outside 2000-2017
    assert s.count("camera_clock_melb") == 23
    assert s.count("camera_clock_toro") == 234
    assert s.count("poi_names_toro") == 30  # underscores / %27 in names
    assert s.count("padding_POI-Toro.csv") == 30  # the ' -79.37917' longitudes
    assert s.rows["items"] == 242 + 30

    ds = imp.dataset
    assert ds.domain == "travel"
    items = ds.items.set_index("item_id")
    assert items["lat"].notna().all() and items["lon"].notna().all()
    assert items.loc["toro:8", "title"] == "Ripley's Aquarium of Canada"
    assert items.loc["melb:1", "category"] == "Transport|Railway Station"
    inter = ds.interactions
    assert (inter["event"] == "checkin").all()
    assert inter["timestamp"].dt.year.between(2000, 2017).all()
    out = imp.read("interactions")
    # README: 3,975 and 6,057 travel sequences; a sequence made only of bad-date photos is gone
    trips = out["seq_id"].drop_duplicates().str.split(":").str[0].value_counts()
    assert 3_900 < trips["melb"] <= 3_975 and 5_900 < trips["toro"] <= 6_057
    assert pd.to_numeric(out["photos"]).sum() == 17_087 + 39_419 - 23 - 234
    assert (ds.users["profile_text"] != "").all()
    # where and when, never what: the kinds of place visited are what a cold user's test hides
    texts = ds.users["profile_text"]
    assert texts.str.fullmatch(r"Flickr photographer; \d+ trips? to [A-Za-z ]+ \(\d{4}(-\d{4})?\)\.").all()
    themes = set(ds.items["theme"].dropna().str.lower())
    assert not any(t in text.lower() for text in texts for t in themes if len(t) > 3)


@pytest.mark.parametrize("city,code,n_items", [("melbourne", "melb", 242), ("toronto", "toro", 30)])
def test_yfcc_one_city_folder(tmp_path, city, code, n_items):
    src = _source(SOURCES["yfcc"]) / city
    stats = import_dataset("yfcc", src, tmp_path / city)
    items = pd.read_csv(tmp_path / city / "items.csv", dtype=str)
    assert len(items) == n_items and items["item_id"].str.startswith(code + ":").all()
    assert stats.rows["items"] == n_items


def test_amazon_reads_the_full_file_not_also_its_5core(tmp_path):
    review = {"reviewerID": "U1", "asin": "A1", "overall": 5.0, "unixReviewTime": 1500000000}
    for name, rows in (("Toys_5.json.gz", [review]),
                       ("Toys.json.gz", [review, dict(review, reviewerID="U2")]),
                       ("meta_Toys.json.gz", [{"asin": "A1", "title": "Toy"}])):
        with gzip.open(tmp_path / name, "wt", encoding="utf-8") as fh:
            fh.writelines(json.dumps(r) + "\n" for r in rows)
    stats = import_dataset("amazon", tmp_path, tmp_path / "out")
    assert stats.rows["interactions"] == 2
    assert "Toys_5.json.gz" not in stats.source_rows
