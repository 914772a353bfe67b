"""The registry of every installed loss, built from entry points.

Each installed distribution declares its public objects in the entry-point
group ``dl_techniques.losses``, one entry per object, the entry name being the
public name and the value ``module:attribute``. Listing reads package metadata
only; loading an entry imports its one module.

Name collisions resolve deterministically: a first-party family wins; between
third parties the distribution that sorts first wins and a warning is logged.
Every entry stays reachable by its qualified name ``"<distribution>:<Name>"``.
"""

import dataclasses
import difflib
import importlib
import importlib.metadata
import logging
import re
import threading
from typing import Any

from dl_techniques.losses.core import catalog

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "dl_techniques.losses"
KERAS_PACKAGE = "dl_techniques"

_FAMILY_MODULE = re.compile(r"^dl_techniques\.losses\.(\w+)\.")


class LossNotInstalledError(ImportError):
    """A first-party name was requested whose family is not installed."""


class PluginLoadError(ImportError):
    """An installed entry point could not be imported."""


@dataclasses.dataclass(frozen=True)
class Entry:
    """One public object declared by an installed distribution.

    Attributes:
        name: The public name, e.g. ``"MASELoss"``.
        value: The entry-point value, ``"module:attribute"``.
        distribution: The declaring distribution, e.g.
            ``"dl-techniques-losses-forecasting"``.
        version: The version of that distribution.
    """

    name: str
    value: str
    distribution: str
    version: str

    @property
    def module(self):
        return self.value.partition(":")[0].strip()

    @property
    def attribute(self):
        return self.value.partition(":")[2].strip()

    @property
    def qualified_name(self):
        return f"{self.distribution}:{self.name}"

    @property
    def first_party(self):
        return self.distribution in catalog.FIRST_PARTY_DISTRIBUTIONS

    @property
    def family(self):
        if self.first_party:
            return catalog.FIRST_PARTY_DISTRIBUTIONS[self.distribution]
        match = _FAMILY_MODULE.match(self.module + ".")
        return match.group(1) if match else self.distribution

    @property
    def kind(self):
        """What the object is, read from its name without importing it.

        ``...Loss``, ``...Losses`` and ``...CrossEntropy`` are losses,
        ``...Metric`` metrics, ``...Layer`` layers, ``...Config`` configs,
        ``create_...`` factories, other lower-case names functions.
        """
        if self.name.endswith(("Loss", "Losses", "CrossEntropy")):
            return "loss"
        for suffix, kind in (("Metric", "metric"), ("Layer", "layer"), ("Config", "config")):
            if self.name.endswith(suffix):
                return kind
        if self.name.startswith("create_"):
            return "factory"
        if self.name[:1].islower():
            return "function"
        return "class"

    @property
    def keras_name(self):
        """The name Keras serializes the object under."""
        return f"{KERAS_PACKAGE}>{self.name}"

    def load(self):
        """Imports the entry's module and returns the object."""
        try:
            target = importlib.import_module(self.module)
            for part in self.attribute.split("."):
                target = getattr(target, part)
        except Exception as error:
            raise PluginLoadError(
                f"dl_techniques.losses: entry {self.name!r} of distribution "
                f"{self.distribution!r} ({self.value}) failed to load: "
                f"{type(error).__name__}: {error}"
            ) from error
        return target


class _Index:
    def __init__(self, entries):
        self.all_entries = tuple(
            sorted(entries, key=lambda entry: (entry.name, entry.distribution))
        )
        self.by_qualified_name = {entry.qualified_name: entry for entry in self.all_entries}
        self.winners = {}
        claimants: dict[str, list[Any]] = {}
        for entry in self.all_entries:
            claimants.setdefault(entry.name, []).append(entry)
        for name, entries in claimants.items():
            ranked = sorted(entries, key=lambda entry: (not entry.first_party, entry.distribution))
            self.winners[name] = ranked[0]
            if len(ranked) > 1:
                logger.warning(
                    "dl_techniques.losses: %r is declared by %s; using %s. The "
                    "others stay reachable as %s.",
                    name,
                    ", ".join(entry.distribution for entry in ranked),
                    ranked[0].distribution,
                    ", ".join(repr(entry.qualified_name) for entry in ranked[1:]),
                )


_lock = threading.Lock()
_index = None


def _discover():
    found = []
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        distribution = entry_point.dist
        found.append(
            Entry(
                name=entry_point.name,
                value=entry_point.value,
                distribution=distribution.metadata["Name"] if distribution else "unknown",
                version=distribution.version if distribution else "unknown",
            )
        )
    return _Index(found)


def _current():
    global _index
    if _index is None:
        with _lock:
            if _index is None:
                _index = _discover()
    return _index


def refresh():
    """Forgets what was discovered so the next call reads entry points again.

    Call it after installing or removing a plugin in a running process.
    """
    global _index
    with _lock:
        _index = None
    install_keras_resolvers()


def names():
    """Returns the sorted public names of every installed object."""
    return sorted(_current().winners)


def entries(include_shadowed=False):
    """Returns the installed entries, sorted by name.

    Args:
        include_shadowed: Also return entries that lost a name collision.
    """
    index = _current()
    if include_shadowed:
        return list(index.all_entries)
    return [index.winners[name] for name in sorted(index.winners)]


def entry(name):
    """Returns the entry for a public or qualified (``"dist:Name"``) name."""
    index = _current()
    if name in index.winners:
        return index.winners[name]
    if name in index.by_qualified_name:
        return index.by_qualified_name[name]
    if name in catalog.FAMILY_OF_NAME:
        family = catalog.FAMILY_OF_NAME[name]
        raise LossNotInstalledError(
            f"{name} belongs to the {family} family of dl-techniques-losses, "
            f"which is not installed. Install it with: pip install "
            f'"{catalog.META_DISTRIBUTION}[{catalog.extra_of(family)}]"',
            name=name,
        )
    close = difflib.get_close_matches(name, list(index.winners), n=3)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise KeyError(
        f"dl_techniques.losses has no installed object named {name!r}.{hint} "
        "`dl-losses list` shows what is installed."
    )


def get(name):
    """Returns the object for a public or qualified name, importing its module.

    Raises:
        LossNotInstalledError: A first-party name whose family is not installed.
        KeyError: A name no installed distribution declares.
        PluginLoadError: The declaring module failed to import.
    """
    return entry(name).load()


def get_attribute(name):
    """Resolves ``dl_techniques.losses.<name>`` for the package's ``__getattr__``.

    A first-party name of a missing family raises ``LossNotInstalledError`` (an
    ``ImportError``, so ``from dl_techniques.losses import F1Loss`` shows the
    install command); any other unknown name raises ``AttributeError`` so that
    submodule imports keep working.
    """
    try:
        found = entry(name)
    except KeyError as error:
        raise AttributeError(error.args[0]) from None
    return found.load()


def load_all(strict=False):
    """Imports every installed entry and returns ``{name: object}``.

    Args:
        strict: Raise on the first entry that fails to load instead of logging
            it and skipping it.
    """
    loaded = {}
    for found in entries():
        try:
            loaded[found.name] = found.load()
        except PluginLoadError:
            if strict:
                raise
            logger.warning("dl_techniques.losses: skipping %s", found.qualified_name, exc_info=True)
    return loaded


def custom_objects(strict=False):
    """Returns ``{registered_name: object}`` for ``keras.saving.load_model``.

    Keys are the Keras names (``"dl_techniques>MASELoss"``) and the bare public
    names, so the dictionary serves as ``custom_objects`` for models saved by
    this library and by older code that stored bare class names.
    """
    objects = {}
    for name, obj in load_all(strict=strict).items():
        objects[name] = obj
        objects[f"{KERAS_PACKAGE}>{name}"] = obj
    return objects


def keras_name_for(module, qualname):
    """Returns the Keras name for the object defined at ``module.qualname``.

    The winner of a name keeps ``dl_techniques>Name``; an entry that lost a
    collision serializes as ``dl_techniques>dist:Name`` so both reload.
    """
    value = f"{module}:{qualname}"
    for found in _current().all_entries:
        if found.value.replace(" ", "") == value:
            if _current().winners[found.name] is found:
                return found.keras_name
            return f"{KERAS_PACKAGE}>{found.qualified_name}"
    return f"{KERAS_PACKAGE}>{qualname}"


class _DeferredKerasObject:
    """Stands in Keras' registry for an entry until a model needs it."""

    def __init__(self, found):
        self._entry = found

    def _resolve(self):
        return self._entry.load()

    def from_config(self, config):
        return self._resolve().from_config(config)

    def __call__(self, *args, **kwargs):
        return self._resolve()(*args, **kwargs)

    def __repr__(self):
        return f"<deferred {self._entry.qualified_name} ({self._entry.value})>"


def install_keras_resolvers():
    """Makes every installed entry resolvable by ``keras.saving.load_model``.

    Registers a deferred stand-in under each entry's Keras name; the real
    object replaces it when its module is imported.
    """
    import keras

    registered = keras.saving.get_custom_objects()
    for key in [key for key, obj in registered.items() if isinstance(obj, _DeferredKerasObject)]:
        del registered[key]
    index = _current()
    for found in index.all_entries:
        if index.winners[found.name] is found:
            key = found.keras_name
        else:
            key = f"{KERAS_PACKAGE}>{found.qualified_name}"
        if key not in registered:
            registered[key] = _DeferredKerasObject(found)
