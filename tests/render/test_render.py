"""Bake the template over its option matrix and treat every bake as a real project."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.helpers import TEMPLATE_DIR

# Every single option change, then the combinations that interact (database x replicas,
# database x ports, slug x derived names).
BAKES = {
    "default": {},
    "sqlite": {"database": "sqlite"},
    "python 3.11": {"python_version": "3.11"},
    "python 3.13": {"python_version": "3.13"},
    "custom ports": {"app_port": "9000", "probe_port": "9100"},
    "swapped ports": {"app_port": "8001", "probe_port": "8000"},
    "project name with dashes": {"project_name": "Order-Intake Service"},
    "explicit slug": {"project_slug": "orders_api"},
    "longest slug": {"project_slug": "a" * 36 + "_api"},
    "author": {"author_name": "Ops Team", "author_email": "ops+orders@corp.example.org"},
    "description": {"description": "Takes orders from the shop and hands them to billing."},
    "namespace": {"k8s_namespace": "team-orders"},
    "public host": {"public_host": "orders.internal.corp.example.org"},
    "image with registry port": {"image_name": "registry.local:5000/team/orders-api"},
    "replicas 1 postgresql": {"replicas": "1"},
    "replicas 5": {"replicas": "5"},
    "text with quotes": {
        "project_name": 'The "Quoted" Café',
        "description": 'Says "hi", C:\\path and <b>&</b>',
        "author_name": "O'Brien",
    },
    "sqlite, python 3.13, custom ports": {
        "database": "sqlite",
        "python_version": "3.13",
        "app_port": "9000",
        "probe_port": "9001",
    },
    "sqlite, explicit replicas 1": {"database": "sqlite", "replicas": "1"},
    "sqlite may use port 5432": {
        "database": "sqlite",
        "probe_port": "5432",
    },
}

ALWAYS = [
    ".env",
    ".gitignore",
    "Makefile",
    "README.md",
    "manage.py",
    "pyproject.toml",
    "requirements.lock",
    "requirements-dev.lock",
    "hurricane_runtime/__init__.py",
    "hurricane_runtime/config.py",
    "{slug}/__init__.py",
    "{slug}/settings/base.py",
    "{slug}/settings/local.py",
    "{slug}/settings/production.py",
    "{slug}/settings/test.py",
    "{slug}/urls.py",
    "{slug}/wsgi.py",
    "{slug}/asgi.py",
    "{slug}/signals.py",
    "{slug}/items/models.py",
    "{slug}/items/checks.py",
    "{slug}/items/views.py",
    "{slug}/items/migrations/0001_initial.py",
    "tests/test_items.py",
    "tests/test_signals.py",
    "docs/index.md",
    "docs/settings.md",
    "docs/testing.md",
    "docs/runtime.md",
    "docs/observability.md",
    "docs/container.md",
    "docs/kubernetes.md",
]
ONLY_POSTGRESQL = [
    "docs/postgresql.md",
    "k8s/overlays/prod/hpa.yaml",
    "k8s/overlays/prod/pdb.yaml",
    "k8s/base/migrate-job.yaml",
]
ONLY_SQLITE = ["docs/sqlite.md"]
NEVER = ["docs/template.md", "docs/benchmarks.md", "hooks", "cookiecutter.json"]


def bake_ok(cookies, answers):
    result = cookies.bake(extra_context=answers, template=str(TEMPLATE_DIR))
    assert result.exception is None, result.exception
    assert result.exit_code == 0
    return result.project_path, result.context


def text_files(project: Path):
    for path in project.rglob("*"):
        if path.is_file() and not {".ruff_cache", ".git"} & set(path.parts):
            try:
                yield path, path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue


def run(args, cwd):
    return subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False)


@pytest.mark.parametrize("answers", BAKES.values(), ids=BAKES.keys())
def test_bake_renders_a_complete_clean_project(cookies, answers):
    project, context = bake_ok(cookies, answers)
    slug = context["project_slug"]
    if answers.get("project_name") == 'The "Quoted" Café':
        assert slug == "the_quoted_cafe"
    assert project.name == slug

    expected = [p.format(slug=slug) for p in ALWAYS]
    if context["database"] == "postgresql":
        expected += ONLY_POSTGRESQL
        absent = ONLY_SQLITE + NEVER
    else:
        expected += ONLY_SQLITE
        absent = ONLY_POSTGRESQL + NEVER
    # Guideline pages are copied only once colleagues have written them.
    docs = TEMPLATE_DIR / "docs"
    expected = [p for p in expected if not p.startswith("docs/") or (docs / p[5:]).is_file()]
    missing = [p for p in expected if not (project / p).exists()]
    assert missing == []
    present = [p for p in absent if (project / p).exists()]
    assert present == []
    assert not list(project.rglob("__pycache__"))

    user_text = {context["description"], context["project_name"]}
    for path, text in text_files(project):
        for value in user_text:
            text = text.replace(value, "")
        assert "{{ cookiecutter." not in text, path
        assert "{%" not in text, path

    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert pyproject["project"]["description"] == context["description"]
    assert pyproject["project"]["authors"] == [
        {"name": context["author_name"], "email": context["author_email"]}
    ]

    lint = run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], project)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = run([sys.executable, "-m", "ruff", "format", "--no-cache", "--check", "."], project)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
def test_dependencies_follow_the_database(cookies, database):
    project, _ = bake_ok(cookies, {"database": database})
    for name in ("pyproject.toml", "requirements.lock", "requirements-dev.lock"):
        text = (project / name).read_text()
        assert ("psycopg" in text) is (database == "postgresql"), name
        assert "django==" in text.lower() or name == "pyproject.toml"


def test_answers_reach_the_runtime_settings(cookies):
    project, _ = bake_ok(cookies, {"app_port": "9000", "probe_port": "9100"})
    base = (project / "hurricane_service/settings/base.py").read_text()
    assert 'env_str("HURRICANE_PORT", "9000")' in base
    assert 'env_str("HURRICANE_PROBE_PORT", "9100")' in base
    pyproject = (project / "pyproject.toml").read_text()
    assert 'target-version = "py312"' in pyproject


def test_local_secret_is_random_private_and_git_ignored(cookies):
    first, _ = bake_ok(cookies, {})
    second, _ = bake_ok(cookies, {})
    secrets = [
        (p / ".env").read_text().split("DJANGO_SECRET_KEY=")[1].strip() for p in (first, second)
    ]
    assert secrets[0] != secrets[1]
    assert len(secrets[0]) >= 50
    assert (first / ".env").stat().st_mode & 0o077 == 0
    assert ".env" in (first / ".gitignore").read_text().splitlines()


def test_runtime_copy_is_the_template_runtime(cookies):
    project, _ = bake_ok(cookies, {})
    source = TEMPLATE_DIR / "hurricane_runtime"
    expected = {
        p.relative_to(source)
        for p in source.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }
    copied = {
        p.relative_to(project / "hurricane_runtime")
        for p in (project / "hurricane_runtime").rglob("*")
        if p.is_file()
    }
    assert copied == expected


def test_next_steps_are_printed(cookies, capfd):
    bake_ok(cookies, {"app_port": "9000"})
    out = capfd.readouterr().out
    assert "make install" in out
    assert "make run" in out
    assert "http://127.0.0.1:9000/api/items/" in out


# How each database is named in text, for the test below.
DATABASE_WORDS = {"postgresql": r"postgres|psycopg|\b5432\b", "sqlite": r"sqlite"}


def deploy_facing(project: Path):
    """The manifests and the pages about deploying."""
    yield from (path for path in (project / "k8s").rglob("*") if path.is_file())
    yield project / "docs" / "kubernetes.md"
    yield project / "deploy.mk"


@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
def test_pages_and_manifests_never_mention_the_database_not_chosen(cookies, database):
    """Advice for the other database breaks a deploy (a PostgreSQL URL in a SQLite project's
    Secret overrides its file). A SQLite project's pages and manifests never name PostgreSQL.
    A PostgreSQL project runs SQLite locally and in its tests when no DATABASE_URL is set, so
    only its manifests and deploy pages must not name SQLite."""
    project, _ = bake_ok(cookies, {"database": database})
    other = "sqlite" if database == "postgresql" else "postgresql"
    if database == "sqlite":
        paths = [project / "README.md", *(project / "docs").glob("*.md"), *deploy_facing(project)]
    else:
        paths = list(deploy_facing(project))
    assert len(paths) > 5
    mentions = []
    for path in paths:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(DATABASE_WORDS[other], line, re.IGNORECASE):
                mentions.append(f"{path.relative_to(project)}:{number}: {line.strip()}")
    assert mentions == []
    # The passages for the chosen database are there, without their markers.
    for page in (project / "docs").glob("*.md"):
        text = page.read_text(encoding="utf-8")
        assert "<!-- only" not in text and "<!-- end only -->" not in text, page.name
    kubernetes = (project / "docs" / "kubernetes.md").read_text(encoding="utf-8")
    expected = "PersistentVolumeClaim" if database == "sqlite" else "migration Job"
    assert expected in kubernetes


def test_template_pages_open_and_close_every_answer_passage():
    for page in (TEMPLATE_DIR / "docs").glob("*.md"):
        open_passage = None
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            marker = line.strip()
            for answer in re.findall(r"<!-- only ([^>]*) -->", line):
                assert re.fullmatch(r"database=(postgresql|sqlite)", answer), (
                    f"{page.name}:{number}: unknown answer in {answer}"
                )
            if marker.startswith("<!-- only "):
                assert open_passage is None, f"{page.name}:{number}: passage inside a passage"
                open_passage = number
            elif marker == "<!-- end only -->":
                assert open_passage is not None, f"{page.name}:{number}: end without start"
                open_passage = None
        assert open_passage is None, f"{page.name}:{open_passage}: passage never closed"
