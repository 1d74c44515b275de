"""The buffered deployment: stateless ingest servers publish requests to NATS JetStream,
one identity writer per project applies them in order, exactly once.

`stream` names and opens the per-project streams, `publisher` is the serve side,
`writer` the `ledger apply` side (exactly once: each request is stored with its stream
sequence in the same transaction), `lock` keeps one writer per project.
"""
