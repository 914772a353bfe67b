"""core.testing.readme: which blocks of a Markdown file run, on which backend, and errors."""

import pathlib
import textwrap

import pytest

from dl_techniques.losses.core.testing.readme import code_blocks, run_markdown

DOCUMENT = """\
# Title

```bash
pip install something
```

<!-- setup
values = [1, 2]
-->
```python
total = sum(values)
```

- A list item with an indented block:

  ```python tensorflow torch
  total += 10
  ```

```text
>>> output
```
"""


def _write(tmp_path, text, name="README.md"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_blocks_carry_language_backends_and_line(tmp_path):
    blocks = code_blocks(_write(tmp_path, DOCUMENT))
    assert [(b.language, b.line) for b in blocks] == [
        ("bash", 4),
        ("setup", 8),
        ("python", 11),
        ("python", 17),
        ("text", 21),
    ]
    assert [b.runs for b in blocks] == [False, True, True, True, False]
    assert blocks[2].backends == ("tensorflow", "jax", "torch")
    assert blocks[3].backends == ("tensorflow", "torch")
    assert blocks[3].source == "total += 10"


@pytest.mark.parametrize(
    ("backend", "expected_total"), [("jax", 3), ("torch", 13), ("tensorflow", 13)]
)
def test_blocks_share_one_namespace_and_respect_backends(tmp_path, backend, expected_total):
    path = _write(
        tmp_path,
        DOCUMENT + "\n```python\nresult_file = open('total.txt', 'w')\n"
        "result_file.write(str(total))\nresult_file.close()\n```\n",
    )
    work_dir = tmp_path / "work"
    work_dir.mkdir()
    ran = run_markdown(path, backend, work_dir)
    assert len(ran) == (3 if backend == "jax" else 4)
    assert (work_dir / "total.txt").read_text() == str(expected_total)


def test_a_failing_block_reports_the_markdown_line(tmp_path):
    path = _write(tmp_path, "text\n\n```python\nx = 1\nraise RuntimeError('documented')\n```\n")
    with pytest.raises(RuntimeError, match="documented") as error:
        run_markdown(path, "jax", tmp_path)
    frame = error.traceback[-1]
    assert pathlib.Path(str(frame.path)) == path and frame.lineno + 1 == 5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("```\nls\n```\n", "without a language"),
        ("```ruby\nputs 1\n```\n", "neither run"),
        ("```python tpu\nx = 1\n```\n", "unknown backend"),
        ("```python\nx = 1\n", "never closed"),
        ("<!-- setup\nx = 1\n", "never closed"),
    ],
    ids=["no-language", "unknown-language", "unknown-backend", "open-block", "open-setup"],
)
def test_badly_marked_blocks_are_errors(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        code_blocks(_write(tmp_path, text))
