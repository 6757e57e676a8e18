import orjson
from hypothesis import given
from hypothesis import strategies as st

from billing.db.ledger import encode_row


@given(st.text(alphabet=st.sampled_from(["\x00", "\\", "u", "0", "a", "é"]), max_size=20))
def test_encoded_rows_hold_no_nul_and_change_nothing_else(value):
    encoded = encode_row({"value": value, value: 1})
    assert orjson.loads(encoded) == {"value": value.replace("\x00", "\ufffd"), value.replace("\x00", "\ufffd"): 1}
