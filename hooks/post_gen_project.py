"""Finish a rendered project: runtime, guideline pages, local secret, option files, next steps.

Runs inside the new project folder. The template repository (where `hurricane_runtime/` and
`docs/` live) is found through the cookiecutter context, for a local path as for a git checkout.
"""

import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

ANSWERS = json.loads(r"""{{ cookiecutter | tojson }}""")
PROJECT = Path.cwd()


def _postgresql(answers):
    return answers["database"] == "postgresql"


def _sqlite(answers):
    return answers["database"] == "sqlite"


def _always(answers):
    return True


def _amqp_consumer(answers):
    return answers["amqp_consumer"] == "yes"


def _rabbitmq(answers):
    """A RabbitMQ next to the project (compose.yaml, .env): derived once in cookiecutter.json."""
    return answers["__rabbitmq"] == "yes"


def _keda_consumer(answers):
    """Autoscaling consumers that share one SQLite file makes no sense: PostgreSQL only."""
    return _amqp_consumer(answers) and _postgresql(answers)


def _websockets(answers):
    return answers["websockets"] == "yes"


def _redis(answers):
    """A Redis next to the project (compose.yaml, .env): derived once in cookiecutter.json."""
    return answers["__redis"] == "yes"


def _celery(answers):
    return answers["celery"] != "no"


def _starts_processes(answers):
    """Tests that start a consumer, a worker or a server: they share tests/processes.py."""
    return _amqp_consumer(answers) or _websockets(answers) or _celery(answers)


def _local_services(answers):
    """compose.yaml has something to run: the database, a broker or Redis."""
    return _postgresql(answers) or _rabbitmq(answers) or _redis(answers)


# Guideline pages from the template's docs/ that a project gets, and when. Pages about the
# template itself (template.md, benchmarks.md) stay in the template repository.
DOCS = {
    "index.md": _always,
    "settings.md": _always,
    "testing.md": _always,
    "runtime.md": _always,
    "observability.md": _always,
    "container.md": _always,
    "kubernetes.md": _always,
    "postgresql.md": _postgresql,
    "sqlite.md": _sqlite,
    "amqp.md": _amqp_consumer,
    "websockets.md": _websockets,
    "celery.md": _celery,
    # The audit's checks and the checklist that names them: every project.
    "audit.md": _always,
    "checklist.md": _always,
}

# Rendered files that belong to some answers only: path in the project ({slug}: the package)
# -> keep it when true.
# Later options (Celery, an AMQP consumer, websockets) add their files here.
ONLY_WHEN = {
    # One SQLite pod cannot be autoscaled or kept up through a disruption budget; the prod
    # overlay's kustomization lists these two for PostgreSQL only.
    "k8s/overlays/prod/hpa.yaml": _postgresql,
    "k8s/overlays/prod/pdb.yaml": _postgresql,
    # SQLite pods migrate their own volume in an init container; only PostgreSQL needs the Job.
    "k8s/base/migrate-job.yaml": _postgresql,
    # The SQLite file lives on a PersistentVolumeClaim.
    "k8s/base/data-pvc.yaml": _sqlite,
    # Local backing services: PostgreSQL, the broker, Redis.
    "compose.yaml": _local_services,
    # Helpers of the tests that start a real process of the project (the workloads below).
    "tests/processes.py": _starts_processes,
    # The AMQP consumer: its example handler, its tests, its Deployment and its autoscaler.
    "{slug}/items/handlers.py": _amqp_consumer,
    "tests/test_handlers.py": _amqp_consumer,
    "k8s/base/consumer.yaml": _amqp_consumer,
    "k8s/components/keda-consumer": _keda_consumer,
    # Websockets: the live feed of items (consumer, ASGI routes) and its tests.
    "{slug}/items/consumers.py": _websockets,
    "{slug}/items/routing.py": _websockets,
    "tests/test_feed.py": _websockets,
    "tests/test_feed_serve.py": _websockets,
    # Celery: the app, the example tasks and their tests, worker and beat, the autoscaler.
    "{slug}/celery.py": _celery,
    "{slug}/items/tasks.py": _celery,
    "tests/test_tasks.py": _celery,
    "k8s/base/celery-worker.yaml": _celery,
    "k8s/base/celery-beat.yaml": _celery,
    "k8s/components/keda-celery-worker": _celery,
}


def rendered_by_cruft(answers) -> bool:
    """cruft (`cruft create`, and `cruft update`, which renders the project twice in temporary
    folders to diff them) puts the template commit in the context and no `_repo_dir`."""
    return "_commit" in answers and "_repo_dir" not in answers


def template_dir() -> Path:
    """The template repository: `_repo_dir` is absolute for a git checkout, maybe relative for
    a local path (relative to where cookiecutter started, which is not our working folder).
    cruft gives none: cookiecutter runs the hook from the template folder either way."""
    repo_dir = Path(ANSWERS.get("_repo_dir", "."))
    candidates = [repo_dir]
    if not repo_dir.is_absolute():
        # While the hook runs, cookiecutter (our parent process) has the repository as its
        # working folder (Linux shows it in /proc); PWD is where the person started it.
        candidates = [
            Path(f"/proc/{os.getppid()}/cwd"),
            Path(os.environ.get("PWD", ".")) / repo_dir,
        ]
    for candidate in candidates:
        if (candidate / "cookiecutter.json").is_file() and (
            candidate / "hurricane_runtime"
        ).is_dir():
            return candidate.resolve()
    sys.exit(f"hurricane-template: no template repository at {ANSWERS['_repo_dir']!r}.")


def copy_runtime(template: Path) -> None:
    # Rendering over an existing project (`cookiecutter -f`) replaces the runtime as a whole:
    # projects never edit their copy.
    shutil.rmtree(PROJECT / "hurricane_runtime", ignore_errors=True)
    shutil.copytree(
        template / "hurricane_runtime",
        PROJECT / "hurricane_runtime",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )


# A passage of a guideline page that holds for one answer only sits between two marker lines:
#
#     <!-- only database=sqlite -->
#     ...
#     <!-- end only -->
#
# A single line (a table row, where a marker line would end the table) carries the marker at
# its end instead: `| [sqlite.md](sqlite.md) | ... <!-- only database=sqlite --> |`.
# Several choices of one answer are joined by `|`: `<!-- only celery=rabbitmq|redis -->`.
# A project's copy keeps the passages and lines that fit its answers, without the markers, so a
# SQLite project never reads advice meant for PostgreSQL (and the other way round).
ONLY_START = re.compile(r"<!-- only (\w+)=([\w|]+) -->")
ONLY_END = "<!-- end only -->"


def fit_page(text: str) -> str:
    kept, keep = [], True
    for line in text.splitlines(keepends=True):
        marker = ONLY_START.search(line)
        if marker and line.strip() == marker[0]:
            keep = ANSWERS.get(marker[1]) in marker[2].split("|")
        elif line.strip() == ONLY_END:
            keep = True
        elif marker:
            if keep and ANSWERS.get(marker[1]) in marker[2].split("|"):
                kept.append(line.replace(f" {marker[0]}", "").replace(marker[0], ""))
        elif keep:
            kept.append(line)
    return "".join(kept)


def copy_docs(template: Path) -> list[str]:
    """Copy the pages that fit the answers; returns their names in the order of DOCS."""
    target = PROJECT / "docs"
    target.mkdir(exist_ok=True)
    copied = []
    for page, fits in DOCS.items():
        source = template / "docs" / page
        if fits(ANSWERS) and source.is_file():
            text = fit_page(source.read_text(encoding="utf-8"))
            (target / page).write_text(text, encoding="utf-8")
            copied.append(page)
    return copied


def write_mkdocs_config(pages: list[str]) -> None:
    """A minimal mkdocs.yml (no theme, no plugins) whose nav is exactly the pages the project
    got, so `mkdocs build --strict` fails on a broken link or anchor instead of shipping it.
    Written here and not as a template file: the nav follows the DOCS table, one source."""
    lines = [
        "# The guideline pages as a site: `mkdocs build --strict` (pip install mkdocs).",
        f"site_name: {json.dumps(ANSWERS['project_name'])}",
        "docs_dir: docs",
        "strict: true",
        "validation:",
        "  omitted_files: warn",
        "  absolute_links: warn",
        "  unrecognized_links: warn",
        "  anchors: warn",
        "nav:",
        *(f"  - {page}" for page in pages),
    ]
    (PROJECT / "mkdocs.yml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def remove_unchosen() -> None:
    for relative, keep in ONLY_WHEN.items():
        path = PROJECT / relative.format(slug=ANSWERS["project_slug"])
        if keep(ANSWERS) or not path.exists():
            continue
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()
        # A folder that held only files of options not chosen goes too (k8s/components).
        for parent in path.parents:
            if parent == PROJECT or any(parent.iterdir()):
                break
            parent.rmdir()


def local_amqp_url(answers) -> str | None:
    """The URL of the RabbitMQ `make services` starts (compose.yaml), None without a broker."""
    if not _rabbitmq(answers):
        return None
    slug = answers["project_slug"]
    return f"amqp://{slug}:{slug}@127.0.0.1:5672/%2F"


def local_redis_url(answers) -> str | None:
    """The URL of the Redis `make services` starts (compose.yaml), None without Redis."""
    return "redis://127.0.0.1:6379/0" if _redis(answers) else None


def local_database_url(answers) -> str | None:
    """The URL of the database `make services` starts (compose.yaml), None for SQLite."""
    if not _postgresql(answers):
        return None
    slug = answers["project_slug"]
    return f"postgres://{slug}:{slug}@127.0.0.1:5432/{slug}"


def sort_lock() -> None:
    """Put the project's own entry of uv.lock where `uv lock` keeps it, sorted by name.

    The template's lock was made for one probe name; the project's name sorts elsewhere. uv
    accepts either order, but a fresh project's `make lock` should show no difference."""
    lock = PROJECT / "uv.lock"
    head, *packages = lock.read_text(encoding="utf-8").split("\n[[package]]\n")
    packages.sort(key=lambda block: block.split('"', 2)[1])
    lock.write_text("\n[[package]]\n".join([head, *packages]), encoding="utf-8")


def write_local_secret() -> None:
    """A random key for local runs only: `.env` is git-ignored and never used in production.
    PostgreSQL projects also point local runs at the database of compose.yaml, projects with a
    consumer at its RabbitMQ, projects with websockets at its Redis, Celery projects at the
    broker they chose."""
    env_file = PROJECT / ".env"
    if env_file.exists():  # rendering over an existing project keeps its local settings
        return
    lines = [
        "# Local development only (git-ignored). Every variable: .env.example.",
        f"DJANGO_SECRET_KEY={secrets.token_urlsafe(50)}",
    ]
    url = local_database_url(ANSWERS)
    if url:
        lines.append(f"DATABASE_URL={url}")
    amqp_url = local_amqp_url(ANSWERS)
    if amqp_url and _amqp_consumer(ANSWERS):
        lines.append(f"AMQP_URL={amqp_url}")
    redis_url = local_redis_url(ANSWERS)
    if redis_url and _websockets(ANSWERS):
        lines.append(f"REDIS_URL={redis_url}")
    if _celery(ANSWERS):
        broker = amqp_url if ANSWERS["celery"] == "rabbitmq" else redis_url
        lines.append(f"CELERY_BROKER_URL={broker}")
    env_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    env_file.chmod(0o600)


# What `cruft update` must leave alone: local files that differ between any two renders.
CRUFT_SKIP = [".env", ".git", ".image-digests", "db.sqlite3"]


def template_commit(template: Path) -> str | None:
    if shutil.which("git") is None:
        return None
    result = subprocess.run(
        ["git", "-C", str(template), "rev-parse", "--verify", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    commit = result.stdout.strip()
    return commit if result.returncode == 0 and len(commit) == 40 else None


def cruft_state(answers, template: Path, commit: str) -> dict:
    """What `cruft create` would have written: the template, its commit and the answers, so
    `cruft update` (`make update`) can render the same answers at the old and the new commit
    and apply the difference. A local template is recorded by its absolute path."""
    source = answers.get("_template") or str(template)
    if Path(source).expanduser().is_dir():
        source = str(template)
    context = {key: value for key, value in answers.items() if not key.startswith("_")}
    context |= {"_template": source, "_commit": commit}
    return {
        "template": source,
        "commit": commit,
        "checkout": None,
        "context": {"cookiecutter": context},
        "directory": None,
        "skip": CRUFT_SKIP,
    }


def write_cruft_state(template: Path) -> str:
    """`.cruft.json`, unless cruft renders (it writes its own). Returns the line to print."""
    if rendered_by_cruft(ANSWERS) or (PROJECT / ".cruft.json").exists():
        return ""
    commit = template_commit(template)
    if commit is None:
        return "cruft: no template commit (not a git checkout, or no git), so no .cruft.json."
    state = cruft_state(ANSWERS, template, commit)
    text = json.dumps(state, indent=2, ensure_ascii=False) + "\n"
    (PROJECT / ".cruft.json").write_text(text, encoding="utf-8")
    return f"cruft: template commit {commit[:12]} recorded in .cruft.json (make update)."


# Set to 1 (or true, yes) to render without `git init` and the first commit.
NO_GIT_VARIABLE = "HURRICANE_TEMPLATE_NO_GIT"


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["git", *args], cwd=PROJECT, capture_output=True, text=True, check=False, timeout=60
    )


def _inside_a_repository() -> bool:
    """True when the project folder already belongs to a work tree: a monorepo, or the project
    itself rendered again over an existing copy. Its history is then someone else's to write."""
    return _git("rev-parse", "--is-inside-work-tree").stdout.strip() == "true"


def _fallback_identity() -> list[str]:
    """`-c` options naming the author from the answers, for this one commit, when git has no
    user of its own; nothing when it has (the person's identity wins)."""
    configured = all(_git("config", key).stdout.strip() for key in ("user.name", "user.email"))
    if configured:
        return []
    name, email = ANSWERS["author_name"], ANSWERS["author_email"]
    return ["-c", f"user.name={name}", "-c", f"user.email={email}"]


def init_git() -> str:
    """Make the project a git repository with one commit, so image tags name a commit from the
    first build on (see deploy.mk). Returns the line to print. Never fails the render: without
    git, inside another repository, or when asked not to, the project is left as it is."""
    if os.environ.get(NO_GIT_VARIABLE, "").strip().lower() in {"1", "true", "yes"}:
        return f"git: not initialised ({NO_GIT_VARIABLE} is set)."
    if rendered_by_cruft(ANSWERS):
        # `cruft update` diffs two renders in temporary folders: a .git there would be diffed.
        return "git: not initialised (rendered by cruft); run `git init` to make it a repository."
    if shutil.which("git") is None:
        return "git: not found, so the project is not a repository; image tags will be `dev`."
    if _inside_a_repository():
        return "git: the project is inside an existing repository; nothing was committed."
    init = ["init", "--quiet"]
    if not _git("config", "init.defaultBranch").stdout.strip():
        init.append("--initial-branch=main")
    message = "Generated from hurricane-template"
    steps = {
        "init": init,
        "add": ["add", "--all"],
        "commit": [*_fallback_identity(), "commit", "--quiet", "--no-verify", "-m", message],
    }
    for name, args in steps.items():
        result = _git(*args)
        if result.returncode != 0:
            # Leave no half-made repository behind: the project works without one.
            shutil.rmtree(PROJECT / ".git", ignore_errors=True)
            said = (result.stderr or result.stdout).strip().splitlines() or ["no message"]
            return f"git: `git {name}` failed ({said[-1]}); the project is not a repository."
    commit = _git("rev-parse", "--short=12", "HEAD").stdout.strip()
    return f"git: initialised with a first commit ({commit}); image tags follow the commit."


# What `make services` starts (compose.yaml), in the order the next steps name them.
LOCAL_SERVICES = {"PostgreSQL": _postgresql, "RabbitMQ": _rabbitmq, "Redis": _redis}


def next_steps(answers, folder: str, git_line: str) -> str:
    """What to type next, for the database and the workloads the answers chose."""
    app, probe = answers["app_port"], answers["probe_port"]
    steps = [f"cd {folder}"]
    services = [name for name, runs in LOCAL_SERVICES.items() if runs(answers)]
    if services:
        where = "a container" if len(services) == 1 else "containers"
        names = " and ".join([", ".join(services[:-1]), services[-1]] if services[1:] else services)
        line = f"make services   # {names} in {where} (compose.yaml)"
        if _postgresql(answers):
            line += f", database {answers['project_slug']}"
        steps.append(line)
    steps.append("make install    # .venv with the locked dependencies (uv sync --locked)")
    database = "PostgreSQL" if _postgresql(answers) else "./db.sqlite3"
    steps.append(
        f"make run        # migrate {database}, serve on "
        f"http://127.0.0.1:{app}/api/items/, reload on changes"
    )
    if _websockets(answers):
        steps.append(f"                # live feed of new items: ws://127.0.0.1:{app}/ws/items/")
    if _amqp_consumer(answers):
        steps.append(
            "make consume    # the example consumer: an item per message of the queue 'items'"
        )
    if _celery(answers):
        steps.append("make worker     # the Celery worker: runs the tasks of items/tasks.py")
        steps.append("make beat       # Celery beat: sends the periodic tasks on schedule")
    steps += [
        "make test       # pytest",
        "make help       # every target and variable, including build and deploy",
    ]
    body = "\n".join(f"    {step}" for step in steps)
    return (
        f"\n{answers['project_name']} is ready in {folder}\n\n{body}\n\n"
        f"Probes and metrics: http://127.0.0.1:{probe}/ready, /alive, /startup, /metrics\n"
        f"{git_line}\n"
        "Read README.md next, then docs/index.md.\n"
    )


def print_next_steps(git_line: str) -> None:
    # Relative to where the person started cookiecutter (PWD), which may differ from -o.
    started = os.environ.get("PWD", "")
    folder = os.path.relpath(PROJECT, started) if started else str(PROJECT)
    if folder.startswith(".."):
        folder = str(PROJECT)
    elif not folder.startswith("."):
        folder = f"./{folder}"
    print(next_steps(ANSWERS, folder, git_line))


def main() -> None:
    template = template_dir()
    copy_runtime(template)
    write_mkdocs_config(copy_docs(template))
    remove_unchosen()
    sort_lock()
    if not rendered_by_cruft(ANSWERS):
        # Random per render: `cruft update` would see it change. `make install` writes one.
        write_local_secret()
    cruft_line = write_cruft_state(template)
    git_line = init_git()
    print_next_steps("\n".join(line for line in (cruft_line, git_line) if line))


if __name__ == "__main__":
    main()
