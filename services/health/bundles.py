"""CA bundles of health checks travel through the content store, not through Temporal.

A check's ``ca_file`` is read when the declaration is validated (the worker may not have the file), and a bundle is
easily 200 KB: copied into every check of the deployment request it would exceed Temporal's 2 MB payload limit with
a dozen checks. So the starter puts each distinct bundle in the content store once and the checks carry only its
digest (``HttpCheck.ca_digest``); the health check activity reads it back before the first attempt.
"""

from __future__ import annotations

from typing import Any

from contract.health import HealthSpec, HttpCheck

CA_MEDIA_TYPE = "application/x-pem-file"


def store_ca_bundles(spec: HealthSpec, store: Any) -> HealthSpec:
    """``spec`` with every ``ca_pem`` moved into ``store`` (each distinct bundle once) and referenced by digest."""
    checks = []
    for check in spec.checks:
        if isinstance(check, HttpCheck) and check.ca_pem:
            ref = store.put(check.ca_pem.encode("ascii"), media_type=CA_MEDIA_TYPE)
            check = check.model_copy(update={"ca_pem": None, "ca_digest": ref.digest})
        checks.append(check)
    return spec.model_copy(update={"checks": checks})


def load_ca_bundles(spec: HealthSpec, store: Any) -> HealthSpec:
    """``spec`` with every ``ca_digest`` read back from ``store`` into ``ca_pem`` (the probes use the text).
    Raises the store's ``BlobNotFoundError`` when a worker does not share the starter's content store."""
    from contract.models import BlobRef

    cache: dict[str, str] = {}
    checks = []
    for check in spec.checks:
        if isinstance(check, HttpCheck) and check.ca_digest and not check.ca_pem:
            if check.ca_digest not in cache:
                ref = BlobRef(digest=check.ca_digest, size=0, media_type=CA_MEDIA_TYPE)
                cache[check.ca_digest] = store.get(ref).decode("ascii")
            check = check.model_copy(update={"ca_pem": cache[check.ca_digest]})
        checks.append(check)
    return spec.model_copy(update={"checks": checks})
