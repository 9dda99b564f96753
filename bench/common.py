"""What the benchmarks share: the real `uvox` CLI, and a funded account to send from."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

USA_DECK = "dialprefix,destination,rateinitial,smsrate\n1,USA,0.01,0.0075\n"


def uvox(args: list[str], env: dict[str, str]) -> dict:
    """Run `uvox ARGS --json` and return its (last) JSON line; raise with its output if it fails."""
    res = subprocess.run([sys.executable, "-m", "uvox", *args, "--json"], env=env, capture_output=True, text=True)
    if res.returncode:
        raise RuntimeError(res.stdout + res.stderr)
    return json.loads(res.stdout.strip().splitlines()[-1])


def funded_account(env: dict[str, str], work: Path, deck: str = USA_DECK) -> str:
    """Plan "bench" with ``deck``, an account on it with money for any run, and its API key."""
    uvox(["admin", "plan", "create", "bench", "--currency", "US$"], env)
    path = work / "deck.csv"
    path.write_text(deck)
    uvox(["admin", "rates", "import", "bench", str(path)], env)
    acct = uvox(["admin", "account", "create", "--email", "bench@example.com", "--plan", "bench"], env)
    key = uvox(["admin", "apikey", "create", acct["accountnumber"]], env)["apikey"]
    uvox(["admin", "topup", acct["accountnumber"], "100000000"], env)
    return key
