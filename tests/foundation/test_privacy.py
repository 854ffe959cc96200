"""Phone numbers, NIK and e-mail addresses are masked in logs and exports."""

from __future__ import annotations

import logging

import pytest

from jaring.privacy import PiiMaskingFilter, mask_pii


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("telp 081234567890 ya", "081234567890"),
        ("WA +62 812-3456-7890", "812-3456-7890"),
        ("hp 0812.3456.789", "3456.789"),
        ("NIK saya 5371012345670001", "5371012345670001"),
        ("email: nona.kupang@yahoo.co.id", "nona.kupang@yahoo.co.id"),
        ("NIK 5371 0123 4567 0001", "0123 4567 0001"),
        ("nik: 5371-0123-4567-0001", "0123-4567-0001"),
        ("NIK 5371.0123.4567.0001", "0123.4567.0001"),
        ("NIK 537101 234567 0001", "234567 0001"),
        ("hubungi hp081234567890", "081234567890"),
        ("WA08123456789 ya", "08123456789"),
        ("no_0812-3456-7890", "3456-7890"),
        ("telp 0812 - 3456 - 7890", "3456 - 7890"),
        ("hp 0812 3456 7890 0813 1111 2222", "1111 2222"),
        ("BUDI.SANTOSO+LAPOR@GMAIL.COM", "BUDI.SANTOSO+LAPOR"),
    ],
)
def test_personal_data_is_masked(text: str, secret: str) -> None:
    masked = mask_pii(text)
    assert secret not in masked
    assert masked != text


@pytest.mark.parametrize("text", ["tahun 2024 RT 005 RW 002", "jalan 12 km", "tweet id 1700000000000000001"])
def test_ordinary_numbers_are_kept(text: str) -> None:
    assert mask_pii(text) == text


def test_logging_filter_masks_formatted_messages(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("jaring.test.privacy")
    logger.addFilter(PiiMaskingFilter())
    with caplog.at_level(logging.INFO, logger="jaring.test.privacy"):
        logger.info("complaint from %s (%s)", "081234567890", "budi@example.com")
    assert "081234567890" not in caplog.text
    assert "budi@example.com" not in caplog.text
    assert "***@example.com" in caplog.text


def test_logging_filter_masks_tracebacks_too() -> None:
    # A failed INSERT's message carries its parameters (post texts); Celery logs it with the traceback.
    import io

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(PiiMaskingFilter())
    logger = logging.getLogger("jaring.test.privacy.tracebacks")
    logger.addHandler(handler)
    try:
        try:
            raise ValueError('INSERT failed: text="hubungi 081234567890 atau budi@example.com"')
        except ValueError:
            logger.exception("task failed")
        logger.warning("where", stack_info=True)
    finally:
        logger.removeHandler(handler)
    output = stream.getvalue()
    assert "task failed" in output and "ValueError: INSERT failed" in output and "Stack (most recent" in output
    assert "081234567890" not in output and "budi@example.com" not in output
    assert "0812****90" in output and "b***@example.com" in output
