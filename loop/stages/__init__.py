"""The stages of one round, one module each: plain functions of (their own config, a round context, inputs).

No Prefect here: :mod:`tasks` wraps each stage in a task and :mod:`flows` orders them. Every stage reads
what it needs from the store and writes its results back idempotently, so a crashed round can be re-run
without duplicates or lost results.
"""
