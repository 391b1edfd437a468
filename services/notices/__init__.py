"""The notices service (お知らせ・電子私書箱): the person's own life stage, notices written by staff and targeted by
it, official messages to one person, and each person's inbox."""

VERSION = "0.1.0"
