"""Benchmarks (``make bench``): registration ingestion over HTTP and scoring throughput, each
against a bare baseline on the same machine. Never run by ``make test``."""
