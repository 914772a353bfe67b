"""Runs the code blocks of a Markdown file, so documented usage is tested as written.

The rules a README follows:

- A ```` ```python ```` block runs, on every backend. Words after ``python``
  name the backends it is written for (```` ```python tensorflow torch ````);
  on another backend it does not run.
- The blocks of one file run in document order in one namespace, in a
  temporary working directory, so a block may use what an earlier one defined;
  ``__file__`` is the Markdown file's path.
- Setup a reader does not need to see (small random data, a toy model) goes in
  an HTML comment, which renders as nothing and runs like a Python block::

      <!-- setup
      import numpy as np
      images = np.random.default_rng(0).normal(size=(32, 64)).astype("float32")
      -->

- Every other block names its language (``bash``, ``text``, ``toml``, ...,
  see :data:`NOT_RUN_LANGUAGES`); it is shown, not run. A block without a
  language, or with one not listed, is an error, so nothing is left out
  silently.

Example, from a test module::

    from dl_techniques.losses.core.testing.readme import run_markdown

    def test_readme(tmp_path):
        run_markdown(pathlib.Path("README.md"), keras.backend.backend(), tmp_path)
"""

import contextlib
import dataclasses
import os
import pathlib
import re
from collections.abc import Iterator

BACKENDS = ("tensorflow", "jax", "torch")
RUN_LANGUAGES = ("python", "setup")
NOT_RUN_LANGUAGES = ("bash", "console", "shell", "text", "toml", "json", "yaml", "ini")

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
_SETUP_START = re.compile(r"^[ \t]*<!--[ \t]*setup[ \t]*$")
_COMMENT_END = re.compile(r"^[ \t]*-->[ \t]*$")


@dataclasses.dataclass(frozen=True)
class CodeBlock:
    """One code block of a Markdown file.

    Attributes:
        path: The Markdown file.
        line: Line number (1-based) of the block's first line of code.
        language: ``python``, ``setup`` (a hidden setup comment) or the
            language a non-Python block names.
        backends: The backends a Python block is written for, all by default.
        source: The code, with the fence's indentation removed.
    """

    path: pathlib.Path
    line: int
    language: str
    backends: tuple[str, ...]
    source: str

    @property
    def runs(self) -> bool:
        """Whether the block is code to run (on some backend)."""
        return self.language in RUN_LANGUAGES

    @property
    def name(self) -> str:
        """``file:line language``, how reports refer to the block."""
        return f"{self.path.name}:{self.line} {self.language}"


def code_blocks(path: pathlib.Path) -> list[CodeBlock]:
    """Returns the code blocks of a Markdown file, setup comments included.

    Raises:
        ValueError: For a fence without a language or with a language that is
            neither run nor listed as not run, an unknown backend name, or a
            block or setup comment that is never closed.
    """
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks = []
    index = 0
    while index < len(lines):
        fence = _FENCE.match(lines[index])
        if _SETUP_START.match(lines[index]):
            end = _closing_line(lines, index, _COMMENT_END, path, "setup comment")
            indent = lines[index][: len(lines[index]) - len(lines[index].lstrip(" \t"))]
            body = [_dedent(line, indent) for line in lines[index + 1 : end]]
            blocks.append(CodeBlock(path, index + 2, "setup", BACKENDS, "\n".join(body)))
            index = end + 1
        elif fence:
            indent, marker = fence["indent"], fence["fence"]
            closing = re.compile(rf"^[ \t]*{re.escape(marker[0])}{{{len(marker)},}}[ \t]*$")
            end = _closing_line(lines, index, closing, path, "code block")
            language, backends = _parse_info(fence["info"], path, index + 1)
            body = [_dedent(line, indent) for line in lines[index + 1 : end]]
            blocks.append(CodeBlock(path, index + 2, language, backends, "\n".join(body)))
            index = end + 1
        else:
            index += 1
    return blocks


def run_markdown(path: pathlib.Path, backend: str, work_dir: pathlib.Path) -> list[CodeBlock]:
    """Runs the Python blocks of ``path`` written for ``backend``.

    Tracebacks point at the Markdown file and line. Returns the blocks that ran.

    Raises:
        ValueError: As :func:`code_blocks`, for a badly marked block.
        Exception: Whatever a block raises.
    """
    namespace: dict[str, object] = {
        "__name__": f"readme_{path.parent.name}",
        "__file__": str(path.resolve()),
    }
    ran = []
    with _working_directory(work_dir):
        for block in code_blocks(path):
            if not block.runs or backend not in block.backends:
                continue
            # Leading newlines make the compiled code's line numbers the file's.
            code = compile("\n" * (block.line - 1) + block.source, str(path), "exec")
            exec(code, namespace)  # noqa: S102  (the documentation's own code)
            ran.append(block)
    return ran


def _parse_info(info: str, path: pathlib.Path, line: int) -> tuple[str, tuple[str, ...]]:
    words = info.strip().split()
    if not words:
        raise ValueError(
            f"{path}:{line}: a code block without a language; name it (```python runs, "
            f"one of {', '.join(NOT_RUN_LANGUAGES)} is shown without running)."
        )
    language, rest = words[0].lower(), words[1:]
    if language == "python":
        unknown = [word for word in rest if word not in BACKENDS]
        if unknown:
            raise ValueError(
                f"{path}:{line}: unknown backend(s) {unknown} after ```python; "
                f"use any of {', '.join(BACKENDS)}."
            )
        return language, tuple(rest) or BACKENDS
    if language not in NOT_RUN_LANGUAGES:
        raise ValueError(
            f"{path}:{line}: code block language {language!r} is neither run (python) nor "
            f"one of those shown without running: {', '.join(NOT_RUN_LANGUAGES)}."
        )
    return language, ()


def _closing_line(
    lines: list[str], start: int, closing: re.Pattern[str], path: pathlib.Path, what: str
) -> int:
    for index in range(start + 1, len(lines)):
        if closing.match(lines[index]):
            return index
    raise ValueError(f"{path}:{start + 1}: {what} is never closed.")


def _dedent(line: str, indent: str) -> str:
    return line[len(indent) :] if line.startswith(indent) else line.lstrip(" \t")


@contextlib.contextmanager
def _working_directory(path: pathlib.Path) -> Iterator[None]:
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)
