"""Importers that turn public recommender datasets into kgrec dataset folders.

Each importer reads one public format, repairs the quirks its source is known for (the
README beside each dataset lists them), and writes a folder that follows the input contract
in :mod:`quality.contract`. Every repair is counted in :class:`ImportStats`, so a person can
see what changed between the public files and the folder the gate will read.

Formats: ``movielens`` (ml-latest-small and ml-100k layouts), ``lastfm`` (HetRec 2011),
``amazon`` (Amazon Review Data 2018, any category) and ``yfcc`` (Flickr/YFCC100M POI visits,
Melbourne CIKM'16 and IJCAI'15 city layouts).
"""

from __future__ import annotations

import ast
import gzip
import io
import json
import logging
import re
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd

from quality.contract import CATEGORY_SEPARATOR, DatasetManifest, find_file, write_dataset

log = logging.getLogger(__name__)

FORMATS = ("movielens", "lastfm", "amazon", "yfcc")

#: Longest text cell written. Equal to ``GateConfig.max_text_chars`` (a test keeps the two in
#: step); kept here so importing a dataset does not load the gate.
MAX_TEXT_CHARS = 20_000


# --------------------------------------------------------------------------- stats


@dataclass(frozen=True)
class CleaningAction:
    """One repair an importer made.

    Attributes:
        key: a stable name for the repair (``duplicate_ratings``), for code and tests.
        count: how many rows or cells it touched.
        message: the same repair in words, count included.
    """

    key: str
    count: int
    message: str


@dataclass
class ImportStats:
    """What an import read, wrote and repaired.

    Attributes:
        format: the source format (one of :data:`FORMATS`).
        source: the folder read.
        dest: the dataset folder written.
        layout: the variant of the format that was detected (``ml-latest-small``, ...).
        source_rows: rows read per source file (header excluded).
        rows: rows written per contract file.
        actions: every repair, with its count; checks that found nothing have count 0.
        notes: choices made where the source leaves a gap (no timestamps, one-sided data).
        seconds: wall time of the import.
    """

    format: str
    source: Path
    dest: Path
    layout: str = ""
    source_rows: dict[str, int] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    actions: list[CleaningAction] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def record(self, key: str, count: int, message: str, *, keep_zero: bool = False) -> None:
        """Add a repair; a zero count is kept only with ``keep_zero`` (a README quirk checked)."""
        count = int(count)
        if count or keep_zero:
            self.actions.append(CleaningAction(key, count, message))
            log.info("%s: %s", self.format, message)

    def note(self, text: str) -> None:
        self.notes.append(text)

    def count(self, key: str) -> int:
        """Total count of the repairs named ``key``.

        Raises:
            KeyError: no repair of that name was recorded, not even a zero-count check.
        """
        found = [a.count for a in self.actions if a.key == key]
        if not found:
            known = sorted({a.key for a in self.actions})
            raise KeyError(f"no cleaning action {key!r} recorded; recorded: {known}")
        return sum(found)

    def summary(self) -> str:
        layout = f" ({self.layout})" if self.layout else ""
        lines = [f"imported {self.format}{layout} from {self.source} into {self.dest} "
                 f"in {self.seconds:.1f}s"]
        if self.source_rows:
            read = ", ".join(f"{k}={v:,}" for k, v in self.source_rows.items())
            lines.append(f"  read:    {read}")
        wrote = ", ".join(f"{k}={v:,}" for k, v in self.rows.items())
        lines.append(f"  wrote:   {wrote}")
        done = [a for a in self.actions if a.count]
        clean = [a for a in self.actions if not a.count]
        if done:
            lines.append("  cleaned:")
            lines += [f"    - {a.message}" for a in done]
        else:
            lines.append("  cleaned: nothing needed cleaning")
        if clean:
            lines.append("  checked, none found: " + "; ".join(a.message for a in clean))
        if self.notes:
            lines.append("  notes:")
            lines += [f"    - {n}" for n in self.notes]
        return "\n".join(lines)


@dataclass
class _Tables:
    """An importer's result before it is written."""

    manifest: DatasetManifest
    users: pd.DataFrame
    items: pd.DataFrame
    interactions: pd.DataFrame
    user_links: pd.DataFrame | None = None


# --------------------------------------------------------------------------- entry point


def import_dataset(fmt: str, src: Path, dest: Path) -> ImportStats:
    """Convert a public dataset into a kgrec dataset folder.

    Args:
        fmt: the source format, one of :data:`FORMATS`.
        src: the folder holding the public files (read only).
        dest: the dataset folder to write; contract files already there are replaced.

    What ``src`` holds, per format:

    * ``movielens``: ml-latest-small (``ratings.csv``, ``movies.csv``, optional ``tags.csv``,
      ``links.csv``) or ml-100k (``u.data``, ``u.item``, ``u.user``, optional ``u.genre``);
      the layout is detected from the files present.
    * ``lastfm``: the five HetRec 2011 ``.dat`` files.
    * ``amazon``: ``<Category>_5.json.gz`` or ``<Category>.json.gz`` reviews beside
      ``meta_<Category>.json.gz``; every category in the folder is imported.
    * ``yfcc``: one city folder (``POI-<City>.csv`` and ``userVisits-<City>*.csv``, possibly
      in the IJCAI'15 subfolders) or a folder of cities, which imports all of them; item ids
      are ``<city code>:<poiID>`` either way, so they do not change with the choice.

    Returns:
        What was read, written and cleaned; ``summary()`` prints it.

    Raises:
        ValueError: unknown ``fmt``, or ``dest`` is the source folder.
        FileNotFoundError: ``src`` or a file the format needs is missing (the path is named).
    """
    key = str(fmt).strip().lower()
    if key not in _IMPORTERS:
        raise ValueError(f"unknown dataset format {fmt!r}; expected one of {list(FORMATS)}")
    src, dest = Path(src), Path(dest)
    if not src.exists():
        raise FileNotFoundError(f"source folder {src} does not exist")
    if not src.is_dir():
        raise FileNotFoundError(f"source {src} is not a folder; pass the folder that holds the "
                                f"{key} files")
    if dest.resolve() == src.resolve():
        raise ValueError(f"dest {dest} is the source folder; write the dataset somewhere else")
    t0 = time.perf_counter()
    stats = ImportStats(key, src, dest)
    tables = _IMPORTERS[key](src, stats)
    _write(tables, dest, stats)
    stats.seconds = time.perf_counter() - t0
    return stats


# --------------------------------------------------------------------------- shared helpers

_WS = re.compile(r"\s+")
_MARKUP = re.compile(r"<[A-Za-z/!][^>]*>|&(?:#\d+|#[xX][0-9A-Fa-f]+|[A-Za-z][A-Za-z0-9]*);")


class _TextExtractor(HTMLParser):
    """Visible text of an HTML fragment: tags dropped, entities decoded, ``img alt`` kept."""

    _BLOCK = frozenset("br p div li ul ol tr td th table h1 h2 h3 h4 h5 h6 hr".split())

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in self._BLOCK:
            self.parts.append(" ")
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self.parts.append(f" {alt} ")

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip = max(0, self._skip - 1)
        elif tag in self._BLOCK:
            self.parts.append(" ")

    def handle_data(self, data):
        if not self._skip:
            self.parts.append(data)


def strip_markup(text: str) -> str:
    """Text without HTML tags and with entities decoded (``Maggiano&#39;s`` → ``Maggiano's``)."""
    if not _MARKUP.search(text):
        return text
    parser = _TextExtractor()
    parser.feed(text)
    parser.close()
    return "".join(parser.parts)


def _truncate(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    # cut at a word boundary when one is near, so the encoder never sees half a word
    return (cut[:space] if space > limit - 200 else cut) + "…"


def _tidy(values: pd.Series, stats: ImportStats, what: str, *, markup: bool = False) -> pd.Series:
    """Clean one text column: optional HTML removal, whitespace collapsed, length capped.

    Each kind of change is counted under ``html_<what>``, ``whitespace_<what>`` and
    ``truncated_<what>`` (``what`` is a plural noun such as ``titles``).
    """
    s = values.astype(object).where(values.notna(), "").astype(str)
    key = what.replace(" ", "_")
    if markup:
        has = s.str.contains(_MARKUP, regex=True)
        if has.any():
            s = s.where(~has, s[has].map(strip_markup))
        stats.record(f"html_{key}", has.sum(), f"stripped HTML tags/entities from {has.sum():,} {what}")
    tidy = s.str.replace(_WS, " ", regex=True).str.strip()
    stats.record(f"whitespace_{key}", (tidy != s).sum(),
                 f"trimmed stray whitespace (line breaks, tabs, padding) in {(tidy != s).sum():,} {what}")
    long = tidy.str.len() > MAX_TEXT_CHARS
    if long.any():
        tidy = tidy.where(~long, tidy[long].map(_truncate))
    stats.record(f"truncated_{key}", long.sum(),
                 f"truncated {long.sum():,} {what} to the gate's {MAX_TEXT_CHARS:,}-character cap")
    return tidy


def _category(parts: list[str]) -> str:
    """Join category labels with ``|``: labels trimmed, empty and repeated ones dropped."""
    seen: list[str] = []
    for p in parts:
        p = _WS.sub(" ", str(p)).strip().replace(CATEGORY_SEPARATOR, "/")
        if p and p not in seen:
            seen.append(p)
    return CATEGORY_SEPARATOR.join(seen)


def _require(folder: Path, name: str) -> Path:
    path = folder / name
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; the {folder.name} import needs it")
    return path


def _decode(path: Path, stats: ImportStats) -> str:
    """File text as UTF-8, or Latin-1 when it is not valid UTF-8 (counted as a repair)."""
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        stats.record(f"latin1_{path.name}", 1,
                     f"decoded {path.name} as Latin-1 (not valid UTF-8 at byte {e.start})")
        return raw.decode("latin-1")


def _read_table(path: Path, stats: ImportStats, sep: str, *, header: bool = True,
                names: list[str] | None = None, quoted: bool = True) -> pd.DataFrame:
    """A delimited file as a frame of stripped strings (empty cells are ``""``)."""
    text = _decode(path, stats)
    crlf = text.count("\r\n")
    stats.record("crlf", crlf, f"normalised {crlf:,} CRLF line ends in {path.name}")
    text = text.replace("\r\n", "\n")
    frame = pd.read_csv(
        io.StringIO(text),
        sep=sep,
        header=0 if header else None,
        names=names,
        dtype=str,
        keep_default_na=False,
        quoting=0 if quoted else 3,  # csv.QUOTE_MINIMAL / csv.QUOTE_NONE
        skip_blank_lines=True,
        engine="c",
    )
    frame.columns = [str(c).strip().strip('"') for c in frame.columns]
    padded = 0
    for col in frame.columns:
        stripped = frame[col].str.strip()
        padded += int((stripped != frame[col]).sum())
        frame[col] = stripped
    stats.record(f"padding_{path.name}", padded,
                 f"trimmed leading/trailing spaces from {padded:,} cells of {path.name}")
    stats.source_rows[path.name] = len(frame)
    return frame


def _unix(dt: pd.Series) -> pd.Series:
    """UTC datetimes as integer unix seconds (nullable)."""
    secs = (dt - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)
    return secs.astype("Int64")


def _ranked_terms(frame: pd.DataFrame, key: str, term: str, k: int) -> pd.Series:
    """Per ``key``, its ``k`` most frequent ``term`` values (ties alphabetical), as lists."""
    if frame.empty:
        return pd.Series(dtype=object)
    counts = frame.groupby([key, term], sort=False).size().rename("n").reset_index()
    counts = counts.sort_values([key, "n", term], ascending=[True, False, True], kind="stable")
    top = counts.groupby(key, sort=False).head(k)
    return top.groupby(key, sort=False)[term].agg(list)


def _drop_duplicate_keys(frame: pd.DataFrame, keys: list[str], stats: ImportStats, key: str,
                         what: str, *, keep: str = "first") -> pd.DataFrame:
    dup = frame.duplicated(keys, keep=keep)
    stats.record(key, dup.sum(), f"dropped {dup.sum():,} {what}", keep_zero=True)
    return frame[~dup].reset_index(drop=True)


def _write(t: _Tables, dest: Path, stats: ImportStats) -> None:
    """Last checks every format shares, then write the folder."""
    users, items, inter = t.users, t.items, t.interactions
    for frame, col, what in ((users, "user_id", "users"), (items, "item_id", "items")):
        if frame[col].duplicated().any():  # importers build these unique; a repeat is a bug
            dups = frame.loc[frame[col].duplicated(), col].head(5).tolist()
            raise AssertionError(f"importer produced repeated {what} ids: {dups}")
    known = inter["user_id"].isin(set(users["user_id"])) & inter["item_id"].isin(set(items["item_id"]))
    stats.record("unknown_ids", (~known).sum(),
                 f"dropped {(~known).sum():,} interactions whose user or item is not in the files")
    inter = inter[known]
    now = int(time.time())
    ts = pd.to_numeric(inter["timestamp"], errors="coerce")
    bad_time = ts.isna() | (ts <= 0) | (ts > now)
    stats.record("impossible_timestamps", bad_time.sum(),
                 f"dropped {bad_time.sum():,} interactions timed before 1970 or in the future")
    inter = inter[~bad_time].copy()
    inter["timestamp"] = ts[~bad_time].astype("int64")
    dup = inter.duplicated(["user_id", "item_id", "timestamp"])
    stats.record("duplicate_interactions", dup.sum(),
                 f"dropped {dup.sum():,} repeated (user, item, timestamp) interactions")
    inter = inter[~dup].reset_index(drop=True)

    links = t.user_links
    if links is not None:
        self_link = links["src_user_id"] == links["dst_user_id"]
        stats.record("self_links", self_link.sum(), f"dropped {self_link.sum():,} self-links",
                     keep_zero=True)
        ids = set(users["user_id"])
        unknown = ~(links["src_user_id"].isin(ids) & links["dst_user_id"].isin(ids))
        stats.record("unknown_link_users", (unknown & ~self_link).sum(),
                     f"dropped {(unknown & ~self_link).sum():,} links to users not in the files")
        links = links[~self_link & ~unknown]
        links = _drop_duplicate_keys(links, ["src_user_id", "dst_user_id"], stats,
                                     "duplicate_links", "repeated links")

    write_dataset(dest, t.manifest, users, items, inter, links)
    if links is None:  # a folder reused from an earlier import must not keep its old links
        while (stale := find_file(dest, "user_links")) is not None:
            stale.unlink()
    stats.rows = {"users": len(users), "items": len(items), "interactions": len(inter)}
    if links is not None:
        stats.rows["user_links"] = len(links)


# --------------------------------------------------------------------------- movielens

#: ml-100k's genre flags in file order, used when ``u.genre`` is absent.
ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
)
_TITLE_YEAR = re.compile(r"^(?P<name>.*?)\s*\((?P<span>(?P<year>\d{4})(?:\s*[-–]\s*\d{0,4})?)\)$")
# MovieLens files titles under their first significant word ("Usual Suspects, The"); only the
# main title is turned round, alternative titles in brackets keep the catalogue form.
_TRAILING_ARTICLE = re.compile(
    r"^(?P<main>[^()]+?), (?P<art>The|A|An|Les|Le|La|L'|Il|Lo|Gli|El|Los|Las|Das|Die|Der|Den|"
    r"Det|Un|Une)(?P<rest>\s+\(.*\))?$"
)


def _movie_titles(raw: pd.Series, stats: ImportStats) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Display titles ("The Usual Suspects (1995)"), release years, and placeholder-title flags."""
    titles = _tidy(raw, stats, "titles")
    parts = titles.str.extract(_TITLE_YEAR)
    name = parts["name"].where(parts["name"].notna(), titles)
    year = pd.to_numeric(parts["year"], errors="coerce").astype("Int64")
    stats.record("titles_without_year", year.isna().sum(),
                 f"kept {year.isna().sum():,} titles that state no year (year left empty)")
    art = name.str.extract(_TRAILING_ARTICLE)
    moved = art["main"].notna()
    sep = art["art"].where(art["art"].str.endswith("'"), art["art"] + " ")
    front = sep + art["main"] + art["rest"].fillna("")
    name = name.where(~moved, front)
    stats.record("title_articles", moved.sum(),
                 f"moved the trailing article to the front in {moved.sum():,} titles "
                 "('Usual Suspects, The' → 'The Usual Suspects')")
    display = name.where(year.isna(), name + " (" + parts["span"] + ")")
    placeholder = display.str.lower().isin(["unknown", ""])
    return display, year, placeholder


def _movie_description(title: pd.Series, year: pd.Series, genres: pd.Series,
                       tags: pd.Series) -> pd.Series:
    def one(t, y, g, tg):
        text = f"{t}."
        if not pd.isna(y):
            text += f" Released in {y}."
        if g:
            text += " Genres: " + g.replace(CATEGORY_SEPARATOR, ", ") + "."
        if isinstance(tg, list) and tg:
            text += " Most common user tags: " + ", ".join(tg) + "."
        return text

    return pd.Series([one(*row) for row in zip(title, year, genres, tags)], index=title.index)


def _merge_duplicate_movies(items: pd.DataFrame, link_col: str, ratings: pd.DataFrame,
                            tags: pd.DataFrame | None, stats: ImportStats):
    """Fold movies listed twice (same title and same IMDb reference) into the lowest id."""
    has_link = items[link_col].fillna("") != ""
    keyed = items[has_link].assign(_n=pd.to_numeric(items["item_id"], errors="coerce"))
    keyed = keyed.sort_values("_n", kind="stable")
    first = keyed.groupby(["title", link_col], sort=False)["item_id"].transform("first")
    remap = dict(zip(keyed["item_id"], first))
    remap = {k: v for k, v in remap.items() if k != v}
    moved = int(ratings["item_id"].isin(remap).sum())
    stats.record("duplicate_movies", len(remap),
                 f"merged {len(remap):,} movies listed twice (same title and IMDb reference) into "
                 f"their lower id, moving {moved:,} ratings", keep_zero=True)
    if remap:
        items = items[~items["item_id"].isin(remap)].reset_index(drop=True)
        ratings = ratings.assign(item_id=ratings["item_id"].replace(remap))
        if tags is not None:
            tags = tags.assign(item_id=tags["item_id"].replace(remap))
    return items, ratings, tags


def _movie_ratings(ratings: pd.DataFrame, stats: ImportStats) -> pd.DataFrame:
    ratings = ratings.assign(
        rating=pd.to_numeric(ratings["rating"], errors="coerce"),
        timestamp=pd.to_numeric(ratings["timestamp"], errors="coerce"),
    )
    bad = ratings["rating"].isna() | ratings["timestamp"].isna()
    stats.record("unparseable_ratings", bad.sum(),
                 f"dropped {bad.sum():,} rating rows whose rating or timestamp is not a number")
    ratings = ratings[~bad].sort_values(["user_id", "item_id", "timestamp"], kind="stable")
    ratings = _drop_duplicate_keys(
        ratings, ["user_id", "item_id"], stats, "duplicate_ratings",
        "repeated ratings of the same movie by the same user (kept the latest)", keep="last")
    return ratings.assign(timestamp=ratings["timestamp"].astype("int64"), event="rate")[
        ["user_id", "item_id", "timestamp", "rating", "event"]]


def _import_movielens(src: Path, stats: ImportStats) -> _Tables:
    if (src / "ratings.csv").exists() or (src / "movies.csv").exists():
        return _movielens_latest(src, stats)
    if (src / "u.data").exists() or (src / "u.item").exists():
        return _movielens_100k(src, stats)
    raise FileNotFoundError(
        f"{src} holds no MovieLens files: expected {src / 'ratings.csv'} and movies.csv "
        f"(ml-latest-small layout) or {src / 'u.data'}, u.item and u.user (ml-100k layout)")


def _movielens_latest(src: Path, stats: ImportStats) -> _Tables:
    stats.layout = "ml-latest-small"
    ratings = _read_table(_require(src, "ratings.csv"), stats, ",")
    movies = _read_table(_require(src, "movies.csv"), stats, ",")
    tags_path, links_path = src / "tags.csv", src / "links.csv"
    tags = _read_table(tags_path, stats, ",") if tags_path.exists() else None
    links = _read_table(links_path, stats, ",") if links_path.exists() else None
    if tags is None:
        stats.note("tags.csv absent: no user tags in descriptions or profiles")
    if links is None:
        stats.note("links.csv absent: no IMDb/TMDb ids")
    ratings = ratings.rename(columns={"userId": "user_id", "movieId": "item_id"})
    movies = movies.rename(columns={"movieId": "item_id"})

    items = movies[["item_id"]].copy()
    title, year, placeholder = _movie_titles(movies["title"], stats)
    items["title"] = title
    genres = movies["genres"].str.strip()
    none_listed = genres.str.lower().eq("(no genres listed)")
    stats.record("no_genres", none_listed.sum(),
                 f"emptied the placeholder '(no genres listed)' of {none_listed.sum():,} movies",
                 keep_zero=True)
    items["category"] = genres.where(~none_listed, "").str.split("|").map(_category)
    items["year"] = year
    if links is not None:
        links = links.rename(columns={"movieId": "item_id"})
        links = links.drop_duplicates("item_id")
        imdb = links["imdbId"].where(links["imdbId"] == "", "tt" + links["imdbId"].str.zfill(7))
        lk = pd.DataFrame({"item_id": links["item_id"], "imdb_id": imdb, "tmdb_id": links["tmdbId"]})
        items = items.merge(lk, on="item_id", how="left")
        no_tmdb = (items["tmdb_id"].fillna("") == "").sum()
        stats.record("empty_tmdb", no_tmdb, f"left tmdb_id empty for {no_tmdb:,} movies without one",
                     keep_zero=True)
        stats.note("imdb_id is written as 'tt' + the zero-padded id so no reader turns it into a "
                   "number and loses the padding")
    else:
        items["imdb_id"] = ""
    stats.record("placeholder_titles", placeholder.sum(),
                 f"renamed {placeholder.sum():,} movies titled 'unknown'")
    items.loc[placeholder.values, "title"] = "Untitled movie " + items.loc[placeholder.values, "item_id"]

    ratings = ratings[["user_id", "item_id", "rating", "timestamp"]]
    if tags is not None:
        tags = tags.rename(columns={"userId": "user_id", "movieId": "item_id"})
        tags["tag"] = _tidy(tags["tag"], stats, "tags")
        empty = tags["tag"] == ""
        stats.record("empty_tags", empty.sum(), f"dropped {empty.sum():,} empty tags")
        tags = tags[~empty]
    items, ratings, tags = _merge_duplicate_movies(items, "imdb_id", ratings, tags, stats)
    shared = items["title"].duplicated(keep=False)
    if shared.any():
        stats.note(f"{shared.sum():,} movies share their title with another movie but have "
                   "different IMDb ids (different films); kept apart")
    inter = _movie_ratings(ratings, stats)

    users = pd.DataFrame({"user_id": pd.unique(pd.concat([inter["user_id"]] + (
        [tags["user_id"]] if tags is not None else [])))})
    users = users.assign(_n=pd.to_numeric(users["user_id"], errors="coerce")).sort_values(
        ["_n", "user_id"]).drop(columns="_n").reset_index(drop=True)
    if tags is not None:
        # One spelling per tag, the first one seen, so "Funny" and "funny" count together.
        tags["key"] = tags["tag"].str.lower()
        spelling = tags.drop_duplicates("key").set_index("key")["tag"]
        movie_tags = _ranked_terms(tags, "item_id", "key", 5).map(lambda ks: [spelling[k] for k in ks])
        user_tags = _ranked_terms(tags, "user_id", "key", 25).map(lambda ks: [spelling[k] for k in ks])
    else:
        movie_tags = user_tags = pd.Series(dtype=object)
    items["description"] = _movie_description(
        items["title"], items["year"], items["category"], items["item_id"].map(movie_tags))
    ut = users["user_id"].map(user_tags)
    users["profile_text"] = ut.map(
        lambda ts: "Tags this user wrote on movies: " + ", ".join(ts) + "." if isinstance(ts, list) else "")
    n_prof = (users["profile_text"] != "").sum()
    stats.note(f"profile_text built from the tags each user wrote ({n_prof} of {len(users)} users "
               "wrote tags; the rest have none, MovieLens has no other user side information)")
    unrated = (~items["item_id"].isin(set(inter["item_id"]))).sum()
    if unrated:
        stats.note(f"{unrated} movies have no ratings; kept as cold-start items")
    manifest = DatasetManifest(
        "content", "movielens-latest-small",
        notes=("MovieLens ml-latest-small (GroupLens). Explicit 0.5-5 star ratings; titles with "
               "the article moved to the front and the year kept; description = title, year, "
               "genres, most common user tags; profile_text = tags the user wrote."),
        rating_range=(0.5, 5.0),
    )
    return _Tables(manifest, users, items[["item_id", "title", "description", "category", "year",
                                            "imdb_id"] + (["tmdb_id"] if "tmdb_id" in items else [])],
                   inter)


def _movielens_100k(src: Path, stats: ImportStats) -> _Tables:
    stats.layout = "ml-100k"
    data_path, item_path, user_path = (_require(src, n) for n in ("u.data", "u.item", "u.user"))
    genres = list(ML100K_GENRES)
    if (src / "u.genre").exists():
        g = _read_table(src / "u.genre", stats, "|", header=False, names=["genre", "index"],
                        quoted=False)
        g = g[g["genre"] != ""]
        genres = g.sort_values("index", key=lambda s: pd.to_numeric(s))["genre"].tolist()
    ratings = _read_table(data_path, stats, "\t", header=False,
                          names=["user_id", "item_id", "rating", "timestamp"], quoted=False)
    cols = ["item_id", "title", "release_date", "video_release_date", "imdb_url"] + genres
    movies = _read_table(item_path, stats, "|", header=False, names=cols, quoted=False)
    users = _read_table(user_path, stats, "|", header=False,
                        names=["user_id", "age", "gender", "occupation", "zip_code"], quoted=False)

    items = movies[["item_id"]].copy()
    title, year, placeholder = _movie_titles(movies["title"], stats)
    release = pd.to_datetime(movies["release_date"], format="%d-%b-%Y", errors="coerce")
    year = year.fillna(pd.Series(release.dt.year, index=year.index).astype("Int64"))
    items["title"] = title
    flags = movies[genres].apply(pd.to_numeric, errors="coerce").fillna(0).astype(bool)
    items["category"] = [
        _category([g for g, on in zip(genres, row) if on and g != "unknown"])
        for row in flags.itertuples(index=False)
    ]
    items["year"] = year
    items["release_date"] = release.dt.strftime("%Y-%m-%d").fillna("")
    items["imdb_url"] = movies["imdb_url"]
    stats.record("placeholder_titles", placeholder.sum(),
                 f"renamed {placeholder.sum():,} movies titled 'unknown' to 'Untitled movie <id>'",
                 keep_zero=True)
    items.loc[placeholder.values, "title"] = "Untitled movie " + items.loc[placeholder.values, "item_id"]
    if (movies["video_release_date"] == "").all():
        stats.note("video_release_date dropped: it is empty on every row")
    else:
        items["video_release_date"] = movies["video_release_date"]

    items, ratings, _ = _merge_duplicate_movies(items, "imdb_url", ratings, None, stats)
    inter = _movie_ratings(ratings, stats)
    items["description"] = _movie_description(
        items["title"], items["year"], items["category"], pd.Series([None] * len(items), index=items.index))

    extra = sorted(set(inter["user_id"]) - set(users["user_id"]))
    stats.record("users_without_profile", len(extra),
                 f"added {len(extra):,} rating users missing from u.user (no side information)")
    if extra:
        users = pd.concat([users, pd.DataFrame({"user_id": extra})], ignore_index=True)
    users = users.fillna("")
    users["age"] = pd.to_numeric(users["age"], errors="coerce").astype("Int64")
    gender = users["gender"].str.upper().map({"M": "male", "F": "female"}).fillna("")
    stats.note("zip_code kept as text: ml-100k has Canadian (letters) and 4-digit codes")

    def profile(age, sex, job, zipc) -> str:
        bits = []
        if not pd.isna(age):
            bits.append(f"Age {age}.")
        if sex:
            bits.append(f"Gender: {sex}.")
        if job and job.lower() != "none":
            bits.append(f"Occupation: {job}.")
        elif job:
            bits.append("No occupation.")
        if zipc:
            bits.append(f"ZIP code {zipc}.")
        return " ".join(bits)

    users["gender"] = users["gender"].str.upper()
    users["profile_text"] = [profile(*r) for r in zip(users["age"], gender, users["occupation"],
                                                       users["zip_code"])]
    users = users[["user_id", "profile_text", "age", "gender", "occupation", "zip_code"]]
    manifest = DatasetManifest(
        "content", "movielens-100k",
        notes=("MovieLens 100K (GroupLens). Explicit 1-5 star ratings; genres from the u.item "
               "flags; profile_text = age, gender, occupation and ZIP code from u.user."),
        rating_range=(1.0, 5.0),
    )
    keep = ["item_id", "title", "description", "category", "year", "release_date", "imdb_url",
            "video_release_date"]
    return _Tables(manifest, users, items[[c for c in keep if c in items]], inter)


# --------------------------------------------------------------------------- lastfm

#: Last.fm opened in 2002; earlier tag dates are clock or entry errors.
LASTFM_EARLIEST = pd.Timestamp("2002-01-01", tz="UTC")
#: hetrec2011-lastfm-2k v1.0 was released in May 2011: the play counts were collected by then.
LASTFM_COLLECTED = pd.Timestamp("2011-05-01", tz="UTC")


def _import_lastfm(src: Path, stats: ImportStats) -> _Tables:
    stats.layout = "hetrec2011-lastfm-2k"
    plays = _read_table(_require(src, "user_artists.dat"), stats, "\t", quoted=False)
    artists = _read_table(_require(src, "artists.dat"), stats, "\t", quoted=False)
    tags = _read_table(_require(src, "tags.dat"), stats, "\t", quoted=False)
    tagged = _read_table(_require(src, "user_taggedartists.dat"), stats, "\t", quoted=False)
    friends = _read_table(_require(src, "user_friends.dat"), stats, "\t", quoted=False)
    if (src / "user_taggedartists-timestamps.dat").exists():
        stats.note("user_taggedartists-timestamps.dat present but not needed: the day/month/year "
                   "columns give the same dates")

    # ----- artists
    names = artists["name"]
    fixed = names.map(_fix_mojibake)
    n_moji = (fixed != names).sum()
    stats.record("mojibake_names", n_moji,
                 f"repaired {n_moji:,} artist names encoded twice as UTF-8 ('BallakÃ© Sissoko' → "
                 "'Ballaké Sissoko')")
    items = pd.DataFrame({"item_id": artists["id"], "title": _tidy(fixed, stats, "artist names")})
    empty = items["title"] == ""
    stats.record("empty_titles", empty.sum(), f"named {empty.sum():,} artists with no name after their id")
    items.loc[empty, "title"] = "Artist " + items.loc[empty, "item_id"]
    items["url"] = artists["url"]
    items = _drop_duplicate_keys(items, ["item_id"], stats, "duplicate_artists",
                                 "repeated artist ids in artists.dat")

    # ----- tags and tag assignments
    tags = tags.rename(columns={"tagID": "tag_id", "tagValue": "tag"})
    tags["tag"] = _tidy(tags["tag"], stats, "tag values").str.lower()
    tag_text = dict(zip(tags["tag_id"], tags["tag"]))
    tagged = tagged.rename(columns={"userID": "user_id", "artistID": "item_id", "tagID": "tag_id"})
    tagged["tag"] = tagged["tag_id"].map(tag_text)
    no_tag = tagged["tag"].isna() | (tagged["tag"] == "")
    stats.record("unknown_tag_ids", no_tag.sum(),
                 f"dropped {no_tag.sum():,} tag assignments whose tag id is not in tags.dat")
    tagged = tagged[~no_tag].copy()
    when = pd.to_datetime(
        pd.DataFrame({"year": pd.to_numeric(tagged["year"], errors="coerce"),
                      "month": pd.to_numeric(tagged["month"], errors="coerce"),
                      "day": pd.to_numeric(tagged["day"], errors="coerce")}),
        errors="coerce", utc=True)
    invalid = when.isna()
    stats.record("invalid_tag_dates", invalid.sum(),
                 f"ignored {invalid.sum():,} tag dates that are not calendar dates")
    implausible = when.notna() & ((when < LASTFM_EARLIEST) | (when > pd.Timestamp.now(tz="UTC")))
    years = sorted(set(when[implausible].dt.year.astype(int).tolist()))
    stats.record("impossible_tag_dates", implausible.sum(),
                 f"ignored {implausible.sum():,} impossible tag dates (before Last.fm existed in "
                 f"2002 or in the future; years {years}); the tags themselves are kept",
                 keep_zero=True)
    tagged["when"] = when.where(~(invalid | implausible))
    known_artist = tagged["item_id"].isin(set(items["item_id"]))
    stats.record("tags_unknown_artists", (~known_artist).sum(),
                 f"kept {(~known_artist).sum():,} tag assignments on artists missing from artists.dat "
                 "for user profiles only (no item to describe)")

    # ----- items: categories and descriptions from the tags used on them most
    on_items = tagged[known_artist]
    top = _ranked_terms(on_items, "item_id", "tag", 10)
    cat = items["item_id"].map(top)
    items["category"] = cat.map(lambda t: _category(t[:3]) if isinstance(t, list) else "")

    def describe(name, t):
        text = f"{name}, a music artist."
        if isinstance(t, list) and t:
            text += " Most used tags: " + ", ".join(t) + "."
        return text

    # Nothing counted from the plays goes into the text: a listener count would carry every
    # artist's held-out plays into the features a cold artist is scored by.
    items["description"] = [describe(*r) for r in zip(items["title"], cat)]
    stats.note("item category = the artist's 3 most used tags; description = name and its 10 most "
               "used tags (no listener count: it would leak held-out plays into item text)")

    # ----- interactions: plays
    plays = plays.rename(columns={"userID": "user_id", "artistID": "item_id"})
    plays["plays"] = pd.to_numeric(plays["weight"], errors="coerce")
    bad = plays["plays"].isna() | (plays["plays"] <= 0)
    stats.record("bad_play_counts", bad.sum(), f"dropped {bad.sum():,} rows without a positive play count",
                 keep_zero=True)
    plays = plays[~bad].copy()
    plays = _drop_duplicate_keys(plays, ["user_id", "item_id"], stats, "duplicate_plays",
                                 "repeated (user, artist) play rows", keep="first")
    plays["plays"] = plays["plays"].astype("int64")
    plays["weight"] = np.log1p(plays["plays"]).round(4)
    stats.note(f"weight = ln(1 + play count): raw counts run from {plays['plays'].min():,} to "
               f"{plays['plays'].max():,} and would let a few users dominate; the raw count is "
               "kept in the 'plays' column")
    # Plays carry no time. Use the first date the user tagged that artist (they were listening
    # then); otherwise the user's last tag date (their last known activity); otherwise the day
    # the dataset was collected. Deterministic, so a rerun writes the same folder.
    dated = tagged.dropna(subset=["when"])
    first_tag = dated.groupby(["user_id", "item_id"])["when"].min()
    last_seen = dated.groupby("user_id")["when"].max()
    ts = plays[["user_id", "item_id"]].merge(
        first_tag.rename("first").reset_index(), on=["user_id", "item_id"], how="left")["first"]
    ts.index = plays.index
    from_pair = ts.notna()
    ts = ts.fillna(plays["user_id"].map(last_seen))
    from_user = ts.notna() & ~from_pair
    ts = ts.fillna(LASTFM_COLLECTED)
    from_release = ~(from_pair | from_user)
    plays["timestamp"] = _unix(pd.to_datetime(ts, utc=True))
    plays["event"] = "listen"
    stats.note(
        f"plays have no time in the source; timestamp = first date the user tagged that artist "
        f"for {from_pair.sum():,} plays, else the user's last tag date for {from_user.sum():,}, "
        f"else {LASTFM_COLLECTED.date()} (collection month) for {from_release.sum():,}; all at "
        "day resolution, midnight UTC")
    inter = plays[["user_id", "item_id", "timestamp", "event", "weight", "plays"]]
    n_tag_only = len(on_items[["user_id", "item_id"]].drop_duplicates()
                     .merge(plays[["user_id", "item_id"]], how="left", indicator=True)
                     .query("_merge == 'left_only'"))
    stats.note(f"{n_tag_only:,} (user, artist) pairs were tagged but are not among the user's "
               "top artists; they shape descriptions and profiles but are not interactions")

    # ----- users and friends
    friends = friends.rename(columns={"userID": "src_user_id", "friendID": "dst_user_id"})
    ids = pd.unique(pd.concat([plays["user_id"], tagged["user_id"], friends["src_user_id"],
                               friends["dst_user_id"]]))
    users = pd.DataFrame({"user_id": ids})
    users = users.assign(_n=pd.to_numeric(users["user_id"], errors="coerce")).sort_values(
        ["_n", "user_id"]).drop(columns="_n").reset_index(drop=True)
    user_tags = _ranked_terms(tagged, "user_id", "tag", 20)
    users["profile_text"] = users["user_id"].map(user_tags).map(
        lambda t: "Tags this listener uses: " + ", ".join(t) + "." if isinstance(t, list) else "")
    stats.note(f"profile_text = each user's 20 most used tags ({(users['profile_text'] != '').sum():,} "
               f"of {len(users):,} users tagged anything)")
    links = friends[["src_user_id", "dst_user_id"]].assign(kind="friend")
    pairs = set(zip(links["src_user_id"], links["dst_user_id"]))
    one_way = sum((b, a) not in pairs for a, b in pairs)
    stats.note(f"user_friends.dat lists each friendship in both directions; kept both rows "
               f"({len(pairs) - one_way:,} rows = {(len(pairs) - one_way) // 2:,} friendships) so "
               f"directed readers see each side; {one_way} rows had no reverse row")
    manifest = DatasetManifest(
        "social", "lastfm-hetrec2011-2k",
        notes=("Last.fm HetRec 2011 (2K users). Interactions are each user's top artists; "
               "weight = ln(1 + plays), raw count in 'plays'; timestamps borrowed from tag dates "
               "(see the importer). Friend links kept in both directions."),
    )
    return _Tables(manifest, users, items[["item_id", "title", "description", "category", "url"]],
                   inter, links)


def _fix_mojibake(text: str) -> str:
    """Undo UTF-8 read as Latin-1/CP-1252 and saved again, when the round trip is clean."""
    if text.isascii() or not any(c in text for c in "ÃÂâ"):
        return text
    for enc in ("cp1252", "latin-1"):
        try:
            fixed = text.encode(enc).decode("utf-8")
        except UnicodeError:
            continue
        if fixed != text:
            return fixed
    return text


# --------------------------------------------------------------------------- amazon

# A category label is a short name ("Arts, Crafts & Sewing"); a sentence ends like one, has a
# full stop inside, quotes something, or runs to 7+ words.
_SENTENCE = re.compile(r'[.!?]$|\.\s|"|^(?:\S+\s+){6,}\S+')


def _read_json_lines(path: Path, stats: ImportStats) -> list[dict]:
    """Records of a (gzipped) JSON-lines file; Python-literal lines of older dumps also parse."""
    opener = gzip.open if path.suffix == ".gz" else open
    rows, literal, broken = [], 0, 0
    with opener(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                try:  # the 2014 release wrote Python dict reprs, not JSON
                    rows.append(ast.literal_eval(line))
                    literal += 1
                except (ValueError, SyntaxError):
                    broken += 1
    stats.record(f"literal_lines_{path.name}", literal,
                 f"parsed {literal} lines of {path.name} as Python literals (not JSON)")
    stats.record(f"broken_lines_{path.name}", broken, f"skipped {broken} unreadable lines of {path.name}")
    stats.source_rows[path.name] = len(rows)
    return rows


def _amazon_files(src: Path, stats: ImportStats) -> list[tuple[str, Path, Path]]:
    """(category, reviews file, metadata file) for every category with reviews in ``src``.

    When a category has both the full review file and its 5-core subset, the full file is read
    (the 5-core rows are all in it; reading both would count each review twice).
    """
    found: dict[str, tuple[str, Path, Path]] = {}
    for p in sorted(src.iterdir()):
        name = p.name
        if name.startswith("meta_") or not re.search(r"\.json(\.gz)?$", name):
            continue
        base = re.sub(r"\.json(\.gz)?$", "", name)
        category = re.sub(r"_5$", "", base)
        meta = next((src / f"meta_{category}{ext}" for ext in (".json.gz", ".json")
                     if (src / f"meta_{category}{ext}").exists()), None)
        if meta is None:
            raise FileNotFoundError(f"{src / f'meta_{category}.json.gz'} is missing; reviews in "
                                    f"{p} need the metadata of the same category")
        if category in found:
            full = p if base == category else found[category][1]
            other = found[category][1] if full is p else p
            stats.note(f"{category}: read {full.name}; skipped {other.name}, a subset of it")
            if full is not p:
                continue
        found[category] = (category, p, meta)
    if not found:
        raise FileNotFoundError(f"{src} holds no Amazon review file: expected "
                                f"{src / '<Category>_5.json.gz'} (or <Category>.json.gz) beside "
                                "meta_<Category>.json.gz")
    return list(found.values())


def _as_list(v) -> list:
    if isinstance(v, list):
        return v
    if v is None or (isinstance(v, float) and np.isnan(v)) or v == "":
        return []
    return [v]


def _import_amazon(src: Path, stats: ImportStats) -> _Tables:
    files = _amazon_files(src, stats)
    stats.layout = "amazon-2018: " + ", ".join(c for c, _, _ in files)
    reviews, meta = [], []
    for category, rev_path, meta_path in files:
        reviews += [dict(r, _category=category) for r in _read_json_lines(rev_path, stats)]
        meta += [dict(m, _category=category) for m in _read_json_lines(meta_path, stats)]

    # ----- metadata
    md = pd.DataFrame(meta)
    for col in ("asin", "title", "brand", "description", "feature", "category", "main_cat",
                "price", "also_buy", "also_view"):
        if col not in md:
            md[col] = None
    md = md[md["asin"].notna() & (md["asin"].astype(str).str.strip() != "")]
    md["asin"] = md["asin"].astype(str).str.strip()
    # A product listed twice: keep its fullest row (most non-empty fields), first on ties.
    fill = md.map(lambda v: bool(v) if isinstance(v, (list, dict, str)) else pd.notna(v)).sum(axis=1)
    md = md.assign(_fill=fill, _order=range(len(md)))
    md = md.sort_values(["asin", "_fill", "_order"], ascending=[True, False, True], kind="stable")
    dup = md["asin"].duplicated()
    stats.record("duplicate_metadata", dup.sum(),
                 f"dropped {dup.sum():,} repeated metadata rows (kept each product's fullest row)",
                 keep_zero=True)
    md = md[~dup].sort_values("_order").reset_index(drop=True)

    items = pd.DataFrame({"item_id": md["asin"]})
    items["title"] = _tidy(md["title"].map(lambda v: v if isinstance(v, str) else ""), stats,
                           "titles", markup=True)
    brand = _tidy(md["brand"].map(lambda v: v if isinstance(v, str) else ""), stats, "brands",
                  markup=True)
    # Category paths: the 2018 scrape appended feature bullets and stray closing tags to some
    # paths. A label is a short name; a sentence (punctuation, 7+ words) moves to the text.
    paths = md["category"].map(_as_list)
    clean_paths, leaked, n_leaky, n_html = [], [], 0, 0
    for path in paths:
        keep, moved, had_html = [], [], False
        for label in path:
            label = str(label)
            text = _WS.sub(" ", strip_markup(label)).strip()
            had_html |= bool(_MARKUP.search(label))
            if not text:
                continue
            (moved if _SENTENCE.search(text) else keep).append(text)
        clean_paths.append(_category(keep))
        leaked.append(moved)
        n_leaky += bool(moved)
        n_html += had_html
    stats.record("category_sentences", n_leaky,
                 f"moved marketing sentences out of {n_leaky:,} category paths into the description")
    stats.record("category_html", n_html, f"removed HTML debris from {n_html:,} category paths")
    items["category"] = clean_paths
    main_cat = _tidy(md["main_cat"].map(lambda v: v if isinstance(v, str) else ""), stats,
                     "main categories", markup=True)
    # the scrape stored some main categories as a logo <img>; its alt text is the name
    shouting = main_cat.str.isupper() & (main_cat.str.len() > 3)
    items["main_cat"] = main_cat.where(~shouting, main_cat.str.title())

    def text_of(desc, feat, moved) -> str:
        parts: list[str] = []
        for piece in _as_list(desc) + _as_list(feat) + moved:
            if isinstance(piece, str) and piece.strip() and piece not in parts:
                parts.append(piece)
        return " ".join(parts)

    raw_desc = pd.Series([text_of(d, f, m) for d, f, m in zip(md["description"], md["feature"], leaked)])
    desc = _tidy(raw_desc, stats, "descriptions", markup=True)
    # repeated sentences (a bullet that was also in the description) are dropped after cleaning
    items["description"] = [" ".join(p for p in (f"By {b}." if b else "", _dedupe_sentences(d)) if p)
                            for b, d in zip(brand, desc)]
    items["brand"] = brand
    price = md["price"].map(lambda v: v if isinstance(v, str) else "")
    items["price"] = pd.to_numeric(price.str.replace(r"^\s*\$\s*", "", regex=True)
                                   .str.replace(",", "", regex=False), errors="coerce")
    odd_price = (price.str.strip() != "") & items["price"].isna()
    stats.record("odd_prices", odd_price.sum(),
                 f"left price empty for {odd_price.sum():,} products whose price is a range or text")
    for col in ("also_buy", "also_view"):
        items[col] = md[col].map(lambda v: CATEGORY_SEPARATOR.join(str(x) for x in _as_list(v)))
    stats.note("also_buy / also_view kept as '|'-joined ASIN lists on items (many point outside "
               "this file)")

    # ----- reviews
    rv = pd.DataFrame(reviews)
    for col in ("reviewerID", "asin", "overall", "unixReviewTime", "reviewText", "summary", "verified"):
        if col not in rv:
            rv[col] = None
    inter = pd.DataFrame({
        "user_id": rv["reviewerID"].astype(str).str.strip(),
        "item_id": rv["asin"].astype(str).str.strip(),
        "timestamp": pd.to_numeric(rv["unixReviewTime"], errors="coerce"),
        "rating": pd.to_numeric(rv["overall"], errors="coerce"),
    })
    missing = rv["reviewerID"].isna() | rv["asin"].isna() | inter["timestamp"].isna()
    stats.record("incomplete_reviews", missing.sum(),
                 f"dropped {missing.sum():,} reviews without reviewer, product or time")
    out_of_range = inter["rating"].notna() & ~inter["rating"].between(1, 5)
    stats.record("rating_out_of_range", out_of_range.sum(),
                 f"cleared {out_of_range.sum():,} ratings outside 1-5")
    inter.loc[out_of_range, "rating"] = np.nan
    no_text = rv["reviewText"].isna() | (rv["reviewText"].astype(str).str.strip() == "")
    stats.record("reviews_without_text", no_text.sum(),
                 f"kept {no_text.sum():,} reviews that have no text (rating only)", keep_zero=True)
    inter["review_text"] = _tidy(rv["reviewText"], stats, "review texts", markup=True)
    inter["review_summary"] = _tidy(rv["summary"], stats, "review summaries", markup=True)
    inter["verified"] = rv["verified"].map(lambda v: "" if v is None or pd.isna(v) else str(bool(v)).lower())
    inter["event"] = "rate"
    inter = inter[~missing].copy()
    inter["timestamp"] = inter["timestamp"].astype("int64")
    # The same reviewer reviewing the same product twice on one day (review times are days):
    # the key the gate checks repeats, so keep the first review and count the rest.
    inter = _drop_duplicate_keys(
        inter, ["user_id", "item_id", "timestamp"], stats, "same_day_reviews",
        "second reviews of the same product by the same reviewer on the same day")

    no_meta = sorted(set(inter["item_id"]) - set(items["item_id"]))
    stats.record("reviewed_without_metadata", len(no_meta),
                 f"added {len(no_meta):,} reviewed products missing from the metadata, titled "
                 "'Amazon product <asin>'", keep_zero=True)
    if no_meta:
        extra = pd.DataFrame({"item_id": no_meta, "title": [f"Amazon product {a}" for a in no_meta],
                              "description": "", "category": "", "brand": "", "main_cat": ""})
        items = pd.concat([items, extra], ignore_index=True)
    empty_title = items["title"] == ""
    stats.record("empty_titles", empty_title.sum(),
                 f"titled {empty_title.sum():,} products with no title 'Amazon product <asin>'")
    items.loc[empty_title, "title"] = "Amazon product " + items.loc[empty_title, "item_id"]
    unreviewed = (~items["item_id"].isin(set(inter["item_id"]))).sum()
    stats.note(f"{unreviewed:,} metadata products have no review; kept as cold-start items")
    users = pd.DataFrame({"user_id": sorted(set(inter["user_id"]))})
    stats.note("users have no profile_text: the only side information is reviewerName, a "
               "display name, which is not written")
    manifest = DatasetManifest(
        "ecommerce", "amazon2018-" + "-".join(c.lower().replace("_", "-") for c, _, _ in files),
        notes=("Amazon Review Data 2018 (Ni, Li, McAuley). Reviews = rate events with review text; "
               "items = every product in the metadata (HTML removed), also_buy/also_view as "
               "'|'-joined ASINs."),
        rating_range=(1.0, 5.0),
    )
    cols = ["item_id", "title", "description", "category", "brand", "main_cat", "price",
            "also_buy", "also_view"]
    return _Tables(manifest, users, items[[c for c in cols if c in items]],
                   inter[["user_id", "item_id", "timestamp", "rating", "event", "review_text",
                          "review_summary", "verified"]])


def _dedupe_sentences(text: str) -> str:
    if not text:
        return text
    out: list[str] = []
    seen: set[str] = set()
    for sent in re.split(r"(?<=[.!?])\s+", text):
        key = sent.strip().lower()
        if key and key not in seen:
            seen.add(key)
            out.append(sent.strip())
    return " ".join(out)


# --------------------------------------------------------------------------- yfcc

#: City codes of the IJCAI'15 / CIKM'16 file names and the cities they stand for.
YFCC_CITIES = {
    "melb": "Melbourne", "toro": "Toronto", "osak": "Osaka", "glas": "Glasgow",
    "edin": "Edinburgh", "pert": "Perth", "buda": "Budapest", "delh": "Delhi", "vien": "Vienna",
}
#: Photos outside this window carry camera-clock errors (the README counts them this way).
YFCC_WINDOW = (pd.Timestamp("2000-01-01", tz="UTC"), pd.Timestamp("2018-01-01", tz="UTC"))


def _yfcc_cities(src: Path) -> list[tuple[str, Path, Path]]:
    """(city code, POI list, visits file) for each city under ``src`` (a city or its parent)."""
    pois = sorted(p for p in src.rglob("POI-*.csv") if len(p.relative_to(src).parts) <= 3)
    cities = []
    for poi in pois:
        code = poi.stem.split("-", 1)[1]
        visits = sorted(v for v in src.rglob(f"userVisits-{code}*.csv")
                        if len(v.relative_to(src).parts) <= 3)
        if not visits:
            raise FileNotFoundError(f"{poi.parent / f'userVisits-{code}.csv'} is missing; the POI "
                                    f"list {poi} has no visits file beside it (searched {src})")
        cities.append((code.lower(), poi, visits[0]))
    if not cities:
        raise FileNotFoundError(f"{src} holds no POI list: expected {src / 'POI-<City>.csv'} and "
                                "userVisits-<City>*.csv (a city folder, or a folder of cities)")
    return cities


def _import_yfcc(src: Path, stats: ImportStats) -> _Tables:
    cities = _yfcc_cities(src)
    names = [YFCC_CITIES.get(c, c.title()) for c, _, _ in cities]
    stats.layout = "POI visits: " + ", ".join(names)
    if len(cities) > 1:
        stats.note(f"{src} holds {len(cities)} cities; imported all of them into one dataset "
                   "(user ids are Flickr accounts, shared across cities)")
    all_items, all_visits = [], []
    for (code, poi_path, visit_path), city in zip(cities, names):
        poi = _read_table(poi_path, stats, ";")
        poi = poi.rename(columns={"long": "lon", "poiID": "poi_id", "poiName": "name"})
        raw = poi["name"]
        decoded = raw.map(lambda s: urllib.parse.unquote(s).replace("_", " "))
        changed = (decoded != raw).sum()
        stats.record(f"poi_names_{code}", changed,
                     f"{city}: decoded {changed:,} POI names written as URL slugs "
                     "('Ripley%27s_Aquarium_of_Canada' → \"Ripley's Aquarium of Canada\")")
        lat = pd.to_numeric(poi["lat"], errors="coerce")
        lon = pd.to_numeric(poi["lon"], errors="coerce")
        bad_geo = lat.isna() | lon.isna() | ~lat.between(-90, 90) | ~lon.between(-180, 180)
        stats.record(f"poi_coordinates_{code}", bad_geo.sum(),
                     f"{city}: dropped {bad_geo.sum():,} POIs without valid coordinates", keep_zero=True)
        sub = poi["subTheme"] if "subTheme" in poi else pd.Series("", index=poi.index)
        items = pd.DataFrame({
            "item_id": code + ":" + poi["poi_id"],
            "title": _tidy(decoded, stats, f"{city} POI names"),
            "category": [_category([t, s]) for t, s in zip(poi["theme"], sub)],
            "lat": lat, "lon": lon, "city": city, "theme": poi["theme"], "sub_theme": sub,
        })[~bad_geo.values]
        same_name = items["title"].duplicated(keep=False).sum()
        if same_name:
            stats.note(f"{city}: {same_name} POIs share a name with another POI at other "
                       "coordinates (station entrances, branch offices); kept apart, the "
                       "description carries the coordinates")

        def describe(t, th, st, la, lo, city=city):
            kind = f"{th}: {st}" if st and st != th else th
            return f"{t}, a point of interest in {city} ({kind}) at {la:.4f}, {lo:.4f}."

        items["description"] = [describe(*r) for r in zip(items["title"], items["theme"],
                                                           items["sub_theme"], items["lat"], items["lon"])]
        all_items.append(items)

        vis = _read_table(visit_path, stats, ";")
        vis["item_id"] = code + ":" + vis["poiID"]
        vis["city"] = city
        vis["code"] = code
        theme_of = dict(zip(items["item_id"], items["theme"]))
        clash = vis["poiTheme"].ne(vis["item_id"].map(theme_of)) & vis["item_id"].isin(theme_of)
        stats.record(f"theme_mismatch_{code}", clash.sum(),
                     f"{city}: {clash.sum():,} visits name another theme than the POI list "
                     "(the POI list wins)")
        taken = pd.to_datetime(pd.to_numeric(vis["dateTaken"], errors="coerce"), unit="s",
                               utc=True, errors="coerce")
        wrong = taken.isna() | (taken < YFCC_WINDOW[0]) | (taken >= YFCC_WINDOW[1])
        yrs = taken[wrong].dt.year
        stats.record(f"camera_clock_{code}", wrong.sum(),
                     f"{city}: dropped {wrong.sum():,} photos with camera-clock dates outside "
                     f"{YFCC_WINDOW[0].year}-{YFCC_WINDOW[1].year - 1} "
                     f"(years {int(yrs.min()) if len(yrs) else '-'} to "
                     f"{int(yrs.max()) if len(yrs) else '-'})", keep_zero=True)
        vis["taken"] = taken
        vis = vis[~wrong]
        all_visits.append(vis)

    items = pd.concat(all_items, ignore_index=True)
    vis = pd.concat(all_visits, ignore_index=True)
    vis = _drop_duplicate_keys(vis, ["photoID"], stats, "duplicate_photos", "repeated photo rows")
    vis = vis.rename(columns={"userID": "user_id"})
    unknown = ~vis["item_id"].isin(set(items["item_id"]))
    stats.record("visits_unknown_poi", unknown.sum(),
                 f"dropped {unknown.sum():,} photos at POIs missing from the POI list")
    vis = vis[~unknown]
    # A row is a photo, and bursts repeat the same second. One visit = the photos a user took
    # at one POI within one travel sequence: time = the first photo, weight from photo count.
    vis["seq_id"] = vis["code"] + ":" + vis["seqID"]
    grouped = vis.groupby(["user_id", "item_id", "seq_id"], sort=False)
    inter = grouped.agg(taken=("taken", "min"), photos=("photoID", "size")).reset_index()
    stats.record("photos_to_visits", len(vis) - len(inter),
                 f"merged {len(vis):,} photos into {len(inter):,} visits (one per user, POI and "
                 f"travel sequence), removing {len(vis) - len(inter):,} repeat rows")
    inter["timestamp"] = _unix(inter["taken"])
    inter["event"] = "checkin"
    inter["weight"] = np.log1p(inter["photos"]).round(4)
    inter = inter.sort_values(["user_id", "timestamp", "item_id"], kind="stable").reset_index(drop=True)
    stats.note("weight = ln(1 + photos taken during the visit); the count is in 'photos', the trip "
               "in 'seq_id'")

    # Users: no side information in the source. profile_text says where and when they travelled
    # (a travel site knows a member's destinations: the location cold start), never what they
    # photographed there: the kinds of place a user visited are the very visits a cold user's
    # evaluation hides, so they would hand the model the answer.
    per_user = vis.groupby("user_id").agg(first=("taken", "min"), last=("taken", "max"),
                                          trips=("seq_id", "nunique"))
    cities_of = vis.groupby("user_id")["city"].agg(lambda c: sorted(set(c)))
    users = pd.DataFrame({"user_id": sorted(set(inter["user_id"]))})

    def profile(uid):
        u = per_user.loc[uid]
        years = (f"{u['first'].year}" if u["first"].year == u["last"].year
                 else f"{u['first'].year}-{u['last'].year}")
        trips = f"{u['trips']} trip" + ("s" if u["trips"] != 1 else "")
        return f"Flickr photographer; {trips} to {' and '.join(cities_of[uid])} ({years})."

    users["profile_text"] = users["user_id"].map(profile)
    stats.note("profile_text = cities, trip count and years (derived from visits: the source has "
               "no user side information; no kinds of place, which would leak held-out visits)")
    unvisited = (~items["item_id"].isin(set(inter["item_id"]))).sum()
    stats.note(f"{unvisited} POIs have no visit; kept as cold-start items")
    if any(src.rglob("costProf*.csv")):
        stats.note("costProf distance tables not imported: distances follow from lat/lon")
    manifest = DatasetManifest(
        "travel", "yfcc-poi-" + "-".join(c for c, _, _ in cities),
        notes=("Flickr YFCC100M POI visits (Lim et al. IJCAI'15; Wang et al. CIKM'16). Item ids "
               "are '<city code>:<poiID>'. A visit = the photos of one user at one POI in one "
               "travel sequence; photos with camera-clock dates outside 2000-2017 dropped."),
    )
    return _Tables(manifest, users,
                   items[["item_id", "title", "description", "category", "lat", "lon", "city",
                          "theme", "sub_theme"]],
                   inter[["user_id", "item_id", "timestamp", "event", "weight", "photos", "seq_id"]])


_IMPORTERS: dict[str, Callable[[Path, ImportStats], _Tables]] = {
    "movielens": _import_movielens,
    "lastfm": _import_lastfm,
    "amazon": _import_amazon,
    "yfcc": _import_yfcc,
}
