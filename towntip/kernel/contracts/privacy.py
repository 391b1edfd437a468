"""A person's data everywhere (issue 20 point 7): every service's part of a person's export, and the choice the
person made for what they wrote when they deleted their account.

Every service answers `svc.<node>.<service>.person.export` (role GATEWAY: only the node's gateway asks, for the
signed-in person it vouches for) with everything it keeps about the person, table by table, as JSON. The gateway
puts the parts together into one archive (gateway/portal/mydata.py). Deletion travels as identity's `UserDeleted`
(contracts/identity.py), whose `content` says whether the person's posts are removed or kept by nobody.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, StringConstraints

from towntip.kernel.contracts.actor import GlobalHandle
from towntip.kernel.contracts.base import Frozen

EP_PERSON_EXPORT = "person.export"  # the tail of svc.<node>.<service>.person.export, for every service
EXPORT_TIMEOUT_S = 10.0  # how long the gateway waits for each service's part

# What happens to what the person wrote for others to read (posts, comments, proposals) when they leave:
# "anonymise": it stays, by nobody (退会したユーザー); "remove": it goes.
ContentChoice = Literal["anonymise", "remove"]
ANONYMOUS_NAME = "退会したユーザー"  # the name shown where a deleted person's name was


class ExportQuery(Frozen):
    model_config = ConfigDict(extra="forbid")

    user_id: Annotated[str, StringConstraints(min_length=8, max_length=64)]  # the person's user id at this node
    global_handle: GlobalHandle
    # the person's e-mail address, for what a service keeps by address only (projects: the contact form)
    email: Annotated[str, StringConstraints(max_length=254)] | None = None


class PersonData(Frozen):
    """One service's part: its tables (name -> the person's rows) and, per table, what it is for (Japanese)."""

    service: str
    tables: dict[str, list[dict[str, Any]]]
    about: dict[str, str] = {}
