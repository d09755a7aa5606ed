"""Every guideline id finds its seeded problem in the deliberately bad project."""

import pytest
from audit_helpers import bad_audit, bad_audit_invalid_options

from hurricane_runtime.guidelines import GUIDELINES, load_all

load_all()

# The audit that shows each id (see conftest.py): the main one, or the one with invalid options.
FOUND_BY_SECOND_AUDIT = {"hurricane.E003", "hurricane.W005"}


def test_the_main_audit_fails_with_exit_1():
    audit = bad_audit()
    assert audit.returncode == 1, audit.stderr
    assert "finding(s) at ERROR or above" in audit.stderr


@pytest.mark.parametrize("guideline_id", sorted(GUIDELINES))
def test_each_guideline_finds_its_seeded_problem(guideline_id):
    second = guideline_id in FOUND_BY_SECOND_AUDIT
    audit = bad_audit_invalid_options() if second else bad_audit()
    found = [f for f in audit.findings if f["id"] == guideline_id]
    assert found, f"{guideline_id} not found; found {sorted(audit.ids)}\n{audit.stderr}"
    row = GUIDELINES[guideline_id]
    for finding in found:
        assert finding["level"] == ("ERROR" if guideline_id.split(".")[1][0] == "E" else "WARNING")
        assert finding["hint"] == row.hint
        assert finding["doc"] == row.doc
        assert finding["path"] and finding["line"] >= 1
