"""The dl-losses command, run in-process against fake installed distributions."""

import sys
import textwrap

import pytest

from dl_techniques.losses.core import catalog, cli, registry

LOSS_MODULE = '''
import keras
from dl_techniques.losses.core.serialization import register_serializable


@register_serializable
class GammaLoss(keras.losses.Loss):
    """Scaled mean absolute error.

    Reference:
        A. Author, "A paper", 2020.
    """

    def __init__(self, factor=3.0, name="gamma", reduction="sum_over_batch_size", dtype=None):
        super().__init__(name=name, reduction=reduction, dtype=dtype)
        self.factor = factor

    def call(self, y_true, y_pred):
        return self.factor * keras.ops.mean(keras.ops.abs(y_true - y_pred), axis=-1)

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}
'''

DEMO_MODULE = """
from dl_techniques.losses.core.demo import DemoRow


def run_demo(output_dir, progress):
    progress.step("training")
    (output_dir / "gamma.png").write_bytes(b"png")
    return [DemoRow(demo="gamma: GammaLoss", metric="score", value=0.25, reference="baseline 0.5")]
"""


@pytest.fixture
def installed_gamma(tmp_path, monkeypatch):
    info = tmp_path / "fake_gamma-1.2.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: fake-gamma\nVersion: 1.2\n")
    (info / "entry_points.txt").write_text(
        "[dl_techniques.losses]\nGammaLoss = fake_gamma_loss:GammaLoss\n\n"
        "[dl_techniques.losses.demos]\ngamma = fake_gamma_demo:run_demo\n"
    )
    (tmp_path / "fake_gamma_loss.py").write_text(textwrap.dedent(LOSS_MODULE))
    (tmp_path / "fake_gamma_demo.py").write_text(textwrap.dedent(DEMO_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    registry.refresh()
    yield tmp_path
    for module in ("fake_gamma_loss", "fake_gamma_demo"):
        sys.modules.pop(module, None)
    monkeypatch.undo()
    registry.refresh()


def test_list_shows_every_column_without_importing_the_plugin(installed_gamma, capsys):
    status = cli.main(["list"])

    output = capsys.readouterr().out
    row = next(line for line in output.splitlines() if line.startswith("GammaLoss"))
    assert status == 0
    assert row.split() == ["GammaLoss", "loss", "fake-gamma", "fake-gamma", "1.2"]
    assert "fake_gamma_loss" not in sys.modules


def test_info_prints_signature_summary_and_reference(installed_gamma, capsys):
    status = cli.main(["info", "GammaLoss"])

    output = capsys.readouterr().out
    assert status == 0
    assert (
        "GammaLoss(factor=3.0, name='gamma', reduction='sum_over_batch_size', dtype=None)" in output
    )
    assert "summary:      Scaled mean absolute error." in output
    assert 'reference:    A. Author, "A paper", 2020.' in output
    assert "dl_techniques>GammaLoss" in output


def test_info_of_an_uninstalled_first_party_name_exits_with_the_extra(monkeypatch, capsys):
    monkeypatch.setitem(catalog.FAMILY_OF_NAME, "PlannedClassificationLoss", "classification")

    status = cli.main(["info", "PlannedClassificationLoss"])

    assert status == 2
    assert "dl-techniques-losses[classification]" in capsys.readouterr().err


def test_check_of_a_distribution_without_cases_fails(installed_gamma, capsys):
    status = cli.main(["check", "fake-gamma"])

    output = capsys.readouterr().out
    assert status == 1
    assert "declares no conformance cases" in output


def test_demo_runs_installed_demos_and_prints_their_table(installed_gamma, tmp_path, capsys):
    output_dir = tmp_path / "plots"

    status = cli.main(["demo", "gamma", "--output", str(output_dir)])

    captured = capsys.readouterr()
    assert status == 0
    assert (output_dir / "gamma.png").exists()
    table_row = next(
        line for line in captured.out.splitlines() if line.startswith("gamma: GammaLoss")
    )
    assert table_row.split() == ["gamma:", "GammaLoss", "score", "0.25", "baseline", "0.5"]
    assert "gamma: training" in captured.err
