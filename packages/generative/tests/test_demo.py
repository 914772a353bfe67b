"""The generative entry of `dl-losses demo`, in a fast configuration."""

import functools
import math

import numpy as np
import pytest

from dl_techniques.losses.core.demo import Progress
from dl_techniques.losses.generative import demo
from dl_techniques.losses.generative.demo import language, wgan


def test_encoding_marks_padding_with_the_ignore_id_and_starts_with_the_begin_mark():
    alphabet = ["_", "^", "a", "b", "."]
    tokens, labels = language.encode(["ab.", "a."], alphabet)

    np.testing.assert_array_equal(tokens, [[1, 2, 3, 4], [1, 2, 4, 0]])
    np.testing.assert_array_equal(labels, [[1, 2, 3, 4], [1, 2, 4, -100]])


def test_grammar_perplexity_spreads_sentence_log_probability_over_characters():
    # Two sentences of 4 and 6 characters with probabilities 1/8 and 1/32:
    # cross-entropy (3 ln 2 + 5 ln 2) / 10 per character.
    value = language.grammar_perplexity(["abc.", "abcde."], np.log([1 / 8, 1 / 32]))
    assert value == pytest.approx(math.exp(8 * math.log(2) / 10))


def test_sentence_log_probabilities_follow_the_grammar_choices():
    sentences, log_probs = language.sample_sentences(np.random.default_rng(0), 200)
    single = math.log(0.75 / (7 * 6 * 6 * 4))
    double = math.log(0.25 / (7 * 6 * 6 * 7 * 6 * 6 * 4))
    expected = [double if ", and " in sentence else single for sentence in sentences]
    np.testing.assert_allclose(log_probs, expected, rtol=1e-12)
    assert all(sentence.count(".") == 1 and sentence.endswith(".") for sentence in sentences)


def test_language_demo_lowers_held_out_perplexity_from_the_uniform_guess(tmp_path):
    rows = language.run_language_demo(
        tmp_path, Progress(total=1), train_seconds=3.0, train_sentences=200
    )

    values = {row.metric: row.value for row in rows}
    vocab = values["uniform-guess perplexity (vocab size)"]
    before = values["held-out perplexity before training"]
    after = values["held-out perplexity after training"]
    assert vocab == len(language.character_alphabet())
    assert 0.8 * vocab < before < 1.25 * vocab
    assert values["held-out perplexity of the generating grammar"] < after < before


def test_run_demo_reports_every_experiment_and_writes_the_scatter_plot(tmp_path, monkeypatch):
    for constant, value in (
        ("_TRAIN_SAMPLES", 1024),
        ("_EPOCHS", 1),
        ("_TIME_LIMIT_S", 2.0),
        ("_EVALUATION_SAMPLES", 512),
    ):
        monkeypatch.setattr(wgan, constant, value)
    fast_language = functools.partial(
        language.run_language_demo, train_seconds=1.0, train_sentences=100
    )
    monkeypatch.setattr(language, "run_language_demo", fast_language)

    rows = demo.run_demo(tmp_path, Progress(total=1))

    metrics = {row.metric: row.value for row in rows}
    assert 0.0 <= metrics["fraction of the 8 modes covered"] <= 1.0
    assert metrics["sliced Wasserstein distance to the target"] >= 0.0
    assert 0.0 <= metrics["fraction of the 8 modes covered (hinge + R1)"] <= 1.0
    assert metrics["sliced Wasserstein distance to the target (hinge + R1)"] >= 0.0
    assert metrics["held-out perplexity after training"] >= 1.0
    assert [row.demo.split(": ")[0] for row in rows] == ["generative"] * 8
    assert (tmp_path / "generative_wgan_gp_8_gaussians.png").stat().st_size > 0
