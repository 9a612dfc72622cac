"""The docs' shell blocks: how they are read, and that each is run by the docs test or says
why it is not (tests/e2e/test_docs.py runs the rest)."""

from __future__ import annotations

import pytest

from harness.docblocks import Block, DocBlockError, blocks, documented_pages, page_blocks, script

pytestmark = pytest.mark.unit

PAGE = """# A page

```sh
kubectl get cflow
```

````markdown
```sh
not a block of its own
```
````

```sh skip="needs a Docker engine"
docker push x
```

```text
collectionflow get [NAME]
```
"""

# The pages whose runnable blocks tests/e2e/test_docs.py runs, and the test that runs them.
RUN_BY_TEST = {
    "README.md": "test_readme_quickstart",
    "docs/usage.md": "test_usage_walkthrough",
    "docs/custom-phases.md": "test_custom_phase_image",
    "docs/install.md": "test_install_guide",
}


def test_blocks_are_read_with_their_language_reason_and_line() -> None:
    found = blocks(PAGE, "page.md")
    assert [(b.line, b.language, b.skip, b.runs) for b in found] == [
        (3, "sh", None, True),
        (7, "markdown", None, False),
        (13, "sh", "needs a Docker engine", False),
        (17, "text", None, False),
    ]
    assert found[1].text == "```sh\nnot a block of its own\n```"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("```sh\nls\n", "never closed"),
        ("```sh skip\nls\n```\n", 'skip="why"'),
        ("```sh run=yes\nls\n```\n", 'skip="why"'),
        ('```sh skip="open\nls\n```\n', "info string"),
    ],
)
def test_an_unreadable_block_is_refused_with_where_it_is(text: str, message: str) -> None:
    with pytest.raises(DocBlockError, match=message) as raised:
        blocks(text, "bad.md")
    assert str(raised.value).startswith("bad.md:1")


def test_a_page_script_runs_its_blocks_in_order_and_stops_at_the_first_failure() -> None:
    text = script(blocks(PAGE, "page.md"))
    assert text.startswith("set -euo pipefail\n")
    assert "kubectl get cflow" in text
    assert "docker push" not in text
    assert "collectionflow get" not in text
    assert "+++ page.md:3" in text


def test_every_shell_block_runs_in_a_test_or_says_why_not() -> None:
    unrun: list[str] = []
    for page in documented_pages():
        for block in page_blocks(page):
            if block.runs and page not in RUN_BY_TEST:
                unrun.append(f"{block.where}: a sh block no test runs")
            if block.language in ("bash", "shell", "console") and "$ " not in block.text:
                unrun.append(f"{block.where}: commands go in sh blocks")
    assert unrun == []


def test_the_docs_test_runs_the_pages_it_claims() -> None:
    from pathlib import Path

    source = (Path(__file__).parents[1] / "e2e" / "test_docs.py").read_text()
    for page, test in RUN_BY_TEST.items():
        assert f"def {test}(" in source
        assert f'"{page}"' in source
        assert any(block.runs for block in page_blocks(page)), f"{page} has nothing to run"


def test_blocks_that_are_not_run_are_few_and_each_says_why() -> None:
    skipped: list[Block] = [
        block for page in documented_pages() for block in page_blocks(page) if block.skip
    ]
    assert all(len(block.skip or "") >= 12 for block in skipped), skipped
    ran = [block for page in documented_pages() for block in page_blocks(page) if block.runs]
    assert len(skipped) < len(ran) / 2, [block.where for block in skipped]
