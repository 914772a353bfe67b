"""Builds the wheel of every distribution under ``packages/`` with hatchling.

Usage::

    python tools/build_wheels.py                     # every package into dist/
    python tools/build_wheels.py core forecasting    # only these package folders
    python tools/build_wheels.py --with-template     # also tools/plugin_template
    python tools/build_wheels.py --dist /tmp/wheels

Each package is built by ``python -m hatchling build -t wheel`` run in its own
folder, so a wheel is exactly what ``pip install packages/<name>`` would build.
Older wheels of the same distribution are removed from the output folder, so it
never holds two versions of one distribution.

Tests use :func:`build_wheels` to build into a temporary folder.
"""

import argparse
import pathlib
import shutil
import subprocess
import sys
import tempfile

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGES_DIR = REPO_ROOT / "packages"
TEMPLATE_DIR = REPO_ROOT / "tools" / "plugin_template"


class BuildError(RuntimeError):
    """hatchling failed to build a package."""


def package_dirs(root=REPO_ROOT):
    """Returns the folders under ``<root>/packages`` that hold a pyproject.toml."""
    return sorted(
        path.parent for path in (pathlib.Path(root) / "packages").glob("*/pyproject.toml")
    )


def wheel_distribution(wheel_path):
    """Returns the normalized distribution part of a wheel file name."""
    return pathlib.Path(wheel_path).name.split("-")[0].lower()


def build_wheels(dist_dir, packages=None, with_template=False, root=REPO_ROOT):
    """Builds wheels into ``dist_dir`` and returns their paths.

    Args:
        dist_dir: Output folder; created if missing.
        packages: Package folder names under ``<root>/packages`` (e.g.
            ``["core", "forecasting"]``); every package when ``None``.
        with_template: Also build ``tools/plugin_template``.
        root: The repository root.

    Returns:
        The built wheel paths, in the order the packages were given.

    Raises:
        BuildError: A package failed to build; the message holds hatchling's output.
        ValueError: A requested package folder does not exist.
    """
    root = pathlib.Path(root)
    dist_dir = pathlib.Path(dist_dir).resolve()
    dist_dir.mkdir(parents=True, exist_ok=True)
    available = {path.name: path for path in package_dirs(root)}
    if packages is None:
        sources = list(available.values())
    else:
        missing = [name for name in packages if name not in available]
        if missing:
            raise ValueError(
                f"build_wheels: no package folder {missing} under {root / 'packages'}; "
                f"available: {sorted(available)}"
            )
        sources = [available[name] for name in packages]
    if with_template:
        sources.append(root / "tools" / "plugin_template")

    with tempfile.TemporaryDirectory(prefix="dl-losses-build-") as scratch:
        # Every package builds into its own folder, so the new wheel's name is
        # known without parsing hatchling's output; the builds run side by side.
        jobs = []
        for index, source in enumerate(sources):
            out_dir = pathlib.Path(scratch) / str(index)
            process = subprocess.Popen(
                [sys.executable, "-m", "hatchling", "build", "-t", "wheel", "-d", str(out_dir)],
                cwd=source,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            jobs.append((source, out_dir, process))
        built = []
        failures = []
        for source, out_dir, process in jobs:
            output, _ = process.communicate()
            wheels = sorted(out_dir.glob("*.whl")) if out_dir.is_dir() else []
            if process.returncode != 0 or len(wheels) != 1:
                failures.append(f"{source}: hatchling exited {process.returncode}\n{output}")
                continue
            built.append(_move_into(wheels[0], dist_dir))
        if failures:
            raise BuildError("build_wheels: " + "\n".join(failures))
    return built


def _move_into(wheel, dist_dir):
    distribution = wheel_distribution(wheel)
    for old in dist_dir.glob("*.whl"):
        if wheel_distribution(old) == distribution:
            old.unlink()
    target = dist_dir / wheel.name
    shutil.move(str(wheel), target)
    return target


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "packages",
        nargs="*",
        help="package folder names under packages/ (default: all)",
    )
    parser.add_argument(
        "--dist",
        type=pathlib.Path,
        default=REPO_ROOT / "dist",
        help="output folder (default: dist/ at the repository root)",
    )
    parser.add_argument(
        "--with-template",
        action="store_true",
        help="also build the third-party plugin template in tools/plugin_template",
    )
    args = parser.parse_args(argv)
    try:
        built = build_wheels(
            args.dist, packages=args.packages or None, with_template=args.with_template
        )
    except (BuildError, ValueError) as error:
        print(error, file=sys.stderr)
        return 1
    for wheel in built:
        print(f"built {wheel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
