"""`python -m llmroute` runs the command line."""

from llmroute.cli.main import run

run()
