from __future__ import annotations

import json
import logging

import pytest

from agent.logging_setup import Redactor, configure_logging, request_id_var, update_id_var


def test_redactor_hides_known_values_and_token_shapes() -> None:
    redact = Redactor(["my-admin-password"])
    line = redact(
        "pass=my-admin-password url=https://api.telegram.org/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ/getMe "
        "key sk-abcdefghijklmnopqrstuvwx Authorization: Bearer abc.def.ghi123"
    )
    assert "my-admin-password" not in line
    assert "AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsawQ" not in line
    assert "sk-abcdefghijklmnopqrstuvwx" not in line
    assert "abc.def.ghi123" not in line
    assert line.count("***") == 4


def test_json_lines_carry_ids_and_redact(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", ["super-secret-value"], json=True)
    log = logging.getLogger("test.json")
    req = request_id_var.set("req-1")
    upd = update_id_var.set(77)
    try:
        log.info("got %s", "super-secret-value")
        try:
            raise RuntimeError("boom super-secret-value")
        except RuntimeError:
            log.exception("failed")
    finally:
        request_id_var.reset(req)
        update_id_var.reset(upd)
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert lines[0]["message"] == "got ***"
    assert lines[0]["request_id"] == "req-1" and lines[0]["update_id"] == 77
    assert "super-secret-value" not in json.dumps(lines)
    assert "RuntimeError" in lines[1]["message"]


def test_text_format_for_terminals(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("INFO", [], json=False)
    token = request_id_var.set("r2")
    try:
        logging.getLogger("test.text").warning("hello")
    finally:
        request_id_var.reset(token)
    err = capsys.readouterr().err
    assert "WARNING" in err and "[req=r2]" in err and "hello" in err
