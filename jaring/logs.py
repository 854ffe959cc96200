"""Logging set-up shared by the CLI, the web app and Celery: personal data is masked on every handler."""

from __future__ import annotations

import logging

from jaring.privacy import PiiMaskingFilter

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def mask_handlers(logger: logging.Logger) -> None:
    """Put the PII-masking filter on every handler of ``logger`` (once)."""
    for handler in logger.handlers:
        if not any(isinstance(f, PiiMaskingFilter) for f in handler.filters):
            handler.addFilter(PiiMaskingFilter())


def configure_logging(level: str = "INFO") -> None:
    """Log to stderr with personal data masked."""
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level, format=FORMAT)
    root.setLevel(level)
    mask_handlers(root)
