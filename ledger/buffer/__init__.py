"""The buffered deployment: stateless ingest servers publish requests to NATS JetStream,
one identity writer per project applies them in order, exactly once.

`stream` names and opens the per-project streams, `publisher` is the serve side,
`writer` the `ledger apply` side, `position` the fact that makes applying exactly-once,
`lock` keeps one writer per project.
"""
