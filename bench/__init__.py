"""Benchmarks (figures printed, never asserted): ``python -m bench.bench_answer_path``,
``python -m bench.bench_embedding``, ``python -m bench.bench_judge`` (or each file as a script)."""
