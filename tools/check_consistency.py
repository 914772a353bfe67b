"""Checks that the distributions under ``packages/`` agree with each other.

Usage::

    python tools/check_consistency.py                  # builds wheels into a temp folder
    python tools/check_consistency.py --dist dist      # checks wheels already built there
    python tools/check_consistency.py --no-wheels      # pyproject and import checks only
    python tools/check_consistency.py --with-template  # also the plugin template's wheel

It exits non-zero with one line per problem unless:

- every package has core's version (lockstep releases);
- every family depends on ``dl-techniques-losses-core~=<version>``, and so does
  the plugin template;
- the meta package depends on ``dl-techniques-losses-core==<version>`` and has
  one extra per family of the core catalog pinning
  ``dl-techniques-losses-<family>==<version>``, plus ``all`` with every family;
- every family package is a family of the catalog, its entry points are the
  catalog's names of that family, and each entry lives in its family's module;
- no wheel but core's contains ``dl_techniques/losses/__init__.py``, none
  contains ``dl_techniques/__init__.py``, the meta wheel holds only metadata,
  the template's wheel nothing under ``dl_techniques/``, and each wheel's
  entry points are those of its pyproject.toml;
- the installed metadata of each package declares the pyproject's entry points
  (an editable install made before an entry was added is stale);
- every entry of group ``dl_techniques.losses`` imports to an object whose
  ``__name__`` is the entry name, and every loss, metric and layer among them is
  registered with Keras as ``dl_techniques>Name``.
"""

import argparse
import configparser
import dataclasses
import importlib
import importlib.metadata
import importlib.util
import pathlib
import re
import sys
import tempfile
import zipfile

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from packaging.requirements import Requirement

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
ENTRY_POINT_GROUP = "dl_techniques.losses"
KERAS_PACKAGE = "dl_techniques"
PROJECT_PREFIX = "dl-techniques-losses"
CATALOG_PATH = pathlib.Path("packages/core/src/dl_techniques/losses/core/catalog.py")
TEMPLATE_PATH = pathlib.Path("tools/plugin_template")
EXPECTED_WHEEL_PACKAGES = ["src/dl_techniques"]


def _load_tool(name):
    path = pathlib.Path(__file__).resolve().parent / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"_dl_losses_tools_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_catalog(root=REPO_ROOT):
    """Loads core's catalog from the source tree, without importing Keras."""
    path = pathlib.Path(root) / CATALOG_PATH
    spec = importlib.util.spec_from_file_location("_dl_losses_catalog", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def normalize(name):
    """Normalizes a distribution name the way wheel file names do."""
    return re.sub(r"[-_.]+", "_", name).lower()


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
    family: str
    project: dict
    tool: dict

    @property
    def label(self):
        return f"{self.name} ({self.path.name}/pyproject.toml)"

    def entry_points(self, group=ENTRY_POINT_GROUP):
        return dict(self.project.get("entry-points", {}).get(group, {}))

    def all_entry_points(self):
        """Every entry-point group, console scripts included, as installers write them."""
        groups = {
            group: dict(entries) for group, entries in self.project.get("entry-points", {}).items()
        }
        for table, group in (("scripts", "console_scripts"), ("gui-scripts", "gui_scripts")):
            if self.project.get(table):
                groups[group] = dict(self.project[table])
        return groups

    def requirements(self, extra=None):
        if extra is None:
            texts = self.project.get("dependencies", [])
        else:
            texts = self.project.get("optional-dependencies", {}).get(extra, [])
        return [Requirement(text) for text in texts]


def load_packages(root=REPO_ROOT, catalog=None, with_template=True):
    """Reads every ``packages/*/pyproject.toml`` (and the plugin template)."""
    root = pathlib.Path(root)
    catalog = catalog or load_catalog(root)
    paths = sorted(path.parent for path in (root / "packages").glob("*/pyproject.toml"))
    if with_template and (root / TEMPLATE_PATH / "pyproject.toml").is_file():
        paths.append(root / TEMPLATE_PATH)
    packages = []
    for path in paths:
        with open(path / "pyproject.toml", "rb") as file:
            data = tomllib.load(file)
        project = data.get("project", {})
        name = project.get("name", "")
        family = catalog.FIRST_PARTY_DISTRIBUTIONS.get(name)
        if path == root / TEMPLATE_PATH:
            role = "template"
        elif name == catalog.CORE_DISTRIBUTION:
            role = "core"
        elif name == catalog.META_DISTRIBUTION:
            role = "meta"
        elif family is not None:
            role = "family"
        else:
            role = "unknown"
        packages.append(
            Package(
                path=path,
                name=name,
                version=str(project.get("version", "")),
                role=role,
                family=family,
                project=project,
                tool=data.get("tool", {}),
            )
        )
    return packages


def _by_role(packages, role):
    return [package for package in packages if package.role == role]


def _core(packages):
    cores = _by_role(packages, "core")
    return cores[0] if len(cores) == 1 else None


def check_roles(packages, catalog):
    """Every package is core, meta, a catalog family or the template."""
    problems = []
    for role in ("core", "meta"):
        if len(_by_role(packages, role)) != 1:
            problems.append(
                f"expected exactly one {role} package under packages/, "
                f"found {[package.name for package in _by_role(packages, role)]}"
            )
    for package in _by_role(packages, "unknown"):
        problems.append(
            f"{package.label}: distribution {package.name!r} is neither core, the meta "
            f"package nor a family of the catalog ({sorted(catalog.FIRST_PARTY_DISTRIBUTIONS)}); "
            "add the family to dl_techniques/losses/core/catalog.py"
        )
    return problems


def check_versions(packages):
    """Core, families and meta share one version."""
    core = _core(packages)
    if core is None:
        return []
    return [
        f"{package.label}: version {package.version!r} differs from core's {core.version!r}; "
        "versions are lockstep (run tools/bump_version.py)"
        for package in packages
        if package.role in ("family", "meta") and package.version != core.version
    ]


def _core_requirements(package, catalog):
    return [
        requirement
        for requirement in package.requirements()
        if normalize(requirement.name) == normalize(catalog.CORE_DISTRIBUTION)
    ]


def check_core_dependencies(packages, catalog):
    """Families and the template depend on core with ``~=<version>``."""
    core = _core(packages)
    if core is None:
        return []
    expected = f"~={core.version}"
    problems = []
    for package in packages:
        if package.role not in ("family", "template"):
            continue
        found = _core_requirements(package, catalog)
        specifiers = [str(requirement.specifier) for requirement in found]
        if specifiers != [expected]:
            problems.append(
                f"{package.label}: must depend on {catalog.CORE_DISTRIBUTION}{expected}; "
                f"found {[str(requirement) for requirement in found] or 'no core dependency'}"
            )
    return problems


def check_meta(packages, catalog):
    """The meta package pins core and one extra per catalog family."""
    metas = _by_role(packages, "meta")
    core = _core(packages)
    if len(metas) != 1 or core is None:
        return []
    meta = metas[0]
    version = core.version
    problems = []
    core_pins = [str(requirement) for requirement in _core_requirements(meta, catalog)]
    if core_pins != [f"{catalog.CORE_DISTRIBUTION}=={version}"]:
        problems.append(
            f"{meta.label}: dependencies must be exactly one "
            f"'{catalog.CORE_DISTRIBUTION}=={version}'; found {core_pins}"
        )
    extras = meta.project.get("optional-dependencies", {})
    expected_all = set()
    for family in catalog.FAMILY_NAMES:
        extra = catalog.extra_of(family)
        pin = f"{catalog.distribution_of(family)}=={version}"
        expected_all.add(pin)
        found = [str(requirement) for requirement in meta.requirements(extra)]
        if found != [pin]:
            problems.append(
                f"{meta.label}: extra {extra!r} must be exactly ['{pin}']; found "
                f"{found if extra in extras else 'no such extra'}"
            )
    found_all = {str(requirement) for requirement in meta.requirements("all")}
    if found_all != expected_all:
        problems.append(
            f"{meta.label}: extra 'all' must pin every family: missing "
            f"{sorted(expected_all - found_all)}, unexpected {sorted(found_all - expected_all)}"
        )
    known = {normalize(catalog.CORE_DISTRIBUTION)} | {
        normalize(name) for name in catalog.FIRST_PARTY_DISTRIBUTIONS
    }
    for extra in extras:
        for requirement in meta.requirements(extra):
            if not normalize(requirement.name).startswith(normalize(PROJECT_PREFIX)):
                continue
            if normalize(requirement.name) not in known:
                problems.append(
                    f"{meta.label}: extra {extra!r} names {requirement.name!r}, which is "
                    "not core nor a family of the catalog"
                )
            elif str(requirement.specifier) != f"=={version}":
                problems.append(
                    f"{meta.label}: extra {extra!r} must pin {requirement.name}=={version}; "
                    f"found {str(requirement)!r}"
                )
    return problems


def check_families(packages, catalog):
    """Family entry points match the catalog and the source tree is shaped right."""
    problems = []
    for package in packages:
        if package.role == "meta":
            continue
        if package.role != "template":
            selection = (
                package.tool.get("hatch", {}).get("build", {}).get("targets", {}).get("wheel", {})
            )
            if selection.get("packages") != EXPECTED_WHEEL_PACKAGES:
                problems.append(
                    f"{package.label}: [tool.hatch.build.targets.wheel] packages must be "
                    f"{EXPECTED_WHEEL_PACKAGES}; found {selection.get('packages')!r}"
                )
        source = package.path / "src" / "dl_techniques"
        if (source / "__init__.py").exists():
            problems.append(
                f"{package.label}: src/dl_techniques/__init__.py must not exist; "
                "dl_techniques is a namespace package"
            )
        if package.role != "family":
            continue
        if (source / "losses" / "__init__.py").exists():
            problems.append(
                f"{package.label}: src/dl_techniques/losses/__init__.py must not exist; "
                "only core ships it, a family's copy would overwrite core's on install"
            )
        declared = set(package.entry_points())
        expected = set(catalog.FAMILY_NAMES[package.family])
        for name in sorted(declared - expected):
            problems.append(
                f"{package.label}: entry point {name!r} is not in core's catalog under "
                f"family {package.family!r}; add it to catalog.FAMILY_NAMES"
            )
        for name in sorted(expected - declared):
            problems.append(
                f"{package.label}: catalog name {name!r} of family {package.family!r} has "
                f"no entry point in group {ENTRY_POINT_GROUP!r}"
            )
        prefix = f"dl_techniques.losses.{package.family}"
        for name, value in sorted(package.entry_points().items()):
            module = value.partition(":")[0].strip()
            if module != prefix and not module.startswith(prefix + "."):
                problems.append(
                    f"{package.label}: entry point {name} = {value!r} is outside {prefix}"
                )
    return problems


def _wheel_entry_points(archive):
    texts = [name for name in archive.namelist() if name.endswith(".dist-info/entry_points.txt")]
    if not texts:
        return {}
    parser = configparser.ConfigParser(delimiters=("=",), interpolation=None)
    parser.optionxform = str
    parser.read_string(archive.read(texts[0]).decode())
    return {
        section: {key: value.strip() for key, value in parser.items(section)}
        for section in parser.sections()
    }


def check_wheels(wheels, packages):
    """Checks the files and entry points inside built wheels.

    Args:
        wheels: Paths of built wheels, one per package to check.
        packages: The packages the wheels were built from.
    """
    problems = []
    by_file_prefix = {
        f"{normalize(package.name)}-{package.version}-": package for package in packages
    }
    seen = set()
    for wheel in wheels:
        wheel = pathlib.Path(wheel)
        package = next(
            (found for prefix, found in by_file_prefix.items() if wheel.name.startswith(prefix)),
            None,
        )
        if package is None:
            problems.append(f"{wheel.name}: matches no package version of this repository")
            continue
        seen.add(package.name)
        with zipfile.ZipFile(wheel) as archive:
            files = archive.namelist()
            wheel_entry_points = _wheel_entry_points(archive)
        if "dl_techniques/__init__.py" in files:
            problems.append(
                f"{wheel.name}: contains dl_techniques/__init__.py; dl_techniques must stay "
                "a namespace package"
            )
        ships_losses_init = "dl_techniques/losses/__init__.py" in files
        if package.role == "core" and not ships_losses_init:
            problems.append(f"{wheel.name}: core's wheel lacks dl_techniques/losses/__init__.py")
        if package.role != "core" and ships_losses_init:
            problems.append(
                f"{wheel.name}: contains dl_techniques/losses/__init__.py; only core may ship "
                "it (installing this wheel would overwrite core's)"
            )
        if package.role == "template":
            inside = [name for name in files if name.startswith("dl_techniques/")]
            if inside:
                problems.append(
                    f"{wheel.name}: a third-party plugin keeps its code in its own top-level "
                    f"package; found {inside}"
                )
        if package.role == "meta":
            payload = [name for name in files if ".dist-info/" not in name]
            if payload:
                problems.append(
                    f"{wheel.name}: the meta wheel must hold only metadata; found {payload}"
                )
        if wheel_entry_points != package.all_entry_points():
            problems.append(
                f"{wheel.name}: entry points {wheel_entry_points} differ from "
                f"{package.label}: {package.all_entry_points()}"
            )
    for package in packages:
        if package.name not in seen:
            problems.append(f"{package.label}: no wheel of version {package.version} was checked")
    return problems


def check_installed_metadata(packages):
    """The installed metadata declares the same entry points as each pyproject."""
    problems = []
    for package in packages:
        if package.role not in ("core", "family"):
            continue
        try:
            distribution = importlib.metadata.distribution(package.name)
        except importlib.metadata.PackageNotFoundError:
            problems.append(
                f"{package.label}: not installed in this environment ({sys.executable}); "
                f"install it with: pip install -e {package.path}"
            )
            continue
        installed = {}
        for entry_point in distribution.entry_points:
            installed.setdefault(entry_point.group, {})[entry_point.name] = entry_point.value
        if installed != package.all_entry_points():
            problems.append(
                f"{package.label}: installed entry points {installed} differ from the "
                f"pyproject's {package.all_entry_points()}; reinstall it with: "
                f"pip install -e {package.path}"
            )
    return problems


def _keras_must_register(obj, name):
    import keras

    if isinstance(obj, type) and issubclass(
        obj, (keras.losses.Loss, keras.metrics.Metric, keras.layers.Layer)
    ):
        return True
    return name.endswith(("Loss", "Losses", "CrossEntropy", "Metric", "Layer"))


def check_entry_points_resolve(packages):
    """Every entry imports, is named after its entry, and is registered with Keras."""
    problems = []
    installed = {
        package.name
        for package in packages
        if package.role in ("core", "family") and _is_installed(package.name)
    }
    for package in packages:
        if package.name not in installed:
            continue
        for name, value in sorted(package.entry_points().items()):
            module_name, _, attribute = value.partition(":")
            try:
                obj = importlib.import_module(module_name.strip())
                for part in attribute.strip().split("."):
                    obj = getattr(obj, part)
            except Exception as error:
                problems.append(
                    f"{package.label}: entry point {name} = {value!r} does not import: "
                    f"{type(error).__name__}: {error}"
                )
                continue
            if getattr(obj, "__name__", None) != name:
                problems.append(
                    f"{package.label}: entry point {name!r} resolves to an object named "
                    f"{getattr(obj, '__name__', None)!r}; the entry name must be the public name"
                )
            if _keras_must_register(obj, name):
                import keras

                registered = keras.saving.get_registered_name(obj)
                if registered != f"{KERAS_PACKAGE}>{name}":
                    problems.append(
                        f"{package.label}: {name} is registered with Keras as {registered!r}, "
                        f"not '{KERAS_PACKAGE}>{name}'; decorate it with "
                        "dl_techniques.losses.core.serialization.register_serializable"
                    )
    return problems


def _is_installed(name):
    try:
        importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def check_static(root=REPO_ROOT):
    """Runs the checks that read only pyproject files and the source tree."""
    catalog = load_catalog(root)
    packages = load_packages(root, catalog)
    return (
        packages,
        catalog,
        {
            "packages are core, meta, catalog families or the template": check_roles(
                packages, catalog
            ),
            "versions are lockstep": check_versions(packages),
            "families depend on core with ~=<version>": check_core_dependencies(packages, catalog),
            "meta package pins every family": check_meta(packages, catalog),
            "family entry points match the catalog": check_families(packages, catalog),
        },
    )


def run_checks(root=REPO_ROOT, dist_dir=None, build=True, with_template=False, imports=True):
    """Runs every check and returns ``{check description: [problem, ...]}``.

    Args:
        root: The repository root.
        dist_dir: Folder with built wheels to check; when ``None`` and ``build``
            is true, wheels are built into a temporary folder.
        build: Check wheels at all.
        with_template: Also check the plugin template's wheel.
        imports: Import the entry points of the installed packages.
    """
    root = pathlib.Path(root)
    packages, catalog, results = check_static(root)
    wheel_packages = [
        package for package in packages if package.role != "template" or with_template
    ]
    if dist_dir is not None:
        wheels = [
            wheel
            for package in wheel_packages
            for wheel in sorted(pathlib.Path(dist_dir).glob(f"{normalize(package.name)}-*.whl"))
        ]
        results["wheel contents"] = check_wheels(wheels, wheel_packages)
    elif build:
        build_wheels = _load_tool("build_wheels")
        with tempfile.TemporaryDirectory(prefix="dl-losses-check-") as scratch:
            try:
                wheels = build_wheels.build_wheels(scratch, with_template=with_template, root=root)
            except build_wheels.BuildError as error:
                results["wheel contents"] = [str(error)]
            else:
                results["wheel contents"] = check_wheels(wheels, wheel_packages)
    if imports:
        results["installed metadata matches pyproject"] = check_installed_metadata(packages)
        results["entry points import and register with Keras"] = check_entry_points_resolve(
            packages
        )
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=pathlib.Path, default=REPO_ROOT, help="repository root")
    parser.add_argument(
        "--dist", type=pathlib.Path, help="check the wheels in this folder instead of building"
    )
    parser.add_argument("--no-wheels", action="store_true", help="skip the wheel checks")
    parser.add_argument("--no-imports", action="store_true", help="skip importing entry points")
    parser.add_argument(
        "--with-template", action="store_true", help="also check the plugin template's wheel"
    )
    args = parser.parse_args(argv)
    results = run_checks(
        root=args.root,
        dist_dir=args.dist,
        build=not args.no_wheels,
        with_template=args.with_template,
        imports=not args.no_imports,
    )
    failed = 0
    for description, problems in results.items():
        print(f"{'ok  ' if not problems else 'FAIL'} {description}")
        for problem in problems:
            print(f"     - {problem}")
        failed += len(problems)
    if failed:
        print(f"\n{failed} problem(s) found", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
