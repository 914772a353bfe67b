"""tools/: building wheels, the consistency check and the version bump.

Failure cases edit a copy of ``packages/`` and ``tools/`` and run the check on it.
"""

import zipfile

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

FAMILY_EXTRAS = ("classification", "self-supervised", "generative", "vision", "forecasting")


def edit(path, old, new):
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


def problems_of(results):
    return [problem for found in results.values() for problem in found]


def read_project(path):
    with open(path, "rb") as file:
        return tomllib.load(file)["project"]


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
        for problem in results["family entry points match the catalog"]
    )


def test_a_namespace_init_fails_the_check(tool, repository_copy):
    (repository_copy / "packages/core/src/dl_techniques/__init__.py").write_text("")

    results = tool("check_consistency").run_checks(root=repository_copy, imports=False)

    assert any(
        "dl_techniques_losses_core" in problem and "dl_techniques/__init__.py" in problem
        for problem in results["wheel contents"]
    )


def test_version_drift_fails_the_check(tool, repository_copy):
    edit(repository_copy / "packages/forecasting/pyproject.toml", 'version = "', 'version = "9')

    _, _, results = tool("check_consistency").check_static(repository_copy)

    [problem] = results["versions are lockstep"]
    assert "dl-techniques-losses-forecasting" in problem and "lockstep" in problem


def test_a_family_pinning_core_differently_fails_the_check(tool, repository_copy):
    edit(
        repository_copy / "packages/forecasting/pyproject.toml",
        "dl-techniques-losses-core~=",
        "dl-techniques-losses-core>=",
    )

    _, _, results = tool("check_consistency").check_static(repository_copy)

    [problem] = results["families depend on core with ~=<version>"]
    assert "dl-techniques-losses-forecasting" in problem and "~=" in problem


def test_meta_extras_that_drift_fail_the_check(tool, repository_copy, release_version):
    meta = repository_copy / "packages/meta/pyproject.toml"
    edit(
        meta,
        f'forecasting = ["dl-techniques-losses-forecasting=={release_version}"]',
        f'forecasting = ["dl-techniques-losses-forecasting>={release_version}"]',
    )
    edit(meta, f'vision = ["dl-techniques-losses-vision=={release_version}"]\n', "")

    _, _, results = tool("check_consistency").check_static(repository_copy)

    problems = results["meta package pins every family"]
    assert any("'forecasting'" in problem and "==" in problem for problem in problems)
    assert any("'vision'" in problem and "no such extra" in problem for problem in problems)


def test_entry_points_that_disagree_with_the_catalog_fail_the_check(tool, repository_copy):
    pyproject = repository_copy / "packages/forecasting/pyproject.toml"
    text = pyproject.read_text()
    smape_line = next(line for line in text.splitlines() if line.startswith("SMAPELoss ="))
    edit(
        pyproject,
        smape_line,
        'ExtraLoss = "dl_techniques.losses.forecasting.huber:HuberLoss"\n'
        'Huber = "keras.losses:Huber"',
    )

    check = tool("check_consistency")
    _, _, results = check.check_static(repository_copy)
    packages = check.load_packages(repository_copy)

    catalog_problems = results["family entry points match the catalog"]
    assert any(
        "'ExtraLoss'" in line and "not in core's catalog" in line for line in catalog_problems
    )
    assert any("'SMAPELoss'" in line and "no entry point" in line for line in catalog_problems)
    assert any("keras.losses" in line and "outside" in line for line in catalog_problems)

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


def test_bump_version_moves_every_package_and_the_check_passes(tool, repository_copy):
    assert tool("bump_version").main(["--root", str(repository_copy), "3.4.5"]) == 0

    packages = repository_copy / "packages"
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
    template = read_project(repository_copy / "tools/plugin_template/pyproject.toml")
    assert template["dependencies"] == ["dl-techniques-losses-core~=3.4.5"]
    assert template["version"] == "0.1.0"

    results = tool("check_consistency").run_checks(root=repository_copy, with_template=True)
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
