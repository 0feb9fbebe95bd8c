"""Two of moto's per-request costs that grow into most of its time at a thousand tenants.

Neither changes an answer; they only stop moto redoing the same work on every request:

- every request looks its host up in ``moto.backends.list_of_moto_modules()``, which lists
  moto's package directory and stats each entry (about 11 % of the server's time while
  400 tenants provisioned);
- every ``CreateUserPool`` parses moto's one bundled RSA signing key and recovers its
  prime factors (about 30 % of that time): each pool now shares the parsed key, which is
  the same key moto gives every pool anyway.

motoserver.py installs both; :func:`install` returns what puts moto back (unit tests share
the process with moto's own behaviour).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterable
from types import SimpleNamespace
from typing import Any

import moto.backends
import moto.cognitoidp.models as cognito_models

__all__ = ["install"]


def install() -> Callable[[], None]:
    """Patch both costs away in this process; the result undoes it."""
    modules = tuple(moto.backends.list_of_moto_modules())  # fixed while the server runs
    original_listing = moto.backends.list_of_moto_modules
    original_jwk = vars(cognito_models)["jwk"]  # joserfc's jwk, as moto imported it

    def listing() -> Iterable[str]:
        return iter(modules)

    @functools.lru_cache(maxsize=8)
    def parsed(document: str) -> Any:
        return original_jwk.RSAKey.import_key(json.loads(document))

    def import_key(data: Any, *args: Any, **kwargs: Any) -> Any:
        if args or kwargs or not isinstance(data, dict):
            return original_jwk.RSAKey.import_key(data, *args, **kwargs)
        return parsed(json.dumps(data, sort_keys=True))

    moto.backends.list_of_moto_modules = listing
    shared = SimpleNamespace(RSAKey=SimpleNamespace(import_key=import_key))
    setattr(cognito_models, "jwk", shared)  # noqa: B010 - mypy forbids plain assignment

    def uninstall() -> None:
        moto.backends.list_of_moto_modules = original_listing
        setattr(cognito_models, "jwk", original_jwk)  # noqa: B010

    return uninstall
