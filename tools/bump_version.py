"""Sets one new version on every distribution of the repository.

Usage::

    python tools/bump_version.py 0.2.0

Rewrites, in every ``packages/*/pyproject.toml``:

- the ``[project]`` version of core, each family and the meta package;
- each ``dl-techniques-losses-core~=<old>`` dependency to ``~=<new>``;
- each ``dl-techniques-losses-...==<old>`` pin of the meta package to ``==<new>``;

and the plugin template's ``~=`` core dependency (the template keeps its own
version: it stands for a third-party project). The files are edited in place,
keeping their layout and comments. ``tools/generate.py`` then rewrites the
generated files (the meta package's family extras pin each family's version),
and the pyproject checks of ``tools/check_consistency.py`` run; the exit status
is theirs.
"""

import argparse
import importlib.util
import pathlib
import re
import sys

from packaging.version import InvalidVersion, Version

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent

_TABLE_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_VERSION_LINE = re.compile(r'^(\s*version\s*=\s*)(["\'])[^"\']*\2')
_OUR_REQUIREMENT = re.compile(
    r"""(["'])(dl-techniques-losses(?:-[A-Za-z0-9_-]+)?(?:\[[^\]]*\])?)\s*(==|~=)\s*[^"';,\s]+\1"""
)


def _load_tool(name):
    path = pathlib.Path(__file__).resolve().parent / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_dl_losses_tools_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def validate_version(text):
    """Returns ``text`` if it is a ``major.minor.patch`` version, else raises ValueError.

    Three release numbers keep ``~=<version>`` meaning "this minor series".
    """
    try:
        version = Version(text)
    except InvalidVersion:
        raise ValueError(f"bump_version: {text!r} is not a valid version") from None
    if len(version.release) != 3 or str(version) != text:
        raise ValueError(
            f"bump_version: the version must be written as major.minor.patch in canonical "
            f"form (e.g. 0.2.0 or 0.2.0rc1); got {text!r}"
        )
    return text


def rewrite_pyproject(text, new_version, set_project_version=True):
    """Returns ``text`` with the project version and our requirement pins set.

    Args:
        text: The content of a pyproject.toml.
        new_version: The version to write.
        set_project_version: Rewrite ``version`` in the ``[project]`` table.
    """
    lines = text.splitlines(keepends=True)
    table = None
    for index, line in enumerate(lines):
        header = _TABLE_HEADER.match(line)
        if header:
            table = header.group(1)
            continue
        if set_project_version and table == "project":
            lines[index] = _VERSION_LINE.sub(
                lambda match: f"{match.group(1)}{match.group(2)}{new_version}{match.group(2)}",
                line,
                count=1,
            )
    return _OUR_REQUIREMENT.sub(
        lambda match: (
            f"{match.group(1)}{match.group(2)}{match.group(3)}{new_version}{match.group(1)}"
        ),
        "".join(lines),
    )


def bump(new_version, root=REPO_ROOT):
    """Writes ``new_version`` into every pyproject.toml; returns the changed files."""
    validate_version(new_version)
    root = pathlib.Path(root)
    targets = [(path, True) for path in sorted((root / "packages").glob("*/pyproject.toml"))]
    template = root / "tools" / "plugin_template" / "pyproject.toml"
    if template.is_file():
        targets.append((template, False))
    changed = []
    for path, is_ours in targets:
        old = path.read_text()
        new = rewrite_pyproject(old, new_version, set_project_version=is_ours)
        if new != old:
            path.write_text(new)
            changed.append(path)
    return changed


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("version", help="the new version, e.g. 0.2.0")
    parser.add_argument("--root", type=pathlib.Path, default=REPO_ROOT, help="repository root")
    args = parser.parse_args(argv)
    try:
        changed = bump(args.version, root=args.root)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    generate = _load_tool("generate")
    try:
        changed += generate.write(args.root)
    except generate.GenerationError as error:
        print(f"FAIL {error}", file=sys.stderr)
        return 1
    for path in sorted(set(changed)):
        print(f"updated {path}")
    _, results = _load_tool("check_consistency").check_static(args.root)
    problems = [problem for found in results.values() for problem in found]
    for problem in problems:
        print(f"FAIL {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"every package is at {args.version}; run tools/check_consistency.py for the full check")
    return 0


if __name__ == "__main__":
    sys.exit(main())
