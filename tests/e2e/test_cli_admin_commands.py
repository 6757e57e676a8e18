"""The tenant and key commands of the CLI, their JSON output and their errors."""

import json

import pytest

from proxy.cli import main


def run(capsys, *args) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_tenant_commands(database_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)
    code, out, _ = run(capsys, "tenants", "create", "cli-team", "--monthly-budget", "10", "--format", "json")
    created = json.loads(out)
    assert code == 0 and created["monthly_budget_usd"] == "10.00" and created["status"] == "active"
    code, out, _ = run(capsys, "tenants", "update", "cli-team", "--monthly-token-quota", "1000000",
                       "--price-multiplier", "1.2", "--format", "json")
    assert json.loads(out)["monthly_token_quota"] == 1000000 and json.loads(out)["price_multiplier"] == "1.20"
    assert json.loads(run(capsys, "tenants", "suspend", "cli-team", "--format", "json")[1])["status"] == "suspended"
    assert json.loads(run(capsys, "tenants", "resume", "cli-team", "--format", "json")[1])["status"] == "active"
    code, out, _ = run(capsys, "tenants", "update", "cli-team", "--no-monthly-budget", "--rename", "cli-team-2",
                       "--format", "json")
    assert json.loads(out)["monthly_budget_usd"] is None and json.loads(out)["name"] == "cli-team-2"
    code, out, _ = run(capsys, "tenants", "show", "cli-team-2", "--format", "json")
    assert code == 0 and json.loads(out)["id"] == created["id"]
    code, _, err = run(capsys, "tenants", "show", "nobody")
    assert code == 1 and err.strip() == "billing-proxy: no tenant named 'nobody'"
    code, _, err = run(capsys, "tenants", "create", "cli-team-2")
    assert code == 1 and "already exists" in err
    code, out, _ = run(capsys, "audit", "--target", f"tenant:{created['id']}", "--format", "json")
    assert [r["action"] for r in json.loads(out)][::-1] == [
        "tenant.create", "tenant.update", "tenant.suspend", "tenant.resume", "tenant.update"]


def test_key_commands(database_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)
    run(capsys, "tenants", "create", "cli-keys")
    code, out, _ = run(capsys, "keys", "issue", "--tenant", "cli-keys", "--label", "laptop", "--expires-in", "30d",
                       "--monthly-budget", "5", "--format", "json")
    issued = json.loads(out)
    assert code == 0 and {"id", "key", "tenant", "prefix", "expires_at"} <= set(issued)
    code, out, _ = run(capsys, "keys", "update", str(issued["id"]), "--models", "seed-1-6*,gpt-4o",
                       "--format", "json")
    assert json.loads(out)["allowed_models"] == ["seed-1-6*", "gpt-4o"]
    code, out, _ = run(capsys, "keys", "update", str(issued["id"]), "--any-model", "--no-monthly-budget",
                       "--format", "json")
    assert json.loads(out)["allowed_models"] is None and json.loads(out)["monthly_budget_usd"] is None
    code, out, _ = run(capsys, "keys", "revoke", str(issued["id"]), "--format", "json")
    assert json.loads(out)["status"] == "revoked"
    code, _, err = run(capsys, "keys", "rotate", str(issued["id"]))
    assert code == 1 and "only an active key can be rotated" in err
    code, _, err = run(capsys, "keys", "revoke", "987654")
    assert code == 1 and "no key with id 987654" in err
    code, out, _ = run(capsys, "keys", "list", "--tenant", "cli-keys", "--format", "csv")
    assert out.splitlines()[0].startswith("id,display_prefix,tenant,label,status")


def test_limits_and_credit_commands(database_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)
    code, out, _ = run(capsys, "tenants", "create", "cli-limits", "--daily-budget", "5", "--weekly-token-quota",
                       "1000", "--rpm", "60", "--prepaid", "--format", "json")
    created = json.loads(out)
    assert code == 0 and (created["daily_budget_usd"], created["weekly_token_quota"], created["requests_per_minute"],
                          created["prepaid"], created["credit"]["balance_usd"]) == ("5.00", 1000, 60, True, "0.00")
    code, out, _ = run(capsys, "credits", "add", "--tenant", "cli-limits", "--amount", "12.5", "--reason", "PO 9",
                       "--format", "json")
    credit = json.loads(out)
    assert code == 0 and (credit["credited_usd"], credit["balance_usd"]) == ("12.50", "12.50")
    assert [(t["amount_usd"], t["reason"]) for t in credit["topups"]] == [("12.50", "PO 9")]
    code, _, err = run(capsys, "credits", "add", "--tenant", "cli-limits", "--amount", "0", "--reason", "x")
    assert code == 1 and "positive" in err
    code, out, _ = run(capsys, "tenants", "update", "cli-limits", "--no-daily-budget", "--no-rpm", "--tpm", "9000",
                       "--postpaid", "--format", "json")
    updated = json.loads(out)
    assert (updated["daily_budget_usd"], updated["requests_per_minute"], updated["tokens_per_minute"],
            updated["prepaid"]) == (None, None, 9000, False)
    code, out, _ = run(capsys, "keys", "issue", "--tenant", "cli-limits", "--max-concurrent", "4", "--rpm", "10",
                       "--format", "json")
    key_id = json.loads(out)["id"]
    code, out, _ = run(capsys, "keys", "update", str(key_id), "--no-max-concurrent", "--weekly-budget", "3",
                       "--format", "json")
    key = json.loads(out)
    assert (key["max_concurrent"], key["requests_per_minute"], key["weekly_budget_usd"]) == (None, 10, "3.00")
    with pytest.raises(SystemExit) as exited:
        run(capsys, "keys", "update", str(key_id), "--rpm", "0")
    assert exited.value.code == 2 and "not a positive whole number" in capsys.readouterr().err
    code, out, _ = run(capsys, "audit", "--target", f"tenant:{created['id']}", "--format", "json")
    assert [r["action"] for r in json.loads(out)][::-1] == ["tenant.create", "credit.add", "tenant.update"]


def test_prices_show_aliases_and_resolve_a_requested_name(database_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)
    code, out, err = run(capsys, "prices", "list", "--model", "seed-1-6-250915", "--format", "json")
    rows = json.loads(out)
    assert code == 0 and {r["model"] for r in rows} == {"seed-1-6"} and len(rows) == 2  # its two input tiers
    assert "seed-1-6-*" in rows[0]["aliases"].split() and "bytedance-seed-1-6" in rows[0]["aliases"].split()
    assert err == "seed-1-6-250915 resolves to seed-1-6 (pattern seed-1-6-*)\n"

    run(capsys, "tenants", "create", "cli-priced")
    run(capsys, "prices", "set", "seed-1-6", "--tenant", "cli-priced", "--input", "0.30", "--output", "2.40")
    code, out, _ = run(capsys, "prices", "resolve", "seed-1-6-250915", "--tenant", "cli-priced", "--format", "json")
    resolved = json.loads(out)
    assert code == 0 and (resolved["model"], resolved["matched_by"], resolved["alias"]) == (
        "seed-1-6", "pattern", "seed-1-6-*")
    assert resolved["tenant_version"] is not None and resolved["service_tier_priced"] is True
    assert [(r["tenant"], r["input"]) for r in resolved["prices"]] == [(None, "0.25"), (None, "0.50"),
                                                                      ("cli-priced", "0.30")]
    code, out, _ = run(capsys, "prices", "resolve", "gpt-4o-mini", "--service-tier", "flex", "--format", "json")
    assert json.loads(out)["service_tier_priced"] is False
    code, out, err = run(capsys, "prices", "resolve", "no-such-model")
    assert code == 1 and out == "" and err == ("billing-proxy: no-such-model is not priced: no priced model, alias or "
                                               "pattern matches it, and no default price (model '*') is set\n")


def test_look_alike_names_and_control_characters_are_refused(database_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)
    code, out, _ = run(capsys, "tenants", "create", " cli-Look ", "--format", "json")
    assert code == 0 and json.loads(out)["name"] == "cli-Look"  # trimmed
    for look_alike, normalised in (("cli-look", "cli-look"), ("CLI-LOOK", "CLI-LOOK"), ("ｃｌｉ-ｌｏｏｋ", "cli-look")):
        code, _, err = run(capsys, "tenants", "create", look_alike)
        assert code == 1 and err.strip() == (f"billing-proxy: tenant name {normalised!r} "
                                             "is too like the existing tenant 'cli-Look' (names that differ only in "
                                             "case, width or spacing are the same tenant)")
    run(capsys, "tenants", "create", "cli-other")
    code, _, err = run(capsys, "tenants", "update", "cli-other", "--rename", "CLI-look")
    assert code == 1 and "existing tenant 'cli-Look'" in err
    refused = [("tenants", "create", "cli-\u200bzw"), ("tenants", "create", "cli\u202eevil"),
               ("tenants", "update", "cli-other", "--rename", "cli\tother"),
               ("credits", "add", "--tenant", "cli-Look", "--amount", "1", "--reason", "PO \x1b[2J"),
               ("adjust", "--tenant", "cli-Look", "--amount", "-1", "--reason", "a\rb"),
               ("keys", "issue", "--tenant", "cli-Look", "--label", "lap\x07top"),
               ("keys", "list", "--tenant", "cli\x01")]
    for args in refused:
        with pytest.raises(SystemExit) as exited:
            run(capsys, *args)
        err = capsys.readouterr().err
        assert exited.value.code == 2 and ("control" in err or "invisible" in err), (args, err)
        assert "Traceback" not in err
    code, out, _ = run(capsys, "credits", "add", "--tenant", "cli-Look", "--amount", "1", "--reason", "PO 9\n\tpaid",
                       "--format", "json")
    assert code == 0 and json.loads(out)["topups"][0]["reason"] == "PO 9\n\tpaid"
    code, out, _ = run(capsys, "tenants", "list", "--format", "json")
    assert not {"cli-look", "cli-\u200bzw", "cli\u202eevil"} & {t["name"] for t in json.loads(out)}


LISTINGS = [("tenants", "list"), ("keys", "list"), ("prices", "list"), ("prices", "list", "--history"),
            ("audit",), ("report", "--by", "tenant,model"), ("tenants", "list", "--format", "csv")]


@pytest.mark.parametrize("listing", LISTINGS, ids=" ".join)
def test_a_listing_piped_into_a_reader_that_stops_early_ends_quietly(database_url, listing):
    """`billing-proxy ... | head -1`: no BrokenPipeError traceback, the status a shell gives
    a command killed by SIGPIPE (141), and stdout is all that was cut short."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "DATABASE_URL": database_url}
    subprocess.run([sys.executable, "-m", "proxy.cli", "tenants", "create", "cli-pipe"], env=env, capture_output=True)
    for reader in ("head -c 0", "head -n 1"):  # closes before anything is written; after the first line
        done = subprocess.run(f"{sys.executable} -m proxy.cli {' '.join(listing)} | {reader} >/dev/null; "
                              "echo ${PIPESTATUS[0]} >&2", shell=True, executable="/bin/bash", env=env,
                              capture_output=True, text=True, timeout=120)
        *messages, status = done.stderr.strip().splitlines()
        assert messages == [] and status in ("0", "141"), (reader, done.stderr)
    # the reader gone before the command writes: always the broken pipe
    read, write = os.pipe()
    os.close(read)
    try:
        done = subprocess.run([sys.executable, "-m", "proxy.cli", *listing], env=env, stdout=write,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write)
    assert (done.returncode, done.stderr) == (141, "")


def test_per_call_caps_fitting_request_quotas_and_enforcement_commands(database_url, monkeypatch, capsys):
    monkeypatch.setenv("DATABASE_URL", database_url)
    code, out, _ = run(capsys, "tenants", "create", "cli-fit", "--max-call-usd", "0.25", "--fit-floor-tokens", "128",
                       "--daily-request-quota", "1000", "--enforcement", "soft", "--format", "json")
    created = json.loads(out)
    assert code == 0 and (created["max_call_usd"], created["fit_floor_tokens"], created["daily_request_quota"],
                          created["enforcement"]) == ("0.25", 128, 1000, "soft")
    code, out, _ = run(capsys, "tenants", "update", "cli-fit", "--no-max-call-usd", "--monthly-request-quota", "9",
                       "--enforcement", "hard", "--format", "json")
    updated = json.loads(out)
    assert (updated["max_call_usd"], updated["monthly_request_quota"], updated["enforcement"]) == (None, 9, "hard")
    code, out, _ = run(capsys, "keys", "issue", "--tenant", "cli-fit", "--max-call-usd", "0.05",
                       "--daily-request-quota", "20", "--format", "json")
    key_id = json.loads(out)["id"]
    code, out, _ = run(capsys, "keys", "update", str(key_id), "--fit-floor-tokens", "64", "--format", "json")
    key = json.loads(out)
    assert (key["max_call_usd"], key["daily_request_quota"], key["fit_floor_tokens"]) == ("0.05", 20, 64)
    with pytest.raises(SystemExit) as exited:
        run(capsys, "tenants", "update", "cli-fit", "--enforcement", "lenient")
    assert exited.value.code == 2
