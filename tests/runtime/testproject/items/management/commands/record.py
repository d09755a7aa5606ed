"""Append a line to $TESTPROJECT_RECORD_FILE (start-up command order), optionally slowly."""

import os
import time

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    def add_arguments(self, parser):
        parser.add_argument("words", nargs="*")
        parser.add_argument("--sleep", type=float, default=0.0)
        parser.add_argument("--fail", action="store_true")

    def handle(self, *args, words, sleep, fail, **options):
        time.sleep(sleep)
        if fail:
            raise CommandError("asked to fail")
        with open(os.environ["TESTPROJECT_RECORD_FILE"], "a") as record:
            record.write(" ".join(words) + "\n")
