"""Password hashing: Argon2id with Keycloak's published parameters, so the login benchmark compares like with like.

Argon2id, version 1.3, 5 iterations, 7 MiB (7,168 KiB) of memory, parallelism 1, 32-byte hash, 16-byte salt.
Hashing takes tens of milliseconds of CPU: it runs in a worker thread (argon2-cffi releases the GIL), never on
the event loop. A login for an unknown handle verifies against a dummy hash, so both cases cost the same time.
"""

from __future__ import annotations

import asyncio
from functools import cache

from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

PARAMS = {"time_cost": 5, "memory_cost": 7168, "parallelism": 1, "hash_len": 32, "salt_len": 16, "type": Type.ID}
HASHER = PasswordHasher(**PARAMS)


@cache
def _dummy_hash() -> str:
    return HASHER.hash("not a password of anyone: timing equaliser")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(HASHER.hash, password)


async def verify_password(stored: str | None, password: str) -> bool:
    """True if `password` matches `stored`; with stored=None, spends the same time and returns False."""

    def check() -> bool:
        try:
            return HASHER.verify(stored or _dummy_hash(), password) and stored is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(check)


def needs_rehash(stored: str) -> bool:
    return HASHER.check_needs_rehash(stored)
