"""The identity service of a node (issue 3): accounts, an OpenID Connect provider, federation trust. Not built yet."""
