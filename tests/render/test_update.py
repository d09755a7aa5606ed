"""The update path: a project rendered from an older template commit takes the template's later
changes with `make update` (cruft), keeps every edit of its own, and is told about the lines
both changed instead of losing one side."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import TEMPLATE_DIR, python_for_lock

pytestmark = pytest.mark.skipif(
    not all(shutil.which(tool) for tool in ("cruft", "git", "make", "uv")),
    reason="needs cruft, git, make and uv (the render session installs cruft and uv)",
)

SLUG = "hurricane_service"
# The template's change between the two commits: a line of README.md (a file the user also
# edits, in another hunk) and a line added to urls.py (a file the user never touches).
README_LINE = "A lean Django service served by `hurricane_runtime` (`python manage.py serve`): one"
README_NEW = "A lean Django service, served by `hurricane_runtime` (`python manage.py serve`): one"
URLS_ADDED = "# Routes of the service; the newer template adds this line."
# The user's edits.
USER_SECTION = "\n## Our notes\n\nOrders arrive from the shop at night.\n"
USER_SETTING = "\n# Our own setting.\nORDERS_PAGE_SIZE = 50\n"
USER_README_LINE = (
    "A lean Django service of the orders team, served by `hurricane_runtime`: one app port for"
)


def git(*args: str, cwd: Path) -> str:
    result = subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def run(args, cwd: Path, env) -> subprocess.CompletedProcess:
    return subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=300
    )


@pytest.fixture
def env(tmp_path):
    """No user git configuration of this machine, an identity for the commits, the session's
    tools (cruft, uv) first on PATH."""
    home = tmp_path / "home"
    home.mkdir()
    variables = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("GIT_", "HURRICANE_")) and key != "VIRTUAL_ENV"
    }
    variables.update(
        HOME=str(home),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME="Dev",
        GIT_AUTHOR_EMAIL="dev@example.com",
        GIT_COMMITTER_NAME="Dev",
        GIT_COMMITTER_EMAIL="dev@example.com",
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
    )
    return variables


@pytest.fixture
def template(tmp_path, env):
    """A git repository holding this repository's files (as they are in the work tree) as its
    older commit; `new(template)` commits the template's change on top."""
    folder = tmp_path / "template"
    listed = git("ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=TEMPLATE_DIR)
    for name in filter(None, listed.split("\0")):
        source = TEMPLATE_DIR / name
        if source.is_file():
            target = folder / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "older"]):
        subprocess.run(["git", *args], cwd=folder, env=env, check=True, capture_output=True)
    return folder


def commit_template_change(template: Path, env) -> str:
    project = template / "{{cookiecutter.project_slug}}"
    readme = project / "README.md"
    text = readme.read_text(encoding="utf-8")
    assert README_LINE in text
    readme.write_text(text.replace(README_LINE, README_NEW, 1), encoding="utf-8")
    urls = project / "{{cookiecutter.project_slug}}" / "urls.py"
    urls.write_text(urls.read_text(encoding="utf-8") + URLS_ADDED + "\n", encoding="utf-8")
    subprocess.run(["git", "commit", "-qam", "newer"], cwd=template, env=env, check=True)
    return git("rev-parse", "HEAD", cwd=template)


def render(template: Path, out: Path, env) -> Path:
    """Plain cookiecutter: the hook records .cruft.json and makes the first commit."""
    result = run(
        [sys.executable, "-m", "cookiecutter", "--no-input", str(template), "-o", str(out)]
        + ["database=sqlite"],
        out.parent,
        env,
    )
    assert result.returncode == 0, result.stderr
    return out / SLUG


def cruft_create(template: Path, out: Path, env) -> Path:
    """`cruft create`: cruft writes .cruft.json (without our skip list); the hook, seeing cruft,
    makes no repository and no local secret, so the person commits as docs/template.md says."""
    result = run(
        ["cruft", "create", str(template), "--no-input", "--output-dir", str(out)]
        + ["--extra-context", json.dumps({"database": "sqlite"})],
        out.parent,
        env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    project = out / SLUG
    assert not (project / ".git").exists() and not (project / ".env").exists()
    assert "skip" not in json.loads((project / ".cruft.json").read_text())
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "Rendered"]):
        subprocess.run(["git", *args], cwd=project, env=env, check=True, capture_output=True)
    return project


def user_edits(project: Path, env, readme_line: str | None = None) -> None:
    readme = project / "README.md"
    text = readme.read_text(encoding="utf-8") + USER_SECTION
    if readme_line:
        text = text.replace(README_LINE, readme_line, 1)
    readme.write_text(text, encoding="utf-8")
    base = project / SLUG / "settings" / "base.py"
    base.write_text(base.read_text(encoding="utf-8") + USER_SETTING, encoding="utf-8")
    subprocess.run(["git", "commit", "-qam", "Our edits"], cwd=project, env=env, check=True)


def conflict_markers(project: Path) -> list[str]:
    found = subprocess.run(
        ["git", "grep", "-n", "-E", "^(<<<<<<<|>>>>>>>)"],
        cwd=project,
        capture_output=True,
        text=True,
    )
    return found.stdout.splitlines()


# `make update`, and cruft itself for those who call it directly: the post-generation hook sees
# that cruft renders and leaves out what differs between renders (git repository, secret).
UPDATES = {
    "cookiecutter, make update": (render, ["make", "update"]),
    "cookiecutter, cruft update": (render, ["cruft", "update", "-y"]),
    "cruft create, make update": (cruft_create, ["make", "update"]),
    "cruft create, cruft update": (cruft_create, ["cruft", "update", "-y"]),
}


@pytest.mark.parametrize(("make", "command"), UPDATES.values(), ids=UPDATES.keys())
def test_the_update_takes_the_template_change_and_keeps_the_users(
    tmp_path, template, env, make, command
):
    (tmp_path / "out").mkdir()
    older = git("rev-parse", "HEAD", cwd=template)
    project = make(template, tmp_path / "out", env)

    # The render recorded the template, its commit and the answers, and committed them.
    state = json.loads((project / ".cruft.json").read_text())
    assert state["commit"] == older
    assert state["template"] == str(template)
    assert state["context"]["cookiecutter"]["database"] == "sqlite"
    assert git("status", "--porcelain", cwd=project) == ""
    assert ".cruft.json" in git("ls-files", cwd=project).split()

    user_edits(project, env)
    newer = commit_template_change(template, env)

    assert run(["cruft", "check"], project, env).returncode != 0
    updated = run(command, project, env)
    assert updated.returncode == 0, updated.stdout + updated.stderr
    assert "make update: done" in updated.stdout or command[0] == "cruft"

    assert not list(project.rglob("*.rej"))
    assert conflict_markers(project) == []
    readme = (project / "README.md").read_text(encoding="utf-8")
    assert README_NEW in readme and README_LINE not in readme
    assert readme.endswith(USER_SECTION)
    assert (project / SLUG / "urls.py").read_text(encoding="utf-8").endswith(URLS_ADDED + "\n")
    base = (project / SLUG / "settings" / "base.py").read_text(encoding="utf-8")
    assert base.endswith(USER_SETTING)
    assert json.loads((project / ".cruft.json").read_text())["commit"] == newer
    # The update renders in temporary folders: no repository, secret or stray file comes back.
    changed = set(git("status", "--porcelain", cwd=project).split())
    assert changed == {"M", "README.md", f"{SLUG}/urls.py", ".cruft.json"}
    assert run(["cruft", "check"], project, env).returncode == 0

    if make is cruft_create and command[0] == "cruft":
        return  # the project's own tests: once per way of rendering is enough
    python = python_for_lock("5.2")
    if python is None:
        pytest.skip("no Python interpreter the project's lock resolves for")
    env = {**env, "UV_PYTHON": python}
    synced = run(["uv", "sync", "--locked", "--python", python], project, env)
    assert synced.returncode == 0, synced.stderr
    tests = run(["uv", "run", "--no-sync", "pytest", "-q", "-p", "no:cacheprovider"], project, env)
    assert tests.returncode == 0, tests.stdout + tests.stderr


def test_make_update_stops_on_a_line_both_changed(tmp_path, template, env):
    (tmp_path / "out").mkdir()
    project = render(template, tmp_path / "out", env)
    user_edits(project, env, readme_line=USER_README_LINE)
    commit_template_change(template, env)

    updated = run(["make", "update"], project, env)
    assert updated.returncode != 0
    assert "README.md" in updated.stderr and "resolve the conflicts" in updated.stderr
    # Both sides are in the file, between markers: nothing was dropped.
    readme = (project / "README.md").read_text(encoding="utf-8")
    assert USER_README_LINE in readme and README_NEW in readme
    assert any(line.startswith("README.md:") for line in conflict_markers(project))
    # The lines nobody else changed are kept and taken as usual.
    assert readme.endswith(USER_SECTION)
    assert (project / SLUG / "urls.py").read_text(encoding="utf-8").endswith(URLS_ADDED + "\n")


def test_make_update_without_cruft_says_what_to_install(tmp_path, template, env):
    (tmp_path / "out").mkdir()
    project = render(template, tmp_path / "out", env)
    result = run(["make", "update", "CRUFT=no-such-cruft"], project, env)
    assert result.returncode != 0
    assert "cruft is not installed" in result.stderr and "cruft==2.16.0" in result.stderr
