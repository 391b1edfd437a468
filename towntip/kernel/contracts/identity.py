"""Contracts of the identity service (svc.<node>.identity.*): accounts at a home node, sessions, admin, OIDC.

A person has one home node; their global handle is `handle@node`. Session tokens are opaque secrets the gateway
keeps in an HttpOnly cookie; the identity service stores only their SHA-256.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, ConfigDict, Field, StringConstraints

from towntip.kernel import categories
from towntip.kernel.contracts.actor import Actor, GlobalHandle
from towntip.kernel.contracts.base import Frozen
from towntip.kernel.contracts.events import Event
from towntip.kernel.errors import Refusal, check_failed
from towntip.kernel.mail import check_address

SERVICE = "identity"

# Endpoints (the tail of svc.<node>.identity.<name>)
EP_REGISTER = "register"
EP_VERIFY_EMAIL = "email.verify"
EP_RESEND_VERIFICATION = "email.resend"
EP_LOGIN = "login"
EP_SESSION = "session"
EP_LOGOUT = "logout"
EP_PASSWORD_CHANGE = "password.change"
EP_RESET_REQUEST = "password.reset_request"
EP_RESET = "password.reset"
EP_PROFILE_UPDATE = "profile.update"
EP_DELETE = "account.delete"
EP_EXPORT = "account.export"
EP_USER_ADD = "admin.user.add"
EP_USER_LIST = "admin.user.list"
EP_USER_REMOVE = "admin.user.remove"
EP_PEOPLE_LOOKUP = "people.lookup"  # PersonLookupIn -> PersonRef (staff: who is name@home at this node)
EP_PEOPLE_PROFILE = "people.profile"  # ProfileLookupIn -> PublicProfile (the gateway, for anyone signed in)
EP_PEOPLE_SEARCH = "people.search"  # PeopleSearchIn -> PeopleFound (signed in: findable people of this node by name)
EP_USER_GRANT = "admin.user.grant"
EP_USER_REVOKE = "admin.user.revoke"
EP_CLIENT_ADD = "admin.client.add"
EP_CLIENT_LIST = "admin.client.list"
EP_CLIENT_REMOVE = "admin.client.remove"
EP_KEY_ROTATE = "admin.key.rotate"  # None -> KeyRotated (the provider's keys; the federation key stays)
EP_FEDERATION_KEY_ROTATE = "admin.key.rotate_federation"  # None -> FederationKeyRotated (the anchor must re-pin)
EP_OIDC = "oidc"
EP_TOKEN_USER = "oidc.token_user"  # AccessTokenIn -> User (the gateway: who holds this bearer token, for /api/v1)
EP_FEDERATED_START = "federated.start"
EP_FEDERATED_FINISH = "federated.finish"
EP_REGIONS_PLAN = "regions.plan"  # RegionsPlanIn -> RegionsPlan (home node: signed queries to where the person is)
EP_REGIONS_VERIFY = "regions.verify"  # PersonQueryIn -> QueriedPerson (any node: a home node's query checked)
EP_REGIONS_HOME_TOKEN = "regions.home_token"  # SessionIn -> HomeAccess (another node: the home's access token)

_IN = ConfigDict(extra="forbid", str_strip_whitespace=True)

Handle = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_]{2,29}$")]
DisplayName = Annotated[str, StringConstraints(min_length=1, max_length=100)]
Password = Annotated[str, StringConstraints(min_length=10, max_length=256, strip_whitespace=False)]
AnyPassword = Annotated[str, StringConstraints(min_length=1, max_length=256, strip_whitespace=False)]
Token = Annotated[str, StringConstraints(min_length=16, max_length=200, pattern=r"^[A-Za-z0-9_-]+$")]
Lang = Literal["ja", "en"]
# Roles a person may hold at a node (granted by the operator):
#   staff        municipal staff: events and their rules, issuance, coupons, courses, donations confirmed at the
#                counter, the municipality's co-creation themes;
#   secretariat  the co-creation secretariat (事務局): inquiries, calls, evaluators, publication of results.
ROLES = ("staff", "secretariat")
Role = Literal["staff", "secretariat"]


def _email(v: str) -> str:
    """One plain address we can send mail to (kernel.mail's rule), kept in lower case: one account per address."""
    try:
        return check_address(v).lower()
    except ValueError:
        raise check_failed("email.invalid", "not an e-mail address (one plain address like name@example.jp)") from None


Email = Annotated[str, AfterValidator(_email)]


def _interests(v: list[str]) -> list[str]:
    known = categories.codes()
    bad = [c for c in v if c not in known]
    if bad:
        raise check_failed("category.unknown", "unknown categories: {values}", values=", ".join(bad[:5]))
    return sorted(set(v))


Interests = Annotated[list[str], Field(max_length=43), AfterValidator(_interests)]


class User(Frozen):
    id: str
    handle: str
    global_handle: str  # handle@home-node
    home_node: str
    display_name: str
    email: str
    email_verified: bool
    nickname: str = ""
    district: str = ""
    interests: list[str] = []
    lang: Lang = "ja"
    roles: list[str] = []
    created_at: datetime
    findable: bool = False  # others of this node may find them by name or nickname (friend search)


class RegisterIn(Frozen):
    model_config = _IN
    handle: Handle
    display_name: DisplayName
    email: Email
    password: Password
    lang: Lang = "ja"


class Registered(Frozen):
    user: User
    verification_sent: bool


class TokenIn(Frozen):
    model_config = _IN
    token: Token


class EmailIn(Frozen):
    model_config = _IN
    email: Email
    lang: Lang = "ja"


class LoginIn(Frozen):
    model_config = _IN
    login: Annotated[str, StringConstraints(min_length=1, max_length=254)]  # handle or e-mail
    password: AnyPassword
    client_ip: Annotated[str, StringConstraints(max_length=64)] = ""
    user_agent: Annotated[str, StringConstraints(max_length=300)] = ""


class Session(Frozen):
    session_token: str = ""  # only in the answer to login; later answers leave it empty
    user: User
    auth_time: datetime
    expires_at: datetime
    # At the person's home node: whether they take part in another region too (My Page asks the regions only then)
    elsewhere: bool = False


class SessionIn(Frozen):
    model_config = _IN
    session_token: Token


class AccessTokenIn(Frozen):
    """A bearer access token this node's OpenID provider issued (an at+jwt), as a client sent it to the API."""

    model_config = _IN
    access_token: Annotated[str, StringConstraints(min_length=20, max_length=4096)]


class PasswordChangeIn(SessionIn):
    current_password: AnyPassword
    new_password: Password


class ResetIn(Frozen):
    model_config = _IN
    token: Token
    new_password: Password


class ProfileUpdateIn(SessionIn):
    display_name: DisplayName | None = None
    nickname: Annotated[str, StringConstraints(max_length=50)] | None = None
    district: Annotated[str, StringConstraints(max_length=100)] | None = None
    interests: Interests | None = None
    lang: Lang | None = None
    findable: bool | None = None


class DeleteIn(SessionIn):
    password: AnyPassword
    # What the person's posts and comments become (issue 20 point 7): kept by nobody, or removed.
    content: Literal["anonymise", "remove"] = "anonymise"


class Done(Frozen):
    ok: bool = True
    detail: str = ""


# ---- admin -----------------------------------------------------------------------------------------------------


class UserAddIn(Frozen):
    model_config = _IN
    handle: Handle
    display_name: DisplayName | None = None
    email: Email
    password: Password
    email_verified: bool = True


class UserRef(Frozen):
    model_config = _IN
    handle: Handle


class RoleIn(Frozen):
    model_config = _IN
    # this node's people (name) or people of other nodes known here (name@home)
    handle: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_]{2,29}(@[a-z][a-z0-9-]{0,30}[a-z0-9])?$")]
    role: Role


class PersonLookupIn(Frozen):
    """Staff find a person known at this node by their global handle (name@home) or e-mail, e.g. to record that
    they finished a course or to award them currency. Answers only who they are here, nothing private."""

    model_config = _IN
    actor: Actor
    query: Annotated[str, StringConstraints(min_length=3, max_length=254)]


class PersonRef(Frozen):
    user_id: str
    global_handle: str
    display_name: str
    home_node: str


class ProfileLookupIn(Frozen):
    """Is name@home a person known at this node (one of its own, or of another node who has logged in here)? By
    global handle only, never by e-mail; the answer is the public profile and nothing else (no user id)."""

    model_config = _IN
    handle: GlobalHandle


class PublicProfile(Frozen):
    global_handle: str
    display_name: str


PEOPLE_FOUND_MAX = 20


class PeopleSearchIn(Frozen):
    """People of this node who chose to be findable, by a part of their display name or nickname (at least two
    characters; letters compared without case, full-width and half-width alike). Never by e-mail or handle prefix
    enumeration of people who did not choose it."""

    model_config = _IN
    query: Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=50)]


class FoundPerson(Frozen):
    global_handle: str
    display_name: str
    nickname: str


class PeopleFound(Frozen):
    people: list[FoundPerson]  # at most PEOPLE_FOUND_MAX, by display name


class UserList(Frozen):
    users: list[User]


RedirectUri = Annotated[str, StringConstraints(min_length=8, max_length=500, pattern=r"^https?://[^\s#]+$")]
ClientId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{1,99}$")]


class ClientAddIn(Frozen):
    model_config = _IN
    client_id: ClientId
    name: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = None
    redirect_uris: Annotated[list[RedirectUri], Field(min_length=1, max_length=10)]
    post_logout_redirect_uris: Annotated[list[RedirectUri], Field(max_length=10)] = []
    public: bool = False  # a public client (SPA, native app) has no secret and must use PKCE
    scope: Annotated[str, StringConstraints(pattern=r"^[a-z_ ]{1,200}$")] = "openid profile email"


class Client(Frozen):
    client_id: str
    name: str
    redirect_uris: list[str]
    post_logout_redirect_uris: list[str]
    public: bool
    scope: str
    created_at: datetime
    client_secret: str = ""  # only in the answer to client add


class ClientRef(Frozen):
    model_config = _IN
    client_id: ClientId


class ClientList(Frozen):
    clients: list[Client]


class KeyRotated(Frozen):
    kid: str  # the new RS256 provider key (ID tokens, person queries)
    published: list[str]  # kids in the provider's JWKS now
    access_token_kid: str | None = None  # the new ES256 key (access tokens)
    federation_kid: str | None = None  # the federation key, unchanged (what the anchor pinned)


class FederationKeyRotated(Frozen):
    kid: str  # the new federation key's RFC 7638 thumbprint: the anchor's operator pins it (--expect-thumbprint)
    entity_id: str  # this node's entity id (--entity-id of `towntip federation anchor rekey`)
    retired: list[str] = []  # the federation key(s) it replaces


# ---- OIDC over the bus -----------------------------------------------------------------------------------------

OidcEndpoint = Literal["discovery", "jwks", "authorize", "token", "userinfo", "end_session", "federation",
                       "revocation"]


class OidcRequest(Frozen):
    """An HTTP request to the provider, as the gateway received it (only what the provider needs)."""

    model_config = _IN
    endpoint: OidcEndpoint
    method: Literal["GET", "POST"]
    url: Annotated[str, StringConstraints(max_length=4000)]
    headers: dict[str, Annotated[str, StringConstraints(max_length=4000)]] = {}
    form: dict[str, Annotated[str, StringConstraints(max_length=4000)]] = {}
    session_token: Token | None = None


class OidcResponse(Frozen):
    status: int
    headers: dict[str, str] = {}
    body: Any = None  # JSON (dict) or text
    # authorize: no live session at this node, the gateway sends the person to its login page and back
    login_required: bool = False
    # end_session: the gateway clears its session cookie
    clear_session: bool = False


# ---- logging in with one's home node (cross-node single sign-on) ------------------------------------------------


class FederatedStartIn(Frozen):
    """`name@node` (or just `node`): the person's home node, where they log in."""

    model_config = _IN
    target: Annotated[str, StringConstraints(pattern=r"^([a-z0-9][a-z0-9_]{2,29}@)?[a-z][a-z0-9-]{0,30}[a-z0-9]$")]
    return_to: Annotated[str, StringConstraints(pattern=r"^/[^/\\].*$|^/$", max_length=500)] = "/me"


class FederatedStart(Frozen):
    authorize_url: str


class FederatedFinishIn(Frozen):
    model_config = _IN
    state: Token
    code: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    iss: Annotated[str, StringConstraints(max_length=500)] = ""  # RFC 9207: the issuer the answer came from
    client_ip: Annotated[str, StringConstraints(max_length=64)] = ""
    user_agent: Annotated[str, StringConstraints(max_length=300)] = ""


class FederatedSession(Frozen):
    session: Session
    return_to: str


# ---- My Page across regions (docs/identity.md, "My Page across regions") ----------------------------------

REGIONS_SCOPE = "regions"  # granted only to member nodes of the federation and clients an admin allowed it
PERSON_QUERY_TYP = "towntip-person-query+jwt"


class RegionsPlanIn(Frozen):
    """The person asking for their regions, by their session at home or a bearer access token with `regions`."""

    model_config = _IN
    session_token: Token | None = None
    access_token: Annotated[str, StringConstraints(min_length=20, max_length=4096)] | None = None


class RegionQuery(Frozen):
    node: str
    url: str  # the node's entity id (public base URL): POST {url}/federation/person-summary
    token: str  # the signed query (PERSON_QUERY_TYP), valid for 60 s, single use
    first_seen: datetime
    last_seen: datetime


class RemovedRegion(Frozen):
    node: str
    url: str
    reason: str


class RegionsPlan(Frozen):
    user_id: str
    global_handle: str
    home_node: str
    queries: list[RegionQuery]
    removed: list[RemovedRegion]  # where the person took part, no longer a member of the federation: not asked
    unreachable: list[RemovedRegion] = []  # not asked because the trust anchor did not answer
    caller_node: str | None = None  # asked with a member node's access token: that node (it shows its own part)


class PersonQueryIn(Frozen):
    model_config = _IN
    token: Annotated[str, StringConstraints(min_length=20, max_length=8192, pattern=r"^[A-Za-z0-9_\-.]+$")]


class QueriedPerson(Frozen):
    user_id: str  # the person's user id at this node
    global_handle: str
    asker: str  # the home node that asked


class HomeAccess(Frozen):
    home_node: str
    url: str  # the home node's entity id
    access_token: str


# ---- refusals (the stable codes pages translate; the English reason says the details) ---------------------------

ACCOUNT_HANDLE_TAKEN = Refusal("account.handle_taken", 409, "the handle is taken")
ACCOUNT_EMAIL_TAKEN = Refusal("account.email_taken", 409, "an account with the e-mail address exists")
ACCOUNT_HANDLE_OR_EMAIL_TAKEN = Refusal("account.handle_or_email_taken", 409, "the handle or the e-mail was just taken")
ACCOUNT_LINK_INVALID = Refusal("account.link_invalid", 400, "the link is invalid, used or expired")
ACCOUNT_PASSWORD_WRONG = Refusal("account.password_wrong", 401, "the password given is wrong")
ACCOUNT_NOT_FOUND = Refusal("account.not_found", 404, "no such user at this node")
ACCOUNT_GONE = Refusal("account.gone", 401, "the account no longer exists")
PROFILE_DISTRICT_UNKNOWN = Refusal("profile.district_unknown", 400,
                                   "the district is not one of the node's districts (choose one from its list)")
LOGIN_LOCKED = Refusal("login.locked", 429, "too many failed logins: the account waits")
LOGIN_WRONG = Refusal("login.wrong", 401, "wrong handle or password")
SESSION_NONE = Refusal("session.none", 401, "not logged in, or the session has ended")
PEOPLE_STAFF_ONLY = Refusal("people.staff_only", 403, "only the node's staff look people up")
PEOPLE_NOT_FOUND = Refusal("people.not_found", 404, "nobody known here by that name")
CLIENT_EXISTS = Refusal("client.exists", 409, "a client of that id exists")
CLIENT_OPENID_REQUIRED = Refusal("client.openid_required", 400, "a client's scope includes openid")
CLIENT_NOT_FOUND = Refusal("client.not_found", 404, "no such client")
TOKEN_INVALID = Refusal("token.invalid", 401, "not a valid access token of this node")
FEDERATION_NONE = Refusal("federation.none", 503, "this node belongs to no federation")
FEDERATION_ANCHOR_UNAVAILABLE = Refusal("federation.anchor_unavailable", 503, "the trust anchor did not answer")
FEDERATED_THIS_NODE = Refusal("federated.this_node", 400, "that is this node: log in here with the password")
FEDERATED_UNTRUSTED = Refusal("federated.untrusted", 403, "the node is not a trusted node of the federation")
FEDERATED_FOREIGN_PROVIDER = Refusal("federated.foreign_provider", 403,
                                     "the node names a provider outside its own site")
FEDERATED_LINK_INVALID = Refusal("federated.link_invalid", 400, "the login link is unknown, used or expired")
FEDERATED_ISSUER_CHANGED = Refusal("federated.issuer_changed", 403, "the home node's issuer changed during the login")
FEDERATED_WRONG_ISSUER = Refusal("federated.wrong_issuer", 400,
                                 "the answer came from another issuer than the home node")
FEDERATED_CODE_REFUSED = Refusal("federated.code_refused", 401, "the home node refused the code")
FEDERATED_ID_TOKEN_INVALID = Refusal("federated.id_token_invalid", 401, "the home node's ID token does not hold")
FEDERATED_HANDLE_LINKED = Refusal("federated.handle_linked", 409, "the handle is linked to another person here")
HOME_UNTRUSTED = Refusal("home.untrusted", 403, "the home node is no longer trusted")
HOME_FOREIGN_ENDPOINT = Refusal("home.foreign_endpoint", 403, "the home node names an endpoint outside its own site")
HOME_UNAVAILABLE = Refusal("home.unavailable", 503, "the home node did not answer as it should")
HOME_NO_ACCESS = Refusal("home.no_access", 404, "the session holds no access to the home node")
HOME_RENEWING = Refusal("home.renewing", 503, "the home node's token is being renewed")
HOME_LOGIN_ENDED = Refusal("home.login_ended", 401, "the home node no longer accepts the login")
REGIONS_NO_FEDERATION = Refusal("regions.no_federation", 403, "this node belongs to no federation")
REGIONS_SCOPE_MISSING = Refusal("regions.scope_missing", 403, "the access token lacks the regions scope")
REGIONS_CLIENT_UNTRUSTED = Refusal("regions.client_untrusted", 403, "the access token's client is not trusted here")
REGIONS_CREDENTIAL_REQUIRED = Refusal("regions.credential_required", 400,
                                      "a session token or an access token is required")
REGIONS_HOME_ONLY = Refusal("regions.home_only", 403, "only the person's home node knows or asks where they take part")
QUERY_MALFORMED = Refusal("query.malformed", 400, "not a well-formed person query")
QUERY_UNTRUSTED = Refusal("query.untrusted", 403, "the asking node is not trusted")
QUERY_INVALID = Refusal("query.invalid", 401, "the query does not verify, or is out of its time")
QUERY_WRONG_AUDIENCE = Refusal("query.wrong_audience", 403, "the query is meant for another node")
QUERY_REPLAYED = Refusal("query.replayed", 401, "the query was answered already")


# ---- events (evt.<node>.identity.<snake_case type>) -------------------------------------------------------------
# What other services and other nodes may know of a person: the profile fields they chose to show, never e-mail or
# secrets. `user_id` is node-local: the points service's people directory keys the ledger's `person:<user_id>`
# accounts by it; it is an identifier, not a credential.


class IdentityEvent(Event):
    """The base of identity's events: frozen, versioned, registered for the AsyncAPI document."""

    SERVICE: ClassVar[str] = SERVICE
    IS_EVENT: ClassVar[bool] = False  # a base, on no stream itself


class UserRegistered(IdentityEvent):
    """A person's account was made at their home node (registration or the operator's `user add`)."""

    user_id: str
    global_handle: str
    handle: str
    home_node: str
    display_name: str
    nickname: str = ""
    district: str = ""
    interests: list[str] = []

    @classmethod
    def of(cls, user: User) -> UserRegistered:
        return cls(user_id=user.id, global_handle=user.global_handle, handle=user.handle, home_node=user.home_node,
                   display_name=user.display_name, nickname=user.nickname, district=user.district,
                   interests=user.interests)


class ProfileChanged(UserRegistered):
    """A person changed what their public profile shows: the whole public profile again."""

    @classmethod
    def of(cls, user: User) -> ProfileChanged:
        return cls(**UserRegistered.of(user).model_dump())


class UserDeleted(IdentityEvent):
    """A person deleted their account at their home node: every service (and every node) forgets them."""

    global_handle: str
    home_node: str
    # Added for issue 20 point 7 (additive): the person's user id at the home node (the services there key some rows
    # by it: the ledger's person:<user_id>), and what they chose for what they wrote ("anonymise" or "remove").
    user_id: str | None = None
    content: str = "anonymise"
