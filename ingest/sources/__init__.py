"""Data-set sources: each turns a spec argument into a :class:`~ingest.sources.base.SourcePlan`."""
