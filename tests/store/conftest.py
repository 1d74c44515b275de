"""Storage: the stored format (explicit names, upcasting, the golden ledger), the lean write path,
concurrent writers, what the ledger assumes of eventsourcing, and operations on the database files."""
