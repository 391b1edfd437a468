"""Password hashes (identity/passwords.py): Keycloak's Argon2id parameters, made and checked by libsodium, every
other Argon2 string by argon2-cffi; each library reads the other's strings."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher, Type

from identity import passwords

PW = "correct horse battery ステープル"


def test_a_new_hash_has_keycloaks_parameters_and_argon2_cffi_reads_it() -> None:
    stored = passwords.hash_sync(PW)
    assert stored.startswith("$argon2id$v=19$m=7168,t=5,p=1$")
    salt, digest = stored.split("$")[4:]
    assert len(salt) == 22 and len(digest) == 43  # 16-byte salt, 32-byte hash (base64 without padding)
    assert PasswordHasher(**passwords.PARAMS).verify(stored, PW)
    assert passwords.verify_sync(stored, PW) and not passwords.verify_sync(stored, PW + " ")
    assert not passwords.needs_rehash(stored)
    assert passwords.hash_sync(PW) != stored  # a fresh salt each time


def test_argon2_cffi_hashes_verify_and_other_parameters_are_rehashed() -> None:
    same = PasswordHasher(**passwords.PARAMS).hash(PW)  # what the node stored before libsodium
    assert same.startswith(passwords.PREFIX) and passwords.verify_sync(same, PW)
    assert not passwords.verify_sync(same, "wrong")
    other = PasswordHasher(time_cost=2, memory_cost=8192, parallelism=2, type=Type.ID).hash(PW)
    assert passwords.verify_sync(other, PW) and not passwords.verify_sync(other, "wrong")
    assert passwords.needs_rehash(other)


def test_malformed_or_foreign_strings_never_verify() -> None:
    good = passwords.hash_sync(PW)
    for stored in ("", "plain", passwords.PREFIX, good[:-4], good[:-4] + "AAAA", "$2b$12$" + "a" * 53):
        assert passwords.verify_sync(stored, PW) is False


def test_unknown_user_costs_a_verification_and_is_false() -> None:
    assert asyncio.run(passwords.verify_password(None, PW)) is False
    assert asyncio.run(passwords.verify_password(passwords.hash_sync(PW), PW)) is True
