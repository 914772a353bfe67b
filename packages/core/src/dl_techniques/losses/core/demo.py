"""The ``dl-losses demo`` runner and the interface every demo implements.

A distribution adds a demo with an entry point in the group
``dl_techniques.losses.demos`` whose value is a function

```python
def run_demo(output_dir: pathlib.Path, progress: Progress) -> list[DemoRow]:
    ...
```

It trains small Keras models on generated data, writes its PNG plots into
``output_dir`` (when matplotlib is installed) and returns one row per number
it wants in the summary table. It reports steps through ``progress``.
"""

import dataclasses
import importlib.metadata
import logging
import pathlib
import sys
import time

logger = logging.getLogger(__name__)

DEMO_ENTRY_POINT_GROUP = "dl_techniques.losses.demos"


@dataclasses.dataclass(frozen=True)
class DemoRow:
    """One number a demo achieved.

    Attributes:
        demo: What was trained, e.g. ``"forecasting: MQLoss"``.
        metric: What was measured, e.g. ``"10-90% interval coverage"``.
        value: The measured value.
        reference: What to compare it with, e.g. ``"nominal 0.80"``.
    """

    demo: str
    metric: str
    value: float
    reference: str = ""


class Progress:
    """A one-line progress display on a terminal, plain lines elsewhere."""

    def __init__(self, stream=None, total=1):
        self._stream = stream or sys.stderr
        self._interactive = getattr(self._stream, "isatty", lambda: False)()
        self._started = time.perf_counter()
        self._total = total
        self._done = 0
        self._label = ""

    def start_demo(self, label):
        self._label = label
        self.step("starting")

    def finish_demo(self):
        self._done += 1
        self.step("done")
        if self._interactive:
            self._stream.write("\n")

    def step(self, message):
        """Shows ``message`` as the current step of the running demo."""
        elapsed = time.perf_counter() - self._started
        line = f"[{self._done}/{self._total} demos, {elapsed:5.1f}s] {self._label}: {message}"
        if self._interactive:
            self._stream.write("\r\x1b[2K" + line)
        else:
            self._stream.write(line + "\n")
        self._stream.flush()


def demo_entries():
    """Returns the installed demo entry points, sorted by name."""
    found = importlib.metadata.entry_points(group=DEMO_ENTRY_POINT_GROUP)
    return sorted(found, key=lambda entry_point: entry_point.name)


def run_demos(output_dir, selected=None, stream=None):
    """Runs the installed demos and returns ``(rows, failures)``.

    Args:
        output_dir: Folder for the PNG plots; created if missing.
        selected: Names of the demos to run; all installed ones when empty.
        stream: Where progress goes; standard error by default.
    """
    output_dir = pathlib.Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    chosen = [
        entry_point
        for entry_point in demo_entries()
        if not selected or entry_point.name in selected
    ]
    progress = Progress(stream=stream, total=len(chosen))
    rows, failures = [], []
    for entry_point in chosen:
        progress.start_demo(entry_point.name)
        try:
            run_demo = entry_point.load()
            rows.extend(run_demo(output_dir, progress))
        except Exception as error:
            logger.warning("demo %s failed", entry_point.name, exc_info=True)
            failures.append((entry_point.name, f"{type(error).__name__}: {error}"))
        progress.finish_demo()
    return rows, failures


def format_table(rows):
    """Formats demo rows as an aligned text table."""
    header = ("demo", "metric", "value", "compare with")
    body = [(row.demo, row.metric, f"{row.value:.4g}", row.reference) for row in rows]
    widths = [max(len(line[column]) for line in [header, *body]) for column in range(4)]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True))
        for line in [header, *body]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
