"""A federation entity key of its own: signing keys get a purpose ('provider': ID tokens, access tokens, person
queries; 'federation': the entity configuration the trust anchor pins), and the key becomes (kid, purpose).

An existing node keeps the federation key its anchor pinned: its current RS256 provider key is copied as its first
federation key (same kid, same key), so its configuration stays signed by the pinned key and nobody re-pins at the
upgrade. From then on `towntip identity keys rotate` changes provider keys only; `keys rotate-federation` (and the
anchor's `rekey`) changes the federation key. A new node (no key yet) gets a federation key of its own on first use.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("signing_keys") as batch:
        batch.add_column(sa.Column("purpose", sa.String(16), nullable=False, server_default="provider"))
        batch.drop_constraint("pk_signing_keys", type_="primary")
        batch.create_primary_key("pk_signing_keys", ["kid", "purpose"])
    op.execute(
        "INSERT INTO signing_keys (kid, alg, private_pem, public_jwk, created_at, retired_at, purpose) "
        "SELECT kid, alg, private_pem, public_jwk, created_at, NULL, 'federation' FROM signing_keys "
        "WHERE purpose = 'provider' AND alg = 'RS256' AND retired_at IS NULL "
        "ORDER BY created_at DESC, kid LIMIT 1")


def downgrade() -> None:
    op.execute("DELETE FROM signing_keys WHERE purpose <> 'provider'")
    with op.batch_alter_table("signing_keys") as batch:
        batch.drop_constraint("pk_signing_keys", type_="primary")
        batch.create_primary_key("pk_signing_keys", ["kid"])
        batch.drop_column("purpose")
