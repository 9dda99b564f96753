"""How the SMSC simulator answers a submit_sm: its rules and the verdict they give.

Kept apart from the SMPP server so that what a test or an operator asks for
(throttle, reject, a failed receipt, silence) reads in one place, and can be
checked without sockets. The rules are changed from other threads (a test
calling ``set_rules`` while the simulator's loop serves traffic), hence the lock.
"""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from smpplib import consts

from uvox.smpp import pdu as P

#: submit_sm_resp status for a rejected message unless the rule says otherwise.
DEFAULT_REJECT_STATUS: int = consts.SMPP_ESME_RINVDSTADR
DEFAULT_THROTTLE_STATUS: int = consts.SMPP_ESME_RTHROTTLED

ACTIONS = frozenset({"throttle", "reject", "receipt", "drop", "mute"})


@dataclass
class Rule:
    """One run-time behaviour, applied to the submit_sm it matches.

    action:
      ``throttle`` answer with ``status`` (default ESME_RTHROTTLED 0x58);
      ``reject``   answer with a permanent error ``status`` (default ESME_RINVDSTADR);
      ``receipt``  accept, then send a receipt with ``stat`` (UNDELIV, REJECTD, EXPIRED);
      ``drop``     accept and never send a receipt;
      ``mute``     never answer the submit_sm at all.
    dest: regular expression searched in destination_addr (all when empty).
    fraction: probability the rule applies to a matching message.
    count: how many more times it applies (unlimited when None).
    """

    action: str
    dest: str = ""
    fraction: float = 1.0
    count: int | None = None
    status: int | None = None
    stat: str | None = None
    _re: re.Pattern[str] | None = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"unknown action {self.action!r}")
        if self.action == "receipt" and (self.stat or "").upper() not in P.MESSAGE_STATES:
            raise ValueError(f"receipt rule needs a stat among {sorted(P.MESSAGE_STATES)}")
        self._re = re.compile(self.dest) if self.dest else None

    @classmethod
    def of(cls, rule: Rule | Mapping[str, Any]) -> Rule:
        """A rule from itself or from its JSON form (TypeError on unknown keys, as the control port answers 400)."""
        return rule if isinstance(rule, Rule) else cls(**rule)

    def matches(self, dest: str) -> bool:
        return self._re is None or self._re.search(dest) is not None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if not k.startswith("_")}


@dataclass(frozen=True)
class Verdict:
    """What the simulator does with one submit_sm.

    outcome: the record's word (accepted, throttled, rejected, muted);
    status: the submit_sm_resp's command_status (0 accepts; no answer at all when muted);
    receipt: the receipt's stat word, or None when no receipt is ever sent.
    """

    outcome: str
    status: int = 0
    receipt: str | None = "DELIVRD"

    @property
    def answered(self) -> bool:
        return self.outcome != "muted"


ACCEPT = Verdict("accepted")


def verdict(rule: Rule | None) -> Verdict:
    """The answer ``rule`` (None: no rule matched) gives a submit_sm."""
    if rule is None:
        return ACCEPT
    if rule.action == "throttle":
        return Verdict("throttled", rule.status or DEFAULT_THROTTLE_STATUS, None)
    if rule.action == "reject":
        return Verdict("rejected", rule.status or DEFAULT_REJECT_STATUS, None)
    if rule.action == "mute":
        return Verdict("muted", 0, None)
    if rule.action == "drop":
        return Verdict("accepted", 0, None)
    return Verdict("accepted", 0, (rule.stat or "").upper())


class RuleBook:
    """The simulator's current rules, in order; the first that matches a destination applies."""

    def __init__(self) -> None:
        self._rules: list[Rule] = []
        self._lock = threading.Lock()

    def set(self, rules: Iterable[Rule | Mapping[str, Any]]) -> None:
        parsed = [Rule.of(r) for r in rules]
        with self._lock:
            self._rules = parsed

    def add(self, rule: Rule | Mapping[str, Any]) -> None:
        r = Rule.of(rule)
        with self._lock:
            self._rules.append(r)

    def clear(self) -> None:
        with self._lock:
            self._rules = []

    def as_dicts(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.to_dict() for r in self._rules]

    def match(self, dest: str) -> Rule | None:
        """The rule that applies to a message for ``dest``, spending one of its ``count``."""
        with self._lock:
            if not self._rules:
                return None
            for r in list(self._rules):
                if not r.matches(dest):
                    continue
                if r.fraction < 1.0 and random.random() >= r.fraction:
                    continue
                if r.count is not None:
                    r.count -= 1
                    if r.count <= 0:
                        self._rules.remove(r)
                return r
        return None

    def decide(self, dest: str) -> Verdict:
        """How the simulator answers a message for ``dest`` now."""
        return verdict(self.match(dest))
