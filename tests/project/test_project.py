"""Representative bakes installed as their README says, then checked with their own tools.

Each bake gets a fresh virtual environment through `make install` (pip's cache makes the
second install fast). PostgreSQL bakes run their tests against the server on 127.0.0.1.
"""

import os
import secrets
import shutil
import subprocess
import zipfile

import pytest

from tests.helpers import bake, postgres_url

BAKES = {
    "postgresql": {},
    "sqlite-py313-ports": {
        "database": "sqlite",
        "python_version": "3.13",
        "app_port": "9000",
        "probe_port": "9001",
        "project_slug": "orders_api",
    },
}


def run(args, cwd, env=None, timeout=600):
    result = subprocess.run(
        args,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, f"{args} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module", params=BAKES.keys())
def project(request, tmp_path_factory):
    answers = BAKES[request.param]
    project = bake(tmp_path_factory.mktemp(request.param), **answers)
    # Exactly the README's first step.
    readme = (project / "README.md").read_text()
    assert "    make install" in readme
    run(["make", "install"], project)
    return project


def manage(project, *args, env=None):
    return run([str(project / ".venv/bin/python"), "manage.py", *args], project, env=env)


def database(project) -> str:
    return "postgresql" if "psycopg" in (project / "pyproject.toml").read_text() else "sqlite"


def test_installed_dependencies_are_consistent(project):
    run([str(project / ".venv/bin/python"), "-m", "pip", "check"], project)


def test_own_tests_pass(project):
    env = {}
    if database(project) == "postgresql":
        url = postgres_url("hurricane_project")
        if url is None:
            pytest.skip("PostgreSQL on 127.0.0.1:5432 is not reachable")
        env["DATABASE_URL"] = url
    else:
        env["DATABASE_URL"] = ""
    result = run(["make", "test"], project, env=env)
    assert " passed" in result.stdout


def test_lint_is_clean(project):
    run(["make", "lint"], project)


def test_migrations_match_the_models(project):
    manage(project, "makemigrations", "--check", "--dry-run")


def test_production_settings_pass_deploy_checks(project):
    slug = project.name
    env = {
        "DJANGO_SETTINGS_MODULE": f"{slug}.settings.production",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "service.example.com",
        "DATABASE_URL": (
            "postgres://user:password@db.example.com:5432/service"
            if database(project) == "postgresql"
            else "sqlite:////tmp/never-opened.sqlite3"
        ),
    }
    manage(project, "check", "--deploy", "--fail-level", "WARNING", env=env)


def test_collectstatic_writes_static_root(project):
    result = manage(project, "collectstatic", "--noinput")
    assert f"static files copied to '{project / 'staticfiles'}'" in result.stdout


def test_make_help_lists_the_everyday_targets(project):
    out = run(["make"], project).stdout
    for target in ("help", "install", "run", "test", "lint", "migrate", "lock"):
        assert f" {target} " in out, target


def test_lock_files_are_current(project, tmp_path):
    if shutil.which("uv") is None:
        pytest.skip("uv is not installed: cannot check the lock files")
    copy = tmp_path / "copy"
    shutil.copytree(project, copy, ignore=shutil.ignore_patterns(".venv", "*.lock"))
    for name in ("requirements.lock", "requirements-dev.lock"):
        shutil.copy(project / name, copy / name)
    result = subprocess.run(["make", "lock"], cwd=copy, capture_output=True, text=True, check=False)
    if result.returncode != 0 and "error sending request" in result.stderr.lower():
        pytest.skip("PyPI is not reachable: cannot check the lock files")
    assert result.returncode == 0, result.stderr
    for name in ("requirements.lock", "requirements-dev.lock"):
        assert (copy / name).read_text() == (project / name).read_text(), (
            f"{name} is stale: run `python tests/lock.py` in the template"
        )


def test_distribution_holds_the_service_and_the_runtime(project, tmp_path):
    run(
        [
            str(project / ".venv/bin/python"),
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(tmp_path),
            ".",
        ],
        project,
    )
    (wheel,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        top_level = {name.split("/")[0] for name in archive.namelist()}
    assert project.name in top_level
    assert "hurricane_runtime" in top_level
    assert "tests" not in top_level
