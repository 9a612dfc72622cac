"""Command line entry point; sub-commands are added by the modules that own them."""

import typer

app = typer.Typer(no_args_is_help=True, help="collectionflow-operator")


def main() -> None:
    app()
