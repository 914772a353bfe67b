"""The language half of the generative demo: a character-level model trained with NanoVLMLoss.

Sentences come from a small stochastic grammar drawn with a seeded
generator; each is one padded row whose padding is marked with the ignore
id -100, so the loss averages over real characters only. A causal
convolutional network predicts every next character; the held-out
perplexity ``exp(token-mean cross-entropy)`` is reported before and after a
time-boxed training run, next to the uniform-guess perplexity, which equals
the vocabulary size, and the perplexity of the grammar itself, the best any
model can reach.
"""

import math
import time

import keras
import numpy as np

from dl_techniques.losses.core.demo import DemoRow

_IGNORE = -100
_BEGIN, _PAD = "^", "_"
_SUBJECTS = ("the cat", "a dog", "my friend", "the old man", "a small bird", "she", "we")
_VERBS = ("sees", "likes", "chases", "finds", "hears", "paints")
_OBJECTS = ("the ball", "a tree", "the red car", "some fish", "the moon", "a song")
_ENDINGS = (".", " today.", " again.", " at night.")
_COMPOUND_RATE = 0.25


def run_language_demo(output_dir, progress, train_seconds=18.0, train_sentences=4000):
    """Trains the character model for about ``train_seconds`` and returns its rows.

    Args:
        output_dir: Folder for plots (this half writes none).
        progress: The runner's ``Progress``.
        train_seconds: Wall-clock budget of the training run.
        train_sentences: Number of generated training sentences; a quarter
            as many are held out.
    """
    from dl_techniques.losses.generative.nano_vlm_loss import NanoVLMLoss

    del output_dir
    rng = np.random.default_rng(7)
    alphabet = character_alphabet()
    train_tokens, train_labels = encode(sample_sentences(rng, train_sentences)[0], alphabet)
    test_sentences, test_log_probs = sample_sentences(rng, train_sentences // 4)
    test_tokens, test_labels = encode(test_sentences, alphabet)
    vocab = len(alphabet)
    keras.utils.set_random_seed(3)
    model = causal_char_model(vocab)
    model.compile(optimizer=keras.optimizers.Adam(1e-2), loss=NanoVLMLoss())

    before = held_out_perplexity(model, test_tokens, test_labels)
    progress.step(f"language: held-out perplexity {before:.2f} before training (vocab {vocab})")
    deadline = _Deadline(train_seconds)
    epochs = 0
    while not deadline.passed() and epochs < 200:
        model.fit(
            train_tokens,
            train_labels,
            batch_size=32,
            epochs=1,
            shuffle=True,
            verbose=0,
            callbacks=[deadline],
        )
        epochs += 1
    after = held_out_perplexity(model, test_tokens, test_labels)
    progress.step(
        f"language: held-out perplexity {after:.2f} after {deadline.steps} steps ({epochs} epochs)"
    )

    name = "generative: NanoVLMLoss character LM"
    return [
        DemoRow(name, "held-out perplexity before training", before, f"uniform {vocab}"),
        DemoRow(name, "held-out perplexity after training", after, "lower is better"),
        DemoRow(name, "uniform-guess perplexity (vocab size)", float(vocab), "chance"),
        DemoRow(
            name,
            "held-out perplexity of the generating grammar",
            grammar_perplexity(test_sentences, test_log_probs),
            "best reachable",
        ),
    ]


def character_alphabet():
    """Every character the grammar can emit, plus the begin and padding marks."""
    text = "".join(_SUBJECTS + _VERBS + _OBJECTS + _ENDINGS) + " ,"
    return [_PAD, _BEGIN, *sorted(set(text))]


def sample_sentences(rng, count):
    """Draws ``count`` sentences and the grammar's log-probability of each.

    A quarter of the sentences are two clauses joined by ", and". Every
    sentence ends in its only ".", so no sentence is a prefix of another and
    the chain rule over characters gives exactly the sentence probability.
    """
    parts = (_SUBJECTS, _VERBS, _OBJECTS)
    clause_log_prob = -sum(math.log(len(part)) for part in parts)

    def clause():
        return " ".join(part[rng.integers(len(part))] for part in parts)

    sentences, log_probs = [], []
    for _ in range(count):
        text, log_prob = clause(), clause_log_prob
        if rng.random() < _COMPOUND_RATE:
            text += ", and " + clause()
            log_prob += math.log(_COMPOUND_RATE) + clause_log_prob
        else:
            log_prob += math.log(1.0 - _COMPOUND_RATE)
        sentences.append(text + _ENDINGS[rng.integers(len(_ENDINGS))])
        log_probs.append(log_prob - math.log(len(_ENDINGS)))
    return sentences, np.array(log_probs)


def grammar_perplexity(sentences, log_probs):
    """The true distribution's perplexity on these sentences: the best a model can reach.

    The model predicts every character after the begin mark, so the
    per-character cross-entropy of the grammar is the summed negative
    log-probability over the number of characters.
    """
    return float(math.exp(-np.sum(log_probs) / sum(len(sentence) for sentence in sentences)))


def encode(sentences, alphabet):
    """Returns ``(tokens, labels)`` of shape ``(N, L)``, labels -100 on padding.

    Each row starts with the begin mark, so the first character is predicted
    too; with ``shift=True`` the logits at position t score label t + 1.
    """
    index = {character: i for i, character in enumerate(alphabet)}
    length = 1 + max(len(sentence) for sentence in sentences)
    tokens = np.full((len(sentences), length), index[_PAD], dtype="int32")
    labels = np.full((len(sentences), length), _IGNORE, dtype="int32")
    for row, sentence in enumerate(sentences):
        ids = [index[_BEGIN]] + [index[character] for character in sentence]
        tokens[row, : len(ids)] = ids
        labels[row, : len(ids)] = ids
    return tokens, labels


def causal_char_model(vocab):
    """Embedding and dilated causal convolutions: position t sees characters <= t."""
    inputs = keras.Input((None,), dtype="int32")
    hidden = keras.layers.Embedding(vocab, 32)(inputs)
    for dilation in (1, 2, 4, 8):
        hidden = keras.layers.Conv1D(
            64, 3, padding="causal", dilation_rate=dilation, activation="relu"
        )(hidden)
    return keras.Model(inputs, keras.layers.Dense(vocab)(hidden))


def held_out_perplexity(model, tokens, labels):
    """``exp`` of the held-out token-mean cross-entropy (the compiled loss)."""
    cross_entropy = model.evaluate(tokens, labels, batch_size=len(tokens), verbose=0)
    return float(math.exp(cross_entropy))


class _Deadline(keras.callbacks.Callback):
    """Stops ``fit`` once the wall-clock budget is spent."""

    def __init__(self, seconds):
        super().__init__()
        self._ends = time.perf_counter() + seconds
        self.steps = 0

    def passed(self):
        return time.perf_counter() >= self._ends

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.passed():
            self.model.stop_training = True
