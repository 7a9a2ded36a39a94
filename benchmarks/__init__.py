"""Benchmarks of the scale issue: indicators and zonal extraction over every European monument.

Every benchmark process runs with the allocator settings of the `heritage-monitor` program
(`monitor.memory.tune_memory`), applied here, before numpy or pyarrow is imported: they measure what the
program does."""

from monitor.memory import tune_memory

tune_memory()
