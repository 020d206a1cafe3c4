"""Compute settings of the services costflow deploys (design F6 §4.2), with defaults.

Cloud Run runs them (ADR-004): the sync job (``costflow sync`` on a schedule) and the MCP server
(``costflow mcp``, called ``gcp-mcp-server`` in the design). Each has documented defaults here;
the ``compute.services`` list of costflow.yaml overrides any of their values by service name,
or declares another service whole::

    compute:
      provider: cloud_run
      services:
        - name: sync-job
          memory: 4Gi          # the rest stays as in DEFAULTS

Limits follow Cloud Run's documentation (cloud.google.com/run/docs/configuring): memory
128Mi-32Gi, cpu 1, 2, 4, 6 or 8 (or a fraction 0.08-1), concurrency 1-1000, request/task
timeout up to 168 hours (services stop at 3600 s; Cloud Run refuses more at deploy).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

from costflow.errors import ConfigError

_MEMORY = re.compile(r"([1-9][0-9]{0,5})(Mi|Gi)", re.ASCII)
_DURATION = re.compile(r"([1-9][0-9]{0,6})([smh]?)", re.ASCII)
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600}
MEMORY_MIB = (128, 32 * 1024)
WHOLE_CPUS = (1, 2, 4, 6, 8)
TIMEOUT_MAX = 168 * 3600
SERVICE_NAME = re.compile(r"[a-z][a-z0-9-]{0,48}[a-z0-9]", re.ASCII)


def memory_mib(memory: str) -> int:
    """``"512Mi"`` -> 512, ``"2Gi"`` -> 2048."""
    found = _MEMORY.fullmatch(memory)
    if not found:
        raise ValueError(f"is not a memory size; write a whole number of Mi or Gi such as 512Mi "
                         f"or 2Gi ({MEMORY_MIB[0]}Mi to {MEMORY_MIB[1] // 1024}Gi)")
    return int(found.group(1)) * (1024 if found.group(2) == "Gi" else 1)


def timeout_seconds(value: object) -> int:
    """``300``, ``"300s"``, ``"5m"`` or ``"1h"`` as seconds."""
    if isinstance(value, bool):
        raise ValueError("is not a duration; write seconds such as 300 or 300s, or 5m, 1h")
    if isinstance(value, int):
        seconds = value
    else:
        found = _DURATION.fullmatch(str(value).strip()) if isinstance(value, str) else None
        if not found:
            raise ValueError("is not a duration; write seconds such as 300 or 300s, or 5m, 1h")
        seconds = int(found.group(1)) * _UNIT_SECONDS[found.group(2)]
    if not 1 <= seconds <= TIMEOUT_MAX:
        raise ValueError(f"must be between 1 second and {TIMEOUT_MAX // 3600} hours")
    return seconds


def _check_memory(value: str) -> str:
    mib = memory_mib(value)
    if not MEMORY_MIB[0] <= mib <= MEMORY_MIB[1]:
        raise ValueError(f"Cloud Run takes {MEMORY_MIB[0]}Mi to {MEMORY_MIB[1] // 1024}Gi")
    return value


def _check_cpu(value: int | float) -> int | float:
    if isinstance(value, bool) or not (value in WHOLE_CPUS or 0.08 <= value < 1):
        raise ValueError("Cloud Run takes 1, 2, 4, 6 or 8 CPUs, or a fraction from 0.08 to "
                         "below 1")
    return value


class ComputeConfig(BaseModel):
    """One service's container settings (design §4.2), complete."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    memory: str = "512Mi"
    cpu: int | float = 1
    min_instances: int = Field(default=0, ge=0, le=1000)
    max_instances: int = Field(default=10, ge=1, le=1000)
    concurrency: int = Field(default=80, ge=1, le=1000)
    timeout_seconds: int = 300

    @field_validator("memory")
    @classmethod
    def _memory(cls, value: str) -> str:
        return _check_memory(value)

    @field_validator("cpu")
    @classmethod
    def _cpu(cls, value: int | float) -> int | float:
        return _check_cpu(value)

    @field_validator("timeout_seconds", mode="before")
    @classmethod
    def _timeout(cls, value: object) -> int:
        return timeout_seconds(value)

    @model_validator(mode="after")
    def _instances(self) -> ComputeConfig:
        if self.min_instances > self.max_instances:
            raise ValueError(f"min_instances ({self.min_instances}) is above max_instances "
                             f"({self.max_instances}); lower min_instances or raise "
                             "max_instances")
        return self

    @property
    def memory_mib(self) -> int:
        return memory_mib(self.memory)


# The services costflow deploys, and why each value.
DEFAULTS: dict[str, ComputeConfig] = {
    # One sync at a time (a lock in the metadata store makes sure); two CPUs so its two
    # parallel ingests (sync.parallel: 2) each have a core; an hour covers dozens of sources.
    "sync-job": ComputeConfig(name="sync-job", memory="2Gi", cpu=2, min_instances=0,
                              max_instances=1, concurrency=1, timeout_seconds=3600),
    # The design's gcp-mcp-server (§4.2): small, scales to zero, five instances at most.
    "mcp-server": ComputeConfig(name="mcp-server", memory="256Mi", cpu=1, min_instances=0,
                                max_instances=5, concurrency=80, timeout_seconds=300),
}
ALIASES = {"gcp-mcp-server": "mcp-server"}


def canonical(name: str) -> str:
    return ALIASES.get(name, name)


class ServiceOverride(BaseModel):
    """One ``compute.services`` entry: the values to change; the others keep their default."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    memory: str | None = None
    cpu: int | float | None = None
    min_instances: int | None = Field(default=None, ge=0, le=1000)
    max_instances: int | None = Field(default=None, ge=1, le=1000)
    concurrency: int | None = Field(default=None, ge=1, le=1000)
    # The design writes "timeout: 300s"; the model's name is timeout_seconds. Either is read.
    timeout_seconds: int | None = Field(
        default=None, validation_alias=AliasChoices("timeout_seconds", "timeout"))

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not SERVICE_NAME.fullmatch(value):
            raise ValueError("a service name is 2-50 lower-case letters, digits and '-' "
                             "(e.g. sync-job, mcp-server)")
        return value

    @field_validator("memory")
    @classmethod
    def _memory(cls, value: str | None) -> str | None:
        return None if value is None else _check_memory(value)

    @field_validator("cpu")
    @classmethod
    def _cpu(cls, value: int | float | None) -> int | float | None:
        return None if value is None else _check_cpu(value)

    @field_validator("timeout_seconds", mode="before")
    @classmethod
    def _timeout(cls, value: object) -> int | None:
        return None if value is None else timeout_seconds(value)

    def apply(self) -> ComputeConfig:
        """The default of this service (or the generic one) with these values changed."""
        name = canonical(self.name)
        base = DEFAULTS.get(name) or ComputeConfig(name=name)
        changes: dict[str, Any] = {k: v for k, v in self.model_dump().items()
                                   if v is not None and k != "name"}
        return ComputeConfig.model_validate({**base.model_dump(), **changes, "name": name})


class ComputeSettings(BaseModel):
    """The ``compute`` section: where services run and the overrides of their defaults."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    provider: Literal["cloud_run"] = "cloud_run"
    services: tuple[ServiceOverride, ...] = ()

    @model_validator(mode="after")
    def _merged(self) -> ComputeSettings:
        from costflow.config.problems import Problems

        problems = Problems()
        seen: dict[str, int] = {}
        for i, override in enumerate(self.services):
            name = canonical(override.name)
            if name in seen:
                problems.add(("services", i, "name"), f"service {name} is listed twice "
                             f"(first as services[{seen[name]}]); merge the two entries")
            seen.setdefault(name, i)
            try:
                override.apply()
            except ValueError as err:  # pydantic's ValidationError is a ValueError
                problems.add(("services", i), _first_message(err))
        problems.raise_if_any()
        return self

    def service(self, name: str) -> ComputeConfig:
        """The settings of ``name`` (or its alias): defaults, then this config's overrides.

        Raises:
            ConfigError: ``name`` is neither a default service nor one configured here.
        """
        wanted = canonical(name)
        for override in self.services:
            if canonical(override.name) == wanted:
                return override.apply()
        if wanted in DEFAULTS:
            return DEFAULTS[wanted]
        known = sorted(set(DEFAULTS) | set(ALIASES) | {o.name for o in self.services})
        raise ConfigError(f"no compute settings for service {name[:60]!r}; known services: "
                          f"{', '.join(known)} (add one under compute.services in "
                          "costflow.yaml).")


def _first_message(err: ValueError) -> str:
    errors = getattr(err, "errors", None)
    if callable(errors):
        first = errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        text = str(first.get("ctx", {}).get("error") or first["msg"])
        return f"{where}: {text}" if where else text
    return str(err)
