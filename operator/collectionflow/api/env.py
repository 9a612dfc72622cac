"""A phase container's extra environment: literal values, or one key of a ConfigMap or of a
Secret made for phases; never a variable of the worker's own."""

from __future__ import annotations

from pydantic import Field, model_validator

from collectionflow.api.base import ApiModel

RESERVED_ENV_PREFIX = "COLLECTIONFLOW_"
RESERVED_ENV_NAMES = ("TERMINATION_MESSAGE_PATH", "KUBECONFIG", "HOSTNAME")
_RESERVED_ENV = rf"^({RESERVED_ENV_PREFIX}|({'|'.join(RESERVED_ENV_NAMES)})$)"


PHASE_SECRET_PREFIX = "collectionflow-phase-"
_DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
_DATA_KEY = r"^[-._a-zA-Z0-9]+$"


class ConfigMapKeyRef(ApiModel):
    """A key of a ConfigMap in the flow's namespace."""

    name: str = Field(pattern=_DNS_SUBDOMAIN, max_length=253, description="The ConfigMap.")
    key: str = Field(pattern=_DATA_KEY, max_length=253, description="Its key.")


class SecretKeyRef(ApiModel):
    """A key of a Secret in the flow's namespace, named collectionflow-phase-*: only Secrets
    so named are handed to phases, so a flow cannot read any other Secret of its namespace."""

    name: str = Field(
        pattern=rf"^{PHASE_SECRET_PREFIX}[a-z0-9]([-a-z0-9.]*[a-z0-9])?$",
        max_length=253,
        description=f"The Secret; its name must start {PHASE_SECRET_PREFIX}.",
    )
    key: str = Field(pattern=_DATA_KEY, max_length=253, description="Its key.")


class EnvSource(ApiModel):
    """Where a variable's value comes from: one key of a ConfigMap or of a phase Secret."""

    config_map_key_ref: ConfigMapKeyRef | None = Field(
        default=None, description="A key of a ConfigMap in the flow's namespace."
    )
    secret_key_ref: SecretKeyRef | None = Field(
        default=None,
        description=f"A key of a Secret in the flow's namespace named {PHASE_SECRET_PREFIX}*.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> EnvSource:
        if (self.config_map_key_ref is None) == (self.secret_key_ref is None):
            raise ValueError("valueFrom takes exactly one of configMapKeyRef and secretKeyRef")
        return self


class EnvVar(ApiModel):
    """An environment variable of the phase's container."""

    name: str = Field(
        pattern=r"^[A-Za-z_][A-Za-z0-9_.-]*$",
        max_length=253,
        description="Variable name. Names starting COLLECTIONFLOW_ and "
        f"{', '.join(RESERVED_ENV_NAMES)} are the worker's own and are refused.",
        json_schema_extra={"not": {"pattern": _RESERVED_ENV}},
    )
    value: str = Field(default="", max_length=4096, description="Its value, at most 4096 bytes.")
    value_from: EnvSource | None = Field(
        default=None,
        description="Its value from a ConfigMap's key, or a Secret's named "
        f"{PHASE_SECRET_PREFIX}*; not with value. A missing key keeps the phase's pod from "
        "starting (CreateContainerConfigError), which the flow's status names.",
    )

    @model_validator(mode="after")
    def _value_or_source(self) -> EnvVar:
        if self.value and self.value_from is not None:
            raise ValueError(f"env {self.name}: value and valueFrom are exclusive")
        return self
