"""The project's benchmarks, one command: `python -m scripts.bench <benchmark> [options]` (see __main__)."""
