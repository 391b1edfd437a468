"""The community SNS service: theme communities with their leaders, posts and comments, and friendships."""

VERSION = "0.1.0"
