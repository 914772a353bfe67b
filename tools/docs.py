"""Builds the documentation site and checks its links offline; also the site's mkdocs hooks.

Usage::

    python tools/docs.py               # strict build into a temporary folder, then the link check
    python tools/docs.py --site DIR    # keep the built site in DIR
    mkdocs serve                       # live preview; mkdocs.yml runs the same hooks

``mkdocs.yml`` names this file under ``hooks:``, so every build writes the same
generated pages, none of which is kept in the repository:

- ``losses/<family>/<Name>.md`` for every entry point of a family's
  ``pyproject.toml``: the object's docstring (read statically by mkdocstrings,
  no Keras import), what its tests compare it with (``docs/verified/<family>.toml``)
  and the benchmark cases that time it (``tools/bench_cases/``), with the
  tables those cases printed in the runs stored in ``docs/benchmarks/``;
- ``losses/<family>/index.md``, the family's README, and ``losses/index.md``;
- ``getting-started.md`` from the README's Quickstart, Installation and Usage
  sections, and ``plugin-guide.md`` from its "Writing a plugin" section and the
  plugin template's README.

The link check reads every built HTML page and fails on an internal ``href`` or
``src`` that names no file of the site, or an anchor that the page it names
does not have. External links are not fetched; each must be ``https``.
"""

import argparse
import ast
import dataclasses
import html.parser
import os
import pathlib
import posixpath
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse

TOOLS_DIR = pathlib.Path(__file__).resolve().parent
if str(TOOLS_DIR) not in sys.path:
    sys.path.insert(0, str(TOOLS_DIR))

from workspace import REPO_ROOT, load_packages, tomllib  # noqa: E402

README_PATH = REPO_ROOT / "README.md"
TEMPLATE_README_PATH = REPO_ROOT / "tools" / "plugin_template" / "README.md"
BENCH_CASES_DIR = REPO_ROOT / "tools" / "bench_cases"
VERIFIED_DIR = REPO_ROOT / "docs" / "verified"
BENCH_RESULTS_DIR = REPO_ROOT / "docs" / "benchmarks"
GETTING_STARTED_SECTIONS = ("Quickstart", "Installation", "Usage")
PLUGIN_SECTION = "Writing a plugin"
BENCH_COMMAND = "KERAS_BACKEND=jax python tools/bench.py"


class DocsError(Exception):
    """A source of the generated pages is missing or says something untrue."""


@dataclasses.dataclass(frozen=True)
class Entry:
    """One public name of a family, as its entry point declares it.

    Attributes:
        name: The public name.
        family: The family import name.
        target: The entry point's ``module:attribute``.
    """

    name: str
    family: str
    target: str

    @property
    def dotted_path(self) -> str:
        """The object's import path, as mkdocstrings takes it."""
        return self.target.replace(":", ".")

    @property
    def page(self) -> str:
        """The page's path in the site."""
        return f"losses/{self.family}/{self.name}.md"


@dataclasses.dataclass(frozen=True)
class FamilyDocs:
    """What the site says about one family.

    Attributes:
        name: The family import name.
        distribution: The family's distribution name.
        package_dir: The family's folder under ``packages/``.
        entries: Its public names, in the order of its entry points.
    """

    name: str
    distribution: str
    package_dir: pathlib.Path
    entries: tuple[Entry, ...]


@dataclasses.dataclass(frozen=True)
class BenchCase:
    """A case of ``tools/bench.py``, read from its module without importing it.

    Attributes:
        name: The case name that ``tools/bench.py`` takes.
        summary: What the case times against what.
        names: The public names its run function (or a helper it calls) uses.
    """

    name: str
    summary: str
    names: frozenset[str]


def read_families(root: pathlib.Path = REPO_ROOT) -> list[FamilyDocs]:
    """The families of the repository, sorted by name, with their entry points."""
    families = []
    for package in load_packages(root, with_template=False):
        if package.role != "family":
            continue
        entries = tuple(
            Entry(name, package.family, target) for name, target in package.entry_points().items()
        )
        families.append(FamilyDocs(package.family, package.name, package.path, entries))
    return sorted(families, key=lambda family: family.name)


def _module_file(family: FamilyDocs, module: str) -> pathlib.Path:
    return family.package_dir / "src" / (module.replace(".", "/") + ".py")


def docstring_summary(family: FamilyDocs, entry: Entry) -> str:
    """The first line of the object's docstring, read from its source file."""
    module, _, attribute = entry.target.partition(":")
    tree = ast.parse(_module_file(family, module).read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef) and node.name == attribute:
            docstring = ast.get_docstring(node)
            if not docstring:
                raise DocsError(f"{entry.target}: the object has no docstring")
            return docstring.strip().splitlines()[0]
    raise DocsError(f"{entry.target}: no class or function {attribute!r} in {module}")


def read_bench_cases(public_names: set[str], cases_dir: pathlib.Path = BENCH_CASES_DIR):
    """Every ``Case(...)`` of ``tools/bench_cases/*.py`` with the public names it times."""
    cases = []
    for path in sorted(cases_dir.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        functions = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
        for node in ast.walk(tree):
            if not (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "Case"
                and len(node.args) >= 3
            ):
                continue
            name, summary, run = node.args[:3]
            if not (
                isinstance(name, ast.Constant)
                and isinstance(summary, ast.Constant)
                and isinstance(run, ast.Name)
            ):
                raise DocsError(f"{path.name}: a Case whose name, summary or run is not a literal")
            used = _names_used(functions, run.id)
            cases.append(BenchCase(name.value, summary.value, frozenset(used & public_names)))
    return cases


@dataclasses.dataclass(frozen=True)
class BenchRun:
    """One stored run of ``tools/bench.py``: ``docs/benchmarks/<label>.txt``.

    The file starts with ``#`` lines that say where, when and how it was run,
    then holds the command's output, where each case starts with a line
    ``== <case>: ...``.

    Attributes:
        label: The file's stem, e.g. ``cpu-jax``.
        provenance: The ``#`` lines, without the ``#``.
        tables: ``{case name: its printed output}``, every run of the case.
    """

    label: str
    provenance: str
    tables: dict[str, str]


def read_bench_runs(results_dir: pathlib.Path = BENCH_RESULTS_DIR) -> list[BenchRun]:
    """The stored runs of ``tools/bench.py``, sorted by label."""
    runs = []
    for path in sorted(results_dir.glob("*.txt")):
        provenance, tables, case = [], {}, None
        for line in path.read_text(encoding="utf-8").splitlines():
            if case is None and line.startswith("#"):
                provenance.append(line.lstrip("#").strip())
                continue
            started = re.match(r"^== ([\w-]+):", line)
            if started:
                # A case run twice (other sizes) keeps both tables, in order.
                case = started.group(1)
                tables[case] = tables[case] + "\n" if case in tables else ""
            elif case is not None:
                tables[case] += line + "\n"
        if not provenance:
            raise DocsError(f"{path.name}: a stored run must start with # lines saying how it ran")
        runs.append(BenchRun(path.stem, " ".join(provenance), tables))
    return runs


def _names_used(functions: dict, start: str) -> set[str]:
    """The names a module function reads, with those of the module functions it reaches."""
    seen, pending, names = set(), [start], set()
    while pending:
        function = functions.get(pending.pop())
        if function is None or function.name in seen:
            continue
        seen.add(function.name)
        for node in ast.walk(function):
            if isinstance(node, ast.Name):
                names.add(node.id)
                if node.id in functions:
                    pending.append(node.id)
    return names


def read_verified(family: FamilyDocs, verified_dir: pathlib.Path = VERIFIED_DIR) -> dict:
    """``{name: {"against": str, "tests": [file, ...]}}`` of one family, checked against its tests.

    A row may say ``reached_as``: the text by which its tests reach an object
    they never name (``".state"``), which the check then looks for instead.

    Raises:
        DocsError: When a public name has no entry, an entry names no public
            name, or a test file it cites is missing or never names the object.
    """
    path = verified_dir / f"{family.name}.toml"
    label = f"{verified_dir.parent.name}/{verified_dir.name}/{path.name}"
    if not path.exists():
        raise DocsError(f"{label} is missing")
    table = tomllib.loads(path.read_text(encoding="utf-8"))
    names = {entry.name for entry in family.entries}
    problems = [f"{label}: no entry for {name}" for name in sorted(names - set(table))]
    problems += [f"{label}: {name} is not a public name" for name in sorted(set(table) - names)]
    for name, row in sorted(table.items()):
        if not row.get("against") or not row.get("tests"):
            problems.append(f"{label}: {name} needs 'against' and 'tests'")
            continue
        for test in row["tests"]:
            test_path = family.package_dir / "tests" / test
            if not test_path.exists():
                problems.append(f"{label}: {name} cites {test}, which does not exist")
            elif row.get("reached_as", name) not in test_path.read_text(encoding="utf-8"):
                reached = row.get("reached_as", name)
                problems.append(f"{label}: {name} cites {test}, which never has {reached!r}")
    if problems:
        raise DocsError("\n".join(problems))
    return table


def readme_sections(text: str, titles) -> dict[str, str]:
    """``{title: markdown}`` of the level-two sections of a README, subsections included."""
    sections, title, lines, fenced = {}, None, [], False
    for line in [*text.splitlines(), "## "]:
        if line.startswith("```"):
            fenced = not fenced
        if not fenced and line.startswith("## "):
            if title in titles:
                sections[title] = "\n".join(lines).strip() + "\n"
            title, lines = line[3:].strip(), []
        else:
            lines.append(line)
    missing = [title for title in titles if title not in sections]
    if missing:
        raise DocsError(f"README.md has no section {', '.join(map(repr, missing))}")
    return sections


_LINK = re.compile(r"\]\(([^)\s]+)\)")


def site_links(markdown: str, source: str, page: str, pages: dict[str, str]) -> str:
    """Points the relative links of a README at the site's pages, or at the repository file.

    Args:
        markdown: The README text.
        source: Its path in the repository, e.g. ``"packages/vision/README.md"``.
        page: The path in the site of the page it becomes.
        pages: ``{repository file: site page}`` of the files that have a page.
    """

    def replace(match):
        target = match.group(1)
        if urllib.parse.urlsplit(target).scheme or target.startswith("#"):
            return match.group(0)
        path, _, anchor = target.partition("#")
        file = posixpath.normpath(posixpath.join(posixpath.dirname(source), path))
        if file not in pages:
            raise DocsError(f"{source}: the link {target!r} names a file the site has no page for")
        relative = posixpath.relpath(pages[file], posixpath.dirname(page))
        return f"]({relative}{'#' + anchor if anchor else ''})"

    return _LINK.sub(replace, markdown)


def _shift_headings(markdown: str, levels: int) -> str:
    out, fenced = [], False
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        if not fenced and re.match(r"#{1,5} ", line):
            line = "#" * levels + line
        out.append(line)
    return "\n".join(out) + "\n"


def loss_page(
    family: FamilyDocs,
    entry: Entry,
    verified: dict,
    cases: list[BenchCase],
    runs: list[BenchRun],
) -> str:
    """The markdown of one public name's page."""
    row = verified[entry.name]
    tests = ", ".join(f"`packages/{family.package_dir.name}/tests/{test}`" for test in row["tests"])
    lines = [
        f"# {entry.name}",
        "",
        f"`from dl_techniques.losses import {entry.name}` · family [{family.name}](index.md) · "
        f"`pip install {family.distribution}`",
        "",
        f"::: {entry.dotted_path}",
        "",
        "## Verified against",
        "",
        " ".join(row["against"].split()),
        "",
        f"Tests: {tests}.",
        "",
        "## Benchmark",
        "",
    ]
    timed = [case for case in cases if entry.name in case.names]
    if not timed:
        lines.append("No case of `tools/bench.py` times it.")
    for case in timed:
        lines += [
            f"### `{case.name}`",
            "",
            f"{case.summary}. Reproduce with",
            "",
            "```bash",
            f"{BENCH_COMMAND} {case.name}",
            "```",
            "",
        ]
        stored = [run for run in runs if case.name in run.tables]
        if not stored:
            lines += ["No stored run of this case.", ""]
        for run in stored:
            lines += [
                f"`{run.label}` ({run.provenance}):",
                "",
                "```text",
                run.tables[case.name].strip("\n"),
                "```",
                "",
            ]
    return "\n".join(lines) + "\n"


def family_index(family: FamilyDocs, pages: dict[str, str]) -> str:
    """The family page: its README, then a table of its public names."""
    source = f"packages/{family.package_dir.name}/README.md"
    page = f"losses/{family.name}/index.md"
    readme = (REPO_ROOT / source).read_text(encoding="utf-8")
    lines = [site_links(readme, source, page, pages), "## Public names", ""]
    lines += ["| name | summary |", "| --- | --- |"]
    for entry in family.entries:
        lines.append(f"| [`{entry.name}`]({entry.name}.md) | {docstring_summary(family, entry)} |")
    return "\n".join(lines) + "\n"


def losses_index(families: list[FamilyDocs]) -> str:
    """The page listing every family and its public names."""
    lines = ["# The losses by family", ""]
    for family in families:
        lines += [f"## [{family.name}]({family.name}/index.md)", ""]
        lines += [f"`pip install {family.distribution}`", ""]
        lines += ["| name | summary |", "| --- | --- |"]
        for entry in family.entries:
            summary = docstring_summary(family, entry)
            lines.append(f"| [`{entry.name}`]({family.name}/{entry.name}.md) | {summary} |")
        lines.append("")
    return "\n".join(lines)


def generated_pages(root: pathlib.Path = REPO_ROOT) -> dict[str, str]:
    """``{site path: markdown}`` of every generated page."""
    families = read_families(root)
    public_names = {entry.name for family in families for entry in family.entries}
    cases = read_bench_cases(public_names)
    runs = read_bench_runs()
    pages = {"README.md": "getting-started.md"}
    pages |= {
        f"packages/{f.package_dir.name}/README.md": f"losses/{f.name}/index.md" for f in families
    }
    readme = README_PATH.read_text(encoding="utf-8")
    sections = readme_sections(readme, (*GETTING_STARTED_SECTIONS, PLUGIN_SECTION))
    generated = {
        "getting-started.md": site_links(
            "# Getting started\n\n"
            + "\n".join(f"## {title}\n\n{sections[title]}" for title in GETTING_STARTED_SECTIONS),
            "README.md",
            "getting-started.md",
            pages,
        ),
        "plugin-guide.md": site_links(
            f"# {PLUGIN_SECTION}\n\n{sections[PLUGIN_SECTION]}\n"
            + "## The plugin template\n\n"
            + _shift_headings(TEMPLATE_README_PATH.read_text(encoding="utf-8"), 2),
            "README.md",
            "plugin-guide.md",
            pages,
        ),
        "losses/index.md": losses_index(families),
    }
    for family in families:
        verified = read_verified(family)
        generated[f"losses/{family.name}/index.md"] = family_index(family, pages)
        for entry in family.entries:
            generated[entry.page] = loss_page(family, entry, verified, cases, runs)
    return generated


def navigation(root: pathlib.Path = REPO_ROOT) -> list:
    """The site's navigation: the generated pages between the hand-written ones."""
    families = read_families(root)
    losses: list = ["losses/index.md"]
    for family in families:
        pages = [f"losses/{family.name}/index.md"]
        pages += [{entry.name: entry.page} for entry in family.entries]
        losses.append({family.name: pages})
    return [
        {"Home": "index.md"},
        {"Getting started": "getting-started.md"},
        {"Losses": losses},
        {"Core": "core.md"},
        {"Writing a plugin": "plugin-guide.md"},
    ]


# mkdocs hooks (mkdocs.yml: hooks).


def on_config(config):
    config["nav"] = navigation()
    return config


def on_files(files, config):
    from mkdocs.structure.files import File

    for path, markdown in generated_pages().items():
        files.append(File.generated(config, path, content=markdown))
    return files


# The offline link check.


class _PageLinks(html.parser.HTMLParser):
    """The ids and the href/src values of one HTML page."""

    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key in ("id", "name") and value and tag != "meta":
                self.ids.add(value)
            if key in ("href", "src") and value and tag != "base":
                self.links.append(value)


def check_links(site: pathlib.Path) -> tuple[list[str], set[str]]:
    """Checks every link of the built site without the network.

    Returns:
        The problems found, and the set of external links (not fetched).
    """
    pages = {}
    for path in sorted(site.rglob("*.html")):
        parser = _PageLinks()
        parser.feed(path.read_text(encoding="utf-8"))
        pages[path] = parser
    problems, external = [], set()
    for path, parser in pages.items():
        page = path.relative_to(site).as_posix()
        for link in parser.links:
            parts = urllib.parse.urlsplit(link)
            if parts.scheme or link.startswith("//"):
                if parts.scheme != "https":
                    problems.append(f"{page}: external link {link!r} is not https")
                external.add(link)
                continue
            target = path
            if parts.path:
                # Absolute paths (the 404 page's) start at the site's root.
                base = site if parts.path.startswith("/") else path.parent
                target = (base / urllib.parse.unquote(parts.path).lstrip("/")).resolve()
                if target.is_dir():
                    target = target / "index.html"
                if site.resolve() not in target.parents or not target.exists():
                    problems.append(f"{page}: {link!r} names no file of the site")
                    continue
            if parts.fragment and target.suffix == ".html":
                ids = pages[target.resolve()].ids if target.resolve() in pages else set()
                if target == path:
                    ids = parser.ids
                if urllib.parse.unquote(parts.fragment) not in ids:
                    problems.append(f"{page}: {link!r} names an anchor the page lacks")
    return problems, external


def build(site: pathlib.Path) -> int:
    """Builds the site strictly into ``site`` and checks its links; returns an exit status."""
    started = time.perf_counter()
    command = [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet"]
    command += ["--config-file", str(REPO_ROOT / "mkdocs.yml"), "--site-dir", str(site)]
    # Material's notice about MkDocs 2 is not a warning of this build.
    environment = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    if subprocess.run(command, cwd=REPO_ROOT, env=environment).returncode:
        print("docs: the strict build failed", flush=True)
        return 1
    built = time.perf_counter()
    problems, external = check_links(site)
    for problem in problems:
        print(f"docs: {problem}")
    pages = len(list(site.rglob("*.html")))
    print(
        f"docs: {pages} HTML pages built in {built - started:.1f}s, links checked in "
        f"{time.perf_counter() - built:.1f}s, {len(external)} external links not fetched, "
        f"{len(problems)} problem(s)",
        flush=True,
    )
    return 1 if problems else 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--site", type=pathlib.Path, help="keep the built site in this folder")
    arguments = parser.parse_args()
    try:
        generated_pages()
    except DocsError as error:
        print(f"docs: {error}", flush=True)
        return 1
    if arguments.site:
        return build(arguments.site.resolve())
    with tempfile.TemporaryDirectory(prefix="dl-losses-site-") as site:
        return build(pathlib.Path(site))


if __name__ == "__main__":
    sys.exit(main())
