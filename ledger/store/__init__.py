"""Storage: a database URL becomes an event store; aggregates are cached and saved one request at a time.

`database` opens SQLite or PostgreSQL through eventsourcing's core recorders with the msgspec
mapper, `event_log` reads stored events in bulk, `unit_of_work` holds one request's aggregates
and commits them in one transaction.
"""
