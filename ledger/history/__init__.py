"""The ledger's history as a portable file (docs/export.md): written in ledger order, replayed into another ledger.

`records` declares the format, `writing` reads the log into records, `replaying` stores records
in a ledger so that it holds the same people.
"""
