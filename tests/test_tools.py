"""tools/: building wheels, the consistency check, the generated files and the version bump.

Failure cases edit a copy of ``packages/`` and ``tools/`` and run the check on it.
"""

import ast
import pathlib
import shutil
import subprocess
import sys
import zipfile

import pytest

pytestmark = pytest.mark.backend_independent

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
# One extra per family package, named as its distribution: metric_learning -> metric-learning.
FAMILY_EXTRAS = tuple(
    sorted(
        path.name.replace("_", "-")
        for path in (REPO_ROOT / "packages").iterdir()
        if (path / "pyproject.toml").exists() and path.name not in ("core", "meta")
    )
)


def edit(path, old, new):
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


def problems_of(results):
    return [problem for found in results.values() for problem in found]


def read_project(path):
    with open(path, "rb") as file:
        return tomllib.load(file)["project"]


@pytest.fixture
def repository_with_readme(repository_copy):
    """The copy of ``packages/`` and ``tools/``, plus the root README and ruff's settings."""
    for name in ("README.md", "pyproject.toml"):
        shutil.copy(REPO_ROOT / name, repository_copy / name)
    return repository_copy


def add_forecasting_entry_point(root, name, value):
    """Declares one more public name of the forecasting family, after its last one."""
    pyproject = root / "packages/forecasting/pyproject.toml"
    last_line = f"{forecasting_names(root)[-1]} ="
    last_line = next(
        line for line in pyproject.read_text().splitlines() if line.startswith(last_line)
    )
    edit(pyproject, last_line, f'{last_line}\n{name} = "{value}"')


def forecasting_names(root):
    """The forecasting family's public names, in the order of its entry points."""
    project = read_project(root / "packages/forecasting/pyproject.toml")
    return list(project["entry-points"]["dl_techniques.losses"])


def test_the_repository_passes_every_check(tool, built_wheels):
    check = tool("check_consistency")
    results = check.run_checks(dist_dir=built_wheels["core"].parent, with_template=True)

    assert problems_of(results) == []
    assert "wheel contents" in results
    assert "entry points import and register with Keras" in results


def test_meta_wheel_holds_only_metadata_and_pins_every_family(built_wheels, release_version):
    with zipfile.ZipFile(built_wheels["meta"]) as wheel:
        names = wheel.namelist()
        metadata = wheel.read(f"dl_techniques_losses-{release_version}.dist-info/METADATA")
    info = f"dl_techniques_losses-{release_version}.dist-info/"
    assert all(name.startswith(info) for name in names)

    requires = [
        line.split(":", 1)[1].strip()
        for line in metadata.decode().splitlines()
        if line.startswith("Requires-Dist:")
    ]
    assert f"dl-techniques-losses-core=={release_version}" in requires
    for extra in FAMILY_EXTRAS:
        pin = f"dl-techniques-losses-{extra}=={release_version}"
        assert f"{pin}; extra == '{extra}'" in requires
        assert f"{pin}; extra == 'all'" in requires
    assert f"dl-techniques-losses-core[plots]=={release_version}; extra == 'plots'" in requires
    for backend in ("tensorflow", "jax", "torch"):
        assert any(
            line.startswith(backend) and f"extra == '{backend}'" in line for line in requires
        )


def test_a_family_wheel_with_losses_init_fails_the_check(tool, repository_copy):
    family_source = repository_copy / "packages/forecasting/src/dl_techniques/losses"
    (family_source / "__init__.py").write_text("")

    results = tool("check_consistency").run_checks(root=repository_copy, imports=False)

    assert any(
        "dl_techniques_losses_forecasting" in problem
        and "contains dl_techniques/losses/__init__.py" in problem
        for problem in results["wheel contents"]
    )
    assert any(
        "dl-techniques-losses-forecasting" in problem
        and "losses/__init__.py must not exist" in problem
        for problem in results["dl_techniques is a namespace only core extends"]
    )


def test_wheels_without_py_typed_or_license_fail_the_check(tool, repository_copy):
    (
        repository_copy / "packages/forecasting/src/dl_techniques/losses/forecasting/py.typed"
    ).unlink()
    (repository_copy / "packages/vision/LICENSE").unlink()

    results = tool("check_consistency").run_checks(root=repository_copy, imports=False)

    problems = results["wheel contents"]
    assert any(
        "dl_techniques_losses_forecasting" in problem
        and "lacks dl_techniques/losses/forecasting/py.typed" in problem
        for problem in problems
    )
    assert any(
        "dl_techniques_losses_vision" in problem and "no LICENSE" in problem for problem in problems
    )
    assert len(problems) == 2


def test_a_namespace_init_fails_the_check(tool, repository_copy):
    (repository_copy / "packages/core/src/dl_techniques/__init__.py").write_text("")

    results = tool("check_consistency").run_checks(root=repository_copy, imports=False)

    assert any(
        "dl_techniques_losses_core" in problem and "dl_techniques/__init__.py" in problem
        for problem in results["wheel contents"]
    )


def test_version_drift_fails_the_check(tool, repository_copy):
    edit(repository_copy / "packages/forecasting/pyproject.toml", 'version = "', 'version = "9')

    _, results = tool("check_consistency").check_static(repository_copy)

    [problem] = results["versions are lockstep"]
    assert "dl-techniques-losses-forecasting" in problem and "lockstep" in problem


def test_a_family_pinning_core_differently_fails_the_check(tool, repository_copy):
    edit(
        repository_copy / "packages/forecasting/pyproject.toml",
        "dl-techniques-losses-core~=",
        "dl-techniques-losses-core>=",
    )

    _, results = tool("check_consistency").check_static(repository_copy)

    [problem] = results["packages depend on core's version"]
    assert "dl-techniques-losses-forecasting" in problem and "~=" in problem


def test_the_generated_files_match_the_entry_points(tool):
    assert tool("generate").drifted(REPO_ROOT) == {}


def test_edited_meta_extras_are_reported_as_drift_and_regenerated(
    tool, repository_with_readme, release_version, capsys
):
    meta = repository_with_readme / "packages/meta/pyproject.toml"
    edit(
        meta,
        f'forecasting = ["dl-techniques-losses-forecasting=={release_version}"]',
        f'forecasting = ["dl-techniques-losses-forecasting>={release_version}"]',
    )
    edit(meta, f'vision = ["dl-techniques-losses-vision=={release_version}"]\n', "")
    generate = tool("generate")

    status = generate.main(["--root", str(repository_with_readme), "--check"])

    captured = capsys.readouterr()
    assert status == 1
    assert "DRIFT packages/meta/pyproject.toml" in captured.out
    assert "+vision = " in captured.out
    assert "DRIFT README.md" not in captured.out
    assert "run: python tools/generate.py" in captured.err
    assert generate.main(["--root", str(repository_with_readme)]) == 0
    extras = read_project(meta)["optional-dependencies"]
    assert extras["forecasting"] == [f"dl-techniques-losses-forecasting=={release_version}"]
    assert extras["vision"] == [f"dl-techniques-losses-vision=={release_version}"]
    assert f"dl-techniques-losses-vision=={release_version}" in extras["all"]
    assert extras["jax"] == ["jax>=0.4.28"]
    assert generate.drifted(repository_with_readme) == {}


def test_a_new_entry_point_reaches_every_generated_file(tool, repository_with_readme):
    names = [*forecasting_names(repository_with_readme), "ExtraLoss"]
    add_forecasting_entry_point(
        repository_with_readme, "ExtraLoss", "dl_techniques.losses.forecasting.huber:HuberLoss"
    )
    generate = tool("generate")

    drifted = {
        str(path.relative_to(repository_with_readme))
        for path in generate.drifted(repository_with_readme)
    }
    assert drifted == {
        "README.md",
        "packages/core/src/dl_techniques/losses/core/catalog.py",
        "packages/forecasting/src/dl_techniques/losses/forecasting/__init__.py",
    }

    generate.write(repository_with_readme)
    catalog = (
        repository_with_readme / "packages/core/src/dl_techniques/losses/core/catalog.py"
    ).read_text()
    namespace = {}
    exec(compile(catalog, "catalog.py", "exec"), namespace)
    assert namespace["FAMILY_NAMES"]["forecasting"] == tuple(names)
    assert namespace["FAMILY_OF_NAME"]["ExtraLoss"] == "forecasting"
    readme = (repository_with_readme / "README.md").read_text()
    assert "| forecasting | " + ", ".join(f"`{name}`" for name in names) + " |" in readme
    assert "### Forecasting" in readme
    init = (
        repository_with_readme
        / "packages/forecasting/src/dl_techniques/losses/forecasting/__init__.py"
    ).read_text()
    exported = next(
        node.value
        for node in ast.parse(init).body
        if isinstance(node, ast.Assign) and node.targets[0].id == "__all__"
    )
    assert ast.literal_eval(exported) == sorted(names)
    assert "from dl_techniques.losses.forecasting.huber import HuberLoss" in init


def test_generated_python_is_already_formatted_by_ruff(tool, repository_with_readme):
    # Enough new names to push the forecasting __all__ past one line of 100 characters.
    for index in range(6):
        add_forecasting_entry_point(
            repository_with_readme,
            f"LongForecastingName{index}Loss",
            "dl_techniques.losses.forecasting.huber:HuberLoss",
        )
    tool("generate").write(repository_with_readme)
    init = "packages/forecasting/src/dl_techniques/losses/forecasting/__init__.py"
    catalog = "packages/core/src/dl_techniques/losses/core/catalog.py"
    assert '__all__ = [\n    "' in (repository_with_readme / init).read_text()

    completed = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "--diff", catalog, init],
        cwd=repository_with_readme,
        capture_output=True,
        text=True,
    )

    assert completed.returncode == 0, completed.stdout + completed.stderr


def test_a_missing_marker_is_named_with_its_file(tool, repository_with_readme, capsys):
    edit(repository_with_readme / "README.md", "<!-- end generated -->", "")

    status = tool("generate").main(["--root", str(repository_with_readme), "--check"])

    assert status == 2
    error = capsys.readouterr().err
    assert "README.md" in error and "'<!-- end generated -->'" in error


def test_a_name_declared_by_two_families_fails_generation(tool, repository_with_readme):
    add_forecasting_entry_point(
        repository_with_readme, "F1Loss", "dl_techniques.losses.forecasting.huber:HuberLoss"
    )
    generate = tool("generate")

    with pytest.raises(generate.GenerationError, match="'F1Loss'.*one family"):
        generate.drifted(repository_with_readme)


def test_a_hand_written_meta_pin_off_the_version_fails_the_check(
    tool, repository_copy, release_version
):
    edit(
        repository_copy / "packages/meta/pyproject.toml",
        f'plots = ["dl-techniques-losses-core[plots]=={release_version}"]',
        f'plots = ["dl-techniques-losses-core[plots]>={release_version}"]',
    )

    _, results = tool("check_consistency").check_static(repository_copy)

    [problem] = results["meta package pins this project's version"]
    assert "'plots'" in problem and f"dl-techniques-losses-core=={release_version}" in problem


def test_entry_points_outside_their_family_or_unregistered_fail_the_check(tool, repository_copy):
    add_forecasting_entry_point(
        repository_copy, "ExtraLoss", "dl_techniques.losses.forecasting.huber:HuberLoss"
    )
    add_forecasting_entry_point(repository_copy, "Huber", "keras.losses:Huber")

    check = tool("check_consistency")
    _, results = check.check_static(repository_copy)
    packages = check.load_packages(repository_copy)

    [outside] = results["entry points live in their family's module"]
    assert "keras.losses" in outside and "dl_techniques.losses.forecasting" in outside
    import_problems = check.check_entry_points_resolve(packages)
    assert any("'ExtraLoss'" in problem and "'HuberLoss'" in problem for problem in import_problems)
    assert any(
        "Huber is registered with Keras as 'Huber'" in problem for problem in import_problems
    )
    metadata_problems = check.check_installed_metadata(packages)
    assert any("installed entry points" in problem for problem in metadata_problems)


def test_the_check_command_exits_non_zero_and_names_each_problem(tool, repository_copy, capsys):
    check = tool("check_consistency")
    assert check.main(["--root", str(repository_copy), "--no-wheels", "--no-imports"]) == 0

    edit(repository_copy / "packages/meta/pyproject.toml", 'version = "', 'version = "7')
    status = check.main(["--root", str(repository_copy), "--no-wheels", "--no-imports"])

    assert status == 1
    output = capsys.readouterr().out
    assert "FAIL versions are lockstep" in output
    assert "dl-techniques-losses (meta/pyproject.toml)" in output


def test_bump_version_moves_every_package_and_the_check_passes(tool, repository_with_readme):
    assert tool("bump_version").main(["--root", str(repository_with_readme), "3.4.5"]) == 0

    packages = repository_with_readme / "packages"
    for folder in ("core", "forecasting", "meta"):
        assert read_project(packages / folder / "pyproject.toml")["version"] == "3.4.5"
    forecasting = read_project(packages / "forecasting/pyproject.toml")
    assert forecasting["dependencies"] == ["dl-techniques-losses-core~=3.4.5"]
    meta = read_project(packages / "meta/pyproject.toml")
    assert meta["dependencies"] == ["dl-techniques-losses-core==3.4.5"]
    assert meta["optional-dependencies"]["self-supervised"] == [
        "dl-techniques-losses-self-supervised==3.4.5"
    ]
    assert meta["optional-dependencies"]["plots"] == ["dl-techniques-losses-core[plots]==3.4.5"]
    assert meta["optional-dependencies"]["jax"] == ["jax>=0.4.28"]
    assert meta["optional-dependencies"]["all"][0] == "dl-techniques-losses-classification==3.4.5"
    template = read_project(repository_with_readme / "tools/plugin_template/pyproject.toml")
    assert template["dependencies"] == ["dl-techniques-losses-core~=3.4.5"]
    assert template["version"] == "0.1.0"

    assert tool("generate").drifted(repository_with_readme) == {}
    results = tool("check_consistency").run_checks(root=repository_with_readme, with_template=True)
    assert problems_of(results) == []


@pytest.mark.parametrize("version", ["0.2", "v0.2.0", "0.2.0.1", "banana"])
def test_bump_version_refuses_a_version_that_is_not_major_minor_patch(
    tool, repository_copy, version
):
    before = (repository_copy / "packages/core/pyproject.toml").read_text()

    assert tool("bump_version").main(["--root", str(repository_copy), version]) == 2
    assert (repository_copy / "packages/core/pyproject.toml").read_text() == before


def test_build_wheels_replaces_an_older_wheel_of_the_same_distribution(tool, tmp_path):
    stale = tmp_path / "dl_techniques_losses_core-0.0.1-py3-none-any.whl"
    stale.write_bytes(b"")
    other = tmp_path / "dl_techniques_losses_forecasting-0.0.1-py3-none-any.whl"
    other.write_bytes(b"")

    [built] = tool("build_wheels").build_wheels(tmp_path, packages=["core"])

    assert not stale.exists()
    assert other.exists()
    assert built.parent == tmp_path
    with zipfile.ZipFile(built) as wheel:
        assert "dl_techniques/losses/__init__.py" in wheel.namelist()


def test_build_wheels_names_a_missing_package(tool, tmp_path):
    with pytest.raises(ValueError, match="no package folder"):
        tool("build_wheels").build_wheels(tmp_path, packages=["no_such_family"])


def test_bench_selects_cases_by_name_or_by_family_each_once(tool):
    bench = tool("bench")
    families = bench.load_cases()

    selected = bench.select_cases(families, ["yolo", "vision", "forecasting"])

    assert [case.name for case in selected] == [
        "yolo",
        "segmentation",
        "lovasz-growth",
        "box-regression",
        "forecasting",
    ]
    assert bench.select_cases(families, ["self-supervised"]) == families["self_supervised"]
    with pytest.raises(ValueError, match="unknown case or family 'no-such-case'"):
        bench.select_cases(families, ["no-such-case"])


def test_every_bench_case_shrinks_only_sizes_it_has_for_quick(tool):
    cases = [case for cases in tool("bench").load_cases().values() for case in cases]

    assert len({case.name for case in cases}) == len(cases)
    for case in cases:
        assert case.quick and set(case.quick) <= set(case.params), case.name


def test_bench_set_names_a_size_of_a_selected_case(tool, capsys):
    with pytest.raises(SystemExit) as exit_info:
        tool("bench").main(["classification", "--set", "vocab=64"])

    assert exit_info.value.code == 2
    assert "no selected case has a size 'vocab'" in capsys.readouterr().err


def test_bench_quick_run_prints_the_ratio_table_of_a_case(tool, capsys):
    status = tool("bench").main(["classification", "--quick", "--set", "batch=16"])

    output = capsys.readouterr().out
    assert status == 0
    assert "input (16, 4); forward + gradient w.r.t. y_pred, median of 1" in output
    for row in ("F1Loss", "BrierScoreLoss", "BinaryCrossentropy", "worst ratio"):
        assert row in output
