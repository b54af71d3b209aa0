"""Tests of the synthetic dataset generator and the bundled samples it writes.

The realism checks compare against what chance would give: with ``k`` equally likely
communities a random interaction lands in the user's own community about ``1/k`` of the time,
so a generator whose communities carry signal must sit far above that.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from quality.contract import DOMAINS
from quality.synth import (
    BUNDLED_SAMPLES,
    CITIES,
    CONFIG_FILE,
    SynthConfig,
    generate_dataset,
    sample_path,
    synthesize,
    write_bundled_samples,
)

ROOT = Path(__file__).resolve().parents[2]


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def _small(domain: str, **kw) -> SynthConfig:
    base = dict(domain=domain, n_users=120, n_items=150, n_interactions=1500, seed=5)
    return SynthConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def bundled() -> dict:
    """The in-memory twins of the bundled samples, with their ground truth."""
    return {d: synthesize(cfg) for d, cfg in BUNDLED_SAMPLES.items()}


# --------------------------------------------------------------------------- determinism


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("domain", DOMAINS)
def test_same_seed_writes_same_bytes(tmp_path, domain, fmt):
    cfg = _small(domain, fmt=fmt)
    a = _digests(generate_dataset(cfg, tmp_path / "a"))
    b = _digests(generate_dataset(cfg, tmp_path / "b"))
    assert a == b
    assert {"dataset.yaml", f"users.{fmt}", f"items.{fmt}", f"interactions.{fmt}", CONFIG_FILE} <= set(a)


@pytest.mark.parametrize("domain", DOMAINS)
def test_different_seed_differs(tmp_path, domain):
    a = _digests(generate_dataset(_small(domain, seed=1), tmp_path / "a"))
    b = _digests(generate_dataset(_small(domain, seed=2), tmp_path / "b"))
    for stem in ("users.csv", "items.csv", "interactions.csv"):
        assert a[stem] != b[stem], stem


def test_config_saved_next_to_data_round_trips(tmp_path):
    cfg = _small("travel", fmt="parquet", cold_user_share=0.2)
    folder = generate_dataset(cfg, tmp_path / "t")
    assert SynthConfig.model_validate_json((folder / CONFIG_FILE).read_text()) == cfg


def test_reused_folder_drops_previous_friend_graph(tmp_path):
    folder = generate_dataset(_small("social"), tmp_path / "d")
    assert (folder / "user_links.csv").exists()
    generate_dataset(_small("ecommerce"), folder)
    assert not (folder / "user_links.csv").exists()


# --------------------------------------------------------------------------- the gate


@pytest.mark.parametrize("domain", DOMAINS)
def test_bundled_sample_passes_gate(domain):
    from quality.gate import open_dataset

    data = open_dataset(sample_path(domain))
    cfg = BUNDLED_SAMPLES[domain]
    assert data.domain == domain
    assert len(data.users) == cfg.n_users and len(data.items) == cfg.n_items
    # E-commerce funnels and social likes make the row count approximate; 3% is far above
    # the spread seen (< 1.5%) and far below any real drift.
    assert abs(len(data.interactions) - cfg.n_interactions) <= 0.03 * cfg.n_interactions
    assert data.rating_range == ((1.0, 5.0) if domain in ("ecommerce", "content") else None)
    assert (len(data.user_links) > 0) == (domain == "social")


def test_parquet_dataset_passes_gate(tmp_path):
    from quality.gate import open_dataset

    data = open_dataset(generate_dataset(_small("ecommerce", fmt="parquet"), tmp_path / "e"))
    assert set(data.interactions["event"]) <= {"view", "click", "cart", "purchase"}
    reviewed = data.interactions[data.interactions["review_text"] != ""]
    assert len(reviewed) > 0 and reviewed["rating"].between(1, 5).all()


def test_bundled_samples_are_current(tmp_path):
    fresh = write_bundled_samples(tmp_path)
    for domain, folder in fresh.items():
        assert _digests(folder) == _digests(sample_path(domain)), (
            f"quality/samples/{domain} is stale: run benchmarks/make_samples.py and commit")


def test_bundle_is_small():
    total = sum(p.stat().st_size for d in DOMAINS for p in sample_path(d).iterdir())
    assert total < 2_000_000


def test_sample_path_names_the_domain():
    assert (sample_path("travel") / "dataset.yaml").exists()
    with pytest.raises(ValueError, match="must be one of"):
        sample_path("music")


# --------------------------------------------------------------------------- communities


def _user_item_index(s):
    uidx = pd.Series(np.arange(len(s.users)), index=s.users["user_id"])
    iidx = pd.Series(np.arange(len(s.items)), index=s.items["item_id"])
    u = uidx.loc[s.interactions["user_id"].to_numpy()].to_numpy()
    i = iidx.loc[s.interactions["item_id"].to_numpy()].to_numpy()
    return u, i


@pytest.mark.parametrize("domain", DOMAINS)
def test_interactions_favour_the_users_community_categories(bundled, domain):
    s = bundled[domain]
    u, i = _user_item_index(s)
    item_cats = s.items["category"].str.split("|").map(set).to_numpy()
    prefs = s.community_categories
    inside = np.array([bool(item_cats[it] & prefs[s.user_community[us]]) for us, it in zip(u, i)])
    # chance: a random item of the catalogue falls in a given community's categories
    chance = np.mean([np.mean([bool(c & p) for c in item_cats]) for p in prefs])
    assert inside.mean() > 0.6 and inside.mean() > 3 * chance, (inside.mean(), chance)


@pytest.mark.parametrize("domain", DOMAINS)
def test_most_users_mostly_stay_in_their_community(bundled, domain):
    s = bundled[domain]
    u, i = _user_item_index(s)
    hist = pd.DataFrame({"u": u, "c": s.item_community[i]})
    top = hist.groupby("u")["c"].agg(lambda c: c.value_counts().index[0])
    agree = (top.to_numpy() == s.user_community[top.index.to_numpy()]).mean()
    assert agree > 0.8


def test_popularity_has_a_long_tail(bundled):
    counts = bundled["ecommerce"].interactions["item_id"].value_counts()
    top_decile = counts.iloc[: max(1, len(counts) // 10)].sum() / counts.sum()
    assert top_decile > 0.3  # uniform would give 0.1


def _bag(text: str) -> Counter:
    return Counter(w for w in re.findall(r"[a-z]+", text.lower()) if len(w) > 3)


def _cosine(a: Counter, b: Counter) -> float:
    dot = sum(v * b[k] for k, v in a.items())
    return dot / (math.sqrt(sum(v * v for v in a.values())) * math.sqrt(sum(v * v for v in b.values())) or 1)


@pytest.mark.parametrize("domain", DOMAINS)
def test_cold_profile_text_points_at_the_community(bundled, domain):
    """Text alone must place a cold user: their words match their community's item text best."""
    s = bundled[domain]
    text = (s.items["title"] + " " + s.items["description"].fillna("") + " "
            + s.items["category"].str.replace("|", " "))
    docs = [_bag(" ".join(text[s.item_community == c])) for c in range(len(s.community_labels))]
    cold = s.users["user_id"].isin(s.cold_user_ids).to_numpy()
    hits = [int(np.argmax([_cosine(_bag(t), d) for d in docs])) == c
            for t, c in zip(s.users["profile_text"][cold], s.user_community[cold])]
    assert np.mean(hits) > 0.7, np.mean(hits)


# --------------------------------------------------------------------------- cold starts


@pytest.mark.parametrize("domain", DOMAINS)
def test_cold_users_have_profile_text_and_no_interactions(bundled, domain):
    s = bundled[domain]
    cfg = s.config
    assert len(s.cold_user_ids) == cfg.n_cold_users > 0
    cold = s.users[s.users["user_id"].isin(s.cold_user_ids)]
    assert cold["profile_text"].str.len().gt(10).all()
    active = set(s.interactions["user_id"])
    assert not active & s.cold_user_ids
    # every other user is warm, and some warm users wrote a profile too
    assert active == set(s.users["user_id"]) - s.cold_user_ids
    warm = s.users[~s.users["user_id"].isin(s.cold_user_ids)]
    assert 0.3 < warm["profile_text"].notna().mean() < 0.7


@pytest.mark.parametrize("domain", DOMAINS)
def test_cold_items_have_no_interactions(bundled, domain):
    s = bundled[domain]
    assert len(s.cold_item_ids) == s.config.n_cold_items > 0
    assert not set(s.interactions["item_id"]) & s.cold_item_ids


# --------------------------------------------------------------------------- domain specifics


def test_social_links_are_homophilous_without_self_links(bundled):
    s = bundled["social"]
    links = s.user_links
    assert (links["src_user_id"] != links["dst_user_id"]).all()
    assert not links.duplicated(["src_user_id", "dst_user_id"]).any()
    assert set(links["kind"]) == {"friend", "follow"}
    comm = pd.Series(s.user_community, index=s.users["user_id"])
    same = (comm.loc[links["src_user_id"].to_numpy()].to_numpy()
            == comm.loc[links["dst_user_id"].to_numpy()].to_numpy()).mean()
    sizes = np.bincount(s.user_community) / len(s.user_community)
    chance = float((sizes ** 2).sum())
    assert same > 0.7 and same > 2.5 * chance, (same, chance)
    # cold users keep their friends: that is how social cold start finds them
    assert links["src_user_id"].isin(s.cold_user_ids).any()


def test_travel_places_cluster_around_their_city(bundled):
    s = bundled["travel"]
    centre = {c.name: (c.lat, c.lon) for c in CITIES}
    items = s.items
    lat0 = items["city"].map(lambda c: centre[c][0])
    lon0 = items["city"].map(lambda c: centre[c][1])
    # 0.15 degrees is ~15 km: further than that a place would be in another town.
    assert ((items["lat"] - lat0).abs() < 0.15).all() and ((items["lon"] - lon0).abs() < 0.15).all()
    described = items[items["description"].notna()]
    assert described.apply(lambda r: r["city"] in r["description"], axis=1).all()
    users = s.users
    assert users[["lat", "lon"]].notna().all().all()
    ulat0 = users["home_city"].map(lambda c: centre[c][0])
    assert ((users["lat"] - ulat0).abs() < 0.4).all()


def test_travel_check_ins_prefer_the_home_city(bundled):
    s = bundled["travel"]
    u, i = _user_item_index(s)
    local = (s.home_city[u] == s.item_city[i]).mean()
    assert local > 0.5  # six cities: chance is about 1/6


@pytest.mark.parametrize("domain,events", [
    ("ecommerce", {"view", "click", "cart", "purchase"}),
    ("content", {"rate"}),
    ("social", {"listen", "like"}),
    ("travel", {"checkin"}),
])
def test_events_per_domain(bundled, domain, events):
    inter = bundled[domain].interactions
    assert set(inter["event"].astype(str)) == events


def test_ecommerce_funnel_weights_grow_towards_purchase(bundled):
    inter = bundled["ecommerce"].interactions
    w = inter.groupby(inter["event"].astype(str))["weight"].first()
    assert w["view"] < w["click"] < w["cart"] < w["purchase"]
    counts = inter["event"].value_counts()
    assert counts["view"] > counts["click"] > counts["cart"] > counts["purchase"] > 0


def test_ecommerce_titles_name_the_brand(bundled):
    items = bundled["ecommerce"].items
    assert items.apply(lambda r: r["brand"] in r["title"], axis=1).all()


@pytest.mark.parametrize("domain", ["ecommerce", "content"])
def test_review_ratings_agree_with_their_tone(bundled, domain):
    """A real sentiment model (VADER) reads the reviews; its sign must match the stars."""
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    inter = bundled[domain].interactions
    reviews = inter[inter["review_text"].notna() & (inter["review_text"] != "")]
    assert len(reviews) >= 15
    vader = SentimentIntensityAnalyzer()
    tone = reviews["review_text"].map(lambda t: vader.polarity_scores(t)["compound"])
    good, bad = reviews["rating"] >= 4, reviews["rating"] <= 2
    assert good.any() and bad.any(), "reviews must include both positive and negative ones"
    assert (tone[good] > 0).mean() > 0.9 and (tone[bad] < 0).mean() > 0.8


def test_content_rates_each_pair_once(bundled):
    inter = bundled["content"].interactions
    assert not inter.duplicated(["user_id", "item_id"]).any()
    assert inter["rating"].between(1, 5).all()


# --------------------------------------------------------------------------- config


@pytest.mark.parametrize("bad,match", [
    (dict(start="2024-01-01", end="2023-01-01"), "must be after start"),
    (dict(n_interactions=20), "below the number of warm users"),
    (dict(domain="content", n_interactions=100_000), "at most half"),
    (dict(n_communities=9), "less than or equal to 8"),
    (dict(cold_user_share=1.0), "less than 1"),
    (dict(end="2999-01-01"), "in the future"),
])
def test_config_rejects_inconsistent_settings(bad, match):
    with pytest.raises(ValidationError, match=match):
        _small(bad.pop("domain", "ecommerce"), **bad)


def test_config_forbids_unknown_fields():
    with pytest.raises(ValidationError, match="extra"):
        SynthConfig(domain="travel", n_user=10)


def test_cli_generate_writes_a_gated_dataset(tmp_path):
    from typer.testing import CliRunner

    from flows.cli import app

    res = CliRunner().invoke(app, ["generate", "travel", str(tmp_path / "t"), "--users", "60",
                                   "--items", "80", "--interactions", "500", "--seed", "9"])
    assert res.exit_code == 0, res.output
    # the gate itself is exercised on the bundled samples; here the CLI's options must arrive
    assert len(pd.read_csv(tmp_path / "t" / "users.csv")) == 60
    assert len(pd.read_csv(tmp_path / "t" / "interactions.csv")) == 500
    assert SynthConfig.model_validate_json((tmp_path / "t" / CONFIG_FILE).read_text()).seed == 9


# --------------------------------------------------------------------------- scale


@pytest.mark.slow
def test_million_interactions_in_bounded_time_and_memory(tmp_path):
    """1M rows: under 60 s and 3 GB peak RSS, measured in a fresh process.

    The benchmark measures 340-430 MB; under a full CI run the same child has reached 1.8 GB
    (allocator arenas on a loaded machine), so the bound only catches a real blow-up.
    """
    cfg = SynthConfig(domain="ecommerce", n_users=50_000, n_items=20_000, n_interactions=1_000_000, seed=1)
    child = (
        "import json, resource, sys, time\n"
        "from pathlib import Path\n"
        "from quality.synth import SynthConfig, generate_dataset\n"
        "cfg = SynthConfig.model_validate_json(sys.argv[1])\n"
        "t = time.perf_counter(); generate_dataset(cfg, Path(sys.argv[2]))\n"
        "print(json.dumps({'s': time.perf_counter() - t,\n"
        "                  'mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))\n"
    )
    start = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", child, cfg.model_dump_json(), str(tmp_path / "big")],
                         cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    stats = json.loads(res.stdout.strip().splitlines()[-1])
    assert stats["s"] < 60 and time.perf_counter() - start < 90
    assert stats["mb"] < 3000
    with (tmp_path / "big" / "interactions.csv").open() as fh:
        rows = sum(1 for _ in fh) - 1
    assert abs(rows - 1_000_000) < 20_000
