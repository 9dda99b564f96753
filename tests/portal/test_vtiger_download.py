"""The documentation page's "download our library" for Vtiger, used as a Vtiger user would.

The downloaded UVox.php must default to this platform's address, so a customer of an
operator's own installation can leave the address field of Vtiger's form empty.
"""

from __future__ import annotations

import json
import shutil
import subprocess

from tests.conftest import ROOT, uvox_require
from tests.portal.conftest import PASSWORD

STANDINS = ROOT / "tests" / "vtiger" / "vtiger_standins.php"

SEND = r"""<?php
require getenv('STANDINS');
VtigerStandIn::install(getenv('PROVIDER'));
$p = VtigerStandIn::activeProvider('UVox', array('accountnumber' => getenv('ACCOUNT'),
    'apikey' => getenv('APIKEY'), 'from' => 'UVox', 'url' => ''), 'crm@example.com', 'x');
echo json_encode($p->send('Hola desde Vtiger', array('+1 (305) 555-0199')));
"""


def test_documentation_offers_the_vtiger_provider_pointing_at_this_platform(
    client, make_customer, base_url, http, tmp_path
):
    c = make_customer(password=PASSWORD)
    b = client()
    assert b.sign_in(c.email).status_code == 303
    page = b.c.get("/documentation").text
    assert 'href="/documentation/vtiger/UVox.php"' in page and c.number in page
    r = b.c.get("/documentation/vtiger/UVox.php")
    assert r.status_code == 200
    assert 'filename="UVox.php"' in r.headers["content-disposition"]
    code = r.text
    assert "class SMSNotifier_UVox_Provider" in code
    assert f"const DEFAULT_URL = '{base_url}';" in code
    # Signed out, the download is refused like every customer page.
    assert client().c.get("/documentation/vtiger/UVox.php").status_code in (302, 303)

    php = shutil.which("php")
    uvox_require(php is not None, "php-cli is not installed (apt-get install php-cli php-curl)")
    provider = tmp_path / "UVox.php"
    provider.write_text(code)
    lint = subprocess.run([php, "-l", str(provider)], capture_output=True, text=True)
    assert "No syntax errors" in lint.stdout, lint.stdout + lint.stderr
    script = tmp_path / "send.php"
    script.write_text(SEND)
    env = {
        "PATH": "/usr/bin:/bin",
        "STANDINS": str(STANDINS),
        "PROVIDER": str(provider),
        "ACCOUNT": c.number,
        "APIKEY": c.apikey,
    }
    res = subprocess.run([php, str(script)], capture_output=True, text=True, env=env, timeout=60)
    assert res.returncode == 0 and not res.stderr, res.stdout + res.stderr
    [row] = json.loads(res.stdout)
    assert row["error"] is False and row["to"] == "+13055550199", row
    status = http.get("/api/get-api/v1/sms-api/status", params={**c.auth, "messageId": row["id"]}).json()
    assert status["code"] in ("011", "013")
