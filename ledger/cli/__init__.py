"""The `ledger` command: one subcommand per everyday job, and what it needs to show results to a person.

`commands` parses arguments and runs each subcommand; `importing` reads event files, `sending`
sends them as a careful client would, `render`, `graph` and `progress` draw output, `demo`
and `synthetic` make and run the demo history, `amplitude_export` reads and writes Amplitude's
export shapes.
"""

from ledger.cli.commands import main

__all__ = ["main"]
