"""``manage.py consume HANDLER --queue NAME``: parse, build the config, hand to the lifecycle."""

import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from hurricane_runtime.config import ConfigError, ConsumeConfig


class Command(BaseCommand):
    help = (
        "Consume an AMQP queue with a Django handler (def or async def handle(message)), "
        "with probes, graceful drain and metrics for Kubernetes."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "handler",
            metavar="HANDLER",
            help="Dotted path to 'def handle(message)' or 'async def handle(message)'.",
        )
        ConsumeConfig.add_arguments(parser)

    def handle(self, *args, handler, **options):
        try:
            from hurricane_runtime.amqp.handlers import HandlerError, load_handler
            from hurricane_runtime.amqp.supervisor import Consumer
        except ImportError as error:
            raise CommandError(
                f"consume needs the 'amqp' extra (pip install 'hurricane-runtime[amqp]'): {error}"
            ) from None
        from hurricane_runtime.lifecycle import run

        try:
            config = ConsumeConfig.load(
                flags=ConsumeConfig.flags_from_options(options), settings=settings
            )
            config.commands  # noqa: B018 - split the start-up commands now, fail early
            config.require_broker_url()
            function = load_handler(handler)
        except (ConfigError, HandlerError) as error:
            raise CommandError(str(error)) from None

        def consumer(config, state, observers):
            return Consumer(config, function, handler, state=state)

        code = run(config, consumer)
        if code:
            sys.exit(code)
