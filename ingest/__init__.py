"""Public data sets in: loaders, cleaning with a report, a preprocessing cache."""
