"""Benchmarks of the scale issue: indicators and zonal extraction over every European monument."""
