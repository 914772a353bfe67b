"""Options every test of the repository shares.

``--shard K/N`` (``0 <= K < N``) collects the K-th of N parts of the ``test_*.py``
files under the configured ``testpaths``, so that N processes together run each
file exactly once. The parts are balanced by each file's run time on the current
Keras backend, as ``tests/durations.json`` records it (a file it does not list
counts its size at the recorded seconds per byte): longest first, each into the
part with the least time so far; the multi-device test files (``_TOGETHER``)
count as one. Files outside a process' part are never imported, so module- and
class-level work (the batched fresh-process reload of conformance cases, say)
happens only in the part that owns the file. ``tools/dev.py test`` runs each
backend's suite as parts this way, and ``tools/dev.py test --store-durations``
records the durations again (``--store-durations PATH`` here: this process'
seconds per file, as JSON).
"""

import collections
import functools
import json
import pathlib

import hypothesis
import keras
import pytest

from dl_techniques.losses.core.testing.numeric import thorough_run

# The suite gates every change, so each run draws the same hypothesis examples
# (a failure reproduces, and no run fails by the luck of the draw); the
# thorough run (`tools/dev.py test --thorough`) draws new ones every time.
hypothesis.settings.register_profile("suite", derandomize=True)
hypothesis.settings.register_profile("thorough", derandomize=False)
hypothesis.settings.load_profile("thorough" if thorough_run() else "suite")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--shard",
        default=None,
        metavar="K/N",
        help="collect only the K-th of N time-balanced parts of the test files (0 <= K < N)",
    )
    parser.addoption(
        "--store-durations",
        default=None,
        metavar="PATH",
        help="write the seconds each test file took (setup, call, teardown) to PATH as JSON",
    )


def pytest_configure(config: pytest.Config) -> None:
    value = config.getoption("--shard")
    config.stash[_SHARD] = _parse_shard(value) if value else None


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _FILE_SECONDS[report.nodeid.partition("::")[0]] += report.duration


def pytest_sessionfinish(session: pytest.Session) -> None:
    path = session.config.getoption("--store-durations")
    if path:
        seconds = {name: round(value, 2) for name, value in sorted(_FILE_SECONDS.items())}
        pathlib.Path(path).write_text(json.dumps(seconds, indent=1) + "\n")


def pytest_ignore_collect(collection_path: pathlib.Path, config: pytest.Config) -> bool | None:
    shard = config.stash.get(_SHARD, None)
    if shard is None or not _is_test_file(collection_path):
        return None
    index, count = shard
    parts = _parts(
        config.rootpath, tuple(config.getini("testpaths")), count, keras.backend.backend()
    )
    part = parts.get(collection_path.resolve())
    return True if part is not None and part != index else None


_SHARD = pytest.StashKey[tuple[int, int] | None]()
_FILE_SECONDS: collections.Counter[str] = collections.Counter()


def _parse_shard(value: str) -> tuple[int, int]:
    index_text, _, count_text = value.partition("/")
    try:
        index, count = int(index_text), int(count_text)
    except ValueError:
        index, count = -1, 0
    if count < 1 or not 0 <= index < count:
        raise pytest.UsageError(f"--shard takes K/N with 0 <= K < N, got {value!r}.")
    return index, count


def _is_test_file(path: pathlib.Path) -> bool:
    return path.suffix == ".py" and path.name.startswith("test_") and path.is_file()


# Test files matching this pattern go to one part together: their multi-device
# scripts then share one subprocess (dl_techniques.losses.core.testing.script_batch),
# which runs the scripts its own process collected.
_TOGETHER = "test_*distributed.py"


@functools.cache
def _parts(
    root: pathlib.Path, testpaths: tuple[str, ...], count: int, backend: str
) -> dict[pathlib.Path, int]:
    files = set()
    for testpath in testpaths:
        files.update(
            path.resolve() for path in (root / testpath).rglob("test_*.py") if _is_test_file(path)
        )
    together = tuple(sorted(path for path in files if path.match(_TOGETHER)))
    groups = [(path,) for path in files if path not in together]
    if together:
        groups.append(together)
    seconds = _file_seconds(root, files, backend)
    weights = {group: sum(seconds[path] for path in group) for group in groups}
    loads = [0.0] * count
    parts = {}
    for group in sorted(groups, key=lambda group: (-weights[group], str(group[0]))):
        part = min(range(count), key=lambda candidate: (loads[candidate], candidate))
        parts.update(dict.fromkeys(group, part))
        loads[part] += weights[group]
    return parts


def _file_seconds(
    root: pathlib.Path, files: set[pathlib.Path], backend: str
) -> dict[pathlib.Path, float]:
    """Each file's recorded seconds on ``backend``, or its size at the recorded seconds per byte."""
    record = root / "tests" / "durations.json"
    recorded = json.loads(record.read_text()).get(backend, {}) if record.exists() else {}
    sizes = {path: path.stat().st_size for path in files}
    relative = {path: _relative(root, path) for path in files}
    known = {path: recorded[relative[path]] for path in files if relative[path] in recorded}
    known_bytes = sum(sizes[path] for path in known)
    per_byte = sum(known.values()) / known_bytes if known_bytes else 1.0
    return {path: known.get(path, sizes[path] * per_byte) for path in files}


def _relative(root: pathlib.Path, path: pathlib.Path) -> str:
    return path.relative_to(root.resolve()).as_posix()
