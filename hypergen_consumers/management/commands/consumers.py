"""``manage.py consumers``: list mounted consumers, or print them as an AsyncAPI 3.0 document."""

from __future__ import annotations

import json
from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand

from hypergen_consumers.declaring.schema import asyncapi_document, describe


class Command(BaseCommand):  # type: ignore[misc]  # Django ships no types.
    help = "List every mounted consumer (route, group rule, handlers, perms); --asyncapi prints AsyncAPI 3.0 JSON."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--asyncapi", action="store_true", help="print an AsyncAPI 3.0 document (JSON)")
        parser.add_argument("--title", default="Websocket consumers", help="the document's info.title")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["asyncapi"]:
            self.stdout.write(json.dumps(asyncapi_document(options["title"]), indent=2))
        else:
            self.stdout.write(describe())
