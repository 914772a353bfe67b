"""``dl-losses plot`` and the curves behind it, against closed forms on the current backend."""

import sys

import keras
import numpy as np
import pytest

from dl_techniques.losses.core import cli, plotting, registry

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class GammaLoss(keras.losses.Loss):
    """A plugin's loss that opts in to plotting with a class attribute."""

    plot_layout = "error"

    def __init__(self, factor=3.0, name="gamma", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.factor = factor

    def call(self, y_true, y_pred):
        return self.factor * keras.ops.mean(keras.ops.abs(y_pred - y_true), axis=-1)


@pytest.fixture
def families():
    pytest.importorskip("dl_techniques.losses.forecasting")
    pytest.importorskip("dl_techniques.losses.classification")


@pytest.fixture
def installed_gamma(monkeypatch):
    gamma = registry.Entry("GammaLoss", f"{__name__}:GammaLoss", "fake-gamma", "1.0")
    installed = registry.entry
    monkeypatch.setattr(
        registry, "entry", lambda name: gamma if name == "GammaLoss" else installed(name)
    )


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def test_huber_value_and_gradient_along_the_error_axis_are_the_closed_forms(families):
    curves = plotting.loss_curves("HuberLoss", {"delta": 0.5}, points=25)

    error = np.linspace(-3.0, 3.0, 25)
    huber = curves.curves[0]
    expected = np.where(np.abs(error) <= 0.5, error**2 / 2, 0.5 * (np.abs(error) - 0.25))
    assert (curves.kind, curves.x_symbol) == ("error", "e")
    np.testing.assert_allclose(curves.x, error)
    np.testing.assert_allclose(huber.values, expected, atol=1e-6)
    np.testing.assert_allclose(huber.gradients, np.clip(error, -0.5, 0.5), atol=1e-6)


def test_error_references_are_half_squared_and_absolute_error(families):
    curves = plotting.loss_curves("MQLoss", {"quantiles": [0.2, 0.8]}, points=5)

    error = curves.x
    by_key = {curve.key: curve for curve in curves.curves}
    np.testing.assert_allclose(by_key["e^2/2"].values, error**2 / 2)
    np.testing.assert_allclose(by_key["e^2/2"].gradients, error)
    np.testing.assert_allclose(by_key["|e|"].values, np.abs(error))
    np.testing.assert_allclose(by_key["loss"].values, 0.5 * np.abs(error), atol=1e-6)


def test_probability_curves_per_label_beside_binary_cross_entropy(families):
    curves = plotting.loss_curves("BrierScoreLoss", points=5)

    p = np.linspace(0.01, 0.99, 5)
    by_key = {curve.key: curve for curve in curves.curves}
    assert curves.kind == "probability"
    np.testing.assert_allclose(by_key["loss[y=1]"].values, (1 - p) ** 2, atol=1e-6)
    np.testing.assert_allclose(by_key["loss[y=1]"].gradients, -2 * (1 - p), atol=1e-5)
    np.testing.assert_allclose(by_key["loss[y=0]"].gradients, 2 * p, atol=1e-5)
    np.testing.assert_allclose(by_key["bce[y=1]"].values, -np.log(p))
    np.testing.assert_allclose(by_key["bce[y=0]"].gradients, 1 / (1 - p))


def test_from_logits_moves_the_plot_to_the_logit_axis(families):
    curves = plotting.loss_curves("BrierScoreLoss", {"from_logits": True}, points=5)

    z = np.linspace(-6.0, 6.0, 5)
    by_key = {curve.key: curve for curve in curves.curves}
    assert curves.kind == "logit"
    np.testing.assert_allclose(by_key["loss[y=1]"].values, (1 - _sigmoid(z)) ** 2, atol=1e-6)
    np.testing.assert_allclose(by_key["bce[y=1]"].values, np.log1p(np.exp(-z)))
    np.testing.assert_allclose(by_key["bce[y=0]"].gradients, _sigmoid(z))


def test_batch_level_f1_is_plotted_on_a_balanced_batch(families):
    # Positives predict p and negatives 1 - p, so the soft F1 equals the
    # amplified probability a = sigmoid(L (p - 1/2)) of the true class.
    curves = plotting.loss_curves("F1Loss", {"amplifying_scale": 4.0}, points=5)

    amplified = _sigmoid(4.0 * (np.linspace(0.01, 0.99, 5) - 0.5))
    f1 = curves.curves[0]
    assert "a batch of" in curves.inputs
    assert curves.x_label == "predicted probability p of the true class"
    np.testing.assert_allclose(f1.values, 1 - amplified, atol=1e-5)
    np.testing.assert_allclose(f1.gradients, -4.0 * amplified * (1 - amplified), atol=1e-4)


def test_a_plot_layout_attribute_opts_a_plugin_loss_in(installed_gamma):
    curves = plotting.loss_curves("GammaLoss", {"factor": 2.0}, points=4)

    np.testing.assert_allclose(curves.curves[0].values, [6.0, 2.0, 2.0, 6.0], atol=1e-6)
    np.testing.assert_allclose(curves.curves[0].gradients, [-2.0, -2.0, 2.0, 2.0], atol=1e-6)


def test_cli_writes_a_png_and_prints_a_summary(families, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    output = tmp_path / "huber.png"

    status = cli.main(
        ["plot", "HuberLoss", "--param", "delta=0.5", "--points", "5", "--output", str(output)]
    )

    printed = capsys.readouterr().out
    assert status == 0
    assert output.read_bytes().startswith(PNG_SIGNATURE)
    assert printed.startswith("HuberLoss(delta=0.5): error axis, 5 points of e in [-3, 3]")
    assert "HuberLoss            0          1.375      -0.5          0.5" in printed
    assert f"wrote {output}" in printed


def test_cli_default_output_is_name_png_in_the_current_folder(
    installed_gamma, tmp_path, monkeypatch
):
    pytest.importorskip("matplotlib")
    monkeypatch.chdir(tmp_path)

    assert cli.main(["plot", "GammaLoss", "--points", "3"]) == 0
    assert (tmp_path / "GammaLoss.png").read_bytes().startswith(PNG_SIGNATURE)


def test_cli_table_prints_the_sampled_points(families, capsys):
    status = cli.main(["plot", "HuberLoss", "--table", "--points", "3", "--range", "-2", "2"])

    rows = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert status == 0
    assert rows[2] == ["e", "loss", "dloss", "e^2/2", "|e|"]
    assert rows[4:] == [
        ["-2", "1.5", "-1", "2", "2"],
        ["0", "0", "0", "0", "0"],
        ["2", "1.5", "1", "2", "2"],
    ]


def test_params_are_python_literals(families, capsys):
    status = cli.main(
        ["plot", "MQLoss", "--table", "--points", "2", "--param", "quantiles=[0.1, 0.9]"]
    )

    assert status == 0
    assert capsys.readouterr().out.startswith("MQLoss(quantiles=[0.1, 0.9]): error axis")


def test_unknown_name_fails_with_suggestions(families, capsys):
    status = cli.main(["plot", "HuberLos", "--table"])

    assert status == 2
    assert "Did you mean HuberLoss" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "YOLOv12MultiTaskLoss",
            "YOLOv12MultiTaskLoss cannot be plotted against a single prediction",
        ),
        ("SegmentationLossConfig", "SegmentationLossConfig is not a loss class"),
    ],
)
def test_an_unplottable_name_says_why(capsys, name, message):
    pytest.importorskip("dl_techniques.losses.vision")

    status = cli.main(["plot", name, "--table"])

    assert status == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize(
    ("param", "message"),
    [
        ("delt=0.5", "HuberLoss has no parameter 'delt'. Did you mean delta?"),
        ("delta=-1", "HuberLoss(delta=-1):"),
    ],
)
def test_a_bad_param_fails_naming_it(families, capsys, param, message):
    status = cli.main(["plot", "HuberLoss", "--table", "--param", param])

    assert status == 2
    assert message in capsys.readouterr().err


def test_a_param_without_a_value_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["plot", "HuberLoss", "--param", "delta"])

    assert exit_info.value.code == 2
    assert "expected KEY=VALUE, got 'delta'" in capsys.readouterr().err


def test_missing_matplotlib_names_the_plots_extra(families, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)

    status = cli.main(["plot", "HuberLoss", "--points", "2", "--output", str(tmp_path / "h.png")])

    assert status == 2
    assert 'pip install "dl-techniques-losses-core[plots]"' in capsys.readouterr().err
    assert not (tmp_path / "h.png").exists()
