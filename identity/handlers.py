"""The identity service's endpoints (svc.<node>.identity.*), one table per domain; changes run in the unit of
work's transaction, which wakes the outbox relay and the mail sender after the commit.

Who may call: the node's gateway (the portal and the OIDC endpoints) and the operator's admin CLI. Until bus
credentials arrive (issue 3, point 7) anything on the node's NATS could call them; admin.* endpoints must then be
limited to the operator's credentials.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from identity import accounts, clients, keys, open_data
from identity.federated_login import FederatedLogins
from identity.oidc import OidcService
from identity.regions import Regions, home_refresh_of
from towntip.kernel.bus.endpoints import Endpoints
from towntip.kernel.contracts import identity as c
from towntip.kernel.contracts import open_data as od
from towntip.kernel.domain import ANYONE, GATEWAY, OPERATOR, SIGNED_IN, STAFF, Domain, own, read, write
from towntip.kernel.uow import UnitOfWork

# ---- the few endpoints whose answer is more than one service call ------------------------------------------------


async def resend(session: AsyncSession, *, data: c.EmailIn, links: accounts.Links, node: str) -> c.Done:
    await accounts.resend_verification(session, email=data.email, links=links, node=node)
    return c.Done(detail="if the address has an unconfirmed account, a new link is on its way")


async def login(*, sessions: async_sessionmaker[AsyncSession], node: str, data: c.LoginIn) -> c.Session:
    return await accounts.login(sessions, node=node, data=data)  # its own short transactions


async def current_session(*, uow: UnitOfWork, node: str, data: c.SessionIn) -> c.Session:
    """Every page a signed-in person opens asks this: it is a read (no writer's turn, no commit), and becomes a
    write only to record the visit when the last one is older than SESSION_TOUCH."""
    found, stale = await uow.read(lambda s: accounts.read_session(s, node=node, token=data.session_token))
    if not stale:
        return found
    return await uow.write(lambda s, _now: accounts.current_session(s, node=node, token=data.session_token))


async def logout(*, uow: UnitOfWork, regions: Regions, data: c.SessionIn) -> c.Done:
    async def change(s: AsyncSession, now: Any) -> tuple[str, str] | None:
        home = await home_refresh_of(s, session_token=data.session_token)
        await accounts.logout(s, token=data.session_token)
        return home

    home = await uow.write(change)
    if home is not None:  # a person of another node: their home revokes what it gave this node
        regions.revoke_at_home_later(*home)
    return c.Done()


async def change_password(session: AsyncSession, *, node: str, data: c.PasswordChangeIn) -> c.Done:
    await accounts.change_password(session, node=node, data=data)
    return c.Done(detail="password changed; other sessions have ended")


async def reset_request(session: AsyncSession, *, data: c.EmailIn, links: accounts.Links) -> c.Done:
    await accounts.request_reset(session, email=data.email, links=links)
    return c.Done(detail="if the address has an account, a reset link is on its way")


async def reset(session: AsyncSession, *, data: c.ResetIn) -> c.Done:
    await accounts.reset_password(session, data=data)
    return c.Done(detail="password set; log in with it")


async def delete(session: AsyncSession, *, node: str, data: c.DeleteIn) -> c.Done:
    await accounts.delete_account(session, node=node, data=data)
    return c.Done(detail="the account and its sessions are deleted")


async def export(session: AsyncSession, *, node: str, data: c.SessionIn) -> dict[str, Any]:
    return await accounts.export_account(session, node=node, token=data.session_token)


async def user_add(session: AsyncSession, *, node: str, data: c.UserAddIn) -> c.User:
    return await accounts.create_user(
        session, node=node, handle=data.handle, display_name=data.display_name or data.handle, email=data.email,
        password=data.password, email_verified=data.email_verified,
    )


async def user_list(session: AsyncSession, *, node: str) -> c.UserList:
    return c.UserList(users=await accounts.list_users(session, node=node))


async def user_grant(session: AsyncSession, *, node: str, data: c.RoleIn) -> c.User:
    return await accounts.set_role(session, node=node, handle=data.handle, role=data.role, granted=True)


async def user_revoke(session: AsyncSession, *, node: str, data: c.RoleIn) -> c.User:
    return await accounts.set_role(session, node=node, handle=data.handle, role=data.role, granted=False)


async def user_remove(session: AsyncSession, *, node: str, data: c.UserRef) -> c.Done:
    await accounts.remove_user(session, node=node, handle=data.handle)
    return c.Done()


async def client_list(session: AsyncSession) -> c.ClientList:
    return c.ClientList(clients=await clients.list_clients(session))


async def client_remove(session: AsyncSession, *, data: c.ClientRef) -> c.Done:
    await clients.remove_client(session, client_id=data.client_id)
    return c.Done()


async def key_rotate(*, uow: UnitOfWork, oidc: OidcService) -> c.KeyRotated:
    async def change(s: AsyncSession, now: Any) -> c.KeyRotated:
        kid = await keys.rotate(s)
        published = [k["kid"] for k in await keys.published(s)]
        new = await keys.current_key(s)
        federation = await keys.federation_key(s)  # unchanged (made here if this node had none yet)
        return c.KeyRotated(kid=kid, published=published, access_token_kid=new.at_kid if new else None,
                            federation_kid=federation.kid)

    out = await uow.write(change)
    oidc.forget_signing_key()
    return out


async def federation_key_rotate(session: AsyncSession, *, oidc: OidcService) -> c.FederationKeyRotated:
    old = await keys.current_federation_key(session)
    kid = await keys.rotate_federation(session)
    return c.FederationKeyRotated(kid=kid, entity_id=oidc.issuer, retired=[old.kid] if old else [])


async def oidc_request(*, oidc: OidcService, data: c.OidcRequest) -> c.OidcResponse:
    return await oidc.handle(data)


async def token_user(session: AsyncSession, *, oidc: OidcService, node: str, data: c.AccessTokenIn) -> c.User:
    """The person holding a valid access token of this provider (the gateway's /api/v1 routes act as them)."""
    claims = await oidc.verify_access_token(data.access_token)
    row = await accounts.user_row(session, str(claims.get("sub", "")))
    if row is None:
        raise c.TOKEN_INVALID("the account no longer exists")
    return accounts.to_user(row, node)


async def federated_start(*, federated: FederatedLogins, data: c.FederatedStartIn) -> c.FederatedStart:
    return await federated.start(data)  # its own short transactions: it calls other nodes


async def federated_finish(*, federated: FederatedLogins, data: c.FederatedFinishIn) -> c.FederatedSession:
    return await federated.finish(data)


async def regions_plan(*, regions: Regions, data: c.RegionsPlanIn) -> c.RegionsPlan:
    return await regions.plan(data)


async def regions_verify(*, regions: Regions, data: c.PersonQueryIn) -> c.QueriedPerson:
    return await regions.verify(data)


async def regions_home_token(*, regions: Regions, data: c.SessionIn) -> c.HomeAccess:
    return await regions.home_token(data)


# ---- the tables --------------------------------------------------------------------------------------------------

ACCOUNTS = Domain("accounts", refusals=(
    c.ACCOUNT_HANDLE_TAKEN, c.ACCOUNT_EMAIL_TAKEN, c.ACCOUNT_HANDLE_OR_EMAIL_TAKEN, c.ACCOUNT_LINK_INVALID,
    c.ACCOUNT_PASSWORD_WRONG, c.LOGIN_LOCKED, c.LOGIN_WRONG, c.SESSION_NONE,
), ops=(
    write(c.EP_REGISTER, c.RegisterIn, c.Registered, accounts.register, role=GATEWAY),
    write(c.EP_VERIFY_EMAIL, c.TokenIn, c.User, accounts.verify_email, role=GATEWAY),
    write(c.EP_RESEND_VERIFICATION, c.EmailIn, c.Done, resend, role=GATEWAY),
    own(c.EP_LOGIN, c.LoginIn, c.Session, login, role=GATEWAY),
    own(c.EP_SESSION, c.SessionIn, c.Session, current_session, role=GATEWAY),
    own(c.EP_LOGOUT, c.SessionIn, c.Done, logout, role=GATEWAY),
    write(c.EP_PASSWORD_CHANGE, c.PasswordChangeIn, c.Done, change_password, role=GATEWAY),
    write(c.EP_RESET_REQUEST, c.EmailIn, c.Done, reset_request, role=GATEWAY),
    write(c.EP_RESET, c.ResetIn, c.Done, reset, role=GATEWAY),
    write(c.EP_PROFILE_UPDATE, c.ProfileUpdateIn, c.User, accounts.update_profile, role=GATEWAY,
          refusals=(c.PROFILE_DISTRICT_UNKNOWN,)),
    write(c.EP_DELETE, c.DeleteIn, c.Done, delete, role=GATEWAY),
    write(c.EP_EXPORT, c.SessionIn, None, export, role=GATEWAY),
))

PEOPLE = Domain("people", refusals=(
    c.PEOPLE_STAFF_ONLY, c.PEOPLE_NOT_FOUND,
), ops=(
    read(c.EP_PEOPLE_LOOKUP, c.PersonLookupIn, c.PersonRef, accounts.lookup_person, role=GATEWAY),
    read(c.EP_PEOPLE_PROFILE, c.ProfileLookupIn, c.PublicProfile, accounts.public_profile, role=SIGNED_IN),
    read(c.EP_PEOPLE_SEARCH, c.PeopleSearchIn, c.PeopleFound, accounts.search_people, role=SIGNED_IN),
))

ADMIN = Domain("admin", refusals=(
    c.ACCOUNT_HANDLE_TAKEN, c.ACCOUNT_EMAIL_TAKEN, c.ACCOUNT_HANDLE_OR_EMAIL_TAKEN, c.ACCOUNT_NOT_FOUND,
    c.CLIENT_EXISTS,
    c.CLIENT_OPENID_REQUIRED, c.CLIENT_NOT_FOUND,
), ops=(
    write(c.EP_USER_ADD, c.UserAddIn, c.User, user_add, role=OPERATOR),
    read(c.EP_USER_LIST, None, c.UserList, user_list, role=OPERATOR),
    write(c.EP_USER_GRANT, c.RoleIn, c.User, user_grant, role=OPERATOR),
    write(c.EP_USER_REVOKE, c.RoleIn, c.User, user_revoke, role=OPERATOR),
    write(c.EP_USER_REMOVE, c.UserRef, c.Done, user_remove, role=OPERATOR),
    write(c.EP_CLIENT_ADD, c.ClientAddIn, c.Client, clients.add_client, role=OPERATOR),
    read(c.EP_CLIENT_LIST, None, c.ClientList, client_list, role=OPERATOR),
    write(c.EP_CLIENT_REMOVE, c.ClientRef, c.Done, client_remove, role=OPERATOR),
    own(c.EP_KEY_ROTATE, None, c.KeyRotated, key_rotate, role=OPERATOR),
    write(c.EP_FEDERATION_KEY_ROTATE, None, c.FederationKeyRotated, federation_key_rotate, role=OPERATOR),
))

OIDC = Domain("oidc", refusals=(
    c.TOKEN_INVALID, c.SESSION_NONE,
), ops=(
    own(c.EP_OIDC, c.OidcRequest, c.OidcResponse, oidc_request, role=GATEWAY),
    read(c.EP_TOKEN_USER, c.AccessTokenIn, c.User, token_user, role=GATEWAY),
))

FEDERATED_LOGIN = Domain("federated_login", refusals=(
    c.FEDERATION_NONE, c.FEDERATED_THIS_NODE, c.FEDERATED_UNTRUSTED, c.FEDERATED_FOREIGN_PROVIDER,
    c.FEDERATED_LINK_INVALID, c.FEDERATED_ISSUER_CHANGED, c.FEDERATED_WRONG_ISSUER, c.FEDERATED_CODE_REFUSED,
    c.FEDERATED_ID_TOKEN_INVALID, c.FEDERATED_HANDLE_LINKED, c.HOME_UNTRUSTED, c.HOME_UNAVAILABLE,
), ops=(
    own(c.EP_FEDERATED_START, c.FederatedStartIn, c.FederatedStart, federated_start, role=GATEWAY),
    own(c.EP_FEDERATED_FINISH, c.FederatedFinishIn, c.FederatedSession, federated_finish, role=GATEWAY),
))

# each its own short transactions: they call other nodes
REGIONS = Domain("regions", refusals=(
    c.REGIONS_NO_FEDERATION, c.REGIONS_SCOPE_MISSING, c.REGIONS_CLIENT_UNTRUSTED, c.REGIONS_CREDENTIAL_REQUIRED,
    c.REGIONS_HOME_ONLY, c.QUERY_MALFORMED, c.QUERY_UNTRUSTED, c.QUERY_INVALID, c.QUERY_WRONG_AUDIENCE,
    c.QUERY_REPLAYED,
    c.ACCOUNT_GONE, c.PEOPLE_NOT_FOUND, c.FEDERATION_ANCHOR_UNAVAILABLE, c.HOME_UNTRUSTED, c.HOME_FOREIGN_ENDPOINT,
    c.HOME_NO_ACCESS, c.HOME_RENEWING, c.HOME_LOGIN_ENDED, c.HOME_UNAVAILABLE, c.SESSION_NONE, c.TOKEN_INVALID,
), ops=(
    own(c.EP_REGIONS_PLAN, c.RegionsPlanIn, c.RegionsPlan, regions_plan, role=GATEWAY),
    own(c.EP_REGIONS_VERIFY, c.PersonQueryIn, c.QueriedPerson, regions_verify, role=GATEWAY),
    own(c.EP_REGIONS_HOME_TOKEN, c.SessionIn, c.HomeAccess, regions_home_token, role=GATEWAY),
))

DOMAINS: tuple[Domain, ...] = (ACCOUNTS, PEOPLE, ADMIN, OIDC, FEDERATED_LOGIN, REGIONS)

# Open data and usage figures (issue 20 points 8 and 9): people registered here, per month.
OPEN_DATA = Domain("open_data", refusals=(od.USAGE_STAFF_ONLY,), ops=(
    read(od.EP_OPEN_DATA, od.OpenDataQuery, od.OpenData, open_data.tables, role=ANYONE),
    read(od.EP_USAGE, od.UsageQuery, od.Usage, open_data.usage, role=STAFF),
))
DOMAINS += (OPEN_DATA,)


def build_endpoints(
    *, sessions: async_sessionmaker[AsyncSession], node: str, links: accounts.Links, oidc: OidcService,
    federated: FederatedLogins, regions: Regions, on_commit: Callable[[], None], districts: tuple[str, ...] = (),
) -> Endpoints:
    uow = UnitOfWork(sessions, on_commit=on_commit)
    return Endpoints.from_domains(DOMAINS, uow=uow, context={
        "node": node, "links": links, "oidc": oidc, "federated": federated, "regions": regions,
        "districts": districts})
