"""Review sentiment (VADER) as a signed interaction weight."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from quality.errors import DataWarning
from text.sentiment import SentimentConfig, review_sentiment, review_weights

REVIEWS = pd.DataFrame(
    {
        "user_id": ["u1", "u2", "u3", "u4", "u5", "u6"],
        "item_id": ["i1"] * 6,
        "review_text": [
            "Absolutely love it, works perfectly and looks great!",
            "It's fine.",
            "terrible, broke in a day",
            "",
            None,
            "C'est un produit correct, livré à temps.",
        ],
    },
    index=[10, 11, 12, 13, 14, 15],  # not 0..n-1: results must follow the frame's own index
)


def test_positive_beats_neutral_beats_negative_and_negative_counts_against():
    w = review_weights(REVIEWS)
    assert w.index.equals(REVIEWS.index) and w.name == "review_weight"
    assert w[10] > w[11] > w[12]
    assert w[10] > 1.5 and w[12] < 0  # the one-star "broke in a day" pulls the item down


def test_no_review_is_unknown_sentiment_and_a_neutral_weight():
    s = review_sentiment(REVIEWS)
    assert np.isnan(s[13]) and np.isnan(s[14]) and s.between(-1, 1).sum() == 4
    w = review_weights(REVIEWS)
    assert w[13] == w[14] == 1.0


def test_non_english_text_is_neutral_not_an_error():
    assert review_weights(REVIEWS)[15] == pytest.approx(1.0, abs=0.2)


def test_gains_shape_the_weight():
    w = review_weights(REVIEWS, SentimentConfig(positive_gain=0.0, negative_gain=0.0))
    assert (w == 1.0).all()


def test_html_and_huge_reviews():
    frame = pd.DataFrame({
        "user_id": ["a", "b"], "item_id": ["x", "y"],
        "review_text": ["<p>I <b>love</b> it</p>", "bad " * 250_000],
    })
    with pytest.warns(DataWarning, match="'b->y'"):
        w = review_weights(frame)
    assert w.iloc[0] > 1.0 and w.iloc[1] < 0


def test_a_frame_without_reviews_is_refused():
    with pytest.raises(ValueError, match="review_text"):
        review_weights(pd.DataFrame({"user_id": ["u"], "item_id": ["i"]}))
