"""`python -m knock` runs the CLI."""

from knock.cli import app

app()
