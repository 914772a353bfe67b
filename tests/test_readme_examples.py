"""Every code block of every README, run as written on the backend of this process.

Python blocks run in document order (core's ``testing.readme`` harness); a block
written for other backends does not run here. Blocks in other languages (shell
commands, output) are reported as skipped, by name.
"""

import pathlib

import keras
import pytest

from dl_techniques.losses.core.testing.readme import code_blocks, run_markdown

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
READMES = sorted([REPO_ROOT / "README.md", *REPO_ROOT.glob("packages/*/README.md")])
BACKEND = keras.backend.backend()


def _readme_id(path):
    return str(path.relative_to(REPO_ROOT))


def _blocks_not_run():
    # A badly marked README fails its own test below, not the whole module.
    params = []
    for path in READMES:
        try:
            blocks = code_blocks(path)
        except ValueError:
            continue
        params += [
            pytest.param(block, id=f"{_readme_id(path)}:{block.line}-{block.language}")
            for block in blocks
            if not block.runs
        ]
    return params


NOT_RUN = _blocks_not_run()


@pytest.mark.parametrize("readme", READMES, ids=_readme_id)
def test_readme_python_blocks_run(readme, tmp_path):
    blocks = code_blocks(readme)
    ran = run_markdown(readme, BACKEND, tmp_path)
    written_for_here = [b for b in blocks if b.runs and BACKEND in b.backends]
    assert ran == written_for_here
    keras.backend.clear_session()


@pytest.mark.parametrize("block", NOT_RUN)
def test_readme_block_in_another_language(block):
    where = f"{_readme_id(block.path)}:{block.line}"
    pytest.skip(f"{where}: a {block.language} block, shown in the README, not Python")
