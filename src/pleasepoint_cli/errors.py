"""The error family of pleasepoint: the core raises these, the CLI maps them to exit codes in one place."""

from __future__ import annotations


class PleasepointError(Exception):
    """Base class: a problem the user can fix; the message says what, where and how."""

    exit_code = 1


class ConfigError(PleasepointError):
    """pleasepoint.yaml or a YAML definition (mapping, persona, campaign...) is invalid."""


class InputDataError(PleasepointError):
    """A data file cannot be read or has rows that do not fit the canonical schema."""


class NotFoundError(PleasepointError):
    """A run, cluster, customer or other named object does not exist in the store."""


class AnalysisError(PleasepointError):
    """An analysis cannot run on this data (empty audience, too few customers, no convergence)."""


class RuleError(PleasepointError):
    """An audience rule is invalid: unknown attribute or operator, or a bad value."""


class TemplateError(PleasepointError):
    """An email template fails to compile or to render."""


class DeliveryError(PleasepointError):
    """A message cannot be built or handed to its transport."""


class MessageError(DeliveryError):
    """One recipient's message cannot be built from their data: that row fails, the send goes on."""


class HeaderInjectionError(MessageError):
    """A header value holds CR, LF or another control character, raw or inside an RFC 2047 encoded word."""


class TransportError(DeliveryError):
    """The mail server cannot be reached or refuses the sender (every message would fail): stop the send."""


class UsageError(PleasepointError):
    """A command was called without what it needs (no file and no query): a usage error, as a bad flag is."""

    exit_code = 2


class StoreBusyError(PleasepointError):
    """The database file is held by another process past the lock timeout."""

    exit_code = 75


class StoreError(PleasepointError):
    """The database file cannot be opened or migrated."""


class OutputError(PleasepointError):
    """A result cannot be written: the disk is full, the path is a folder or not writable."""


class SignatureError(PleasepointError):
    """A signed link, token or provider webhook does not verify (forged, altered, stale or replayed)."""


class NotFittedError(AnalysisError):
    """A model was asked for results before `fit` (or `from_params`) gave it parameters: the CLV estimators
    and the persona k-means share this one class."""
