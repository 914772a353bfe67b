"""The conformance kit passes losses that keep the contract and catches each breach.

The well-behaved losses form a toy third-party plugin, ``acme-toy-losses``,
whose source is written to disk with a ``dist-info`` declaring its entry
points, so that the fresh-process reload can find them the way it finds any
installed plugin. Each broken loss is defined here and breaks one rule.
"""

import ast
import pathlib
import types

import keras
import numpy as np
import pytest

from dl_techniques.losses.core import testing
from dl_techniques.losses.core.serialization import register_serializable
from dl_techniques.losses.core.testing import LossCase, LossConformanceTests

PLUGIN_MODULE = "acme_toy_losses"
PLUGIN_DISTRIBUTION = "acme-toy-losses"
PLUGIN_NAMES = (
    "AcmeScaledAbsoluteLoss",
    "AcmeWeightedBatchLoss",
    "AcmeWorstSampleLoss",
    "AcmeMaskedAbsoluteLoss",
    "AcmeMidpointAbsoluteLoss",
)
PLUGIN_SOURCE = '''
"""A toy plugin whose losses keep the dl-techniques loss contract."""

import keras

from dl_techniques.losses.core.numerics import upcast_half
from dl_techniques.losses.core.serialization import register_serializable


def _absolute_errors(y_true, y_pred):
    return keras.ops.abs(upcast_half(y_true) - upcast_half(y_pred))


@register_serializable
class AcmeScaledAbsoluteLoss(keras.losses.Loss):
    """Per sample: ``scale * mean_j |y_j - p_j|``."""

    def __init__(self, scale=1.0, name="acme_scaled_absolute", reduction="sum_over_batch_size"):
        if not scale > 0:
            raise ValueError(f"AcmeScaledAbsoluteLoss: scale must be > 0, got {scale}.")
        super().__init__(name=name, reduction=reduction)
        self.scale = scale

    def call(self, y_true, y_pred):
        return self.scale * keras.ops.mean(_absolute_errors(y_true, y_pred), axis=-1)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


@register_serializable
class AcmeWeightedBatchLoss(keras.losses.Loss):
    """Batch level: ``sum_i w_i e_i / sum_i w_i``, ``e_i = mean_j |y_ij - p_ij|``."""

    def __init__(self, name="acme_weighted_batch", reduction="sum_over_batch_size"):
        super().__init__(name=name, reduction=reduction)

    def __call__(self, y_true, y_pred, sample_weight=None):
        per_sample = keras.ops.mean(_absolute_errors(y_true, y_pred), axis=-1)
        if sample_weight is None:
            return keras.ops.mean(per_sample)
        weights = keras.ops.cast(sample_weight, per_sample.dtype)
        return keras.ops.sum(weights * per_sample) / keras.ops.sum(weights)

    def call(self, y_true, y_pred):
        return self(y_true, y_pred)


@register_serializable
class AcmeWorstSampleLoss(keras.losses.Loss):
    """Batch level, rejects sample_weight: ``max_i mean_j |y_ij - p_ij|``."""

    def __init__(self, name="acme_worst_sample", reduction="sum_over_batch_size"):
        super().__init__(name=name, reduction=reduction)

    def __call__(self, y_true, y_pred, sample_weight=None):
        if sample_weight is not None:
            raise ValueError(
                "AcmeWorstSampleLoss: sample_weight is not supported, the loss is "
                "the largest per-sample error of the batch."
            )
        return super().__call__(y_true, y_pred)

    def call(self, y_true, y_pred):
        return keras.ops.max(keras.ops.mean(_absolute_errors(y_true, y_pred), axis=-1))


@register_serializable
class AcmeMaskedAbsoluteLoss(keras.losses.Loss):
    """Per sample: ``sum_j m_j |y_j - p_j| / max(sum_j m_j, 1)``, ``y_true = {target, mask}``."""

    def __init__(self, name="acme_masked_absolute", reduction="sum_over_batch_size"):
        super().__init__(name=name, reduction=reduction)

    def call(self, y_true, y_pred):
        mask = upcast_half(y_true["mask"])
        errors = _absolute_errors(y_true["target"], y_pred)
        counted = keras.ops.maximum(keras.ops.sum(mask, axis=-1), 1.0)
        return keras.ops.sum(mask * errors, axis=-1) / counted


@register_serializable
class AcmeMidpointAbsoluteLoss(keras.losses.Loss):
    """Per sample: ``mean_j |y_j - (low_j + high_j) / 2|``, ``y_pred = {low, high}``."""

    def __init__(self, name="acme_midpoint_absolute", reduction="sum_over_batch_size"):
        super().__init__(name=name, reduction=reduction)

    def call(self, y_true, y_pred):
        midpoint = (upcast_half(y_pred["low"]) + upcast_half(y_pred["high"])) / 2.0
        return keras.ops.mean(_absolute_errors(y_true, midpoint), axis=-1)
'''


def _plugin_module():
    module = types.ModuleType(PLUGIN_MODULE)
    exec(compile(PLUGIN_SOURCE, f"<{PLUGIN_MODULE}>", "exec"), module.__dict__)
    return module


def write_plugin(directory):
    """Writes the toy plugin as an installed distribution into ``directory``."""
    directory = pathlib.Path(directory)
    (directory / f"{PLUGIN_MODULE}.py").write_text(PLUGIN_SOURCE)
    info = directory / f"{PLUGIN_MODULE}-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {PLUGIN_DISTRIBUTION}\nVersion: 0.1.0\n"
    )
    entry_points = "".join(f"{name} = {PLUGIN_MODULE}:{name}\n" for name in PLUGIN_NAMES)
    (info / "entry_points.txt").write_text(f"[dl_techniques.losses]\n{entry_points}")
    return directory


# The classes live in a module named like the plugin's file, so that the
# class a fresh process imports from disk is, by module and name, this one.
acme = _plugin_module()

_rng = np.random.default_rng(7)
TARGETS = _rng.normal(size=(4, 3)).astype(np.float32)
PREDICTIONS = (TARGETS + _rng.normal(scale=0.8, size=(4, 3))).astype(np.float32)
MASK = np.array([[1, 1, 0], [1, 0, 1], [0, 0, 0], [1, 1, 1]], dtype=np.float32)


def scaled_absolute_case(loss_class=acme.AcmeScaledAbsoluteLoss, **overrides):
    settings = {
        "init_kwargs": {"scale": 2.5},
        "y_true": TARGETS,
        "y_pred": PREDICTIONS,
        "invalid_kwargs": [{"scale": 0.0}, {"scale": -1.0}],
    }
    settings.update(overrides)
    return LossCase(loss_class, **settings)


ACME_CASES = [
    scaled_absolute_case(),
    LossCase(acme.AcmeWeightedBatchLoss, {}, TARGETS, PREDICTIONS, sample_weight="batch"),
    LossCase(acme.AcmeWorstSampleLoss, {}, TARGETS, PREDICTIONS, sample_weight="rejected"),
    LossCase(
        acme.AcmeMaskedAbsoluteLoss,
        {},
        y_true={"target": TARGETS, "mask": MASK},
        y_pred=PREDICTIONS,
    ),
    LossCase(
        acme.AcmeMidpointAbsoluteLoss,
        {},
        y_true=TARGETS,
        y_pred={"low": PREDICTIONS - 0.5, "high": PREDICTIONS + 0.25},
    ),
]


@pytest.fixture
def acme_plugin_on_path(tmp_path_factory, monkeypatch):
    """Puts the toy plugin on ``sys.path``, which fresh processes inherit."""
    directory = write_plugin(tmp_path_factory.mktemp("acme-plugin"))
    monkeypatch.syspath_prepend(str(directory))
    return directory


class TestAcmePluginConformance(LossConformanceTests):
    cases = ACME_CASES

    @pytest.fixture(autouse=True)
    def _plugin_installed(self, acme_plugin_on_path):
        return acme_plugin_on_path


# Broken losses, one breach each.


@register_serializable
class LocalScaledAbsoluteLoss(acme.AcmeScaledAbsoluteLoss):
    """Correct, but declared by no entry point: a fresh process cannot find it."""


@register_serializable
class ForgetfulConfigLoss(acme.AcmeScaledAbsoluteLoss):
    def get_config(self):
        config = super().get_config()
        del config["scale"]
        return config


@register_serializable
class StaleConfigLoss(acme.AcmeScaledAbsoluteLoss):
    def get_config(self):
        return {**super().get_config(), "scale": 1.0}


class UnregisteredLoss(acme.AcmeScaledAbsoluteLoss):
    pass


@keras.saving.register_keras_serializable(package="elsewhere")
class ForeignPackageLoss(acme.AcmeScaledAbsoluteLoss):
    pass


@register_serializable
class LogOfPredictionLoss(keras.losses.Loss):
    def call(self, y_true, y_pred):
        return keras.ops.mean(keras.ops.log(y_pred) - y_true, axis=-1)


@register_serializable
class RootSquaredErrorLoss(keras.losses.Loss):
    def call(self, y_true, y_pred):
        return keras.ops.sqrt(keras.ops.sum(keras.ops.square(y_pred - y_true), axis=-1))


@register_serializable
class HalfPrecisionExpLoss(keras.losses.Loss):
    def call(self, y_true, y_pred):
        return keras.ops.mean(keras.ops.exp(y_pred - y_true), axis=-1)


@register_serializable
class StoppedGradientLoss(keras.losses.Loss):
    def call(self, y_true, y_pred):
        return keras.ops.mean(keras.ops.abs(y_true - keras.ops.stop_gradient(y_pred)), axis=-1)


@register_serializable
class BatchMeanLoss(keras.losses.Loss):
    def call(self, y_true, y_pred):
        return keras.ops.mean(keras.ops.abs(y_true - y_pred))


@register_serializable
class WeightBlindBatchLoss(keras.losses.Loss):
    def __call__(self, y_true, y_pred, sample_weight=None):
        return super().__call__(y_true, y_pred)

    def call(self, y_true, y_pred):
        return keras.ops.mean(keras.ops.abs(y_true - y_pred))


@register_serializable
class WeightNormalisingLoss(acme.AcmeScaledAbsoluteLoss):
    """Divides by the sum of the weights where Keras divides by the batch size."""

    def __call__(self, y_true, y_pred, sample_weight=None):
        per_sample = self.call(
            keras.ops.convert_to_tensor(y_true), keras.ops.convert_to_tensor(y_pred)
        )
        if self.reduction is None:
            return per_sample
        if sample_weight is None:
            return keras.ops.mean(per_sample)
        weights = keras.ops.cast(sample_weight, per_sample.dtype)
        return keras.ops.sum(weights * per_sample) / keras.ops.sum(weights)


@register_serializable
class LaxScaleLoss(keras.losses.Loss):
    def __init__(self, scale=1.0, name="lax_scale", reduction="sum_over_batch_size"):
        super().__init__(name=name, reduction=reduction)
        self.scale = scale

    def call(self, y_true, y_pred):
        return self.scale * keras.ops.mean(keras.ops.abs(y_true - y_pred), axis=-1)

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


@register_serializable
class AnonymousErrorLoss(LaxScaleLoss):
    def __init__(self, scale=1.0, name="anonymous_error", reduction="sum_over_batch_size"):
        if scale <= 0:
            raise ValueError(f"scale must be > 0, got {scale}")
        super().__init__(scale=scale, name=name, reduction=reduction)


@register_serializable
class WrongErrorTypeLoss(LaxScaleLoss):
    def __init__(self, scale=1.0, name="wrong_error_type", reduction="sum_over_batch_size"):
        if scale <= 0:
            raise TypeError(f"WrongErrorTypeLoss: scale must be > 0, got {scale}")
        super().__init__(scale=scale, name=name, reduction=reduction)


def plain_case(loss_class, y_true=TARGETS, y_pred=PREDICTIONS, **settings):
    return LossCase(loss_class, {}, y_true, y_pred, **settings)


# Each check catches its breach.


def test_config_roundtrip_names_a_constructor_argument_missing_from_the_config():
    with pytest.raises(AssertionError, match=r"lacks the constructor argument\(s\) \['scale'\]"):
        testing.check_config_roundtrip(scaled_absolute_case(ForgetfulConfigLoss))


def test_config_roundtrip_catches_a_config_that_reports_a_stale_value():
    with pytest.raises(AssertionError, match="from_config"):
        testing.check_config_roundtrip(scaled_absolute_case(StaleConfigLoss))


def test_keras_serialization_catches_an_unregistered_loss():
    complaint = r"registered_name 'UnregisteredLoss'.*register_serializable"
    with pytest.raises(AssertionError, match=complaint):
        testing.check_keras_serialization(scaled_absolute_case(UnregisteredLoss))


def test_keras_serialization_catches_a_loss_registered_under_another_package():
    complaint = r"'elsewhere>ForeignPackageLoss', expected 'dl_techniques>ForeignPackageLoss'"
    with pytest.raises(AssertionError, match=complaint):
        testing.check_keras_serialization(scaled_absolute_case(ForeignPackageLoss))


def test_saved_model_catches_a_loss_that_reloads_with_a_different_value(tmp_path):
    with pytest.raises(AssertionError, match="reloaded model evaluates to a different loss"):
        testing.check_saved_model(scaled_absolute_case(StaleConfigLoss), tmp_path)


def test_finite_check_catches_a_nan_value_for_finite_inputs():
    y_pred = np.abs(PREDICTIONS)
    y_pred[1, 2] = -0.5
    with pytest.raises(AssertionError, match="loss value is .*not finite"):
        testing.check_finite_value_and_gradient(plain_case(LogOfPredictionLoss, y_pred=y_pred))


def test_finite_check_catches_a_nan_gradient_where_prediction_equals_target():
    y_pred = PREDICTIONS.copy()
    y_pred[2] = TARGETS[2]
    case = plain_case(RootSquaredErrorLoss, y_pred=y_pred)
    value = np.mean(np.sqrt(np.sum((y_pred - TARGETS) ** 2, axis=-1)))
    assert np.isfinite(value)
    complaint = "gradient with respect to y_pred has 3 non-finite entries of 12"
    with pytest.raises(AssertionError, match=complaint):
        testing.check_finite_value_and_gradient(case)


def test_half_precision_catches_a_float16_overflow():
    y_pred = PREDICTIONS.copy()
    y_pred[0, 0] = TARGETS[0, 0] + 12.0
    with np.errstate(over="ignore"):
        assert np.isfinite(np.exp(np.float32(12.0))) and np.isinf(np.exp(np.float16(12.0)))
    with pytest.raises(AssertionError, match="with float16 inputs the loss is inf"):
        testing.check_half_precision(plain_case(HalfPrecisionExpLoss, y_pred=y_pred))


def test_jit_fit_step_catches_a_loss_that_gives_no_gradient():
    # jax steps with a zero gradient; tensorflow and torch refuse to step.
    complaint = r"left every weight unchanged|fit \(jit_compile=\w+ on \w+\) raised"
    with pytest.raises(AssertionError, match=complaint):
        testing.check_jit_fit_step(plain_case(StoppedGradientLoss))


def test_per_sample_weighting_catches_a_loss_that_returns_one_value_per_batch():
    complaint = r"reduction=None the loss has shape \(\), expected \(4,\)"
    with pytest.raises(AssertionError, match=complaint):
        testing.check_sample_weight(plain_case(BatchMeanLoss))


def test_per_sample_weighting_catches_normalising_by_the_sum_of_weights():
    case = scaled_absolute_case(WeightNormalisingLoss)
    with pytest.raises(AssertionError, match=r"sum\(w \* per_sample\) / batch"):
        testing.check_sample_weight(case)


@pytest.mark.parametrize("loss_class", [BatchMeanLoss, WeightBlindBatchLoss])
def test_batch_weighting_catches_a_loss_that_does_not_weight_inside(loss_class):
    with pytest.raises(AssertionError, match="weight 2 on row 0 differs from repeating row 0"):
        testing.check_sample_weight(plain_case(loss_class, sample_weight="batch"))


def test_rejected_weighting_catches_a_loss_that_accepts_sample_weight():
    with pytest.raises(AssertionError, match="sample_weight was accepted"):
        testing.check_sample_weight(scaled_absolute_case(sample_weight="rejected"))


@pytest.mark.parametrize(
    ("loss_class", "complaint"),
    [
        (LaxScaleLoss, r"LaxScaleLoss\(\*\*\{'scale': -1.0\}\) was accepted"),
        (AnonymousErrorLoss, "raised ValueError without naming AnonymousErrorLoss"),
        (WrongErrorTypeLoss, "raised TypeError, not ValueError"),
    ],
)
def test_invalid_hyperparameters_catches_a_constructor_that_does_not_say_who_rejects(
    loss_class, complaint
):
    case = LossCase(
        loss_class, {"scale": 2.0}, TARGETS, PREDICTIONS, invalid_kwargs=[{"scale": -1.0}]
    )
    with pytest.raises(AssertionError, match=complaint):
        testing.check_invalid_hyperparameters(case)


# The runners report every check, pass or fail, without raising.


def _build_two_input_model(case):
    """``model([a, b]) = a + Dense_zero(b)``, from built-in layers only."""
    first = keras.Input(shape=(3,))
    second = keras.Input(shape=(2,))
    correction = keras.layers.Dense(3, kernel_initializer="zeros")(second)
    model = keras.Model([first, second], keras.layers.Add()([first, correction]))
    extra = np.linspace(-1.0, 1.0, num=2 * case.batch_size, dtype=np.float32)
    return model, [case.y_pred, extra.reshape(case.batch_size, 2)]


def test_run_conformance_batch_passes_discoverable_losses_and_fails_undiscoverable_ones(
    tmp_path, acme_plugin_on_path
):
    cases = [
        scaled_absolute_case(case_id="acme"),
        scaled_absolute_case(case_id="acme-two-inputs", build_model=_build_two_input_model),
        scaled_absolute_case(LocalScaledAbsoluteLoss, invalid_kwargs=()),
    ]
    results = testing.run_conformance_batch(cases, tmp_path)
    check_names = [name for name, _ in testing.IN_PROCESS_CHECKS] + ["fresh_process_reload"]
    assert [(result.case_id, result.check) for result in results] == [
        (case_id, check)
        for case_id in ("acme", "acme-two-inputs", "LocalScaledAbsoluteLoss")
        for check in check_names
    ]
    failed = [(result.case_id, result.check) for result in results if not result.passed]
    assert failed == [("LocalScaledAbsoluteLoss", "fresh_process_reload")], [
        result.message for result in results if not result.passed
    ]
    assert "could not reload" in results[-1].message
    assert "LocalScaledAbsoluteLoss" in results[-1].message


def test_run_conformance_turns_a_crashing_check_into_a_failed_result(tmp_path):
    def broken_model(case):
        raise RuntimeError("no model today")

    case = scaled_absolute_case(
        LocalScaledAbsoluteLoss, invalid_kwargs=(), build_model=broken_model
    )
    results = {result.check: result for result in testing.run_conformance(case, tmp_path)}
    assert set(results) == {name for name, _ in testing.IN_PROCESS_CHECKS}
    crashed = {name for name, result in results.items() if not result.passed}
    assert crashed == {"saved_model", "jit_fit_step"}
    assert "RuntimeError: no model today" in results["saved_model"].message


def test_fresh_process_reload_fails_a_case_whose_model_cannot_be_saved(tmp_path):
    def broken_model(case):
        raise RuntimeError("no model today")

    case = scaled_absolute_case(case_id="unsavable", build_model=broken_model)
    with pytest.raises(AssertionError, match="unsavable: the model could not be saved"):
        testing.check_fresh_process_reload([case], tmp_path)


# The case description and the pytest hook.


def test_loss_case_defaults_its_id_to_the_class_name_and_stores_float32():
    case = LossCase(acme.AcmeScaledAbsoluteLoss, {}, TARGETS.astype(np.float64), PREDICTIONS)
    assert case.case_id == "AcmeScaledAbsoluteLoss"
    assert case.y_true.dtype == np.float32
    assert case.batch_size == 4


def test_loss_case_rejects_an_unknown_sample_weight_mode():
    with pytest.raises(ValueError, match="sample_weight must be one of"):
        LossCase(acme.AcmeScaledAbsoluteLoss, {}, TARGETS, PREDICTIONS, sample_weight="sometimes")


def test_conformance_suite_without_cases_refuses_to_generate_tests():
    metafunc = types.SimpleNamespace(fixturenames=["case"])
    with pytest.raises(ValueError, match="non-empty list of LossCase"):
        LossConformanceTests().pytest_generate_tests(metafunc)


def test_the_kit_does_not_import_pytest():
    package = pathlib.Path(testing.__file__).parent
    imported = set()
    for source in package.glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                imported.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module.split(".")[0])
    assert "keras" in imported
    assert "pytest" not in imported


def test_compiled_fit_and_saving_run_on_the_first_case_of_each_loss_class_only():
    first = scaled_absolute_case(case_id="scale_2.5")
    second = scaled_absolute_case(init_kwargs={"scale": 0.5}, case_id="scale_0.5")
    other = LossCase(acme.AcmeWeightedBatchLoss, {}, TARGETS, PREDICTIONS, sample_weight="batch")

    # An instance stand-in, so that no subclass joins the batched reload.
    suite = types.SimpleNamespace(cases=[first, second, other])
    generated = {}

    class Metafunc:
        fixturenames = ("case",)

        def __init__(self, name):
            self.function = types.SimpleNamespace(__name__=name)

        def parametrize(self, argument, values, ids):
            generated[self.function.__name__] = ids

    for name in ("test_jit_fit_step", "test_saved_model", "test_config_roundtrip"):
        LossConformanceTests.pytest_generate_tests(suite, Metafunc(name))

    assert generated["test_jit_fit_step"] == ["scale_2.5", "AcmeWeightedBatchLoss"]
    assert generated["test_saved_model"] == ["scale_2.5", "AcmeWeightedBatchLoss"]
    assert generated["test_config_roundtrip"] == ["scale_2.5", "scale_0.5", "AcmeWeightedBatchLoss"]
