"""The identity rules: documented cases, invariants against the oracle, validation, user properties.

They run through `IdentityLedger` on every backend (the root conftest's `lg` and `open_ledger`);
`test_domain.py` runs the aggregates and the rule without a database.
"""
