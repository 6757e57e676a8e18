import re
from datetime import datetime, timedelta, timezone

import pytest

from billing.keys import KeyGrant, KeyRefused, admit_key, hash_secret, mint_key

NOW = datetime(2026, 11, 24, tzinfo=timezone.utc)


def test_minted_key_format_entropy_and_hash():
    keys = [mint_key() for _ in range(200)]
    for key in keys:
        assert re.fullmatch(r"bpk_[A-Za-z0-9_-]{43}", key.secret)  # 43 url-safe chars = 256 bits
        assert key.display_prefix == key.secret[:12]
        assert key.secret_hash == hash_secret(key.secret) and key.secret not in key.secret_hash
    assert len({k.secret for k in keys}) == len(keys)


def grant(**changes):
    values = dict(key_id=1, tenant_id=1, tenant_name="t", key_status="active", tenant_status="active",
                  expires_at=None)
    return KeyGrant(**{**values, **changes})


@pytest.mark.parametrize(("g", "status", "code"), [
    (None, 401, "invalid_api_key"),
    (grant(key_status="revoked"), 401, "invalid_api_key"),
    (grant(expires_at=NOW), 401, "invalid_api_key"),
    (grant(tenant_status="suspended"), 403, "tenant_suspended"),
])
def test_refused_keys(g, status, code):
    with pytest.raises(KeyRefused) as refused:
        admit_key(g, NOW)
    assert (refused.value.status, refused.value.code) == (status, code)


def test_live_key_admitted():
    g = grant(expires_at=NOW + timedelta(seconds=1))
    assert admit_key(g, NOW) is g
