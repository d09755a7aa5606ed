"""Regenerate the template's `uv.lock`: `python tests/lock.py` (needs uv).

Bakes the project once per combination of the answers that change its dependencies
(database, Django line, AMQP consumer, websockets, Celery; the Python answer does not: every lock
resolves for every Python the Django line supports), runs `uv lock` in each bake and writes the
results back into the template as one Jinja file, one branch per combination. The
post-generation hook moves the project's own entry to its sorted place, so a fresh project's
`uv lock` changes nothing. `nox -s project` fails when the lock is stale.
"""

import itertools
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.helpers import TEMPLATE_DIR, bake  # noqa: E402

SLUG = "lock_probe"
# The answers that change the dependencies, and their choices: one lock per combination.
VARIANTS = {
    "database": ("postgresql", "sqlite"),
    "django_version": ("5.2", "6.1"),
    "amqp_consumer": ("no", "yes"),
    "websockets": ("no", "yes"),
    # Both brokers share the runtime's `celery` extra (Celery with the Redis transport), so one
    # bake per Celery choice, `rabbitmq`, stands for both: 32 locks, not 48. SQLite projects
    # cannot choose Celery (hooks/pre_gen_project.py), so no SQLite branch has it.
    "celery": ("no", "rabbitmq"),
}
# The lock branch of a bake's answer: every answer sharing its dependencies.
SAME_LOCK = {("celery", "rabbitmq"): 'cookiecutter.celery != "no"'}


def main() -> None:
    parts = ["{%- set name = cookiecutter.project_slug.replace('_', '-') -%}\n"]
    with tempfile.TemporaryDirectory() as tmp:
        combinations = [
            dict(zip(VARIANTS, values, strict=True))
            for values in itertools.product(*VARIANTS.values())
            if not (values[0] == "sqlite" and values[-1] != "no")
        ]
        for index, answers in enumerate(combinations):
            folder = Path(tmp) / "-".join(answers.values())
            project = bake(folder, project_slug=SLUG, **answers)
            (project / "uv.lock").unlink()
            subprocess.run(["uv", "lock", "--quiet"], cwd=project, check=True)
            text = (project / "uv.lock").read_text(encoding="utf-8")
            keyword = "if" if index == 0 else "elif"
            condition = " and ".join(
                SAME_LOCK.get((name, value), f'cookiecutter.{name} == "{value}"')
                for name, value in answers.items()
            )
            parts.append(f"{{% {keyword} {condition} -%}}\n")
            parts.append(text.replace(f'name = "{SLUG.replace("_", "-")}"', 'name = "{{ name }}"'))
    parts.append("{% endif -%}\n")
    target = TEMPLATE_DIR / "{{cookiecutter.project_slug}}" / "uv.lock"
    target.write_text("".join(parts), encoding="utf-8")
    print(f"wrote {target.relative_to(TEMPLATE_DIR)}")


if __name__ == "__main__":
    main()
