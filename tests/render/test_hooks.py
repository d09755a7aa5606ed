"""The pre-generation hook refuses bad answers with a message, and nothing is written."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cookiecutter.exceptions import FailedHookException
from cookiecutter.main import cookiecutter

from tests.helpers import TEMPLATE_DIR, bake

# answers -> a piece of the message that says what is wrong
REFUSED = {
    "slug with dashes": ({"project_slug": "my-service"}, "'my-service' contains '-'"),
    "slug uppercase": ({"project_slug": "Orders"}, "'Orders' contains uppercase letters"),
    "slug starts with digit": ({"project_slug": "1abc"}, "'1abc' must start with a letter"),
    "slug starts with underscore": ({"project_slug": "_abc"}, "must start with a letter"),
    "slug double underscore": ({"project_slug": "orders__api"}, "contains '__'"),
    "slug trailing underscore": ({"project_slug": "orders_"}, "ends with '_'"),
    "slug with a dot": ({"project_slug": "orders.api"}, "contains '.': only a-z, 0-9 and '_'"),
    "slug with a space": ({"project_slug": "orders api"}, "contains ' ': only a-z"),
    "slug non-ascii": ({"project_slug": "café"}, "contains 'é': only a-z"),
    "django 6.1 on python 3.11": (
        {"django_version": "6.1", "python_version": "3.11"},
        "django_version 6.1 needs Python 3.12 or newer, and python_version is 3.11",
    ),
    "slug too long": ({"project_slug": "a" * 41}, "at most 40"),
    "slug keyword": ({"project_slug": "lambda"}, "Python keyword"),
    "slug soft keyword": ({"project_slug": "match"}, "Python keyword"),
    "slug stdlib": ({"project_slug": "logging"}, "standard-library module 'logging'"),
    "slug stdlib email": ({"project_slug": "email"}, "standard-library module 'email'"),
    "slug django": ({"project_slug": "django"}, "shadows the module or folder 'django'"),
    "slug tornado": ({"project_slug": "tornado"}, "shadows the module or folder 'tornado'"),
    "slug runtime": ({"project_slug": "hurricane_runtime"}, "'hurricane_runtime'"),
    "slug psycopg": ({"project_slug": "psycopg"}, "'psycopg'"),
    "slug pytest": ({"project_slug": "pytest"}, "'pytest'"),
    "slug prometheus": ({"project_slug": "prometheus_client"}, "'prometheus_client'"),
    "slug tests folder": ({"project_slug": "tests"}, "'tests'"),
    "empty project name": ({"project_name": " ", "project_slug": "svc"}, "project_name is empty"),
    "multi-line description": ({"description": "one\ntwo"}, "description spans several lines"),
    "bad email": ({"author_email": "jane.example.com"}, "not an e-mail address"),
    "email with space": ({"author_email": "jane doe@example.com"}, "not an e-mail address"),
    "app port privileged": ({"app_port": "80"}, "app_port '80' is not a port from 1024 to 65535"),
    "probe port too high": ({"probe_port": "70000"}, "probe_port '70000' is not a port"),
    "port not a number": ({"app_port": "http"}, "app_port 'http' is not a port"),
    "equal ports": ({"app_port": "8080", "probe_port": "8080"}, "both 8080"),
    "port of postgresql": ({"app_port": "5432"}, "app_port 5432 is the port of PostgreSQL"),
    "port of rabbitmq": (
        {"amqp_consumer": "yes", "probe_port": "5672"},
        "probe_port 5672 is the port of RabbitMQ, which amqp_consumer=yes uses",
    ),
    "port of rabbitmq over tls": (
        {"amqp_consumer": "yes", "app_port": "5671"},
        "app_port 5671 is the port of RabbitMQ over TLS",
    ),
    "slug of the amqp client": ({"project_slug": "aio_pika"}, "'aio_pika'"),
    "port of redis with websockets": (
        {"websockets": "yes", "probe_port": "6379"},
        "probe_port 6379 is the port of Redis, which websockets=yes uses",
    ),
    "slug of a websockets dependency": ({"project_slug": "channels"}, "channels"),
    "celery with sqlite": (
        {"celery": "redis", "database": "sqlite", "replicas": "1"},
        "celery redis with database sqlite: Celery runs its tasks in worker pods",
    ),
    "port of rabbitmq with celery": (
        {"celery": "rabbitmq", "app_port": "5672"},
        "app_port 5672 is the port of RabbitMQ, which celery=rabbitmq uses",
    ),
    "port of redis with celery": (
        {"celery": "redis", "probe_port": "6379"},
        "probe_port 6379 is the port of Redis, which celery=redis uses",
    ),
    "slug of a celery dependency": ({"project_slug": "kombu"}, "kombu"),
    "replicas zero": ({"replicas": "0"}, "replicas '0' is not a whole number from 1 to 100"),
    "replicas text": ({"replicas": "two"}, "replicas 'two' is not a whole number"),
    "replicas negative": ({"replicas": "-1"}, "replicas '-1' is not a whole number"),
    "sqlite with replicas": (
        {"database": "sqlite", "replicas": "3"},
        "only 1 replica works. Choose database postgresql",
    ),
    "namespace uppercase": ({"k8s_namespace": "Orders"}, "not a valid Kubernetes namespace"),
    "namespace underscore": ({"k8s_namespace": "orders_api"}, "not a valid Kubernetes namespace"),
    "namespace too long": ({"k8s_namespace": "a" * 60}, "at most 59 characters"),
    "namespace kube-system": ({"k8s_namespace": "kube-system"}, "reserved for the cluster"),
    "namespace default": ({"k8s_namespace": "default"}, "reserved for the cluster"),
    "host single label": ({"public_host": "orders"}, "not a fully qualified DNS name"),
    "host uppercase": ({"public_host": "Orders.Example.com"}, "not a fully qualified DNS name"),
    "host underscore": ({"public_host": "orders_api.example.com"}, "not a fully qualified"),
    "host scheme": ({"public_host": "https://orders.example.com"}, "not a fully qualified"),
    "host wildcard": ({"public_host": "*.example.com"}, "not a fully qualified DNS name"),
    "host ip": ({"public_host": "10.0.0.1"}, "is an IP address"),
    "host label too long": ({"public_host": "a" * 64 + ".example.com"}, "not a fully qualified"),
    "image with tag": (
        {"image_name": "registry.example.com/orders:1.0"},
        "contains a tag or digest",
    ),
    "image with digest": ({"image_name": "orders@sha256:" + "a" * 64}, "contains a tag or digest"),
    "image uppercase": ({"image_name": "registry.example.com/Orders"}, "not an image reference"),
    "image with scheme": ({"image_name": "https://registry.example.com/orders"}, "not an image"),
    "image empty path": ({"image_name": "registry.example.com//orders"}, "not an image reference"),
}


def no_files_under(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


@pytest.mark.parametrize(("answers", "message"), REFUSED.values(), ids=REFUSED.keys())
def test_bad_answer_is_refused_and_nothing_is_written(tmp_path, capfd, answers, message):
    with pytest.raises(FailedHookException):
        bake(tmp_path, **answers)

    err = capfd.readouterr().err
    assert message in err
    assert "Nothing was written" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("python_version", "3.9"),
        ("database", "mysql"),
        ("django_version", "4.2"),
        ("amqp_consumer", "maybe"),
        ("websockets", "maybe"),
        ("celery", "yes"),
    ],
)
def test_unknown_choice_is_refused_by_cookiecutter_before_anything_is_written(
    tmp_path, name, value
):
    with pytest.raises(ValueError, match="but the choices are"):
        bake(tmp_path, **{name: value})
    assert list(tmp_path.iterdir()) == []


def test_refusal_says_how_to_replay_the_answers_and_the_replay_works(tmp_path):
    """The refused answers were saved by cookiecutter: the message names the file, and
    `--replay-file` with one answer changed renders without asking anything again."""
    replay_dir = tmp_path / "replay"
    config = tmp_path / "config.yaml"
    config.write_text(f"replay_dir: {replay_dir}\ncookiecutters_dir: {tmp_path / 'cc'}\n")
    (tmp_path / "out").mkdir()
    refused = subprocess.run(
        [
            sys.executable,
            "-m",
            "cookiecutter",
            "--no-input",
            "--config-file",
            str(config),
            str(TEMPLATE_DIR),
            "project_slug=my-service",
            "app_port=9000",
            "-o",
            "out",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert refused.returncode != 0
    assert "cookiecutter --replay-file my-answers.json" in refused.stderr
    saved_name = f"{TEMPLATE_DIR.name}.json"
    assert f"~/.cookiecutter_replay/{saved_name}" in refused.stderr
    assert list((tmp_path / "out").iterdir()) == []

    answers = json.loads((replay_dir / saved_name).read_text())
    answers["cookiecutter"]["project_slug"] = "my_service"
    (tmp_path / "my-answers.json").write_text(json.dumps(answers))
    replayed = subprocess.run(
        [
            sys.executable,
            "-m",
            "cookiecutter",
            "--config-file",
            str(config),
            "--replay-file",
            "my-answers.json",
            str(TEMPLATE_DIR),
            "-o",
            "out",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert replayed.returncode == 0, replayed.stderr
    settings = tmp_path / "out" / "my_service" / "my_service" / "settings" / "base.py"
    assert 'env_str("HURRICANE_PORT", "9000")' in settings.read_text()


def test_every_problem_is_reported_at_once(tmp_path, capfd):
    with pytest.raises(FailedHookException):
        bake(tmp_path, app_port="80", k8s_namespace="Bad", image_name="x:1")
    err = capfd.readouterr().err
    assert err.count("\n  - ") == 3


def test_refused_bake_with_pytest_cookies_leaves_no_project(cookies, tmp_path, capfd):
    result = cookies.bake(extra_context={"project_slug": "django"}, template=str(TEMPLATE_DIR))

    assert result.exit_code != 0
    assert isinstance(result.exception, FailedHookException)
    assert "shadows the module or folder 'django'" in capfd.readouterr().err
    # pytest-cookies bakes into <tmp_path>/cookies/bakeNN: the project folder is gone.
    bakes = list((tmp_path / "cookies").iterdir())
    assert bakes
    assert [p for bake_dir in bakes for p in bake_dir.iterdir()] == []


def test_cli_refusal_exits_nonzero_and_leaves_no_folder(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "cookiecutter", "--no-input", str(TEMPLATE_DIR), "app_port=22"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode != 0
    assert "app_port '22' is not a port from 1024 to 65535" in result.stderr
    assert list(tmp_path.iterdir()) == []


def copy_template(target: Path) -> Path:
    """The template's files (not its tests or caches) in ``target``."""
    target.mkdir()
    for name in (
        "cookiecutter.json",
        "hooks",
        "hurricane_runtime",
        "docs",
        "{{cookiecutter.project_slug}}",
    ):
        source = TEMPLATE_DIR / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.is_file():
            shutil.copy(source, target / name)
    return target


def test_relative_template_path_finds_the_runtime_and_skips_caches(tmp_path):
    template = copy_template(tmp_path / "hurricane-template")
    cache = template / "hurricane_runtime" / "__pycache__"
    cache.mkdir()
    (cache / "config.cpython-311.pyc").write_bytes(b"\0")
    (tmp_path / "out").mkdir()

    result = subprocess.run(
        [sys.executable, "-m", "cookiecutter", "--no-input", "hurricane-template", "-o", "out"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    runtime = tmp_path / "out" / "hurricane_service" / "hurricane_runtime"
    assert (runtime / "__init__.py").is_file()
    assert not (runtime / "__pycache__").exists()


def test_git_checkout_finds_the_runtime(tmp_path):
    """A `gh:` template is cloned into cookiecutters_dir first; a file:// git URL takes the
    same path through cookiecutter without the network."""
    template = copy_template(tmp_path / "hurricane-template")
    git = ["git", "-C", str(template), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "template"], check=True)
    config = tmp_path / "config.yaml"
    config.write_text(
        f"cookiecutters_dir: {tmp_path / 'cookiecutters'}\nreplay_dir: {tmp_path / 'replay'}\n"
    )
    (tmp_path / "out").mkdir()

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cookiecutter",
            "--no-input",
            "--config-file",
            str(config),
            f"git+file://{template}",
            "-o",
            str(tmp_path / "out"),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "out" / "hurricane_service" / "hurricane_runtime" / "__init__.py").is_file()


def test_rendering_over_an_existing_project_keeps_its_env_and_replaces_the_runtime(tmp_path):
    project = bake(tmp_path)
    env = (project / ".env").read_text()
    stale = project / "hurricane_runtime" / "removed_upstream.py"
    stale.write_text("")

    again = cookiecutter(
        str(TEMPLATE_DIR), no_input=True, output_dir=str(tmp_path), overwrite_if_exists=True
    )

    assert Path(again) == project
    assert (project / ".env").read_text() == env
    assert not stale.exists()
    assert (project / "hurricane_runtime" / "__init__.py").is_file()


def git(project: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=project, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_project_is_a_git_repository_with_one_clean_commit(tmp_path, capfd):
    project = bake(tmp_path)
    assert git(project, "rev-list", "--count", "HEAD") == "1"
    assert git(project, "status", "--porcelain") == "", "the first commit holds every file"
    tracked = set(git(project, "ls-files").splitlines())
    assert {"Makefile", "deploy.mk", "Dockerfile", "hurricane_runtime/__init__.py"} <= tracked
    assert ".env" not in tracked, "the local secret stays out of git"
    commit = git(project, "rev-parse", "--short=12", "HEAD")
    assert f"git: initialised with a first commit ({commit})" in capfd.readouterr().out


def test_first_commit_uses_the_author_when_git_has_no_identity(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    for variable in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "EMAIL"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / "none"))
    project = bake(tmp_path / "out", author_name="Ops Team", author_email="ops@corp.example.org")
    assert git(project, "log", "-1", "--format=%an <%ae>") == "Ops Team <ops@corp.example.org>"
    # For that commit only: the repository itself gets no identity.
    assert "user.name" not in git(project, "config", "--local", "--list")


def test_without_git_the_project_renders_and_says_so(tmp_path, monkeypatch, capfd):
    empty_path = tmp_path / "bin"
    empty_path.mkdir()
    monkeypatch.setenv("PATH", str(empty_path))
    project = bake(tmp_path / "out")
    assert not (project / ".git").exists()
    assert (project / "Makefile").is_file()
    assert "git: not found" in capfd.readouterr().out


def test_inside_another_repository_nothing_is_initialised(tmp_path, capfd):
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    project = bake(tmp_path / "services")
    assert not (project / ".git").exists()
    assert git(tmp_path, "rev-list", "--all") == "", "the outer repository gets no commit"
    assert "inside an existing repository" in capfd.readouterr().out


def test_git_step_can_be_switched_off(tmp_path, monkeypatch, capfd):
    monkeypatch.setenv("HURRICANE_TEMPLATE_NO_GIT", "1")
    project = bake(tmp_path)
    assert not (project / ".git").exists()
    assert "HURRICANE_TEMPLATE_NO_GIT is set" in capfd.readouterr().out
