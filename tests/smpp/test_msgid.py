"""Other spellings of an SMSC message id: what carriers print in receipts."""

from uvox.smpp import msgid


def spellings(mid):
    return [alt for _, alt in msgid.alternatives(mid)]


def test_decimal_receipt_for_a_hex_answer_and_back():
    assert "3a0f10" in spellings("3804944") and "3A0F10" in spellings("3804944")
    assert "3804944" in spellings("3a0f10") and "3804944" in spellings("3A0F10")


def test_leading_zeros_either_way_and_case():
    assert "12345" in spellings("0000012345")
    assert "0000012345" in spellings("12345")
    assert "ABCDEF12" in spellings("abcdef12") and "abcdef12" in spellings("ABCDEF12")
    assert "00000000003a0f10" in spellings("3804944")  # 16-digit padded hex answer, decimal receipt


def test_the_id_itself_is_not_an_alternative_and_non_numbers_only_change_case():
    assert "3a0f10" not in spellings("3a0f10")
    assert spellings("msg-Ab") == ["msg-ab", "MSG-AB"]


def test_a_learned_form_applies_to_the_next_ids():
    form = next(f for f, alt in msgid.alternatives("3804944") if alt == "00000000003a0f10")
    assert form.apply("3804945") == "00000000003a0f11"
    assert form.apply("not-a-number") is None
