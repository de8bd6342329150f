"""The communication-pattern policy (PHKS, *Pola Hubungan Komunikasi Sandi*).

Load a policy file, validate it strictly, compile it, and decide whether a sender may
send a document of a classification to a recipient at a time::

    from sandi.policy import load_policy, compile_policy
    policy = compile_policy(load_policy("policies/banten.toml"))
    policy.require_allowed("DISKOMINFO", "BAPPEDA", "R", at)   # raises PolicyDenied (exit 3)

Invariants: anything not allowed is denied; a forbid overrides every allow; a policy
outside its effective window allows nothing; every decision names the rule that
decided it. This package's engine imports only the standard library; the versions
store (:mod:`sandi.policy.store`) needs the registry and is imported separately.
"""

from sandi.policy.engine import (
    CompiledPolicy,
    Decision,
    PolicyDecisionDenied,
    PolicyIndex,
    compile_policy,
    compile_source,
)
from sandi.policy.loader import PolicyFileError, Problem, load_policy, parse_policy
from sandi.policy.model import Entity, Forbid, Group, Level, Policy, Relation, Window
from sandi.policy.signature import policy_signing_message, verify_policy_signature
from sandi.policy.versions import PolicyVersionRecord, check_in_force, select_active

__all__ = [
    "CompiledPolicy",
    "Decision",
    "Entity",
    "Forbid",
    "Group",
    "Level",
    "Policy",
    "PolicyDecisionDenied",
    "PolicyFileError",
    "PolicyIndex",
    "PolicyVersionRecord",
    "Problem",
    "Relation",
    "Window",
    "check_in_force",
    "compile_policy",
    "compile_source",
    "load_policy",
    "parse_policy",
    "policy_signing_message",
    "select_active",
    "verify_policy_signature",
]
