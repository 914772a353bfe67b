"""core.validation: value checks on the first eager call, and what each check rejects."""

import keras
import numpy as np
import pytest

from dl_techniques.losses.core import validation
from dl_techniques.losses.core.testing.numeric import compiled

BACKEND = keras.backend.backend()


class _BinaryTargetLoss(keras.losses.Loss):
    """Sum of predictions, rejecting targets other than 0 and 1."""

    def __init__(self):
        super().__init__(name="binary_target_loss")

    @validation.checks_values
    def call(self, y_true, y_pred):
        validation.check_binary("_BinaryTargetLoss", "y_true", y_true)
        return keras.ops.sum(y_pred * y_true, axis=-1)


class _OuterLoss(keras.losses.Loss):
    """Holds a _BinaryTargetLoss, to test that the outermost call decides."""

    def __init__(self):
        super().__init__(name="outer_loss")
        self.inner = _BinaryTargetLoss()

    @validation.checks_values
    def call(self, y_true, y_pred):
        return self.inner.call(y_true, y_pred)


GOOD = np.array([[0.0, 1.0], [1.0, 0.0]], dtype="float32")
BAD = np.array([[0.0, 2.0], [1.0, 0.0]], dtype="float32")
PRED = np.ones((2, 2), dtype="float32")


def test_first_eager_call_checks_values(monkeypatch):
    monkeypatch.delenv(validation.ENVIRONMENT_VARIABLE, raising=False)
    with pytest.raises(ValueError, match=r"_BinaryTargetLoss: `y_true` must hold targets"):
        _BinaryTargetLoss()(BAD, PRED)


def test_a_failed_check_leaves_the_next_call_checked(monkeypatch):
    monkeypatch.delenv(validation.ENVIRONMENT_VARIABLE, raising=False)
    loss = _BinaryTargetLoss()
    for _ in range(2):
        with pytest.raises(ValueError):
            loss(BAD, PRED)


def test_later_eager_calls_do_not_read_values(monkeypatch):
    monkeypatch.delenv(validation.ENVIRONMENT_VARIABLE, raising=False)
    loss = _BinaryTargetLoss()
    assert float(keras.ops.convert_to_numpy(loss(GOOD, PRED))) == pytest.approx(1.0)
    # The instance is checked now: a bad target is not read again.
    assert float(keras.ops.convert_to_numpy(loss(BAD, PRED))) == pytest.approx(1.5)


def test_environment_variable_checks_every_eager_call(monkeypatch):
    monkeypatch.setenv(validation.ENVIRONMENT_VARIABLE, "always")
    loss = _BinaryTargetLoss()
    loss(GOOD, PRED)
    with pytest.raises(ValueError, match="1 of 4 entries"):
        loss(BAD, PRED)


def test_traced_call_reads_nothing_and_does_not_mark_the_instance(monkeypatch):
    monkeypatch.delenv(validation.ENVIRONMENT_VARIABLE, raising=False)
    loss = _BinaryTargetLoss()
    traced = compiled(lambda t, p: loss(t, p), jit_compile=False, trace_torch=True)
    value = traced(keras.ops.convert_to_tensor(BAD), keras.ops.convert_to_tensor(PRED))
    assert float(keras.ops.convert_to_numpy(value)) == pytest.approx(1.5)
    with pytest.raises(ValueError):
        loss(BAD, PRED)


def test_a_traced_call_on_captured_constant_targets_reads_nothing(monkeypatch):
    monkeypatch.delenv(validation.ENVIRONMENT_VARIABLE, raising=False)
    loss = _BinaryTargetLoss()
    targets = keras.ops.convert_to_tensor(BAD)
    traced = compiled(lambda p: loss(targets, p), jit_compile=False, trace_torch=True)

    value = traced(keras.ops.convert_to_tensor(PRED))

    assert float(keras.ops.convert_to_numpy(value)) == pytest.approx(1.5)


def test_outermost_decorated_call_decides(monkeypatch):
    monkeypatch.delenv(validation.ENVIRONMENT_VARIABLE, raising=False)
    outer = _OuterLoss()
    outer(GOOD, PRED)
    outer(BAD, PRED)
    with pytest.raises(ValueError):
        _OuterLoss()(BAD, PRED)


def test_plain_function_checks_every_eager_call():
    for _ in range(2):
        with pytest.raises(ValueError, match="must lie in"):
            validation.check_in_range("f", "x", np.array([0.5, 1.5]), 0.0, 1.0)


def test_probabilities_error_names_from_logits():
    with pytest.raises(ValueError, match=r"from_logits=True.*") as error:
        validation.check_probabilities("SomeLoss", "y_pred", np.array([[-0.5, 0.2]]))
    assert "SomeLoss" in str(error.value) and "(1, 2)" in str(error.value)
    assert "-0.5" in str(error.value)


def test_nan_is_not_a_range_error():
    validation.check_probabilities("L", "y_pred", np.array([np.nan, 0.5], dtype="float32"))
    validation.check_binary("L", "y_true", np.array([np.nan, 1.0], dtype="float32"))


@pytest.mark.parametrize(
    "values",
    [np.array([0.0, 1.0, 2.0]), np.array([-0.5, 0.5]), np.array([0.5, 1.0])],
    ids=["two", "shifted", "fraction"],
)
def test_binary_rejects_other_values(values):
    with pytest.raises(ValueError, match="equal to 0 or 1"):
        validation.check_binary("L", "mask", values.astype("float32"), what="mask values")


def test_binary_accepts_bool_and_hard_labels():
    validation.check_binary("L", "mask", np.array([True, False]))
    validation.check_binary("L", "y_true", np.array([0, 1, 1], dtype="int32"))


def test_integers_reject_fractions_and_out_of_range_ids():
    with pytest.raises(ValueError, match=r"integers in \[0, 5\)"):
        validation.check_integers("L", "labels", np.array([1.5, 2.0]), low=0, high=5)
    with pytest.raises(ValueError, match="1 of 3"):
        validation.check_integers("L", "labels", np.array([0, 5, 4], dtype="int32"), 0, 5)
    validation.check_integers(
        "L", "labels", np.array([-100.0, 4.0, 0.0]), low=0, high=5, ignore=-100
    )


def test_finite_rejects_nan_and_infinity():
    with pytest.raises(ValueError, match="2 of 3 entries"):
        validation.check_finite("L", "teacher_output", np.array([np.nan, 1.0, np.inf]))


def test_message_lists_the_first_offending_entries():
    labels = np.array([[-100.0, 2.5], [5.0, 1.0]], dtype="float32")
    with pytest.raises(ValueError, match=r"First: 2\.5 at index \(0, 1\)\.$"):
        validation.check_integers("L", "labels", labels, low=0, high=6, ignore=-100)
    with pytest.raises(ValueError, match=r"First: 2 at index \(0,\), 0\.5 at index \(2,\)\.$"):
        validation.check_binary("L", "mask", np.array([2.0, 1.0, 0.5], dtype="float32"))
