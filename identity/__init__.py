"""Identity service: accounts at a home node, login sessions, and the node's OpenID Connect provider."""

VERSION = "0.1.0"
