"""Masking of personal data (phone numbers, NIK, e-mail addresses) in logs and exports, and of
credentials in logs."""

from __future__ import annotations

import logging
import re

# NIK: the 16-digit Indonesian national identity number, also as written on forms ("5371 0123 4567 0001",
# "537101-234567-0001"): single spaces, dots or dashes between digits.
_NIK = re.compile(r"(?<!\d)\d(?:[ .-]?\d){15}(?!\d)")
# Indonesian phone numbers: +62 / 62 / 0 then 8-13 digits, optionally split by spaces, dots or dashes
# ("0812 - 3456 - 7890" too). Only a digit before it stops a match: people glue numbers to words ("hp0812...").
_PHONE = re.compile(r"(?<![\d+])(?:\+62|62|0)[\s.-]{0,3}8(?:[\s.-]{0,3}\d){7,12}(?!\d)")
_EMAIL = re.compile(r"\b([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+\.[A-Za-z]{2,})\b")


def mask_pii(text: str) -> str:
    """Mask NIK, phone numbers and e-mail addresses, keeping just enough to recognise the kind."""
    if not text:
        return text
    text = _EMAIL.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)
    # Phones first: two numbers written "0812 3456 7890 0813 1111 2222" would otherwise look like one NIK.
    text = _PHONE.sub(lambda m: _mask_phone(m.group(0)), text)
    text = _NIK.sub(lambda m: f"{re.sub(r'[^0-9]', '', m.group(0))[:6]}**********", text)
    return text


# Credentials libraries write into log records: tweepy logs its request headers at DEBUG
# ("Authorization: Bearer ..."), urllib3 the request URL, where facebook-sdk puts access_token (and
# appsecret_proof); an exception message can quote the same URL at any level.
# Query parameters whose value is a credential: Graph's token and proof, Meta's webhook verify token.
SECRET_QUERY_PARAMS = frozenset({"access_token", "appsecret_proof", "hub.verify_token"})
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9\-._~+/%=]{8,}")
_SECRET_QUERY_VALUE = re.compile(
    r"(?i)\b(" + "|".join(re.escape(name) for name in sorted(SECRET_QUERY_PARAMS)) + r")(=|%3D)[^&\s'\"<>]+"
)


def redact_secrets(text: str) -> str:
    """Replace bearer tokens and the values of ``SECRET_QUERY_PARAMS`` in query strings with ``***``."""
    if not text:
        return text
    text = _BEARER.sub(r"\1***", text)
    return _SECRET_QUERY_VALUE.sub(r"\1\2***", text)


def _mask_phone(number: str) -> str:
    digits = re.sub(r"\D", "", number)
    return f"{digits[:4]}****{digits[-2:]}"


class PiiMaskingFilter(logging.Filter):
    """A logging filter that masks personal data and credentials in a record's message and arguments.

    Arguments are masked one by one (not merged into the message) so formatters that read
    ``record.args`` themselves, like uvicorn's access log, keep working.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = _mask_value(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_mask_value(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _mask_value(v) for k, v in record.args.items()}
        # A traceback's exception message can quote a post (a failed INSERT lists its parameters):
        # format it now and mask it; formatters print a record's exc_text as it is.
        if record.exc_info and not record.exc_text:
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact_secrets(mask_pii(record.exc_text))
        if record.stack_info:
            record.stack_info = redact_secrets(mask_pii(record.stack_info))
        return True


_TRACEBACKS = logging.Formatter()


def _mask_value(value: object) -> object:
    if isinstance(value, str):
        return redact_secrets(mask_pii(value))
    if isinstance(value, int | float | bool) or value is None:
        return value
    # A dict of request headers logged with %s: replaced by its text only when that holds a credential.
    try:
        text = str(value)
    except Exception:  # noqa: BLE001 - a broken __str__ must not break logging
        return value
    redacted = redact_secrets(text)
    return redacted if redacted != text else value
