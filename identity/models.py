"""Tables of the identity service (its own database or schema). Secrets are stored only as hashes:
passwords as Argon2id, session tokens, one-time tokens, authorization codes, refresh tokens and client secrets as
SHA-256 of a random value of 256 bits (enough entropy that a slow hash adds nothing)."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

from towntip.kernel import db
from towntip.kernel.bus.outbox import define_bus_tables
from towntip.kernel.mail import define_mail_table

metadata = MetaData(naming_convention=db.NAMING_CONVENTION)
bus = define_bus_tables(metadata)
mail = define_mail_table(metadata)
TS = DateTime(timezone=True)

# People whose home is this node. handle@node is their global handle.
users = Table(
    "users",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("handle", String(64), nullable=False, unique=True),  # name, or name@home for people of other nodes
    Column("display_name", String(100), nullable=False),
    Column("email", String(254), nullable=True, unique=True),  # None for people whose home is another node
    Column("email_verified", Boolean, nullable=False, default=False),
    Column("password_hash", String(200), nullable=False),
    Column("nickname", String(50), nullable=False, default=""),
    Column("district", String(100), nullable=False, default=""),
    Column("interests", JSON, nullable=False, default=list),
    Column("lang", String(2), nullable=False, default="ja"),
    # The person lets others of this node find them by name or nickname (friend search); off until they say so.
    Column("findable", Boolean, nullable=False, default=False, server_default=false()),
    # Roles at this node, granted by the operator (towntip identity user grant): see contracts.identity.ROLES.
    Column("roles", JSON, nullable=False, default=list, server_default="[]"),
    Column("failed_logins", Integer, nullable=False, default=0),
    Column("locked_until", TS, nullable=True),
    Column("password_changed_at", TS, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("updated_at", TS, nullable=False),
    # People whose home is another node: where they log in (issuer) and who they are there (sub). None: ours.
    Column("home_node", String(32), nullable=True),
    Column("home_issuer", String(300), nullable=True),
    Column("home_sub", String(64), nullable=True),
    UniqueConstraint("home_issuer", "home_sub", name="uq_users_home_issuer"),
)

# Logins at another node under way: state (hashed), PKCE verifier and nonce, single use, ten minutes.
federated_logins = Table(
    "federated_logins",
    metadata,
    Column("state_hash", String(64), primary_key=True),
    Column("issuer", String(300), nullable=False),
    Column("entity_id", String(300), nullable=False),
    Column("code_verifier", String(128), nullable=False),
    Column("nonce", String(64), nullable=False),
    Column("return_to", String(500), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
    Column("used_at", TS, nullable=True),
)

# One-time tokens sent by e-mail: verification of an address, password reset.
one_time_tokens = Table(
    "one_time_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("purpose", String(16), nullable=False),  # verify | reset
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("created_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
    Column("used_at", TS, nullable=True),
    Index("ix_one_time_tokens_user", "user_id", "purpose"),
)

# Login sessions at this node (the provider's single sign-on session). The gateway holds the token in a cookie.
sessions = Table(
    "sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("auth_time", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
    Column("last_seen_at", TS, nullable=False),
    Column("client_ip", String(64), nullable=False, default=""),
    Column("user_agent", String(300), nullable=False, default=""),
    Index("ix_sessions_user", "user_id"),
)

# OpenID Connect clients registered at this provider (by the admin CLI, later by federation trust).
oauth_clients = Table(
    "oauth_clients",
    metadata,
    Column("client_id", String(100), primary_key=True),
    Column("name", String(100), nullable=False),
    Column("secret_hash", String(64), nullable=True),  # None: a public client (PKCE only)
    Column("redirect_uris", JSON, nullable=False),
    Column("post_logout_redirect_uris", JSON, nullable=False),
    Column("scope", String(200), nullable=False),
    Column("created_at", TS, nullable=False),
)

# Authorization codes: single use, short-lived, bound to client, redirect URI and PKCE challenge.
oauth_codes = Table(
    "oauth_codes",
    metadata,
    Column("code_hash", String(64), primary_key=True),
    Column("client_id", String(100), ForeignKey("oauth_clients.client_id", ondelete="CASCADE"), nullable=False),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("redirect_uri", String(500), nullable=False),
    Column("scope", String(200), nullable=False),
    Column("nonce", String(200), nullable=True),
    Column("code_challenge", String(128), nullable=True),
    Column("code_challenge_method", String(10), nullable=True),
    Column("auth_time", TS, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
    Column("used_at", TS, nullable=True),
)

# Refresh tokens: rotated on every use; a token used twice revokes its whole family (RFC 9700 §4.14).
oauth_refresh_tokens = Table(
    "oauth_refresh_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("family_id", String(36), nullable=False),
    Column("code_hash", String(64), nullable=True),  # the code the family started from (revoked on code replay)
    Column("client_id", String(100), ForeignKey("oauth_clients.client_id", ondelete="CASCADE"), nullable=False),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("scope", String(200), nullable=False),
    Column("auth_time", TS, nullable=False),
    Column("issued_at", TS, nullable=False),
    Column("expires_at", TS, nullable=False),
    Column("used_at", TS, nullable=True),
    Column("revoked_at", TS, nullable=True),
    Index("ix_oauth_refresh_tokens_family", "family_id"),
    Index("ix_oauth_refresh_tokens_code", "code_hash"),
)

# The node's signing keys (identity/keys.py), by purpose. Provider keys (RSA for RS256, EC for ES256): the newest
# active key of each kind signs; retired keys stay in the JWKS until the tokens they signed have expired. Federation
# key (RSA): signs the node's entity configuration; the trust anchor pins it.
signing_keys = Table(
    "signing_keys",
    metadata,
    Column("kid", String(64), nullable=False),  # RFC 7638 thumbprint
    Column("alg", String(10), nullable=False),
    Column("private_pem", Text, nullable=False),
    Column("public_jwk", JSON, nullable=False),
    Column("created_at", TS, nullable=False),
    Column("retired_at", TS, nullable=True),
    # provider: ID tokens, access tokens, person queries (the JWKS); federation: the entity configuration (what the
    # trust anchor pins). Migration 0005; a node's first federation key may be its provider key of then (same kid).
    Column("purpose", String(16), nullable=False, default="provider", server_default="provider"),
    PrimaryKeyConstraint("kid", "purpose"),
)

# ---- My Page across regions (migration 0004) -------------------------------------------------------------------

# Where a person of this node takes part: a member node this node's provider issued a code to for them (a
# federated login there). Only the home node knows it; it asks those nodes, and no one else, about the person.
presence = Table(
    "presence",
    metadata,
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("entity_id", String(300), nullable=False),
    Column("node", String(32), nullable=False),
    Column("first_seen", TS, nullable=False),
    Column("last_seen", TS, nullable=False),
    PrimaryKeyConstraint("user_id", "entity_id", name="pk_presence"),
)

# The ids of the signed queries other home nodes sent here, kept until they expire: a query is answered once.
query_jtis = Table(
    "query_jtis",
    metadata,
    Column("jti", String(100), nullable=False),
    Column("issuer", String(300), nullable=False),
    Column("expires_at", TS, nullable=False),
    PrimaryKeyConstraint("issuer", "jti", name="pk_query_jtis"),
    Index("ix_query_jtis_expires_at", "expires_at"),
)

# For a person of another node logged in here: the access and refresh tokens their home node issued to this node
# (scope `regions`), tied to the session; gone with the session (logout) or the person (unlinked). They are used,
# so they are kept as they are (never logged); `lease_until` lets one refresh run at a time per session.
home_tokens = Table(
    "home_tokens",
    metadata,
    Column("session_hash", String(64), ForeignKey("sessions.token_hash", ondelete="CASCADE"), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("entity_id", String(300), nullable=False),
    Column("access_token", Text, nullable=False),
    Column("access_expires_at", TS, nullable=False),
    Column("refresh_token", String(200), nullable=False),
    Column("scope", String(200), nullable=False),
    Column("lease_until", TS, nullable=True),
    Column("updated_at", TS, nullable=False),
    Index("ix_home_tokens_user_id", "user_id"),
)
