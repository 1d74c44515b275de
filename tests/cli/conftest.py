"""The `ledger` command, in process (`tests.cli_helpers.ledger`) and as a real process where signals matter."""
