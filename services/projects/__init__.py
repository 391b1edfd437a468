"""Projects service: co-creation between a municipality and companies (ORG) — themes through four phases."""

VERSION = "0.1.0"
