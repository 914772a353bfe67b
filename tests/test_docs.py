"""tools/docs.py: what its link check and its check of the tests' references reject.

The checks step builds the real site; these tests show that the checks it
relies on fail where they should, on small made-up inputs.
"""

import importlib.util
import pathlib

import pytest

pytestmark = pytest.mark.backend_independent

DOCS_TOOL = pathlib.Path(__file__).resolve().parent.parent / "tools" / "docs.py"


@pytest.fixture(scope="module")
def docs():
    spec = importlib.util.spec_from_file_location("_dl_losses_docs_tool", DOCS_TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_site(site, pages):
    for path, body in pages.items():
        (site / path).parent.mkdir(parents=True, exist_ok=True)
        (site / path).write_text(f"<html><body>{body}</body></html>")


def test_link_check_passes_files_anchors_and_https_links(docs, tmp_path):
    write_site(
        tmp_path,
        {
            "index.html": '<a href="losses/a.html#value">a</a> <a href="https://arxiv.org/x">p</a>',
            "losses/a.html": '<h2 id="value">V</h2><a href="../index.html">home</a>'
            '<a href="#value">here</a><img src="/logo.svg">',
            "logo.svg": "",
        },
    )
    problems, external = docs.check_links(tmp_path)
    assert problems == []
    assert external == {"https://arxiv.org/x"}


def test_link_check_names_a_missing_page_a_missing_anchor_and_plain_http(docs, tmp_path):
    write_site(
        tmp_path,
        {
            "index.html": '<a href="gone.html">x</a> <a href="a.html#nowhere">y</a>'
            '<a href="http://example.org/">z</a> <a href="../outside.html">w</a>',
            "a.html": '<p id="somewhere"></p>',
        },
    )
    problems, _ = docs.check_links(tmp_path)
    assert problems == [
        "index.html: 'gone.html' names no file of the site",
        "index.html: 'a.html#nowhere' names an anchor the page lacks",
        "index.html: external link 'http://example.org/' is not https",
        "index.html: '../outside.html' names no file of the site",
    ]


def family_with_tests(docs, root, test_text):
    tests = root / "packages" / "acme" / "tests"
    tests.mkdir(parents=True)
    (tests / "test_log_cosh.py").write_text(test_text)
    entries = (
        docs.Entry("LogCoshLoss", "acme", "acme.log_cosh:LogCoshLoss"),
        docs.Entry("make_loss", "acme", "acme.log_cosh:make_loss"),
    )
    return docs.FamilyDocs("acme", "acme-losses", root / "packages" / "acme", entries)


def test_references_must_cover_every_public_name_and_be_named_by_their_tests(docs, tmp_path):
    family = family_with_tests(docs, tmp_path, "from acme import LogCoshLoss\n")
    verified = tmp_path / "verified"
    verified.mkdir()
    (verified / "acme.toml").write_text(
        '[LogCoshLoss]\nagainst = "numpy"\ntests = ["test_log_cosh.py", "test_gone.py"]\n'
        '[OldLoss]\nagainst = "numpy"\ntests = ["test_log_cosh.py"]\n'
    )
    with pytest.raises(docs.DocsError) as raised:
        docs.read_verified(family, verified)
    message = str(raised.value)
    assert "no entry for make_loss" in message
    assert "OldLoss is not a public name" in message
    assert "LogCoshLoss cites test_gone.py, which does not exist" in message


def test_a_cited_test_must_name_the_object_or_reach_it_as_stated(docs, tmp_path):
    family = family_with_tests(docs, tmp_path, "loss = LogCoshLoss()\nloss.state\n")
    verified = tmp_path / "verified"
    verified.mkdir()
    rows = (
        '[LogCoshLoss]\nagainst = "numpy"\ntests = ["test_log_cosh.py"]\n'
        '[make_loss]\nagainst = "numpy"\ntests = ["test_log_cosh.py"]\n'
    )
    (verified / "acme.toml").write_text(rows)
    with pytest.raises(docs.DocsError, match="make_loss cites test_log_cosh.py, which never has"):
        docs.read_verified(family, verified)
    (verified / "acme.toml").write_text(rows + 'reached_as = ".state"\n')
    assert set(docs.read_verified(family, verified)) == {"LogCoshLoss", "make_loss"}


def test_readme_links_point_at_the_page_a_file_became_or_fail(docs):
    pages = {
        "README.md": "getting-started.md",
        "packages/vision/README.md": "losses/vision/index.md",
    }
    text = "See [the root](../../README.md#usage) and [a site](https://example.org)."
    linked = docs.site_links(text, "packages/vision/README.md", "losses/vision/index.md", pages)
    assert (
        linked
        == "See [the root](../../getting-started.md#usage) and [a site](https://example.org)."
    )
    with pytest.raises(docs.DocsError, match="names a file the site has no page for"):
        docs.site_links("[x](LICENSE)", "README.md", "getting-started.md", pages)
