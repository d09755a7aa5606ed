"""Every guideline id is explained in docs/audit.md and links to a section that exists."""

import re
from pathlib import Path

import pytest

from hurricane_runtime.guidelines import GUIDELINES, load_all

load_all()
DOCS = Path(__file__).resolve().parents[3] / "docs"


def anchors(page: Path) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    found = set()
    for line in page.read_text(encoding="utf-8").splitlines():
        match = re.match(r"#{1,6}\s+(.*)", line)
        if match:
            text = re.sub(r"[^\w\- ]", "", match.group(1).strip().lower())
            found.add(text.replace(" ", "-"))
    return found


@pytest.mark.parametrize("guideline_id", sorted(GUIDELINES))
def test_each_id_links_to_a_section_that_exists(guideline_id):
    page, _, anchor = GUIDELINES[guideline_id].doc.partition("#")
    assert page.startswith("docs/") and anchor
    assert anchor in anchors(DOCS / page.removeprefix("docs/")), GUIDELINES[guideline_id].doc


def test_audit_page_explains_every_id_and_no_other():
    headings = re.findall(r"^#### (hurricane\.[EW]\d{3})$", (DOCS / "audit.md").read_text(), re.M)
    assert sorted(headings) == sorted(GUIDELINES)


def test_every_link_of_the_audit_page_resolves():
    text = (DOCS / "audit.md").read_text(encoding="utf-8")
    for page, anchor in re.findall(r"\]\(([\w.]+\.md)#([\w-]+)\)", text):
        assert anchor in anchors(DOCS / page), f"{page}#{anchor}"
