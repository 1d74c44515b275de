"""The read side: incremental projections equal their rebuild, exactly once across crashes, `as_of`."""
