"""The DNS and label checks Kubernetes applies, and the release's fullname for the plan's checks before anything
is rendered (the objects themselves are named by the chart's `_helpers.tpl`; a test checks both agree)."""

from __future__ import annotations

import re

from deploy import constants as c
from deploy.constants import MAX_LABEL, MAX_SUBDOMAIN
from deploy.settings import CHART_NAME, Settings

DNS1123_LABEL = re.compile(c.DNS1123_LABEL)
DNS1035_LABEL = re.compile(c.DNS1035_LABEL)
DNS1123_SUBDOMAIN = re.compile(c.DNS1123_SUBDOMAIN)
LABEL_VALUE = re.compile(c.LABEL_VALUE)
LABEL_NAME = re.compile(c.LABEL_NAME)


def _trunc(name: str) -> str:
    return name[:MAX_LABEL].rstrip("-")


def fullname(release: str, settings: Settings) -> str:
    """`runway-models.fullname`: the override, the release if it already holds the chart name, or both."""
    if settings.fullnameOverride:
        return _trunc(settings.fullnameOverride)
    name = settings.nameOverride or CHART_NAME
    return _trunc(release if name in release else f"{release}-{name}")


def is_dns1123_label(name: str) -> bool:
    return len(name) <= MAX_LABEL and bool(DNS1123_LABEL.match(name))


def is_dns1035_label(name: str) -> bool:
    return len(name) <= MAX_LABEL and bool(DNS1035_LABEL.match(name))


def is_dns1123_subdomain(name: str) -> bool:
    return len(name) <= MAX_SUBDOMAIN and bool(DNS1123_SUBDOMAIN.match(name))


def label_key_problem(key: str) -> str | None:
    prefix, _, name = key.rpartition("/")
    if prefix and not is_dns1123_subdomain(prefix):
        return f"label key {key!r}: prefix must be a DNS-1123 subdomain"
    if len(name) > MAX_LABEL or not LABEL_NAME.match(name):
        return f"label key {key!r}: name must be at most {MAX_LABEL} alphanumerics, '-', '_' or '.'"
    return None


def label_value_problem(value: str) -> str | None:
    if len(value) > MAX_LABEL or not LABEL_VALUE.match(value):
        return f"label value {value!r}: at most {MAX_LABEL} alphanumerics, '-', '_' or '.', alphanumeric at both ends"
    return None
