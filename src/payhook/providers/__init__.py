"""One small module per payment provider: verify the signature over the raw bytes, then
normalise the payload into one :class:`~payhook.providers.base.ProviderEvent`. Everything after
that (deduplication, the transition, the outbox) is shared, in :mod:`payhook.ingest`.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from payhook.config import Settings
from payhook.providers import onecom, stripe, web3
from payhook.providers.base import Verifier, VerifyContext

VERIFIERS: dict[str, Verifier] = {
    stripe.NAME: stripe.verify,
    onecom.NAME: onecom.verify,
    web3.NAME: web3.verify,
}


@dataclass(frozen=True)
class Provider:
    name: str
    verify: Verifier
    context: VerifyContext


def configured(settings: Settings) -> Mapping[str, Provider]:
    """Every provider with its secrets; a provider with none refuses every request."""
    secrets = {
        stripe.NAME: settings.stripe_webhook_secrets,
        onecom.NAME: settings.onecom_webhook_secrets,
        web3.NAME: settings.web3_webhook_secrets,
    }
    return {
        name: Provider(name, verify, VerifyContext(
            secrets=secrets[name], tolerance=settings.webhook_tolerance_seconds,
            crypto=settings.fiat_and_crypto_symbols))
        for name, verify in VERIFIERS.items()
    }
