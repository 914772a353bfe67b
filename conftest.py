"""Options every test of the repository shares.

``--shard K/N`` (``0 <= K < N``) collects the K-th of N parts of the ``test_*.py``
files under the configured ``testpaths``, so that N processes together run each
file exactly once. The parts are balanced by file size, a stand-in for run time:
largest file first, each into the part with the fewest bytes so far. Files
outside a process' part are never imported, so module- and class-level work
(the batched fresh-process reload of conformance cases, say) happens only in the
part that owns the file. ``tools/dev.py test`` runs each backend's suite as parts
this way.
"""

import functools
import pathlib

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--shard",
        default=None,
        metavar="K/N",
        help="collect only the K-th of N interleaved parts of the test files (0 <= K < N)",
    )


def pytest_configure(config: pytest.Config) -> None:
    value = config.getoption("--shard")
    config.stash[_SHARD] = _parse_shard(value) if value else None


def pytest_ignore_collect(collection_path: pathlib.Path, config: pytest.Config) -> bool | None:
    shard = config.stash.get(_SHARD, None)
    if shard is None or not _is_test_file(collection_path):
        return None
    index, count = shard
    parts = _parts(config.rootpath, tuple(config.getini("testpaths")), count)
    part = parts.get(collection_path.resolve())
    return True if part is not None and part != index else None


_SHARD = pytest.StashKey[tuple[int, int] | None]()


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


@functools.cache
def _parts(root: pathlib.Path, testpaths: tuple[str, ...], count: int) -> dict[pathlib.Path, int]:
    files = set()
    for testpath in testpaths:
        files.update(
            path.resolve() for path in (root / testpath).rglob("test_*.py") if _is_test_file(path)
        )
    sizes = {path: path.stat().st_size for path in files}
    loads = [0] * count
    parts = {}
    for path in sorted(files, key=lambda path: (-sizes[path], str(path))):
        part = min(range(count), key=lambda candidate: (loads[candidate], candidate))
        parts[path] = part
        loads[part] += sizes[path]
    return parts
