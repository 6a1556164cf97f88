"""`capsule sync`: two-way sync between Capsule and a PostgreSQL schema.

`objects` says what is synced, `database` and `capsule` hold each side's reads and writes, `engine`
the merge (base, conflicts, journal) and `cli` the command. Nothing else in the package imports
this package.
"""
