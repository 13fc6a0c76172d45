"""One small module per payment provider: verify the signature over the raw bytes, then
normalise the payload into one :class:`~payhook.providers.base.ProviderEvent`. Everything after
that (deduplication, the transition, the outbox) is shared, in :mod:`payhook.ingest`.

A provider is its module's ``PROVIDER`` (a :class:`~payhook.providers.base.ProviderSpec`) and
one line in :data:`REGISTRY`; everything else that names providers reads them from there, when
it runs — never a copy taken at import.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from payhook.providers import onecom, stripe, web3
from payhook.providers.base import ProviderSpec, Verifier, VerifyContext

REGISTRY: tuple[ProviderSpec, ...] = (stripe.PROVIDER, onecom.PROVIDER, web3.PROVIDER)


def names() -> tuple[str, ...]:
    return tuple(spec.name for spec in REGISTRY)


def get(name: str) -> ProviderSpec:
    """The registered provider called ``name``; :class:`KeyError` if there is none."""
    for spec in REGISTRY:
        if spec.name == name:
            return spec
    raise KeyError(name)


class ProviderSettings(Protocol):
    """What providers read of :class:`payhook.config.Settings` (which reads this registry for
    the secrets it generates, so providers never import config), besides each provider's
    ``secrets_setting``."""

    @property
    def webhook_tolerance_seconds(self) -> int: ...

    @property
    def fiat_and_crypto_symbols(self) -> frozenset[str]: ...


@dataclass(frozen=True)
class Provider:
    name: str
    verify: Verifier
    context: VerifyContext


def configured(settings: ProviderSettings) -> Mapping[str, Provider]:
    """Every provider with its secrets; a provider with none refuses every request."""
    return {
        spec.name: Provider(spec.name, spec.verify, VerifyContext(
            secrets=getattr(settings, spec.secrets_setting),
            tolerance=settings.webhook_tolerance_seconds,
            crypto=settings.fiat_and_crypto_symbols))
        for spec in REGISTRY
    }
