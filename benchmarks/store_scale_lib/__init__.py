"""Parts of benchmarks/store_scale.py: its documents and its servers (in a folder: the scripts --help test
runs benchmarks/*.py only)."""
