"""The federation's trust anchor (the hub or the secretariat), a small app of its own, in the spirit of OpenID
Federation 1.0. Member nodes never run it; they only check what it signs (towntip/kernel/trust.py).

- It vouches for member nodes with **subordinate statements** (`/federation/fetch?sub=<entity id>`): JWTs it signs
  that bind a member's entity id to the member's federation key **as the anchor pinned it at enrolment**
  (`TrustAnchor.enrol`/`add`, `towntip federation anchor add|rekey`: the member's configuration fetched or handed
  over once, checked to be self-signed by a key it publishes, for the right entity and node id; its RFC 7638
  thumbprint shown to the operator and optionally compared with the one the member's operator gave). The anchor
  never signs keys it fetches at request time: it makes no request at all to answer a fetch, so whoever answers at
  a member's URL later (a hijacked name, a proxy, plain http) cannot get their keys vouched for.
- A member that changes its federation key (`towntip identity keys rotate-federation`, a deliberate act) is
  refused by the others until the anchor's operator pins the new key (`rekey`); a member rotating its provider keys
  (`towntip identity keys rotate`, routine) needs nothing from the anchor: the new keys reach the others inside the
  configuration the pinned key signs.
- It lists its members (those with pinned keys) at `/federation/list`. A node it removes gets no statement any more.

Modules: `anchor` (its key, members.json, enrolment checks, statements), `app` (its HTTP face, `anchor_app`,
`serve`), `__main__` (`python -m towntip.anchor --data-dir D --entity-id URL`: serve it as a process).
Administering it (init, add, rekey, remove, list) is `towntip federation anchor …` (towntip/cli/federation.py).

Simplifications, stated: one federation key per member at a time (no next key published ahead: a federation key
change is re-pinned by hand); no metadata policies or trust marks; the anchor is the only intermediate (chains are
two statements long).
"""

from __future__ import annotations

from towntip.anchor.anchor import (
    REPIN_HINT,
    Enrolment,
    TrustAnchor,
    base_url,
    check_configuration,
    fetch_configuration,
    fetch_configuration_sync,
    inspect_configuration,
    jwk_thumbprint,
)

__all__ = ["REPIN_HINT", "Enrolment", "TrustAnchor", "base_url", "check_configuration", "fetch_configuration",
           "fetch_configuration_sync", "inspect_configuration", "jwk_thumbprint"]
