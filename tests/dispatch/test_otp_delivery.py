"""A one-time code reaches the phone: OTP-api → dispatcher → SMPP → simulator → verify.

The code is stored masked and sealed; this checks the phone really gets the digits
(it once received "******") and that the sealed copy is gone once the carrier took it.
"""

import pytest
import sqlalchemy as sa

from uvox.db import schema as t

pytestmark = pytest.mark.timeout(120)

OTP = "/api/get-api/v1/OTP-api"
VERIFY = "/api/get-api/v1/OTP-api/verify"


def test_the_phone_gets_the_code_and_it_verifies(platform, http, customer, smsc, connector_to, dispatcher, poll):
    from uvox.otp import service

    template = service.create_template(platform.engine, customer.id, "Tu código UVox es {code}", "login")
    connector_to(smsc)
    dispatcher().wait_bound(["carrier"])
    r = http.get(OTP, params={**customer.auth, "ref_id": template.ref_id, "phone_number": "13055550177"})
    body = r.json()
    assert body["code"] == "022", body

    records = poll(lambda: smsc.call(lambda: smsc.sim.messages(dest="13055550177")))
    assert records, "the SMS never reached the SMSC"
    text = records[0]["text"]
    assert text.startswith("Tu código UVox es ")
    code = text.rsplit(" ", 1)[1]
    assert len(code) == 6 and code.isdigit(), text

    def sealed_gone():
        with platform.engine.connect() as c:
            row = c.execute(
                sa.select(t.messages.c.state, t.messages.c.secret_text, t.messages.c.text).where(
                    t.messages.c.id == int(body["id"])
                )
            ).one()
        return row if row.secret_text is None else None

    row = poll(sealed_gone)
    assert row, "the sealed code outlived its submission"
    assert code not in row.text

    v = http.get(VERIFY, params={**customer.auth, "sessionid": body["sessionID"], "otp_code": code}).json()
    assert v["code"] == "027" and v["statusmessage"] == "OTP Matched" and v["sessionID"] == body["sessionID"]
