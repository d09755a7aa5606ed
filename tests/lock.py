"""Regenerate the template's `uv.lock`: `python tests/lock.py` (needs uv).

Bakes the project once per database and Django line (the answers that change its
dependencies; the Python answer does not: every lock resolves for every Python the Django line
supports), runs `uv lock` in each bake and writes the results back into the template as one
Jinja file, one branch per combination. The post-generation hook moves the project's own entry
to its sorted place, so a fresh project's `uv lock` changes nothing. `nox -s project` fails
when the lock is stale.
"""

import itertools
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.helpers import TEMPLATE_DIR, bake  # noqa: E402

SLUG = "lock_probe"
DATABASES = ("postgresql", "sqlite")
DJANGO_LINES = ("5.2", "6.1")


def main() -> None:
    parts = ["{%- set name = cookiecutter.project_slug.replace('_', '-') -%}\n"]
    with tempfile.TemporaryDirectory() as tmp:
        combinations = list(itertools.product(DATABASES, DJANGO_LINES))
        for index, (database, django) in enumerate(combinations):
            project = bake(
                Path(tmp) / f"{database}-{django}",
                project_slug=SLUG,
                database=database,
                django_version=django,
            )
            (project / "uv.lock").unlink()
            subprocess.run(["uv", "lock", "--quiet"], cwd=project, check=True)
            text = (project / "uv.lock").read_text(encoding="utf-8")
            keyword = "if" if index == 0 else "elif"
            parts.append(
                f'{{% {keyword} cookiecutter.database == "{database}" '
                f'and cookiecutter.django_version == "{django}" -%}}\n'
            )
            parts.append(text.replace(f'name = "{SLUG.replace("_", "-")}"', 'name = "{{ name }}"'))
    parts.append("{% endif -%}\n")
    target = TEMPLATE_DIR / "{{cookiecutter.project_slug}}" / "uv.lock"
    target.write_text("".join(parts), encoding="utf-8")
    print(f"wrote {target.relative_to(TEMPLATE_DIR)}")


if __name__ == "__main__":
    main()
