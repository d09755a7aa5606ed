"""``manage.py hurricane_audit`` as a CI job runs it: exit codes, output formats, bad input, and
how the guidelines sit in ``manage.py check``."""

import json
from pathlib import Path

import jsonschema
import pytest
from audit_helpers import (
    GOOD,
    MAIN_AUDIT_ENV,
    TESTPROJECT,
    bad_audit,
    bad_env,
    bad_project,
    manage,
    production_env,
    run_audit,
)

from hurricane_runtime.guidelines import GUIDELINES, load_all

load_all()
SARIF_SCHEMA = json.loads((Path(__file__).parent / "sarif_schema.json").read_text())


def good_audit(*args: str, env=None):
    return run_audit(TESTPROJECT, *args, env=env or production_env())


# -- a project that follows the guidelines ---------------------------------------------------


def test_the_test_project_in_production_has_no_finding():
    audit = good_audit(
        "--manifests", str(GOOD), "--dockerfile", str(GOOD / "Dockerfile"), "--fail-level", "INFO"
    )
    assert audit.returncode == 0, audit.stdout + audit.stderr
    assert audit.stdout == "hurricane_audit: 0 finding(s)\n"


def test_kustomize_output_in_one_file_is_read_like_a_folder(tmp_path):
    rendered = tmp_path / "rendered.yaml"
    rendered.write_text(
        "\n---\n".join(
            (GOOD / name).read_text() for name in ("deployment.yaml", "migrate-job.yaml")
        )
    )
    audit = good_audit("--manifests", str(rendered), "--format", "json")
    assert audit.returncode == 0, audit.stderr
    assert audit.findings == []


def test_the_container_environment_decides_the_runtime_options_of_the_pod(tmp_path):
    # The same Deployment with a longer drain: 5 + 5 + 60 no longer fits in 35 seconds.
    manifest = (
        (GOOD / "deployment.yaml")
        .read_text()
        .replace('HURRICANE_DRAIN_TIMEOUT: "20"', 'HURRICANE_DRAIN_TIMEOUT: "60"')
    )
    (tmp_path / "deployment.yaml").write_text(manifest)
    audit = good_audit("--manifests", str(tmp_path), "--format", "json")
    assert [finding["id"] for finding in audit.findings] == ["hurricane.E106"]
    assert "= 70" in audit.findings[0]["message"]
    assert audit.findings[0]["path"] == str(tmp_path / "deployment.yaml")
    sarif = json.loads(good_audit("--manifests", str(tmp_path), "--format", "sarif").stdout)
    jsonschema.validate(sarif, SARIF_SCHEMA, format_checker=jsonschema.FormatChecker())
    location = sarif["runs"][0]["results"][0]["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == (tmp_path / "deployment.yaml").as_uri()


def test_a_silenced_id_is_not_reported(tmp_path):
    manifest = (GOOD / "deployment.yaml").read_text().replace("@sha256:", ":latest-not-a-digest")
    (tmp_path / "deployment.yaml").write_text(manifest)
    assert good_audit("--manifests", str(tmp_path), "--format", "json").ids == {"hurricane.W109"}
    settings = tmp_path / "silenced.py"
    settings.write_text(
        "from testproject.settings_production import *  # noqa: F403\n"
        "SILENCED_SYSTEM_CHECKS = ['hurricane.W109']\n"
    )
    env = production_env()
    env["DJANGO_SETTINGS_MODULE"] = "silenced"
    env["PYTHONPATH"] += f":{tmp_path}"
    assert good_audit("--manifests", str(tmp_path), "--format", "json", env=env).ids == set()


# -- system checks ---------------------------------------------------------------------------


def test_plain_check_in_development_never_runs_the_guidelines():
    result = manage(bad_project(), "check", env=bad_env())
    assert result.returncode == 0, result.stderr
    assert "hurricane." not in result.stdout + result.stderr


def test_check_deploy_runs_the_guidelines():
    result = manage(bad_project(), "check", "--deploy", env=bad_env())
    assert result.returncode == 1
    assert "(hurricane.E001) DEBUG is True" in result.stderr
    assert "See docs/settings.md#production" in result.stderr


def test_check_deploy_on_the_test_project_in_production_has_no_guideline_finding():
    result = manage(TESTPROJECT, "check", "--deploy", env=production_env())
    assert "hurricane." not in result.stdout + result.stderr


# -- exit status and formats -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("fail_level", "returncode"),
    [("CRITICAL", 0), ("ERROR", 1), ("warning", 1), ("DEBUG", 1)],
)
def test_exit_status_follows_the_fail_level(fail_level, returncode):
    audit = run_audit(bad_project(), "--fail-level", fail_level, env=bad_env())
    assert audit.returncode == returncode, audit.stderr
    assert "ERROR hurricane.E001 DEBUG is True" in audit.stdout


def test_warnings_alone_fail_only_at_warning_level(tmp_path):
    manifest = (GOOD / "deployment.yaml").read_text().replace("@sha256:", ":latest-not-a-digest")
    (tmp_path / "deployment.yaml").write_text(manifest)
    assert good_audit("--manifests", str(tmp_path)).returncode == 0
    audit = good_audit("--manifests", str(tmp_path), "--fail-level", "WARNING")
    assert audit.returncode == 1
    assert audit.stderr.strip() == "CommandError: 1 finding(s) at WARNING or above"


def test_text_output_names_file_line_level_id_and_hint():
    audit = run_audit(bad_project(), "--dockerfile", "Dockerfile", env=bad_env())
    lines = audit.stdout.splitlines()
    assert (
        "Dockerfile:5: ERROR hurricane.E201 CMD python manage.py serve runs under /bin/sh -c"
        in lines
    )
    hint = lines[lines.index(next(line for line in lines if "hurricane.E201" in line)) + 1]
    assert hint.startswith("    hint: Write it in exec form")
    assert hint.endswith("See docs/container.md#what-the-dockerfile-does-and-why")
    assert lines[-1].startswith(f"hurricane_audit: {len(lines[:-1]) // 2} finding(s)")


def test_sarif_output_is_valid_and_places_every_finding():
    audit = run_audit(
        bad_project(),
        "--manifests",
        "k8s",
        "--dockerfile",
        "Dockerfile",
        "--format",
        "sarif",
        env=bad_env(**MAIN_AUDIT_ENV),
    )
    assert audit.returncode == 1
    log = json.loads(audit.stdout)
    jsonschema.validate(log, SARIF_SCHEMA, format_checker=jsonschema.FormatChecker())
    run = log["runs"][0]
    rules = run["tool"]["driver"]["rules"]
    assert {rule["id"] for rule in rules} == set(GUIDELINES)
    assert rules[0]["id"] == "hurricane.W001"
    assert len(run["results"]) == len(bad_audit().findings)
    for result in run["results"]:
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        location = result["locations"][0]["physicalLocation"]
        assert (bad_project() / location["artifactLocation"]["uri"]).is_file()
        assert location["region"]["startLine"] >= 1
    levels = {result["ruleId"]: result["level"] for result in run["results"]}
    assert levels["hurricane.E106"] == "error"
    assert levels["hurricane.W109"] == "warning"


def test_json_output_lists_every_finding():
    kinds = {finding["path"].split("/")[0] for finding in bad_audit().findings}
    assert kinds == {"badsite", "k8s", "Dockerfile"}


# -- bad input: one line, exit 2, nothing on stdout ------------------------------------------


def invalid_yaml(tmp_path: Path) -> str:
    (tmp_path / "broken.yaml").write_text("kind: Deployment\nspec: [unclosed\n")
    return str(tmp_path)


def no_from(tmp_path: Path) -> str:
    (tmp_path / "Dockerfile").write_text("RUN echo no base image\n")
    return str(tmp_path / "Dockerfile")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (lambda t: ["--manifests", str(t / "missing")], "manifests: {t}/missing does not exist"),
        (
            lambda t: ["--manifests", invalid_yaml(t)],
            "manifests: {t}/broken.yaml line 3: invalid YAML",
        ),
        (lambda t: ["--dockerfile", str(t / "nope")], "dockerfile: {t}/nope is not a file"),
        (
            lambda t: ["--dockerfile", no_from(t)],
            "dockerfile: {t}/Dockerfile has no FROM instruction",
        ),
        (lambda t: ["--format", "xml"], "unknown format 'xml': expected one of text, json, sarif"),
        (lambda t: ["--fail-level", "LOUD"], "unknown fail level 'LOUD'"),
    ],
    ids=["missing-folder", "invalid-yaml", "missing-dockerfile", "no-from", "format", "level"],
)
def test_bad_input_gets_one_clear_line_and_exit_2(tmp_path, args, message):
    audit = good_audit(*args(tmp_path))
    assert audit.returncode == 2
    assert audit.stdout == ""
    assert len(audit.stderr.strip().splitlines()) == 1, audit.stderr
    assert audit.stderr.startswith("CommandError: " + message.format(t=tmp_path)), audit.stderr
