"""NATS adapters of the identity service (svc.<node>.identity.*). They own the transactions.

Who may call: the node's gateway (the portal and the OIDC endpoints) and the operator's admin CLI. Until bus
credentials arrive (issue 3, point 7) anything on the node's NATS could call them; admin.* endpoints must then be
limited to the operator's credentials.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from identity import accounts, clients, keys
from identity.federated_login import FederatedLogins
from identity.oidc import OidcService
from identity.regions import Regions, home_refresh_of
from towntip.kernel.bus.endpoints import Endpoints
from towntip.kernel.contracts import identity as c


def build_endpoints(
    *, sessions: async_sessionmaker[AsyncSession], node: str, links: accounts.Links, oidc: OidcService,
    federated: FederatedLogins, regions: Regions, on_commit: Callable[[], None],
) -> Endpoints:
    eps = Endpoints()

    def tx() -> Any:
        return _Tx(sessions, on_commit)

    @eps.add(c.EP_REGISTER, c.RegisterIn)
    async def register(data: c.RegisterIn) -> c.Registered:
        async with tx() as s:
            return await accounts.register(s, node=node, data=data, links=links)

    @eps.add(c.EP_VERIFY_EMAIL, c.TokenIn)
    async def verify(data: c.TokenIn) -> c.User:
        async with tx() as s:
            return await accounts.verify_email(s, node=node, token=data.token)

    @eps.add(c.EP_RESEND_VERIFICATION, c.EmailIn)
    async def resend(data: c.EmailIn) -> c.Done:
        async with tx() as s:
            await accounts.resend_verification(s, email=data.email, links=links, node=node)
        return c.Done(detail="if the address has an unconfirmed account, a new link is on its way")

    @eps.add(c.EP_LOGIN, c.LoginIn)
    async def login(data: c.LoginIn) -> c.Session:
        return await accounts.login(sessions, node=node, data=data)  # its own short transactions

    @eps.add(c.EP_SESSION, c.SessionIn)
    async def session(data: c.SessionIn) -> c.Session:
        async with tx() as s:
            return await accounts.current_session(s, node=node, token=data.session_token)

    @eps.add(c.EP_LOGOUT, c.SessionIn)
    async def logout(data: c.SessionIn) -> c.Done:
        async with tx() as s:
            home = await home_refresh_of(s, session_token=data.session_token)
            await accounts.logout(s, token=data.session_token)
        if home is not None:  # a person of another node: their home revokes what it gave this node
            regions.revoke_at_home_later(*home)
        return c.Done()

    @eps.add(c.EP_PASSWORD_CHANGE, c.PasswordChangeIn)
    async def change_password(data: c.PasswordChangeIn) -> c.Done:
        async with tx() as s:
            await accounts.change_password(s, node=node, data=data)
        return c.Done(detail="password changed; other sessions have ended")

    @eps.add(c.EP_RESET_REQUEST, c.EmailIn)
    async def reset_request(data: c.EmailIn) -> c.Done:
        async with tx() as s:
            await accounts.request_reset(s, email=data.email, links=links)
        return c.Done(detail="if the address has an account, a reset link is on its way")

    @eps.add(c.EP_RESET, c.ResetIn)
    async def reset(data: c.ResetIn) -> c.Done:
        async with tx() as s:
            await accounts.reset_password(s, data=data)
        return c.Done(detail="password set; log in with it")

    @eps.add(c.EP_PROFILE_UPDATE, c.ProfileUpdateIn)
    async def profile(data: c.ProfileUpdateIn) -> c.User:
        async with tx() as s:
            return await accounts.update_profile(s, node=node, data=data)

    @eps.add(c.EP_DELETE, c.DeleteIn)
    async def delete(data: c.DeleteIn) -> c.Done:
        async with tx() as s:
            await accounts.delete_account(s, node=node, data=data)
        return c.Done(detail="the account and its sessions are deleted")

    @eps.add(c.EP_EXPORT, c.SessionIn)
    async def export(data: c.SessionIn) -> dict[str, Any]:
        async with tx() as s:
            return await accounts.export_account(s, node=node, token=data.session_token)

    # ---- admin (the operator's CLI) ----

    @eps.add(c.EP_USER_ADD, c.UserAddIn)
    async def user_add(data: c.UserAddIn) -> c.User:
        async with tx() as s:
            return await accounts.create_user(
                s, node=node, handle=data.handle, display_name=data.display_name or data.handle, email=data.email,
                password=data.password, email_verified=data.email_verified,
            )

    @eps.add(c.EP_USER_LIST)
    async def user_list(_: None) -> c.UserList:
        async with sessions() as s:
            return c.UserList(users=await accounts.list_users(s, node=node))

    @eps.add(c.EP_PEOPLE_LOOKUP, c.PersonLookupIn)
    async def people_lookup(data: c.PersonLookupIn) -> c.PersonRef:
        async with sessions() as s:
            return await accounts.lookup_person(s, node=node, actor=data.actor, query=data.query)

    @eps.add(c.EP_PEOPLE_PROFILE, c.ProfileLookupIn)
    async def people_profile(data: c.ProfileLookupIn) -> c.PublicProfile:
        async with sessions() as s:
            return await accounts.public_profile(s, node=node, handle=data.handle)

    @eps.add(c.EP_USER_GRANT, c.RoleIn)
    async def user_grant(data: c.RoleIn) -> c.User:
        async with tx() as s:
            return await accounts.set_role(s, node=node, handle=data.handle, role=data.role, granted=True)

    @eps.add(c.EP_USER_REVOKE, c.RoleIn)
    async def user_revoke(data: c.RoleIn) -> c.User:
        async with tx() as s:
            return await accounts.set_role(s, node=node, handle=data.handle, role=data.role, granted=False)

    @eps.add(c.EP_USER_REMOVE, c.UserRef)
    async def user_remove(data: c.UserRef) -> c.Done:
        async with tx() as s:
            await accounts.remove_user(s, node=node, handle=data.handle)
        return c.Done()

    @eps.add(c.EP_CLIENT_ADD, c.ClientAddIn)
    async def client_add(data: c.ClientAddIn) -> c.Client:
        async with tx() as s:
            return await clients.add_client(s, data=data)

    @eps.add(c.EP_CLIENT_LIST)
    async def client_list(_: None) -> c.ClientList:
        async with sessions() as s:
            return c.ClientList(clients=await clients.list_clients(s))

    @eps.add(c.EP_CLIENT_REMOVE, c.ClientRef)
    async def client_remove(data: c.ClientRef) -> c.Done:
        async with tx() as s:
            await clients.remove_client(s, client_id=data.client_id)
        return c.Done()

    @eps.add(c.EP_KEY_ROTATE)
    async def key_rotate(_: None) -> c.KeyRotated:
        async with tx() as s:
            kid = await keys.rotate(s)
            published = [k["kid"] for k in await keys.published(s)]
            new = await keys.current_key(s)
            federation = await keys.federation_key(s)  # unchanged (made here if this node had none yet)
        oidc.forget_signing_key()
        return c.KeyRotated(kid=kid, published=published, access_token_kid=new.at_kid if new else None,
                            federation_kid=federation.kid)

    @eps.add(c.EP_FEDERATION_KEY_ROTATE)
    async def federation_key_rotate(_: None) -> c.FederationKeyRotated:
        async with tx() as s:
            old = await keys.current_federation_key(s)
            kid = await keys.rotate_federation(s)
        return c.FederationKeyRotated(kid=kid, entity_id=oidc.issuer, retired=[old.kid] if old else [])

    # ---- OpenID Connect, for the gateway ----

    @eps.add(c.EP_OIDC, c.OidcRequest)
    async def oidc_request(data: c.OidcRequest) -> c.OidcResponse:
        return await oidc.handle(data)

    # ---- logging in with one's home node ----

    @eps.add(c.EP_FEDERATED_START, c.FederatedStartIn)
    async def federated_start(data: c.FederatedStartIn) -> c.FederatedStart:
        return await federated.start(data)  # its own short transactions: it calls other nodes

    @eps.add(c.EP_FEDERATED_FINISH, c.FederatedFinishIn)
    async def federated_finish(data: c.FederatedFinishIn) -> c.FederatedSession:
        return await federated.finish(data)

    # ---- My Page across regions (each its own short transactions: they call other nodes) ----

    @eps.add(c.EP_REGIONS_PLAN, c.RegionsPlanIn)
    async def regions_plan(data: c.RegionsPlanIn) -> c.RegionsPlan:
        return await regions.plan(data)

    @eps.add(c.EP_REGIONS_VERIFY, c.PersonQueryIn)
    async def regions_verify(data: c.PersonQueryIn) -> c.QueriedPerson:
        return await regions.verify(data)

    @eps.add(c.EP_REGIONS_HOME_TOKEN, c.SessionIn)
    async def regions_home_token(data: c.SessionIn) -> c.HomeAccess:
        return await regions.home_token(data)

    return eps


class _Tx:
    """A session in a transaction; wakes the outbox relay and the mail sender after a commit."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], on_commit: Callable[[], None]) -> None:
        self.sessions = sessions
        self.on_commit = on_commit

    async def __aenter__(self) -> AsyncSession:
        self.session = self.sessions()
        await self.session.__aenter__()
        self.tx = self.session.begin()
        await self.tx.__aenter__()
        return self.session

    async def __aexit__(self, *exc: Any) -> None:
        try:
            await self.tx.__aexit__(*exc)
        finally:
            await self.session.__aexit__(*exc)
        if exc[0] is None:
            self.on_commit()
