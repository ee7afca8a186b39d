"""Secrets held by settings stay out of reprs, errors and logs: the database URL and the alert webhook URL
are SecretStr, and the processes' logging keeps httpx from logging the webhook URL it posts to."""

from __future__ import annotations

import logging
import uuid

import pytest
from pydantic import ValidationError

from cli.main import _logging
from quality.webhook import post
from scout.settings import Settings
from tests.receiver import Receiver

PASSWORD = "pw-" + uuid.uuid4().hex
PATH_SECRET = uuid.uuid4().hex


def test_settings_repr_and_dump_hide_secrets() -> None:
    settings = Settings(database_url=f"postgresql://scout:{PASSWORD}@db:5432/scout",  # type: ignore[arg-type]
                        alert_webhook_url=f"https://alerts:{PASSWORD}@hooks.example.com/{PATH_SECRET}")  # type: ignore[arg-type]
    for text in (repr(settings), str(settings), settings.model_dump_json(), str(settings.model_dump())):
        assert PASSWORD not in text and PATH_SECRET not in text
    assert PASSWORD in settings.database_dsn()  # still there for the one place that connects


def test_a_refused_webhook_url_does_not_echo_it() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(alert_webhook_url=f"ftp://alerts:{PASSWORD}@hooks.example.com/{PATH_SECRET}")  # type: ignore[arg-type]
    assert "alert_webhook_url" in str(refused.value)
    assert PASSWORD not in str(refused.value) and PATH_SECRET not in str(refused.value)


def test_webhook_delivery_logs_no_url(caplog: pytest.LogCaptureFixture) -> None:
    _logging(Settings(log_level="debug"))
    caplog.set_level(logging.DEBUG)
    with Receiver("error").running() as hook:  # a 500 first: the retry path logs too
        url = hook.url.replace("http://", f"http://alerts:{PASSWORD}@").replace("/hook", f"/{PATH_SECRET}")
        assert post(url, b"{}", timeout_s=5, attempts=2)
    assert hook.requests == 2
    assert "alert webhook: attempt 1/2 failed" in caplog.text
    assert PASSWORD not in caplog.text and PATH_SECRET not in caplog.text
