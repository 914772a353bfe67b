"""Writes the files that repeat the families' public names, from their entry points.

Usage::

    python tools/generate.py          # rewrites every generated file
    python tools/generate.py --check  # exits 1 naming each file that differs

The public names are written once: the ``[project.entry-points."dl_techniques.losses"]``
table of each ``packages/<family>/pyproject.toml``. From those tables (and each
family's version and description) this tool writes:

- core's ``FAMILY_NAMES`` in ``dl_techniques/losses/core/catalog.py``;
- the family extras and ``all`` of ``packages/meta/pyproject.toml``;
- the table of losses by family in ``README.md``;
- the table of family extras in ``packages/meta/README.md``;
- the ``__all__`` of each family's ``__init__.py``.

Each generated part of a hand-written file sits between a ``generated:`` marker
line and an ``end generated`` line; ``__all__`` is found as the module's
assignment to it. Everything outside those parts is left as it is.
"""

import argparse
import ast
import dataclasses
import difflib
import importlib.util
import pathlib
import sys
import types
from functools import partial

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
CATALOG_PATH = pathlib.Path("packages/core/src/dl_techniques/losses/core/catalog.py")
META_PYPROJECT_PATH = pathlib.Path("packages/meta/pyproject.toml")
META_README_PATH = pathlib.Path("packages/meta/README.md")
README_PATH = pathlib.Path("README.md")
# Kept short: ruff formats catalog.py, so the marker lines must fit in 100 columns.
_SOURCE = "from the families' entry points by tools/generate.py"
CATALOG_MARKERS = (f"# generated: FAMILY_NAMES, {_SOURCE}", "# end generated")
META_EXTRAS_MARKERS = (f"# generated: family extras, {_SOURCE}", "# end generated")
LOSSES_TABLE_MARKERS = (f"<!-- generated: losses table, {_SOURCE} -->", "<!-- end generated -->")
EXTRAS_TABLE_MARKERS = (f"<!-- generated: extras table, {_SOURCE} -->", "<!-- end generated -->")
ALL_COMMENT = "# The entry points of pyproject.toml, written by tools/generate.py."
LINE_LENGTH = 100


class GenerationError(Exception):
    """The sources cannot be turned into the generated files (a marker or a file is missing)."""


def _load_tool(name: str) -> types.ModuleType:
    path = pathlib.Path(__file__).resolve().parent / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_dl_losses_tools_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclasses.dataclass(frozen=True)
class Family:
    """What the generated files say about one family, read from its pyproject.toml.

    Attributes:
        name: The import name, e.g. ``"self_supervised"``.
        distribution: The distribution name.
        version: The family's version, which its meta-package extra pins.
        description: The ``[project]`` description.
        init_path: The family's ``__init__.py``.
        public_names: The entry-point names of group ``dl_techniques.losses``, in file order.
    """

    name: str
    distribution: str
    version: str
    description: str
    init_path: pathlib.Path
    public_names: tuple[str, ...]

    @property
    def extra(self) -> str:
        """The meta-package extra that installs the family."""
        return self.name.replace("_", "-")

    @property
    def pin(self) -> str:
        """The requirement by which the meta package installs the family."""
        return f"{self.distribution}=={self.version}"

    @property
    def summary(self) -> str:
        """The description after its ``<Family> losses for Keras 3:`` lead, without the stop."""
        _, colon, rest = self.description.partition(": ")
        return (rest if colon else self.description).rstrip(".")


def read_families(root: pathlib.Path = REPO_ROOT) -> list[Family]:
    """Reads every family package under ``root/packages``, sorted by family name.

    Raises:
        GenerationError: When one public name is declared by two families.
    """
    workspace = _load_tool("workspace")
    families = []
    owner = {}
    for package in workspace.load_packages(root, with_template=False):
        if package.role != "family":
            continue
        names = tuple(package.entry_points())
        for name in names:
            if name in owner:
                raise GenerationError(
                    f"{package.label}: entry point {name!r} is also declared by "
                    f"{owner[name]}; a public name belongs to one family"
                )
            owner[name] = package.label
        module_folder = package.path / "src" / "dl_techniques" / "losses" / package.family
        families.append(
            Family(
                name=package.family,
                distribution=package.name,
                version=package.version,
                description=str(package.project.get("description", "")),
                init_path=module_folder / "__init__.py",
                public_names=names,
            )
        )
    return sorted(families, key=lambda family: family.name)


def render_catalog(families: list[Family]) -> str:
    """The ``FAMILY_NAMES`` assignment of core's catalog, formatted as ruff formats it."""
    if not families:
        return "FAMILY_NAMES: dict[str, tuple[str, ...]] = {}\n"
    lines = ["FAMILY_NAMES: dict[str, tuple[str, ...]] = {"]
    for family in families:
        lines.append(f'    "{family.name}": (')
        lines += [f'        "{name}",' for name in family.public_names]
        lines.append("    ),")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render_meta_extras(families: list[Family]) -> str:
    """One extra per family pinning it with ``==``, then ``all`` pinning every family."""
    lines = [f'{family.extra} = ["{family.pin}"]' for family in families]
    lines.append("all = [")
    lines += [f'    "{family.pin}",' for family in families]
    lines.append("]")
    return "\n".join(lines) + "\n"


def render_losses_table(families: list[Family]) -> str:
    """The README's table of the public names of each family, between blank lines."""
    rows = ["| family | losses |", "| --- | --- |"]
    for family in families:
        names = ", ".join(f"`{name}`" for name in family.public_names)
        rows.append(f"| {family.extra} | {names} |")
    return "\n" + "\n".join(rows) + "\n\n"


def render_extras_table(families: list[Family]) -> str:
    """The meta README's table of family extras and what each installs, between blank lines."""
    rows = ["| extra | installs |", "| --- | --- |"]
    for family in families:
        rows.append(f"| `{family.extra}` | `{family.distribution}`: {family.summary} |")
    rows.append("| `all` | every family above |")
    return "\n" + "\n".join(rows) + "\n\n"


def render_all(public_names: tuple[str, ...]) -> str:
    """A family's ``__all__`` statement with its comment, formatted as ruff formats it."""
    quoted = [f'"{name}"' for name in sorted(public_names)]
    one_line = f"__all__ = [{', '.join(quoted)}]"
    if len(one_line) <= LINE_LENGTH:
        return f"{ALL_COMMENT}\n{one_line}\n"
    body = "".join(f"    {name},\n" for name in quoted)
    return f"{ALL_COMMENT}\n__all__ = [\n{body}]\n"


def replace_between(text: str, markers: tuple[str, str], body: str, path: pathlib.Path) -> str:
    """Returns ``text`` with the lines between its two marker lines replaced by ``body``.

    Raises:
        GenerationError: When a marker line is missing, naming the file and the line.
    """
    begin, end = markers
    lines = text.splitlines(keepends=True)
    stripped = [line.strip() for line in lines]
    if begin not in stripped:
        raise GenerationError(
            f"{path}: no line {begin!r}; put it, and {end!r} after it, where the generated "
            "text belongs"
        )
    start = stripped.index(begin)
    if end not in stripped[start + 1 :]:
        raise GenerationError(f"{path}: no line {end!r} after {begin!r}")
    stop = stripped.index(end, start + 1)
    return "".join(lines[: start + 1]) + body + "".join(lines[stop:])


def replace_all(text: str, statement: str, path: pathlib.Path) -> str:
    """Returns a module's source with its ``__all__`` assignment (and comment) replaced.

    A module without ``__all__`` gets ``statement`` appended after a blank line.
    """
    try:
        tree = ast.parse(text)
    except SyntaxError as error:
        raise GenerationError(f"{path}: cannot be parsed: {error}") from None
    node = next(
        (
            node
            for node in tree.body
            if isinstance(node, ast.Assign | ast.AnnAssign)
            and any(
                isinstance(target, ast.Name) and target.id == "__all__"
                for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
            )
        ),
        None,
    )
    if node is None:
        return text.rstrip("\n") + "\n\n" + statement
    lines = text.splitlines(keepends=True)
    start = node.lineno - 1
    if start > 0 and lines[start - 1].strip() == ALL_COMMENT:
        start -= 1
    return "".join(lines[:start]) + statement + "".join(lines[node.end_lineno :])


def generated_files(root: pathlib.Path = REPO_ROOT) -> dict[pathlib.Path, tuple[str, str]]:
    """Returns ``{path: (current text, generated text)}`` for every generated file.

    Raises:
        GenerationError: When a file or one of its marker lines is missing.
    """
    root = pathlib.Path(root)
    families = read_families(root)
    sections = {
        CATALOG_PATH: (CATALOG_MARKERS, render_catalog(families)),
        META_PYPROJECT_PATH: (META_EXTRAS_MARKERS, render_meta_extras(families)),
        README_PATH: (LOSSES_TABLE_MARKERS, render_losses_table(families)),
        META_README_PATH: (EXTRAS_TABLE_MARKERS, render_extras_table(families)),
    }
    rewrites = [
        (
            root / relative,
            partial(replace_between, markers=markers, body=body, path=root / relative),
        )
        for relative, (markers, body) in sections.items()
    ]
    rewrites += [
        (
            family.init_path,
            partial(replace_all, statement=render_all(family.public_names), path=family.init_path),
        )
        for family in families
    ]
    files = {}
    for path, rewrite in rewrites:
        if not path.is_file():
            raise GenerationError(f"{path}: missing; it is one of the generated files")
        current = path.read_text()
        files[path] = (current, rewrite(current))
    return files


def write(root: pathlib.Path = REPO_ROOT) -> list[pathlib.Path]:
    """Rewrites the generated files that differ; returns them."""
    changed = []
    for path, (current, generated) in generated_files(root).items():
        if generated != current:
            path.write_text(generated)
            changed.append(path)
    return changed


def drifted(root: pathlib.Path = REPO_ROOT) -> dict[pathlib.Path, str]:
    """Returns ``{path: unified diff from its text to the generated text}`` of files that differ."""
    root = pathlib.Path(root)
    diffs = {}
    for path, (current, generated) in generated_files(root).items():
        if generated != current:
            name = str(path.relative_to(root))
            diffs[path] = "".join(
                difflib.unified_diff(
                    current.splitlines(keepends=True),
                    generated.splitlines(keepends=True),
                    fromfile=f"{name} (in the tree)",
                    tofile=f"{name} (generated)",
                )
            )
    return diffs


def main(argv: list[str] | None = None) -> int:
    """Runs the command line; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=pathlib.Path, default=REPO_ROOT, help="repository root")
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if a generated file differs"
    )
    args = parser.parse_args(argv)
    root = args.root.resolve()
    try:
        if not args.check:
            for path in write(root):
                print(f"updated {path.relative_to(root)}")
            return 0
        diffs = drifted(root)
    except GenerationError as error:
        print(f"generate: {error}", file=sys.stderr)
        return 2
    for path, diff in diffs.items():
        print(f"DRIFT {path.relative_to(root)}: differs from the entry points it is generated from")
        print(diff)
    if diffs:
        print(
            f"{len(diffs)} generated file(s) drifted; edit the entry points in "
            "packages/<family>/pyproject.toml, not these files, then run: python tools/generate.py",
            file=sys.stderr,
        )
        return 1
    print("ok   every generated file matches the families' entry points")
    return 0


if __name__ == "__main__":
    sys.exit(main())
