"""Reading a Prometheus endpoint the way Prometheus does: HTTP GET, then the text format parsed by prometheus_client's
own parser (so a malformed exposition fails here as it would fail a scrape)."""

from __future__ import annotations

import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass

from prometheus_client.parser import text_string_to_metric_families


@dataclass(frozen=True)
class Scrape:
    text: str
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]
    families: dict[str, str]  # family name → type (counter, histogram, gauge, info …)

    @property
    def sample_names(self) -> set[str]:
        """Every series name as Prometheus stores it (``_total``, ``_bucket``, ``_sum``, ``_count`` included)."""
        return {name for name, _ in self.samples}

    def value(self, name: str, **labels: str) -> float:
        """The sum over the series of ``name`` whose labels include ``labels`` (0 when there is none)."""
        wanted = set(labels.items())
        return sum(v for (n, ls), v in self.samples.items() if n == name and wanted <= ls)

    def labels_of(self, name: str) -> list[Mapping[str, str]]:
        return [dict(ls) for (n, ls), _ in self.samples.items() if n == name]


def parse(text: str) -> Scrape:
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    families: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        families[family.name] = family.type
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = float(sample.value)
    return Scrape(text, samples, families)


def scrape(url: str, timeout: float = 10.0) -> Scrape:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        assert response.status == 200
        content_type = response.headers.get("Content-Type", "")
        assert content_type.startswith("text/plain"), content_type
        return parse(response.read().decode())
