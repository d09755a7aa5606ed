"""Regenerate the template's lock files: `python tests/lock.py` (needs uv).

Bakes the project once per database, runs `make lock` in each (uv pip compile, universal, with
hashes), and writes the results back into the template as one Jinja file per lock, with one
branch per database. `nox -s project` fails when the locks are stale.
"""

import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.helpers import TEMPLATE_DIR, bake  # noqa: E402

SLUG = "lock_probe"
LOCKS = ("requirements.lock", "requirements-dev.lock")
DATABASES = ("postgresql", "sqlite")


def main() -> None:
    locks: dict[str, dict[str, str]] = {name: {} for name in LOCKS}
    with tempfile.TemporaryDirectory() as tmp:
        for database in DATABASES:
            project = bake(Path(tmp) / database, project_slug=SLUG, database=database)
            for name in LOCKS:
                (project / name).unlink()
            subprocess.run(["make", "lock"], cwd=project, check=True)
            for name in LOCKS:
                text = (project / name).read_text(encoding="utf-8")
                locks[name][database] = text.replace(SLUG.replace("_", "-"), "{{ name }}")
    for name, by_database in locks.items():
        parts = ["{%- set name = cookiecutter.project_slug.replace('_', '-') -%}\n"]
        for index, database in enumerate(DATABASES):
            keyword = "if" if index == 0 else "elif"
            parts.append(f'{{% {keyword} cookiecutter.database == "{database}" -%}}\n')
            parts.append(by_database[database])
        parts.append("{% endif -%}\n")
        target = TEMPLATE_DIR / "{{cookiecutter.project_slug}}" / name
        target.write_text("".join(parts), encoding="utf-8")
        print(f"wrote {target.relative_to(TEMPLATE_DIR)}")


if __name__ == "__main__":
    main()
