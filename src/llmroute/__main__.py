"""`python -m llmroute` runs the command line."""

from llmroute.cli.main import run

if __name__ == "__main__":  # not when a child process (the ledger reader) imports it
    run()
