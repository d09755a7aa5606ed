"""``manage.py hurricane_audit``: is this project ready for Kubernetes? (docs/audit.md)"""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from ...guidelines import audit
from ...guidelines.dockerfile import DockerfileError
from ...guidelines.manifests import ManifestError
from ...guidelines.registry import LEVEL_NAMES
from ...guidelines.report import FORMATS, RENDERERS

FAIL_LEVELS = {name: level for level, name in LEVEL_NAMES.items()}
BAD_INPUT = 2  # findings exit 1; input the audit cannot read exits 2


class Command(BaseCommand):
    help = (
        "Run the hurricane guidelines: the deployment checks on the settings and, when given, "
        "the rules tying Kubernetes manifests and a Dockerfile to the runtime's options."
    )
    requires_system_checks = []  # the audit runs them itself and reports them

    def add_arguments(self, parser):
        parser.add_argument(
            "--manifests",
            help="A folder of YAML manifests or one YAML file (e.g. `kubectl kustomize` output).",
        )
        parser.add_argument("--dockerfile", help="The Dockerfile of the image.")
        parser.add_argument(
            "--format", default="text", help=f"Output format: {', '.join(FORMATS)} (text)."
        )
        parser.add_argument(
            "--fail-level",
            default="ERROR",
            help="Exit 1 when a finding has this level or higher: "
            f"{', '.join(FAIL_LEVELS)} (ERROR).",
        )

    def handle(self, *args, **options):
        output_format = options["format"].lower()
        if output_format not in FORMATS:
            raise CommandError(
                f"unknown format {options['format']!r}: expected one of {', '.join(FORMATS)}",
                returncode=BAD_INPUT,
            )
        fail_level = FAIL_LEVELS.get(options["fail_level"].upper())
        if fail_level is None:
            raise CommandError(
                f"unknown fail level {options['fail_level']!r}: expected one of "
                f"{', '.join(FAIL_LEVELS)}",
                returncode=BAD_INPUT,
            )
        manifests = Path(options["manifests"]) if options["manifests"] else None
        dockerfile = Path(options["dockerfile"]) if options["dockerfile"] else None
        if manifests is not None and not manifests.exists():
            raise CommandError(f"manifests: {manifests} does not exist", returncode=BAD_INPUT)
        if dockerfile is not None and not dockerfile.is_file():
            raise CommandError(f"dockerfile: {dockerfile} is not a file", returncode=BAD_INPUT)
        try:
            results = audit.run(manifests=manifests, dockerfile=dockerfile)
        except (ManifestError, DockerfileError) as error:
            raise CommandError(str(error), returncode=BAD_INPUT) from None
        self.stdout.write(RENDERERS[output_format](results), ending="")
        failing = [result for result in results if result.level >= fail_level]
        if failing:
            raise CommandError(
                f"{len(failing)} finding(s) at {LEVEL_NAMES[fail_level]} or above", returncode=1
            )
