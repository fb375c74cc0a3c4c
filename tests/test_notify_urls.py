"""URL helpers, redaction and channel configuration (no network)."""

from __future__ import annotations

import logging

import apprise
import pytest

from gswarm.errors import ConfigError
from gswarm.events import Severity
from gswarm.notify.channels import Channel, ChannelConfig, load_channels, parse_url_entry
from gswarm.notify.urls import discord_url, email_url, redact_url, scrub, secrets_of, telegram_url

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"
HOOK = "https://discord.com/api/webhooks/417429632418316298/JHZ7lQml277CDHmQKMHI8qBe7bk2ZwO5UKjCiOAF7711o33MyqU344Qpgv7YTpadV_js"


def test_telegram_url_and_apprise_reads_it() -> None:
    url = telegram_url(TOKEN, -1001234567)
    assert url == f"tgram://{TOKEN}/-1001234567"
    plugin = apprise.Apprise.instantiate(url)
    assert plugin.bot_token == TOKEN
    assert plugin.targets == [(-1001234567, None)]  # (chat id, topic)


@pytest.mark.parametrize("token,chat", [("nocolon", "1"), (TOKEN, " ")])
def test_telegram_url_rejects_bad_input(token: str, chat: str) -> None:
    with pytest.raises(ConfigError, match="telegram"):
        telegram_url(token, chat)


def test_discord_url_from_webhook() -> None:
    url = discord_url(HOOK)
    assert url == ("discord://417429632418316298/"
                   "JHZ7lQml277CDHmQKMHI8qBe7bk2ZwO5UKjCiOAF7711o33MyqU344Qpgv7YTpadV_js")
    plugin = apprise.Apprise.instantiate(url)
    assert (plugin.webhook_id, plugin.webhook_token) == ("417429632418316298", HOOK.rsplit("/", 1)[1])
    with pytest.raises(ConfigError, match="discord webhook URL"):
        discord_url("https://example.com/api/webhooks/1/abc")


def test_email_url_starttls_ssl_and_plain() -> None:
    url = email_url("smtp.gmail.com", "ops@example.org", port=587, user="me@gmail.com", password="p@ss/w:rd")
    assert url == ("mailtos://me%40gmail.com:p%40ss%2Fw%3Ard@smtp.gmail.com:587"
                   "?from=me@gmail.com&to=ops@example.org&mode=starttls")
    plugin = apprise.Apprise.instantiate(url)
    assert (plugin.smtp_host, plugin.port, plugin.secure_mode) == ("smtp.gmail.com", 587, "starttls")
    assert (plugin.user, plugin.password) == ("me@gmail.com", "p@ss/w:rd")
    assert plugin.targets[0][1] == "ops@example.org"
    ssl = apprise.Apprise.instantiate(email_url("mail.example.org", "a@b.org", port=465, user="u", password="x",
                                                tls="ssl", sender="gswarm@example.org"))
    assert (ssl.secure_mode, ssl.port, ssl.from_addr[1]) == ("ssl", 465, "gswarm@example.org")
    plain = email_url("127.0.0.1", "a@b.org", port=2525, tls="none", sender="g@x.org")
    assert plain == "mailto://127.0.0.1:2525?from=g@x.org&to=a@b.org"
    with pytest.raises(ConfigError, match="sender"):
        email_url("h.org", "a@b.org", user="plainuser")
    with pytest.raises(ConfigError, match="tls"):
        email_url("h.org", "a@b.org", sender="s@x.org", tls="tls13")  # type: ignore[arg-type]


@pytest.mark.parametrize("url,shown,hidden", [
    (f"tgram://{TOKEN}/-1001234567", "tgram://***/***", [TOKEN, "1001234567", "123456789"]),
    ("discord://417429632418316298/SeCrEtToKeN", "discord://***/***", ["417429632418316298", "SeCrEtToKeN"]),
    ("mailtos://me%40x.org:hunter22@smtp.x.org:587?from=me@x.org&to=y@z.org&mode=starttls",
     "mailtos://***@smtp.x.org:587?from=me@x.org&to=y@z.org&mode=starttls", ["hunter22", "me%40x.org"]),
    ("json://127.0.0.1:8080/hook/abcd?token=zzzz1234", "json://127.0.0.1:8080/***/***?token=***", ["zzzz1234", "abcd"]),
    ("not a url", "***", ["not a url"]),
])
def test_redact_url_hides_secrets_keeps_scheme_and_host(url: str, shown: str, hidden: list[str]) -> None:
    assert redact_url(url) == shown
    for secret in hidden:
        assert secret not in redact_url(url)


def test_secrets_of_and_scrub() -> None:
    url = f"tgram://{TOKEN}/-1001234567"
    text = f"POST https://api.telegram.org/bot{TOKEN}/sendMessage chat -1001234567 failed"
    assert scrub(text, secrets_of(url)) == "POST https://api.telegram.org/bot***/sendMessage chat *** failed"


def test_url_entries_with_tags_and_tables() -> None:
    assert parse_url_entry("ops,phone=json://h.org/x?a=b").tags == ["ops", "phone"]
    assert parse_url_entry("json://h.org/x?a=b").tags == []
    chans = load_channels(["ops=json://h.example.org/a"],
                          [{"url": "json://h.example.org/b", "name": "pager", "kinds": "crashed,needs_you",
                            "min_severity": "critical"}], min_severity="error")
    assert [(c.name, c.config.tags, c.min_severity) for c in chans] == [
        ("0:json://h.example.org/***", ["ops"], Severity.ERROR), ("pager", [], Severity.CRITICAL)]
    pager = chans[1]
    assert pager.wants("needs_you", Severity.CRITICAL) is True
    assert pager.wants("needs_you", Severity.ERROR) is False
    assert pager.wants("disk_low", Severity.CRITICAL) is False
    assert pager.wants("crashed", Severity.INFO, force=True) is True
    assert chans[0].wants("crashed", Severity.ERROR, tag="ops") is True
    assert chans[0].wants("crashed", Severity.ERROR, tag="phone") is False


def test_bad_channel_config_is_a_config_error_without_secrets() -> None:
    with pytest.raises(ConfigError, match="notify_channels\\[0\\]") as info:
        load_channels([], [{"url": "tgram://123:SECRETTOKEN/1", "colour": "red"}])
    assert "SECRETTOKEN" not in str(info.value)
    with pytest.raises(ConfigError, match="not understood by Apprise") as info:
        Channel(ChannelConfig(url="nosuchscheme://user:SECRETPW@host.org/x"))
    assert "SECRETPW" not in str(info.value)


def test_apprise_log_records_are_scrubbed(caplog: pytest.LogCaptureFixture) -> None:
    from gswarm.notify.dispatch import Dispatcher

    ch = Channel(ChannelConfig(url=f"tgram://{TOKEN}/42424242"))
    d = Dispatcher([ch])
    try:
        with caplog.at_level(logging.DEBUG, logger="apprise"):
            logging.getLogger("apprise").warning("posting to bot%s chat %s", TOKEN, "42424242")
        assert caplog.records[-1].getMessage() == "posting to bot*** chat ***"
    finally:
        d._pool.shutdown()
        logging.getLogger("apprise").removeFilter(d._scrubber)
