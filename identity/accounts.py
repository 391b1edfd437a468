"""Accounts at a home node: registration, e-mail verification, login with lockout, sessions, password change and
reset, profile, deletion and export. Domain logic only: no NATS, no commits (the adapters own transactions)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker

from identity import passwords
from identity.models import (
    bus,
    home_tokens,
    mail,
    oauth_clients,
    oauth_codes,
    oauth_refresh_tokens,
    one_time_tokens,
    presence,
    sessions,
    users,
)
from towntip.kernel import privacy
from towntip.kernel.bus.envelope import new_id, utcnow
from towntip.kernel.bus.outbox import announce
from towntip.kernel.contracts import identity as c
from towntip.kernel.db import aware
from towntip.kernel.mail import queue_mail

SERVICE = c.SERVICE
SESSION_TTL = timedelta(days=14)
SESSION_TOUCH = timedelta(minutes=5)  # last_seen is written at most this often
VERIFY_TTL = timedelta(days=2)
RESET_TTL = timedelta(hours=1)
MAX_FAILED_LOGINS = 5  # then the account is locked ...
LOCKOUT = timedelta(minutes=15)  # ... for this long (doubling with each further lockout, up to a day)
MAX_LOCKOUT = timedelta(days=1)
WRONG_LOGIN = "the handle (or e-mail) or the password is wrong / ハンドル（またはメール）かパスワードが違います"


def new_secret() -> str:
    """256 random bits, URL-safe: session tokens, one-time tokens, codes, refresh tokens, client secrets."""
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Links:
    """Where the person's browser goes: the gateway's public pages (for links in e-mails)."""

    base_url: str

    def verify(self, token: str) -> str:
        return f"{self.base_url}/verify-email?token={token}"

    def reset(self, token: str) -> str:
        return f"{self.base_url}/password/reset?token={token}"


def to_user(row: Any, node: str) -> c.User:
    """A person of this node (handle `name`), or of another node (handle `name@home`, linked by issuer and sub)."""
    home = getattr(row, "home_node", None)
    return c.User(
        id=row.id, handle=row.handle, global_handle=row.handle if home else f"{row.handle}@{node}",
        home_node=home or node, display_name=row.display_name, email=row.email or "",
        email_verified=row.email_verified,
        nickname=row.nickname, district=row.district, interests=list(row.interests or []), lang=row.lang,
        roles=sorted(row.roles or []), created_at=aware(row.created_at),
        findable=bool(getattr(row, "findable", False)),
    )


async def user_row(session: AsyncSession, user_id: str) -> Any:
    """The row of the account with this id, or None."""
    return await _user_by(session, id=user_id)


async def _user_by(session: AsyncSession | AsyncConnection, **where: str) -> Any:
    (col, value), = where.items()
    return (await session.execute(select(users).where(users.c[col] == value))).first()


# ---- registration and verification ----------------------------------------------------------------------------


async def create_user(
    session: AsyncSession, *, node: str, handle: str, display_name: str, email: str, password: str,
    email_verified: bool, lang: str = "ja",
) -> c.User:
    now = utcnow()
    if await _user_by(session, handle=handle):
        raise c.ACCOUNT_HANDLE_TAKEN(f"the handle {handle!r} is taken / このハンドルは使われています")
    if await _user_by(session, email=email):
        raise c.ACCOUNT_EMAIL_TAKEN("an account with this e-mail exists / このメールアドレスのアカウントがあります")
    user_id = new_id()
    row = {
        "id": user_id, "handle": handle, "display_name": display_name, "email": email,
        "email_verified": email_verified, "password_hash": await passwords.hash_password(password),
        "nickname": "", "district": "", "interests": [], "lang": lang, "failed_logins": 0, "locked_until": None,
        "password_changed_at": now, "created_at": now, "updated_at": now,
    }
    try:
        async with session.begin_nested():
            await session.execute(users.insert().values(**row))
    except IntegrityError:  # a concurrent registration won the race for the handle or the address
        raise c.ACCOUNT_HANDLE_OR_EMAIL_TAKEN(
            "the handle or e-mail was just taken / ハンドルかメールが使われました") from None
    user = to_user(await _user_by(session, id=user_id), node)
    await announce(session, bus, c.UserRegistered.of(user), node=node)
    return user


async def _issue_token(session: AsyncSession, *, user_id: str, purpose: str, ttl: timedelta) -> str:
    token = new_secret()
    now = utcnow()
    await session.execute(one_time_tokens.insert().values(
        token_hash=digest(token), purpose=purpose, user_id=user_id, created_at=now, expires_at=now + ttl,
    ))
    return token


async def send_verification(session: AsyncSession, *, user: c.User, links: Links) -> None:
    token = await _issue_token(session, user_id=user.id, purpose="verify", ttl=VERIFY_TTL)
    await queue_mail(
        session, mail, key=f"verify:{digest(token)}", to=user.email,
        subject="【TownTip】メールアドレスの確認 / Confirm your e-mail address",
        text=(
            f"{user.display_name} 様\n\nTownTip Commons へのご登録ありがとうございます。\n"
            f"次のリンクを開いて、メールアドレスを確認してください（48時間有効）。\n\n{links.verify(token)}\n\n"
            "お心当たりのない場合は、このメールを破棄してください。\n\n"
            f"---\nHello {user.display_name},\n\nThank you for joining TownTip Commons. Open the link above within "
            "48 hours to confirm your e-mail address. If you did not sign up, ignore this message.\n"
        ),
    )


async def register(session: AsyncSession, *, node: str, data: c.RegisterIn, links: Links) -> c.Registered:
    user = await create_user(
        session, node=node, handle=data.handle, display_name=data.display_name, email=data.email,
        password=data.password, email_verified=False, lang=data.lang,
    )
    await send_verification(session, user=user, links=links)
    return c.Registered(user=user, verification_sent=True)


async def _use_token(session: AsyncSession, *, token: str, purpose: str) -> str:
    """Marks a one-time token used and returns its user id; refuses unknown, used and expired tokens alike."""
    now = utcnow()
    row = (await session.execute(
        update(one_time_tokens)
        .where(one_time_tokens.c.token_hash == digest(token), one_time_tokens.c.purpose == purpose,
               one_time_tokens.c.used_at.is_(None), one_time_tokens.c.expires_at > now)
        .values(used_at=now)
        .returning(one_time_tokens.c.user_id)
    )).first()
    if row is None:
        raise c.ACCOUNT_LINK_INVALID("the link is invalid, used or expired / リンクが無効か、使用済みか、期限切れです")
    return row.user_id


async def verify_email(session: AsyncSession, *, node: str, token: str) -> c.User:
    user_id = await _use_token(session, token=token, purpose="verify")
    await session.execute(update(users).where(users.c.id == user_id).values(email_verified=True, updated_at=utcnow()))
    return to_user(await _user_by(session, id=user_id), node)


async def resend_verification(session: AsyncSession, *, email: str, links: Links, node: str) -> None:
    row = await _user_by(session, email=email)
    if row is not None and not row.email_verified:  # silent otherwise: no account enumeration
        await send_verification(session, user=to_user(row, node), links=links)


# ---- login and sessions ---------------------------------------------------------------------------------------


async def login(sessions_maker: async_sessionmaker[AsyncSession], *, node: str, data: c.LoginIn) -> c.Session:
    """Checks the password; counts failures and locks the account after MAX_FAILED_LOGINS.

    The Argon2id check (tens of ms) runs outside any transaction: on SQLite a transaction holds the node's one
    write lock. The failure count is incremented atomically, so concurrent wrong guesses all count."""
    now = utcnow()
    key = "email" if "@" in data.login else "handle"
    engine = sessions_maker.kw["bind"]  # Core connections: the ORM session adds nothing here but CPU
    async with engine.connect() as conn:
        row = await _user_by(conn, **{key: data.login.lower() if key == "email" else data.login})
    if row is not None and row.home_node is not None:
        row = None  # a person of another node logs in at home
    locked_until = aware(row.locked_until) if row is not None else None
    if locked_until is not None and locked_until > now:
        await passwords.verify_password(None, data.password)  # same cost as any other answer
        raise c.LOGIN_LOCKED(
            "too many failed logins: the account is locked until "
            f"{locked_until:%Y-%m-%d %H:%M} UTC / ログインの失敗が続いたため一時的にロックしています")
    checked = await passwords.check_password(row.password_hash if row is not None else None, data.password)
    if not checked.ok:
        if row is not None:
            async with sessions_maker() as session, session.begin():
                failed = (await session.execute(
                    update(users).where(users.c.id == row.id).values(failed_logins=users.c.failed_logins + 1)
                    .returning(users.c.failed_logins))).scalar_one()
                if failed % MAX_FAILED_LOGINS == 0:
                    lock = min(LOCKOUT * (2 ** (failed // MAX_FAILED_LOGINS - 1)), MAX_LOCKOUT)
                    await session.execute(update(users).where(users.c.id == row.id).values(locked_until=now + lock))
        raise c.LOGIN_WRONG(WRONG_LOGIN)
    values: dict[str, Any] = {}
    if row.failed_logins or row.locked_until is not None:
        values.update(failed_logins=0, locked_until=None)  # (as read: a wrong guess made meanwhile is reset too)
    if checked.rehash:
        values["password_hash"] = await passwords.hash_password(data.password)
    async with engine.begin() as conn:
        if values:
            await conn.execute(update(users).where(users.c.id == row.id).values(**values))
        return await new_session(conn, node=node, row=row, client_ip=data.client_ip, user_agent=data.user_agent)


async def new_session(session: AsyncSession | AsyncConnection, *, node: str, row: Any, client_ip: str,
                      user_agent: str) -> c.Session:
    """A login session at this node for the person in `row`; only the token's hash is stored."""
    now = utcnow()
    token = new_secret()
    await session.execute(sessions.insert().values(
        token_hash=digest(token), user_id=row.id, auth_time=now, expires_at=now + SESSION_TTL, last_seen_at=now,
        client_ip=client_ip, user_agent=user_agent,
    ))
    return c.Session(session_token=token, user=to_user(row, node), auth_time=now, expires_at=now + SESSION_TTL)


async def read_session(session: AsyncSession, *, node: str, token: str) -> tuple[c.Session, bool]:
    """The session of `token` and whether its last_seen_at is older than SESSION_TOUCH (then `current_session` in
    a write records the visit); changes nothing. SESSION_NONE when there is none, or it has ended."""
    now = utcnow()
    elsewhere = exists().where(presence.c.user_id == sessions.c.user_id).label("elsewhere")
    row = (await session.execute(
        select(sessions.c.auth_time, sessions.c.expires_at, sessions.c.last_seen_at, elsewhere, users)
        .join(users, users.c.id == sessions.c.user_id)
        .where(sessions.c.token_hash == digest(token))
    )).first()
    if row is None or aware(row.expires_at) <= now:
        raise c.SESSION_NONE("not logged in, or the session has ended / ログインしていないか、期限切れです")
    found = c.Session(user=to_user(row, node), auth_time=aware(row.auth_time), expires_at=aware(row.expires_at),
                      elsewhere=bool(row.elsewhere))
    return found, now - aware(row.last_seen_at) > SESSION_TOUCH


async def current_session(session: AsyncSession, *, node: str, token: str) -> c.Session:
    """`read_session`, recording the visit (last_seen_at) when the last one is older than SESSION_TOUCH."""
    found, stale = await read_session(session, node=node, token=token)
    if stale:
        await session.execute(update(sessions).where(sessions.c.token_hash == digest(token)).values(
            last_seen_at=utcnow()))
    return found


async def logout(session: AsyncSession, *, token: str) -> None:
    # the home node's tokens kept with the session go with it (the foreign key cascades too)
    await session.execute(delete(home_tokens).where(home_tokens.c.session_hash == digest(token)))
    await session.execute(delete(sessions).where(sessions.c.token_hash == digest(token)))


# ---- passwords ------------------------------------------------------------------------------------------------


async def change_password(session: AsyncSession, *, node: str, data: c.PasswordChangeIn) -> None:
    s = await current_session(session, node=node, token=data.session_token)
    row = await _user_by(session, id=s.user.id)
    if not await passwords.verify_password(row.password_hash, data.current_password):
        raise c.ACCOUNT_PASSWORD_WRONG("the current password is wrong / 現在のパスワードが違います")
    await _set_password(session, user_id=row.id, password=data.new_password)
    # Every other session ends: whoever else held one no longer knows the password.
    await session.execute(delete(sessions).where(
        sessions.c.user_id == row.id, sessions.c.token_hash != digest(data.session_token)))


async def _set_password(session: AsyncSession, *, user_id: str, password: str) -> None:
    now = utcnow()
    await session.execute(update(users).where(users.c.id == user_id).values(
        password_hash=await passwords.hash_password(password), password_changed_at=now, updated_at=now,
        failed_logins=0, locked_until=None,
    ))
    # Refresh tokens granted before the change stop working too.
    await session.execute(update(oauth_refresh_tokens).where(
        oauth_refresh_tokens.c.user_id == user_id, oauth_refresh_tokens.c.revoked_at.is_(None)).values(revoked_at=now))


async def request_reset(session: AsyncSession, *, email: str, links: Links) -> None:
    """Sends a reset link if the address has an account; answers the same either way (no enumeration)."""
    row = await _user_by(session, email=email)
    if row is None:
        return
    token = await _issue_token(session, user_id=row.id, purpose="reset", ttl=RESET_TTL)
    await queue_mail(
        session, mail, key=f"reset:{digest(token)}", to=row.email,
        subject="【TownTip】パスワードの再設定 / Reset your password",
        text=(
            f"{row.display_name} 様\n\nパスワード再設定のご依頼を受け付けました。次のリンクから1時間以内に新しい"
            f"パスワードを設定してください。\n\n{links.reset(token)}\n\n"
            "お心当たりのない場合は、このメールを破棄してください。パスワードは変わりません。\n\n"
            f"---\nHello {row.display_name},\n\nSomeone asked to reset your password. Open the link above within one "
            "hour to choose a new one. If it was not you, ignore this message: your password stays as it is.\n"
        ),
    )


async def reset_password(session: AsyncSession, *, data: c.ResetIn) -> None:
    user_id = await _use_token(session, token=data.token, purpose="reset")
    await _set_password(session, user_id=user_id, password=data.new_password)
    await session.execute(delete(sessions).where(sessions.c.user_id == user_id))
    # A reset link came through the mailbox: that proves the address as well.
    await session.execute(update(users).where(users.c.id == user_id).values(email_verified=True))


# ---- profile, deletion, export --------------------------------------------------------------------------------


async def update_profile(session: AsyncSession, *, node: str, data: c.ProfileUpdateIn,
                         districts: tuple[str, ...] = ()) -> c.User:
    """The person's own profile. Where the node lists its districts (towntip/kernel/town.py), the district is one of
    them or empty, so that the district figures do not split by spelling."""
    if districts and data.district and data.district not in districts:
        raise c.PROFILE_DISTRICT_UNKNOWN(f"{data.district!r} is not one of this node's districts: "
                                         + ", ".join(districts))
    s = await current_session(session, node=node, token=data.session_token)
    values = data.model_dump(exclude={"session_token"}, exclude_none=True)
    if values:
        values["updated_at"] = utcnow()
        await session.execute(update(users).where(users.c.id == s.user.id).values(**values))
    user = to_user(await _user_by(session, id=s.user.id), node)
    if values:
        await announce(session, bus, c.ProfileChanged.of(user), node=node)
    return user


async def delete_account(session: AsyncSession, *, node: str, data: c.DeleteIn) -> None:
    s = await current_session(session, node=node, token=data.session_token)
    row = await _user_by(session, id=s.user.id)
    if not await passwords.verify_password(row.password_hash, data.password):
        raise c.ACCOUNT_PASSWORD_WRONG("the password is wrong / パスワードが違います")
    await _remove(session, node=node, row=row, content=data.content)


async def export_account(session: AsyncSession, *, node: str, token: str) -> dict[str, Any]:
    """Everything this node keeps about the person, as JSON (secrets only as the fact that they exist)."""
    s = await current_session(session, node=node, token=token)
    uid = s.user.id
    row = await _user_by(session, id=uid)
    sess = (await session.execute(
        select(sessions.c.auth_time, sessions.c.expires_at, sessions.c.last_seen_at, sessions.c.client_ip,
               sessions.c.user_agent).where(sessions.c.user_id == uid).order_by(sessions.c.auth_time)
    )).all()
    grants = (await session.execute(
        select(oauth_refresh_tokens.c.client_id, oauth_clients.c.name, oauth_refresh_tokens.c.scope,
               func.min(oauth_refresh_tokens.c.issued_at).label("first"),
               func.max(oauth_refresh_tokens.c.issued_at).label("last"))
        .join(oauth_clients, oauth_clients.c.client_id == oauth_refresh_tokens.c.client_id)
        .where(oauth_refresh_tokens.c.user_id == uid)
        .group_by(oauth_refresh_tokens.c.client_id, oauth_clients.c.name, oauth_refresh_tokens.c.scope)
    )).all()
    places = (await session.execute(
        select(presence.c.node, presence.c.entity_id, presence.c.first_seen, presence.c.last_seen)
        .where(presence.c.user_id == uid).order_by(presence.c.node))).all()
    home_access = (await session.execute(
        select(home_tokens.c.entity_id, home_tokens.c.scope, home_tokens.c.access_expires_at)
        .where(home_tokens.c.user_id == uid))).all()
    iso = lambda t: aware(t).isoformat() if t is not None else None  # noqa: E731
    return {
        "exported_at": utcnow().isoformat(),
        "node": node,
        "account": {
            **s.user.model_dump(mode="json"),
            "password": "set (stored as an Argon2id hash; not exported)",
            "password_changed_at": iso(row.password_changed_at),
            "failed_logins": row.failed_logins,
            "locked_until": iso(row.locked_until),
            "updated_at": iso(row.updated_at),
        },
        "sessions": [
            {"auth_time": iso(r.auth_time), "expires_at": iso(r.expires_at), "last_seen_at": iso(r.last_seen_at),
             "client_ip": r.client_ip, "user_agent": r.user_agent} for r in sess
        ],
        # where this node (your home) knows you take part, for My Page across regions
        "regions": [{"node": r.node, "url": r.entity_id, "first_seen": iso(r.first_seen),
                     "last_seen": iso(r.last_seen)} for r in places],
        # your home node's tokens kept here with your sessions (the tokens themselves are not exported)
        "home_access": [{"home": r.entity_id, "scope": r.scope, "access_expires_at": iso(r.access_expires_at)}
                        for r in home_access],
        "authorized_clients": [
            {"client_id": r.client_id, "name": r.name, "scope": r.scope, "first_granted": iso(r.first),
             "last_refreshed": iso(r.last)} for r in grants
        ],
    }


# ---- admin ----------------------------------------------------------------------------------------------------


async def list_users(session: AsyncSession, *, node: str) -> list[c.User]:
    rows = await session.execute(select(users).order_by(users.c.handle))
    return [to_user(r, node) for r in rows]


async def remove_user(session: AsyncSession, *, node: str, handle: str) -> None:
    row = await _user_by(session, handle=handle)
    if row is None:
        raise c.ACCOUNT_NOT_FOUND(f"no user {handle!r}")
    await _remove(session, node=node, row=row)


async def lookup_person(session: AsyncSession, *, node: str, actor: Any, query: str) -> c.PersonRef:
    """Staff and the secretariat find a person known here by global handle (name@home) or e-mail address."""
    if not actor.has("staff", "secretariat"):
        raise c.PEOPLE_STAFF_ONLY("only the node's staff may look people up / 職員のみが検索できます")
    q = query.strip().lower()
    _, _, home = q.partition("@")
    if "." in home:  # an e-mail address (node ids have no dots)
        row = await _user_by(session, email=q)
        if row is None:
            raise c.PEOPLE_NOT_FOUND(f"nobody known here as {query!r} / 該当する人がいません")
        user = to_user(row, node)
    else:
        user = await _known(session, node=node, handle=q)
    return c.PersonRef(user_id=user.id, global_handle=user.global_handle, display_name=user.display_name,
                       home_node=user.home_node)


async def _known(session: AsyncSession, *, node: str, handle: str) -> c.User:
    """The person known here as name@home: one of ours (stored as plain `name`) or of another node."""
    name, _, home = handle.partition("@")
    row = await _user_by(session, handle=name if home == node else handle)
    if row is None:
        raise c.PEOPLE_NOT_FOUND(f"nobody known here as {handle!r} / 該当する人がいません")
    return to_user(row, node)


async def public_profile(session: AsyncSession, *, node: str, handle: str) -> c.PublicProfile:
    """Anyone signed in may ask whether name@home is known here (e.g. to send a friend request): the public
    profile only. Handles are public (they sign posts); e-mail addresses are never looked up here."""
    user = await _known(session, node=node, handle=handle.lower())
    return c.PublicProfile(global_handle=user.global_handle, display_name=user.display_name)


async def search_people(session: AsyncSession, *, node: str, query: str) -> c.PeopleFound:
    """Findable people of this node (never people of other nodes who logged in here) whose display name or nickname
    holds the query, compared after NFKC and without case; LIKE's wildcards in the query are taken literally."""
    text = passwords.normalise(query).lower()
    pattern = "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    u = users.c
    holds = func.lower(u.display_name).like(pattern, escape="\\") | func.lower(u.nickname).like(pattern, escape="\\")
    rows = (await session.execute(
        select(u.handle, u.display_name, u.nickname).where(u.findable.is_(True), u.home_node.is_(None), holds)
        .order_by(u.display_name, u.handle).limit(c.PEOPLE_FOUND_MAX))).all()
    return c.PeopleFound(people=[c.FoundPerson(global_handle=f"{r.handle}@{node}", display_name=r.display_name,
                                               nickname=r.nickname) for r in rows])


async def set_role(session: AsyncSession, *, node: str, handle: str, role: str, granted: bool) -> c.User:
    """Grant or revoke one role; the row is locked for the change (two grants at once both count)."""
    row = (await session.execute(select(users).where(users.c.handle == handle).with_for_update())).first()
    if row is None:
        raise c.ACCOUNT_NOT_FOUND(f"no user {handle!r} / このユーザーはいません")
    roles = set(row.roles or [])
    roles = roles | {role} if granted else roles - {role}
    await session.execute(update(users).where(users.c.id == row.id).values(roles=sorted(roles), updated_at=utcnow()))
    return to_user(await _user_by(session, id=row.id), node)


async def _remove(session: AsyncSession, *, node: str, row: Any, content: str = "anonymise") -> None:
    """The person and everything hanging on them; every service here and other nodes hear UserDeleted (with the
    user id, for the services that key rows by it, and the person's choice for their posts) and forget them."""
    for table in (home_tokens, presence, sessions, one_time_tokens, oauth_refresh_tokens, oauth_codes):
        await session.execute(delete(table).where(table.c.user_id == row.id))
    await session.execute(delete(users).where(users.c.id == row.id))
    # Issue 20 point 7: nothing of them stays here either: mail to their address, published events naming them
    # (their registration, profile changes; the relay would prune them later). UserDeleted itself stays until sent.
    if row.email:
        await session.execute(delete(mail).where(mail.c.to_addr == row.email))
    await privacy.scrub_outbox(session, bus.outbox, privacy.Person(f"{row.handle}@{node}", row.id),
                               also=[row.email] if row.email else [])
    await announce(session, bus, c.UserDeleted(global_handle=f"{row.handle}@{node}", home_node=node,
                                                 user_id=row.id, content=content), node=node)
