"""The audit's results as text (people), JSON (scripts) or SARIF 2.1.0 (code scanning)."""

import json
from pathlib import Path

from .. import __version__
from .audit import Result
from .registry import GUIDELINES, LEVEL_NAMES, ordered

FORMATS = ("text", "json", "sarif")
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
SARIF_LEVELS = {"DEBUG": "note", "INFO": "note", "WARNING": "warning"}


def _where(result: Result) -> str:
    if result.path is None:
        return ""
    return f"{result.path}:{result.line}: " if result.line else f"{result.path}: "


def render_text(results: list[Result]) -> str:
    lines = [
        f"{_where(result)}{result.level_name} {result.id} {result.message}\n"
        f"    hint: {result.hint} See {result.doc}"
        for result in results
    ]
    counts = {}
    for result in results:
        counts[result.level_name] = counts.get(result.level_name, 0) + 1
    summary = ", ".join(f"{count} {name}" for name, count in sorted(counts.items()))
    lines.append(f"hurricane_audit: {len(results)} finding(s){': ' + summary if summary else ''}")
    return "\n".join(lines) + "\n"


def render_json(results: list[Result]) -> str:
    return json.dumps(
        {
            "findings": [
                {
                    "id": result.id,
                    "level": result.level_name,
                    "message": result.message,
                    "hint": result.hint,
                    "doc": result.doc,
                    "path": result.path,
                    "line": result.line,
                }
                for result in results
            ]
        },
        indent=2,
    )


def _sarif_rule(rule_id: str) -> dict:
    row = GUIDELINES.get(rule_id)
    if row is None:
        return {"id": rule_id}
    return {
        "id": row.id,
        "name": row.function.__name__,
        "shortDescription": {"text": row.title},
        "help": {"text": f"{row.hint} See {row.doc}"},
        # The guideline's page is a path in the project, not an absolute URI: it goes into
        # the help text, since SARIF's helpUri must be absolute.
        "defaultConfiguration": {"level": SARIF_LEVELS.get(LEVEL_NAMES[row.level], "error")},
    }


def _uri(path: str) -> str:
    """Paths inside the project stay relative (code scanning maps them to the repository)."""
    as_path = Path(path)
    return as_path.as_uri() if as_path.is_absolute() else as_path.as_posix()


def render_sarif(results: list[Result]) -> str:
    """One run, every guideline as a rule, every finding as a result with its location."""
    rule_ids = [row.id for row in ordered()]
    rule_ids += sorted({result.id for result in results} - set(rule_ids))
    index = {rule_id: position for position, rule_id in enumerate(rule_ids)}
    sarif_results = []
    for result in results:
        entry = {
            "ruleId": result.id,
            "ruleIndex": index[result.id],
            "level": SARIF_LEVELS.get(result.level_name, "error"),
            "message": {"text": f"{result.message}. {result.hint}"},
        }
        if result.path:
            location = {"artifactLocation": {"uri": _uri(result.path)}}
            if result.line:
                location["region"] = {"startLine": result.line}
            entry["locations"] = [{"physicalLocation": location}]
        sarif_results.append(entry)
    log = {
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "hurricane_audit",
                        "version": __version__,
                        "rules": [_sarif_rule(rule_id) for rule_id in rule_ids],
                    }
                },
                "results": sarif_results,
            }
        ],
    }
    return json.dumps(log, indent=2)


RENDERERS = {"text": render_text, "json": render_json, "sarif": render_sarif}
