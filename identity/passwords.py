"""Password hashing: Argon2id with Keycloak's published parameters, so the login benchmark compares like with like.

Argon2id, version 1.3, 5 iterations, 7 MiB (7,168 KiB) of memory, parallelism 1, 32-byte hash, 16-byte salt,
stored as the standard PHC string (`$argon2id$v=19$m=7168,t=5,p=1$<salt>$<hash>`). Hashes with exactly these
parameters are made and checked by libsodium (PyNaCl), whose Argon2 core uses the CPU's vector units (AVX2 where
there is one): measured on this project's 2-core machine, 1.65 times argon2-cffi's rate for the same string. Any
other Argon2 string (other parameters, parallelism > 1, which libsodium does not take) is checked by argon2-cffi,
and `needs_rehash` says it should be hashed again at the next login. Both release the GIL: hashing takes tens of
milliseconds of CPU and runs in a worker thread, never on the event loop. A login for an unknown handle verifies
against a dummy hash, so both cases cost the same time.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import unicodedata
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import cache
from typing import TypedDict, TypeVar

import nacl.exceptions
import nacl.pwhash.argon2id as sodium
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError


class Argon2Params(TypedDict):
    """argon2-cffi's `PasswordHasher` arguments."""

    time_cost: int
    memory_cost: int
    parallelism: int
    hash_len: int
    salt_len: int
    type: Type


PARAMS: Argon2Params = {"time_cost": 5, "memory_cost": 7168, "parallelism": 1, "hash_len": 32, "salt_len": 16,
                        "type": Type.ID}
HASHER = PasswordHasher(**PARAMS)  # other Argon2 strings, and the parameters' check
PREFIX = "$argon2id$v=19$m=7168,t=5,p=1$"  # what libsodium makes with the limits below
_OPS, _MEM = PARAMS["time_cost"], PARAMS["memory_cost"] * 1024
T = TypeVar("T")


@cache
def _dummy_hash() -> str:
    return hash_sync("not a password of anyone: timing equaliser")


def hash_sync(password: str) -> str:
    stored = sodium.str(password.encode(), opslimit=_OPS, memlimit=_MEM).decode()
    assert stored.startswith(PREFIX), stored[: len(PREFIX)]
    return stored


def verify_sync(stored: str, password: str) -> bool:
    """True if `password` matches the Argon2 string `stored` (blocking: call it from a worker thread)."""
    if stored.startswith(PREFIX):
        try:
            return sodium.verify(stored.encode(), password.encode())
        except (nacl.exceptions.InvalidkeyError, nacl.exceptions.CryptoError, ValueError, TypeError):
            return False
    try:
        return HASHER.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def _lower_priority() -> None:
    """A hashing thread yields to the service's event loop and database thread and to the node's other processes
    (gateway, nats-server, points …): a flood of logins or of wrong guesses then takes the CPU that is left rather
    than starving the rest of the node, and a login's short steps (its database round trips, the replies) do not
    wait behind tens of milliseconds of hashing on every core. Linux applies nice per thread; elsewhere a no-op."""
    with contextlib.suppress(AttributeError, OSError):
        tid = threading.get_native_id()  # relative to the service's own nice (a node started with `nice` too)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + HASHING_NICE))


HASHING_NICE = 10
_HASHING = ThreadPoolExecutor(max_workers=min(32, (os.cpu_count() or 1) + 4), thread_name_prefix="argon2",
                              initializer=_lower_priority)


async def _hashing(fn: Callable[[], T]) -> T:
    return await asyncio.get_running_loop().run_in_executor(_HASHING, fn)


def normalise(password: str) -> str:
    """The password as hashed and checked: Unicode NFKC (NIST SP 800-63B 5.1.1.2), so that a password typed with
    full-width letters or digits on a Japanese keyboard (ＰａｓｓＷｏｒｄ１２３) matches the same password typed
    half-width, and a composed or decomposed kana matches itself."""
    return unicodedata.normalize("NFKC", password)


async def hash_password(password: str) -> str:
    return await _hashing(lambda: hash_sync(normalise(password)))


@dataclass(frozen=True)
class Checked:
    ok: bool
    rehash: bool  # matched, and the stored hash should be made again (old parameters, or of the text as typed)


async def check_password(stored: str | None, password: str) -> Checked:
    """Does `password` match `stored`? The normalised form is checked first; a hash made before passwords were
    normalised (of the text as typed) is still accepted, and then asks to be made again from the normalised form.
    With stored=None, spends the time of one check and answers no."""
    norm = normalise(password)

    def check() -> Checked:
        if stored is None:
            verify_sync(_dummy_hash(), norm)
            return Checked(ok=False, rehash=False)
        if verify_sync(stored, norm):
            return Checked(ok=True, rehash=needs_rehash(stored))
        if norm != password and verify_sync(stored, password):
            return Checked(ok=True, rehash=True)
        return Checked(ok=False, rehash=False)

    return await _hashing(check)


async def verify_password(stored: str | None, password: str) -> bool:
    """True if `password` matches `stored` (check_password); with stored=None, spends the same time, False."""
    return (await check_password(stored, password)).ok


def needs_rehash(stored: str) -> bool:
    return not stored.startswith(PREFIX) or HASHER.check_needs_rehash(stored)
