"""Masking of personal data (phone numbers, NIK, e-mail addresses) in logs and exports."""

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


def _mask_phone(number: str) -> str:
    digits = re.sub(r"\D", "", number)
    return f"{digits[:4]}****{digits[-2:]}"


class PiiMaskingFilter(logging.Filter):
    """A logging filter that masks personal data in a record's message and arguments.

    Arguments are masked one by one (not merged into the message) so formatters that read
    ``record.args`` themselves, like uvicorn's access log, keep working.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = mask_pii(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_mask_value(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _mask_value(v) for k, v in record.args.items()}
        # A traceback's exception message can quote a post (a failed INSERT lists its parameters):
        # format it now and mask it; formatters print a record's exc_text as it is.
        if record.exc_info and not record.exc_text:
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask_pii(record.exc_text)
        if record.stack_info:
            record.stack_info = mask_pii(record.stack_info)
        return True


_TRACEBACKS = logging.Formatter()


def _mask_value(value: object) -> object:
    return mask_pii(value) if isinstance(value, str) else value
