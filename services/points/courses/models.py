"""Tables of certified courses, credits and certifications (migration 0007_courses), on the points service's own
`metadata` (services/points/tables.py), so they live in the same database or schema as the ledger."""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from services.points.tables import metadata

# A certified course (認定講座): finishing it grants its credits (単位, the ledger's `credit` asset) once per person.
courses = Table(
    "courses",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("field", String(16), nullable=False),  # a category code (towntip.kernel.categories)
    Column("credits", Integer, nullable=False),
    Column("starts_on", Date, nullable=True),
    Column("ends_on", Date, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(64), nullable=False),
    CheckConstraint("credits > 0", name="credits_positive"),
)

# A certification (修了資格): granted when the credits counted by its rule reach credits_required.
# rule_fields / rule_courses: JSON lists; empty = any.
certifications = Table(
    "certifications",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("title", String(200), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("credits_required", Integer, nullable=False),
    Column("rule_fields", JSON, nullable=False),
    Column("rule_courses", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(64), nullable=False),
    CheckConstraint("credits_required > 0", name="required_positive"),
)

# A completion staff recorded. person_id is set once the person is known here (then the credits are posted, key
# journal_key = course:<code>:<user id>); until then it waits under person_ref (pending).
course_completions = Table(
    "course_completions",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("course_code", String(64), ForeignKey("courses.code"), nullable=False),
    Column("person_ref", String(100), nullable=False),
    Column("person_id", String(64), nullable=True),
    Column("credits", Integer, nullable=False),
    Column("completed_on", Date, nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("recorded_by", String(64), nullable=False),
    Column("journal_key", String(200), nullable=True, unique=True),
    Column("credited_at", DateTime(timezone=True), nullable=True),
    UniqueConstraint("course_code", "person_id", name="uq_course_completions_course_person"),
    UniqueConstraint("course_code", "person_ref", name="uq_course_completions_course_ref"),
    Index("ix_course_completions_person", "person_id"),
)

# Ed25519 keys that sign certificates (the newest unretired one signs; retired ones still verify).
certificate_keys = Table(
    "certificate_keys",
    metadata,
    Column("kid", String(64), primary_key=True),
    Column("private_key", Text, nullable=False),  # PKCS#8 PEM
    Column("public_x", String(64), nullable=False),  # base64url of the raw public key (the JWK's x)
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("retired_at", DateTime(timezone=True), nullable=True),
)

# A certification granted to a person, once, and its signed certificate.
certificates = Table(
    "certificates",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("certification_code", String(64), ForeignKey("certifications.code"), nullable=False),
    Column("person_id", String(64), nullable=False),
    Column("global_handle", String(64), nullable=False),
    Column("display_name", String(100), nullable=False),
    Column("credits", Integer, nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("kid", String(64), ForeignKey("certificate_keys.kid"), nullable=False),
    Column("token", Text, nullable=False),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
    Column("revoked_by", String(64), nullable=True),
    Column("revoke_reason", String(500), nullable=True),
    UniqueConstraint("certification_code", "person_id", name="uq_certificates_certification_person"),
    Index("ix_certificates_person", "person_id"),
)
