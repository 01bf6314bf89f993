"""The processors: the Faust app, its agents and tables, ticks, metrics, the web and the CLI.

Importing this package imports nothing heavy: commands that need no Kafka
(`slamon replay`, `slamon check-config`) start fast.
"""
