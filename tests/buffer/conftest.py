"""The buffered deployment: stateless servers publishing to NATS JetStream, `ledger apply` writing
each project exactly once, faults and restarts. Needs the NATS server on 127.0.0.1:4222 (.ci/run starts it)."""
