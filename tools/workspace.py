"""Reads the distributions under ``packages/`` (and the plugin template) from their pyproject.toml.

The tools share this reading so that they agree on what a family is: every
distribution named ``dl-techniques-losses-<family>`` other than core.
"""

import dataclasses
import pathlib
import re

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from packaging.requirements import Requirement

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
ENTRY_POINT_GROUP = "dl_techniques.losses"
META_DISTRIBUTION = "dl-techniques-losses"
CORE_DISTRIBUTION = f"{META_DISTRIBUTION}-core"
TEMPLATE_PATH = pathlib.Path("tools/plugin_template")


def normalize(name: str) -> str:
    """Normalizes a distribution name the way wheel file names do."""
    return re.sub(r"[-_.]+", "_", name).lower()


def family_of(distribution: str) -> str | None:
    """Returns the import name of the family a distribution name stands for.

    Args:
        distribution: A distribution name, e.g. ``"dl-techniques-losses-self-supervised"``.

    Returns:
        The family, e.g. ``"self_supervised"``, or ``None`` for core, the meta
        package and any distribution outside the project.
    """
    prefix = f"{META_DISTRIBUTION}-"
    if not distribution.startswith(prefix) or distribution == CORE_DISTRIBUTION:
        return None
    return distribution[len(prefix) :].replace("-", "_")


@dataclasses.dataclass
class Package:
    """One distribution of the repository, read from its pyproject.toml.

    Attributes:
        path: The package folder.
        name: The distribution name.
        version: The declared version.
        role: ``"core"``, ``"family"``, ``"meta"``, ``"template"`` or ``"unknown"``.
        family: The family import name for a family package, else ``None``.
        project: The ``[project]`` table.
        tool: The ``[tool]`` table.
    """

    path: pathlib.Path
    name: str
    version: str
    role: str
    family: str | None
    project: dict
    tool: dict

    @property
    def label(self) -> str:
        """Names the package and its pyproject.toml in messages."""
        return f"{self.name} ({self.path.name}/pyproject.toml)"

    def entry_points(self, group: str = ENTRY_POINT_GROUP) -> dict[str, str]:
        """Returns ``{name: "module:attribute"}`` of one entry-point group, in file order."""
        return dict(self.project.get("entry-points", {}).get(group, {}))

    def all_entry_points(self) -> dict[str, dict[str, str]]:
        """Every entry-point group, console scripts included, as installers write them."""
        groups = {
            group: dict(entries) for group, entries in self.project.get("entry-points", {}).items()
        }
        for table, group in (("scripts", "console_scripts"), ("gui-scripts", "gui_scripts")):
            if self.project.get(table):
                groups[group] = dict(self.project[table])
        return groups

    def requirements(self, extra: str | None = None) -> list[Requirement]:
        """Returns the dependencies, or those of one extra."""
        if extra is None:
            texts = self.project.get("dependencies", [])
        else:
            texts = self.project.get("optional-dependencies", {}).get(extra, [])
        return [Requirement(text) for text in texts]


def _role(path: pathlib.Path, name: str, root: pathlib.Path) -> str:
    if path == root / TEMPLATE_PATH:
        return "template"
    if name == CORE_DISTRIBUTION:
        return "core"
    if name == META_DISTRIBUTION:
        return "meta"
    if family_of(name) is not None:
        return "family"
    return "unknown"


def load_packages(root: pathlib.Path = REPO_ROOT, with_template: bool = True) -> list[Package]:
    """Reads every ``packages/*/pyproject.toml``, sorted by folder, then the plugin template's."""
    root = pathlib.Path(root)
    paths = sorted(path.parent for path in (root / "packages").glob("*/pyproject.toml"))
    if with_template and (root / TEMPLATE_PATH / "pyproject.toml").is_file():
        paths.append(root / TEMPLATE_PATH)
    packages = []
    for path in paths:
        with open(path / "pyproject.toml", "rb") as file:
            data = tomllib.load(file)
        project = data.get("project", {})
        name = project.get("name", "")
        role = _role(path, name, root)
        packages.append(
            Package(
                path=path,
                name=name,
                version=str(project.get("version", "")),
                role=role,
                family=family_of(name) if role == "family" else None,
                project=project,
                tool=data.get("tool", {}),
            )
        )
    return packages
