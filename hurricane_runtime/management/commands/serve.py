"""``manage.py serve``: parse the options, build the config, hand over to the lifecycle."""

import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from hurricane_runtime.config import ConfigError, ServeConfig
from hurricane_runtime.lifecycle import serve


class Command(BaseCommand):
    help = "Serve this Django project with Tornado, with probes for Kubernetes."

    def add_arguments(self, parser):
        ServeConfig.add_arguments(parser)

    def handle(self, *args, **options):
        try:
            config = ServeConfig.load(
                flags=ServeConfig.flags_from_options(options), settings=settings
            )
            config.commands  # noqa: B018 - split the start-up commands now, fail early
        except ConfigError as error:
            raise CommandError(str(error)) from None
        code = serve(config)
        if code:
            sys.exit(code)
