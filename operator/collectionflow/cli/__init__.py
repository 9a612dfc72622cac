"""Command line entry point; sub-commands are added by the modules that own them."""

import importlib.metadata
from typing import Annotated

import typer

from collectionflow.cli.flows import register
from collectionflow.db.cli import app as db_app
from collectionflow.ui.cli import ui
from collectionflow.worker.main import worker

OPERATOR_PANEL = "Running the operator (its image runs these; rarely typed by hand)"

app = typer.Typer(
    no_args_is_help=True,
    help="Collection flows on Kubernetes: see what each flow does, why one is not moving and "
    "what happens next, give it input, retry, suspend or resume it. The same commands work "
    "as `kubectl cflow ...`.",
    epilog="Flows are CollectionFlow objects: `kubectl get cflow` lists them too.",
)
register(app)
app.command(rich_help_panel="Web view")(ui)
app.command(rich_help_panel=OPERATOR_PANEL)(worker)
app.add_typer(db_app, name="db", rich_help_panel=OPERATOR_PANEL)


def _version(asked: bool) -> None:
    if asked:
        typer.echo(f"collectionflow {importlib.metadata.version('collectionflow-operator')}")
        raise typer.Exit


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="print the version"),
    ] = False,
) -> None:
    """Collection flows on Kubernetes."""


@app.command(rich_help_panel=OPERATOR_PANEL)
def crd() -> None:
    """Print the CollectionFlow CRD generated from the API models."""
    from collectionflow.api.crd import render_crd_yaml

    typer.echo(render_crd_yaml(), nl=False)


@app.command(rich_help_panel=OPERATOR_PANEL)
def run(
    namespace: Annotated[
        list[str] | None, typer.Option("--namespace", "-n", help="watch only these (repeatable)")
    ] = None,
    liveness_port: Annotated[int, typer.Option(help="serve /healthz here; 0 disables")] = 8080,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="log at debug level")] = False,
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
