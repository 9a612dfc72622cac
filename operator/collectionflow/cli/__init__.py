"""Command line entry point; sub-commands are added by the modules that own them."""

from typing import Annotated

import typer

from collectionflow.cli.flows import register
from collectionflow.db.cli import app as db_app
from collectionflow.ui.cli import ui
from collectionflow.worker.main import worker

app = typer.Typer(no_args_is_help=True, help="collectionflow-operator")
app.add_typer(db_app, name="db")
app.command()(worker)
app.command()(ui)
register(app)


@app.command()
def crd() -> None:
    """Print the CollectionFlow CRD generated from the API models."""
    from collectionflow.api.crd import render_crd_yaml

    typer.echo(render_crd_yaml(), nl=False)


@app.command()
def run(
    namespace: Annotated[
        list[str] | None, typer.Option("--namespace", "-n", help="watch only these (repeatable)")
    ] = None,
    liveness_port: Annotated[int, typer.Option(help="serve /healthz here; 0 disables")] = 8080,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run the operator: reconcile every CollectionFlow in the watched namespaces."""
    import asyncio

    import kopf

    import collectionflow.controller.operator  # noqa: F401  (registers the handlers)

    kopf.configure(verbose=verbose, log_format=kopf.LogFormat.PLAIN, log_prefix=True)
    asyncio.run(
        kopf.operator(
            standalone=True,
            clusterwide=not namespace,
            namespaces=namespace or (),
            memo=kopf.Memo(health_port=liveness_port, namespaces=tuple(namespace or ())),
        )
    )


def main() -> None:
    app()
