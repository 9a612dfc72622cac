"""Command line entry point; sub-commands are added by the modules that own them."""

import typer

from collectionflow.db.cli import app as db_app

app = typer.Typer(no_args_is_help=True, help="collectionflow-operator")
app.add_typer(db_app, name="db")


@app.command()
def crd() -> None:
    """Print the CollectionFlow CRD generated from the API models."""
    from collectionflow.api.crd import render_crd_yaml

    typer.echo(render_crd_yaml(), nl=False)


def main() -> None:
    app()
