"""The domain: the identity rules, free of I/O.

`calls` is the request contract and its validation, `model` the aggregates and their events,
`properties` the user-property operations, `resolution` the rule that decides which amplitude
ID each call belongs to.
"""
