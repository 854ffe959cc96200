"""The LAPOR! HTTP wrapper classifies every failure by what it means for exactly-once delivery."""

from __future__ import annotations

import pytest

from jaring.settings import Settings
from pipelines.forward_policy import LaporApiConfig
from pipelines.lapor import (
    APISender,
    LaporPermanentError,
    LaporTransientError,
    LaporUnknownOutcome,
    copy_ready_fields,
    map_fields,
    public_link,
)
from pipelines.models import Complaint
from standins.lapor import LaporState
from standins.server import RunningServer, free_port
from tests.forwarding.conftest import TOKEN


def sender(base_url: str, token: str = TOKEN, timeout: float = 0.3) -> APISender:
    settings = Settings(lapor_api_base=base_url, lapor_api_token=token, http_timeout_seconds=timeout)
    return APISender(settings=settings, api=LaporApiConfig())


def complaint(**fields: object) -> Complaint:
    values = {"title": "Jalan rusak", "body": "Jalan rusak di Oebobo, mohon diperbaiki.", "category": "Infrastruktur",
              "instansi": "Dinas PUPR", "kecamatan": "Oebobo", "kelurahan": "Fatululi",
              "location_text": "Jl. Frans Seda", "anonymous": False, "confidential": True, "attachments": []}
    return Complaint(**{**values, **fields})


def test_failures_are_classified(lapor_server: RunningServer, lapor_state: LaporState) -> None:
    client = sender(lapor_server.base_url)
    try:
        lapor_state.timeout_rate, lapor_state.timeout_seconds = 1.0, 1.0
        with pytest.raises(LaporUnknownOutcome):  # sent, answer lost: may have been stored
            client.submit(complaint(), idempotency_key="k1")
        with pytest.raises(LaporTransientError):  # a lookup that times out changed nothing
            client.find(idempotency_key="k1")
        lapor_state.reset_faults()
        assert client.find(idempotency_key="k1").tracking_id == "5300001"  # type: ignore[union-attr]
        lapor_state.failure_rate = 1.0
        with pytest.raises(LaporUnknownOutcome) as info:
            client.submit(complaint(), idempotency_key="k2")
        assert info.value.http_status == 500
        lapor_state.reset_faults()
        with pytest.raises(LaporPermanentError, match="422"):
            client.submit(complaint(title=""), idempotency_key="k3")
        assert client.status(tracking_id="999") is None  # unknown to LAPOR!
        lapor_state.go_down(5)
        with pytest.raises(LaporTransientError):
            client.status(tracking_id="5300001")
    finally:
        client.close()
    lapor_state.reset_faults()
    bad_token = sender(lapor_server.base_url, token="wrong")
    with pytest.raises(LaporPermanentError, match="401"):
        bad_token.find(idempotency_key="k1")
    bad_token.close()


def test_a_trickling_answer_is_cut_off_at_the_overall_deadline(
    lapor_server: RunningServer, lapor_state: LaporState
) -> None:
    """httpx's timeout is per connect/read/write step: a few bytes every 0.05 s never trip a 0.3 s read timeout."""
    import time

    client = sender(lapor_server.base_url, timeout=0.3)
    lapor_state.trickle_seconds = 1.0  # the whole answer takes a second, each piece comes after 0.05 s
    try:
        started = time.monotonic()
        with pytest.raises(LaporUnknownOutcome, match="tepat waktu"):  # sent, answer not had in time: may be stored
            client.submit(complaint(), idempotency_key="k1")
        assert time.monotonic() - started < 0.6
        assert len(lapor_state.reports) == 1  # it was stored: exactly the case the lookup-before-resend handles
        started = time.monotonic()
        with pytest.raises(LaporTransientError, match="tepat waktu"):  # a lookup that ran out changed nothing
            client.find(idempotency_key="k1")
        assert time.monotonic() - started < 0.6
        lapor_state.trickle_seconds = 0.2  # slow but within the deadline: still an answer
        assert client.find(idempotency_key="k1").tracking_id == "5300001"  # type: ignore[union-attr]
    finally:
        client.close()


def test_nothing_listening_is_transient_and_a_bad_url_is_permanent() -> None:
    closed = sender(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(LaporTransientError):
        closed.submit(complaint(), idempotency_key="k")
    closed.close()
    nonsense = sender("ftp://lapor.invalid")
    with pytest.raises(LaporPermanentError):
        nonsense.submit(complaint(), idempotency_key="k")
    nonsense.close()


def test_field_mapping_comes_from_configuration() -> None:
    renamed = map_fields({"title": "A", "body": "B", "anonymous": False, "incident_date": None},
                         {"title": "subject", "body": "description", "anonymous": "is_anonymous"})
    assert renamed == {"subject": "A", "description": "B", "is_anonymous": False}
    fields = dict(copy_ready_fields(complaint()))
    assert fields["Lokasi Kejadian"] == "Jl. Frans Seda, Kel. Fatululi, Kec. Oebobo"
    assert fields["Rahasia"] == "Ya" and fields["Anonim"] == "Tidak"
    no_dupes = dict(copy_ready_fields(complaint(location_text="Kel. Fatululi, Kec. Oebobo, Kota Kupang")))
    assert no_dupes["Lokasi Kejadian"] == "Kel. Fatululi, Kec. Oebobo, Kota Kupang"
    assert public_link("5300001", Settings(lapor_public_url="https://www.lapor.go.id/pengaduan/")) == (
        "https://www.lapor.go.id/pengaduan/5300001")
